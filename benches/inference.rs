//! Detector pre- and post-processing: what the detector adds to raw
//! inference (`vigil bench detect` reports the ratio end to end).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_core::image::RgbImage;
use vigil_infer::letterbox::letterbox_into;

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
        b.iter(|| letterbox_into(&img, 640, &mut out))
    });
}

criterion_group!(benches, letterbox);
criterion_main!(benches);
