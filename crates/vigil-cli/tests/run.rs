//! `vigil run` on the bundled demo clip, with the real detector: the events
//! file keeps its interface, its facts agree with each other and with the
//! signal plan, and SIGTERM ends a run cleanly with what it analysed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo site, with the plan shifted so that the recording starts 10 s
/// into the cycle: amber until t = 1 s, then red until t = 10 s.
fn red_early_config(dir: &Path) -> PathBuf {
    red_early_config_to(dir, "http://127.0.0.1:8480/api/v1/packages")
}

/// The same, sending packages to `sink_url`.
fn red_early_config_to(dir: &Path, sink_url: &str) -> PathBuf {
    let demo = std::fs::read_to_string(root().join("configs/demo.toml")).expect("demo config");
    let clip = root().join("demo/motorway-a40.mp4");
    let clip = clip.to_str().expect("utf-8 path");
    let text = demo
        .replace("\"../demo/motorway-a40.mp4\"", &format!("{clip:?}"))
        .replace(
            "anchor = 2026-01-01T00:00:00+01:00",
            "anchor = 2026-03-14T07:59:50+01:00",
        );
    assert!(text.contains("07:59:50"), "the demo plan anchor moved");
    let text = text.replace("http://127.0.0.1:8480/api/v1/packages", sink_url);
    // Evidence, key and spool in the test's own directory.
    let text = text.replace(
        "\"../var/demo/",
        &format!("\"{}/", dir.to_str().expect("utf-8")),
    );
    let path = dir.join("red-early.toml");
    std::fs::write(&path, text).expect("write config");
    let key = dir.join("device.key");
    let out = vigil()
        .args(["keygen", "--device-id", "edge-demo-0001", "--out"])
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Every package the run committed (delivered or not, in sequence order),
/// verified with the device's public key.
fn verify_spool(dir: &Path) -> (usize, String) {
    let mut packages: Vec<PathBuf> = ["delivered", "pending"]
        .iter()
        .flat_map(|state| {
            std::fs::read_dir(dir.join("spool").join(state).join("footbridge"))
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
        })
        .collect();
    // File names start with the zero-padded sequence number.
    packages.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    if packages.is_empty() {
        return (0, String::new());
    }
    let count = packages.len();
    let out = vigil()
        .arg("verify")
        .args(&packages)
        .arg("--pubkey")
        .arg(dir.join("device.key.pub"))
        .output()
        .expect("verify runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    (count, text)
}

fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.current_dir(root())
        .env_remove("VIGIL_MANIFEST")
        .env_remove("VIGIL_MODELS_DIR");
    c
}

/// A stand-in for the case system's intake (issue 7 builds the real one):
/// answers 201 to every POST and keeps the bodies.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .expect("port");
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&bodies);
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
            kept.lock().expect("lock").push(body);
            let _ = request.respond(tiny_http::Response::empty(201));
        }
    });
    (format!("http://127.0.0.1:{port}/api/v1/packages"), bodies)
}

