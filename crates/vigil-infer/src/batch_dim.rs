//! Giving a detector exported with a fixed batch size of 1 a dynamic batch
//! dimension, so one run can take a frame from every camera.
//!
//! Exporters often bake the batch size into the graph: the YOLOv8n file the
//! manifest pins declares `images` as `[1,3,640,640]`, and its head reshapes
//! with constant shapes such as `[1,64,-1]` and `[1,4,16,8400]`. Marking the
//! input and output batch dimension symbolic and writing `0` ("copy this
//! dimension from the input", ONNX `Reshape` without `allowzero`) in place
//! of those leading 1s gives a graph that computes, for each image of a
//! batch, exactly what the original computes for it alone.
//!
//! That holds only if no operator mixes images of a batch. The edit checks
//! every node against a list of operators that act on each image
//! separately when they do not touch axis 0 (convolutions, element-wise
//! arithmetic, pooling, and concatenation, splitting, slicing, softmax and
//! transposition along other axes), and refuses the model, naming the
//! node, when one does not fit. As with [`crate::ctc_head`], the edit is made
//! in memory: the pinned file on disk never changes.

use std::collections::HashMap;

use crate::onnx_proto::{
    attribute_proto, tensor_shape_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    TensorProto, ValueInfoProto,
};
use crate::tensor_data::{dims, dims_mut, fixed, floats, graph_inputs, int64s, set_int64s};
use crate::InferError;

/// The symbolic name given to the batch dimension.
const BATCH: &str = "batch";

/// Operators that compute each image of a batch on its own whatever their
/// attributes (element-wise, or per-image by definition).
const PER_IMAGE: &[&str] = &[
    "Conv",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Mul",
    "Add",
    "Sub",
    "Div",
    "Pow",
    "Sqrt",
    "Exp",
    "Log",
    "Neg",
    "Tanh",
    "Clip",
    "MaxPool",
    "AveragePool",
    "BatchNormalization",
    "Identity",
    "Cast",
    "Constant",
];

/// What [`make_batch_dynamic`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEdit {
    /// Whether the model already had a dynamic batch dimension (nothing was
    /// changed).
    pub already_dynamic: bool,
    /// Constant `Reshape` shapes whose leading 1 became 0.
    pub reshapes: usize,
}

