//! Evidence clips and stills cut from the packet ring.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use ffmpeg_next as ffmpeg;
use vigil_core::config::Pacing;
use vigil_video::{CameraIngest, IngestConfig, RingConfig};

/// Keeps every packet of a short test file.
fn keep_all() -> IngestConfig {
    IngestConfig {
        ring: RingConfig {
            pre_roll: Duration::from_secs(60),
            max_bytes: 256 << 20,
        },
        ..lossless()
    }
}

/// (keyframe?, bytes) of every video packet, in decode order.
fn packets(path: &Path) -> Vec<(bool, Vec<u8>)> {
    vigil_video::init();
    let mut input = ffmpeg::format::input(path).expect("open for packets");
    let index = input
        .streams()
        .best(ffmpeg::media::Type::Video)
        .expect("video")
        .index();
    input
        .packets()
        .filter(|(s, _)| s.index() == index)
        .map(|(_, p)| (p.is_key(), p.data().unwrap_or_default().to_vec()))
        .collect()
}

fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe rejects the clip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

fn ingest_whole(path: &Path) -> CameraIngest {
    let ingest = CameraIngest::spawn(file_spec("clip", path, Pacing::Fast), keep_all());
    drain(&ingest, Duration::from_secs(60));
    ingest
}

#[test]
fn a_clip_is_valid_mp4_within_a_gop_of_the_request_with_the_sources_own_packets() {
    let dir = tempfile::tempdir().expect("tmp");
    let source = make_clip(
        dir.path(),
        "source.mp4",
        "testsrc2=size=1280x720:rate=25",
        10.0,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p",
        ],
    );
    let ingest = ingest_whole(&source);
    let out = dir.path().join("event.mp4");
    let (from, to) = (T0 + 3_300_000, T0 + 6_600_000);
    let info = ingest.clip(from, to, &out).expect("clip");
    assert_eq!(
        info.start_us,
        T0 + 3_000_000,
        "starts at the keyframe before the request"
    );
    assert!(
        info.end_us >= to && info.end_us < to + 1_000_000,
        "{info:?}"
    );
    assert_eq!(info.codec, "h264");

    let duration = ffprobe_duration(&out);
    let requested = (to - from) as f64 / 1e6;
    assert!(
        (duration - requested).abs() <= 1.0,
        "clip lasts {duration}s for a {requested}s request"
    );

    let src = packets(&source);
    let clip = packets(&out);
    assert_eq!(clip.len(), info.packets);
    assert!(clip[0].0, "the clip opens on a keyframe");
    let start = src
        .iter()
        .position(|p| p.1 == clip[0].1)
        .expect("the clip's first packet is a source packet");
    assert_eq!(start, 75, "the keyframe at 3.0 s is packet 75");
    for (i, (key, bytes)) in clip.iter().enumerate() {
        assert_eq!(
            bytes,
            &src[start + i].1,
            "packet {i} differs from the source"
        );
        assert_eq!(*key, src[start + i].0);
    }
    assert!(!out.with_extension("mp4.partial").exists());
}

#[test]
fn a_clip_outside_the_buffer_is_refused_naming_the_camera() {
    let dir = tempfile::tempdir().expect("tmp");
    let source = make_clip(
        dir.path(),
        "short.mp4",
        "testsrc2=size=320x240:rate=25",
        2.0,
        &["-c:v", "libx264", "-preset", "ultrafast"],
    );
    let ingest = ingest_whole(&source);
    let err = ingest
        .clip(T0 + 30_000_000, T0 + 33_000_000, &dir.path().join("x.mp4"))
        .expect_err("nothing buffered there");
    let text = err.to_string();
    assert!(
        text.starts_with("camera clip: the packet buffer holds"),
        "{text}"
    );
}

#[test]
fn mjpeg_packets_remux_to_mp4_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let source = make_clip(
        dir.path(),
        "mjpeg.avi",
        "testsrc2=size=640x480:rate=10",
        4.0,
        &["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"],
    );
    let ingest = ingest_whole(&source);
    let out = dir.path().join("mjpeg.mp4");
    let info = ingest
        .clip(T0 + 1_000_000, T0 + 2_000_000, &out)
        .expect("clip");
    assert_eq!(info.packets, 11);
    let duration = ffprobe_duration(&out);
    assert!((duration - 1.1).abs() < 0.15, "{duration}");
    let src = packets(&source);
    let clip = packets(&out);
    assert_eq!(
        clip.iter().map(|p| &p.1).collect::<Vec<_>>(),
        src[10..21].iter().map(|p| &p.1).collect::<Vec<_>>()
    );
}

#[test]
fn a_still_is_the_full_resolution_frame_shown_at_that_instant() {
    let dir = tempfile::tempdir().expect("tmp");
    // Brightness rises with the frame number, so each frame is recognisable.
    let source = make_clip(
        dir.path(),
        "ramp.mp4",
        "color=c=black:size=640x360:rate=25,format=yuv420p,geq=lum='N*2':cb=128:cr=128",
        4.0,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "4",
            "-g",
            "25",
            "-bf",
            "2",
        ],
    );
    let ingest = CameraIngest::spawn(file_spec("still", &source, Pacing::Fast), keep_all());
    let mut rgb_by_seq = Vec::new();
    let d = loop {
        match ingest.frames().recv_timeout(Duration::from_secs(30)) {
            Ok(f) => rgb_by_seq.push(f.rgb.expect("rgb")),
            Err(_) => break rgb_by_seq,
        }
    };
    assert_eq!(d.len(), 100);
    // 10 ms after frame 37 is shown, frame 37 is still on screen.
    let (time, still) = ingest.still(T0 + 37 * 40_000 + 10_000).expect("still");
    assert_eq!(time, T0 + 37 * 40_000);
    assert_eq!((still.width, still.height), (640, 360));
    assert_eq!(still, *d[37], "the still is frame 37 exactly");
    assert_ne!(still, *d[36]);
    // Frame 50 is a keyframe; 49 is the last of the previous GOP.
    assert_eq!(ingest.still(T0 + 50 * 40_000).expect("still").1, *d[50]);
    assert_eq!(ingest.still(T0 + 50 * 40_000 - 1).expect("still").1, *d[49]);
}
