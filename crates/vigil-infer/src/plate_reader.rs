//! Reading a plate crop: decide one line or two, split a two-line
//! motorbike plate between its lines, and recognise each line.
//!
//! Splitting at the emptiest row between the lines replaces a text
//! detector run for plate crops: the detector costs over ten times the
//! recognition, and on a tight crop the gap between the lines is plain.

use vigil_core::detection::BBox;
use vigil_core::image::RgbImage;
use vigil_plate::{OcrLine, PlateColour, PlateFormat, PlateReading};

use crate::ocr::{RecognisedLine, TextRecogniser};
use crate::text_detector::{LocateConfig, TextDetector};
use crate::InferError;

/// Plate-shaped regions of one vehicle crop read at most, lowest first,
/// until one reads as a valid plate. A vehicle carries other text (a van's
/// painted number, a bus's route sign, a dealer's sticker) and the lowest
/// region is not always the plate; each further region costs one read.
pub const MAX_REGIONS_READ: usize = 3;

/// A plate found and read in a vehicle crop.
#[derive(Debug, Clone)]
pub struct VehiclePlate {
    /// Where it was read, in the vehicle crop's pixels.
    pub region: BBox,
    /// The region's pixels, as read.
    pub crop: RgbImage,
    pub text: PlateText,
    pub reading: PlateReading,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateLayout {
    /// Car plates: one long line (`30A-123.45`).
    OneLine,
    /// Motorbike plates: `29-B1` over `234.56`.
    TwoLine,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateReaderConfig {
    /// Crops narrower than this (width / height) are read as two lines.
    /// One-line plates are about 4.5:1, two-line about 1.4:1.
    pub two_line_max_aspect: f32,
    /// Fraction cut from each side of a two-line crop before splitting:
    /// the plate's frame beside the last character of `59-H1` makes the
    /// recogniser read the `1` as `7`.
    pub two_line_border: f32,
}

impl Default for PlateReaderConfig {
    fn default() -> Self {
        Self {
            two_line_max_aspect: 2.3,
            two_line_border: 0.05,
        }
    }
}

/// The text lines read from one plate crop, top first.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateText {
    pub layout: PlateLayout,
    pub lines: Vec<RecognisedLine>,
}

/// A cheaper recogniser that reads every one-line plate first; its reading
/// stands only when it is sure of it (see [`FirstPass::accepts`]),
/// otherwise the plate is read again by the reader's own recogniser.
///
/// Two-line plates skip it: the tiny PP-OCRv6 recogniser was sure of only
/// 62 of 194 hand-checked two-line plates, so trying it first made them
/// slower (9.3 against 8.8 ms), where it reads 849 of 1,232 one-line
/// plates alone, cutting their mean time to 0.72, at the same accuracy
/// (`benches/results/2026-11-28-first-pass`).
pub struct FirstPass {
    recogniser: TextRecogniser,
    min_char_confidence: f32,
    counts: FirstPassCounts,
}

/// How often the first pass was tried and how often its reading stood.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirstPassCounts {
    pub tried: usize,
    pub accepted: usize,
}

impl FirstPass {
    /// `min_char_confidence` (0–1): the least confidence any letter or
    /// digit of an accepted reading may have.
    pub fn new(recogniser: TextRecogniser, min_char_confidence: f32) -> Self {
        Self {
            recogniser,
            min_char_confidence,
            counts: FirstPassCounts::default(),
        }
    }

    /// Whether a first-pass reading stands: it is a valid plate of the
    /// usual kind for the crop's layout (on one line, a car plate whose
    /// series is letters only; on two, a motorbike plate), the grammar
    /// repaired nothing, and every letter and digit was read with at least
    /// `min_char_confidence`. One doubtful character is enough to ask the
    /// stronger recogniser: a plate is wrong if any character is. The kind
    /// check catches the tiny recogniser's commonest slip, `D` read as `0`:
    /// `50LD-044.11` read as `50L0-044.11` still fits the grammar, as a car
    /// with the rare letter-and-digit series. So does the separator check:
    /// every mark the recogniser read between the characters must stand
    /// where the plate's printed form has a dash or dot (a dash read as `:`
    /// is fine). A dropped digit leaves a dot out of place (`51F-32.88`
    /// read off `51F-324.88`).
    pub fn accepts(&self, text: &PlateText, reading: &PlateReading) -> bool {
        reading_stands(text, reading, self.min_char_confidence)
    }
}

