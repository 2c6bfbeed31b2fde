//! Decode throughput measured through the real ingest path (`vigil bench decode`).

use std::path::Path;
use std::time::{Duration, Instant};

use vigil_core::config::Pacing;

use crate::{
    CameraIngest, IngestConfig, IngestEvent, RingConfig, SourceKind, SourceSpec, VideoError,
};

/// One measured run over `streams` simultaneous copies of a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeRun {
    pub streams: usize,
    /// Frames decoded over all streams.
    pub frames: u64,
    pub seconds: f64,
    /// Aggregate frames per second.
    pub fps: f64,
    /// Frames the consumer could not take in time (should be 0).
    pub dropped: u64,
    /// Largest packet-ring size seen on any stream at the end, in bytes.
    pub ring_bytes: usize,
}

/// Ingests `streams` copies of `path` as fast as they decode, with a
/// consumer per stream that takes every frame, and times the whole run.
pub fn measure_decode(
    path: &Path,
    streams: usize,
    convert_rgb: bool,
    ring: RingConfig,
) -> Result<DecodeRun, VideoError> {
    let streams = streams.max(1);
    let config = IngestConfig {
        ring,
        convert_rgb,
        // Share the cores between streams the way a multi-camera edge would.
        decode_threads: if streams == 1 { 0 } else { 1 },
        ..IngestConfig::default()
    };
    let start = Instant::now();
    let cams: Vec<CameraIngest> = (0..streams)
        .map(|i| {
            let spec = SourceSpec {
                camera: format!("bench-{i}"),
                kind: SourceKind::File {
                    path: path.to_owned(),
                },
                pacing: Pacing::Fast,
                recorded_at_us: None,
                io_timeout: Duration::from_secs(5),
            };
            CameraIngest::spawn(spec, config)
        })
        .collect();
    let mut failures = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = cams
            .iter()
            .map(|cam| {
                scope.spawn(move || loop {
                    // Take every frame; stop once the input has ended and the queue is empty.
                    if cam.frames().recv_timeout(Duration::from_millis(20)).is_ok() {
                        continue;
                    }
                    let mut end = None;
                    for e in cam.events().try_iter() {
                        match e {
                            IngestEvent::EndOfInput { .. } => end = Some(Ok(())),
                            IngestEvent::Failed { error } => end = Some(Err(error)),
                            _ => {}
                        }
                    }
                    if let Some(end) = end {
                        while cam.frames().try_recv().is_ok() {}
                        return end;
                    }
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(_) => failures.push("a consumer thread panicked".into()),
            }
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    if let Some(error) = failures.into_iter().next() {
        return Err(VideoError::Read {
            source_name: path.display().to_string(),
            message: error,
        });
    }
    let stats: Vec<_> = cams.iter().map(CameraIngest::stats).collect();
    let frames = stats.iter().map(|s| s.frames_decoded).sum();
    Ok(DecodeRun {
        streams,
        frames,
        seconds,
        fps: frames as f64 / seconds.max(1e-9),
        dropped: stats.iter().map(|s| s.frames_dropped).sum(),
        ring_bytes: stats.iter().map(|s| s.ring.bytes).max().unwrap_or(0),
    })
}

/// What a video file holds, for labelling benchmark results.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeInfo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub bit_rate: i64,
}

/// Reads a file's video stream parameters.
pub fn probe(path: &Path) -> Result<ProbeInfo, VideoError> {
    crate::init();
    let open_err = |message: String| VideoError::Open {
        source_name: path.display().to_string(),
        message,
    };
    let text = path
        .to_str()
        .filter(|s| !s.contains('\0'))
        .ok_or_else(|| open_err("the path is not valid UTF-8".into()))?;
    let input = ffmpeg_next::format::input(text).map_err(|e| open_err(e.to_string()))?;
    let stream = input
        .streams()
        .best(ffmpeg_next::media::Type::Video)
        .ok_or_else(|| VideoError::NoVideoStream {
            source_name: path.display().to_string(),
        })?;
    let params = stream.parameters();
    let rate = stream.avg_frame_rate();
    let fps = if rate.denominator() != 0 {
        f64::from(rate.numerator()) / f64::from(rate.denominator())
    } else {
        0.0
    };
    // SAFETY: `params` wraps a valid AVCodecParameters owned by the stream.
    let (width, height) = unsafe {
        let p = params.as_ptr();
        (
            u32::try_from((*p).width).unwrap_or(0),
            u32::try_from((*p).height).unwrap_or(0),
        )
    };
    Ok(ProbeInfo {
        codec: params.id().name().to_owned(),
        width,
        height,
        fps,
        bit_rate: input.bit_rate(),
    })
}
