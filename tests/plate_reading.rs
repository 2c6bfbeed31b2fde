//! Plate reading end to end on rendered plates: text detector on a vehicle
//! crop, plate region, line split, recogniser, Vietnamese grammar.
//! (Real plate photos are evaluated with `vigil eval plates`; they may not
//! be committed.)

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_core::image::RgbImage;
use vigil_infer::model::OnnxModel;
use vigil_infer::ocr::{Alphabet, RecogniserCalibrator, TextRecogniser};
use vigil_infer::plate_reader::{
    FirstPass, FirstPassCounts, PlateLayout, PlateReader, PlateReaderConfig,
};
use vigil_infer::runtime::{Runtime, SessionOptions};
use vigil_infer::text_detector::{
    LocateConfig, TextDetector, TextDetectorCalibrator, TextDetectorConfig,
};
use vigil_infer::Manifest;
use vigil_pipeline::PlateStage;
use vigil_plate::{PlateColour, PlateReading};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The runtime, the verified file of the manifest model `name`, and its
/// SHA-256.
fn model_file(name: &str) -> (&'static Runtime, PathBuf, String) {
    let manifest = Manifest::load(&root().join("models/manifest.toml")).expect("manifest");
    let models = root().join("models");
    vigil_infer::store::require(&manifest, &models, &["onnxruntime", name])
        .expect("models fetched");
    let runtime = Runtime::load(&models.join(&manifest.runtime.file)).expect("runtime");
    let entry = manifest.model(name).expect("entry");
    (runtime, models.join(&entry.file), entry.sha256.clone())
}

fn options() -> SessionOptions {
    SessionOptions {
        threads: 2,
        ..SessionOptions::default()
    }
}

fn recogniser(alphabet: Alphabet) -> TextRecogniser {
    let (runtime, path, _) = recogniser_file();
    TextRecogniser::open(
        runtime,
        "ppocrv6-rec-small",
        &path,
        None,
        options(),
        alphabet,
    )
    .expect("recogniser")
}

/// An INT8 recogniser from the shipped calibration table for `layout`.
fn int8_recogniser(layout: PlateLayout) -> TextRecogniser {
    let (runtime, path, sha256) = recogniser_file();
    let table =
        vigil_infer::quantize::builtin(&sha256, layout).expect("a shipped table for this model");
    TextRecogniser::open_int8(
        runtime,
        "ppocrv6-rec-small",
        &path,
        None,
        options(),
        Alphabet::Plate,
        &table,
    )
    .expect("int8 recogniser")
}

/// The reader as Vigil runs it: the recogniser's head cut to plate
/// characters, in INT8, calibrated per layout.
fn reader() -> PlateReader {
    let reader = PlateReader::new(
        int8_recogniser(PlateLayout::TwoLine),
        PlateReaderConfig::default(),
    )
    .with_one_line_recogniser(int8_recogniser(PlateLayout::OneLine));
    assert!(reader.has_one_line_recogniser());
    reader
}

/// A grey "vehicle" 320x240 with a white plate drawn by ffmpeg's drawtext.
fn render(
    dir: &Path,
    name: &str,
    plate: (u32, u32, u32, u32),
    texts: &[(&str, u32, u32, u32)],
) -> RgbImage {
    render_coloured(dir, name, plate, ("white", "black"), texts)
}

/// [`render`] with the plate painted `colours.0` and lettered `colours.1`
/// (ffmpeg colour names or 0xRRGGBB).
fn render_coloured(
    dir: &Path,
    name: &str,
    plate: (u32, u32, u32, u32),
    (paint, ink): (&str, &str),
    texts: &[(&str, u32, u32, u32)],
) -> RgbImage {
    let (x, y, w, h) = plate;
    let mut filter = format!("drawbox=x={x}:y={y}:w={w}:h={h}:color={paint}:t=fill");
    for (text, tx, ty, size) in texts {
        filter += &format!(",drawtext=text='{text}':x={tx}:y={ty}:fontsize={size}:fontcolor={ink}");
    }
    let path: PathBuf = dir.join(format!("{name}.png"));
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=0x404850:s=320x240",
            "-frames:v",
            "1",
            "-vf",
        ])
        .arg(&filter)
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let img = image::open(&path).expect("rendered").to_rgb8();
    let (w, h) = img.dimensions();
    RgbImage::from_raw(w, h, img.into_raw()).expect("rgb")
}

