//! Package ingest: nothing an edge sends is trusted before it is verified.
//!
//! Order of checks (the HTTP contract is in `vigil_evidence::uploader`):
//! 1. the request's signature, by a registered device key (401 otherwise);
//! 2. the package: schema, hashes, signature (422 naming the problem; nothing
//!    stored);
//! 3. the package comes from the device that signed the request (403);
//! 4. idempotency: the same event id with the same manifest is a success
//!    (200), with another manifest a refusal (422) and an alert;
//! 5. the chain: the next sequence must chain to the stored head's hash
//!    (else 422 and an alert); a package after a gap is stored and the gap
//!    raises an alert; a late package that fills a gap is stored when it
//!    chains to its stored neighbours on both sides (alert `gap_filled`);
//!    any other older sequence is refused (replay, reorder, replacement).
//!
//! Storage: the tar is written under `<media>/<device>/<camera>/` (temp
//! file, fsync, rename) before its row is inserted, so a stored row always
//! has its media.

use std::path::{Path, PathBuf};

use vigil_evidence::manifest::Manifest;
use vigil_evidence::uploader::check_authorization;
use vigil_evidence::verify_tar_bytes;

use crate::store::{Alert, NewPackage, Store, StoreError};

/// The request as ingest needs it.
#[derive(Debug, Clone)]
pub struct IngestRequest<'a> {
    pub authorization: Option<&'a str>,
    /// The request target as sent (path and query), which the signature covers.
    pub path: &'a str,
    pub body: &'a [u8],
}

/// How a request ended: an HTTP status and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub status: u16,
    pub reason: String,
}

impl IngestOutcome {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }
}

