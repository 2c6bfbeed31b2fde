//! The spool: a crash-safe on-disk queue that numbers packages and never
//! loses one.
//!
//! ```text
//! <dir>/tmp/                                    partial writes (cleared on open)
//! <dir>/pending/<camera>/<seq:012>-<event>.tar  committed, not yet delivered
//! <dir>/delivered/<camera>/<seq:012>-<event>.tar
//! <dir>/heads/<camera>.json                     {"sequence", "manifest_sha256"}
//! ```
//!
//! **Commit** is the moment a violation is safe: the package is sealed with
//! the camera's next sequence number and the previous manifest's hash,
//! written to `tmp/`, fsynced, renamed into `pending/`, and the directory
//! fsynced. A crash before the rename leaves only a temp file (removed on
//! open, and the sequence number was never used, so no gap); after it, the
//! package is whole. The head file is rewritten the same way after each
//! commit, and on open the heads are recovered from the packages
//! themselves, so a crash between the two cannot reuse a number.
//!
//! **Quota:** delivered packages are freed oldest first to make room; an
//! undelivered one is never deleted. When pending packages alone would
//! exceed the quota, commit fails with [`SpoolError::Full`] and nothing is
//! written; past [`NEAR_FULL`] of the quota, [`Usage::near_full`] raises
//! the alarm.
//!
//! One process writes a spool at a time: `open` takes an exclusive lock on
//! `spool.lock` and fails if another process holds it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys::DeviceKey;
use crate::manifest::{sha256_hex, Manifest};
use crate::package::{PackageContent, MANIFEST_FILE};
use crate::EvidenceError;

/// Share of the quota at which the near-full alarm is raised.
pub const NEAR_FULL: f64 = 0.9;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "spool full: {pending} bytes of undelivered packages plus {incoming} more would exceed \
         the quota of {quota} bytes; nothing was written (undelivered packages are never deleted)"
    )]
    Full {
        pending: u64,
        incoming: u64,
        quota: u64,
    },
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    #[error("spool {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    sequence: u64,
    manifest_sha256: String,
}

/// A package in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub camera: String,
    pub sequence: u64,
    pub event_id: String,
    pub path: PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub pending_bytes: u64,
    pub pending_packages: usize,
    pub delivered_bytes: u64,
    pub quota_bytes: u64,
    /// Undelivered packages fill at least [`NEAR_FULL`] of the quota.
    pub near_full: bool,
}

#[derive(Debug)]
pub struct Spool {
    /// Held for the spool's lifetime: see [`Spool::open`].
    _lock: File,
    dir: PathBuf,
    quota_bytes: u64,
    heads: BTreeMap<String, Head>,
}

