//! Rules: signal timelines and the violation state machines that turn
//! tracks into verdicts.
//!
//! vigil-rules never sees a pixel: it takes track positions with
//! timestamps, approach geometry and phase timelines, and returns
//! violations with the instants and phase facts that explain them.

pub mod approach;
pub mod counts;
pub mod encroachment;
pub mod lane_movement;
mod lines;
pub mod position;
pub mod red_light;
pub mod signal;
pub mod sources;
pub mod speeding;
pub mod wrong_way;

pub use approach::{
    class_name, ApproachError, ApproachOutput, ApproachRules, Observation, Violation,
};
pub use counts::{CountObservation, CountsConfig, IntervalSummary, LaneSummary, TrafficCounter};
pub use encroachment::{EncroachmentConfig, EncroachmentRule, EncroachmentViolation};
pub use lane_movement::{ExitSpec, LaneMovementRule, LaneMovementViolation, LaneSpec};
pub use red_light::{ApproachLines, Exemption, RedLightConfig, RedLightRule, RedLightViolation};
pub use signal::{ControllerMessage, Interval, Phase, PhaseContext, PhaseTimeline, SignalError};
pub use sources::{ControllerDelivery, ControllerListener, LiveSignal};
pub use speeding::{SpeedMeasurement, SpeedRule, SpeedZone};
pub use wrong_way::{WrongWayRule, WrongWayViolation};
