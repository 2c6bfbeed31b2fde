//! `vigil run`: every camera of a site through detection, tracking, the
//! live signal sources and the rules, into record sinks.
//!
//! One thread drives analysis here; each camera's ingest has its own
//! thread (vigil-video), and each controller feed its listener thread.
//! Cameras are served round-robin, one frame each in turn, so a busy
//! camera cannot starve the others. File inputs replay losslessly (every
//! frame is analysed); live cameras keep only the newest frames when
//! detection falls behind, and the ingest counters report the drops.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::config::{SiteConfig, VisionSignal};
use vigil_core::detection::Detection;
use vigil_core::image::RgbImage;
use vigil_core::time::UnixMicros;
use vigil_infer::detector::{Detector, Prepared, Preparer};
use vigil_infer::lights::{heads, LampClassifier, LampState};
use vigil_infer::riders::associate_riders;
use vigil_infer::InferError;
use vigil_rules::{
    ApproachError, ApproachRules, ControllerListener, CountsConfig, LiveSignal, Phase,
    PhaseTimeline, SignalError,
};
use vigil_track::TrackerConfig;
use vigil_video::{
    CameraIngest, Frame, FramePrep, IngestConfig, IngestEvent, PreparedInput, SourceSpec,
    VideoError,
};

use crate::analysis::{CameraAnalysis, FrameAnalysis};
use crate::event::{SummaryRecord, ViolationEvent};
use crate::evidence::EvidenceStage;
use crate::metrics::{EventLabel, Metrics};
use crate::plates::{BestCrops, PlateStage};
use crate::rate::{DetectionRate, RateState};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Approach(#[from] ApproachError),
    #[error("signal {signal}: {source}")]
    Signal { signal: String, source: SignalError },
    #[error("signal {signal}: cannot listen for the controller on {listen}: {source}")]
    Listen {
        signal: String,
        listen: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Spool(#[from] vigil_evidence::SpoolError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where records go. Writes must be durable when they return: an event
/// that was reported written survives a crash.
pub trait RecordSink {
    fn event(&mut self, event: &ViolationEvent) -> Result<(), PipelineError>;
    fn summary(&mut self, summary: &SummaryRecord) -> Result<(), PipelineError>;
}

/// JSON Lines files: one object per line, flushed and synced per record.
pub struct JsonlSink {
    events: Option<(PathBuf, BufWriter<File>)>,
    summaries: Option<(PathBuf, BufWriter<File>)>,
}

impl JsonlSink {
    /// Creates (truncates) the files given.
    pub fn create(events: Option<&Path>, summaries: Option<&Path>) -> Result<Self, PipelineError> {
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(p)
                .map(|f| (p.to_path_buf(), BufWriter::new(f)))
                .map_err(|source| PipelineError::Io {
                    path: p.to_path_buf(),
                    source,
                })
        };
        Ok(Self {
            events: events.map(open).transpose()?,
            summaries: summaries.map(open).transpose()?,
        })
    }

    fn write(
        target: &mut Option<(PathBuf, BufWriter<File>)>,
        value: &impl serde::Serialize,
    ) -> Result<(), PipelineError> {
        let Some((path, w)) = target else {
            return Ok(());
        };
        let io = |source| PipelineError::Io {
            path: path.clone(),
            source,
        };
        serde_json::to_writer(&mut *w, value).map_err(|e| io(e.into()))?;
        w.write_all(b"\n").map_err(io)?;
        w.flush().map_err(io)?;
        w.get_ref().sync_data().map_err(io)
    }
}

impl RecordSink for JsonlSink {
    fn event(&mut self, event: &ViolationEvent) -> Result<(), PipelineError> {
        Self::write(&mut self.events, event)
    }
    fn summary(&mut self, summary: &SummaryRecord) -> Result<(), PipelineError> {
        Self::write(&mut self.summaries, summary)
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this many frames per camera (for trials and tests).
    pub max_frames: Option<usize>,
    pub counts: CountsConfig,
    pub tracker: TrackerConfig,
    /// Which frames go through detection (every one by default).
    pub detection: DetectionRate,
    /// Letterbox each frame for the detector on its camera's ingest thread,
    /// overlapping with detection of earlier frames. Worth it when the
    /// detector does not use the CPU itself (a GPU): on a CPU-bound box it
    /// only moves work between busy cores and holds a 4.9 MB input per
    /// queued frame. The preparer must be the detector's own
    /// ([`Detector::preparer`]), whose input may be fitted to the frames.
    pub prepare_ahead: Option<Preparer>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CameraReport {
    /// Frames analysed.
    pub frames: usize,
    /// Frames decoded but not analysed (detection rate below 1).
    pub frames_skipped: usize,
    /// The highest "every k-th frame" used.
    pub detect_every_max: u32,
    pub frames_dropped: u64,
    pub events: usize,
    pub ended: Option<String>,
}

/// Time spent in one stage of the chain, over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTime {
    pub seconds: f64,
    pub calls: u64,
}

impl StageTime {
    fn add(&mut self, seconds: f64) {
        self.seconds += seconds;
        self.calls += 1;
    }
}

/// Adds a stage's time to the report and to the latency histogram.
fn record_stage(report: &mut RunReport, metrics: Option<&Metrics>, stage: &str, since: Instant) {
    record_seconds(report, metrics, stage, since.elapsed().as_secs_f64());
}

/// Adds one frame's share of a stage's time (a batch's time divided by its
/// frames, once per frame).
fn record_seconds(report: &mut RunReport, metrics: Option<&Metrics>, stage: &str, seconds: f64) {
    report
        .stages
        .entry(stage.to_owned())
        .or_default()
        .add(seconds);
    if let Some(m) = metrics {
        m.stage_seconds
            .get_or_create(&Metrics::stage(stage))
            .observe(seconds);
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// Time per stage on the analysis thread: `vision` (lamp ROIs),
    /// `detect` (detector and rider pairing), `track_rules` (tracker, rules,
    /// counts, crop keeping), `plates`, `evidence` (intents and packaging),
    /// and `idle_wait`: naps when no camera had a frame ready, so a run
    /// held up by decoding shows it. Decoding runs on the ingest threads and
    /// is not in here.
    pub stages: BTreeMap<String, StageTime>,
    pub cameras: BTreeMap<String, CameraReport>,
    pub events_by_type: BTreeMap<String, usize>,
    pub summaries: usize,
    /// Evidence packages committed to the spool.
    pub packages: usize,
    /// Events still waiting for their package at the end (a full disk).
    pub packages_pending: usize,
    pub controller_messages: usize,
    pub controller_rejected: usize,
    pub elapsed_s: f64,
    /// Frames analysed per second of wall time, all cameras together.
    pub fps: f64,
}

struct CameraRun {
    ingest: CameraIngest,
    analysis: CameraAnalysis,
    /// Signals read from this camera's frames: (signal id, lamp ROI).
    vision: Vec<(String, [f64; 4])>,
    /// Each live track's best vehicle crops, for reading its plate.
    crops: BestCrops,
    /// Why the input ended, once ingest says so.
    ended: Option<String>,
    done: Option<String>,
    frames: usize,
    events: usize,
    /// Start and frame count of the current frames/s window (metrics).
    fps_window: Option<(Instant, u64)>,
    rate: RateState,
    skipped: usize,
    /// With `prepare_ahead`: whether the ingest thread prepares every frame
    /// (only while every frame is analysed; skipped ones need nothing).
    prepare_all: Option<Arc<AtomicBool>>,
    /// The camera's detect region (`[x, y, w, h]`); `None`: the whole frame.
    region: Option<[u32; 4]>,
}

/// A site, ready to run.
pub struct SiteRun {
    cameras: Vec<CameraRun>,
    signals: BTreeMap<String, LiveSignal>,
    /// Listener, and per controller group the signals it drives.
    controllers: Vec<(ControllerListener, BTreeMap<String, Vec<String>>)>,
    lamps: LampClassifier,
    evidence: Option<EvidenceStage>,
    metrics: Option<Arc<Metrics>>,
}

impl SiteRun {
    /// Builds every camera, approach and signal source of a validated
    /// config. Relative source paths resolve against `base_dir`. Cameras
    /// without an approach or a vision signal are not opened.
    pub fn new(
        config: &SiteConfig,
        base_dir: &Path,
        options: &RunOptions,
    ) -> Result<Self, PipelineError> {
        let mut signals = BTreeMap::new();
        let mut by_listen: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (id, s) in &config.signals {
            signals.insert(
                id.clone(),
                LiveSignal::new(
                    s.fixed_time.clone(),
                    s.controller.is_some(),
                    s.vision.is_some(),
                ),
            );
            if let Some(c) = &s.controller {
                by_listen
                    .entry(c.listen.clone())
                    .or_default()
                    .entry(c.group.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        let mut controllers = Vec::new();
        for (listen, groups) in by_listen {
            let signal = groups
                .values()
                .flatten()
                .next()
                .cloned()
                .unwrap_or_default();
            let listener =
                ControllerListener::bind(&listen).map_err(|source| PipelineError::Listen {
                    signal,
                    listen: listen.clone(),
                    source,
                })?;
            tracing::info!(%listen, "listening for signal-controller messages");
            controllers.push((listener, groups));
        }
        let mut cameras = Vec::new();
        for (cam_id, camera) in &config.cameras {
            let approaches = config
                .approaches
                .iter()
                .filter(|(_, a)| &a.camera == cam_id)
                .map(|(id, a)| {
                    ApproachRules::from_config(id, a, camera.homography.as_ref(), options.counts)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let vision: Vec<(String, [f64; 4])> = config
                .signals
                .iter()
                .filter_map(|(id, s)| match &s.vision {
                    Some(VisionSignal {
                        camera, lamp_roi, ..
                    }) if camera == cam_id => Some((id.clone(), *lamp_roi)),
                    _ => None,
                })
                .collect();
            if approaches.is_empty() && vision.is_empty() {
                continue;
            }
            let spec = SourceSpec::from_config(cam_id, camera, base_dir)?;
            let origin = spec.recorded_at_us;
            let rate = RateState::new(options.detection, camera.fps);
            let prepare_all = options
                .prepare_ahead
                .map(|p| (p, Arc::new(AtomicBool::new(rate.every() == 1))));
            // The part of the frame the detector looks at.
            let region = camera.detect_region_px();
            let prep: Option<FramePrep> = prepare_all.as_ref().map(|(preparer, all)| {
                let (all, preparer) = (Arc::clone(all), *preparer);
                let prep: FramePrep = Arc::new(move |rgb: &RgbImage| {
                    all.load(Ordering::Relaxed)
                        .then(|| PreparedInput(Arc::new(preparer.prepare_region(rgb, region))))
                });
                prep
            });
            let ingest = CameraIngest::spawn_with(
                spec,
                IngestConfig {
                    lossless: true,
                    // Each queued frame is a full RGB image (2.8 MB at
                    // 720p): four absorb a plate read or an evidence flush
                    // (~0.15 s at 25 fps) and keep 4 x 720p cameras within
                    // the edge box's memory budget.
                    queue_capacity: 4,
                    // Several cameras share the cores: one decoder thread
                    // each, as the decode floor of `vigil bench` measures.
                    // One camera lets FFmpeg choose (frame threads cost a
                    // frame buffer each).
                    decode_threads: usize::from(config.cameras.len() > 1),
                    // Packets for an event's clip and stills: pre- and
                    // post-roll, plus the time a track takes from the stop
                    // line to the clearance line and the post-roll wait.
                    ring: vigil_video::RingConfig {
                        pre_roll: Duration::from_secs_f64(
                            (config.evidence.pre_roll_s + config.evidence.post_roll_s).max(0.0)
                                + 12.0,
                        ),
                        ..vigil_video::RingConfig::default()
                    },
                    ..IngestConfig::default()
                },
                prep,
            );
            let mut analysis = CameraAnalysis::new(cam_id, approaches, options.tracker);
            if let Some(o) = origin {
                analysis.set_origin(o);
            }
            cameras.push(CameraRun {
                ingest,
                analysis,
                vision,
                crops: BestCrops::default(),
                ended: None,
                done: None,
                frames: 0,
                events: 0,
                fps_window: None,
                rate,
                skipped: 0,
                prepare_all: prepare_all.map(|(_, all)| all),
                region,
            });
        }
        Ok(Self {
            cameras,
            signals,
            controllers,
            lamps: LampClassifier::default(),
            evidence: None,
            metrics: None,
        })
    }

    /// Packages every violation into the stage's spool.
    /// Adapts camera `i`'s detection rate to its queue and says whether its
    /// next frame is analysed.
    fn take_frame(&mut self, i: usize) -> bool {
        let cam = &mut self.cameras[i];
        let queued = cam.ingest.frames().len();
        if let Some(every) = cam.rate.adapt(queued, Instant::now()) {
            tracing::warn!(
                camera = cam.analysis.camera(),
                every,
                queued,
                "detection rate changed: analysing every {every}. frame"
            );
            if let Some(m) = &self.metrics {
                m.detect_every
                    .get_or_create(&Metrics::camera(cam.analysis.camera()))
                    .set(i64::from(every));
            }
            if let Some(all) = &cam.prepare_all {
                all.store(every == 1, Ordering::Relaxed);
            }
        }
        cam.rate.take()
    }

    /// Keeps `metrics` up to date as the run goes (see [`Metrics`]).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        for cam in &self.cameras {
            let label = Metrics::camera(cam.analysis.camera());
            metrics.camera_up.get_or_create(&label).set(1);
            // Changed only when the rate adapts (see `take_frame`).
            metrics
                .detect_every
                .get_or_create(&label)
                .set(i64::from(cam.rate.every()));
        }
        self.metrics = Some(metrics);
        self
    }

    pub fn with_evidence(mut self, stage: EvidenceStage) -> Self {
        self.evidence = Some(stage);
        self
    }

    pub fn evidence(&self) -> Option<&EvidenceStage> {
        self.evidence.as_ref()
    }

    /// Packages the camera's due events; a failure (a full disk) is logged
    /// and retried later, never fatal: the events stay queued.
    fn poll_evidence(
        &mut self,
        i: usize,
        newest_us: UnixMicros,
        flush: bool,
        report: &mut RunReport,
    ) {
        let Some(stage) = &mut self.evidence else {
            return;
        };
        let cam = &self.cameras[i];
        match stage.poll(cam.analysis.camera(), &cam.ingest, newest_us, flush) {
            Ok(done) => report.packages += done.len(),
            Err(e) => {
                tracing::error!(camera = cam.analysis.camera(), error = %e, "evidence package not committed; will retry")
            }
        }
    }

    /// The controller listeners' addresses (useful with port 0).
    pub fn controller_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.controllers
            .iter()
            .map(|(l, _)| l.local_addr())
            .collect()
    }

    fn drain_controllers(&mut self, report: &mut RunReport) {
        for (listener, groups) in &self.controllers {
            for (_, delivery) in listener.drain() {
                match delivery {
                    Ok(message) => {
                        let Some(ids) = groups.get(&message.group) else {
                            report.controller_rejected += 1;
                            tracing::warn!(group = %message.group, "controller message for a group no signal uses");
                            continue;
                        };
                        report.controller_messages += 1;
                        for id in ids {
                            if let Some(s) = self.signals.get_mut(id) {
                                s.controller_message(&message);
                            }
                        }
                    }
                    Err(e) => {
                        report.controller_rejected += 1;
                        tracing::warn!(error = %e, "controller datagram refused");
                    }
                }
            }
        }
    }

    /// Runs until every input ends, `stop` is set, or `max_frames` is
    /// reached. `on_frame` sees each analysed frame (progress, drawing).
    pub fn run(
        &mut self,
        detector: &mut Detector,
        mut plates: Option<&mut PlateStage>,
        sink: &mut dyn RecordSink,
        options: &RunOptions,
        stop: &AtomicBool,
        on_frame: &mut dyn FnMut(&str, &RgbImage, &FrameAnalysis),
    ) -> Result<RunReport, PipelineError> {
        let started = Instant::now();
        let mut report = RunReport::default();
        let mut total_frames = 0usize;
        while !stop.load(Ordering::Relaxed) && self.cameras.iter().any(|c| c.done.is_none()) {
            self.drain_controllers(&mut report);
            let mut served = false;
            // At most one frame per camera: a camera's frames stay in order.
            let mut round: Vec<(usize, Frame)> = Vec::new();
            for i in 0..self.cameras.len() {
                if self.cameras[i].done.is_some() {
                    continue;
                }
                let frame = match self.cameras[i].ingest.frames().try_recv() {
                    Ok(f) => f,
                    Err(_) => {
                        let cam = &mut self.cameras[i];
                        for e in cam.ingest.events().try_iter() {
                            match e {
                                IngestEvent::EndOfInput { frames } => {
                                    cam.ended = Some(format!("end of input ({frames} frames)"));
                                }
                                IngestEvent::Failed { error } => cam.ended = Some(error),
                                _ => {}
                            }
                        }
                        // Frames still queued are analysed before the camera is done.
                        if cam.ended.is_some() && cam.ingest.frames().is_empty() {
                            tracing::info!(camera = cam.analysis.camera(), why = ?cam.ended, "input finished");
                            cam.done = cam.ended.take();
                            if let Some(m) = &self.metrics {
                                let label = Metrics::camera(cam.analysis.camera());
                                m.camera_up.get_or_create(&label).set(0);
                                if let Some(why) = cam
                                    .done
                                    .as_deref()
                                    .filter(|w| !w.starts_with("end of input"))
                                {
                                    m.set_unhealthy(Some(format!(
                                        "camera {}: {why}",
                                        cam.analysis.camera()
                                    )));
                                }
                            }
                        }
                        continue;
                    }
                };
                served = true;
                if frame.rgb.is_none() {
                    continue;
                }
                let t = frame.meta.time_us;
                if !self.take_frame(i) {
                    // Not analysed at this detection rate; the post-roll of
                    // pending evidence still advances with it.
                    self.cameras[i].skipped += 1;
                    self.cameras[i].analysis.skip_frame();
                    if let Some(m) = &self.metrics {
                        m.frames_skipped
                            .get_or_create(&Metrics::camera(self.cameras[i].analysis.camera()))
                            .inc();
                    }
                    self.poll_evidence(i, t, false, &mut report);
                    continue;
                }
                round.push((i, frame));
            }
            // The round's frames, in runs of up to the detector's batch.
            let mut round = round.into_iter().peekable();
            while round.peek().is_some() {
                let batch: Vec<(usize, Frame)> =
                    round.by_ref().take(detector.max_batch()).collect();
                total_frames += self.analyse_batch(
                    batch,
                    detector,
                    plates.as_deref_mut(),
                    sink,
                    (options, &mut report),
                    on_frame,
                )?;
            }
            if !served {
                let idle = Instant::now();
                std::thread::sleep(Duration::from_millis(5));
                record_stage(&mut report, self.metrics.as_deref(), "idle_wait", idle);
            }
        }
        for i in 0..self.cameras.len() {
            self.poll_evidence(i, UnixMicros::MAX, true, &mut report);
        }
        report.packages_pending = self.evidence.as_ref().map_or(0, EvidenceStage::queued);
        for cam in &mut self.cameras {
            for s in cam.analysis.finish() {
                sink.summary(&s)?;
                report.summaries += 1;
            }
            cam.ingest.stop();
            report.cameras.insert(
                cam.analysis.camera().to_owned(),
                CameraReport {
                    frames: cam.frames,
                    frames_skipped: cam.skipped,
                    detect_every_max: cam.rate.max_used,
                    frames_dropped: cam.ingest.stats().frames_dropped,
                    events: cam.events,
                    ended: cam.done.clone(),
                },
            );
        }
        report.elapsed_s = started.elapsed().as_secs_f64();
        report.fps = total_frames as f64 / report.elapsed_s.max(1e-9);
        Ok(report)
    }

    /// Analyses frames of different cameras (camera index, frame), their
    /// detections made in one batch (see [`Detector::max_batch`]); returns
    /// how many were analysed. Signal timelines are read per frame before
    /// detection, in arrival order, as they would be one by one.
    fn analyse_batch(
        &mut self,
        frames: Vec<(usize, Frame)>,
        detector: &mut Detector,
        mut plates: Option<&mut PlateStage>,
        sink: &mut dyn RecordSink,
        (options, report): (&RunOptions, &mut RunReport),
        on_frame: &mut dyn FnMut(&str, &RgbImage, &FrameAnalysis),
    ) -> Result<usize, PipelineError> {
        let mut timelines = Vec::with_capacity(frames.len());
        let mut images = Vec::with_capacity(frames.len());
        let mut prepared = Vec::with_capacity(frames.len());
        for (i, frame) in frames {
            let Some(rgb) = frame.rgb else { continue };
            timelines.push(self.signal_timelines(i, frame.meta.time_us, &rgb, report)?);
            prepared.push(
                frame
                    .prepared
                    .and_then(|p| p.0.downcast::<Prepared>().ok())
                    .and_then(|p| Arc::try_unwrap(p).ok()),
            );
            images.push((i, frame.meta.time_us, rgb));
        }
        let stage = Instant::now();
        let inputs: Vec<Prepared> = prepared
            .into_iter()
            .zip(&images)
            .map(|(p, (i, _, rgb))| {
                p.unwrap_or_else(|| detector.prepare_region(rgb, self.cameras[*i].region))
            })
            .collect();
        let found = detector.detect_prepared_batch(inputs)?;
        let share = stage.elapsed().as_secs_f64() / images.len().max(1) as f64;
        let analysed = images.len();
        for (((i, t, rgb), found), timelines) in images.into_iter().zip(found).zip(timelines) {
            let stage = Instant::now();
            let detections: Vec<Detection> = associate_riders(&found, true);
            let pairing = stage.elapsed().as_secs_f64();
            record_seconds(report, self.metrics.as_deref(), "detect", share + pairing);
            self.analyse(
                (i, t, &rgb),
                &detections,
                timelines,
                plates.as_deref_mut(),
                sink,
                report,
                on_frame,
            )?;
            let stage = Instant::now();
            self.poll_evidence(i, t, false, report);
            if self.evidence.is_some() {
                record_stage(report, self.metrics.as_deref(), "evidence", stage);
            }
            let cam = &mut self.cameras[i];
            cam.frames += 1;
            if let Some(m) = &self.metrics {
                let label = Metrics::camera(cam.analysis.camera());
                m.frames.get_or_create(&label).inc();
                m.queue_depth
                    .get_or_create(&label)
                    .set(cam.ingest.frames().len() as i64);
                m.frames_dropped
                    .get_or_create(&label)
                    .set(cam.ingest.stats().frames_dropped as i64);
                let window = cam.fps_window.get_or_insert((Instant::now(), 0));
                window.1 += 1;
                let elapsed = window.0.elapsed().as_secs_f64();
                if elapsed >= 2.0 {
                    m.camera_fps
                        .get_or_create(&label)
                        .set(window.1 as f64 / elapsed);
                    cam.fps_window = Some((Instant::now(), 0));
                }
            }
            if options.max_frames.is_some_and(|m| cam.frames >= m) {
                cam.done = Some(format!("stopped after {} frames", cam.frames));
            }
        }
        Ok(analysed)
    }

    /// Feeds the lamp ROIs of camera `i` to their signals, then reads the
    /// timelines of the signals its approaches follow at `t`.
    fn signal_timelines(
        &mut self,
        i: usize,
        t: UnixMicros,
        rgb: &RgbImage,
        report: &mut RunReport,
    ) -> Result<BTreeMap<String, PhaseTimeline>, PipelineError> {
        let stage = Instant::now();
        for (signal, roi) in &self.cameras[i].vision {
            let reading = heads::read_roi(&self.lamps, rgb, *roi);
            if let Some(s) = self.signals.get_mut(signal) {
                s.vision_reading(t, lamp_phase(reading.state));
            }
        }
        if !self.cameras[i].vision.is_empty() {
            record_stage(report, self.metrics.as_deref(), "vision", stage);
        }
        let mut timelines = BTreeMap::new();
        for id in self.cameras[i].analysis.signals() {
            if let Some(s) = self.signals.get_mut(&id) {
                let timeline = s.timeline(t).map_err(|source| PipelineError::Signal {
                    signal: id.clone(),
                    source,
                })?;
                timelines.insert(id, timeline);
            }
        }
        Ok(timelines)
    }

    /// Tracks, applies the rules, reads plates and queues evidence for one
    /// frame of camera `i` with its detections.
    #[allow(clippy::too_many_arguments)]
    fn analyse(
        &mut self,
        (i, t, rgb): (usize, UnixMicros, &RgbImage),
        detections: &[Detection],
        timelines: BTreeMap<String, PhaseTimeline>,
        mut plates: Option<&mut PlateStage>,
        sink: &mut dyn RecordSink,
        report: &mut RunReport,
        on_frame: &mut dyn FnMut(&str, &RgbImage, &FrameAnalysis),
    ) -> Result<(), PipelineError> {
        let stage = Instant::now();
        let cam = &mut self.cameras[i];
        let mut out = cam.analysis.process(t, detections, &timelines);
        cam.crops.update(rgb, &out.tracks);
        record_stage(report, self.metrics.as_deref(), "track_rules", stage);
        for e in &mut out.events {
            let mut plate_crop = None;
            if let Some(stage) = plates.as_deref_mut() {
                let started = Instant::now();
                let read_result = stage.read(&cam.crops.of(e.track_id));
                record_stage(report, self.metrics.as_deref(), "plates", started);
                let (read, crop) = read_result?;
                e.plate_read = read;
                plate_crop = crop;
                e.plate = e
                    .plate_read
                    .as_ref()
                    .filter(|p| p.valid)
                    .map(|p| p.text.clone());
            }
            // The intent is durable before the event is reported, so every
            // event in the record has a package, even across a crash.
            if let Some(stage) = &mut self.evidence {
                let signal = cam
                    .analysis
                    .approaches()
                    .iter()
                    .find(|a| a.id() == e.approach)
                    .and_then(|a| a.signal().map(str::to_owned));
                let timeline = signal
                    .as_ref()
                    .and_then(|s| timelines.get(s))
                    .cloned()
                    .unwrap_or_default();
                stage.enqueue(
                    e.clone(),
                    cam.analysis.trajectory(e.track_id, &e.approach),
                    signal,
                    timeline,
                    plate_crop,
                );
            }
            sink.event(e)?;
            *report.events_by_type.entry(e.kind.clone()).or_default() += 1;
            if let Some(m) = &self.metrics {
                m.events
                    .get_or_create(&EventLabel {
                        camera: e.camera.clone(),
                        r#type: e.kind.clone(),
                    })
                    .inc();
            }
            cam.events += 1;
            tracing::info!(
                camera = %e.camera, approach = %e.approach, r#type = %e.kind,
                track = e.track_id, t = e.t, "violation"
            );
        }
        for s in &out.summaries {
            sink.summary(s)?;
            report.summaries += 1;
        }
        on_frame(cam.analysis.camera(), rgb, &out);
        Ok(())
    }
}

fn lamp_phase(s: LampState) -> Phase {
    match s {
        LampState::Red => Phase::Red,
        LampState::Amber => Phase::Amber,
        LampState::Green => Phase::Green,
        LampState::Unknown => Phase::Unknown,
    }
}
