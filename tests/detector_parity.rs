//! The Rust detector against Python onnxruntime on committed real frames:
//! same classes, boxes within 1 px, scores within 1e-3. The reference and
//! its exact pre/post-processing spec are in tests/fixtures/detector/
//! (made by tests/support/detector_reference.py).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use vigil_core::image::RgbImage;
use vigil_infer::detector::{Detector, DetectorConfig, Preparer, RawDetection, TileGrid, Views};
use vigil_infer::letterbox::letterbox_into;
use vigil_infer::model::{DetectorShape, OnnxModel};
use vigil_infer::runtime::{Runtime, SessionOptions};
use vigil_infer::Manifest;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/detector")
}

fn load_png(name: &str) -> RgbImage {
    let img = image::open(fixtures().join(name))
        .expect("fixture PNG")
        .to_rgb8();
    let (w, h) = img.dimensions();
    RgbImage::from_raw(w, h, img.into_raw()).expect("RGB")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).expect("fixture JSON"))
        .expect("valid JSON")
}

fn detector() -> Detector {
    detector_with(DetectorConfig::default())
}

fn detector_with(config: DetectorConfig) -> Detector {
    edited_detector(DetectorShape::default(), config, usize::MAX)
}

fn mirror(img: &RgbImage) -> RgbImage {
    let row = img.width as usize * 3;
    let data = img
        .data
        .chunks_exact(row)
        .flat_map(|line| line.chunks_exact(3).rev().flatten().copied())
        .collect();
    RgbImage::from_raw(img.width, img.height, data).expect("same size")
}

#[test]
fn a_whole_frame_tile_adds_nothing_to_the_plain_view() {
    // One 1x1 tile with no overlap is the frame again: every object is seen
    // twice, identically, and fuses back into the plain view's detection.
    let views = Views {
        tiles: Some(TileGrid {
            overlap: 0.0,
            ..TileGrid::whole_frame(1, 1)
        }),
        ..Views::default()
    };
    let mut plain = detector();
    let mut twice = detector_with(DetectorConfig {
        views,
        ..DetectorConfig::default()
    });
    let img = load_png("motorway-300.png");
    let want = plain.detect_raw(&img).expect("plain");
    let got = twice
        .detect_views_raw_batch(&[&img])
        .expect("views")
        .remove(0);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        // The fused box is the mean of two equal boxes: equal to rounding.
        let (gb, wb) = (g.bbox, w.bbox);
        let close = [gb.x1 - wb.x1, gb.y1 - wb.y1, gb.x2 - wb.x2, gb.y2 - wb.y2]
            .iter()
            .all(|d| d.abs() < 1e-3);
        assert!(
            g.class_id == w.class_id && g.score == w.score && close,
            "{g:?} vs {w:?}"
        );
    }
}

#[test]
fn the_mirrored_view_is_symmetric_on_a_real_frame() {
    // With flip, a frame and its mirror image have the same two views, so
    // their detections are mirror images of each other.
    let config = DetectorConfig {
        views: Views {
            flip: true,
            ..Views::default()
        },
        ..DetectorConfig::default()
    };
    let mut det = detector_with(config);
    let img = load_png("motorway-300.png");
    let plain = detector().detect_raw(&img).expect("plain");
    let a = det.detect_views_raw_batch(&[&img]).expect("a").remove(0);
    let b = det
        .detect_views_raw_batch(&[&mirror(&img)])
        .expect("b")
        .remove(0);
    // Every object of the plain view is still there, fused or not.
    for p in &plain {
        assert!(
            a.iter()
                .any(|d| d.class_id == p.class_id && d.bbox.iou(&p.bbox) > 0.5),
            "plain detection {p:?} lost"
        );
    }
    assert_eq!(a.len(), b.len());
    let w = img.width as f32;
    for d in &a {
        let twin = b.iter().find(|e| {
            e.class_id == d.class_id
                && (e.score - d.score).abs() < 1e-4
                && (e.bbox.x1 - (w - d.bbox.x2)).abs() < 1e-2
                && (e.bbox.x2 - (w - d.bbox.x1)).abs() < 1e-2
                && (e.bbox.y1 - d.bbox.y1).abs() < 1e-2
                && (e.bbox.y2 - d.bbox.y2).abs() < 1e-2
        });
        assert!(twin.is_some(), "no mirrored twin for {d:?}");
    }
}

