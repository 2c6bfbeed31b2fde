//! `manifest.json`: what a package claims, in schema version 1
//! (`schema/manifest-v1.schema.json`, committed and versioned).
//!
//! The manifest is signed in its *canonical* form: the JSON value with
//! object keys sorted and no white space. `manifest.json` itself is written
//! in exactly that form, so its SHA-256 is the package's chain hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_core::time::UnixMicros;

pub const SCHEMA_VERSION: u32 = 1;
/// The committed JSON Schema of version 1.
pub const SCHEMA_V1: &str = include_str!("../schema/manifest-v1.schema.json");

/// Fields whose values come from the wall clock, and so may differ between
/// two builds from the same input (JSON pointer paths).
pub const WALL_CLOCK_FIELDS: &[&str] = &["/times/packaged_at_us"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    /// UUIDv7, derived from the event instant and its identity, so the same
    /// event always gets the same id.
    pub event_id: String,
    pub device_id: String,
    pub site_id: String,
    pub site_name: String,
    pub camera: String,
    pub approach: String,
    /// Per camera, 1, 2, 3... without gaps.
    pub sequence: u64,
    /// SHA-256 of the camera's previous package's manifest.json; `None`
    /// for sequence 1.
    pub prev_manifest_sha256: Option<String>,
    pub violation: ViolationFacts,
    pub times: Times,
    pub signal: SignalFacts,
    pub trajectory: Vec<TrajectoryPoint>,
    pub plate: Option<PlateFacts>,
    pub models: Vec<ModelRef>,
    pub config_sha256: String,
    pub software: Software,
    /// Every file of the package except manifest.json and signature.
    pub files: Vec<FileEntry>,
    /// JSON pointers of the fields that come from the wall clock.
    pub wall_clock_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViolationFacts {
    /// `red_light`, `stop_line_encroachment`, `speeding`, `wrong_way`, `lane_movement`.
    #[serde(rename = "type")]
    pub kind: String,
    pub track_id: u64,
    pub class: String,
    /// The rule's own record.
    pub details: serde_json::Value,
    /// Speed at the event, km/h, when the camera is calibrated.
    pub speed_kmh: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Times {
    /// The instant that shows the offence (Unix µs, UTC).
    pub event_at_us: UnixMicros,
    pub stop_line_at_us: Option<UnixMicros>,
    pub clearance_at_us: Option<UnixMicros>,
    /// The site's UTC offset, for display (`+07:00`).
    pub utc_offset: String,
    /// `synced`, `unsynced` or `replay` (a file with a recorded start).
    pub clock_sync: String,
    /// When the package was built: wall clock.
    pub packaged_at_us: UnixMicros,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalFacts {
    pub signal_id: Option<String>,
    /// `fixed_time`, `controller`, `vision`, or several joined by `+`
    /// (cross-checked).
    pub source: String,
    pub phase_at_event: String,
    pub red_since_us: Option<UnixMicros>,
    pub time_into_red_s: Option<f64>,
    pub amber_before_s: Option<f64>,
    /// The phases around the event.
    pub timeline: Vec<PhaseInterval>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseInterval {
    pub start_us: UnixMicros,
    pub end_us: UnixMicros,
    pub phase: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrajectoryPoint {
    pub t_us: UnixMicros,
    pub frame: u64,
    /// `[x, y, w, h]`, image pixels.
    pub bbox: [f32; 4],
    /// Front ground-contact point, image pixels.
    pub image: [f64; 2],
    /// The same point on the ground, metres (None without a homography).
    pub ground: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateFacts {
    /// Canonical text, or the best guess when unreadable.
    pub text: String,
    pub valid: bool,
    pub confidence: f32,
    pub reads: usize,
    /// `white`, `yellow`, `blue`, `red` when measured.
    pub colour: Option<String>,
    /// Every read that took part in the vote, with its confidence.
    pub candidates: Vec<PlateCandidate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateCandidate {
    pub text: String,
    pub confidence: f32,
    /// Whether this read parsed as a valid Vietnamese plate.
    pub valid: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
    pub role: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Software {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path with `/` separators.
    pub path: String,
    /// `still_before`, `still_stop_line`, `still_clearance`, `clip`,
    /// `plate_crop`, `evidence_sheet`.
    pub role: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The canonical bytes of any JSON value: object keys sorted by their
/// UTF-8 bytes at every level, no white space, numbers and strings as
/// serde_json writes them. Sorting is done here rather than trusted to the
/// map type, which a dependency's `preserve_order` feature could change.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // A string always serialises.
                out.extend(serde_json::to_vec(k).unwrap_or_default());
                out.push(b':');
                if let Some(v) = map.get(k.as_str()) {
                    write_canonical(v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
    }
}

impl Manifest {
    /// The canonical bytes: what is signed, written and chained.
    ///
    /// Numbers go through their JSON text once before canonicalising, so
    /// an `f32` field (written as `400.01678`) has the form a verifier gets
    /// when it parses the file (an `f64`), and re-canonicalising the parsed
    /// file gives these bytes exactly.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let text = serde_json::to_vec(self)?;
        let value: serde_json::Value = serde_json::from_slice(&text)?;
        Ok(canonical_json(&value))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
