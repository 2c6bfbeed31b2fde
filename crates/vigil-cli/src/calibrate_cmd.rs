//! `vigil calibrate`: fit each camera's homography from the site config,
//! print the reprojection error of every point pair, and draw the ground
//! grid and the configured lines over a real frame.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use vigil_core::config::{segment, ImageLine, SiteConfig};
use vigil_core::geometry::Point;
use vigil_core::homography::Homography;
use vigil_core::image::RgbImage;
use vigil_video::draw::{disc, line, ring};
use vigil_video::{first_frame, SourceSpec};

use crate::Verdict;

#[derive(Args)]
pub struct CalibrateArgs {
    /// The site config whose cameras to calibrate.
    #[arg(long)]
    config: PathBuf,
    /// Only this camera.
    #[arg(long)]
    camera: Option<String>,
    /// Where to write `calibration-<camera>.png`.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Pairs whose ground point reprojects further than this many pixels
    /// from their image point are outliers (pixels, because perspective makes
    /// a metre far away a few pixels and near by a hundred).
    #[arg(long, default_value_t = 8.0)]
    tolerance_px: f64,
}

const GRID: [u8; 3] = [255, 255, 255];
const STOP: [u8; 3] = [255, 40, 40];
const CLEARANCE: [u8; 3] = [255, 170, 0];
const TRAVEL: [u8; 3] = [0, 230, 255];
const LANE: [u8; 3] = [60, 220, 60];
const SPEED: [u8; 3] = [240, 60, 240];
const MEASURED: [u8; 3] = [255, 240, 0];
const REPROJECTED: [u8; 3] = [30, 120, 255];
const REGION: [u8; 3] = [255, 255, 255];

pub fn run(args: &CalibrateArgs) -> anyhow::Result<Verdict> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read config {}", args.config.display()))?;
    let origin = args.config.display().to_string();
    let config = vigil_core::config::check(&origin, &text, None)?;
    let base = args
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut done = 0;
    for (id, camera) in &config.cameras {
        if args.camera.as_ref().is_some_and(|c| c != id) {
            continue;
        }
        let Some(hom) = &camera.homography else {
            println!("camera {id}: no [homography] configured, skipped");
            continue;
        };
        let image: Vec<Point> = hom.points.iter().map(|p| Point::from(p.image)).collect();
        let ground: Vec<Point> = hom.points.iter().map(|p| Point::from(p.ground)).collect();
        let (to_image, inliers) = Homography::fit_robust(&ground, &image, args.tolerance_px)
            .with_context(|| format!("{origin}: cameras.{id}.homography"))?;
        let to_ground = to_image
            .inverse()
            .context("the fitted homography is not invertible")?;
        println!(
            "camera {id}: {} point pairs, {} inliers",
            image.len(),
            inliers.iter().filter(|&&b| b).count()
        );
        println!(
            "  {:>3}  {:>16}  {:>16}  {:>9}  {:>8}",
            "#", "image px", "ground m", "err px", "err m"
        );
        let (mut sum_px, mut n_px) = (0.0, 0);
        for (i, ((im, gr), inlier)) in image.iter().zip(&ground).zip(&inliers).enumerate() {
            let px = to_image.apply(*gr).map(|p| p.distance(*im));
            let m = to_ground.apply(*im).map(|g| g.distance(*gr));
            if let (Some(e), true) = (px, *inlier) {
                sum_px += e * e;
                n_px += 1;
            }
            println!(
                "  {i:>3}  ({:>6.1}, {:>6.1})  ({:>6.2}, {:>6.2})  {:>9}  {:>8}{}",
                im.x,
                im.y,
                gr.x,
                gr.y,
                px.map_or("-".into(), |e| format!("{e:.2}")),
                m.map_or("-".into(), |e| format!("{e:.3}")),
                if *inlier { "" } else { "  outlier" }
            );
        }
        println!(
            "  RMS reprojection error over inliers: {:.2} px",
            (sum_px / n_px.max(1) as f64).sqrt()
        );

        let spec = SourceSpec::from_config(id, camera, base)?;
        let mut frame = first_frame(spec, Duration::from_secs(20))
            .with_context(|| format!("camera {id}: reading a frame"))?;
        draw_overlay(&mut frame, &config, id, &to_image, &image, &ground);
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        let path = args.out.join(format!("calibration-{id}.png"));
        image::RgbImage::from_raw(frame.width, frame.height, frame.data)
            .context("frame buffer")?
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("  overlay written to {}", path.display());
        done += 1;
    }
    if done == 0 {
        bail!("no camera with a [homography] to calibrate in {origin}");
    }
    Ok(Verdict::Passed)
}

