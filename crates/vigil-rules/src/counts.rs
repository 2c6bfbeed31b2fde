//! Counts and congestion per approach: vehicles per lane and class, queue
//! length at red, and lane occupancy, summarised once per period.
//!
//! - A road user is counted once, when its front crosses the stop line, in
//!   the lane that last held its front on the approach side (or
//!   `unassigned`).
//! - Occupancy is the share of the period during which a lane polygon held
//!   at least one road user's front point: the loop-detector measure,
//!   computed from the video.
//! - Queue length is measured on the ground (so it needs the camera's
//!   homography): during red, the distance from the stop line to the rear of
//!   the farthest stopped road user in the lane. "Stopped" is a smoothed
//!   ground speed under [`CountsConfig::stopped_mps`].
//!
//! Periods are aligned to multiples of the period on the UTC clock (a 60 s
//! period runs from each full minute), so records from several cameras and
//! days line up.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::geometry::{Point, Polygon, Segment};
use vigil_core::homography::Homography;
use vigil_core::time::UnixMicros;

use crate::lines::{beyond, crossing};
use crate::red_light::ApproachLines;
use crate::signal::Phase;

/// Lane key for road users counted outside every lane polygon.
pub const UNASSIGNED: &str = "unassigned";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountsConfig {
    pub period_us: i64,
    /// Below this smoothed ground speed a road user counts as stopped.
    pub stopped_mps: f64,
    /// A gap between frames longer than this is not credited to occupancy
    /// or red time (the camera was down; nothing is known).
    pub max_frame_gap_us: i64,
}

impl Default for CountsConfig {
    fn default() -> Self {
        Self {
            period_us: 60_000_000,
            stopped_mps: 1.0,
            max_frame_gap_us: 1_000_000,
        }
    }
}

/// One road user in one frame, as the counter sees it.
#[derive(Debug, Clone, Copy)]
pub struct CountObservation<'a> {
    pub track_id: u64,
    pub class: &'a str,
    /// Front ground-contact point (image).
    pub front: Point,
    /// Rear ground-contact point (image).
    pub rear: Point,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneSummary {
    pub lane: String,
    /// Road users that crossed the stop line, per class.
    pub counts: BTreeMap<String, u32>,
    pub total: u32,
    /// Share of the observed time the lane was occupied, 0–1.
    pub occupancy: f64,
    /// Longest queue seen at red, metres (None without a homography).
    pub queue_max_m: Option<f64>,
    /// Time-averaged queue over the red time, metres.
    pub queue_mean_at_red_m: Option<f64>,
}

/// The periodic record: one per approach per period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalSummary {
    pub approach: String,
    pub start_us: UnixMicros,
    pub end_us: UnixMicros,
    /// Time covered by frames (less than the period after a gap or at the
    /// start and end of an input).
    pub observed_s: f64,
    pub red_s: f64,
    pub lanes: Vec<LaneSummary>,
}

#[derive(Debug, Default, Clone)]
struct LaneAccumulator {
    counts: BTreeMap<String, u32>,
    occupied_us: i64,
    queue_max_m: f64,
    /// Integral of queue length over red time, metre-microseconds.
    queue_red_m_us: f64,
}

#[derive(Debug, Clone, Copy)]
struct TrackMemory {
    last: (UnixMicros, Point),
    lane: Option<usize>,
    ground: Option<(UnixMicros, Point)>,
    speed_mps: Option<f64>,
    counted: bool,
    seen_at: UnixMicros,
}

#[derive(Debug)]
pub struct TrafficCounter {
    approach: String,
    lines: ApproachLines,
    lanes: Vec<(String, Polygon)>,
    to_ground: Option<Homography>,
    stop_ground: Option<Segment>,
    config: CountsConfig,
    period_start: Option<UnixMicros>,
    last_frame: Option<(UnixMicros, Phase)>,
    observed_us: i64,
    red_us: i64,
    /// Per lane, then the unassigned bucket last.
    acc: Vec<LaneAccumulator>,
    tracks: BTreeMap<u64, TrackMemory>,
    /// Queue per lane in the previous frame (applies until this frame).
    queue_now: Vec<Option<f64>>,
    occupied_now: Vec<bool>,
}

