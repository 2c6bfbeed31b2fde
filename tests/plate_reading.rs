//! Plate reading end to end on rendered plates: text detector on a vehicle
//! crop, plate region, line split, recogniser, Vietnamese grammar.
//! (Real plate photos are evaluated with `vigil eval plates`; they may not
//! be committed.)

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_core::image::RgbImage;
use vigil_infer::model::OnnxModel;
use vigil_infer::ocr::TextRecogniser;
use vigil_infer::plate_reader::{PlateLayout, PlateReader, PlateReaderConfig};
use vigil_infer::runtime::{Runtime, SessionOptions};
use vigil_infer::text_detector::{plate_region, TextDetector, TextDetectorConfig};
use vigil_infer::Manifest;
use vigil_plate::PlateReading;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn open(name: &str) -> OnnxModel {
    let manifest = Manifest::load(&root().join("models/manifest.toml")).expect("manifest");
    let models = root().join("models");
    vigil_infer::store::require(&manifest, &models, &["onnxruntime", name])
        .expect("models fetched");
    let runtime = Runtime::load(&models.join(&manifest.runtime.file)).expect("runtime");
    let entry = manifest.model(name).expect("entry");
    let options = SessionOptions {
        threads: 2,
        ..SessionOptions::default()
    };
    OnnxModel::open(runtime, name, &models.join(&entry.file), options).expect("model")
}

fn reader() -> PlateReader {
    let model = open("ppocrv6-rec-small");
    let chars = TextRecogniser::metadata_characters(&model);
    PlateReader::new(
        TextRecogniser::new(model, chars, None).expect("recogniser"),
        PlateReaderConfig::default(),
    )
}

/// A grey "vehicle" 320x240 with a white plate drawn by ffmpeg's drawtext.
fn render(
    dir: &Path,
    name: &str,
    plate: (u32, u32, u32, u32),
    texts: &[(&str, u32, u32, u32)],
) -> RgbImage {
    let (x, y, w, h) = plate;
    let mut filter = format!("drawbox=x={x}:y={y}:w={w}:h={h}:color=white:t=fill");
    for (text, tx, ty, size) in texts {
        filter += &format!(",drawtext=text='{text}':x={tx}:y={ty}:fontsize={size}:fontcolor=black");
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

fn read_on_vehicle(vehicle: &RgbImage) -> (PlateLayout, PlateReading) {
    let mut detector = TextDetector::new(open("ppocrv6-det-small"), TextDetectorConfig::default());
    let lines = detector.detect(vehicle).expect("text lines");
    let region =
        plate_region(&lines, vehicle.width, vehicle.height).expect("a plate among the text");
    let crop = vehicle
        .crop(
            region.x1 as i64,
            region.y1 as i64,
            region.width().ceil() as i64,
            region.height().ceil() as i64,
        )
        .expect("crop");
    let (text, reading) = reader().read_plate(&crop).expect("read");
    (text.layout, reading)
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
