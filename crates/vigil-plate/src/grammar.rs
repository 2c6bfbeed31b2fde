//! Fitting OCR characters to the plate templates, with position-dependent
//! repair of look-alike characters.
//!
//! Every plate is two province digits, a series and a 4- or 5-digit number,
//! so each *template* (format × series shape × number length) fixes, for
//! every position, whether a digit or a series letter belongs there. OCR's
//! typical mistakes swap look-alikes across that line (`O`/`0`, `B`/`8`), so
//! a character of the wrong kind is repaired to its look-alike of the right
//! kind; a character of the right kind is never touched, because the grammar
//! gives no evidence against it.
//!
//! Several templates can fit the same characters (`29B11234` is a car
//! `29B-112.34` or a motorbike `29-B1 1234`). The separators the OCR saw
//! decide where they can (a line break or a space after the series means a
//! motorbike); otherwise [`TEMPLATES`]' order does. Each candidate costs
//! [`REPAIR_COST`] per repaired character plus a layout cost for separators
//! that contradict it, and the cheapest wins. The costs were checked against
//! the raw OCR strings of the project's silver plate set (`59-L2149.99`,
//! `51F-446.14`): they give the subset's format to 1,180 of the 1,188
//! readable motorbike strings and 400 of the 402 car strings. The misses
//! have lost a character or carry no separator at all.

use std::fmt;

use crate::plate::{is_series_letter, Plate, PlateError, PlateFormat, SeriesShape, SpecialSeries};
use crate::reading::{OcrLine, Repair};

/// What may stand at one position of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Digit,
    SeriesLetter,
}

/// Letters that OCR reads in place of a digit, and the digit they stand for.
///
/// Only the well-known glyph confusions of plate fonts: round shapes are `0`
/// (`O`, `D`, `Q`), vertical strokes are `1` (`I`, `T`), and `Z`/`2`,
/// `A`/`4`, `S`/`5`, `G`/`6`, `B`/`8`. `T`/`7` and `L`/`1` are left out: they
/// are rarer and a wrong repair is worse than an honest unreadable.
const LETTER_TO_DIGIT: [(char, char); 10] = [
    ('O', '0'),
    ('D', '0'),
    ('Q', '0'),
    ('I', '1'),
    ('T', '1'),
    ('Z', '2'),
    ('A', '4'),
    ('S', '5'),
    ('G', '6'),
    ('B', '8'),
];

/// Characters that cannot be a series letter, and the series letter they are
/// a look-alike of: the reverse of [`LETTER_TO_DIGIT`].
///
/// `0`, `O` and `Q` become `D` because `O` and `Q` are not series letters and
/// `D` is the one round letter that is; likewise `1` and `I` become `T`.
/// `W` (not a series letter either) has no look-alike and stays unrepaired.
const TO_SERIES_LETTER: [(char, char); 10] = [
    ('0', 'D'),
    ('O', 'D'),
    ('Q', 'D'),
    ('1', 'T'),
    ('I', 'T'),
    ('2', 'Z'),
    ('4', 'A'),
    ('5', 'S'),
    ('6', 'G'),
    ('8', 'B'),
];

impl Slot {
    fn accepts(self, c: char) -> bool {
        match self {
            Slot::Digit => c.is_ascii_digit(),
            Slot::SeriesLetter => is_series_letter(c),
        }
    }

    fn repair(self, c: char) -> Option<char> {
        let table: &[(char, char)] = match self {
            Slot::Digit => &LETTER_TO_DIGIT,
            Slot::SeriesLetter => &TO_SERIES_LETTER,
        };
        table.iter().find(|(from, _)| *from == c).map(|&(_, to)| to)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::Digit => "a digit",
            Slot::SeriesLetter => "a series letter (A-Z except I, O, Q, W)",
        })
    }
}

/// One way a plate can be laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) format: PlateFormat,
    pub(crate) series: SeriesShape,
    pub(crate) number_len: usize,
}

