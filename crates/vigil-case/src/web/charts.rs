//! Server-drawn SVG: the signal timeline around an event and the offender's
//! trajectory over the scene. Presentation attributes only (no inline
//! styles), so the page's Content Security Policy stays strict.

use maud::{html, Markup};
use vigil_evidence::manifest::Manifest;

fn phase_colour(phase: &str) -> &'static str {
    match phase {
        "red" => "#d62828",
        "amber" | "yellow" => "#f4a261",
        "green" => "#2a9d8f",
        _ => "#9a9a9a",
    }
}

/// The phases as coloured bars on a time axis (seconds from the event),
/// with the stop-line crossing, the event and the clearance marked.
pub fn signal_chart(m: &Manifest) -> Markup {
    let (w, h, bar_y, bar_h) = (900.0_f64, 120.0_f64, 38.0_f64, 30.0_f64);
    let event = m.times.event_at_us;
    let start = m
        .signal
        .timeline
        .iter()
        .map(|p| p.start_us)
        .min()
        .unwrap_or(event - 5_000_000)
        .min(event - 1_000_000);
    let end = m
        .signal
        .timeline
        .iter()
        .map(|p| p.end_us)
        .max()
        .unwrap_or(event + 5_000_000)
        // Room after the event for its marks and their labels.
        .max(event + 2_000_000)
        .max(m.times.clearance_at_us.unwrap_or(event) + 1_000_000);
    let span = (end - start).max(1) as f64;
    let x = |us: i64| 10.0 + (us - start) as f64 / span * (w - 20.0);
    let marks: Vec<(&str, i64, &str)> = [
        ("stop line", m.times.stop_line_at_us),
        ("event", Some(event)),
        ("clearance", m.times.clearance_at_us),
    ]
    .into_iter()
    .filter_map(|(label, t)| t.map(|t| (label, t, if label == "event" { "#111" } else { "#444" })))
    .collect();
    // Labels in their own rows, as the marks are often a few ms apart.
    let label_y = |i: usize| 10.0 + 11.0 * i as f64;
    // Ticks every whole second (or more, on long timelines).
    let step_s = ((span / 1e6) / 12.0).ceil().max(1.0) as i64;
    let first_tick = (start - event).div_euclid(1_000_000) + 1;
    let last_tick = (end - event).div_euclid(1_000_000);
    html! {
        svg.signal-chart viewBox={"0 0 " (w) " " (h)} width="100%" role="img"
            aria-label="Signal phases around the event" {
            @for p in &m.signal.timeline {
                rect x=(format!("{:.1}", x(p.start_us))) y=(bar_y)
                     width=(format!("{:.1}", (x(p.end_us) - x(p.start_us)).max(0.5))) height=(bar_h)
                     fill=(phase_colour(&p.phase)) {
                    title { (p.phase) ": " (format!("{:+.2}", (p.start_us - event) as f64 / 1e6)) " s to "
                            (format!("{:+.2}", (p.end_us - event) as f64 / 1e6)) " s" }
                }
            }
            @for t in (first_tick..=last_tick).filter(|t| t % step_s == 0) {
                line x1=(format!("{:.1}", x(event + t * 1_000_000))) x2=(format!("{:.1}", x(event + t * 1_000_000)))
                     y1=(bar_y + bar_h) y2=(bar_y + bar_h + 6.0) stroke="#666" {}
                text x=(format!("{:.1}", x(event + t * 1_000_000))) y=(bar_y + bar_h + 18.0)
                     font-size="11" text-anchor="middle" fill="#333" { (format!("{t:+}")) }
            }
            @for (i, (label, t, colour)) in marks.iter().enumerate() {
                line x1=(format!("{:.1}", x(*t))) x2=(format!("{:.1}", x(*t))) y1=(label_y(i) - 8.0) y2=(bar_y + bar_h + 4.0)
                     stroke=(colour) stroke-width="2" stroke-dasharray=(if *label == "event" { "" } else { "4 3" }) {}
                text x=(format!("{:.1}", x(*t) + 3.0)) y=(label_y(i)) font-size="11" fill=(colour) { (label) }
            }
            text x=(w / 2.0) y=(h - 4.0) font-size="11" text-anchor="middle" fill="#333" { "seconds from the event" }
        }
    }
}

/// The trajectory (image coordinates) drawn over a still of the scene,
/// with the box at the stop line.
pub fn trajectory_view(m: &Manifest, still_src: &str, width: u32, height: u32) -> Markup {
    let points: String = m
        .trajectory
        .iter()
        .map(|p| format!("{:.1},{:.1}", p.image[0], p.image[1]))
        .collect::<Vec<_>>()
        .join(" ");
    let at_line = m
        .times
        .stop_line_at_us
        .and_then(|t| m.trajectory.iter().min_by_key(|p| (p.t_us - t).abs()));
    let stroke = (f64::from(width) / 300.0).max(2.0);
    html! {
        svg.trajectory viewBox={"0 0 " (width) " " (height)} width="100%" role="img"
            aria-label="The offender's path over the scene" {
            image href=(still_src) x="0" y="0" width=(width) height=(height) {}
            polyline points=(points) fill="none" stroke="#ffd60a" stroke-width=(stroke)
                     stroke-linejoin="round" {}
            @if let Some(first) = m.trajectory.first() {
                circle cx=(first.image[0]) cy=(first.image[1]) r=(stroke * 2.0) fill="#ffd60a" {}
            }
            @if let Some(p) = at_line {
                rect x=(p.bbox[0]) y=(p.bbox[1]) width=(p.bbox[2]) height=(p.bbox[3])
                     fill="none" stroke="#d62828" stroke-width=(stroke) {}
            }
        }
    }
}
