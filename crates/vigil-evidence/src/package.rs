//! Building a package: content in, sealed (numbered, chained, hashed,
//! signed) bytes out, written as a directory or a `.tar`.
//!
//! Layout of a package:
//! ```text
//! manifest.json        canonical JSON (keys sorted, no white space)
//! signature            `ed25519:<hex>` over manifest.json's bytes
//! stills/before.jpg    full-resolution frames
//! stills/stop_line.jpg
//! stills/clearance.jpg
//! clip.mp4             cut from the camera's own packets
//! plate/plate-0.jpg    plate crops, if any
//! sheet.jpg            the evidence sheet
//! ```
//! The tar form holds the same files in this order, with fixed metadata
//! (mode 0644, mtime 0, owner 0), so the same package is the same bytes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path};

use uuid::Uuid;

use crate::keys::DeviceKey;
use crate::manifest::{sha256_hex, FileEntry, Manifest};
use crate::EvidenceError;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "signature";

/// A package's files before it is sealed.
#[derive(Debug, Clone)]
pub struct PackageContent {
    /// Everything but `sequence`, `prev_manifest_sha256` and `files`, which
    /// sealing fills in.
    pub manifest: Manifest,
    /// (path, role, bytes), in package order.
    pub files: Vec<(String, String, Vec<u8>)>,
}

/// A sealed package, ready to write.
#[derive(Debug, Clone)]
pub struct SealedPackage {
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub signature_line: String,
    pub files: Vec<(String, Vec<u8>)>,
}

impl SealedPackage {
    /// SHA-256 of manifest.json: what the next package of the camera chains to.
    pub fn manifest_sha256(&self) -> String {
        sha256_hex(&self.manifest_bytes)
    }

    /// Every file with its bytes, manifest and signature first.
    pub fn entries(&self) -> Vec<(&str, &[u8])> {
        let mut out: Vec<(&str, &[u8])> = vec![
            (MANIFEST_FILE, &self.manifest_bytes),
            (SIGNATURE_FILE, self.signature_line.as_bytes()),
        ];
        out.extend(self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice())));
        out
    }

    /// The deterministic tar form.
    pub fn to_tar(&self) -> Result<Vec<u8>, std::io::Error> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        for (path, bytes) in self.entries() {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, bytes)?;
        }
        builder.into_inner()
    }

    /// Writes the directory form (the directory must not exist).
    pub fn write_dir(&self, dir: &Path) -> Result<(), EvidenceError> {
        for (path, bytes) in self.entries() {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|source| EvidenceError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            let mut f = File::create(&target).map_err(|source| EvidenceError::Io {
                path: target.clone(),
                source,
            })?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(|source| EvidenceError::Io {
                    path: target.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// The event id: a UUIDv7 whose time is the event instant (ms) and whose
/// random bits come from the event's identity, so rebuilding the same event
/// gives the same id and two events never share one.
pub fn event_id(device: &str, camera: &str, track_id: u64, kind: &str, at_us: i64) -> String {
    let digest = sha2::Sha256::digest_parts(&[
        device.as_bytes(),
        b"\0",
        camera.as_bytes(),
        b"\0",
        &track_id.to_be_bytes(),
        kind.as_bytes(),
        b"\0",
        &at_us.to_be_bytes(),
    ]);
    let ms = (at_us.max(0) / 1000) as u64;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f); // version 7
    bytes[8] = 0x80 | (bytes[8] & 0x3f); // RFC 4122 variant
    Uuid::from_bytes(bytes).hyphenated().to_string()
}

trait DigestParts {
    fn digest_parts(parts: &[&[u8]]) -> [u8; 32];
}

impl DigestParts for sha2::Sha256 {
    fn digest_parts(parts: &[&[u8]]) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }
}

/// A package path must be relative, with plain segments only.
pub fn safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

impl PackageContent {
    /// Numbers, chains, hashes and signs the package.
    pub fn seal(
        mut self,
        sequence: u64,
        prev_manifest_sha256: Option<String>,
        key: &DeviceKey,
    ) -> Result<SealedPackage, EvidenceError> {
        let mut entries = Vec::with_capacity(self.files.len());
        let mut files = Vec::with_capacity(self.files.len());
        for (path, role, bytes) in self.files {
            if !safe_relative_path(&path) || path == MANIFEST_FILE || path == SIGNATURE_FILE {
                return Err(EvidenceError::Build(format!(
                    "file path {path:?} is not a plain relative path"
                )));
            }
            entries.push(FileEntry {
                path: path.clone(),
                role,
                bytes: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
            });
            files.push((path, bytes));
        }
        self.manifest.sequence = sequence;
        self.manifest.prev_manifest_sha256 = prev_manifest_sha256;
        self.manifest.device_id = key.device_id.clone();
        self.manifest.files = entries;
        let manifest_bytes = self
            .manifest
            .canonical_bytes()
            .map_err(|e| EvidenceError::Build(format!("manifest: {e}")))?;
        let signature = key.sign(&manifest_bytes);
        Ok(SealedPackage {
            manifest: self.manifest,
            manifest_bytes,
            signature_line: format!("ed25519:{}\n", hex::encode(signature.to_bytes())),
            files,
        })
    }
}

/// Reads a package's files from a directory or a `.tar`: (path, bytes),
/// every regular file, in the order found.
pub fn read_package(path: &Path) -> Result<Vec<(String, Vec<u8>)>, EvidenceError> {
    let io = |source| EvidenceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mut out = Vec::new();
    if meta.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|source| EvidenceError::Io {
                    path: dir.clone(),
                    source,
                })?
                .filter_map(Result::ok)
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(path)
                        .unwrap_or(&p)
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    let bytes = std::fs::read(&p).map_err(|source| EvidenceError::Io {
                        path: p.clone(),
                        source,
                    })?;
                    out.push((rel, bytes));
                }
            }
        }
        return Ok(out);
    }
    let file = File::open(path).map_err(io)?;
    read_tar(file, path)
}

/// Every regular file of a tar stream, `(path, bytes)`; anything else in
/// it (links, devices, directories) makes the package malformed.
pub fn read_tar(reader: impl Read, path: &Path) -> Result<Vec<(String, Vec<u8>)>, EvidenceError> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(reader);
    let not_tar = |e: std::io::Error| EvidenceError::Format {
        path: path.to_path_buf(),
        reason: format!("not a readable tar archive: {e}"),
    };
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        let name = entry
            .path()
            .map_err(not_tar)?
            .to_string_lossy()
            .into_owned();
        if !entry.header().entry_type().is_file() {
            return Err(EvidenceError::Format {
                path: path.to_path_buf(),
                reason: format!("entry {name:?} is not a regular file"),
            });
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(not_tar)?;
        out.push((name, bytes));
    }
    Ok(out)
}
