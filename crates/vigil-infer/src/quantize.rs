//! Static INT8 quantisation of a recogniser's convolutions, in memory.
//!
//! ONNX Runtime runs a `DequantizeLinear -> Conv -> QuantizeLinear` group
//! as one integer convolution (`QLinearConv`, VNNI where the CPU has it),
//! about twice as fast as the float one. This module writes those groups
//! into a float model, the way `onnxruntime.quantization.quantize_static`
//! does in QDQ format, but at load time and with Vigil's own calibration:
//!
//! 1. [`fold`]: drop `Identity` nodes, and fold a constant per-channel `Add`
//!    (Paddle exports a convolution's bias that way) and an inference
//!    `BatchNormalization` into the convolution before them;
//! 2. [`Calibrator`]: run the folded float model on real line images and
//!    record, for every convolution input and output, the mean over the
//!    images of each image's minimum and maximum (a mean, not the extreme,
//!    so one odd crop does not stretch a range and cost every other crop
//!    its resolution). The table is saved as TOML with the model's SHA-256;
//! 3. [`fuse_gelu`]: the exported `x * 0.5 * (1 + erf(x / sqrt 2))` becomes
//!    one `com.microsoft` Gelu node (ONNX Runtime's own fusion does not
//!    fire once the convolution before it is quantised);
//! 4. [`quantize`]: weights to int8 per output channel (symmetric, scaled
//!    so that no x86 kernel saturates, see `weight_scale`), biases to int32
//!    at the input scale times the weight scale, activations to uint8 with
//!    the calibrated range (always holding 0), as `com.microsoft`
//!    QuantizeLinear/DequantizeLinear pairs, which take a per-channel
//!    `axis` at any opset, so the model's opset 11 stays. Around the
//!    convolutions, so that the tensors between them stay uint8: a Relu
//!    after a convolution is folded into its output range (zero point 0);
//!    a tensor quantised for a convolution is read quantised by its other
//!    readers too (residual Adds become `QLinearAdd`); the squeeze-and-
//!    excitation mean becomes `GlobalAveragePool` and its `HardSigmoid`
//!    gate is quantised to [0, 1] (`QLinearGlobalAveragePool`,
//!    `QLinearMul`); Gelu runs as `FastGelu`. The first convolution (on the
//!    image itself) stays float.
//!
//! Everything else (attention, layer norms, the head) stays float.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use prost::Message;

use crate::model::OnnxModel;
use crate::onnx_proto::{
    attribute_proto, tensor_proto, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto,
};
use crate::plate_reader::PlateLayout;
use crate::runtime::{Runtime, SessionOptions};
use crate::InferError;

const MS_DOMAIN: &str = "com.microsoft";

/// Calibrated value ranges of a model's convolution inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// SHA-256 of the model file the ranges were measured on.
    pub model_sha256: String,
    /// How the ranges were measured (data set, crops, layouts).
    pub source: String,
    /// Tensor name (after [`fold`]) -> `[low, high]`.
    pub ranges: BTreeMap<String, [f32; 2]>,
}

impl Calibration {
    pub fn from_toml(text: &str, model: &str) -> Result<Self, InferError> {
        toml::from_str(text).map_err(|e| InferError::Quantize {
            model: model.to_owned(),
            message: format!("bad calibration table: {e}"),
        })
    }

    pub fn to_toml(&self) -> Result<String, InferError> {
        toml::to_string(self).map_err(|e| InferError::Quantize {
            model: String::new(),
            message: format!("cannot write the calibration table: {e}"),
        })
    }
}

fn err(model: &str, message: impl Into<String>) -> InferError {
    InferError::Quantize {
        model: model.to_owned(),
        message: message.into(),
    }
}

fn graph_mut<'m>(model: &'m mut ModelProto, name: &str) -> Result<&'m mut GraphProto, InferError> {
    model
        .graph
        .as_mut()
        .ok_or_else(|| err(name, "the model has no graph"))
}

fn op(node: &NodeProto) -> &str {
    node.op_type.as_deref().unwrap_or_default()
}

fn tensor_name(t: &TensorProto) -> &str {
    t.name.as_deref().unwrap_or_default()
}

/// A float initializer's values and dims.
fn float_init(graph: &GraphProto, name: &str) -> Option<(Vec<i64>, Vec<f32>)> {
    let t = graph.initializer.iter().find(|t| tensor_name(t) == name)?;
    if t.data_type != Some(tensor_proto::DataType::Float as i32)
        || t.data_location == Some(tensor_proto::DataLocation::External as i32)
    {
        return None;
    }
    let values: Vec<f32> = match &t.raw_data {
        Some(raw) if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        _ => t.float_data.clone(),
    };
    let len: i64 = t.dims.iter().product();
    (usize::try_from(len).ok() == Some(values.len())).then(|| (t.dims.clone(), values))
}

fn raw_tensor(
    name: &str,
    dims: &[i64],
    data_type: tensor_proto::DataType,
    raw: Vec<u8>,
) -> TensorProto {
    TensorProto {
        name: Some(name.to_owned()),
        dims: dims.to_vec(),
        data_type: Some(data_type as i32),
        raw_data: Some(raw),
        ..TensorProto::default()
    }
}

fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    raw_tensor(
        name,
        dims,
        tensor_proto::DataType::Float,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

fn node(op_type: &str, domain: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.to_owned()),
        domain: (!domain.is_empty()).then(|| domain.to_owned()),
        name: Some(format!("{output}_{op_type}")),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        ..NodeProto::default()
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        i: Some(value),
        r#type: Some(attribute_proto::AttributeType::Int as i32),
        ..AttributeProto::default()
    }
}

/// Convolutions whose weight is a float initializer: the ones quantised.
fn quantisable_convs(graph: &GraphProto) -> Vec<usize> {
    let inits: HashSet<&str> = graph.initializer.iter().map(tensor_name).collect();
    graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            op(n) == "Conv"
                && n.domain.as_deref().unwrap_or_default().is_empty()
                && n.input.get(1).is_some_and(|w| inits.contains(w.as_str()))
                && n.output.len() == 1
        })
        .map(|(i, _)| i)
        .collect()
}

