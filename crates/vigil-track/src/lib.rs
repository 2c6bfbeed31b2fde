//! Tracking: turning each camera's per-frame detections into road users
//! with identities and motion.
//!
//! A constant-velocity Kalman filter per track ([`kalman`]), ByteTrack-style
//! two-pass association on motion-predicted boxes ([`tracker`]), and a
//! lifecycle of tentative, confirmed and lost tracks. Time comes from frame
//! timestamps, never frame counts. The crate does no I/O and knows nothing
//! of pixels beyond boxes.

pub mod kalman;
pub mod tracker;

pub use tracker::{TrackState, TrackView, Tracker, TrackerConfig};
