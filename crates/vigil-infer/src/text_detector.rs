//! Text-line detection with PP-OCR DB detectors, and finding the plate
//! among the text of a vehicle crop.
//!
//! The detector outputs a per-pixel text probability map; lines are the
//! connected regions above a threshold, grown by the DB "unclip" margin
//! (the model is trained to predict shrunken text kernels). On a vehicle
//! crop it finds both lines of a two-line motorbike plate as two boxes.

use vigil_core::image::RgbImage;

use crate::detector::BBox;
use crate::model::OnnxModel;
use crate::resample::resize_planar;
use crate::InferError;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextDetectorConfig {
    /// The longer side is scaled to at most this (then to a multiple of 32).
    pub max_side: u32,
    /// Pixels above this probability are text.
    pub pixel_threshold: f32,
    /// A region's mean probability must reach this.
    pub box_threshold: f32,
    /// DB unclip ratio: the margin grown around each kernel.
    pub unclip_ratio: f32,
}

impl Default for TextDetectorConfig {
    fn default() -> Self {
        Self {
            max_side: 640,
            pixel_threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
        }
    }
}

/// How the plate is searched for in a vehicle crop.
///
/// The text detector's cost grows with its input's area, so the search is
/// kept to where a plate can be, at the scale its text needs. A plate spans
/// a roughly fixed share of its vehicle's width (a car's ~30%, a
/// motorbike's rear plate ~40%), so scaling the crop to a fixed width fixes
/// the plate's size in the detector's input whatever the vehicle's distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocateConfig {
    /// The crop's width is scaled toward this many pixels.
    pub vehicle_width_px: u32,
    /// The scale never exceeds this: upscaling a small crop further adds
    /// cost, not detail.
    pub max_upscale: f32,
    /// The share of the crop's height, from the top, left out of the search:
    /// plates sit on the lower part of a vehicle.
    pub search_from: f32,
    /// When set (and below `vehicle_width_px`), the search first runs with
    /// the crop's width scaled toward this, and then only each candidate's
    /// neighbourhood is searched again at `vehicle_width_px`: a coarse pass
    /// finds where the plate is, the fine one where its edges are (boxes
    /// read off a 256 px map alone lay on the plate in 1354 of 1426
    /// composited vehicle crops, against 1404 at 384 px). Where the coarse
    /// pass finds nothing, the whole band is searched at `vehicle_width_px`.
    pub coarse_width_px: Option<u32>,
}

impl From<&vigil_core::config::Plates> for LocateConfig {
    /// The search a site config's `[plates]` asks for.
    fn from(p: &vigil_core::config::Plates) -> Self {
        Self {
            vehicle_width_px: p.locate_width_px,
            max_upscale: 4.0,
            search_from: p.search_from,
            coarse_width_px: (p.locate_coarse_width_px > 0).then_some(p.locate_coarse_width_px),
        }
    }
}

impl Default for LocateConfig {
    /// A default site config's search.
    fn default() -> Self {
        Self::from(&vigil_core::config::Plates::default())
    }
}

/// A detected text line in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    pub bbox: BBox,
    pub score: f32,
}

pub struct TextDetector {
    model: OnnxModel,
    config: TextDetectorConfig,
}

impl TextDetector {
    pub fn new(model: OnnxModel, config: TextDetectorConfig) -> Self {
        Self { model, config }
    }

    /// Text lines in `image`, top to bottom, with its longer side scaled
    /// toward `max_side` (at most 4x).
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<TextBox>, InferError> {
        let longer = image.width.max(image.height).max(1) as f32;
        let scale = (self.config.max_side as f32 / longer).min(4.0);
        self.detect_scaled(image, scale)
    }

    /// The plate-shaped text regions of a vehicle crop, searched as
    /// `locate` says, most plate-like first (see [`plate_candidates`]), in
    /// the crop's pixels; empty where there is no plate-shaped text.
    pub fn locate_plates(
        &mut self,
        vehicle: &RgbImage,
        locate: &LocateConfig,
    ) -> Result<Vec<BBox>, InferError> {
        let band = SearchBand::new(vehicle, locate, self.config.max_side);
        let searched = band.image(vehicle);
        let mut found = match band.coarse_scale {
            Some(coarse) => self.refine(searched, coarse, band.scale)?,
            None => Vec::new(),
        };
        if found.is_empty() {
            let lines = self.detect_scaled(searched, band.scale)?;
            found = plate_candidates(&lines, searched.width, searched.height);
        }
        Ok(found
            .into_iter()
            .map(|r| r.shifted(0.0, band.top as f32))
            .collect())
    }

