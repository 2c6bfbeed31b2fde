//! Stop-line encroachment: stopped beyond the stop line (but not through
//! the junction) during red for longer than the configured time. This is
//! what a vehicle that stops over the line is — not a red-light run.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::geometry::Point;
use vigil_core::time::UnixMicros;

use crate::lines::beyond;
use crate::red_light::ApproachLines;
use crate::signal::{Phase, PhaseTimeline};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncroachmentConfig {
    /// Stopped beyond the line at least this long.
    pub min_stopped_us: i64,
    /// Movement of the front within this distance still counts as stopped
    /// (detector jitter), in the units of the positions.
    pub still_tolerance: f64,
    /// Red must have lasted this long already (the grace period).
    pub grace_us: i64,
}

impl Default for EncroachmentConfig {
    fn default() -> Self {
        Self {
            min_stopped_us: 2_000_000,
            still_tolerance: 8.0,
            grace_us: 300_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EncroachmentViolation {
    pub track_id: u64,
    /// When the vehicle came to rest beyond the line during this red.
    pub stopped_since_us: UnixMicros,
    /// When it had stayed for the minimum time.
    pub at_us: UnixMicros,
    pub red_since_us: UnixMicros,
    pub point: (f64, f64),
}

#[derive(Debug, Clone, Copy, Default)]
struct Still {
    /// Where and when the current stationary period began.
    anchor: Option<(UnixMicros, Point)>,
    /// The red (by its start) already reported for this track.
    reported_red: Option<UnixMicros>,
}

#[derive(Debug)]
pub struct EncroachmentRule {
    lines: ApproachLines,
    config: EncroachmentConfig,
    tracks: BTreeMap<u64, Still>,
}

impl EncroachmentRule {
    pub fn new(lines: ApproachLines, config: EncroachmentConfig) -> Self {
        Self {
            lines,
            config,
            tracks: BTreeMap::new(),
        }
    }

    /// Feeds a track's front position; returns a violation once per red
    /// phase when the track has stood beyond the line long enough.
    pub fn observe(
        &mut self,
        track_id: u64,
        time_us: UnixMicros,
        front: Point,
        signal: &PhaseTimeline,
    ) -> Option<EncroachmentViolation> {
        let lines = self.lines;
        let over_the_line = beyond(&lines.stop, lines.travel, front)
            && !beyond(&lines.clearance, lines.travel, front);
        let ctx = signal.context_at(time_us);
        let red = ctx.phase == Phase::Red && time_us - ctx.since_us > self.config.grace_us;
        let state = self.tracks.entry(track_id).or_default();
        if !(over_the_line && red) {
            state.anchor = None;
            return None;
        }
        let anchor = match state.anchor {
            Some((t, p)) if p.distance(front) <= self.config.still_tolerance => (t, p),
            _ => {
                state.anchor = Some((time_us, front));
                (time_us, front)
            }
        };
        // A vehicle already standing there when red began counts from red's start.
        let since = anchor.0.max(ctx.since_us + self.config.grace_us);
        if time_us - since >= self.config.min_stopped_us && state.reported_red != Some(ctx.since_us)
        {
            state.reported_red = Some(ctx.since_us);
            return Some(EncroachmentViolation {
                track_id,
                stopped_since_us: since,
                at_us: time_us,
                red_since_us: ctx.since_us,
                point: (anchor.1.x, anchor.1.y),
            });
        }
        None
    }

    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::geometry::Segment;

    const RED_AT: i64 = 10_000_000;

    fn rule() -> EncroachmentRule {
        let lines = ApproachLines {
            stop: Segment::new(Point::new(0.0, 500.0), Point::new(1000.0, 500.0)),
            clearance: Segment::new(Point::new(0.0, 400.0), Point::new(1000.0, 400.0)),
            travel: Point::new(0.0, -1.0),
        };
        EncroachmentRule::new(lines, EncroachmentConfig::default())
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

    /// Observations every 200 ms from `from` for `seconds`, at a fixed front y with ±2 px jitter.
    fn stand(
        rule: &mut EncroachmentRule,
        from: i64,
        seconds: i64,
        y: f64,
    ) -> Vec<EncroachmentViolation> {
        (0..seconds * 5)
            .filter_map(|k| {
                let jitter = if k % 2 == 0 { 2.0 } else { -2.0 };
                rule.observe(
                    1,
                    from + k * 200_000,
                    Point::new(300.0, y + jitter),
                    &signal(),
                )
            })
            .collect()
    }

    #[test]
    fn stopping_over_the_line_on_red_is_encroachment_once() {
        let mut r = rule();
        let v = stand(&mut r, RED_AT + 1_000_000, 6, 490.0);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].at_us - v[0].stopped_since_us, 2_000_000);
    }

    #[test]
    fn stopping_behind_the_line_or_on_green_is_not() {
        let mut r = rule();
        assert!(
            stand(&mut r, RED_AT + 1_000_000, 6, 510.0).is_empty(),
            "behind the line"
        );
        let mut r = rule();
        assert!(stand(&mut r, 0, 6, 490.0).is_empty(), "green and amber");
    }

    #[test]
    fn creeping_forward_restarts_the_clock() {
        let mut r = rule();
        let sig = signal();
        let mut found = 0;
        for k in 0..15 {
            // 20 px every 200 ms: moving, never stopped for 2 s.
            let y = 499.0 - 20.0 * (k % 5) as f64;
            found += usize::from(
                r.observe(
                    1,
                    RED_AT + 1_000_000 + k * 200_000,
                    Point::new(300.0, y),
                    &sig,
                )
                .is_some(),
            );
        }
        assert_eq!(found, 0);
    }
}