/// The text detector a default site config locates plates with on a CPU:
/// INT8, from the shipped calibration table.
fn text_detector() -> TextDetector {
    let name = vigil_core::config::DEFAULT_TEXT_DETECTOR;
    let (runtime, path, sha256) = model_file(name);
    let table = vigil_infer::quantize::builtin_text_detector(&sha256)
        .expect("a shipped table for the default text detector");
    let model = OnnxModel::open_int8(runtime, name, &path, options(), &table).expect("int8 model");
    TextDetector::new(model, TextDetectorConfig::default())
}

/// The default text detector in float, as a GPU runs it.
fn float_text_detector() -> TextDetector {
    let name = vigil_core::config::DEFAULT_TEXT_DETECTOR;
    let (runtime, path, _) = model_file(name);
    let model = OnnxModel::open(runtime, name, &path, options()).expect("model");
    TextDetector::new(model, TextDetectorConfig::default())
}

/// Rendered vehicles: a car's one-line plate, a motorbike's two-line plate,
/// and a car with a sticker below its plate.
fn vehicles(dir: &Path) -> Vec<RgbImage> {
    vec![
        render(
            dir,
            "car",
            (90, 150, 150, 36),
            &[("30A-123.45", 97, 156, 24)],
        ),
        render(
            dir,
            "bike",
            (112, 128, 108, 64),
            &[("29-B1", 132, 132, 24), ("234.56", 122, 162, 24)],
        ),
        render(
            dir,
            "sticker",
            (90, 130, 150, 36),
            &[("30A-123.45", 97, 136, 24), ("DRIVE SAFE", 100, 208, 24)],
        ),
    ]
}

fn read_on_vehicle(vehicle: &RgbImage) -> (PlateLayout, PlateReading) {
    let mut detector = text_detector();
    let found = reader()
        .read_in_vehicle(&mut detector, vehicle, &LocateConfig::default())
        .expect("located and read")
        .expect("a plate among the text");
    (found.text.layout, found.reading)
}

#[test]
fn a_one_line_car_plate_is_found_and_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let vehicle = render(
        dir.path(),
        "car",
        (90, 150, 150, 36),
        &[("30A-123.45", 97, 156, 24)],
    );
    let (layout, reading) = read_on_vehicle(&vehicle);
    assert_eq!(layout, PlateLayout::OneLine);
    let plate = reading
        .plate()
        .unwrap_or_else(|| panic!("unreadable: {reading:?}"));
    assert_eq!(plate.canonical(), "30A-123.45");
}

#[test]
fn a_plate_searched_in_the_lower_band_is_placed_in_the_whole_crop() {
    let dir = tempfile::tempdir().expect("tmp");
    // Plate-shaped text high up (a sign on a van's side) and the plate low.
    let vehicle = render(
        dir.path(),
        "van",
        (90, 170, 150, 36),
        &[("30A-123.45", 97, 176, 24), ("51F-678.90", 60, 20, 24)],
    );
    let mut detector = text_detector();
    let locate = LocateConfig {
        vehicle_width_px: 320,
        search_from: 0.5,
        ..LocateConfig::default()
    };
    let regions = detector
        .locate_plates(&vehicle, &locate)
        .expect("text lines");
    let region = *regions.first().expect("the plate in the lower half");
    // On the drawn plate in the crop's own pixels (the searched band starts
    // 120 rows down), as `vigil eval plates --locate` scores a region.
    let plate = vigil_core::detection::BBox {
        x1: 90.0,
        y1: 170.0,
        x2: 240.0,
        y2: 206.0,
    };
    assert!(region.iou(&plate) >= 0.5, "{region:?}");
    assert!(region.shifted(0.0, -120.0).iou(&plate) < 0.1);
    let found = reader()
        .read_best_region(&vehicle, &[region])
        .expect("read")
        .expect("a plate");
    assert_eq!(
        found.reading.plate().map(|p| p.canonical()).as_deref(),
        Some("30A-123.45")
    );
}

