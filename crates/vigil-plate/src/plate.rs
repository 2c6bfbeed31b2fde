//! The plate value: what a Vietnamese plate says, checked against the grammar.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::province::{is_assigned_province, CENTRAL_AGENCY_CODE};

/// How the plate is laid out, which decides how it is printed.
///
/// The layout follows the series: a letter+digit series (`B1`) is a
/// motorbike's top line. A square two-line *car* plate (`30A` above
/// `123.45`) is still [`PlateFormat::CarOneLine`]: the format names the
/// grammar, not the shape of the metal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateFormat {
    /// Province and series, a dash, the number: `30A-123.45`, `29A-1234`.
    CarOneLine,
    /// `29-B1` above `234.56`; written on one line as `29-B1 234.56`.
    MotorbikeTwoLine,
}

impl fmt::Display for PlateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlateFormat::CarOneLine => "car (one-line)",
            PlateFormat::MotorbikeTwoLine => "motorbike (two-line)",
        })
    }
}

/// Plates whose owner class matters to the case system: a violation by one
/// of these is routed for notification, never suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialSeries {
    /// `LD`: vehicles of foreign-invested enterprises.
    ForeignInvested,
    /// `KT`: vehicles registered in an economic zone.
    EconomicZone,
    /// `NG`: diplomatic missions.
    Diplomatic,
    /// `NN`: foreign organisations and individuals.
    ForeignNational,
    /// `QT`: international organisations.
    InternationalOrganisation,
    /// `CV`: administrative and technical staff of diplomatic missions and
    /// international organisations.
    ForeignMissionStaff,
    /// Province code 80: central government agencies.
    CentralAgency,
}

/// The two-letter series that mark a special owner class.
///
/// `QT` contains `Q`, which ordinary series never use; the grammar accepts
/// these codes as written before it applies the series-letter rules.
const SPECIAL_SERIES_CODES: [(&str, SpecialSeries); 6] = [
    ("LD", SpecialSeries::ForeignInvested),
    ("KT", SpecialSeries::EconomicZone),
    ("NG", SpecialSeries::Diplomatic),
    ("NN", SpecialSeries::ForeignNational),
    ("QT", SpecialSeries::InternationalOrganisation),
    ("CV", SpecialSeries::ForeignMissionStaff),
];

impl SpecialSeries {
    /// The special class a series code stands for, if any (`"LD"` gives
    /// [`SpecialSeries::ForeignInvested`]; `"A"` gives `None`).
    pub fn from_series(series: &str) -> Option<SpecialSeries> {
        SPECIAL_SERIES_CODES
            .iter()
            .find(|(code, _)| *code == series)
            .map(|&(_, special)| special)
    }
}

/// Whether `c` can be a series letter. `I`, `O`, `Q` and `W` are not used in
/// ordinary series (`I`, `O` and `Q` would be confused with `1` and `0`), and
/// knowing that is what lets the repair turn a `0` or an `O` in a letter
/// position into `D` rather than keep a letter no plate has.
pub(crate) fn is_series_letter(c: char) -> bool {
    c.is_ascii_uppercase() && !matches!(c, 'I' | 'O' | 'Q' | 'W')
}

/// The three shapes a series takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeriesShape {
    /// `A` (cars only).
    Letter,
    /// `LD`, `AA`, or a special code such as `QT`.
    LetterLetter,
    /// `B1`: a motorbike top line (and, on a few cars, written `29B1-...`).
    LetterDigit,
}

impl SeriesShape {
    pub(crate) fn len(self) -> usize {
        match self {
            SeriesShape::Letter => 1,
            SeriesShape::LetterLetter | SeriesShape::LetterDigit => 2,
        }
    }

    fn of(series: &str) -> Option<SeriesShape> {
        if SpecialSeries::from_series(series).is_some() {
            return Some(SeriesShape::LetterLetter);
        }
        let mut chars = series.chars();
        match (chars.next(), chars.next(), chars.next()) {
            (Some(a), None, None) if is_series_letter(a) => Some(SeriesShape::Letter),
            (Some(a), Some(b), None) if is_series_letter(a) && is_series_letter(b) => {
                Some(SeriesShape::LetterLetter)
            }
            (Some(a), Some(b), None) if is_series_letter(a) && b.is_ascii_digit() => {
                Some(SeriesShape::LetterDigit)
            }
            _ => None,
        }
    }