#[test]
fn letterbox_matches_the_reference_tensor_bit_for_bit() {
    let reference = json("input-motorway-300.json");
    let img = load_png("motorway-300.png");
    let mut tensor = vec![0.0f32; 3 * 640 * 640];
    letterbox_into(&img, (640, 640), &mut tensor);
    let bytes: Vec<u8> = tensor.iter().flat_map(|v| v.to_le_bytes()).collect();
    let sha = hex::encode(Sha256::digest(&bytes));
    let indices = reference["sample_indices"].as_array().expect("indices");
    let values = reference["sample_values"].as_array().expect("values");
    for (i, v) in indices.iter().zip(values) {
        let i = i.as_u64().expect("index") as usize;
        let v = v.as_f64().expect("value") as f32;
        assert_eq!(tensor[i], v, "input value {i}");
    }
    assert_eq!(
        sha,
        reference["sha256"].as_str().expect("sha256"),
        "whole tensor"
    );
}

fn assert_parity(name: &str, got: &[RawDetection], reference: &Value) {
    let want = reference["detections"].as_array().expect("detections");
    assert_eq!(got.len(), want.len(), "{name}: detection count");
    let mut used = vec![false; got.len()];
    for w in want {
        let class = w["class_id"].as_u64().expect("class") as usize;
        let score = w["score"].as_f64().expect("score") as f32;
        let b: Vec<f32> = w["box"]
            .as_array()
            .expect("box")
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
            .collect();
        let found = got.iter().enumerate().find(|(i, g)| {
            !used[*i]
                && g.class_id == class
                && (g.score - score).abs() <= 1e-3
                && [g.bbox.x1, g.bbox.y1, g.bbox.x2, g.bbox.y2]
                    .iter()
                    .zip(&b)
                    .all(|(a, r)| (a - r).abs() <= 1.0)
        });
        match found {
            Some((i, _)) => used[i] = true,
            None => panic!("{name}: no Rust detection matches reference {w}"),
        }
    }
}

#[test]
fn detections_match_python_onnxruntime_on_real_frames() {
    let mut det = detector();
    for name in [
        "motorway-000",
        "motorway-300",
        "motorway-599",
        "intersection-075",
    ] {
        let img = load_png(&format!("{name}.png"));
        let got = det.detect_raw(&img).expect("detect");
        assert_parity(name, &got, &json(&format!("{name}.json")));
    }
}

#[test]
fn a_batch_gives_the_same_detections_as_single_runs() {
    let mut det = detector();
    let a = load_png("motorway-000.png");
    let b = load_png("intersection-075.png");
    let batch = det.detect_raw_batch(&[&a, &b]).expect("batch");
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0], det.detect_raw(&a).expect("a"));
    assert_eq!(batch[1], det.detect_raw(&b).expect("b"));
}

/// The detector on the manifest's file changed in memory as `shape` asks,
/// taking up to `max_batch` images a run.
fn edited_detector(shape: DetectorShape, config: DetectorConfig, max_batch: usize) -> Detector {
    let manifest = Manifest::load(&root().join("models/manifest.toml")).expect("manifest");
    let models = root().join("models");
    vigil_infer::store::require(&manifest, &models, &["onnxruntime", "yolov8n-coco"])
        .expect("models fetched (./dev.sh test fetches them)");
    let runtime = Runtime::load(&models.join(&manifest.runtime.file)).expect("ONNX Runtime");
    let entry = manifest.model("yolov8n-coco").expect("yolov8n in manifest");
    let model = OnnxModel::open_detector(
        runtime,
        "yolov8n-coco",
        &models.join(&entry.file),
        SessionOptions {
            threads: 2,
            ..SessionOptions::default()
        },
        shape,
    )
    .expect("the YOLOv8n export takes the edit");
    Detector::new(model, entry.labels.clone(), &BTreeMap::new(), config)
        .expect("detector")
        .with_max_batch(max_batch)
}

fn batched_detector(config: DetectorConfig, max_batch: usize) -> Detector {
    let shape = DetectorShape {
        dynamic_batch: true,
        input: None,
    };
    let det = edited_detector(shape, config, max_batch);
    assert!(det.model().batchable(), "the batch is dynamic");
    det
}

