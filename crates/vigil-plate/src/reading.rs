//! From OCR lines (or a label) to a [`PlateReading`].

use serde::{Deserialize, Serialize};

use crate::grammar::{best_fit, Layouts, Observed, Repairs};
use crate::plate::{Plate, PlateFormat};

/// One line of text as the OCR model read it, top line first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrLine {
    /// As read: may hold separators, spaces and lower case (`"29-b1"`).
    pub text: String,
    /// One confidence (0–1) per `char` of `text`, or per letter and digit
    /// when the model reports no confidence for separators. Missing entries
    /// count as 0, NaN as 0, and values outside 0–1 are clamped.
    pub char_confidences: Vec<f32>,
}

impl OcrLine {
    pub fn new(text: impl Into<String>, char_confidences: Vec<f32>) -> OcrLine {
        OcrLine {
            text: text.into(),
            char_confidences,
        }
    }

    /// A line whose every character has the same confidence: labels, tests,
    /// and OCR heads that report one confidence per line.
    pub fn uniform(text: impl Into<String>, confidence: f32) -> OcrLine {
        let text = text.into();
        let char_confidences = vec![confidence; text.chars().count()];
        OcrLine {
            text,
            char_confidences,
        }
    }
}

/// One look-alike character the grammar replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Repair {
    /// Index (from 0) into the plate's [`compact`](Plate::compact) form,
    /// which is also the index among the letters and digits the OCR read.
    pub position: usize,
    /// What the OCR read (upper-cased).
    pub from: char,
    /// What the grammar says stands there.
    pub to: char,
}

/// The outcome of reading a plate: a plate, or an honest "unreadable" that
/// still carries what was seen. Nothing read is ever dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PlateReading {
    Read {
        plate: Plate,
        /// 0–1; see [`parse`] for how it is computed.
        confidence: f32,
        /// The look-alikes replaced to make the read fit the grammar, in
        /// position order; empty when the OCR text fit as read.
        repairs: Vec<Repair>,
    },
    Unreadable {
        /// The letters and digits seen (after repair, when a layout fit),
        /// upper case, for an operator to check against the crop.
        best_guess: String,
        /// 0–1, computed as for a read.
        confidence: f32,
        /// Why the text is not a plate, naming the character or the rule.
        reason: String,
    },
}

impl PlateReading {
    /// The confidence of either variant.
    pub fn confidence(&self) -> f32 {
        match self {
            PlateReading::Read { confidence, .. } | PlateReading::Unreadable { confidence, .. } => {
                *confidence
            }
        }
    }

    /// The plate, when one was read.
    pub fn plate(&self) -> Option<&Plate> {
        match self {
            PlateReading::Read { plate, .. } => Some(plate),
            PlateReading::Unreadable { .. } => None,
        }
    }
}

/// Each repair multiplies a read's confidence by this: a repaired character
/// is a guess the OCR did not make, however plausible.
pub const REPAIR_PENALTY: f32 = 0.9;

/// Reads a plate from OCR lines (top line first).
///
/// The lines are joined, letters and digits kept, and fitted to every plate
/// layout of their length: car `30A-123.45` / `29A-1234` / `51LD-123.45`,
/// motorbike `29-B1 234.56` / `29-AA 2345`. Two lines are normally a
/// motorbike, but a two-line plate read as one line, or a square car plate
/// read as two, are read too: the separators the OCR saw (line breaks,
/// dashes, dots, spaces) pick the layout, and where they say nothing a
/// current car plate wins over an old motorbike plate (see
/// [`parse_compact`]).
///
/// A character of the wrong kind for its position is replaced by its
/// look-alike (`O`→`0` where a digit belongs, `8`→`B` where a series letter
/// belongs) and listed in `repairs`; a character of the right kind is never
/// changed.
///
/// Confidence = the mean of the per-character confidences of the letters and
/// digits (each clamped to 0–1), times [`REPAIR_PENALTY`] per repair. The
/// mean, not the product, so a 9-character plate is not penalised against a
/// 7-character one for its length.
///
/// Text that fits no layout, or names an unassigned province, is
/// [`PlateReading::Unreadable`] with the text, the same confidence and the
/// reason.
pub fn parse(lines: &[OcrLine]) -> PlateReading {
    read(&Observed::from_lines(lines))
}