    /// The plate-shaped text regions in a window around `hint`, where the
    /// plate lay in another crop of the same vehicle (scaled to this crop),
    /// searched at the scale [`Self::locate_plates`] uses; in the crop's
    /// pixels. The window costs a fraction of the whole band (see
    /// [`revisit_window`]). Empty where it shows no plate-shaped text.
    pub fn locate_plates_near(
        &mut self,
        vehicle: &RgbImage,
        locate: &LocateConfig,
        hint: &BBox,
    ) -> Result<Vec<BBox>, InferError> {
        let band = SearchBand::new(vehicle, locate, self.config.max_side);
        let window = revisit_window(hint, vehicle.width, vehicle.height);
        let Some(part) = vehicle.crop_bbox(&window) else {
            return Ok(Vec::new());
        };
        let (dx, dy) = (window.x1.floor(), window.y1.floor());
        let lines = self.detect_scaled(&part, band.scale)?;
        Ok(plate_candidates(&lines, part.width, part.height)
            .into_iter()
            .map(|r| r.shifted(dx, dy))
            .collect())
    }

    /// Plate candidates found at `coarse` scale, each searched again at
    /// `fine` scale in a window around it (see
    /// [`LocateConfig::coarse_width_px`]); in `image`'s pixels, in the
    /// coarse candidates' order.
    fn refine(
        &mut self,
        image: &RgbImage,
        coarse: f32,
        fine: f32,
    ) -> Result<Vec<BBox>, InferError> {
        let lines = self.detect_scaled(image, coarse)?;
        let mut windows: Vec<BBox> = Vec::new();
        let mut found: Vec<BBox> = Vec::new();
        for candidate in plate_candidates(&lines, image.width, image.height)
            .into_iter()
            .take(REFINED_CANDIDATES)
        {
            // A candidate inside an earlier window (a pair's own bottom
            // line) was searched already.
            if windows.iter().any(|w| w.contains(&candidate)) {
                continue;
            }
            let window = refine_window(&candidate, image.width, image.height);
            windows.push(window);
            let Some(part) = image.crop_bbox(&window) else {
                continue;
            };
            let (dx, dy) = (window.x1.floor(), window.y1.floor());
            let lines = self.detect_scaled(&part, fine)?;
            for r in plate_candidates(&lines, part.width, part.height) {
                let r = r.shifted(dx, dy);
                if !found.iter().any(|f| f.iou(&r) > 0.8) {
                    found.push(r);
                }
            }
        }
        Ok(found)
    }

    /// Text lines in `image` scaled by `scale` (each side then rounded to a
    /// multiple of 32, as the DB network needs).
    fn detect_scaled(&mut self, image: &RgbImage, scale: f32) -> Result<Vec<TextBox>, InferError> {
        if image.width == 0 || image.height == 0 {
            return Ok(Vec::new());
        }
        let ([_, _, h, w], input) = detector_input(image, scale);
        let config = self.config;
        let (sx, sy) = (
            image.width as f32 / w as f32,
            image.height as f32 / h as f32,
        );
        let name = self.model.name().to_owned();
        self.model.run_f32(&[1, 3, h, w], &input, |outputs| {
            let (shape, map) = outputs.first().ok_or_else(|| InferError::Run {
                model: name.clone(),
                message: "no output".into(),
            })?;
            match shape.as_slice() {
                [1, 1, mh, mw] if *mh as usize == h && *mw as usize == w => {}
                other => {
                    return Err(InferError::Shape {
                        model: name.clone(),
                        message: format!(
                            "output {other:?} is not the [1, 1, {h}, {w}] probability map"
                        ),
                    })
                }
            }
            let mut boxes = regions(map, w, h, &config);
            for b in &mut boxes {
                b.bbox = BBox {
                    x1: (b.bbox.x1 * sx).clamp(0.0, image.width as f32),
                    y1: (b.bbox.y1 * sy).clamp(0.0, image.height as f32),
                    x2: (b.bbox.x2 * sx).clamp(0.0, image.width as f32),
                    y2: (b.bbox.y2 * sy).clamp(0.0, image.height as f32),
                };
            }
            boxes.sort_by(|a, b| a.bbox.y1.total_cmp(&b.bbox.y1));
            Ok(boxes)
        })
    }
}

