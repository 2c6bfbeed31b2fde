//! The site configuration: one TOML file describes one intersection.
//!
//! Every key is documented in `configs/example-intersection.toml`; this module
//! is its typed form. Unknown keys are rejected (`deny_unknown_fields`) so a
//! typo never silently disables a rule.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::geometry::{Point, Segment};

/// The only schema version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// `[x, y]` in image pixels.
pub type ImagePoint = [f64; 2];
/// `[[x, y], [x, y]]` in image pixels.
pub type ImageLine = [ImagePoint; 2];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    pub schema_version: u32,
    pub site: Site,
    pub cameras: BTreeMap<String, Camera>,
    #[serde(default)]
    pub signals: BTreeMap<String, Signal>,
    #[serde(default)]
    pub approaches: BTreeMap<String, Approach>,
    pub detector: Detector,
    #[serde(default)]
    pub plates: Plates,
    pub evidence: Evidence,
    pub sink: Sink,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub device_id: String,
    /// Offset used when showing local times; all stored times are UTC.
    #[serde(default = "default_utc_offset")]
    pub utc_offset: String,
}

fn default_utc_offset() -> String {
    "+07:00".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub source: Source,
    /// `[width, height]` of the decoded frames; every image coordinate of this
    /// camera must lie inside it.
    pub frame_size: [u32; 2],
    /// Nominal frame rate, used only for sizing buffers; timing comes from PTS.
    pub fps: Option<f64>,
    pub homography: Option<Homography>,
    /// `[x, y, w, h]` in frame pixels: the part of the frame the detector
    /// looks at, for a camera whose approaches fill only part of its view.
    /// The detector's input is fitted to this rectangle instead of the
    /// frame, so the pixels outside cost nothing; road users outside are
    /// never detected. Every line and lane of this camera's approaches must
    /// lie inside it; leave a vehicle's height of room beyond the far line,
    /// since a box is detected by its whole body. Absent: the whole frame.
    pub detect_region: Option<[f64; 4]>,
}

impl Camera {
    /// The detect region as whole pixels `[x, y, w, h]` clipped to the frame,
    /// fractions rounded outwards; `None` when none is set.
    pub fn detect_region_px(&self) -> Option<[u32; 4]> {
        let [fw, fh] = self.frame_size;
        let [x, y, w, h] = self.detect_region?;
        let clip = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as u32;
        let (x0, y0) = (clip(x.floor(), fw), clip(y.floor(), fh));
        let (x1, y1) = (clip((x + w).ceil(), fw), clip((y + h).ceil(), fh));
        Some([x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)])
    }

    /// What the detector sees of this camera, `[x, y, w, h]` in pixels: its
    /// detect region, or the whole frame.
    pub fn detect_rect(&self) -> [u32; 4] {
        let [fw, fh] = self.frame_size;
        self.detect_region_px().unwrap_or([0, 0, fw, fh])
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A video file (MP4, MKV, AVI; H.264, H.265, MJPEG).
    File {
        path: String,
        #[serde(default)]
        pacing: Pacing,
        /// Wall-clock time of the first frame, for replaying a recording:
        /// frame times become `recorded_at` + PTS instead of the time of
        /// reading, so a replay meets the same signal phases every time.
        recorded_at: Option<toml::value::Datetime>,
    },
    /// An RTSP camera; credentials may sit in the URL or come from the environment.
    Rtsp {
        url: String,
        #[serde(default)]
        transport: RtspTransport,
        username: Option<String>,
        /// Name of the environment variable that holds the password.
        password_env: Option<String>,
    },
    /// A multipart HTTP MJPEG stream.
    HttpMjpeg { url: String },
    /// A directory or glob of still images played as a stream.
    Images { glob: String, fps: f64 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pacing {
    /// Deliver frames at the rate their timestamps say, like a live camera.
    #[default]
    Realtime,
    /// Deliver frames as fast as they decode (benchmarks, batch runs).
    Fast,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

/// Image↔ground point pairs from which the camera's homography is fitted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Homography {
    pub points: Vec<PointPair>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointPair {
    /// Pixels.
    pub image: ImagePoint,
    /// Metres on the ground plane.
    pub ground: [f64; 2],
}

/// One signal head (or signal group) and the sources of its phase.
/// Two or more sources are cross-checked; disagreement makes the interval
/// not enforceable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub fixed_time: Option<FixedTimePlan>,
    pub vision: Option<VisionSignal>,
    pub controller: Option<ControllerSignal>,
}

impl Signal {
    pub fn source_count(&self) -> usize {
        usize::from(self.fixed_time.is_some())
            + usize::from(self.vision.is_some())
            + usize::from(self.controller.is_some())
    }
}

/// A fixed-time plan: phases repeat every `cycle_s` seconds from `anchor`
/// (a wall-clock instant with an explicit UTC offset) plus `offset_s`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedTimePlan {
    pub cycle_s: f64,
    pub anchor: toml::value::Datetime,
    #[serde(default)]
    pub offset_s: f64,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub state: LampState,
    pub duration_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LampState {
    Red,
    Amber,
    Green,
}

/// The lamp state read from a camera image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionSignal {
    pub camera: String,
    /// `[x, y, width, height]` of the signal head in pixels.
    pub lamp_roi: [f64; 4],
}

/// UDP JSON phase-change messages from the signal controller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSignal {
    /// `host:port` to listen on.
    pub listen: String,
    /// The controller's name for this signal group.
    pub group: String,
}

