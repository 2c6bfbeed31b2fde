//! `vigil bench`: throughput measured on this machine, compared in one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_video::bench::{measure_decode, probe};
use vigil_video::RingConfig;

use crate::Verdict;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Decode throughput of ingest against the `ffmpeg` command on the same input.
    ///
    /// Runs, in one process and one sitting: N parallel `ffmpeg -benchmark -i
    /// FILE -f null -` (the reference), Vigil's ingest decoding only, and
    /// Vigil's ingest decoding and converting to RGB, each over N copies of
    /// the file, with a 5 s packet ring per stream. Reports frames/s, their
    /// ratio to ffmpeg, real-time factor and peak memory.
    #[command(
        after_help = "Example:\n  vigil bench decode --input demo/motorway-a40.mp4 --streams 4 --json decode.json"
    )]
    Decode {
        /// The video file to decode.
        #[arg(long)]
        input: PathBuf,
        /// Simultaneous copies of the input, like cameras on one edge box.
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// Write the results as JSON here too.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Packet-ring pre-roll per stream, in seconds.
        #[arg(long, default_value_t = 5.0)]
        pre_roll: f64,
    },
}

#[derive(Serialize)]
struct DecodeReport {
    input: String,
    codec: String,
    width: u32,
    height: u32,
    source_fps: f64,
    bit_rate: i64,
    streams: usize,
    frames_per_pass: u64,
    decode_fps: f64,
    rgb_fps: f64,
    ffmpeg_fps: f64,
    decode_vs_ffmpeg: f64,
    rgb_vs_ffmpeg: f64,
    /// RGB frames/s over what the streams need to play in real time.
    realtime_factor: f64,
    baseline_rss_mb: f64,
    peak_rss_mb: f64,
    /// (peak - baseline) / streams: ingest memory per camera.
    rss_per_stream_mb: f64,
    ring_mb_per_stream: f64,
    cpu_cores: usize,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<Verdict> {
    let BenchCommand::Decode {
        input,
        streams,
        json,
        pre_roll,
    } = cmd;
    if streams == 0 {
        bail!("--streams must be at least 1");
    }
    if !(pre_roll.is_finite() && pre_roll >= 0.0) {
        bail!("--pre-roll {pre_roll} must be a non-negative number of seconds");
    }
    let info = probe(&input).with_context(|| format!("probing {}", input.display()))?;
    let baseline = rss_mb("VmRSS");
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));

    bar.set_message(format!("ffmpeg -benchmark, {streams} stream(s)"));
    let (ffmpeg_frames, ffmpeg_fps) = ffmpeg_reference(&input, streams)?;
    let ring = RingConfig {
        pre_roll: Duration::from_secs_f64(pre_roll),
        ..RingConfig::default()
    };
    bar.set_message("Vigil ingest, decode only");
    let decode = measure_decode(&input, streams, false, ring)?;
    bar.set_message("Vigil ingest, decode + RGB");
    let rgb = measure_decode(&input, streams, true, ring)?;
    bar.finish_and_clear();

    let per_pass = decode.frames / streams as u64;
    if per_pass != ffmpeg_frames / streams as u64 {
        tracing::warn!(
            vigil = per_pass,
            ffmpeg = ffmpeg_frames / streams as u64,
            "frame counts differ"
        );
    }
    let peak = rss_mb("VmHWM");
    let report = DecodeReport {
        input: input.display().to_string(),
        codec: info.codec,
        width: info.width,
        height: info.height,
        source_fps: info.fps,
        bit_rate: info.bit_rate,
        streams,
        frames_per_pass: per_pass,
        decode_fps: decode.fps,
        rgb_fps: rgb.fps,
        ffmpeg_fps,
        decode_vs_ffmpeg: decode.fps / ffmpeg_fps,
        rgb_vs_ffmpeg: rgb.fps / ffmpeg_fps,
        realtime_factor: if info.fps > 0.0 {
            rgb.fps / (info.fps * streams as f64)
        } else {
            0.0
        },
        baseline_rss_mb: baseline,
        peak_rss_mb: peak,
        rss_per_stream_mb: (peak - baseline) / streams as f64,
        ring_mb_per_stream: rgb.ring_bytes.max(decode.ring_bytes) as f64 / 1e6,
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!(
        "{} {}x{} {} @ {:.2} fps, {} stream(s), {} frames each",
        report.input,
        report.width,
        report.height,
        report.codec,
        report.source_fps,
        streams,
        per_pass
    );
    println!("  ffmpeg -f null   {:>8.1} frames/s", report.ffmpeg_fps);
    println!(
        "  vigil decode     {:>8.1} frames/s  ({:.2}x ffmpeg)",
        report.decode_fps, report.decode_vs_ffmpeg
    );
    println!(
        "  vigil decode+RGB {:>8.1} frames/s  ({:.2}x ffmpeg, {:.2}x real time)",
        report.rgb_fps, report.rgb_vs_ffmpeg, report.realtime_factor
    );
    println!(
        "  memory: peak RSS {:.1} MB, {:.1} MB per stream over a {:.1} MB baseline (ring {:.1} MB per stream)",
        report.peak_rss_mb, report.rss_per_stream_mb, report.baseline_rss_mb, report.ring_mb_per_stream
    );
    if let Some(path) = json {
        write_json(&path, &report)?;
    }
    Ok(Verdict::Passed)
}

fn write_json(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("  results written to {}", path.display());
    Ok(())
}

/// Runs `streams` `ffmpeg -benchmark -i FILE -f null -` at once; returns
/// (total frames, aggregate frames/s over the wall time).
fn ffmpeg_reference(input: &Path, streams: usize) -> anyhow::Result<(u64, f64)> {
    let threads = if streams == 1 { "0" } else { "1" };
    let start = Instant::now();
    let children = (0..streams)
        .map(|_| {
            Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-nostdin",
                    "-benchmark",
                    "-threads",
                    threads,
                    "-i",
                ])
                .arg(input)
                .args(["-an", "-f", "null", "-"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("running the ffmpeg command (apt-get install ffmpeg)")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut frames = 0;
    for child in children {
        let out = child.wait_with_output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!(
                "ffmpeg failed on {}: {}",
                input.display(),
                stderr.lines().last().unwrap_or("")
            );
        }
        frames += last_frame_count(&stderr).context("ffmpeg printed no frame count")?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((frames, frames as f64 / seconds.max(1e-9)))
}

/// The last `frame=  N` in ffmpeg's progress output.
fn last_frame_count(stderr: &str) -> Option<u64> {
    stderr
        .rsplit("frame=")
        .next()
        .filter(|_| stderr.contains("frame="))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A memory figure of this process from /proc/self/status, in MB.
fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_progress_is_parsed_for_the_final_frame_count() {
        let out = "frame=  100 fps=0.0 q=-0.0 size=N/A\rframe=  600 fps=412 q=-0.0 Lsize=N/A\nbench: utime=1.2s";
        assert_eq!(last_frame_count(out), Some(600));
        assert_eq!(last_frame_count("no progress"), None);
    }
}
