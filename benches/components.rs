//! The hot pieces of the per-frame path, each on its own (issue 8):
//! detector output decoding with NMS, a tracker update with 200 live
//! tracks, batched image-to-ground transforms, and CTC decoding. The
//! letterbox is in `benches/inference.rs`, package signing in
//! `crates/vigil-evidence/benches/package.rs`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_core::detection::{BBox, Detection, DetectionClass};
use vigil_core::geometry::Point;
use vigil_core::homography::Homography;
use vigil_core::road_user::RoadUserClass;
use vigil_infer::detector::{decode, DetectorConfig};
use vigil_infer::letterbox::Letterbox;
use vigil_infer::ocr::ctc_greedy;
use vigil_track::{Tracker, TrackerConfig};

/// A YOLOv8 output for one 640x640 input (84 x 8400, channel-major) with
/// `objects` objects, each seen by 12 overlapping anchors, the rest noise.
fn yolo_output(objects: usize) -> Vec<f32> {
    let (anchors, classes) = (8400usize, 80usize);
    let mut out = vec![0.0f32; (4 + classes) * anchors];
    let mut x = 12345u64;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 10_000) as f32 / 10_000.0
    };
    for a in 0..anchors {
        out[a] = rand() * 640.0;
        out[anchors + a] = rand() * 640.0;
        out[2 * anchors + a] = 8.0 + rand() * 40.0;
        out[3 * anchors + a] = 8.0 + rand() * 40.0;
        for c in 0..classes {
            out[(4 + c) * anchors + a] = rand() * 0.05;
        }
    }
    for o in 0..objects {
        let (cx, cy) = (20.0 + (o % 15) as f32 * 40.0, 20.0 + (o / 15) as f32 * 40.0);
        let class = [2usize, 3, 5, 7, 0][o % 5];
        for k in 0..12 {
            let a = (o * 97 + k * 701) % anchors;
            out[a] = cx + k as f32 * 0.7;
            out[anchors + a] = cy - k as f32 * 0.5;
            out[2 * anchors + a] = 30.0;
            out[3 * anchors + a] = 26.0;
            out[(4 + class) * anchors + a] = 0.5 + rand() * 0.45;
        }
    }
    out
}

fn nms(c: &mut Criterion) {
    let out = yolo_output(150);
    let lb = Letterbox {
        input: (640, 640),
        scale: 640.0 / 1920.0,
        new_w: 640,
        new_h: 360,
        pad_x: 0,
        pad_y: 140,
        src_w: 1920,
        src_h: 1080,
    };
    let config = DetectorConfig::default();
    let kept = decode(&out, 8400, 80, &lb, &config).len();
    assert!(kept >= 150, "every object survives NMS once: {kept}");
    c.bench_function("decode_nms_8400_anchors_150_objects", |b| {
        b.iter(|| decode(black_box(&out), 8400, 80, &lb, &config))
    });
}

fn detections_at(step: usize) -> Vec<Detection> {
    (0..200)
        .map(|i| {
            let (col, row) = ((i % 20) as f32, (i / 20) as f32);
            let x = col * 90.0 + step as f32 * 2.0;
            let y = row * 100.0 + step as f32 * 1.5;
            Detection {
                class: DetectionClass::RoadUser(if i % 3 == 0 {
                    RoadUserClass::Car
                } else {
                    RoadUserClass::Motorbike
                }),
                class_id: 3,
                score: 0.6 + (i % 7) as f32 * 0.05,
                bbox: BBox {
                    x1: x,
                    y1: y,
                    x2: x + 40.0,
                    y2: y + 70.0,
                },
            }
        })
        .collect()
}

fn tracker(c: &mut Criterion) {
    let frames: Vec<Vec<Detection>> = (0..64).map(detections_at).collect();
    let mut warm = Tracker::new(TrackerConfig::default());
    for (i, d) in frames.iter().take(4).enumerate() {
        warm.update(i as i64 * 40_000, d);
    }
    assert_eq!(
        warm.update(4 * 40_000, &frames[4]).len(),
        200,
        "200 live tracks"
    );
    c.bench_function("tracker_update_200_tracks", |b| {
        let mut t = warm.clone();
        let mut k = 5usize;
        b.iter(|| {
            let views = t.update(k as i64 * 40_000, &frames[k % 64]);
            k += 1;
            black_box(views)
        })
    });
}

fn homography(c: &mut Criterion) {
    let image = [
        (122.5, 493.0),
        (412.5, 372.0),
        (276.2, 468.2),
        (423.8, 391.2),
    ];
    let ground = [(0.0, 0.0), (0.0, 60.0), (3.75, 7.35), (3.75, 43.35)];
    let src: Vec<Point> = image.iter().map(|&(x, y)| Point::new(x, y)).collect();
    let dst: Vec<Point> = ground.iter().map(|&(x, y)| Point::new(x, y)).collect();
    let h = Homography::fit(&src, &dst).expect("fit");
    let points: Vec<Point> = (0..10_000)
        .map(|i| Point::new((i % 960) as f64, 300.0 + (i / 960) as f64 * 20.0))
        .collect();
    let mut group = c.benchmark_group("homography");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("image_to_ground_10k_points", |b| {
        b.iter(|| {
            black_box(&points)
                .iter()
                .filter_map(|p| h.apply(*p))
                .count()
        })
    });
    group.finish();
}

fn ctc(c: &mut Criterion) {
    for (name, classes) in [
        ("plate_alphabet_103", 103usize),
        ("full_charset_18710", 18710),
    ] {
        let symbols: Vec<String> = (0..classes)
            .map(|i| format!("{}", (b'A' + (i % 26) as u8) as char))
            .collect();
        let steps = 40usize;
        let mut probs = vec![0.0f32; steps * classes];
        for t in 0..steps {
            // Blank, then a symbol, alternating, as a real line reads.
            let k = if t % 2 == 0 {
                0
            } else {
                1 + (t * 7) % (classes - 1)
            };
            probs[t * classes + k] = 0.9;
            probs[t * classes + (k + 1) % classes] = 0.1;
        }
        let line = ctc_greedy(&probs, classes, &symbols);
        assert_eq!(line.text.chars().count(), steps / 2);
        c.bench_function(&format!("ctc_greedy_40_steps/{name}"), |b| {
            b.iter(|| ctc_greedy(black_box(&probs), classes, &symbols))
        });
    }
}

criterion_group!(benches, nms, tracker, homography, ctc);
criterion_main!(benches);
