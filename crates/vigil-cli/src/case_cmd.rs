//! `vigil case ...`: the case system (vigil-case).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use vigil_evidence::keys::Keyring;

use crate::Verdict;

#[derive(Subcommand)]
pub enum CaseCommand {
    /// Serve the case system: package intake, the operators' review UI and
    /// the public plate lookup.
    #[command(
        after_help = "Example:\n  vigil case user add --username lan --role supervisor < password.txt\n  vigil case serve --register var/demo/device.key.pub\n  then open http://127.0.0.1:8480/login"
    )]
    Serve(ServeArgs),
    /// Manage the people who review events.
    #[command(subcommand)]
    User(UserCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user, or set an existing user's password and role. The
    /// password is read from the environment variable named by
    /// --password-env, or else from the first line of standard input.
    Add(UserAddArgs),
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every row of the hash-chained audit log, and its end against
    /// the anchor file; exits non-zero naming any modified, inserted or
    /// removed row.
    Verify(StoreArgs),
}

#[derive(Args, Clone)]
pub struct StoreArgs {
    /// `sqlite://PATH?mode=rwc` (embedded default) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "VIGIL_CASE_DB",
        default_value = "sqlite://var/case/case.db?mode=rwc"
    )]
    db: String,
    /// Where package media and the audit anchor are kept.
    #[arg(long, default_value = "var/case/media")]
    media: PathBuf,
    /// Keep package media in S3-compatible object storage instead
    /// (`s3://bucket/prefix`; credentials and endpoint from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP).
    /// --media still keeps the audit anchor and temp files.
    #[arg(long, env = "VIGIL_CASE_MEDIA_URL")]
    media_url: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: String,
    /// Public-key files (`vigil keygen` writes `<key>.pub`) to register
    /// before serving; a device must be registered to send packages.
    #[arg(long)]
    register: Vec<PathBuf>,
    /// UTC offset the UI shows times in.
    #[arg(long, default_value = "+07:00")]
    utc_offset: String,
    /// Mark session cookies Secure (when served behind TLS).
    #[arg(long)]
    secure_cookies: bool,
}

#[derive(Args)]
pub struct UserAddArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    username: String,
    /// operator, supervisor, auditor or admin.
    #[arg(long)]
    role: String,
    /// Read the password from this environment variable instead of stdin.
    #[arg(long)]
    password_env: Option<String>,
}

pub fn run(cmd: CaseCommand) -> anyhow::Result<Verdict> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cmd {
        CaseCommand::Serve(args) => runtime.block_on(serve(args)),
        CaseCommand::User(UserCommand::Add(args)) => runtime.block_on(user_add(args)),
        CaseCommand::Audit(AuditCommand::Verify(args)) => runtime.block_on(audit_verify(args)),
    }
}

async fn open_store(args: &StoreArgs) -> anyhow::Result<vigil_case::Store> {
    if let Some(dir) = args
        .db
        .strip_prefix("sqlite://")
        .and_then(|p| std::path::Path::new(p.split('?').next().unwrap_or(p)).parent())
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(match &args.media_url {
        Some(url) => {
            let media = vigil_case::media::Media::from_location(url)?;
            vigil_case::Store::connect_with_media(&args.db, &args.media, media).await?
        }
        None => vigil_case::Store::connect(&args.db, &args.media).await?,
    })
}

async fn user_add(args: UserAddArgs) -> anyhow::Result<Verdict> {
    let role: vigil_case::Role = args.role.parse().map_err(anyhow::Error::msg)?;
    let password = match &args.password_env {
        Some(var) => {
            std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?
        }
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        bail!("no password given: pipe it on standard input or use --password-env VAR");
    }
    let store = open_store(&args.store).await?;
    store
        .upsert_user("cli", &args.username, &password, role)
        .await?;
    println!("user {} saved with role {role}", args.username);
    Ok(Verdict::Passed)
}

async fn audit_verify(args: StoreArgs) -> anyhow::Result<Verdict> {
    let store = open_store(&args).await?;
    let report = store.verify_audit().await?;
    if report.is_intact() {
        println!(
            "audit log intact: {} rows, head {}",
            report.rows,
            report
                .head
                .as_ref()
                .map_or("(empty)".to_owned(), |h| format!("#{} {}", h.seq, h.hash))
        );
        Ok(Verdict::Passed)
    } else {
        println!("audit log NOT intact ({} rows):", report.rows);
        for p in &report.problems {
            println!("  {p}");
        }
        Ok(Verdict::Failed)
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<Verdict> {
    let store = open_store(&args.store).await?;
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
    println!(
        "case system listening on http://{addr}: review UI at /login, public lookup at /lookup, \
         package intake at POST /api/v1/packages; Ctrl-C stops"
    );
    let app = vigil_case::web::App {
        store,
        limiter: vigil_case::auth::LoginLimiter::default(),
        options: vigil_case::web::WebOptions {
            secure_cookies: args.secure_cookies,
            utc_offset: args.utc_offset.clone(),
        },
    };
    vigil_case::web::serve_app(app, listener, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    })
    .await
    .context("serving")?;
    Ok(Verdict::Passed)
}