#[test]
fn plate_shaped_text_that_is_no_plate_gives_way_to_the_plate_above_it() {
    let dir = tempfile::tempdir().expect("tmp");
    // A bumper sticker below the plate (too far below to pair with it as a
    // two-line plate): the lowest plate-shaped text.
    let vehicle = render(
        dir.path(),
        "sticker",
        (90, 130, 150, 36),
        &[("30A-123.45", 97, 136, 24), ("DRIVE SAFE", 100, 208, 24)],
    );
    let mut detector = text_detector();
    let regions = detector
        .locate_plates(&vehicle, &LocateConfig::default())
        .expect("text lines");
    assert!(regions.len() >= 2, "{regions:?}");
    assert!(
        regions[0].y1 > 180.0,
        "the sticker comes first: {regions:?}"
    );
    let found = reader()
        .read_best_region(&vehicle, &regions)
        .expect("read")
        .expect("a plate");
    assert_eq!(
        found.reading.plate().map(|p| p.canonical()).as_deref(),
        Some("30A-123.45")
    );
    assert!(found.region.y2 < 180.0, "{:?}", found.region);
}

#[test]
fn a_two_line_motorbike_plate_is_found_split_and_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let vehicle = render(
        dir.path(),
        "bike",
        (112, 128, 108, 64),
        &[("29-B1", 132, 132, 24), ("234.56", 122, 162, 24)],
    );
    let (layout, reading) = read_on_vehicle(&vehicle);
    assert_eq!(layout, PlateLayout::TwoLine);
    let plate = reading
        .plate()
        .unwrap_or_else(|| panic!("unreadable: {reading:?}"));
    assert_eq!(plate.canonical(), "29-B1 234.56");
}

/// Plate crops rendered like real ones: dark text on white, black on
/// yellow, white on blue, and a two-line motorbike plate.
fn plate_crops(dir: &Path) -> Vec<RgbImage> {
    let crop =
        |img: RgbImage, (x, y, w, h): (i64, i64, i64, i64)| img.crop(x, y, w, h).expect("crop");
    vec![
        crop(
            render(
                dir,
                "p1",
                (90, 150, 150, 36),
                &[("30A-123.45", 97, 156, 24)],
            ),
            (90, 150, 150, 36),
        ),
        crop(
            render(
                dir,
                "p2",
                (60, 100, 200, 44),
                &[("51F-882.70", 70, 108, 30)],
            ),
            (60, 100, 200, 44),
        ),
        crop(
            render(
                dir,
                "p3",
                (80, 120, 170, 40),
                &[("29LD-046.89", 86, 127, 24)],
            ),
            (80, 120, 170, 40),
        ),
        crop(
            render(
                dir,
                "p4",
                (112, 128, 108, 64),
                &[("59-H1", 132, 132, 24), ("686.79", 122, 162, 24)],
            ),
            (112, 128, 108, 64),
        ),
    ]
}

