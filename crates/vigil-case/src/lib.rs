//! The case system: operators turn verified evidence packages into cases.
//!
//! - [`ingest`]: verified package intake from edge devices;
//! - [`store`]: SQLite (embedded default) or PostgreSQL through one sqlx
//!   code path;
//! - [`media`]: package media on local disk or S3-compatible object storage;
//! - [`review`]: queue, plate edits, decisions and the four-eyes rule;
//! - [`auth`]: users, roles, sessions, login rate limit;
//! - [`audit`]: the hash-chained audit log every action appends to;
//! - [`web`]: the HTTP API, the operators' UI and the public lookup.
//!
//! The invariants this crate keeps: nothing an edge sends is stored before
//! it is verified against the device's registered key; nothing is ever
//! deleted; no event is closed without a confirmation or a dismissal or
//! downgrade approved by a second supervisor; every action and its audit
//! row commit together.

pub mod audit;
pub mod auth;
pub mod ingest;
pub mod media;
pub mod review;
pub mod store;
pub mod web;

/// The HTTP server (kept under its first name for callers).
pub use web as server;

pub use auth::{Role, Session};
pub use ingest::{ingest, IngestOutcome, IngestRequest};
pub use store::{Alert, Store, StoreError};
