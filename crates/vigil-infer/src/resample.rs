//! Bilinear resampling shared by every model input: half-pixel centres,
//! f32 arithmetic, edge samples clamped.

use vigil_core::image::RgbImage;

/// For each of `dst` output positions along one axis: the two source
/// indices to blend and the weight of the second.
pub(crate) fn axis_taps(src: u32, dst: u32) -> Vec<(usize, usize, f32)> {
    let ratio = src as f32 / dst as f32;
    let last = src.saturating_sub(1);
    (0..dst)
        .map(|o| {
            let s = ((o as f32 + 0.5) * ratio - 0.5).clamp(0.0, last as f32);
            let i0 = s.floor() as usize;
            (i0, (i0 + 1).min(last as usize), s - i0 as f32)
        })
        .collect()
}

/// Resizes `image` to `w x h` into a planar `3 x h x stride` buffer,
/// mapping each interpolated 0-255 value through `normalise(channel, v)`.
/// Columns from `w` to `stride` are left as they are (padding).
pub(crate) fn resize_planar(
    image: &RgbImage,
    w: usize,
    h: usize,
    stride: usize,
    out: &mut [f32],
    normalise: impl Fn(usize, f32) -> f32,
) {
    if image.width == 0 || image.height == 0 || w == 0 || h == 0 {
        return;
    }
    let xs = axis_taps(image.width, w as u32);
    let ys = axis_taps(image.height, h as u32);
    let row = image.width as usize * 3;
    let plane = h * stride;
    // Column offsets into a row, per output column: (left, right, weight).
    let cols: Vec<(usize, usize, f32)> = xs
        .iter()
        .map(|&(x0, x1, fx)| (x0 * 3, x1 * 3, fx))
        .collect();
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (r0, r1) = (
            &image.data[y0 * row..(y0 + 1) * row],
            &image.data[y1 * row..(y1 + 1) * row],
        );
        for c in 0..3 {
            let dst = &mut out[c * plane + oy * stride..c * plane + oy * stride + w];
            for (o, &(a, b, fx)) in dst.iter_mut().zip(&cols) {
                let (a, b) = (a + c, b + c);
                // The same operations in the same order as the 2-D formula
                // (1-fy)((1-fx)p00 + fx p01) + fy((1-fx)p10 + fx p11).
                let top = (1.0 - fx) * f32::from(r0[a]) + fx * f32::from(r0[b]);
                let bottom = (1.0 - fx) * f32::from(r1[a]) + fx * f32::from(r1[b]);
                *o = normalise(c, (1.0 - fy) * top + fy * bottom);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain 2-D formula, evaluated per output value.
    fn reference(image: &RgbImage, w: usize, h: usize, stride: usize) -> Vec<f32> {
        let xs = axis_taps(image.width, w as u32);
        let ys = axis_taps(image.height, h as u32);
        let row = image.width as usize * 3;
        let mut out = vec![-7.0; 3 * h * stride];
        for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
            for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
                for c in 0..3 {
                    let p = |y: usize, x: usize| f32::from(image.data[y * row + x * 3 + c]);
                    let v = (1.0 - fy) * ((1.0 - fx) * p(y0, x0) + fx * p(y0, x1))
                        + fy * ((1.0 - fx) * p(y1, x0) + fx * p(y1, x1));
                    out[c * h * stride + oy * stride + ox] = v / 127.5 - 1.0;
                }
            }
        }
        out
    }

    #[test]
    fn resizing_matches_the_two_dimensional_formula_bit_for_bit() {
        let (iw, ih) = (37u32, 11u32);
        let data: Vec<u8> = (0..iw * ih * 3).map(|i| (i * 97 % 251) as u8).collect();
        let image = RgbImage::from_raw(iw, ih, data).expect("image");
        for (w, h, stride) in [(74, 22, 80), (20, 6, 20), (37, 11, 40), (1, 1, 1)] {
            let mut out = vec![-7.0; 3 * h * stride];
            resize_planar(&image, w, h, stride, &mut out, |_, v| v / 127.5 - 1.0);
            let want = reference(&image, w, h, stride);
            assert!(
                out.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{w}x{h}"
            );
        }
    }
}