/// Whether every mark the lines show between their letters and digits
/// (white space aside) stands where `canonical` has a mark, counted in
/// letters and digits. A mark may be missing or read as another mark; none
/// may be extra or misplaced. Marks before the first character or after the
/// last (the plate's frame) do not count.
fn marks_fit(lines: &[RecognisedLine], canonical: &str) -> bool {
    // The number of letters and digits before each mark between two of them.
    let marks = |chars: &mut dyn Iterator<Item = char>| {
        let mut seen = 0usize;
        let mut pending = None;
        let mut out = Vec::new();
        for c in chars {
            if c.is_alphanumeric() {
                out.extend(pending.take());
                seen += 1;
            } else if !c.is_whitespace() && seen > 0 {
                pending = Some(seen);
            }
        }
        out
    };
    let printed = marks(&mut canonical.chars());
    marks(&mut lines.iter().flat_map(|l| l.text.chars()))
        .iter()
        .all(|m| printed.contains(m))
}

/// [`FirstPass::accepts`], for any threshold.
fn reading_stands(text: &PlateText, reading: &PlateReading, min_char_confidence: f32) -> bool {
    let PlateReading::Read { plate, repairs, .. } = reading else {
        return false;
    };
    let usual_kind = match text.layout {
        PlateLayout::OneLine => {
            plate.format == PlateFormat::CarOneLine
                && plate.series.chars().all(|c| c.is_ascii_alphabetic())
        }
        PlateLayout::TwoLine => plate.format == PlateFormat::MotorbikeTwoLine,
    };
    usual_kind
        && repairs.is_empty()
        && marks_fit(&text.lines, &plate.canonical())
        && text.lines.iter().all(|line| {
            line.text.chars().count() == line.char_confidences.len()
                && line
                    .text
                    .chars()
                    .zip(&line.char_confidences)
                    .filter(|(c, _)| c.is_alphanumeric())
                    .all(|(_, &p)| p >= min_char_confidence)
        })
}

pub struct PlateReader {
    recogniser: TextRecogniser,
    first_pass: Option<FirstPass>,
    /// Reads one-line plates instead of `recogniser`, when set (e.g. an
    /// INT8 recogniser calibrated on one-line plates, while `recogniser` is
    /// calibrated on the lines of two-line plates).
    one_line: Option<TextRecogniser>,
    config: PlateReaderConfig,
}

impl PlateReader {
    /// The execution provider the main recogniser really runs on.
    pub fn provider(&self) -> crate::runtime::Provider {
        self.recogniser.provider()
    }

    pub fn new(recogniser: TextRecogniser, config: PlateReaderConfig) -> Self {
        Self {
            recogniser,
            first_pass: None,
            one_line: None,
            config,
        }
    }

    /// Reads every one-line plate with `first_pass` before the reader's
    /// own recogniser, which then reads only the plates the first pass is
    /// unsure of.
    pub fn with_first_pass(mut self, first_pass: FirstPass) -> Self {
        self.first_pass = Some(first_pass);
        self
    }

    /// How often the first pass was tried (on one-line plates) and stood;
    /// `None` without one.
    pub fn first_pass_counts(&self) -> Option<FirstPassCounts> {
        self.first_pass.as_ref().map(|f| f.counts)
    }

    /// Reads one-line plates with `recogniser`; two-line plates keep the
    /// reader's main recogniser.
    pub fn with_one_line_recogniser(mut self, recogniser: TextRecogniser) -> Self {
        self.one_line = Some(recogniser);
        self
    }

    /// Whether one-line plates have their own recogniser.
    pub fn has_one_line_recogniser(&self) -> bool {
        self.one_line.is_some()
    }

    pub fn recogniser(&self) -> &TextRecogniser {
        &self.recogniser
    }

