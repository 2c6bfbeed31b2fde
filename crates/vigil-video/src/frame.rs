//! Decoded frames and the facts every frame carries.

use std::sync::Arc;

pub use vigil_core::image::RgbImage;
use vigil_core::time::UnixMicros;

/// When and where a frame was seen.
///
/// Rules run on `time_us`, never on frame counts, so a variable frame rate
/// or a dropped frame cannot change a verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameMeta {
    pub camera: Arc<str>,
    /// Per camera, gap-free across reconnects: 0, 1, 2, ...
    pub seq: u64,
    /// Presentation time from the stream's PTS, in microseconds since the
    /// first frame of the first connection (continuous across reconnects).
    /// Strictly increasing per camera: a repeated or backward PTS is nudged
    /// 1 µs past the previous frame and counted.
    pub pts_us: i64,
    /// When the scene happened, by the edge's clock: for live sources the
    /// connection's wall-clock anchor plus PTS (smooth, immune to network
    /// jitter, re-anchored if it drifts from `captured_at_us` by over a
    /// second); for replays `recorded_at` plus PTS.
    pub time_us: UnixMicros,
    /// The edge's UTC wall clock when the frame's packet was read.
    pub captured_at_us: UnixMicros,
    pub keyframe: bool,
}

/// A frame delivered for detection.
#[derive(Debug, Clone)]
pub struct Frame {
    pub meta: FrameMeta,
    pub width: u32,
    pub height: u32,
    /// Present when ingest converts to RGB (the default); `None` in
    /// decode-only mode (benchmarks).
    pub rgb: Option<Arc<RgbImage>>,
    /// What the camera's [`FramePrep`] made of `rgb` on the ingest thread
    /// (e.g. the detector's letterboxed input), if it ran.
    pub prepared: Option<PreparedInput>,
}

/// Work done on each RGB frame on the camera's own ingest thread, ahead of
/// detection, so that it overlaps with the detector running on earlier
/// frames. Returns `None` to leave a frame to the consumer. Video knows
/// nothing of what is prepared: the consumer downcasts.
pub type FramePrep = Arc<dyn Fn(&RgbImage) -> Option<PreparedInput> + Send + Sync>;

/// The result of a [`FramePrep`], type-erased.
#[derive(Clone)]
pub struct PreparedInput(pub Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for PreparedInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedInput(..)")
    }
}
