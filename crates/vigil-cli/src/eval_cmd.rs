//! `vigil eval`: accuracy and speed on labelled datasets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use vigil_core::config::ExecutionProvider;
use vigil_core::detection::BBox;
use vigil_core::image::RgbImage;
use vigil_infer::ocr::{Alphabet, RecogniserCalibrator};
use vigil_infer::plate_reader::{
    plate_colour, plate_lines, FirstPassCounts, PlateLayout, PlateReader, PlateReaderConfig,
    VehiclePlate,
};
use vigil_infer::runtime::SessionOptions;
use vigil_infer::text_detector::{LocateConfig, TextDetector, TextDetectorCalibrator};
use vigil_plate::PlateReading;

use crate::models::{load_image, Models};
use crate::paths::ModelPaths;
use crate::Verdict;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Plate reading accuracy on labelled plate crops.
    ///
    /// DIR holds labels.csv (columns file,plate_text; plate_text is
    /// alphanumerics only, e.g. 29B123456) and the crops, `file` being
    /// relative to DIR. Prints exact-match and character accuracy, accuracy
    /// per format, ms per plate and the 20 commonest confusions.
    #[command(
        after_help = "Example:\n  vigil eval plates --dataset ../shared/data/vn-plates-1line --json plates.json"
    )]
    Plates {
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long)]
        json: Option<PathBuf>,
        /// Recogniser from models/manifest.toml.
        #[arg(long, default_value = "ppocrv6-rec-small")]
        recogniser: String,
        /// Inference threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// cpu, cuda or tensorrt (a GPU needs a build with that feature and
        /// `vigil models fetch --gpu`; otherwise CPU, with a warning).
        #[arg(long, default_value = "cpu", value_parser = crate::models::parse_provider)]
        provider: ExecutionProvider,
        /// Evaluate only the first N labelled crops.
        #[arg(long)]
        limit: Option<usize>,
        /// Keep the recogniser's whole output head (every class it was
        /// trained with) instead of cutting it down to plate characters.
        #[arg(long)]
        full_head: bool,
        /// Read every plate with the float recogniser, not the INT8 copies
        /// built from the shipped calibration tables.
        #[arg(long)]
        float: bool,
        /// Instead of evaluating, measure an INT8 calibration table of the
        /// recogniser on the lines of the dataset's crops of one layout
        /// (--calibrate-layout) and write it to FILE (TOML). The labels are
        /// not used.
        #[arg(long, value_name = "FILE")]
        calibrate: Option<PathBuf>,
        /// The layout whose lines --calibrate measures: one-line or two-line.
        #[arg(long, value_name = "LAYOUT", default_value = "one-line")]
        calibrate_layout: String,
        /// The images are vehicle crops: locate the plate in each with the
        /// text detector, as `vigil run` does, then read it. The time per
        /// plate then includes locating it. Where labels.csv also has
        /// plate_x1, plate_y1, plate_x2 and plate_y2 (the plate's box), the
        /// located region is scored too (IoU >= 0.5).
        #[arg(long)]
        locate: bool,
        /// Text detector from models/manifest.toml (with --locate).
        #[arg(long, default_value = vigil_core::config::DEFAULT_TEXT_DETECTOR, requires = "locate")]
        text_detector: String,
        /// The vehicle crop's width is scaled toward this many pixels for
        /// the text detector (with --locate; the config's
        /// `plates.locate_width_px`).
        #[arg(long, requires = "locate")]
        locate_width: Option<u32>,
        /// The share of the crop's height, from the top, left out of the
        /// search (with --locate; the config's `plates.search_from`).
        #[arg(long, requires = "locate")]
        search_from: Option<f32>,
        /// Search first at this width, then again at --locate-width only
        /// around what it finds; 0 searches once (with --locate; the
        /// config's `plates.locate_coarse_width_px`).
        #[arg(long, value_name = "PX", requires = "locate")]
        coarse_width: Option<u32>,
        /// With --locate: read each crop whose plate was read a second time
        /// as the plate stage reads a track's next crop. The crop is shifted
        /// by 4% of its width and 3% of its height (a tracker's box drifting
        /// between frames), and the plate is searched for first around where
        /// the first read found it. Reports both ways' time and accuracy.
        #[arg(long, requires = "locate")]
        revisit: bool,
        /// Read every one-line plate first with this cheaper recogniser
        /// (from models/manifest.toml, in float); --recogniser reads only
        /// the plates it is unsure of (the config's `plates.first_pass`).
        /// `none` reads every plate with --recogniser; so does --float.
        #[arg(long, value_name = "MODEL", default_value = vigil_core::config::DEFAULT_FIRST_PASS)]
        first_pass: String,
        /// The least confidence (0-1) of every letter and digit of a
        /// first-pass reading that stands (the config's
        /// `plates.first_pass_min_confidence`).
        #[arg(long, value_name = "P", value_parser = parse_confidence,
              default_value_t = vigil_core::config::DEFAULT_FIRST_PASS_MIN_CONFIDENCE)]
        first_pass_confidence: f32,
        #[command(flatten)]
        paths: ModelPaths,
    },
    /// Detection recall and precision per class at IoU 0.5 on YOLO-format labels.
    ///
    /// A class named like a road-user type (car, motorbike, bus, truck,
    /// bicycle, person) is compared with that type's detections; a rider class
    /// (`rider`, `người trên xe`) with two-wheelers after person-over-motorbike
    /// association; `traffic light` with traffic-light detections.
    #[command(
        after_help = "Example:\n  vigil eval detect --images ../shared/data/hanoi-16h15/riders/images --labels ../shared/data/hanoi-16h15/riders/labels"
    )]
    Detect(DetectArgs),
    /// Red-light verdicts on a labelled clip: the whole chain (ingest,
    /// detection with rider association, tracking, front point, signal plan,
    /// red-light rule) scored against a violations.csv.
    ///
    /// violations.csv columns: vehicle_id, frame_first_beyond_line, bbox
    /// (`x y w h` at that frame), is_violation (yes, no or uncertain;
    /// uncertain rows are don't-care).
    #[command(
        after_help = "Example:\n  vigil eval violations --config configs/hanoi-16h15.toml --truth ../shared/data/hanoi-16h15/violations.csv"
    )]
    Violations(crate::eval_violations::ViolationArgs),
    /// Signal-head state accuracy on labelled crops.
    ///
    /// DIR holds labels.csv (columns file,state with state red, yellow or
    /// green) and the crops. Prints accuracy (an Unknown answer counts as
    /// wrong) and the confusion matrix.
    #[command(
        after_help = "Example:\n  vigil eval lights --dataset ../shared/data/traffic-lights --json lights.json"
    )]
    Lights {
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// Detection recall and precision on YOLO-format labels.
#[derive(clap::Args)]
pub struct DetectArgs {
    /// Images (PNG/JPEG).
    #[arg(long)]
    pub images: PathBuf,
    /// One `NAME.txt` per image: `class cx cy w h` per line, normalised to 0-1.
    /// Class names come from `classes.txt` beside the labels (or one level up).
    #[arg(long)]
    pub labels: PathBuf,
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Vehicle detector from models/manifest.toml.
    #[arg(long, default_value = "yolov8n-coco")]
    pub model: String,
    #[arg(long, default_value_t = 0.25)]
    pub confidence: f32,
    /// Also detect on a COLSxROWS grid of overlapping tiles (e.g. 2x2), merged
    /// with the full frame: more recall on small objects, one inference per tile.
    #[arg(long)]
    pub tiles: Option<String>,
    /// Fit the detector's input to the images (640 along the long side, the
    /// other rounded up to 32), as `[detector] fit_input` does in a site,
    /// instead of the 640x640 square.
    #[arg(long)]
    pub fit_input: bool,
    /// With --fit-input: the fitted input's long side, a multiple of 32
    /// (as `[detector] input_size` in a site). Below the model's 640 it
    /// trades small objects for speed; this measures how many.
    #[arg(long, default_value_t = 640, requires = "fit_input", value_parser = parse_input_size)]
    pub input_size: u32,
    /// Look only at the part X,Y,W,H (pixels) of every image, as a camera's
    /// `detect_region` does, and score only the labels whose centre lies
    /// in it. With --fit-input the input is fitted to the region.
    #[arg(long, value_parser = parse_region)]
    pub region: Option<[u32; 4]>,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// cpu, cuda or tensorrt (a GPU needs a build with that feature and
    /// `vigil models fetch --gpu`; otherwise CPU, with a warning).
    #[arg(long, default_value = "cpu", value_parser = crate::models::parse_provider)]
    pub provider: ExecutionProvider,
    #[command(flatten)]
    pub paths: ModelPaths,
}

pub fn run(cmd: EvalCommand) -> anyhow::Result<Verdict> {
    match cmd {
        EvalCommand::Plates {
            dataset,
            json,
            recogniser,
            threads,
            provider,
            limit,
            full_head,
            float,
            calibrate,
            calibrate_layout,
            locate,
            text_detector,
            locate_width,
            search_from,
            coarse_width,
            revisit,
            first_pass,
            first_pass_confidence,
            paths,
        } => {
            let alphabet = if full_head {
                Alphabet::Full
            } else {
                Alphabet::Plate
            };
            let locate = locate.then(|| {
                let site = LocateConfig::default();
                Locating {
                    revisit,
                    text_detector,
                    config: LocateConfig {
                        vehicle_width_px: locate_width.unwrap_or(site.vehicle_width_px),
                        search_from: search_from.unwrap_or(site.search_from),
                        coarse_width_px: match coarse_width {
                            Some(0) => None,
                            Some(px) => Some(px),
                            None => site.coarse_width_px,
                        },
                        ..site
                    },
                }
            });
            if let (Some(out), Some(locating)) = (&calibrate, &locate) {
                return calibrate_text_detector(
                    dataset.as_path(),
                    out,
                    locating,
                    threads,
                    limit,
                    &paths,
                );
            }
            if let Some(out) = calibrate {
                let layout = match calibrate_layout.as_str() {
                    "one-line" => PlateLayout::OneLine,
                    "two-line" => PlateLayout::TwoLine,
                    other => bail!("--calibrate-layout {other:?}: expected one-line or two-line"),
                };
                return calibrate_recogniser(
                    &dataset,
                    (&out, layout),
                    (&recogniser, alphabet),
                    threads,
                    limit,
                    &paths,
                );
            }
            plates(
                &dataset,
                json.as_deref(),
                &ReaderChoice {
                    recogniser,
                    alphabet,
                    int8: !float,
                    first_pass: (!float && first_pass != vigil_core::config::NO_FIRST_PASS)
                        .then_some((first_pass, first_pass_confidence)),
                },
                locate.as_ref(),
                SessionOptions {
                    threads,
                    provider,
                    ..SessionOptions::default()
                },
                limit,
                &paths,
            )
        }
        EvalCommand::Detect(args) => crate::eval_detect::run(&args),
        EvalCommand::Violations(args) => crate::eval_violations::run(&args),
        EvalCommand::Lights { dataset, json } => lights(&dataset, json.as_deref()),
    }
}

/// `(file, label)` rows of a dataset's labels.csv, with a column named `label_column`.
fn read_labels(dataset: &Path, label_column: &str) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let csv_path = dataset.join("labels.csv");
    let mut reader = csv::Reader::from_path(&csv_path)
        .with_context(|| format!("cannot read {}", csv_path.display()))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{} has no column {name:?} (columns: {:?})",
                csv_path.display(),
                headers
            )
        })
    };
    let (file_col, label_col) = (col("file")?, col(label_column)?);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", csv_path.display(), i + 2))?;
        let (Some(file), Some(label)) = (record.get(file_col), record.get(label_col)) else {
            bail!("{}: row {} is missing a column", csv_path.display(), i + 2);
        };
        rows.push((dataset.join(file), label.trim().to_owned()));
    }
    Ok(rows)
}