    /// Reads a crop that holds one plate, and parses it.
    pub fn read_plate(&mut self, crop: &RgbImage) -> Result<(PlateText, PlateReading), InferError> {
        let (layout, lines) = plate_lines(crop, &self.config);
        let refs: Vec<&RgbImage> = lines.iter().collect();
        if let (PlateLayout::OneLine, Some(first)) = (layout, self.first_pass.as_mut()) {
            first.counts.tried += 1;
            let read = first.recogniser.recognise(&refs)?;
            let reading = vigil_plate::parse(&to_ocr(&read));
            let text = PlateText {
                layout,
                lines: read,
            };
            if first.accepts(&text, &reading) {
                first.counts.accepted += 1;
                return Ok((text, reading));
            }
        }
        let recogniser = match (layout, self.one_line.as_mut()) {
            (PlateLayout::OneLine, Some(one_line)) => one_line,
            _ => &mut self.recogniser,
        };
        let read = recogniser.recognise(&refs)?;
        let reading = vigil_plate::parse(&to_ocr(&read));
        let text = PlateText {
            layout,
            lines: read,
        };
        Ok((text, reading))
    }

    /// Locates the plate in a vehicle crop with `detector` and reads it (see
    /// [`Self::read_best_region`]). `None` where the crop shows no
    /// plate-shaped text.
    pub fn read_in_vehicle(
        &mut self,
        detector: &mut TextDetector,
        vehicle: &RgbImage,
        locate: &LocateConfig,
    ) -> Result<Option<VehiclePlate>, InferError> {
        let regions = detector.locate_plates(vehicle, locate)?;
        self.read_best_region(vehicle, &regions)
    }

    /// [`Self::read_in_vehicle`] for a crop of a vehicle whose plate was
    /// read in another crop at `hint` (scaled to this crop): the text
    /// detector first searches only a window around `hint`, which costs a
    /// fraction of the whole search. Where that finds no valid plate, the
    /// crop is searched as [`Self::read_in_vehicle`] does, so a wrong hint
    /// costs one window, never the plate.
    pub fn read_in_vehicle_near(
        &mut self,
        detector: &mut TextDetector,
        vehicle: &RgbImage,
        locate: &LocateConfig,
        hint: &BBox,
    ) -> Result<Option<VehiclePlate>, InferError> {
        let near = detector.locate_plates_near(vehicle, locate, hint)?;
        let near = self.read_best_region(vehicle, &near)?;
        if near.as_ref().is_some_and(|f| f.reading.plate().is_some()) {
            return Ok(near);
        }
        Ok(self.read_in_vehicle(detector, vehicle, locate)?.or(near))
    }

    /// Reads a vehicle crop's plate-shaped `regions` in order: the first (of
    /// [`MAX_REGIONS_READ`]) that reads as a valid plate, or else the most
    /// confident unreadable one.
    pub fn read_best_region(
        &mut self,
        vehicle: &RgbImage,
        regions: &[BBox],
    ) -> Result<Option<VehiclePlate>, InferError> {
        let mut best: Option<VehiclePlate> = None;
        for &region in regions.iter().take(MAX_REGIONS_READ) {
            let Some(crop) = vehicle.crop_bbox(&region) else {
                continue;
            };
            let (text, reading) = self.read_plate(&crop)?;
            let found = VehiclePlate {
                region,
                crop,
                text,
                reading,
            };
            if found.reading.plate().is_some() {
                return Ok(Some(found));
            }
            if best
                .as_ref()
                .is_none_or(|b| found.reading.confidence() > b.reading.confidence())
            {
                best = Some(found);
            }
        }
        Ok(best)
    }
}

/// A plate crop's layout and its line images, top first, as
/// [`PlateReader::read_plate`] recognises them.
pub fn plate_lines(crop: &RgbImage, config: &PlateReaderConfig) -> (PlateLayout, Vec<RgbImage>) {
    let aspect = crop.width as f32 / crop.height.max(1) as f32;
    if aspect >= config.two_line_max_aspect {
        return (PlateLayout::OneLine, vec![crop.clone()]);
    }
    let b = config.two_line_border.clamp(0.0, 0.4);
    let (dx, dy) = (
        (crop.width as f32 * b) as i64,
        (crop.height as f32 * b) as i64,
    );
    let inner = crop
        .crop(
            dx,
            dy,
            i64::from(crop.width) - 2 * dx,
            i64::from(crop.height) - 2 * dy,
        )
        .unwrap_or_else(|| crop.clone());
    let (top, bottom) = split_lines(&inner);
    (PlateLayout::TwoLine, vec![top, bottom])
}

