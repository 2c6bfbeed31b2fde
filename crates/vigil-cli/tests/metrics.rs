//! `vigil run --metrics-listen`: Prometheus metrics and health while the
//! real pipeline runs on the demo clip.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_running_site_exposes_its_metrics_and_health() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .env_remove("VIGIL_MANIFEST")
        .env_remove("VIGIL_MODELS_DIR")
        .args([
            "run",
            "--config",
            "configs/demo.toml",
            "--no-evidence",
            "--max-frames",
            "400",
        ])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vigil run starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut addr = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.split("metrics at http://").nth(1) {
            addr = rest.split('/').next().unwrap_or_default().to_owned();
            break;
        }
    }
    // Keep reading, so the run's report is not cut off by a closed pipe.
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    assert!(addr.starts_with("127.0.0.1:"), "metrics address: {addr:?}");

    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        let (status, body) = get(&addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        if value(&body, "vigil_frames_total{camera=\"footbridge\"}").is_some_and(|v| v >= 5.0) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no frames counted in time:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        value(&metrics, "vigil_camera_up{camera=\"footbridge\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_stage_seconds_bucket{") && metrics.contains("stage=\"detect\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_queue_depth{camera=\"footbridge\"}"),
        "{metrics}"
    );
    assert_eq!(
        value(&metrics, "vigil_clock_synced"),
        Some(1.0),
        "a replay counts as synced"
    );
    assert!(metrics.trim_end().ends_with("# EOF"));
    let (status, body) = get(&addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(&addr, "/nope").0, 404);
    // SIGTERM stops it cleanly.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc_kill(child.id() as i32, 15) };
    let status = child.wait().expect("wait");
    let report = drain.join().expect("stdout").join("\n");
    assert!(status.success(), "{status:?}\n{report}");
    assert!(
        report.contains("frames/s"),
        "the run reports at the end:\n{report}"
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
