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
//! and `efficiency` = fps / the lower floor. The pipeline and the floors
//! alternate over `--rounds` (3): each round's ratio compares runs a few
//! seconds apart, so drift in a shared machine's speed cancels, and the
//! reported efficiency is the median round. A scene for the rules comes
//! from `--config` (its first camera, replicated per stream) or, without
//! one, a generic approach across the middle of the frame.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use image::{Rgb, RgbImage as Canvas};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_core::config::ExecutionProvider;
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
    /// Frames per stream, split across the rounds (default: the whole
    /// video in every round).
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Pipeline runs, each followed by its own floors; `efficiency` is the
    /// median of the rounds' ratios.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the figures as a PNG chart here (default: next to --json, or
    /// var/bench/pipeline.png).
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Run the detector on this execution provider (cpu, cuda, tensorrt)
    /// instead of the config's `[detector] execution_provider`.
    #[arg(long, value_parser = crate::models::parse_provider)]
    pub provider: Option<ExecutionProvider>,
    /// The most images per detector run, instead of the config's
    /// `[detector] max_batch` (default 1 on CPU, 8 on a GPU): 1 runs each
    /// stream's frames one at a time.
    #[arg(long, value_name = "N")]
    pub max_batch: Option<usize>,
    /// Fit the detector's input to the frames (true) or keep the square
    /// (false), instead of the config's `[detector] fit_input`.
    #[arg(long, value_name = "BOOL")]
    pub fit_input: Option<bool>,
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
    /// The execution provider the detector really ran on.
    pub provider: String,
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
    /// Images per model run in the inference floor: what the pipeline's
    /// batches across streams can hold (`[detector] max_batch`, and 1 for a
    /// model whose batch size cannot be made dynamic).
    pub infer_batch: usize,
    /// Pipeline/floor alternations.
    pub rounds: usize,
    /// Each round's pipeline frames/s over that round's lower floor.
    pub efficiency_rounds: Vec<f64>,
    /// The median of `efficiency_rounds`.
    pub efficiency: f64,
    /// Which floor is the lower one.
    pub limited_by: String,
    /// CPU time over wall time during the pipeline run, in cores.
    pub cpu_cores_used: f64,
    pub cpu_cores: usize,
    pub cpu_utilisation: f64,
    /// Peak resident memory during a pipeline round (the floors excluded).
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

/// One pipeline run and its floors (inference: the mean of one measured
/// just before and one just after; decode: just after).
struct Round {
    report: vigil_pipeline::RunReport,
    cpu: f64,
    wall: f64,
    peak_rss_mb: f64,
    decode_fps: f64,
    infer_fps: f64,
}

impl Round {
    /// Every frame the streams delivered, analysed or (at a detection rate
    /// below 1) bridged by the tracker.
    fn frames(&self) -> (usize, usize) {
        let analysed: usize = self.report.cameras.values().map(|c| c.frames).sum();
        let skipped: usize = self.report.cameras.values().map(|c| c.frames_skipped).sum();
        (analysed + skipped, analysed)
    }

    fn fps(&self) -> f64 {
        self.frames().0 as f64 / self.report.elapsed_s.max(1e-9)
    }

    fn floor(&self) -> f64 {
        self.decode_fps.min(self.infer_fps)
    }
}

