//! An approach built from the shipped example config, driven with a
//! synthetic trajectory whose truth is known.

use vigil_core::config::{check, SiteConfig};
use vigil_core::detection::{BBox, DetectionClass};
use vigil_core::RoadUserClass;
use vigil_rules::{ApproachRules, CountsConfig, Observation, Phase, PhaseTimeline, Violation};

const T0: i64 = 1_773_471_600_000_000;
const CAR: DetectionClass = DetectionClass::RoadUser(RoadUserClass::Car);

fn example() -> SiteConfig {
    let text = include_str!("../../../configs/example-intersection.toml");
    match check("configs/example-intersection.toml", text, None) {
        Ok(c) => c,
        Err(e) => panic!("the example config must be valid: {e}"),
    }
}

fn northbound(config: &SiteConfig) -> ApproachRules {
    let a = &config.approaches["northbound"];
    let h = config.cameras[&a.camera].homography.as_ref();
    ApproachRules::from_config("northbound", a, h, CountsConfig::default()).expect("rules")
}

/// A car's box whose front ground point (going up the image) is (x, y).
fn car_at(x: f64, y: f64) -> BBox {
    let (x, y) = (x as f32, y as f32);
    BBox {
        x1: x - 60.0,
        y1: y + 45.0 - 100.0,
        x2: x + 60.0,
        y2: y + 45.0,
    }
}

/// Up the through lane, across both lines, then hard left out of the view.
fn left_turn_from_the_through_lane() -> Vec<(f64, f64)> {
    let mut path: Vec<(f64, f64)> = (0..=37)
        .map(|i| (1200.0, 1040.0 - 10.0 * f64::from(i)))
        .collect();
    let (x0, y0) = (1200.0, 670.0);
    path.extend((1..=30).map(|i| {
        let f = f64::from(i) / 30.0;
        (x0 + f * (0.0 - x0), y0 + f * (760.0 - y0))
    }));
    path
}

fn red_since(t: i64) -> PhaseTimeline {
    PhaseTimeline::from_changes(
        &[
            (t - 20_000_000, Phase::Green),
            (t - 4_000_000, Phase::Amber),
            (t, Phase::Red),
        ],
        t + 120_000_000,
    )
}

fn drive(
    rules: &mut ApproachRules,
    timeline: Option<&PhaseTimeline>,
    path: &[(f64, f64)],
) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, &(x, y)) in path.iter().enumerate() {
        let t = T0 + i as i64 * 40_000; // 25 fps
        let o = Observation {
            track_id: 1,
            class: CAR,
            bbox: car_at(x, y),
        };
        out.extend(rules.observe_frame(t, timeline, &[o]).violations);
    }
    out
}

#[test]
fn a_left_turn_from_the_through_lane_on_red_is_two_violations() {
    let config = example();
    let mut rules = northbound(&config);
    let v = drive(
        &mut rules,
        Some(&red_since(T0 - 5_000_000)),
        &left_turn_from_the_through_lane(),
    );
    let kinds: Vec<&str> = v.iter().map(Violation::kind).collect();
    assert_eq!(kinds, ["red_light", "lane_movement"], "{v:?}");
    let Violation::LaneMovement(m) = &v[1] else {
        panic!("{v:?}")
    };
    assert_eq!(m.lane, "through");
    let summary = rules.finish().expect("a partial period");
    let through = summary
        .lanes
        .iter()
        .find(|l| l.lane == "through")
        .expect("lane");
    assert_eq!(through.counts.get("car"), Some(&1));
    assert!(summary.red_s > 2.0, "{summary:?}");
}

#[test]
fn the_same_turn_on_green_is_only_the_lane_violation() {
    let config = example();
    let mut rules = northbound(&config);
    let green = red_since(T0 + 60_000_000);
    let v = drive(&mut rules, Some(&green), &left_turn_from_the_through_lane());
    let kinds: Vec<&str> = v.iter().map(Violation::kind).collect();
    assert_eq!(kinds, ["lane_movement"], "{v:?}");
}

#[test]
fn without_a_timeline_no_phase_rule_fires() {
    let config = example();
    let mut rules = northbound(&config);
    let v = drive(&mut rules, None, &left_turn_from_the_through_lane());
    let kinds: Vec<&str> = v.iter().map(Violation::kind).collect();
    assert_eq!(kinds, ["lane_movement"]);
}

#[test]
fn violations_serialise_with_their_type_tag() {
    let config = example();
    let mut rules = northbound(&config);
    let v = drive(
        &mut rules,
        Some(&red_since(T0 - 5_000_000)),
        &left_turn_from_the_through_lane(),
    );
    let json = serde_json::to_value(&v[0]).expect("json");
    assert_eq!(json["type"], "red_light");
    assert!(json["t_stop_us"].as_i64().is_some(), "{json}");
}
