//! `vigil eval detect`: recall and precision per class on YOLO-format labels.
//!
//! `--tiles SPEC` picks the detector's extra views (`[detector.views]` in a
//! site config), `+`-joined:
//! - `COLSxROWS`: a tile grid over the whole frame (e.g. `2x2`);
//! - `COLSxROWS@X1,Y1,X2,Y2`: a grid over part of the frame, as fractions of
//!   its width and height (e.g. `2x1@0,0.19,1,0.69`);
//! - `flip`: the frame mirrored left-right;
//! - `wbf` or `nms`: how the views are merged (default `wbf`); `iou=X`: the
//!   merge IoU (default 0.55).
//!
//! For example `--tiles flip` or `--tiles flip+2x1@0,0.19,1,0.69`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_core::config::ViewMerge;
use vigil_core::RoadUserClass;
use vigil_infer::detector::{BBox, DetectionClass, Detector, DetectorConfig, TileGrid, Views};
use vigil_infer::model::DetectorShape;
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
    /// The `--tiles` views spec, or "none".
    views: String,
    /// The network input, width and height.
    input: [u32; 2],
    /// The `--region` looked at (X, Y, W, H), if any.
    region: Option<[u32; 4]>,
    image_count: usize,
    /// Model runs per image (1 without extra views).
    inferences_per_image: f64,
    /// Wall time of detection per image, all views and merging included.
    ms_per_image: f64,
    classes: BTreeMap<String, ClassScore>,
    /// Rider two-wheeler units (a bike, a person, or both) per image: the
    /// boxes a tracker would see. Labels are partial, so this says more about
    /// false boxes than the precision does.
    rider_units_per_image: f64,
    /// Labels no detection matched, for drawing and inspection.
    misses: Vec<Miss>,
}

#[derive(Serialize)]
struct Miss {
    image: String,
    class: String,
    /// x1, y1, x2, y2 in pixels.
    bbox: [f32; 4],
    /// The best IoU any candidate reached (a near miss is a placement
    /// problem, a zero a detection problem).
    best_iou: f32,
}