/// [`parse`] of text already reduced to letters, digits and separators.
pub(crate) fn read(observed: &Observed) -> PlateReading {
    if observed.chars.is_empty() {
        return PlateReading::Unreadable {
            best_guess: String::new(),
            confidence: 0.0,
            reason: "the OCR read no letters or digits".to_owned(),
        };
    }
    let mean_confidence = observed.mean_confidence();
    match best_fit(observed, Layouts::All, Repairs::Allowed) {
        Err(no_fit) => PlateReading::Unreadable {
            best_guess: observed.text(),
            confidence: mean_confidence,
            reason: no_fit.to_string(),
        },
        Ok(fit) => {
            let confidence = mean_confidence * repair_penalty(fit.repairs.len());
            match fit.to_plate() {
                Ok(plate) => PlateReading::Read {
                    plate,
                    confidence,
                    repairs: fit.repairs,
                },
                Err(problem) => PlateReading::Unreadable {
                    best_guess: fit.text,
                    confidence,
                    reason: problem.to_string(),
                },
            }
        }
    }
}

fn repair_penalty(repairs: usize) -> f32 {
    let exponent = i32::try_from(repairs).unwrap_or(i32::MAX);
    REPAIR_PENALTY.powi(exponent)
}

/// Reads a plate label written without separators (`30A12345`,
/// `29B123456`), as datasets and the vote use. Nothing is repaired: a label
/// with a look-alike in the wrong place is `None`, not silently fixed.
///
/// Lower case is accepted. Separators, if present (`29-B1 1234`), are used
/// to pick the layout just as [`parse`] uses them.
///
/// Without separators the compact form is ambiguous for three shapes. A
/// letter followed by a digit is a motorbike series when five digits follow
/// it (no car has a six-digit number); otherwise the more common plate wins:
///
/// | compact | read as | not as |
/// | --- | --- | --- |
/// | `29B123456` (letter, digit, 5 digits) | motorbike `29-B1 234.56` | car `29B1-234.56` |
/// | `29B11234` (letter, 5 digits) | car `29B-112.34` | old motorbike `29-B1 1234` |
/// | `29AA12345` (two letters) | car `29AA-123.45` | motorbike `29-AA 123.45` |
///
/// The second row is the real trade-off: in the project's plate label sets,
/// that shape is a car plate about 1,700 times (`vn-plates-1line`: 1,153 of
/// 1,232 labels) and an old motorbike plate about 300 times (`xemay`). The
/// compact form is right either way; for a label set of known format, use
/// [`parse_compact_as`] to get the format right too.
pub fn parse_compact(s: &str) -> Option<Plate> {
    parse_exact(&observe_label(s), Layouts::All)
}

/// [`parse_compact`] for a label whose format is known, such as a set of
/// motorbike plates: `parse_compact_as("54T15417", MotorbikeTwoLine)` is
/// `54-T1 5417`, where [`parse_compact`] would read the car `54T-154.17`.
///
/// One shape stays ambiguous within the car format: `29B11234` is read as
/// `29B-112.34`, never as the rare letter-and-digit series `29B1-1234`,
/// unless a dash is written after the series.
pub fn parse_compact_as(s: &str, format: PlateFormat) -> Option<Plate> {
    parse_exact(&observe_label(s), Layouts::Format(format))
}

fn observe_label(s: &str) -> Observed {
    Observed::from_lines(&[OcrLine::uniform(s, 1.0)])
}

