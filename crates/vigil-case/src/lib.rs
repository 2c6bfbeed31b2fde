//! The case system: operators turn verified evidence packages into cases.
//!
//! Built so far: verified package intake over HTTP (`server`, `ingest`)
//! into SQLite or PostgreSQL (`store`), with idempotent duplicates and
//! integrity alerts for sequence gaps, broken chains and replays. The
//! operator UI, decisions and the audit chain come next (issue 7).
//!
//! The invariant this crate keeps: nothing an edge sends is stored before
//! it is verified against the device's registered key.

pub mod ingest;
pub mod server;
pub mod store;

pub use ingest::{ingest, IngestOutcome, IngestRequest};
pub use store::{Alert, Store, StoreError};
