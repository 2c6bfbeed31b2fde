//! Pruning a CTC recogniser's output head to the classes a reader needs.
//!
//! PP-OCR recognisers end in `MatMul(features, W[K, C]) + b[C]` followed by
//! a softmax over the C classes, at every time step. The PP-OCRv6 small
//! recogniser has C = 18,710 (Chinese, Japanese, Latin, symbols): about 2.2
//! million of its 5.3 million weights, read at every step. A plate uses
//! some forty of them. Slicing `W` and `b` to the kept columns gives the
//! same logits for those classes; the softmax then normalises over the kept
//! classes only, so the most probable kept class is unchanged and its
//! probability rises by the share the dropped classes held (tiny on a plate).
//!
//! The edit is made on the decoded protobuf and the result is handed to ONNX
//! Runtime from memory; the file on disk, whose SHA-256 the manifest pins,
//! is never changed.

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::onnx_proto::{tensor_proto, tensor_shape_proto, GraphProto, ModelProto, TensorProto};
use crate::tensor_data::set_floats;
use crate::InferError;

/// Decodes an ONNX model file's bytes.
pub fn decode(bytes: &[u8], model: &str) -> Result<ModelProto, InferError> {
    ModelProto::decode(bytes).map_err(|e| InferError::Prune {
        model: model.to_owned(),
        message: format!("not an ONNX model: {e}"),
    })
}

/// The model's metadata value for `key` (e.g. PP-OCR's `character`).
pub fn metadata<'m>(model: &'m ModelProto, key: &str) -> Option<&'m str> {
    model
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some(key))
        .and_then(|p| p.value.as_deref())
}

/// The number of classes of the output head found by [`prune_head`].
pub fn head_classes(model: &ModelProto, name: &str) -> Result<usize, InferError> {
    let graph = graph(model, name)?;
    let head = find_head(graph, model_opset(model), name)?;
    let weight = initializer(graph, &head.weight, name)?;
    Ok(weight.dims.get(1).map_or(0, |&c| c.max(0) as usize))
}

/// Cuts the output head of a CTC recogniser down to the classes `keep`
/// lists (strictly increasing indices below the head's class count), in
/// that order: output class `i` of the edited model is class `keep[i]` of
/// the original.
///
/// The head must be the single graph output, produced by
/// `MatMul(x, W) -> Add(b) -> Softmax(last axis)` with `W` and `b` float
/// initializers used nowhere else (`Identity` nodes between them are
/// allowed). Anything else is refused with the reason, and the model is left
/// as it was.
pub fn prune_head(model: &mut ModelProto, name: &str, keep: &[usize]) -> Result<(), InferError> {
    let err = |message: String| InferError::Prune {
        model: name.to_owned(),
        message,
    };
    let opset = model_opset(model);
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| err("the model has no graph".into()))?;
    let head = find_head(graph, opset, name)?;
    let weight = initializer(graph, &head.weight, name)?;
    let (k, c) = match weight.dims.as_slice() {
        [k, c] if *k > 0 && *c > 0 => (*k as usize, *c as usize),
        other => {
            return Err(err(format!(
                "head weight {} has shape {other:?}, not [K, C]",
                head.weight
            )))
        }
    };
    let bias = initializer(graph, &head.bias, name)?;
    if bias.dims.as_slice() != [c as i64] {
        return Err(err(format!(
            "head bias {} has shape {:?}, not [{c}]",
            head.bias, bias.dims
        )));
    }
    if keep.is_empty() {
        return Err(err("no classes to keep".into()));
    }
    if let Some(w) = keep.windows(2).find(|w| w[0] >= w[1]) {
        return Err(err(format!(
            "kept classes must be strictly increasing ({} then {})",
            w[0], w[1]
        )));
    }
    if let Some(&last) = keep.last().filter(|&&i| i >= c) {
        return Err(err(format!("class {last} is past the head's {c} classes")));
    }
    let w = floats(weight, k * c, name)?;
    let b = floats(bias, c, name)?;
    let n = keep.len();
    let mut w_kept = Vec::with_capacity(k * n);
    for row in w.chunks_exact(c) {
        w_kept.extend(keep.iter().map(|&j| row[j]));
    }
    let b_kept: Vec<f32> = keep.iter().map(|&j| b[j]).collect();

    for tensor in &mut graph.initializer {
        let name = tensor.name.as_deref().unwrap_or_default();
        if name == head.weight {
            set_floats(tensor, &[k as i64, n as i64], &w_kept);
        } else if name == head.bias {
            set_floats(tensor, &[n as i64], &b_kept);
        }
    }
    // The output's last dimension is now `n`; the inferred shapes of the
    // tensors between the MatMul and the output are stale, so drop them and
    // let ONNX Runtime infer them again.
    graph
        .value_info
        .retain(|v| !head.chain.contains(v.name.as_deref().unwrap_or_default()));
    if let Some(dim) = graph
        .output
        .first_mut()
        .and_then(|o| o.r#type.as_mut())
        .and_then(|t| match t.value.as_mut() {
            Some(crate::onnx_proto::type_proto::Value::TensorType(tt)) => tt.shape.as_mut(),
            _ => None,
        })
        .and_then(|s| s.dim.last_mut())
    {
        dim.value = Some(tensor_shape_proto::dimension::Value::DimValue(n as i64));
    }
    Ok(())
}