/// The plate `observed` spells without any repair, in one of `layouts`.
pub(crate) fn parse_exact(observed: &Observed, layouts: Layouts) -> Option<Plate> {
    best_fit(observed, layouts, Repairs::Forbidden)
        .ok()?
        .to_plate()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plate::SpecialSeries;

    fn read_one(text: &str) -> PlateReading {
        parse(&[OcrLine::uniform(text, 1.0)])
    }

    fn read_two(top: &str, bottom: &str) -> PlateReading {
        parse(&[OcrLine::uniform(top, 1.0), OcrLine::uniform(bottom, 1.0)])
    }

    fn plate_of(reading: &PlateReading) -> &Plate {
        reading
            .plate()
            .unwrap_or_else(|| panic!("expected a plate, got {reading:?}"))
    }

    fn repairs_of(reading: &PlateReading) -> Vec<Repair> {
        match reading {
            PlateReading::Read { repairs, .. } => repairs.clone(),
            PlateReading::Unreadable { .. } => panic!("expected a plate, got {reading:?}"),
        }
    }

    #[test]
    fn a_car_plate_with_five_digits_is_read_as_printed() {
        let reading = read_one("30A-123.45");
        assert_eq!(plate_of(&reading).canonical(), "30A-123.45");
        assert_eq!(plate_of(&reading).format, PlateFormat::CarOneLine);
        assert_eq!(reading.confidence(), 1.0);
        assert!(repairs_of(&reading).is_empty());
    }

    #[test]
    fn an_old_car_plate_with_four_digits_is_read() {
        assert_eq!(plate_of(&read_one("29A-1234")).canonical(), "29A-1234");
    }

    #[test]
    fn a_two_letter_car_series_is_read_and_flagged() {
        let reading = read_one("51LD-123.45");
        assert_eq!(plate_of(&reading).series, "LD");
        assert_eq!(
            plate_of(&reading).special,
            Some(SpecialSeries::ForeignInvested)
        );
    }

    #[test]
    fn motorbike_top_line_b1_is_read_as_series_b1() {
        let plate = plate_of(&read_two("29-B1", "234.56")).clone();
        assert_eq!(plate.province, 29);
        assert_eq!(plate.series, "B1");
        assert_eq!(plate.number, "23456");
        assert_eq!(plate.format, PlateFormat::MotorbikeTwoLine);
        assert_eq!(plate.canonical(), "29-B1 234.56");
    }

    #[test]
    fn a_motorbike_with_a_four_digit_bottom_line_is_read() {
        assert_eq!(
            plate_of(&read_two("29-B1", "2345")).canonical(),
            "29-B1 2345"
        );
    }

    #[test]
    fn a_motorbike_top_line_without_its_dash_is_still_a_motorbike() {
        assert_eq!(
            plate_of(&read_two("29B1", "2345")).canonical(),
            "29-B1 2345"
        );
    }

    #[test]
    fn a_motorbike_with_two_series_letters_is_read() {
        assert_eq!(
            plate_of(&read_two("29-AA", "123.45")).canonical(),
            "29-AA 123.45"
        );
    }

    #[test]
    fn a_two_line_plate_read_as_one_line_is_still_a_motorbike() {
        assert_eq!(
            plate_of(&read_one("29-B1 234.56")).canonical(),
            "29-B1 234.56"
        );
        assert_eq!(plate_of(&read_one("29-B1 2345")).canonical(), "29-B1 2345");
        assert_eq!(plate_of(&read_one("29B123456")).canonical(), "29-B1 234.56");
    }

    #[test]
    fn a_square_car_plate_read_as_two_lines_is_a_car() {
        assert_eq!(
            plate_of(&read_two("30A", "123.45")).canonical(),
            "30A-123.45"
        );
    }

    #[test]
    fn a_car_letter_digit_series_is_read_only_when_the_dash_says_so() {
        assert_eq!(
            plate_of(&read_one("29B1-234.56")).format,
            PlateFormat::CarOneLine
        );
        assert_eq!(plate_of(&read_one("29B1-1234")).canonical(), "29B1-1234");
    }

    #[test]
    fn letter_o_in_a_digit_position_becomes_zero() {
        let reading = read_one("3OA-123.45");
        assert_eq!(plate_of(&reading).canonical(), "30A-123.45");
        assert_eq!(
            repairs_of(&reading),
            [Repair {
                position: 1,
                from: 'O',
                to: '0'
            }]
        );
    }

    #[test]
    fn look_alike_letters_in_the_number_become_digits() {
        let reading = read_two("29-B1", "Z3S.G8");
        assert_eq!(plate_of(&reading).canonical(), "29-B1 235.68");
        assert_eq!(repairs_of(&reading).len(), 3);
    }

    #[test]
    fn digit_eight_in_the_series_position_becomes_b() {
        let reading = read_two("29-81", "234.56");
        assert_eq!(plate_of(&reading).series, "B1");
        assert_eq!(
            repairs_of(&reading),
            [Repair {
                position: 2,
                from: '8',
                to: 'B'
            }]
        );
    }

    #[test]
    fn letter_o_in_the_series_position_becomes_d_because_o_is_no_series_letter() {
        assert_eq!(plate_of(&read_one("51O-123.45")).series, "D");
        assert_eq!(plate_of(&read_one("510-123.45")).series, "D");
    }

    #[test]
    fn a_series_letter_is_never_changed_even_if_it_looks_like_a_digit() {
        let reading = read_two("29-S1", "234.56");
        assert_eq!(plate_of(&reading).series, "S1");
        assert!(repairs_of(&reading).is_empty());
    }

    #[test]
    fn w_in_the_series_position_has_no_repair_and_is_unreadable() {
        match read_one("30W-123.45") {
            PlateReading::Unreadable {
                best_guess, reason, ..
            } => {
                assert_eq!(best_guess, "30W12345");
                assert!(reason.contains("character 3 is 'W'"), "{reason}");
            }
            other => panic!("expected unreadable, got {other:?}"),
        }
    }

    #[test]
    fn qt_is_kept_although_q_is_not_a_series_letter() {
        let reading = read_one("29QT-123.45");
        assert_eq!(plate_of(&reading).series, "QT");
        assert!(repairs_of(&reading).is_empty());
    }

    #[test]
    fn an_unknown_province_is_unreadable_not_dropped() {
        let lines = [OcrLine::uniform("42A-123.45", 0.8)];
        match parse(&lines) {
            PlateReading::Unreadable {
                best_guess,
                confidence,
                reason,
            } => {
                assert_eq!(best_guess, "42A12345");
                assert!((confidence - 0.8).abs() < 1e-6);
                assert!(reason.contains("province code 42"), "{reason}");
            }
            other => panic!("expected unreadable, got {other:?}"),
        }
    }

    #[test]
    fn province_80_is_read_and_flagged_central_agency() {
        let plate = plate_of(&read_one("80A-123.45")).clone();
        assert_eq!(plate.special, Some(SpecialSeries::CentralAgency));
    }

    #[test]
    fn lower_case_and_stray_separators_are_tolerated() {
        assert_eq!(
            plate_of(&read_one(" 30a - 123.45 ")).canonical(),
            "30A-123.45"
        );
        assert_eq!(plate_of(&read_one("30A-123,45")).canonical(), "30A-123.45");
    }

    #[test]
    fn a_vietnamese_d_with_stroke_is_read_as_d() {
        assert_eq!(plate_of(&read_one("51Đ-123.45")).series, "D");
    }

    #[test]
    fn a_read_with_the_wrong_number_of_characters_is_unreadable_with_the_raw_text() {
        match read_one("30A-12") {
            PlateReading::Unreadable {
                best_guess, reason, ..
            } => {
                assert_eq!(best_guess, "30A12");
                assert!(reason.starts_with("read 5 letters and digits"), "{reason}");
            }
            other => panic!("expected unreadable, got {other:?}"),
        }
    }

    #[test]
    fn nothing_read_is_unreadable_with_zero_confidence() {
        let reading = parse(&[]);
        assert_eq!(
            reading,
            PlateReading::Unreadable {
                best_guess: String::new(),
                confidence: 0.0,
                reason: "the OCR read no letters or digits".to_owned()
            }
        );
        assert_eq!(parse(&[OcrLine::uniform(" - ", 1.0)]), reading);
    }

    #[test]
    fn confidence_is_the_mean_character_confidence_times_point_nine_per_repair() {
        // Confidences per char of "3OA-123.45" (10 chars, separators included).
        let confidences = vec![1.0, 0.5, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.5];
        let reading = parse(&[OcrLine::new("3OA-123.45", confidences)]);
        // Letters and digits: 1.0 0.5 1.0 1.0 1.0 1.0 1.0 0.5 -> mean 0.875.
        assert!(
            (reading.confidence() - 0.875 * 0.9).abs() < 1e-6,
            "{reading:?}"
        );
    }

    #[test]
    fn confidences_given_only_for_letters_and_digits_are_aligned_with_them() {
        let confidences = vec![0.5; 8];
        let reading = parse(&[OcrLine::new("30A-123.45", confidences)]);
        assert!((reading.confidence() - 0.5).abs() < 1e-6, "{reading:?}");
    }

    #[test]
    fn missing_and_nan_confidences_count_as_zero() {
        let reading = parse(&[OcrLine::new("30A12345", vec![f32::NAN, 1.0, 1.0, 1.0])]);
        assert!(
            (reading.confidence() - 3.0 / 8.0).abs() < 1e-6,
            "{reading:?}"
        );
    }

    #[test]
    fn compact_with_one_letter_and_five_digits_is_a_car() {
        let plate = parse_compact("30A12345").unwrap();
        assert_eq!(plate.canonical(), "30A-123.45");
    }

    #[test]
    fn compact_with_one_letter_and_four_digits_is_an_old_car() {
        assert_eq!(parse_compact("29A1234").unwrap().canonical(), "29A-1234");
    }

    #[test]
    fn compact_with_a_letter_digit_series_and_five_digits_is_a_motorbike() {
        let plate = parse_compact("29B123456").unwrap();
        assert_eq!(plate.canonical(), "29-B1 234.56");
    }

    #[test]
    fn ambiguous_eight_characters_are_a_car_with_five_digits() {
        assert_eq!(parse_compact("29B11234").unwrap().canonical(), "29B-112.34");
    }

    #[test]
    fn compact_with_two_series_letters_is_a_car() {
        assert_eq!(
            parse_compact("29AA12345").unwrap().canonical(),
            "29AA-123.45"
        );
        assert_eq!(parse_compact("51LD1234").unwrap().canonical(), "51LD-1234");
    }

    #[test]
    fn parse_compact_uses_separators_when_they_are_there() {
        assert_eq!(
            parse_compact("29-B1 1234").unwrap().canonical(),
            "29-B1 1234"
        );
        assert_eq!(
            parse_compact("29-aa 123.45").unwrap().canonical(),
            "29-AA 123.45"
        );
    }

    #[test]
    fn a_motorbike_label_with_four_digits_is_a_motorbike_when_the_format_is_given() {
        let plate = parse_compact_as("54T15417", PlateFormat::MotorbikeTwoLine).unwrap();
        assert_eq!(plate.canonical(), "54-T1 5417");
        let plate = parse_compact_as("51FB12345", PlateFormat::MotorbikeTwoLine).unwrap();
        assert_eq!(plate.canonical(), "51-FB 123.45");
    }

    #[test]
    fn a_car_label_stays_a_car_when_the_format_is_given() {
        let plate = parse_compact_as("30E00090", PlateFormat::CarOneLine).unwrap();
        assert_eq!(plate.canonical(), "30E-000.90");
        assert_eq!(
            parse_compact_as("29B123456", PlateFormat::CarOneLine)
                .unwrap()
                .canonical(),
            "29B1-234.56"
        );
        assert_eq!(
            parse_compact_as("29A1234", PlateFormat::MotorbikeTwoLine),
            None
        );
    }

    #[test]
    fn parse_compact_never_repairs() {
        assert_eq!(parse_compact("3OA12345"), None);
        assert_eq!(parse_compact("30A1234S"), None);
        assert_eq!(parse_compact("42A12345"), None);
        assert_eq!(parse_compact(""), None);
    }
}