#[test]
fn frames_batched_through_the_edited_model_keep_their_own_boxes() {
    let names = [
        "motorway-000",
        "motorway-300",
        "motorway-599",
        "intersection-075",
    ];
    let images: Vec<RgbImage> = names
        .iter()
        .map(|n| load_png(&format!("{n}.png")))
        .collect();
    // Four frames in runs of 3 and 1: each matches Python onnxruntime on
    // the original file, frame by frame.
    let mut batched = batched_detector(DetectorConfig::default(), 3);
    assert_eq!(batched.max_batch(), 3);
    let preparer = batched.preparer();
    let prepared = images.iter().map(|i| preparer.prepare(i)).collect();
    let got = batched
        .detect_prepared_raw_batch(prepared)
        .expect("batched frames");
    assert_eq!(got.len(), names.len());
    for (name, dets) in names.iter().zip(&got) {
        assert_parity(name, dets, &json(&format!("{name}.json")));
    }
    // With extra views, each frame's views share runs with the other
    // frame's; the merged boxes are those of the unedited model one image
    // at a time.
    let views = DetectorConfig {
        views: Views {
            flip: true,
            ..Views::default()
        },
        ..DetectorConfig::default()
    };
    let mut single = detector_with(views);
    assert_eq!(
        single.max_batch(),
        1,
        "the file as pinned runs one image at a time"
    );
    let mut batched = batched_detector(views, 4);
    let pair = [&images[1], &images[3]];
    let prepared = pair.iter().map(|i| batched.preparer().prepare(i)).collect();
    let got = batched.detect_prepared_raw_batch(prepared).expect("views");
    for (img, dets) in pair.iter().zip(&got) {
        let want = single
            .detect_views_raw_batch(&[img])
            .expect("single")
            .remove(0);
        assert_eq!(dets.len(), want.len());
        for (g, w) in dets.iter().zip(&want) {
            let (gb, wb) = (g.bbox, w.bbox);
            let close = [gb.x1 - wb.x1, gb.y1 - wb.y1, gb.x2 - wb.x2, gb.y2 - wb.y2]
                .iter()
                .all(|d| d.abs() < 1e-2);
            assert!(
                g.class_id == w.class_id && (g.score - w.score).abs() < 1e-4 && close,
                "{g:?} vs {w:?}"
            );
        }
    }
}

#[test]
fn an_input_fitted_to_the_frame_finds_the_objects_of_the_square() {
    // 960x540 frames fill 640x360 of the square; fitted, the input is
    // 640x384 and the network skips most of the grey bars. Every confident
    // object of the square input is found again, in the same place.
    let input = DetectorConfig::fitted_input(640, &[(960, 540)]);
    assert_eq!(input, (640, 384));
    // Cameras of several shapes share one input that holds each at the
    // square's scale: 4:3 needs 480 rows, a portrait camera 640.
    assert_eq!(
        DetectorConfig::fitted_input(640, &[(960, 540), (640, 480)]),
        (640, 480)
    );
    assert_eq!(
        DetectorConfig::fitted_input(640, &[(1080, 1920)]),
        (384, 640)
    );
    let config = DetectorConfig {
        input,
        ..DetectorConfig::default()
    };
    let shape = DetectorShape {
        dynamic_batch: true,
        input: Some(input),
    };
    let mut fitted = edited_detector(shape, config, 2);
    assert_eq!(fitted.model().input_shape(), &[-1, 3, 384, 640]);
    let mut square = detector();
    let names = ["motorway-000", "motorway-300", "motorway-599"];
    let images: Vec<RgbImage> = names
        .iter()
        .map(|n| load_png(&format!("{n}.png")))
        .collect();
    let refs: Vec<&RgbImage> = images.iter().collect();
    // Batched and fitted at once: two frames share a run.
    let got = fitted.detect_raw_batch(&refs).expect("fitted");
    let mut confident = 0;
    for ((name, image), dets) in names.iter().zip(&images).zip(&got) {
        assert_eq!(
            dets,
            &fitted.detect_raw(image).expect("alone"),
            "{name}: batched differs from alone"
        );
        for want in square.detect_raw(image).expect("square") {
            if want.score < 0.5 {
                continue;
            }
            confident += 1;
            let found = dets.iter().any(|d| {
                d.class_id == want.class_id
                    && (d.score - want.score).abs() < 0.1
                    && d.bbox.iou(&want.bbox) > 0.9
            });
            let near: Vec<_> = dets
                .iter()
                .filter(|d| d.bbox.iou(&want.bbox) > 0.5)
                .collect();
            assert!(
                found,
                "{name}: {want:?} not found with the fitted input; near it: {near:?}"
            );
        }
    }
    assert!(
        confident >= 10,
        "too few confident objects to compare: {confident}"
    );
}

