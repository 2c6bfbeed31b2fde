//! Each malformed config gets its own specific message at the right key,
//! line and column. The cases break `fixtures/minimal.toml` one edit at a time.

use std::collections::BTreeMap;

use vigil_core::config::{check, CatalogModel, ModelCatalog, ModelRole, GPU_MAX_BATCH};

const BASE: &str = include_str!("fixtures/minimal.toml");
const ORIGIN: &str = "site.toml";

fn catalog() -> ModelCatalog {
    let model = |role, labels: &[&str]| CatalogModel {
        role,
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
    };
    let models = BTreeMap::from([
        (
            "test-detector".to_owned(),
            model(
                ModelRole::VehicleDetector,
                &["person", "car", "motorcycle", "traffic light"],
            ),
        ),
        (
            "test-text-det".to_owned(),
            model(ModelRole::TextDetector, &[]),
        ),
        (
            "test-text-rec".to_owned(),
            model(ModelRole::TextRecogniser, &[]),
        ),
        // The default first pass, which a config need not name.
        (
            vigil_core::config::DEFAULT_FIRST_PASS.to_owned(),
            model(ModelRole::TextRecogniser, &[]),
        ),
    ]);
    ModelCatalog { models }
}

/// Replaces exactly one occurrence of `from`, so a case cannot silently miss.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "fixture must contain {from:?} once"
    );
    BASE.replacen(from, to, 1)
}

/// The rendered diagnostics of a config that must fail.
fn diagnostics(text: &str) -> Vec<String> {
    match check(ORIGIN, text, Some(&catalog())) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
    }
}

fn assert_single(text: &str, expected: &str) {
    assert_eq!(diagnostics(text), vec![expected.to_owned()]);
}

#[test]
fn the_base_fixture_is_valid() {
    check(ORIGIN, BASE, Some(&catalog())).expect("fixture must be valid");
}

#[test]
fn a_line_point_outside_the_frame_is_named_with_the_frame_size() {
    assert_single(
        &edit("[1080.0, 600.0]]", "[1380.0, 600.0]]"),
        "site.toml:33:30: approaches.northbound.stop_line[1]: point (1380, 600) lies outside \
         the 1280x720 frame of camera \"north\"",
    );
}

#[test]
fn fewer_than_four_homography_points_are_rejected() {
    assert_single(
        &edit("  { image = [380.0, 300.0], ground = [0.0, 20.0] },\n", ""),
        "site.toml:14:10: cameras.north.homography.points: a homography needs at least 4 \
         image/ground point pairs, found 3",
    );
}

#[test]
fn collinear_homography_points_are_rejected() {
    // All four image points on the line y = 700 (ground points stay fine).
    let text = edit("[900.0, 300.0], ground", "[640.0, 700.0], ground")
        .replace("[380.0, 300.0], ground", "[900.0, 700.0], ground");
    assert_single(
        &text,
        "site.toml:14:10: cameras.north.homography.points: the image points are degenerate: \
         no four of them are free of three (nearly) collinear points, so no homography can be \
         fitted; spread the points over the road surface",
    );
}

#[test]
fn an_unknown_road_user_class_is_rejected() {
    assert_single(
        &edit("motorbike = [\"motorcycle\"]", "tuktuk = [\"motorcycle\"]"),
        "site.toml:52:10: detector.classes.tuktuk: unknown class \"tuktuk\"; known classes: \
         car, motorbike, bus, truck, bicycle, person, traffic_light",
    );
}

#[test]
fn an_unknown_enforced_class_is_rejected() {
    let rules = "rules = [\"red_light\", \"speeding\", \"lane_movement\"]";
    assert_single(
        &edit(
            rules,
            &format!("{rules}\nenforce_classes = [\"car\", \"tractor\"]"),
        ),
        "site.toml:37:27: approaches.northbound.enforce_classes[1]: unknown class \"tractor\"; \
         known classes: car, motorbike, bus, truck, bicycle, person",
    );
}

#[test]
fn a_label_the_model_does_not_have_is_rejected() {
    assert_single(
        &edit("car = [\"car\"]", "car = [\"car\", \"automobile\"]"),
        "site.toml:51:15: detector.classes.car[1]: model \"test-detector\" has no class \
         \"automobile\"; its classes include: \"person\", \"car\", \"motorcycle\", \"traffic light\"",
    );
}

