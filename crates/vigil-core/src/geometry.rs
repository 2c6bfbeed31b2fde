//! Planar geometry on image pixels or ground metres.
//!
//! Lines in a site are *segments*, never infinite lines: a stop line ends where
//! the paint (or the configured extension) ends, and a vehicle passing beside it
//! has not crossed it. Everything here is pure arithmetic on `f64`.

/// A point in image pixels or ground metres, depending on context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    pub fn dot(self, other: Point) -> f64 {
        self.x * other.x + self.y * other.y
    }

    /// The z component of the 3-D cross product: positive when `other` turns
    /// counter-clockwise from `self` (in a y-up frame).
    pub fn cross(self, other: Point) -> f64 {
        self.x * other.y - self.y * other.x
    }

    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }

    pub fn distance(self, other: Point) -> f64 {
        (self - other).norm()
    }
}

impl std::ops::Add for Point {
    type Output = Point;
    fn add(self, other: Point) -> Point {
        Point::new(self.x + other.x, self.y + other.y)
    }
}

impl std::ops::Sub for Point {
    type Output = Point;
    fn sub(self, other: Point) -> Point {
        Point::new(self.x - other.x, self.y - other.y)
    }
}

impl From<[f64; 2]> for Point {
    fn from([x, y]: [f64; 2]) -> Self {
        Point::new(x, y)
    }
}

/// A directed segment from `a` to `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub a: Point,
    pub b: Point,
}

impl Segment {
    pub const fn new(a: Point, b: Point) -> Self {
        Self { a, b }
    }

    pub fn length(&self) -> f64 {
        self.a.distance(self.b)
    }

    pub fn direction(&self) -> Point {
        self.b - self.a
    }

    pub fn midpoint(&self) -> Point {
        Point::new((self.a.x + self.b.x) / 2.0, (self.a.y + self.b.y) / 2.0)
    }

    /// Signed side of `p` relative to the infinite line through the segment:
    /// positive on the left of `a -> b`, negative on the right, zero on it.
    pub fn side(&self, p: Point) -> f64 {
        self.direction().cross(p - self.a)
    }

    /// Whether two closed segments share at least one point.
    pub fn intersects(&self, other: &Segment) -> bool {
        let d1 = other.side(self.a);
        let d2 = other.side(self.b);
        let d3 = self.side(other.a);
        let d4 = self.side(other.b);
        if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
            && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
        {
            return true;
        }
        (d1 == 0.0 && on_segment(other, self.a))
            || (d2 == 0.0 && on_segment(other, self.b))
            || (d3 == 0.0 && on_segment(self, other.a))
            || (d4 == 0.0 && on_segment(self, other.b))
    }

    /// Sine of the angle between the two segments' directions (0 = parallel).
    pub fn sin_angle_to(&self, other: &Segment) -> f64 {
        let (u, v) = (self.direction(), other.direction());
        let denom = u.norm() * v.norm();
        if denom == 0.0 {
            0.0
        } else {
            (u.cross(v) / denom).abs()
        }
    }
}

fn on_segment(s: &Segment, p: Point) -> bool {
    p.x >= s.a.x.min(s.b.x)
        && p.x <= s.a.x.max(s.b.x)
        && p.y >= s.a.y.min(s.b.y)
        && p.y <= s.a.y.max(s.b.y)
}

/// A closed polygon given by its vertices in order (the last joins the first).
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub vertices: Vec<Point>,
}

impl Polygon {
    pub fn new(vertices: Vec<Point>) -> Self {
        Self { vertices }
    }