const fn template(format: PlateFormat, series: SeriesShape, number_len: usize) -> Template {
    Template {
        format,
        series,
        number_len,
    }
}

/// All templates, most likely first: the order breaks ties between templates
/// that fit the same characters at the same cost.
///
/// - One letter then five digits (`30A12345`) is a current car plate before
///   it is an old four-digit motorbike plate `30-A1 2345`.
/// - Two letters (`51LD12345`) are a car series (`LD`, `KT`, `NG` ...)
///   before a motorbike `51-LD 123.45`.
/// - A letter and a digit (`29B123456`) are a motorbike top line before a
///   car series; such a car series also needs the dash after it to win
///   (`29B1-234.56`, see [`UNCONFIRMED_CAR_LETTER_DIGIT_COST`]).
pub(crate) const TEMPLATES: [Template; 10] = {
    use PlateFormat::{CarOneLine as Car, MotorbikeTwoLine as Moto};
    use SeriesShape::{Letter, LetterDigit, LetterLetter};
    [
        template(Car, Letter, 5),
        template(Car, Letter, 4),
        template(Car, LetterLetter, 5),
        template(Car, LetterLetter, 4),
        template(Moto, LetterDigit, 5),
        template(Moto, LetterDigit, 4),
        template(Moto, LetterLetter, 5),
        template(Moto, LetterLetter, 4),
        template(Car, LetterDigit, 5),
        template(Car, LetterDigit, 4),
    ]
};

/// Shortest and longest plate, in letters and digits.
pub(crate) const MIN_PLATE_LEN: usize = 7;
pub(crate) const MAX_PLATE_LEN: usize = 9;

impl Template {
    pub(crate) fn len(self) -> usize {
        2 + self.series.len() + self.number_len
    }

    fn slot(self, position: usize) -> Slot {
        let series_end = 2 + self.series.len();
        let is_letter = position == 2
            || (position == 3 && position < series_end && self.series == SeriesShape::LetterLetter);
        if is_letter {
            Slot::SeriesLetter
        } else {
            Slot::Digit
        }
    }

    /// The separators the printed form has before each position.
    fn expected_breaks(self) -> Vec<Breaks> {
        let mut expected = vec![Breaks::NONE; self.len()];
        let number_start = 2 + self.series.len();
        let mut expect = |position: usize, kinds: Breaks| {
            if let Some(slot) = expected.get_mut(position) {
                *slot = kinds;
            }
        };
        match self.format {
            PlateFormat::CarOneLine => expect(number_start, Breaks::DASH),
            PlateFormat::MotorbikeTwoLine => {
                expect(2, Breaks::DASH);
                expect(number_start, Breaks::SPACE.union(Breaks::LINE));
            }
        }
        if self.number_len == 5 {
            expect(number_start + 3, Breaks::DOT);
        }
        expected
    }

    /// The template as a pattern for messages: `NNL-NNN.NN`, `NN-LN NNNN`.
    fn pattern(self) -> String {
        let letters: String = (0..self.len())
            .map(|i| match self.slot(i) {
                Slot::Digit => 'N',
                Slot::SeriesLetter => 'L',
            })
            .collect();
        let number_start = 2 + self.series.len();
        let (head, number) = letters.split_at(number_start);
        let number = if number.len() == 5 {
            format!("{}.{}", &number[..3], &number[3..])
        } else {
            number.to_owned()
        };
        match self.format {
            PlateFormat::CarOneLine => format!("{head}-{number}"),
            PlateFormat::MotorbikeTwoLine => {
                let (province, series) = head.split_at(2);
                format!("{province}-{series} {number}")
            }
        }
    }
}

/// The separators seen between two characters, as a small set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Breaks(u8);

