//! Movement not allowed from the lane: a road user that waited in a
//! straight-only lane and then turned left, say.
//!
//! The lane is the last lane polygon that held the track's front before it
//! crossed the stop line; the movement is the first exit line it crosses
//! after that. A track whose lane was never seen, or that leaves the view
//! without crossing an exit line, gives no verdict: the rule only reports
//! what it saw from start to end.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::config::Movement;
use vigil_core::geometry::{Point, Polygon, Segment};
use vigil_core::time::UnixMicros;

use crate::lines::crossing;
use crate::red_light::ApproachLines;

/// A lane of the approach and the movements it allows.
#[derive(Debug, Clone)]
pub struct LaneSpec {
    pub id: String,
    pub polygon: Polygon,
    pub allowed: Vec<Movement>,
}

/// A line a road user crosses when it makes `movement` (drawn across the
/// exit road, beyond the intersection).
#[derive(Debug, Clone, Copy)]
pub struct ExitSpec {
    pub movement: Movement,
    pub line: Segment,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneMovementViolation {
    pub track_id: u64,
    pub lane: String,
    pub movement: Movement,
    pub allowed: Vec<Movement>,
    /// Interpolated instant the front crossed the stop line.
    pub t_stop_us: UnixMicros,
    /// When it crossed the exit line of the movement it made.
    pub t_exit_us: UnixMicros,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Approaching {
        last: (UnixMicros, Point),
        lane: Option<usize>,
    },
    Crossed {
        last: (UnixMicros, Point),
        lane: Option<usize>,
        t_stop: UnixMicros,
    },
    Done,
}

#[derive(Debug)]
pub struct LaneMovementRule {
    lines: ApproachLines,
    lanes: Vec<LaneSpec>,
    exits: Vec<ExitSpec>,
    tracks: BTreeMap<u64, State>,
}

impl LaneMovementRule {
    pub fn new(lines: ApproachLines, lanes: Vec<LaneSpec>, exits: Vec<ExitSpec>) -> Self {
        Self {
            lines,
            lanes,
            exits,
            tracks: BTreeMap::new(),
        }
    }

    fn lane_of(&self, p: Point) -> Option<usize> {
        self.lanes.iter().position(|l| l.polygon.contains(p))
    }

    /// Feeds a track's front (image coordinates); returns a violation when
    /// the track leaves through an exit its lane does not allow.
    pub fn observe(
        &mut self,
        track_id: u64,
        time_us: UnixMicros,
        front: Point,
    ) -> Option<LaneMovementViolation> {
        let now = (time_us, front);
        let lines = self.lines;
        let next = match self.tracks.get(&track_id).copied() {
            None => State::Approaching {
                last: now,
                lane: self.lane_of(front),
            },
            Some(State::Done) => State::Done,
            Some(State::Approaching { last, lane }) => {
                match crossing(&lines.stop, lines.travel, last, now) {
                    Some((t_stop, _)) => State::Crossed {
                        last: now,
                        lane,
                        t_stop,
                    },
                    // Keep the last lane seen: a front between lane polygons
                    // (on a lane marking) does not erase it.
                    None => State::Approaching {
                        last: now,
                        lane: self.lane_of(front).or(lane),
                    },
                }
            }
            Some(State::Crossed { last, lane, t_stop }) => {
                let path = Segment::new(last.1, front);
                match self.exits.iter().find(|e| path.intersects(&e.line)) {
                    None => State::Crossed {
                        last: now,
                        lane,
                        t_stop,
                    },
                    Some(exit) => {
                        self.tracks.insert(track_id, State::Done);
                        let spec = &self.lanes[lane?];
                        if spec.allowed.contains(&exit.movement) {
                            return None;
                        }
                        let s = (exit.line.side(last.1), exit.line.side(front));
                        let f = if (s.0 - s.1).abs() > f64::EPSILON {
                            s.0 / (s.0 - s.1)
                        } else {
                            0.0
                        };
                        return Some(LaneMovementViolation {
                            track_id,
                            lane: spec.id.clone(),
                            movement: exit.movement,
                            allowed: spec.allowed.clone(),
                            t_stop_us: t_stop,
                            t_exit_us: last.0 + ((time_us - last.0) as f64 * f).round() as i64,
                        });
                    }
                }
            }
        };
        self.tracks.insert(track_id, next);
        None
    }

    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Traffic goes up the image (y decreasing). Stop line at y = 300 from
    // x = 0 to 400; two lanes below it: left lane x 0..200 (left only),
    // right lane x 200..400 (straight or right). Exits: straight across
    // y = 100, left at x = -50, right at x = 450.
    fn rule() -> LaneMovementRule {
        let p = Point::new;
        let lines = ApproachLines {
            stop: Segment::new(p(0.0, 300.0), p(400.0, 300.0)),
            clearance: Segment::new(p(0.0, 260.0), p(400.0, 260.0)),
            travel: p(0.0, -1.0),
        };
        let lane = |id: &str, x0: f64, allowed: Vec<Movement>| LaneSpec {
            id: id.into(),
            polygon: Polygon::new(vec![
                p(x0, 300.0),
                p(x0 + 200.0, 300.0),
                p(x0 + 200.0, 500.0),
                p(x0, 500.0),
            ]),
            allowed,
        };
        LaneMovementRule::new(
            lines,
            vec![
                lane("left", 0.0, vec![Movement::Left]),
                lane("right", 200.0, vec![Movement::Straight, Movement::Right]),
            ],
            vec![
                ExitSpec {
                    movement: Movement::Straight,
                    line: Segment::new(p(0.0, 100.0), p(400.0, 100.0)),
                },
                ExitSpec {
                    movement: Movement::Left,
                    line: Segment::new(p(-50.0, 0.0), p(-50.0, 290.0)),
                },
                ExitSpec {
                    movement: Movement::Right,
                    line: Segment::new(p(450.0, 0.0), p(450.0, 290.0)),
                },
            ],
        )
    }

