//! Detections as the rest of the pipeline sees them: a box, what it is,
//! and how sure the detector was. Produced by `vigil-infer`, consumed by
//! tracking and rules.

use crate::RoadUserClass;

/// An axis-aligned box in pixels: left, top, right, bottom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// The same box moved by `(dx, dy)`: from a part of an image (a tile,
    /// a detect region) into the whole image's pixels.
    pub fn shifted(&self, dx: f32, dy: f32) -> BBox {
        BBox {
            x1: self.x1 + dx,
            y1: self.y1 + dy,
            x2: self.x2 + dx,
            y2: self.y2 + dy,
        }
    }

    /// Whether `other` lies wholly inside this box.
    pub fn contains(&self, other: &BBox) -> bool {
        other.x1 >= self.x1 && other.y1 >= self.y1 && other.x2 <= self.x2 && other.y2 <= self.y2
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let iw = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let ih = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// What a detection means to Vigil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectionClass {
    RoadUser(RoadUserClass),
    TrafficLight,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: DetectionClass,
    pub class_id: usize,
    pub score: f32,
    pub bbox: BBox,
}
