//! Signal phases over time, per approach.
//!
//! A timeline is a sorted list of non-overlapping intervals; time not
//! covered is `Unknown`. Sources: a fixed-time plan (anchored to wall-clock
//! time), phase-change messages from the controller or from vision. Two
//! timelines of one signal are cross-checked: where they disagree the
//! phase is `Unknown`, and an unknown phase is never enforced.

use serde::{Deserialize, Serialize};
use vigil_core::config::{FixedTimePlan, LampState};
use vigil_core::time::{toml_datetime_to_unix_us, UnixMicros};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Red,
    Amber,
    Green,
    Unknown,
}

impl From<LampState> for Phase {
    fn from(s: LampState) -> Self {
        match s {
            LampState::Red => Phase::Red,
            LampState::Amber => Phase::Amber,
            LampState::Green => Phase::Green,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub start_us: UnixMicros,
    pub end_us: UnixMicros,
    pub phase: Phase,
}

/// What a rule needs to know about the signal at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseContext {
    pub phase: Phase,
    /// Start of the current run of this phase.
    pub since_us: UnixMicros,
    /// Duration of the amber that directly preceded the current phase, if any.
    pub amber_before_us: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTimeline {
    intervals: Vec<Interval>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("fixed-time plan: {0}")]
    Plan(String),
    #[error("controller message {message:?}: {reason}")]
    Message { message: String, reason: String },
}

impl PhaseTimeline {
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Appends a phase from `start_us` until the next change (or `end_us`).
    /// Adjacent intervals of the same phase merge.
    pub fn push(&mut self, start_us: UnixMicros, end_us: UnixMicros, phase: Phase) {
        if end_us <= start_us {
            return;
        }
        if let Some(last) = self.intervals.last_mut() {
            if last.phase == phase && last.end_us == start_us {
                last.end_us = end_us;
                return;
            }
        }
        self.intervals.push(Interval {
            start_us,
            end_us,
            phase,
        });
    }

    /// Builds a timeline from phase-change events `(time, phase)`, each
    /// lasting until the next; the last lasts until `until_us`.
    pub fn from_changes(changes: &[(UnixMicros, Phase)], until_us: UnixMicros) -> Self {
        let mut sorted = changes.to_vec();
        sorted.sort_by_key(|c| c.0);
        let mut t = PhaseTimeline::default();
        for (i, &(at, phase)) in sorted.iter().enumerate() {
            let end = sorted.get(i + 1).map_or(until_us, |n| n.0);
            t.push(at, end, phase);
        }
        t
    }

    /// The plan's phases over `[from_us, to_us)`.
    pub fn from_fixed_plan(
        plan: &FixedTimePlan,
        from_us: UnixMicros,
        to_us: UnixMicros,
    ) -> Result<Self, SignalError> {
        let anchor = toml_datetime_to_unix_us(&plan.anchor).ok_or_else(|| {
            SignalError::Plan(format!(
                "anchor {} lacks a date, time or offset",
                plan.anchor
            ))
        })?;
        let cycle = (plan.cycle_s * 1e6).round() as i64;
        if cycle <= 0 || plan.phases.is_empty() {
            return Err(SignalError::Plan(
                "the cycle must be positive with at least one phase".into(),
            ));
        }
        let start = anchor + (plan.offset_s * 1e6).round() as i64;
        // The first cycle that starts at or before `from_us`.
        let mut cycle_start = start + (from_us - start).div_euclid(cycle) * cycle;
        let mut t = PhaseTimeline::default();
        while cycle_start < to_us {
            let mut at = cycle_start;
            for p in &plan.phases {
                let end = at + (p.duration_s * 1e6).round() as i64;
                let (a, b) = (at.max(from_us), end.min(to_us));
                t.push(a, b, p.state.into());
                at = end;
            }
            cycle_start += cycle;
        }
        Ok(t)
    }

    pub fn phase_at(&self, t: UnixMicros) -> Phase {
        self.index_at(t)
            .map_or(Phase::Unknown, |i| self.intervals[i].phase)
    }

    fn index_at(&self, t: UnixMicros) -> Option<usize> {
        let i = self.intervals.partition_point(|iv| iv.end_us <= t);
        self.intervals
            .get(i)
            .filter(|iv| iv.start_us <= t)
            .map(|_| i)
    }

    pub fn context_at(&self, t: UnixMicros) -> PhaseContext {
        let Some(i) = self.index_at(t) else {
            return PhaseContext {
                phase: Phase::Unknown,
                since_us: t,
                amber_before_us: None,
            };
        };
        let cur = self.intervals[i];
        let amber_before_us = i
            .checked_sub(1)
            .map(|p| self.intervals[p])
            .filter(|p| p.phase == Phase::Amber && p.end_us == cur.start_us)
            .map(|p| p.end_us - p.start_us);
        PhaseContext {
            phase: cur.phase,
            since_us: cur.start_us,
            amber_before_us,
        }
    }

    /// Like [`cross_check`](Self::cross_check), but a disagreement shorter
    /// than `tolerance_us` where one source says red is resolved to the
    /// other source's phase: two honest sources see a change a frame or a
    /// network hop apart, and that sliver resolves in the driver's favour
    /// (red starts at the later report and ends at the earlier one). Longer
    /// disagreements, and short ones between other phases, are `Unknown`.
    pub fn cross_check_within(&self, other: &PhaseTimeline, tolerance_us: i64) -> PhaseTimeline {
        let strict = self.cross_check(other);
        let mut t = PhaseTimeline::default();
        for iv in strict.intervals() {
            let mut phase = iv.phase;
            if phase == Phase::Unknown && iv.end_us - iv.start_us < tolerance_us {
                let (a, b) = (self.phase_at(iv.start_us), other.phase_at(iv.start_us));
                phase = match (a, b) {
                    (Phase::Red, x) | (x, Phase::Red) if x != Phase::Unknown && x != Phase::Red => {
                        x
                    }
                    _ => Phase::Unknown,
                };
            }
            t.push(iv.start_us, iv.end_us, phase);
        }
        t
    }

