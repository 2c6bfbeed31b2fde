//! Tracking on synthetic sequences with known truth: motorbike-sized boxes
//! moving 10-20 px between frames at 6 frames/s, jitter, weak scores and
//! missed detections, short occlusions.

use std::collections::{BTreeMap, BTreeSet};

use vigil_core::detection::{BBox, Detection, DetectionClass};
use vigil_core::RoadUserClass;
use vigil_track::{Tracker, TrackerConfig};

const BIKE: DetectionClass = DetectionClass::RoadUser(RoadUserClass::Motorbike);

/// Deterministic noise in [0, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

struct Object {
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
}

/// Per frame: (time µs, detections, true boxes by object index).
type Frame = (i64, Vec<Detection>, Vec<(usize, BBox)>);

fn scene(
    fps: f64,
    frames: usize,
    miss_rate: f32,
    hidden: Option<(usize, std::ops::Range<usize>)>,
    seed: u64,
) -> Vec<Frame> {
    let times: Vec<f64> = (0..frames).map(|f| f as f64 / fps).collect();
    scene_at(&times, miss_rate, hidden, seed)
}

/// The five bikes seen at the given instants (seconds): any frame rate, even a changing one.
fn scene_at(
    times: &[f64],
    miss_rate: f32,
    hidden: Option<(usize, std::ops::Range<usize>)>,
    seed: u64,
) -> Vec<Frame> {
    let mut rng = Rng(seed);
    // Five bikes in parallel lanes, 60-120 px/s (10-20 px a frame at 6 fps).
    let objects: Vec<Object> = (0..5)
        .map(|i| Object {
            x: 100.0 + 90.0 * i as f32,
            y: 500.0 - 15.0 * i as f32,
            vx: 8.0 * (i as f32 - 2.0),
            vy: -(60.0 + 15.0 * i as f32),
        })
        .collect();
    let mut out = Vec::new();
    for (f, &secs) in times.iter().enumerate() {
        let t = (secs * 1e6) as i64;
        let mut dets = Vec::new();
        let mut truth = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            let (x, y) = (o.x + o.vx * secs as f32, o.y + o.vy * secs as f32);
            let b = BBox {
                x1: x - 15.0,
                y1: y - 20.0,
                x2: x + 15.0,
                y2: y + 20.0,
            };
            truth.push((i, b));
            let hidden_now = hidden
                .as_ref()
                .is_some_and(|(obj, r)| *obj == i && r.contains(&f));
            if hidden_now || rng.next() < miss_rate {
                continue;
            }
            let j = |r: &mut Rng| (r.next() - 0.5) * 4.0;
            dets.push(Detection {
                class: BIKE,
                class_id: 3,
                score: 0.2 + 0.5 * rng.next(),
                bbox: BBox {
                    x1: b.x1 + j(&mut rng),
                    y1: b.y1 + j(&mut rng),
                    x2: b.x2 + j(&mut rng),
                    y2: b.y2 + j(&mut rng),
                },
            });
        }
        out.push((t, dets, truth));
    }
    out
}

/// For each object, the track ids that covered it (IoU > 0.3), and in how many frames.
fn identities(frames: &[Frame]) -> BTreeMap<usize, (BTreeSet<u64>, usize)> {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut seen: BTreeMap<usize, (BTreeSet<u64>, usize)> = BTreeMap::new();
    for (t, dets, truth) in frames {
        let tracks = tracker.update(*t, dets);
        for (obj, b) in truth {
            let entry = seen.entry(*obj).or_default();
            if let Some(tr) = tracks
                .iter()
                .filter(|tr| tr.bbox.iou(b) > 0.3)
                .max_by(|a, c| a.bbox.iou(b).total_cmp(&c.bbox.iou(b)))
            {
                entry.0.insert(tr.id);
                entry.1 += 1;
            }
        }
    }
    seen
}

#[test]
fn tracks_form_and_hold_at_six_frames_per_second() {
    let frames = scene(6.0, 36, 0.15, None, 7);
    let ids = identities(&frames);
    for (obj, (set, covered)) in &ids {
        assert_eq!(set.len(), 1, "object {obj} changed identity: {set:?}");
        assert!(
            *covered >= 30,
            "object {obj} tracked in only {covered} of 36 frames"
        );
    }
    let all: BTreeSet<u64> = ids.values().flat_map(|(s, _)| s.iter().copied()).collect();
    assert_eq!(all.len(), 5, "one track per bike");
}

#[test]
fn identity_survives_a_half_second_occlusion() {
    let frames = scene(6.0, 30, 0.0, Some((2, 10..13)), 11);
    let ids = identities(&frames);
    assert_eq!(
        ids[&2].0.len(),
        1,
        "bike 2 came back with a new id: {:?}",
        ids[&2].0
    );
}

#[test]
fn the_same_detections_always_give_the_same_tracks() {
    let frames = scene(6.0, 24, 0.2, None, 3);
    let run = || {
        let mut tracker = Tracker::new(TrackerConfig::default());
        frames
            .iter()
            .map(|(t, d, _)| tracker.update(*t, d))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn frame_rate_changes_do_not_break_tracks() {
    // One second at 25 fps, then three at 6 fps: the filter uses timestamps.
    let times: Vec<f64> = (0..25)
        .map(|f| f as f64 / 25.0)
        .chain((0..18).map(|f| 1.0 + f as f64 / 6.0))
        .collect();
    let ids = identities(&scene_at(&times, 0.1, None, 5));
    for (obj, (set, covered)) in &ids {
        assert_eq!(
            set.len(),
            1,
            "object {obj} changed identity across the rate change: {set:?}"
        );
        assert!(
            *covered >= 36,
            "object {obj} tracked in only {covered} of 43 frames"
        );
    }
}
