//! `vigil keygen` and `vigil verify` (vigil-evidence).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use vigil_evidence::keys::{DeviceKey, Keyring};
use vigil_evidence::verify::{render, verify_all};

use crate::Verdict;

#[derive(Args)]
pub struct KeygenArgs {
    /// The device id the key speaks for (the config's `site.device_id`).
    #[arg(long)]
    device_id: String,
    /// Where to write the private key (mode 0600); the public key goes to
    /// `<OUT>.pub`. An existing key is never overwritten.
    #[arg(long)]
    out: PathBuf,
}

pub fn keygen(args: &KeygenArgs) -> anyhow::Result<Verdict> {
    anyhow::ensure!(
        !args.device_id.is_empty() && !args.device_id.contains(char::is_whitespace),
        "--device-id {:?} must be non-empty and without spaces",
        args.device_id
    );
    let key = DeviceKey::generate(&args.device_id);
    let public_path = key.write(&args.out)?;
    println!(
        "private key: {} (mode 0600; keep it on the device)",
        args.out.display()
    );
    println!("public key:  {}", public_path.display());
    println!("{}", key.public().to_line());
    println!("register the public key line with the case system");
    Ok(Verdict::Passed)
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Packages: a package directory, a `.tar`, or a directory of them
    /// (checked in name order, which is sequence order in a spool).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The device's public key file (`<device_id> ed25519:<hex>`).
    #[arg(long, conflicts_with = "keyring")]
    pubkey: Option<PathBuf>,
    /// A file of public-key lines, one per registered device.
    #[arg(long)]
    keyring: Option<PathBuf>,
}

/// Expands a directory that is not itself a package into its packages.
fn expand(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() || path.join("manifest.json").exists() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar") || p.join("manifest.json").exists())
        .collect();
    out.sort();
    anyhow::ensure!(
        !out.is_empty(),
        "{} is neither a package nor a directory of packages",
        path.display()
    );
    Ok(out)
}

pub fn verify(args: &VerifyArgs) -> anyhow::Result<Verdict> {
    let key_file = args
        .pubkey
        .as_ref()
        .or(args.keyring.as_ref())
        .context("give the device's key with --pubkey FILE or a --keyring FILE")?;
    let keys = Keyring::read(key_file)?;
    let mut paths = Vec::new();
    for p in &args.paths {
        paths.extend(expand(p)?);
    }
    let reports = verify_all(&paths, &keys);
    for r in &reports {
        print!("{}", render(r));
    }
    let bad = reports.iter().filter(|r| !r.is_valid()).count();
    println!(
        "{} package(s): {} valid, {} invalid",
        reports.len(),
        reports.len() - bad,
        bad
    );
    Ok(if bad == 0 {
        Verdict::Passed
    } else {
        Verdict::Failed
    })
}
