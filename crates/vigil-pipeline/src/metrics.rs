//! What `vigil run` exposes to Prometheus (`/metrics`, OpenMetrics text).
//!
//! Counters and gauges are updated by [`crate::SiteRun`] as frames are
//! analysed; the binary serves [`Metrics::encode`]. Per camera: frames
//! analysed, frames dropped by ingest, the ingest queue depth, whether the
//! camera is up, and events by type; per stage: latency histograms; for the
//! box: spool depth and clock sync (set by whoever knows them).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabel {
    pub camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    pub camera: String,
    pub r#type: String,
}

fn stage_histogram() -> Histogram {
    // 0.25 ms .. ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric of a run.
pub struct Metrics {
    registry: Registry,
    pub frames: Family<CameraLabel, Counter>,
    pub frames_skipped: Family<CameraLabel, Counter>,
    pub detect_every: Family<CameraLabel, Gauge>,
    pub frames_dropped: Family<CameraLabel, Gauge<i64, std::sync::atomic::AtomicI64>>,
    pub queue_depth: Family<CameraLabel, Gauge>,
    pub camera_up: Family<CameraLabel, Gauge>,
    pub events: Family<EventLabel, Counter>,
    pub stage_seconds: Family<StageLabel, Histogram, fn() -> Histogram>,
    /// Frames analysed per second over the last few seconds, per camera
    /// (a convenience next to `rate(vigil_frames_total[1m])`).
    pub camera_fps: Family<CameraLabel, Gauge<f64, AtomicU64>>,
    pub spool_pending: Gauge,
    pub clock_synced: Gauge,
    /// Why the run is not healthy, if it is not (for `/healthz`).
    unhealthy: Mutex<Option<String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vigil");
        let m = Self {
            frames: Family::default(),
            frames_skipped: Family::default(),
            detect_every: Family::default(),
            frames_dropped: Family::default(),
            queue_depth: Family::default(),
            camera_up: Family::default(),
            events: Family::default(),
            stage_seconds: Family::new_with_constructor(stage_histogram),
            camera_fps: Family::default(),
            spool_pending: Gauge::default(),
            clock_synced: Gauge::default(),
            unhealthy: Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register("frames", "Frames analysed", m.frames.clone());
        registry.register(
            "frames_skipped",
            "Frames decoded but not analysed at the current detection rate",
            m.frames_skipped.clone(),
        );
        registry.register(
            "detect_every",
            "The detection rate: every k-th frame is analysed",
            m.detect_every.clone(),
        );
        registry.register(
            "frames_dropped",
            "Frames ingest dropped because analysis fell behind",
            m.frames_dropped.clone(),
        );
        registry.register(
            "queue_depth",
            "Decoded frames waiting for analysis",
            m.queue_depth.clone(),
        );
        registry.register(
            "camera_up",
            "1 while the camera delivers frames, 0 once its input ended or failed",
            m.camera_up.clone(),
        );
        registry.register("events", "Violations detected", m.events.clone());
        registry.register(
            "stage_seconds",
            "Time per call of each analysis stage (detect, track_rules, plates, vision, evidence)",
            m.stage_seconds.clone(),
        );
        registry.register(
            "camera_fps",
            "Frames analysed per second over the last seconds",
            m.camera_fps.clone(),
        );
        registry.register(
            "spool_pending",
            "Evidence packages in the spool not yet delivered",
            m.spool_pending.clone(),
        );
        registry.register(
            "clock_synced",
            "1 when the kernel clock is NTP-disciplined (or the input is a replay)",
            m.clock_synced.clone(),
        );
        Self { registry, ..m }
    }

    /// The OpenMetrics text for `/metrics`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn camera(camera: &str) -> CameraLabel {
        CameraLabel {
            camera: camera.to_owned(),
        }
    }

    pub fn stage(stage: &str) -> StageLabel {
        StageLabel {
            stage: stage.to_owned(),
        }
    }

    /// Marks the run unhealthy (`None`: healthy again).
    pub fn set_unhealthy(&self, why: Option<String>) {
        *self.unhealthy.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// `None` when healthy, else why not.
    pub fn unhealthy(&self) -> Option<String> {
        self.unhealthy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_encode_as_openmetrics_text() {
        let m = Metrics::new();
        m.frames.get_or_create(&Metrics::camera("north")).inc_by(3);
        m.stage_seconds
            .get_or_create(&Metrics::stage("detect"))
            .observe(0.04);
        m.events
            .get_or_create(&EventLabel {
                camera: "north".into(),
                r#type: "red_light".into(),
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains("vigil_frames_total{camera=\"north\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("vigil_stage_seconds_bucket{le=\"0.064\",stage=\"detect\"} 1")
                || text.contains("vigil_stage_seconds_bucket{stage=\"detect\",le=\"0.064\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_events_total{camera=\"north\",type=\"red_light\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