/// Pruning the head to plate characters changes nothing a plate reading
/// uses: the same text from every line, and at every time step the kept
/// classes' probabilities are the full head's renormalised over them.
#[test]
fn the_plate_head_reads_like_the_full_head() {
    let dir = tempfile::tempdir().expect("tmp");
    let crops = plate_crops(dir.path());
    let mut full = recogniser(Alphabet::Full);
    let mut plate = recogniser(Alphabet::Plate);
    assert_eq!(full.symbols().len(), 18_710);
    assert!(
        (40..200).contains(&plate.symbols().len()),
        "{} classes kept",
        plate.symbols().len()
    );
    let kept = plate.source_classes().to_vec();
    for (i, &j) in kept.iter().enumerate() {
        assert_eq!(plate.symbols()[i], full.symbols()[j]);
    }
    let mut lines = Vec::new();
    for crop in &crops {
        if crop.width as f32 / crop.height as f32
            >= PlateReaderConfig::default().two_line_max_aspect
        {
            lines.push(crop.clone());
        } else {
            let (top, bottom) = vigil_infer::plate_reader::split_lines(crop);
            lines.extend([top, bottom]);
        }
    }
    let refs: Vec<&RgbImage> = lines.iter().collect();
    let (a, b) = (
        full.recognise(&refs).expect("full"),
        plate.recognise(&refs).expect("plate"),
    );
    let texts: Vec<&str> = a.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, b.iter().map(|l| l.text.as_str()).collect::<Vec<_>>());
    assert!(texts.contains(&"30A-123.45"), "{texts:?}");
    let (pa, pb) = (
        full.probabilities(&refs).expect("full"),
        plate.probabilities(&refs).expect("plate"),
    );
    let (cf, cp) = (full.symbols().len(), plate.symbols().len());
    let mut worst = 0.0f32;
    for (fa, fb) in pa.iter().zip(&pb) {
        assert_eq!(fa.len() / cf, fb.len() / cp, "same time steps");
        for (step_full, step_plate) in fa.chunks_exact(cf).zip(fb.chunks_exact(cp)) {
            let kept_mass: f32 = kept.iter().map(|&j| step_full[j]).sum();
            assert!(
                kept_mass > 0.99,
                "the dropped classes held {}",
                1.0 - kept_mass
            );
            for (i, &j) in kept.iter().enumerate() {
                worst = worst.max((step_full[j] / kept_mass - step_plate[i]).abs());
            }
        }
    }
    assert!(worst < 1e-4, "probabilities differ by up to {worst}");
}

fn recogniser_file() -> (&'static Runtime, PathBuf, String) {
    model_file("ppocrv6-rec-small")
}

fn one_line_crops(dir: &Path) -> Vec<RgbImage> {
    plate_crops(dir)
        .into_iter()
        .filter(|c| {
            c.width as f32 / c.height as f32 >= PlateReaderConfig::default().two_line_max_aspect
        })
        .collect()
}

/// The INT8 recognisers built from the shipped calibration tables read the
/// lines of each layout as the float one does, with confident characters.
#[test]
fn the_int8_recognisers_read_like_the_float_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = PlateReaderConfig::default();
    let mut float = recogniser(Alphabet::Plate);
    let mut read_layouts = Vec::new();
    for crop in plate_crops(dir.path()) {
        let (layout, lines) = vigil_infer::plate_reader::plate_lines(&crop, &config);
        let mut int8 = int8_recogniser(layout);
        let refs: Vec<&RgbImage> = lines.iter().collect();
        let (a, b) = (
            float.recognise(&refs).expect("float"),
            int8.recognise(&refs).expect("int8"),
        );
        for (f, q) in a.iter().zip(&b) {
            assert_eq!(f.text, q.text);
            assert!(q.confidence() > 0.9, "{q:?}");
        }
        read_layouts.push((layout, b.iter().map(|l| l.text.clone()).collect::<Vec<_>>()));
    }
    assert_eq!(read_layouts[0].1, ["30A-123.45"]);
    assert!(
        read_layouts
            .iter()
            .any(|(l, t)| *l == PlateLayout::TwoLine && t == &["59-H1", "686.79"]),
        "{read_layouts:?}"
    );
}

