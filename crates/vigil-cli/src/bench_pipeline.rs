//! `vigil bench --input FILE [--streams N]`: the real pipeline on N copies
//! of a video, against the two floors measured in the same run.
//!
//! The pipeline is `vigil run`'s (ingest, detection, tracking, signal and
//! rules, plate reading; evidence packaging off unless `--evidence`), on a
//! site made of N cameras that all play FILE as fast as they decode. Its
//! frames/s is compared with what limits it:
//!
//! - `decode_floor_fps`: the same N streams decoded and converted to RGB
//!   through the same ingest, nothing else;
//! - `infer_floor_fps`: the detector's model alone on a prepared input,
//!   as many runs per frame as the configured views need;
//!
//! and `efficiency` = fps / the lower floor. A scene for the rules comes
//! from `--config` (its first camera, replicated per stream) or, without
//! one, a generic approach across the middle of the frame.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use image::{Rgb, RgbImage as Canvas};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_infer::detector::DetectorConfig;
use vigil_pipeline::{JsonlSink, RunOptions, SiteRun};
use vigil_video::bench::{measure_decode, probe};
use vigil_video::RingConfig;

use crate::models::Models;
use crate::run_cmd::{load_site, open_detector, open_plate_stage};
use crate::Verdict;

#[derive(Args, Debug, Clone)]
pub struct PipelineBenchArgs {
    /// The video every stream plays.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Simultaneous copies of the input, like cameras on one edge box.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// A site config whose first camera describes the scene in the video
    /// (lines, signal, detector); without one a generic approach is used.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Frames per stream (default: the whole video).
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the figures as a PNG chart here (default: next to --json, or
    /// var/bench/pipeline.png).
    #[arg(long)]
    pub chart: Option<PathBuf>,
    #[command(flatten)]
    pub rate: crate::run_cmd::RateArgs,
    #[command(flatten)]
    pub paths: crate::paths::ModelPaths,
}

#[derive(Debug, Serialize)]
pub struct PipelineBench {
    pub input: String,
    pub width: u32,
    pub height: u32,
    pub source_fps: f64,
    pub streams: usize,
    /// Frames handled, all streams together (analysed + skipped).
    pub frames: usize,
    pub frames_analysed: usize,
    pub seconds: f64,
    /// End-to-end frames/s, all streams together.
    pub fps: f64,
    /// Frames through detection per second.
    pub analysed_fps: f64,
    /// Per stage on the analysis thread: frames/s the stage alone would
    /// allow (calls / seconds) and its share of the wall time.
    pub stages: Vec<StageFigure>,
    pub decode_floor_fps: f64,
    pub infer_floor_fps: f64,
    /// Detector runs per frame (views: whole frame, mirror, tiles).
    pub inferences_per_frame: usize,
    pub efficiency: f64,
    /// Which floor is the lower one.
    pub limited_by: String,
    /// CPU time over wall time during the pipeline run, in cores.
    pub cpu_cores_used: f64,
    pub cpu_cores: usize,
    pub cpu_utilisation: f64,
    /// Peak resident memory during the pipeline run (before the floors).
    pub peak_rss_mb: f64,
    /// Real-time factor: fps over what the streams need to play live.
    pub realtime_factor: f64,
    pub events: usize,
    pub frames_dropped: u64,
    /// Frames decoded but not analysed (detection rate below every frame).
    pub frames_skipped: usize,
    /// The highest "every k-th frame" any stream used.
    pub detect_every_max: u32,
}

#[derive(Debug, Serialize)]
pub struct StageFigure {
    pub stage: String,
    pub calls: u64,
    pub ms_per_call: f64,
    pub fps: f64,
    pub share_of_wall: f64,
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The site the benchmark runs, as TOML: `streams` cameras playing `input`.
fn site_toml(
    input: &Path,
    streams: usize,
    template: Option<&Path>,
    width: u32,
    height: u32,
    fps: f64,
) -> anyhow::Result<String> {
    let input = input
        .canonicalize()
        .with_context(|| format!("cannot open {}", input.display()))?;
    let path = input
        .to_str()
        .context("the input path is not valid UTF-8")?
        .to_owned();
    let mut site: toml::Table = match template {
        Some(t) => {
            let text = std::fs::read_to_string(t)
                .with_context(|| format!("cannot read config {}", t.display()))?;
            text.parse()
                .with_context(|| format!("{} is not valid TOML", t.display()))?
        }
        None => generic_site(width, height)
            .parse()
            .context("the generic bench site")?,
    };
    let cameras = site
        .get("cameras")
        .and_then(|c| c.as_table())
        .context("the config has no [cameras]")?;
    let Some((first, camera)) = cameras.iter().next().map(|(k, v)| (k.clone(), v.clone())) else {
        bail!("the config has no camera");
    };
    let approaches: Vec<(String, toml::Value)> = site
        .get("approaches")
        .and_then(|a| a.as_table())
        .map(|t| {
            t.iter()
                .filter(|(_, a)| a.get("camera").and_then(|c| c.as_str()) == Some(first.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut new_cameras = toml::Table::new();
    let mut new_approaches = toml::Table::new();
    for k in 1..=streams {
        let id = format!("stream-{k}");
        let mut cam = camera.clone();
        if let Some(t) = cam.as_table_mut() {
            let mut source = toml::Table::new();
            source.insert("kind".into(), "file".into());
            source.insert("path".into(), path.clone().into());
            source.insert("pacing".into(), "fast".into());
            if let Some(at) = t.get("source").and_then(|s| s.get("recorded_at")).cloned() {
                source.insert("recorded_at".into(), at);
            }
            t.insert("source".into(), source.into());
            t.insert("fps".into(), fps.into());
        }
        new_cameras.insert(id.clone(), cam);
        for (name, a) in &approaches {
            let mut a = a.clone();
            if let Some(t) = a.as_table_mut() {
                t.insert("camera".into(), id.clone().into());
            }
            new_approaches.insert(format!("{name}-{k}"), a);
        }
    }
    site.insert("cameras".into(), new_cameras.into());
    site.insert("approaches".into(), new_approaches.into());
    // Evidence stays off in the benchmark: `[evidence]` and `[sink]` are
    // read but nothing is packaged or sent.
    Ok(toml::to_string(&site)?)
}

/// A generic approach across the middle of the frame, under a fixed-time
/// plan, for footage without a config.
fn generic_site(w: u32, h: u32) -> String {
    let (w, h) = (f64::from(w), f64::from(h));
    format!(
        r#"schema_version = 1
[site]
id = "bench"
name = "vigil bench"
device_id = "bench"
utc_offset = "+07:00"

[cameras.bench]
source = {{ kind = "file", path = "unused", pacing = "fast" }}
frame_size = [{w}, {h}]

[signals.plan.fixed_time]
cycle_s = 20.0
anchor = 2026-01-01T00:00:00+07:00
offset_s = 0.0
phases = [
  {{ state = "green", duration_s = 8.0 }},
  {{ state = "amber", duration_s = 3.0 }},
  {{ state = "red", duration_s = 9.0 }},
]

[approaches.middle]
camera = "bench"
signal = "plan"
stop_line = [[{x0}, {ys}], [{x1}, {ys}]]
clearance_line = [[{x0}, {yc}], [{x1}, {yc}]]
travel = [[{xm}, {yt0}], [{xm}, {yt1}]]
rules = ["red_light"]
enforce_classes = ["car", "motorbike", "bus", "truck"]

[detector]
model = "yolov8n-coco"
input_size = 640
confidence = 0.25
nms_iou = 0.45
execution_provider = "cpu"
threads = 2

[detector.classes]
car = ["car"]
motorbike = ["motorcycle"]
bus = ["bus"]
truck = ["truck"]
bicycle = ["bicycle"]
person = ["person"]
traffic_light = ["traffic light"]
"#,
        x0 = (w * 0.05).round(),
        x1 = (w * 0.95).round(),
        ys = (h * 0.6).round(),
        yc = (h * 0.45).round(),
        xm = (w * 0.5).round(),
        yt0 = (h * 0.9).round(),
        yt1 = (h * 0.2).round(),
    )
}

pub fn run(args: &PipelineBenchArgs) -> anyhow::Result<Verdict> {
    let Some(input) = &args.input else {
        bail!("give the video to run: vigil bench --input FILE [--streams N] (or a subcommand: decode, detect)");
    };
    if args.streams == 0 {
        bail!("--streams must be at least 1");
    }
    let info = probe(input).with_context(|| format!("probing {}", input.display()))?;
    let models = Models::load(&args.paths)?;
    let work = tempfile::tempdir().context("cannot create a scratch directory")?;
    let site_path = work.path().join("bench-site.toml");
    std::fs::write(
        &site_path,
        site_toml(
            input,
            args.streams,
            args.config.as_deref(),
            info.width,
            info.height,
            info.fps,
        )?,
    )?;
    let (config, base) = load_site(&site_path, &models)?;
    let mut detector = open_detector(&models, &config)?;
    let mut plates = open_plate_stage(&models, &config)?;
    let views = DetectorConfig::from(&config.detector).views;
    let inferences_per_frame = 1
        + usize::from(views.flip)
        + views
            .tiles
            .map_or(0, |g| g.rects(info.width, info.height).len());

    // 1. The pipeline.
    let options = RunOptions {
        max_frames: args.max_frames,
        detection: args.rate.policy(),
        ..RunOptions::default()
    };
    let mut site = SiteRun::new(&config, &base, &options).context("cannot start the bench site")?;
    let mut sink = JsonlSink::create(None, None)?;
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template(
            "{spinner} pipeline, {msg}: {pos} frames [{elapsed}, {per_sec}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(format!("{} stream(s)", args.streams));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let report = site.run(
        &mut detector,
        Some(&mut plates),
        &mut sink,
        &options,
        &stop,
        &mut |_, _, _| bar.inc(1),
    )?;
    let cpu_used = cpu_seconds() - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    let peak_rss_mb = crate::bench_cmd::rss_mb("VmHWM");
    bar.finish_and_clear();
    let frames: usize = report.cameras.values().map(|c| c.frames).sum();
    let frames_dropped = report.cameras.values().map(|c| c.frames_dropped).sum();
    let frames_skipped = report.cameras.values().map(|c| c.frames_skipped).sum();
    let detect_every_max = report
        .cameras
        .values()
        .map(|c| c.detect_every_max)
        .max()
        .unwrap_or(1);

    // 2. The decode floor: the same streams through the same ingest.
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message("decode floor");
    let decode = measure_decode(input, args.streams, true, RingConfig::default())?;
    // 3. The inference floor: the model alone, as often as a frame needs.
    spinner.set_message("inference floor");
    let frame = first_frame(input)?;
    let tensor = detector.input_tensor(&frame);
    detector.infer_only(tensor.clone())?;
    let runs = 40usize;
    let started = Instant::now();
    for _ in 0..runs {
        detector.infer_only(tensor.clone())?;
    }
    let infer_floor_fps =
        runs as f64 / started.elapsed().as_secs_f64() / inferences_per_frame as f64;
    spinner.finish_and_clear();

    // Every frame the streams delivered was handled, analysed or (at a
    // detection rate below 1) bridged by the tracker.
    let analysed_fps = frames as f64 / report.elapsed_s.max(1e-9);
    let frames_analysed = frames;
    let frames = frames + frames_skipped;
    let fps = frames as f64 / report.elapsed_s.max(1e-9);
    let (floor, limited_by) = if decode.fps <= infer_floor_fps {
        (decode.fps, "decode")
    } else {
        (infer_floor_fps, "inference")
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stages = report
        .stages
        .iter()
        .map(|(name, t)| StageFigure {
            stage: name.clone(),
            calls: t.calls,
            ms_per_call: t.seconds * 1e3 / t.calls.max(1) as f64,
            fps: if name == "plates" || name == "vision" {
                f64::NAN
            } else {
                t.calls as f64 / t.seconds.max(1e-9)
            },
            share_of_wall: t.seconds / report.elapsed_s.max(1e-9),
        })
        .collect();
    let bench = PipelineBench {
        input: input.display().to_string(),
        width: info.width,
        height: info.height,
        source_fps: info.fps,
        streams: args.streams,
        frames,
        frames_analysed,
        seconds: report.elapsed_s,
        fps,
        analysed_fps,
        stages,
        decode_floor_fps: decode.fps,
        infer_floor_fps,
        inferences_per_frame,
        efficiency: fps / floor,
        limited_by: limited_by.into(),
        cpu_cores_used: cpu_used / wall.max(1e-9),
        cpu_cores: cores,
        cpu_utilisation: cpu_used / wall.max(1e-9) / cores as f64,
        peak_rss_mb,
        realtime_factor: if info.fps > 0.0 {
            fps / (info.fps * args.streams as f64)
        } else {
            0.0
        },
        events: report.events_by_type.values().sum(),
        frames_dropped,
        frames_skipped,
        detect_every_max,
    };
    print_bench(&bench);
    let chart = args.chart.clone().unwrap_or_else(|| match &args.json {
        Some(j) => j.with_extension("png"),
        None => PathBuf::from("var/bench/pipeline.png"),
    });
    if let Some(dir) = chart.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    draw_chart(&bench)
        .save(&chart)
        .with_context(|| format!("cannot write {}", chart.display()))?;
    println!("  chart: {}", chart.display());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&bench)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("  results written to {}", path.display());
    }
    Ok(Verdict::Passed)
}

fn first_frame(input: &Path) -> anyhow::Result<vigil_core::image::RgbImage> {
    use vigil_video::{CameraIngest, IngestConfig, SourceKind, SourceSpec};
    let spec = SourceSpec {
        camera: "floor".into(),
        kind: SourceKind::File {
            path: input.to_owned(),
        },
        pacing: vigil_core::config::Pacing::Fast,
        recorded_at_us: None,
        io_timeout: Duration::from_secs(5),
    };
    let mut ingest = CameraIngest::spawn(spec, IngestConfig::default());
    let frame = ingest
        .frames()
        .recv_timeout(Duration::from_secs(10))
        .ok()
        .and_then(|f| f.rgb.as_deref().cloned());
    ingest.stop();
    frame.with_context(|| format!("no frame could be decoded from {}", input.display()))
}

fn print_bench(b: &PipelineBench) {
    println!(
        "{} {}x{} @ {:.2} fps, {} stream(s), {} frames in {:.1} s",
        b.input, b.width, b.height, b.source_fps, b.streams, b.frames, b.seconds
    );
    println!(
        "  pipeline         {:>8.1} frames/s ({:.2}x real time; {:.1} analysed/s, every {} frame(s) at most, {} skipped)",
        b.fps, b.realtime_factor, b.analysed_fps, b.detect_every_max, b.frames_skipped
    );
    println!("  decode floor     {:>8.1} frames/s", b.decode_floor_fps);
    println!(
        "  inference floor  {:>8.1} frames/s ({} run(s) per frame)",
        b.infer_floor_fps, b.inferences_per_frame
    );
    println!(
        "  efficiency       {:>8.3} (fps / {} floor)",
        b.efficiency, b.limited_by
    );
    println!(
        "  CPU {:.2} of {} cores ({:.0}%), peak RSS {:.1} MB, {} events, {} frames dropped",
        b.cpu_cores_used,
        b.cpu_cores,
        b.cpu_utilisation * 100.0,
        b.peak_rss_mb,
        b.events,
        b.frames_dropped
    );
    println!(
        "  {:<12} {:>8} {:>10} {:>10} {:>8}",
        "stage", "calls", "ms/call", "frames/s", "of wall"
    );
    for s in &b.stages {
        println!(
            "  {:<12} {:>8} {:>10.2} {:>10} {:>7.1}%",
            s.stage,
            s.calls,
            s.ms_per_call,
            if s.fps.is_finite() {
                format!("{:.1}", s.fps)
            } else {
                "-".into()
            },
            s.share_of_wall * 100.0
        );
    }
}

/// Horizontal bars: the pipeline against its two floors, and each stage's
/// share of the wall time.
fn draw_chart(b: &PipelineBench) -> Canvas {
    let (w, row, left) = (900u32, 46u32, 230u32);
    let bars: Vec<(String, f64, [u8; 3])> = vec![
        (
            format!("pipeline ({} stream(s))", b.streams),
            b.fps,
            [11, 87, 208],
        ),
        ("decode floor".into(), b.decode_floor_fps, [120, 120, 120]),
        ("inference floor".into(), b.infer_floor_fps, [120, 120, 120]),
    ];
    let h = 90 + row * (bars.len() as u32 + b.stages.len() as u32) + 60;
    let mut c = Canvas::from_pixel(w, h, Rgb([250, 250, 247]));
    let draw = vigil_evidence::sheet::draw_label;
    draw(
        &mut c,
        22.0,
        20.0,
        14.0,
        &format!(
            "vigil bench: {}x{}, {} stream(s), efficiency {:.2} (limited by {})",
            b.width, b.height, b.streams, b.efficiency, b.limited_by
        ),
    );
    // Scaled to the binding floor, so the comparison that matters is
    // readable; a floor far above it runs off the scale (and says so).
    let span = f64::from(w - left - 230);
    let scale = span / (b.fps.max(b.decode_floor_fps.min(b.infer_floor_fps)) * 1.15).max(1e-9);
    let mut y = 60u32;
    let bar = |c: &mut Canvas,
               y: u32,
               label: &str,
               value: f64,
               len: f64,
               colour: [u8; 3],
               text: String| {
        draw(c, 16.0, 20.0, y as f32 + 8.0, label);
        let len = len.max(1.0).min(span) as u32;
        for x in left..left + len {
            for yy in y + 6..y + row - 10 {
                c.put_pixel(x, yy, Rgb(colour));
            }
        }
        let _ = value;
        draw(c, 15.0, (left + len + 8) as f32, y as f32 + 8.0, &text);
    };
    for (label, value, colour) in &bars {
        let off = value * scale > span;
        let text = format!(
            "{value:.1} frames/s{}",
            if off { " (off scale)" } else { "" }
        );
        bar(&mut c, y, label, *value, value * scale, *colour, text);
        y += row;
    }
    y += 20;
    draw(
        &mut c,
        16.0,
        20.0,
        y as f32,
        "share of wall time per stage (analysis thread)",
    );
    y += 30;
    for s in &b.stages {
        let len = s.share_of_wall * span;
        bar(
            &mut c,
            y,
            &s.stage,
            s.share_of_wall,
            len,
            [42, 157, 143],
            format!(
                "{:.1}% ({:.2} ms/call)",
                s.share_of_wall * 100.0,
                s.ms_per_call
            ),
        );
        y += row;
    }
    c
}
