use std::path::PathBuf;

/// Inference errors, each naming the model or input concerned.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("{0}")]
    Runtime(String),
    #[error("model file {} is missing; fetch it with `vigil models fetch`", .0.display())]
    ModelMissing(PathBuf),
    #[error("cannot load model {}: {message}", model.display())]
    Load { model: PathBuf, message: String },
    #[error("model {model}: {message}")]
    Shape { model: String, message: String },
    #[error("model {model}: inference failed: {message}")]
    Run { model: String, message: String },
    #[error("model {model}: cannot prune its output head: {message}")]
    Prune { model: String, message: String },
    #[error("model {model}: cannot give it a dynamic batch: {message}")]
    Batch { model: String, message: String },
    #[error("model {model}: cannot change its input size: {message}")]
    InputSize { model: String, message: String },
    #[error("model {model}: cannot quantise: {message}")]
    Quantize { model: String, message: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