/// The part of a vehicle crop that [`TextDetector::locate_plates`]
/// searches, and at what scales.
struct SearchBand {
    /// The band, where it is not the whole crop.
    band: Option<RgbImage>,
    /// Its first row in the crop.
    top: u32,
    /// The (fine) search's scale.
    scale: f32,
    /// The coarse pass's scale, where there is one.
    coarse_scale: Option<f32>,
}

impl SearchBand {
    fn new(vehicle: &RgbImage, locate: &LocateConfig, max_side: u32) -> Self {
        let top = (locate.search_from.clamp(0.0, 0.9) * vehicle.height as f32).floor() as u32;
        let band = (top > 0)
            .then(|| {
                vehicle.crop(
                    0,
                    i64::from(top),
                    i64::from(vehicle.width),
                    i64::from(vehicle.height - top),
                )
            })
            .flatten();
        let top = if band.is_some() { top } else { 0 };
        let searched = band.as_ref().unwrap_or(vehicle);
        let longer = searched.width.max(searched.height).max(1) as f32;
        let scale_for = |width_px: u32| {
            (width_px as f32 / searched.width.max(1) as f32)
                .min(locate.max_upscale)
                .min(max_side as f32 / longer)
        };
        let scale = scale_for(locate.vehicle_width_px);
        let coarse_scale = locate
            .coarse_width_px
            .map(scale_for)
            .filter(|&c| c < 0.9 * scale);
        Self {
            band,
            top,
            scale,
            coarse_scale,
        }
    }

    fn image<'a>(&'a self, vehicle: &'a RgbImage) -> &'a RgbImage {
        self.band.as_ref().unwrap_or(vehicle)
    }
}

/// Measures the value ranges an INT8 text detector needs (see
/// [`crate::quantize`]) on the search bands of real vehicle crops, at the
/// scale [`TextDetector::locate_plates`] searches them.
pub struct TextDetectorCalibrator {
    calibrator: crate::quantize::Calibrator,
    max_side: u32,
}

impl TextDetectorCalibrator {
    /// Opens the detector at `path` as [`crate::model::OnnxModel::open_int8`]
    /// will edit it, with every tensor to calibrate exposed as an output.
    pub fn open(
        runtime: &crate::runtime::Runtime,
        name: &str,
        path: &std::path::Path,
        options: crate::runtime::SessionOptions,
    ) -> Result<Self, InferError> {
        let bytes = crate::model::read_model_file(path)?;
        let proto = crate::ctc_head::decode(&bytes, name)?;
        drop(bytes);
        Ok(Self {
            calibrator: crate::quantize::Calibrator::open(runtime, name, path, proto, options)?,
            max_side: TextDetectorConfig::default().max_side,
        })
    }

    /// Runs one vehicle crop's search band (at both scales, where `locate`
    /// has a coarse pass) and records its ranges.
    pub fn add(&mut self, vehicle: &RgbImage, locate: &LocateConfig) -> Result<(), InferError> {
        let band = SearchBand::new(vehicle, locate, self.max_side);
        let searched = band.image(vehicle);
        if searched.width == 0 || searched.height == 0 {
            return Ok(());
        }
        for scale in std::iter::once(band.scale).chain(band.coarse_scale) {
            let (shape, input) = detector_input(searched, scale);
            self.calibrator.add(&shape, &input)?;
        }
        Ok(())
    }

    /// How many inputs were measured.
    pub fn runs(&self) -> usize {
        self.calibrator.runs()
    }

    /// The calibration table, for the model file with this SHA-256.
    pub fn finish(&self, model_sha256: &str, source: &str) -> crate::quantize::Calibration {
        self.calibrator.finish(model_sha256, source)
    }
}

