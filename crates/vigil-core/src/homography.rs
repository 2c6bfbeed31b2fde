//! The image↔ground homography of a camera that looks at a flat road.
//!
//! Fitted by the normalised direct linear transform (Hartley): both point
//! sets are centred and scaled to unit average distance, the 2n x 9 system
//! is solved by the eigenvector of AᵀA with the smallest eigenvalue, and the
//! normalisation is undone. With more than four pairs, RANSAC first finds
//! the largest set of pairs consistent within a tolerance, so one mistyped
//! point cannot bend the whole ground plane.

use nalgebra::{Matrix3, SMatrix, SymmetricEigen, Vector3};

use crate::geometry::{has_four_in_general_position, Point};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HomographyError {
    #[error("a homography needs at least 4 point pairs, got {0}")]
    TooFewPoints(usize),
    #[error("the points are degenerate (collinear or repeated): no homography fits them")]
    Degenerate,
}

/// A plane-to-plane projective map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography {
    pub matrix: Matrix3<f64>,
}

impl Homography {
    /// Maps a point; `None` when it lies on the line sent to infinity
    /// (e.g. above the horizon for image -> ground).
    pub fn apply(&self, p: Point) -> Option<Point> {
        let v = self.matrix * Vector3::new(p.x, p.y, 1.0);
        (v.z.abs() > 1e-12).then(|| Point::new(v.x / v.z, v.y / v.z))
    }

    pub fn inverse(&self) -> Option<Homography> {
        self.matrix
            .try_inverse()
            .map(|matrix| Homography { matrix })
    }

    /// Least-squares fit of `dst ≈ H(src)` to every pair (normalised DLT).
    pub fn fit(src: &[Point], dst: &[Point]) -> Result<Homography, HomographyError> {
        let n = src.len().min(dst.len());
        if n < 4 {
            return Err(HomographyError::TooFewPoints(n));
        }
        if !has_four_in_general_position(&src[..n], 1e-6)
            || !has_four_in_general_position(&dst[..n], 1e-6)
        {
            return Err(HomographyError::Degenerate);
        }
        let (ts, s) = normalise(&src[..n]);
        let (td, d) = normalise(&dst[..n]);
        let mut ata = SMatrix::<f64, 9, 9>::zeros();
        for (p, q) in s.iter().zip(&d) {
            let rows = [
                [-p.x, -p.y, -1.0, 0.0, 0.0, 0.0, q.x * p.x, q.x * p.y, q.x],
                [0.0, 0.0, 0.0, -p.x, -p.y, -1.0, q.y * p.x, q.y * p.y, q.y],
            ];
            for r in rows {
                let v = SMatrix::<f64, 9, 1>::from_row_slice(&r);
                ata += v * v.transpose();
            }
        }
        let eig = SymmetricEigen::new(ata);
        let (min_i, _) =
            eig.eigenvalues
                .iter()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |acc, (i, &v)| if v < acc.1 { (i, v) } else { acc },
                );
        let h = eig.eigenvectors.column(min_i);
        let hn = Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
        let td_inv = td.try_inverse().ok_or(HomographyError::Degenerate)?;
        let mut matrix = td_inv * hn * ts;
        let scale = matrix[(2, 2)];
        if scale.abs() < 1e-15 || !matrix.iter().all(|v| v.is_finite()) {
            return Err(HomographyError::Degenerate);
        }
        matrix /= scale;
        Ok(Homography { matrix })
    }

    /// RANSAC over minimal 4-point samples, then a least-squares refit on
    /// the largest consensus set. `tolerance` is in `dst` units. Sampling
    /// is seeded, so the same pairs always give the same fit.
    pub fn fit_robust(
        src: &[Point],
        dst: &[Point],
        tolerance: f64,
    ) -> Result<(Homography, Vec<bool>), HomographyError> {
        let n = src.len().min(dst.len());
        let all = Homography::fit(src, dst)?;
        if n <= 4 {
            return Ok((all, vec![true; n]));
        }
        let inliers_of = |h: &Homography| -> Vec<bool> {
            (0..n)
                .map(|i| {
                    h.apply(src[i])
                        .is_some_and(|p| p.distance(dst[i]) <= tolerance)
                })
                .collect()
        };
        let mut best = inliers_of(&all);
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        for _ in 0..200 {
            let mut pick = [0usize; 4];
            for k in 0..4 {
                pick[k] = loop {
                    let c = next(n);
                    if !pick[..k].contains(&c) {
                        break c;
                    }
                };
            }
            let s: Vec<Point> = pick.iter().map(|&i| src[i]).collect();
            let d: Vec<Point> = pick.iter().map(|&i| dst[i]).collect();
            if let Ok(h) = Homography::fit(&s, &d) {
                let inl = inliers_of(&h);
                if inl.iter().filter(|&&b| b).count() > best.iter().filter(|&&b| b).count() {
                    best = inl;
                }
            }
        }
        let s: Vec<Point> = (0..n).filter(|&i| best[i]).map(|i| src[i]).collect();
        let d: Vec<Point> = (0..n).filter(|&i| best[i]).map(|i| dst[i]).collect();
        let refit = Homography::fit(&s, &d)?;
        let inliers = inliers_of(&refit);
        Ok((refit, inliers))
    }
}

