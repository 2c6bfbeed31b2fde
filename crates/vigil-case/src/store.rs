//! Case storage: SQLite (embedded default, WAL) or PostgreSQL through the
//! same code (sqlx's `Any` driver, `$n` placeholders, portable SQL), and
//! package media on local disk.

use std::path::{Path, PathBuf};

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{AnyPool, Row};
use vigil_evidence::keys::{Keyring, PublicKey};

use crate::audit::{
    read_anchor, row_from, verify_rows, AuditChain, AuditEntry, AuditReport, AuditRow, AuditedTx,
    ROW_COLUMNS,
};
use crate::media::{Media, MediaError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device key: {0}")]
    Key(String),
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// A stored package's place in its camera's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub sequence: i64,
    pub manifest_sha256: String,
}

/// A stored package's links: its hash and the hash it chains to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub manifest_sha256: String,
    pub prev_manifest_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: String,
    pub device_id: String,
    pub camera: Option<String>,
    pub detail: String,
}

/// What ingest stores for one verified package.
#[derive(Debug, Clone)]
pub struct NewPackage {
    pub event_id: String,
    pub device_id: String,
    pub camera: String,
    pub sequence: i64,
    pub manifest_sha256: String,
    pub violation_type: String,
    pub event_at_us: i64,
    pub plate: Option<String>,
    pub manifest: String,
    pub media_path: String,
    pub plate_colour: Option<String>,
    /// A state-agency (blue) plate: its agency is to be notified.
    pub agency_flag: bool,
    pub clock_sync: String,
    /// The signal's sources disagreed around the event.
    pub signal_conflict: bool,
    /// Site and approach, for people.
    pub place: String,
}

