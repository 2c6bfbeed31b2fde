//! Generated packages with known content, for the fault-test writer, the
//! benchmark and the tests. Their stills are drawn, not photographed; the
//! packaging, hashing, signing and spooling they go through are the real
//! ones.

use vigil_core::image::RgbImage;

use crate::manifest::{
    Manifest, ModelRef, PhaseInterval, PlateCandidate, PlateFacts, SignalFacts, Software, Times,
    TrajectoryPoint, ViolationFacts, SCHEMA_VERSION, WALL_CLOCK_FIELDS,
};
use crate::package::{event_id, PackageContent};
use crate::sheet::{encode_jpeg, render_sheet, SheetFacts};
use crate::EvidenceError;

/// A frame-sized test picture: a gradient with a dark box at `x`.
pub fn frame(width: u32, height: u32, x: u32) -> RgbImage {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for yy in 0..height {
        for xx in 0..width {
            let in_box = xx >= x && xx < x + width / 8 && yy > height / 2 && yy < height * 3 / 4;
            let v = if in_box {
                [30, 30, 40]
            } else {
                [
                    (xx * 255 / width.max(1)) as u8,
                    (yy * 255 / height.max(1)) as u8,
                    128,
                ]
            };
            data.extend_from_slice(&v);
        }
    }
    RgbImage::from_raw(width, height, data).unwrap_or_else(|| RgbImage {
        width: 0,
        height: 0,
        data: Vec::new(),
    })
}

/// Event number `n` of camera `camera`: a red-light run `n` seconds after
/// a fixed instant, with three stills of `width`x`height`, a plate crop,
/// `clip` as its clip, and an evidence sheet.
pub fn red_light_content(
    device: &str,
    camera: &str,
    n: u64,
    width: u32,
    height: u32,
    clip: &[u8],
) -> Result<PackageContent, EvidenceError> {
    let at_us = 1_773_471_600_000_000 + n as i64 * 1_000_000;
    let stills: Vec<RgbImage> = (0..3)
        .map(|i| frame(width, height, width / 4 + i * width / 8))
        .collect();
    let plate = frame(160, 40, 60);
    let id = event_id(device, camera, n, "red_light", at_us);
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        event_id: id.clone(),
        device_id: device.to_owned(),
        site_id: "test-site".into(),
        site_name: "Ngã tư Lạng Sơn (test)".into(),
        camera: camera.to_owned(),
        approach: "northbound".into(),
        sequence: 0,
        prev_manifest_sha256: None,
        violation: ViolationFacts {
            kind: "red_light".into(),
            track_id: n,
            class: "motorbike".into(),
            details: serde_json::json!({"t_stop_us": at_us, "time_into_red_us": 1_500_000}),
            speed_kmh: Some(32.5),
        },
        times: Times {
            event_at_us: at_us,
            stop_line_at_us: Some(at_us),
            clearance_at_us: Some(at_us + 900_000),
            utc_offset: "+07:00".into(),
            clock_sync: "replay".into(),
            packaged_at_us: vigil_core::time::now_unix_us(),
        },
        signal: SignalFacts {
            signal_id: Some("main".into()),
            source: "fixed_time".into(),
            phase_at_event: "red".into(),
            red_since_us: Some(at_us - 1_500_000),
            time_into_red_s: Some(1.5),
            amber_before_s: Some(3.0),
            timeline: vec![
                PhaseInterval {
                    start_us: at_us - 4_500_000,
                    end_us: at_us - 1_500_000,
                    phase: "amber".into(),
                },
                PhaseInterval {
                    start_us: at_us - 1_500_000,
                    end_us: at_us + 8_000_000,
                    phase: "red".into(),
                },
            ],
        },
        trajectory: (0..5)
            .map(|i| TrajectoryPoint {
                t_us: at_us - 400_000 + i * 200_000,
                frame: 100 + i as u64,
                bbox: [300.0, 400.0 - 20.0 * i as f32, 40.0, 80.0],
                image: [320.0, 460.0 - 20.0 * i as f64],
                ground: Some([1.5, -2.0 + i as f64]),
            })
            .collect(),
        plate: Some(PlateFacts {
            text: "12-B1 234.56".into(),
            valid: true,
            confidence: 0.93,
            reads: 3,
            colour: Some("white".into()),
            candidates: vec![
                PlateCandidate {
                    text: "12-B1 234.56".into(),
                    confidence: 0.95,
                    valid: true,
                },
                PlateCandidate {
                    text: "12-B1 234.56".into(),
                    confidence: 0.91,
                    valid: true,
                },
                PlateCandidate {
                    text: "12B1Z3456".into(),
                    confidence: 0.42,
                    valid: false,
                },
            ],
        }),
        models: vec![ModelRef {
            name: "yolov8n-coco".into(),
            role: "vehicle_detector".into(),
            sha256: "0".repeat(64),
        }],
        config_sha256: "1".repeat(64),
        software: Software {
            name: "vigil".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        files: Vec::new(),
        wall_clock_fields: WALL_CLOCK_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
    };
    let sheet = render_sheet(
        &[Some(&stills[0]), Some(&stills[1]), Some(&stills[2])],
        Some(&plate),
        &SheetFacts {
            title: "Red-light violation (test)".into(),
            rows: vec![
                ("Place".into(), manifest.site_name.clone()),
                ("Plate".into(), "12-B1 234.56".into()),
            ],
            marks: [Some([80.0, 45.0, 40.0, 22.0]), None, None],
        },
    )?;
    let mut files = Vec::new();
    for (i, (name, role)) in [
        ("stills/before.jpg", "still_before"),
        ("stills/stop_line.jpg", "still_stop_line"),
        ("stills/clearance.jpg", "still_clearance"),
    ]
    .iter()
    .enumerate()
    {
        files.push((name.to_string(), role.to_string(), encode_jpeg(&stills[i])?));
    }
    files.push(("clip.mp4".into(), "clip".into(), clip.to_vec()));
    files.push((
        "plate/plate-0.jpg".into(),
        "plate_crop".into(),
        encode_jpeg(&plate)?,
    ));
    files.push(("sheet.jpg".into(), "evidence_sheet".into(), sheet));
    Ok(PackageContent { manifest, files })
}
