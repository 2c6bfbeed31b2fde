//! The records `vigil run` writes, one JSON object per line.
//!
//! `events.jsonl` (one per violation) is an interface other tooling relies
//! on: fields are only ever added, never renamed or retyped. Times `t*` are
//! seconds from the start of the input (a file's `recorded_at`, else its
//! first frame); `at_us` is the absolute instant (Unix µs, UTC).

use serde::{Deserialize, Serialize};
use vigil_core::time::UnixMicros;
use vigil_plate::PlateColour;
use vigil_rules::IntervalSummary;

/// A plate read for an event's road user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateRead {
    /// Canonical text (`30A-123.45`), or the best guess when unreadable.
    pub text: String,
    pub confidence: f32,
    /// Whether the text parses as a valid Vietnamese plate.
    pub valid: bool,
    /// How many crops voted.
    pub reads: usize,
    /// The plate's background colour class (white, yellow, blue, red),
    /// measured on the crop of the most confident read; absent where it
    /// fits no class. Blue marks a state agency's vehicle, red the
    /// military's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<PlateColour>,
    /// Every single read that took part in the vote.
    pub candidates: Vec<PlateCandidate>,
}

/// One crop's read of the plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateCandidate {
    pub text: String,
    pub confidence: f32,
    pub valid: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationEvent {
    /// `red_light`, `stop_line_encroachment`, `speeding`, `wrong_way`, `lane_movement`.
    #[serde(rename = "type")]
    pub kind: String,
    pub camera: String,
    pub approach: String,
    pub track_id: u64,
    /// The track's voted class: `car`, `motorbike`, ...
    pub class: String,
    /// The instant that shows the offence (for red_light, the stop-line crossing).
    pub t: f64,
    pub frame: usize,
    pub at_us: UnixMicros,
    /// When the front crossed the stop line (red_light, lane_movement, wrong_way).
    pub t_stop_line: Option<f64>,
    pub frame_stop_line: Option<usize>,
    /// When the front crossed the clearance line (red_light).
    pub t_clearance: Option<f64>,
    /// Seconds into red at the stop-line crossing (red_light).
    pub time_into_red: Option<f64>,
    /// `[x, y, w, h]` in image pixels at `frame_stop_line`.
    pub bbox_at_stop_line: Option<[f32; 4]>,
    /// The voted plate text, or null when no plate was read.
    pub plate: Option<String>,
    pub plate_read: Option<PlateRead>,
    /// The rule's own record (crossing instants, speeds, lanes...).
    pub details: serde_json::Value,
}

/// A periodic counts-and-congestion record for one approach.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRecord {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub camera: String,
    /// Seconds from the start of the input.
    pub t_start: f64,
    pub t_end: f64,
    #[serde(flatten)]
    pub summary: IntervalSummary,
}

impl SummaryRecord {
    pub fn new(camera: &str, summary: IntervalSummary, origin_us: UnixMicros) -> Self {
        Self {
            kind: "summary",
            camera: camera.to_owned(),
            t_start: (summary.start_us - origin_us) as f64 / 1e6,
            t_end: (summary.end_us - origin_us) as f64 / 1e6,
            summary,
        }
    }
}
