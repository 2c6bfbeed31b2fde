//! Which lamp of a traffic signal head is lit, from a crop of the head.
//!
//! Pure colour-and-geometry, no model: a crop of a signal head (RGB8, any
//! size) becomes Red, Amber, Green or Unknown with a confidence.
//!
//! # Method
//!
//! 1. **Pixel votes.** Each pixel whose chroma `c = (max - min) / 255` is
//!    above [`LampClassifier::min_chroma`] votes for the colour band its hue
//!    falls in, with weight `c² · v` (`v = max / 255`). Squaring the chroma
//!    lets the strongly coloured halo of a lit lamp outvote large, faintly
//!    tinted backgrounds (brown poles, reddish walls, pale sky); the `v` factor
//!    favours lit glass over dark unlit lenses. The white, clipped core of a lit
//!    lamp has no chroma and casts no vote: its coloured rim does. Sky blue
//!    (hue ~205–225°) falls between the green and red bands and votes for
//!    nothing.
//! 2. **Lamp localisation.** For each colour, the votes are summed in a square
//!    window about the size of one lamp (a fraction of the crop's short side),
//!    slid over the crop (integral images); the best window, its votes
//!    weighted by the position prior of step 3, is that colour's lamp.
//!    Scattered votes (noise, background) never fill a window the way a lamp
//!    does, and a red countdown or sign low in the crop does not displace the
//!    red lamp on top.
//! 3. **Position.** In a vertical head (taller than wide) red is on top, amber
//!    in the middle, green at the bottom. The lamp's height is the centroid of
//!    the votes in its window, and each colour's evidence is multiplied by a
//!    prior that halves it one slot away from where that colour belongs (a
//!    red lamp *above* the red slot, or a green one below the green slot, is
//!    not penalised: the crop is just cut tight). Only a prior, because many
//!    crops are partial (one or two lamps visible) and put a red lamp in the
//!    middle. Horizontal crops get no position prior: their lamp order
//!    differs between countries.
//! 4. **Exposure.** In washed-out crops (bright sky, glare) every colour is
//!    squeezed toward white and a lit lamp shows only a faint tint. The
//!    evidence is divided by `(1 - median brightness)²`, so the same faint tint
//!    counts for more in a bright crop than in a dark one, where a faint tint
//!    is just an unlit lens or clutter.
//! 5. **Unknown** whenever the evidence is too weak (dark head, nothing lit),
//!    two colours are nearly tied, the reading is not confident, or a weak
//!    reading sits in the wrong slot of the head (a dim "red" in the middle
//!    slot was, in the data, always an amber the camera rendered pinkish). In
//!    enforcement an unknown phase is never a violation, so the thresholds
//!    prefer Unknown over a guess.
//!
//! On the 1,187 labelled real crops in `shared/data/traffic-lights` this reads
//! 1,176 correctly (99.07 %, Unknown counted as wrong) and gives a wrong colour
//! on none: the 11 others are Unknown (heads with no visibly lit lamp, white
//! blooms with no colour left, dim ambers that look pinkish, arrows barely
//! different from a sky-blue housing). On the signal head of the Hanoi clip
//! it reads green, then Unknown through the unlit gap, then red. Cost is
//! linear in the pixel count: tens of microseconds for a 30x60 crop.

use vigil_core::image::RgbImage;

/// The phase a signal head shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LampState {
    Red,
    Amber,
    Green,
    /// No lamp is visibly lit, or the evidence is ambiguous.
    Unknown,
}

impl LampState {
    /// The colour for an index into [`LampReading::scores`].
    fn from_index(i: usize) -> Self {
        match i {
            0 => LampState::Red,
            1 => LampState::Amber,
            2 => LampState::Green,
            _ => LampState::Unknown,
        }
    }
}

/// One classification of a crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampReading {
    pub state: LampState,
    /// How sure the reading is, in `0..=1`: the winner's score times its
    /// separation from the runner-up. At most 0.2 for Unknown.
    pub confidence: f32,
    /// Red, amber and green evidence, each squashed to `0..1`
    /// (`e / (e + half_strength)` of the exposure- and position-weighted
    /// evidence `e`); useful for logging and for smoothing over frames.
    pub scores: [f32; 3],
}

