//! `vigil run`: the site's whole chain on its cameras (vigil-pipeline).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vigil_core::config::{ExecutionProvider, SiteConfig};
use vigil_evidence::manifest::ModelRef;
use vigil_evidence::uploader::{HttpSink, UploadConfig, Uploader};
use vigil_evidence::{DeviceKey, Spool};
use vigil_infer::detector::{Detector, DetectorConfig};
use vigil_infer::model::DetectorShape;

use crate::edge_io::{EdgeIo, MetricsState};
use vigil_infer::runtime::SessionOptions;
use vigil_infer::text_detector::LocateConfig;
use vigil_pipeline::{EvidenceStage, JsonlSink, PackagingContext, PlateStage, RunOptions, SiteRun};

use crate::models::Models;
use crate::paths::ModelPaths;
use crate::Verdict;

#[derive(Args)]
pub struct RunArgs {
    /// The site config (see configs/example-intersection.toml).
    #[arg(long)]
    config: PathBuf,
    /// Write one JSON object per violation to this file (JSON Lines).
    #[arg(long, value_name = "EVENTS.jsonl")]
    events_out: Option<PathBuf>,
    /// Write the periodic counts-and-congestion records to this file.
    #[arg(long, value_name = "SUMMARY.jsonl")]
    summary_out: Option<PathBuf>,
    /// Seconds per counts-and-congestion period.
    #[arg(long, default_value_t = 60.0)]
    summary_period_s: f64,
    /// Stop after this many frames per camera.
    #[arg(long)]
    max_frames: Option<usize>,
    /// Do not build evidence packages (events and summaries only).
    #[arg(long)]
    no_evidence: bool,
    /// Keep packages in the spool instead of sending them to the `[sink]`.
    #[arg(long)]
    no_upload: bool,
    /// At the end of the input, wait up to this long for the uploader to
    /// deliver what is left (what it cannot is kept and sent next time).
    #[arg(long, default_value_t = 10.0)]
    upload_drain_s: f64,
    /// Serve Prometheus metrics at http://ADDR/metrics and health at
    /// /healthz (e.g. 127.0.0.1:9480; port 0 picks one and prints it).
    #[arg(long)]
    metrics_listen: Option<String>,
    #[command(flatten)]
    rate: RateArgs,
    #[command(flatten)]
    paths: ModelPaths,
}

/// Which frames go through detection.
#[derive(clap::Args, Debug, Clone)]
pub struct RateArgs {
    /// Letterbox each frame for the detector on its camera's ingest thread,
    /// overlapping with detection [default: when the detector runs on a
    /// GPU; on a CPU-bound box it only moves work between busy cores].
    #[arg(long)]
    pub prepare_ahead: bool,
    /// Analyse every N-th frame (1: all); the tracker bridges the others.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub detect_every: u32,
    /// Raise the rate (up to --max-detect-every) while decoded frames queue
    /// up behind the analysis, and lower it again when the queue is empty;
    /// each change is logged and exported as vigil_detect_every. Never
    /// below --min-analysed-fps (cameras need a configured `fps`).
    #[arg(long)]
    pub adaptive_detection: bool,
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub max_detect_every: u32,
    #[arg(long, default_value_t = vigil_pipeline::rate::MIN_ANALYSED_FPS)]
    pub min_analysed_fps: f64,
}

impl RateArgs {
    pub fn policy(&self) -> vigil_pipeline::DetectionRate {
        vigil_pipeline::DetectionRate {
            every: self.detect_every,
            adaptive_max: self
                .adaptive_detection
                .then_some(self.max_detect_every.max(self.detect_every)),
            min_analysed_fps: self.min_analysed_fps,
        }
    }
}

/// Set by SIGINT/SIGTERM: the run stops taking frames, writes what it has
/// and reports.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handlers() {
    let handler = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Reads and checks a site config against the model manifest.