    pub(crate) fn allowed_on(self, format: PlateFormat) -> bool {
        !(format == PlateFormat::MotorbikeTwoLine && self == SeriesShape::Letter)
    }
}

/// A plate that satisfies the grammar: an assigned province, a series of a
/// shape its format allows, and a 4- or 5-digit number.
///
/// Build one with [`Plate::new`], [`parse`](crate::parse) or
/// [`parse_compact`](crate::parse_compact); the fields are public for reading
/// and serialisation, and a value assembled by hand is not re-checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plate {
    /// Two-digit province code, one of
    /// [`ASSIGNED_PROVINCE_CODES`](crate::ASSIGNED_PROVINCE_CODES).
    pub province: u8,
    /// `A`, `LD`, `B1`, ...: upper-case ASCII.
    pub series: String,
    /// The registration number, digits only: `12345` or `1234`.
    pub number: String,
    pub format: PlateFormat,
    /// The owner class when the series (or province 80) marks one. A special
    /// series takes precedence: `80NG-...` is
    /// [`SpecialSeries::Diplomatic`]; see [`Plate::is_central_agency`].
    pub special: Option<SpecialSeries>,
}

/// Why a set of parts is not a plate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateError {
    #[error(
        "province code {0:02} is not assigned (valid: 11-99 except 13, 42, 44-46, 87, 91 and 96; 80 is central agencies)"
    )]
    UnknownProvince(u8),
    #[error(
        "series {series:?} is not valid on a {format} plate: expected {expected}, using letters A-Z except I, O, Q and W"
    )]
    InvalidSeries {
        series: String,
        format: PlateFormat,
        expected: &'static str,
    },
    #[error("number {0:?} is not a plate number: expected 4 or 5 digits")]
    InvalidNumber(String),
}

impl Plate {
    /// Checks the parts against the grammar and derives
    /// [`special`](Plate::special).
    ///
    /// The parts must already be normalised (upper case, digits only in
    /// `number`); use [`parse`](crate::parse) for OCR text.
    pub fn new(
        province: u8,
        series: &str,
        number: &str,
        format: PlateFormat,
    ) -> Result<Plate, PlateError> {
        if !is_assigned_province(province) {
            return Err(PlateError::UnknownProvince(province));
        }
        let shape_allowed = SeriesShape::of(series).is_some_and(|shape| shape.allowed_on(format));
        if !shape_allowed {
            return Err(PlateError::InvalidSeries {
                series: series.to_owned(),
                format,
                expected: match format {
                    PlateFormat::CarOneLine => {
                        "one letter (30A), two letters (51LD) or a letter and a digit"
                    }
                    PlateFormat::MotorbikeTwoLine => {
                        "a letter and a digit (B1) or two letters (AA)"
                    }
                },
            });
        }
        let number_ok = matches!(number.len(), 4 | 5) && number.chars().all(|c| c.is_ascii_digit());
        if !number_ok {
            return Err(PlateError::InvalidNumber(number.to_owned()));
        }
        let special = SpecialSeries::from_series(series)
            .or((province == CENTRAL_AGENCY_CODE).then_some(SpecialSeries::CentralAgency));
        Ok(Plate {
            province,
            series: series.to_owned(),
            number: number.to_owned(),
            format,
            special,
        })
    }

    /// The plate as printed: `30A-123.45`, `29A-1234`, `29-B1 234.56`.
    pub fn canonical(&self) -> String {
        let number = printed_number(&self.number);
        match self.format {
            PlateFormat::CarOneLine => format!("{:02}{}-{}", self.province, self.series, number),
            PlateFormat::MotorbikeTwoLine => {
                format!("{:02}-{} {}", self.province, self.series, number)
            }
        }
    }

    /// Letters and digits only: `30A12345`, `29B123456`. This is the form
    /// labels use and the form [`vote`](crate::vote) aligns reads by. It
    /// drops the format, so it is ambiguous for a few plates; see
    /// [`parse_compact`](crate::parse_compact).
    pub fn compact(&self) -> String {
        format!("{:02}{}{}", self.province, self.series, self.number)
    }