/// Clock skew allowed on signed requests.
pub const MAX_SKEW_S: u64 = 300;

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verifies and stores one package.
pub async fn ingest(store: &Store, req: IngestRequest<'_>) -> Result<IngestOutcome, StoreError> {
    let keys = store.keyring().await?;
    let Some(auth) = req.authorization else {
        return Ok(IngestOutcome::new(
            401,
            "missing Authorization: Vigil-Ed25519 device=...,ts=...,sig=...",
        ));
    };
    let device =
        match check_authorization(auth, "POST", req.path, req.body, &keys, now_s(), MAX_SKEW_S) {
            Ok(d) => d,
            Err(reason) => {
                return Ok(IngestOutcome::new(
                    401,
                    format!("request not authenticated: {reason}"),
                ))
            }
        };

    // Verify in memory, off the async workers (hashing megabytes is CPU
    // work); nothing is stored unless it passes.
    let body = req.body.to_vec();
    let report = tokio::task::spawn_blocking(move || {
        verify_tar_bytes(Path::new("request body"), &body, &keys)
    })
    .await
    .map_err(|e| StoreError::Io {
        path: PathBuf::from("request body"),
        source: std::io::Error::other(e.to_string()),
    })?;
    if !report.is_valid() {
        return Ok(IngestOutcome::new(
            422,
            format!("package refused: {}", report.problems.join("; ")),
        ));
    }
    let (Some(manifest), Some(hash)) = (report.manifest, report.manifest_sha256) else {
        return Ok(IngestOutcome::new(422, "package refused: no manifest"));
    };
    if manifest.device_id != device {
        return Ok(IngestOutcome::new(
            403,
            format!(
                "device {device} sent a package of device {}",
                manifest.device_id
            ),
        ));
    }
    let alert = |kind: &str, detail: String| Alert {
        kind: kind.to_owned(),
        device_id: manifest.device_id.clone(),
        camera: Some(manifest.camera.clone()),
        detail,
    };

    if let Some(stored) = store.package_hash(&manifest.event_id).await? {
        if stored == hash {
            return Ok(IngestOutcome::new(200, "already stored"));
        }
        let detail = format!(
            "event {} arrived again with a different manifest (stored {stored}, now {hash})",
            manifest.event_id
        );
        store
            .raise_alert(&alert("conflicting_duplicate", detail.clone()))
            .await?;
        return Ok(IngestOutcome::new(422, detail));
    }

    let seq = manifest.sequence as i64;
    match store
        .chain_head(&manifest.device_id, &manifest.camera)
        .await?
    {
        Some(head) if seq <= head.sequence => {
            // A late package may fill a gap, if it chains to both sides.
            let (before, after) = (
                store
                    .chain_link(&manifest.device_id, &manifest.camera, seq - 1)
                    .await?,
                store
                    .chain_link(&manifest.device_id, &manifest.camera, seq + 1)
                    .await?,
            );
            let taken = store
                .chain_link(&manifest.device_id, &manifest.camera, seq)
                .await?
                .is_some();
            let fits_before = match &before {
                Some(b) => {
                    manifest.prev_manifest_sha256.as_deref() == Some(b.manifest_sha256.as_str())
                }
                None => seq > 1 || manifest.prev_manifest_sha256.is_none(),
            };
            let fits_after = after
                .as_ref()
                .is_none_or(|a| a.prev_manifest_sha256.as_deref() == Some(hash.as_str()));
            if taken || !fits_before || !fits_after {
                let detail = format!(
                    "sequence {seq} arrived after sequence {} and does not fill a gap there                      (replayed, reordered or replaced)",
                    head.sequence
                );
                store
                    .raise_alert(&alert("out_of_order", detail.clone()))
                    .await?;
                return Ok(IngestOutcome::new(422, detail));
            }
            store
                .raise_alert(&alert(
                    "gap_filled",
                    format!("sequence {seq} arrived late and fills its gap"),
                ))
                .await?;
        }
        Some(head)
            if seq == head.sequence + 1
                && manifest.prev_manifest_sha256.as_deref()
                    != Some(head.manifest_sha256.as_str()) =>
        {
            let detail = format!(
                "sequence {seq} does not chain to the stored sequence {} (a package was replaced)",
                head.sequence
            );
            store
                .raise_alert(&alert("broken_chain", detail.clone()))
                .await?;
            return Ok(IngestOutcome::new(422, detail));
        }
        Some(head) if seq == head.sequence + 1 => {}
        Some(head) => {
            store
                .raise_alert(&alert(
                    "sequence_gap",
                    format!(
                        "after sequence {} came {seq}: {} missing",
                        head.sequence,
                        seq - head.sequence - 1
                    ),
                ))
                .await?;
        }
        None if seq > 1 => {
            store
                .raise_alert(&alert(
                    "sequence_gap",
                    format!(
                        "the first package seen is sequence {seq}: {} missing",
                        seq - 1
                    ),
                ))
                .await?;
        }
        None => {}
    }

    let media = store
        .media()
        .put(
            &store.media_dir().join("tmp"),
            &media_key(&manifest),
            req.body.to_vec(),
        )
        .await?;
    let manifest_json = serde_json::to_string(&manifest).unwrap_or_default();
    store
        .insert_package(&NewPackage {
            event_id: manifest.event_id.clone(),
            device_id: manifest.device_id.clone(),
            camera: manifest.camera.clone(),
            sequence: seq,
            manifest_sha256: hash,
            violation_type: manifest.violation.kind.clone(),
            event_at_us: manifest.times.event_at_us,
            plate: manifest
                .plate
                .as_ref()
                .filter(|p| p.valid)
                .map(|p| p.text.clone()),
            manifest: manifest_json,
            media_path: media,
            plate_colour: manifest.plate.as_ref().and_then(|p| p.colour.clone()),
            agency_flag: is_agency_plate(&manifest),
            clock_sync: manifest.times.clock_sync.clone(),
            signal_conflict: signal_conflict(&manifest),
            place: format!("{} / {}", manifest.site_name, manifest.approach),
        })
        .await?;
    Ok(IngestOutcome::new(201, format!("stored as sequence {seq}")))
}

/// A state-agency plate: blue, or issued under the central-agency
/// province code. Its agency is notified of the violation.
fn is_agency_plate(m: &Manifest) -> bool {
    m.plate.as_ref().is_some_and(|p| {
        p.colour.as_deref() == Some("blue")
            || (p.valid
                && vigil_plate::parse_compact(&crate::store::plate_key(&p.text))
                    .is_some_and(|plate| plate.is_central_agency()))
    })
}

/// The signal was cross-checked across sources (`a+b`) and they disagreed
/// somewhere around the event (the joined timeline says `unknown`).
fn signal_conflict(m: &Manifest) -> bool {
    m.signal.source.contains('+') && m.signal.timeline.iter().any(|p| p.phase == "unknown")
}

/// The name a package's tar is stored under. Ids are checked to be plain
/// names by the schema and by `safe_segment`, so no key can leave the media
/// directory.
fn media_key(m: &Manifest) -> String {
    format!(
        "{}/{}/{:012}-{}.tar",
        safe_segment(&m.device_id),
        safe_segment(&m.camera),
        m.sequence,
        safe_segment(&m.event_id)
    )
}

fn safe_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_climb_out_of_the_media_directory() {
        assert_eq!(safe_segment("../../etc"), "_.._etc");
        assert_eq!(safe_segment("cam-1"), "cam-1");
        assert_eq!(safe_segment("ngã-tư"), "ngã-tư");
    }
}