impl Breaks {
    pub(crate) const NONE: Breaks = Breaks(0);
    pub(crate) const DASH: Breaks = Breaks(1);
    pub(crate) const DOT: Breaks = Breaks(2);
    pub(crate) const SPACE: Breaks = Breaks(4);
    /// The boundary between two OCR lines.
    pub(crate) const LINE: Breaks = Breaks(8);

    pub(crate) const fn union(self, other: Breaks) -> Breaks {
        Breaks(self.0 | other.0)
    }

    fn intersects(self, other: Breaks) -> bool {
        self.0 & other.0 != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn of(c: char) -> Option<Breaks> {
        match c {
            '-' | '\u{2010}'..='\u{2015}' | '_' => Some(Breaks::DASH),
            '.' | ',' | '\u{00B7}' => Some(Breaks::DOT),
            c if c.is_whitespace() => Some(Breaks::SPACE),
            _ => None,
        }
    }
}

/// One letter or digit as the OCR saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ObservedChar {
    pub(crate) ch: char,
    /// Clamped to 0..=1; NaN and missing confidences are 0.
    pub(crate) confidence: f32,
    /// The separators seen between the previous character and this one.
    pub(crate) breaks_before: Breaks,
}

/// OCR output reduced to letters, digits and the separators between them.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Observed {
    pub(crate) chars: Vec<ObservedChar>,
}

/// A confidence as a probability: NaN (a broken model output) counts as no
/// confidence at all rather than poisoning every mean it enters.
pub(crate) fn sanitize(confidence: f32) -> f32 {
    if confidence.is_nan() {
        0.0
    } else {
        confidence.clamp(0.0, 1.0)
    }
}

impl Observed {
    /// Normalises OCR lines: upper case, `Đ` as `D`, separators remembered as
    /// layout hints, anything else dropped.
    ///
    /// Confidences are per `char` of `text`; when there are exactly as many
    /// as letters and digits instead, they are taken to be per letter and
    /// digit (some OCR heads skip separators). A missing confidence is 0:
    /// no evidence is not good evidence.
    pub(crate) fn from_lines(lines: &[OcrLine]) -> Observed {
        let mut chars: Vec<ObservedChar> = Vec::new();
        let mut pending = Breaks::NONE;
        for line in lines {
            pending = pending.union(Breaks::LINE);
            let char_count = line.text.chars().count();
            let alnum_count = line
                .text
                .chars()
                .filter(|&c| normalise(c).is_some())
                .count();
            let per_alnum = line.char_confidences.len() != char_count
                && line.char_confidences.len() == alnum_count;
            let mut alnum_index = 0;
            for (char_index, c) in line.text.chars().enumerate() {
                if let Some(ch) = normalise(c) {
                    let index = if per_alnum { alnum_index } else { char_index };
                    let confidence =
                        sanitize(line.char_confidences.get(index).copied().unwrap_or(0.0));
                    let breaks_before = if chars.is_empty() {
                        Breaks::NONE
                    } else {
                        pending
                    };
                    chars.push(ObservedChar {
                        ch,
                        confidence,
                        breaks_before,
                    });
                    pending = Breaks::NONE;
                    alnum_index += 1;
                } else if let Some(kind) = Breaks::of(c) {
                    pending = pending.union(kind);
                }
            }
        }
        Observed { chars }
    }

    pub(crate) fn text(&self) -> String {
        self.chars.iter().map(|c| c.ch).collect()
    }

    pub(crate) fn mean_confidence(&self) -> f32 {
        if self.chars.is_empty() {
            return 0.0;
        }
        let sum: f64 = self.chars.iter().map(|c| f64::from(c.confidence)).sum();
        (sum / self.chars.len() as f64) as f32
    }

    fn has_any_break(&self) -> bool {
        self.chars.iter().any(|c| !c.breaks_before.is_empty())
    }
}

