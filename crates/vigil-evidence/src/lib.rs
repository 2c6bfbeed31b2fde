//! Evidence packages: every violation becomes a signed, self-verifying
//! package, numbered in a per-camera hash chain, and delivered through a
//! crash-safe spool.
//!
//! - [`manifest`]: what a package claims (JSON Schema v1, canonical form).
//! - [`package`]: sealing (sequence, chain hash, file hashes, Ed25519
//!   signature) and the directory and `.tar` forms.
//! - [`keys`]: the device key pair and keyrings.
//! - [`sheet`]: the evidence sheet, one JPEG readable as a printed notice.
//! - [`verify`]: the checks behind `vigil verify`.
//! - [`spool`]: the on-disk queue that numbers packages and never loses one.
//! - [`uploader`]: delivery to the case system (HTTP contract), retries and rejections.
//!
//! This crate decides nothing about violations: it packages what the rules
//! found, and proves later that nobody changed it.

use std::path::PathBuf;

pub mod keys;
pub mod manifest;
pub mod package;
pub mod sheet;
pub mod spool;
pub mod synthetic;
pub mod uploader;
pub mod verify;

pub use keys::{DeviceKey, Keyring, PublicKey};
pub use manifest::Manifest;
pub use package::{PackageContent, SealedPackage};
pub use spool::{Spool, SpoolError, Spooled, Usage};
pub use uploader::{HttpSink, PackageSink, SendError, UploadConfig, Uploader};
pub use verify::{verify_all, verify_package, verify_tar_bytes, PackageReport};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("cannot build the package: {0}")]
    Build(String),
}