impl TrafficCounter {
    pub fn new(
        approach: impl Into<String>,
        lines: ApproachLines,
        lanes: Vec<(String, Polygon)>,
        to_ground: Option<Homography>,
        config: CountsConfig,
    ) -> Self {
        let stop_ground = to_ground
            .as_ref()
            .and_then(|h| Some(Segment::new(h.apply(lines.stop.a)?, h.apply(lines.stop.b)?)));
        let n = lanes.len();
        Self {
            approach: approach.into(),
            lines,
            lanes,
            to_ground,
            stop_ground,
            config,
            period_start: None,
            last_frame: None,
            observed_us: 0,
            red_us: 0,
            acc: vec![LaneAccumulator::default(); n + 1],
            tracks: BTreeMap::new(),
            queue_now: vec![None; n],
            occupied_now: vec![false; n],
        }
    }

    fn period_of(&self, t: UnixMicros) -> UnixMicros {
        t.div_euclid(self.config.period_us) * self.config.period_us
    }

    /// Feeds one frame: every road user seen in it, and the phase. Returns
    /// the summary of a period that this frame closed.
    pub fn observe_frame(
        &mut self,
        time_us: UnixMicros,
        phase: Phase,
        users: &[CountObservation<'_>],
    ) -> Option<IntervalSummary> {
        let mut closed = None;
        let start = *self.period_start.get_or_insert(self.period_of(time_us));
        let boundary = start + self.config.period_us;
        if let Some((prev_t, prev_phase)) = self.last_frame {
            // Credit the time since the previous frame to the state that
            // frame showed, split at the period boundary; a long gap is
            // credited to nothing (nobody watched).
            let dt = time_us - prev_t;
            let credited = dt > 0 && dt <= self.config.max_frame_gap_us;
            if credited {
                self.credit((boundary.min(time_us) - prev_t).max(0), prev_phase);
            }
            if time_us >= boundary {
                closed = Some(self.close(boundary));
                // After a long gap this skips the empty periods in between.
                let next = self.period_of(time_us);
                self.period_start = Some(next);
                if credited {
                    self.credit(time_us - next, prev_phase);
                }
            }
        }

        let mut queue: Vec<Option<f64>> = vec![None; self.lanes.len()];
        let mut occupied = vec![false; self.lanes.len()];
        for u in users {
            self.observe_user(time_us, u, phase, &mut queue, &mut occupied);
        }
        self.queue_now = queue;
        self.occupied_now = occupied;
        self.last_frame = Some((time_us, phase));
        // Forget tracks unseen for a while; their counts are already taken.
        self.tracks
            .retain(|_, m| time_us - m.seen_at <= 10 * self.config.max_frame_gap_us);
        closed
    }

    fn credit(&mut self, dt: i64, phase: Phase) {
        self.observed_us += dt;
        let red = phase == Phase::Red;
        if red {
            self.red_us += dt;
        }
        for (i, acc) in self.acc.iter_mut().take(self.lanes.len()).enumerate() {
            if self.occupied_now[i] {
                acc.occupied_us += dt;
            }
            if red {
                if let Some(q) = self.queue_now[i] {
                    acc.queue_red_m_us += q * dt as f64;
                }
            }
        }
    }

    fn observe_user(
        &mut self,
        time_us: UnixMicros,
        u: &CountObservation<'_>,
        phase: Phase,
        queue: &mut [Option<f64>],
        occupied: &mut [bool],
    ) {
        let lane_now = self.lanes.iter().position(|(_, p)| p.contains(u.front));
        if let Some(l) = lane_now {
            occupied[l] = true;
        }
        let ground = self.to_ground.as_ref().and_then(|h| h.apply(u.front));
        let now = (time_us, u.front);
        let lines = self.lines;
        let mem = self.tracks.entry(u.track_id).or_insert(TrackMemory {
            last: now,
            lane: lane_now,
            ground: None,
            speed_mps: None,
            // Already past the line when first seen: not ours to count.
            counted: beyond(&lines.stop, lines.travel, u.front),
            seen_at: time_us,
        });
        if !mem.counted {
            if crossing(&lines.stop, lines.travel, mem.last, now).is_some() {
                mem.counted = true;
                let slot = mem.lane.unwrap_or(self.lanes.len());
                *self.acc[slot].counts.entry(u.class.to_owned()).or_default() += 1;
            } else if lane_now.is_some() {
                mem.lane = lane_now;
            }
        }
        if let (Some(g), Some((tg, pg))) = (ground, mem.ground) {
            let dt = (time_us - tg) as f64 / 1e6;
            if dt > 0.0 {
                let v = g.distance(pg) / dt;
                // Exponential smoothing over about three frames.
                mem.speed_mps = Some(mem.speed_mps.map_or(v, |s| 0.6 * s + 0.4 * v));
            }
        }
        if ground.is_some() {
            mem.ground = ground.map(|g| (time_us, g));
        }
        mem.last = now;
        mem.seen_at = time_us;
        let stopped = mem.speed_mps.is_some_and(|s| s < self.config.stopped_mps);

        if phase != Phase::Red || !stopped {
            return;
        }
        let (Some(lane), Some(stop), Some(h)) = (lane_now, self.stop_ground, &self.to_ground)
        else {
            return;
        };
        if beyond(&lines.clearance, lines.travel, u.front) {
            return;
        }
        if let Some(rear) = h.apply(u.rear) {
            let d = distance_to_segment(rear, &stop);
            queue[lane] = Some(queue[lane].map_or(d, |q: f64| q.max(d)));
            let acc = &mut self.acc[lane];
            acc.queue_max_m = acc.queue_max_m.max(d);
        }
    }

    fn close(&mut self, end_us: UnixMicros) -> IntervalSummary {
        let start_us = self.period_start.unwrap_or(end_us - self.config.period_us);
        let has_ground = self.to_ground.is_some();
        let observed = self.observed_us.max(1) as f64;
        let red = self.red_us;
        let mut lanes: Vec<LaneSummary> = self
            .acc
            .iter()
            .enumerate()
            .map(|(i, acc)| LaneSummary {
                lane: self
                    .lanes
                    .get(i)
                    .map_or(UNASSIGNED.to_owned(), |(id, _)| id.clone()),
                total: acc.counts.values().sum(),
                counts: acc.counts.clone(),
                occupancy: acc.occupied_us as f64 / observed,
                queue_max_m: has_ground.then_some(acc.queue_max_m),
                queue_mean_at_red_m: (has_ground && red > 0)
                    .then(|| acc.queue_red_m_us / red as f64),
            })
            .collect();
        // The unassigned bucket has no polygon: no occupancy or queue.
        if let Some(last) = lanes.last_mut() {
            last.queue_max_m = None;
            last.queue_mean_at_red_m = None;
        }
        let summary = IntervalSummary {
            approach: self.approach.clone(),
            start_us,
            end_us,
            observed_s: self.observed_us as f64 / 1e6,
            red_s: red as f64 / 1e6,
            lanes,
        };
        self.period_start = Some(end_us);
        self.observed_us = 0;
        self.red_us = 0;
        for acc in &mut self.acc {
            *acc = LaneAccumulator::default();
        }
        summary
    }

    /// Closes the current, partial period (at the end of an input).
    pub fn finish(&mut self) -> Option<IntervalSummary> {
        let (t, _) = self.last_frame?;
        self.period_start?;
        let summary = self.close(t);
        self.period_start = None;
        self.last_frame = None;
        Some(summary)
    }
}

fn distance_to_segment(p: Point, s: &Segment) -> f64 {
    let d = s.b - s.a;
    let len2 = d.dot(d);
    if len2 <= f64::EPSILON {
        return p.distance(s.a);
    }
    let f = ((p - s.a).dot(d) / len2).clamp(0.0, 1.0);
    p.distance(Point::new(s.a.x + f * d.x, s.a.y + f * d.y))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Image = ground scaled 10 px per metre; traffic goes up (y decreasing).
    // Stop line y = 300, clearance y = 260; two lanes, x 0..100 and 100..200.
    fn counter(period_s: i64) -> TrafficCounter {
        let p = Point::new;
        let lines = ApproachLines {
            stop: Segment::new(p(0.0, 300.0), p(200.0, 300.0)),
            clearance: Segment::new(p(0.0, 260.0), p(200.0, 260.0)),
            travel: p(0.0, -1.0),
        };
        let src = [p(0.0, 0.0), p(100.0, 0.0), p(100.0, 100.0), p(0.0, 100.0)];
        let dst = [p(0.0, 0.0), p(10.0, 0.0), p(10.0, 10.0), p(0.0, 10.0)];
        let h = Homography::fit(&src, &dst).expect("homography");
        let lane = |x0: f64| {
            Polygon::new(vec![
                p(x0, 300.0),
                p(x0 + 100.0, 300.0),
                p(x0 + 100.0, 700.0),
                p(x0, 700.0),
            ])
        };
        TrafficCounter::new(
            "north",
            lines,
            vec![("a".into(), lane(0.0)), ("b".into(), lane(100.0))],
            Some(h),
            CountsConfig {
                period_us: period_s * 1_000_000,
                ..CountsConfig::default()
            },
        )
    }

    fn user(id: u64, class: &str, x: f64, front_y: f64, len: f64) -> CountObservation<'_> {
        CountObservation {
            track_id: id,
            class,
            front: Point::new(x, front_y),
            rear: Point::new(x, front_y + len),
        }
    }

