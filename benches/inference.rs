//! Detector pre- and post-processing: what the detector adds to raw
//! inference (`vigil bench detect` reports the ratio end to end), and the
//! plate recogniser in its three forms (full head, head cut to the plate
//! alphabet, INT8) on a one-line and a two-line crop, and locating a plate
//! in a vehicle crop with each text detector (float, and INT8 where a
//! calibration table ships). The model benches need
//! `vigil models fetch`; without the models they are skipped.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_core::image::RgbImage;
use vigil_infer::letterbox::{letterbox_into, letterbox_part_into};
use vigil_infer::model::OnnxModel;
use vigil_infer::ocr::{Alphabet, TextRecogniser};
use vigil_infer::plate_reader::{plate_lines, PlateLayout, PlateReaderConfig};
use vigil_infer::runtime::{Runtime, SessionOptions};
use vigil_infer::text_detector::{LocateConfig, TextDetector, TextDetectorConfig};
use vigil_infer::Manifest;

fn frame() -> RgbImage {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detector/motorway-300.png");
    let img = image::open(path).expect("fixture").to_rgb8();
    let (w, h) = img.dimensions();
    RgbImage::from_raw(w, h, img.into_raw()).expect("rgb")
}

fn letterbox(c: &mut Criterion) {
    let img = frame();
    let mut out = vec![0.0f32; 3 * 640 * 640];
    c.bench_function("letterbox_960x540_to_640", |b| {
        b.iter(|| letterbox_into(&img, (640, 640), &mut out))
    });
    // The demo's detect region, read in place into its fitted input.
    c.bench_function("letterbox_region_560x240_to_640x288", |b| {
        b.iter(|| letterbox_part_into(&img, [0, 300, 560, 240], (640, 288), &mut out))
    });
}

/// A plate-like crop: light background, dark strokes, `rows` text lines.
fn plate(width: u32, height: u32, rows: u32) -> RgbImage {
    let mut data = vec![235u8; (width * height * 3) as usize];
    for y in 0..height {
        let band = y * rows / height;
        let in_text = (y * rows % height) * 5 > height && (y * rows % height) * 5 < 4 * height;
        for x in 0..width {
            let stroke =
                (x / 3 + band).is_multiple_of(4) && x > width / 12 && x < width - width / 12;
            if in_text && stroke {
                let i = ((y * width + x) * 3) as usize;
                data[i..i + 3].copy_from_slice(&[20, 20, 25]);
            }
        }
    }
    RgbImage::from_raw(width, height, data).expect("rgb")
}

/// (name, recogniser for one-line plates, recogniser for two-line plates).
type Recognisers = Vec<(&'static str, TextRecogniser, TextRecogniser)>;

fn recognisers() -> Option<Recognisers> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = Manifest::load(&root.join("models/manifest.toml")).ok()?;
    let models = root.join("models");
    let name = "ppocrv6-rec-small";
    vigil_infer::store::require(&manifest, &models, &["onnxruntime", name]).ok()?;
    let runtime = Runtime::load(&models.join(&manifest.runtime.file)).ok()?;
    let entry = manifest.model(name)?;
    let path = models.join(&entry.file);
    let options = SessionOptions {
        threads: 2,
        ..SessionOptions::default()
    };
    let open = |alphabet| TextRecogniser::open(runtime, name, &path, None, options, alphabet).ok();
    let int8 = |layout| {
        let table = vigil_infer::quantize::builtin(&entry.sha256, layout)?;
        TextRecogniser::open_int8(runtime, name, &path, None, options, Alphabet::Plate, &table).ok()
    };
    // The first pass `[plates] first_pass` reads one-line plates with.
    let tiny = "ppocrv6-rec-tiny";
    vigil_infer::store::require(&manifest, &models, &[tiny]).ok()?;
    let tiny_entry = manifest.model(tiny)?;
    let tiny_path = models.join(&tiny_entry.file);
    let tiny_dict = models.join(&tiny_entry.charset.as_ref()?.file);
    let open_tiny = || {
        TextRecogniser::open(
            runtime,
            tiny,
            &tiny_path,
            Some(&tiny_dict),
            options,
            Alphabet::Plate,
        )
        .ok()
    };
    Some(vec![
        ("tiny-plate", open_tiny()?, open_tiny()?),
        ("full", open(Alphabet::Full)?, open(Alphabet::Full)?),
        ("plate", open(Alphabet::Plate)?, open(Alphabet::Plate)?),
        (
            "plate-int8",
            int8(PlateLayout::OneLine)?,
            int8(PlateLayout::TwoLine)?,
        ),
    ])
}

