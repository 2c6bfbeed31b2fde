//! Combining the reads of one plate across frames.
//!
//! One crop can be blurred, glared or cut; the same plate over several frames
//! rarely is in the same way. A character-level vote lets each frame fix the
//! others' mistakes without trusting any one of them.

use std::cmp::Ordering;

use crate::grammar::{sanitize, Layouts, Observed};
use crate::plate::{Plate, PlateFormat};
use crate::reading::{parse_exact, read, OcrLine, PlateReading};

/// Votes the best `k` reads of one plate into one reading.
///
/// 1. Reads that parsed ([`PlateReading::Read`]) vote; unreadable guesses
///    vote only when no read parsed, because a guess the grammar rejected is
///    weaker evidence than any read it accepted.
/// 2. The `k` most confident of them take part (`k` = 0 counts as 1). Ties
///    are broken by content, so the result never depends on the order of
///    `reads`.
/// 3. Their compact forms (`30A12345`) vote on length first, each weighted
///    by its confidence; the reads of the winning length then vote on each
///    character and on the layout (format and series length, which the
///    compact form drops), weighted the same way. A tie goes to more
///    votes, then to the most confident read.
/// 4. The voted text is parsed again in the voted layout. If the vote
///    produced text the grammar rejects (mixing two plates' characters can),
///    the most confident read of the winning length stands instead, with
///    the vote's agreement with it as its confidence.
///
/// Confidence = agreement × the highest confidence among the reads of the
/// winning length, where agreement is the weight share of the winning length
/// times the mean, over positions, of the weight share of the character
/// chosen there. Unanimous reads therefore return the best of them
/// unchanged, and dissent lowers confidence in proportion to its weight.
/// The repairs reported are those of the most confident read that equals
/// the result (none if no single read does).
///
/// The result is unreadable only if nothing parses; it then carries the
/// voted guess.
pub fn vote(reads: &[PlateReading], k: usize) -> PlateReading {
    let k = k.max(1);
    let (mut readable, mut unreadable): (Vec<&PlateReading>, Vec<&PlateReading>) = reads
        .iter()
        .partition(|r| matches!(r, PlateReading::Read { .. }));
    if !readable.is_empty() {
        readable.sort_by(|a, b| rank(a, b));
        readable.truncate(k);
        return vote_readable(&readable);
    }
    if unreadable.is_empty() {
        return PlateReading::Unreadable {
            best_guess: String::new(),
            confidence: 0.0,
            reason: "no reads to vote on".to_owned(),
        };
    }
    unreadable.sort_by(|a, b| rank(a, b));
    unreadable.truncate(k);
    vote_unreadable(&unreadable)
}

/// Most confident first, then by content, so that sorting any permutation of
/// the same reads gives the same sequence.
fn rank(a: &PlateReading, b: &PlateReading) -> Ordering {
    let by_confidence = sanitize(b.confidence()).total_cmp(&sanitize(a.confidence()));
    let by_content = match (a, b) {
        (
            PlateReading::Read {
                plate: pa,
                repairs: ra,
                ..
            },
            PlateReading::Read {
                plate: pb,
                repairs: rb,
                ..
            },
        ) => plate_key(pa).cmp(&plate_key(pb)).then_with(|| ra.cmp(rb)),
        (
            PlateReading::Unreadable {
                best_guess: ga,
                reason: wa,
                ..
            },
            PlateReading::Unreadable {
                best_guess: gb,
                reason: wb,
                ..
            },
        ) => ga.cmp(gb).then_with(|| wa.cmp(wb)),
        (PlateReading::Read { .. }, PlateReading::Unreadable { .. }) => Ordering::Less,
        (PlateReading::Unreadable { .. }, PlateReading::Read { .. }) => Ordering::Greater,
    };
    by_confidence
        .then(by_content)
        // Distinguishes NaN from 0 and -0 from 0, which sanitize equates.
        .then_with(|| a.confidence().to_bits().cmp(&b.confidence().to_bits()))
}

