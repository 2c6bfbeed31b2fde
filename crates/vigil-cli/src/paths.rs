//! Where Vigil looks for its files when the command line does not say.

use std::path::{Path, PathBuf};

use clap::Args;

/// Options shared by every command that reads the model manifest.
#[derive(Args, Debug, Clone)]
pub struct ModelPaths {
    /// The model manifest.
    #[arg(long, env = "VIGIL_MANIFEST", default_value = "models/manifest.toml")]
    pub manifest: PathBuf,
    /// Where model files live [default: the manifest's directory].
    #[arg(long, env = "VIGIL_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
}

impl ModelPaths {
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(|| {
            self.manifest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned()
        })
    }
}

/// The wheel cache: `$VIGIL_CACHE_DIR`, else `$XDG_CACHE_HOME/vigil/wheels`,
/// else `~/.cache/vigil/wheels`. It lives outside the clone so that a fresh
/// clone on the same machine does not download again.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VIGIL_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("vigil").join("wheels")
}
