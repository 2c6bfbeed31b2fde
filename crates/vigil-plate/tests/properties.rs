//! Properties that hold for every plate the grammar accepts and every input
//! the OCR can produce.

use proptest::prelude::*;
use proptest::sample::select;
use vigil_plate::{
    parse, parse_compact, parse_compact_as, vote, OcrLine, Plate, PlateFormat, PlateReading,
    Repair, ASSIGNED_PROVINCE_CODES,
};

/// Series letters: A-Z except I, O, Q, W.
fn series_letter() -> impl Strategy<Value = char> {
    select(
        ('A'..='Z')
            .filter(|c| !matches!(c, 'I' | 'O' | 'Q' | 'W'))
            .collect::<Vec<char>>(),
    )
}

fn digit() -> impl Strategy<Value = char> {
    (0..10u32).prop_map(|d| char::from_digit(d, 10).expect("0-9 is a digit"))
}

const SPECIAL_CODES: [&str; 6] = ["LD", "KT", "NG", "NN", "QT", "CV"];

fn two_letter_series() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (series_letter(), series_letter()).prop_map(|(a, b)| format!("{a}{b}")),
        1 => select(SPECIAL_CODES.to_vec()).prop_map(str::to_owned),
    ]
}

fn letter_digit_series() -> impl Strategy<Value = String> {
    (series_letter(), digit()).prop_map(|(a, d)| format!("{a}{d}"))
}

fn series_for(format: PlateFormat) -> BoxedStrategy<String> {
    match format {
        PlateFormat::CarOneLine => prop_oneof![
            4 => series_letter().prop_map(String::from),
            2 => two_letter_series(),
            1 => letter_digit_series(),
        ]
        .boxed(),
        PlateFormat::MotorbikeTwoLine => {
            prop_oneof![3 => letter_digit_series(), 1 => two_letter_series()].boxed()
        }
    }
}

/// Any plate the grammar accepts.
fn plate() -> impl Strategy<Value = Plate> {
    prop_oneof![
        Just(PlateFormat::CarOneLine),
        Just(PlateFormat::MotorbikeTwoLine)
    ]
    .prop_flat_map(|format| {
        (
            select(ASSIGNED_PROVINCE_CODES.to_vec()),
            series_for(format),
            prop::collection::vec(digit(), 4..=5),
            Just(format),
        )
    })
    .prop_map(|(province, series, number, format)| {
        let number: String = number.into_iter().collect();
        Plate::new(province, &series, &number, format).expect("generated plates are valid")
    })
}

/// Whether the compact form names only this plate. Three shapes share their
/// compact form with a more common plate (documented on `parse_compact`).
fn compact_is_unambiguous(p: &Plate) -> bool {
    let letter_digit = p.series.chars().nth(1).is_some_and(|c| c.is_ascii_digit());
    match p.format {
        PlateFormat::CarOneLine => !letter_digit,
        PlateFormat::MotorbikeTwoLine => letter_digit && p.number.len() == 5,
    }
}

/// The plate as the OCR would read a clean crop: one line for a car, two
/// for a motorbike.
fn clean_lines(p: &Plate) -> Vec<OcrLine> {
    let canonical = p.canonical();
    match p.format {
        PlateFormat::CarOneLine => vec![OcrLine::uniform(canonical, 1.0)],
        PlateFormat::MotorbikeTwoLine => canonical
            .split(' ')
            .map(|line| OcrLine::uniform(line, 1.0))
            .collect(),
    }
}

/// A structural check of the printed form, written independently of
/// `Plate::canonical`: `N` a digit, `L` an upper-case letter, anything else
/// itself.
fn has_printed_shape(s: &str) -> bool {
    const SHAPES: [&str; 10] = [
        "NNL-NNN.NN",
        "NNL-NNNN",
        "NNLL-NNN.NN",
        "NNLL-NNNN",
        "NNLN-NNN.NN",
        "NNLN-NNNN",
        "NN-LN NNN.NN",
        "NN-LN NNNN",
        "NN-LL NNN.NN",
        "NN-LL NNNN",
    ];
    let fits = |shape: &str| {
        shape.chars().count() == s.chars().count()
            && shape.chars().zip(s.chars()).all(|(want, got)| match want {
                'N' => got.is_ascii_digit(),
                'L' => got.is_ascii_uppercase(),
                literal => literal == got,
            })
    };
    let province_ok = s
        .get(..2)
        .and_then(|p| p.parse::<u8>().ok())
        .is_some_and(|p| ASSIGNED_PROVINCE_CODES.contains(&p));
    province_ok && SHAPES.iter().any(|shape| fits(shape))
}

fn is_series_letter(c: char) -> bool {
    c.is_ascii_uppercase() && !matches!(c, 'I' | 'O' | 'Q' | 'W')
}