/// One approach to the intersection: where traffic stops and which way it goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approach {
    pub camera: String,
    pub signal: Option<String>,
    /// Where a vehicle must stop at red.
    pub stop_line: ImageLine,
    /// The far side of the crosswalk: a red-light run must cross it too.
    pub clearance_line: Option<ImageLine>,
    /// An arrow along the direction of travel, tail then head.
    pub travel: ImageLine,
    /// Time into red during which a crossing is never a violation.
    #[serde(default = "default_grace_s")]
    pub grace_s: f64,
    /// A red after an amber shorter than this is not enforced.
    #[serde(default = "default_min_amber_s")]
    pub min_amber_s: f64,
    /// Seconds stopped beyond the stop line during red before it counts.
    #[serde(default = "default_encroachment_s")]
    pub encroachment_s: f64,
    pub rules: Vec<Rule>,
    /// Road-user classes the rules apply to.
    #[serde(default = "default_enforce_classes")]
    pub enforce_classes: Vec<String>,
    #[serde(default)]
    pub lanes: BTreeMap<String, Lane>,
    /// Lines across the exit roads, one per movement (`straight`, `left`,
    /// `right`, `u_turn`): the first one a road user crosses after the stop
    /// line is the movement it made. Needed by `lane_movement`.
    #[serde(default)]
    pub exits: BTreeMap<Movement, ImageLine>,
    pub speed: Option<SpeedZone>,
}

fn default_grace_s() -> f64 {
    0.3
}
fn default_min_amber_s() -> f64 {
    3.0
}
fn default_encroachment_s() -> f64 {
    2.0
}
fn default_enforce_classes() -> Vec<String> {
    ["car", "motorbike", "bus", "truck"]
        .map(str::to_owned)
        .to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    RedLight,
    StopLineEncroachment,
    Speeding,
    WrongWay,
    LaneMovement,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lane {
    pub polygon: Vec<ImagePoint>,
    pub movements: Vec<Movement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    Straight,
    Left,
    Right,
    UTurn,
}

impl Movement {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Movement::Straight => "straight",
            Movement::Left => "left",
            Movement::Right => "right",
            Movement::UTurn => "u_turn",
        }
    }
}

/// Speed is measured between two lines whose ground distance the homography gives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedZone {
    pub limit_kmh: f64,
    /// Measured speed must exceed the limit by more than this to count.
    #[serde(default)]
    pub tolerance_kmh: f64,
    pub entry_line: ImageLine,
    pub exit_line: ImageLine,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detector {
    /// A model name from `models/manifest.toml`.
    pub model: String,
    #[serde(default = "default_input_size")]
    pub input_size: u32,
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    #[serde(default = "default_nms_iou")]
    pub nms_iou: f64,
    #[serde(default)]
    pub execution_provider: ExecutionProvider,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    #[serde(default)]
    pub threads: usize,
    /// ONNX Runtime graph optimisation level.
    #[serde(default)]
    pub optimization: GraphOptimization,
    /// The most images one detector run takes: frames of different cameras
    /// (and views of one frame) share a run, up to this many. 1 runs them
    /// one at a time. A model exported with a fixed batch of 1 is given a
    /// dynamic one in memory when this is above 1. Absent: see
    /// [`Detector::max_batch`].
    pub max_batch: Option<usize>,
    /// Fit the network input to the cameras' frames instead of the square:
    /// `input_size` along the long side, the short side rounded up to a
    /// multiple of 32 (640x384 for 16:9 frames, ~40% less work for the same
    /// boxes). YOLOv8-format detectors only; another model keeps its square,
    /// with a warning. Default: on.
    #[serde(default = "default_fit_input")]
    pub fit_input: bool,
    /// Road-user type (or `traffic_light`) -> the model's class labels.
    pub classes: BTreeMap<String, Vec<String>>,
    /// Extra views of each frame (a mirrored copy, tiles), merged with the
    /// plain one. Absent: one inference per frame.
    #[serde(default)]
    pub views: DetectorViews,
}