/// Parses a `--tiles` views spec (see the module docs).
fn parse_views(spec: &str) -> anyhow::Result<Views> {
    let usage = "expected `+`-joined views: COLSxROWS (1 to 8 each, e.g. 2x2), \
                 COLSxROWS@X1,Y1,X2,Y2 (a grid over part of the frame, fractions 0-1), \
                 flip, wbf or nms, iou=X";
    let mut views = Views::default();
    for token in spec.split('+').map(str::trim) {
        let bad = || anyhow::anyhow!("--tiles {spec:?}: bad view {token:?}; {usage}");
        match token {
            "flip" => views.flip = true,
            "wbf" => views.merge = ViewMerge::Wbf,
            "nms" => views.merge = ViewMerge::Nms,
            _ if token.starts_with("iou=") => {
                let iou: f32 = token[4..].parse().map_err(|_| bad())?;
                if !(iou > 0.0 && iou <= 1.0) {
                    return Err(bad());
                }
                views.merge_iou = iou;
            }
            _ => {
                if views.tiles.is_some() {
                    bail!("--tiles {spec:?}: one tile grid at most");
                }
                let (grid, region) = match token.split_once('@') {
                    Some((g, r)) => (g, Some(r)),
                    None => (token, None),
                };
                let (cols, rows) = grid
                    .split_once('x')
                    .and_then(|(c, r)| Some((c.parse::<u32>().ok()?, r.parse::<u32>().ok()?)))
                    .filter(|&(c, r)| (1..=8).contains(&c) && (1..=8).contains(&r))
                    .ok_or_else(bad)?;
                let mut tiles = TileGrid::whole_frame(cols, rows);
                if let Some(region) = region {
                    let v: Vec<f32> = region
                        .split(',')
                        .map(|c| c.trim().parse::<f32>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad())?;
                    let [x1, y1, x2, y2] = v.as_slice() else {
                        return Err(bad());
                    };
                    let unit = v.iter().all(|c| (0.0..=1.0).contains(c));
                    if !unit || x1 >= x2 || y1 >= y2 {
                        return Err(bad());
                    }
                    tiles.region = [*x1, *y1, *x2, *y2];
                }
                views.tiles = Some(tiles);
            }
        }
    }
    Ok(views)
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
    let models = Models::load_for(&args.paths, args.provider)?;
    let entry = models.manifest.model(&args.model).context("model entry")?;
    let options = SessionOptions {
        threads: args.threads,
        provider: args.provider,
        ..SessionOptions::default()
    };
    let views = args.tiles.as_deref().map(parse_views).transpose()?;
    let mut config = DetectorConfig {
        confidence: args.confidence,
        views: views.unwrap_or_default(),
        ..DetectorConfig::default()
    };
    let mut shape = DetectorShape::default();
    if args.fit_input {
        let sizes = match args.region {
            Some([_, _, w, h]) => vec![(w, h)],
            None => images
                .iter()
                .map(|p| {
                    image::image_dimensions(p)
                        .with_context(|| format!("cannot read the size of {}", p.display()))
                })
                .collect::<anyhow::Result<Vec<(u32, u32)>>>()?,
        };
        let fitted = DetectorConfig::fitted_input(args.input_size, &sizes);
        shape.input = (fitted != config.input).then_some(fitted);
    }
    let (model, shape) = models.open_detector_model(&args.model, options, shape)?;
    if let Some(input) = shape.input {
        config.input = input;
    }
    let mut detector = Detector::new(model, entry.labels.clone(), &coco_class_map(), config)?;

    let mut scores: Vec<ClassScore> = vec![ClassScore::default(); names.len()];
    let bar = ProgressBar::new(images.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut detect_time = Duration::ZERO;
    let mut inferences = 0usize;
    let mut unit_count = 0usize;
    let mut misses: Vec<Miss> = Vec::new();
    for path in &images {
        let image = load_image(path)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label_path = args.labels.join(format!("{stem}.txt"));
        let mut labels = read_yolo(
            &label_path,
            image.width as f32,
            image.height as f32,
            names.len(),
        )?;
        if let Some([x, y, w, h]) = args.region {
            let (x0, y0, x1, y1) = (x as f32, y as f32, (x + w) as f32, (y + h) as f32);
            labels.retain(|(_, b)| {
                let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
                cx >= x0 && cx <= x1 && cy >= y0 && cy <= y1
            });
        }
        let started = Instant::now();
        let detections = match args.region {
            Some(region) => {
                let prepared = detector.prepare_region(&image, Some(region));
                detector.detect_prepared(prepared)?
            }
            None => detector.detect(&image)?,
        };
        detect_time += started.elapsed();
        inferences += config.views.inferences(image.width, image.height);
        let units = rider_units(&detections, true);
        unit_count += units.len();
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
            let taken = score(&mut scores[class], &truth, &candidates);
            for (t, _) in truth.iter().zip(&taken).filter(|(_, hit)| !**hit) {
                let best_iou = candidates
                    .iter()
                    .flat_map(|(_, boxes)| boxes.iter().map(|b| t.iou(b)))
                    .fold(0.0f32, f32::max);
                misses.push(Miss {
                    image: stem.clone(),
                    class: names[class].clone(),
                    bbox: [t.x1, t.y1, t.x2, t.y2],
                    best_iou,
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = images.len() as f64;
    let report = DetectReport {
        images: args.images.display().to_string(),
        model: args.model.clone(),
        confidence: args.confidence,
        views: args.tiles.clone().unwrap_or_else(|| "none".to_owned()),
        input: [config.input.0, config.input.1],
        region: args.region,
        image_count: images.len(),
        inferences_per_image: inferences as f64 / n,
        ms_per_image: detect_time.as_secs_f64() * 1000.0 / n,
        rider_units_per_image: unit_count as f64 / n,
        misses,
        classes: names
            .iter()
            .cloned()
            .zip(scores.into_iter().map(finish))
            .collect(),
    };
    println!(
        "{} ({} images, {} at confidence {}, {}x{} input, views: {}{})",
        report.images,
        report.image_count,
        report.model,
        report.confidence,
        report.input[0],
        report.input[1],
        report.views,
        report.region.map_or(String::new(), |[x, y, w, h]| format!(
            ", region {x},{y},{w},{h}: labels centred in it only"
        ))
    );
    println!(
        "  {:.1} inferences and {:.1} ms per image (detection, views and merging); \
         {:.1} rider units per image",
        report.inferences_per_image, report.ms_per_image, report.rider_units_per_image
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
/// candidate matches with the best of its boxes. Returns which labels matched.
fn score(s: &mut ClassScore, truth: &[BBox], candidates: &[(f32, Vec<BBox>)]) -> Vec<bool> {
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
    taken
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_grid_is_the_whole_frame_merged_by_wbf() {
        let v = parse_views("2x2").expect("valid");
        assert_eq!(v.tiles, Some(TileGrid::whole_frame(2, 2)));
        assert!(!v.flip);
        assert_eq!(v.merge, ViewMerge::Wbf);
    }

    #[test]
    fn flip_a_band_grid_and_a_merge_combine() {
        let v = parse_views("flip+2x1@0,0.19,1,0.69+nms+iou=0.5").expect("valid");
        assert!(v.flip);
        assert_eq!(v.merge, ViewMerge::Nms);
        assert_eq!(v.merge_iou, 0.5);
        let t = v.tiles.expect("tiles");
        assert_eq!((t.cols, t.rows), (2, 1));
        assert_eq!(t.region, [0.0, 0.19, 1.0, 0.69]);
        assert_eq!(parse_views("flip").expect("valid").tiles, None);
    }

    #[test]
    fn bad_specs_are_refused_with_the_grammar() {
        for spec in [
            "",
            "0x2",
            "9x1",
            "2x",
            "2x1@0,0,1",
            "2x1@0.5,0,0.4,1",
            "2x1@0,0,1,1.5",
            "mirror",
            "iou=0",
            "2x2+1x1",
        ] {
            let err = parse_views(spec).expect_err(spec).to_string();
            assert!(err.contains("--tiles"), "{spec}: {err}");
        }
    }
}
