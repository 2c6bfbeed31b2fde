//! Models for Vigil: the manifest that pins them and the store that holds them.
//!
//! This crate owns everything between "a model name in a site config" and "a
//! verified file on disk". ONNX Runtime sessions, pre- and post-processing
//! arrive here with the inference work; the crate never knows about tracks
//! or rules.

pub mod batch_dim;
pub mod ctc_head;
pub mod detector;
mod error;
pub mod letterbox;
pub mod lights;
pub mod manifest;
pub mod model;
pub mod ocr;
pub mod onnx_proto;
pub mod plate_reader;
pub mod quantize;
mod resample;
pub mod riders;
pub mod runtime;
pub mod store;
mod tensor_data;
pub mod text_detector;
pub mod yolo_input;

pub use error::InferError;
pub use manifest::{Artifact, Manifest, ManifestError, ModelEntry};
pub use store::{FetchOutcome, Fetcher, StoreError, REPAIR_COMMAND};