fn normalise(c: char) -> Option<char> {
    match c {
        'Đ' | 'đ' => Some('D'),
        c if c.is_ascii_alphanumeric() => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// Whether [`best_fit`] may repair characters (OCR) or must take them as
/// written (labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repairs {
    Allowed,
    Forbidden,
}

/// The cost of one repaired character.
const REPAIR_COST: f32 = 1.0;
/// A separator where the template has none. A line break is strong evidence
/// (the crop was split into two rows); a dash is structural (a car's comes
/// after the series, a motorbike's after the province); dots and spaces are
/// small and often invented by OCR.
const UNEXPECTED_LINE_COST: f32 = 2.0;
const UNEXPECTED_DASH_COST: f32 = 1.0;
const UNEXPECTED_DOT_OR_SPACE_COST: f32 = 0.5;
/// A separator where the template has one of another kind (`-` for ` `).
const WRONG_KIND_COST: f32 = 0.5;
/// A separator the template has but the OCR did not see. OCR often drops
/// separators, so this only counts when it reported some, and only a little.
const MISSING_BREAK_COST: f32 = 0.25;
/// A car series of a letter and a digit is rare, and its compact form is a
/// motorbike's: without a dash right after the series to confirm it, it
/// costs as much as contradicting two missing separators. (Measured on the
/// silver set's raw OCR strings: `59F1314.69`, a motorbike read without
/// its dash, must not become the car `59F1-314.69`.)
const UNCONFIRMED_CAR_LETTER_DIGIT_COST: f32 = 0.5;

/// The characters fitted to one template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fit {
    pub(crate) template: Template,
    /// The repaired letters and digits, as long as the template.
    pub(crate) text: String,
    pub(crate) repairs: Vec<Repair>,
    cost: f32,
}

impl Fit {
    pub(crate) fn to_plate(&self) -> Result<Plate, PlateError> {
        let number_start = 2 + self.template.series.len();
        let province_text = self.text.get(..2).unwrap_or("");
        let province = province_text
            .parse::<u8>()
            .map_err(|_| PlateError::UnknownProvince(0))?;
        let series = self.text.get(2..number_start).unwrap_or("");
        let number = self.text.get(number_start..).unwrap_or("");
        Plate::new(province, series, number, self.template.format)
    }
}

/// Why no template fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoFit {
    /// No plate has this many letters and digits.
    Length { text: String },
    /// The most likely template of the right length stops at a character
    /// that is the wrong kind and has no look-alike of the right kind.
    Blocked {
        text: String,
        pattern: String,
        position: usize,
        found: char,
        slot: Slot,
    },
}

impl fmt::Display for NoFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoFit::Length { text } => write!(
                f,
                "read {} letters and digits ({text:?}); a plate has {MIN_PLATE_LEN} (29A-1234) to {MAX_PLATE_LEN} (29-B1 234.56)",
                text.chars().count()
            ),
            NoFit::Blocked {
                text,
                pattern,
                position,
                found,
                slot,
            } => write!(
                f,
                "{text:?} fits no plate layout: as {pattern}, character {} is {found:?} where {slot} belongs",
                position + 1
            ),
        }
    }
}

/// Which templates a fit may use, when the layout is known from elsewhere (a
/// label set of one format, or the layout the reads of a vote agree on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layouts {
    All,
    Format(PlateFormat),
    /// A format and the series length: `29B1-1234` and `29B-112.34` share
    /// both characters and format, and only the series length tells them
    /// apart.
    FormatAndSeries(PlateFormat, usize),
}

impl Layouts {
    fn allow(self, template: Template) -> bool {
        match self {
            Layouts::All => true,
            Layouts::Format(format) => template.format == format,
            Layouts::FormatAndSeries(format, series_len) => {
                template.format == format && template.series.len() == series_len
            }
        }
    }
}