    #[test]
    fn each_road_user_is_counted_once_in_its_lane_and_class() {
        let mut c = counter(60);
        let t0 = 1_800_000_000_000_000; // a whole minute
        for f in 0..40 {
            let t = t0 + f * 100_000;
            let y = 400.0 - 10.0 * f as f64; // 1 m per frame, crosses y = 300 at frame 10
            let users = [
                user(1, "car", 50.0, y, 40.0),
                user(2, "motorbike", 150.0, y + 50.0, 20.0),
            ];
            assert!(c.observe_frame(t, Phase::Green, &users).is_none());
        }
        let s = c.finish().expect("partial period");
        assert_eq!(s.lanes[0].counts.get("car"), Some(&1));
        assert_eq!(s.lanes[1].counts.get("motorbike"), Some(&1));
        assert_eq!(s.lanes[2].lane, UNASSIGNED);
        assert_eq!(s.lanes[2].total, 0);
    }

    #[test]
    fn a_stopped_queue_at_red_is_measured_in_metres_to_the_farthest_rear() {
        let mut c = counter(10);
        let t0 = 1_800_000_000_000_000;
        let mut summaries = Vec::new();
        for f in 0..=100 {
            let t = t0 + f * 100_000;
            // Three cars stand in lane a: fronts 1 m, 6 m and 11 m back; the
            // last is 4 m long, so its rear is 15 m from the line.
            let users = [
                user(1, "car", 50.0, 310.0, 40.0),
                user(2, "car", 50.0, 360.0, 40.0),
                user(3, "car", 50.0, 410.0, 40.0),
            ];
            summaries.extend(c.observe_frame(t, Phase::Red, &users));
        }
        let s = &summaries[0];
        assert_eq!((s.start_us, s.end_us), (t0, t0 + 10_000_000));
        assert!((s.red_s - 10.0).abs() < 1e-6, "{}", s.red_s);
        let q = s.lanes[0].queue_max_m.expect("queue");
        assert!((q - 15.0).abs() < 1e-6, "{q}");
        let mean = s.lanes[0].queue_mean_at_red_m.expect("mean");
        assert!(mean > 14.0 && mean <= 15.0 + 1e-6, "{mean}");
        assert!((s.lanes[0].occupancy - 1.0).abs() < 1e-6);
        assert_eq!(s.lanes[1].occupancy, 0.0);
        assert_eq!(s.lanes[1].queue_max_m, Some(0.0));
    }

