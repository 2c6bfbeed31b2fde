//! `vigil bench`: throughput measured on this machine, compared in one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_video::bench::{measure_decode, probe};
use vigil_video::RingConfig;

use crate::Verdict;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Decode throughput of ingest against the `ffmpeg` command on the same input.
    ///
    /// Runs, in one process and one sitting: N parallel `ffmpeg -benchmark -i
    /// FILE -f null -` (the reference), Vigil's ingest decoding only, and
    /// Vigil's ingest decoding and converting to RGB, each over N copies of
    /// the file, with a 5 s packet ring per stream. Reports frames/s, their
    /// ratio to ffmpeg, real-time factor and peak memory.
    #[command(
        after_help = "Example:\n  vigil bench decode --input demo/motorway-a40.mp4 --streams 4 --json decode.json"
    )]
    Decode {
        /// The video file to decode.
        #[arg(long)]
        input: PathBuf,
        /// Simultaneous copies of the input, like cameras on one edge box.
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// Write the results as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Packet-ring pre-roll per stream, in seconds.
        #[arg(long, default_value_t = 5.0)]
        pre_roll: f64,
    },
    /// Detector throughput against raw ONNX Runtime inference of the same model.
    ///
    /// Times the full detector (letterbox, inference, decoding, NMS) and the
    /// inference alone on a prepared input, alternating, over the same image;
    /// `vs_raw` = detector frames/s over raw frames/s. With `--config` the
    /// detector is the one `vigil run` builds for that site, on its camera's
    /// detect region: the ratio of what really runs.
    #[command(
        after_help = "Example:\n  vigil bench detect --input tests/fixtures/detector/motorway-300.png --json detect.json\n\nExample, the demo site's detector on its camera's detect region:\n  vigil bench detect --input tests/fixtures/detector/motorway-300.png --config configs/demo.toml"
    )]
    Detect(DetectBenchArgs),
}

#[derive(clap::Args)]
pub struct DetectBenchArgs {
    /// A PNG or JPEG frame.
    #[arg(long)]
    input: PathBuf,
    /// Without --config: the detector model of models/manifest.toml, run
    /// on the whole frame at its own square input.
    #[arg(long, default_value = "yolov8n-coco", conflicts_with = "config")]
    model: String,
    #[arg(long, default_value_t = 30)]
    iterations: usize,
    /// Without --config: inference threads.
    #[arg(long, default_value_t = 2, conflicts_with = "config")]
    threads: usize,
    /// cpu, cuda or tensorrt (GPU needs a build with that feature); with
    /// --config, instead of its `[detector] execution_provider`.
    #[arg(long)]
    provider: Option<String>,
    /// A site config: the detector as `vigil run` builds it (model,
    /// threads, input size, fitted input, extra views), on the camera's
    /// detect region of the frame. The frame must have the camera's
    /// configured `frame_size`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// With --config: the camera whose detect region is used (default: the
    /// first in the config).
    #[arg(long, requires = "config")]
    camera: Option<String>,
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(flatten)]
    paths: crate::paths::ModelPaths,
}

#[derive(Serialize)]
struct DetectReport {
    input: String,
    /// The site config whose detector was timed, if any.
    config: Option<String>,
    model: String,
    provider: String,
    threads: usize,
    iterations: usize,
    width: u32,
    height: u32,
    /// The camera's detect region (X, Y, W, H) the detector looked at.
    region: Option<[u32; 4]>,
    /// The model input (width, height) the frame or region was fitted to.
    detector_input: [u32; 2],
    /// Model inputs per frame (the whole frame or region, mirror, tiles).
    views: usize,
    detections: usize,
    /// Letterbox + inference + decoding + NMS, per frame.
    detector_ms: f64,
    /// Inference alone on a prepared input.
    raw_inference_ms: f64,
    detector_fps: f64,
    raw_fps: f64,
    /// detector frames/s over raw inference frames/s (1.0 = no overhead).
    vs_raw: f64,
}

#[derive(Serialize)]
struct DecodeReport {
    input: String,
    codec: String,
    width: u32,
    height: u32,
    source_fps: f64,
    bit_rate: i64,
    streams: usize,
    frames_per_pass: u64,
    decode_fps: f64,
    rgb_fps: f64,
    ffmpeg_fps: f64,
    decode_vs_ffmpeg: f64,
    rgb_vs_ffmpeg: f64,
    /// RGB frames/s over what the streams need to play in real time.
    realtime_factor: f64,
    baseline_rss_mb: f64,
    peak_rss_mb: f64,
    /// (peak - baseline) / streams: ingest memory per camera.
    rss_per_stream_mb: f64,
    ring_mb_per_stream: f64,
    cpu_cores: usize,
}

/// `vigil bench`: the whole pipeline with `--input`, or one part of it
/// with a subcommand.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    pipeline: crate::bench_pipeline::PipelineBenchArgs,
}