/// Coarse candidates searched again at the fine scale, at most: as many as
/// the plate reader reads.
const REFINED_CANDIDATES: usize = crate::plate_reader::MAX_REGIONS_READ;

/// How far, as a share of its height, a coarse candidate's window reaches
/// beyond it on every side.
const REFINE_MARGIN: f32 = 0.4;

/// The window around a coarse candidate that the fine pass searches: the
/// candidate grown on every side by a share of its height, so that a box a
/// few coarse pixels off still lies inside with the context the DB network
/// needs around text. The fine pass costs about the window's area.
fn refine_window(candidate: &BBox, width: u32, height: u32) -> BBox {
    window_around(candidate, REFINE_MARGIN, width, height)
}

/// `b` grown on every side by `margin` of its height, within a
/// `width` x `height` image.
fn window_around(b: &BBox, margin: f32, width: u32, height: u32) -> BBox {
    let grow = margin * b.height();
    let (w, h) = (width as f32, height as f32);
    BBox {
        x1: (b.x1 - grow).clamp(0.0, w),
        y1: (b.y1 - grow).clamp(0.0, h),
        x2: (b.x2 + grow).clamp(0.0, w),
        y2: (b.y2 + grow).clamp(0.0, h),
    }
}

/// How far, as a share of its height, the window around a plate seen in
/// another crop of the same vehicle reaches beyond it on every side. More
/// than [`REFINE_MARGIN`]: the two crops' boxes come from different frames,
/// and a tracker's box drifts on the vehicle by a few percent of its size.
const REVISIT_MARGIN: f32 = 1.0;

/// The window [`TextDetector::locate_plates_near`] searches: `hint` grown
/// on every side by [`REVISIT_MARGIN`] of its height, within the crop.
fn revisit_window(hint: &BBox, width: u32, height: u32) -> BBox {
    window_around(hint, REVISIT_MARGIN, width, height)
}

/// The DB network's input for `image` scaled by `scale`, each side then
/// rounded to a multiple of 32 (as the network needs): `[1, 3, h, w]`,
/// ImageNet-normalised.
pub fn detector_input(image: &RgbImage, scale: f32) -> ([usize; 4], Vec<f32>) {
    let to32 = |v: f32| (((v * scale) / 32.0).round().max(1.0) as usize) * 32;
    let (w, h) = (to32(image.width as f32), to32(image.height as f32));
    let mut input = vec![0.0f32; 3 * w * h];
    resize_normalise(image, w, h, &mut input);
    ([1, 3, h, w], input)
}

/// Bilinear resize to `w x h`, ImageNet-normalised, planar.
fn resize_normalise(image: &RgbImage, w: usize, h: usize, out: &mut [f32]) {
    resize_planar(image, w, h, w, out, |c, v| (v / 255.0 - MEAN[c]) / STD[c]);
}

