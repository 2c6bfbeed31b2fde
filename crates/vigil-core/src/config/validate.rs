//! Semantic checks: a config can be valid TOML of the right shape and still
//! describe an impossible intersection. Each check here names the key and a
//! reason a site engineer can act on.

use std::collections::BTreeMap;

use super::diagnostic::KeyPath;
use super::schema::*;
use crate::geometry::{has_four_in_general_position, Point, Polygon};
use crate::road_user::RoadUserClass;

/// What the validator needs to know about the installed models.
#[derive(Debug, Clone, Default)]
pub struct ModelCatalog {
    pub models: BTreeMap<String, CatalogModel>,
}

#[derive(Debug, Clone)]
pub struct CatalogModel {
    pub role: ModelRole,
    pub labels: Vec<String>,
}

/// What a model is for; a config may only use a model in its own role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRole {
    VehicleDetector,
    PlateDetector,
    TextDetector,
    TextRecogniser,
    TextOrientation,
}

impl ModelRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelRole::VehicleDetector => "vehicle_detector",
            ModelRole::PlateDetector => "plate_detector",
            ModelRole::TextDetector => "text_detector",
            ModelRole::TextRecogniser => "text_recogniser",
            ModelRole::TextOrientation => "text_orientation",
        }
    }
}

/// A semantic problem at a key path, before it is placed in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: KeyPath,
    pub message: String,
}

/// Tolerance for "nearly collinear" homography points, relative to their spread.
const COLLINEAR_TOLERANCE: f64 = 1e-3;
/// Sine of the smallest angle accepted between the travel arrow and the stop line.
const MIN_CROSSING_SIN: f64 = 0.17; // about 10 degrees
/// A grace period longer than this would let real red-light runs through.
const MAX_GRACE_S: f64 = 2.0;

struct Checker<'a> {
    config: &'a SiteConfig,
    catalog: Option<&'a ModelCatalog>,
    issues: Vec<Issue>,
}

/// Runs every semantic check. `catalog` (from the model manifest) enables the
/// model and class-label checks; without it they are skipped.
pub fn validate(config: &SiteConfig, catalog: Option<&ModelCatalog>) -> Vec<Issue> {
    let mut c = Checker {
        config,
        catalog,
        issues: Vec::new(),
    };
    c.schema_version();
    c.cameras();
    c.signals();
    c.approaches();
    c.detector();
    c.plates();
    c.evidence();
    c.sink();
    c.issues
}

