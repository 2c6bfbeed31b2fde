//! One approach's rules, built from its config section and fed one frame of
//! tracks at a time: the per-approach unit the pipeline runs.
//!
//! Every configured rule sees the same observations; each road user's front
//! and rear ground points are computed here because they depend on the
//! approach's direction of travel. Rules apply to the approach's
//! `enforce_classes`; counts and queues cover every road user.

use serde::Serialize;
use vigil_core::config::{self, segment, Rule};
use vigil_core::detection::{BBox, DetectionClass};
use vigil_core::geometry::{Point, Polygon};
use vigil_core::homography::{Homography, HomographyError};
use vigil_core::time::UnixMicros;
use vigil_core::RoadUserClass;

use crate::counts::{CountObservation, CountsConfig, IntervalSummary, TrafficCounter};
use crate::encroachment::{EncroachmentConfig, EncroachmentRule, EncroachmentViolation};
use crate::lane_movement::{ExitSpec, LaneMovementRule, LaneMovementViolation, LaneSpec};
use crate::position::{front_point, rear_point};
use crate::red_light::{ApproachLines, RedLightConfig, RedLightRule, RedLightViolation};
use crate::signal::{Phase, PhaseTimeline};
use crate::speeding::{SpeedMeasurement, SpeedRule, SpeedZone};
use crate::wrong_way::{WrongWayRule, WrongWayViolation};

#[derive(Debug, thiserror::Error)]
pub enum ApproachError {
    #[error("approach {approach}: {rule} needs {what}")]
    Missing {
        approach: String,
        rule: &'static str,
        what: &'static str,
    },
    #[error("approach {approach}: the camera's homography cannot be used: {source}")]
    Homography {
        approach: String,
        source: HomographyError,
    },
}

/// One road user in one frame.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub track_id: u64,
    pub class: DetectionClass,
    pub bbox: BBox,
}

/// A violation of any rule, tagged by its type in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Violation {
    RedLight(RedLightViolation),
    StopLineEncroachment(EncroachmentViolation),
    Speeding(SpeedMeasurement),
    WrongWay(WrongWayViolation),
    LaneMovement(LaneMovementViolation),
}

impl Violation {
    /// The type as written in event records (`red_light`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::RedLight(_) => "red_light",
            Violation::StopLineEncroachment(_) => "stop_line_encroachment",
            Violation::Speeding(_) => "speeding",
            Violation::WrongWay(_) => "wrong_way",
            Violation::LaneMovement(_) => "lane_movement",
        }
    }

    pub fn track_id(&self) -> u64 {
        match self {
            Violation::RedLight(v) => v.track_id,
            Violation::StopLineEncroachment(v) => v.track_id,
            Violation::Speeding(v) => v.track_id,
            Violation::WrongWay(v) => v.track_id,
            Violation::LaneMovement(v) => v.track_id,
        }
    }

    /// The instant that best shows the offence (the stop-line crossing for a
    /// red-light run): where the evidence's key frame is taken.
    pub fn key_time_us(&self) -> UnixMicros {
        match self {
            Violation::RedLight(v) => v.t_stop_us,
            Violation::StopLineEncroachment(v) => v.at_us,
            Violation::Speeding(v) => v.t_exit_us,
            Violation::WrongWay(v) => v.t_stop_us,
            Violation::LaneMovement(v) => v.t_exit_us,
        }
    }
}

/// What one frame produced on one approach.
#[derive(Debug, Default)]
pub struct ApproachOutput {
    pub violations: Vec<Violation>,
    pub summary: Option<IntervalSummary>,
}

#[derive(Debug)]
pub struct ApproachRules {
    id: String,
    signal: Option<String>,
    lines: ApproachLines,
    enforced: Vec<DetectionClass>,
    red_light: Option<RedLightRule>,
    encroachment: Option<EncroachmentRule>,
    speeding: Option<SpeedRule>,
    wrong_way: Option<WrongWayRule>,
    lane_movement: Option<LaneMovementRule>,
    counter: TrafficCounter,
    to_ground: Option<Homography>,
    /// Used where the approach has no signal, or its timeline is missing:
    /// every instant is `Unknown`, so nothing phase-dependent is enforced.
    unknown: PhaseTimeline,
}

