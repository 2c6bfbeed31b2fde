//! Giving a YOLOv8-format detector exported for a square input a
//! rectangular one, so a 16:9 frame is not padded to a square.
//!
//! Letterboxed into 640x640, a 960x540 frame fills 640x360 and the other
//! 44% of the input is grey bars the network still convolves. The network
//! itself is fully convolutional; what ties an export to its input size is
//! its head:
//! - the anchor centres (`[1, 2, N]`: x then y, in grid cells, +0.5) and
//!   strides (`[1, N]`) of the three output grids (strides 8, 16, 32), baked
//!   in as constants for the export's size (N = 8400 at 640x640);
//! - reshapes to `[1, 4, 16, N]` and `[1, 4, N]`;
//! - the declared input and output shapes.
//!
//! [`set_input_size`] recomputes the first for the new size, writes `-1` for
//! N in the second, and declares the new shapes. At 640x384 the network does
//! ~60% of the work, and finds the objects of the square input in the same
//! places (tested on real frames: same class, IoU > 0.9, scores within 0.1;
//! the grey context next to the frame's edge is what changes). The edit is made in memory; the pinned file never changes. A
//! graph that does not have exactly this head is refused and left as it
//! was.

use crate::onnx_proto::{tensor_shape_proto, GraphProto, ModelProto, TensorProto};
use crate::tensor_data::{
    dims, dims_mut, fixed, floats, graph_inputs, int64s, set_floats, set_int64s,
};
use crate::InferError;

/// The output grids' strides of YOLOv8-format detectors.
const STRIDES: [u32; 3] = [8, 16, 32];

/// Anchors (grid cells of all three outputs) at an input of `w x h`.
pub fn anchor_count(w: u32, h: u32) -> usize {
    STRIDES
        .iter()
        .map(|s| (w / s) as usize * (h / s) as usize)
        .sum()
}

/// Anchor centres `[x..., y...]` (2 x N) and strides (N) at `w x h`, in
/// the order the exporter lays them out: stride by stride, row by row.
fn grid(w: u32, h: u32) -> (Vec<f32>, Vec<f32>) {
    let (mut xs, mut ys, mut strides) = (Vec::new(), Vec::new(), Vec::new());
    for s in STRIDES {
        for y in 0..h / s {
            for x in 0..w / s {
                xs.push(x as f32 + 0.5);
                ys.push(y as f32 + 0.5);
                strides.push(s as f32);
            }
        }
    }
    xs.extend(ys);
    (xs, strides)
}

/// Sets the detector's input to `w x h` (multiples of 32). Refuses, naming
/// the reason, a model whose input is not a fixed square or whose head does
/// not hold the anchor grid and strides of that square.
pub fn set_input_size(
    model: &mut ModelProto,
    name: &str,
    (w, h): (u32, u32),
) -> Result<(), InferError> {
    let err = |message: String| InferError::InputSize {
        model: name.to_owned(),
        message,
    };
    if w == 0 || h == 0 || w % 32 != 0 || h % 32 != 0 {
        return Err(err(format!(
            "{w}x{h} is not a multiple of 32 on both sides"
        )));
    }
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| err("the model has no graph".into()))?;
    let (input_name, size) = square_input(graph).ok_or_else(|| {
        err("the edit needs one image input of fixed square size [N, 3, S, S]".into())
    })?;
    if size % 32 != 0 {
        return Err(err(format!(
            "its input size {size} is not a multiple of 32"
        )));
    }
    let old_n = anchor_count(size, size);
    let new_n = anchor_count(w, h);
    let (old_anchors, old_strides) = grid(size, size);
    let (anchors, strides) = grid(w, h);

    // Find everything first, so that a refusal leaves the model untouched.
    let (mut anchor_tensors, mut stride_tensors) = (0, 0);
    for t in constants(graph) {
        if t.dims == [1, 2, old_n as i64] && floats(t).as_deref() == Some(&old_anchors[..]) {
            anchor_tensors += 1;
        } else if t.dims == [1, old_n as i64] && floats(t).as_deref() == Some(&old_strides[..]) {
            stride_tensors += 1;
        } else if let Some(v) = int64s(t).filter(|v| v.contains(&(old_n as i64))) {
            if v.iter().filter(|&&d| d == old_n as i64 || d == -1).count() != 1 {
                return Err(err(format!(
                    "shape constant {v:?} has the anchor count {old_n} beside another free dimension"
                )));
            }
        }
    }
    if anchor_tensors == 0 || stride_tensors == 0 {
        return Err(err(format!(
            "no anchor grid and strides for a {size}x{size} input in its head (found {anchor_tensors} grid(s), {stride_tensors} stride table(s)); not a YOLOv8-format export"
        )));
    }
    for t in constants_mut(graph) {
        if t.dims == [1, 2, old_n as i64] && floats(t).as_deref() == Some(&old_anchors[..]) {
            set_floats(t, &[1, 2, new_n as i64], &anchors);
        } else if t.dims == [1, old_n as i64] && floats(t).as_deref() == Some(&old_strides[..]) {
            set_floats(t, &[1, new_n as i64], &strides);
        } else if let Some(mut v) = int64s(t) {
            if v.contains(&(old_n as i64)) {
                v.iter_mut()
                    .filter(|d| **d == old_n as i64)
                    .for_each(|d| *d = -1);
                set_int64s(t, &v);
            }
        }
    }
    for input in graph
        .input
        .iter_mut()
        .filter(|i| i.name.as_deref() == Some(input_name.as_str()))
    {
        if let Some([_, _, hh, ww]) = dims_mut(input).map(Vec::as_mut_slice) {
            set_dim(hh, i64::from(h));
            set_dim(ww, i64::from(w));
        }
    }
    for output in graph.output.iter_mut() {
        if let Some(dims) = dims_mut(output) {
            if let Some(last) = dims.last_mut() {
                if fixed(last) == Some(old_n as i64) {
                    set_dim(last, new_n as i64);
                }
            }
        }
    }
    // Inferred intermediate shapes are for the square; ONNX Runtime infers
    // them again.
    graph.value_info.clear();
    Ok(())
}

