//! RTSP against a real server: GStreamer's RTSP server, started by the test
//! (tests/support/rtsp_server.py, run with Debian's /usr/bin/python3).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use vigil_core::config::{Pacing, RtspTransport};
use vigil_video::{Backoff, CameraIngest, IngestConfig, IngestEvent, SourceKind, SourceSpec};

struct RtspServer {
    child: Child,
    url: String,
    port: u16,
}

impl RtspServer {
    /// Starts the server (port 0 = any free port) and waits for its READY line.
    fn start(port: u16, extra: &[&str]) -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/support/rtsp_server.py");
        let port_arg = port.to_string();
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args([
                "--port", &port_arg, "--path", "/cam", "--fps", "25", "--gop", "25",
            ])
            .args(["--die-with-parent", "--max-seconds", "120"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the RTSP test server (./dev.sh test installs GStreamer's RTSP server)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("READY ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("RTSP server not ready: {:?}", child.try_wait()));
        let port = url
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("port in READY url");
        Self { child, url, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rtsp_spec(camera: &str, url: &str, transport: RtspTransport) -> SourceSpec {
    SourceSpec {
        camera: camera.into(),
        kind: SourceKind::Rtsp {
            url: url.into(),
            transport,
        },
        pacing: Pacing::Realtime,
        recorded_at_us: None,
        io_timeout: Duration::from_secs(3),
    }
}

fn wait_event(
    ingest: &CameraIngest,
    limit: Duration,
    pred: impl Fn(&IngestEvent) -> bool,
) -> IngestEvent {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        if let Ok(e) = ingest.events().recv_timeout(Duration::from_millis(50)) {
            if pred(&e) {
                return e;
            }
            seen.push(e);
        }
        assert!(
            Instant::now() < deadline,
            "no matching event within {limit:?}; saw {seen:?}"
        );
    }
}

/// Collects frames for `span`.
fn frames_for(ingest: &CameraIngest, span: Duration) -> Vec<vigil_video::Frame> {
    let deadline = Instant::now() + span;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if let Ok(f) = ingest.frames().recv_timeout(Duration::from_millis(20)) {
            out.push(f);
        }
    }
    out
}

#[test]
fn rtsp_over_tcp_streams_survives_a_server_restart_and_records_the_gap() {
    let mut server = RtspServer::start(0, &[]);
    let backoff = Backoff {
        initial: Duration::from_millis(250),
        max: Duration::from_secs(1),
        jitter: 0.2,
    };
    let ingest = CameraIngest::spawn(
        rtsp_spec("north", &server.url, RtspTransport::Tcp),
        IngestConfig {
            backoff,
            ..lossless()
        },
    );
    wait_event(&ingest, Duration::from_secs(20), |e| {
        matches!(e, IngestEvent::Connected { .. })
    });
    let before = frames_for(&ingest, Duration::from_secs(2));
    assert!(
        before.len() >= 35,
        "{} frames in 2 s at 25 fps",
        before.len()
    );
    assert!(before.iter().all(|f| (f.width, f.height) == (640, 360)));
    assert!(before
        .windows(2)
        .all(|w| w[1].meta.seq == w[0].meta.seq + 1));
    let pts: Vec<i64> = before.iter().map(|f| f.meta.pts_us).collect();
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "{pts:?}");
    // PTS steps of 40 ms: timestamps come from the stream, not from arrival.
    // (The server's forced keyframe for a joining client may repeat the first timestamp.)
    let steps: Vec<i64> = before
        .windows(2)
        .skip(2)
        .map(|w| w[1].meta.pts_us - w[0].meta.pts_us)
        .collect();
    assert!(
        steps.iter().all(|s| (s - 40_000).abs() <= 2_000),
        "{steps:?}"
    );

    // The ring holds the camera's packets: cut a clip from them.
    let dir = tempfile::tempdir().expect("tmp");
    let last = before.last().expect("frames").meta.time_us;
    let clip = ingest
        .clip(last - 1_500_000, last, &dir.path().join("rtsp.mp4"))
        .expect("clip");
    assert!(clip.packets >= 25, "{clip:?}");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_format"])
        .arg(&clip.path)
        .output()
        .expect("ffprobe");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let port = server.port;
    server.kill();
    let IngestEvent::Disconnected { reason, .. } =
        wait_event(&ingest, Duration::from_secs(15), |e| {
            matches!(e, IngestEvent::Disconnected { .. })
        })
    else {
        unreachable!()
    };
    assert!(!reason.is_empty());
    std::thread::sleep(Duration::from_secs(2));
    let _server = RtspServer::start(port, &[]);
    let restarted = Instant::now();
    let IngestEvent::Gap(gap) = wait_event(&ingest, Duration::from_secs(20), |e| {
        matches!(e, IngestEvent::Gap(_))
    }) else {
        unreachable!()
    };
    let resumed = restarted.elapsed();
    assert!(
        resumed <= backoff.bound() + Duration::from_secs(3),
        "frames resumed {resumed:?} after the restart; backoff bound {:?}",
        backoff.bound()
    );
    assert!(gap.end_us - gap.start_us >= 2_000_000, "{gap:?}");
    let after = frames_for(&ingest, Duration::from_secs(1));
    assert!(
        after.len() >= 15,
        "{} frames after reconnecting",
        after.len()
    );
    let last_before = before.last().expect("frames").meta.seq;
    assert!(after[0].meta.seq > last_before, "sequence continues");
    assert!(
        after[0].meta.pts_us > before.last().expect("frames").meta.pts_us,
        "PTS continues"
    );
    let stats = ingest.stats();
    assert_eq!(stats.gaps, vec![gap]);
    assert!(stats.ring.segments >= 1);
}

#[test]
fn rtsp_over_udp_streams() {
    let server = RtspServer::start(0, &[]);
    let ingest = CameraIngest::spawn(
        rtsp_spec("south", &server.url, RtspTransport::Udp),
        lossless(),
    );
    wait_event(&ingest, Duration::from_secs(20), |e| {
        matches!(e, IngestEvent::Connected { .. })
    });
    let frames = frames_for(&ingest, Duration::from_secs(2));
    assert!(
        frames.len() >= 35,
        "{} frames in 2 s over UDP",
        frames.len()
    );
}

#[test]
fn rtsp_credentials_from_the_environment_are_used_and_never_shown() {
    let server = RtspServer::start(0, &["--user", "vigil", "--password", "s3cr3t:pw"]);
    let camera = vigil_core::config::Camera {
        source: vigil_core::config::Source::Rtsp {
            url: server.url.clone(),
            transport: RtspTransport::Tcp,
            username: Some("vigil".into()),
            password_env: Some("VIGIL_TEST_RTSP_PASSWORD".into()),
        },
        frame_size: [640, 360],
        fps: None,
        homography: None,
        detect_region: None,
    };
    // Missing secret: refused before connecting, naming the variable.
    let err = SourceSpec::from_config("east", &camera, std::path::Path::new("."))
        .expect_err("no secret yet");
    assert!(
        err.to_string().contains("VIGIL_TEST_RTSP_PASSWORD"),
        "{err}"
    );

    std::env::set_var("VIGIL_TEST_RTSP_PASSWORD", "s3cr3t:pw");
    let spec = SourceSpec::from_config("east", &camera, std::path::Path::new(".")).expect("spec");
    assert!(
        !spec.display_name().contains("s3cr3t"),
        "{}",
        spec.display_name()
    );
    let ingest = CameraIngest::spawn(spec.clone(), lossless());
    wait_event(&ingest, Duration::from_secs(20), |e| {
        matches!(e, IngestEvent::Connected { .. })
    });
    assert!(!frames_for(&ingest, Duration::from_secs(1)).is_empty());

    // A wrong password is a reported, retried failure, with the password hidden.
    let mut wrong = spec;
    if let SourceKind::Rtsp { url, .. } = &mut wrong.kind {
        *url = url.replace("s3cr3t%3Apw", "wrong");
    }
    let bad = CameraIngest::spawn(wrong, lossless());
    let IngestEvent::Disconnected { reason, .. } = wait_event(&bad, Duration::from_secs(20), |e| {
        matches!(e, IngestEvent::Disconnected { .. })
    }) else {
        unreachable!()
    };
    assert!(reason.contains("camera east"), "{reason}");
    assert!(
        reason.contains("401") || reason.to_lowercase().contains("unauthorized"),
        "{reason}"
    );
    assert!(!reason.contains("wrong"), "{reason}");
}