    /// Where both timelines agree, their phase; elsewhere `Unknown`.
    pub fn cross_check(&self, other: &PhaseTimeline) -> PhaseTimeline {
        let mut cuts: Vec<UnixMicros> = self
            .intervals
            .iter()
            .chain(&other.intervals)
            .flat_map(|iv| [iv.start_us, iv.end_us])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut t = PhaseTimeline::default();
        for w in cuts.windows(2) {
            let (a, b) = (self.phase_at(w[0]), other.phase_at(w[0]));
            let phase = if a == b { a } else { Phase::Unknown };
            t.push(w[0], w[1], phase);
        }
        t
    }
}

/// A phase-change message from the signal controller, one UDP datagram of
/// JSON: `{"group": "B", "state": "red", "at_us": 1773471600000000}`
/// (`state`: red, amber, green or unknown; `at_us`: Unix microseconds, UTC,
/// the instant the lamps changed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerMessage {
    pub group: String,
    pub state: Phase,
    pub at_us: UnixMicros,
}

impl ControllerMessage {
    pub fn parse(datagram: &[u8]) -> Result<Self, SignalError> {
        serde_json::from_slice(datagram).map_err(|e| SignalError::Message {
            message: String::from_utf8_lossy(datagram)
                .chars()
                .take(200)
                .collect(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::config::Phase as PlanPhase;

    fn plan() -> FixedTimePlan {
        FixedTimePlan {
            cycle_s: 20.0,
            anchor: "2026-01-01T00:00:00Z".parse().expect("datetime"),
            offset_s: 0.0,
            phases: vec![
                PlanPhase {
                    state: LampState::Green,
                    duration_s: 8.0,
                },
                PlanPhase {
                    state: LampState::Amber,
                    duration_s: 3.0,
                },
                PlanPhase {
                    state: LampState::Red,
                    duration_s: 9.0,
                },
            ],
        }
    }

    const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

    #[test]
    fn a_fixed_plan_repeats_from_its_anchor() {
        let t = PhaseTimeline::from_fixed_plan(&plan(), T0 + 100_000_000, T0 + 160_000_000)
            .expect("plan");
        assert_eq!(t.phase_at(T0 + 100_000_000), Phase::Green);
        assert_eq!(t.phase_at(T0 + 109_000_000), Phase::Amber);
        let ctx = t.context_at(T0 + 115_000_000);
        assert_eq!(ctx.phase, Phase::Red);
        assert_eq!(ctx.since_us, T0 + 111_000_000);
        assert_eq!(ctx.amber_before_us, Some(3_000_000));
        assert_eq!(
            t.phase_at(T0 + 170_000_000),
            Phase::Unknown,
            "outside the built span"
        );
    }

    #[test]
    fn disagreeing_sources_make_the_interval_unknown() {
        let plan = PhaseTimeline::from_fixed_plan(&plan(), T0, T0 + 20_000_000).expect("plan");
        // The controller turned red 1 s later than the plan says.
        let feed = PhaseTimeline::from_changes(
            &[
                (T0, Phase::Green),
                (T0 + 8_000_000, Phase::Amber),
                (T0 + 12_000_000, Phase::Red),
            ],
            T0 + 20_000_000,
        );
        let checked = plan.cross_check(&feed);
        assert_eq!(checked.phase_at(T0 + 5_000_000), Phase::Green);
        assert_eq!(checked.phase_at(T0 + 11_500_000), Phase::Unknown);
        assert_eq!(checked.phase_at(T0 + 15_000_000), Phase::Red);
    }

    #[test]
    fn controller_messages_parse_or_say_why_not() {
        let m =
            ControllerMessage::parse(br#"{"group":"B","state":"red","at_us":5}"#).expect("valid");
        assert_eq!(m.state, Phase::Red);
        let err = ControllerMessage::parse(br#"{"group":"B","state":"purple","at_us":5}"#)
            .expect_err("bad state");
        assert!(err.to_string().contains("purple"), "{err}");
    }

    #[test]
    fn a_sliver_of_disagreement_at_red_onset_resolves_for_the_driver() {
        let plan = PhaseTimeline::from_fixed_plan(&plan(), T0, T0 + 20_000_000).expect("plan");
        // Vision sees red 80 ms after the plan.
        let vision = PhaseTimeline::from_changes(
            &[
                (T0, Phase::Green),
                (T0 + 8_000_000, Phase::Amber),
                (T0 + 11_080_000, Phase::Red),
            ],
            T0 + 20_000_000,
        );
        let checked = plan.cross_check_within(&vision, 500_000);
        let ctx = checked.context_at(T0 + 15_000_000);
        assert_eq!(ctx.phase, Phase::Red);
        assert_eq!(
            ctx.since_us,
            T0 + 11_080_000,
            "red starts at the later report"
        );
        assert_eq!(ctx.amber_before_us, Some(3_080_000));
        // A whole second apart is a real disagreement.
        let late = PhaseTimeline::from_changes(
            &[
                (T0, Phase::Green),
                (T0 + 8_000_000, Phase::Amber),
                (T0 + 12_000_000, Phase::Red),
            ],
            T0 + 20_000_000,
        );
        let checked = plan.cross_check_within(&late, 500_000);
        assert_eq!(checked.phase_at(T0 + 11_500_000), Phase::Unknown);
    }
}
