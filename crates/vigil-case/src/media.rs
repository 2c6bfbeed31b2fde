//! Where package media live: a local directory (default) or S3-compatible
//! object storage (`object_store`).
//!
//! Either way a package's tar is written in full and made durable before
//! its row is inserted, so a stored row always has its media: locally by
//! temp file + fsync + rename + directory fsync; on object storage by a
//! single PUT, which the service acknowledges only once the object is
//! stored. The row keeps a *locator*: a local path, or `object:<key>`.
//!
//! Object storage is configured by URL (`s3://bucket/prefix`) and the usual
//! `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for MinIO or
//! Ceph, `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// A locator prefix for objects.
const OBJECT: &str = "object:";

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("object storage {url}: {message}")]
    Object { url: String, message: String },
    #[error("media location {0:?}: use a directory or s3://bucket/prefix")]
    Location(String),
}

/// Where media go.
#[derive(Debug, Clone)]
pub enum Media {
    Local {
        dir: PathBuf,
    },
    Object {
        url: String,
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    },
}

impl Media {
    /// `dir` for local media; `s3://bucket/prefix` for object storage.
    pub fn from_location(location: &str) -> Result<Self, MediaError> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or_default();
            if bucket.is_empty() {
                return Err(MediaError::Location(location.to_owned()));
            }
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| MediaError::Object {
                    url: location.to_owned(),
                    message: e.to_string(),
                })?;
            let prefix = rest
                .split_once('/')
                .map_or("", |(_, p)| p)
                .trim_matches('/');
            return Ok(Self::Object {
                url: location.to_owned(),
                store: Arc::new(store),
                prefix: ObjectPath::from(prefix),
            });
        }
        if location.contains("://") {
            return Err(MediaError::Location(location.to_owned()));
        }
        Ok(Self::Local {
            dir: PathBuf::from(location),
        })
    }

    /// Object storage through any `object_store` implementation.
    pub fn object(url: &str, store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self::Object {
            url: url.to_owned(),
            store,
            prefix: ObjectPath::from(prefix),
        }
    }

    /// Stores `bytes` under `key` (a `/`-separated relative name made of
    /// safe segments) and returns its locator once it is durable.
    pub async fn put(
        &self,
        tmp_dir: &Path,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<String, MediaError> {
        match self {
            Media::Local { dir } => {
                let target = key.split('/').fold(dir.clone(), |p, s| p.join(s));
                let (tmp, t) = (tmp_dir.to_path_buf(), target.clone());
                tokio::task::spawn_blocking(move || write_durably(&tmp, &t, &bytes))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r)
                    .map_err(|source| MediaError::Io {
                        path: target.clone(),
                        source,
                    })?;
                Ok(target.to_string_lossy().into_owned())
            }
            Media::Object { url, store, prefix } => {
                let path = object_path(prefix, key);
                store
                    .put(&path, PutPayload::from(bytes))
                    .await
                    .map_err(|e| MediaError::Object {
                        url: url.clone(),
                        message: format!("PUT {path}: {e}"),
                    })?;
                Ok(format!("{OBJECT}{path}"))
            }
        }
    }

    /// The bytes at a locator `put` returned.
    pub async fn get(&self, locator: &str) -> Result<Vec<u8>, MediaError> {
        match (self, locator.strip_prefix(OBJECT)) {
            (Media::Object { url, store, .. }, Some(key)) => {
                let path = ObjectPath::from(key);
                let fail = |e: object_store::Error| MediaError::Object {
                    url: url.clone(),
                    message: format!("GET {path}: {e}"),
                };
                let got = store.get(&path).await.map_err(fail)?;
                Ok(got.bytes().await.map_err(fail)?.to_vec())
            }
            (_, Some(_)) => Err(MediaError::Location(format!(
                "{locator} is in object storage, which is not configured"
            ))),
            (_, None) => {
                let path = PathBuf::from(locator);
                tokio::fs::read(&path)
                    .await
                    .map_err(|source| MediaError::Io { path, source })
            }
        }
    }
}

fn object_path(prefix: &ObjectPath, key: &str) -> ObjectPath {
    key.split('/')
        .filter(|s| !s.is_empty())
        .fold(prefix.clone(), |p, s| p.clone().join(s))
}

/// Writes `bytes` to `target` through a temp file in `tmp_dir`: fsync,
/// rename, fsync of the directory.
pub(crate) fn write_durably(tmp_dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = tmp_dir.join(format!("{name}.{}.part", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(&temp, target)?;
        if let Some(dir) = target.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_and_object_media_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp dir");
        let local = Media::from_location(&dir.path().join("m").to_string_lossy()).expect("local");
        let loc = local
            .put(
                &dir.path().join("tmp"),
                "dev/cam/000001-x.tar",
                b"abc".to_vec(),
            )
            .await
            .expect("put");
        assert!(loc.ends_with("dev/cam/000001-x.tar"), "{loc}");
        assert_eq!(local.get(&loc).await.expect("get"), b"abc");

        let memory = Media::object(
            "memory://",
            Arc::new(object_store::memory::InMemory::new()),
            "vigil/media",
        );
        let loc = memory
            .put(
                &dir.path().join("tmp"),
                "dev/cam/000001-x.tar",
                b"def".to_vec(),
            )
            .await
            .expect("put");
        assert_eq!(loc, "object:vigil/media/dev/cam/000001-x.tar");
        assert_eq!(memory.get(&loc).await.expect("get"), b"def");
        assert!(matches!(
            local.get(&loc).await,
            Err(MediaError::Location(_))
        ));
        assert!(matches!(
            Media::from_location("ftp://x/y"),
            Err(MediaError::Location(_))
        ));
        assert!(matches!(
            Media::from_location("s3://"),
            Err(MediaError::Location(_))
        ));
    }
}