/// Makes the batch dimension of `model`'s single input and of its outputs
/// symbolic, rewriting constant reshapes to follow it. A model that already
/// has a dynamic batch is left alone. A model the edit cannot prove
/// batch-safe is refused with the reason, and left as it was.
pub fn make_batch_dynamic(model: &mut ModelProto, name: &str) -> Result<BatchEdit, InferError> {
    let err = |message: String| InferError::Batch {
        model: name.to_owned(),
        message,
    };
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| err("the model has no graph".into()))?;
    let inputs = graph_inputs(graph);
    let [input] = inputs.as_slice() else {
        return Err(err(format!(
            "the edit needs exactly one image input; the model has {}",
            inputs.len()
        )));
    };
    let input_name = input.name.clone().unwrap_or_default();
    match leading_dim(input) {
        Some(Dim::Symbolic) => {
            return Ok(BatchEdit {
                already_dynamic: true,
                reshapes: 0,
            })
        }
        Some(Dim::Fixed(1)) => {}
        other => {
            return Err(err(format!(
                "input {input_name} must start with a batch dimension of 1, not {other:?}"
            )))
        }
    }
    for output in &graph.output {
        if leading_dim(output) != Some(Dim::Fixed(1)) {
            return Err(err(format!(
                "output {} does not start with a batch dimension of 1",
                output.name.as_deref().unwrap_or_default()
            )));
        }
    }

    let reshape_shapes = check_nodes(graph, &err)?;
    // Every check passed: now edit. Shapes shared by several reshapes are
    // rewritten once.
    let mut reshapes = 0;
    for shape in &reshape_shapes {
        let tensor = constant_mut(graph, shape)
            .ok_or_else(|| err(format!("reshape shape {shape} vanished during the edit")))?;
        let mut values = int64s(tensor).ok_or_else(|| err(format!("shape {shape}")))?;
        if values.first() == Some(&1) {
            values[0] = 0;
            set_int64s(tensor, &values);
            reshapes += 1;
        }
    }
    let symbolic = |v: &mut ValueInfoProto| {
        if let Some(dim) = first_dim_mut(v) {
            dim.value = Some(tensor_shape_proto::dimension::Value::DimParam(BATCH.into()));
        }
    };
    for v in graph
        .input
        .iter_mut()
        .filter(|i| i.name == Some(input_name.clone()))
    {
        symbolic(v);
    }
    graph.output.iter_mut().for_each(symbolic);
    // Inferred intermediate shapes still say batch 1; ONNX Runtime infers
    // them again.
    graph.value_info.clear();
    Ok(BatchEdit {
        already_dynamic: false,
        reshapes,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    Fixed(i64),
    Symbolic,
}

fn leading_dim(v: &ValueInfoProto) -> Option<Dim> {
    let first = dims(v)?.first()?;
    match fixed(first) {
        Some(d) => Some(Dim::Fixed(d)),
        None => first.value.as_ref().map(|_| Dim::Symbolic),
    }
}

fn first_dim_mut(v: &mut ValueInfoProto) -> Option<&mut tensor_shape_proto::Dimension> {
    dims_mut(v)?.first_mut()
}

/// Checks that every node keeps the images of a batch apart; returns the
/// names of the constant shapes of its reshapes.
fn check_nodes(
    graph: &GraphProto,
    err: &dyn Fn(String) -> InferError,
) -> Result<Vec<String>, InferError> {
    let constants: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.as_deref()?, t)))
        .chain(graph.node.iter().filter_map(|n| {
            if n.op_type.as_deref() != Some("Constant") {
                return None;
            }
            let t = n
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("value"))?;
            Some((n.output.first()?.as_str(), t.t.as_ref()?))
        }))
        .collect();
    let constant_ints = |node: &NodeProto, input: usize| -> Result<Option<Vec<i64>>, InferError> {
        let Some(tensor_name) = node.input.get(input).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        let tensor = constants.get(tensor_name.as_str()).ok_or_else(|| {
            err(format!(
                "{}: input {tensor_name} is computed, not constant",
                describe(node)
            ))
        })?;
        int64s(tensor).map(Some).ok_or_else(|| {
            err(format!(
                "{}: input {tensor_name} is not an int64 constant",
                describe(node)
            ))
        })
    };
    let floats_of = |node: &NodeProto, input: usize| -> Option<Vec<f32>> {
        let tensor = constants.get(node.input.get(input)?.as_str())?;
        floats(tensor)
    };
    let mut shapes = Vec::new();
    for node in &graph.node {
        let op = node.op_type.as_deref().unwrap_or_default();
        if !node.domain.as_deref().unwrap_or_default().is_empty() {
            return Err(err(format!("{}: custom operator domain", describe(node))));
        }
        let axis_ok = |axis: i64| axis != 0;
        let ok = match op {
            _ if PER_IMAGE.contains(&op) => true,
            "Concat" | "Split" | "Softmax" | "LogSoftmax" => {
                // Softmax's default axis is -1 (opset 13 on) or 1; Split's
                // is 0, and Concat must name one.
                let default = if op.ends_with("Softmax") { -1 } else { 0 };
                axis_ok(int_attr(node, "axis").unwrap_or(default))
            }
            "Transpose" => ints_attr(node, "perm").is_some_and(|p| p.first() == Some(&0)),
            "Slice" => match constant_ints(node, 3)? {
                Some(axes) => axes.iter().all(|&a| axis_ok(a)),
                // Without axes a slice covers every axis from 0: batch-safe
                // only if it leaves axis 0 whole, which a constant cannot
                // promise for a batch it has not seen.
                None => false,
            },
            "Resize" | "Upsample" => {
                let scales_input = if op == "Resize" { 2 } else { 1 };
                let sizes = node.input.get(3).is_some_and(|s| !s.is_empty());
                !sizes
                    && floats_of(node, scales_input)
                        .is_some_and(|s| s.first().is_some_and(|&f| f == 1.0))
            }
            "Reshape" => {
                let Some(shape) = constant_ints(node, 1)? else {
                    return Err(err(format!("{}: no shape input", describe(node))));
                };
                let allowzero = int_attr(node, "allowzero").unwrap_or(0) != 0;
                // A leading 1 becomes "copy the batch"; a leading 0 already
                // is. Anything else would fold images together.
                let ok = !allowzero && matches!(shape.first(), Some(1) | Some(0));
                if ok {
                    if let Some(n) = node.input.get(1) {
                        if !shapes.contains(n) {
                            shapes.push(n.clone());
                        }
                    }
                }
                ok
            }
            _ => false,
        };
        if !ok {
            return Err(err(format!(
                "{} may mix the images of a batch",
                describe(node)
            )));
        }
    }
    // A reshape's shape constant used elsewhere would change meaning there.
    for shape in &shapes {
        let users = graph
            .node
            .iter()
            .filter(|n| n.input.iter().any(|i| i == shape))
            .filter(|n| n.op_type.as_deref() != Some("Reshape"));
        if let Some(user) = users.into_iter().next() {
            return Err(err(format!(
                "reshape shape {shape} is also used by {}",
                describe(user)
            )));
        }
    }
    Ok(shapes)
}

fn describe(node: &NodeProto) -> String {
    format!(
        "node {} ({})",
        node.name.as_deref().unwrap_or("<unnamed>"),
        node.op_type.as_deref().unwrap_or_default()
    )
}