impl Checker<'_> {
    fn report(&mut self, path: KeyPath, message: impl Into<String>) {
        self.issues.push(Issue {
            path,
            message: message.into(),
        });
    }

    fn schema_version(&mut self) {
        if self.config.schema_version != SCHEMA_VERSION {
            self.report(
                KeyPath::of(&["schema_version"]),
                format!(
                    "schema version {} is not supported; this build reads version {SCHEMA_VERSION}",
                    self.config.schema_version
                ),
            );
        }
    }

    fn cameras(&mut self) {
        if self.config.cameras.is_empty() {
            self.report(KeyPath::of(&["cameras"]), "at least one camera is required");
        }
        for (id, cam) in &self.config.cameras {
            let path = KeyPath::of(&["cameras", id]);
            let [w, h] = cam.frame_size;
            if w == 0 || h == 0 {
                self.report(
                    path.key("frame_size"),
                    format!("frame size {w}x{h} has a zero side"),
                );
            }
            if let Some(fps) = cam.fps {
                if !(fps > 0.0 && fps <= 1000.0) {
                    self.report(
                        path.key("fps"),
                        format!("frame rate {fps} is not in (0, 1000]"),
                    );
                }
            }
            self.source(&path.key("source"), &cam.source);
            if let Some(hom) = &cam.homography {
                self.homography(id, &path.key("homography"), hom);
            }
            if let Some([x, y, w, h]) = cam.detect_region {
                let rpath = path.key("detect_region");
                if !(w > 0.0 && h > 0.0) {
                    self.report(
                        rpath.clone(),
                        format!("detect region {}x{} has no area", fmt_num(w), fmt_num(h)),
                    );
                }
                let _ = self.point_in_frame(id, &rpath, [x, y])
                    && self.point_in_frame(id, &rpath, [x + w, y + h]);
            }
        }
    }

    fn source(&mut self, path: &KeyPath, source: &Source) {
        let (url, schemes): (&str, &[&str]) = match source {
            Source::File {
                path: file,
                recorded_at,
                ..
            } => {
                if file.trim().is_empty() {
                    self.report(path.key("path"), "the file path is empty");
                }
                if let Some(at) = recorded_at {
                    self.full_datetime(&path.key("recorded_at"), at);
                }
                return;
            }
            Source::Images { glob, fps } => {
                if glob.trim().is_empty() {
                    self.report(path.key("glob"), "the image glob is empty");
                }
                if !positive(*fps) {
                    self.report(
                        path.key("fps"),
                        format!("frame rate {fps} must be positive"),
                    );
                }
                return;
            }
            Source::Rtsp { url, .. } => (url, &["rtsp://", "rtsps://"]),
            Source::HttpMjpeg { url } => (url, &["http://", "https://"]),
        };
        if !schemes.iter().any(|s| url.starts_with(s)) {
            self.report(
                path.key("url"),
                format!("URL {url:?} must start with {}", schemes.join(" or ")),
            );
        }
    }

    fn homography(&mut self, camera: &str, path: &KeyPath, hom: &Homography) {
        let points_path = path.key("points");
        let n = hom.points.len();
        for (i, pair) in hom.points.iter().enumerate() {
            self.point_in_frame(camera, &points_path.index(i).key("image"), pair.image);
        }
        if n < 4 {
            self.report(
                points_path,
                format!("a homography needs at least 4 image/ground point pairs, found {n}"),
            );
            return;
        }
        let image: Vec<Point> = hom.points.iter().map(|p| Point::from(p.image)).collect();
        let ground: Vec<Point> = hom.points.iter().map(|p| Point::from(p.ground)).collect();
        for (what, pts) in [("image", &image), ("ground", &ground)] {
            if !has_four_in_general_position(pts, COLLINEAR_TOLERANCE) {
                self.report(
                    points_path.clone(),
                    format!(
                        "the {what} points are degenerate: no four of them are free of three \
                         (nearly) collinear points, so no homography can be fitted; \
                         spread the points over the road surface"
                    ),
                );
            }
        }
    }

    fn frame_size(&self, camera: &str) -> Option<[u32; 2]> {
        self.config.cameras.get(camera).map(|c| c.frame_size)
    }

    /// Reports a point outside its camera's frame; unknown cameras are reported elsewhere.
    fn point_in_frame(&mut self, camera: &str, path: &KeyPath, p: ImagePoint) -> bool {
        let Some([w, h]) = self.frame_size(camera) else {
            return true;
        };
        let [x, y] = p;
        let inside = x >= 0.0 && y >= 0.0 && x <= f64::from(w) && y <= f64::from(h);
        if !inside {
            self.report(
                path.clone(),
                format!(
                    "point ({}, {}) lies outside the {w}x{h} frame of camera {camera:?}",
                    fmt_num(x),
                    fmt_num(y)
                ),
            );
        }
        inside
    }

    /// A line must be inside the frame and have a length.
    fn line(&mut self, camera: &str, path: &KeyPath, line: &ImageLine) -> bool {
        let mut ok = true;
        for (i, p) in line.iter().enumerate() {
            ok &= self.point_in_frame(camera, &path.index(i), *p);
        }
        if segment(line).length() < 1.0 {
            self.report(
                path.clone(),
                "the line has zero length: its two ends coincide",
            );
            ok = false;
        }
        ok
    }

    fn camera_ref(&mut self, path: &KeyPath, camera: &str) -> bool {
        if self.config.cameras.contains_key(camera) {
            return true;
        }
        let known = join_keys(self.config.cameras.keys());
        self.report(
            path.clone(),
            format!("unknown camera {camera:?}; cameras defined under [cameras]: {known}"),
        );
        false
    }

    fn signals(&mut self) {
        for (id, signal) in &self.config.signals {
            let path = KeyPath::of(&["signals", id]);
            if signal.source_count() == 0 {
                self.report(
                    path.clone(),
                    "the signal has no source: add fixed_time, vision or controller",
                );
            }
            if let Some(plan) = &signal.fixed_time {
                self.fixed_time(&path.key("fixed_time"), plan);
            }
            if let Some(vision) = &signal.vision {
                let vpath = path.key("vision");
                if self.camera_ref(&vpath.key("camera"), &vision.camera) {
                    let [x, y, w, h] = vision.lamp_roi;
                    let roi = vpath.key("lamp_roi");
                    if w <= 0.0 || h <= 0.0 {
                        self.report(roi.clone(), format!("lamp ROI {w}x{h} has no area"));
                    }
                    let corner = [x + w, y + h];
                    let _ = self.point_in_frame(&vision.camera, &roi, [x, y])
                        && self.point_in_frame(&vision.camera, &roi, corner);
                }
            }
            if let Some(ctl) = &signal.controller {
                if ctl.listen.parse::<std::net::SocketAddr>().is_err() {
                    self.report(
                        path.key("controller").key("listen"),
                        format!(
                            "{:?} is not a socket address such as 0.0.0.0:5005",
                            ctl.listen
                        ),
                    );
                }
            }
        }
    }

    fn fixed_time(&mut self, path: &KeyPath, plan: &FixedTimePlan) {
        if !positive(plan.cycle_s) {
            self.report(
                path.key("cycle_s"),
                format!("cycle {}s must be positive", plan.cycle_s),
            );
        }
        let mut total = 0.0;
        for (i, phase) in plan.phases.iter().enumerate() {
            if !positive(phase.duration_s) {
                self.report(
                    path.key("phases").index(i).key("duration_s"),
                    format!("phase duration {}s must be positive", phase.duration_s),
                );
            }
            total += phase.duration_s;
        }
        if plan.phases.is_empty() {
            self.report(
                path.key("phases"),
                "a fixed-time plan needs at least one phase",
            );
        } else if (total - plan.cycle_s).abs() > 1e-6 {
            self.report(
                path.key("phases"),
                format!(
                    "phase durations add up to {}s but the cycle is {}s",
                    fmt_num(total),
                    fmt_num(plan.cycle_s)
                ),
            );
        }
        if !plan.phases.iter().any(|p| p.state == LampState::Red) {
            self.report(
                path.key("phases"),
                "the plan has no red phase, so nothing can be enforced",
            );
        }
        self.full_datetime(&path.key("anchor"), &plan.anchor);
    }

    /// Wall-clock instants must be unambiguous: date, time and UTC offset.
    fn full_datetime(&mut self, path: &KeyPath, at: &toml::value::Datetime) {
        if at.date.is_none() || at.time.is_none() || at.offset.is_none() {
            self.report(
                path.clone(),
                format!(
                    "{at} must be a full date-time with a UTC offset, \
                     e.g. 2026-01-01T00:00:00+07:00"
                ),
            );
        }
    }

    fn approaches(&mut self) {
        for (id, approach) in &self.config.approaches {
            self.approach(id, approach);
        }
    }

    fn approach(&mut self, id: &str, a: &Approach) {
        let path = KeyPath::of(&["approaches", id]);
        let camera_known = self.camera_ref(&path.key("camera"), &a.camera);
        if let Some(signal) = &a.signal {
            if !self.config.signals.contains_key(signal) {
                let known = join_keys(self.config.signals.keys());
                self.report(
                    path.key("signal"),
                    format!("unknown signal {signal:?}; signals defined under [signals]: {known}"),
                );
            }
        }
        for (i, class) in a.enforce_classes.iter().enumerate() {
            if class.parse::<RoadUserClass>().is_err() {
                self.report(
                    path.key("enforce_classes").index(i),
                    format!(
                        "unknown class {class:?}; known classes: {}",
                        RoadUserClass::names()
                    ),
                );
            }
        }
        if !(0.0..=MAX_GRACE_S).contains(&a.grace_s) {
            self.report(
                path.key("grace_s"),
                format!("grace {}s must lie between 0 and {MAX_GRACE_S}s", a.grace_s),
            );
        }
        for (key, value) in [
            ("min_amber_s", a.min_amber_s),
            ("encroachment_s", a.encroachment_s),
        ] {
            if value < 0.0 {
                self.report(path.key(key), format!("{value}s must not be negative"));
            }
        }
        self.rule_requirements(&path, a);
        if !camera_known {
            return;
        }
        let cam = a.camera.as_str();
        let stop_ok = self.line(cam, &path.key("stop_line"), &a.stop_line);
        let travel_ok = self.line(cam, &path.key("travel"), &a.travel);
        let stop = segment(&a.stop_line);
        let travel = segment(&a.travel);
        let crossing = stop_ok && travel_ok && travel.sin_angle_to(&stop) >= MIN_CROSSING_SIN;
        if stop_ok && travel_ok && !crossing {
            self.report(
                path.key("travel"),
                "the travel arrow runs (nearly) parallel to the stop line, so it cannot say \
                 which side is the intersection",
            );
        }
        if let Some(clearance) = &a.clearance_line {
            let cpath = path.key("clearance_line");
            if self.line(cam, &cpath, clearance) && crossing {
                self.clearance_side(&cpath, &stop, &travel, clearance);
            }
        }
        for (lane_id, lane) in &a.lanes {
            let lpath = path.key("lanes").key(lane_id);
            for (i, p) in lane.polygon.iter().enumerate() {
                self.point_in_frame(cam, &lpath.key("polygon").index(i), *p);
            }
            let poly = Polygon::new(lane.polygon.iter().copied().map(Point::from).collect());
            if lane.polygon.len() < 3 {
                self.report(
                    lpath.key("polygon"),
                    format!(
                        "a lane polygon needs at least 3 vertices, found {}",
                        lane.polygon.len()
                    ),
                );
            } else if !poly.is_simple() {
                self.report(
                    lpath.key("polygon"),
                    "the lane polygon crosses itself or has no area; list its vertices in order \
                     around the lane",
                );
            }
            if lane.movements.is_empty() {
                self.report(
                    lpath.key("movements"),
                    "a lane must allow at least one movement",
                );
            }
        }
        for (movement, line) in &a.exits {
            self.line(cam, &path.key("exits").key(movement.as_str()), line);
        }
        if let Some(speed) = &a.speed {
            self.speed_zone(cam, &path.key("speed"), speed);
        }
        self.inside_detect_region(&path, a);
    }

    /// Every line and lane the approach's rules watch must lie inside its
    /// camera's detect region: the detector never looks outside it, so a rule
    /// there would silently never fire.
    fn inside_detect_region(&mut self, path: &KeyPath, a: &Approach) {
        let Some(region @ [x, y, w, h]) = self
            .config
            .cameras
            .get(&a.camera)
            .and_then(|c| c.detect_region)
        else {
            return;
        };
        let mut points: Vec<(KeyPath, ImagePoint)> = Vec::new();
        let mut line = |key: KeyPath, l: &ImageLine| {
            points.extend(l.iter().enumerate().map(|(i, p)| (key.index(i), *p)));
        };
        line(path.key("stop_line"), &a.stop_line);
        if let Some(c) = &a.clearance_line {
            line(path.key("clearance_line"), c);
        }
        for (movement, l) in &a.exits {
            line(path.key("exits").key(movement.as_str()), l);
        }
        if let Some(speed) = &a.speed {
            line(path.key("speed").key("entry_line"), &speed.entry_line);
            line(path.key("speed").key("exit_line"), &speed.exit_line);
        }
        for (lane_id, lane) in &a.lanes {
            let lpath = path.key("lanes").key(lane_id).key("polygon");
            points.extend(
                lane.polygon
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (lpath.index(i), *p)),
            );
        }
        for (key, [px, py]) in points {
            if !(px >= x && py >= y && px <= x + w && py <= y + h) {
                self.report(
                    key,
                    format!(
                        "point ({}, {}) lies outside camera {:?}'s detect_region {}: the \
                         detector never looks there, so this rule could not see road users \
                         at it; widen detect_region",
                        fmt_num(px),
                        fmt_num(py),
                        a.camera,
                        fmt_rect(region)
                    ),
                );
            }
        }
    }

    /// The clearance line must lie wholly beyond the stop line along the travel arrow.
    fn clearance_side(
        &mut self,
        path: &KeyPath,
        stop: &crate::geometry::Segment,
        travel: &crate::geometry::Segment,
        clearance: &ImageLine,
    ) {
        let clearance_seg = segment(clearance);
        if clearance_seg.intersects(stop) {
            self.report(path.clone(), "the clearance line crosses the stop line");
            return;
        }
        // The side of the stop line that the travel arrow points into.
        let ahead = stop.side(stop.midpoint() + travel.direction());
        let wrong = clearance
            .iter()
            .any(|p| stop.side(Point::from(*p)) * ahead <= 0.0);
        if wrong {
            self.report(
                path.clone(),
                "the clearance line lies on the approach side of the stop line; it must be \
                 beyond the stop line in the direction of travel (check `travel` too)",
            );
        }
    }

    fn rule_requirements(&mut self, path: &KeyPath, a: &Approach) {
        let rules = path.key("rules");
        if a.rules.is_empty() {
            self.report(rules.clone(), "no rules are enabled for this approach");
        }
        let needs_signal = [Rule::RedLight, Rule::StopLineEncroachment];
        if a.signal.is_none() && a.rules.iter().any(|r| needs_signal.contains(r)) {
            self.report(
                rules.clone(),
                "red_light and stop_line_encroachment need `signal` set for this approach",
            );
        }
        if a.rules.contains(&Rule::RedLight) && a.clearance_line.is_none() {
            self.report(
                rules.clone(),
                "red_light needs `clearance_line`: a vehicle that stops over the stop line is an \
                 encroachment, not a red-light run",
            );
        }
        if a.rules.contains(&Rule::Speeding) && a.speed.is_none() {
            self.report(
                rules.clone(),
                "speeding needs a [speed] zone for this approach",
            );
        }
        if a.rules.contains(&Rule::LaneMovement) && a.lanes.is_empty() {
            self.report(rules.clone(), "lane_movement needs at least one lane");
        }
        if a.rules.contains(&Rule::LaneMovement) && a.exits.is_empty() {
            self.report(
                rules.clone(),
                "lane_movement needs [exits]: a line across each exit road, so the movement a \
                 road user makes can be seen",
            );
        }

        let homography = self
            .config
            .cameras
            .get(&a.camera)
            .is_some_and(|c| c.homography.is_some());
        if a.speed.is_some() && !homography && self.config.cameras.contains_key(&a.camera) {
            self.report(
                path.key("speed"),
                format!(
                    "a speed zone needs ground distances, but camera {:?} has no [homography]",
                    a.camera
                ),
            );
        }
    }

    fn speed_zone(&mut self, camera: &str, path: &KeyPath, zone: &SpeedZone) {
        if !positive(zone.limit_kmh) {
            self.report(
                path.key("limit_kmh"),
                format!("speed limit {} km/h must be positive", zone.limit_kmh),
            );
        }
        if zone.tolerance_kmh < 0.0 {
            self.report(path.key("tolerance_kmh"), "tolerance must not be negative");
        }
        let entry_ok = self.line(camera, &path.key("entry_line"), &zone.entry_line);
        let exit_ok = self.line(camera, &path.key("exit_line"), &zone.exit_line);
        if entry_ok && exit_ok && segment(&zone.entry_line).intersects(&segment(&zone.exit_line)) {
            self.report(
                path.key("exit_line"),
                "the exit line touches the entry line; speed needs a distance between them",
            );
        }
    }

    fn detector(&mut self) {
        let d = &self.config.detector;
        let path = KeyPath::of(&["detector"]);
        let labels = self.model_ref(&path.key("model"), &d.model, ModelRole::VehicleDetector);
        for (key, value) in [("confidence", d.confidence), ("nms_iou", d.nms_iou)] {
            if !(value > 0.0 && value <= 1.0) {
                self.report(path.key(key), format!("{value} must lie in (0, 1]"));
            }
        }
        if let Some(n) = d.max_batch.filter(|n| !(1..=64).contains(n)) {
            self.report(
                path.key("max_batch"),
                format!("{n} images per run must lie in 1..=64"),
            );
        }
        if d.input_size == 0 || !d.input_size.is_multiple_of(32) {
            self.report(
                path.key("input_size"),
                format!(
                    "input size {} must be a positive multiple of 32",
                    d.input_size
                ),
            );
        }
        self.detector_views(&path.key("views"), &d.views);
        let classes = path.key("classes");
        if d.classes.is_empty() {
            self.report(
                classes.clone(),
                "map at least one road-user type to model classes",
            );
        }
        for (kind, model_labels) in &d.classes {
            let kpath = classes.key(kind);
            if kind != TRAFFIC_LIGHT && kind.parse::<RoadUserClass>().is_err() {
                self.report(
                    kpath.clone(),
                    format!(
                        "unknown class {kind:?}; known classes: {}, {TRAFFIC_LIGHT}",
                        RoadUserClass::names()
                    ),
                );
            }
            let Some(labels) = &labels else { continue };
            for (i, label) in model_labels.iter().enumerate() {
                if !labels.iter().any(|l| l == label) {
                    self.report(
                        kpath.index(i),
                        format!(
                            "model {:?} has no class {label:?}; its classes include: {}",
                            d.model,
                            preview(labels)
                        ),
                    );
                }
            }
        }
    }

    fn detector_views(&mut self, path: &KeyPath, v: &DetectorViews) {
        if !(v.merge_iou > 0.0 && v.merge_iou <= 1.0) {
            self.report(
                path.key("merge_iou"),
                format!("{} must lie in (0, 1]", v.merge_iou),
            );
        }
        let Some(t) = &v.tiles else { return };
        let tiles = path.key("tiles");
        for (i, n) in t.grid.iter().enumerate() {
            if !(1..=8).contains(n) {
                self.report(
                    tiles.key("grid").index(i),
                    format!("{n} tiles; a grid has 1 to 8 columns and 1 to 8 rows"),
                );
            }
        }
        let [x1, y1, x2, y2] = t.region;
        let in_unit = t.region.iter().all(|c| (0.0..=1.0).contains(c));
        if !in_unit || x1 >= x2 || y1 >= y2 {
            self.report(
                tiles.key("region"),
                format!(
                    "region [{x1}, {y1}, {x2}, {y2}] must be x1, y1, x2, y2 as fractions of \
                     the frame (0 to 1) with x1 < x2 and y1 < y2"
                ),
            );
        }
        if !(0.0..=0.5).contains(&t.overlap) {
            self.report(
                tiles.key("overlap"),
                format!(
                    "overlap {} must lie in [0, 0.5] (a fraction of the tile size)",
                    t.overlap
                ),
            );
        }
    }

    fn plates(&mut self) {
        let p = &self.config.plates;
        let path = KeyPath::of(&["plates"]);
        self.model_ref(
            &path.key("text_detector"),
            &p.text_detector,
            ModelRole::TextDetector,
        );
        self.model_ref(
            &path.key("recogniser"),
            &p.recogniser,
            ModelRole::TextRecogniser,
        );
        if let Some(det) = &p.plate_detector {
            self.model_ref(&path.key("plate_detector"), det, ModelRole::PlateDetector);
        }
        if let Some(first) = p.first_pass_model() {
            self.model_ref(&path.key("first_pass"), first, ModelRole::TextRecogniser);
        }
        if !(0.0..=1.0).contains(&p.first_pass_min_confidence) {
            self.report(
                path.key("first_pass_min_confidence"),
                format!(
                    "{} must lie in [0, 1] (the least confidence of every character \
                     of a first-pass reading that stands)",
                    p.first_pass_min_confidence
                ),
            );
        }
        if p.votes == 0 {
            self.report(path.key("votes"), "at least one read must vote");
        }
        if !(64..=1280).contains(&p.locate_width_px) {
            self.report(
                path.key("locate_width_px"),
                format!(
                    "{} px is outside 64..=1280 (the width a vehicle crop is scaled \
                     toward to locate its plate)",
                    p.locate_width_px
                ),
            );
        }
        let coarse = p.locate_coarse_width_px;
        if coarse != 0 && !(32..p.locate_width_px).contains(&coarse) {
            self.report(
                path.key("locate_coarse_width_px"),
                format!(
                    "{coarse} px must be 0 (off) or from 32 up to below locate_width_px \
                     ({} px): the coarse search runs at a smaller width than the fine one",
                    p.locate_width_px
                ),
            );
        }
        if !(0.0..=0.8).contains(&p.search_from) {
            self.report(
                path.key("search_from"),
                format!(
                    "{} must lie in [0, 0.8] (the share of a vehicle crop's height, \
                     from the top, left out of the plate search)",
                    p.search_from
                ),
            );
        }
    }

    /// Checks a model name against the catalog; returns its labels when usable.
    fn model_ref(&mut self, path: &KeyPath, name: &str, role: ModelRole) -> Option<Vec<String>> {
        let catalog = self.catalog?;
        match catalog.models.get(name) {
            None => {
                let known = join_keys(
                    catalog
                        .models
                        .iter()
                        .filter(|(_, m)| m.role == role)
                        .map(|(k, _)| k),
                );
                self.report(
                    path.clone(),
                    format!(
                        "unknown model {name:?}; {} models in models/manifest.toml: {known}",
                        role.as_str()
                    ),
                );
                None
            }
            Some(m) if m.role != role => {
                self.report(
                    path.clone(),
                    format!(
                        "model {name:?} is a {}, not a {}",
                        m.role.as_str(),
                        role.as_str()
                    ),
                );
                None
            }
            Some(m) => Some(m.labels.clone()),
        }
    }

    fn evidence(&mut self) {
        let e = &self.config.evidence;
        let path = KeyPath::of(&["evidence"]);
        for (key, value) in [("pre_roll_s", e.pre_roll_s), ("post_roll_s", e.post_roll_s)] {
            if !(0.0..=60.0).contains(&value) {
                self.report(
                    path.key(key),
                    format!("{value}s must lie between 0 and 60s"),
                );
            }
        }
        if e.spool_quota_mb == 0 {
            self.report(
                path.key("spool_quota_mb"),
                "the spool needs a non-zero quota",
            );
        }
    }

    fn sink(&mut self) {
        let Sink::Http { url, timeout_s } = &self.config.sink;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            self.report(
                KeyPath::of(&["sink", "url"]),
                format!("URL {url:?} must start with http:// or https://"),
            );
        }
        if !positive(*timeout_s) {
            self.report(
                KeyPath::of(&["sink", "timeout_s"]),
                "timeout must be positive",
            );
        }
    }
}