#[test]
fn events_out_holds_one_consistent_record_per_red_light_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let (url, received) = receiver();
    let config = red_early_config_to(dir.path(), &url);
    let events = dir.path().join("events.jsonl");
    let summary = dir.path().join("summary.jsonl");
    let out = vigil()
        .args(["run", "--config"])
        .arg(&config)
        .arg("--events-out")
        .arg(&events)
        .arg("--summary-out")
        .arg(&summary)
        .args(["--max-frames", "150", "--summary-period-s", "2"])
        .output()
        .expect("vigil runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("footbridge") && stdout.contains("150"),
        "{stdout}"
    );

    let text = std::fs::read_to_string(&events).expect("events file");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(
        !records.is_empty(),
        "no red-light run found in 5 s of red:\n{stdout}"
    );
    for r in &records {
        for field in [
            "type",
            "camera",
            "track_id",
            "class",
            "t_stop_line",
            "frame_stop_line",
            "t_clearance",
            "time_into_red",
            "bbox_at_stop_line",
            "plate",
        ] {
            assert!(r.get(field).is_some(), "{field} missing from {r}");
        }
        assert_eq!(r["type"], "red_light");
        assert_eq!(r["camera"], "footbridge");
        let class = r["class"].as_str().expect("class");
        assert!(["car", "motorbike", "bus", "truck"].contains(&class), "{r}");
        let t_stop = r["t_stop_line"].as_f64().expect("t_stop_line");
        let t_clear = r["t_clearance"].as_f64().expect("t_clearance");
        let into_red = r["time_into_red"].as_f64().expect("time_into_red");
        // Red began at t = 1 s; the grace is 0.3 s; 150 frames at 30 fps is 5 s.
        assert!(t_stop > 1.3 && t_stop < 5.0, "{r}");
        assert!((into_red - (t_stop - 1.0)).abs() < 1e-3, "{r}");
        assert!(t_clear > t_stop, "{r}");
        let frame = r["frame_stop_line"].as_f64().expect("frame");
        assert!(
            (frame - t_stop * 30.0).abs() <= 1.0,
            "frame and time disagree: {r}"
        );
        let b: Vec<f64> = r["bbox_at_stop_line"]
            .as_array()
            .expect("bbox")
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        assert_eq!(b.len(), 4, "{r}");
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[0] + b[2] <= 961.0 && b[1] + b[3] <= 541.0,
            "{r}"
        );
    }
    let mut ids: Vec<u64> = records
        .iter()
        .filter_map(|r| r["track_id"].as_u64())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), records.len(), "one event per track");

    let summaries: Vec<serde_json::Value> = std::fs::read_to_string(&summary)
        .expect("summary file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    // 5 s in 2 s periods: [0,2), [2,4) and the partial [4,5).
    assert_eq!(summaries.len(), 3, "{summaries:?}");
    let counted: u64 = summaries
        .iter()
        .flat_map(|s| s["lanes"].as_array().cloned().unwrap_or_default())
        .filter_map(|l| l["total"].as_u64())
        .sum();
    assert!(
        counted as usize >= records.len(),
        "every runner crossed the line and was counted"
    );
    assert!(summaries[1]["red_s"].as_f64().expect("red_s") > 1.9);

    // One verified evidence package per event, chained 1..n, with a sheet.
    let (packages, report) = verify_spool(dir.path());
    assert_eq!(packages, records.len(), "{report}");
    assert!(
        report.contains(&format!("{n} package(s): {n} valid", n = records.len())),
        "{report}"
    );
    let sheets = std::fs::read_dir(dir.path().join("evidence/footbridge"))
        .expect("package directories")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("sheet.jpg").exists() && e.path().join("clip.mp4").exists())
        .count();
    assert_eq!(sheets, records.len());
    // And each went to the receiver, signed, before the run ended.
    assert!(stdout.contains("none waiting"), "{stdout}");
    assert_eq!(received.lock().expect("lock").len(), records.len());
}

/// Starts `vigil run` on `config` writing `events`, and returns once the
/// first violation is in the file (or after 4 minutes).
fn run_until_first_event(config: &Path, events: &Path, extra: &[&str]) -> std::process::Child {
    run_until_events(config, events, extra, 1)
}