fn to_ocr(lines: &[RecognisedLine]) -> Vec<OcrLine> {
    lines
        .iter()
        .map(|l| OcrLine::new(l.text.clone(), l.char_confidences.clone()))
        .collect()
}

/// Splits a two-line plate at the row with the least text between 30% and
/// 70% of its height. Text pixels are the minority side of an Otsu
/// threshold, so dark-on-light and light-on-dark (blue, red) plates work.
pub fn split_lines(crop: &RgbImage) -> (RgbImage, RgbImage) {
    let (w, h) = (crop.width as usize, crop.height as usize);
    let gray = luma(crop);
    let split = if h < 4 || w == 0 {
        h / 2
    } else {
        let (t, text_is_dark) = text_polarity(&gray);
        // Ignore a 10% border each side: plate frames and rivets are not text.
        let (x0, x1) = (w / 10, w - w / 10);
        let profile: Vec<usize> = (0..h)
            .map(|y| {
                gray[y * w + x0..y * w + x1]
                    .iter()
                    .filter(|&&g| (g <= t) == text_is_dark)
                    .count()
            })
            .collect();
        let (lo, hi) = ((h * 3) / 10, (h * 7) / 10);
        // Smooth over three rows so one clean scan line does not win.
        (lo.max(1)..hi.min(h - 1))
            .min_by_key(|&y| {
                (
                    profile[y - 1] + profile[y] + profile[y + 1],
                    (2 * y).abs_diff(h),
                )
            })
            .unwrap_or(h / 2)
    };
    let full = |y0: usize, y1: usize| {
        crop.crop(0, y0 as i64, w as i64, (y1 - y0) as i64)
            .unwrap_or_else(|| crop.clone())
    };
    (
        full(0, split.max(1)),
        full(split.min(h.saturating_sub(1)), h),
    )
}

/// The plate's background colour class (see [`vigil_plate::classify_colour`]),
/// measured on a plate crop: the mean colour of the background pixels of
/// its middle (the crop's edges may show the vehicle around the plate), and
/// whether the text is darker than the background. The background is the
/// majority side of an Otsu threshold: characters cover well under half of
/// a plate. No white balance is applied, so a white plate under sodium
/// light may read as yellow or unknown; an operator sees the crop.
pub fn plate_colour(crop: &RgbImage) -> PlateColour {
    let (w, h) = (i64::from(crop.width), i64::from(crop.height));
    let Some(middle) = crop.crop(w / 10, h * 15 / 100, w - w / 5, h - h * 3 / 10) else {
        return PlateColour::Unknown;
    };
    let gray = luma(&middle);
    if gray.len() < 16 {
        return PlateColour::Unknown;
    }
    let (t, text_is_dark) = text_polarity(&gray);
    let (mut sum, mut sum_sq, mut n) = ([0f64; 3], [0f64; 3], 0usize);
    for (px, &g) in middle.data.chunks_exact(3).zip(&gray) {
        // Background: the light side when the text is dark, and vice versa.
        if (g > t) == text_is_dark {
            for ((s, q), &c) in sum.iter_mut().zip(&mut sum_sq).zip(px) {
                *s += f64::from(c);
                *q += f64::from(c) * f64::from(c);
            }
            n += 1;
        }
    }
    if n == 0 {
        return PlateColour::Unknown;
    }
    let n = n as f64;
    let mean = sum.map(|s| s / n);
    // A plate's background is one paint; a "background" that mixes colours
    // (a tail light and the dark around it, in a crop that is more vehicle
    // than plate) is no plate background.
    let spread = (0..3)
        .map(|i| (sum_sq[i] / n - mean[i] * mean[i]).max(0.0).sqrt())
        .sum::<f64>()
        / 3.0;
    if spread > MAX_BACKGROUND_SPREAD {
        return PlateColour::Unknown;
    }
    vigil_plate::classify_colour(mean.map(|m| m as f32), text_is_dark)
}

/// The largest mean per-channel standard deviation (0–255 scale) of the
/// background pixels for [`plate_colour`] to name a colour. On the plate
/// crops of `../shared/data` the blue and yellow plates measured 8.7–24.5
/// and 99% of the white ones under 31.3; a photo more motorbike than plate
/// (its tail light and shadow taken for the background) measured 35.2 and
/// read as a red plate without this bound.
const MAX_BACKGROUND_SPREAD: f64 = 30.0;