/// Calibrating on some crops gives a table that covers every quantised
/// tensor of the model, and the recogniser quantised with it still reads.
#[test]
fn a_calibration_run_covers_the_model_and_quantises_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let crops = one_line_crops(dir.path());
    let (runtime, path, sha256) = recogniser_file();
    let name = "ppocrv6-rec-small";
    let mut calibrator =
        RecogniserCalibrator::open(runtime, name, &path, None, options(), Alphabet::Plate)
            .expect("calibrator");
    for crop in &crops {
        calibrator.add(crop).expect("calibration run");
    }
    assert_eq!(calibrator.lines(), crops.len());
    let table = calibrator.finish(&sha256, "test crops");
    let shipped =
        vigil_infer::quantize::builtin(&sha256, PlateLayout::OneLine).expect("shipped table");
    let names =
        |t: &vigil_infer::quantize::Calibration| t.ranges.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&table), names(&shipped));
    let mut int8 = TextRecogniser::open_int8(
        runtime,
        name,
        &path,
        None,
        options(),
        Alphabet::Plate,
        &table,
    )
    .expect("quantised with the new table");
    let read = int8.recognise(&[&crops[0]]).expect("read");
    assert_eq!(read[0].text, "30A-123.45");
}

/// The INT8 text detector (the shipped table) places each rendered plate
/// where the float one does, in the same order among the other text.
#[test]
fn the_int8_text_detector_locates_like_the_float_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut float, mut int8) = (float_text_detector(), text_detector());
    let locate = LocateConfig::default();
    for vehicle in vehicles(dir.path()) {
        let a = float.locate_plates(&vehicle, &locate).expect("float");
        let b = int8.locate_plates(&vehicle, &locate).expect("int8");
        assert_eq!(a.len(), b.len(), "{a:?} against {b:?}");
        for (f, q) in a.iter().zip(&b) {
            assert!(f.iou(q) > 0.8, "{f:?} against {q:?}");
        }
    }
}

/// A coarse search refined around what it finds places the plate as the
/// search at full width does, and the plate reads the same; a crop without
/// text falls back to the full-width search and finds nothing.
#[test]
fn a_coarse_search_refined_around_its_candidates_places_the_plate() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut detector = text_detector();
    let mut reader = reader();
    let fine = LocateConfig::default();
    let coarse = LocateConfig {
        coarse_width_px: Some(192),
        ..fine
    };
    for vehicle in vehicles(dir.path()) {
        let a = detector.locate_plates(&vehicle, &fine).expect("fine");
        let b = detector.locate_plates(&vehicle, &coarse).expect("coarse");
        assert!(!b.is_empty());
        let plate = |regions: &[vigil_core::detection::BBox], reader: &mut PlateReader| {
            reader
                .read_best_region(&vehicle, regions)
                .expect("read")
                .and_then(|p| p.reading.plate().map(|p| p.canonical()))
        };
        let (pa, pb) = (plate(&a, &mut reader), plate(&b, &mut reader));
        assert!(pa.is_some());
        assert_eq!(pa, pb);
        assert!(a[0].iou(&b[0]) > 0.8, "{a:?} against {b:?}");
    }
    let bare = render(dir.path(), "bare", (0, 0, 1, 1), &[]);
    assert!(detector
        .locate_plates(&bare, &coarse)
        .expect("searched")
        .is_empty());
}

/// Calibrating the text detector on vehicle crops gives a table that covers
/// the same tensors as the shipped one, and the detector quantised with it
/// still finds the plate.
#[test]
fn a_text_detector_calibration_covers_the_model_and_quantises_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let name = vigil_core::config::DEFAULT_TEXT_DETECTOR;
    let (runtime, path, sha256) = model_file(name);
    let mut calibrator =
        TextDetectorCalibrator::open(runtime, name, &path, options()).expect("calibrator");
    let vehicles = vehicles(dir.path());
    let locate = LocateConfig {
        coarse_width_px: Some(192),
        ..LocateConfig::default()
    };
    for vehicle in &vehicles {
        calibrator.add(vehicle, &locate).expect("calibration run");
    }
    // Each crop at both widths.
    assert_eq!(calibrator.runs(), 2 * vehicles.len());
    let table = calibrator.finish(&sha256, "rendered vehicles");
    let shipped = vigil_infer::quantize::builtin_text_detector(&sha256).expect("shipped table");
    let names =
        |t: &vigil_infer::quantize::Calibration| t.ranges.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&table), names(&shipped));
    let model = OnnxModel::open_int8(runtime, name, &path, options(), &table).expect("int8");
    let mut detector = TextDetector::new(model, TextDetectorConfig::default());
    let regions = detector
        .locate_plates(&vehicles[0], &LocateConfig::default())
        .expect("located");
    assert!(
        regions
            .first()
            .is_some_and(|r| r.y1 > 140.0 && r.y2 < 195.0),
        "{regions:?}"
    );
}

