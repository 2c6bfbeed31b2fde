//! Images as every crate sees them: packed 8-bit RGB, row-major.

/// A tightly packed RGB24 image (no row padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// The RGB value at (x, y); `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data.get(i..i + 3).map(|p| [p[0], p[1], p[2]])
    }

    /// An image from packed RGB bytes; `None` if the length does not match.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (data.len() == width as usize * height as usize * 3).then_some(Self {
            width,
            height,
            data,
        })
    }

    /// A copy of the pixels `b` covers (its edges rounded outward), clipped
    /// to the image; `None` when nothing of it lies inside.
    pub fn crop_bbox(&self, b: &crate::detection::BBox) -> Option<RgbImage> {
        self.crop(
            b.x1.floor() as i64,
            b.y1.floor() as i64,
            b.width().ceil() as i64,
            b.height().ceil() as i64,
        )
    }

    /// A copy of the region `[x, x + w) x [y, y + h)`, clipped to the image;
    /// `None` when nothing of it lies inside.
    pub fn crop(&self, x: i64, y: i64, w: i64, h: i64) -> Option<RgbImage> {
        let x0 = x.clamp(0, i64::from(self.width));
        let y0 = y.clamp(0, i64::from(self.height));
        let x1 = (x + w).clamp(0, i64::from(self.width));
        let y1 = (y + h).clamp(0, i64::from(self.height));
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let (cw, ch) = ((x1 - x0) as usize, (y1 - y0) as usize);
        let mut data = Vec::with_capacity(cw * ch * 3);
        let stride = self.width as usize * 3;
        for row in y0 as usize..y1 as usize {
            let start = row * stride + x0 as usize * 3;
            data.extend_from_slice(&self.data[start..start + cw * 3]);
        }
        Some(RgbImage {
            width: cw as u32,
            height: ch as u32,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_are_clipped_to_the_image() {
        let img = RgbImage::from_raw(4, 3, (0..36).collect()).expect("4x3");
        let c = img.crop(2, 1, 10, 10).expect("inside");
        assert_eq!((c.width, c.height), (2, 2));
        assert_eq!(c.pixel(0, 0), img.pixel(2, 1));
        assert_eq!(c.pixel(1, 1), img.pixel(3, 2));
        assert!(img.crop(5, 0, 2, 2).is_none());
        assert!(RgbImage::from_raw(2, 2, vec![0; 11]).is_none());
    }
}