impl Detector {
    /// Images per detector run: `max_batch` if set, else 1 on a CPU, where
    /// batching gained nothing on a 2-core box and cost ~175 MB with 4
    /// streams, and [`GPU_MAX_BATCH`] on a GPU, where one run per frame
    /// leaves the device waiting on the host.
    pub fn max_batch(&self) -> usize {
        self.max_batch.unwrap_or(match self.execution_provider {
            ExecutionProvider::Cpu => 1,
            ExecutionProvider::Cuda | ExecutionProvider::Tensorrt => GPU_MAX_BATCH,
        })
    }
}

/// Images per detector run on a GPU unless `[detector] max_batch` says.
pub const GPU_MAX_BATCH: usize = 8;

/// `[detector.views]`: more looks at each frame for more recall on small
/// and crowded road users. Each view is one more inference per frame.
///
/// ```toml
/// [detector.views]
/// flip = true            # also the frame mirrored left-right
/// merge = "wbf"          # or "nms"
/// merge_iou = 0.55
/// [detector.views.tiles]
/// grid = [2, 1]                    # columns, rows
/// region = [0.0, 0.19, 1.0, 0.69]  # x1, y1, x2, y2 as fractions of the frame
/// overlap = 0.2
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorViews {
    /// Also detect on the frame mirrored left-right (one more inference).
    #[serde(default)]
    pub flip: bool,
    /// Also detect on a grid of tiles, each scaled up to the network input.
    pub tiles: Option<DetectorTiles>,
    /// How the views' detections of one object become one detection.
    #[serde(default)]
    pub merge: ViewMerge,
    /// Same-class boxes from different views overlapping more than this are
    /// one object.
    #[serde(default = "default_merge_iou")]
    pub merge_iou: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorTiles {
    /// Columns and rows of tiles (1 to 8 each).
    pub grid: [u32; 2],
    /// The part of the frame the grid covers: x1, y1, x2, y2 as fractions of
    /// the frame's width and height (0 to 1), so one setting fits every
    /// camera. Default: the whole frame.
    #[serde(default = "default_tile_region")]
    pub region: [f64; 4],
    /// How far each tile reaches into its neighbours, as a fraction of its
    /// size on each side (0 to 0.5).
    #[serde(default = "default_tile_overlap")]
    pub overlap: f64,
}

/// How detections of one object from several views are combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewMerge {
    /// Weighted box fusion: the score-weighted mean box, the highest score.
    #[default]
    Wbf,
    /// Keep the highest-scoring box, drop the others.
    Nms,
}

impl Default for DetectorViews {
    /// One plain view (no flip, no tiles).
    fn default() -> Self {
        Self {
            flip: false,
            tiles: None,
            merge: ViewMerge::default(),
            merge_iou: default_merge_iou(),
        }
    }
}

fn default_merge_iou() -> f64 {
    0.55
}
fn default_tile_region() -> [f64; 4] {
    [0.0, 0.0, 1.0, 1.0]
}
fn default_tile_overlap() -> f64 {
    0.2
}

fn default_input_size() -> u32 {
    640
}
fn default_confidence() -> f64 {
    0.25
}
fn default_fit_input() -> bool {
    true
}