/// The tiny recogniser, its head cut to plate characters, in float: the
/// first pass a site can configure.
fn tiny_recogniser() -> TextRecogniser {
    let name = "ppocrv6-rec-tiny";
    let (runtime, path, _) = model_file(name);
    let manifest = Manifest::load(&root().join("models/manifest.toml")).expect("manifest");
    let charset = manifest
        .model(name)
        .and_then(|m| m.charset.as_ref())
        .expect("the tiny recogniser's character list");
    let dict = root().join("models").join(&charset.file);
    TextRecogniser::open(
        runtime,
        name,
        &path,
        Some(&dict),
        options(),
        Alphabet::Plate,
    )
    .expect("tiny recogniser")
}

/// With a first pass, every one-line plate is read by it first; a reading
/// it is sure of stands, and the others are read again by the reader's
/// recogniser. Two-line plates go straight to the main recogniser. A
/// threshold no reading meets leaves every plate to the main recogniser,
/// and at the default threshold the plates read the same as without a
/// first pass.
#[test]
fn a_first_pass_reads_first_and_hands_doubtful_plates_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let crops = plate_crops(dir.path());
    let mut main_only = reader();
    assert_eq!(main_only.first_pass_counts(), None);
    let expected: Vec<PlateReading> = crops
        .iter()
        .map(|c| main_only.read_plate(c).expect("read").1)
        .collect();
    let plates = |readings: &[PlateReading]| -> Vec<Option<String>> {
        readings
            .iter()
            .map(|r| r.plate().map(|p| p.canonical()))
            .collect()
    };
    assert!(expected.iter().all(|r| r.plate().is_some()), "{expected:?}");
    let one_line = one_line_crops(dir.path()).len();
    assert!(one_line > 0 && one_line < crops.len());

    let mut never = reader().with_first_pass(FirstPass::new(tiny_recogniser(), 1.5));
    let never_read: Vec<PlateReading> = crops
        .iter()
        .map(|c| never.read_plate(c).expect("read").1)
        .collect();
    assert_eq!(never_read, expected, "the main recogniser read every plate");
    assert_eq!(
        never.first_pass_counts(),
        Some(FirstPassCounts {
            tried: one_line,
            accepted: 0
        })
    );

    let min = vigil_core::config::DEFAULT_FIRST_PASS_MIN_CONFIDENCE;
    let mut cascade = reader().with_first_pass(FirstPass::new(tiny_recogniser(), min));
    let mut tiny = tiny_recogniser();
    let config = PlateReaderConfig::default();
    let mut cascade_read = Vec::new();
    for crop in &crops {
        let (text, reading) = cascade.read_plate(crop).expect("read");
        let (_, lines) = vigil_infer::plate_reader::plate_lines(crop, &config);
        let refs: Vec<&RgbImage> = lines.iter().collect();
        let tiny_lines = tiny.recognise(&refs).expect("tiny");
        // A reading that stood is the tiny recogniser's own, every
        // character at least `min`.
        if text.lines == tiny_lines {
            assert!(text
                .lines
                .iter()
                .flat_map(|l| l.text.chars().zip(&l.char_confidences))
                .filter(|(c, _)| c.is_alphanumeric())
                .all(|(_, &p)| p >= min));
        }
        cascade_read.push(reading);
    }
    let counts = cascade.first_pass_counts().expect("counts");
    assert_eq!(counts.tried, one_line);
    assert!(counts.accepted > 0, "{counts:?}");
    assert_eq!(plates(&cascade_read), plates(&expected));
}