/// The same, returning once `count` violations are in the file.
fn run_until_events(
    config: &Path,
    events: &Path,
    extra: &[&str],
    count: usize,
) -> std::process::Child {
    let child = vigil()
        .args(["run", "--config"])
        .arg(config)
        .arg("--events-out")
        .arg(events)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigil starts");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(240) {
        if std::fs::read_to_string(events).is_ok_and(|t| t.lines().count() >= count) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn sigterm_stops_a_run_and_reports_what_it_analysed() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = red_early_config(dir.path());
    let events = dir.path().join("events.jsonl");
    // Nothing listens at the sink's address: the uploader retries and the
    // packages stay in the spool. Stop at the first violation: its package
    // still waits for the post-roll, so only the shutdown flush commits it.
    let child = run_until_first_event(&config, &events, &["--upload-drain-s", "1"]);
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc_kill(child.id() as i32, 15) };
    assert_eq!(rc, 0, "kill failed");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stopped"), "{stdout}");
    // Whatever was written is whole lines of JSON, and every event that
    // was written has its verified package: nothing is lost on SIGTERM.
    let text = std::fs::read_to_string(&events).expect("events file");
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("whole JSON lines");
    }
    assert!(
        text.lines().count() > 0,
        "no violation before the stop:\n{stdout}"
    );
    let (packages, report) = verify_spool(dir.path());
    assert_eq!(packages, text.lines().count(), "{report}\n{stdout}");
}

