//! For the in-memory model edits: the values of small ONNX constant
//! tensors (shapes, anchor grids) and the declared shapes of a graph's
//! inputs and outputs.

use crate::onnx_proto::{
    tensor_proto, tensor_shape_proto, type_proto, GraphProto, TensorProto, ValueInfoProto,
};
#[cfg(test)]
use crate::onnx_proto::{TensorShapeProto, TypeProto};

/// A float tensor's values, from `raw_data` (little-endian) or
/// `float_data`; `None` for another data type.
pub(crate) fn floats(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != Some(tensor_proto::DataType::Float as i32) {
        return None;
    }
    match &t.raw_data {
        Some(raw) if !raw.is_empty() => Some(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        _ => Some(t.float_data.clone()),
    }
}

/// Replaces a float tensor's shape and values (as `raw_data`).
pub(crate) fn set_floats(t: &mut TensorProto, dims: &[i64], values: &[f32]) {
    t.dims = dims.to_vec();
    t.float_data.clear();
    t.raw_data = Some(values.iter().flat_map(|v| v.to_le_bytes()).collect());
}

/// An int64 tensor's values; `None` for another data type.
pub(crate) fn int64s(t: &TensorProto) -> Option<Vec<i64>> {
    if t.data_type != Some(tensor_proto::DataType::Int64 as i32) {
        return None;
    }
    match &t.raw_data {
        Some(raw) if !raw.is_empty() => Some(
            raw.chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
        ),
        _ => Some(t.int64_data.clone()),
    }
}

/// Replaces an int64 tensor's values, keeping its shape.
pub(crate) fn set_int64s(t: &mut TensorProto, values: &[i64]) {
    t.int64_data.clear();
    t.raw_data = Some(values.iter().flat_map(|v| v.to_le_bytes()).collect());
}

/// The graph's real inputs: older exports also list their initializers
/// (weights) as inputs.
pub(crate) fn graph_inputs(graph: &GraphProto) -> Vec<&ValueInfoProto> {
    let initializers: Vec<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    graph
        .input
        .iter()
        .filter(|i| !initializers.contains(&i.name.as_deref().unwrap_or_default()))
        .collect()
}

/// The declared dimensions of a tensor input or output.
pub(crate) fn dims(v: &ValueInfoProto) -> Option<&[tensor_shape_proto::Dimension]> {
    let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    Some(&tt.shape.as_ref()?.dim)
}

pub(crate) fn dims_mut(v: &mut ValueInfoProto) -> Option<&mut Vec<tensor_shape_proto::Dimension>> {
    let Some(type_proto::Value::TensorType(tt)) = v.r#type.as_mut()?.value.as_mut() else {
        return None;
    };
    Some(&mut tt.shape.as_mut()?.dim)
}

/// A dimension's fixed size (`None` when symbolic or unset).
pub(crate) fn fixed(d: &tensor_shape_proto::Dimension) -> Option<i64> {
    match d.value {
        Some(tensor_shape_proto::dimension::Value::DimValue(v)) => Some(v),
        _ => None,
    }
}

/// A float tensor's value info with fixed dimensions, for test graphs.
#[cfg(test)]
pub(crate) fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(tensor_proto::DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}