/// The inference floor: the detector's model alone on a prepared input
/// (`batch` copies per run, as the pipeline batches them), as often as a
/// frame needs, for about two seconds (5 runs at least).
fn infer_floor(
    detector: &mut vigil_infer::detector::Detector,
    (tensor, batch): (&[f32], usize),
    inferences_per_frame: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut runs = 0usize;
    while runs < 5 || (runs < 200 && started.elapsed() < Duration::from_secs(2)) {
        detector.infer_only(tensor)?;
        runs += 1;
    }
    Ok((runs * batch) as f64 / started.elapsed().as_secs_f64() / inferences_per_frame as f64)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Resets the kernel's peak-RSS mark (`VmHWM`) so that each pipeline round
/// reports its own peak, not the floors'. Linux ≥ 4.0; elsewhere the mark
/// simply keeps the process's peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The rounds as one report: frames and time summed, floors averaged,
/// `efficiency` the median of the rounds' own ratios.
fn summarise(
    rounds: &[Round],
    (input, info, streams): (&Path, &vigil_video::bench::ProbeInfo, usize),
    provider: String,
    (inferences_per_frame, infer_batch): (usize, usize),
) -> PipelineBench {
    let n = rounds.len().max(1) as f64;
    let seconds: f64 = rounds.iter().map(|r| r.report.elapsed_s).sum();
    let frames: usize = rounds.iter().map(|r| r.frames().0).sum();
    let frames_analysed: usize = rounds.iter().map(|r| r.frames().1).sum();
    let fps = frames as f64 / seconds.max(1e-9);
    let decode_floor_fps = rounds.iter().map(|r| r.decode_fps).sum::<f64>() / n;
    let infer_floor_fps = rounds.iter().map(|r| r.infer_fps).sum::<f64>() / n;
    let efficiency_rounds: Vec<f64> = rounds.iter().map(|r| r.fps() / r.floor()).collect();
    let limited_by = if decode_floor_fps <= infer_floor_fps {
        "decode"
    } else {
        "inference"
    };
    let mut stage_time: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for r in rounds {
        for (name, t) in &r.report.stages {
            let e = stage_time.entry(name.clone()).or_default();
            e.0 += t.calls;
            e.1 += t.seconds;
        }
    }
    let stages = stage_time
        .into_iter()
        .map(|(name, (calls, secs))| StageFigure {
            fps: if name == "plates" || name == "vision" {
                f64::NAN
            } else {
                calls as f64 / secs.max(1e-9)
            },
            ms_per_call: secs * 1e3 / calls.max(1) as f64,
            share_of_wall: secs / seconds.max(1e-9),
            stage: name,
            calls,
        })
        .collect();
    let cpu: f64 = rounds.iter().map(|r| r.cpu).sum();
    let wall: f64 = rounds.iter().map(|r| r.wall).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cameras = || rounds.iter().flat_map(|r| r.report.cameras.values());
    PipelineBench {
        input: input.display().to_string(),
        width: info.width,
        height: info.height,
        source_fps: info.fps,
        streams,
        provider,
        frames,
        frames_analysed,
        seconds,
        fps,
        analysed_fps: frames_analysed as f64 / seconds.max(1e-9),
        stages,
        decode_floor_fps,
        infer_floor_fps,
        inferences_per_frame,
        infer_batch,
        rounds: rounds.len(),
        efficiency: median(efficiency_rounds.clone()),
        efficiency_rounds,
        limited_by: limited_by.into(),
        cpu_cores_used: cpu / wall.max(1e-9),
        cpu_cores: cores,
        cpu_utilisation: cpu / wall.max(1e-9) / cores as f64,
        peak_rss_mb: rounds.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
        realtime_factor: if info.fps > 0.0 {
            fps / (info.fps * streams as f64)
        } else {
            0.0
        },
        events: rounds
            .iter()
            .map(|r| r.report.events_by_type.values().sum::<usize>())
            .sum(),
        frames_dropped: cameras().map(|c| c.frames_dropped).sum(),
        frames_skipped: cameras().map(|c| c.frames_skipped).sum(),
        detect_every_max: cameras().map(|c| c.detect_every_max).max().unwrap_or(1),
    }
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
    (provider, max_batch, fit_input): (Option<ExecutionProvider>, Option<usize>, Option<bool>),
    (width, height, fps): (u32, u32, f64),
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
    let detector = site
        .get_mut("detector")
        .and_then(|d| d.as_table_mut())
        .context("the config has no [detector]")?;
    if let Some(provider) = provider {
        let name = match provider {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::Tensorrt => "tensorrt",
        };
        detector.insert("execution_provider".into(), name.into());
    }
    if let Some(n) = max_batch {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        detector.insert("max_batch".into(), n.into());
    }
    if let Some(fit) = fit_input {
        detector.insert("fit_input".into(), fit.into());
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

# Read but unused: the benchmark packages no evidence.
[evidence]
output_dir = "bench-evidence"
device_key = "bench.key"
spool_dir = "bench-spool"
spool_quota_mb = 64

[sink]
kind = "http"
url = "http://127.0.0.1:9/unused"
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
    let work = tempfile::tempdir().context("cannot create a scratch directory")?;
    let site_path = work.path().join("bench-site.toml");
    std::fs::write(
        &site_path,
        site_toml(
            input,
            args.streams,
            args.config.as_deref(),
            (args.provider, args.max_batch, args.fit_input),
            (info.width, info.height, info.fps),
        )?,
    )?;
    let models = Models::load_for(&args.paths, crate::models::site_provider(&site_path))?;
    let (config, base) = load_site(&site_path, &models)?;
    let mut detector = open_detector(&models, &config)?;
    let mut plates = open_plate_stage(&models, &config)?;
    let views = DetectorConfig::from(&config.detector).views;
    let inferences_per_frame = 1
        + usize::from(views.flip)
        + views
            .tiles
            .map_or(0, |g| g.rects(info.width, info.height).len());

    // Pipeline and floors alternate, round by round, so that every round's
    // ratio compares runs that saw the same load on the machine (a shared
    // box's speed drifts by tens of percent within minutes).
    let rounds = args.rounds.max(1);
    let per_round = args.max_frames.map(|m| m.div_ceil(rounds).max(1));
    let frame = first_frame(input)?;
    // The floor runs the model at the batch the pipeline can fill: a frame
    // from every stream, each with its views, up to the detector's cap.
    let infer_batch = detector
        .max_batch()
        .min(args.streams * inferences_per_frame)
        .max(1);
    let tensor = detector.input_tensor(&frame).repeat(infer_batch);
    detector.infer_only(&tensor)?;
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg}: {pos} frames [{elapsed}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut done: Vec<Round> = Vec::with_capacity(rounds);
    for r in 1..=rounds {
        bar.set_message(format!(
            "round {r}/{rounds}: pipeline, {} stream(s)",
            args.streams
        ));
        let options = RunOptions {
            max_frames: per_round,
            detection: args.rate.policy(),
            // Off the analysis thread when the detector runs on a GPU.
            prepare_ahead: (args.rate.prepare_ahead
                || detector.model().provider() != vigil_infer::runtime::Provider::Cpu)
                .then(|| detector.preparer()),
            ..RunOptions::default()
        };
        let mut site =
            SiteRun::new(&config, &base, &options).context("cannot start the bench site")?;
        let mut sink = JsonlSink::create(None, None)?;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let infer_before =
            infer_floor(&mut detector, (&tensor, infer_batch), inferences_per_frame)?;
        reset_peak_rss();
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let report = site.run(
            &mut detector,
            Some(&mut plates),
            &mut sink,
            &options,
            &stop,
            &mut |_, _, _| bar.inc(1),
        )?;
        let cpu = cpu_seconds() - cpu0;
        let wall = wall0.elapsed().as_secs_f64();
        let peak_rss_mb = crate::bench_cmd::rss_mb("VmHWM");
        drop(site);
        // The decode floor: the same streams through the same ingest.
        bar.set_message(format!("round {r}/{rounds}: decode floor"));
        let decode = measure_decode(input, args.streams, true, RingConfig::default())?;
        bar.set_message(format!("round {r}/{rounds}: inference floor"));
        let infer_after = infer_floor(&mut detector, (&tensor, infer_batch), inferences_per_frame)?;
        // The floor on both sides of the pipeline run: drift during the
        // round shows up in both and averages out.
        let infer_fps = (infer_before + infer_after) / 2.0;
        done.push(Round {
            report,
            cpu,
            wall,
            peak_rss_mb,
            decode_fps: decode.fps,
            infer_fps,
        });
    }
    bar.finish_and_clear();
    let bench = summarise(
        &done,
        (input, &info, args.streams),
        format!("{:?}", detector.model().provider()).to_lowercase(),
        (inferences_per_frame, infer_batch),
    );
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
        "{} {}x{} @ {:.2} fps, {} stream(s), {} frames in {:.1} s, detector on {}",
        b.input, b.width, b.height, b.source_fps, b.streams, b.frames, b.seconds, b.provider
    );
    println!(
        "  pipeline         {:>8.1} frames/s ({:.2}x real time; {:.1} analysed/s, every {} frame(s) at most, {} skipped)",
        b.fps, b.realtime_factor, b.analysed_fps, b.detect_every_max, b.frames_skipped
    );
    println!("  decode floor     {:>8.1} frames/s", b.decode_floor_fps);
    println!(
        "  inference floor  {:>8.1} frames/s ({} run(s) per frame, {} image(s) per run)",
        b.infer_floor_fps, b.inferences_per_frame, b.infer_batch
    );
    let rounds: Vec<String> = b
        .efficiency_rounds
        .iter()
        .map(|e| format!("{e:.3}"))
        .collect();
    println!(
        "  efficiency       {:>8.3} (fps / {} floor; median of {} rounds: {})",
        b.efficiency,
        b.limited_by,
        b.rounds,
        rounds.join(", ")
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