/// Drops `Identity` nodes and folds constant per-channel `Add`s and
/// `BatchNormalization`s into the convolutions before them. The model
/// computes the same function; tensor names after this are what a
/// [`Calibration`] refers to.
pub fn fold(model: &mut ModelProto, name: &str) -> Result<(), InferError> {
    let graph = graph_mut(model, name)?;
    let outputs: HashSet<String> = graph.output.iter().filter_map(|o| o.name.clone()).collect();

    // Identity nodes: readers of the output read the input instead.
    let mut alias: HashMap<String, String> = HashMap::new();
    graph.node.retain(|n| {
        let drop = op(n) == "Identity"
            && n.input.len() == 1
            && n.output.len() == 1
            && !outputs.contains(&n.output[0]);
        if drop {
            alias.insert(n.output[0].clone(), n.input[0].clone());
        }
        !drop
    });
    let resolve = |mut t: String| {
        let mut hops = 0;
        while let Some(next) = alias.get(&t) {
            t = next.clone();
            hops += 1;
            if hops > alias.len() {
                break;
            }
        }
        t
    };
    for n in &mut graph.node {
        for input in &mut n.input {
            if alias.contains_key(input) {
                *input = resolve(std::mem::take(input));
            }
        }
    }

    // Conv -> Add(constant [1, C, 1, 1]) and Conv -> BatchNormalization.
    let mut removed = HashSet::new();
    for ci in quantisable_convs(graph) {
        let conv_out = graph.node[ci].output[0].clone();
        if outputs.contains(&conv_out) {
            continue;
        }
        let readers: Vec<usize> = graph
            .node
            .iter()
            .enumerate()
            .filter(|(_, n)| n.input.contains(&conv_out))
            .map(|(i, _)| i)
            .collect();
        let [ri] = readers.as_slice() else { continue };
        let reader = &graph.node[*ri];
        let Some((w_dims, mut w)) = float_init(graph, &graph.node[ci].input[1]) else {
            continue;
        };
        let channels = w_dims.first().copied().unwrap_or(0).max(0) as usize;
        if channels == 0 || w.len() % channels != 0 {
            continue;
        }
        let mut bias = match graph.node[ci].input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => match float_init(graph, b) {
                Some((_, v)) if v.len() == channels => v,
                _ => continue,
            },
            None => vec![0.0; channels],
        };
        match op(reader) {
            "Add" if reader.input.len() == 2 => {
                let other = if reader.input[0] == conv_out {
                    &reader.input[1]
                } else {
                    &reader.input[0]
                };
                let Some((dims, c)) = float_init(graph, other) else {
                    continue;
                };
                // Per channel: [C, 1, 1] or [1, C, 1, 1], never a [C] that
                // would broadcast along the width.
                let per_channel =
                    matches!(dims.as_slice(), [1, c, 1, 1] | [c, 1, 1] if *c as usize == channels);
                if !per_channel || other == &conv_out {
                    continue;
                }
                for (b, add) in bias.iter_mut().zip(&c) {
                    *b += add;
                }
            }
            "BatchNormalization" if reader.input.len() == 5 && reader.output.len() == 1 => {
                if reader.input[0] != conv_out {
                    continue;
                }
                let params: Option<Vec<Vec<f32>>> = reader.input[1..5]
                    .iter()
                    .map(|p| {
                        float_init(graph, p)
                            .map(|(_, v)| v)
                            .filter(|v| v.len() == channels)
                    })
                    .collect();
                let Some(params) = params else { continue };
                let eps = reader
                    .attribute
                    .iter()
                    .find(|a| a.name.as_deref() == Some("epsilon"))
                    .and_then(|a| a.f)
                    .unwrap_or(1e-5);
                let per = w.len() / channels;
                for c in 0..channels {
                    let k = params[0][c] / (params[3][c] + eps).sqrt();
                    for v in &mut w[c * per..(c + 1) * per] {
                        *v *= k;
                    }
                    bias[c] = (bias[c] - params[2][c]) * k + params[1][c];
                }
            }
            _ => continue,
        }
        let new_out = reader.output[0].clone();
        let weight_name = format!("{new_out}_folded_w");
        let bias_name = format!("{new_out}_folded_b");
        graph
            .initializer
            .push(f32_tensor(&weight_name, &w_dims, &w));
        graph
            .initializer
            .push(f32_tensor(&bias_name, &[channels as i64], &bias));
        let conv = &mut graph.node[ci];
        conv.input.truncate(2);
        conv.input[1] = weight_name;
        conv.input.push(bias_name);
        conv.output[0] = new_out;
        removed.insert(*ri);
    }
    let mut index = 0;
    graph.node.retain(|_| {
        index += 1;
        !removed.contains(&(index - 1))
    });
    remove_unused_initializers(graph);
    graph.value_info.clear();
    Ok(())
}

fn remove_unused_initializers(graph: &mut GraphProto) {
    let used: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .chain(graph.output.iter().filter_map(|o| o.name.clone()))
        .collect();
    graph.initializer.retain(|t| used.contains(tensor_name(t)));
}

/// The tensors a [`Calibration`] must cover: every quantisable
/// convolution's input and output, in graph order, each once.
pub fn activations(model: &ModelProto) -> Vec<String> {
    let Some(graph) = model.graph.as_ref() else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for ci in quantisable_convs(graph) {
        let n = &graph.node[ci];
        for t in [&n.input[0], &n.output[0]] {
            if seen.insert(t.clone()) {
                out.push(t.clone());
            }
        }
    }
    out
}

/// Adds `tensors` as extra float graph outputs (after the existing ones),
/// so a calibration run can read them.
pub fn expose(model: &mut ModelProto, tensors: &[String], name: &str) -> Result<(), InferError> {
    let graph = graph_mut(model, name)?;
    let present: HashSet<String> = graph
        .output
        .iter()
        .chain(&graph.input)
        .filter_map(|o| o.name.clone())
        .collect();
    for t in tensors.iter().filter(|t| !present.contains(*t)) {
        graph.output.push(ValueInfoProto {
            name: Some(t.clone()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(tensor_proto::DataType::Float as i32),
                    shape: None,
                })),
                ..TypeProto::default()
            }),
            ..ValueInfoProto::default()
        });
    }
    Ok(())
}

/// Accumulates per-image minima and maxima of the calibrated tensors.
#[derive(Debug, Default)]
pub struct RangeCollector {
    sums: BTreeMap<String, (f64, f64, usize)>,
}

impl RangeCollector {
    /// One image's values of one tensor.
    pub fn add(&mut self, tensor: &str, values: &[f32]) {
        let (lo, hi) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if lo > hi {
            return;
        }
        let e = self.sums.entry(tensor.to_owned()).or_insert((0.0, 0.0, 0));
        e.0 += f64::from(lo);
        e.1 += f64::from(hi);
        e.2 += 1;
    }

    /// The mean minimum and maximum of each tensor.
    pub fn ranges(&self) -> BTreeMap<String, [f32; 2]> {
        self.sums
            .iter()
            .map(|(t, &(lo, hi, n))| {
                let n = n.max(1) as f64;
                (t.clone(), [(lo / n) as f32, (hi / n) as f32])
            })
            .collect()
    }
}

/// A float model, [`fold`]ed as [`to_int8`] folds it, with every tensor
/// [`quantize`] needs a range for exposed as an output, and the ranges
/// measured on its runs so far.
pub struct Calibrator {
    model: OnnxModel,
    /// Output index -> calibrated tensor.
    tensors: Vec<(usize, String)>,
    /// Whether the model's input is itself a calibrated tensor.
    input_calibrated: bool,
    ranges: RangeCollector,
    runs: usize,
}

