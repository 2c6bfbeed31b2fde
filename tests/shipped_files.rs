//! The files a fresh clone ships with fit together: every site config under
//! `configs/` validates against the real model manifest, and the bundled demo
//! clip is the attributed one.

use std::path::{Path, PathBuf};

use vigil_infer::store::sha256_file;
use vigil_infer::Manifest;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn configs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("configs"))
        .expect("configs/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_site_config_validates_against_the_manifest() {
    let manifest = Manifest::load(&root().join("models/manifest.toml")).expect("manifest");
    let catalog = manifest.catalog();
    let files = configs();
    assert!(
        files.len() >= 2,
        "expected demo and example configs, found {files:?}"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read config");
        let origin = file.display().to_string();
        if let Err(e) = vigil_core::config::check(&origin, &text, Some(&catalog)) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_demo_config_plays_the_bundled_clip() {
    let text = std::fs::read_to_string(root().join("configs/demo.toml")).expect("demo config");
    let cfg = vigil_core::config::check("configs/demo.toml", &text, None).expect("valid");
    let camera = cfg.cameras.values().next().expect("one camera");
    let vigil_core::config::Source::File {
        path, recorded_at, ..
    } = &camera.source
    else {
        panic!("the demo reads a file");
    };
    assert!(
        recorded_at.is_some(),
        "a replay needs recorded_at to meet the same phases"
    );
    let clip = root().join("configs").join(path);
    // The SHA-256 published in NOTICE identifies the attributed excerpt.
    let notice = std::fs::read_to_string(root().join("NOTICE")).expect("NOTICE");
    let sha = sha256_file(&clip).expect("demo clip present");
    assert!(
        notice.contains(&sha),
        "NOTICE does not list the clip's SHA-256 {sha}"
    );
    assert!(notice.contains("CC BY 3.0"));
}

#[test]
fn the_manifest_pins_every_file_it_names() {
    let manifest = Manifest::load(&root().join("models/manifest.toml")).expect("manifest");
    let artifacts = manifest.artifacts();
    assert_eq!(artifacts.len(), 10, "runtime, 8 models and one charset");
    for a in &artifacts {
        assert!(a.package.contains("=="), "{} is not pinned", a.owner);
        assert_eq!(a.sha256.len(), 64);
    }
    let labels = &manifest.model("yolov8n-coco").expect("detector").labels;
    assert_eq!(labels.len(), 80);
    assert_eq!(labels[3], "motorcycle");
    assert_eq!(labels[9], "traffic light");
}

#[test]
fn the_demo_camera_ingests_every_frame_of_the_bundled_clip() {
    use std::time::Duration;
    use vigil_video::{CameraIngest, IngestConfig, IngestEvent, SourceSpec};

    let text = std::fs::read_to_string(root().join("configs/demo.toml")).expect("demo config");
    let cfg = vigil_core::config::check("configs/demo.toml", &text, None).expect("valid");
    let (id, camera) = cfg.cameras.iter().next().expect("one camera");
    let spec = SourceSpec::from_config(id, camera, &root().join("configs")).expect("source spec");
    let config = IngestConfig {
        queue_capacity: 1_000,
        convert_rgb: false,
        ..IngestConfig::default()
    };
    let ingest = CameraIngest::spawn(spec, config);
    let mut frames = Vec::new();
    while let Ok(f) = ingest.frames().recv_timeout(Duration::from_secs(30)) {
        frames.push(f);
    }
    let events: Vec<IngestEvent> = ingest.events().try_iter().collect();
    assert!(
        events.contains(&IngestEvent::EndOfInput { frames: 600 }),
        "{events:?}"
    );
    assert_eq!(frames.len(), 600);
    assert!(frames.iter().all(|f| (f.width, f.height) == (960, 540)));
    let [w, h] = camera.frame_size;
    assert_eq!(
        (w, h),
        (960, 540),
        "the config's frame size matches the clip"
    );
    // 2026-03-14T08:00:00+01:00, the config's recorded_at.
    assert_eq!(frames[0].meta.time_us, 1_773_471_600_000_000);
    assert_eq!(
        frames[599].meta.time_us - frames[0].meta.time_us,
        599 * 1_000_000 / 30
    );
}
