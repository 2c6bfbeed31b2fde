//! `vigil eval violations`: the red-light chain on a labelled clip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_core::config::Rule;
use vigil_core::detection::{BBox, DetectionClass};
use vigil_core::image::RgbImage;
use vigil_infer::riders::associate_riders;
use vigil_pipeline::CameraAnalysis;
use vigil_rules::{ApproachRules, CountsConfig, PhaseTimeline};
use vigil_track::TrackerConfig;
use vigil_video::{CameraIngest, IngestConfig, IngestEvent, SourceSpec};

use crate::paths::ModelPaths;
use crate::Verdict;

#[derive(Args)]
pub struct ViolationArgs {
    #[arg(long)]
    config: PathBuf,
    /// violations.csv with the labelled crossings.
    #[arg(long)]
    truth: PathBuf,
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a contact sheet (PNG): each event's frame at the stop line with
    /// the lines, the track's box (green) and its path so far (yellow).
    #[arg(long)]
    sheet: Option<PathBuf>,
    /// A prediction matches a label within this many frames of its crossing.
    #[arg(long, default_value_t = 4)]
    frame_tolerance: usize,
    /// Analyse every N-th frame only, as `vigil run --detect-every N` does,
    /// to measure what a lower detection rate costs in recall.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=30))]
    detect_every: u32,
    #[command(flatten)]
    paths: ModelPaths,
}

#[derive(Debug, Clone, Serialize)]
struct Prediction {
    track_id: u64,
    class: String,
    frame_stop_line: usize,
    t_stop_line: f64,
    t_clearance: f64,
    time_into_red: f64,
    bbox_at_stop_line: [f32; 4],
    matched: Option<String>,
}

struct Label {
    id: String,
    frame: usize,
    bbox: BBox,
    verdict: String,
}

#[derive(Serialize)]
struct Report {
    config: String,
    frames: usize,
    violations_labelled: usize,
    found: Vec<String>,
    missed: Vec<String>,
    false_positives: usize,
    dont_care: usize,
    recall: f64,
    precision: f64,
    predictions: Vec<Prediction>,
}