/// The name and side of the single image input `[N, 3, S, S]`, if it is
/// one.
fn square_input(graph: &GraphProto) -> Option<(String, u32)> {
    let inputs = graph_inputs(graph);
    let [input] = inputs.as_slice() else {
        return None;
    };
    match dims(input)? {
        [_, c, hh, ww] if fixed(c) == Some(3) && fixed(hh).is_some() && fixed(hh) == fixed(ww) => {
            Some((input.name.clone()?, u32::try_from(fixed(hh)?).ok()?))
        }
        _ => None,
    }
}

fn set_dim(d: &mut tensor_shape_proto::Dimension, v: i64) {
    d.value = Some(tensor_shape_proto::dimension::Value::DimValue(v));
}

/// Every initializer and `Constant` node value.
fn constants(graph: &GraphProto) -> impl Iterator<Item = &TensorProto> {
    graph.initializer.iter().chain(
        graph
            .node
            .iter()
            .filter(|n| n.op_type.as_deref() == Some("Constant"))
            .flat_map(|n| n.attribute.iter().filter_map(|a| a.t.as_ref())),
    )
}

fn constants_mut(graph: &mut GraphProto) -> impl Iterator<Item = &mut TensorProto> {
    graph.initializer.iter_mut().chain(
        graph
            .node
            .iter_mut()
            .filter(|n| n.op_type.as_deref() == Some("Constant"))
            .flat_map(|n| n.attribute.iter_mut().filter_map(|a| a.t.as_mut())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::tensor_proto;
    use crate::tensor_data::value_info;

    fn model(dims: &[i64], with_head: bool) -> ModelProto {
        let mut init = Vec::new();
        if with_head {
            let (anchors, strides) = grid(64, 64);
            let n = anchor_count(64, 64) as i64;
            let mut a = TensorProto {
                name: Some("anchors".into()),
                data_type: Some(tensor_proto::DataType::Float as i32),
                ..Default::default()
            };
            set_floats(&mut a, &[1, 2, n], &anchors);
            let mut st = TensorProto {
                name: Some("strides".into()),
                data_type: Some(tensor_proto::DataType::Float as i32),
                ..Default::default()
            };
            set_floats(&mut st, &[1, n], &strides);
            let mut shape = TensorProto {
                name: Some("shape".into()),
                dims: vec![3],
                data_type: Some(tensor_proto::DataType::Int64 as i32),
                ..Default::default()
            };
            set_int64s(&mut shape, &[1, 4, n]);
            init = vec![a, st, shape];
        }
        ModelProto {
            graph: Some(GraphProto {
                initializer: init,
                input: vec![value_info("images", dims)],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_head_with_the_squares_grid_is_regrown_for_the_rectangle() {
        let mut m = model(&[1, 3, 64, 64], true);
        set_input_size(&mut m, "toy", (64, 32)).expect("editable");
        let g = m.graph.as_ref().expect("graph");
        let n = anchor_count(64, 32);
        assert_eq!(n, 8 * 4 + 4 * 2 + 2);
        assert_eq!(g.initializer[0].dims, vec![1, 2, n as i64]);
        assert_eq!(floats(&g.initializer[0]), Some(grid(64, 32).0));
        assert_eq!(floats(&g.initializer[1]), Some(grid(64, 32).1));
        assert_eq!(int64s(&g.initializer[2]), Some(vec![1, 4, -1]));
        let input: Vec<Option<i64>> =
            dims(&g.input[0]).map_or(Vec::new(), |d| d.iter().map(fixed).collect());
        assert_eq!(input, vec![Some(1), Some(3), Some(32), Some(64)]);
    }

    #[test]
    fn graphs_without_the_head_or_a_square_input_are_refused_untouched() {
        let mut headless = model(&[1, 3, 64, 64], false);
        let before = headless.clone();
        let e = set_input_size(&mut headless, "toy", (64, 32)).expect_err("refused");
        assert!(e.to_string().contains("not a YOLOv8-format export"), "{e}");
        assert_eq!(headless, before);
        let mut oblong = model(&[1, 3, 32, 64], true);
        let e = set_input_size(&mut oblong, "toy", (64, 32)).expect_err("refused");
        assert!(e.to_string().contains("square"), "{e}");
        let mut m = model(&[1, 3, 64, 64], true);
        let e = set_input_size(&mut m, "toy", (64, 40)).expect_err("refused");
        assert!(e.to_string().contains("multiple of 32"), "{e}");
    }

    #[test]
    fn the_grid_of_a_640_square_is_the_8400_anchors_of_the_export() {
        assert_eq!(anchor_count(640, 640), 8400);
        assert_eq!(anchor_count(640, 384), 80 * 48 + 40 * 24 + 20 * 12);
        let (anchors, strides) = grid(640, 640);
        assert_eq!(anchors.len(), 2 * 8400);
        // First row of the stride-8 grid, then its second row.
        assert_eq!(&anchors[..3], &[0.5, 1.5, 2.5]);
        assert_eq!(anchors[80], 0.5);
        assert_eq!(anchors[8400 + 80], 1.5, "y of the second row");
        assert_eq!(
            (strides[0], strides[6400], strides[8399]),
            (8.0, 16.0, 32.0)
        );
    }
}
