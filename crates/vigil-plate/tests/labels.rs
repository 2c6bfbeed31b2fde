//! The project's hand-verified motorbike plate labels
//! (`eval/xemay-clean/labels.csv`, 194 real plates) all satisfy the grammar.
//!
//! Only the label text is compiled in; the images stay outside the project.

use vigil_plate::{parse_compact, parse_compact_as, PlateFormat};

const LABELS_CSV: &str = include_str!("../../../eval/xemay-clean/labels.csv");

fn labels() -> Vec<&'static str> {
    LABELS_CSV
        .lines()
        .skip(1)
        .filter_map(|row| row.split(',').nth(1))
        .map(str::trim)
        .filter(|label| !label.is_empty())
        .collect()
}

#[test]
fn every_verified_motorbike_label_is_a_motorbike_plate_with_the_same_characters() {
    let labels = labels();
    assert_eq!(labels.len(), 194);
    for label in labels {
        let plate = parse_compact_as(label, PlateFormat::MotorbikeTwoLine)
            .unwrap_or_else(|| panic!("{label} is not a motorbike plate"));
        assert_eq!(plate.compact(), label);
    }
}

#[test]
fn every_verified_motorbike_label_parses_without_a_format_too() {
    for label in labels() {
        let plate = parse_compact(label).unwrap_or_else(|| panic!("{label} does not parse"));
        assert_eq!(plate.compact(), label);
    }
}
