//! ByteTrack-style association with motion prediction.
//!
//! Each frame: predict every track to the frame's timestamp; match the
//! confident detections to tracks first, then the weak ones (0.1-0.45) to
//! the tracks still unmatched, so a rider whose score dips in a crowd keeps
//! their track; start tentative tracks from unmatched confident detections.
//!
//! Matching uses the *predicted* box. At 6 frames/s a motorbike moves
//! 10-20 px between frames, so the plain box overlap that a 25 fps tracker
//! relies on is often tiny: when the overlap fails, a detection whose centre
//! lies within a box size of the prediction still matches, at a worse cost.

use std::collections::BTreeMap;

use vigil_core::detection::{BBox, Detection, DetectionClass};
use vigil_core::time::UnixMicros;

use crate::kalman::BoxFilter;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Detections at or above this score are matched first.
    pub high_score: f32,
    /// Detections between this and `high_score` are matched second.
    pub low_score: f32,
    /// A new track needs an unmatched detection at least this confident.
    pub new_track_score: f32,
    /// Overlap with the predicted box that counts as a match.
    pub min_iou: f32,
    /// Failing overlap, the centre may be this many box sizes from the
    /// prediction: the most for a track whose speed is not yet known.
    pub max_centre_gap: f32,
    /// For a track with a known speed the allowance is this many box sizes
    /// plus the distance it moves in one frame interval (capped at
    /// `max_centre_gap`): a rider standing in a queue may not jump to the
    /// next bike, a fast one may still be caught at 6 frames/s.
    pub base_centre_gap: f32,
    /// Matches before a track is confirmed.
    pub confirm_hits: u32,
    /// Seconds a confirmed track survives without a match.
    pub max_lost_s: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high_score: 0.45,
            low_score: 0.1,
            new_track_score: 0.3,
            min_iou: 0.1,
            max_centre_gap: 1.0,
            base_centre_gap: 0.35,
            confirm_hits: 2,
            max_lost_s: 1.5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackState {
    /// Seen, not yet trusted.
    Tentative,
    Confirmed,
    /// Not matched lately; predicted forward until `max_lost_s` passes.
    Lost,
}

/// A track as the rules see it after one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackView {
    pub id: u64,
    pub class: DetectionClass,
    pub state: TrackState,
    /// The matched detection's box, or the prediction when unmatched.
    pub bbox: BBox,
    /// Whether a detection matched this frame.
    pub matched: bool,
    /// Centre velocity, pixels per second.
    pub velocity: (f64, f64),
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    state: TrackState,
    filter: BoxFilter,
    hits: u32,
    last_seen_us: UnixMicros,
    bbox: BBox,
    matched: bool,
    /// Summed detection scores per class: the class is decided by vote.
    votes: BTreeMap<ClassKey, f32>,
}

/// A totally ordered stand-in for `DetectionClass`, for deterministic maps.
type ClassKey = (u8, u8);

fn key(c: DetectionClass) -> ClassKey {
    match c {
        DetectionClass::TrafficLight => (1, 0),
        DetectionClass::RoadUser(r) => (0, r as u8),
    }
}

impl Track {
    fn class(&self, classes: &BTreeMap<ClassKey, DetectionClass>) -> DetectionClass {
        self.votes
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
            .and_then(|(k, _)| classes.get(k).copied())
            .unwrap_or(DetectionClass::TrafficLight)
    }
}