fn plate_key(p: &Plate) -> impl Ord + '_ {
    (p.province, &p.series, &p.number, p.format, p.special)
}

/// One read's say in the vote.
struct Ballot<'a> {
    reading: &'a PlateReading,
    text: Vec<char>,
    /// Format and series length; `None` for an unreadable guess.
    layout: Option<(PlateFormat, usize)>,
    weight: f64,
}

impl<'a> Ballot<'a> {
    fn of(reading: &'a PlateReading) -> Ballot<'a> {
        let (text, layout) = match reading {
            PlateReading::Read { plate, .. } => (
                plate.compact(),
                Some((plate.format, plate.series.chars().count())),
            ),
            PlateReading::Unreadable { best_guess, .. } => (best_guess.clone(), None),
        };
        Ballot {
            reading,
            text: text.chars().collect(),
            layout,
            weight: f64::from(sanitize(reading.confidence())),
        }
    }
}

fn vote_readable(ranked: &[&PlateReading]) -> PlateReading {
    if let Some(unanimous) = unanimous(ranked, |r| r.plate()) {
        return unanimous.clone();
    }
    let ballots: Vec<Ballot> = ranked.iter().map(|r| Ballot::of(r)).collect();
    let Some(tally) = Tally::of(&ballots) else {
        return fallback_unreadable();
    };
    let voted: String = tally.text.iter().collect();
    let voted_observed = Observed::from_lines(&[OcrLine::uniform(voted.as_str(), 1.0)]);
    if let Some(plate) = parse_exact(&voted_observed, tally.layouts()) {
        let repairs = ballots
            .iter()
            .find_map(|b| match b.reading {
                PlateReading::Read {
                    plate: p, repairs, ..
                } if *p == plate => Some(repairs.clone()),
                _ => None,
            })
            .unwrap_or_default();
        return PlateReading::Read {
            plate,
            confidence: tally.confidence_of(&tally.text),
            repairs,
        };
    }
    // The per-character winners do not form a plate together: keep the most
    // confident read of the winning length, with the vote's agreement on it.
    match ballots.iter().find(|b| b.text.len() == tally.text.len()) {
        Some(Ballot {
            reading: PlateReading::Read { plate, repairs, .. },
            text,
            ..
        }) => PlateReading::Read {
            plate: plate.clone(),
            confidence: tally.confidence_of(text),
            repairs: repairs.clone(),
        },
        _ => fallback_unreadable(),
    }
}

fn vote_unreadable(ranked: &[&PlateReading]) -> PlateReading {
    if let Some(unanimous) = unanimous(ranked, |r| match r {
        PlateReading::Unreadable { best_guess, .. } => Some(best_guess),
        PlateReading::Read { .. } => None,
    }) {
        return unanimous.clone();
    }
    let ballots: Vec<Ballot> = ranked.iter().map(|r| Ballot::of(r)).collect();
    let Some(tally) = Tally::of(&ballots) else {
        return fallback_unreadable();
    };
    // Re-read the voted guess with the grammar's repairs: each position
    // carries the vote's confidence in it, so a plate that comes out has the
    // same confidence formula as any other read.
    let voted: String = tally.text.iter().collect();
    let confidences: Vec<f32> = (0..tally.text.len())
        .map(|i| tally.position_confidence(i))
        .collect();
    match read(&Observed::from_lines(&[OcrLine::new(
        voted.as_str(),
        confidences,
    )])) {
        read @ PlateReading::Read { .. } => read,
        PlateReading::Unreadable { reason, .. } => PlateReading::Unreadable {
            confidence: tally.confidence_of(&tally.text),
            best_guess: voted,
            reason: format!(
                "none of the {} reads voted on parsed, nor does their vote: {reason}",
                ranked.len()
            ),
        },
    }
}

/// The first (most confident) read, if every read has the same `key`.
fn unanimous<'a, K: PartialEq>(
    ranked: &[&'a PlateReading],
    key: impl Fn(&'a PlateReading) -> Option<K>,
) -> Option<&'a PlateReading> {
    let (first, rest) = ranked.split_first()?;
    let first_key = key(first)?;
    rest.iter()
        .all(|r| key(r).as_ref() == Some(&first_key))
        .then_some(*first)
}

fn fallback_unreadable() -> PlateReading {
    PlateReading::Unreadable {
        best_guess: String::new(),
        confidence: 0.0,
        reason: "no reads to vote on".to_owned(),
    }
}

/// How much weight one option (a length, a character, a layout) gathered.
#[derive(Debug, Clone, Copy)]
struct Support<K> {
    key: K,
    weight: f64,
    votes: usize,
    /// Rank of the most confident ballot for this option; unique per option,
    /// so it breaks every remaining tie.
    best_rank: usize,
}

/// Sums the votes `(option, weight, rank)`, in rank order so that the
/// floating-point sums are the same for any order of the input reads.
fn support<K: Copy + PartialEq>(
    votes: impl IntoIterator<Item = (K, f64, usize)>,
) -> Vec<Support<K>> {
    let mut options: Vec<Support<K>> = Vec::new();
    for (key, weight, rank) in votes {
        match options.iter_mut().find(|s| s.key == key) {
            Some(s) => {
                s.weight += weight;
                s.votes += 1;
                s.best_rank = s.best_rank.min(rank);
            }
            None => options.push(Support {
                key,
                weight,
                votes: 1,
                best_rank: rank,
            }),
        }
    }
    options
}

fn winner<K: Copy>(options: &[Support<K>]) -> Option<Support<K>> {
    options.iter().copied().max_by(|a, b| {
        a.weight
            .total_cmp(&b.weight)
            .then(a.votes.cmp(&b.votes))
            .then(b.best_rank.cmp(&a.best_rank))
    })
}

/// A share of the weight, or of the votes when every weight is 0.
fn share<K>(part: &Support<K>, total_weight: f64, total_votes: usize) -> f64 {
    if total_weight > 0.0 {
        part.weight / total_weight
    } else if total_votes > 0 {
        part.votes as f64 / total_votes as f64
    } else {
        0.0
    }
}

/// The outcome of one vote.
struct Tally {
    text: Vec<char>,
    layout: Option<(PlateFormat, usize)>,
    /// Weight share of the winning length among all ballots.
    length_agreement: f64,
    /// Per position, the support of each character among the ballots of the
    /// winning length.
    positions: Vec<Vec<Support<char>>>,
    group_weight: f64,
    group_votes: usize,
    /// The highest confidence among the ballots of the winning length.
    best_confidence: f64,
}

impl Tally {
    fn of(ballots: &[Ballot]) -> Option<Tally> {
        let lengths = support(
            ballots
                .iter()
                .enumerate()
                .map(|(rank, b)| (b.text.len(), b.weight, rank)),
        );
        let length = winner(&lengths)?;
        let total_weight: f64 = ballots.iter().map(|b| b.weight).sum();
        let length_agreement = share(&length, total_weight, ballots.len());

        let group: Vec<(usize, &Ballot)> = ballots
            .iter()
            .enumerate()
            .filter(|(_, b)| b.text.len() == length.key)
            .collect();
        let positions: Vec<Vec<Support<char>>> = (0..length.key)
            .map(|i| {
                support(
                    group
                        .iter()
                        .filter_map(|&(rank, b)| b.text.get(i).map(|&c| (c, b.weight, rank))),
                )
            })
            .collect();
        let text = positions
            .iter()
            .filter_map(|options| winner(options).map(|s| s.key))
            .collect();
        let layout = winner(&support(
            group.iter().map(|&(rank, b)| (b.layout, b.weight, rank)),
        ))?
        .key;
        let best_confidence = group.iter().map(|(_, b)| b.weight).fold(0.0, f64::max);
        Some(Tally {
            text,
            layout,
            length_agreement,
            positions,
            group_weight: length.weight,
            group_votes: length.votes,
            best_confidence,
        })
    }