/// The tensors of the output head.
struct Head {
    weight: String,
    bias: String,
    /// Every tensor from the MatMul's output to the graph output.
    chain: HashSet<String>,
}

fn model_opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.as_deref().unwrap_or_default().is_empty())
        .and_then(|o| o.version)
        .unwrap_or(1)
}

fn graph<'m>(model: &'m ModelProto, name: &str) -> Result<&'m GraphProto, InferError> {
    model.graph.as_ref().ok_or_else(|| InferError::Prune {
        model: name.to_owned(),
        message: "the model has no graph".into(),
    })
}

fn find_head(graph: &GraphProto, opset: i64, name: &str) -> Result<Head, InferError> {
    let err = |message: String| InferError::Prune {
        model: name.to_owned(),
        message,
    };
    let [output] = graph.output.as_slice() else {
        return Err(err(format!(
            "the head must be the only output; the model has {}",
            graph.output.len()
        )));
    };
    let output_name = output.name.clone().unwrap_or_default();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in &node.output {
            producer.insert(out.as_str(), i);
        }
        for input in node.input.iter().filter(|s| !s.is_empty()) {
            *uses.entry(input.as_str()).or_default() += 1;
        }
    }
    let initializers: HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let mut chain = HashSet::new();
    // Walks back from `tensor` over Identity nodes; every tensor passed must
    // feed only the next node of the chain.
    let mut step_back = |tensor: &str, expect: &str| -> Result<usize, InferError> {
        let mut current = tensor.to_owned();
        loop {
            if current != output_name && uses.get(current.as_str()).copied().unwrap_or(0) != 1 {
                return Err(err(format!(
                    "tensor {current} of the head is used elsewhere"
                )));
            }
            chain.insert(current.clone());
            let &i = producer.get(current.as_str()).ok_or_else(|| {
                err(format!(
                    "tensor {current} has no producing node (looking for {expect})"
                ))
            })?;
            let node = &graph.node[i];
            let op = node.op_type.as_deref().unwrap_or_default();
            if op == expect {
                return Ok(i);
            }
            if op != "Identity" {
                return Err(err(format!(
                    "expected {expect} before {current}, found {op}"
                )));
            }
            current = node.input.first().cloned().unwrap_or_default();
        }
    };
    let softmax = &graph.node[step_back(&output_name, "Softmax")?];
    let rank = output
        .r#type
        .as_ref()
        .and_then(|t| match t.value.as_ref() {
            Some(crate::onnx_proto::type_proto::Value::TensorType(tt)) => tt.shape.as_ref(),
            _ => None,
        })
        .map(|s| s.dim.len() as i64);
    let axis = softmax
        .attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("axis"))
        .and_then(|a| a.i)
        .unwrap_or(if opset >= 13 { -1 } else { 1 });
    let last_axis = axis == -1 || rank.is_some_and(|r| axis == r - 1);
    if !last_axis {
        return Err(err(format!(
            "the softmax runs over axis {axis}, not the last axis of the class scores"
        )));
    }
    let softmax_in = softmax.input.first().cloned().unwrap_or_default();
    let add = &graph.node[step_back(&softmax_in, "Add")?];
    let (bias, add_in) = match add.input.as_slice() {
        [a, b] if initializers.contains(b.as_str()) => (b.clone(), a.clone()),
        [a, b] if initializers.contains(a.as_str()) => (a.clone(), b.clone()),
        _ => return Err(err("the head's Add has no constant bias".into())),
    };
    let matmul = &graph.node[step_back(&add_in, "MatMul")?];
    let weight = match matmul.input.as_slice() {
        [_, w] if initializers.contains(w.as_str()) => w.clone(),
        _ => return Err(err("the head's MatMul has no constant weight".into())),
    };
    for constant in [&weight, &bias] {
        if uses.get(constant.as_str()).copied().unwrap_or(0) != 1 {
            return Err(err(format!("head constant {constant} is used elsewhere")));
        }
    }
    Ok(Head {
        weight,
        bias,
        chain,
    })
}