/// The labelled plate box of each image, where labels.csv has the columns
/// plate_x1, plate_y1, plate_x2 and plate_y2; `None` where it has none.
fn read_plate_boxes(dataset: &Path) -> anyhow::Result<Option<BTreeMap<PathBuf, BBox>>> {
    let csv_path = dataset.join("labels.csv");
    let mut reader = csv::Reader::from_path(&csv_path)
        .with_context(|| format!("cannot read {}", csv_path.display()))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(file), Some(x1), Some(y1), Some(x2), Some(y2)) = (
        col("file"),
        col("plate_x1"),
        col("plate_y1"),
        col("plate_x2"),
        col("plate_y2"),
    ) else {
        return Ok(None);
    };
    let mut boxes = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", csv_path.display(), i + 2))?;
        let number = |c: usize| -> anyhow::Result<f32> {
            let text = record.get(c).unwrap_or_default().trim();
            text.parse().with_context(|| {
                format!(
                    "{}: row {}: plate box value {text:?} is not a number",
                    csv_path.display(),
                    i + 2
                )
            })
        };
        let b = BBox {
            x1: number(x1)?,
            y1: number(y1)?,
            x2: number(x2)?,
            y2: number(y2)?,
        };
        let name = record.get(file).unwrap_or_default();
        boxes.insert(dataset.join(name), b);
    }
    Ok(Some(boxes))
}

