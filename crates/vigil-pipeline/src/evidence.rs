//! From a violation event to a committed evidence package.
//!
//! An event is queued with what is known when it fires (the track's path,
//! the signal timeline, the plate). Its package is built once the camera's
//! stream has passed the event by the post-roll, so the clip can cover
//! `[t - pre_roll, t + post_roll]`: stills and clip come from the camera's
//! packet ring (full resolution, original bitstream). At the end of an
//! input, or on shutdown, every queued event is packaged with what the
//! ring holds: an event is never dropped for want of media, and a missing
//! still or clip is logged and left out of the package rather than
//! blocking it.
//!
//! An event is also made durable the moment it fires: its *intent* (the
//! event, path, signal facts) is written to `<spool>/intents/` (temp file,
//! fsync, rename) and removed once its package is committed. After a crash,
//! [`EvidenceStage::recover_intents`] packages every leftover intent without
//! the media that died with the process (the manifest says so), so a
//! violation the rules emitted is never lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use vigil_core::image::RgbImage;
use vigil_core::time::UnixMicros;
use vigil_evidence::manifest::{
    Manifest, ModelRef, PhaseInterval, PlateCandidate, PlateFacts, SignalFacts, Software, Times,
    TrajectoryPoint, ViolationFacts, SCHEMA_VERSION, WALL_CLOCK_FIELDS,
};
use vigil_evidence::package::{event_id, read_package, PackageContent};
use vigil_evidence::sheet::{encode_jpeg, render_sheet, SheetFacts};
use vigil_evidence::{DeviceKey, Spool, SpoolError, Spooled};
use vigil_rules::{Phase, PhaseTimeline};
use vigil_video::CameraIngest;

use crate::analysis::PathPoint;
use crate::event::ViolationEvent;

/// Facts shared by every package of a site.
#[derive(Debug, Clone)]
pub struct PackagingContext {
    pub site_id: String,
    pub site_name: String,
    pub utc_offset: String,
    pub models: Vec<ModelRef>,
    pub config_sha256: String,
    /// Per signal id, its sources (`fixed_time`, `controller+vision`, ...).
    pub signal_sources: BTreeMap<String, String>,
    /// Per camera, `replay` (a file with a recorded start) or the live
    /// clock's state.
    pub clock_sync: BTreeMap<String, String>,
}

/// What a package needs to know about an event, fixed when it fires and
/// kept on disk until the package is committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intent {
    pub event: ViolationEvent,
    pub signal: SignalFacts,
    pub trajectory: Vec<TrajectoryPoint>,
    pub speed_kmh: Option<f64>,
    /// Before the stop line, at it, at the clearance line.
    pub still_times: [UnixMicros; 3],
    /// The offender's box near each still time.
    pub marks: [Option<[f32; 4]>; 3],
    /// Package once the camera's newest frame is at least this late.
    pub due_us: UnixMicros,
}

/// One event waiting for its post-roll.
#[derive(Debug, Clone)]
struct EvidenceJob {
    intent: Intent,
    plate_crop: Option<RgbImage>,
}

pub struct EvidenceStage {
    /// Shared with the uploader, which takes delivered packages out.
    spool: Arc<Mutex<Spool>>,
    spool_dir: PathBuf,
    key: DeviceKey,
    output_dir: Option<PathBuf>,
    pre_roll_us: i64,
    post_roll_us: i64,
    context: PackagingContext,
    jobs: Vec<EvidenceJob>,
    /// After a failed commit (a full disk), wait until this scene time.
    retry_after: Option<UnixMicros>,
}

impl EvidenceStage {
    pub fn new(
        spool: Spool,
        key: DeviceKey,
        output_dir: Option<PathBuf>,
        pre_roll_s: f64,
        post_roll_s: f64,
        context: PackagingContext,
    ) -> Self {
        Self {
            spool_dir: spool.dir().to_path_buf(),
            spool: Arc::new(Mutex::new(spool)),
            key,
            output_dir,
            pre_roll_us: (pre_roll_s * 1e6).round() as i64,
            post_roll_us: (post_roll_s * 1e6).round() as i64,
            context,
            jobs: Vec::new(),
            retry_after: None,
        }
    }

