//! YOLOv8-format object detection: letterbox, one ONNX run, per-anchor
//! class argmax, class-aware NMS, and the mapping from model labels to the
//! road-user types the rules reason about.

use std::collections::BTreeMap;

use vigil_core::config::TRAFFIC_LIGHT;
pub use vigil_core::detection::{BBox, Detection, DetectionClass};
use vigil_core::image::RgbImage;
use vigil_core::RoadUserClass;

use crate::letterbox::{letterbox_into, Letterbox};
use crate::model::OnnxModel;
use crate::InferError;

/// A detection in the model's own class numbering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawDetection {
    pub class_id: usize,
    pub score: f32,
    /// Source-image pixels.
    pub bbox: BBox,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    pub input_size: u32,
    pub confidence: f32,
    pub nms_iou: f32,
    pub max_detections: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            input_size: 640,
            confidence: 0.25,
            nms_iou: 0.45,
            max_detections: 300,
        }
    }
}

pub struct Detector {
    model: OnnxModel,
    config: DetectorConfig,
    labels: Vec<String>,
    /// Model class id -> meaning; `None` for classes Vigil ignores.
    class_map: Vec<Option<DetectionClass>>,
}

impl Detector {
    /// Wraps a YOLOv8-format model. `labels` are its classes in output
    /// order; `classes` maps road-user types (or `traffic_light`) to labels,
    /// as in the site config's `[detector.classes]`.
    pub fn new(
        model: OnnxModel,
        labels: Vec<String>,
        classes: &BTreeMap<String, Vec<String>>,
        config: DetectorConfig,
    ) -> Result<Self, InferError> {
        let shape_err = |message: String| InferError::Shape {
            model: model.name().to_owned(),
            message,
        };
        let s = i64::from(config.input_size);
        match model.input_shape() {
            [_, 3, h, w] if (*h == s || *h < 0) && (*w == s || *w < 0) => {}
            other => {
                return Err(shape_err(format!(
                    "a YOLO detector at input size {s} needs an input of shape [N, 3, {s}, {s}], the model takes {other:?}"
                )))
            }
        }
        let mut class_map = vec![None; labels.len()];
        for (kind, model_labels) in classes {
            let meaning = if kind == TRAFFIC_LIGHT {
                DetectionClass::TrafficLight
            } else {
                let class = kind
                    .parse::<RoadUserClass>()
                    .map_err(|e| shape_err(format!("class map: {e}")))?;
                DetectionClass::RoadUser(class)
            };
            for label in model_labels {
                let id = labels.iter().position(|l| l == label).ok_or_else(|| {
                    shape_err(format!("class map: the model has no class {label:?}"))
                })?;
                class_map[id] = Some(meaning);
            }
        }
        Ok(Self {
            model,
            config,
            labels,
            class_map,
        })
    }

    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The model input for one image (letterboxed, planar RGB in [0, 1]).
    pub fn input_tensor(&self, image: &RgbImage) -> Vec<f32> {
        let s = self.config.input_size as usize;
        let mut input = vec![0.0f32; 3 * s * s];
        letterbox_into(image, self.config.input_size, &mut input);
        input
    }

    /// Runs the model alone on a prepared input and discards the output:
    /// the floor that `vigil bench detect` compares the full path against.
    pub fn infer_only(&mut self, input: Vec<f32>) -> Result<(), InferError> {
        let s = self.config.input_size as usize;
        self.model.run_f32(&[1, 3, s, s], input, |_| Ok(()))
    }

