//! A wrong input shape, a missing model and a corrupt model each stop
//! inference with a message that names the model and the problem.

use std::collections::BTreeMap;
use std::path::Path;

use vigil_infer::detector::{Detector, DetectorConfig};
use vigil_infer::model::OnnxModel;
use vigil_infer::runtime::{Runtime, SessionOptions};
use vigil_infer::{InferError, Manifest};

fn runtime() -> &'static Runtime {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = Manifest::load(&root.join("models/manifest.toml")).expect("manifest");
    Runtime::load(&root.join("models").join(&manifest.runtime.file)).expect("runtime")
}

fn yolo() -> OnnxModel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/yolov8n-coco.onnx");
    OnnxModel::open(runtime(), "yolov8n-coco", &path, SessionOptions::default()).expect("model")
}

#[test]
fn a_model_with_a_fixed_input_refuses_another_size() {
    let config = DetectorConfig {
        input: (320, 320),
        ..DetectorConfig::default()
    };
    let err = Detector::new(yolo(), Vec::new(), &BTreeMap::new(), config)
        .err()
        .expect("shape error");
    let text = err.to_string();
    assert!(matches!(err, InferError::Shape { .. }), "{text}");
    assert!(text.starts_with("model yolov8n-coco:"), "{text}");
    assert!(
        text.contains("[1, 3, 640, 640]") && text.contains("320"),
        "{text}"
    );
}

#[test]
fn a_missing_model_names_the_file_and_the_fix() {
    let err = OnnxModel::open(
        runtime(),
        "ghost",
        Path::new("models/ghost.onnx"),
        SessionOptions::default(),
    )
    .err()
    .expect("missing");
    assert_eq!(
        err.to_string(),
        "model file models/ghost.onnx is missing; fetch it with `vigil models fetch`"
    );
}

#[test]
fn a_corrupt_model_file_is_a_load_error_naming_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("broken.onnx");
    let mut bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/yolov8n-coco.onnx"))
            .expect("model");
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&path, bytes).expect("write");
    let err = OnnxModel::open(runtime(), "broken", &path, SessionOptions::default())
        .err()
        .expect("corrupt");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot load model {}:", path.display())),
        "{text}"
    );
}

#[test]
fn a_gpu_request_without_gpu_support_falls_back_to_cpu() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/yolov8n-coco.onnx");
    let options = SessionOptions {
        provider: vigil_core::config::ExecutionProvider::Cuda,
        ..SessionOptions::default()
    };
    let model =
        OnnxModel::open(runtime(), "yolov8n-coco", &path, options).expect("falls back, no panic");
    assert_eq!(model.provider(), vigil_infer::runtime::Provider::Cpu);
}