#[test]
fn a_clearance_line_on_the_approach_side_is_rejected() {
    // Travel points up the image (y decreasing); y = 650 lies before the stop line at y = 600.
    assert_single(
        &edit(
            "clearance_line = [[300.0, 450.0], [980.0, 450.0]]",
            "clearance_line = [[300.0, 650.0], [980.0, 650.0]]",
        ),
        "site.toml:34:18: approaches.northbound.clearance_line: the clearance line lies on the \
         approach side of the stop line; it must be beyond the stop line in the direction of \
         travel (check `travel` too)",
    );
}

#[test]
fn a_clearance_line_crossing_the_stop_line_is_rejected() {
    assert_single(
        &edit(
            "clearance_line = [[300.0, 450.0], [980.0, 450.0]]",
            "clearance_line = [[300.0, 650.0], [980.0, 450.0]]",
        ),
        "site.toml:34:18: approaches.northbound.clearance_line: the clearance line crosses the \
         stop line",
    );
}

#[test]
fn an_approach_on_an_unknown_camera_is_rejected() {
    assert_single(
        &edit("camera = \"north\"", "camera = \"nort\""),
        "site.toml:31:10: approaches.northbound.camera: unknown camera \"nort\"; cameras defined \
         under [cameras]: \"north\"",
    );
}

#[test]
fn an_approach_on_an_unknown_signal_is_rejected() {
    assert_single(
        &edit("signal = \"main\"", "signal = \"mian\""),
        "site.toml:32:10: approaches.northbound.signal: unknown signal \"mian\"; signals defined \
         under [signals]: \"main\"",
    );
}

#[test]
fn phases_that_do_not_fill_the_cycle_are_rejected() {
    assert_single(
        &edit("cycle_s = 60.0", "cycle_s = 65.0"),
        "site.toml:24:10: signals.main.fixed_time.phases: phase durations add up to 60s but the \
         cycle is 65s",
    );
}

#[test]
fn a_plan_anchor_without_utc_offset_is_rejected() {
    assert_single(
        &edit(
            "anchor = 2026-01-01T00:00:00+07:00",
            "anchor = 2026-01-01T00:00:00",
        ),
        "site.toml:23:10: signals.main.fixed_time.anchor: 2026-01-01T00:00:00 must be a full \
         date-time with a UTC offset, e.g. 2026-01-01T00:00:00+07:00",
    );
}

#[test]
fn a_misspelt_key_is_rejected_not_ignored() {
    let got = diagnostics(&edit("stop_line =", "stopline ="));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("site.toml:33:1: unknown field `stopline`, expected one of"),
        "{got:?}"
    );
}

#[test]
fn a_self_crossing_lane_polygon_is_rejected() {
    assert_single(
        &edit(
            "[1000.0, 400.0], [280.0, 400.0]]",
            "[280.0, 400.0], [1000.0, 400.0]]",
        ),
        "site.toml:39:11: approaches.northbound.lanes.through.polygon: the lane polygon crosses \
         itself or has no area; list its vertices in order around the lane",
    );
}

#[test]
fn a_travel_arrow_along_the_stop_line_is_rejected() {
    assert_single(
        &edit(
            "travel = [[640.0, 700.0], [640.0, 350.0]]",
            "travel = [[300.0, 610.0], [900.0, 612.0]]",
        ),
        "site.toml:35:10: approaches.northbound.travel: the travel arrow runs (nearly) parallel \
         to the stop line, so it cannot say which side is the intersection",
    );
}

#[test]
fn red_light_without_a_clearance_line_is_rejected() {
    assert_single(
        &edit("clearance_line = [[300.0, 450.0], [980.0, 450.0]]\n", ""),
        "site.toml:35:9: approaches.northbound.rules: red_light needs `clearance_line`: a vehicle \
         that stops over the stop line is an encroachment, not a red-light run",
    );
}

#[test]
fn an_unknown_model_or_one_in_the_wrong_role_is_rejected() {
    assert_single(
        &edit("model = \"test-detector\"", "model = \"yolov9\""),
        "site.toml:48:9: detector.model: unknown model \"yolov9\"; vehicle_detector models in \
         models/manifest.toml: \"test-detector\"",
    );
    assert_single(
        &edit(
            "recogniser = \"test-text-rec\"",
            "recogniser = \"test-text-det\"",
        ),
        "site.toml:57:14: plates.recogniser: model \"test-text-det\" is a text_detector, not a \
         text_recogniser",
    );
}

