//! `vigil`: one binary for every Vigil job.
//!
//! This crate only wires library crates to the command line: argument
//! parsing, progress display, exit codes. Logic that could be tested without
//! a terminal belongs in a library crate.

mod bench_cmd;
mod bench_pipeline;
mod calibrate_cmd;
mod case_cmd;
mod config_cmd;
mod edge_io;
mod eval_cmd;
mod eval_detect;
mod eval_violations;
mod evidence_cmd;
mod models;
mod models_cmd;
mod paths;
mod run_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when the command ran and everything checked out.
const EXIT_OK: u8 = 0;
/// Exit status when the command ran and found a problem in what it checked.
const EXIT_CHECK_FAILED: u8 = 1;
/// Exit status when the command could not do its job (bad usage, I/O, network).
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Camera-based traffic enforcement: detect, track, judge, and prove red-light running",
    after_help = "\
Exit status:
  0  success
  1  the command ran and found a problem (invalid config, missing or corrupt model,
     an evidence package that does not verify)
  2  the command could not run (bad arguments, unreadable file, failed download)

Logging: set RUST_LOG (e.g. RUST_LOG=debug, RUST_LOG=vigil_infer=trace); logs go to stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the site's whole chain on its cameras: detect, track, apply the
    /// signal and the rules, and write each violation and periodic
    /// counts-and-congestion summary as JSON Lines.
    #[command(
        after_help = "Example:\n  vigil run --config configs/demo.toml --events-out var/events.jsonl --summary-out var/summary.jsonl\n\nSIGINT or SIGTERM stops taking frames; everything analysed so far is written.\nFile inputs replay every frame and report times from the start of the input (t = 0)."
    )]
    Run(run_cmd::RunArgs),
    /// Create this device's signing key pair (Ed25519) for evidence packages.
    #[command(
        after_help = "Example:\n  vigil keygen --device-id edge-langson-0001 --out /var/lib/vigil/device.key"
    )]
    Keygen(evidence_cmd::KeygenArgs),
    /// Verify evidence packages offline: schema, file hashes, signature,
    /// and the per-camera chain (gaps, reordering, replays). Exit 0 when all
    /// are valid, 1 otherwise.
    #[command(
        after_help = "Example:\n  vigil verify var/spool/delivered/cam-1 --pubkey device.key.pub\n  vigil verify package.tar --keyring registered-devices.txt"
    )]
    Verify(evidence_cmd::VerifyArgs),
    /// The case system, where operators review verified packages.
    #[command(subcommand)]
    Case(case_cmd::CaseCommand),
    /// Fetch, verify and list the ONNX models and the ONNX Runtime library.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    /// Check site configuration files.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Measure throughput on this machine: the whole pipeline on N copies of
    /// a video against its decode and inference floors (`--input`), or one
    /// part with a subcommand.
    #[command(
        after_help = "Examples:\n  vigil bench --input demo/motorway-a40.mp4 --config configs/demo.toml --streams 4 --json var/bench/demo-4.json\n  vigil bench decode --input demo/motorway-a40.mp4"
    )]
    Bench(Box<bench_cmd::BenchArgs>),
    /// Fit each camera's homography, print per-point reprojection errors and
    /// draw the ground grid and configured lines over a frame (PNG).
    #[command(
        after_help = "Example:\n  vigil calibrate --config configs/demo.toml --out var/calibration"
    )]
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// Measure accuracy on labelled datasets.
    #[command(subcommand)]
    Eval(eval_cmd::EvalCommand),
}

/// What a subcommand concluded, when it ran to the end.
pub enum Verdict {
    Passed,
    Failed,
}

/// Frames (2.8 MB at 720p RGB), tensors and packets are allocated and
/// freed many times a second on several threads. glibc raises its mmap
/// threshold after the first such free, and from then on serves them from
/// per-thread heaps that fragment: ~30 MB more peak RSS with 4 x 720p
/// cameras (measured). A fixed 128 KiB threshold keeps every large buffer
/// mmap-ed and returned to the kernel when freed.
fn keep_large_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any
    // thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    keep_large_buffers_out_of_the_heap();
    // clap exits with status 2 on usage errors, which matches EXIT_ERROR.
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Run(args) => run_cmd::run(&args),
        Command::Keygen(args) => evidence_cmd::keygen(&args),
        Command::Case(cmd) => case_cmd::run(cmd),
        Command::Verify(args) => evidence_cmd::verify(&args),
        Command::Models(cmd) => models_cmd::run(cmd),
        Command::Config(cmd) => config_cmd::run(cmd),
        Command::Bench(args) => bench_cmd::run_args(*args),
        Command::Eval(cmd) => eval_cmd::run(cmd),
        Command::Calibrate(args) => calibrate_cmd::run(&args),
    };
    match result {
        Ok(Verdict::Passed) => ExitCode::from(EXIT_OK),
        Ok(Verdict::Failed) => ExitCode::from(EXIT_CHECK_FAILED),
        Err(err) => {
            eprintln!("error: {}", error_message(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error and its causes, joined by ": ". A cause whose text the
/// message before it already holds is left out: library errors often say
/// their source in their own message, and it should be read once.
fn error_message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Rust ignores SIGPIPE, which turns `vigil models list | head` into a panic
/// on the next write. Like other Unix tools, end quietly instead.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("manifest.toml");
        // ManifestError::Read says its io::Error, which is also its source.
        let err =
            anyhow::Error::new(vigil_infer::Manifest::load(&missing).expect_err("no such file"))
                .context("loading models");
        let text = error_message(&err);
        let io = std::fs::read(&missing)
            .expect_err("no such file")
            .to_string();
        assert_eq!(
            text,
            format!(
                "loading models: cannot read model manifest {}: {io}",
                missing.display()
            )
        );
        // Causes the message does not hold are all kept.
        let err = anyhow::Error::msg(io.clone()).context("reading frame.png");
        assert_eq!(error_message(&err), format!("reading frame.png: {io}"));
    }
}