impl LampReading {
    fn unknown(confidence: f32, scores: [f32; 3]) -> Self {
        LampReading {
            state: LampState::Unknown,
            confidence: confidence.clamp(0.0, MAX_UNKNOWN_CONFIDENCE),
            scores,
        }
    }
}

/// Unknown readings never report more confidence than this.
const MAX_UNKNOWN_CONFIDENCE: f32 = 0.2;

/// Index of each colour in the score arrays.
const RED: usize = 0;
const AMBER: usize = 1;
const GREEN: usize = 2;

/// The tuned lamp-state classifier; [`Default`] holds the tuned values.
///
/// All fractions are of the crop; hues are in degrees (0 = red, 120 = green,
/// 240 = blue).
#[derive(Debug, Clone, PartialEq)]
pub struct LampClassifier {
    /// Pixels with less chroma than this (`(max - min) / 255`) cast no vote:
    /// grey housings and JPEG noise. Kept low (0.03) because lamps in
    /// washed-out crops show only ~0.06 of chroma.
    pub min_chroma: f32,
    /// Red band is `[red_hue_from, 360) ∪ [0, red_hue_to)`. Lit red lamps in
    /// the data sit at 330–10°, and pinkish-violet where a red arrow is
    /// blended with a blue housing: hence the band starts at 300°.
    pub red_hue_from: f32,
    /// Red/amber boundary: lit reds rarely exceed 15°, ambers start around
    /// 15–20° (their orange rims) and peak at 25–45°.
    pub red_hue_to: f32,
    /// Amber band is `[red_hue_to, amber_hue_to)`.
    pub amber_hue_to: f32,
    /// Green band is `[green_hue_from, green_hue_to)`: signal greens are
    /// blue-green (cyan), 160–195°. The band stops at 200° because sky and
    /// blue-painted housings sit at 205–225°.
    pub green_hue_from: f32,
    pub green_hue_to: f32,
    /// Side of the square lamp window, as a fraction of the crop's short side
    /// (a lamp is roughly 0.6–0.8 of a head's width).
    pub window_frac: f32,
    /// Expected vertical centre of the red, amber and green lamp (fraction of
    /// the height, 0 = top) in a vertical head.
    pub slot_centres: [f32; 3],
    /// Position prior: a colour's evidence is multiplied by
    /// `max(position_floor, 1 - position_weight * d)`, `d` the (one-sided for
    /// red and green) distance from its slot: 2.0 halves the evidence of a
    /// lamp one slot (0.25) away. Accuracy is flat for 1–3.
    pub position_weight: f32,
    pub position_floor: f32,
    /// Evidence is divided by `max(exposure_floor, 1 - median v)²`; the floor
    /// caps the boost for all-white crops.
    pub exposure_floor: f32,
    /// Below this exposure-normalised evidence no lamp counts as lit. Every
    /// correct reading in the data has at least 0.0012; the Hanoi head with
    /// no lamp lit (unlit, dark-red lenses; riders in red around it) at most
    /// 0.0005.
    pub min_evidence: f32,
    /// The winning colour must beat the runner-up by this factor, or the
    /// reading is ambiguous (two lamps lit, or two heads in the crop). Every
    /// correct reading in the data wins by at least 1.5.
    pub min_ratio: f32,
    /// A lamp further than this from its colour's slot (vertical heads; the
    /// same one-sided distance as the prior) is "off-slot" and needs
    /// [`Self::off_slot_min_evidence`]. Partial crops put red lamps in the
    /// middle, but brightly lit.
    pub off_slot_distance: f32,
    /// Evidence an off-slot reading needs: the 10 correct off-slot readings in
    /// the data (partial red crops) have at least 0.15, the 3 it refuses (dim
    /// ambers that would read red) at most 0.03.
    pub off_slot_min_evidence: f32,
    /// Evidence at which a colour's score reaches 0.5.
    pub half_strength: f32,
    /// Readings less confident than this are Unknown. Confidence is the
    /// winner's score times its separation from the runner-up
    /// (`1 - runner_up / winner`), so this refuses weak *and* contested
    /// readings, e.g. a pale crop whose only "colour" is JPEG-noise tint.
    /// The least confident correct reading in the data has 0.10.
    pub min_confidence: f32,
}

