//! Camera ingest: every camera decoded, with the camera's own packets kept.
//!
//! Each camera runs on its own thread ([`CameraIngest`]): FFmpeg demuxes the
//! source, every encoded packet goes into a [`PacketRing`] that evidence
//! clips are cut from without re-encoding, and decoded RGB frames go to
//! detection through a small queue that drops the oldest frame when detection
//! falls behind. Live sources reconnect with backoff and record each gap.
//!
//! This crate knows nothing of rules or the case system.

pub mod bench;
mod clip;
mod decode;
pub mod draw;
mod error;
mod frame;
mod ingest;
mod ring;
mod source;

pub use clip::ClipInfo;
pub use error::VideoError;
pub use frame::{Frame, FrameMeta, FramePrep, PreparedInput, RgbImage};
pub use ingest::{first_frame, Backoff, CameraIngest, Gap, IngestConfig, IngestEvent, IngestStats};
pub use ring::{PacketRing, RingConfig, RingStats, StoredPacket, StreamInfo};
pub use source::{redact, SourceKind, SourceSpec};

/// Initialises FFmpeg once per process and keeps its own logging to fatal
/// errors: every failure reaches the caller as a [`VideoError`] instead.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = ffmpeg_next::init() {
            tracing::error!("FFmpeg failed to initialise: {e}");
        }
        ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Fatal);
    });
}