pub fn run_args(args: BenchArgs) -> anyhow::Result<Verdict> {
    match args.command {
        Some(cmd) => run(cmd),
        None => crate::bench_pipeline::run(&args.pipeline),
    }
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<Verdict> {
    match cmd {
        BenchCommand::Decode {
            input,
            streams,
            json,
            pre_roll,
        } => decode(&input, streams, json.as_deref(), pre_roll),
        BenchCommand::Detect(args) => detect(&args),
    }
}

fn detect(args: &DetectBenchArgs) -> anyhow::Result<Verdict> {
    use vigil_core::config::ExecutionProvider;
    use vigil_infer::detector::{Detector, DetectorConfig};
    use vigil_infer::runtime::SessionOptions;

    let provider: Option<ExecutionProvider> = args
        .provider
        .as_deref()
        .map(crate::models::parse_provider)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let iterations = args.iterations.max(1);
    let image = crate::models::load_image(&args.input)?;
    let (mut detector, model, threads, region) = match &args.config {
        Some(path) => {
            let provider = provider.unwrap_or_else(|| crate::models::site_provider(path));
            let models = crate::models::Models::load_for(&args.paths, provider)?;
            let (mut config, _) = crate::run_cmd::load_site(path, &models)?;
            config.detector.execution_provider = provider;
            let (name, camera) = match &args.camera {
                Some(name) => config
                    .cameras
                    .get_key_value(name)
                    .with_context(|| format!("{}: no camera {name:?}", path.display()))?,
                None => config
                    .cameras
                    .iter()
                    .next()
                    .with_context(|| format!("{}: no cameras", path.display()))?,
            };
            let [fw, fh] = camera.frame_size;
            if (image.width, image.height) != (fw, fh) {
                bail!(
                    "{} is {}x{}, but camera {name:?} of {} has frame_size {fw}x{fh}: give a frame of that camera",
                    args.input.display(),
                    image.width,
                    image.height,
                    path.display()
                );
            }
            let region = camera.detect_region_px();
            let detector = crate::run_cmd::open_detector(&models, &config)?;
            (
                detector,
                config.detector.model.clone(),
                config.detector.threads,
                region,
            )
        }
        None => {
            let provider = provider.unwrap_or_default();
            let models = crate::models::Models::load_for(&args.paths, provider)?;
            let entry = models
                .manifest
                .model(&args.model)
                .with_context(|| format!("no model {:?}", args.model))?;
            let options = SessionOptions {
                threads: args.threads,
                provider,
                ..SessionOptions::default()
            };
            let detector = Detector::new(
                models.open(&args.model, options)?,
                entry.labels.clone(),
                &std::collections::BTreeMap::new(),
                DetectorConfig::default(),
            )?;
            (detector, args.model.clone(), args.threads, None)
        }
    };
    let used = format!("{:?}", detector.model().provider()).to_lowercase();
    // The raw floor runs the model on this frame's prepared views as they
    // are; the full path prepares them anew every time, as a run does.
    let prepared = detector.prepare_region(&image, region);
    // Warm up both paths (first runs allocate and plan).
    let frame = detector.prepare_region(&image, region);
    let detections = detector.detect_prepared_raw(frame)?.len();
    detector.infer_prepared_only(&prepared)?;
    let bar = ProgressBar::new(iterations as u64);
    let (mut full, mut raw) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iterations {
        let start = Instant::now();
        let frame = detector.prepare_region(&image, region);
        detector.detect_prepared_raw(frame)?;
        full += start.elapsed();
        let start = Instant::now();
        detector.infer_prepared_only(&prepared)?;
        raw += start.elapsed();
        bar.inc(1);
    }
    bar.finish_and_clear();
    let per = |d: Duration| d.as_secs_f64() * 1e3 / iterations as f64;
    let (input_w, input_h) = detector.input_size();
    let report = DetectReport {
        input: args.input.display().to_string(),
        config: args.config.as_ref().map(|p| p.display().to_string()),
        model,
        provider: used,
        threads,
        iterations,
        width: image.width,
        height: image.height,
        region,
        detector_input: [input_w, input_h],
        views: prepared.view_count(),
        detections,
        detector_ms: per(full),
        raw_inference_ms: per(raw),
        detector_fps: 1e3 / per(full),
        raw_fps: 1e3 / per(raw),
        vs_raw: per(raw) / per(full),
    };
    println!(
        "{} {}x{}{}, {} at {}x{} ({} view{}) on {} ({} threads), {} iterations",
        report.input,
        report.width,
        report.height,
        region.map_or(String::new(), |[x, y, w, h]| format!(
            ", region {x},{y},{w},{h}"
        )),
        report.model,
        input_w,
        input_h,
        report.views,
        if report.views == 1 { "" } else { "s" },
        report.provider,
        threads,
        iterations
    );
    println!(
        "  detector (letterbox + inference + NMS) {:>7.2} ms  {:>6.1} frames/s",
        report.detector_ms, report.detector_fps
    );
    println!(
        "  raw inference                          {:>7.2} ms  {:>6.1} frames/s",
        report.raw_inference_ms, report.raw_fps
    );
    println!("  detector / raw throughput {:.3}", report.vs_raw);
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(Verdict::Passed)
}

fn decode(
    input: &Path,
    streams: usize,
    json: Option<&Path>,
    pre_roll: f64,
) -> anyhow::Result<Verdict> {
    let input = input.to_owned();
    if streams == 0 {
        bail!("--streams must be at least 1");
    }
    if !(pre_roll.is_finite() && pre_roll >= 0.0) {
        bail!("--pre-roll {pre_roll} must be a non-negative number of seconds");
    }
    let info = probe(&input).with_context(|| format!("probing {}", input.display()))?;
    let json = json.map(Path::to_owned);
    let baseline = rss_mb("VmRSS");
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));

    bar.set_message(format!("ffmpeg -benchmark, {streams} stream(s)"));
    let (ffmpeg_frames, ffmpeg_fps) = ffmpeg_reference(&input, streams)?;
    let ring = RingConfig {
        pre_roll: Duration::from_secs_f64(pre_roll),
        ..RingConfig::default()
    };
    bar.set_message("Vigil ingest, decode only");
    let decode = measure_decode(&input, streams, false, ring)?;
    bar.set_message("Vigil ingest, decode + RGB");
    let rgb = measure_decode(&input, streams, true, ring)?;
    bar.finish_and_clear();

    let per_pass = decode.frames / streams as u64;
    if per_pass != ffmpeg_frames / streams as u64 {
        tracing::warn!(
            vigil = per_pass,
            ffmpeg = ffmpeg_frames / streams as u64,
            "frame counts differ"
        );
    }
    let peak = rss_mb("VmHWM");
    let report = DecodeReport {
        input: input.display().to_string(),
        codec: info.codec,
        width: info.width,
        height: info.height,
        source_fps: info.fps,
        bit_rate: info.bit_rate,
        streams,
        frames_per_pass: per_pass,
        decode_fps: decode.fps,
        rgb_fps: rgb.fps,
        ffmpeg_fps,
        decode_vs_ffmpeg: decode.fps / ffmpeg_fps,
        rgb_vs_ffmpeg: rgb.fps / ffmpeg_fps,
        realtime_factor: if info.fps > 0.0 {
            rgb.fps / (info.fps * streams as f64)
        } else {
            0.0
        },
        baseline_rss_mb: baseline,
        peak_rss_mb: peak,
        rss_per_stream_mb: (peak - baseline) / streams as f64,
        ring_mb_per_stream: rgb.ring_bytes.max(decode.ring_bytes) as f64 / 1e6,
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!(
        "{} {}x{} {} @ {:.2} fps, {} stream(s), {} frames each",
        report.input,
        report.width,
        report.height,
        report.codec,
        report.source_fps,
        streams,
        per_pass
    );
    println!("  ffmpeg -f null   {:>8.1} frames/s", report.ffmpeg_fps);
    println!(
        "  vigil decode     {:>8.1} frames/s  ({:.2}x ffmpeg)",
        report.decode_fps, report.decode_vs_ffmpeg
    );
    println!(
        "  vigil decode+RGB {:>8.1} frames/s  ({:.2}x ffmpeg, {:.2}x real time)",
        report.rgb_fps, report.rgb_vs_ffmpeg, report.realtime_factor
    );
    println!(
        "  memory: peak RSS {:.1} MB, {:.1} MB per stream over a {:.1} MB baseline (ring {:.1} MB per stream)",
        report.peak_rss_mb, report.rss_per_stream_mb, report.baseline_rss_mb, report.ring_mb_per_stream
    );
    if let Some(path) = json {
        write_json(&path, &report)?;
    }
    Ok(Verdict::Passed)
}