/// The detector mapping key for traffic-light boxes (not a road user).
pub const TRAFFIC_LIGHT: &str = "traffic_light";

/// True for a positive number; false for zero, negatives and NaN.
fn positive(v: f64) -> bool {
    v > 0.0
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// `[x, y, w, h]` as written in the config.
fn fmt_rect(r: [f64; 4]) -> String {
    format!("[{}]", r.map(fmt_num).join(", "))
}

fn join_keys<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let keys: Vec<String> = keys.map(|k| format!("{k:?}")).collect();
    if keys.is_empty() {
        "(none)".to_owned()
    } else {
        keys.join(", ")
    }
}

/// The first few labels, for a message that stays one line long.
fn preview(labels: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut out: Vec<String> = labels
        .iter()
        .take(SHOWN)
        .map(|l| format!("{l:?}"))
        .collect();
    if labels.len() > SHOWN {
        out.push(format!("... ({} in all)", labels.len()));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::check;

    const BASE: &str = include_str!("../../tests/fixtures/minimal.toml");

    fn with_views(views: &str) -> String {
        let anchor = "[detector.classes]";
        assert_eq!(BASE.matches(anchor).count(), 1);
        BASE.replacen(anchor, &format!("{views}\n{anchor}"), 1)
    }

    fn messages(text: &str) -> Vec<String> {
        match check("site.toml", text, None) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics.iter().map(|d| d.message.clone()).collect(),
        }
    }

    #[test]
    fn views_default_to_one_plain_view() {
        let config = check("site.toml", BASE, None).expect("valid");
        let v = &config.detector.views;
        assert!(!v.flip && v.tiles.is_none());
        assert_eq!(v.merge_iou, 0.55);
    }

    #[test]
    fn a_flip_and_a_tile_band_are_accepted() {
        let text = with_views(
            "[detector.views]\nflip = true\nmerge = \"nms\"\n\
             [detector.views.tiles]\ngrid = [2, 1]\nregion = [0.0, 0.19, 1.0, 0.69]\n",
        );
        let config = check("site.toml", &text, None).expect("valid");
        let v = &config.detector.views;
        assert!(v.flip);
        assert_eq!(v.merge, super::ViewMerge::Nms);
        let tiles = v.tiles.as_ref().expect("tiles");
        assert_eq!(tiles.grid, [2, 1]);
        assert_eq!(tiles.overlap, 0.2);
    }

    #[test]
    fn bad_tiles_are_each_reported() {
        let text = with_views(
            "[detector.views]\nmerge_iou = 0.0\n[detector.views.tiles]\n\
             grid = [0, 9]\nregion = [0.5, 0.0, 0.4, 1.2]\noverlap = 0.7\n",
        );
        let got = messages(&text);
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[0].contains("0 must lie in (0, 1]"), "{got:?}");
        assert!(got.iter().any(|m| m.starts_with("0 tiles")));
        assert!(got.iter().any(|m| m.starts_with("9 tiles")));
        assert!(got.iter().any(|m| m.contains("x1 < x2")));
        assert!(got.iter().any(|m| m.starts_with("overlap 0.7")));
    }

    #[test]
    fn an_unknown_merge_is_a_parse_error() {
        let got = messages(&with_views("[detector.views]\nmerge = \"average\"\n"));
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("unknown variant"), "{got:?}");
    }
}