/// A plate's letters and digits, upper case: `30a-123.45` -> `30A12345`.
pub fn plate_key(plate: &str) -> String {
    plate
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// Local state: temp files and the audit anchor (and the media, when
    /// they are local).
    media_dir: PathBuf,
    media: Media,
    pub(crate) audit: AuditChain,
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Store {
    /// Connects (`sqlite://path?mode=rwc` or `postgres://...`) and brings
    /// the schema up to date; media are kept in `media_dir`.
    pub async fn connect(url: &str, media_dir: &Path) -> Result<Self, StoreError> {
        let media = Media::Local {
            dir: media_dir.to_path_buf(),
        };
        Self::connect_with_media(url, media_dir, media).await
    }

    /// As [`Self::connect`], with media wherever `media` says; `state_dir`
    /// keeps temp files and the audit anchor.
    pub async fn connect_with_media(
        url: &str,
        state_dir: &Path,
        media: Media,
    ) -> Result<Self, StoreError> {
        let media_dir = state_dir;
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(if url.starts_with("sqlite") { 1 } else { 8 })
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
        if url.starts_with("sqlite") {
            // WAL: readers never block the writer; synchronous=FULL keeps
            // every acknowledged package across a power cut.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
            sqlx::query("PRAGMA synchronous=FULL")
                .execute(&pool)
                .await?;
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        std::fs::create_dir_all(media_dir.join("tmp")).map_err(|source| StoreError::Io {
            path: media_dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            pool,
            media_dir: media_dir.to_path_buf(),
            media,
            audit: AuditChain::new(media_dir),
        })
    }

    /// Starts a transaction that appends to the audit chain (see
    /// [`crate::audit`]); everything it does commits together.
    pub async fn begin_audited(&self) -> Result<AuditedTx, StoreError> {
        self.audit.begin(&self.pool).await
    }

    /// Appends one audit row on its own.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        tx.record(entry).await?;
        tx.commit().await
    }

    /// Every audit row, oldest first.
    pub async fn audit_rows(&self) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ROW_COLUMNS} FROM audit_log ORDER BY seq"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(row_from).collect::<Result<_, _>>()?)
    }

    /// The audit rows about one target, oldest first.
    pub async fn audit_for(&self, target: &str) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROW_COLUMNS} FROM audit_log WHERE target = $1 ORDER BY seq"
        ))
        .bind(target)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_from).collect::<Result<_, _>>()?)
    }

    /// The newest `limit` audit rows, newest first.
    pub async fn audit_recent(&self, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROW_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_from).collect::<Result<_, _>>()?)
    }

    /// Checks the whole audit chain against its anchor file.
    pub async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        let rows = self.audit_rows().await?;
        let anchor = read_anchor(self.audit.anchor_path())?;
        Ok(verify_rows(&rows, anchor.as_ref()))
    }

    pub fn media_dir(&self) -> &Path {
        &self.media_dir
    }

    pub fn media(&self) -> &Media {
        &self.media
    }

    /// Registers (or re-registers) a device's public key.
    pub async fn register_device(&self, key: &PublicKey) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        let current = sqlx::query("SELECT public_key FROM devices WHERE device_id = $1")
            .bind(&key.device_id)
            .fetch_optional(tx.conn())
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?;
        if current.as_deref() == Some(key.to_line().as_str()) {
            return Ok(());
        }
        let replaced = sqlx::query("DELETE FROM devices WHERE device_id = $1")
            .bind(&key.device_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        sqlx::query(
            "INSERT INTO devices (device_id, public_key, registered_at_us) VALUES ($1, $2, $3)",
        )
        .bind(&key.device_id)
        .bind(key.to_line())
        .bind(now_us())
        .execute(tx.conn())
        .await?;
        tx.record(AuditEntry::new(
            "admin",
            if replaced > 0 {
                "device_key_replaced"
            } else {
                "device_registered"
            },
            format!("device:{}", key.device_id),
            key.to_line(),
        ))
        .await?;
        tx.commit().await
    }

    /// Every registered device key.
    pub async fn keyring(&self) -> Result<Keyring, StoreError> {
        let rows = sqlx::query("SELECT public_key FROM devices")
            .fetch_all(&self.pool)
            .await?;
        let mut ring = Keyring::default();
        for row in rows {
            let line: String = row.try_get(0)?;
            ring.insert(PublicKey::parse_line(&line).map_err(StoreError::Key)?);
        }
        Ok(ring)
    }

    /// The stored manifest hash of an event, if it is stored.
    pub async fn package_hash(&self, event_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT manifest_sha256 FROM packages WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The newest stored package of a device's camera.
    pub async fn chain_head(
        &self,
        device_id: &str,
        camera: &str,
    ) -> Result<Option<ChainHead>, StoreError> {
        let row = sqlx::query(
            "SELECT sequence, manifest_sha256 FROM packages \
             WHERE device_id = $1 AND camera = $2 ORDER BY sequence DESC LIMIT 1",
        )
        .bind(device_id)
        .bind(camera)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(ChainHead {
                sequence: r.try_get(0)?,
                manifest_sha256: r.try_get(1)?,
            }),
        })
    }

    /// Stores a verified package's row and its `ingest` audit row together.
    /// The stored package at `sequence` of a device's camera, if any.
    pub async fn chain_link(
        &self,
        device_id: &str,
        camera: &str,
        sequence: i64,
    ) -> Result<Option<ChainLink>, StoreError> {
        let row = sqlx::query(
            "SELECT manifest_sha256, manifest FROM packages \
             WHERE device_id = $1 AND camera = $2 AND sequence = $3",
        )
        .bind(device_id)
        .bind(camera)
        .bind(sequence)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let manifest: String = r.try_get(1)?;
        let prev = serde_json::from_str::<serde_json::Value>(&manifest)
            .ok()
            .and_then(|m| m["prev_manifest_sha256"].as_str().map(str::to_owned));
        Ok(Some(ChainLink {
            manifest_sha256: r.try_get(0)?,
            prev_manifest_sha256: prev,
        }))
    }

    pub async fn insert_package(&self, p: &NewPackage) -> Result<(), StoreError> {
        let mut tx = self.begin_audited().await?;
        sqlx::query(
            "INSERT INTO packages (event_id, device_id, camera, sequence, manifest_sha256, \
             violation_type, event_at_us, plate, manifest, media_path, received_at_us, status, \
             current_type, reviewed_plate, plate_key, plate_colour, agency_flag, clock_sync, \
             signal_conflict, place) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20)",
        )
        .bind(&p.event_id)
        .bind(&p.device_id)
        .bind(&p.camera)
        .bind(p.sequence)
        .bind(&p.manifest_sha256)
        .bind(&p.violation_type)
        .bind(p.event_at_us)
        .bind(&p.plate)
        .bind(&p.manifest)
        .bind(&p.media_path)
        .bind(now_us())
        .bind("new")
        .bind(&p.violation_type)
        .bind(&p.plate)
        .bind(p.plate.as_deref().map(plate_key))
        .bind(&p.plate_colour)
        .bind(i64::from(p.agency_flag))
        .bind(&p.clock_sync)
        .bind(i64::from(p.signal_conflict))
        .bind(&p.place)
        .execute(tx.conn())
        .await?;
        tx.record(AuditEntry::new(
            format!("device:{}", p.device_id),
            "ingest",
            &p.event_id,
            format!(
                "{} camera {} sequence {} manifest {}",
                p.violation_type, p.camera, p.sequence, p.manifest_sha256
            ),
        ))
        .await?;
        tx.commit().await
    }

    pub async fn package_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM packages")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    pub async fn raise_alert(&self, alert: &Alert) -> Result<(), StoreError> {
        tracing::warn!(kind = %alert.kind, device = %alert.device_id, camera = ?alert.camera, detail = %alert.detail, "integrity alert");
        let mut tx = self.begin_audited().await?;
        sqlx::query(
            "INSERT INTO alerts (id, kind, device_id, camera, detail, created_at_us) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5 FROM alerts",
        )
        .bind(&alert.kind)
        .bind(&alert.device_id)
        .bind(&alert.camera)
        .bind(&alert.detail)
        .bind(now_us())
        .execute(tx.conn())
        .await?;
        tx.record(AuditEntry::new(
            "system",
            format!("alert:{}", alert.kind),
            alert.camera.as_deref().unwrap_or(&alert.device_id),
            &alert.detail,
        ))
        .await?;
        tx.commit().await
    }

    pub async fn alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let rows = sqlx::query("SELECT kind, device_id, camera, detail FROM alerts ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Alert {
                    kind: r.try_get(0)?,
                    device_id: r.try_get(1)?,
                    camera: r.try_get(2)?,
                    detail: r.try_get(3)?,
                })
            })
            .collect()
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
