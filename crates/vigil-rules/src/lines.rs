//! Sides and crossings of finite lines, shared by every rule.

use vigil_core::geometry::{Point, Segment};
use vigil_core::time::UnixMicros;

/// Whether `p` lies on the side of `line` that `travel` points to.
pub(crate) fn beyond(line: &Segment, travel: Point, p: Point) -> bool {
    line.side(p) * line.side(line.midpoint() + travel) > 0.0
}

/// Where and when the move `a -> b` crosses `line` in the `travel`
/// direction (from its near side to its far side, through the finite
/// segment), interpolated linearly in time.
pub(crate) fn crossing(
    line: &Segment,
    travel: Point,
    (ta, a): (UnixMicros, Point),
    (tb, b): (UnixMicros, Point),
) -> Option<(UnixMicros, Point)> {
    if beyond(line, travel, a) || !beyond(line, travel, b) || !Segment::new(a, b).intersects(line) {
        return None;
    }
    let (sa, sb) = (line.side(a), line.side(b));
    let f = if (sa - sb).abs() > f64::EPSILON {
        sa / (sa - sb)
    } else {
        0.0
    };
    let t = ta + ((tb - ta) as f64 * f).round() as i64;
    Some((t, Point::new(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y))))
}
