//! Speeding: the time between crossing the zone's entry and exit lines,
//! over the ground distance between the two crossing points.
//!
//! Crossings are found in image coordinates (where the lines are drawn) and
//! interpolated between frames; the distance is measured on the ground
//! plane through the camera's homography, so perspective does not shorten
//! far-away metres.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::geometry::{Point, Segment};
use vigil_core::homography::Homography;
use vigil_core::time::UnixMicros;

use crate::lines::{beyond, crossing};

#[derive(Debug, Clone, Copy)]
pub struct SpeedZone {
    pub entry: Segment,
    pub exit: Segment,
    pub travel: Point,
    /// Image -> ground (metres).
    pub to_ground: Homography,
    pub limit_kmh: f64,
    pub tolerance_kmh: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpeedMeasurement {
    pub track_id: u64,
    pub t_entry_us: UnixMicros,
    pub t_exit_us: UnixMicros,
    pub distance_m: f64,
    pub speed_kmh: f64,
    /// Above the limit by more than the tolerance.
    pub violation: bool,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Before {
        last: (UnixMicros, Point),
    },
    Inside {
        last: (UnixMicros, Point),
        entered: (UnixMicros, Point),
    },
    Done,
}

#[derive(Debug)]
pub struct SpeedRule {
    zone: SpeedZone,
    tracks: BTreeMap<u64, State>,
}

impl SpeedRule {
    /// Drops a removed track's state.
    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }

    pub fn new(zone: SpeedZone) -> Self {
        Self {
            zone,
            tracks: BTreeMap::new(),
        }
    }

    /// Feeds a track's front (image coordinates); returns a measurement when
    /// the track leaves the zone through the exit line.
    pub fn observe(
        &mut self,
        track_id: u64,
        time_us: UnixMicros,
        front: Point,
    ) -> Option<SpeedMeasurement> {
        let zone = self.zone;
        let now = (time_us, front);
        let state = match self.tracks.get(&track_id).copied() {
            None if beyond(&zone.entry, zone.travel, front) => State::Done,
            None => State::Before { last: now },
            Some(State::Done) => State::Done,
            Some(State::Before { last }) => match crossing(&zone.entry, zone.travel, last, now) {
                None => State::Before { last: now },
                Some(entered) => {
                    self.tracks.insert(
                        track_id,
                        State::Inside {
                            last: entered,
                            entered,
                        },
                    );
                    return self.observe(track_id, time_us, front);
                }
            },
            Some(State::Inside { last, entered }) => {
                match crossing(&zone.exit, zone.travel, last, now) {
                    None => State::Inside { last: now, entered },
                    Some(exited) => {
                        self.tracks.insert(track_id, State::Done);
                        return self.measure(track_id, entered, exited);
                    }
                }
            }
        };
        self.tracks.insert(track_id, state);
        None
    }

    fn measure(
        &self,
        track_id: u64,
        (t0, p0): (UnixMicros, Point),
        (t1, p1): (UnixMicros, Point),
    ) -> Option<SpeedMeasurement> {
        let (g0, g1) = (
            self.zone.to_ground.apply(p0)?,
            self.zone.to_ground.apply(p1)?,
        );
        let seconds = (t1 - t0) as f64 / 1e6;
        if seconds <= 0.0 {
            return None;
        }
        let distance_m = g0.distance(g1);
        let speed_kmh = distance_m / seconds * 3.6;
        Some(SpeedMeasurement {
            track_id,
            t_entry_us: t0,
            t_exit_us: t1,
            distance_m,
            speed_kmh,
            violation: speed_kmh > self.zone.limit_kmh + self.zone.tolerance_kmh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Image to ground at 10 px per metre.
    fn ten_px_per_metre() -> Homography {
        let img = [
            Point::new(0.0, 0.0),
            Point::new(100.0, 0.0),
            Point::new(100.0, 100.0),
            Point::new(0.0, 100.0),
        ];
        let gnd = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(10.0, 10.0),
            Point::new(0.0, 10.0),
        ];
        Homography::fit(&img, &gnd).expect("a scale is a homography")
    }

    fn zone(limit: f64) -> SpeedZone {
        SpeedZone {
            entry: Segment::new(Point::new(0.0, 900.0), Point::new(500.0, 900.0)),
            exit: Segment::new(Point::new(0.0, 500.0), Point::new(500.0, 500.0)),
            travel: Point::new(0.0, -1.0),
            to_ground: ten_px_per_metre(),
            limit_kmh: limit,
            tolerance_kmh: 3.0,
        }
    }

    /// A vehicle at `mps` metres/s (10 px per metre) sampled at `fps`.
    fn drive(rule: &mut SpeedRule, mps: f64, fps: f64) -> Option<SpeedMeasurement> {
        let dt = 1.0 / fps;
        (0..(30.0 * fps) as i64)
            .filter_map(|k| {
                let t = k as f64 * dt;
                let y = 1000.0 - mps * 10.0 * t;
                rule.observe(1, (t * 1e6) as i64, Point::new(250.0, y))
            })
            .next()
    }

    #[test]
    fn speed_is_ground_distance_over_interpolated_time() {
        // 40 m zone at 15 m/s = 54 km/h, whatever the frame rate.
        for fps in [6.0, 12.5, 25.0, 30.0] {
            let mut rule = SpeedRule::new(zone(50.0));
            let m = drive(&mut rule, 15.0, fps).expect("a measurement");
            assert!((m.distance_m - 40.0).abs() < 1e-6, "{m:?}");
            assert!((m.speed_kmh - 54.0).abs() < 0.01, "{fps} fps: {m:?}");
            assert!(m.violation, "54 > 50 + 3");
        }
        let mut rule = SpeedRule::new(zone(50.0));
        assert!(
            !drive(&mut rule, 14.5, 6.0).expect("measured").violation,
            "52.2 km/h is within the tolerance"
        );
    }
}
