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
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let p = |y: usize, x: usize| f32::from(image.data[y * row + x * 3 + c]);
                let v = (1.0 - fy) * ((1.0 - fx) * p(y0, x0) + fx * p(y0, x1))
                    + fy * ((1.0 - fx) * p(y1, x0) + fx * p(y1, x1));
                out[c * plane + oy * stride + ox] = normalise(c, v);
            }
        }
    }
}
