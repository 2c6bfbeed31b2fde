//! Vigil's shared vocabulary: domain types, geometry and the site-config schema.
//!
//! Every other crate depends on this one, so it stays free of I/O, OpenCV,
//! ONNX Runtime and async runtimes: it turns text into checked values and
//! does arithmetic, nothing else. That keeps the rules and their tests fast
//! and deterministic.

pub mod config;
pub mod detection;
pub mod geometry;
pub mod homography;
pub mod image;
pub mod road_user;
pub mod time;

pub use road_user::RoadUserClass;