fn recognise(c: &mut Criterion) {
    let Some(mut recognisers) = recognisers() else {
        eprintln!("recogniser benches skipped: run `vigil models fetch` first");
        return;
    };
    let config = PlateReaderConfig::default();
    let (_, one_line) = plate_lines(&plate(94, 24, 1), &config);
    let (_, two_line) = plate_lines(&plate(70, 50, 2), &config);
    for (name, for_one_line, for_two_line) in &mut recognisers {
        let refs: Vec<&RgbImage> = one_line.iter().collect();
        c.bench_function(&format!("recognise_one_line_94x24/{name}"), |b| {
            b.iter(|| for_one_line.recognise(&refs).expect("recognise"))
        });
        let refs: Vec<&RgbImage> = two_line.iter().collect();
        c.bench_function(&format!("recognise_two_line_70x50/{name}"), |b| {
            b.iter(|| for_two_line.recognise(&refs).expect("recognise"))
        });
    }
}

/// A vehicle-sized crop (grey body, darker lower part) with a one-line
/// plate near the bottom, as the plate stage gets from a track.
fn vehicle(width: u32, height: u32) -> RgbImage {
    let mut data = vec![150u8; (width * height * 3) as usize];
    for (i, px) in data.chunks_exact_mut(3).enumerate() {
        if (i as u32 / width) > height * 2 / 3 {
            px.copy_from_slice(&[60, 60, 70]);
        }
    }
    let mut image = RgbImage::from_raw(width, height, data).expect("rgb");
    let plate = plate(width / 4, width / 18, 1);
    let (x0, y0) = ((width - plate.width) / 2, height * 4 / 5);
    for y in 0..plate.height {
        for x in 0..plate.width {
            let (src, dst) = (
                ((y * plate.width + x) * 3) as usize,
                (((y0 + y) * width + x0 + x) * 3) as usize,
            );
            image.data[dst..dst + 3].copy_from_slice(&plate.data[src..src + 3]);
        }
    }
    image
}

/// Locating the plate in a vehicle crop: the text detector at the plate
/// stage's default settings (`plates.locate_width_px`, `plates.search_from`).
fn locate(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(manifest) = Manifest::load(&root.join("models/manifest.toml")) else {
        return;
    };
    let models = root.join("models");
    let names = ["ppocrv6-det-small", "ppocrv6-det-tiny"];
    let needed: Vec<&str> = std::iter::once("onnxruntime").chain(names).collect();
    if vigil_infer::store::require(&manifest, &models, &needed).is_err() {
        eprintln!("text detector benches skipped: run `vigil models fetch` first");
        return;
    }
    let Ok(runtime) = Runtime::load(&models.join(&manifest.runtime.file)) else {
        return;
    };
    let options = SessionOptions {
        threads: 2,
        ..SessionOptions::default()
    };
    for name in names {
        let Some(entry) = manifest.model(name) else {
            continue;
        };
        let path = models.join(&entry.file);
        let float = OnnxModel::open(runtime, name, &path, options).expect("text detector opens");
        // INT8 where a calibration table ships for the file (as `vigil run`
        // opens it on a CPU).
        let int8 = vigil_infer::quantize::builtin_text_detector(&entry.sha256).map(|table| {
            OnnxModel::open_int8(runtime, name, &path, options, &table).expect("int8 opens")
        });
        let variants = std::iter::once((name.to_owned(), float))
            .chain(int8.map(|m| (format!("{name}-int8"), m)));
        for (label, model) in variants {
            let mut detector = TextDetector::new(model, TextDetectorConfig::default());
            let locate = LocateConfig::default();
            for (w, h) in [(96, 80), (320, 256)] {
                let crop = vehicle(w, h);
                c.bench_function(&format!("locate_plate_in_{w}x{h}_vehicle/{label}"), |b| {
                    b.iter(|| detector.locate_plates(&crop, &locate).expect("locate"))
                });
                // Another crop of a vehicle whose plate was found: only the
                // window around where it was is searched.
                if let Some(hint) = detector
                    .locate_plates(&crop, &locate)
                    .ok()
                    .and_then(|found| found.first().copied())
                {
                    c.bench_function(
                        &format!("locate_plate_near_hint_in_{w}x{h}_vehicle/{label}"),
                        |b| {
                            b.iter(|| {
                                detector
                                    .locate_plates_near(&crop, &locate, &hint)
                                    .expect("locate")
                            })
                        },
                    );
                }
            }
        }
    }
}

criterion_group!(benches, letterbox, recognise, locate);
criterion_main!(benches);
