//! `vigil verify`: is a package complete, unmodified, from a registered
//! device, and in sequence?
//!
//! Each package is checked on its own (schema, canonical form, signature,
//! every file's hash, nothing missing or added), then the packages of each
//! camera are checked as a chain in the order given: sequence numbers
//! without gaps, each manifest chained to the previous one's hash, and no
//! package replayed or reordered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ed25519_dalek::Signature;

use crate::keys::Keyring;
use crate::manifest::{canonical_json, sha256_hex, Manifest, SCHEMA_V1, SCHEMA_VERSION};
use crate::package::{read_package, safe_relative_path, MANIFEST_FILE, SIGNATURE_FILE};
use crate::EvidenceError;

/// The outcome for one package.
#[derive(Debug, Clone)]
pub struct PackageReport {
    pub path: PathBuf,
    pub manifest: Option<Manifest>,
    pub manifest_sha256: Option<String>,
    /// Every problem found; empty means valid.
    pub problems: Vec<String>,
    /// Facts that were checked and held (for the readable report).
    pub checked: Vec<String>,
}

impl PackageReport {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one package (directory or `.tar`) against the keyring.
pub fn verify_package(path: &Path, keys: &Keyring) -> PackageReport {
    let files = read_package(path);
    verify_files(path, files, keys)
}

/// Checks a package `.tar` held in memory (what a receiver was sent);
/// `name` is what the report's messages call it.
pub fn verify_tar_bytes(name: &Path, tar: &[u8], keys: &Keyring) -> PackageReport {
    let files = crate::package::read_tar(tar, name);
    verify_files(name, files, keys)
}

fn verify_files(
    path: &Path,
    files: Result<Vec<(String, Vec<u8>)>, crate::EvidenceError>,
    keys: &Keyring,
) -> PackageReport {
    let mut report = PackageReport {
        path: path.to_path_buf(),
        manifest: None,
        manifest_sha256: None,
        problems: Vec::new(),
        checked: Vec::new(),
    };
    let files = match files {
        Ok(f) => f,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    let mut by_path: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (p, bytes) in files {
        if by_path.insert(p.clone(), bytes).is_some() {
            report.problems.push(format!("file {p} appears twice"));
        }
    }
    let Some(manifest_bytes) = by_path.remove(MANIFEST_FILE) else {
        report.problems.push("manifest.json is missing".into());
        return report;
    };
    let value: serde_json::Value = match serde_json::from_slice(&manifest_bytes) {
        Ok(v) => v,
        Err(e) => {
            report
                .problems
                .push(format!("manifest.json is not valid JSON: {e}"));
            return report;
        }
    };
    match schema_problems(&value) {
        Ok(problems) if problems.is_empty() => report
            .checked
            .push(format!("manifest matches schema v{SCHEMA_VERSION}")),
        Ok(problems) => {
            for p in problems {
                report.problems.push(format!(
                    "manifest.json does not match schema v{SCHEMA_VERSION}: {p}"
                ));
            }
            return report;
        }
        Err(e) => {
            report.problems.push(e);
            return report;
        }
    }
    if canonical_json(&value) != manifest_bytes {
        report.problems.push(
            "manifest.json is not in canonical form: it was edited or rewritten after signing"
                .into(),
        );
    }
    let manifest: Manifest = match serde_json::from_value(value) {
        Ok(m) => m,
        Err(e) => {
            report.problems.push(format!(
                "manifest.json does not match schema v{SCHEMA_VERSION}: {e}"
            ));
            return report;
        }
    };
    report.manifest_sha256 = Some(sha256_hex(&manifest_bytes));

    // Signature.
    match by_path.remove(SIGNATURE_FILE) {
        None => report.problems.push("signature is missing".into()),
        Some(sig) => match parse_signature(&sig) {
            Err(e) => report.problems.push(format!("signature: {e}")),
            Ok(sig) => match keys.get(&manifest.device_id) {
                None => report.problems.push(format!(
                    "no registered public key for device {:?}",
                    manifest.device_id
                )),
                Some(key) if key.verify(&manifest_bytes, &sig) => report
                    .checked
                    .push(format!("signature valid for device {}", manifest.device_id)),
                Some(_) => report.problems.push(format!(
                    "signature does not verify with device {:?}'s registered key: the manifest \
                     was altered, or it was signed with another key",
                    manifest.device_id
                )),
            },
        },
    }

    // Files: every listed one present with its hash, nothing else.
    let mut listed = BTreeSet::new();
    for entry in &manifest.files {
        if !safe_relative_path(&entry.path) {
            report.problems.push(format!(
                "file path {:?} is not a plain relative path",
                entry.path
            ));
            continue;
        }
        listed.insert(entry.path.clone());
        match by_path.get(&entry.path) {
            None => report.problems.push(format!(
                "file {} is listed in the manifest but missing",
                entry.path
            )),
            Some(bytes) => {
                let actual = sha256_hex(bytes);
                if actual != entry.sha256 {
                    report.problems.push(format!(
                        "file {} was modified: SHA-256 {} does not match the manifest's {}",
                        entry.path, actual, entry.sha256
                    ));
                } else if bytes.len() as u64 != entry.bytes {
                    report.problems.push(format!(
                        "file {}: {} bytes, the manifest says {}",
                        entry.path,
                        bytes.len(),
                        entry.bytes
                    ));
                }
            }
        }
    }
    for extra in by_path.keys().filter(|p| !listed.contains(*p)) {
        report.problems.push(format!(
            "file {extra} is not in the manifest (added after signing)"
        ));
    }
    if report.problems.is_empty() {
        report.checked.push(format!(
            "{} files match their SHA-256",
            manifest.files.len()
        ));
    }
    report.manifest = Some(manifest);
    report
}

fn parse_signature(bytes: &[u8]) -> Result<Signature, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_owned())?;
    let hex_sig = text
        .trim()
        .strip_prefix("ed25519:")
        .ok_or("expected `ed25519:<hex>`")?;
    let raw: [u8; 64] = hex::decode(hex_sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("an Ed25519 signature is 128 hex digits")?;
    Ok(Signature::from_bytes(&raw))
}

fn schema_problems(value: &serde_json::Value) -> Result<Vec<String>, String> {
    let schema: serde_json::Value = serde_json::from_str(SCHEMA_V1)
        .map_err(|e| format!("the built-in schema is broken: {e}"))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("the built-in schema is broken: {e}"))?;
    Ok(validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path.to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect())
}

