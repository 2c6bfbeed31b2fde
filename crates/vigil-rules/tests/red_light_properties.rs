//! Red-light verdicts on synthetic trajectories with known truth.
//!
//! Geometry (image-like coordinates, travel up the page): stop line y = 500,
//! clearance line y = 400, both from x = 0 to 1000. A vehicle moving at
//! constant speed crosses the stop line at a chosen instant relative to the
//! start of red; frames are sampled at any rate with any phase offset.

use proptest::prelude::*;
use vigil_core::geometry::{Point, Segment};
use vigil_rules::{ApproachLines, Exemption, Phase, PhaseTimeline, RedLightConfig, RedLightRule};

const RED_AT: i64 = 100_000_000; // red begins at t = 100 s, after 3 s of amber
const GRACE: i64 = 300_000;

fn lines() -> ApproachLines {
    ApproachLines {
        stop: Segment::new(Point::new(0.0, 500.0), Point::new(1000.0, 500.0)),
        clearance: Segment::new(Point::new(0.0, 400.0), Point::new(1000.0, 400.0)),
        travel: Point::new(0.0, -1.0),
    }
}

fn signal() -> PhaseTimeline {
    PhaseTimeline::from_changes(
        &[
            (0, Phase::Green),
            (RED_AT - 3_000_000, Phase::Amber),
            (RED_AT, Phase::Red),
        ],
        RED_AT + 60_000_000,
    )
}

/// Front position at time t for a vehicle crossing y = 500 at `cross_at`
/// with `speed` px/s, stopping at `stop_y` if given.
fn position(t: i64, cross_at: i64, speed: f64, stop_y: Option<f64>) -> Point {
    let y = 500.0 - speed * (t - cross_at) as f64 / 1e6;
    Point::new(480.0, stop_y.map_or(y, |s| y.max(s)))
}

/// The rear ground contact of a 25 px long vehicle.
fn rear(front: Point) -> Point {
    Point::new(front.x, front.y + 25.0)
}

/// Runs one vehicle through the rule; returns violations and exemptions.
fn run(
    cross_at: i64,
    speed: f64,
    fps: f64,
    phase_offset: f64,
    stop_y: Option<f64>,
    drop_every: usize,
) -> (usize, Vec<Exemption>, Option<i64>) {
    let mut rule = RedLightRule::new(lines(), RedLightConfig::default());
    let sig = signal();
    let dt = (1e6 / fps) as i64;
    let start = cross_at - 4_000_000 + (phase_offset * dt as f64) as i64;
    let mut found = 0;
    let mut t_stop = None;
    for (k, t) in (0..)
        .map(|k| start + k * dt)
        .take_while(|&t| t < cross_at + 6_000_000)
        .enumerate()
    {
        if drop_every > 0 && k % drop_every == drop_every - 1 {
            continue; // a missed detection
        }
        let front = position(t, cross_at, speed, stop_y);
        if let Some(v) = rule.observe(7, t, front, rear(front), &sig) {
            found += 1;
            t_stop = Some(v.t_stop_us);
        }
    }
    (found, rule.exemptions.iter().map(|e| e.2).collect(), t_stop)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Crossing at any offset around the start of red, sampled at any frame
    /// rate with missed frames: a violation exactly when past the grace.
    #[test]
    fn violation_iff_crossing_after_the_grace(
        offset_ms in -2_000i64..3_000,
        speed in 60.0f64..400.0,
        fps in 5.0f64..30.0,
        phase in 0.0f64..1.0,
        drop_every in prop_oneof![Just(0usize), 2usize..5],
    ) {
        let cross_at = RED_AT + offset_ms * 1_000;
        // Keep clear of the exact boundary: interpolation rounds to 1 µs.
        prop_assume!((offset_ms * 1_000 - GRACE).abs() > 2);
        let (found, exemptions, t_stop) = run(cross_at, speed, fps, phase, None, drop_every);
        let expected = offset_ms * 1_000 > GRACE;
        prop_assert_eq!(found == 1, expected, "offset {} ms: exemptions {:?}", offset_ms, exemptions);
        if let Some(t) = t_stop {
            prop_assert!((t - cross_at).abs() <= 1, "stop-line instant {} vs truth {}", t, cross_at);
        }
        if !expected {
            let why = if offset_ms < 0 { Exemption::NotRed } else { Exemption::WithinGrace };
            prop_assert_eq!(exemptions, vec![why]);
        }
    }

    /// A vehicle that crosses on red but stops before the clearance line is
    /// never a red-light runner.
    #[test]
    fn stopping_over_the_line_is_not_a_red_light_run(
        offset_ms in 400i64..5_000,
        stop_y in 420.0f64..495.0,
        fps in 5.0f64..30.0,
    ) {
        let (found, _, _) = run(RED_AT + offset_ms * 1_000, 150.0, fps, 0.5, Some(stop_y), 0);
        prop_assert_eq!(found, 0);
    }
}