impl Default for LampClassifier {
    fn default() -> Self {
        LampClassifier {
            min_chroma: 0.03,
            red_hue_from: 300.0,
            red_hue_to: 15.0,
            amber_hue_to: 70.0,
            green_hue_from: 150.0,
            green_hue_to: 200.0,
            window_frac: 0.6,
            slot_centres: [0.25, 0.5, 0.75],
            position_weight: 2.0,
            position_floor: 0.3,
            exposure_floor: 0.05,
            min_evidence: 0.001,
            min_ratio: 1.1,
            off_slot_distance: 0.15,
            off_slot_min_evidence: 0.1,
            half_strength: 0.01,
            min_confidence: 0.06,
        }
    }
}

impl LampClassifier {
    /// Classifies a crop of one signal head. Never panics: empty, tiny or
    /// malformed images (data shorter than `width * height * 3`) are Unknown.
    pub fn classify(&self, crop: &RgbImage) -> LampReading {
        let (w, h) = (crop.width as usize, crop.height as usize);
        let Some(n) = w.checked_mul(h).filter(|&n| n > 0) else {
            return LampReading::unknown(0.0, [0.0; 3]);
        };
        let Some(pixels) = n.checked_mul(3).and_then(|len| crop.data.get(..len)) else {
            return LampReading::unknown(0.0, [0.0; 3]);
        };

        // Big crops (a whole frame passed by mistake) are read on a coarser
        // grid, bounding time and memory; a lamp spans many grid cells still.
        let step = sample_step(n);
        let (w_full, w, h) = (w, w.div_ceil(step), h.div_ceil(step));
        let n = w * h;

        // Integral images, (w + 1) x (h + 1), of the three colour votes
        // (channels 0..3) and of the votes times the row's centre y (3..6, for
        // the lamp's centroid); and a histogram of brightness for the median.
        let stride = w + 1;
        let mut integral = vec![[0.0f64; 6]; stride * (h + 1)];
        let mut brightness = [0u32; 256];
        for (y, row) in pixels.chunks_exact(w_full * 3).step_by(step).enumerate() {
            let yc = y as f64 + 0.5;
            let mut run = [0.0f64; 6];
            for (x, px) in row.chunks_exact(3).step_by(step).enumerate() {
                let (r, g, b) = (px[0], px[1], px[2]);
                brightness[usize::from(r.max(g).max(b))] += 1;
                if let Some((band, vote)) = self.vote(r, g, b) {
                    run[band] += f64::from(vote);
                    run[band + 3] += f64::from(vote) * yc;
                }
                let above = integral[y * stride + x + 1];
                let mut cell = [0.0f64; 6];
                for ((c, a), r) in cell.iter_mut().zip(above).zip(run) {
                    *c = a + r;
                }
                integral[(y + 1) * stride + x + 1] = cell;
            }
        }

        // Best lamp-sized window per colour: the one with the most votes once
        // weighted by the position prior, so that a red countdown digit or
        // sign lower in the crop does not displace the red lamp on top. The
        // lamp's height is the vote-weighted centroid inside its window, not
        // the window's centre, which clipping at the crop's edges would pull
        // inwards.
        let vertical = h >= w;
        let side = ((self.window_frac * w.min(h) as f32).round() as usize).clamp(1, w.min(h));
        let half = side / 2;
        let mut best = [0.0f64; 3];
        let mut position = [0.5f32; 3];
        for y in 0..h {
            let (y0, y1) = (y.saturating_sub(half), (y + side - half).min(h));
            for x in 0..w {
                let (x0, x1) = (x.saturating_sub(half), (x + side - half).min(w));
                let (a, b) = (integral[y0 * stride + x0], integral[y0 * stride + x1]);
                let (c, d) = (integral[y1 * stride + x0], integral[y1 * stride + x1]);
                for band in 0..3 {
                    let sum = d[band] - b[band] - c[band] + a[band];
                    // The prior is at most 1: a window with fewer votes than
                    // the best so far cannot win (and skips the division).
                    if sum <= best[band] {
                        continue;
                    }
                    let moment = d[band + 3] - b[band + 3] - c[band + 3] + a[band + 3];
                    let centroid = (moment / sum / h as f64) as f32;
                    let weighted = sum * f64::from(self.prior(vertical, band, centroid));
                    if weighted > best[band] {
                        best[band] = weighted;
                        position[band] = centroid;
                    }
                }
            }
        }

        // Exposure: the median brightness of the crop.
        let median_v = {
            let mut seen = 0usize;
            let mut median = 255usize;
            for (v, &count) in brightness.iter().enumerate() {
                seen += count as usize;
                if 2 * seen >= n {
                    median = v;
                    break;
                }
            }
            median as f32 / 255.0
        };
        // (Never zero, even with a zero floor: evidence stays finite.)
        let exposure = (1.0 - median_v).max(self.exposure_floor).max(1e-3).powi(2);
        let area = (side * side) as f32;
        let evidence = best.map(|b| b as f32 / area / exposure);
        let scores = evidence.map(|e| {
            let e = if e.is_finite() { e.max(0.0) } else { 0.0 };
            e / (e + self.half_strength)
        });

        let mut order = [RED, AMBER, GREEN];
        order.sort_by(|&i, &j| evidence[j].total_cmp(&evidence[i]));
        let (top, runner_up) = (order[0], order[1]);
        let (e_top, e_second) = (evidence[top], evidence[runner_up]);
        // Separation 1 when the runner-up has nothing, 0 on a tie.
        let separation = if e_top > 0.0 {
            (1.0 - e_second / e_top).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let confidence = scores[top] * separation;

        if e_top.is_nan() || e_top < self.min_evidence {
            // Nothing lit (also catches NaN from degenerate parameters).
            return LampReading::unknown(confidence, scores);
        }
        if e_top < self.min_ratio * e_second {
            return LampReading::unknown(confidence, scores);
        }
        let off_slot = vertical && self.slot_distance(top, position[top]) > self.off_slot_distance;
        if off_slot && e_top < self.off_slot_min_evidence {
            return LampReading::unknown(confidence, scores);
        }
        if confidence < self.min_confidence {
            return LampReading::unknown(confidence, scores);
        }
        LampReading {
            state: LampState::from_index(top),
            confidence: confidence.clamp(0.0, 1.0),
            scores,
        }
    }

    /// The position prior of `band` for a lamp at height `y` (1 in
    /// horizontal crops).
    fn prior(&self, vertical: bool, band: usize, y: f32) -> f32 {
        if !vertical {
            return 1.0;
        }
        let off = self.slot_distance(band, y);
        (1.0 - self.position_weight * off).max(self.position_floor)
    }

    /// How far a lamp at height `y` (fraction, 0 = top) is from the slot of
    /// `band`. One-sided for red and green: a red lamp above its slot or a
    /// green one below it is just a crop cut tight at the lamp.
    fn slot_distance(&self, band: usize, y: f32) -> f32 {
        let d = y - self.slot_centres[band];
        match band {
            RED => d.max(0.0),
            GREEN => (-d).max(0.0),
            _ => d.abs(),
        }
    }

    /// The colour band a pixel votes for and the weight of its vote
    /// (`c² · v`), or `None` for greys and off-band hues (blue, purple,
    /// yellow-green).
    fn vote(&self, r: u8, g: u8, b: u8) -> Option<(usize, f32)> {
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        let chroma = f32::from(max - min) / 255.0;
        if chroma <= self.min_chroma || max == min {
            return None;
        }
        let hue = hue_degrees(r, g, b, max, min);
        let band = if hue >= self.red_hue_from || hue < self.red_hue_to {
            RED
        } else if hue < self.amber_hue_to {
            AMBER
        } else if hue >= self.green_hue_from && hue < self.green_hue_to {
            GREEN
        } else {
            return None;
        };
        let value = f32::from(max) / 255.0;
        Some((band, chroma * chroma * value))
    }
}

/// Crops above this many pixels are sampled on a coarser grid (signal-head
/// crops are a few thousand pixels; this is about 100x330).
const MAX_PIXELS: usize = 32_768;

/// The sampling step that brings `n` pixels down to at most [`MAX_PIXELS`].
fn sample_step(n: usize) -> usize {
    let mut step = 1;
    while n / (step * step) > MAX_PIXELS {
        step += 1;
    }
    step
}

/// HSV hue in `[0, 360)` of a pixel with `max > min`.
fn hue_degrees(r: u8, g: u8, b: u8, max: u8, min: u8) -> f32 {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let d = f32::from(max - min);
    let sector = if f32::from(max) == r {
        ((g - b) / d).rem_euclid(6.0)
    } else if f32::from(max) == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    (sector * 60.0).rem_euclid(360.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUSING: [u8; 3] = [38, 40, 42];
    const RED_LIT: [u8; 3] = [250, 40, 60];
    const AMBER_LIT: [u8; 3] = [255, 160, 20];
    const GREEN_LIT: [u8; 3] = [20, 230, 190];
    const UNLIT: [u8; 3] = [55, 50, 50];

    /// A 20x60 vertical head on `background`, three lamps of radius 7 at
    /// heights 10, 30 and 50, each drawn in its colour; lit lamps get a
    /// white, clipped core like real ones.
    fn head(background: [u8; 3], lamps: [[u8; 3]; 3]) -> RgbImage {
        let (w, h) = (20u32, 60u32);
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let mut px = if (2..18).contains(&x) {
                    HOUSING
                } else {
                    background
                };
                for (slot, colour) in lamps.iter().enumerate() {
                    let (cx, cy) = (10.0f32, 10.0 + 20.0 * slot as f32);
                    let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                    if d <= 7.0 {
                        px = *colour;
                        if d <= 2.5 && *colour != UNLIT {
                            px = [255, 250, 245];
                        }
                    }
                }
                data.extend_from_slice(&px);
            }
        }
        RgbImage::from_raw(w, h, data).expect("sizes match")
    }

