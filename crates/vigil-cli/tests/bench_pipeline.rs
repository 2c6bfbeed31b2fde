//! `vigil bench --input`: the real pipeline on N copies of the demo clip
//! against its floors, every figure present and consistent, and the chart.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn bench_reports_the_pipeline_against_its_floors() {
    let (b, dir) = bench_json(&["--streams", "2", "--max-frames", "6"]);
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
    // Three rounds (the default) of 2 frames per stream, each paired with
    // its own floors; efficiency is the median of the rounds' ratios.
    assert_eq!(b["rounds"], 3);
    let mut per_round: Vec<f64> = b["efficiency_rounds"]
        .as_array()
        .expect("efficiency_rounds")
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    assert_eq!(per_round.len(), 3, "{b}");
    assert!(per_round.iter().all(|e| *e > 0.0), "{per_round:?}");
    per_round.sort_by(f64::total_cmp);
    assert!((num("efficiency") - per_round[1]).abs() < 1e-9, "{b}");
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
    let chart = image::open(dir.path().join("bench.png")).expect("the chart is a PNG");
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

/// Runs `vigil bench` on the demo clip; returns its JSON and the directory
/// holding it and the chart (`bench.png`).
fn bench_json(extra: &[&str]) -> (serde_json::Value, tempfile::TempDir) {
    bench_json_with(&["--config", "configs/demo.toml"], extra)
}

/// `bench_json` with the scene options of one's own (`site`).
fn bench_json_with(site: &[&str], extra: &[&str]) -> (serde_json::Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .env_remove("VIGIL_MANIFEST")
        .env_remove("VIGIL_MODELS_DIR")
        .args(["bench", "--input", "demo/motorway-a40.mp4"])
        .args(site)
        .args(extra)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("vigil bench runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid");
    (value, dir)
}

#[test]
fn a_lower_detection_rate_is_reported_never_silent() {
    // Every 2nd frame: 6 analysed per stream, the 5 between them skipped.
    let (b, _) = bench_json(&[
        "--streams",
        "2",
        "--max-frames",
        "6",
        "--rounds",
        "1",
        "--detect-every",
        "2",
    ]);
    assert_eq!(b["frames_analysed"], 12);
    assert_eq!(b["frames_skipped"], 10);
    assert_eq!(b["frames"], 22);
    assert_eq!(b["detect_every_max"], 2);
    let detect = b["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "detect")
        .expect("detect");
    assert_eq!(
        detect["calls"], 12,
        "detection ran on the analysed frames only"
    );

    // Adaptive: decoding outpaces detection, frames queue up, the rate rises.
    let (b, _) = bench_json(&[
        "--rounds",
        "1",
        "--max-frames",
        "40",
        "--adaptive-detection",
        "--max-detect-every",
        "3",
    ]);
    assert!(
        b["detect_every_max"]
            .as_u64()
            .is_some_and(|k| (2..=3).contains(&k)),
        "{b}"
    );
    assert!(b["frames_skipped"].as_u64().is_some_and(|n| n > 0), "{b}");
}

#[test]
fn footage_without_a_config_runs_on_a_generic_approach() {
    // No --config: the bench makes a site of its own around the video.
    let (b, _dir) = bench_json_with(&[], &["--max-frames", "4", "--rounds", "1"]);
    assert_eq!(b["streams"], 1);
    assert_eq!(b["frames"], 4, "{b}");
    assert_eq!(b["width"], 960);
    assert_eq!(b["provider"], "cpu");
    assert!(b["fps"].as_f64().is_some_and(|f| f > 0.0), "{b}");
}

#[test]
fn a_gpu_request_without_the_gpu_runtime_runs_on_cpu_and_says_so() {
    // The GPU build of ONNX Runtime is not fetched in tests (`models fetch
    // --gpu`), so a CUDA request must fall back and the report must say
    // which provider really ran.
    let (b, _dir) = bench_json(&["--max-frames", "3", "--provider", "cuda"]);
    assert_eq!(b["provider"], "cpu", "{b}");
    assert_eq!(b["frames"], 3, "{b}");
}