#[test]
fn a_vehicle_already_past_the_line_when_first_seen_is_never_a_violation() {
    let mut rule = RedLightRule::new(lines(), RedLightConfig::default());
    let sig = signal();
    for k in 0..30 {
        let t = RED_AT + 1_000_000 + k * 100_000;
        assert!(rule
            .observe(
                1,
                t,
                Point::new(480.0, 495.0 - 10.0 * k as f64),
                Point::new(480.0, 520.0 - 10.0 * k as f64),
                &sig
            )
            .is_none());
    }
}

#[test]
fn an_unknown_phase_or_short_amber_is_never_enforced() {
    let sig = PhaseTimeline::from_changes(
        &[
            (0, Phase::Green),
            (RED_AT - 1_000_000, Phase::Amber),
            (RED_AT, Phase::Red),
        ],
        RED_AT + 60_000_000,
    );
    let unknown = PhaseTimeline::from_changes(&[(RED_AT, Phase::Red)], RED_AT + 60_000_000);
    for (name, timeline, why) in [
        ("short amber", sig, Exemption::AmberTooShortOrUnknown),
        ("no amber seen", unknown, Exemption::AmberTooShortOrUnknown),
    ] {
        let mut rule = RedLightRule::new(lines(), RedLightConfig::default());
        let cross_at = RED_AT + 2_000_000;
        let mut found = 0;
        for k in 0..100 {
            let t = cross_at - 3_000_000 + k * 100_000;
            found += usize::from(
                rule.observe(
                    1,
                    t,
                    position(t, cross_at, 150.0, None),
                    rear(position(t, cross_at, 150.0, None)),
                    &timeline,
                )
                .is_some(),
            );
        }
        assert_eq!(found, 0, "{name}");
        assert_eq!(
            rule.exemptions.iter().map(|e| e.2).collect::<Vec<_>>(),
            vec![why],
            "{name}"
        );
    }
}

#[test]
fn a_front_point_that_jumps_past_the_clearance_while_the_rear_stays_is_not_a_run() {
    let mut rule = RedLightRule::new(lines(), RedLightConfig::default());
    let sig = signal();
    // Stopped astride the line on red (front y 495, rear 520)...
    let mut found = 0;
    for k in 0..20 {
        let t = RED_AT + 2_000_000 + k * 160_000;
        let front = if k < 5 {
            Point::new(480.0, 505.0 - k as f64)
        } else {
            Point::new(480.0, 495.0)
        };
        found += usize::from(
            rule.observe(1, t, front, Point::new(480.0, 520.0), &sig)
                .is_some(),
        );
    }
    // ...then the box grows (rider merged in) and the front estimate leaps ahead.
    let t = RED_AT + 6_000_000;
    found += usize::from(
        rule.observe(
            1,
            t,
            Point::new(480.0, 390.0),
            Point::new(480.0, 519.0),
            &sig,
        )
        .is_some(),
    );
    assert_eq!(found, 0);
}

#[test]
fn the_record_holds_both_crossings_and_the_phase_facts() {
    let cross_at = RED_AT + 1_500_000;
    let mut rule = RedLightRule::new(lines(), RedLightConfig::default());
    let mut v = None;
    for k in 0..80 {
        let t = cross_at - 2_000_000 + k * 100_000;
        let front = position(t, cross_at, 200.0, None);
        v = v.or(rule.observe(3, t, front, rear(front), &signal()));
    }
    let v = v.expect("a violation");
    assert_eq!(v.t_stop_us, cross_at);
    assert_eq!(
        v.t_clear_us,
        cross_at + 500_000,
        "100 px further at 200 px/s"
    );
    assert_eq!(v.time_into_red_us, 1_500_000);
    assert_eq!(v.amber_before_us, 3_000_000);
    assert_eq!(v.red_since_us, RED_AT);
}

#[test]
fn one_step_across_both_lines_at_a_low_frame_rate_is_still_a_run() {
    let mut rule = RedLightRule::new(lines(), RedLightConfig::default());
    let sig = signal();
    let (t0, t1, t2) = (RED_AT + 1_000_000, RED_AT + 1_400_000, RED_AT + 1_800_000);
    let before = Point::new(480.0, 560.0);
    assert!(rule.observe(9, t0, before, rear(before), &sig).is_none());
    let still_before = Point::new(480.0, 540.0);
    assert!(rule
        .observe(9, t1, still_before, rear(still_before), &sig)
        .is_none());
    // 160 px in one frame: over the stop line (y 500) and the clearance line (y 400).
    let beyond = Point::new(480.0, 380.0);
    let v = rule
        .observe(9, t2, beyond, rear(beyond), &sig)
        .expect("a run");
    // The stop line is 40 of the 160 px: a quarter of the way through the move.
    assert_eq!(v.t_stop_us, t1 + 100_000);
    assert_eq!(v.t_clear_us, t1 + 350_000);
}
