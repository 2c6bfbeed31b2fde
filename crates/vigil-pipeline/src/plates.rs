//! Plates for events: each track's best vehicle crops are kept as it is
//! tracked; when the track commits a violation, the plate is located in
//! each crop (text detector), read (recogniser + grammar) and voted.
//!
//! Crops, not frames, are kept: a few vehicle crops per track cost tens of
//! kilobytes, where seconds of full frames per camera would cost hundreds
//! of megabytes on a small edge box.

use std::collections::BTreeMap;

use vigil_core::detection::BBox;
use vigil_core::image::RgbImage;
use vigil_infer::plate_reader::{plate_colour, PlateReader};
use vigil_infer::text_detector::{LocateConfig, TextDetector};
use vigil_infer::InferError;
use vigil_plate::{PlateColour, PlateReading};
use vigil_track::TrackView;

use crate::event::{PlateCandidate, PlateRead};

/// Crops kept per track (the largest boxes seen).
pub const CROPS_PER_TRACK: usize = 3;

/// A box smaller than this on either side holds no readable plate.
const MIN_CROP_PX: f32 = 24.0;

/// Nor does a box narrower than this: a plate spans at most about half its
/// vehicle's width (a motorbike's rear plate ~40%, a car's ~30%), and under
/// 24 px its 8-9 characters are under 3 px wide each, which no recogniser
/// reads. Such a track's event says "no plate crop" without spending the
/// text detector on it (~90 ms an event for Hanoi's 35-42 px motorbikes,
/// whose plates it never found).
const MIN_CROP_WIDTH_PX: f32 = 48.0;

/// The models that read plates.
pub struct PlateStage {
    pub text_detector: TextDetector,
    /// Where and at what scale the text detector searches a vehicle crop.
    pub locate: LocateConfig,
    pub reader: PlateReader,
    /// Reads that vote (the config's `plates.votes`).
    pub votes: usize,
}

impl PlateStage {
    /// Locates and reads the plate in each crop and votes over the reads;
    /// also returns the plate crop of the most confident read, on which the
    /// plate's colour class is measured. `None` when no crop showed any
    /// plate-shaped text.
    pub fn read(
        &mut self,
        crops: &[RgbImage],
    ) -> Result<(Option<PlateRead>, Option<RgbImage>), InferError> {
        let mut reads = Vec::new();
        let mut best: Option<(f32, RgbImage)> = None;
        // Where the last valid plate lay, and in a crop of what size: the
        // crops are one vehicle's, so the next search starts there.
        let mut seen: Option<(BBox, u32, u32)> = None;
        for vehicle in crops {
            let found = match &seen {
                Some((region, w, h)) => self.reader.read_in_vehicle_near(
                    &mut self.text_detector,
                    vehicle,
                    &self.locate,
                    &rescaled(region, (*w, *h), (vehicle.width, vehicle.height)),
                )?,
                None => {
                    self.reader
                        .read_in_vehicle(&mut self.text_detector, vehicle, &self.locate)?
                }
            };
            let Some(found) = found else {
                continue;
            };
            if found.reading.plate().is_some() {
                seen = Some((found.region, vehicle.width, vehicle.height));
            }
            let reading = found.reading;
            if best.as_ref().is_none_or(|(c, _)| reading.confidence() > *c) {
                best = Some((reading.confidence(), found.crop));
            }
            reads.push(reading);
        }
        if reads.is_empty() {
            return Ok((None, None));
        }
        let voted = vigil_plate::vote(&reads, self.votes);
        let colour = best
            .as_ref()
            .map(|(_, crop)| plate_colour(crop))
            .filter(|c| *c != PlateColour::Unknown);
        let candidates: Vec<PlateCandidate> = reads
            .iter()
            .map(|r| match r {
                PlateReading::Read {
                    plate, confidence, ..
                } => PlateCandidate {
                    text: plate.canonical(),
                    confidence: *confidence,
                    valid: true,
                },
                PlateReading::Unreadable {
                    best_guess,
                    confidence,
                    ..
                } => PlateCandidate {
                    text: best_guess.clone(),
                    confidence: *confidence,
                    valid: false,
                },
            })
            .collect();
        let read = match &voted {
            PlateReading::Read {
                plate, confidence, ..
            } => PlateRead {
                text: plate.canonical(),
                confidence: *confidence,
                valid: true,
                reads: reads.len(),
                colour,
                candidates: candidates.clone(),
            },
            PlateReading::Unreadable {
                best_guess,
                confidence,
                ..
            } => PlateRead {
                text: best_guess.clone(),
                confidence: *confidence,
                valid: false,
                reads: reads.len(),
                colour,
                candidates,
            },
        };
        Ok((Some(read), best.map(|(_, crop)| crop)))
    }
}