impl Calibrator {
    /// Folds the float `proto` (read from `path`), exposes its calibrated
    /// tensors and opens it.
    pub fn open(
        runtime: &Runtime,
        name: &str,
        path: &std::path::Path,
        mut proto: ModelProto,
        options: SessionOptions,
    ) -> Result<Self, InferError> {
        fold(&mut proto, name)?;
        let wanted = activations(&proto);
        expose(&mut proto, &wanted, name)?;
        let model = OnnxModel::from_memory(runtime, name, path, &proto.encode_to_vec(), options)?;
        drop(proto);
        let input_calibrated = wanted.contains(&model.input_name);
        let tensors: Vec<(usize, String)> = model
            .output_names()
            .into_iter()
            .enumerate()
            .filter(|(_, n)| wanted.contains(n))
            .collect();
        if tensors.len() + usize::from(input_calibrated) != wanted.len() {
            return Err(err(
                name,
                format!(
                    "{} of {} tensors to calibrate are outputs of the session",
                    tensors.len(),
                    wanted.len()
                ),
            ));
        }
        Ok(Self {
            model,
            tensors,
            input_calibrated,
            ranges: RangeCollector::default(),
            runs: 0,
        })
    }

    /// Runs one input and records its ranges.
    pub fn add(&mut self, shape: &[usize], input: &[f32]) -> Result<(), InferError> {
        if self.input_calibrated {
            self.ranges.add(&self.model.input_name, input);
        }
        let tensors = &self.tensors;
        let ranges = &mut self.ranges;
        self.model.run_f32(shape, input, |outputs| {
            for (i, name) in tensors {
                if let Some((_, data)) = outputs.get(*i) {
                    ranges.add(name, data);
                }
            }
            Ok(())
        })?;
        self.runs += 1;
        Ok(())
    }

    /// How many inputs were measured.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// The calibration table, for the model file with this SHA-256.
    pub fn finish(&self, model_sha256: &str, source: &str) -> Calibration {
        Calibration {
            model_sha256: model_sha256.to_owned(),
            source: source.to_owned(),
            ranges: self.ranges.ranges(),
        }
    }
}

/// The whole INT8 edit of a float model, in order: [`fold`], [`fuse_gelu`],
/// then [`quantize`] with `calibration`.
pub fn to_int8(
    model: &mut ModelProto,
    calibration: &Calibration,
    name: &str,
) -> Result<(), InferError> {
    fold(model, name)?;
    fuse_gelu(model);
    quantize(model, calibration, name)
}

/// uint8 scale and zero point of a range (widened to hold 0).
fn activation_params(range: [f32; 2]) -> (f32, u8) {
    let (lo, hi) = (range[0].min(0.0), range[1].max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zero)
}

/// Quantises the convolutions of a [`fold`]ed model with the calibrated
/// ranges, and the cheap operations around them so that the tensors
/// between convolutions stay uint8 (see the module comment). Every tensor
/// of [`activations`] must have a range; a missing one is an error and the
/// model is left as it was.
pub fn quantize(
    model: &mut ModelProto,
    calibration: &Calibration,
    name: &str,
) -> Result<(), InferError> {
    let needed = activations(model);
    if let Some(missing) = needed.iter().find(|t| !calibration.ranges.contains_key(*t)) {
        return Err(err(
            name,
            format!(
                "the calibration table has no range for {missing} ({} of {} tensors covered); it was made for another model or another version of this one",
                needed.iter().filter(|t| calibration.ranges.contains_key(*t)).count(),
                needed.len()
            ),
        ));
    }
    let graph = graph_mut(model, name)?;
    let graph_inputs: HashSet<&str> = graph
        .input
        .iter()
        .filter_map(|i| i.name.as_deref())
        .collect();
    // A convolution of the graph's input (the image: three channels, little
    // work, and the layer most sensitive to rounding) stays float.
    let convs: HashSet<usize> = quantisable_convs(graph)
        .into_iter()
        .filter(|&i| !graph_inputs.contains(graph.node[i].input[0].as_str()))
        .collect();
    let graph_outputs: HashSet<String> =
        graph.output.iter().filter_map(|o| o.name.clone()).collect();
    let readers = reader_map(graph);
    // Conv -> Relu: the Relu is dropped and the convolution's output is
    // quantised from zero (zero point 0), which clamps as the Relu did.
    // Conv index -> (Relu index, Relu output).
    let relu_after: HashMap<usize, (usize, String)> = convs
        .iter()
        .filter_map(|&ci| {
            let y = &graph.node[ci].output[0];
            let [ri] = readers.get(y)?.as_slice() else {
                return None;
            };
            let r = &graph.node[*ri];
            (op(r) == "Relu"
                && is_onnx_domain(r)
                && r.output.len() == 1
                && !graph_outputs.contains(y)
                && !graph_outputs.contains(&r.output[0]))
            .then(|| (ci, (*ri, r.output[0].clone())))
        })
        .collect();
    let folded_relus: HashSet<usize> = relu_after.values().map(|(ri, _)| *ri).collect();

    let mut q = Qdq::default();
    let old_nodes = std::mem::take(&mut graph.node);
    let mut nodes = Vec::with_capacity(old_nodes.len() * 2);
    for (i, mut n) in old_nodes.into_iter().enumerate() {
        if folded_relus.contains(&i) {
            continue;
        }
        if op(&n) == "HardSigmoid"
            && is_onnx_domain(&n)
            && n.output.len() == 1
            && !graph_outputs.contains(&n.output[0])
        {
            // Always in [0, 1]: quantised without calibration, so the Mul
            // that scales the channels by it runs on uint8.
            let y = n.output[0].clone();
            let y_float = format!("{y}_float");
            n.output[0] = y_float.clone();
            nodes.push(n);
            q.set_params(graph, &y, [0.0, 1.0]);
            q.push_qdq(&mut nodes, &y_float, &y);
            continue;
        }
        if op(&n) == "ReduceMean" && is_spatial_mean(&n) {
            // The same mean, as the operation ONNX Runtime runs on uint8.
            n.op_type = Some("GlobalAveragePool".into());
            n.attribute.clear();
            nodes.push(n);
            continue;
        }
        if op(&n) == "Gelu" && n.domain.as_deref() == Some(MS_DOMAIN) {
            // Between int8 convolutions the tanh form is exact enough (within
            // 5e-4 of the erf form; the int8 steps around it are ~0.03) and
            // about 40% cheaper.
            n.op_type = Some("FastGelu".into());
            nodes.push(n);
            continue;
        }
        if !convs.contains(&i) {
            nodes.push(n);
            continue;
        }
        let x = n.input[0].clone();
        let (sx, _) = q.params(graph, &x, calibration);
        n.input[0] = q.dequantised(&mut nodes, &x);

        let Some((w_dims, w)) = float_init(graph, &n.input[1]) else {
            return Err(err(
                name,
                format!("conv weight {} is not float", n.input[1]),
            ));
        };
        let channels = w_dims.first().copied().unwrap_or(0).max(0) as usize;
        if channels == 0 || w.len() % channels != 0 {
            return Err(err(
                name,
                format!("conv weight {} has shape {w_dims:?}", n.input[1]),
            ));
        }
        let kind = weight_kind(&n, &w_dims);
        let per = w.len() / channels;
        let scales: Vec<f32> = w.chunks_exact(per).map(|c| weight_scale(c, kind)).collect();
        let wq: Vec<u8> = w
            .chunks_exact(per)
            .zip(&scales)
            .flat_map(|(c, s)| {
                c.iter()
                    .map(move |v| (v / s).round().clamp(-127.0, 127.0) as i8 as u8)
            })
            .collect();
        let wn = format!("{}_int8", n.input[1]);
        graph
            .initializer
            .push(raw_tensor(&wn, &w_dims, tensor_proto::DataType::Int8, wq));
        graph.initializer.push(f32_tensor(
            &format!("{wn}_scale"),
            &[channels as i64],
            &scales,
        ));
        graph.initializer.push(raw_tensor(
            &format!("{wn}_zero"),
            &[channels as i64],
            tensor_proto::DataType::Int8,
            vec![0; channels],
        ));
        let mut dq = node(
            "DequantizeLinear",
            MS_DOMAIN,
            &[&wn, &format!("{wn}_scale"), &format!("{wn}_zero")],
            &format!("{wn}_dq"),
        );
        dq.attribute.push(int_attribute("axis", 0));
        n.input[1] = format!("{wn}_dq");
        nodes.push(dq);

        if let Some(b_name) = n.input.get(2).filter(|b| !b.is_empty()).cloned() {
            let Some((_, b)) = float_init(graph, &b_name).filter(|(_, b)| b.len() == channels)
            else {
                return Err(err(
                    name,
                    format!("conv bias {b_name} is not a float [{channels}]"),
                ));
            };
            let bs: Vec<f32> = scales.iter().map(|s| s * sx).collect();
            let bq: Vec<u8> = b
                .iter()
                .zip(&bs)
                .flat_map(|(v, s)| {
                    ((f64::from(*v) / f64::from(*s))
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i32)
                        .to_le_bytes()
                })
                .collect();
            let bn = format!("{b_name}_int32");
            graph.initializer.push(raw_tensor(
                &bn,
                &[channels as i64],
                tensor_proto::DataType::Int32,
                bq,
            ));
            graph
                .initializer
                .push(f32_tensor(&format!("{bn}_scale"), &[channels as i64], &bs));
            graph.initializer.push(raw_tensor(
                &format!("{bn}_zero"),
                &[channels as i64],
                tensor_proto::DataType::Int32,
                vec![0; 4 * channels],
            ));
            let mut dq = node(
                "DequantizeLinear",
                MS_DOMAIN,
                &[&bn, &format!("{bn}_scale"), &format!("{bn}_zero")],
                &format!("{bn}_dq"),
            );
            dq.attribute.push(int_attribute("axis", 0));
            n.input[2] = format!("{bn}_dq");
            nodes.push(dq);
        }

        // The output: Conv -> y_float -> Q -> DQ -> y, so every reader of y
        // (float or the next convolution) gets the dequantised value. A
        // folded Relu's output takes y's place, quantised from 0.
        let y = n.output[0].clone();
        let y = match relu_after.get(&i) {
            Some((_, r)) => {
                let hi = calibration.ranges.get(r).unwrap_or(&calibration.ranges[&y])[1];
                q.set_params(graph, r, [0.0, hi]);
                r.clone()
            }
            None => {
                q.params(graph, &y, calibration);
                y
            }
        };
        let y_float = format!("{y}_float");
        n.output[0] = y_float.clone();
        nodes.push(n);
        q.push_qdq(&mut nodes, &y_float, &y);
    }
    // Float readers of a quantised tensor read its dequantised copy, so
    // ONNX Runtime can run them on uint8 too (a residual Add of a tensor
    // quantised for a convolution becomes a QLinearAdd).
    for n in &mut nodes {
        if op(n) == "QuantizeLinear" {
            continue;
        }
        for input in &mut n.input {
            if let Some(dq) = q.dequantised.get(input.as_str()) {
                if dq != input {
                    *input = dq.clone();
                }
            }
        }
    }
    graph.node = topological(nodes);
    remove_unused_initializers(graph);
    add_ms_opset(model);
    Ok(())
}