/// Connected regions of the thresholded map, as unclipped boxes in map pixels.
fn regions(map: &[f32], w: usize, h: usize, config: &TextDetectorConfig) -> Vec<TextBox> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if seen[start] || map[start] < config.pixel_threshold {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
        let (mut sum, mut count) = (0.0f32, 0usize);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            x1 = x1.min(x);
            y1 = y1.min(y);
            x2 = x2.max(x);
            y2 = y2.max(y);
            sum += map[i];
            count += 1;
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for n in neighbours.into_iter().flatten() {
                if !seen[n] && map[n] >= config.pixel_threshold {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        let score = sum / count as f32;
        let (bw, bh) = ((x2 - x1 + 1) as f32, (y2 - y1 + 1) as f32);
        if score < config.box_threshold || bw.min(bh) < 3.0 {
            continue;
        }
        // DB unclip: grow by area * ratio / perimeter on every side.
        let d = bw * bh * config.unclip_ratio / (2.0 * (bw + bh));
        out.push(TextBox {
            bbox: BBox {
                x1: x1 as f32 - d,
                y1: y1 as f32 - d,
                x2: x2 as f32 + 1.0 + d,
                y2: y2 as f32 + 1.0 + d,
            },
            score,
        });
    }
    out
}

/// The plate among the text lines of a vehicle crop: the first of
/// [`plate_candidates`].
pub fn plate_region(lines: &[TextBox], crop_w: u32, crop_h: u32) -> Option<BBox> {
    plate_candidates(lines, crop_w, crop_h).into_iter().next()
}

/// The regions of a vehicle crop's text lines that may be its plate: each
/// single line shaped like a one-line plate, and each pair of stacked lines
/// of similar width (a motorbike plate). The lowest come first (plates sit
/// low on a vehicle); at the same bottom edge a pair comes before its own
/// bottom line. Each region has a small margin, ready to read.
pub fn plate_candidates(lines: &[TextBox], crop_w: u32, crop_h: u32) -> Vec<BBox> {
    // The margin is a share of one text line's height: a two-line plate's
    // region with a margin of its own height took in the plate's frame,
    // which the recogniser reads as a 1 turned 7 (59-H1 as 59-H7).
    let margin = |(b, line_height): (BBox, f32)| {
        let m = 0.08 * line_height;
        BBox {
            x1: (b.x1 - m).max(0.0),
            y1: (b.y1 - m).max(0.0),
            x2: (b.x2 + m).min(crop_w as f32),
            y2: (b.y2 + m).min(crop_h as f32),
        }
    };
    // (region, the height of one of its text lines)
    let mut candidates: Vec<(BBox, f32)> = Vec::new();
    for (i, a) in lines.iter().enumerate() {
        for b in &lines[i + 1..] {
            let (top, bottom) = if a.bbox.y1 <= b.bbox.y1 {
                (a.bbox, b.bbox)
            } else {
                (b.bbox, a.bbox)
            };
            let overlap = (top.x2.min(bottom.x2) - top.x1.max(bottom.x1)).max(0.0);
            let stacked = overlap >= 0.6 * top.width().min(bottom.width())
                && bottom.y1 >= top.y1 + 0.5 * top.height()
                && bottom.y1 - top.y2 <= 0.6 * top.height().max(bottom.height());
            if stacked {
                candidates.push((
                    BBox {
                        x1: top.x1.min(bottom.x1),
                        y1: top.y1,
                        x2: top.x2.max(bottom.x2),
                        y2: bottom.y2,
                    },
                    top.height().min(bottom.height()),
                ));
            }
        }
        // One line of a one-line plate (about 4.5:1), or both lines of a
        // motorbike plate (about 1.4:1) merged into one region, as a small
        // or low-contrast plate's lines are.
        let aspect = a.bbox.width() / a.bbox.height().max(1.0);
        if (2.0..=8.0).contains(&aspect) {
            candidates.push((a.bbox, a.bbox.height()));
        } else if (1.0..2.0).contains(&aspect) {
            candidates.push((a.bbox, 0.5 * a.bbox.height()));
        }
    }
    candidates.sort_by(|(a, _), (b, _)| b.y2.total_cmp(&a.y2).then(b.area().total_cmp(&a.area())));
    candidates.into_iter().map(margin).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(x1: f32, y1: f32, x2: f32, y2: f32) -> TextBox {
        TextBox {
            bbox: BBox { x1, y1, x2, y2 },
            score: 0.9,
        }
    }

    #[test]
    fn a_blob_in_the_map_becomes_one_unclipped_box() {
        let (w, h) = (40, 20);
        let mut map = vec![0.0f32; w * h];
        for y in 8..12 {
            for x in 10..30 {
                map[y * w + x] = 0.9;
            }
        }
        let boxes = regions(&map, w, h, &TextDetectorConfig::default());
        assert_eq!(boxes.len(), 1);
        let b = boxes[0].bbox;
        assert!(
            b.x1 < 10.0 && b.x2 > 30.0 && b.y1 < 8.0 && b.y2 > 12.0,
            "{b:?}"
        );
    }

    #[test]
    fn two_stacked_lines_make_one_motorbike_plate_region() {
        let lines = [
            line(40.0, 100.0, 90.0, 118.0),
            line(35.0, 122.0, 95.0, 142.0),
            line(10.0, 10.0, 150.0, 20.0),
        ];
        let r = plate_region(&lines, 200, 200).expect("plate");
        assert!(
            r.y1 < 100.0 && r.y2 > 142.0 && r.x1 < 35.0 && r.x2 > 95.0,
            "{r:?}"
        );
    }

    #[test]
    fn candidates_come_lowest_first_and_a_pair_before_its_bottom_line() {
        let lines = [
            line(40.0, 100.0, 90.0, 118.0),
            line(35.0, 122.0, 95.0, 142.0),
            // A sticker below the plate.
            line(30.0, 170.0, 130.0, 186.0),
        ];
        let c = plate_candidates(&lines, 200, 200);
        assert_eq!(c.len(), 4, "{c:?}");
        assert!(c[0].y1 > 160.0, "the sticker first: {c:?}");
        // The pair (top line included) before its own bottom line.
        assert!(c[1].y1 < 100.0 && c[1].y2 > 142.0, "{c:?}");
        assert!(c[2].y1 > 115.0 && c[2].y2 > 142.0, "{c:?}");
        assert!(c[3].y2 < 120.0, "{c:?}");
    }

    #[test]
    fn margins_are_a_share_of_one_line_not_of_a_two_line_region() {
        // The pair's lines are 18 and 20 px tall: 0.08 x 18 around it.
        let pair = plate_region(
            &[
                line(40.0, 100.0, 90.0, 118.0),
                line(35.0, 122.0, 95.0, 142.0),
            ],
            200,
            200,
        )
        .expect("pair");
        assert!((pair.y1 - (100.0 - 1.44)).abs() < 1e-3, "{pair:?}");
        assert!((pair.x1 - (35.0 - 1.44)).abs() < 1e-3, "{pair:?}");
        // Both lines merged into one 1.4:1 region: half its height is a line.
        let merged = plate_region(&[line(50.0, 50.0, 120.0, 100.0)], 200, 200).expect("merged");
        assert!((merged.y1 - (50.0 - 2.0)).abs() < 1e-3, "{merged:?}");
    }

    #[test]
    fn a_refine_window_reaches_beyond_its_candidate_inside_the_image() {
        let w = refine_window(
            &BBox {
                x1: 10.0,
                y1: 50.0,
                x2: 110.0,
                y2: 75.0,
            },
            300,
            80,
        );
        assert_eq!(
            w,
            BBox {
                x1: 0.0,
                y1: 40.0,
                x2: 120.0,
                y2: 80.0
            }
        );
    }

    #[test]
    fn a_revisit_window_reaches_a_plate_height_beyond_its_hint_inside_the_image() {
        let hint = BBox {
            x1: 10.0,
            y1: 40.0,
            x2: 110.0,
            y2: 60.0,
        };
        assert_eq!(
            revisit_window(&hint, 300, 70),
            BBox {
                x1: 0.0,
                y1: 20.0,
                x2: 130.0,
                y2: 70.0
            }
        );
        // A hint beyond the crop (a box that shrank) is kept inside it.
        let outside = revisit_window(&hint.shifted(400.0, 0.0), 300, 70);
        assert!(
            outside.x1 <= outside.x2 && outside.x2 <= 300.0,
            "{outside:?}"
        );
    }

    #[test]
    fn a_coarse_pass_runs_only_well_below_the_fine_scale() {
        let vehicle = RgbImage::from_raw(200, 100, vec![0; 200 * 100 * 3]).expect("image");
        let band = |coarse| {
            SearchBand::new(
                &vehicle,
                &LocateConfig {
                    vehicle_width_px: 400,
                    max_upscale: 4.0,
                    search_from: 0.3,
                    coarse_width_px: coarse,
                },
                640,
            )
        };
        let b = band(Some(200));
        assert_eq!((b.top, b.image(&vehicle).height), (30, 70));
        assert!((b.scale - 2.0).abs() < 1e-6);
        assert_eq!(b.coarse_scale, Some(1.0));
        // Within 10% of the fine scale a coarse pass saves nothing.
        assert_eq!(band(Some(380)).coarse_scale, None);
        assert_eq!(band(None).coarse_scale, None);
    }

    #[test]
    fn without_plate_shaped_text_there_is_no_region() {
        assert!(plate_region(&[line(0.0, 0.0, 10.0, 40.0)], 100, 100).is_none());
    }
}