    /// The spool, for the uploader (hold the lock only briefly).
    pub fn spool(&self) -> Arc<Mutex<Spool>> {
        Arc::clone(&self.spool)
    }

    pub fn spool_dir(&self) -> &Path {
        &self.spool_dir
    }

    fn intents_dir(&self) -> PathBuf {
        self.spool_dir.join("intents")
    }

    /// Queues an event and writes its intent durably; its package is built
    /// after the post-roll.
    pub fn enqueue(
        &mut self,
        event: ViolationEvent,
        path: Vec<PathPoint>,
        signal_id: Option<String>,
        timeline: PhaseTimeline,
        plate_crop: Option<RgbImage>,
    ) {
        let intent = self.intent(event, &path, signal_id, &timeline);
        if let Err(e) = self.write_intent(&intent) {
            // The event is in events.jsonl; its package is still built from
            // memory. Only a crash before then would lose it.
            tracing::error!(error = %e, "could not write the event's intent; a crash now would lose its package");
        }
        self.jobs.push(EvidenceJob { intent, plate_crop });
    }

    fn intent(
        &self,
        event: ViolationEvent,
        path: &[PathPoint],
        signal_id: Option<String>,
        timeline: &PhaseTimeline,
    ) -> Intent {
        let detail_us = |key: &str| event.details.get(key).and_then(serde_json::Value::as_i64);
        let anchor = detail_us("t_stop_us").unwrap_or(event.at_us);
        let first_seen = path.first().map(|p| p.sighting.time_us);
        let still_times = [
            (anchor - 1_000_000).max(first_seen.unwrap_or(i64::MIN)),
            anchor,
            detail_us("t_clear_us").unwrap_or(event.at_us + 500_000),
        ];
        let ctx = timeline.context_at(anchor);
        let red_since = (ctx.phase == Phase::Red).then_some(ctx.since_us);
        let signal = SignalFacts {
            source: signal_id
                .as_ref()
                .and_then(|s| self.context.signal_sources.get(s))
                .cloned()
                .unwrap_or_else(|| "none".into()),
            signal_id,
            phase_at_event: phase_name(ctx.phase).into(),
            red_since_us: red_since,
            time_into_red_s: red_since.map(|s| (anchor - s) as f64 / 1e6),
            amber_before_s: ctx.amber_before_us.map(|a| a as f64 / 1e6),
            timeline: timeline
                .intervals()
                .iter()
                .filter(|iv| iv.end_us >= anchor - 30_000_000 && iv.start_us <= anchor + 10_000_000)
                .map(|iv| PhaseInterval {
                    start_us: iv.start_us,
                    end_us: iv.end_us,
                    phase: phase_name(iv.phase).into(),
                })
                .collect(),
        };
        let trajectory = path
            .iter()
            .map(|p| TrajectoryPoint {
                t_us: p.sighting.time_us,
                frame: p.sighting.frame as u64,
                bbox: [
                    p.sighting.bbox.x1,
                    p.sighting.bbox.y1,
                    p.sighting.bbox.width(),
                    p.sighting.bbox.height(),
                ],
                image: [p.front.x, p.front.y],
                ground: p.ground.map(|g| [g.x, g.y]),
            })
            .collect();
        Intent {
            speed_kmh: speed_kmh(path, anchor),
            marks: still_times.map(|t| box_near(path, t)),
            due_us: event.at_us + self.post_roll_us,
            event,
            signal,
            trajectory,
            still_times,
        }
    }

    fn intent_path(&self, intent: &Intent) -> PathBuf {
        let e = &intent.event;
        self.intents_dir().join(format!(
            "{}.json",
            event_id(&self.key.device_id, &e.camera, e.track_id, &e.kind, e.at_us)
        ))
    }

