//! `vigil eval detect`: recall and precision per class on YOLO-format labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_core::RoadUserClass;
use vigil_infer::detector::{BBox, DetectionClass, Detector, DetectorConfig};
use vigil_infer::riders::rider_units;
use vigil_infer::runtime::SessionOptions;

use crate::eval_cmd::DetectArgs;
use crate::models::{load_image, Models};
use crate::Verdict;

/// What a dataset class is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Class(DetectionClass),
    /// A two-wheeler with its rider, after person-over-motorbike association.
    Rider,
}

fn target_of(name: &str) -> Option<Target> {
    let n = name.trim().to_lowercase();
    let road = |c| Some(Target::Class(DetectionClass::RoadUser(c)));
    match n.as_str() {
        "rider" | "riders" | "người trên xe" => Some(Target::Rider),
        "traffic light" | "traffic_light" => Some(Target::Class(DetectionClass::TrafficLight)),
        "motorcycle" | "motorbike" => road(RoadUserClass::Motorbike),
        other => other
            .parse::<RoadUserClass>()
            .ok()
            .map(|c| Target::Class(DetectionClass::RoadUser(c))),
    }
}

/// The usual COCO labels for each road-user type.
fn coco_class_map() -> BTreeMap<String, Vec<String>> {
    [
        ("car", "car"),
        ("motorbike", "motorcycle"),
        ("bus", "bus"),
        ("truck", "truck"),
        ("bicycle", "bicycle"),
        ("person", "person"),
        ("traffic_light", "traffic light"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
    .collect()
}

#[derive(Serialize, Default, Clone)]
struct ClassScore {
    labels: usize,
    detections: usize,
    matched_labels: usize,
    matched_detections: usize,
    recall: f64,
    precision: f64,
    /// Recall by labelled box height: under 40 px, 40-80 px, 80 px and over.
    recall_by_height: BTreeMap<String, (usize, usize)>,
}

#[derive(Serialize)]
struct DetectReport {
    images: String,
    model: String,
    confidence: f32,
    image_count: usize,
    classes: BTreeMap<String, ClassScore>,
}

fn classes_file(labels: &Path) -> Option<PathBuf> {
    [labels.join("classes.txt"), labels.join("../classes.txt")]
        .into_iter()
        .find(|p| p.exists())
}

pub fn run(args: &DetectArgs) -> anyhow::Result<Verdict> {
    let classes_path = classes_file(&args.labels)
        .with_context(|| format!("no classes.txt in {} or its parent", args.labels.display()))?;
    let names: Vec<String> = std::fs::read_to_string(&classes_path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let targets: Vec<Target> = names
        .iter()
        .map(|n| {
            target_of(n).with_context(|| {
                format!(
                    "{}: class {n:?} is not a road-user type, rider or traffic light",
                    classes_path.display()
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut images: Vec<PathBuf> = std::fs::read_dir(&args.images)
        .with_context(|| format!("cannot list {}", args.images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg")
        })
        .collect();
    images.sort();
    if images.is_empty() {
        bail!("no PNG or JPEG images in {}", args.images.display());
    }
    let models = Models::load(&args.paths)?;
    let entry = models.manifest.model(&args.model).context("model entry")?;
    let options = SessionOptions {
        threads: args.threads,
        ..SessionOptions::default()
    };
    let config = DetectorConfig {
        confidence: args.confidence,
        ..DetectorConfig::default()
    };
    let mut detector = Detector::new(
        models.open(&args.model, options)?,
        entry.labels.clone(),
        &coco_class_map(),
        config,
    )?;

    let tiles = match &args.tiles {
        None => None,
        Some(t) => {
            let parsed = t
                .split_once('x')
                .and_then(|(c, r)| Some((c.parse::<u32>().ok()?, r.parse::<u32>().ok()?)))
                .filter(|&(c, r)| (1..=8).contains(&c) && (1..=8).contains(&r));
            Some(parsed.with_context(|| {
                format!("--tiles {t:?}: expected COLSxROWS such as 2x2 (1 to 8 each)")
            })?)
        }
    };
    let mut scores: Vec<ClassScore> = vec![ClassScore::default(); names.len()];
    let bar = ProgressBar::new(images.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for path in &images {
        let image = load_image(path)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label_path = args.labels.join(format!("{stem}.txt"));
        let labels = read_yolo(
            &label_path,
            image.width as f32,
            image.height as f32,
            names.len(),
        )?;
        let detections = match tiles {
            Some((cols, rows)) => detector.detect_tiled(&image, cols, rows)?,
            None => detector.detect(&image)?,
        };
        let units = rider_units(&detections, true);
        for (class, target) in targets.iter().enumerate() {
            // A rider label is one person on a two-wheeler (a bike may carry
            // two): each person, each bike and each person-on-bike union may
            // match one label.
            let candidates: Vec<(f32, Vec<BBox>)> = match target {
                Target::Class(c) => detections
                    .iter()
                    .filter(|d| d.class == *c)
                    .map(|d| (d.score, vec![d.bbox]))
                    .collect(),
                Target::Rider => units
                    .iter()
                    .flat_map(|u| {
                        let union = (u.parts.len() > 1).then_some(u.detection.bbox);
                        union
                            .into_iter()
                            .chain(u.parts.iter().copied())
                            .map(|b| (u.detection.score, vec![b]))
                    })
                    .collect(),
            };
            let truth: Vec<BBox> = labels
                .iter()
                .filter(|(c, _)| *c == class)
                .map(|(_, b)| *b)
                .collect();
            score(&mut scores[class], &truth, &candidates);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = DetectReport {
        images: args.images.display().to_string(),
        model: args.model.clone(),
        confidence: args.confidence,
        image_count: images.len(),
        classes: names
            .iter()
            .cloned()
            .zip(scores.into_iter().map(finish))
            .collect(),
    };
    println!(
        "{} ({} images, {} at confidence {})",
        report.images, report.image_count, report.model, report.confidence
    );
    for (name, s) in &report.classes {
        println!(
            "  {name:<16} recall {:>6.2}% ({}/{})  precision {:>6.2}% ({}/{})",
            100.0 * s.recall,
            s.matched_labels,
            s.labels,
            100.0 * s.precision,
            s.matched_detections,
            s.detections
        );
        for (bucket, (hit, all)) in &s.recall_by_height {
            println!(
                "    height {bucket:<8} recall {:>6.2}% ({hit}/{all})",
                100.0 * *hit as f64 / (*all).max(1) as f64
            );
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("  results written to {}", path.display());
    }
    Ok(Verdict::Passed)
}

fn finish(mut s: ClassScore) -> ClassScore {
    s.recall = s.matched_labels as f64 / s.labels.max(1) as f64;
    s.precision = s.matched_detections as f64 / s.detections.max(1) as f64;
    s
}

/// Greedy matching at IoU >= 0.5, highest-scoring candidates first; a
/// candidate matches with the best of its boxes.
fn score(s: &mut ClassScore, truth: &[BBox], candidates: &[(f32, Vec<BBox>)]) {
    let mut order: Vec<&(f32, Vec<BBox>)> = candidates.iter().collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut taken = vec![false; truth.len()];
    for (_, boxes) in order {
        let best = truth
            .iter()
            .enumerate()
            .filter(|(i, _)| !taken[*i])
            .map(|(i, t)| (i, boxes.iter().map(|b| t.iou(b)).fold(0.0f32, f32::max)))
            .filter(|(_, iou)| *iou >= 0.5)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, _)) = best {
            taken[i] = true;
            s.matched_detections += 1;
        }
    }
    s.labels += truth.len();
    s.detections += candidates.len();
    s.matched_labels += taken.iter().filter(|&&t| t).count();
    for (t, hit) in truth.iter().zip(&taken) {
        let bucket = match t.height() {
            h if h < 40.0 => "<40px",
            h if h < 80.0 => "40-80px",
            _ => ">=80px",
        };
        let entry = s.recall_by_height.entry(bucket.to_owned()).or_default();
        entry.0 += usize::from(*hit);
        entry.1 += 1;
    }
}

/// YOLO-format labels in pixels; a missing file means no labelled objects.
fn read_yolo(path: &Path, w: f32, h: f32, classes: usize) -> anyhow::Result<Vec<(usize, BBox)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || {
            format!(
                "{}:{}: expected `class cx cy w h` (normalised)",
                path.display(),
                n + 1
            )
        };
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [c, cx, cy, bw, bh] = parts.as_slice() else {
            bail!(bad())
        };
        let class: usize = c.parse().with_context(bad)?;
        if class >= classes {
            bail!(
                "{}:{}: class {class} is not in classes.txt ({classes} classes)",
                path.display(),
                n + 1
            );
        }
        let v: Vec<f32> = [cx, cy, bw, bh]
            .iter()
            .map(|s| s.parse::<f32>())
            .collect::<Result<_, _>>()
            .with_context(bad)?;
        out.push((
            class,
            BBox {
                x1: (v[0] - v[2] / 2.0) * w,
                y1: (v[1] - v[3] / 2.0) * h,
                x2: (v[0] + v[2] / 2.0) * w,
                y2: (v[1] + v[3] / 2.0) * h,
            },
        ));
    }
    Ok(out)
}