/// Fits `observed` to every allowed template of its length and returns the
/// cheapest fit, earlier templates winning ties.
pub(crate) fn best_fit(
    observed: &Observed,
    layouts: Layouts,
    repairs: Repairs,
) -> Result<Fit, NoFit> {
    let len = observed.chars.len();
    let mut best: Option<Fit> = None;
    let mut first_blocked: Option<NoFit> = None;
    let candidates = TEMPLATES
        .iter()
        .copied()
        .filter(|&t| t.len() == len && layouts.allow(t));
    for template in candidates {
        match fit(template, observed, repairs) {
            Ok(fit) => {
                if best.as_ref().is_none_or(|b| fit.cost < b.cost) {
                    best = Some(fit);
                }
            }
            Err(blocked) => {
                first_blocked.get_or_insert(blocked);
            }
        }
    }
    best.ok_or_else(|| {
        first_blocked.unwrap_or_else(|| NoFit::Length {
            text: observed.text(),
        })
    })
}

fn fit(template: Template, observed: &Observed, repairs: Repairs) -> Result<Fit, NoFit> {
    // A special code such as `QT` is taken as written: its `Q` is not an
    // ordinary series letter, and repairing it would invent a series.
    let raw_series: String = observed
        .chars
        .iter()
        .skip(2)
        .take(template.series.len())
        .map(|c| c.ch)
        .collect();
    let special_series = template.series == SeriesShape::LetterLetter
        && SpecialSeries::from_series(&raw_series).is_some();
    let series_positions = 2..2 + template.series.len();

    let mut text = String::with_capacity(template.len());
    let mut made: Vec<Repair> = Vec::new();
    for (position, observed_char) in observed.chars.iter().enumerate() {
        let found = observed_char.ch;
        let slot = template.slot(position);
        if slot.accepts(found) || (special_series && series_positions.contains(&position)) {
            text.push(found);
            continue;
        }
        match slot.repair(found).filter(|_| repairs == Repairs::Allowed) {
            Some(to) => {
                text.push(to);
                made.push(Repair {
                    position,
                    from: found,
                    to,
                });
            }
            None => {
                return Err(NoFit::Blocked {
                    text: observed.text(),
                    pattern: template.pattern(),
                    position,
                    found,
                    slot,
                })
            }
        }
    }
    let cost = REPAIR_COST * made.len() as f32 + layout_cost(template, observed);
    Ok(Fit {
        template,
        text,
        repairs: made,
        cost,
    })
}

