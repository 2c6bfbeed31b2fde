//! File sources: codecs, frame counts, timestamps, pacing, bad input.

mod common;

use std::time::{Duration, Instant};

use common::*;
use vigil_core::config::Pacing;
use vigil_video::{CameraIngest, IngestConfig, IngestEvent};

fn assert_steady(frames: &[vigil_video::FrameMeta], count: usize, step_us: i64) {
    assert_eq!(frames.len(), count, "frame count");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.seq, i as u64, "sequence numbers are gap-free");
        let expected = i as i64 * step_us;
        assert!(
            (f.pts_us - expected).abs() <= 1_000,
            "frame {i}: pts {} != {expected}",
            f.pts_us
        );
        assert_eq!(f.time_us, T0 + f.pts_us, "replay time = recorded_at + pts");
    }
}

fn ended_with(d: &Drained, frames: u64) {
    assert!(
        d.events.contains(&IngestEvent::EndOfInput { frames }),
        "expected a clean end after {frames} frames: {:?}",
        d.events
    );
}

#[test]
fn h264_720p_with_b_frames_decodes_every_frame_in_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(
        dir.path(),
        "h264-720p.mp4",
        "testsrc2=size=1280x720:rate=25",
        4.0,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "2",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let d = run_file(&clip);
    assert_steady(&d.frames, 100, 40_000);
    assert!(d.sizes.iter().all(|s| *s == (1280, 720)));
    ended_with(&d, 100);
}

#[test]
fn h264_1080p_frames_arrive_at_full_resolution_in_rgb() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(
        dir.path(),
        "h264-1080p.mp4",
        "color=c=0xFF0000:size=1920x1080:rate=25",
        2.0,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let d = run_file(&clip);
    assert_steady(&d.frames, 50, 40_000);
    let rgb = d.first_rgb.expect("RGB frames");
    assert_eq!((rgb.width, rgb.height), (1920, 1080));
    assert_eq!(rgb.data.len(), 1920 * 1080 * 3);
    let [r, g, b] = rgb.pixel(960, 540).expect("centre pixel");
    assert!(
        r > 230 && g < 30 && b < 30,
        "pure red came out as {r},{g},{b}"
    );
}

#[test]
fn h265_in_matroska_decodes() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(
        dir.path(),
        "h265.mkv",
        "testsrc2=size=1280x720:rate=30",
        2.0,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let d = run_file(&clip);
    assert_steady(&d.frames, 60, 33_333);
    ended_with(&d, 60);
}

#[test]
fn mjpeg_in_avi_decodes() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(
        dir.path(),
        "mjpeg.avi",
        "testsrc2=size=640x480:rate=10",
        3.0,
        &["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"],
    );
    let d = run_file(&clip);
    assert_steady(&d.frames, 30, 100_000);
}