fn int_attr(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name)?.i
}

fn ints_attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n [i64]> {
    Some(attr(node, name)?.ints.as_slice())
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

/// The initializer or `Constant` node output called `name`.
fn constant_mut<'g>(graph: &'g mut GraphProto, name: &str) -> Option<&'g mut TensorProto> {
    if let Some(i) = graph
        .initializer
        .iter()
        .position(|t| t.name.as_deref() == Some(name))
    {
        return graph.initializer.get_mut(i);
    }
    graph
        .node
        .iter_mut()
        .find(|n| {
            n.op_type.as_deref() == Some("Constant")
                && n.output.first().map(String::as_str) == Some(name)
        })?
        .attribute
        .iter_mut()
        .find(|a| {
            a.name.as_deref() == Some("value")
                && a.r#type == Some(attribute_proto::AttributeType::Tensor as i32)
        })?
        .t
        .as_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::tensor_proto;
    use crate::tensor_data::value_info;

    fn ints(name: &str, values: &[i64]) -> TensorProto {
        let mut t = TensorProto {
            name: Some(name.into()),
            dims: vec![values.len() as i64],
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            ..Default::default()
        };
        set_int64s(&mut t, values);
        t
    }

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("/{op}")),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    /// `x[1,2,3] -> Sigmoid -> Reshape([1,6]) -> y[1,6]`.
    fn model(shape: &[i64]) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                node: vec![
                    node("Sigmoid", &["x"], "s"),
                    node("Reshape", &["s", "shape"], "y"),
                ],
                initializer: vec![ints("shape", shape)],
                input: vec![value_info("x", &[1, 2, 3])],
                output: vec![value_info("y", &[1, 6])],
                value_info: vec![value_info("s", &[1, 2, 3])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn dims(v: &ValueInfoProto) -> Option<Dim> {
        leading_dim(v)
    }

    #[test]
    fn leading_ones_become_batch_copies_and_the_batch_symbolic() {
        let mut m = model(&[1, 6]);
        let edit = make_batch_dynamic(&mut m, "toy").expect("editable");
        assert_eq!(
            edit,
            BatchEdit {
                already_dynamic: false,
                reshapes: 1
            }
        );
        let g = m.graph.as_ref().expect("graph");
        assert_eq!(int64s(&g.initializer[0]), Some(vec![0, 6]));
        assert_eq!(dims(&g.input[0]), Some(Dim::Symbolic));
        assert_eq!(dims(&g.output[0]), Some(Dim::Symbolic));
        assert!(g.value_info.is_empty(), "stale batch-1 shapes dropped");
        // Editing again finds the batch already dynamic and changes nothing.
        let again = make_batch_dynamic(&mut m, "toy").expect("editable");
        assert!(again.already_dynamic);
    }

    #[test]
    fn graphs_that_could_mix_images_are_refused_untouched() {
        // A reshape that folds the batch into another axis.
        let mut folding = model(&[2, 3]);
        let before = folding.clone();
        let e = make_batch_dynamic(&mut folding, "toy").expect_err("refused");
        assert!(e.to_string().contains("/Reshape"), "{e}");
        assert_eq!(folding, before);

        // An operator outside the list (a reduction over every axis).
        let mut reducing = model(&[1, 6]);
        if let Some(g) = reducing.graph.as_mut() {
            g.node[0].op_type = Some("ReduceMean".into());
        }
        let e = make_batch_dynamic(&mut reducing, "toy").expect_err("refused");
        assert!(e.to_string().contains("ReduceMean"), "{e}");

        // Concatenating along the batch axis.
        let mut concat = model(&[1, 6]);
        if let Some(g) = concat.graph.as_mut() {
            g.node[0] = node("Concat", &["x", "x"], "s");
            g.node[0].attribute.push(AttributeProto {
                name: Some("axis".into()),
                i: Some(0),
                r#type: Some(attribute_proto::AttributeType::Int as i32),
                ..Default::default()
            });
        }
        assert!(make_batch_dynamic(&mut concat, "toy").is_err());

        // A shape computed at run time cannot be checked.
        let mut computed = model(&[1, 6]);
        if let Some(g) = computed.graph.as_mut() {
            g.initializer.clear();
            g.node[1].input[1] = "s".into();
        }
        let e = make_batch_dynamic(&mut computed, "toy").expect_err("refused");
        assert!(e.to_string().contains("not constant"), "{e}");
    }

    #[test]
    fn a_batch_other_than_one_is_refused() {
        let mut m = model(&[1, 6]);
        if let Some(g) = m.graph.as_mut() {
            g.input[0] = value_info("x", &[4, 2, 3]);
        }
        let e = make_batch_dynamic(&mut m, "toy").expect_err("refused");
        assert!(e.to_string().contains("batch dimension of 1"), "{e}");
    }
}