fn is_onnx_domain(n: &NodeProto) -> bool {
    n.domain.as_deref().unwrap_or_default().is_empty()
}

/// Tensor -> the nodes that read it.
fn reader_map(graph: &GraphProto) -> HashMap<String, Vec<usize>> {
    let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in &n.input {
            readers.entry(input.clone()).or_default().push(i);
        }
    }
    readers
}

/// A `ReduceMean` over the two spatial axes of an NCHW tensor, kept: what
/// `GlobalAveragePool` computes.
fn is_spatial_mean(n: &NodeProto) -> bool {
    let attr = |name: &str| n.attribute.iter().find(|a| a.name.as_deref() == Some(name));
    let axes = attr("axes").map(|a| a.ints.as_slice());
    let keep = attr("keepdims").and_then(|a| a.i).unwrap_or(1);
    is_onnx_domain(n)
        && n.input.len() == 1
        && n.output.len() == 1
        && keep == 1
        && matches!(axes, Some([2, 3] | [-2, -1]))
}

/// How a convolution's int8 weights meet its input in ONNX Runtime's x86
/// kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeightKind {
    /// One weight per input value, accumulated in int32: no pairs.
    Depthwise,
    /// 1x1: the weights of input channels 2i and 2i+1 form a pair.
    Pointwise,
    /// Any other: which two weights pair depends on the kernel's layout.
    Spatial,
}

fn weight_kind(conv: &NodeProto, w_dims: &[i64]) -> WeightKind {
    let group = conv
        .attribute
        .iter()
        .find(|a| a.name.as_deref() == Some("group"))
        .and_then(|a| a.i)
        .unwrap_or(1);
    if group > 1 && w_dims.get(1) == Some(&1) && w_dims.first() == Some(&group) {
        WeightKind::Depthwise
    } else if w_dims.len() == 4 && w_dims[2] == 1 && w_dims[3] == 1 {
        WeightKind::Pointwise
    } else {
        WeightKind::Spatial
    }
}