    fn solid(w: u32, h: u32, colour: [u8; 3]) -> RgbImage {
        let data = colour.repeat((w * h) as usize);
        RgbImage::from_raw(w, h, data).expect("sizes match")
    }

    fn classify(img: &RgbImage) -> LampReading {
        LampClassifier::default().classify(img)
    }

    #[test]
    fn lit_red_on_top_is_red() {
        let r = classify(&head(HOUSING, [RED_LIT, UNLIT, UNLIT]));
        assert_eq!(r.state, LampState::Red, "{r:?}");
        assert!(r.confidence > 0.8, "{r:?}");
        assert!(r.scores[RED] > r.scores[GREEN] && r.scores[RED] > r.scores[AMBER]);
    }

    #[test]
    fn lit_amber_in_the_middle_is_amber() {
        let r = classify(&head(HOUSING, [UNLIT, AMBER_LIT, UNLIT]));
        assert_eq!(r.state, LampState::Amber, "{r:?}");
        assert!(r.confidence > 0.8, "{r:?}");
    }

    #[test]
    fn lit_green_at_the_bottom_is_green() {
        let r = classify(&head(HOUSING, [UNLIT, UNLIT, GREEN_LIT]));
        assert_eq!(r.state, LampState::Green, "{r:?}");
        assert!(r.confidence > 0.8, "{r:?}");
    }

