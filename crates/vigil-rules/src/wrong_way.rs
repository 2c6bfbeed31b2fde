//! Wrong-way travel: a road user that comes out of the junction across the
//! clearance line and then crosses the stop line backwards is driving
//! against the approach. Both crossings are required, so a vehicle that
//! reverses a little at the line is not flagged.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::geometry::Point;
use vigil_core::time::UnixMicros;

use crate::lines::crossing;
use crate::red_light::ApproachLines;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WrongWayViolation {
    pub track_id: u64,
    /// Crossing the clearance line against the travel direction.
    pub t_clearance_us: UnixMicros,
    /// Then the stop line, against the travel direction.
    pub t_stop_us: UnixMicros,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Watching {
        last: (UnixMicros, Point),
    },
    CameOut {
        last: (UnixMicros, Point),
        t_clearance: UnixMicros,
    },
    Done,
}

#[derive(Debug)]
pub struct WrongWayRule {
    lines: ApproachLines,
    tracks: BTreeMap<u64, State>,
}

impl WrongWayRule {
    /// Drops a removed track's state.
    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }

    pub fn new(lines: ApproachLines) -> Self {
        Self {
            lines,
            tracks: BTreeMap::new(),
        }
    }

    /// Feeds a track's position (any consistent point of the road user).
    pub fn observe(
        &mut self,
        track_id: u64,
        time_us: UnixMicros,
        point: Point,
    ) -> Option<WrongWayViolation> {
        // "Ahead" for a wrong-way driver is towards the approach: reverse travel.
        let back = Point::new(-self.lines.travel.x, -self.lines.travel.y);
        let now = (time_us, point);
        let state = match self.tracks.get(&track_id).copied() {
            None => State::Watching { last: now },
            Some(State::Done) => State::Done,
            Some(State::Watching { last }) => {
                match crossing(&self.lines.clearance, back, last, now) {
                    None => State::Watching { last: now },
                    Some((t, at)) => {
                        self.tracks.insert(
                            track_id,
                            State::CameOut {
                                last: (t, at),
                                t_clearance: t,
                            },
                        );
                        return self.observe(track_id, time_us, point);
                    }
                }
            }
            Some(State::CameOut { last, t_clearance }) => {
                match crossing(&self.lines.stop, back, last, now) {
                    None => State::CameOut {
                        last: now,
                        t_clearance,
                    },
                    Some((t_stop, _)) => {
                        self.tracks.insert(track_id, State::Done);
                        return Some(WrongWayViolation {
                            track_id,
                            t_clearance_us: t_clearance,
                            t_stop_us: t_stop,
                        });
                    }
                }
            }
        };
        self.tracks.insert(track_id, state);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::geometry::Segment;

    fn rule() -> WrongWayRule {
        WrongWayRule::new(ApproachLines {
            stop: Segment::new(Point::new(0.0, 500.0), Point::new(1000.0, 500.0)),
            clearance: Segment::new(Point::new(0.0, 400.0), Point::new(1000.0, 400.0)),
            travel: Point::new(0.0, -1.0),
        })
    }

    fn drive(rule: &mut WrongWayRule, from_y: f64, to_y: f64) -> Vec<WrongWayViolation> {
        (0..=40)
            .filter_map(|k| {
                let y = from_y + (to_y - from_y) * k as f64 / 40.0;
                rule.observe(1, k * 100_000, Point::new(300.0, y))
            })
            .collect()
    }

    #[test]
    fn driving_out_of_the_junction_down_the_approach_is_wrong_way() {
        let v = drive(&mut rule(), 300.0, 700.0);
        assert_eq!(v.len(), 1);
        assert!(v[0].t_clearance_us < v[0].t_stop_us);
    }

    #[test]
    fn normal_travel_and_a_small_reverse_are_not() {
        assert!(drive(&mut rule(), 700.0, 300.0).is_empty(), "the right way");
        assert!(
            drive(&mut rule(), 480.0, 520.0).is_empty(),
            "reversing off the stop line only"
        );
    }
}
