//! One camera's analysis: detections in, tracks, violation events and
//! periodic summaries out. No I/O and no models: the same code runs under
//! `vigil run`, `vigil eval violations` and the tests.

use std::collections::{BTreeMap, VecDeque};

use vigil_core::detection::{BBox, Detection, DetectionClass};
use vigil_core::time::UnixMicros;
use vigil_rules::{class_name, ApproachRules, Observation, PhaseTimeline, Violation};
use vigil_track::{TrackView, Tracker, TrackerConfig};

use crate::event::{SummaryRecord, ViolationEvent};

/// How far back a track's boxes and the frame times are kept: a violation
/// refers back to its stop-line crossing, seconds before it is confirmed.
const HISTORY_US: i64 = 60_000_000;

/// Where a track was in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    pub frame: usize,
    pub time_us: UnixMicros,
    pub bbox: BBox,
    pub class: DetectionClass,
}

/// A sighting with its front point, in the image and on the ground.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathPoint {
    pub sighting: Sighting,
    pub front: vigil_core::geometry::Point,
    pub ground: Option<vigil_core::geometry::Point>,
}

/// What one frame produced.
#[derive(Debug, Default)]
pub struct FrameAnalysis {
    pub frame: usize,
    pub tracks: Vec<TrackView>,
    pub events: Vec<ViolationEvent>,
    pub summaries: Vec<SummaryRecord>,
}

#[derive(Debug)]
pub struct CameraAnalysis {
    camera: String,
    tracker: Tracker,
    approaches: Vec<ApproachRules>,
    /// Per track, its recent sightings (matched frames only).
    history: BTreeMap<u64, VecDeque<Sighting>>,
    frames: VecDeque<(usize, UnixMicros)>,
    next_frame: usize,
    origin_us: Option<UnixMicros>,
}

/// Boxes of different vehicle classes this similar are one vehicle.
const SAME_VEHICLE_IOU: f32 = 0.6;

/// The road-user detections, with cross-class duplicates removed: the
/// detector's NMS is per class, so one bus can come out as a `bus` and a
/// `truck` box, and two tracks would report it twice. The higher score
/// wins; the tracker's class vote then settles the class over time.
pub fn one_box_per_vehicle(detections: &[Detection]) -> Vec<Detection> {
    let mut users: Vec<Detection> = detections
        .iter()
        .filter(|d| matches!(d.class, DetectionClass::RoadUser(_)))
        .copied()
        .collect();
    users.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(users.len());
    for d in users {
        if !kept
            .iter()
            .any(|k| k.class != d.class && k.bbox.iou(&d.bbox) >= SAME_VEHICLE_IOU)
        {
            kept.push(d);
        }
    }
    kept
}

impl CameraAnalysis {
    /// `approaches` are the rules of this camera's approaches.
    pub fn new(camera: &str, approaches: Vec<ApproachRules>, tracker: TrackerConfig) -> Self {
        Self {
            camera: camera.to_owned(),
            tracker: Tracker::new(tracker),
            approaches,
            history: BTreeMap::new(),
            frames: VecDeque::new(),
            next_frame: 0,
            origin_us: None,
        }
    }

    pub fn camera(&self) -> &str {
        &self.camera
    }

    pub fn approaches(&self) -> &[ApproachRules] {
        &self.approaches
    }

    /// The instant reported as t = 0 (a file's recorded start); without one
    /// the first frame is t = 0.
    pub fn set_origin(&mut self, origin_us: UnixMicros) {
        self.origin_us = Some(origin_us);
    }