    #[test]
    fn green_against_blue_sky_is_still_green() {
        let r = classify(&head([140, 180, 225], [UNLIT, UNLIT, GREEN_LIT]));
        assert_eq!(r.state, LampState::Green, "{r:?}");
    }

    #[test]
    fn dark_head_with_nothing_lit_is_unknown() {
        let r = classify(&head(HOUSING, [UNLIT, UNLIT, UNLIT]));
        assert_eq!(r.state, LampState::Unknown, "{r:?}");
        assert!(r.confidence < 0.25, "{r:?}");
    }

    #[test]
    fn all_black_and_all_white_crops_are_unknown() {
        for colour in [[0, 0, 0], [255, 255, 255], [128, 128, 128]] {
            let r = classify(&solid(24, 60, colour));
            assert_eq!(r.state, LampState::Unknown, "{colour:?}: {r:?}");
            assert_eq!(r.confidence, 0.0);
        }
    }

    #[test]
    fn empty_tiny_and_malformed_images_are_unknown_without_panicking() {
        let empty = RgbImage {
            width: 0,
            height: 0,
            data: Vec::new(),
        };
        assert_eq!(classify(&empty).state, LampState::Unknown);
        let zero_wide = RgbImage {
            width: 0,
            height: 5,
            data: Vec::new(),
        };
        assert_eq!(classify(&zero_wide).state, LampState::Unknown);
        // Data shorter than width * height * 3.
        let short = RgbImage {
            width: 10,
            height: 10,
            data: vec![200; 17],
        };
        assert_eq!(classify(&short).state, LampState::Unknown);
        // Sizes whose product overflows.
        let huge = RgbImage {
            width: u32::MAX,
            height: u32::MAX,
            data: vec![0; 3],
        };
        assert_eq!(classify(&huge).state, LampState::Unknown);
        // Tiny images: any answer, no panic.
        for (w, h) in [(1, 1), (1, 2), (2, 1), (1, 7), (3, 3)] {
            let r = classify(&solid(w, h, RED_LIT));
            assert!((0.0..=1.0).contains(&r.confidence), "{w}x{h}: {r:?}");
        }
        assert_eq!(classify(&solid(1, 1, [0, 0, 0])).state, LampState::Unknown);
    }