/// Letters OCR confuses with each digit (the inverse of the repair table).
fn look_alikes(d: char) -> &'static [char] {
    match d {
        '0' => &['O', 'D', 'Q'],
        '1' => &['I', 'T'],
        '2' => &['Z'],
        '4' => &['A'],
        '5' => &['S'],
        '6' => &['G'],
        '8' => &['B'],
        _ => &[],
    }
}

/// Confidences that often tie exactly, so that tie-breaking is exercised.
fn confidence() -> impl Strategy<Value = f32> {
    prop_oneof![select(vec![0.0f32, 0.5, 0.9]), 0.0f32..=1.0]
}

/// A few reads of roughly one plate, as frames of one track give: the same
/// plate, a digit misread here and there, some unreadable.
fn reads_of_one_plate() -> impl Strategy<Value = Vec<PlateReading>> {
    (
        plate(),
        prop::collection::vec(
            (0..5usize, digit(), confidence(), prop::bool::weighted(0.2)),
            1..8,
        ),
    )
        .prop_map(|(plate, variants)| {
            variants
                .into_iter()
                .map(|(position, d, confidence, unreadable)| {
                    let mut variant = plate.clone();
                    let mut number: Vec<char> = variant.number.chars().collect();
                    if let Some(slot) = number.get_mut(position) {
                        *slot = d;
                    }
                    variant.number = number.into_iter().collect();
                    if unreadable {
                        PlateReading::Unreadable {
                            best_guess: variant.compact(),
                            confidence,
                            reason: "generated".to_owned(),
                        }
                    } else {
                        PlateReading::Read {
                            plate: variant,
                            confidence,
                            repairs: Vec::new(),
                        }
                    }
                })
                .collect()
        })
}

/// Text like an OCR's: a plate's printed form with characters swapped for
/// look-alikes and others at random, or plain noise.
fn ocr_like_text() -> impl Strategy<Value = String> {
    const CONFUSABLE: &str = "0123456789ABDGIOQSTZWKLM";
    let swapped = (
        plate(),
        prop::collection::vec(
            (
                prop::bool::weighted(0.3),
                select(CONFUSABLE.chars().collect::<Vec<char>>()),
            ),
            12,
        ),
    )
        .prop_map(|(plate, swaps)| {
            plate
                .canonical()
                .chars()
                .zip(swaps)
                .map(|(c, (swap, other))| {
                    if swap && c.is_ascii_alphanumeric() {
                        other
                    } else {
                        c
                    }
                })
                .collect::<String>()
        });
    prop_oneof![3 => swapped, 1 => "[0-9ABDGIOQSTZWKLM .-]{7,14}"]
}

