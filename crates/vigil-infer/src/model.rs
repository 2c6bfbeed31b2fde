//! A loaded ONNX model with its input contract checked before every run.

use std::path::Path;

use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use prost::Message;

use crate::batch_dim::make_batch_dynamic;
use crate::runtime::{Provider, Runtime, SessionOptions};
use crate::yolo_input::set_input_size;
use crate::InferError;

/// How [`OnnxModel::open_detector`] changes a detector's graph before its
/// session is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectorShape {
    /// Give a batch fixed at 1 a dynamic size.
    pub dynamic_batch: bool,
    /// Set the input to `(width, height)` instead of the export's square.
    pub input: Option<(u32, u32)>,
}

/// An ONNX session plus what its first input expects.
pub struct OnnxModel {
    pub(crate) session: Session,
    pub(crate) name: String,
    pub(crate) input_name: String,
    /// The first input's shape; -1 marks a dynamic dimension.
    pub(crate) input_shape: Vec<i64>,
    pub(crate) provider: Provider,
}

impl OnnxModel {
    /// Opens `path`; `name` labels the model in errors.
    pub fn open(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        options: SessionOptions,
    ) -> Result<Self, InferError> {
        let (session, provider) = runtime.session(path, options)?;
        Self::wrap(session, provider, name)
    }

    /// Opens a model held in memory (e.g. edited after reading `path`, which
    /// names it in messages).
    pub fn from_memory(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        bytes: &[u8],
        options: SessionOptions,
    ) -> Result<Self, InferError> {
        let (session, provider) = runtime.session_from_memory(path, bytes, options)?;
        Self::wrap(session, provider, name)
    }

    /// Opens `path` with its convolutions quantised to INT8 using
    /// `calibration` (see [`crate::quantize`]). A table that does not fit
    /// the model is an error.
    pub fn open_int8(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        options: SessionOptions,
        calibration: &crate::quantize::Calibration,
    ) -> Result<Self, InferError> {
        let bytes = read_model_file(path)?;
        let mut proto = crate::ctc_head::decode(&bytes, name)?;
        drop(bytes);
        crate::quantize::to_int8(&mut proto, calibration, name)?;
        Self::from_memory(runtime, name, path, &proto.encode_to_vec(), options)
    }

    /// Opens a YOLOv8-format detector at `path` with its graph changed in
    /// memory as `shape` asks: a dynamic batch dimension (see
    /// [`crate::batch_dim`]) and/or another input size (see
    /// [`crate::yolo_input`]). An edit the graph cannot take safely is an
    /// [`InferError::Batch`] or [`InferError::InputSize`]; the caller can
    /// open the file as it is instead.
    pub fn open_detector(
        runtime: &Runtime,
        name: &str,
        path: &Path,
        options: SessionOptions,
        shape: DetectorShape,
    ) -> Result<Self, InferError> {
        if shape == DetectorShape::default() {
            return Self::open(runtime, name, path, options);
        }
        let bytes = read_model_file(path)?;
        let mut proto = crate::ctc_head::decode(&bytes, name)?;
        if let Some(input) = shape.input {
            set_input_size(&mut proto, name, input)?;
        }
        if shape.dynamic_batch {
            make_batch_dynamic(&mut proto, name)?;
        }
        Self::from_memory(runtime, name, path, &proto.encode_to_vec(), options)
    }

    fn wrap(session: Session, provider: Provider, name: &str) -> Result<Self, InferError> {
        let input = session.inputs().first().ok_or_else(|| InferError::Shape {
            model: name.to_owned(),
            message: "the model has no inputs".into(),
        })?;
        let input_shape = match input.dtype() {
            ValueType::Tensor { shape, .. } => shape.iter().copied().collect(),
            other => {
                return Err(InferError::Shape {
                    model: name.to_owned(),
                    message: format!("input {} is a {other:?}, not a tensor", input.name()),
                })
            }
        };
        Ok(Self {
            name: name.to_owned(),
            input_name: input.name().to_owned(),
            input_shape,
            session,
            provider,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The names of the model's outputs, in the order runs return them.
    pub fn output_names(&self) -> Vec<String> {
        self.session
            .outputs()
            .iter()
            .map(|o| o.name().to_owned())
            .collect()
    }

    /// The first input's shape (-1 = dynamic).
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// Whether the first dimension is dynamic, so several images can share a run.
    pub fn batchable(&self) -> bool {
        self.input_shape.first() == Some(&-1)
    }

    /// Refuses a tensor whose shape the model cannot take, naming both.
    pub(crate) fn check_shape(&self, shape: &[usize]) -> Result<(), InferError> {
        let fits = shape.len() == self.input_shape.len()
            && shape
                .iter()
                .zip(&self.input_shape)
                .all(|(&got, &want)| want < 0 || i64::try_from(got).is_ok_and(|g| g == want));
        if fits {
            Ok(())
        } else {
            Err(InferError::Shape {
                model: self.name.clone(),
                message: format!(
                    "input {} expects shape {:?} (-1 = any), got {shape:?}",
                    self.input_name, self.input_shape
                ),
            })
        }
    }

    /// Runs the model on one f32 tensor and hands each output's shape and
    /// data to `read`, without copying them out of ONNX Runtime.
    pub(crate) fn run_f32<R>(
        &mut self,
        shape: &[usize],
        data: &[f32],
        read: impl FnOnce(&[(Vec<i64>, &[f32])]) -> Result<R, InferError>,
    ) -> Result<R, InferError> {
        self.check_shape(shape)?;
        let run_err = |e: ort::Error| InferError::Run {
            model: self.name.clone(),
            message: e.to_string(),
        };
        // A view: ONNX Runtime reads the caller's buffer, which the caller
        // can then reuse (no copy, no fresh allocation per run).
        let tensor = TensorRef::from_array_view((shape.to_vec(), data)).map_err(run_err)?;
        let model = self.name.clone();
        let outputs = self
            .session
            .run(ort::inputs![tensor])
            .map_err(|e| InferError::Run {
                model: model.clone(),
                message: e.to_string(),
            })?;
        let mut views = Vec::with_capacity(outputs.len());
        for i in 0..outputs.len() {
            let (shape, data) =
                outputs[i]
                    .try_extract_tensor::<f32>()
                    .map_err(|e| InferError::Run {
                        model: model.clone(),
                        message: format!("output is not an f32 tensor: {e}"),
                    })?;
            views.push((shape.iter().copied().collect::<Vec<i64>>(), data));
        }
        read(&views)
    }
}

/// A model file's bytes, for an in-memory edit; a missing file is
/// [`InferError::ModelMissing`].
pub(crate) fn read_model_file(path: &Path) -> Result<Vec<u8>, InferError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => InferError::ModelMissing(path.to_owned()),
        _ => InferError::Load {
            model: path.to_owned(),
            message: e.to_string(),
        },
    })
}