pub fn load_site(path: &Path, models: &Models) -> anyhow::Result<(SiteConfig, PathBuf)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let origin = path.display().to_string();
    let config = vigil_core::config::check(&origin, &text, Some(&models.manifest.catalog()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    Ok((config, base))
}

/// The detector input that holds what the detector sees of every camera
/// (its detect region, or the whole frame) at `[detector] input_size`
/// along the long side; `vigil run` uses it when `fit_input` is on and the
/// model takes it.
pub fn fitted_input(config: &SiteConfig) -> (u32, u32) {
    let seen: Vec<(u32, u32)> = config
        .cameras
        .values()
        .map(|c| {
            let [_, _, w, h] = c.detect_rect();
            (w, h)
        })
        .collect();
    DetectorConfig::fitted_input(config.detector.input_size, &seen)
}

/// The site's configured detector, its model verified first.
pub fn open_detector(models: &Models, config: &SiteConfig) -> anyhow::Result<Detector> {
    let d = &config.detector;
    let entry = models
        .manifest
        .model(&d.model)
        .with_context(|| format!("no detector model {:?} in the manifest", d.model))?;
    // Thresholds, input size and the extra views ([detector.views]).
    let mut detector_config = DetectorConfig::from(d);
    let fitted = fitted_input(config);
    let wanted = DetectorShape {
        dynamic_batch: d.max_batch() > 1,
        input: (d.fit_input && fitted != detector_config.input).then_some(fitted),
    };
    let (model, shape) = models.open_detector_model(&d.model, SessionOptions::from(d), wanted)?;
    if let Some(input) = shape.input {
        tracing::info!(
            "detector input {}x{} fitted to the cameras' frames or detect regions (instead of {}x{})",
            input.0,
            input.1,
            d.input_size,
            d.input_size
        );
        detector_config.input = input;
    }
    Ok(
        Detector::new(model, entry.labels.clone(), &d.classes, detector_config)?
            .with_max_batch(d.max_batch()),
    )
}

/// The site's plate models: text detector (locates the plate in a vehicle
/// crop) and recogniser, each verified first.
pub fn open_plate_stage(models: &Models, config: &SiteConfig) -> anyhow::Result<PlateStage> {
    let p = &config.plates;
    // Plates run where the detector runs.
    let options = SessionOptions {
        threads: config.detector.threads,
        provider: config.detector.execution_provider,
        ..SessionOptions::default()
    };
    // On CPU the plate alphabet's head is INT8 with the shipped per-layout
    // calibration tables (the fast reader `vigil eval plates` measures), and
    // so is the text detector where a table ships for it. On
    // a GPU the float recogniser is both faster and exact: ONNX Runtime's
    // CUDA provider leaves the INT8 graph's Q/DQ nodes to the CPU
    // (13.4 ms against 3.7 ms per plate on an H200).
    let int8 = config.detector.execution_provider == ExecutionProvider::Cpu;
    let alphabet = vigil_infer::ocr::Alphabet::default();
    let mut reader = models.plate_reader(&p.recogniser, options, alphabet, int8)?;
    // The first pass, like INT8, is for CPUs: it was measured there only.
    if let (true, Some(first)) = (int8, p.first_pass_model()) {
        reader = reader.with_first_pass(models.first_pass(
            first,
            options,
            alphabet,
            p.first_pass_min_confidence,
        )?);
    }
    Ok(PlateStage {
        text_detector: models.text_detector(&p.text_detector, options, int8)?,
        locate: LocateConfig::from(p),
        reader,
        votes: p.votes,
    })
}

/// Whether the kernel reports its clock disciplined by NTP (chrony,
/// systemd-timesyncd, ntpd): `ntp_adjtime` in read-only mode, as `timedatectl`
/// does. Packages record the answer; an unsynced clock is evidence an
/// operator must be able to see.
pub(crate) fn kernel_clock_synced() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed timex with modes = 0 only reads the kernel state.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::ntp_adjtime(&mut tx) };
        state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The uploader task on the edge I/O runtime: sends the spool's packages to
/// the configured sink.
struct RunningUploader {
    url: String,
    spool: Arc<Mutex<Spool>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    delivered_before: usize,
}

