//! Drawing on frames for calibration overlays and evidence sheets: thick
//! lines, rings and filled discs, clipped to the image.

use vigil_core::image::RgbImage;

fn put(img: &mut RgbImage, x: i64, y: i64, colour: [u8; 3]) {
    if x >= 0 && y >= 0 && x < i64::from(img.width) && y < i64::from(img.height) {
        let i = (y as usize * img.width as usize + x as usize) * 3;
        img.data[i..i + 3].copy_from_slice(&colour);
    }
}

/// A filled disc of radius `r` (pixels) centred on (cx, cy).
pub fn disc(img: &mut RgbImage, cx: f64, cy: f64, r: f64, colour: [u8; 3]) {
    let r2 = r * r;
    let (x0, x1) = ((cx - r).floor() as i64, (cx + r).ceil() as i64);
    let (y0, y1) = ((cy - r).floor() as i64, (cy + r).ceil() as i64);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) <= r2 {
                put(img, x, y, colour);
            }
        }
    }
}

/// A ring (circle outline) of radius `r`, `width` pixels thick.
pub fn ring(img: &mut RgbImage, cx: f64, cy: f64, r: f64, width: f64, colour: [u8; 3]) {
    let steps = (2.0 * std::f64::consts::PI * r).ceil().max(8.0) as usize;
    for k in 0..steps {
        let a = k as f64 / steps as f64 * std::f64::consts::TAU;
        disc(img, cx + r * a.cos(), cy + r * a.sin(), width / 2.0, colour);
    }
}

/// A line from (x0, y0) to (x1, y1), `width` pixels thick. Lines far
/// outside the image (a ground grid behind the camera) are skipped.
pub fn line(
    img: &mut RgbImage,
    (x0, y0): (f64, f64),
    (x1, y1): (f64, f64),
    width: f64,
    colour: [u8; 3],
) {
    let limit = 4.0 * f64::from(img.width.max(img.height));
    if ![x0, y0, x1, y1]
        .iter()
        .all(|v| v.is_finite() && v.abs() < limit)
    {
        return;
    }
    let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
    let steps = len.ceil().max(1.0) as usize;
    for k in 0..=steps {
        let t = k as f64 / steps as f64;
        disc(
            img,
            x0 + t * (x1 - x0),
            y0 + t * (y1 - y0),
            width / 2.0,
            colour,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_drawn_and_clipped() {
        let mut img = RgbImage::from_raw(20, 10, vec![0; 600]).expect("image");
        line(&mut img, (-5.0, 5.0), (30.0, 5.0), 1.0, [255, 0, 0]);
        assert_eq!(img.pixel(0, 5), Some([255, 0, 0]));
        assert_eq!(img.pixel(19, 5), Some([255, 0, 0]));
        assert_eq!(img.pixel(10, 0), Some([0, 0, 0]));
        line(&mut img, (0.0, 0.0), (f64::NAN, 1e12), 1.0, [0, 255, 0]);
        assert_eq!(
            img.pixel(0, 0),
            Some([0, 0, 0]),
            "non-finite lines are skipped"
        );
    }
}