pub fn run(args: &ViolationArgs) -> anyhow::Result<Verdict> {
    let origin = args.config.display().to_string();
    let models =
        crate::models::Models::load_for(&args.paths, crate::models::site_provider(&args.config))?;
    let (config, base) = crate::run_cmd::load_site(&args.config, &models)?;
    let (approach_id, approach) = config
        .approaches
        .iter()
        .find(|(_, a)| a.rules.contains(&Rule::RedLight))
        .context("the config has no approach with the red_light rule")?;
    let camera = config
        .cameras
        .get(&approach.camera)
        .context("approach camera")?;
    let signal_id = approach.signal.as_ref().context("approach signal")?;
    let plan = config
        .signals
        .get(signal_id)
        .and_then(|s| s.fixed_time.as_ref())
        .context("this evaluation needs the approach's signal as a fixed_time plan")?;
    let labels = read_truth(&args.truth)?;

    let spec = SourceSpec::from_config(&approach.camera, camera, &base)?;
    let start_us = spec
        .recorded_at_us
        .context("the evaluation clip needs recorded_at")?;
    let timeline = PhaseTimeline::from_fixed_plan(plan, start_us, start_us + 24 * 3_600_000_000)?;
    let rules = ApproachRules::from_config(
        approach_id,
        approach,
        camera.homography.as_ref(),
        CountsConfig::default(),
    )?;
    let mut analysis = CameraAnalysis::new(&approach.camera, vec![rules], TrackerConfig::default());
    analysis.set_origin(start_us);
    let timelines = BTreeMap::from([(signal_id.clone(), timeline)]);
    let mut detector = crate::run_cmd::open_detector(&models, &config)?;
    let region = camera.detect_region_px();

    let ingest = CameraIngest::spawn(
        spec,
        IngestConfig {
            lossless: true,
            queue_capacity: 8,
            ..IngestConfig::default()
        },
    );
    let mut frames = 0usize;
    // (track, frame) -> box, to report and match where each track was.
    let mut boxes: BTreeMap<(u64, usize), (BBox, DetectionClass)> = BTreeMap::new();
    let mut predictions = Vec::new();
    // The last frames, to draw an event's stop-line frame once it is confirmed.
    let mut recent: std::collections::VecDeque<(usize, RgbImage)> =
        std::collections::VecDeque::new();
    let mut tiles: Vec<RgbImage> = Vec::new();
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} frames [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    loop {
        let frame = match ingest.frames().recv_timeout(Duration::from_millis(200)) {
            Ok(f) => f,
            Err(_) => {
                let ended = ingest.events().try_iter().any(|e| {
                    matches!(
                        e,
                        IngestEvent::EndOfInput { .. } | IngestEvent::Failed { .. }
                    )
                });
                if ended && ingest.frames().is_empty() {
                    break;
                }
                continue;
            }
        };
        let Some(rgb) = frame.rgb.as_deref() else {
            continue;
        };
        let index = frames;
        frames += 1;
        if args.sheet.is_some() {
            recent.push_back((index, rgb.clone()));
            if recent.len() > 40 {
                recent.pop_front();
            }
        }
        if !index.is_multiple_of(args.detect_every as usize) {
            analysis.skip_frame();
            continue;
        }
        let prepared = detector.prepare_region(rgb, region);
        let detections = associate_riders(&detector.detect_prepared(prepared)?, true);
        let out = analysis.process(frame.meta.time_us, &detections, &timelines);
        for track in out.tracks.iter().filter(|t| t.matched) {
            boxes.insert((track.id, index), (track.bbox, track.class));
        }
        for e in out.events.iter().filter(|e| e.kind == "red_light") {
            let stop_frame = e.frame_stop_line.unwrap_or(index);
            if let Some((_, img)) = recent.iter().find(|(i, _)| *i == stop_frame) {
                tiles.push(event_tile(
                    img,
                    &approach_lines(approach),
                    &boxes,
                    e.track_id,
                    stop_frame,
                ));
            }
            predictions.push(Prediction {
                track_id: e.track_id,
                class: e.class.clone(),
                frame_stop_line: stop_frame,
                t_stop_line: e.t_stop_line.unwrap_or(e.t),
                t_clearance: e.t_clearance.unwrap_or(e.t),
                time_into_red: e.time_into_red.unwrap_or_default(),
                bbox_at_stop_line: e.bbox_at_stop_line.unwrap_or_default(),
                matched: None,
            });
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    // Score: a prediction matches a label near its crossing frame whose box
    // it overlaps (or whose centre is close), at the label's frame.
    let near = |a: &BBox, b: &BBox| {
        let (acx, acy) = ((a.x1 + a.x2) / 2.0, (a.y1 + a.y2) / 2.0);
        let (bcx, bcy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
        a.iou(b) >= 0.3
            || ((acx - bcx).powi(2) + (acy - bcy).powi(2)).sqrt() <= 0.5 * b.width().max(b.height())
    };
    let mut found = Vec::new();
    let (mut false_positives, mut dont_care) = (0, 0);
    for p in &mut predictions {
        let [x, y, w, h] = p.bbox_at_stop_line;
        let at_stop = BBox {
            x1: x,
            y1: y,
            x2: x + w,
            y2: y + h,
        };
        let hit = labels.iter().find(|l| {
            if l.verdict == "uncertain" {
                // Front-row bikes that stopped astride the line: their box was
                // measured at some later frame and they barely move.
                near(&at_stop, &l.bbox)
            } else {
                p.frame_stop_line.abs_diff(l.frame) <= args.frame_tolerance
                    && boxes
                        .get(&(p.track_id, l.frame))
                        .is_some_and(|(b, _)| near(b, &l.bbox))
            }
        });
        match hit {
            Some(l) => {
                p.matched = Some(format!("{} ({})", l.id, l.verdict));
                match l.verdict.as_str() {
                    "yes" => found.push(l.id.clone()),
                    "uncertain" => dont_care += 1,
                    _ => false_positives += 1,
                }
            }
            None => false_positives += 1,
        }
    }
    found.sort();
    found.dedup();
    let yes: Vec<&Label> = labels.iter().filter(|l| l.verdict == "yes").collect();
    let missed: Vec<String> = yes
        .iter()
        .filter(|l| !found.contains(&l.id))
        .map(|l| l.id.clone())
        .collect();
    let tp = found.len();
    let report = Report {
        config: origin,
        frames,
        violations_labelled: yes.len(),
        recall: tp as f64 / yes.len().max(1) as f64,
        precision: tp as f64 / (tp + false_positives).max(1) as f64,
        found,
        missed,
        false_positives,
        dont_care,
        predictions,
    };
    println!(
        "{} ({} frames, approach {approach_id})",
        report.config, report.frames
    );
    println!(
        "  violations found {}/{}  recall {:.0}%  precision {:.0}%  false positives {}  don't-care {}",
        tp,
        report.violations_labelled,
        100.0 * report.recall,
        100.0 * report.precision,
        report.false_positives,
        report.dont_care
    );
    if !report.missed.is_empty() {
        println!("  missed: {}", report.missed.join(", "));
    }
    for p in &report.predictions {
        println!(
            "  track {:>4} {:<24} stop line frame {:>3} (t {:>6.2} s, {:>5.2} s into red) box {:?} -> {}",
            p.track_id,
            p.class,
            p.frame_stop_line,
            p.t_stop_line,
            p.time_into_red,
            p.bbox_at_stop_line.map(|v| v.round()),
            p.matched.as_deref().unwrap_or("FALSE POSITIVE")
        );
    }
    if let Some(path) = &args.sheet {
        write_sheet(path, &tiles)?;
        println!("  contact sheet written to {}", path.display());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Verdict::Passed)
}

fn approach_lines(
    a: &vigil_core::config::Approach,
) -> Vec<(vigil_core::config::ImageLine, [u8; 3])> {
    let mut out = vec![(a.stop_line, [255, 40, 40])];
    if let Some(c) = a.clearance_line {
        out.push((c, [255, 170, 0]));
    }
    out
}

/// One event's frame with the approach lines, the track's path and its box.
fn event_tile(
    frame: &RgbImage,
    lines: &[(vigil_core::config::ImageLine, [u8; 3])],
    boxes: &BTreeMap<(u64, usize), (BBox, DetectionClass)>,
    track: u64,
    at: usize,
) -> RgbImage {
    use vigil_video::draw::{disc, line};
    let mut img = frame.clone();
    for (l, colour) in lines {
        line(
            &mut img,
            (l[0][0], l[0][1]),
            (l[1][0], l[1][1]),
            2.0,
            *colour,
        );
    }
    let path: Vec<(f64, f64)> = boxes
        .range((track, 0)..=(track, at))
        .map(|(_, (b, _))| (f64::from(b.x1 + b.x2) / 2.0, f64::from(b.y2)))
        .collect();
    for w in path.windows(2) {
        line(&mut img, w[0], w[1], 2.0, [255, 240, 0]);
    }
    if let Some((b, _)) = boxes.get(&(track, at)) {
        let (x1, y1, x2, y2) = (
            f64::from(b.x1),
            f64::from(b.y1),
            f64::from(b.x2),
            f64::from(b.y2),
        );
        for (a, c) in [
            ((x1, y1), (x2, y1)),
            ((x2, y1), (x2, y2)),
            ((x2, y2), (x1, y2)),
            ((x1, y2), (x1, y1)),
        ] {
            line(&mut img, a, c, 2.0, [40, 230, 60]);
        }
    }
    // A red corner marks the phase at the crossing (always red for an event).
    disc(&mut img, 12.0, 12.0, 8.0, [255, 0, 0]);
    img
}

/// Lays tiles out four to a row, each halved, and saves a PNG.
fn write_sheet(path: &Path, tiles: &[RgbImage]) -> anyhow::Result<()> {
    let (tw, th) = tiles
        .first()
        .map_or((320, 240), |t| (t.width / 2, t.height / 2));
    let cols = tiles.len().clamp(1, 4) as u32;
    let rows = tiles.len().div_ceil(4).max(1) as u32;
    let mut sheet = image::RgbImage::new(cols * tw, rows * th);
    for (i, t) in tiles.iter().enumerate() {
        let (ox, oy) = ((i as u32 % 4) * tw, (i as u32 / 4) * th);
        for y in 0..th.min(t.height / 2) {
            for x in 0..tw.min(t.width / 2) {
                if let Some(p) = t.pixel(x * 2, y * 2) {
                    sheet.put_pixel(ox + x, oy + y, image::Rgb(p));
                }
            }
        }
    }
    sheet
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn read_truth(path: &Path) -> anyhow::Result<Vec<Label>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no column {name:?}", path.display()))
    };
    let (id, frame, bbox, verdict) = (
        col("vehicle_id")?,
        col("frame_first_beyond_line")?,
        col("bbox")?,
        col("is_violation")?,
    );
    let mut out = Vec::new();
    for (n, rec) in reader.records().enumerate() {
        let rec = rec?;
        let field = |i: usize| rec.get(i).unwrap_or_default().trim().to_owned();
        let nums: Vec<f32> = field(bbox)
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let [x, y, w, h] = nums[..] else {
            bail!("{}:{}: bbox must be `x y w h`", path.display(), n + 2);
        };
        out.push(Label {
            id: field(id),
            frame: field(frame)
                .parse()
                .with_context(|| format!("{}:{}: frame", path.display(), n + 2))?,
            bbox: BBox {
                x1: x,
                y1: y,
                x2: x + w,
                y2: y + h,
            },
            verdict: field(verdict),
        });
    }
    Ok(out)
}
