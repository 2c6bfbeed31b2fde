//! Where a road user meets the road, from its box.
//!
//! The crossing point is the *front* of the vehicle on the ground, not the
//! bottom-centre of its box: a motorbike seen from behind ends at its rear
//! tyre, 20-25 px behind the front wheel, and a car at its rear bumper,
//! 50-90 px behind its nose (PEER-FINDINGS). Going away from the camera the
//! front contact sits above the box bottom by a share of the box height;
//! coming towards it, the box bottom is the front.

use vigil_core::detection::{BBox, DetectionClass};
use vigil_core::geometry::Point;
use vigil_core::RoadUserClass;

/// Share of the box height between the box bottom and the front ground
/// contact, for a road user seen straight from behind.
pub fn front_share(class: DetectionClass) -> f64 {
    match class {
        DetectionClass::RoadUser(RoadUserClass::Motorbike | RoadUserClass::Bicycle) => 0.25,
        DetectionClass::RoadUser(RoadUserClass::Car) => 0.45,
        DetectionClass::RoadUser(RoadUserClass::Bus | RoadUserClass::Truck) => 0.35,
        DetectionClass::RoadUser(RoadUserClass::Person) | DetectionClass::TrafficLight => 0.0,
    }
}

/// The front ground point of `bbox` for travel along `travel` (image
/// direction vector): bottom-centre, moved along the travel direction by the
/// class's share of the box height, scaled by how much of the travel points
/// up the image (away from the camera).
pub fn front_point(bbox: &BBox, class: DetectionClass, travel: Point) -> Point {
    let (x, y) = (f64::from(bbox.x1 + bbox.x2) / 2.0, f64::from(bbox.y2));
    let norm = travel.norm();
    if norm == 0.0 {
        return Point::new(x, y);
    }
    let (ux, uy) = (travel.x / norm, travel.y / norm);
    let away = (-uy).max(0.0);
    let shift = front_share(class) * f64::from(bbox.height()) * away;
    Point::new(x + ux * shift, y + uy * shift)
}

/// The rear ground point of `bbox`: the mirror of [`front_point`]. Going
/// away from the camera it is the box bottom; coming towards it, it sits
/// above the box bottom by the class's share of the box height.
pub fn rear_point(bbox: &BBox, class: DetectionClass, travel: Point) -> Point {
    let (x, y) = (f64::from(bbox.x1 + bbox.x2) / 2.0, f64::from(bbox.y2));
    let norm = travel.norm();
    if norm == 0.0 {
        return Point::new(x, y);
    }
    let (ux, uy) = (travel.x / norm, travel.y / norm);
    let toward = uy.max(0.0);
    let shift = front_share(class) * f64::from(bbox.height()) * toward;
    Point::new(x - ux * shift, y - uy * shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIKE: DetectionClass = DetectionClass::RoadUser(RoadUserClass::Motorbike);

    #[test]
    fn going_away_the_front_is_above_the_box_bottom() {
        let b = BBox {
            x1: 100.0,
            y1: 200.0,
            x2: 140.0,
            y2: 292.0,
        };
        let p = front_point(&b, BIKE, Point::new(0.0, -1.0));
        assert!(
            (p.x - 120.0).abs() < 1e-9 && (p.y - 269.0).abs() < 1e-9,
            "{p:?}"
        );
    }

    #[test]
    fn coming_closer_the_front_is_the_box_bottom() {
        let b = BBox {
            x1: 100.0,
            y1: 200.0,
            x2: 140.0,
            y2: 292.0,
        };
        let p = front_point(&b, BIKE, Point::new(0.2, 1.0));
        assert!(
            (p.y - 292.0).abs() < 1e-9 && (p.x - 120.0).abs() < 1e-9,
            "{p:?}"
        );
    }

    #[test]
    fn the_rear_mirrors_the_front() {
        let b = BBox {
            x1: 100.0,
            y1: 200.0,
            x2: 140.0,
            y2: 292.0,
        };
        let away = rear_point(&b, BIKE, Point::new(0.0, -1.0));
        assert!((away.y - 292.0).abs() < 1e-9, "{away:?}");
        let toward = rear_point(&b, BIKE, Point::new(0.0, 1.0));
        assert!((toward.y - 269.0).abs() < 1e-9, "{toward:?}");
    }
}