/// The int8 scale of one output channel's weights.
///
/// Without VNNI, ONNX Runtime's x86 kernels (AVX2, AVX-512BW) multiply
/// uint8 inputs by int8 weights with `vpmaddubsw`, which adds the products
/// of a pair of input channels in int16 and saturates above 32767: with
/// the plain max|w| / 127 scale, 255 x (|w1| + |w2|) overflows wherever
/// both weights of a pair are large, and those CPUs read worse (one-line
/// plates 97.7% instead of 99.5% on an AVX2-only EPYC). This scale keeps
/// the same-signed magnitudes of every pair within 127 (128 after
/// rounding; 255 x 128 = 32640), so every CPU computes the same integers;
/// a channel whose large weights do not share a pair keeps the full 127.
fn weight_scale(c: &[f32], kind: WeightKind) -> f32 {
    let max_abs = c.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let pair_max = match kind {
        WeightKind::Depthwise => 0.0,
        WeightKind::Pointwise => c.chunks(2).fold(0.0f32, |m, p| {
            let pos: f32 = p.iter().map(|v| v.max(0.0)).sum();
            let neg: f32 = p.iter().map(|v| (-v).max(0.0)).sum();
            m.max(pos).max(neg)
        }),
        WeightKind::Spatial => {
            // The two largest of each sign, whichever two pair up.
            let top2 = |sign: f32| {
                c.iter().fold((0.0f32, 0.0f32), |(a, b), v| {
                    let m = (v * sign).max(0.0);
                    if m > a {
                        (m, a)
                    } else {
                        (a, b.max(m))
                    }
                })
            };
            let ((p1, p2), (n1, n2)) = (top2(1.0), top2(-1.0));
            (p1 + p2).max(n1 + n2)
        }
    };
    let m = max_abs.max(pair_max);
    if m > 0.0 {
        m / 127.0
    } else {
        1.0
    }
}

/// The Q/DQ pairs written so far.
#[derive(Default)]
struct Qdq {
    /// Tensor -> uint8 scale and zero point (initializers `{t}_qscale`,
    /// `{t}_qzero`).
    params: HashMap<String, (f32, u8)>,
    /// Float tensor -> the name of its dequantised copy.
    dequantised: HashMap<String, String>,
}

impl Qdq {
    /// `t`'s parameters, from its calibrated range unless already set.
    fn params(&mut self, graph: &mut GraphProto, t: &str, calibration: &Calibration) -> (f32, u8) {
        match self.params.get(t) {
            Some(&p) => p,
            None => self.set_params(graph, t, calibration.ranges[t]),
        }
    }

    /// `t`'s parameters, from `range` unless already set.
    fn set_params(&mut self, graph: &mut GraphProto, t: &str, range: [f32; 2]) -> (f32, u8) {
        if let Some(&p) = self.params.get(t) {
            return p;
        }
        let p = activation_params(range);
        graph
            .initializer
            .push(f32_tensor(&format!("{t}_qscale"), &[], &[p.0]));
        graph.initializer.push(raw_tensor(
            &format!("{t}_qzero"),
            &[],
            tensor_proto::DataType::Uint8,
            vec![p.1],
        ));
        self.params.insert(t.to_owned(), p);
        p
    }

    /// The dequantised copy of `x` (parameters set), adding `x -> Q -> DQ`
    /// the first time.
    fn dequantised(&mut self, nodes: &mut Vec<NodeProto>, x: &str) -> String {
        if let Some(d) = self.dequantised.get(x) {
            return d.clone();
        }
        let (q, dq) = (format!("{x}_q"), format!("{x}_dq"));
        let (s, z) = (format!("{x}_qscale"), format!("{x}_qzero"));
        nodes.push(node("QuantizeLinear", MS_DOMAIN, &[x, &s, &z], &q));
        nodes.push(node("DequantizeLinear", MS_DOMAIN, &[&q, &s, &z], &dq));
        self.dequantised.insert(x.to_owned(), dq.clone());
        dq
    }

    /// `from -> Q -> DQ -> y` with `y`'s parameters (set): `y` is then its
    /// own dequantised copy.
    fn push_qdq(&mut self, nodes: &mut Vec<NodeProto>, from: &str, y: &str) {
        let (q, s, z) = (
            format!("{y}_q"),
            format!("{y}_qscale"),
            format!("{y}_qzero"),
        );
        nodes.push(node("QuantizeLinear", MS_DOMAIN, &[from, &s, &z], &q));
        nodes.push(node("DequantizeLinear", MS_DOMAIN, &[&q, &s, &z], y));
        self.dequantised.insert(y.to_owned(), y.to_owned());
    }
}

/// The nodes in an order where each comes after the producers of its
/// inputs (stable: an already sorted list is unchanged).
fn topological(nodes: Vec<NodeProto>) -> Vec<NodeProto> {
    let produced: HashSet<String> = nodes.iter().flat_map(|n| n.output.clone()).collect();
    let mut ready: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(nodes.len());
    let mut pending = nodes;
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for n in pending {
            let can_run = n
                .input
                .iter()
                .all(|i| i.is_empty() || !produced.contains(i) || ready.contains(i));
            if can_run {
                ready.extend(n.output.iter().cloned());
                out.push(n);
            } else {
                rest.push(n);
            }
        }
        if rest.len() == before {
            // A cycle: left as it was, for ONNX Runtime to refuse.
            out.extend(rest);
            break;
        }
        pending = rest;
    }
    out
}

fn add_ms_opset(model: &mut ModelProto) {
    if !model
        .opset_import
        .iter()
        .any(|o| o.domain.as_deref() == Some(MS_DOMAIN))
    {
        model.opset_import.push(OperatorSetIdProto {
            domain: Some(MS_DOMAIN.to_owned()),
            version: Some(1),
        });
    }
}

/// Replaces `x * 0.5 * (1 + erf(x / sqrt 2))` (in either multiplication
/// order) with a `com.microsoft` Gelu node. Returns how many were replaced.
pub fn fuse_gelu(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let scalar = |graph: &GraphProto, t: &str, want: f32| {
        float_init(graph, t).is_some_and(|(_, v)| v.len() == 1 && (v[0] - want).abs() < 1e-3)
    };
    let producer: HashMap<String, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.clone(), i)))
        .collect();
    let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for input in &n.input {
            readers.entry(input.clone()).or_default().push(i);
        }
    }
    let only_reader = |t: &str| match readers.get(t).map(Vec::as_slice) {
        Some([r]) => Some(*r),
        _ => None,
    };
    let outputs: HashSet<String> = graph.output.iter().filter_map(|o| o.name.clone()).collect();
    let mut dead = HashSet::new();
    let mut replace: HashMap<usize, NodeProto> = HashMap::new();
    for (ei, erf) in graph.node.iter().enumerate() {
        if op(erf) != "Erf" || erf.input.len() != 1 {
            continue;
        }
        let Some(&di) = producer.get(&erf.input[0]) else {
            continue;
        };
        let div = &graph.node[di];
        if op(div) != "Div"
            || div.input.len() != 2
            || !scalar(graph, &div.input[1], std::f32::consts::SQRT_2)
        {
            continue;
        }
        let x = div.input[0].clone();
        let Some(ai) = only_reader(&erf.output[0]) else {
            continue;
        };
        let add = &graph.node[ai];
        let one = add.input.iter().find(|t| **t != erf.output[0]);
        if op(add) != "Add" || !one.is_some_and(|t| scalar(graph, t, 1.0)) {
            continue;
        }
        let Some(m1) = only_reader(&add.output[0]) else {
            continue;
        };
        let Some(m2) = only_reader(&graph.node[m1].output[0]) else {
            continue;
        };
        let (mul1, mul2) = (&graph.node[m1], &graph.node[m2]);
        if op(mul1) != "Mul" || op(mul2) != "Mul" {
            continue;
        }
        let others: Vec<&String> = mul1
            .input
            .iter()
            .filter(|t| **t != add.output[0])
            .chain(mul2.input.iter().filter(|t| **t != mul1.output[0]))
            .collect();
        let fits = others.len() == 2
            && ((others[0] == &x && scalar(graph, others[1], 0.5))
                || (others[1] == &x && scalar(graph, others[0], 0.5)));
        let chain = [
            &div.output[0],
            &erf.output[0],
            &add.output[0],
            &mul1.output[0],
        ];
        if !fits
            || chain.iter().any(|t| outputs.contains(*t))
            || readers.get(&div.output[0]).map(Vec::len) != Some(1)
        {
            continue;
        }
        let out = mul2.output[0].clone();
        dead.extend([di, ei, ai, m1]);
        replace.insert(m2, node("Gelu", MS_DOMAIN, &[&x], &out));
    }
    let count = replace.len();
    let old = std::mem::take(&mut graph.node);
    graph.node = old
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dead.contains(i))
        .map(|(i, n)| replace.remove(&i).unwrap_or(n))
        .collect();
    remove_unused_initializers(graph);
    if count > 0 {
        add_ms_opset(model);
    }
    count
}

