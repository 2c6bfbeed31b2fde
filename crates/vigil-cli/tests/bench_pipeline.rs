//! `vigil bench --input`: the real pipeline on N copies of the demo clip
//! against its floors, every figure present and consistent, and the chart.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn bench_reports_the_pipeline_against_its_floors() {
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .env_remove("VIGIL_MANIFEST")
        .env_remove("VIGIL_MODELS_DIR")
        .args([
            "bench",
            "--input",
            "demo/motorway-a40.mp4",
            "--config",
            "configs/demo.toml",
        ])
        .args(["--streams", "2", "--max-frames", "6", "--json"])
        .arg(&json)
        .output()
        .expect("vigil bench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
    assert_eq!(b["streams"], 2);
    assert_eq!(b["frames"], 12, "6 frames from each of the 2 streams");
    let num = |k: &str| b[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {b}"));
    for k in [
        "fps",
        "decode_floor_fps",
        "infer_floor_fps",
        "efficiency",
        "peak_rss_mb",
        "cpu_cores_used",
    ] {
        assert!(num(k) > 0.0, "{k} = {}", num(k));
    }
    let floor = num("decode_floor_fps").min(num("infer_floor_fps"));
    assert!((num("efficiency") - num("fps") / floor).abs() < 1e-9);
    let stages: Vec<&str> = b["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert!(
        stages.contains(&"detect") && stages.contains(&"track_rules"),
        "{stages:?}"
    );
    let detect = b["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "detect")
        .expect("detect");
    assert_eq!(detect["calls"], 12, "one detection per frame");
    let chart = image::open(json.with_extension("png")).expect("the chart is a PNG");
    assert!(chart.width() >= 600 && chart.height() >= 200);
}

#[test]
fn bench_without_input_or_subcommand_says_what_to_give() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .arg("bench")
        .output()
        .expect("vigil bench runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--input FILE"), "{err}");
}
