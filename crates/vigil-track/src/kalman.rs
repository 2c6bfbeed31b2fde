//! A constant-velocity Kalman filter over a box's centre and size.
//!
//! State: [cx, cy, w, h, vx, vy, vw, vh] in pixels and pixels per second.
//! Time steps come from frame timestamps, so a variable frame rate or a
//! dropped frame changes the prediction, not the model.

use nalgebra::{SMatrix, SVector};
use vigil_core::detection::BBox;

type State = SVector<f64, 8>;
type Cov = SMatrix<f64, 8, 8>;
type Meas = SVector<f64, 4>;

#[derive(Debug, Clone)]
pub struct BoxFilter {
    x: State,
    p: Cov,
}

/// Process noise: how fast velocity may change, relative to box height per second².
const ACCEL_NOISE: f64 = 2.0;
/// Measurement noise, relative to box height.
const MEAS_NOISE: f64 = 0.05;

impl BoxFilter {
    pub fn new(b: &BBox) -> Self {
        let (cx, cy, w, h) = centre(b);
        let mut x = State::zeros();
        x[0] = cx;
        x[1] = cy;
        x[2] = w;
        x[3] = h;
        let s = h.max(1.0);
        let mut p = Cov::identity();
        for i in 0..4 {
            p[(i, i)] = (0.1 * s).powi(2);
        }
        for i in 4..8 {
            // Unknown velocity at birth: up to a few box heights per second.
            p[(i, i)] = (3.0 * s).powi(2);
        }
        Self { x, p }
    }

    /// Advances the state by `dt` seconds.
    pub fn predict(&mut self, dt: f64) {
        let dt = dt.clamp(0.0, 5.0);
        let mut f = Cov::identity();
        for i in 0..4 {
            f[(i, i + 4)] = dt;
        }
        let s = self.x[3].max(1.0);
        let q_acc = (ACCEL_NOISE * s).powi(2);
        let mut q = Cov::zeros();
        for i in 0..4 {
            // Discrete white-noise acceleration model.
            q[(i, i)] = q_acc * dt.powi(4) / 4.0;
            q[(i, i + 4)] = q_acc * dt.powi(3) / 2.0;
            q[(i + 4, i)] = q_acc * dt.powi(3) / 2.0;
            q[(i + 4, i + 4)] = q_acc * dt.powi(2);
        }
        self.x = f * self.x;
        self.x[2] = self.x[2].max(1.0);
        self.x[3] = self.x[3].max(1.0);
        self.p = f * self.p * f.transpose() + q;
    }

    /// Folds in a measured box.
    pub fn update(&mut self, b: &BBox) {
        let (cx, cy, w, h) = centre(b);
        let z = Meas::new(cx, cy, w, h);
        let mut hm = SMatrix::<f64, 4, 8>::zeros();
        for i in 0..4 {
            hm[(i, i)] = 1.0;
        }
        let r = SMatrix::<f64, 4, 4>::from_diagonal_element((MEAS_NOISE * h.max(1.0)).powi(2));
        let y = z - hm * self.x;
        let s = hm * self.p * hm.transpose() + r;
        let Some(s_inv) = s.try_inverse() else { return };
        let k = self.p * hm.transpose() * s_inv;
        self.x += k * y;
        self.p = (Cov::identity() - k * hm) * self.p;
    }

    pub fn bbox(&self) -> BBox {
        let (cx, cy, w, h) = (self.x[0], self.x[1], self.x[2], self.x[3]);
        BBox {
            x1: (cx - w / 2.0) as f32,
            y1: (cy - h / 2.0) as f32,
            x2: (cx + w / 2.0) as f32,
            y2: (cy + h / 2.0) as f32,
        }
    }

    /// Centre velocity in pixels per second.
    pub fn velocity(&self) -> (f64, f64) {
        (self.x[4], self.x[5])
    }
}

fn centre(b: &BBox) -> (f64, f64, f64, f64) {
    let (w, h) = (f64::from(b.width()), f64::from(b.height()));
    (
        f64::from(b.x1) + w / 2.0,
        f64::from(b.y1) + h / 2.0,
        w.max(1.0),
        h.max(1.0),
    )
}
