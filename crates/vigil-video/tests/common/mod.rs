//! Shared helpers: inputs made with the real `ffmpeg` command, and draining
//! an ingest until it ends.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_core::config::Pacing;
use vigil_video::{CameraIngest, FrameMeta, IngestConfig, IngestEvent, SourceKind, SourceSpec};

/// 2026-03-14T07:00:00Z, the `recorded_at` of test files.
pub const T0: i64 = 1_773_471_600_000_000;

/// Runs `ffmpeg -y -v error ARGS`; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-v", "error"])
        .args(args)
        .output()
        .expect("the ffmpeg command is installed (./dev.sh test installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A synthetic clip: `lavfi` source, encoder arguments, output path.
pub fn make_clip(
    dir: &Path,
    name: &str,
    lavfi: &str,
    seconds: f64,
    codec_args: &[&str],
) -> PathBuf {
    let path = dir.join(name);
    let t = seconds.to_string();
    let mut args = vec!["-f", "lavfi", "-i", lavfi, "-t", &t];
    args.extend_from_slice(codec_args);
    let p = path.to_str().expect("utf-8 path");
    args.push(p);
    ffmpeg(&args);
    path
}

pub fn file_spec(camera: &str, path: &Path, pacing: Pacing) -> SourceSpec {
    SourceSpec {
        camera: camera.into(),
        kind: SourceKind::File {
            path: path.to_owned(),
        },
        pacing,
        recorded_at_us: Some(T0),
        io_timeout: Duration::from_secs(5),
    }
}

/// Everything an ingest produced until it ended (or `limit` passed).
pub struct Drained {
    pub frames: Vec<FrameMeta>,
    pub sizes: Vec<(u32, u32)>,
    pub first_rgb: Option<vigil_video::RgbImage>,
    pub events: Vec<IngestEvent>,
}

/// Reads frames as fast as they come until the input ends.
pub fn drain(ingest: &CameraIngest, limit: Duration) -> Drained {
    let deadline = Instant::now() + limit;
    let mut d = Drained {
        frames: Vec::new(),
        sizes: Vec::new(),
        first_rgb: None,
        events: Vec::new(),
    };
    loop {
        while let Ok(e) = ingest.events().try_recv() {
            d.events.push(e);
        }
        let ended = d.events.iter().any(|e| {
            matches!(
                e,
                IngestEvent::EndOfInput { .. } | IngestEvent::Failed { .. }
            )
        });
        match ingest.frames().recv_timeout(Duration::from_millis(50)) {
            Ok(f) => {
                if d.first_rgb.is_none() {
                    d.first_rgb = f.rgb.as_deref().cloned();
                }
                d.sizes.push((f.width, f.height));
                d.frames.push(f.meta);
            }
            Err(_) if ended => break,
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "ingest did not end within {limit:?}"
        );
    }
    d
}

/// A queue deep enough that a test's own pace never costs frames.
pub fn lossless() -> IngestConfig {
    IngestConfig {
        queue_capacity: 100_000,
        ..IngestConfig::default()
    }
}

pub fn run_file(path: &Path) -> Drained {
    let ingest = CameraIngest::spawn(file_spec("test", path, Pacing::Fast), lossless());
    drain(&ingest, Duration::from_secs(60))
}
