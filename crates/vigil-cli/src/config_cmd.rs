//! `vigil config check`: semantic validation of site configs.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use vigil_infer::Manifest;

use crate::paths::ModelPaths;
use crate::Verdict;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate site configs: syntax, keys, and whether the geometry, signals,
    /// cameras and models they describe make sense. Every problem is reported
    /// as FILE:LINE:COLUMN: KEY: REASON.
    #[command(
        after_help = "Example:\n  vigil config check configs/demo.toml configs/example-intersection.toml"
    )]
    Check {
        /// Config files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        paths: ModelPaths,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<Verdict> {
    let ConfigCommand::Check { files, paths } = cmd;
    // Model names and class labels are checked against the manifest; the
    // manifest is part of the repository, so its absence is an error.
    let manifest = Manifest::load(&paths.manifest).context("model checks need the manifest")?;
    let catalog = manifest.catalog();
    let mut failed = 0;
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read config {}", file.display()))?;
        let origin = file.display().to_string();
        match vigil_core::config::check(&origin, &text, Some(&catalog)) {
            Ok(cfg) => {
                println!(
                    "{origin}: ok ({}, {}, {})",
                    count(cfg.cameras.len(), "camera", "cameras"),
                    count(cfg.approaches.len(), "approach", "approaches"),
                    count(cfg.signals.len(), "signal", "signals")
                );
                println!("  {}", detector_input(&cfg));
            }
            Err(err) => {
                failed += 1;
                for d in &err.diagnostics {
                    eprintln!("{d}");
                }
                let n = count(err.diagnostics.len(), "problem", "problems");
                eprintln!("{origin}: {n}");
            }
        }
    }
    Ok(if failed == 0 {
        Verdict::Passed
    } else {
        Verdict::Failed
    })
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the detector will take in, so a site engineer tuning
/// `detect_region` or `input_size` sees its effect without a run.
fn detector_input(cfg: &vigil_core::config::SiteConfig) -> String {
    let d = &cfg.detector;
    if !d.fit_input {
        return format!("detector input {0}x{0} (square)", d.input_size);
    }
    let (w, h) = crate::run_cmd::fitted_input(cfg);
    let regions: Vec<String> = cfg
        .cameras
        .iter()
        .filter_map(|(id, c)| {
            let [x, y, rw, rh] = c.detect_region_px()?;
            Some(format!("{id} {rw}x{rh} at ({x}, {y})"))
        })
        .collect();
    let seen = if regions.is_empty() {
        "the cameras' frames".to_owned()
    } else {
        format!(
            "the cameras' frames and detect regions ({})",
            regions.join(", ")
        )
    };
    format!(
        "detector input {w}x{h} for a YOLOv8-format model: {seen} at {} along the long side",
        d.input_size
    )
}