/// Similarity transform that centres points and scales them to mean distance √2.
fn normalise(points: &[Point]) -> (Matrix3<f64>, Vec<Point>) {
    let n = points.len() as f64;
    let (cx, cy) = points
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.x / n, a.1 + p.y / n));
    let mean_dist = points
        .iter()
        .map(|p| ((p.x - cx).powi(2) + (p.y - cy).powi(2)).sqrt())
        .sum::<f64>()
        / n;
    let s = if mean_dist > 0.0 {
        std::f64::consts::SQRT_2 / mean_dist
    } else {
        1.0
    };
    let t = Matrix3::new(s, 0.0, -s * cx, 0.0, s, -s * cy, 0.0, 0.0, 1.0);
    let out = points
        .iter()
        .map(|p| Point::new(s * (p.x - cx), s * (p.y - cy)))
        .collect();
    (t, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> Homography {
        // A camera looking down a road: strong perspective.
        Homography {
            matrix: Matrix3::new(0.05, 0.01, -20.0, 0.002, 0.12, -30.0, 0.0001, 0.004, 1.0),
        }
    }

    fn pairs(h: &Homography, pts: &[(f64, f64)]) -> (Vec<Point>, Vec<Point>) {
        let src: Vec<Point> = pts.iter().map(|&(x, y)| Point::new(x, y)).collect();
        let dst: Vec<Point> = src.iter().map(|p| h.apply(*p).expect("finite")).collect();
        (src, dst)
    }

    #[test]
    fn four_exact_pairs_recover_the_map() {
        let h = truth();
        let (src, dst) = pairs(
            &h,
            &[
                (100.0, 500.0),
                (900.0, 520.0),
                (600.0, 300.0),
                (350.0, 290.0),
            ],
        );
        let fit = Homography::fit(&src, &dst).expect("fit");
        for p in [Point::new(500.0, 400.0), Point::new(200.0, 350.0)] {
            let (a, b) = (h.apply(p).expect("a"), fit.apply(p).expect("b"));
            assert!(a.distance(b) < 1e-6, "{a:?} vs {b:?}");
        }
        let back = fit
            .inverse()
            .expect("invertible")
            .apply(dst[2])
            .expect("back");
        assert!(back.distance(src[2]) < 1e-6, "round trip");
    }

    #[test]
    fn ransac_ignores_a_mistyped_point() {
        let h = truth();
        let grid: Vec<(f64, f64)> = (0..4)
            .flat_map(|i| (0..3).map(move |j| (150.0 + 200.0 * i as f64, 280.0 + 110.0 * j as f64)))
            .collect();
        let (src, mut dst) = pairs(&h, &grid);
        dst[5].x += 25.0; // a typo in one ground coordinate
        let (fit, inliers) = Homography::fit_robust(&src, &dst, 0.5).expect("fit");
        assert!(
            !inliers[5] && inliers.iter().filter(|&&b| b).count() == 11,
            "{inliers:?}"
        );
        let p = Point::new(480.0, 360.0);
        assert!(fit.apply(p).expect("a").distance(h.apply(p).expect("b")) < 1e-6);
    }

    #[test]
    fn degenerate_inputs_are_errors_not_garbage() {
        let line: Vec<Point> = (0..5)
            .map(|i| Point::new(i as f64, 2.0 * i as f64))
            .collect();
        assert_eq!(
            Homography::fit(&line, &line),
            Err(HomographyError::Degenerate)
        );
        assert_eq!(
            Homography::fit(&line[..3], &line[..3]),
            Err(HomographyError::TooFewPoints(3))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Any four image points in general position and a ground rectangle:
        /// the fit maps each point onto its partner and back.
        #[test]
        fn fitted_maps_round_trip(
            xs in proptest::array::uniform4(0.0f64..1920.0),
            ys in proptest::array::uniform4(0.0f64..1080.0),
            w in 2.0f64..30.0,
            l in 2.0f64..60.0,
        ) {
            let src: Vec<Point> = xs.iter().zip(&ys).map(|(&x, &y)| Point::new(x, y)).collect();
            proptest::prop_assume!(has_four_in_general_position(&src, 1e-2));
            let dst = vec![Point::new(0.0, 0.0), Point::new(w, 0.0), Point::new(w, l), Point::new(0.0, l)];
            // Skip orderings where the quadrilateral folds over (no projective map keeps it).
            let fit = match Homography::fit(&src, &dst) {
                Ok(f) => f,
                Err(_) => return Ok(()),
            };
            let inv = fit.inverse().expect("a fitted homography is invertible");
            for (s, d) in src.iter().zip(&dst) {
                let Some(g) = fit.apply(*s) else { continue };
                proptest::prop_assert!(g.distance(*d) < 1e-6 * (1.0 + w + l), "{g:?} vs {d:?}");
                let back = inv.apply(g).expect("back");
                proptest::prop_assert!(back.distance(*s) < 1e-5 * 2000.0, "{back:?} vs {s:?}");
            }
        }
    }
}