    /// The signals this camera's approaches obey.
    pub fn signals(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .approaches
            .iter()
            .filter_map(|a| a.signal().map(str::to_owned))
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// A track's path as one approach sees it: each sighting with its front
    /// ground-contact point in the image and on the ground.
    pub fn trajectory(&self, track_id: u64, approach: &str) -> Vec<PathPoint> {
        let Some(a) = self.approaches.iter().find(|a| a.id() == approach) else {
            return Vec::new();
        };
        self.sightings(track_id)
            .map(|s| {
                let front = a.front_of(&Observation {
                    track_id,
                    class: s.class,
                    bbox: s.bbox,
                });
                PathPoint {
                    sighting: *s,
                    front,
                    ground: a.ground_of(front),
                }
            })
            .collect()
    }

    /// A track's recent sightings, oldest first.
    pub fn sightings(&self, track_id: u64) -> impl Iterator<Item = &Sighting> {
        self.history.get(&track_id).into_iter().flatten()
    }

    /// Counts a frame that is not analysed (a detection rate below every
    /// frame), so that frame numbers in events stay the input's own.
    pub fn skip_frame(&mut self) {
        self.next_frame += 1;
    }

    /// Feeds one frame's road-user detections (traffic lights are ignored)
    /// with the signal timelines known at `time_us`, by signal id.
    pub fn process(
        &mut self,
        time_us: UnixMicros,
        detections: &[Detection],
        timelines: &BTreeMap<String, PhaseTimeline>,
    ) -> FrameAnalysis {
        let frame = self.next_frame;
        self.next_frame += 1;
        let origin = *self.origin_us.get_or_insert(time_us);
        self.frames.push_back((frame, time_us));
        while self
            .frames
            .front()
            .is_some_and(|&(_, t)| time_us - t > HISTORY_US)
        {
            self.frames.pop_front();
        }
        let road_users = one_box_per_vehicle(detections);
        let tracks = self.tracker.update(time_us, &road_users);

        // Tracks the tracker dropped are forgotten by every rule.
        let live: std::collections::BTreeSet<u64> = tracks.iter().map(|t| t.id).collect();
        let gone: Vec<u64> = self
            .history
            .keys()
            .filter(|id| !live.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.history.remove(&id);
            for a in &mut self.approaches {
                a.forget(id);
            }
        }
        let observed: Vec<Observation> = tracks
            .iter()
            .filter(|t| t.matched)
            .map(|t| Observation {
                track_id: t.id,
                class: t.class,
                bbox: t.bbox,
            })
            .collect();
        for o in &observed {
            let h = self.history.entry(o.track_id).or_default();
            h.push_back(Sighting {
                frame,
                time_us,
                bbox: o.bbox,
                class: o.class,
            });
            while h.front().is_some_and(|s| time_us - s.time_us > HISTORY_US) {
                h.pop_front();
            }
        }

        let mut out = FrameAnalysis {
            frame,
            ..FrameAnalysis::default()
        };
        for i in 0..self.approaches.len() {
            let timeline = self.approaches[i].signal().and_then(|s| timelines.get(s));
            let result = self.approaches[i].observe_frame(time_us, timeline, &observed);
            let approach = self.approaches[i].id().to_owned();
            for v in result.violations {
                out.events
                    .push(self.event(&approach, v, origin, frame, &tracks));
            }
            if let Some(s) = result.summary {
                out.summaries
                    .push(SummaryRecord::new(&self.camera, s, origin));
            }
        }
        out.tracks = tracks;
        out
    }

    /// The frame shown at `t`: the first at or after it.
    fn frame_at(&self, t: UnixMicros, current: usize) -> usize {
        let i = self.frames.partition_point(|&(_, ft)| ft < t);
        self.frames.get(i).map_or(current, |&(f, _)| f)
    }

    fn event(
        &self,
        approach: &str,
        v: Violation,
        origin: UnixMicros,
        frame: usize,
        tracks: &[TrackView],
    ) -> ViolationEvent {
        let id = v.track_id();
        let class = tracks
            .iter()
            .find(|t| t.id == id)
            .map(|t| class_name(t.class))
            .unwrap_or_default();
        let rel = |t: UnixMicros| (t - origin) as f64 / 1e6;
        let stop = match &v {
            Violation::RedLight(r) => Some(r.t_stop_us),
            Violation::LaneMovement(m) => Some(m.t_stop_us),
            Violation::WrongWay(w) => Some(w.t_stop_us),
            _ => None,
        };
        let frame_stop = stop.map(|t| self.frame_at(t, frame));
        let bbox_at_stop = frame_stop.and_then(|f| {
            self.sightings(id)
                .find(|s| s.frame >= f)
                .map(|s| s.bbox)
                .map(|b| [b.x1, b.y1, b.width(), b.height()])
        });
        let key = v.key_time_us();
        let (t_clearance, time_into_red) = match &v {
            Violation::RedLight(r) => (
                Some(rel(r.t_clear_us)),
                Some(r.time_into_red_us as f64 / 1e6),
            ),
            _ => (None, None),
        };
        ViolationEvent {
            kind: v.kind().to_owned(),
            camera: self.camera.clone(),
            approach: approach.to_owned(),
            track_id: id,
            class,
            t: rel(key),
            frame: self.frame_at(key, frame),
            at_us: key,
            t_stop_line: stop.map(rel),
            frame_stop_line: frame_stop,
            t_clearance,
            time_into_red,
            bbox_at_stop_line: bbox_at_stop,
            plate: None,
            plate_read: None,
            details: serde_json::to_value(&v).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The partial periods' summaries at the end of an input.
    pub fn finish(&mut self) -> Vec<SummaryRecord> {
        let origin = self.origin_us.unwrap_or(0);
        let camera = self.camera.clone();
        self.approaches
            .iter_mut()
            .filter_map(|a| a.finish())
            .map(|s| SummaryRecord::new(&camera, s, origin))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::RoadUserClass;

    fn det(class: RoadUserClass, score: f32, x: f32) -> Detection {
        Detection {
            class: DetectionClass::RoadUser(class),
            class_id: 0,
            score,
            bbox: BBox {
                x1: x,
                y1: 100.0,
                x2: x + 100.0,
                y2: 180.0,
            },
        }
    }

    #[test]
    fn a_bus_also_boxed_as_a_truck_is_one_vehicle() {
        let d = [
            det(RoadUserClass::Truck, 0.4, 4.0),
            det(RoadUserClass::Bus, 0.8, 0.0),
            det(RoadUserClass::Car, 0.9, 300.0),
        ];
        let kept = one_box_per_vehicle(&d);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].class, DetectionClass::RoadUser(RoadUserClass::Bus));
    }

    #[test]
    fn neighbouring_vehicles_of_one_class_are_left_to_the_detector() {
        // Same class, overlapping: the detector's NMS already judged them.
        let d = [
            det(RoadUserClass::Car, 0.9, 0.0),
            det(RoadUserClass::Car, 0.8, 10.0),
        ];
        assert_eq!(one_box_per_vehicle(&d).len(), 2);
    }
}
