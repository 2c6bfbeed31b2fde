//! The evidence sheet: one composite JPEG that reads as a printed notice.
//!
//! Layout (1800 px wide): the three stills side by side (before the stop
//! line, at it, at the clearance line), then the plate crop enlarged beside
//! a data panel: place, time, signal state and time into red, amber
//! duration, speed, plate, event id and sequence. Text is DejaVu Sans
//! (embedded), so Vietnamese place names render with their diacritics.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use image::imageops::FilterType;
use image::{Rgb, RgbImage as Canvas};
use vigil_core::image::RgbImage;

use crate::EvidenceError;

const WIDTH: u32 = 1800;
const STILL_W: u32 = WIDTH / 3;
const PANEL_H: u32 = 420;
const MARGIN: u32 = 16;
const INK: [u8; 3] = [20, 20, 20];
const PAPER: [u8; 3] = [250, 250, 247];

/// What the sheet shows.
#[derive(Debug, Clone, Default)]
pub struct SheetFacts {
    pub title: String,
    /// (label, value) rows of the data panel.
    pub rows: Vec<(String, String)>,
    /// The offender's box `[x, y, w, h]` in each still's pixels, outlined
    /// on the sheet (never on the stills themselves, which stay original).
    pub marks: [Option<[f32; 4]>; 3],
}

const MARK: [u8; 3] = [230, 20, 20];

/// Outlines `[x, y, w, h]` (already scaled) on the canvas, 3 px thick.
fn outline(canvas: &mut Canvas, ox: u32, oy: u32, b: [f32; 4]) {
    let [x, y, w, h] = b.map(|v| v.round() as i64);
    let (x0, y0) = (i64::from(ox) + x - 3, i64::from(oy) + y - 3);
    let (x1, y1) = (x0 + w + 6, y0 + h + 6);
    let mut put = |px: i64, py: i64| {
        if px >= 0 && py >= 0 && px < i64::from(canvas.width()) && py < i64::from(canvas.height()) {
            canvas.put_pixel(px as u32, py as u32, Rgb(MARK));
        }
    };
    for t in 0..3 {
        for px in x0..=x1 {
            put(px, y0 + t);
            put(px, y1 - t);
        }
        for py in y0..=y1 {
            put(x0 + t, py);
            put(x1 - t, py);
        }
    }
}

/// Still captions, in order.
pub const STILL_CAPTIONS: [&str; 3] = [
    "Before the stop line",
    "At the stop line",
    "At the clearance line",
];

fn to_canvas(img: &RgbImage) -> Option<Canvas> {
    Canvas::from_raw(img.width, img.height, img.data.clone())
}

