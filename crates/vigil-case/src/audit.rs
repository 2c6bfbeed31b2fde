//! The hash-chained audit log.
//!
//! Every action on the case system (ingest, view, plate edit, decision,
//! approval, login, export, ...) appends one row in the same database
//! transaction as the action itself, so an action without its audit row
//! (or the reverse) cannot be committed. Row `n` stores
//! `hash = SHA-256(canonical JSON of {seq, at_us, actor, action, target,
//! detail, prev_hash})` with `prev_hash` the hash of row `n - 1`, so:
//!
//! - a modified row no longer matches its hash;
//! - an inserted or removed row breaks the sequence or the `prev_hash` link;
//! - removing rows at the end is caught by the *anchor*, a small file
//!   beside the media holding the newest `(seq, hash)`, rewritten after
//!   every commit. (The anchor trails the database by at most the commit in
//!   flight when the process died, which `verify` accepts.)
//!
//! Appends are serialised by a process-wide lock: the chain has one head.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Row, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};
use vigil_evidence::manifest::{canonical_json, sha256_hex};

use crate::store::{now_us, StoreError};

/// `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The anchor's file name in the state directory.
pub const ANCHOR_FILE: &str = "audit-anchor.json";

/// What an action appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// A user name, `device:<id>` or `public`.
    pub actor: String,
    pub action: String,
    /// What was acted on: an event id, a user, `session`, ...
    pub target: String,
    pub detail: String,
}

impl AuditEntry {
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail: detail.into(),
        }
    }
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The newest row's place, as kept in the anchor file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

/// The hash a row must carry.
pub fn row_hash(seq: i64, at_us: i64, entry: &AuditEntry, prev_hash: &str) -> String {
    let value = serde_json::json!({
        "seq": seq,
        "at_us": at_us,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
        "prev_hash": prev_hash,
    });
    sha256_hex(&canonical_json(&value))
}

pub(crate) const ROW_COLUMNS: &str = "seq, at_us, actor, action, target, detail, prev_hash, hash";

pub(crate) fn row_from(r: &sqlx::any::AnyRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        seq: r.try_get(0)?,
        at_us: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        detail: r.try_get(5)?,
        prev_hash: r.try_get(6)?,
        hash: r.try_get(7)?,
    })
}

/// Appends one row on `conn` (inside the caller's transaction).
async fn append(conn: &mut AnyConnection, entry: &AuditEntry) -> Result<Anchor, StoreError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (seq, prev) = match head {
        Some(r) => (r.try_get::<i64, _>(0)? + 1, r.try_get::<String, _>(1)?),
        None => (1, GENESIS.to_owned()),
    };
    let at_us = now_us();
    let hash = row_hash(seq, at_us, entry, &prev);
    sqlx::query(
        "INSERT INTO audit_log (seq, at_us, actor, action, target, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
    .bind(at_us)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(Anchor { seq, hash })
}

/// The process-wide append lock and the anchor's place.
#[derive(Debug, Clone)]
pub(crate) struct AuditChain {
    lock: Arc<Mutex<()>>,
    anchor: PathBuf,
}

impl AuditChain {
    pub(crate) fn new(state_dir: &Path) -> Self {
        Self {
            lock: Arc::new(Mutex::new(())),
            anchor: state_dir.join(ANCHOR_FILE),
        }
    }

    pub(crate) fn anchor_path(&self) -> &Path {
        &self.anchor
    }

    pub(crate) async fn begin(&self, pool: &sqlx::AnyPool) -> Result<AuditedTx, StoreError> {
        let guard = self.lock.clone().lock_owned().await;
        let tx = pool.begin().await?;
        Ok(AuditedTx {
            _guard: guard,
            tx,
            head: None,
            anchor: self.anchor.clone(),
        })
    }
}

/// A transaction holding the audit lock: statements run on [`Self::conn`],
/// audit rows are appended with [`Self::record`], and [`Self::commit`]
/// commits both and moves the anchor.
pub struct AuditedTx {
    _guard: OwnedMutexGuard<()>,
    tx: Transaction<'static, Any>,
    head: Option<Anchor>,
    anchor: PathBuf,
}