#[test]
fn an_event_survives_a_kill_9_before_its_package_and_is_packaged_on_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = red_early_config(dir.path());
    let events = dir.path().join("events.jsonl");
    let child = run_until_first_event(&config, &events, &[]);
    // SAFETY: kill(2) on our own child's pid; SIGKILL cannot be handled.
    assert_eq!(unsafe { libc_kill(child.id() as i32, 9) }, 0);
    let killed = child.wait_with_output().expect("wait");
    assert!(!killed.status.success());
    let fired = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .count();
    assert!(fired > 0, "no violation before the kill");

    // Restart: the leftover intents are packaged before anything else.
    let out = vigil()
        .args(["run", "--config"])
        .arg(&config)
        .args(["--max-frames", "1", "--no-upload"])
        .output()
        .expect("vigil runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (packages, report) = verify_spool(dir.path());
    assert!(
        packages >= fired,
        "{fired} events fired, {packages} packaged:\n{report}"
    );
    assert!(
        std::fs::read_dir(dir.path().join("spool/intents")).map_or(0, |d| d
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count())
            == 0,
        "intents left behind"
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// `config` with its one camera (and its approaches) played by `copies`
/// cameras: `footbridge`, `footbridge-2`, ...; every copy reads the same
/// clip and shares the signal plan.
fn multi_camera(config: &Path, copies: usize) {
    let text = std::fs::read_to_string(config).expect("config");
    let mut site: toml::Table = text.parse().expect("TOML");
    let camera = site["cameras"]["footbridge"].clone();
    let approaches: Vec<(String, toml::Value)> = site["approaches"]
        .as_table()
        .expect("approaches")
        .iter()
        .filter(|(_, a)| a.get("camera").and_then(|c| c.as_str()) == Some("footbridge"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for k in 2..=copies {
        let id = format!("footbridge-{k}");
        site["cameras"]
            .as_table_mut()
            .expect("cameras")
            .insert(id.clone(), camera.clone());
        for (name, a) in &approaches {
            let mut a = a.clone();
            a.as_table_mut()
                .expect("approach")
                .insert("camera".into(), id.clone().into());
            site["approaches"]
                .as_table_mut()
                .expect("approaches")
                .insert(format!("{name}-{k}"), a);
        }
    }
    std::fs::write(config, toml::to_string(&site).expect("TOML out")).expect("write config");
}

/// Every package file in the spool (`delivered` or `pending`), per camera.
fn spooled(dir: &Path, state: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for camera in std::fs::read_dir(dir.join("spool").join(state))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let mut files: Vec<PathBuf> = std::fs::read_dir(camera.path())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tar"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// The real case system (`vigil case serve`, embedded SQLite) on a free
/// port, with the device registered; killed when dropped.
struct CaseServer {
    child: std::process::Child,
    url: String,
    db: String,
    media: PathBuf,
}

impl CaseServer {
    fn start(dir: &Path, device_pub: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let db = format!("sqlite://{}?mode=rwc", dir.join("case.db").display());
        let media = dir.join("case-media");
        let child = vigil()
            .args(["case", "serve", "--db", &db, "--media"])
            .arg(&media)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--register"])
            .arg(device_pub)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("case serve starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the case system did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/api/v1/packages"),
            db,
            media,
        }
    }

    /// Packages stored, and the alerts raised, read from the database.
    fn holdings(&self) -> (i64, Vec<String>) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let store = vigil_case::store::Store::connect(&self.db, &self.media)
                .await
                .expect("case store");
            let count = store.package_count().await.expect("count");
            let alerts = store
                .alerts()
                .await
                .expect("alerts")
                .into_iter()
                .map(|a| format!("{a:?}"))
                .collect();
            (count, alerts)
        })
    }
}

impl Drop for CaseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigterm_in_a_busy_three_camera_run_loses_no_event_and_the_case_system_gets_every_package() {
    let dir = tempfile::tempdir().expect("tmp");
    // Keygen first (red_early_config writes the key), then the server.
    let config = red_early_config_to(dir.path(), "http://127.0.0.1:9/unused");
    let case = CaseServer::start(dir.path(), &dir.path().join("device.key.pub"));
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("http://127.0.0.1:9/unused", &case.url);
    std::fs::write(&config, text).expect("config");
    multi_camera(&config, 3);
    let events = dir.path().join("events.jsonl");

    // Three cameras analysing, uploading and packaging at once; stop while
    // events are still arriving (their packages wait for the post-roll).
    // Frames letterboxed on the ingest threads, as on a GPU box.
    let child = run_until_events(
        &config,
        &events,
        &["--upload-drain-s", "20", "--prepare-ahead"],
        2,
    );
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc_kill(child.id() as i32, 15) }, 0);
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fired: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON lines"))
        .collect();
    assert!(
        fired.len() >= 2,
        "too few events before the stop:\n{stdout}"
    );

    // Every event has a signed package, delivered or waiting in the spool.
    let delivered = spooled(dir.path(), "delivered");
    let pending = spooled(dir.path(), "pending");
    assert_eq!(
        delivered.len() + pending.len(),
        fired.len(),
        "delivered {delivered:?}, pending {pending:?}\n{stdout}"
    );
    // Each camera's chain verifies, delivered and pending together.
    let mut by_camera: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for p in delivered.iter().chain(&pending) {
        let camera = p
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .expect("camera folder");
        by_camera.entry(camera).or_default().push(p.clone());
    }
    for (camera, mut packages) in by_camera {
        packages.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
        let verified = vigil()
            .arg("verify")
            .args(&packages)
            .arg("--pubkey")
            .arg(dir.path().join("device.key.pub"))
            .output()
            .expect("verify runs");
        assert!(
            verified.status.success(),
            "{camera}: {}",
            String::from_utf8_lossy(&verified.stdout)
        );
    }
    let (stored, alerts) = case.holdings();
    assert_eq!(stored as usize, delivered.len(), "{alerts:?}");

    // A restart delivers what the stop left pending; the case system then
    // holds one package per event, with no gap or chain alert.
    let out = vigil()
        .args(["run", "--config"])
        .arg(&config)
        .args(["--max-frames", "1", "--upload-drain-s", "30"])
        .output()
        .expect("vigil runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (stored, alerts) = case.holdings();
    assert_eq!(stored as usize, fired.len(), "{alerts:?}");
    assert!(spooled(dir.path(), "pending").is_empty());
    assert!(alerts.is_empty(), "{alerts:?}");
    let audit = vigil()
        .args(["case", "audit", "verify", "--db", &case.db, "--media"])
        .arg(&case.media)
        .output()
        .expect("audit verify runs");
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
}