#[test]
fn a_frame_prepared_on_another_thread_gives_the_detectors_own_boxes() {
    // `vigil run` with a GPU letterboxes on the ingest thread; the boxes
    // must be those of the detector's own path, with and without views.
    let flip_and_tiles = DetectorConfig {
        views: Views {
            flip: true,
            tiles: Some(TileGrid {
                cols: 2,
                rows: 1,
                region: [0.0, 0.2, 1.0, 0.8],
                overlap: 0.2,
            }),
            ..Views::default()
        },
        ..DetectorConfig::default()
    };
    let img = load_png("motorway-300.png");
    for config in [DetectorConfig::default(), flip_and_tiles] {
        let mut det = detector_with(config);
        let own = det.detect_views_raw_batch(&[&img]).expect("own").remove(0);
        assert!(!own.is_empty(), "nothing detected on the frame");
        let preparer = det.preparer();
        let prepared = std::thread::scope(|s| {
            s.spawn(|| preparer.prepare(&img))
                .join()
                .expect("prepare thread")
        });
        let got = det.detect_prepared_raw(prepared).expect("prepared");
        assert_eq!(got, own, "{config:?}");
        // A frame prepared for other settings is refused, not misread.
        let other = Preparer::new(DetectorConfig {
            input: (320, 320),
            ..config
        });
        let err = det
            .detect_prepared(other.prepare(&img))
            .expect_err("other settings");
        assert!(err.to_string().contains("prepared for"), "{err}");
    }
}

#[test]
fn a_detect_region_finds_what_its_crop_does_in_frame_pixels() {
    // A camera's detect_region: the detector sees only that part of the
    // frame, and its boxes come back in frame pixels, with and without
    // views, prepared here or on another thread.
    let img = load_png("motorway-300.png");
    let region = [300u32, 200, 500, 300];
    let [x, y, w, h] = region;
    let crop = img
        .crop(x.into(), y.into(), w.into(), h.into())
        .expect("region inside the frame");
    let flip = DetectorConfig {
        views: Views {
            flip: true,
            ..Views::default()
        },
        ..DetectorConfig::default()
    };
    for config in [DetectorConfig::default(), flip] {
        let mut det = detector_with(config);
        let prepared = det.prepare_region(&img, Some(region));
        let got = det.detect_prepared_raw(prepared).expect("region");
        assert!(!got.is_empty(), "nothing detected in the region");
        let want: Vec<RawDetection> = det
            .detect_views_raw_batch(&[&crop])
            .expect("crop")
            .remove(0)
            .into_iter()
            .map(|mut d| {
                d.bbox.x1 += x as f32;
                d.bbox.x2 += x as f32;
                d.bbox.y1 += y as f32;
                d.bbox.y2 += y as f32;
                d
            })
            .collect();
        assert_eq!(got, want, "{config:?}");
        for d in &got {
            let (cx, cy) = ((d.bbox.x1 + d.bbox.x2) / 2.0, (d.bbox.y1 + d.bbox.y2) / 2.0);
            assert!(
                cx >= x as f32 && cx <= (x + w) as f32 && cy >= y as f32 && cy <= (y + h) as f32,
                "{d:?} lies outside the region {region:?}"
            );
        }
        // The whole frame as a region is the plain frame.
        let whole = det.prepare_region(&img, Some([0, 0, img.width, img.height]));
        assert_eq!(
            det.detect_prepared_raw(whole).expect("whole"),
            det.detect_views_raw_batch(&[&img])
                .expect("frame")
                .remove(0)
        );
        let preparer = det.preparer();
        let elsewhere = std::thread::scope(|s| {
            s.spawn(|| preparer.prepare_region(&img, Some(region)))
                .join()
                .expect("prepare thread")
        });
        assert_eq!(det.detect_prepared_raw(elsewhere).expect("prepared"), got);
    }
}

#[test]
fn the_class_map_keeps_only_configured_road_users() {
    let manifest = Manifest::load(&root().join("models/manifest.toml")).expect("manifest");
    let mut det = detector();
    let labels = manifest
        .model("yolov8n-coco")
        .expect("entry")
        .labels
        .clone();
    let classes = BTreeMap::from([("car".to_owned(), vec!["car".to_owned()])]);
    let model = {
        let runtime =
            Runtime::load(&root().join("models").join(&manifest.runtime.file)).expect("runtime");
        OnnxModel::open(
            runtime,
            "yolov8n-coco",
            &root().join("models/yolov8n-coco.onnx"),
            SessionOptions::default(),
        )
        .expect("model")
    };
    let mut cars_only =
        Detector::new(model, labels, &classes, DetectorConfig::default()).expect("detector");
    let img = load_png("motorway-300.png");
    let all = det.detect_raw(&img).expect("raw");
    let cars = cars_only.detect(&img).expect("cars");
    assert_eq!(cars.len(), all.iter().filter(|d| d.class_id == 2).count());
    assert!(cars.iter().all(|d| d.class
        == vigil_infer::detector::DetectionClass::RoadUser(vigil_core::RoadUserClass::Car)));
}