fn draw_overlay(
    frame: &mut RgbImage,
    config: &SiteConfig,
    camera: &str,
    to_image: &Homography,
    image: &[Point],
    ground: &[Point],
) {
    // A 1 m grid across the calibrated area, extended by half its size.
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for g in ground {
        (x0, x1, y0, y1) = (x0.min(g.x), x1.max(g.x), y0.min(g.y), y1.max(g.y));
    }
    let (mx, my) = ((x1 - x0) * 0.5 + 2.0, (y1 - y0) * 0.5 + 2.0);
    let (x0, x1, y0, y1) = (
        (x0 - mx).floor(),
        (x1 + mx).ceil(),
        (y0 - my).floor(),
        (y1 + my).ceil(),
    );
    let project = |x: f64, y: f64| to_image.apply(Point::new(x, y)).map(|p| (p.x, p.y));
    let draw_ground = |frame: &mut RgbImage, a: (f64, f64), b: (f64, f64), width: f64| {
        // Short steps, so a segment crossing the horizon is not drawn wrapped.
        let steps = 40;
        for k in 0..steps {
            let (t0, t1) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            let p = project(a.0 + t0 * (b.0 - a.0), a.1 + t0 * (b.1 - a.1));
            let q = project(a.0 + t1 * (b.0 - a.0), a.1 + t1 * (b.1 - a.1));
            if let (Some(p), Some(q)) = (p, q) {
                line(frame, p, q, width, GRID);
            }
        }
    };
    let mut x = x0;
    while x <= x1 {
        draw_ground(frame, (x, y0), (x, y1), 1.0);
        x += 1.0;
    }
    let mut y = y0;
    while y <= y1 {
        let width = if (y.rem_euclid(10.0)).abs() < 1e-9 {
            2.0
        } else {
            1.0
        };
        draw_ground(frame, (x0, y), (x1, y), width);
        y += 5.0;
    }
    let seg = |frame: &mut RgbImage, l: &ImageLine, colour: [u8; 3]| {
        let s = segment(l);
        line(frame, (s.a.x, s.a.y), (s.b.x, s.b.y), 3.0, colour);
    };
    for approach in config.approaches.values().filter(|a| a.camera == camera) {
        seg(frame, &approach.stop_line, STOP);
        if let Some(c) = &approach.clearance_line {
            seg(frame, c, CLEARANCE);
        }
        seg(frame, &approach.travel, TRAVEL);
        let head = Point::from(approach.travel[1]);
        disc(frame, head.x, head.y, 5.0, TRAVEL);
        for lane in approach.lanes.values() {
            let n = lane.polygon.len();
            for i in 0..n {
                let (a, b) = (lane.polygon[i], lane.polygon[(i + 1) % n]);
                line(frame, (a[0], a[1]), (b[0], b[1]), 2.0, LANE);
            }
        }
        if let Some(speed) = &approach.speed {
            seg(frame, &speed.entry_line, SPEED);
            seg(frame, &speed.exit_line, SPEED);
        }
    }
    // The detect region: what the detector looks at (dashed, so the lines
    // inside it stay readable).
    if let Some(region) = config
        .cameras
        .get(camera)
        .and_then(|c| c.detect_region_px())
    {
        let [x, y, w, h] = region.map(f64::from);
        let corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)];
        for (i, &a) in corners.iter().enumerate() {
            let b = corners[(i + 1) % 4];
            let dashes = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) / 12.0).ceil() as usize;
            for k in (0..dashes).step_by(2) {
                let t0 = k as f64 / dashes as f64;
                let t1 = ((k + 1) as f64 / dashes as f64).min(1.0);
                let at = |t: f64| (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
                line(frame, at(t0), at(t1), 2.0, REGION);
            }
        }
    }
    for (im, gr) in image.iter().zip(ground) {
        ring(frame, im.x, im.y, 6.0, 2.0, MEASURED);
        if let Some(p) = to_image.apply(*gr) {
            disc(frame, p.x, p.y, 2.5, REPROJECTED);
        }
    }
}