/// Writes `bytes` to `target` via a temp file in `tmp`: write, fsync,
/// rename, fsync the directory.
fn write_atomically(tmp: &Path, target: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = tmp.join(format!("{name}.{}.part", std::process::id()));
    let result = (|| {
        let mut f = File::create(&temp).map_err(io(&temp))?;
        f.write_all(bytes).map_err(io(&temp))?;
        f.sync_all().map_err(io(&temp))?;
        drop(f);
        fs::rename(&temp, target).map_err(io(target))?;
        sync_dir(target.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        // ENOSPC mid-write and friends: leave nothing half-written behind.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn file_name(sequence: u64, event_id: &str) -> String {
    format!("{sequence:012}-{event_id}.tar")
}

fn parse_name(name: &str) -> Option<(u64, String)> {
    let stem = name.strip_suffix(".tar")?;
    let (seq, event) = stem.split_once('-')?;
    Some((seq.parse().ok()?, event.to_owned()))
}

impl Spool {
    /// Opens (creating) a spool: clears partial writes and recovers each
    /// camera's chain head.
    pub fn open(dir: &Path, quota_bytes: u64) -> Result<Self, SpoolError> {
        for sub in ["tmp", "pending", "delivered", "heads"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(io(&d))?;
        }
        // One writer at a time: a second opener would clear the first one's
        // in-flight temp files. The lock dies with the process (kill -9 too).
        let lock_path = dir.join("spool.lock");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Corrupt {
                    path: dir.to_path_buf(),
                    reason: "in use by another process (spool.lock is held); one process writes a spool at a time".into(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let tmp = dir.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
            let p = entry.path();
            tracing::info!(path = %p.display(), "removing a partial write left by a crash");
            let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir_all(&p));
        }
        let mut spool = Self {
            _lock: lock,
            dir: dir.to_path_buf(),
            quota_bytes,
            heads: BTreeMap::new(),
        };
        spool.recover_heads()?;
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn recover_heads(&mut self) -> Result<(), SpoolError> {
        let heads_dir = self.dir.join("heads");
        for entry in fs::read_dir(&heads_dir).map_err(io(&heads_dir))?.flatten() {
            let p = entry.path();
            let Some(camera) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let text = fs::read(&p).map_err(io(&p))?;
            let head: Head = serde_json::from_slice(&text).map_err(|e| SpoolError::Corrupt {
                path: p.clone(),
                reason: format!("chain head is not valid: {e}"),
            })?;
            self.heads.insert(camera.to_owned(), head);
        }
        // The packages themselves are the truth: a crash after a commit's
        // rename and before its head update leaves the head one behind.
        let mut newest: BTreeMap<String, Spooled> = BTreeMap::new();
        for s in self
            .list("pending")?
            .into_iter()
            .chain(self.list("delivered")?)
        {
            if newest
                .get(&s.camera)
                .is_none_or(|n| s.sequence > n.sequence)
            {
                newest.insert(s.camera.clone(), s);
            }
        }
        for (camera, s) in newest {
            if self
                .heads
                .get(&camera)
                .is_some_and(|h| h.sequence >= s.sequence)
            {
                continue;
            }
            let files = crate::package::read_package(&s.path)?;
            let manifest = files
                .iter()
                .find(|(p, _)| p == MANIFEST_FILE)
                .map(|(_, b)| b)
                .ok_or_else(|| SpoolError::Corrupt {
                    path: s.path.clone(),
                    reason: "package without manifest.json".into(),
                })?;
            tracing::info!(%camera, sequence = s.sequence, "chain head recovered from the spool");
            let head = Head {
                sequence: s.sequence,
                manifest_sha256: sha256_hex(manifest),
            };
            // Written back: once the package it came from is delivered, the
            // quota may free it, and a head file left behind would then hand
            // out that sequence number again.
            if let Err(e) = self.write_head(&camera, &head) {
                tracing::warn!(error = %e, "recovered chain head not persisted");
            }
            self.heads.insert(camera, head);
        }
        Ok(())
    }

    fn write_head(&self, camera: &str, head: &Head) -> Result<(), SpoolError> {
        let head_path = self.dir.join("heads").join(format!("{camera}.json"));
        let head_bytes = serde_json::to_vec(head).map_err(|e| SpoolError::Corrupt {
            path: head_path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&self.dir.join("tmp"), &head_path, &head_bytes)
    }

    /// The last committed sequence number of a camera (0 before the first).
    pub fn head(&self, camera: &str) -> u64 {
        self.heads.get(camera).map_or(0, |h| h.sequence)
    }

    /// Packages in `pending` or `delivered`, by camera then sequence.
    fn list(&self, state: &str) -> Result<Vec<Spooled>, SpoolError> {
        let root = self.dir.join(state);
        let mut out = Vec::new();
        for cam in fs::read_dir(&root).map_err(io(&root))?.flatten() {
            let camera = cam.file_name().to_string_lossy().into_owned();
            let cam_dir = cam.path();
            if !cam_dir.is_dir() {
                continue;
            }
            for f in fs::read_dir(&cam_dir).map_err(io(&cam_dir))?.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let Some((sequence, event_id)) = parse_name(&name) else {
                    continue;
                };
                let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(Spooled {
                    camera: camera.clone(),
                    sequence,
                    event_id,
                    path: f.path(),
                    bytes,
                });
            }
        }
        out.sort_by(|a, b| a.camera.cmp(&b.camera).then(a.sequence.cmp(&b.sequence)));
        Ok(out)
    }

    /// Undelivered packages, oldest first per camera.
    pub fn pending(&self) -> Result<Vec<Spooled>, SpoolError> {
        self.list("pending")
    }

    pub fn delivered(&self) -> Result<Vec<Spooled>, SpoolError> {
        self.list("delivered")
    }

    /// A package already committed for this event, if any (commits are
    /// idempotent by event id).
    pub fn find(&self, camera: &str, event_id: &str) -> Result<Option<Spooled>, SpoolError> {
        Ok(self
            .list("pending")?
            .into_iter()
            .chain(self.list("delivered")?)
            .find(|s| s.camera == camera && s.event_id == event_id))
    }

    pub fn usage(&self) -> Result<Usage, SpoolError> {
        let pending = self.list("pending")?;
        let pending_bytes = pending.iter().map(|s| s.bytes).sum();
        let delivered_bytes = self.list("delivered")?.iter().map(|s| s.bytes).sum();
        Ok(Usage {
            pending_bytes,
            pending_packages: pending.len(),
            delivered_bytes,
            quota_bytes: self.quota_bytes,
            near_full: pending_bytes as f64 >= NEAR_FULL * self.quota_bytes as f64,
        })
    }

    /// Frees delivered packages, oldest first, until `incoming` more bytes fit.
    fn make_room(&self, incoming: u64) -> Result<(), SpoolError> {
        let usage = self.usage()?;
        if usage.pending_bytes + incoming > self.quota_bytes {
            return Err(SpoolError::Full {
                pending: usage.pending_bytes,
                incoming,
                quota: self.quota_bytes,
            });
        }
        let mut total = usage.pending_bytes + usage.delivered_bytes + incoming;
        if total <= self.quota_bytes {
            return Ok(());
        }
        let mut delivered = self.list("delivered")?;
        // Oldest first: by the sequence within each camera, cameras interleaved by file time.
        delivered.sort_by_key(|s| {
            fs::metadata(&s.path)
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, s.sequence))
        });
        for s in delivered {
            if total <= self.quota_bytes {
                break;
            }
            fs::remove_file(&s.path).map_err(io(&s.path))?;
            total = total.saturating_sub(s.bytes);
        }
        Ok(())
    }

    /// Seals `content` as the camera's next package and commits it. If
    /// this event was already committed, returns that package instead.
    pub fn commit(
        &mut self,
        content: PackageContent,
        key: &DeviceKey,
    ) -> Result<(Spooled, Manifest), SpoolError> {
        let camera = content.manifest.camera.clone();
        if let Some(existing) = self.find(&camera, &content.manifest.event_id)? {
            let files = crate::package::read_package(&existing.path)?;
            let manifest = files
                .iter()
                .find(|(p, _)| p == MANIFEST_FILE)
                .and_then(|(_, b)| serde_json::from_slice(b).ok())
                .ok_or_else(|| SpoolError::Corrupt {
                    path: existing.path.clone(),
                    reason: "committed package without a readable manifest".into(),
                })?;
            return Ok((existing, manifest));
        }
        let head = self.heads.get(&camera).cloned();
        let sequence = head.as_ref().map_or(1, |h| h.sequence + 1);
        let sealed = content.seal(sequence, head.map(|h| h.manifest_sha256), key)?;
        let tar = sealed.to_tar().map_err(|e| SpoolError::Io {
            path: self.dir.join("tmp"),
            source: e,
        })?;
        self.make_room(tar.len() as u64)?;
        let cam_dir = self.dir.join("pending").join(&camera);
        fs::create_dir_all(&cam_dir).map_err(io(&cam_dir))?;
        let name = file_name(sequence, &sealed.manifest.event_id);
        let target = cam_dir.join(&name);
        let head = Head {
            sequence,
            manifest_sha256: sealed.manifest_sha256(),
        };
        if let Err(e) = write_atomically(&self.dir.join("tmp"), &target, &tar) {
            // Renamed, then the directory sync failed: the number is taken
            // either way, and the next commit must not hand it out again.
            if target.exists() {
                self.heads.insert(camera, head);
            }
            return Err(e);
        }
        // The package is committed; a failed head write is recovered on open.
        if let Err(e) = self.write_head(&camera, &head) {
            tracing::warn!(error = %e, "chain head not persisted; it is recovered from the spool on restart");
        }
        self.heads.insert(camera.clone(), head);
        Ok((
            Spooled {
                camera,
                sequence,
                event_id: sealed.manifest.event_id.clone(),
                path: target,
                bytes: tar.len() as u64,
            },
            sealed.manifest,
        ))
    }

    /// Moves a delivered package out of the queue (after the receiver
    /// acknowledged it).
    pub fn mark_delivered(&self, s: &Spooled) -> Result<(), SpoolError> {
        let dir = self.dir.join("delivered").join(&s.camera);
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let target = dir.join(file_name(s.sequence, &s.event_id));
        fs::rename(&s.path, &target).map_err(io(&s.path))?;
        sync_dir(&dir)?;
        if let Some(parent) = s.path.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }
}
