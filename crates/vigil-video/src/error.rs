use std::path::PathBuf;

/// Everything that can go wrong in ingest, each naming the source it concerns.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{source_name}: cannot open: {message}")]
    Open {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: no video stream in the input")]
    NoVideoStream { source_name: String },
    #[error("{source_name}: unsupported video codec {codec}: {message}")]
    UnsupportedCodec {
        source_name: String,
        codec: String,
        message: String,
    },
    #[error("{source_name}: reading failed: {message}")]
    Read {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: decoding failed: {message}")]
    Decode {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: invalid source: {message}")]
    InvalidSource {
        source_name: String,
        message: String,
    },
    #[error(
        "camera {camera}: the packet buffer holds {available}, which does not cover the requested {requested}"
    )]
    NotBuffered {
        camera: String,
        requested: String,
        available: String,
    },
    #[error("clip {path}: {message}")]
    Clip { path: PathBuf, message: String },
}