fn write_json(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("  results written to {}", path.display());
    Ok(())
}

/// Runs `streams` `ffmpeg -benchmark -i FILE -f null -` at once; returns
/// (total frames, aggregate frames/s over the wall time).
fn ffmpeg_reference(input: &Path, streams: usize) -> anyhow::Result<(u64, f64)> {
    let threads = if streams == 1 { "0" } else { "1" };
    let start = Instant::now();
    let children = (0..streams)
        .map(|_| {
            Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-nostdin",
                    "-benchmark",
                    "-threads",
                    threads,
                    "-i",
                ])
                .arg(input)
                .args(["-an", "-f", "null", "-"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("running the ffmpeg command (apt-get install ffmpeg)")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut frames = 0;
    for child in children {
        let out = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!(
                "ffmpeg failed on {}: {}",
                input.display(),
                stderr.lines().last().unwrap_or("")
            );
        }
        frames += last_frame_count(&stderr).context("ffmpeg printed no frame count")?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((frames, frames as f64 / seconds.max(1e-9)))
}

/// The last `frame=  N` in ffmpeg's progress output.
fn last_frame_count(stderr: &str) -> Option<u64> {
    stderr
        .rsplit("frame=")
        .next()
        .filter(|_| stderr.contains("frame="))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A memory figure of this process from /proc/self/status, in MB.
pub(crate) fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_progress_is_parsed_for_the_final_frame_count() {
        let out = "frame=  100 fps=0.0 q=-0.0 size=N/A\rframe=  600 fps=412 q=-0.0 Lsize=N/A\nbench: utime=1.2s";
        assert_eq!(last_frame_count(out), Some(600));
        assert_eq!(last_frame_count("no progress"), None);
    }
}