    fn edges(&self) -> impl Iterator<Item = Segment> + '_ {
        let n = self.vertices.len();
        (0..n).map(move |i| Segment::new(self.vertices[i], self.vertices[(i + 1) % n]))
    }

    /// Signed area (shoelace formula); zero for a degenerate polygon.
    pub fn signed_area(&self) -> f64 {
        self.edges().map(|e| e.a.cross(e.b)).sum::<f64>() / 2.0
    }

    /// Whether no two non-adjacent edges touch and the area is non-zero.
    pub fn is_simple(&self) -> bool {
        let n = self.vertices.len();
        if n < 3 || self.signed_area().abs() < f64::EPSILON {
            return false;
        }
        let edges: Vec<Segment> = self.edges().collect();
        for i in 0..n {
            for j in (i + 1)..n {
                let adjacent = j == i + 1 || (i == 0 && j == n - 1);
                if !adjacent && edges[i].intersects(&edges[j]) {
                    return false;
                }
            }
        }
        true
    }

    /// Point-in-polygon by ray casting; points on the boundary may go either way.
    pub fn contains(&self, p: Point) -> bool {
        let mut inside = false;
        for e in self.edges() {
            if (e.a.y > p.y) != (e.b.y > p.y) {
                let x_at = e.a.x + (p.y - e.a.y) / (e.b.y - e.a.y) * (e.b.x - e.a.x);
                if p.x < x_at {
                    inside = !inside;
                }
            }
        }
        inside
    }
}

/// Whether `points` hold four points no three of which are (nearly) collinear,
/// the least a homography needs. `tolerance` is the smallest triangle area
/// accepted, relative to the square of the points' spread.
pub fn has_four_in_general_position(points: &[Point], tolerance: f64) -> bool {
    let spread = spread(points);
    if spread == 0.0 {
        return false;
    }
    let min_area = tolerance * spread * spread;
    let area = |a: Point, b: Point, c: Point| ((b - a).cross(c - a) / 2.0).abs();
    let n = points.len();
    for i in 0..n {
        for j in (i + 1)..n {
            for k in (j + 1)..n {
                if area(points[i], points[j], points[k]) < min_area {
                    continue;
                }
                for l in (k + 1)..n {
                    let (a, b, c, d) = (points[i], points[j], points[k], points[l]);
                    if area(a, b, d) >= min_area
                        && area(a, c, d) >= min_area
                        && area(b, c, d) >= min_area
                    {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// Largest distance between any two of the points.
fn spread(points: &[Point]) -> f64 {
    let mut best: f64 = 0.0;
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            best = best.max(a.distance(*b));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f64, y: f64) -> Point {
        Point::new(x, y)
    }

    #[test]
    fn crossing_segments_intersect_and_parallel_ones_do_not() {
        let a = Segment::new(p(0.0, 0.0), p(10.0, 10.0));
        let b = Segment::new(p(0.0, 10.0), p(10.0, 0.0));
        let c = Segment::new(p(0.0, 1.0), p(10.0, 11.0));
        assert!(a.intersects(&b));
        assert!(!a.intersects(&c));
    }

    #[test]
    fn segments_are_finite_not_infinite_lines() {
        let stop = Segment::new(p(0.0, 0.0), p(10.0, 0.0));
        let beside = Segment::new(p(12.0, -5.0), p(12.0, 5.0));
        assert!(!stop.intersects(&beside));
    }

    #[test]
    fn bow_tie_polygon_is_not_simple() {
        let bow = Polygon::new(vec![p(0.0, 0.0), p(10.0, 10.0), p(10.0, 0.0), p(0.0, 10.0)]);
        let square = Polygon::new(vec![p(0.0, 0.0), p(10.0, 0.0), p(10.0, 10.0), p(0.0, 10.0)]);
        assert!(!bow.is_simple());
        assert!(square.is_simple());
        assert!(square.contains(p(5.0, 5.0)));
        assert!(!square.contains(p(15.0, 5.0)));
    }

    #[test]
    fn collinear_points_are_not_in_general_position() {
        let line: Vec<Point> = (0..6).map(|i| p(i as f64, 2.0 * i as f64)).collect();
        assert!(!has_four_in_general_position(&line, 1e-3));
        let mut quad = line.clone();
        quad.push(p(0.0, 10.0));
        // Still only three non-collinear directions: any four include three on the line.
        assert!(!has_four_in_general_position(&quad, 1e-3));
        quad.push(p(10.0, 0.0));
        assert!(has_four_in_general_position(&quad, 1e-3));
    }
}