    fn write_intent(&self, intent: &Intent) -> Result<(), String> {
        let dir = self.intents_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let target = self.intent_path(intent);
        let temp = target.with_extension("json.part");
        let bytes = serde_json::to_vec(intent).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&temp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            std::fs::rename(&temp, &target)?;
            std::fs::File::open(&dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            format!("{}: {e}", target.display())
        })
    }

    /// Packages the intents a crashed run left behind, without media (the
    /// packet ring died with the process). Returns how many were packaged.
    pub fn recover_intents(&mut self) -> Result<usize, SpoolError> {
        let dir = self.intents_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut done = 0;
        for f in files {
            let intent: Intent = match std::fs::read(&f)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(i) => i,
                None => {
                    tracing::error!(file = %f.display(), "unreadable event intent kept for inspection");
                    continue;
                }
            };
            tracing::warn!(event = %f.display(), "packaging an event left by an interrupted run, without media");
            self.package(
                &EvidenceJob {
                    intent,
                    plate_crop: None,
                },
                None,
            )?;
            done += 1;
        }
        Ok(done)
    }

    pub fn queued(&self) -> usize {
        self.jobs.len()
    }

    /// Packages the camera's events whose post-roll has passed (all of
    /// them when `flush`). Returns the committed packages.
    pub fn poll(
        &mut self,
        camera: &str,
        ingest: &CameraIngest,
        newest_us: UnixMicros,
        flush: bool,
    ) -> Result<Vec<Spooled>, SpoolError> {
        if !flush && self.retry_after.is_some_and(|t| newest_us < t) {
            return Ok(Vec::new());
        }
        self.retry_after = None;
        let (ready, waiting): (Vec<EvidenceJob>, Vec<EvidenceJob>) =
            std::mem::take(&mut self.jobs).into_iter().partition(|j| {
                j.intent.event.camera == camera && (flush || newest_us >= j.intent.due_us)
            });
        self.jobs = waiting;
        let mut done = Vec::new();
        let mut ready = ready.into_iter();
        while let Some(job) = ready.next() {
            match self.package(&job, Some(ingest)) {
                Ok(s) => done.push(s),
                Err(e) => {
                    // Keep the job (and the rest) queued: a full disk may
                    // clear. Try again in 5 s of stream time.
                    self.jobs.push(job);
                    self.jobs.extend(ready);
                    self.retry_after = Some(newest_us.saturating_add(5_000_000));
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    fn package(
        &mut self,
        job: &EvidenceJob,
        media: Option<&CameraIngest>,
    ) -> Result<Spooled, SpoolError> {
        let intent = &job.intent;
        let e = &intent.event;
        let stills: Vec<Option<RgbImage>> = intent
            .still_times
            .iter()
            .map(|&t| match media.map(|m| m.still(t)) {
                Some(Ok((_, img))) => Some(img),
                Some(Err(err)) => {
                    tracing::warn!(camera = %e.camera, at_us = t, error = %err, "still not available; packaged without it");
                    None
                }
                None => None,
            })
            .collect();
        let clip = media.and_then(|m| self.cut_clip(m, e.at_us));
        let mut details = e.details.clone();
        if media.is_none() {
            if let Some(map) = details.as_object_mut() {
                map.insert(
                    "media".into(),
                    "lost: the run stopped before this event's stills and clip were packaged"
                        .into(),
                );
            }
        }
        let detail_us = |key: &str| e.details.get(key).and_then(serde_json::Value::as_i64);
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            event_id: event_id(&self.key.device_id, &e.camera, e.track_id, &e.kind, e.at_us),
            device_id: self.key.device_id.clone(),
            site_id: self.context.site_id.clone(),
            site_name: self.context.site_name.clone(),
            camera: e.camera.clone(),
            approach: e.approach.clone(),
            sequence: 0,
            prev_manifest_sha256: None,
            violation: ViolationFacts {
                kind: e.kind.clone(),
                track_id: e.track_id,
                class: e.class.clone(),
                details,
                speed_kmh: intent.speed_kmh,
            },
            times: Times {
                event_at_us: e.at_us,
                stop_line_at_us: detail_us("t_stop_us"),
                clearance_at_us: detail_us("t_clear_us"),
                utc_offset: self.context.utc_offset.clone(),
                clock_sync: self
                    .context
                    .clock_sync
                    .get(&e.camera)
                    .cloned()
                    .unwrap_or_else(|| "unsynced".into()),
                packaged_at_us: vigil_core::time::now_unix_us(),
            },
            signal: intent.signal.clone(),
            trajectory: intent.trajectory.clone(),
            plate: e.plate_read.as_ref().map(|p| PlateFacts {
                text: p.text.clone(),
                valid: p.valid,
                confidence: p.confidence.clamp(0.0, 1.0),
                reads: p.reads,
                colour: p.colour.map(|c| c.as_str().to_owned()),
                candidates: p
                    .candidates
                    .iter()
                    .map(|c| PlateCandidate {
                        text: c.text.clone(),
                        confidence: c.confidence.clamp(0.0, 1.0),
                        valid: c.valid,
                    })
                    .collect(),
            }),
            models: self.context.models.clone(),
            config_sha256: self.context.config_sha256.clone(),
            software: Software {
                name: "vigil".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            files: Vec::new(),
            wall_clock_fields: WALL_CLOCK_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        };

        let mut files = Vec::new();
        for ((name, role), still) in [
            ("stills/before.jpg", "still_before"),
            ("stills/stop_line.jpg", "still_stop_line"),
            ("stills/clearance.jpg", "still_clearance"),
        ]
        .iter()
        .zip(&stills)
        {
            if let Some(img) = still {
                files.push((name.to_string(), role.to_string(), encode_jpeg(img)?));
            }
        }
        if let Some(bytes) = clip {
            files.push(("clip.mp4".into(), "clip".into(), bytes));
        }
        if let Some(crop) = &job.plate_crop {
            files.push((
                "plate/plate-0.jpg".into(),
                "plate_crop".into(),
                encode_jpeg(crop)?,
            ));
        }
        let sheet = render_sheet(
            &[stills[0].as_ref(), stills[1].as_ref(), stills[2].as_ref()],
            job.plate_crop.as_ref(),
            &SheetFacts {
                marks: intent.marks,
                ..sheet_facts(&manifest, e)
            },
        )?;
        files.push(("sheet.jpg".into(), "evidence_sheet".into(), sheet));

        // A panic elsewhere cannot leave the spool half-changed (every change
        // is a rename), so a poisoned lock is still usable.
        let (spooled, manifest, usage) = {
            let mut spool = self.spool.lock().unwrap_or_else(|e| e.into_inner());
            let (spooled, manifest) =
                spool.commit(PackageContent { manifest, files }, &self.key)?;
            (spooled, manifest, spool.usage().ok())
        };
        if let Some(u) = usage.filter(|u| u.near_full) {
            tracing::error!(
                alarm = "spool_near_full",
                pending_bytes = u.pending_bytes,
                quota_bytes = u.quota_bytes,
                pending_packages = u.pending_packages,
                "the spool is nearly full of undelivered packages: is the case system reachable?"
            );
        }
        tracing::info!(
            camera = %spooled.camera, sequence = spooled.sequence, event = %spooled.event_id,
            "evidence package committed"
        );
        let _ = std::fs::remove_file(self.intent_path(intent));
        if let Some(out) = &self.output_dir {
            let dir = out
                .join(&manifest.camera)
                .join(format!("{:06}-{}", manifest.sequence, manifest.event_id));
            if let Err(err) = unpack(&spooled.path, &dir) {
                tracing::warn!(error = %err, dir = %dir.display(), "package directory not written; the spooled .tar is complete");
            }
        }
        Ok(spooled)
    }

    fn cut_clip(&self, ingest: &CameraIngest, at_us: UnixMicros) -> Option<Vec<u8>> {
        let dir = self.spool_dir.join("tmp");
        let path = dir.join(format!("clip-{}-{at_us}.mp4", std::process::id()));
        let result = ingest
            .clip(at_us - self.pre_roll_us, at_us + self.post_roll_us, &path)
            .map_err(|e| e.to_string())
            .and_then(|_| std::fs::read(&path).map_err(|e| e.to_string()));
        let _ = std::fs::remove_file(&path);
        match result {
            Ok(bytes) => Some(bytes),
            Err(err) => {
                tracing::warn!(error = %err, "clip not available; packaged without it");
                None
            }
        }
    }
}

fn unpack(tar: &Path, dir: &Path) -> Result<(), String> {
    for (path, bytes) in read_package(tar).map_err(|e| e.to_string())? {
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&target, bytes).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    Ok(())
}

/// The track's box at the sighting nearest `t` (within half a second).
fn box_near(path: &[PathPoint], t: UnixMicros) -> Option<[f32; 4]> {
    path.iter()
        .min_by_key(|p| (p.sighting.time_us - t).abs())
        .filter(|p| (p.sighting.time_us - t).abs() <= 500_000)
        .map(|p| {
            let b = p.sighting.bbox;
            [b.x1, b.y1, b.width(), b.height()]
        })
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Red => "red",
        Phase::Amber => "amber",
        Phase::Green => "green",
        Phase::Unknown => "unknown",
    }
}

/// Ground speed over the second before `at`, km/h.
fn speed_kmh(path: &[PathPoint], at: UnixMicros) -> Option<f64> {
    let window: Vec<(UnixMicros, vigil_core::geometry::Point)> = path
        .iter()
        .filter(|p| p.sighting.time_us <= at && at - p.sighting.time_us <= 1_000_000)
        .filter_map(|p| p.ground.map(|g| (p.sighting.time_us, g)))
        .collect();
    let (first, last) = (window.first()?, window.last()?);
    let dt = (last.0 - first.0) as f64 / 1e6;
    (dt > 0.1).then(|| last.1.distance(first.1) / dt * 3.6)
}

fn type_title(kind: &str) -> &'static str {
    match kind {
        "red_light" => "Red-light violation",
        "stop_line_encroachment" => "Stop-line encroachment",
        "speeding" => "Speeding",
        "wrong_way" => "Wrong-way driving",
        "lane_movement" => "Movement not allowed from the lane",
        _ => "Violation",
    }
}

/// Local date and time `YYYY-MM-DD HH:MM:SS.mmm (+07:00)` from Unix µs.
fn local_time(us: UnixMicros, offset: &str) -> String {
    vigil_core::time::format_local(us, offset)
}

fn sheet_facts(m: &Manifest, e: &ViolationEvent) -> SheetFacts {
    let mut rows = vec![
        (
            "Place".to_owned(),
            format!("{} — {}", m.site_name, m.approach),
        ),
        (
            "Camera".to_owned(),
            format!("{} (device {})", m.camera, m.device_id),
        ),
        (
            "Time".to_owned(),
            local_time(m.times.event_at_us, &m.times.utc_offset),
        ),
        (
            "Signal".to_owned(),
            match m.signal.time_into_red_s {
                Some(s) => format!(
                    "{} — {s:.2} s into red",
                    m.signal.phase_at_event.to_uppercase()
                ),
                None => m.signal.phase_at_event.to_uppercase(),
            },
        ),
        (
            "Amber before".to_owned(),
            m.signal
                .amber_before_s
                .map_or("—".to_owned(), |a| format!("{a:.2} s")),
        ),
        (
            "Speed".to_owned(),
            m.violation
                .speed_kmh
                .map_or("— (camera not calibrated)".to_owned(), |v| {
                    format!("{v:.0} km/h")
                }),
        ),
        (
            "Plate".to_owned(),
            match &e.plate_read {
                Some(p) if p.valid => format!(
                    "{} ({:.0}%){}",
                    p.text,
                    p.confidence * 100.0,
                    p.colour
                        .map(|c| format!(", {} plate", c.as_str()))
                        .unwrap_or_default()
                ),
                Some(p) => format!(
                    "unreadable — best guess {} ({:.0}%)",
                    p.text,
                    p.confidence * 100.0
                ),
                None => "not read".to_owned(),
            },
        ),
        (
            "Road user".to_owned(),
            format!("{} (track {})", e.class, e.track_id),
        ),
        ("Event".to_owned(), m.event_id.clone()),
    ];
    if let Some(t) = m.times.clearance_at_us.zip(m.times.stop_line_at_us) {
        rows.insert(
            4,
            (
                "Crossed".to_owned(),
                format!(
                    "stop line, then clearance line {:.2} s later",
                    (t.0 - t.1) as f64 / 1e6
                ),
            ),
        );
    }
    SheetFacts {
        title: format!("{} — {}", type_title(&e.kind), m.site_name),
        rows,
        marks: [None; 3],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_applies_the_site_offset() {
        // 2026-03-14T00:00:00Z is 07:00 in Lạng Sơn.
        assert_eq!(
            local_time(1_773_446_400_000_000 + 1_500, "+07:00"),
            "2026-03-14 07:00:00.001 (+07:00)"
        );
        assert_eq!(
            local_time(1_773_446_400_000_000, "-03:30"),
            "2026-03-13 20:30:00.000 (-03:30)"
        );
    }
}
