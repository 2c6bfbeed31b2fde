//! Red-light running, per DESIGN.md: the front of a road user crosses the
//! stop line into the intersection while the signal is red, past the grace
//! period, after an amber of at least the minimum length, AND later crosses
//! the clearance line. A vehicle that stops over the stop line is not a
//! red-light runner (that is encroachment), and every doubtful case — grace,
//! unknown phase, a short or unknown amber, a vehicle already past the line —
//! resolves in the driver's favour.
//!
//! Crossing instants are interpolated between frames from the two positions
//! either side of the line, so a verdict depends on timestamps, never on
//! frame counts or frame rate.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_core::geometry::{Point, Segment};
use vigil_core::time::UnixMicros;

use crate::lines::{beyond, crossing};
use crate::signal::{Phase, PhaseContext, PhaseTimeline};

/// The lines of one approach, in the same plane as the track positions.
#[derive(Debug, Clone, Copy)]
pub struct ApproachLines {
    pub stop: Segment,
    pub clearance: Segment,
    /// Any vector pointing the way traffic goes.
    pub travel: Point,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedLightConfig {
    /// Crossing this long into red or less is never a violation.
    pub grace_us: i64,
    /// A red after a shorter (or unknown) amber is not enforced.
    pub min_amber_us: i64,
    /// The track must have been seen on the approach side this long before
    /// it crosses: a track born at the line (a stationary rider whose
    /// identity switched, a box that changed shape) has no observed approach
    /// to judge.
    pub min_approach_us: i64,
}

impl Default for RedLightConfig {
    fn default() -> Self {
        Self {
            grace_us: 300_000,
            min_amber_us: 3_000_000,
            min_approach_us: 300_000,
        }
    }
}

/// A confirmed red-light run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RedLightViolation {
    pub track_id: u64,
    /// Interpolated instant the front crossed the stop line.
    pub t_stop_us: UnixMicros,
    /// Interpolated instant the front crossed the clearance line.
    pub t_clear_us: UnixMicros,
    pub time_into_red_us: i64,
    pub amber_before_us: i64,
    pub red_since_us: UnixMicros,
    /// The front position where it crossed the stop line.
    pub stop_point: (f64, f64),
}

/// Why a stop-line crossing did not start a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exemption {
    NotRed,
    WithinGrace,
    PhaseUnknown,
    AmberTooShortOrUnknown,
    /// The track was not watched approaching the line for long enough.
    NotSeenApproaching,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Seen on the approach side; `last` is the previous front position.
    Approaching {
        last: (UnixMicros, Point),
        /// When the track was first seen on the approach side.
        since: UnixMicros,
    },
    /// Crossed the stop line on red; waiting to see it clear the junction.
    CrossedOnRed {
        last: (UnixMicros, Point),
        t_stop: UnixMicros,
        ctx: PhaseContext,
        at: Point,
    },
    /// Nothing more can happen for this track.
    Settled,
}

/// Per-approach rule state over all tracks of one camera.
#[derive(Debug)]
pub struct RedLightRule {
    lines: ApproachLines,
    config: RedLightConfig,
    tracks: BTreeMap<u64, State>,
    /// Crossings that were not enforced, with the reason (kept for counts and audit).
    pub exemptions: Vec<(u64, UnixMicros, Exemption)>,
}

impl RedLightRule {
    pub fn new(lines: ApproachLines, config: RedLightConfig) -> Self {
        Self {
            lines,
            config,
            tracks: BTreeMap::new(),
            exemptions: Vec::new(),
        }
    }

    /// Feeds one observation of a track: its front and its rear ground
    /// points. Returns a violation when the front has just crossed the
    /// clearance line after running the red — with the rear past the stop
    /// line by then, so a vehicle stopped astride the line whose front
    /// estimate jumps forward (a box that grows when its rider is merged in)
    /// cannot fake a run through the junction.
    pub fn observe(
        &mut self,
        track_id: u64,
        time_us: UnixMicros,
        front: Point,
        rear: Point,
        signal: &PhaseTimeline,
    ) -> Option<RedLightViolation> {
        let lines = self.lines;
        let ahead = |seg: &Segment, p: Point| beyond(seg, lines.travel, p);
        let state = match self.tracks.get(&track_id).copied() {
            // First sighting: past the stop line already means it crossed
            // before we could see it — never a violation.
            None if ahead(&lines.stop, front) => State::Settled,
            None => State::Approaching {
                last: (time_us, front),
                since: time_us,
            },
            Some(State::Settled) => State::Settled,
            Some(State::Approaching { last, since }) => {
                match crossing(&lines.stop, lines.travel, last, (time_us, front)) {
                    None => State::Approaching {
                        last: (time_us, front),
                        since,
                    },
                    Some((t_stop, at)) => {
                        let ctx = signal.context_at(t_stop);
                        let fresh = t_stop - since < self.config.min_approach_us;
                        match self
                            .exemption(&ctx, t_stop)
                            .or(fresh.then_some(Exemption::NotSeenApproaching))
                        {
                            // Check the clearance line on the rest of this
                            // move too: at a low frame rate one step can cross both.
                            None => {
                                let crossed = State::CrossedOnRed {
                                    last: (t_stop, at),
                                    t_stop,
                                    ctx,
                                    at,
                                };
                                self.tracks.insert(track_id, crossed);
                                return self.observe(track_id, time_us, front, rear, signal);
                            }
                            Some(why) => {
                                self.exemptions.push((track_id, t_stop, why));
                                State::Settled
                            }
                        }
                    }
                }
            }
            Some(State::CrossedOnRed {
                last,
                t_stop,
                ctx,
                at,
            }) => match crossing(&lines.clearance, lines.travel, last, (time_us, front)) {
                Some((t_clear, _)) if ahead(&lines.stop, rear) => {
                    self.tracks.insert(track_id, State::Settled);
                    return Some(RedLightViolation {
                        track_id,
                        t_stop_us: t_stop,
                        t_clear_us: t_clear,
                        time_into_red_us: t_stop - ctx.since_us,
                        amber_before_us: ctx.amber_before_us.unwrap_or(0),
                        red_since_us: ctx.since_us,
                        stop_point: (at.x, at.y),
                    });
                }
                // Not through yet, or only the front estimate jumped: keep watching.
                _ => State::CrossedOnRed {
                    last: (time_us, front),
                    t_stop,
                    ctx,
                    at,
                },
            },
        };
        self.tracks.insert(track_id, state);
        None
    }

    fn exemption(&self, ctx: &PhaseContext, t: UnixMicros) -> Option<Exemption> {
        match ctx.phase {
            Phase::Unknown => Some(Exemption::PhaseUnknown),
            Phase::Green | Phase::Amber => Some(Exemption::NotRed),
            Phase::Red if t - ctx.since_us <= self.config.grace_us => Some(Exemption::WithinGrace),
            Phase::Red
                if ctx
                    .amber_before_us
                    .is_none_or(|a| a < self.config.min_amber_us) =>
            {
                Some(Exemption::AmberTooShortOrUnknown)
            }
            Phase::Red => None,
        }
    }

    /// Forgets a track that has ended (keeps memory bounded).
    pub fn forget(&mut self, track_id: u64) {
        self.tracks.remove(&track_id);
    }
}
