//! How often each camera's frames go through detection.
//!
//! Detection is most of a frame's cost. When a box cannot keep up with
//! every frame of every camera, analysing every k-th frame keeps the chain
//! real time; the tracker bridges the gap with its motion model and the
//! rules interpolate crossing times between observations (they are tested
//! from 4 to 60 frames/s). The rate is fixed (`every`) or adaptive: it
//! rises by one while decoded frames queue up behind the analysis and falls
//! back after the queue has been empty for a while. Every change is logged
//! and counted; nothing about it is silent.
//!
//! Adapting never takes a camera below [`DetectionRate::min_analysed_fps`]
//! analysed frames per second: on `hanoi-16h15` (6 frames/s, dense
//! motorbikes) `vigil eval violations` scored every 2nd frame 1 of the 4
//! red-light runs and every 3rd 2 with a false positive, against 4 of 4 at
//! every frame (a lower bound: the eval looks the box up at the label's own
//! frame, which may not be analysed; matched at the nearest analysed frame,
//! every 2nd frame still misses one of the four). Dense
//! traffic needs the frames; below that floor the box must shed load some
//! other way (fewer views, a smaller input), and ingest drops frames and
//! counts them rather than silently thinning the evidence.

use std::time::{Duration, Instant};

/// The configured policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionRate {
    /// Analyse every `every`-th frame (1 = all of them); the starting rate
    /// when adaptive.
    pub every: u32,
    /// Adapt between `every` and this (inclusive), if set.
    pub adaptive_max: Option<u32>,
    /// Adapting never analyses fewer frames per second than this (a camera
    /// of unknown frame rate does not adapt).
    pub min_analysed_fps: f64,
}

/// The default floor of analysed frames per second when adapting.
pub const MIN_ANALYSED_FPS: f64 = 10.0;

impl Default for DetectionRate {
    fn default() -> Self {
        Self {
            every: 1,
            adaptive_max: None,
            min_analysed_fps: MIN_ANALYSED_FPS,
        }
    }
}

impl DetectionRate {
    /// The highest "every k-th frame" adapting may reach for a camera of
    /// `source_fps` frames per second.
    pub fn adaptive_cap(&self, source_fps: Option<f64>) -> Option<u32> {
        let max = self.adaptive_max?;
        let by_fps = match source_fps {
            Some(fps) if fps.is_finite() && fps > 0.0 && self.min_analysed_fps > 0.0 => {
                (fps / self.min_analysed_fps).floor().max(1.0) as u32
            }
            _ => 1,
        };
        Some(max.min(by_fps).max(self.every.max(1)))
    }
}

/// Queue depth (decoded frames waiting) at which the rate backs off.
pub const BACKLOG_FRAMES: usize = 3;
/// How long the queue must stay empty before the rate recovers by one.
pub const CALM_BEFORE_RECOVERY: Duration = Duration::from_secs(5);

/// One camera's state.
#[derive(Debug, Clone)]
pub struct RateState {
    policy: DetectionRate,
    /// The highest rate adapting may use (None: fixed).
    cap: Option<u32>,
    every: u32,
    seen: u64,
    calm_since: Option<Instant>,
    /// The highest rate used.
    pub max_used: u32,
}

impl RateState {
    /// `source_fps`: the camera's frame rate, if known.
    pub fn new(policy: DetectionRate, source_fps: Option<f64>) -> Self {
        let every = policy.every.max(1);
        Self {
            policy,
            cap: policy.adaptive_cap(source_fps),
            every,
            seen: 0,
            calm_since: None,
            max_used: every,
        }
    }

    /// The current "every k-th frame".
    pub fn every(&self) -> u32 {
        self.every
    }

    /// Whether this frame (the next one seen) is analysed.
    pub fn take(&mut self) -> bool {
        let analyse = self.seen.is_multiple_of(u64::from(self.every));
        self.seen += 1;
        analyse
    }

    /// Adapts to the queue behind the analysis; returns the new rate when
    /// it changed.
    pub fn adapt(&mut self, queued: usize, now: Instant) -> Option<u32> {
        let max = self.cap?;
        let floor = self.policy.every.max(1);
        if queued >= BACKLOG_FRAMES {
            self.calm_since = None;
            if self.every < max {
                self.every += 1;
                self.seen = 0;
                self.max_used = self.max_used.max(self.every);
                return Some(self.every);
            }
            return None;
        }
        if queued > 0 {
            self.calm_since = None;
            return None;
        }
        let calm = *self.calm_since.get_or_insert(now);
        if self.every > floor && now.duration_since(calm) >= CALM_BEFORE_RECOVERY {
            self.every -= 1;
            self.seen = 0;
            self.calm_since = Some(now);
            return Some(self.every);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_rate_analyses_every_kth_frame() {
        let mut r = RateState::new(
            DetectionRate {
                every: 3,
                ..DetectionRate::default()
            },
            Some(30.0),
        );
        let taken: Vec<bool> = (0..7).map(|_| r.take()).collect();
        assert_eq!(taken, [true, false, false, true, false, false, true]);
        assert_eq!(r.adapt(100, Instant::now()), None, "fixed never adapts");
    }

    #[test]
    fn adaptive_backs_off_under_a_backlog_and_recovers_when_calm() {
        let mut r = RateState::new(
            DetectionRate {
                adaptive_max: Some(3),
                ..DetectionRate::default()
            },
            Some(30.0),
        );
        let t0 = Instant::now();
        assert_eq!(r.adapt(BACKLOG_FRAMES, t0), Some(2));
        assert_eq!(r.adapt(10, t0), Some(3));
        assert_eq!(r.adapt(10, t0), None, "capped at the maximum");
        assert_eq!(r.adapt(1, t0), None, "a short queue holds the rate");
        assert_eq!(r.adapt(0, t0), None, "calm starts");
        assert_eq!(r.adapt(0, t0 + Duration::from_secs(2)), None);
        assert_eq!(r.adapt(0, t0 + CALM_BEFORE_RECOVERY), Some(2));
        assert_eq!(r.adapt(0, t0 + CALM_BEFORE_RECOVERY * 2), Some(1));
        assert_eq!(
            r.adapt(0, t0 + CALM_BEFORE_RECOVERY * 3),
            None,
            "never below the floor"
        );
        assert_eq!(r.max_used, 3);
        assert!(r.take(), "after a change the next frame is analysed");
    }

    #[test]
    fn adapting_keeps_the_analysed_frame_rate_above_the_floor() {
        let policy = DetectionRate {
            adaptive_max: Some(5),
            ..DetectionRate::default()
        };
        assert_eq!(
            policy.adaptive_cap(Some(30.0)),
            Some(3),
            "30 fps: 10 analysed/s"
        );
        assert_eq!(policy.adaptive_cap(Some(25.0)), Some(2));
        assert_eq!(
            policy.adaptive_cap(Some(6.0)),
            Some(1),
            "the Hanoi clip never adapts"
        );
        assert_eq!(
            policy.adaptive_cap(None),
            Some(1),
            "unknown rate: no adapting"
        );
        let mut r = RateState::new(policy, Some(6.0));
        assert_eq!(r.adapt(50, Instant::now()), None);
        assert_eq!(
            DetectionRate::default().adaptive_cap(Some(30.0)),
            None,
            "fixed"
        );
    }
}