impl ApproachRules {
    /// Builds the rules of a validated approach. `homography` is its
    /// camera's (needed for speed and queue lengths).
    pub fn from_config(
        id: &str,
        approach: &config::Approach,
        homography: Option<&config::Homography>,
        counts: CountsConfig,
    ) -> Result<Self, ApproachError> {
        let missing = |rule, what| ApproachError::Missing {
            approach: id.to_owned(),
            rule,
            what,
        };
        let to_ground = homography
            .map(|h| h.to_ground())
            .transpose()
            .map_err(|source| ApproachError::Homography {
                approach: id.to_owned(),
                source,
            })?;
        let stop = segment(&approach.stop_line);
        let travel = {
            let t = segment(&approach.travel);
            t.b - t.a
        };
        // Without a clearance line (no rule that needs it), a copy of the
        // stop line stands in: "beyond the clearance" is then "beyond the stop".
        let clearance = approach.clearance_line.as_ref().map_or(stop, segment);
        let lines = ApproachLines {
            stop,
            clearance,
            travel,
        };
        let has = |r: Rule| approach.rules.contains(&r);
        let red_light = has(Rule::RedLight)
            .then(|| {
                approach
                    .clearance_line
                    .as_ref()
                    .ok_or(missing("red_light", "a clearance line"))?;
                Ok::<_, ApproachError>(RedLightRule::new(
                    lines,
                    RedLightConfig {
                        grace_us: seconds(approach.grace_s),
                        min_amber_us: seconds(approach.min_amber_s),
                        ..RedLightConfig::default()
                    },
                ))
            })
            .transpose()?;
        let encroachment = has(Rule::StopLineEncroachment).then(|| {
            EncroachmentRule::new(
                lines,
                EncroachmentConfig {
                    grace_us: seconds(approach.grace_s),
                    min_stopped_us: seconds(approach.encroachment_s),
                    ..EncroachmentConfig::default()
                },
            )
        });
        let speeding = has(Rule::Speeding)
            .then(|| {
                let zone = approach
                    .speed
                    .as_ref()
                    .ok_or(missing("speeding", "a [speed] zone"))?;
                let to_ground = to_ground.ok_or(missing("speeding", "the camera's homography"))?;
                Ok::<_, ApproachError>(SpeedRule::new(SpeedZone {
                    entry: segment(&zone.entry_line),
                    exit: segment(&zone.exit_line),
                    travel,
                    to_ground,
                    limit_kmh: zone.limit_kmh,
                    tolerance_kmh: zone.tolerance_kmh,
                }))
            })
            .transpose()?;
        let wrong_way = has(Rule::WrongWay)
            .then(|| {
                approach
                    .clearance_line
                    .as_ref()
                    .ok_or(missing("wrong_way", "a clearance line"))?;
                Ok::<_, ApproachError>(WrongWayRule::new(lines))
            })
            .transpose()?;
        let lane_polygons: Vec<(String, Polygon)> = approach
            .lanes
            .iter()
            .map(|(lane, l)| {
                (
                    lane.clone(),
                    Polygon::new(l.polygon.iter().copied().map(Point::from).collect()),
                )
            })
            .collect();
        let lane_movement = has(Rule::LaneMovement)
            .then(|| {
                if approach.exits.is_empty() {
                    return Err(missing("lane_movement", "[exits] lines"));
                }
                let lanes = approach
                    .lanes
                    .values()
                    .zip(&lane_polygons)
                    .map(|(l, (lane, polygon))| LaneSpec {
                        id: lane.clone(),
                        polygon: polygon.clone(),
                        allowed: l.movements.clone(),
                    })
                    .collect();
                let exits = approach
                    .exits
                    .iter()
                    .map(|(m, line)| ExitSpec {
                        movement: *m,
                        line: segment(line),
                    })
                    .collect();
                Ok(LaneMovementRule::new(lines, lanes, exits))
            })
            .transpose()?;
        let enforced = approach
            .enforce_classes
            .iter()
            .filter_map(|c| c.parse::<RoadUserClass>().ok())
            .map(DetectionClass::RoadUser)
            .collect();
        Ok(Self {
            id: id.to_owned(),
            signal: approach.signal.clone(),
            lines,
            enforced,
            red_light,
            encroachment,
            speeding,
            wrong_way,
            lane_movement,
            counter: TrafficCounter::new(id, lines, lane_polygons, to_ground, counts),
            to_ground,
            unknown: PhaseTimeline::default(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The signal group this approach obeys.
    pub fn signal(&self) -> Option<&str> {
        self.signal.as_deref()
    }

    pub fn lines(&self) -> ApproachLines {
        self.lines
    }

    /// An image point on the ground plane, in metres (None without the
    /// camera's homography).
    pub fn ground_of(&self, p: Point) -> Option<Point> {
        self.to_ground.as_ref().and_then(|h| h.apply(p))
    }

    /// The front ground point of a road user on this approach.
    pub fn front_of(&self, o: &Observation) -> Point {
        front_point(&o.bbox, o.class, self.lines.travel)
    }

    /// Feeds one frame. `users` are the tracks observed (matched to a
    /// detection) in it; `timeline` is this approach's signal, if known.
    pub fn observe_frame(
        &mut self,
        time_us: UnixMicros,
        timeline: Option<&PhaseTimeline>,
        users: &[Observation],
    ) -> ApproachOutput {
        let timeline = timeline.unwrap_or(&self.unknown);
        let travel = self.lines.travel;
        let mut out = ApproachOutput::default();
        let names: Vec<String> = users.iter().map(|u| class_name(u.class)).collect();
        let counted: Vec<CountObservation<'_>> = users
            .iter()
            .zip(&names)
            .map(|(u, name)| CountObservation {
                track_id: u.track_id,
                class: name,
                front: front_point(&u.bbox, u.class, travel),
                rear: rear_point(&u.bbox, u.class, travel),
            })
            .collect();
        out.summary = self
            .counter
            .observe_frame(time_us, timeline.phase_at(time_us), &counted);
        for (u, c) in users.iter().zip(&counted) {
            if !self.enforced.contains(&u.class) {
                continue;
            }
            let (id, front, rear) = (u.track_id, c.front, c.rear);
            if let Some(r) = &mut self.red_light {
                out.violations.extend(
                    r.observe(id, time_us, front, rear, timeline)
                        .map(Violation::RedLight),
                );
            }
            if let Some(r) = &mut self.encroachment {
                out.violations.extend(
                    r.observe(id, time_us, front, timeline)
                        .map(Violation::StopLineEncroachment),
                );
            }
            if let Some(r) = &mut self.speeding {
                out.violations.extend(
                    r.observe(id, time_us, front)
                        .filter(|m| m.violation)
                        .map(Violation::Speeding),
                );
            }
            if let Some(r) = &mut self.wrong_way {
                out.violations
                    .extend(r.observe(id, time_us, front).map(Violation::WrongWay));
            }
            if let Some(r) = &mut self.lane_movement {
                out.violations
                    .extend(r.observe(id, time_us, front).map(Violation::LaneMovement));
            }
        }
        out
    }

    /// Drops a removed track's state from every rule.
    pub fn forget(&mut self, track_id: u64) {
        if let Some(r) = &mut self.red_light {
            r.forget(track_id);
        }
        if let Some(r) = &mut self.encroachment {
            r.forget(track_id);
        }
        if let Some(r) = &mut self.speeding {
            r.forget(track_id);
        }
        if let Some(r) = &mut self.wrong_way {
            r.forget(track_id);
        }
        if let Some(r) = &mut self.lane_movement {
            r.forget(track_id);
        }
    }

    /// The partial period's summary at the end of an input.
    pub fn finish(&mut self) -> Option<IntervalSummary> {
        self.counter.finish()
    }

    /// The phase this approach sees at `t` (Unknown without a timeline).
    pub fn phase_at(&self, timeline: Option<&PhaseTimeline>, t: UnixMicros) -> Phase {
        timeline.unwrap_or(&self.unknown).phase_at(t)
    }
}

fn seconds(s: f64) -> i64 {
    (s * 1e6).round() as i64
}

/// The config spelling of a class (`car`, `motorbike`, ..., `traffic_light`).
pub fn class_name(class: DetectionClass) -> String {
    match class {
        DetectionClass::RoadUser(c) => c.as_str().to_owned(),
        DetectionClass::TrafficLight => "traffic_light".to_owned(),
    }
}
