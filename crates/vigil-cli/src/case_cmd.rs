//! `vigil case ...`: the case system (vigil-case).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use vigil_evidence::keys::Keyring;

use crate::Verdict;

#[derive(Subcommand)]
pub enum CaseCommand {
    /// Serve the case system's HTTP API (package intake today).
    #[command(
        after_help = "Example:\n  vigil case serve --db sqlite://var/case/case.db?mode=rwc --media var/case/media --listen 127.0.0.1:8480 --register var/demo/device.key.pub"
    )]
    Serve(ServeArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// `sqlite://PATH?mode=rwc` (embedded default) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "VIGIL_CASE_DB",
        default_value = "sqlite://var/case/case.db?mode=rwc"
    )]
    db: String,
    /// Where package media is stored.
    #[arg(long, default_value = "var/case/media")]
    media: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: String,
    /// Public-key files (`vigil keygen` writes `<key>.pub`) to register
    /// before serving; a device must be registered to send packages.
    #[arg(long)]
    register: Vec<PathBuf>,
}

pub fn run(cmd: CaseCommand) -> anyhow::Result<Verdict> {
    let CaseCommand::Serve(args) = cmd;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<Verdict> {
    if let Some(dir) = args
        .db
        .strip_prefix("sqlite://")
        .and_then(|p| std::path::Path::new(p.split('?').next().unwrap_or(p)).parent())
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = vigil_case::Store::connect(&args.db, &args.media).await?;
    for file in &args.register {
        let ring = Keyring::read(file)?;
        for id in ring.device_ids() {
            if let Some(key) = ring.get(&id) {
                store.register_device(key).await?;
                println!("registered device {id}");
            }
        }
    }
    let (listener, addr) = vigil_case::server::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("case system listening on http://{addr} (POST /api/v1/packages, GET /healthz); Ctrl-C stops");
    vigil_case::server::serve(store, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving")?;
    Ok(Verdict::Passed)
}
