//! Rules: signal timelines and the violation state machines that turn
//! tracks into verdicts.
//!
//! vigil-rules never sees a pixel: it takes track positions with
//! timestamps, approach geometry and phase timelines, and returns
//! violations with the instants and phase facts that explain them.

pub mod encroachment;
mod lines;
pub mod position;
pub mod red_light;
pub mod signal;
pub mod speeding;
pub mod wrong_way;

pub use encroachment::{EncroachmentConfig, EncroachmentRule, EncroachmentViolation};
pub use red_light::{ApproachLines, Exemption, RedLightConfig, RedLightRule, RedLightViolation};
pub use signal::{ControllerMessage, Interval, Phase, PhaseContext, PhaseTimeline, SignalError};
pub use speeding::{SpeedMeasurement, SpeedRule, SpeedZone};
pub use wrong_way::{WrongWayRule, WrongWayViolation};