/// One camera's tracker. Deterministic: the same detections at the same
/// times always give the same tracks and ids.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    last_time_us: Option<UnixMicros>,
    /// Seconds since the previous frame.
    last_dt: f64,
    classes: BTreeMap<ClassKey, DetectionClass>,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            config,
            tracks: Vec::new(),
            next_id: 1,
            last_time_us: None,
            last_dt: 0.0,
            classes: BTreeMap::new(),
        }
    }

    /// Advances to `time_us` with this frame's detections; returns every
    /// confirmed or lost track.
    pub fn update(&mut self, time_us: UnixMicros, detections: &[Detection]) -> Vec<TrackView> {
        let dt = self
            .last_time_us
            .map_or(0.0, |t| (time_us - t).max(0) as f64 / 1e6);
        self.last_time_us = Some(time_us);
        self.last_dt = dt;
        for t in &mut self.tracks {
            t.filter.predict(dt);
            t.bbox = t.filter.bbox();
            t.matched = false;
        }
        for d in detections {
            self.classes.insert(key(d.class), d.class);
        }
        let cfg = self.config;
        let high: Vec<usize> = (0..detections.len())
            .filter(|&i| detections[i].score >= cfg.high_score)
            .collect();
        let low: Vec<usize> = (0..detections.len())
            .filter(|&i| {
                detections[i].score >= cfg.low_score && detections[i].score < cfg.high_score
            })
            .collect();
        let all_tracks: Vec<usize> = (0..self.tracks.len()).collect();
        let (matches, unmatched_tracks, unmatched_high) =
            self.associate(&all_tracks, &high, detections);
        self.apply(&matches, detections, time_us);
        // Second pass: weak detections may only extend existing tracks. At
        // 6 frames/s a new rider's scores hover around 0.3-0.5, so tentative
        // tracks take part too, or they would never be confirmed.
        let (matches, _, unmatched_low) = self.associate(&unmatched_tracks, &low, detections);
        self.apply(&matches, detections, time_us);
        for &d in unmatched_high.iter().chain(&unmatched_low) {
            if detections[d].score >= cfg.new_track_score {
                let det = &detections[d];
                let mut votes = BTreeMap::new();
                votes.insert(key(det.class), det.score);
                self.tracks.push(Track {
                    id: self.next_id,
                    state: TrackState::Tentative,
                    filter: BoxFilter::new(&det.bbox),
                    hits: 1,
                    last_seen_us: time_us,
                    bbox: det.bbox,
                    matched: true,
                    votes,
                });
                self.next_id += 1;
            }
        }
        // Lifecycle: unmatched tentative tracks die; confirmed ones go lost,
        // and lost ones are removed once too old.
        let max_lost_us = (cfg.max_lost_s * 1e6) as i64;
        self.tracks.retain_mut(|t| {
            if t.matched {
                return true;
            }
            match t.state {
                TrackState::Tentative => false,
                _ => {
                    t.state = TrackState::Lost;
                    time_us - t.last_seen_us <= max_lost_us
                }
            }
        });
        let classes = &self.classes;
        self.tracks
            .iter()
            .filter(|t| t.state != TrackState::Tentative)
            .map(|t| TrackView {
                id: t.id,
                class: t.class(classes),
                state: t.state,
                bbox: t.bbox,
                matched: t.matched,
                velocity: t.filter.velocity(),
            })
            .collect()
    }

    fn apply(&mut self, matches: &[(usize, usize)], detections: &[Detection], time_us: UnixMicros) {
        for &(ti, di) in matches {
            let det = &detections[di];
            let t = &mut self.tracks[ti];
            t.filter.update(&det.bbox);
            t.bbox = det.bbox;
            t.matched = true;
            t.hits += 1;
            t.last_seen_us = time_us;
            *t.votes.entry(key(det.class)).or_default() += det.score;
            if t.state == TrackState::Lost || t.hits >= self.config.confirm_hits {
                t.state = TrackState::Confirmed;
            }
        }
    }

    /// Greedy matching by ascending cost (ties by index, for determinism).
    /// Returns (track, detection) pairs and the unmatched of each side.
    fn associate(
        &self,
        tracks: &[usize],
        dets: &[usize],
        detections: &[Detection],
    ) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
        let mut costs: Vec<(f32, usize, usize)> = Vec::new();
        for &t in tracks {
            let track = &self.tracks[t];
            let pred = track.bbox;
            let allowance = if track.hits < self.config.confirm_hits {
                self.config.max_centre_gap
            } else {
                let (vx, vy) = track.filter.velocity();
                let step = ((vx * vx + vy * vy).sqrt() * self.last_dt) as f32;
                let size = pred.width().max(pred.height()).max(1.0);
                (self.config.base_centre_gap + step / size).min(self.config.max_centre_gap)
            };
            for &d in dets {
                if let Some(c) = self.cost(&pred, &detections[d].bbox, allowance) {
                    costs.push((c, t, d));
                }
            }
        }
        costs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let (mut used_t, mut used_d) = (Vec::new(), Vec::new());
        let mut matches = Vec::new();
        for (_, t, d) in costs {
            if !used_t.contains(&t) && !used_d.contains(&d) {
                used_t.push(t);
                used_d.push(d);
                matches.push((t, d));
            }
        }
        let free_t = tracks
            .iter()
            .copied()
            .filter(|t| !used_t.contains(t))
            .collect();
        let free_d = dets
            .iter()
            .copied()
            .filter(|d| !used_d.contains(d))
            .collect();
        (matches, free_t, free_d)
    }

    /// Matching cost: 1 - IoU when they overlap enough; otherwise, for a
    /// centre within `allowance` box sizes, 1 + that gap; else no match.
    fn cost(&self, pred: &BBox, det: &BBox, allowance: f32) -> Option<f32> {
        let iou = pred.iou(det);
        if iou >= self.config.min_iou {
            return Some(1.0 - iou);
        }
        let (pcx, pcy) = ((pred.x1 + pred.x2) / 2.0, (pred.y1 + pred.y2) / 2.0);
        let (dcx, dcy) = ((det.x1 + det.x2) / 2.0, (det.y1 + det.y2) / 2.0);
        let size = pred
            .width()
            .max(pred.height())
            .max(det.width().max(det.height()))
            .max(1.0);
        let gap = ((pcx - dcx).powi(2) + (pcy - dcy).powi(2)).sqrt() / size;
        let similar = {
            let ratio = (det.area() / pred.area().max(1.0)).max(pred.area() / det.area().max(1.0));
            ratio < 3.0
        };
        (gap <= allowance && similar).then_some(1.0 + gap)
    }
}