    /// Every detection above the confidence threshold, in model classes.
    pub fn detect_raw(&mut self, image: &RgbImage) -> Result<Vec<RawDetection>, InferError> {
        Ok(self
            .detect_raw_batch(&[image])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Detections of the configured classes over the whole frame plus a
    /// `cols x rows` grid of overlapping tiles, each scaled up to the network
    /// input, merged by class-aware NMS. Small, distant two-wheelers gain
    /// pixels; the cost is one more inference per tile.
    pub fn detect_tiled(
        &mut self,
        image: &RgbImage,
        cols: u32,
        rows: u32,
    ) -> Result<Vec<Detection>, InferError> {
        let mut all = self.detect(image)?;
        if cols * rows > 1 {
            let (tw, th) = (image.width / cols, image.height / rows);
            let (ox, oy) = (tw / 5, th / 5);
            for r in 0..rows {
                for c in 0..cols {
                    let x = i64::from(c * tw) - i64::from(ox);
                    let y = i64::from(r * th) - i64::from(oy);
                    let (w, h) = (i64::from(tw + 2 * ox), i64::from(th + 2 * oy));
                    let Some(tile) = image.crop(x, y, w, h) else {
                        continue;
                    };
                    let (x0, y0) = (x.max(0) as f32, y.max(0) as f32);
                    for mut d in self.detect(&tile)? {
                        d.bbox.x1 += x0;
                        d.bbox.x2 += x0;
                        d.bbox.y1 += y0;
                        d.bbox.y2 += y0;
                        all.push(d);
                    }
                }
            }
        }
        all.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut kept: Vec<Detection> = Vec::with_capacity(all.len());
        for d in all {
            if !kept
                .iter()
                .any(|k| k.class == d.class && k.bbox.iou(&d.bbox) > self.config.nms_iou)
            {
                kept.push(d);
            }
        }
        Ok(kept)
    }

    /// Detections of the configured classes only.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, InferError> {
        Ok(self
            .detect_batch(&[image])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Detects in several images (one per camera), in one run when the model
    /// has a dynamic batch dimension, else one run each.
    pub fn detect_batch(
        &mut self,
        images: &[&RgbImage],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let raw = self.detect_raw_batch(images)?;
        Ok(raw
            .into_iter()
            .map(|dets| {
                dets.into_iter()
                    .filter_map(|d| {
                        let class = self.class_map.get(d.class_id).copied().flatten()?;
                        Some(Detection {
                            class,
                            class_id: d.class_id,
                            score: d.score,
                            bbox: d.bbox,
                        })
                    })
                    .collect()
            })
            .collect())
    }

    pub fn detect_raw_batch(
        &mut self,
        images: &[&RgbImage],
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        if !self.model.batchable() && images.len() > 1 {
            let mut out = Vec::with_capacity(images.len());
            for image in images {
                out.extend(self.detect_raw_batch(&[image])?);
            }
            return Ok(out);
        }
        let s = self.config.input_size as usize;
        let per_image = 3 * s * s;
        let mut input = vec![0.0f32; per_image * images.len()];
        let boxes: Vec<Letterbox> = images
            .iter()
            .zip(input.chunks_mut(per_image))
            .map(|(img, chunk)| letterbox_into(img, self.config.input_size, chunk))
            .collect();
        let shape = [images.len(), 3, s, s];
        let config = self.config;
        let classes = self.labels.len();
        let name = self.model.name().to_owned();
        self.model.run_f32(&shape, input, |outputs| {
            let (out_shape, data) = outputs.first().ok_or_else(|| InferError::Run {
                model: name.clone(),
                message: "the model produced no output".into(),
            })?;
            let (channels, anchors) = match out_shape.as_slice() {
                [n, c, a] if *n as usize == boxes.len() && *c as usize >= 4 + classes => {
                    (*c as usize, *a as usize)
                }
                other => {
                    return Err(InferError::Shape {
                        model: name.clone(),
                        message: format!(
                        "output {other:?} is not [{}, 4 + {classes} classes (+ extras), anchors]",
                        boxes.len()
                    ),
                    })
                }
            };
            Ok(boxes
                .iter()
                .enumerate()
                .map(|(i, lb)| {
                    let slice = &data[i * channels * anchors..(i + 1) * channels * anchors];
                    decode(slice, anchors, classes, lb, &config)
                })
                .collect())
        })
    }
}

/// Turns one image's `[4 + classes (+ extras), anchors]` output into detections.
fn decode(
    out: &[f32],
    anchors: usize,
    classes: usize,
    lb: &Letterbox,
    config: &DetectorConfig,
) -> Vec<RawDetection> {
    // Class argmax row by row: the output is channel-major, so this walks memory in order.
    let mut best = vec![f32::NEG_INFINITY; anchors];
    let mut best_class = vec![0usize; anchors];
    for c in 0..classes {
        let row = &out[(4 + c) * anchors..(5 + c) * anchors];
        for (i, &v) in row.iter().enumerate() {
            if v > best[i] {
                best[i] = v;
                best_class[i] = c;
            }
        }
    }
    let mut candidates: Vec<(usize, f32)> = best
        .iter()
        .enumerate()
        .filter(|(_, &s)| s >= config.confidence)
        .map(|(i, &s)| (i, s))
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept: Vec<(usize, BBox)> = Vec::new();
    for (i, _) in candidates {
        let (cx, cy, w, h) = (
            out[i],
            out[anchors + i],
            out[2 * anchors + i],
            out[3 * anchors + i],
        );
        let bbox = BBox {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        };
        let class = best_class[i];
        let suppressed = kept
            .iter()
            .any(|(k, kb)| best_class[*k] == class && kb.iou(&bbox) > config.nms_iou);
        if suppressed {
            continue;
        }
        kept.push((i, bbox));
        if kept.len() == config.max_detections {
            break;
        }
    }
    kept.into_iter()
        .map(|(i, b)| {
            let (x1, y1) = lb.to_source(b.x1, b.y1);
            let (x2, y2) = lb.to_source(b.x2, b.y2);
            RawDetection {
                class_id: best_class[i],
                score: best[i],
                bbox: BBox { x1, y1, x2, y2 },
            }
        })
        .collect()
}
