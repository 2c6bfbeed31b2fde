//! The plate's background colour class, from a colour measured elsewhere.
//!
//! The colour says who owns the vehicle, which the case system needs: state
//! agencies are notified of their vehicles' violations, not exempted.

use serde::{Deserialize, Serialize};

/// Vietnamese plate background colours and what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateColour {
    /// Private vehicles: black text on white.
    White,
    /// Commercial transport: black text on yellow.
    Yellow,
    /// State agencies: white text on blue.
    Blue,
    /// Military: white text on red.
    Red,
    /// The measurement fits no class, or contradicts itself (light text on
    /// white); an operator looks at the crop.
    Unknown,
}

impl PlateColour {
    /// The class as written in events and evidence: `white`, `yellow`,
    /// `blue`, `red`, `unknown` (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            PlateColour::White => "white",
            PlateColour::Yellow => "yellow",
            PlateColour::Blue => "blue",
            PlateColour::Red => "red",
            PlateColour::Unknown => "unknown",
        }
    }
}

/// Classifies a plate's background from its measured mean colour.
///
/// `bg_rgb_mean` is the mean of the background pixels, each channel on the
/// 0–255 scale of 8-bit images (values outside are clamped; NaN gives
/// [`PlateColour::Unknown`]). `text_is_dark` is whether the characters are
/// darker than the background, which separates white (dark text) from a
/// washed-out blue or red (light text) when saturation alone cannot.
///
/// Thresholds, in HSV (hue in degrees, saturation and value 0–1):
///
/// | class | hue | saturation | value | text |
/// | --- | --- | --- | --- | --- |
/// | white | any | ≤ 0.20 | ≥ 0.45 | dark |
/// | yellow | 35–70 | ≥ 0.35 | ≥ 0.35 | dark |
/// | blue | 190–260 | ≥ 0.35 | ≥ 0.15 | light |
/// | red | ≤ 15 or ≥ 340 | ≥ 0.40 | ≥ 0.20 | light |
///
/// Value floors are low for blue and red because those are dark colours
/// even in good light; white's floor admits a white plate in shade or at
/// night (grey) but not a black surface. Yellow needs real saturation since
/// a white plate under sodium street light turns yellowish; the caller
/// should white-balance before measuring. Anything else is `Unknown`.
pub fn classify_colour(bg_rgb_mean: [f32; 3], text_is_dark: bool) -> PlateColour {
    if bg_rgb_mean.iter().any(|c| c.is_nan()) {
        return PlateColour::Unknown;
    }
    let [r, g, b] = bg_rgb_mean.map(|c| c.clamp(0.0, 255.0) / 255.0);
    let (hue, saturation, value) = hsv(r, g, b);

    let white = saturation <= 0.20 && value >= 0.45;
    let yellow = (35.0..=70.0).contains(&hue) && saturation >= 0.35 && value >= 0.35;
    let blue = (190.0..=260.0).contains(&hue) && saturation >= 0.35 && value >= 0.15;
    let red = (hue <= 15.0 || hue >= 340.0) && saturation >= 0.40 && value >= 0.20;

    match (text_is_dark, white, yellow, blue, red) {
        (true, true, _, _, _) => PlateColour::White,
        (true, _, true, _, _) => PlateColour::Yellow,
        (false, _, _, true, _) => PlateColour::Blue,
        (false, _, _, _, true) => PlateColour::Red,
        _ => PlateColour::Unknown,
    }
}

/// RGB (0–1) to hue (0–360 degrees), saturation and value (0–1).
fn hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    let saturation = if max > 0.0 { chroma / max } else { 0.0 };
    let hue = if chroma <= f32::EPSILON {
        0.0
    } else if max == r {
        60.0 * ((g - b) / chroma).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / chroma + 2.0)
    } else {
        60.0 * ((r - g) / chroma + 4.0)
    };
    (hue, saturation, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names packages carry: the case system flags a `blue` plate's
    /// violation for its agency.
    #[test]
    fn the_colour_names_are_the_ones_packages_carry() {
        let names = [
            PlateColour::White,
            PlateColour::Yellow,
            PlateColour::Blue,
            PlateColour::Red,
            PlateColour::Unknown,
        ]
        .map(PlateColour::as_str);
        assert_eq!(names, ["white", "yellow", "blue", "red", "unknown"]);
    }

    #[test]
    fn a_bright_neutral_background_with_dark_text_is_white() {
        assert_eq!(
            classify_colour([230.0, 232.0, 225.0], true),
            PlateColour::White
        );
    }

    #[test]
    fn a_white_plate_in_shade_is_still_white() {
        assert_eq!(
            classify_colour([130.0, 130.0, 135.0], true),
            PlateColour::White
        );
    }

    #[test]
    fn a_saturated_yellow_background_with_dark_text_is_yellow() {
        assert_eq!(
            classify_colour([235.0, 200.0, 40.0], true),
            PlateColour::Yellow
        );
    }

    #[test]
    fn a_blue_background_with_light_text_is_blue() {
        assert_eq!(
            classify_colour([20.0, 60.0, 160.0], false),
            PlateColour::Blue
        );
    }

    #[test]
    fn a_red_background_with_light_text_is_red() {
        assert_eq!(
            classify_colour([190.0, 30.0, 35.0], false),
            PlateColour::Red
        );
    }

    #[test]
    fn light_text_on_white_contradicts_itself_and_is_unknown() {
        assert_eq!(
            classify_colour([230.0, 232.0, 225.0], false),
            PlateColour::Unknown
        );
    }

    #[test]
    fn a_dark_grey_background_is_unknown() {
        assert_eq!(
            classify_colour([60.0, 60.0, 60.0], true),
            PlateColour::Unknown
        );
    }

    #[test]
    fn a_green_background_is_unknown() {
        assert_eq!(
            classify_colour([40.0, 160.0, 60.0], true),
            PlateColour::Unknown
        );
    }

    #[test]
    fn nan_and_out_of_range_measurements_do_not_panic() {
        assert_eq!(
            classify_colour([f32::NAN, 0.0, 0.0], true),
            PlateColour::Unknown
        );
        assert_eq!(classify_colour([1e9, 1e9, 1e9], true), PlateColour::White);
        assert_eq!(
            classify_colour([-5.0, -5.0, -5.0], true),
            PlateColour::Unknown
        );
    }
}