#[test]
fn variable_frame_rate_keeps_each_frames_own_timestamp() {
    let dir = tempfile::tempdir().expect("tmp");
    // 10 frames 40 ms apart, then 10 frames 100 ms apart.
    let clip = make_clip(
        dir.path(),
        "vfr.mkv",
        "testsrc2=size=640x360:rate=25",
        5.0,
        &[
            "-frames:v",
            "20",
            "-vf",
            "settb=1/1000,setpts='if(lt(N,10),N*0.04,0.4+(N-10)*0.1)/TB'",
            "-fps_mode",
            "vfr",
            "-enc_time_base",
            "1:1000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let d = run_file(&clip);
    assert_eq!(d.frames.len(), 20);
    let deltas: Vec<i64> = d
        .frames
        .windows(2)
        .map(|w| w[1].pts_us - w[0].pts_us)
        .collect();
    assert!(
        deltas[..9].iter().all(|&x| (x - 40_000).abs() <= 1_000),
        "{deltas:?}"
    );
    assert!(
        deltas[10..].iter().all(|&x| (x - 100_000).abs() <= 1_000),
        "{deltas:?}"
    );
}

#[test]
fn realtime_pacing_plays_at_the_recorded_rate_and_fast_does_not_wait() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(
        dir.path(),
        "paced.mp4",
        "testsrc2=size=320x240:rate=25",
        1.5,
        &["-c:v", "libx264", "-preset", "ultrafast"],
    );
    let start = Instant::now();
    let ingest = CameraIngest::spawn(file_spec("paced", &clip, Pacing::Realtime), lossless());
    let d = drain(&ingest, Duration::from_secs(30));
    let paced = start.elapsed();
    assert_eq!(d.frames.len(), 38);
    // The last frame is shown at 1.48 s; pacing may be late, never early.
    assert!(
        paced >= Duration::from_millis(1_400),
        "paced replay took only {paced:?}"
    );
}

#[test]
fn a_slow_consumer_loses_detection_frames_not_packets() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(
        dir.path(),
        "slow.mp4",
        "testsrc2=size=640x360:rate=25",
        8.0,
        &["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"],
    );
    let config = IngestConfig {
        queue_capacity: 2,
        ..IngestConfig::default()
    };
    let ingest = CameraIngest::spawn(file_spec("slow", &clip, Pacing::Fast), config);
    // Consume nothing until the input has ended.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ingest
        .events()
        .try_iter()
        .any(|e| matches!(e, IngestEvent::EndOfInput { .. }))
    {
        assert!(Instant::now() < deadline, "ingest did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = ingest.stats();
    assert_eq!(stats.frames_decoded, 200);
    assert_eq!(stats.frames_delivered, 200, "every frame is offered");
    assert_eq!(
        stats.frames_dropped, 198,
        "all but the queue's 2 were replaced"
    );
    let waiting: Vec<u64> = ingest.frames().try_iter().map(|f| f.meta.seq).collect();
    assert_eq!(waiting, vec![198, 199], "the newest frames win");
    // The ring still holds the last 5 s (from a keyframe) of packets.
    let span = stats.ring.newest_us.expect("newest") - stats.ring.oldest_us.expect("oldest");
    assert!((5_000_000..6_000_000).contains(&span), "ring span {span}");
    assert_eq!(stats.ring.packets, 150, "6 GOPs of 25 packets");
}

#[test]
fn a_missing_file_fails_naming_the_camera_and_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("nope.mp4");
    let d = run_file(&path);
    let Some(IngestEvent::Failed { error }) = d.events.last() else {
        panic!("expected a failure: {:?}", d.events);
    };
    assert!(error.contains("camera test"), "{error}");
    assert!(error.contains("nope.mp4"), "{error}");
    assert!(error.contains("no such file"), "{error}");
}

#[test]
fn garbage_and_truncated_files_fail_or_end_cleanly_while_others_run_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = make_clip(
        dir.path(),
        "good.mp4",
        "testsrc2=size=640x360:rate=25",
        3.0,
        &["-c:v", "libx264", "-preset", "ultrafast"],
    );
    // moov atom at the end, cut away: unreadable.
    let bytes = std::fs::read(&good).expect("read");
    let no_moov = dir.path().join("truncated.mp4");
    std::fs::write(&no_moov, &bytes[..bytes.len() / 2]).expect("write");
    // MPEG-TS cut mid-stream: the first half is still video.
    let ts = make_clip(
        dir.path(),
        "full.ts",
        "testsrc2=size=640x360:rate=25",
        4.0,
        &["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"],
    );
    let ts_bytes = std::fs::read(&ts).expect("read");
    let cut_ts = dir.path().join("cut.ts");
    std::fs::write(&cut_ts, &ts_bytes[..ts_bytes.len() / 2 + 77]).expect("write");
    let garbage = dir.path().join("garbage.mp4");
    std::fs::write(
        &garbage,
        (0..200_000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .expect("write");

    let cams: Vec<CameraIngest> = [
        ("good", &good),
        ("no-moov", &no_moov),
        ("cut-ts", &cut_ts),
        ("garbage", &garbage),
    ]
    .iter()
    .map(|(name, path)| CameraIngest::spawn(file_spec(name, path, Pacing::Fast), lossless()))
    .collect();
    let results: Vec<Drained> = cams
        .iter()
        .map(|c| drain(c, Duration::from_secs(60)))
        .collect();

    assert_eq!(results[0].frames.len(), 75, "the good camera is unaffected");
    for (i, name) in [(1, "no-moov"), (3, "garbage")] {
        let Some(IngestEvent::Failed { error }) = results[i].events.last() else {
            panic!("{name}: expected a failure, got {:?}", results[i].events);
        };
        assert!(error.contains(&format!("camera {name}")), "{error}");
        assert!(error.contains("cannot open"), "{error}");
    }
    let cut = &results[2];
    assert!(
        cut.frames.len() >= 40 && cut.frames.len() < 100,
        "cut TS gave {} frames",
        cut.frames.len()
    );
    assert!(
        matches!(cut.events.last(), Some(IngestEvent::EndOfInput { .. })),
        "{:?}",
        cut.events
    );
}

#[test]
fn an_image_glob_plays_as_a_stream() {
    let dir = tempfile::tempdir().expect("tmp");
    let pattern = dir.path().join("img-%03d.jpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=5",
        "-frames:v",
        "12",
        pattern.to_str().expect("utf-8"),
    ]);
    let spec = vigil_video::SourceSpec {
        camera: "stills".into(),
        kind: vigil_video::SourceKind::Images {
            glob: dir.path().join("img-*.jpg").display().to_string(),
            fps_num: 5,
            fps_den: 1,
        },
        pacing: Pacing::Fast,
        recorded_at_us: Some(T0),
        io_timeout: Duration::from_secs(5),
    };
    let ingest = CameraIngest::spawn(spec, lossless());
    let d = drain(&ingest, Duration::from_secs(30));
    assert_steady(&d.frames, 12, 200_000);
}

#[test]
fn a_lossless_replay_waits_for_a_slow_consumer_instead_of_dropping() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = make_clip(
        dir.path(),
        "slow-consumer.mp4",
        "testsrc2=size=320x240:rate=25",
        2.0,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let config = IngestConfig {
        queue_capacity: 2,
        lossless: true,
        ..IngestConfig::default()
    };
    let ingest = CameraIngest::spawn(file_spec("slow", &clip, Pacing::Fast), config);
    let mut frames = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match ingest.frames().recv_timeout(Duration::from_millis(500)) {
            Ok(_) => {
                frames += 1;
                // Much slower than decoding: a lossy queue of 2 would drop most.
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => {
                if ingest
                    .events()
                    .try_iter()
                    .any(|e| matches!(e, IngestEvent::EndOfInput { .. }))
                {
                    break;
                }
            }
        }
    }
    assert_eq!(frames, 50);
    assert_eq!(ingest.stats().frames_dropped, 0);
}