/// In a second crop of the same vehicle, the plate is searched for first
/// in a window around where the first crop showed it (rescaled), and the
/// whole crop is searched only when that window holds no valid plate.
#[test]
fn a_plate_seen_in_one_crop_is_searched_for_first_where_it_was() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = render(
        dir.path(),
        "seen",
        (90, 150, 150, 36),
        &[("30A-123.45", 97, 156, 24)],
    );
    // The next frame's box sits differently on the vehicle.
    let moved = render(
        dir.path(),
        "moved",
        (70, 165, 150, 36),
        &[("30A-123.45", 77, 171, 24)],
    );
    let drawn = vigil_core::detection::BBox {
        x1: 70.0,
        y1: 165.0,
        x2: 220.0,
        y2: 201.0,
    };
    let mut detector = text_detector();
    let mut reader = reader();
    let locate = LocateConfig::default();
    let canonical = |found: &Option<vigil_infer::plate_reader::VehiclePlate>| {
        found
            .as_ref()
            .and_then(|f| f.reading.plate())
            .map(|p| p.canonical())
    };
    let seen = reader
        .read_in_vehicle(&mut detector, &first, &locate)
        .expect("read");
    assert_eq!(canonical(&seen).as_deref(), Some("30A-123.45"));
    let hint = seen.expect("found").region;

    let near = detector
        .locate_plates_near(&moved, &locate, &hint)
        .expect("window searched");
    assert!(near.iter().any(|r| r.iou(&drawn) >= 0.5), "{near:?}");
    let found = reader
        .read_in_vehicle_near(&mut detector, &moved, &locate, &hint)
        .expect("read");
    assert_eq!(canonical(&found).as_deref(), Some("30A-123.45"));
    let region = found.expect("found").region;
    assert!(region.iou(&drawn) >= 0.5, "{region:?}");

    // A hint far from the plate: its window shows no text, and the whole
    // crop is searched instead.
    let far = vigil_core::detection::BBox {
        x1: 10.0,
        y1: 10.0,
        x2: 60.0,
        y2: 22.0,
    };
    let near = detector
        .locate_plates_near(&moved, &locate, &far)
        .expect("window searched");
    assert!(near.is_empty(), "{near:?}");
    let found = reader
        .read_in_vehicle_near(&mut detector, &moved, &locate, &far)
        .expect("read");
    assert_eq!(canonical(&found).as_deref(), Some("30A-123.45"));
}

/// The plate stage votes a violation's plate over the track's crops and
/// measures its colour class: a commercial vehicle's yellow plate, and a
/// state agency's blue one with white letters, whose agency the case
/// system notifies.
#[test]
fn the_plate_stage_votes_over_a_tracks_crops_and_measures_the_plate_colour() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut stage = PlateStage {
        text_detector: text_detector(),
        locate: LocateConfig::default(),
        reader: reader(),
        votes: 5,
    };
    for (paint, ink, expected) in [
        ("0xE6C328", "black", PlateColour::Yellow),
        ("0x1E3C9B", "white", PlateColour::Blue),
        ("white", "black", PlateColour::White),
    ] {
        // Three frames' crops: the box sits a little differently each time.
        let crops: Vec<RgbImage> = [(90, 150), (80, 156), (96, 144)]
            .into_iter()
            .enumerate()
            .map(|(i, (x, y))| {
                render_coloured(
                    dir.path(),
                    &format!("{paint}-{i}"),
                    (x, y, 150, 36),
                    (paint, ink),
                    &[("30A-123.45", x + 7, y + 6, 24)],
                )
            })
            .collect();
        let (read, crop) = stage.read(&crops).expect("read");
        let read = read.expect("a plate read");
        assert!(read.valid, "{paint}: {read:?}");
        assert_eq!(read.text, "30A-123.45");
        assert_eq!(read.reads, 3);
        assert_eq!(read.colour, Some(expected), "{paint}");
        assert!(crop.is_some());
    }
}