fn compact(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[derive(Serialize, Default)]
struct FormatScore {
    count: usize,
    exact: usize,
    exact_accuracy: f64,
}

#[derive(Serialize)]
struct PlateReport {
    dataset: String,
    recogniser: String,
    /// `plate` (output head cut down to plate characters) or `full`.
    head: &'static str,
    /// The layouts read by an INT8 recogniser (`one-line`, `two-line`).
    int8: Vec<&'static str>,
    /// The execution provider the recogniser ran on (cpu, cuda, tensorrt).
    provider: String,
    count: usize,
    exact_accuracy: f64,
    char_accuracy: f64,
    ms_per_plate: f64,
    ms_per_plate_median: f64,
    unreadable: usize,
    per_format: BTreeMap<String, FormatScore>,
    /// The plates' background colour classes as measured (see
    /// `plate_reader::plate_colour`): white, yellow, blue, red, unknown.
    colours: BTreeMap<&'static str, usize>,
    /// (file, colour) of each plate measured other than white, for a look.
    coloured: Vec<(String, &'static str)>,
    confusions: Vec<(String, String, usize)>,
    /// (file, label, read, raw OCR lines joined by `|`).
    errors: Vec<(String, String, String, String)>,
    /// With --locate: how the plates were found in the vehicle crops.
    #[serde(skip_serializing_if = "Option::is_none")]
    locate: Option<LocateReport>,
    /// With --first-pass: how often its reading stood.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_pass: Option<FirstPassReport>,
}

/// `eval plates --first-pass`: how often the first pass's reading stood.
#[derive(Serialize)]
struct FirstPassReport {
    recogniser: String,
    min_char_confidence: f32,
    tried: usize,
    accepted: usize,
}

/// The recognisers `eval plates` reads with.
struct ReaderChoice {
    recogniser: String,
    alphabet: Alphabet,
    int8: bool,
    /// A first-pass recogniser and its least character confidence.
    first_pass: Option<(String, f32)>,
}

/// `eval plates --locate`: the text detector and where it searches.
struct Locating {
    /// Each read crop is read again, shifted, near its plate (--revisit).
    revisit: bool,
    text_detector: String,
    config: LocateConfig,
}

/// `eval plates --locate --calibrate`: the text detector's INT8
/// calibration table, measured on the search bands of the dataset's
/// vehicle crops.
fn calibrate_text_detector(
    dataset: &Path,
    out: &Path,
    locating: &Locating,
    threads: usize,
    limit: Option<usize>,
    paths: &ModelPaths,
) -> anyhow::Result<Verdict> {
    let rows = plate_rows(dataset, limit)?;
    let models = Models::load(paths)?;
    let name = &locating.text_detector;
    let path = models.verified_file(name)?;
    let sha256 = models.sha256(name)?.to_owned();
    let mut calibrator = TextDetectorCalibrator::open(
        models.runtime,
        name,
        &path,
        SessionOptions {
            threads,
            ..SessionOptions::default()
        },
    )?;
    let bar = ProgressBar::new(rows.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} vehicle crops [{elapsed}<{eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for (file, _) in &rows {
        calibrator.add(&load_image(file)?, &locating.config)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let l = &locating.config;
    let table = calibrator.finish(
        &sha256,
        &format!(
            "vigil eval plates --locate --calibrate: the search bands (below {:.0}% of the height, scaled toward {} px wide{}) of the {} vehicle crops of {}; per tensor, the mean over runs of each run's minimum and maximum",
            100.0 * l.search_from,
            l.vehicle_width_px,
            l.coarse_width_px
                .map(|c| format!(" and {c} px"))
                .unwrap_or_default(),
            rows.len(),
            dataset.file_name().map_or_else(
                || dataset.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            ),
        ),
    );
    std::fs::write(out, table.to_toml()?).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} ranges from {} runs on {} vehicle crops written to {}",
        table.ranges.len(),
        calibrator.runs(),
        rows.len(),
        out.display()
    );
    Ok(Verdict::Passed)
}

#[derive(Serialize)]
struct LocateReport {
    text_detector: String,
    vehicle_width_px: u32,
    search_from: f32,
    /// The coarse pass's width, where the search has one.
    coarse_width_px: Option<u32>,
    /// Crops in which a plate region was found.
    located: usize,
    /// Of those, regions overlapping the labelled plate box at IoU >= 0.5
    /// (absent where labels.csv has no boxes).
    located_on_plate: Option<usize>,
    ms_locate: f64,
    ms_read: f64,
    /// With --revisit: the shifted crops, read near the first read's plate
    /// and, for comparison, searched whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    revisit: Option<RevisitReport>,
}

/// `eval plates --locate --revisit`: a crop read again as a track's next
/// crop is, near where its plate was, against a whole search.
#[derive(Serialize, Default)]
struct RevisitReport {
    count: usize,
    exact_near: usize,
    exact_whole: usize,
    ms_near: f64,
    ms_whole: f64,
}

/// How far a revisited crop is shifted, as shares of its width and height.
const REVISIT_SHIFT: (f32, f32) = (0.04, 0.03);

impl RevisitReport {
    /// Reads `image` shifted by [`REVISIT_SHIFT`], once near `region` (where
    /// the plate was read in it) and once searched whole, and scores both.
    fn add(
        &mut self,
        (reader, detector): (&mut PlateReader, &mut TextDetector),
        image: &RgbImage,
        region: &BBox,
        config: &LocateConfig,
        truth: &str,
    ) -> anyhow::Result<()> {
        let (w, h) = (image.width, image.height);
        let dx = (w as f32 * REVISIT_SHIFT.0).round() as i64;
        let dy = (h as f32 * REVISIT_SHIFT.1).round() as i64;
        let Some(view) = image.crop(dx, dy, i64::from(w), i64::from(h)) else {
            return Ok(());
        };
        let hint = vigil_pipeline::plates::rescaled(region, (w, h), (view.width, view.height));
        let right = |found: &Option<VehiclePlate>| {
            found
                .as_ref()
                .and_then(|f| f.reading.plate())
                .is_some_and(|p| p.compact() == truth)
        };
        let start = Instant::now();
        let near = reader.read_in_vehicle_near(detector, &view, config, &hint)?;
        self.ms_near += start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let whole = reader.read_in_vehicle(detector, &view, config)?;
        self.ms_whole += start.elapsed().as_secs_f64() * 1e3;
        self.count += 1;
        self.exact_near += usize::from(right(&near));
        self.exact_whole += usize::from(right(&whole));
        Ok(())
    }
}

/// The first `limit` rows (all without one) of a plate dataset's
/// labels.csv; none is an error.
fn plate_rows(dataset: &Path, limit: Option<usize>) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut rows = read_labels(dataset, "plate_text")?;
    if let Some(n) = limit {
        rows.truncate(n);
    }
    if rows.is_empty() {
        bail!("{} lists no images", dataset.join("labels.csv").display());
    }
    Ok(rows)
}

fn plates(
    dataset: &Path,
    json: Option<&Path>,
    choice: &ReaderChoice,
    locating: Option<&Locating>,
    options: SessionOptions,
    limit: Option<usize>,
    paths: &ModelPaths,
) -> anyhow::Result<Verdict> {
    let rows = plate_rows(dataset, limit)?;
    let models = Models::load_for(paths, options.provider)?;
    let (recogniser, alphabet, int8) = (choice.recogniser.as_str(), choice.alphabet, choice.int8);
    let mut reader = models.plate_reader(recogniser, options, alphabet, int8)?;
    if let Some((name, min_char_confidence)) = &choice.first_pass {
        reader = reader.with_first_pass(models.first_pass(
            name,
            options,
            alphabet,
            *min_char_confidence,
        )?);
    }
    let mut locator = match locating {
        Some(l) => Some(models.text_detector(&l.text_detector, options, int8)?),
        None => None,
    };
    let boxes = match locating {
        Some(_) => read_plate_boxes(dataset)?,
        None => None,
    };
    let (mut located, mut on_plate) = (0usize, 0usize);
    let mut revisits = RevisitReport::default();
    let mut colours: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut coloured = Vec::new();
    // The first pass's reads of revisited crops, kept out of its counts.
    let mut revisit_first_pass = FirstPassCounts::default();
    let (mut ms_locate, mut ms_read) = (0.0f64, 0.0f64);
    let int8_layouts: Vec<&'static str> = {
        let sha256 = models.sha256(recogniser)?;
        [
            (PlateLayout::OneLine, "one-line"),
            (PlateLayout::TwoLine, "two-line"),
        ]
        .into_iter()
        .filter(|(l, _)| int8 && vigil_infer::quantize::builtin(sha256, *l).is_some())
        .map(|(_, n)| n)
        .collect()
    };
    let bar = ProgressBar::new(rows.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} plates [{elapsed}<{eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut times = Vec::with_capacity(rows.len());
    let (mut exact, mut char_sum, mut unreadable) = (0usize, 0.0f64, 0usize);
    let mut per_format: BTreeMap<String, FormatScore> = BTreeMap::new();
    let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut errors = Vec::new();
    for (path, label) in &rows {
        let image = load_image(path)?;
        let start = Instant::now();
        let mut read_region = None;
        let mut read_crop = None;
        let (text, reading) = match (&mut locator, locating) {
            (Some(detector), Some(l)) => {
                let regions = detector.locate_plates(&image, &l.config)?;
                let read_start = Instant::now();
                ms_locate += (read_start - start).as_secs_f64() * 1e3;
                let found = reader.read_best_region(&image, &regions)?;
                ms_read += read_start.elapsed().as_secs_f64() * 1e3;
                let Some(found) = found else {
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                    per_format
                        .entry("not located".to_owned())
                        .or_default()
                        .count += 1;
                    unreadable += 1;
                    errors.push((
                        path.display().to_string(),
                        compact(label),
                        String::new(),
                        "(no plate located)".to_owned(),
                    ));
                    bar.inc(1);
                    continue;
                };
                located += 1;
                if boxes
                    .as_ref()
                    .and_then(|b| b.get(path))
                    .is_some_and(|truth| truth.iou(&found.region) >= 0.5)
                {
                    on_plate += 1;
                }
                if found.reading.plate().is_some() {
                    read_region = Some(found.region);
                }
                read_crop = Some(found.crop);
                (found.text, found.reading)
            }
            _ => reader.read_plate(&image)?,
        };
        times.push(start.elapsed().as_secs_f64() * 1e3);
        let colour = plate_colour(read_crop.as_ref().unwrap_or(&image)).as_str();
        *colours.entry(colour).or_default() += 1;
        if colour != "white" {
            coloured.push((path.display().to_string(), colour));
        }
        if let (Some(region), Some(detector), Some(l)) = (read_region, &mut locator, locating) {
            if l.revisit {
                let before = reader.first_pass_counts().unwrap_or_default();
                revisits.add(
                    (&mut reader, detector),
                    &image,
                    &region,
                    &l.config,
                    &compact(label),
                )?;
                let after = reader.first_pass_counts().unwrap_or_default();
                revisit_first_pass.tried += after.tried - before.tried;
                revisit_first_pass.accepted += after.accepted - before.accepted;
            }
        }
        let predicted = match &reading {
            PlateReading::Read { plate, .. } => plate.compact(),
            PlateReading::Unreadable { best_guess, .. } => {
                unreadable += 1;
                compact(best_guess)
            }
        };
        let truth = compact(label);
        // The physical layout read from the crop: a label alone cannot tell
        // 54-T1 5417 (motorbike) from 54T-154.17 (car).
        let format = match text.layout {
            PlateLayout::OneLine => "one-line",
            PlateLayout::TwoLine => "two-line",
        }
        .to_owned();
        let score = per_format.entry(format).or_default();
        score.count += 1;
        if predicted == truth {
            exact += 1;
            score.exact += 1;
        } else {
            let raw: Vec<&str> = text.lines.iter().map(|l| l.text.as_str()).collect();
            errors.push((
                path.display().to_string(),
                truth.clone(),
                predicted.clone(),
                raw.join("|"),
            ));
            for pair in align(&truth, &predicted) {
                *confusions.entry(pair).or_default() += 1;
            }
        }
        char_sum +=
            1.0 - levenshtein(&truth, &predicted) as f64 / truth.chars().count().max(1) as f64;
        bar.inc(1);
    }
    bar.finish_and_clear();
    for s in per_format.values_mut() {
        s.exact_accuracy = s.exact as f64 / s.count.max(1) as f64;
    }
    let mut confusions: Vec<(String, String, usize)> = confusions
        .into_iter()
        .map(|((a, b), n)| (a, b, n))
        .collect();
    confusions.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    confusions.truncate(20);
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let n = rows.len();
    let report = PlateReport {
        dataset: dataset.display().to_string(),
        recogniser: recogniser.to_owned(),
        head: match alphabet {
            Alphabet::Full => "full",
            Alphabet::Plate => "plate",
        },
        int8: int8_layouts,
        provider: format!("{:?}", reader.provider()).to_lowercase(),
        count: n,
        exact_accuracy: exact as f64 / n as f64,
        char_accuracy: char_sum.max(0.0) / n as f64,
        ms_per_plate: times.iter().sum::<f64>() / n as f64,
        ms_per_plate_median: sorted[n / 2],
        unreadable,
        per_format,
        colours,
        coloured,
        confusions,
        errors,
        locate: locating.map(|l| LocateReport {
            text_detector: l.text_detector.clone(),
            vehicle_width_px: l.config.vehicle_width_px,
            search_from: l.config.search_from,
            coarse_width_px: l.config.coarse_width_px,
            located,
            located_on_plate: boxes.as_ref().map(|_| on_plate),
            ms_locate: ms_locate / n as f64,
            ms_read: ms_read / n as f64,
            revisit: l.revisit.then(|| RevisitReport {
                ms_near: revisits.ms_near / revisits.count.max(1) as f64,
                ms_whole: revisits.ms_whole / revisits.count.max(1) as f64,
                ..revisits
            }),
        }),
        first_pass: choice
            .first_pass
            .as_ref()
            .zip(reader.first_pass_counts())
            .map(|((name, min), counts)| FirstPassReport {
                recogniser: name.clone(),
                min_char_confidence: *min,
                tried: counts.tried - revisit_first_pass.tried,
                accepted: counts.accepted - revisit_first_pass.accepted,
            }),
    };
    println!(
        "{} ({} plates, recogniser {} on {}, {} head, int8 for: {})",
        report.dataset,
        n,
        report.recogniser,
        report.provider,
        report.head,
        if report.int8.is_empty() {
            "none".to_owned()
        } else {
            report.int8.join(", ")
        }
    );
    println!(
        "  exact match      {:>7.2}%  ({exact}/{n})",
        100.0 * report.exact_accuracy
    );
    println!("  characters       {:>7.2}%", 100.0 * report.char_accuracy);
    println!("  unreadable       {:>7}", report.unreadable);
    println!(
        "  ms per plate     {:>7.2} mean, {:.2} median",
        report.ms_per_plate, report.ms_per_plate_median
    );
    if let Some(l) = &report.locate {
        println!(
            "  located          {:>7}   by {} at {} px wide{}, below {:.0}% of the height",
            l.located,
            l.text_detector,
            l.vehicle_width_px,
            l.coarse_width_px
                .map(|c| format!(" (first at {c} px)"))
                .unwrap_or_default(),
            100.0 * l.search_from
        );
        if let Some(hits) = l.located_on_plate {
            println!("  on the plate     {hits:>7}   (IoU >= 0.5 with the labelled box)");
        }
        println!(
            "  ms locate, read  {:>7.2}, {:.2} mean",
            l.ms_locate, l.ms_read
        );
        if let Some(r) = &l.revisit {
            println!(
                "  revisited        {:>7}   shifted crops: near the plate {} right in {:.2} ms, \
                 searched whole {} right in {:.2} ms (mean)",
                r.count, r.exact_near, r.ms_near, r.exact_whole, r.ms_whole
            );
        }
    }
    println!(
        "  plate colours    {}",
        report
            .colours
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(f) = &report.first_pass {
        println!(
            "  first pass       {:>7}   of {} read by {} alone (every character >= {})",
            f.accepted, f.tried, f.recogniser, f.min_char_confidence
        );
    }
    for (format, s) in &report.per_format {
        println!(
            "  {format:<16} {:>7.2}%  ({}/{})",
            100.0 * s.exact_accuracy,
            s.exact,
            s.count
        );
    }
    if !report.confusions.is_empty() {
        println!("  commonest confusions (label -> read, count):");
        for (a, b, c) in &report.confusions {
            println!("    {a} -> {b}  {c}");
        }
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("  results written to {}", path.display());
    }
    Ok(Verdict::Passed)
}

/// `eval plates --calibrate`: an INT8 calibration table of a recogniser,
/// measured on the lines of a dataset's crops of one layout (the lines the
/// INT8 recogniser calibrated on them will read).
fn calibrate_recogniser(
    dataset: &Path,
    (out, layout): (&Path, PlateLayout),
    (recogniser, alphabet): (&str, Alphabet),
    threads: usize,
    limit: Option<usize>,
    paths: &ModelPaths,
) -> anyhow::Result<Verdict> {
    let rows = plate_rows(dataset, limit)?;
    let models = Models::load(paths)?;
    let options = SessionOptions {
        threads,
        ..SessionOptions::default()
    };
    let (path, dict) = models.recogniser_files(recogniser)?;
    let sha256 = models.sha256(recogniser)?.to_owned();
    let mut calibrator = RecogniserCalibrator::open(
        models.runtime,
        recogniser,
        &path,
        dict.as_deref(),
        options,
        alphabet,
    )?;
    let config = PlateReaderConfig::default();
    for (file, _) in &rows {
        let image = load_image(file)?;
        let (found, lines) = plate_lines(&image, &config);
        if found == layout {
            for line in &lines {
                calibrator.add(line)?;
            }
        }
    }
    let layout_name = match layout {
        PlateLayout::OneLine => "one-line",
        PlateLayout::TwoLine => "two-line",
    };
    if calibrator.lines() == 0 {
        bail!(
            "{} has no {layout_name} plate crops to calibrate on",
            dataset.display()
        );
    }
    let name = dataset.file_name().map_or_else(
        || dataset.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let table = calibrator.finish(
        &sha256,
        &format!(
            "vigil eval plates --calibrate --calibrate-layout {layout_name}: the {} lines of the {layout_name} crops (two-line below width / height {}) of {} ({} rows); per tensor, the mean over lines of each line's minimum and maximum",
            calibrator.lines(),
            config.two_line_max_aspect,
            name,
            rows.len()
        ),
    );
    std::fs::write(out, table.to_toml()?).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{} ranges from {} {layout_name} lines written to {}",
        table.ranges.len(),
        calibrator.lines(),
        out.display()
    );
    Ok(Verdict::Passed)
}

#[derive(Serialize)]
struct LightsReport {
    dataset: String,
    count: usize,
    accuracy: f64,
    unknown: usize,
    /// confusion[label][prediction], states red, amber, green (+ unknown).
    confusion: BTreeMap<String, BTreeMap<String, usize>>,
    us_per_crop: f64,
    errors: Vec<(String, String, String)>,
}

fn lights(dataset: &Path, json: Option<&Path>) -> anyhow::Result<Verdict> {
    use vigil_infer::lights::{LampClassifier, LampState};
    let rows = read_labels(dataset, "state")?;
    if rows.is_empty() {
        bail!("{} lists no images", dataset.join("labels.csv").display());
    }
    let classifier = LampClassifier::default();
    let name = |s: LampState| match s {
        LampState::Red => "red",
        LampState::Amber => "amber",
        LampState::Green => "green",
        LampState::Unknown => "unknown",
    };
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let (mut correct, mut unknown, mut micros) = (0usize, 0usize, 0.0f64);
    let mut errors = Vec::new();
    for (path, label) in &rows {
        let truth = match label.to_lowercase().as_str() {
            "red" => "red",
            "yellow" | "amber" => "amber",
            "green" => "green",
            other => bail!(
                "{}: unknown state {other:?} (expected red, yellow or green)",
                path.display()
            ),
        };
        let image = load_image(path)?;
        let start = Instant::now();
        let reading = classifier.classify(&image);
        micros += start.elapsed().as_secs_f64() * 1e6;
        let predicted = name(reading.state);
        *confusion
            .entry(truth.into())
            .or_default()
            .entry(predicted.into())
            .or_default() += 1;
        unknown += usize::from(reading.state == LampState::Unknown);
        if predicted == truth {
            correct += 1;
        } else {
            errors.push((
                path.display().to_string(),
                truth.to_owned(),
                predicted.to_owned(),
            ));
        }
    }
    let n = rows.len();
    let report = LightsReport {
        dataset: dataset.display().to_string(),
        count: n,
        accuracy: correct as f64 / n as f64,
        unknown,
        confusion,
        us_per_crop: micros / n as f64,
        errors,
    };
    println!("{} ({n} crops)", report.dataset);
    println!(
        "  accuracy {:>7.2}%  ({correct}/{n}; {unknown} unknown)",
        100.0 * report.accuracy
    );
    println!("  {:.0} µs per crop", report.us_per_crop);
    println!(
        "  {:<8} {:>7} {:>7} {:>7} {:>7}",
        "label", "red", "amber", "green", "unknown"
    );
    for truth in ["red", "amber", "green"] {
        let row = report.confusion.get(truth);
        let cell = |p: &str| row.and_then(|r| r.get(p)).copied().unwrap_or(0);
        println!(
            "  {truth:<8} {:>7} {:>7} {:>7} {:>7}",
            cell("red"),
            cell("amber"),
            cell("green"),
            cell("unknown")
        );
    }
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("  results written to {}", path.display());
    }
    Ok(Verdict::Passed)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The edits of a minimal alignment of `truth` to `read`, as
/// (label character, read character) pairs; "∅" marks a missing one.
fn align(truth: &str, read: &str) -> Vec<(String, String)> {
    let (a, b): (Vec<char>, Vec<char>) = (truth.chars().collect(), read.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            d[i][j] = (d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]))
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
        }
    }
    let (mut i, mut j, mut out) = (a.len(), b.len(), Vec::new());
    while i > 0 || j > 0 {
        if i > 0 && j > 0 && d[i][j] == d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]) {
            if a[i - 1] != b[j - 1] {
                out.push((a[i - 1].to_string(), b[j - 1].to_string()));
            }
            i -= 1;
            j -= 1;
        } else if i > 0 && d[i][j] == d[i - 1][j] + 1 {
            out.push((a[i - 1].to_string(), "∅".into()));
            i -= 1;
        } else {
            out.push(("∅".into(), b[j - 1].to_string()));
            j -= 1;
        }
    }
    out
}