    #[test]
    fn moving_traffic_is_not_a_queue_and_green_time_is_not_red_time() {
        let mut c = counter(5);
        let t0 = 1_800_000_000_000_000;
        let mut summaries = Vec::new();
        for f in 0..=50 {
            let t = t0 + f * 100_000;
            let y = 650.0 - 10.0 * f as f64;
            let phase = if f < 25 { Phase::Green } else { Phase::Red };
            summaries.extend(c.observe_frame(t, phase, &[user(1, "car", 50.0, y, 40.0)]));
        }
        let s = &summaries[0];
        assert!((s.red_s - 2.5).abs() < 1e-6, "{}", s.red_s);
        assert_eq!(s.lanes[0].queue_max_m, Some(0.0));
        // The front was inside lane a's polygon (y 300..700) until it crossed.
        assert!(
            s.lanes[0].occupancy > 0.6 && s.lanes[0].occupancy < 0.8,
            "{}",
            s.lanes[0].occupancy
        );
    }

    #[test]
    fn a_camera_gap_is_not_credited_and_empty_periods_are_skipped() {
        let mut c = counter(10);
        let t0 = 1_800_000_000_000_000;
        let mut summaries = Vec::new();
        for f in 0..10 {
            summaries.extend(c.observe_frame(t0 + f * 100_000, Phase::Red, &[]));
        }
        // 45 s without frames.
        for f in 0..10 {
            summaries.extend(c.observe_frame(t0 + 46_000_000 + f * 100_000, Phase::Red, &[]));
        }
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        assert!((summaries[0].observed_s - 0.9).abs() < 1e-6);
        let last = c.finish().expect("partial");
        assert_eq!(last.start_us, t0 + 40_000_000);
        assert!((last.observed_s - 0.9).abs() < 1e-6, "{}", last.observed_s);
    }
}