/// How much the separators the OCR saw contradict `template`'s printed form.
fn layout_cost(template: Template, observed: &Observed) -> f32 {
    let any_seen = observed.has_any_break();
    let expected = template.expected_breaks();
    let separators: f32 = observed
        .chars
        .iter()
        .zip(expected)
        .skip(1)
        .map(|(seen, expected)| {
            let seen = seen.breaks_before;
            match (seen.is_empty(), expected.is_empty()) {
                (true, true) => 0.0,
                (false, true) if seen.intersects(Breaks::LINE) => UNEXPECTED_LINE_COST,
                (false, true) if seen.intersects(Breaks::DASH) => UNEXPECTED_DASH_COST,
                (false, true) => UNEXPECTED_DOT_OR_SPACE_COST,
                (true, false) if any_seen => MISSING_BREAK_COST,
                (true, false) => 0.0,
                (false, false) if seen.intersects(expected) => 0.0,
                (false, false) => WRONG_KIND_COST,
            }
        })
        .sum();
    let car_letter_digit =
        template.format == PlateFormat::CarOneLine && template.series == SeriesShape::LetterDigit;
    let dash_after_series = observed
        .chars
        .get(2 + template.series.len())
        .is_some_and(|c| c.breaks_before.intersects(Breaks::DASH));
    if car_letter_digit && !dash_after_series {
        separators + UNCONFIRMED_CAR_LETTER_DIGIT_COST
    } else {
        separators
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(text: &str) -> Observed {
        Observed::from_lines(&[OcrLine::uniform(text, 1.0)])
    }

    #[test]
    fn template_patterns_match_the_printed_forms() {
        let patterns: Vec<String> = TEMPLATES.iter().map(|t| t.pattern()).collect();
        assert_eq!(
            patterns,
            [
                "NNL-NNN.NN",
                "NNL-NNNN",
                "NNLL-NNN.NN",
                "NNLL-NNNN",
                "NN-LN NNN.NN",
                "NN-LN NNNN",
                "NN-LL NNN.NN",
                "NN-LL NNNN",
                "NNLN-NNN.NN",
                "NNLN-NNNN",
            ]
        );
    }

    #[test]
    fn every_template_length_is_within_the_documented_range() {
        for t in TEMPLATES {
            assert!((MIN_PLATE_LEN..=MAX_PLATE_LEN).contains(&t.len()), "{t:?}");
        }
    }

    #[test]
    fn repair_tables_only_map_into_the_right_kind() {
        for (from, to) in LETTER_TO_DIGIT {
            assert!(!Slot::Digit.accepts(from) && Slot::Digit.accepts(to));
        }
        for (from, to) in TO_SERIES_LETTER {
            assert!(!Slot::SeriesLetter.accepts(from) && Slot::SeriesLetter.accepts(to));
        }
    }

    #[test]
    fn separators_are_recorded_before_the_next_character() {
        let o = Observed::from_lines(&[
            OcrLine::uniform("29-B1", 1.0),
            OcrLine::uniform("234.56", 1.0),
        ]);
        let breaks: Vec<Breaks> = o.chars.iter().map(|c| c.breaks_before).collect();
        assert_eq!(breaks[0], Breaks::NONE);
        assert_eq!(breaks[2], Breaks::DASH);
        assert_eq!(breaks[4], Breaks::LINE);
        assert_eq!(breaks[7], Breaks::DOT);
        assert_eq!(o.text(), "29B123456");
    }

    #[test]
    fn a_leading_empty_line_is_not_a_break() {
        let o = Observed::from_lines(&[OcrLine::uniform("", 1.0), OcrLine::uniform("30A", 1.0)]);
        assert_eq!(o.chars[0].breaks_before, Breaks::NONE);
    }

    #[test]
    fn the_dash_after_a_letter_digit_series_makes_it_a_car() {
        let fit = best_fit(&observed("29B1-234.56"), Layouts::All, Repairs::Allowed).unwrap();
        assert_eq!(fit.template.format, PlateFormat::CarOneLine);
        let fit = best_fit(&observed("29B1 234.56"), Layouts::All, Repairs::Allowed).unwrap();
        assert_eq!(fit.template.format, PlateFormat::MotorbikeTwoLine);
    }

    #[test]
    fn a_motorbike_read_without_its_dash_is_not_a_car_letter_digit_series() {
        let fit = best_fit(&observed("59F1314.69"), Layouts::All, Repairs::Allowed).unwrap();
        assert_eq!(fit.template.format, PlateFormat::MotorbikeTwoLine);
    }

    #[test]
    fn a_dash_after_two_digits_outweighs_a_stray_dot() {
        // A motorbike whose bottom line lost a digit: "59-V2" over "38.15".
        let fit = best_fit(&observed("59-V238.15"), Layouts::All, Repairs::Allowed).unwrap();
        assert_eq!(fit.template.format, PlateFormat::MotorbikeTwoLine);
    }

    #[test]
    fn a_blocked_fit_names_the_character_and_the_layout() {
        let err = best_fit(&observed("30W12345"), Layouts::All, Repairs::Allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"30W12345\" fits no plate layout: as NNL-NNN.NN, character 3 is 'W' where a series letter (A-Z except I, O, Q, W) belongs"
        );
    }

    #[test]
    fn forbidden_repairs_leave_look_alikes_unfitted() {
        assert!(best_fit(&observed("3OA12345"), Layouts::All, Repairs::Forbidden).is_err());
        assert!(best_fit(&observed("3OA12345"), Layouts::All, Repairs::Allowed).is_ok());
    }
}