/// Packages in the spool, delivered or pending.
pub(crate) fn count(spool: &Mutex<Spool>, delivered: bool) -> usize {
    let s = spool.lock().unwrap_or_else(|e| e.into_inner());
    let list = if delivered {
        s.delivered()
    } else {
        s.pending()
    };
    list.map_or(0, |l| l.len())
}

fn start_uploader(
    config: &SiteConfig,
    base: &Path,
    spool: Arc<Mutex<Spool>>,
    io: &EdgeIo,
) -> anyhow::Result<RunningUploader> {
    let vigil_core::config::Sink::Http { url, timeout_s } = &config.sink;
    let key = DeviceKey::read(&resolve(base, &config.evidence.device_key))?;
    let sink = HttpSink::new(url, key, Duration::from_secs_f64(timeout_s.max(0.1)))
        .with_context(|| format!("sink.url {url}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let delivered_before = count(&spool, true);
    let task = {
        let (spool, stop) = (Arc::clone(&spool), Arc::clone(&stop));
        io.spawn(async move {
            Uploader::new(sink, UploadConfig::default())
                .run(&spool, &stop)
                .await;
        })
    };
    Ok(RunningUploader {
        url: url.clone(),
        spool,
        stop,
        task,
        delivered_before,
    })
}

impl RunningUploader {
    /// Lets the uploader drain for up to `grace`, stops it, and says where
    /// things stand.
    fn finish(self, grace: Duration, io: &EdgeIo) -> String {
        let deadline = std::time::Instant::now() + grace;
        while count(&self.spool, false) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop.store(true, Ordering::SeqCst);
        // It notices within 50 ms, or once a request in flight ends (bounded
        // by sink.timeout_s).
        if let Err(e) = io.block_on(self.task) {
            tracing::error!("the uploader task failed: {e}");
        }
        let delivered = count(&self.spool, true).saturating_sub(self.delivered_before);
        let waiting = count(&self.spool, false);
        if waiting == 0 {
            format!(
                "uploaded to {}: {delivered} package(s), none waiting",
                self.url
            )
        } else {
            format!(
                "uploaded to {}: {delivered} package(s); {waiting} wait in the spool and go with the next run (is the case system up?)",
                self.url
            )
        }
    }
}

/// Resolves a config path against the config file's directory.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The evidence stage: device key, spool, output directory, and the facts
/// every package carries (models with their SHA-256, the config's hash).
pub fn open_evidence(
    models: &Models,
    config: &SiteConfig,
    base: &Path,
    config_path: &Path,
) -> anyhow::Result<EvidenceStage> {
    let e = &config.evidence;
    let key_path = resolve(base, &e.device_key);
    anyhow::ensure!(
        key_path.exists(),
        "no device key at {} (evidence.device_key): create one with\n  vigil keygen --device-id {} --out {}",
        key_path.display(),
        config.site.device_id,
        key_path.display()
    );
    let key = DeviceKey::read(&key_path)?;
    anyhow::ensure!(
        key.device_id == config.site.device_id,
        "the device key {} is for device {:?}, but the config's site.device_id is {:?}",
        key_path.display(),
        key.device_id,
        config.site.device_id
    );
    let spool_dir = resolve(base, &e.spool_dir);
    let spool = Spool::open(&spool_dir, e.spool_quota_mb.saturating_mul(1 << 20))
        .with_context(|| format!("cannot open the spool {}", spool_dir.display()))?;
    let mut model_refs = Vec::new();
    for name in [
        &config.detector.model,
        &config.plates.text_detector,
        &config.plates.recogniser,
    ] {
        if let Some(entry) = models.manifest.model(name) {
            model_refs.push(ModelRef {
                name: name.clone(),
                role: format!("{:?}", entry.role),
                sha256: entry.sha256.clone(),
            });
        }
    }
    let config_bytes = std::fs::read(config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let signal_sources = config
        .signals
        .iter()
        .map(|(id, s)| {
            let mut parts = Vec::new();
            if s.fixed_time.is_some() {
                parts.push("fixed_time");
            }
            if s.controller.is_some() {
                parts.push("controller");
            }
            if s.vision.is_some() {
                parts.push("vision");
            }
            (id.clone(), parts.join("+"))
        })
        .collect();
    let clock_sync = config
        .cameras
        .iter()
        .map(|(id, c)| {
            let replay = matches!(
                &c.source,
                vigil_core::config::Source::File {
                    recorded_at: Some(_),
                    ..
                }
            );
            let state = if replay {
                "replay"
            } else if kernel_clock_synced() {
                "synced"
            } else {
                "unsynced"
            };
            (id.clone(), state.to_owned())
        })
        .collect();
    Ok(EvidenceStage::new(
        spool,
        key,
        Some(resolve(base, &e.output_dir)),
        e.pre_roll_s,
        e.post_roll_s,
        PackagingContext {
            site_id: config.site.id.clone(),
            site_name: config.site.name.clone(),
            utc_offset: config.site.utc_offset.clone(),
            models: model_refs,
            config_sha256: vigil_evidence::manifest::sha256_hex(&config_bytes),
            signal_sources,
            clock_sync,
        },
    ))
}

pub fn run(args: &RunArgs) -> anyhow::Result<Verdict> {
    let models = Models::load_for(&args.paths, crate::models::site_provider(&args.config))?;
    let (config, base) = load_site(&args.config, &models)?;
    let mut detector = open_detector(&models, &config)?;
    let mut plates = open_plate_stage(&models, &config)?;
    anyhow::ensure!(
        args.summary_period_s.is_finite() && args.summary_period_s >= 1.0,
        "--summary-period-s {} must be at least 1 second",
        args.summary_period_s
    );
    let options = RunOptions {
        max_frames: args.max_frames,
        counts: vigil_rules::CountsConfig {
            period_us: (args.summary_period_s * 1e6).round() as i64,
            ..vigil_rules::CountsConfig::default()
        },
        detection: args.rate.policy(),
        // Off the analysis thread when the detector runs on a GPU.
        prepare_ahead: (args.rate.prepare_ahead
            || detector.model().provider() != vigil_infer::runtime::Provider::Cpu)
            .then(|| detector.preparer()),
        ..RunOptions::default()
    };
    let mut site = SiteRun::new(&config, &base, &options)
        .with_context(|| format!("cannot start site {}", args.config.display()))?;
    // Network I/O (the uploader, metrics) runs on its own small runtime for
    // the whole run.
    let mut edge_io: Option<EdgeIo> = None;
    let mut uploader = None;
    if !args.no_evidence {
        let mut stage = open_evidence(&models, &config, &base, &args.config)?;
        if !args.no_upload {
            let io = match edge_io {
                Some(ref io) => io,
                None => edge_io.insert(EdgeIo::start()?),
            };
            uploader = Some(start_uploader(&config, &base, stage.spool(), io)?);
        }
        let recovered = stage
            .recover_intents()
            .context("cannot package the events an interrupted run left")?;
        if recovered > 0 {
            println!(
                "  {recovered} event(s) from an interrupted run packaged (their media was lost with that run)"
            );
        }
        site = site.with_evidence(stage);
    }
    if let Some(addr) = &args.metrics_listen {
        let metrics = Arc::new(vigil_pipeline::Metrics::new());
        let replay = config.cameras.values().all(|c| {
            matches!(
                c.source,
                vigil_core::config::Source::File {
                    recorded_at: Some(_),
                    ..
                }
            )
        });
        let spool = site.evidence().map(|e| e.spool());
        let io = match edge_io {
            Some(ref io) => io,
            None => edge_io.insert(EdgeIo::start()?),
        };
        let local = io.serve_metrics(
            addr,
            MetricsState {
                metrics: metrics.clone(),
                spool,
                replay,
            },
        )?;
        println!("  metrics at http://{local}/metrics, health at http://{local}/healthz");
        site = site.with_metrics(metrics);
    }
    let mut sink = JsonlSink::create(args.events_out.as_deref(), args.summary_out.as_deref())?;
    install_stop_handlers();

    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} frames, {msg} [{elapsed}, {per_sec}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut seen: Vec<vigil_pipeline::ViolationEvent> = Vec::new();
    bar.set_message("0 violations");
    let report = site.run(
        &mut detector,
        Some(&mut plates),
        &mut sink,
        &options,
        &STOP,
        &mut |_, _, frame| {
            bar.inc(1);
            if !frame.events.is_empty() {
                seen.extend(frame.events.iter().cloned());
                bar.set_message(format!("{} violations", seen.len()));
            }
        },
    )?;
    bar.finish_and_clear();
    print_run_summary(&config, &report, &seen);
    if report.controller_messages + report.controller_rejected > 0 {
        println!(
            "  controller messages: {} used, {} refused",
            report.controller_messages, report.controller_rejected
        );
    }
    println!("  summary records: {}", report.summaries);
    if let (Some(up), Some(io)) = (uploader, &edge_io) {
        println!(
            "  {}",
            up.finish(Duration::from_secs_f64(args.upload_drain_s.max(0.0)), io)
        );
    }
    if let Some(stage) = site.evidence() {
        println!(
            "  evidence packages: {} committed to {}{}",
            report.packages,
            stage.spool_dir().display(),
            if report.packages_pending > 0 {
                format!(
                    ", {} NOT committed (see the errors above)",
                    report.packages_pending
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(p) = &args.events_out {
        println!("  events written to {}", p.display());
    }
    if let Some(p) = &args.summary_out {
        println!("  summaries written to {}", p.display());
    }
    Ok(Verdict::Passed)
}

/// The end-of-run summary: per camera frames, frames/s, events and plates
/// read; then one line per violation with its local time and plate.
fn print_run_summary(
    config: &SiteConfig,
    report: &vigil_pipeline::RunReport,
    events: &[vigil_pipeline::ViolationEvent],
) {
    println!(
        "site {} ({}): {:.1} s, {:.1} frames/s analysed",
        config.site.id, config.site.name, report.elapsed_s, report.fps
    );
    println!(
        "  {:<16} {:>7} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7} {:>11}  ended",
        "camera",
        "frames",
        "frames/s",
        "skipped",
        "dropped",
        "every",
        "events",
        "plates",
        "unreadable"
    );
    for (camera, c) in &report.cameras {
        let mine = events.iter().filter(|e| &e.camera == camera);
        let (read, unreadable) = mine.fold((0, 0), |(r, u), e| match &e.plate_read {
            Some(p) if p.valid => (r + 1, u),
            _ => (r, u + 1),
        });
        println!(
            "  {:<16} {:>7} {:>8.1} {:>8} {:>8} {:>6} {:>7} {:>7} {:>11}  {}",
            camera,
            c.frames,
            c.frames as f64 / report.elapsed_s.max(1e-9),
            c.frames_skipped,
            c.frames_dropped,
            c.detect_every_max,
            c.events,
            read,
            unreadable,
            c.ended.as_deref().unwrap_or("stopped")
        );
    }
    if events.is_empty() {
        println!("  no violations");
        return;
    }
    for (kind, n) in &report.events_by_type {
        println!("  {kind:<24} {n:>5}");
    }
    println!(
        "  {:<25} {:<12} {:<14} {:<18} {:<10} plate",
        "time (site)", "camera", "approach", "type", "class"
    );
    for e in events {
        let plate = match &e.plate_read {
            Some(p) if p.valid => format!(
                "{} ({:.0}%, {} reads{})",
                p.text,
                100.0 * p.confidence,
                p.reads,
                p.colour
                    .map(|c| format!(", {}", c.as_str()))
                    .unwrap_or_default()
            ),
            Some(p) => format!(
                "unreadable, best guess {:?} ({:.0}%)",
                p.text,
                100.0 * p.confidence
            ),
            None => "no plate crop".to_owned(),
        };
        println!(
            "  {:<25} {:<12} {:<14} {:<18} {:<10} {}",
            vigil_core::time::format_local(e.at_us, &config.site.utc_offset),
            e.camera,
            e.approach,
            e.kind,
            e.class,
            plate
        );
    }
}