fn default_nms_iou() -> f64 {
    0.45
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphOptimization {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionProvider {
    #[default]
    Cpu,
    Cuda,
    Tensorrt,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plates {
    #[serde(default = "default_text_detector")]
    pub text_detector: String,
    #[serde(default = "default_recogniser")]
    pub recogniser: String,
    pub plate_detector: Option<String>,
    /// How many of a track's best reads vote on its plate.
    #[serde(default = "default_votes")]
    pub votes: usize,
    /// A vehicle crop's width is scaled toward this many pixels for the
    /// text detector that locates its plate (which then spans about a
    /// third of it). The detector's cost grows with the square of it.
    #[serde(default = "default_locate_width_px")]
    pub locate_width_px: u32,
    /// The share of a vehicle crop's height, from the top, where no plate
    /// is searched for (plates sit on a vehicle's lower part).
    #[serde(default = "default_search_from")]
    pub search_from: f32,
    /// When above 0, the plate is first searched for with the crop scaled
    /// toward this width, and only around what that finds again at
    /// `locate_width_px`: most of the detector's cost is then paid at the
    /// coarse width. 0 searches once, at `locate_width_px`.
    #[serde(default = "default_locate_coarse_width_px")]
    pub locate_coarse_width_px: u32,
    /// A cheaper text_recogniser that reads every one-line plate first, on
    /// a CPU; `recogniser` then reads only the plates it is unsure of.
    /// `"none"` ([`NO_FIRST_PASS`]): `recogniser` reads every plate. See
    /// [`Plates::first_pass_model`].
    #[serde(default = "default_first_pass")]
    pub first_pass: String,
    /// A first-pass reading stands when it is a valid plate, needed no
    /// repair, and every letter and digit has at least this confidence.
    #[serde(default = "default_first_pass_min_confidence")]
    pub first_pass_min_confidence: f32,
}

impl Default for Plates {
    fn default() -> Self {
        Self {
            text_detector: default_text_detector(),
            recogniser: default_recogniser(),
            plate_detector: None,
            votes: default_votes(),
            locate_width_px: default_locate_width_px(),
            search_from: default_search_from(),
            locate_coarse_width_px: default_locate_coarse_width_px(),
            first_pass: default_first_pass(),
            first_pass_min_confidence: default_first_pass_min_confidence(),
        }
    }
}

/// The text detector that locates plates unless a config names another.
pub const DEFAULT_TEXT_DETECTOR: &str = "ppocrv6-det-small";

fn default_text_detector() -> String {
    DEFAULT_TEXT_DETECTOR.to_owned()
}
// On 1,426 composited vehicle crops (tools/vehicle-plate-set) with the
// small text detector, 384 px below 30% of the height read 96.84% of the
// plates at 70 ms a crop to locate, where the whole crop scaled toward
// 640 px (up to 4x) read 96.98% at 250 ms
// (benches/results/2026-11-28-plate-locate).
fn default_locate_width_px() -> u32 {
    384
}
fn default_locate_coarse_width_px() -> u32 {
    0
}
impl Plates {
    /// The first-pass recogniser, unless `first_pass` is `"none"`.
    pub fn first_pass_model(&self) -> Option<&str> {
        (self.first_pass != NO_FIRST_PASS).then_some(self.first_pass.as_str())
    }
}

/// The first pass unless a config names another: on 1,232 one-line plates
/// (`vn-plates-1line`) it read 849 alone, and the mean time per plate fell
/// to 0.72 of the small recogniser's (3.9 against 5.5 ms) at the same
/// 99.51%
/// (benches/results/2026-11-28-first-pass).
pub const DEFAULT_FIRST_PASS: &str = "ppocrv6-rec-tiny";
/// The `first_pass` value that turns the first pass off.
pub const NO_FIRST_PASS: &str = "none";

fn default_first_pass() -> String {
    DEFAULT_FIRST_PASS.to_owned()
}

/// The least character confidence of a first-pass reading that stands,
/// unless a config says otherwise. Chosen on `vn-plates-silver` (never on
/// the eval sets), where the first pass's readings that stood agreed with
/// the small recogniser's on 99.6% of the plates at 0.9 and 98.7% at 0.8.
pub const DEFAULT_FIRST_PASS_MIN_CONFIDENCE: f32 = 0.9;

fn default_first_pass_min_confidence() -> f32 {
    DEFAULT_FIRST_PASS_MIN_CONFIDENCE
}
fn default_search_from() -> f32 {
    0.3
}
fn default_recogniser() -> String {
    "ppocrv6-rec-small".to_owned()
}
fn default_votes() -> usize {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub output_dir: String,
    #[serde(default = "default_roll_s")]
    pub pre_roll_s: f64,
    #[serde(default = "default_roll_s")]
    pub post_roll_s: f64,
    /// Path of the device's Ed25519 private key (`vigil keygen` writes it).
    pub device_key: String,
    pub spool_dir: String,
    pub spool_quota_mb: u64,
}

fn default_roll_s() -> f64 {
    3.0
}

/// Where finished evidence packages go.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sink {
    /// The case system's HTTP ingest API.
    Http {
        url: String,
        #[serde(default = "default_timeout_s")]
        timeout_s: f64,
    },
}

fn default_timeout_s() -> f64 {
    30.0
}

/// Converts a configured `[[x, y], [x, y]]` to a segment.
pub fn segment(line: &ImageLine) -> Segment {
    Segment::new(Point::from(line[0]), Point::from(line[1]))
}

impl Homography {
    /// Pixels this far from where the fit puts them are outliers.
    pub const OUTLIER_TOLERANCE_PX: f64 = 5.0;

    /// The image -> ground map: a robust fit ground -> image (errors are
    /// judged in pixels, where the points were clicked), then inverted.
    pub fn to_ground(
        &self,
    ) -> Result<crate::homography::Homography, crate::homography::HomographyError> {
        let image: Vec<Point> = self.points.iter().map(|p| Point::from(p.image)).collect();
        let ground: Vec<Point> = self.points.iter().map(|p| Point::from(p.ground)).collect();
        let (to_image, _) =
            crate::homography::Homography::fit_robust(&ground, &image, Self::OUTLIER_TOLERANCE_PX)?;
        to_image
            .inverse()
            .ok_or(crate::homography::HomographyError::Degenerate)
    }
}