/// A detector input side: a positive multiple of 32 (the network's coarsest
/// stride).
/// `--first-pass-confidence`: a number from 0 to 1.
fn parse_confidence(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a confidence from 0 to 1")),
    }
}

fn parse_input_size(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if n >= 32 && n % 32 == 0 => Ok(n),
        _ => Err(format!("{text:?} is not a multiple of 32 of at least 32")),
    }
}

/// `X,Y,W,H` in pixels, with some area.
fn parse_region(text: &str) -> Result<[u32; 4], String> {
    let parts: Vec<u32> = text
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{text:?} is not X,Y,W,H in whole pixels: {e}"))?;
    match *parts.as_slice() {
        [x, y, w, h] if w > 0 && h > 0 => Ok([x, y, w, h]),
        [_, _, _, _] => Err(format!("region {text:?} has no area")),
        _ => Err(format!("{text:?} is not X,Y,W,H (four numbers)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_names_substitutions_drops_and_extras() {
        assert_eq!(levenshtein("29B123456", "29B123456"), 0);
        assert_eq!(
            align("29B12345", "298I2345"),
            vec![("1".into(), "I".into()), ("B".into(), "8".into())]
        );
        assert_eq!(align("30A12345", "30A1245"), vec![("3".into(), "∅".into())]);
        assert_eq!(align("30A1234", "30A12345"), vec![("∅".into(), "5".into())]);
    }
}