#[test]
fn an_out_of_range_threshold_is_rejected() {
    assert_single(
        &edit(
            "model = \"test-detector\"",
            "model = \"test-detector\"\nconfidence = 1.5",
        ),
        "site.toml:49:14: detector.confidence: 1.5 must lie in (0, 1]",
    );
}

#[test]
fn the_plate_search_is_bounded() {
    let text = edit(
        "recogniser = \"test-text-rec\"",
        "recogniser = \"test-text-rec\"\nlocate_width_px = 20\nsearch_from = 0.95",
    );
    let found = diagnostics(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("plates.locate_width_px: 20 px is outside 64..=1280"),
        "{found:?}"
    );
    assert!(
        found[1].contains("plates.search_from: 0.95 must lie in [0, 0.8]"),
        "{found:?}"
    );
    let fine = edit(
        "recogniser = \"test-text-rec\"",
        "recogniser = \"test-text-rec\"\nlocate_width_px = 320\nsearch_from = 0.4",
    );
    let config = check(ORIGIN, &fine, Some(&catalog())).expect("in range");
    assert_eq!(config.plates.locate_width_px, 320);
    assert!((config.plates.search_from - 0.4).abs() < 1e-6);
    assert_eq!(
        config.plates.locate_coarse_width_px, 0,
        "one search by default"
    );
}

#[test]
fn a_coarse_plate_search_runs_below_the_fine_width() {
    for coarse in [16, 320, 400] {
        let text = edit(
            "recogniser = \"test-text-rec\"",
            &format!(
                "recogniser = \"test-text-rec\"\nlocate_width_px = 320\nlocate_coarse_width_px = {coarse}"
            ),
        );
        let found = diagnostics(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(&format!(
                "plates.locate_coarse_width_px: {coarse} px must be 0 (off) or from 32 up to below locate_width_px (320 px)"
            )),
            "{found:?}"
        );
    }
    let fine = edit(
        "recogniser = \"test-text-rec\"",
        "recogniser = \"test-text-rec\"\nlocate_width_px = 320\nlocate_coarse_width_px = 192",
    );
    let config = check(ORIGIN, &fine, Some(&catalog())).expect("in range");
    assert_eq!(config.plates.locate_coarse_width_px, 192);
}

#[test]
fn the_first_pass_names_a_recogniser_or_none() {
    let config = check(ORIGIN, BASE, Some(&catalog())).expect("valid");
    assert_eq!(
        config.plates.first_pass_model(),
        Some(vigil_core::config::DEFAULT_FIRST_PASS),
        "on by default"
    );
    for (line, expected) in [
        (
            "first_pass = \"test-text-det\"",
            "plates.first_pass: model \"test-text-det\" is a text_detector, not a text_recogniser",
        ),
        (
            "first_pass = \"no-such-rec\"",
            "plates.first_pass: unknown model \"no-such-rec\"",
        ),
        (
            "first_pass_min_confidence = 1.5",
            "plates.first_pass_min_confidence: 1.5 must lie in [0, 1]",
        ),
    ] {
        let text = edit(
            "recogniser = \"test-text-rec\"",
            &format!("recogniser = \"test-text-rec\"\n{line}"),
        );
        let found = diagnostics(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(expected), "{found:?}");
    }
    let off = edit(
        "recogniser = \"test-text-rec\"",
        "recogniser = \"test-text-rec\"\nfirst_pass = \"none\"\nfirst_pass_min_confidence = 0.8",
    );
    let config = check(ORIGIN, &off, Some(&catalog())).expect("valid");
    assert_eq!(config.plates.first_pass_model(), None);
    assert!((config.plates.first_pass_min_confidence - 0.8).abs() < 1e-6);
}

#[test]
fn the_detector_batch_defaults_by_provider_and_is_bounded() {
    let config = check(ORIGIN, BASE, Some(&catalog())).expect("valid");
    assert_eq!(config.detector.max_batch(), 1, "one image a run on a CPU");
    assert!(
        config.detector.fit_input,
        "the input fits the frames by default"
    );
    let gpu = edit(
        "model = \"test-detector\"",
        "model = \"test-detector\"\nexecution_provider = \"cuda\"",
    );
    let config = check(ORIGIN, &gpu, Some(&catalog())).expect("valid");
    assert_eq!(config.detector.max_batch(), GPU_MAX_BATCH);
    let set = edit(
        "model = \"test-detector\"",
        "model = \"test-detector\"\nmax_batch = 3",
    );
    let config = check(ORIGIN, &set, Some(&catalog())).expect("valid");
    assert_eq!(config.detector.max_batch(), 3);
    assert_single(
        &edit(
            "model = \"test-detector\"",
            "model = \"test-detector\"\nmax_batch = 0",
        ),
        "site.toml:49:13: detector.max_batch: 0 images per run must lie in 1..=64",
    );
}

