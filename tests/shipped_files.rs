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