    /// The templates the voted text may be parsed with.
    fn layouts(&self) -> Layouts {
        match self.layout {
            Some((format, series_len)) => Layouts::FormatAndSeries(format, series_len),
            None => Layouts::All,
        }
    }

    /// The weight share of `c` at `position` among the winning length.
    fn agreement_at(&self, position: usize, c: char) -> f64 {
        self.positions
            .get(position)
            .and_then(|options| options.iter().find(|s| s.key == c))
            .map_or(0.0, |s| share(s, self.group_weight, self.group_votes))
    }

    /// Confidence in the voted character at `position`, on the same scale as
    /// [`Tally::confidence_of`].
    fn position_confidence(&self, position: usize) -> f32 {
        let c = self.text.get(position).copied().unwrap_or(' ');
        (self.length_agreement * self.agreement_at(position, c) * self.best_confidence) as f32
    }

    /// Agreement with `text` times the best confidence (see [`vote`]).
    fn confidence_of(&self, text: &[char]) -> f32 {
        if text.len() != self.positions.len() {
            return 0.0;
        }
        let mean_agreement = if text.is_empty() {
            1.0
        } else {
            text.iter()
                .enumerate()
                .map(|(i, &c)| self.agreement_at(i, c))
                .sum::<f64>()
                / text.len() as f64
        };
        (self.length_agreement * mean_agreement * self.best_confidence) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn read(text: &str, confidence: f32) -> PlateReading {
        let reading = parse(&[OcrLine::uniform(text, confidence)]);
        assert!(
            reading.plate().is_some(),
            "{text} should parse: {reading:?}"
        );
        reading
    }

    fn unreadable(guess: &str, confidence: f32) -> PlateReading {
        PlateReading::Unreadable {
            best_guess: guess.to_owned(),
            confidence,
            reason: "test".to_owned(),
        }
    }

    fn canonical(reading: &PlateReading) -> String {
        reading
            .plate()
            .map(Plate::canonical)
            .unwrap_or_else(|| panic!("expected a plate, got {reading:?}"))
    }

    #[test]
    fn a_majority_corrects_a_single_misread_character() {
        let reads = [
            read("30A-123.45", 0.8),
            read("30A-128.45", 0.9),
            read("30A-123.45", 0.7),
        ];
        let voted = vote(&reads, 3);
        assert_eq!(canonical(&voted), "30A-123.45");
        // Agreement: 7 positions unanimous, one at 1.5 / 2.4; times 0.9.
        let expected = (7.0 + 1.5 / 2.4) / 8.0 * 0.9;
        assert!(
            (f64::from(voted.confidence()) - expected).abs() < 1e-6,
            "{voted:?}"
        );
    }

    #[test]
    fn one_confident_read_outweighs_two_doubtful_ones() {
        let reads = [
            read("30A-123.45", 0.3),
            read("30A-123.45", 0.3),
            read("30A-128.45", 0.9),
        ];
        assert_eq!(canonical(&vote(&reads, 3)), "30A-128.45");
    }

    #[test]
    fn the_length_is_voted_before_the_characters() {
        let reads = [
            read("29A-1234", 0.9),
            read("29A-123.45", 0.6),
            read("29A-123.46", 0.6),
        ];
        assert_eq!(canonical(&vote(&reads, 3)), "29A-123.45");
    }

    #[test]
    fn only_the_best_k_reads_vote() {
        let reads = [
            read("30A-123.45", 0.9),
            read("30A-999.99", 0.5),
            read("30A-999.99", 0.5),
        ];
        assert_eq!(canonical(&vote(&reads, 1)), "30A-123.45");
        assert_eq!(canonical(&vote(&reads, 3)), "30A-999.99");
    }

    #[test]
    fn k_zero_is_treated_as_one() {
        let reads = [read("30A-123.45", 0.9), read("30A-999.99", 0.5)];
        assert_eq!(vote(&reads, 0), reads[0]);
    }

    #[test]
    fn the_vote_keeps_the_format_the_reads_agree_on() {
        // Compact 29B11234 alone would be a car; the reads say motorbike.
        let reads = [
            parse(&[
                OcrLine::uniform("29-B1", 0.9),
                OcrLine::uniform("1234", 0.9),
            ]),
            parse(&[
                OcrLine::uniform("29-B1", 0.8),
                OcrLine::uniform("1284", 0.8),
            ]),
            parse(&[
                OcrLine::uniform("29-B1", 0.7),
                OcrLine::uniform("1234", 0.7),
            ]),
        ];
        assert_eq!(canonical(&vote(&reads, 3)), "29-B1 1234");
    }

    #[test]
    fn a_mix_that_is_no_plate_falls_back_to_the_best_read() {
        // The province digits vote 4 (0.9 against 0.6 + 0.6) and 2 (1.2
        // against 0.9): 42, which is unassigned.
        let reads = [
            read("41A-123.45", 0.9),
            read("32A-123.45", 0.6),
            read("12A-123.45", 0.6),
        ];
        let voted = vote(&reads, 3);
        assert_eq!(canonical(&voted), "41A-123.45");
        assert!(voted.confidence() < 0.9);
    }

    #[test]
    fn the_vote_keeps_a_car_series_of_letter_and_digit() {
        // 29B11234 with the car format alone would be 29B-112.34.
        let reads = [
            read("29B1-1234", 0.9),
            read("29B1-1284", 0.8),
            read("29B1-1234", 0.7),
        ];
        assert_eq!(canonical(&vote(&reads, 3)), "29B1-1234");
    }

    #[test]
    fn reads_that_parsed_win_over_unreadable_guesses() {
        let reads = [
            unreadable("42A12345", 1.0),
            unreadable("42A12345", 1.0),
            read("30A-123.45", 0.2),
        ];
        assert_eq!(vote(&reads, 3), reads[2]);
    }

    #[test]
    fn unreadable_guesses_are_voted_when_nothing_parsed() {
        let reads = [
            unreadable("30W12345", 0.6),
            unreadable("30AW2345", 0.5),
            unreadable("30A1W345", 0.5),
        ];
        let voted = vote(&reads, 3);
        assert_eq!(canonical(&voted), "30A-123.45");
        assert!(voted.confidence() > 0.0 && voted.confidence() < 0.6);
    }

    #[test]
    fn a_vote_of_unparseable_guesses_stays_unreadable_with_the_voted_guess() {
        let reads = [unreadable("42A12345", 0.6), unreadable("42A12346", 0.5)];
        match vote(&reads, 2) {
            PlateReading::Unreadable {
                best_guess, reason, ..
            } => {
                assert_eq!(best_guess, "42A12345");
                assert!(reason.contains("province code 42"), "{reason}");
            }
            other => panic!("expected unreadable, got {other:?}"),
        }
    }

    #[test]
    fn no_reads_vote_to_an_unreadable_with_zero_confidence() {
        let voted = vote(&[], 5);
        assert_eq!(voted.confidence(), 0.0);
        assert!(voted.plate().is_none());
    }

    #[test]
    fn repairs_come_from_the_best_read_equal_to_the_result() {
        let reads = [
            read("3OA-123.45", 0.9),
            read("30A-123.45", 0.8),
            read("30A-123.46", 0.1),
        ];
        match vote(&reads, 3) {
            PlateReading::Read { repairs, .. } => assert_eq!(repairs.len(), 1),
            other => panic!("expected a plate, got {other:?}"),
        }
    }
}