#[test]
fn a_speed_zone_needs_a_homography() {
    let homography = "[cameras.north.homography]
points = [
  { image = [100.0, 700.0], ground = [0.0, 0.0] },
  { image = [1180.0, 700.0], ground = [12.0, 0.0] },
  { image = [900.0, 300.0], ground = [12.0, 20.0] },
  { image = [380.0, 300.0], ground = [0.0, 20.0] },
]
";
    // Seven lines fewer: the speed table header moves from line 42 to 35.
    assert_single(
        &edit(homography, ""),
        "site.toml:35:24: approaches.northbound.speed: a speed zone needs ground distances, but \
         camera \"north\" has no [homography]",
    );
}

#[test]
fn a_toml_syntax_error_names_line_and_column() {
    assert_single(
        &edit("id = \"test-site\"", "id = \"test-site"),
        "site.toml:5:16: invalid basic string, expected `\"`",
    );
}

#[test]
fn every_problem_is_reported_in_text_order() {
    let text =
        edit("camera = \"north\"", "camera = \"nort\"").replace("cycle_s = 60.0", "cycle_s = 65.0");
    let got = diagnostics(&text);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("site.toml:24:10: signals.main.fixed_time.phases"));
    assert!(got[1].starts_with("site.toml:31:10: approaches.northbound.camera"));
}

#[test]
fn without_a_model_catalog_model_checks_are_skipped() {
    let text = edit("model = \"test-detector\"", "model = \"yolov9\"");
    assert!(check(ORIGIN, &text, None).is_ok());
}

#[test]
fn lane_movement_without_exit_lines_is_rejected() {
    let text = BASE
        .replace("[approaches.northbound.exits]", "")
        .replace("straight = [[300.0, 200.0], [980.0, 200.0]]", "");
    assert_single(
        &text,
        "site.toml:36:9: approaches.northbound.rules: lane_movement needs [exits]: a line across \
         each exit road, so the movement a road user makes can be seen",
    );
}

#[test]
fn an_exit_line_outside_the_frame_is_rejected() {
    let text = BASE.replace(
        "straight = [[300.0, 200.0], [980.0, 200.0]]",
        "straight = [[300.0, 200.0], [1980.0, 200.0]]",
    );
    let errors = match check(ORIGIN, &text, Some(&catalog())) {
        Ok(_) => panic!("accepted an exit line outside the frame"),
        Err(e) => e.to_string(),
    };
    assert!(
        errors.contains("approaches.northbound.exits.straight"),
        "{errors}"
    );
}

#[test]
fn a_detect_region_must_lie_in_the_frame_and_cover_every_watched_line() {
    let region = |r: &str| {
        edit(
            "frame_size = [1280, 720]",
            &format!("frame_size = [1280, 720]\ndetect_region = {r}"),
        )
    };
    // Fractions round outwards to whole pixels.
    let config = check(
        ORIGIN,
        &region("[0.5, 150.2, 1279.0, 569.8]"),
        Some(&catalog()),
    )
    .expect("valid");
    assert_eq!(config.cameras["north"].detect_rect(), [0, 150, 1280, 570]);
    let config = check(ORIGIN, BASE, Some(&catalog())).expect("valid");
    assert_eq!(
        config.cameras["north"].detect_rect(),
        [0, 0, 1280, 720],
        "no region: the whole frame"
    );
    // The exit line (y = 200) lies above a region from y = 300.
    let found = diagnostics(&region("[0, 300, 1280, 420]"));
    assert_eq!(found.len(), 2, "{found:?}");
    for (i, d) in found.iter().enumerate() {
        assert!(
            d.contains(&format!("approaches.northbound.exits.straight[{i}]: point"))
                && d.contains("outside camera \"north\"'s detect_region [0, 300, 1280, 420]"),
            "{d}"
        );
    }
    let found = diagnostics(&region("[0, 150, 1400, 570]"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(
            "cameras.north.detect_region: point (1400, 720) lies outside the 1280x720 frame"
        ),
        "{found:?}"
    );
    let found = diagnostics(&region("[0, 150, 1280, 0]"));
    assert!(
        found[0].contains("cameras.north.detect_region: detect region 1280x0 has no area"),
        "{found:?}"
    );
}