/// Per (device, camera): the last sequence, its manifest hash, and every
/// event id seen with its sequence.
type ChainState = (u64, String, BTreeMap<String, u64>);

/// Checks the packages of each (device, camera) as a chain, in the order
/// given; adds each problem to the report of the package where it shows.
pub fn verify_chain(reports: &mut [PackageReport]) {
    let mut chains: BTreeMap<(String, String), ChainState> = BTreeMap::new();
    for report in reports.iter_mut() {
        let (Some(m), Some(hash)) = (&report.manifest, &report.manifest_sha256) else {
            continue;
        };
        let key = (m.device_id.clone(), m.camera.clone());
        let mut problems = Vec::new();
        match chains.get_mut(&key) {
            None => {
                chains.insert(
                    key,
                    (
                        m.sequence,
                        hash.clone(),
                        BTreeMap::from([(m.event_id.clone(), m.sequence)]),
                    ),
                );
                continue;
            }
            Some((last_seq, last_hash, seen)) => {
                if let Some(first) = seen.get(&m.event_id) {
                    problems.push(format!(
                        "replayed package: event {} was already seen as sequence {first}",
                        m.event_id
                    ));
                } else if m.sequence <= *last_seq {
                    problems.push(format!(
                        "out of order: sequence {} comes after sequence {last_seq}",
                        m.sequence
                    ));
                } else if m.sequence > *last_seq + 1 {
                    problems.push(format!(
                        "sequence gap: after {last_seq} comes {} ({} missing)",
                        m.sequence,
                        m.sequence - *last_seq - 1
                    ));
                } else if m.prev_manifest_sha256.as_deref() != Some(last_hash.as_str()) {
                    problems.push(format!(
                        "broken chain: prev_manifest_sha256 does not match sequence {last_seq}'s \
                         manifest (a package was replaced)"
                    ));
                }
                seen.insert(m.event_id.clone(), m.sequence);
                if m.sequence > *last_seq {
                    *last_seq = m.sequence;
                    *last_hash = hash.clone();
                }
            }
        }
        if problems.is_empty() {
            report
                .checked
                .push(format!("in sequence after {}", m.sequence - 1));
        }
        report.problems.extend(problems);
    }
}

/// Verifies packages and their chains; the reports in input order.
pub fn verify_all(paths: &[PathBuf], keys: &Keyring) -> Vec<PackageReport> {
    let mut reports: Vec<PackageReport> = paths.iter().map(|p| verify_package(p, keys)).collect();
    verify_chain(&mut reports);
    reports
}

/// A readable report for a person.
pub fn render(report: &PackageReport) -> String {
    let mut out = String::new();
    let status = if report.is_valid() {
        "VALID"
    } else {
        "INVALID"
    };
    out.push_str(&format!("{status}  {}\n", report.path.display()));
    if let Some(m) = &report.manifest {
        out.push_str(&format!(
            "  event {}  {}  device {}  camera {}  sequence {}\n",
            m.event_id, m.violation.kind, m.device_id, m.camera, m.sequence
        ));
    }
    for c in &report.checked {
        out.push_str(&format!("  ok: {c}\n"));
    }
    for p in &report.problems {
        out.push_str(&format!("  PROBLEM: {p}\n"));
    }
    out
}

impl From<EvidenceError> for PackageReport {
    fn from(e: EvidenceError) -> Self {
        PackageReport {
            path: PathBuf::new(),
            manifest: None,
            manifest_sha256: None,
            problems: vec![e.to_string()],
            checked: Vec::new(),
        }
    }
}