/// `region` of a crop of size `from`, at the same place in a crop of size
/// `to` (another crop of the same vehicle's box).
pub fn rescaled(region: &BBox, from: (u32, u32), to: (u32, u32)) -> BBox {
    let sx = to.0 as f32 / from.0.max(1) as f32;
    let sy = to.1 as f32 / from.1.max(1) as f32;
    BBox {
        x1: region.x1 * sx,
        y1: region.y1 * sy,
        x2: region.x2 * sx,
        y2: region.y2 * sy,
    }
}

/// Each live track's largest vehicle crops so far.
#[derive(Debug, Default)]
pub struct BestCrops {
    tracks: BTreeMap<u64, Vec<(f32, RgbImage)>>,
}

impl BestCrops {
    /// Offers this frame's matched tracks; forgets tracks that are gone.
    pub fn update(&mut self, frame: &RgbImage, tracks: &[TrackView]) {
        self.tracks
            .retain(|id, _| tracks.iter().any(|t| t.id == *id));
        for t in tracks.iter().filter(|t| t.matched) {
            let b = t.bbox;
            if b.width() < MIN_CROP_WIDTH_PX || b.height() < MIN_CROP_PX {
                continue;
            }
            let area = b.width() * b.height();
            let kept = self.tracks.entry(t.id).or_default();
            if kept.len() >= CROPS_PER_TRACK && kept.iter().all(|(a, _)| *a >= area) {
                continue;
            }
            let Some(crop) = frame.crop_bbox(&b) else {
                continue;
            };
            kept.push((area, crop));
            kept.sort_by(|a, b| b.0.total_cmp(&a.0));
            kept.truncate(CROPS_PER_TRACK);
        }
    }

    /// The kept crops of a track, largest first.
    pub fn of(&self, track_id: u64) -> Vec<RgbImage> {
        self.tracks
            .get(&track_id)
            .map(|v| v.iter().map(|(_, c)| c.clone()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::detection::DetectionClass;
    use vigil_core::RoadUserClass;
    use vigil_track::TrackState;

    #[test]
    fn a_plate_region_keeps_its_place_in_a_crop_of_another_size() {
        let region = BBox {
            x1: 40.0,
            y1: 150.0,
            x2: 100.0,
            y2: 165.0,
        };
        let same = rescaled(&region, (200, 200), (200, 200));
        assert_eq!(same, region);
        let bigger = rescaled(&region, (200, 200), (300, 250));
        assert_eq!(
            bigger,
            BBox {
                x1: 60.0,
                y1: 187.5,
                x2: 150.0,
                y2: 206.25,
            }
        );
        // An empty crop does not divide by zero.
        assert!(rescaled(&region, (0, 0), (10, 10)).x2.is_finite());
    }

    fn track(id: u64, w: f32, matched: bool) -> TrackView {
        TrackView {
            id,
            class: DetectionClass::RoadUser(RoadUserClass::Car),
            state: TrackState::Confirmed,
            bbox: BBox {
                x1: 10.0,
                y1: 10.0,
                x2: 10.0 + w,
                y2: 10.0 + w,
            },
            matched,
            velocity: (0.0, 0.0),
        }
    }

    #[test]
    fn the_largest_crops_are_kept_and_gone_tracks_forgotten() {
        let frame = RgbImage::from_raw(200, 200, vec![0; 200 * 200 * 3]).expect("frame");
        let mut crops = BestCrops::default();
        for w in [30.0, 80.0, 50.0, 40.0, 90.0, 10.0] {
            crops.update(&frame, &[track(1, w, true), track(2, 60.0, false)]);
        }
        let widths: Vec<u32> = crops.of(1).iter().map(|c| c.width).collect();
        assert_eq!(widths, [90, 80, 50]);
        assert!(
            crops.of(2).is_empty(),
            "unmatched boxes are predictions, not views"
        );
        crops.update(&frame, &[track(2, 60.0, true)]);
        assert!(crops.of(1).is_empty(), "track 1 is gone");
        // Too narrow for a legible plate: nothing to read later.
        crops.update(&frame, &[track(3, 40.0, true), track(4, 48.0, true)]);
        assert!(
            crops.of(3).is_empty(),
            "a 40 px box holds no readable plate"
        );
        assert_eq!(crops.of(4).len(), 1);
    }
}