impl AuditedTx {
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub async fn record(&mut self, entry: AuditEntry) -> Result<(), StoreError> {
        self.head = Some(append(&mut self.tx, &entry).await?);
        Ok(())
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        if let Some(head) = &self.head {
            write_anchor(&self.anchor, head)?;
        }
        Ok(())
    }
}

fn write_anchor(path: &Path, head: &Anchor) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let temp = path.with_extension("json.part");
    let bytes = serde_json::to_vec(head).unwrap_or_default();
    std::fs::write(&temp, bytes).map_err(io)?;
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)?;
    Ok(())
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub rows: usize,
    pub head: Option<Anchor>,
    pub anchor: Option<Anchor>,
    /// Each problem names the row it was found at.
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every row of the chain, and the chain's end against the anchor
/// (`None`: no anchor file to check against, which is reported).
pub fn verify_rows(rows: &[AuditRow], anchor: Option<&Anchor>) -> AuditReport {
    let mut problems = Vec::new();
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1;
    for row in rows {
        if row.seq != expected_seq {
            problems.push(format!(
                "row {}: expected sequence {expected_seq} (rows missing or inserted)",
                row.seq
            ));
        }
        if row.prev_hash != prev {
            problems.push(format!(
                "row {}: prev_hash does not match the hash of the row before it",
                row.seq
            ));
        }
        let entry = AuditEntry::new(&row.actor, &row.action, &row.target, &row.detail);
        if row_hash(row.seq, row.at_us, &entry, &row.prev_hash) != row.hash {
            problems.push(format!(
                "row {}: content does not match its hash (modified)",
                row.seq
            ));
        }
        prev = row.hash.clone();
        expected_seq = row.seq + 1;
    }
    let head = rows.last().map(|r| Anchor {
        seq: r.seq,
        hash: r.hash.clone(),
    });
    match anchor {
        None => problems
            .push("no anchor file: removal of the newest rows cannot be ruled out".to_owned()),
        Some(a) => match rows.iter().find(|r| r.seq == a.seq) {
            None => problems.push(format!(
                "the anchor names row {} but the log ends at {} (rows removed from the end)",
                a.seq,
                head.as_ref().map_or(0, |h| h.seq)
            )),
            Some(r) if r.hash != a.hash => problems.push(format!(
                "row {}: hash differs from the anchor's (rewritten)",
                a.seq
            )),
            Some(_) => {}
        },
    }
    AuditReport {
        rows: rows.len(),
        head,
        anchor: anchor.cloned(),
        problems,
    }
}

/// Reads the anchor file, if there is one.
pub fn read_anchor(path: &Path) -> Result<Option<Anchor>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let e = AuditEntry::new("op", "view", format!("ev{seq}"), "");
                let hash = row_hash(seq, seq * 10, &e, &prev);
                let row = AuditRow {
                    seq,
                    at_us: seq * 10,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    detail: e.detail,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    fn anchor_of(rows: &[AuditRow]) -> Anchor {
        let last = rows.last().expect("rows");
        Anchor {
            seq: last.seq,
            hash: last.hash.clone(),
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let report = verify_rows(&rows, Some(&anchor_of(&rows)));
        assert!(report.is_intact(), "{:?}", report.problems);
        assert_eq!(report.rows, 5);
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        let rows = chain(5);
        let anchor = anchor_of(&rows);
        let cases: Vec<(&str, Vec<AuditRow>, &str)> = vec![
            (
                "modified",
                {
                    let mut r = rows.clone();
                    r[2].detail = "changed".into();
                    r
                },
                "row 3: content does not match",
            ),
            (
                "removed",
                {
                    let mut r = rows.clone();
                    r.remove(1);
                    r
                },
                "row 3: expected sequence 2",
            ),
            (
                "inserted",
                {
                    let mut r = rows.clone();
                    let mut extra = r[1].clone();
                    extra.seq = 3;
                    r.insert(2, extra);
                    r
                },
                "row 3: prev_hash",
            ),
            (
                "tail removed",
                rows[..4].to_vec(),
                "rows removed from the end",
            ),
        ];
        for (name, rows, expected) in cases {
            let report = verify_rows(&rows, Some(&anchor));
            assert!(
                report.problems.iter().any(|p| p.contains(expected)),
                "{name}: {:?}",
                report.problems
            );
        }
        assert!(
            !verify_rows(&rows, None).is_intact(),
            "no anchor is reported"
        );
    }
}