    #[test]
    fn two_lamps_equally_lit_is_ambiguous() {
        // A red lamp at the top and a green one at the bottom, equally far
        // from their slots: physically impossible, so do not pick one.
        let r = classify(&head(HOUSING, [RED_LIT, UNLIT, GREEN_LIT]));
        assert_eq!(r.state, LampState::Unknown, "{r:?}");
    }

    #[test]
    fn dim_red_in_the_amber_slot_is_unknown_but_bright_red_there_is_red() {
        // A partial crop may show a red lamp in the middle: accept it when
        // bright, refuse it when faint.
        let dim = classify(&head(HOUSING, [UNLIT, [95, 55, 62], UNLIT]));
        assert_eq!(dim.state, LampState::Unknown, "{dim:?}");
        let bright = classify(&head(HOUSING, [UNLIT, RED_LIT, UNLIT]));
        assert_eq!(bright.state, LampState::Red, "{bright:?}");
    }

    #[test]
    fn washed_out_crop_with_a_faint_pink_top_lamp_is_red() {
        // Glare: a pale head on white sky, the lit top lamp only faintly
        // pink (chroma 0.09), like many real crops.
        let (w, h) = (20u32, 60u32);
        let mut data = Vec::new();
        for y in 0..h {
            for _ in 0..w {
                let px = if (4..16).contains(&y) {
                    [250, 226, 230]
                } else {
                    [222, 222, 224]
                };
                data.extend_from_slice(&px);
            }
        }
        let pale = RgbImage::from_raw(w, h, data).expect("sizes match");
        let r = classify(&pale);
        assert_eq!(r.state, LampState::Red, "{r:?}");
        // The same tint in a dark crop is not enough to call a lamp lit.
        let mut dark = pale.clone();
        for px in dark.data.chunks_exact_mut(3) {
            for c in px {
                *c = (*c as f32 * 0.25) as u8;
            }
        }
        assert_eq!(
            classify(&dark).state,
            LampState::Unknown,
            "{:?}",
            classify(&dark)
        );
    }

    #[test]
    fn horizontal_heads_use_colour_only() {
        // 60x20, red lamp on the right: no position prior applies.
        let (w, h) = (60u32, 20u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let d = ((x as f32 + 0.5 - 50.0).powi(2) + (y as f32 + 0.5 - 10.0).powi(2)).sqrt();
                data.extend_from_slice(&if d <= 7.0 { RED_LIT } else { HOUSING });
            }
        }
        let img = RgbImage::from_raw(w, h, data).expect("sizes match");
        assert_eq!(classify(&img).state, LampState::Red);
    }

    #[test]
    fn crops_of_a_larger_frame_work() {
        let img = head([90, 90, 90], [UNLIT, UNLIT, GREEN_LIT]);
        let crop = img.crop(0, 20, 20, 40).expect("inside");
        assert_eq!(classify(&crop).state, LampState::Green);
    }

    #[test]
    fn big_crops_are_sampled_and_still_read() {
        // The 20x60 head scaled up 20 times: 400x1200 pixels.
        let small = head(HOUSING, [UNLIT, UNLIT, GREEN_LIT]);
        let (w, h) = (small.width * 20, small.height * 20);
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&small.pixel(x / 20, y / 20).expect("inside"));
            }
        }
        let big = RgbImage::from_raw(w, h, data).expect("sizes match");
        assert!(sample_step((w * h) as usize) > 1);
        assert_eq!(classify(&big).state, LampState::Green);
    }

    #[test]
    fn hue_matches_hsv() {
        assert_eq!(hue_degrees(255, 0, 0, 255, 0), 0.0);
        assert_eq!(hue_degrees(0, 255, 0, 255, 0), 120.0);
        assert_eq!(hue_degrees(0, 0, 255, 255, 0), 240.0);
        assert_eq!(hue_degrees(255, 0, 128, 255, 0).round(), 330.0);
        assert_eq!(hue_degrees(0, 255, 255, 255, 0), 180.0);
    }
}