/// Calibration tables shipped with Vigil: one per model file (by SHA-256)
/// and plate layout, each made by `vigil eval plates --calibrate` on the
/// lines of that layout (see its `source`).
const BUILTIN: &[(PlateLayout, &str)] = &[
    (
        PlateLayout::OneLine,
        include_str!("calibration/ppocrv6-rec-small.one-line.toml"),
    ),
    (
        PlateLayout::TwoLine,
        include_str!("calibration/ppocrv6-rec-small.two-line.toml"),
    ),
];

/// The shipped calibration table for the model file with this SHA-256 and
/// the lines of plates of this layout.
pub fn builtin(model_sha256: &str, layout: PlateLayout) -> Option<Calibration> {
    BUILTIN
        .iter()
        .filter(|(l, _)| *l == layout)
        .find_map(|(_, text)| builtin_table(text, model_sha256))
}

/// Text detectors' calibration tables, measured on the search bands of
/// vehicle crops (see `vigil eval plates --locate --calibrate`).
const BUILTIN_TEXT_DETECTOR: &[&str] =
    &[include_str!("calibration/ppocrv6-det-small.vehicles.toml")];

/// The shipped calibration table for the text detector file with this
/// SHA-256.
pub fn builtin_text_detector(model_sha256: &str) -> Option<Calibration> {
    BUILTIN_TEXT_DETECTOR
        .iter()
        .find_map(|text| builtin_table(text, model_sha256))
}