/// `vigil run` on the first 120 frames of each camera, events to `events`,
/// with info logs (the detector's input is logged).
fn run_120_frames(config: &Path, events: &Path) -> std::process::Output {
    vigil()
        .args(["run", "--config"])
        .arg(config)
        .arg("--events-out")
        .arg(events)
        .args(["--max-frames", "120", "--upload-drain-s", "0"])
        .env("RUST_LOG", "info")
        .output()
        .expect("vigil runs")
}

#[test]
fn frames_batched_across_cameras_give_the_events_of_one_frame_at_a_time() {
    // The same two-camera site, the detector taking one image a run or both
    // cameras' frames together (the pinned YOLOv8n made batch-dynamic in
    // memory): every camera's events must be the same, track for track.
    let mut runs = Vec::new();
    for max_batch in [1, 2] {
        let dir = tempfile::tempdir().expect("tmp");
        let config = red_early_config_to(dir.path(), "http://127.0.0.1:9/unused");
        multi_camera(&config, 2);
        let mut site: toml::Table = std::fs::read_to_string(&config)
            .expect("config")
            .parse()
            .expect("TOML");
        site["detector"]
            .as_table_mut()
            .expect("[detector]")
            .insert("max_batch".into(), max_batch.into());
        std::fs::write(&config, toml::to_string(&site).expect("TOML")).expect("config");
        let events = dir.path().join("events.jsonl");
        let out = run_120_frames(&config, &events);
        assert!(
            out.status.success(),
            "max_batch {max_batch}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut fired: Vec<(String, u64, String, String)> = std::fs::read_to_string(&events)
            .expect("events")
            .lines()
            .map(|l| {
                let r: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                (
                    r["camera"].as_str().unwrap_or_default().to_owned(),
                    r["track_id"].as_u64().unwrap_or_default(),
                    format!("{:.4}", r["t_stop_line"].as_f64().unwrap_or(f64::NAN)),
                    r["bbox_at_stop_line"].to_string(),
                )
            })
            .collect();
        fired.sort();
        runs.push(fired);
    }
    assert!(!runs[0].is_empty(), "no red-light run in 4 s of red");
    assert_eq!(runs[0], runs[1], "batched frames changed the events");
    // Both cameras play the same clip, so they see the same runs.
    let camera = |c: &str| -> Vec<_> {
        runs[1]
            .iter()
            .filter(|e| e.0 == c)
            .map(|e| (e.1, e.2.clone(), e.3.clone()))
            .collect()
    };
    assert_eq!(camera("footbridge"), camera("footbridge-2"));
}

#[test]
fn a_detect_region_limits_detection_to_the_approach_and_keeps_frame_pixels() {
    // The demo camera looks only at its approach (the left carriageway,
    // from y = 300 down): the red-light runs still fire, and their boxes
    // are in frame pixels inside the region; without the region's offset
    // they would sit 300 px higher, above the stop line.
    let dir = tempfile::tempdir().expect("tmp");
    let config = red_early_config_to(dir.path(), "http://127.0.0.1:9/unused");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        text.contains("detect_region = [0, 300, 560, 240]"),
        "the demo's detect region moved"
    );
    let events = dir.path().join("events.jsonl");
    let out = run_120_frames(&config, &events);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("detector input 640x288"),
        "the input is fitted to the 560x240 region: {stderr}"
    );
    let boxes: Vec<Vec<f64>> = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .filter_map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            // Red-light runs; other records have no stop-line box.
            serde_json::from_value(r["bbox_at_stop_line"].clone()).ok()
        })
        .collect();
    assert!(
        !boxes.is_empty(),
        "no red-light run seen through the region"
    );
    for b in &boxes {
        let (cx, bottom) = (b[0] + b[2] / 2.0, b[1] + b[3]);
        assert!(
            (0.0..=560.0).contains(&cx) && (300.0..=541.0).contains(&bottom) && b[1] >= 299.0,
            "box {b:?} outside the region"
        );
        assert!(bottom > 400.0, "box {b:?} is not at the stop line (y 411)");
    }
}