fn initializer<'g>(
    graph: &'g GraphProto,
    tensor: &str,
    name: &str,
) -> Result<&'g TensorProto, InferError> {
    graph
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(tensor))
        .ok_or_else(|| InferError::Prune {
            model: name.to_owned(),
            message: format!("no initializer {tensor}"),
        })
}

/// A float tensor's `len` values, from `raw_data` (little-endian) or
/// `float_data`.
fn floats(tensor: &TensorProto, len: usize, name: &str) -> Result<Vec<f32>, InferError> {
    let err = |message: String| InferError::Prune {
        model: name.to_owned(),
        message: format!(
            "initializer {}: {message}",
            tensor.name.as_deref().unwrap_or_default()
        ),
    };
    if tensor.data_type != Some(tensor_proto::DataType::Float as i32) {
        return Err(err(format!(
            "data type {:?} is not float",
            tensor.data_type
        )));
    }
    if tensor.data_location == Some(tensor_proto::DataLocation::External as i32) {
        return Err(err("its data is stored outside the model file".into()));
    }
    let values: Vec<f32> = match (&tensor.raw_data, tensor.float_data.as_slice()) {
        (Some(raw), _) if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        (_, data) => data.to_vec(),
    };
    if values.len() == len {
        Ok(values)
    } else {
        Err(err(format!(
            "holds {} values, its shape says {len}",
            values.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::{
        attribute_proto, type_proto, AttributeProto, NodeProto, OperatorSetIdProto,
        StringStringEntryProto,
    };
    use crate::tensor_data::value_info;

    const K: usize = 4;
    const C: usize = 6;

    fn weight(k: usize, c: usize) -> f32 {
        (k * 10 + c) as f32
    }

    fn tensor(name: &str, dims: &[i64], values: &[f32], raw: bool) -> TensorProto {
        TensorProto {
            name: Some(name.into()),
            dims: dims.to_vec(),
            data_type: Some(tensor_proto::DataType::Float as i32),
            raw_data: raw.then(|| values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            float_data: if raw { Vec::new() } else { values.to_vec() },
            ..TensorProto::default()
        }
    }

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.into()],
            ..NodeProto::default()
        }
    }

    /// x[1, 2, K] -> MatMul W[K, C] -> Identity -> Add b[C] -> Softmax(axis 2).
    fn head_model(raw: bool) -> ModelProto {
        let w: Vec<f32> = (0..K)
            .flat_map(|k| (0..C).map(move |c| weight(k, c)))
            .collect();
        let b: Vec<f32> = (0..C).map(|c| -(c as f32)).collect();
        let mut softmax = node("Softmax", &["logits"], "y");
        softmax.attribute.push(AttributeProto {
            name: Some("axis".into()),
            i: Some(2),
            r#type: Some(attribute_proto::AttributeType::Int as i32),
            ..AttributeProto::default()
        });
        ModelProto {
            ir_version: Some(7),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(11),
            }],
            metadata_props: vec![StringStringEntryProto {
                key: Some("character".into()),
                value: Some("a\nb".into()),
            }],
            graph: Some(GraphProto {
                node: vec![
                    node("MatMul", &["x", "W"], "mm"),
                    node("Identity", &["mm"], "mm2"),
                    node("Add", &["mm2", "b"], "logits"),
                    softmax,
                ],
                initializer: vec![
                    tensor("W", &[K as i64, C as i64], &w, raw),
                    tensor("b", &[C as i64], &b, raw),
                ],
                input: vec![value_info("x", &[1, 2, K as i64])],
                output: vec![value_info("y", &[1, 2, C as i64])],
                value_info: vec![
                    value_info("mm", &[1, 2, C as i64]),
                    value_info("x_other", &[1]),
                ],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        }
    }

    fn init<'m>(model: &'m ModelProto, name: &str) -> &'m TensorProto {
        let graph = model.graph.as_ref().expect("graph");
        initializer(graph, name, "t").expect("initializer")
    }

    #[test]
    fn pruning_keeps_the_listed_columns_in_order() {
        for raw in [true, false] {
            let mut model = head_model(raw);
            assert_eq!(head_classes(&model, "t").expect("classes"), C);
            prune_head(&mut model, "t", &[0, 2, 5]).expect("pruned");
            let w = init(&model, "W");
            assert_eq!(w.dims, vec![K as i64, 3]);
            let values = floats(w, K * 3, "t").expect("floats");
            let expected: Vec<f32> = (0..K)
                .flat_map(|k| [0, 2, 5].map(|c| weight(k, c)))
                .collect();
            assert_eq!(values, expected);
            let b = init(&model, "b");
            assert_eq!(b.dims, vec![3]);
            assert_eq!(floats(b, 3, "t").expect("bias"), vec![0.0, -2.0, -5.0]);
            let graph = model.graph.as_ref().expect("graph");
            let out = &graph.output[0];
            let Some(type_proto::Value::TensorType(tt)) =
                out.r#type.as_ref().and_then(|t| t.value.as_ref())
            else {
                panic!("output type")
            };
            let last = tt
                .shape
                .as_ref()
                .and_then(|s| s.dim.last())
                .and_then(|d| d.value.clone());
            assert_eq!(
                last,
                Some(tensor_shape_proto::dimension::Value::DimValue(3))
            );
            // The stale shape of the MatMul's output is dropped, others kept.
            let names: Vec<_> = graph
                .value_info
                .iter()
                .filter_map(|v| v.name.clone())
                .collect();
            assert_eq!(names, vec!["x_other".to_owned()]);
            assert_eq!(head_classes(&model, "t").expect("classes"), 3);
        }
    }

    #[test]
    fn the_edited_model_survives_a_round_trip_through_bytes() {
        let mut model = head_model(true);
        prune_head(&mut model, "t", &[1, 3]).expect("pruned");
        let again = decode(&model.encode_to_vec(), "t").expect("decodes");
        assert_eq!(again, model);
        assert_eq!(metadata(&again, "character"), Some("a\nb"));
        assert_eq!(metadata(&again, "missing"), None);
    }

    #[test]
    fn bad_class_lists_are_refused_and_leave_the_model_alone() {
        for keep in [&[][..], &[2, 1], &[1, 1], &[0, C]] {
            let mut model = head_model(true);
            let before = model.clone();
            let err = prune_head(&mut model, "rec", keep).expect_err("refused");
            assert!(matches!(err, InferError::Prune { .. }), "{err}");
            assert!(
                err.to_string().starts_with("model rec: cannot prune"),
                "{err}"
            );
            assert_eq!(model, before, "{keep:?}");
        }
    }

    #[test]
    fn an_unfamiliar_head_is_refused_with_the_reason() {
        // No softmax at the end.
        let mut model = head_model(true);
        if let Some(g) = model.graph.as_mut() {
            g.node.pop();
            g.output[0].name = Some("logits".into());
        }
        let err = prune_head(&mut model, "rec", &[0, 1]).expect_err("refused");
        assert!(err.to_string().contains("expected Softmax"), "{err}");

        // A softmax over another axis.
        let mut model = head_model(true);
        if let Some(g) = model.graph.as_mut() {
            g.node[3].attribute[0].i = Some(1);
        }
        let err = prune_head(&mut model, "rec", &[0, 1]).expect_err("refused");
        assert!(err.to_string().contains("axis 1"), "{err}");

        // The weight feeds another node too.
        let mut model = head_model(true);
        if let Some(g) = model.graph.as_mut() {
            g.node.insert(0, node("Identity", &["W"], "w_copy"));
        }
        let err = prune_head(&mut model, "rec", &[0, 1]).expect_err("refused");
        assert!(err.to_string().contains("used elsewhere"), "{err}");

        // Garbage bytes.
        let err = decode(b"\xff\xff\xff not onnx", "rec").expect_err("refused");
        assert!(err.to_string().contains("not an ONNX model"), "{err}");
    }
}