    /// Whether the plate was issued to a central government agency
    /// (province code 80), whatever its series says.
    pub fn is_central_agency(&self) -> bool {
        self.province == CENTRAL_AGENCY_CODE
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Five-digit numbers are printed with a dot after the third digit.
fn printed_number(number: &str) -> String {
    match (number.len(), number.get(..3), number.get(3..)) {
        (5, Some(head), Some(tail)) => format!("{head}.{tail}"),
        _ => number.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(province: u8, series: &str, number: &str, format: PlateFormat) -> Plate {
        Plate::new(province, series, number, format).expect("valid test plate")
    }

    #[test]
    fn a_car_plate_prints_with_a_dash_and_a_dot() {
        let p = plate(30, "A", "12345", PlateFormat::CarOneLine);
        assert_eq!(p.canonical(), "30A-123.45");
        assert_eq!(p.compact(), "30A12345");
    }

    #[test]
    fn an_old_four_digit_car_plate_prints_without_a_dot() {
        assert_eq!(
            plate(29, "A", "1234", PlateFormat::CarOneLine).canonical(),
            "29A-1234"
        );
    }

    #[test]
    fn a_motorbike_plate_prints_both_lines_separated_by_a_space() {
        let p = plate(29, "B1", "23456", PlateFormat::MotorbikeTwoLine);
        assert_eq!(p.canonical(), "29-B1 234.56");
        assert_eq!(p.compact(), "29B123456");
        assert_eq!(p.to_string(), p.canonical());
    }

    #[test]
    fn a_two_letter_special_series_is_flagged() {
        let p = plate(51, "LD", "12345", PlateFormat::CarOneLine);
        assert_eq!(p.special, Some(SpecialSeries::ForeignInvested));
        assert_eq!(p.canonical(), "51LD-123.45");
    }

    #[test]
    fn province_80_is_flagged_central_agency() {
        let p = plate(80, "A", "12345", PlateFormat::CarOneLine);
        assert_eq!(p.special, Some(SpecialSeries::CentralAgency));
        assert!(p.is_central_agency());
    }

    #[test]
    fn a_diplomatic_series_on_province_80_is_diplomatic_and_still_central() {
        let p = plate(80, "NG", "12345", PlateFormat::CarOneLine);
        assert_eq!(p.special, Some(SpecialSeries::Diplomatic));
        assert!(p.is_central_agency());
    }

    #[test]
    fn qt_is_a_valid_series_although_q_is_not_a_series_letter() {
        let p = plate(29, "QT", "12345", PlateFormat::CarOneLine);
        assert_eq!(p.special, Some(SpecialSeries::InternationalOrganisation));
        assert!(Plate::new(29, "QA", "12345", PlateFormat::CarOneLine).is_err());
    }

    #[test]
    fn an_unassigned_province_is_rejected_with_the_code_in_the_message() {
        let err = Plate::new(42, "A", "12345", PlateFormat::CarOneLine).unwrap_err();
        assert_eq!(err, PlateError::UnknownProvince(42));
        assert!(err
            .to_string()
            .starts_with("province code 42 is not assigned"));
    }

    #[test]
    fn a_motorbike_needs_a_two_character_series() {
        let err = Plate::new(29, "B", "12345", PlateFormat::MotorbikeTwoLine).unwrap_err();
        assert!(matches!(err, PlateError::InvalidSeries { .. }), "{err}");
        assert!(
            err.to_string().contains("a letter and a digit (B1)"),
            "{err}"
        );
    }

    #[test]
    fn series_letters_i_o_q_w_are_rejected() {
        for series in ["I", "O", "Q", "W", "AO", "W1"] {
            assert!(
                Plate::new(30, series, "12345", PlateFormat::CarOneLine).is_err(),
                "{series}"
            );
        }
    }

    #[test]
    fn a_number_must_be_four_or_five_digits() {
        for number in ["123", "123456", "12a45", "12.45"] {
            assert_eq!(
                Plate::new(30, "A", number, PlateFormat::CarOneLine),
                Err(PlateError::InvalidNumber(number.to_owned()))
            );
        }
    }
}