fn any_reading() -> impl Strategy<Value = PlateReading> {
    prop_oneof![
        (
            plate(),
            confidence(),
            prop::collection::vec((0..9usize, series_letter(), digit()), 0..3)
        )
            .prop_map(|(plate, confidence, repairs)| PlateReading::Read {
                plate,
                confidence,
                repairs: repairs
                    .into_iter()
                    .map(|(position, from, to)| Repair { position, from, to })
                    .collect(),
            }),
        ("[0-9A-Z]{0,10}", confidence()).prop_map(|(best_guess, confidence)| {
            PlateReading::Unreadable {
                best_guess,
                confidence,
                reason: "generated".to_owned(),
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compact_round_trips_for_every_plate_it_names_unambiguously(p in plate()) {
        prop_assume!(compact_is_unambiguous(&p));
        prop_assert_eq!(parse_compact(&p.compact()), Some(p));
    }

    #[test]
    fn compact_round_trips_for_every_plate_when_the_format_is_given(p in plate()) {
        // Within the car format, 29B11234 is 29B-112.34, never 29B1-1234.
        let car_letter_digit_four = p.format == PlateFormat::CarOneLine
            && p.series.chars().nth(1).is_some_and(|c| c.is_ascii_digit())
            && p.number.len() == 4;
        prop_assume!(!car_letter_digit_four);
        prop_assert_eq!(parse_compact_as(&p.compact(), p.format), Some(p));
    }

    #[test]
    fn compact_keeps_the_characters_of_every_plate(p in plate()) {
        let parsed = parse_compact(&p.compact()).expect("a plate's compact form parses");
        prop_assert_eq!(parsed.compact(), p.compact());
    }

    #[test]
    fn the_canonical_form_round_trips_through_parse_compact(p in plate()) {
        prop_assert_eq!(parse_compact(&p.canonical()), Some(p));
    }

    #[test]
    fn clean_ocr_lines_parse_back_to_the_same_plate(p in plate()) {
        let expected = PlateReading::Read { plate: p.clone(), confidence: 1.0, repairs: Vec::new() };
        prop_assert_eq!(parse(&clean_lines(&p)), expected.clone());
        // A two-line plate read as one line is the same plate.
        prop_assert_eq!(parse(&[OcrLine::uniform(p.canonical(), 1.0)]), expected);
    }

    #[test]
    fn canonical_always_has_a_printed_plate_shape(p in plate()) {
        let canonical = p.canonical();
        prop_assert!(has_printed_shape(&canonical), "{}", canonical);
        let compact: String = canonical.chars().filter(char::is_ascii_alphanumeric).collect();
        prop_assert_eq!(compact, p.compact());
    }

    #[test]
    fn repair_never_changes_a_character_already_valid_for_its_position(
        text in ocr_like_text(),
        confidence in 0.0f32..=1.0,
    ) {
        let seen: Vec<char> = text.chars().filter(char::is_ascii_alphanumeric).collect();
        if let PlateReading::Read { plate, repairs, .. } = parse(&[OcrLine::uniform(&*text, confidence)]) {
            let result: Vec<char> = plate.compact().chars().collect();
            prop_assert_eq!(seen.len(), result.len());
            for (position, (&before, &after)) in seen.iter().zip(&result).enumerate() {
                let already_valid = (before.is_ascii_digit() && after.is_ascii_digit())
                    || (is_series_letter(before) && after.is_ascii_uppercase());
                if already_valid {
                    prop_assert_eq!(before, after, "position {} of {:?}", position, text);
                }
                let repair = repairs.iter().find(|r| r.position == position);
                match repair {
                    Some(r) => prop_assert_eq!((r.from, r.to), (before, after)),
                    None => prop_assert_eq!(before, after),
                }
            }
        }
    }

    #[test]
    fn look_alike_letters_in_digit_positions_are_repaired_back(
        p in plate(),
        picks in prop::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 9),
    ) {
        // Positions 0-1 and 4.. are digits in every layout, so replacing them
        // with look-alike letters cannot change which layout fits.
        let mut expected_repairs = Vec::new();
        let mut position = 0;
        let misread: String = p.canonical().chars().map(|c| {
            if !c.is_ascii_alphanumeric() {
                return c;
            }
            let here = position;
            position += 1;
            let (pick, which) = picks[here];
            let candidates = look_alikes(c);
            if pick && !(2..4).contains(&here) && !candidates.is_empty() {
                let letter = candidates[which.index(candidates.len())];
                expected_repairs.push(Repair { position: here, from: letter, to: c });
                letter
            } else {
                c
            }
        }).collect();
        let reading = parse(&[OcrLine::uniform(misread.as_str(), 1.0)]);
        let confidence = 0.9f32.powi(expected_repairs.len() as i32);
        prop_assert_eq!(
            reading,
            PlateReading::Read { plate: p, confidence, repairs: expected_repairs },
            "{}", misread
        );
    }

    #[test]
    fn parse_never_panics_and_an_unreadable_guess_is_upper_case_alphanumerics(
        lines in prop::collection::vec((".{0,14}", prop::collection::vec(any::<f32>(), 0..16)), 0..4),
    ) {
        let lines: Vec<OcrLine> = lines.into_iter().map(|(t, c)| OcrLine::new(t, c)).collect();
        let reading = parse(&lines);
        prop_assert!((0.0..=1.0).contains(&reading.confidence()), "{:?}", reading);
        if let PlateReading::Unreadable { best_guess, .. } = reading {
            prop_assert!(best_guess.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        }
    }

    #[test]
    fn a_vote_of_identical_reads_returns_that_read(
        read in any_reading(),
        copies in 1..6usize,
        k in 0..8usize,
    ) {
        let reads = vec![read.clone(); copies];
        prop_assert_eq!(vote(&reads, k), read);
    }

    #[test]
    fn a_vote_does_not_depend_on_the_order_of_the_reads(
        (reads, shuffled, k) in reads_of_one_plate().prop_flat_map(|reads| {
            let len = reads.len();
            (Just(reads.clone()), Just(reads).prop_shuffle(), 0..=len + 1)
        }),
    ) {
        prop_assert_eq!(vote(&reads, k), vote(&shuffled, k));
    }

    #[test]
    fn a_vote_of_mixed_reads_does_not_depend_on_their_order(
        (reads, shuffled, k) in prop::collection::vec(any_reading(), 1..8).prop_flat_map(|reads| {
            let len = reads.len();
            (Just(reads.clone()), Just(reads).prop_shuffle(), 0..=len + 1)
        }),
    ) {
        prop_assert_eq!(vote(&reads, k), vote(&shuffled, k));
    }

    #[test]
    fn a_vote_of_parsed_reads_is_always_a_plate(reads in reads_of_one_plate(), k in 1..8usize) {
        let any_read = reads.iter().any(|r| r.plate().is_some());
        let voted = vote(&reads, k);
        prop_assert!((0.0..=1.0).contains(&voted.confidence()), "{:?}", voted);
        if any_read {
            prop_assert!(voted.plate().is_some(), "{:?}", voted);
        }
    }
}