fn builtin_table(text: &str, model_sha256: &str) -> Option<Calibration> {
    Calibration::from_toml(text, "built-in")
        .ok()
        .filter(|c| !c.ranges.is_empty() && c.model_sha256.eq_ignore_ascii_case(model_sha256))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::attribute_proto::AttributeType;

    fn values(graph: &GraphProto, name: &str) -> Vec<f32> {
        float_init(graph, name).map(|(_, v)| v).unwrap_or_default()
    }

    fn conv_model() -> ModelProto {
        // x -> Conv(W [2,1,1,1], no bias) -> Identity -> Add(c [1,2,1,1])
        //   -> Conv(W2 [2,2,1,1]) -> BatchNormalization -> y
        let mut bn = node(
            "BatchNormalization",
            "",
            &["c2", "g", "beta", "mean", "var"],
            "y",
        );
        bn.attribute.push(AttributeProto {
            name: Some("epsilon".into()),
            f: Some(0.0),
            r#type: Some(AttributeType::Float as i32),
            ..AttributeProto::default()
        });
        ModelProto {
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(11),
            }],
            graph: Some(GraphProto {
                node: vec![
                    node("Conv", "", &["x", "W"], "c1"),
                    node("Identity", "", &["c1"], "c1i"),
                    node("Add", "", &["c1i", "c"], "a1"),
                    node("Conv", "", &["a1", "W2"], "c2"),
                    bn,
                ],
                initializer: vec![
                    f32_tensor("W", &[2, 1, 1, 1], &[2.0, -3.0]),
                    f32_tensor("c", &[1, 2, 1, 1], &[0.5, -0.5]),
                    f32_tensor("W2", &[2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]),
                    f32_tensor("g", &[2], &[2.0, 1.0]),
                    f32_tensor("beta", &[2], &[1.0, 0.0]),
                    f32_tensor("mean", &[2], &[0.25, 0.0]),
                    f32_tensor("var", &[2], &[4.0, 1.0]),
                    f32_tensor("unused", &[1], &[9.0]),
                ],
                output: vec![ValueInfoProto {
                    name: Some("y".into()),
                    ..ValueInfoProto::default()
                }],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        }
    }

    #[test]
    fn folding_moves_bias_adds_and_batch_norms_into_the_convolutions() {
        let mut model = conv_model();
        fold(&mut model, "t").expect("folded");
        let graph = model.graph.as_ref().expect("graph");
        let ops: Vec<&str> = graph.node.iter().map(op).collect();
        assert_eq!(ops, ["Conv", "Conv"]);
        let (c1, c2) = (&graph.node[0], &graph.node[1]);
        assert_eq!(c1.output, ["a1"]);
        assert_eq!(c2.input[0], "a1");
        assert_eq!(c2.output, ["y"]);
        assert_eq!(values(graph, &c1.input[1]), [2.0, -3.0]);
        assert_eq!(values(graph, &c1.input[2]), [0.5, -0.5]);
        // BN: k = g / sqrt(var) = [1, 1]; b = (0 - mean) * k + beta.
        assert_eq!(values(graph, &c2.input[1]), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(values(graph, &c2.input[2]), [0.75, 0.0]);
        assert!(graph.initializer.iter().all(|t| tensor_name(t) != "unused"));
        assert_eq!(activations(&model), ["x", "a1", "y"]);
    }

    fn calibration(ranges: &[(&str, [f32; 2])]) -> Calibration {
        Calibration {
            model_sha256: "abc".into(),
            source: "test".into(),
            ranges: ranges.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    #[test]
    fn quantising_writes_one_qdq_pair_per_tensor_and_int8_weights() {
        let mut model = conv_model();
        fold(&mut model, "t").expect("folded");
        let table = calibration(&[("x", [-1.0, 1.0]), ("a1", [0.0, 2.55]), ("y", [-5.1, 0.0])]);
        quantize(&mut model, &table, "t").expect("quantised");
        let graph = model.graph.as_ref().expect("graph");
        let count = |o: &str| graph.node.iter().filter(|n| op(n) == o).count();
        // x, a1 and y each quantised once; a1 is shared by both convs.
        assert_eq!(count("QuantizeLinear"), 3);
        // 3 activations + 2 weights + 2 biases.
        assert_eq!(count("DequantizeLinear"), 7);
        assert!(graph
            .node
            .iter()
            .filter(|n| op(n) != "Conv")
            .all(|n| n.domain.as_deref() == Some(MS_DOMAIN)));
        assert!(model
            .opset_import
            .iter()
            .any(|o| o.domain.as_deref() == Some(MS_DOMAIN)));
        // The second conv reads the first one's dequantised output directly.
        let convs: Vec<&NodeProto> = graph.node.iter().filter(|n| op(n) == "Conv").collect();
        assert_eq!(convs[1].input[0], "a1");
        // Weights: per channel, max |w| -> 127.
        let w = graph
            .initializer
            .iter()
            .find(|t| t.data_type == Some(tensor_proto::DataType::Int8 as i32) && t.dims.len() == 4)
            .expect("int8 weight");
        let raw: Vec<i8> = w.raw_data.iter().flatten().map(|&b| b as i8).collect();
        assert_eq!(raw, [127, -127]);
        // Activation parameters: a1 in [0, 2.55] -> scale 0.01, zero 0.
        let (s, z) = activation_params([0.0, 2.55]);
        assert!((s - 0.01).abs() < 1e-6 && z == 0);
        let (s, z) = activation_params([-1.0, 3.0]);
        assert!((s - 4.0 / 255.0).abs() < 1e-6 && z == 64, "{s} {z}");
        assert_eq!(activation_params([0.0, 0.0]), (1.0, 0));
    }

    #[test]
    fn a_table_for_another_model_is_refused() {
        let mut model = conv_model();
        fold(&mut model, "t").expect("folded");
        let before = model.clone();
        let err =
            quantize(&mut model, &calibration(&[("x", [0.0, 1.0])]), "rec").expect_err("refused");
        assert!(matches!(err, InferError::Quantize { .. }), "{err}");
        assert!(err.to_string().contains("no range for a1"), "{err}");
        assert_eq!(model, before);
    }

    #[test]
    fn the_erf_gelu_becomes_one_node() {
        let mut model = ModelProto {
            graph: Some(GraphProto {
                node: vec![
                    node("Div", "", &["x", "sqrt2"], "d"),
                    node("Erf", "", &["d"], "e"),
                    node("Add", "", &["e", "one"], "a"),
                    node("Mul", "", &["x", "a"], "m"),
                    node("Mul", "", &["m", "half"], "y"),
                ],
                initializer: vec![
                    f32_tensor("sqrt2", &[], &[std::f32::consts::SQRT_2]),
                    f32_tensor("one", &[], &[1.0]),
                    f32_tensor("half", &[], &[0.5]),
                ],
                output: vec![ValueInfoProto {
                    name: Some("y".into()),
                    ..ValueInfoProto::default()
                }],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        };
        assert_eq!(fuse_gelu(&mut model), 1);
        let graph = model.graph.as_ref().expect("graph");
        assert_eq!(graph.node.len(), 1);
        assert_eq!(op(&graph.node[0]), "Gelu");
        assert_eq!(graph.node[0].input, ["x"]);
        assert_eq!(graph.node[0].output, ["y"]);
        assert!(graph.initializer.is_empty());
        // Not a Gelu: the scale is not a half.
        let mut other = model.clone();
        assert_eq!(fuse_gelu(&mut other), 0);
    }

    #[test]
    fn ranges_are_the_mean_of_each_images_extremes() {
        let mut c = RangeCollector::default();
        c.add("t", &[-1.0, 0.0, 3.0]);
        c.add("t", &[-3.0, f32::NAN, 1.0]);
        c.add("empty", &[]);
        let r = c.ranges();
        assert_eq!(r["t"], [-2.0, 2.0]);
        assert!(!r.contains_key("empty"));
        let table = calibration(&[("t", [-2.0, 2.0])]);
        let text = table.to_toml().expect("toml");
        assert_eq!(Calibration::from_toml(&text, "t").expect("parses"), table);
        assert!(Calibration::from_toml("nonsense = 1", "t").is_err());
    }

    #[test]
    fn the_shipped_tables_are_found_by_model_hash_and_layout() {
        for (layout, text) in BUILTIN {
            let table = Calibration::from_toml(text, "t").expect("parses");
            assert!(table.ranges.len() > 50);
            assert_eq!(
                builtin(&table.model_sha256.to_uppercase(), *layout),
                Some(table)
            );
            assert_eq!(builtin("0000", *layout), None);
        }
        let sha = |l| {
            builtin(
                "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
                l,
            )
        };
        assert_ne!(sha(PlateLayout::OneLine), sha(PlateLayout::TwoLine));
    }

    fn value_info(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.into()),
            ..ValueInfoProto::default()
        }
    }

    fn float_attribute(name: &str, value: f32) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            f: Some(value),
            r#type: Some(AttributeType::Float as i32),
            ..AttributeProto::default()
        }
    }

    /// A squeeze-and-excitation block between convolutions, as PP-LCNet
    /// builds it:
    ///   img -> Conv c0 -> Relu r0 -> Conv c1 -> Relu r1
    ///   r1 -> ReduceMean(2, 3) -> Conv s1 -> Relu -> Conv s2 -> HardSigmoid
    ///   m = r1 * gate -> Conv c2 -> Gelu g -> Conv c3 -> Add(m, c3) -> y
    fn block_model() -> ModelProto {
        let mut mean = node("ReduceMean", "", &["r1"], "se_in");
        mean.attribute.push(AttributeProto {
            name: Some("axes".into()),
            ints: vec![2, 3],
            r#type: Some(AttributeType::Ints as i32),
            ..AttributeProto::default()
        });
        let mut gate = node("HardSigmoid", "", &["s2"], "gate");
        gate.attribute.push(float_attribute("alpha", 0.2));
        gate.attribute.push(float_attribute("beta", 0.5));
        let w =
            |name: &str, o: i64, i: i64, values: &[f32]| f32_tensor(name, &[o, i, 1, 1], values);
        ModelProto {
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(11),
            }],
            graph: Some(GraphProto {
                node: vec![
                    node("Conv", "", &["img", "W0"], "c0"),
                    node("Relu", "", &["c0"], "r0"),
                    node("Conv", "", &["r0", "W1"], "c1"),
                    node("Relu", "", &["c1"], "r1"),
                    mean,
                    node("Conv", "", &["se_in", "Ws1"], "s1"),
                    node("Relu", "", &["s1"], "s1r"),
                    node("Conv", "", &["s1r", "Ws2"], "s2"),
                    gate,
                    node("Mul", "", &["r1", "gate"], "m"),
                    node("Conv", "", &["m", "W2"], "c2"),
                    node("Gelu", MS_DOMAIN, &["c2"], "g"),
                    node("Conv", "", &["g", "W3"], "c3"),
                    node("Add", "", &["m", "c3"], "y"),
                ],
                initializer: vec![
                    w("W0", 2, 2, &[1.0, -1.0, 0.5, 0.5]),
                    w("W1", 2, 2, &[1.0, 0.2, -0.3, 1.0]),
                    w("Ws1", 2, 2, &[0.5, 0.5, 0.5, -0.5]),
                    w("Ws2", 2, 2, &[1.0, 0.0, 0.0, 1.0]),
                    w("W2", 2, 2, &[1.0, 1.0, -1.0, 0.1]),
                    w("W3", 2, 2, &[0.3, 0.3, 0.2, -0.7]),
                ],
                input: vec![value_info("img")],
                output: vec![value_info("y")],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        }
    }

    fn block_table() -> Calibration {
        calibration(&[
            ("img", [-1.0, 1.0]),
            ("c0", [-2.0, 2.0]),
            ("r0", [0.0, 2.0]),
            ("c1", [-3.0, 3.06]),
            ("r1", [0.0, 2.55]),
            ("se_in", [0.0, 1.0]),
            ("s1", [-1.0, 1.0]),
            ("s1r", [0.0, 1.0]),
            ("s2", [-2.0, 2.0]),
            ("m", [0.0, 2.55]),
            ("c2", [-4.0, 4.0]),
            ("g", [-0.2, 4.0]),
            ("c3", [-1.0, 1.0]),
        ])
    }

    fn quantised_block() -> GraphProto {
        let mut model = block_model();
        let table = block_table();
        assert!(activations(&model)
            .iter()
            .all(|t| table.ranges.contains_key(t)));
        quantize(&mut model, &table, "t").expect("quantised");
        model.graph.expect("graph")
    }

    fn producer<'g>(graph: &'g GraphProto, tensor: &str) -> &'g NodeProto {
        graph
            .node
            .iter()
            .find(|n| n.output.iter().any(|o| o == tensor))
            .unwrap_or_else(|| panic!("nothing makes {tensor}"))
    }

    fn scalar_u8(graph: &GraphProto, name: &str) -> u8 {
        let t = graph
            .initializer
            .iter()
            .find(|t| tensor_name(t) == name)
            .unwrap_or_else(|| panic!("no initializer {name}"));
        t.raw_data.as_ref().expect("raw")[0]
    }

    #[test]
    fn the_first_convolution_stays_float_and_relus_fold_into_quantisation() {
        let graph = quantised_block();
        // c0 reads the image: float, no Q/DQ on img.
        let c0 = producer(&graph, "c0");
        assert_eq!(c0.input, ["img", "W0"]);
        assert!(graph
            .node
            .iter()
            .all(|n| !n.input.iter().any(|i| i == "img_q")));
        // c0's Relu stays (c0 is float); c1's is folded: c1 writes r1's
        // quantised value from zero, and nothing is named c1 any more.
        assert!(graph
            .node
            .iter()
            .any(|n| op(n) == "Relu" && n.input == ["c0"]));
        let r1 = producer(&graph, "r1");
        assert_eq!(op(r1), "DequantizeLinear");
        assert_eq!(producer(&graph, &r1.input[0]).input[0], "r1_float");
        assert_eq!(op(producer(&graph, "r1_float")), "Conv");
        assert_eq!(scalar_u8(&graph, "r1_qzero"), 0);
        assert!(graph
            .node
            .iter()
            .all(|n| !n.input.iter().any(|i| i == "c1")));
        // The SE block's Relu between its two convolutions folds too.
        assert_eq!(graph.node.iter().filter(|n| op(n) == "Relu").count(), 1);
    }

    #[test]
    fn the_cheap_operations_between_convolutions_read_and_write_uint8() {
        let graph = quantised_block();
        // The spatial mean is a GlobalAveragePool of the dequantised r1.
        let mean = producer(&graph, "se_in");
        assert_eq!(op(mean), "GlobalAveragePool");
        assert!(mean.attribute.is_empty());
        assert_eq!(mean.input, ["r1"]);
        // The gate is quantised to [0, 1] without calibration.
        assert_eq!(op(producer(&graph, "gate")), "DequantizeLinear");
        let scale = values(&graph, "gate_qscale");
        assert!((scale[0] - 1.0 / 255.0).abs() < 1e-9, "{scale:?}");
        assert_eq!(scalar_u8(&graph, "gate_qzero"), 0);
        // The residual Add reads m as the convolution after it does.
        let add = producer(&graph, "y");
        assert_eq!(add.input, ["m_dq", "c3"]);
        assert_eq!(producer(&graph, "c2_float").input[0], "m_dq");
        // Gelu runs as FastGelu on the dequantised c2.
        let gelu = producer(&graph, "g");
        assert_eq!(
            (op(gelu), gelu.input.as_slice()),
            ("FastGelu", &["c2".to_owned()][..])
        );
        // Every node comes after the producers of its inputs.
        let mut seen: HashSet<&str> = ["img"].into_iter().collect();
        seen.extend(graph.initializer.iter().map(tensor_name));
        for n in &graph.node {
            for i in &n.input {
                assert!(
                    seen.contains(i.as_str()),
                    "{} reads {i} before it is made",
                    op(n)
                );
            }
            seen.extend(n.output.iter().map(String::as_str));
        }
    }

    #[test]
    fn no_pair_of_int8_weights_can_saturate_an_int16_sum() {
        // Pointwise: channels 2i and 2i+1 pair up. A pair of large weights
        // of one sign scales the channel down; opposite signs do not.
        let s = weight_scale(&[1.0, 1.0, 0.1, -0.2], WeightKind::Pointwise);
        assert!((s - 2.0 / 127.0).abs() < 1e-7, "{s}");
        let s = weight_scale(&[1.0, -1.0, 0.1, -0.2], WeightKind::Pointwise);
        assert!((s - 1.0 / 127.0).abs() < 1e-7, "{s}");
        // Large weights in different pairs keep the full range.
        let s = weight_scale(&[1.0, 0.0, 0.9, 0.0], WeightKind::Pointwise);
        assert!((s - 1.0 / 127.0).abs() < 1e-7, "{s}");
        // Spatial kernels: the two largest of a sign, wherever they are.
        let s = weight_scale(&[1.0, 0.0, 0.9, -0.5], WeightKind::Spatial);
        assert!((s - 1.9 / 127.0).abs() < 1e-7, "{s}");
        // Depthwise sums in int32: max |w| / 127.
        let s = weight_scale(&[1.0, 1.0, 1.0], WeightKind::Depthwise);
        assert!((s - 1.0 / 127.0).abs() < 1e-7, "{s}");
        // Quantised, every pair's same-signed sum stays within 128.
        let w: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 29) as f32 - 14.0) / 7.0)
            .collect();
        for kind in [WeightKind::Pointwise, WeightKind::Spatial] {
            let s = weight_scale(&w, kind);
            let q: Vec<i32> = w.iter().map(|v| (v / s).round() as i32).collect();
            assert!(q.iter().all(|v| v.abs() <= 127));
            for p in q.chunks(2) {
                let pos: i32 = p.iter().map(|v| v.max(&0)).sum();
                let neg: i32 = p.iter().map(|v| (-v).max(0)).sum();
                assert!(pos <= 128 && neg <= 128, "{kind:?} {p:?}");
            }
        }
    }
}