/// Renders the sheet and encodes it as JPEG (quality 88).
pub fn render_sheet(
    stills: &[Option<&RgbImage>],
    plate: Option<&RgbImage>,
    facts: &SheetFacts,
) -> Result<Vec<u8>, EvidenceError> {
    let font = FontRef::try_from_slice(dejavu::sans::regular())
        .map_err(|e| EvidenceError::Build(format!("embedded font: {e}")))?;
    let bold = FontRef::try_from_slice(dejavu::sans::bold())
        .map_err(|e| EvidenceError::Build(format!("embedded font: {e}")))?;
    // Stills keep their aspect ratio at a third of the width.
    let still_h = stills
        .iter()
        .flatten()
        .map(|s| (STILL_W as f32 * s.height as f32 / s.width.max(1) as f32).round() as u32)
        .max()
        .unwrap_or(STILL_W * 9 / 16);
    let title_h = 56;
    let caption_h = 34;
    let height = title_h + still_h + caption_h + PANEL_H;
    let mut sheet = Canvas::from_pixel(WIDTH, height, Rgb(PAPER));
    draw_text(&mut sheet, &bold, 30.0, MARGIN as f32, 12.0, &facts.title);

    for (i, still) in stills.iter().take(3).enumerate() {
        let x = i as u32 * STILL_W;
        if let Some(img) = still.and_then(to_canvas) {
            let h =
                (STILL_W as f32 * img.height() as f32 / img.width().max(1) as f32).round() as u32;
            let scaled = image::imageops::resize(&img, STILL_W - 4, h.max(1), FilterType::Triangle);
            image::imageops::overlay(&mut sheet, &scaled, i64::from(x + 2), i64::from(title_h));
            if let Some(b) = facts.marks[i] {
                let k = (STILL_W - 4) as f32 / img.width().max(1) as f32;
                outline(&mut sheet, x + 2, title_h, b.map(|v| v * k));
            }
        } else {
            draw_text(
                &mut sheet,
                &font,
                22.0,
                (x + MARGIN) as f32,
                (title_h + still_h / 2) as f32,
                "(no frame)",
            );
        }
        draw_text(
            &mut sheet,
            &font,
            22.0,
            (x + MARGIN) as f32,
            (title_h + still_h + 4) as f32,
            STILL_CAPTIONS[i],
        );
    }

    let panel_y = title_h + still_h + caption_h;
    // The plate, enlarged to fill a third of the width at most.
    let plate_box_w = STILL_W - 2 * MARGIN;
    let plate_box_h = PANEL_H - 2 * MARGIN;
    match plate.and_then(to_canvas) {
        Some(p) => {
            let s = (plate_box_w as f32 / p.width().max(1) as f32)
                .min(plate_box_h as f32 / p.height().max(1) as f32);
            let (w, h) = (
                ((p.width() as f32 * s) as u32).max(1),
                ((p.height() as f32 * s) as u32).max(1),
            );
            let scaled = image::imageops::resize(&p, w, h, FilterType::CatmullRom);
            image::imageops::overlay(
                &mut sheet,
                &scaled,
                i64::from(MARGIN),
                i64::from(panel_y + MARGIN),
            );
        }
        None => draw_text(
            &mut sheet,
            &font,
            24.0,
            MARGIN as f32,
            (panel_y + PANEL_H / 2) as f32,
            "(no plate crop)",
        ),
    }
    let text_x = (STILL_W + MARGIN) as f32;
    let mut y = (panel_y + MARGIN) as f32;
    for (label, value) in &facts.rows {
        draw_text(&mut sheet, &bold, 26.0, text_x, y, label);
        draw_text(&mut sheet, &font, 26.0, text_x + 300.0, y, value);
        y += 36.0;
    }
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88);
    sheet
        .write_with_encoder(encoder)
        .map_err(|e| EvidenceError::Build(format!("encoding the evidence sheet: {e}")))?;
    Ok(out)
}

/// Encodes a frame or crop as JPEG (quality 92: stills are evidence).
pub fn encode_jpeg(img: &RgbImage) -> Result<Vec<u8>, EvidenceError> {
    let canvas = to_canvas(img)
        .ok_or_else(|| EvidenceError::Build("an image's buffer does not match its size".into()))?;
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92);
    canvas
        .write_with_encoder(encoder)
        .map_err(|e| EvidenceError::Build(format!("encoding a still: {e}")))?;
    Ok(out)
}

/// Draws one line of DejaVu Sans (the embedded font) with its top-left at
/// (x, y): labels on other images Vigil draws, such as benchmark charts.
pub fn draw_label(canvas: &mut Canvas, size: f32, x: f32, y: f32, text: &str) {
    if let Ok(font) = FontRef::try_from_slice(dejavu::sans::regular()) {
        draw_text(canvas, &font, size, x, y, text);
    }
}

/// Draws one line of text with its top-left at (x, y).
fn draw_text(canvas: &mut Canvas, font: &FontRef<'_>, size: f32, x: f32, y: f32, text: &str) {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut caret = x;
    let baseline = y + scaled.ascent();
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(PxScale::from(size), point(caret, baseline));
        caret += scaled.h_advance(id);
        previous = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + i64::from(gx);
            let py = bounds.min.y as i64 + i64::from(gy);
            if px < 0
                || py < 0
                || px >= i64::from(canvas.width())
                || py >= i64::from(canvas.height())
            {
                return;
            }
            let pixel = canvas.get_pixel_mut(px as u32, py as u32);
            for (channel, ink) in pixel.0.iter_mut().zip(INK) {
                let v = f32::from(*channel) * (1.0 - coverage) + f32::from(ink) * coverage;
                *channel = v.round().clamp(0.0, 255.0) as u8;
            }
        });
    }
}