/// 8-bit luma (BT.601) of each pixel.
fn luma(image: &RgbImage) -> Vec<u8> {
    image
        .data
        .chunks_exact(3)
        .map(|p| {
            ((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000) as u8
        })
        .collect()
}

/// Otsu's threshold of a plate's luma, and whether its text is dark: text
/// pixels are the minority side, so dark-on-light and light-on-dark (blue,
/// red) plates both work.
fn text_polarity(gray: &[u8]) -> (u8, bool) {
    let t = otsu(gray);
    let dark = gray.iter().filter(|&&g| g <= t).count();
    (t, dark * 2 < gray.len())
}

/// Otsu's threshold of an 8-bit histogram: the level that best separates
/// two classes of pixels.
fn otsu(gray: &[u8]) -> u8 {
    let mut hist = [0u64; 256];
    for &g in gray {
        hist[g as usize] += 1;
    }
    let total = gray.len() as f64;
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w_b, mut sum_b, mut best, mut best_t) = (0.0, 0.0, -1.0, 0u8);
    for (t, &c) in hist.iter().enumerate() {
        w_b += c as f64;
        if w_b == 0.0 {
            continue;
        }
        let w_f = total - w_b;
        if w_f == 0.0 {
            break;
        }
        sum_b += t as f64 * c as f64;
        let (m_b, m_f) = (sum_b / w_b, (sum_all - sum_b) / w_f);
        let between = w_b * w_f * (m_b - m_f) * (m_b - m_f);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A light plate with two dark bars of "text" and a clear band between.
    fn two_line_plate() -> RgbImage {
        let (w, h) = (140u32, 100u32);
        let mut data = vec![230u8; (w * h * 3) as usize];
        for y in (10..40).chain(55..90) {
            for x in (20..120).step_by(2) {
                let i = ((y * w + x) * 3) as usize;
                data[i..i + 3].copy_from_slice(&[20, 20, 20]);
            }
        }
        RgbImage::from_raw(w, h, data).expect("image")
    }

    fn one_line(text: &str, confidences: Vec<f32>) -> (PlateText, PlateReading) {
        let line = RecognisedLine {
            text: text.to_owned(),
            char_confidences: confidences,
        };
        let reading = vigil_plate::parse(&to_ocr(std::slice::from_ref(&line)));
        let text = PlateText {
            layout: PlateLayout::OneLine,
            lines: vec![line],
        };
        (text, reading)
    }

    #[test]
    fn a_first_pass_reading_stands_only_when_every_character_is_sure() {
        // "30A-123.45": ten characters, the separators' confidences ignored.
        let sure = vec![0.99, 0.98, 0.97, 0.1, 0.99, 0.99, 0.95, 0.2, 0.99, 0.99];
        let (text, reading) = one_line("30A-123.45", sure.clone());
        assert!(reading.plate().is_some());
        assert!(reading_stands(&text, &reading, 0.9));
        // The least letter or digit (0.95) decides, not the mean.
        assert!(!reading_stands(&text, &reading, 0.96));
        // Marks may be missing.
        let (text, reading) = one_line("30A12345", vec![1.0; 8]);
        assert!(reading_stands(&text, &reading, 0.9));
        let mut one_doubt = sure;
        one_doubt[6] = 0.6;
        let (text, reading) = one_line("30A-123.45", one_doubt);
        assert!(!reading_stands(&text, &reading, 0.9));
    }

    #[test]
    fn a_first_pass_reading_needing_repair_or_fitting_no_plate_does_not_stand() {
        // `O` where a digit belongs is repaired to `0`: a guess, so the
        // stronger recogniser reads it again.
        let (text, reading) = one_line("3OA-123.45", vec![1.0; 10]);
        assert!(matches!(&reading, PlateReading::Read { repairs, .. } if !repairs.is_empty()));
        assert!(!reading_stands(&text, &reading, 0.5));
        // A letter-and-digit series on a one-line crop: `LD` read as `L0`.
        let (text, reading) = one_line("50L0-044.11", vec![1.0; 11]);
        assert!(reading.plate().is_some());
        assert!(!reading_stands(&text, &reading, 0.5));
        // A dropped digit leaves the dot out of place.
        let (text, reading) = one_line("51F-32.88", vec![1.0; 9]);
        assert!(reading.plate().is_some());
        assert!(!reading_stands(&text, &reading, 0.5));
        let (text, reading) = one_line("30A-12.345", vec![1.0; 10]);
        assert!(!reading_stands(&text, &reading, 0.5), "a misplaced dot");
        // A dash read as another mark, and the frame read as marks outside
        // the characters, are fine.
        let (text, reading) = one_line("[30A:123.45]", vec![1.0; 12]);
        assert!(reading_stands(&text, &reading, 0.5));
        let (text, reading) = one_line("HELLO", vec![1.0; 5]);
        assert!(reading.plate().is_none());
        assert!(!reading_stands(&text, &reading, 0.5));
        // Confidences that do not line up with the text never stand.
        let (text, reading) = one_line("30A-123.45", vec![1.0; 7]);
        assert!(!reading_stands(&text, &reading, 0.5));
    }

    #[test]
    fn a_two_line_plate_splits_in_the_gap_between_the_lines() {
        let (top, bottom) = split_lines(&two_line_plate());
        assert!(
            (40..=55).contains(&top.height),
            "split at row {}",
            top.height
        );
        assert_eq!(top.height + bottom.height, 100);
        assert_eq!(top.width, 140);
    }

    #[test]
    fn light_text_on_a_dark_plate_splits_too() {
        let mut plate = two_line_plate();
        for v in &mut plate.data {
            *v = 255 - *v;
        }
        let (top, _) = split_lines(&plate);
        assert!(
            (40..=55).contains(&top.height),
            "split at row {}",
            top.height
        );
    }

    #[test]
    fn tiny_or_empty_crops_do_not_panic() {
        let tiny = RgbImage::from_raw(3, 2, vec![0; 18]).expect("image");
        let (a, b) = split_lines(&tiny);
        assert!(a.height >= 1 && b.height >= 1);
        assert_eq!(plate_colour(&tiny), PlateColour::Unknown);
        let empty = RgbImage::from_raw(0, 0, Vec::new()).expect("image");
        let _ = split_lines(&empty);
        assert_eq!(plate_colour(&empty), PlateColour::Unknown);
    }

    /// A one-line plate 120x30 of `background` with character strokes of
    /// `text`, inside a `margin`-px frame of the vehicle's `body` colour.
    fn coloured_plate(background: [u8; 3], text: [u8; 3], body: [u8; 3], margin: u32) -> RgbImage {
        let (pw, ph) = (120u32, 30u32);
        let (w, h) = (pw + 2 * margin, ph + 2 * margin);
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let (px, py) = (x as i64 - margin as i64, y as i64 - margin as i64);
                let on_plate = (0..pw as i64).contains(&px) && (0..ph as i64).contains(&py);
                let stroke =
                    on_plate && (6..24).contains(&py) && px % 8 < 2 && (8..112).contains(&px);
                data.extend_from_slice(&match (on_plate, stroke) {
                    (true, true) => text,
                    (true, false) => background,
                    _ => body,
                });
            }
        }
        RgbImage::from_raw(w, h, data).expect("image")
    }

    #[test]
    fn a_plate_colour_class_is_measured_from_its_background_and_text() {
        let black = [25, 25, 30];
        let white = [235, 235, 230];
        let body = [70, 72, 80];
        for (background, text, expected) in [
            (white, black, PlateColour::White),
            ([230, 195, 40], black, PlateColour::Yellow),
            ([25, 60, 165], white, PlateColour::Blue),
            ([190, 30, 35], white, PlateColour::Red),
            // A white plate in shade, as a grey.
            ([140, 140, 145], black, PlateColour::White),
        ] {
            for margin in [0, 3] {
                assert_eq!(
                    plate_colour(&coloured_plate(background, text, body, margin)),
                    expected,
                    "{background:?} with {text:?} text, {margin} px of vehicle around it"
                );
            }
        }
        // A green background is no Vietnamese plate colour.
        assert_eq!(
            plate_colour(&coloured_plate([40, 160, 60], white, body, 0)),
            PlateColour::Unknown
        );
    }
}