    /// Drives a path of points at `fps`, returning every violation.
    fn drive(
        rule: &mut LaneMovementRule,
        path: &[(f64, f64)],
        fps: f64,
    ) -> Vec<LaneMovementViolation> {
        path.iter()
            .enumerate()
            .filter_map(|(i, &(x, y))| {
                rule.observe(7, (i as f64 * 1e6 / fps) as i64, Point::new(x, y))
            })
            .collect()
    }

    /// Straight up to y = 250, then towards the exit of `movement`.
    fn path(x0: f64, movement: Movement, steps: usize) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for i in 0..=steps {
            let f = i as f64 / steps as f64;
            out.push((x0, 450.0 - 200.0 * f));
        }
        let target = match movement {
            Movement::Straight => (x0, 50.0),
            Movement::Left => (-100.0, 150.0),
            Movement::Right => (500.0, 150.0),
            Movement::UTurn => (x0 - 150.0, 450.0),
        };
        for i in 1..=steps {
            let f = i as f64 / steps as f64;
            out.push((x0 + f * (target.0 - x0), 250.0 + f * (target.1 - 250.0)));
        }
        out
    }

    #[test]
    fn an_allowed_movement_is_not_a_violation() {
        let mut r = rule();
        assert!(drive(&mut r, &path(100.0, Movement::Left, 10), 10.0).is_empty());
        let mut r = rule();
        assert!(drive(&mut r, &path(300.0, Movement::Straight, 10), 10.0).is_empty());
    }

    #[test]
    fn turning_left_from_the_straight_lane_is_reported_with_its_lane() {
        let mut r = rule();
        let v = drive(&mut r, &path(300.0, Movement::Left, 10), 10.0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].lane, "right");
        assert_eq!(v[0].movement, Movement::Left);
        assert!(v[0].t_stop_us < v[0].t_exit_us);
    }

    #[test]
    fn a_track_first_seen_past_the_stop_line_gives_no_verdict() {
        let mut r = rule();
        let v = drive(
            &mut r,
            &[(300.0, 250.0), (100.0, 200.0), (-100.0, 150.0)],
            10.0,
        );
        assert!(v.is_empty(), "{v:?}");
    }

    proptest! {
        /// Whatever the frame rate, a movement is judged by its lane alone,
        /// and at most once per track.
        #[test]
        fn the_verdict_depends_on_lane_and_movement_not_on_frame_rate(
            x0 in 20.0f64..380.0,
            m in 0usize..3,
            steps in 3usize..40,
            fps in 4.0f64..60.0,
        ) {
            prop_assume!((x0 - 200.0).abs() > 1.0);
            let movement = [Movement::Straight, Movement::Left, Movement::Right][m];
            let mut r = rule();
            let v = drive(&mut r, &path(x0, movement, steps), fps);
            let allowed = if x0 < 200.0 {
                movement == Movement::Left
            } else {
                movement != Movement::Left
            };
            prop_assert_eq!(v.len(), usize::from(!allowed));
            if let Some(v) = v.first() {
                prop_assert_eq!(v.movement, movement);
            }
        }
    }
}