/// Lamp states of signal heads in a full frame: from a configured lamp ROI
/// (`[x, y, width, height]` in pixels, as in the site config) or from the
/// detector's traffic-light boxes.
pub mod heads {
    use vigil_core::image::RgbImage;

    use super::{LampClassifier, LampReading, LampState};
    use crate::detector::{BBox, Detection, DetectionClass};

    /// The state inside a configured ROI; Unknown when the ROI is off-frame.
    pub fn read_roi(classifier: &LampClassifier, frame: &RgbImage, roi: [f64; 4]) -> LampReading {
        let [x, y, w, h] = roi.map(|v| v.round() as i64);
        match frame.crop(x, y, w, h) {
            Some(crop) => classifier.classify(&crop),
            None => LampReading {
                state: LampState::Unknown,
                confidence: 0.0,
                scores: [0.0; 3],
            },
        }
    }

    /// The state of every detected traffic light, with its box.
    pub fn read_detections(
        classifier: &LampClassifier,
        frame: &RgbImage,
        detections: &[Detection],
    ) -> Vec<(BBox, LampReading)> {
        detections
            .iter()
            .filter(|d| d.class == DetectionClass::TrafficLight)
            .map(|d| {
                let b = d.bbox;
                let roi = [
                    f64::from(b.x1),
                    f64::from(b.y1),
                    f64::from(b.width()),
                    f64::from(b.height()),
                ];
                (b, read_roi(classifier, frame, roi))
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A 200x100 grey frame with a vertical head at (150, 10), red lit on top.
        fn frame() -> RgbImage {
            let mut img = RgbImage::from_raw(200, 100, vec![120; 200 * 100 * 3]).expect("frame");
            for y in 10..70u32 {
                for x in 150..170u32 {
                    let lamp_cy = 10 + (y - 10) / 20 * 20 + 10;
                    let d2 = (x as i64 - 160).pow(2) + (y as i64 - lamp_cy as i64).pow(2);
                    let px = match (d2 <= 49, (y - 10) / 20) {
                        (true, 0) => [250, 40, 60],
                        (true, _) => [55, 50, 50],
                        _ => [38, 40, 42],
                    };
                    let i = ((y * 200 + x) * 3) as usize;
                    img.data[i..i + 3].copy_from_slice(&px);
                }
            }
            img
        }

        #[test]
        fn a_configured_roi_reads_the_head_inside_it() {
            let c = LampClassifier::default();
            assert_eq!(
                read_roi(&c, &frame(), [150.0, 10.0, 20.0, 60.0]).state,
                LampState::Red
            );
            assert_eq!(
                read_roi(&c, &frame(), [500.0, 10.0, 20.0, 60.0]).state,
                LampState::Unknown
            );
        }

        #[test]
        fn detected_traffic_lights_are_read_and_other_boxes_ignored() {
            let light = Detection {
                class: DetectionClass::TrafficLight,
                class_id: 9,
                score: 0.8,
                bbox: BBox {
                    x1: 150.0,
                    y1: 10.0,
                    x2: 170.0,
                    y2: 70.0,
                },
            };
            let car = Detection {
                class: DetectionClass::RoadUser(vigil_core::RoadUserClass::Car),
                ..light
            };
            let read = read_detections(&LampClassifier::default(), &frame(), &[light, car]);
            assert_eq!(read.len(), 1);
            assert_eq!(read[0].1.state, LampState::Red);
        }
    }
}
