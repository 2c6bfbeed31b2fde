//! YOLOv8-format object detection: letterbox, one ONNX run, per-anchor
//! class argmax, class-aware NMS, and the mapping from model labels to the
//! road-user types the rules reason about.
//!
//! Optionally each frame is also seen through extra [`Views`]: mirrored
//! left-right, and/or as a grid of tiles over part of the frame, each scaled
//! up to the network input. The views' detections are mapped back to frame
//! pixels and merged (weighted box fusion or NMS). On the Hanoi riders a
//! mirrored view is the cheapest recall gain (two inferences a frame); tiles
//! help small, distant riders only, so a grid is best kept to the band of the
//! frame where they are.

use std::collections::BTreeMap;

use vigil_core::config::{DetectorViews, ViewMerge, TRAFFIC_LIGHT};
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
    /// Extra views merged into [`Detector::detect`]; the default is none.
    pub views: Views,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            input_size: 640,
            confidence: 0.25,
            nms_iou: 0.45,
            max_detections: 300,
            views: Views::default(),
        }
    }
}

impl From<&vigil_core::config::Detector> for DetectorConfig {
    /// Input size, thresholds and views from the site config's `[detector]`.
    fn from(d: &vigil_core::config::Detector) -> Self {
        Self {
            input_size: d.input_size,
            confidence: d.confidence as f32,
            nms_iou: d.nms_iou as f32,
            views: Views::from(&d.views),
            ..Self::default()
        }
    }
}

/// A `cols x rows` grid of overlapping tiles over part of the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileGrid {
    pub cols: u32,
    pub rows: u32,
    /// x1, y1, x2, y2 of the covered part, as fractions of the frame.
    pub region: [f32; 4],
    /// How far each tile reaches into its neighbours, as a fraction of its
    /// size on each side.
    pub overlap: f32,
}

impl TileGrid {
    /// A grid over the whole frame with the usual 20% overlap.
    pub fn whole_frame(cols: u32, rows: u32) -> Self {
        Self {
            cols,
            rows,
            region: [0.0, 0.0, 1.0, 1.0],
            overlap: 0.2,
        }
    }

    /// The tiles of a `width x height` frame as `[x, y, w, h]` pixel
    /// rectangles, clipped to the frame; tiles with nothing inside are left
    /// out.
    pub fn rects(&self, width: u32, height: u32) -> Vec<[u32; 4]> {
        let (fw, fh) = (f64::from(width), f64::from(height));
        let r = self.region.map(|v| f64::from(v).clamp(0.0, 1.0));
        let (cols, rows) = (self.cols.max(1), self.rows.max(1));
        let tw = (r[2] - r[0]) * fw / f64::from(cols);
        let th = (r[3] - r[1]) * fh / f64::from(rows);
        let overlap = f64::from(self.overlap.max(0.0));
        let (ox, oy) = (tw * overlap, th * overlap);
        let mut out = Vec::with_capacity((cols * rows) as usize);
        for row in 0..rows {
            for col in 0..cols {
                let x = r[0] * fw + f64::from(col) * tw - ox;
                let y = r[1] * fh + f64::from(row) * th - oy;
                let x0 = x.round().clamp(0.0, fw);
                let y0 = y.round().clamp(0.0, fh);
                let x1 = (x + tw + 2.0 * ox).round().clamp(0.0, fw);
                let y1 = (y + th + 2.0 * oy).round().clamp(0.0, fh);
                if x1 > x0 && y1 > y0 {
                    out.push([x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32]);
                }
            }
        }
        out
    }
}

/// The views of each frame that [`Detector::detect`] merges: always the
/// whole frame, plus optionally its mirror image and a tile grid. Each view
/// is one more inference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Views {
    /// Also the frame mirrored left-right.
    pub flip: bool,
    pub tiles: Option<TileGrid>,
    pub merge: ViewMerge,
    /// Same-class boxes from different views overlapping more than this
    /// are one object.
    pub merge_iou: f32,
}

impl Default for Views {
    fn default() -> Self {
        Self {
            flip: false,
            tiles: None,
            merge: ViewMerge::Wbf,
            merge_iou: 0.55,
        }
    }
}

impl From<&DetectorViews> for Views {
    fn from(v: &DetectorViews) -> Self {
        Self {
            flip: v.flip,
            tiles: v.tiles.as_ref().map(|t| TileGrid {
                cols: t.grid[0],
                rows: t.grid[1],
                region: t.region.map(|c| c as f32),
                overlap: t.overlap as f32,
            }),
            merge: v.merge,
            merge_iou: v.merge_iou as f32,
        }
    }
}

impl Views {
    /// Only the whole frame: one inference, no merging.
    pub fn is_plain(&self) -> bool {
        !self.flip && self.tiles.is_none()
    }

    /// Inferences per `width x height` frame.
    pub fn inferences(&self, width: u32, height: u32) -> usize {
        1 + usize::from(self.flip) + self.tiles.map_or(0, |t| t.rects(width, height).len())
    }
}

/// A tile detection closer than this (source pixels) to a tile edge that
/// lies inside the frame is cut by the tile, and left to the other views.
const TILE_EDGE_PX: f32 = 2.0;

/// How one view's boxes map back to the frame.
#[derive(Debug, Clone, Copy)]
enum ViewMap {
    Whole,
    /// Mirrored left-right; the frame's width.
    Mirror(f32),
    /// A tile at `[x, y, w, h]` of a frame `width x height`.
    Tile {
        rect: [u32; 4],
        width: u32,
        height: u32,
    },
}

impl ViewMap {
    /// The detection in frame pixels; `None` for a box a tile edge cuts.
    fn to_frame(self, mut d: RawDetection) -> Option<RawDetection> {
        match self {
            ViewMap::Whole => {}
            ViewMap::Mirror(width) => {
                let (x1, x2) = (width - d.bbox.x2, width - d.bbox.x1);
                d.bbox.x1 = x1;
                d.bbox.x2 = x2;
            }
            ViewMap::Tile {
                rect: [x, y, w, h],
                width,
                height,
            } => {
                // Tile pixels; only edges inside the frame cut objects.
                let b = d.bbox;
                let cut = (x > 0 && b.x1 <= TILE_EDGE_PX)
                    || (y > 0 && b.y1 <= TILE_EDGE_PX)
                    || (x + w < width && b.x2 >= w as f32 - TILE_EDGE_PX)
                    || (y + h < height && b.y2 >= h as f32 - TILE_EDGE_PX);
                if cut {
                    return None;
                }
                let (ox, oy) = (x as f32, y as f32);
                d.bbox = BBox {
                    x1: b.x1 + ox,
                    y1: b.y1 + oy,
                    x2: b.x2 + ox,
                    y2: b.y2 + oy,
                };
            }
        }
        Some(d)
    }
}

/// The image mirrored left-right.
fn mirrored(image: &RgbImage) -> RgbImage {
    let row = image.width as usize * 3;
    let mut data = Vec::with_capacity(image.data.len());
    for line in image.data.chunks_exact(row.max(1)) {
        for px in line.chunks_exact(3).rev() {
            data.extend_from_slice(px);
        }
    }
    RgbImage {
        width: image.width,
        height: image.height,
        data,
    }
}

/// Merges detections of the same frame from several views: same-class boxes
/// overlapping more than `iou` are one object. `Nms` keeps the best of them;
/// `Wbf` (weighted box fusion) keeps the score-weighted mean box with the
/// best score, which places a box better than any single view. The result
/// is in descending score order.
pub fn merge_views(mut dets: Vec<RawDetection>, how: ViewMerge, iou: f32) -> Vec<RawDetection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    match how {
        ViewMerge::Nms => {
            let mut kept: Vec<RawDetection> = Vec::with_capacity(dets.len());
            for d in dets {
                if !kept
                    .iter()
                    .any(|k| k.class_id == d.class_id && k.bbox.iou(&d.bbox) > iou)
                {
                    kept.push(d);
                }
            }
            kept
        }
        ViewMerge::Wbf => {
            // Per cluster: the fused detection, the score sum and the
            // score-weighted coordinate sums.
            let mut clusters: Vec<(RawDetection, f32, [f32; 4])> = Vec::new();
            for d in dets {
                let best = clusters
                    .iter_mut()
                    .filter(|(c, _, _)| c.class_id == d.class_id)
                    .map(|c| (c.0.bbox.iou(&d.bbox), c))
                    .filter(|(o, _)| *o > iou)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let b = d.bbox;
                let weighted = [b.x1, b.y1, b.x2, b.y2].map(|v| v * d.score);
                match best {
                    Some((_, (fused, weight, sums))) => {
                        *weight += d.score;
                        for (s, w) in sums.iter_mut().zip(weighted) {
                            *s += w;
                        }
                        if *weight > 0.0 {
                            fused.bbox = BBox {
                                x1: sums[0] / *weight,
                                y1: sums[1] / *weight,
                                x2: sums[2] / *weight,
                                y2: sums[3] / *weight,
                            };
                        }
                    }
                    None => clusters.push((d, d.score, weighted)),
                }
            }
            clusters.into_iter().map(|(fused, _, _)| fused).collect()
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

/// Builds a frame's detector inputs (every configured view, letterboxed)
/// without the model: `Send + Sync`, so a camera's own thread can prepare
/// the next frame while the detector runs on this one. On a GPU the
/// letterbox of a 1080p frame costs about what the inference does.
#[derive(Debug, Clone, Copy)]
pub struct Preparer {
    config: DetectorConfig,
}

/// One frame ready for [`Detector::detect_prepared`]: each view's input
/// tensor with how its boxes map back to the frame.
pub struct Prepared {
    views: Vec<PreparedView>,
    /// The settings it was prepared with; a detector with others refuses it.
    config: DetectorConfig,
}

struct PreparedView {
    map: ViewMap,
    letterbox: Letterbox,
    input: Vec<f32>,
}

impl Preparer {
    /// Prepares inputs for a detector built with `config`.
    pub fn new(config: DetectorConfig) -> Self {
        Self { config }
    }

    /// The views of `image` in the order the detector merges them: the
    /// whole frame, its mirror, then the tiles.
    pub fn prepare(&self, image: &RgbImage) -> Prepared {
        let size = self.config.input_size;
        let s = size as usize;
        let one = |img: &RgbImage, map: ViewMap| {
            let mut input = vec![0.0f32; 3 * s * s];
            let letterbox = letterbox_into(img, size, &mut input);
            PreparedView {
                map,
                letterbox,
                input,
            }
        };
        let views = self.config.views;
        let mut out = vec![one(image, ViewMap::Whole)];
        if views.flip {
            out.push(one(&mirrored(image), ViewMap::Mirror(image.width as f32)));
        }
        if let Some(grid) = views.tiles {
            for rect in grid.rects(image.width, image.height) {
                let [x, y, w, h] = rect.map(i64::from);
                if let Some(tile) = image.crop(x, y, w, h) {
                    let map = ViewMap::Tile {
                        rect,
                        width: image.width,
                        height: image.height,
                    };
                    out.push(one(&tile, map));
                }
            }
        }
        Prepared {
            views: out,
            config: self.config,
        }
    }
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

    /// Every detection above the confidence threshold in one letterboxed
    /// view of the whole image (no extra views), in model classes.
    pub fn detect_raw(&mut self, image: &RgbImage) -> Result<Vec<RawDetection>, InferError> {
        Ok(self
            .detect_raw_batch(&[image])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Detections of the configured classes only, from every configured
    /// view merged (see [`Views`]).
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, InferError> {
        let prepared = self.preparer().prepare(image);
        self.detect_prepared(prepared)
    }

    /// What prepares this detector's inputs, for use on another thread.
    pub fn preparer(&self) -> Preparer {
        Preparer {
            config: self.config,
        }
    }

    /// Detects in a frame another thread prepared with [`Detector::preparer`]
    /// (the same boxes as [`Detector::detect`] on that frame).
    pub fn detect_prepared(&mut self, prepared: Prepared) -> Result<Vec<Detection>, InferError> {
        let raw = self.detect_prepared_raw(prepared)?;
        Ok(self.classify(raw))
    }

    /// [`Detector::detect_prepared`] in model classes (every class kept).
    pub fn detect_prepared_raw(
        &mut self,
        prepared: Prepared,
    ) -> Result<Vec<RawDetection>, InferError> {
        if prepared.config != self.config {
            return Err(InferError::Shape {
                model: self.model.name().to_owned(),
                message: format!(
                    "a frame prepared for {:?} given to a detector with {:?}",
                    prepared.config, self.config
                ),
            });
        }
        let plain = prepared.views.len() == 1 && self.config.views.is_plain();
        let maps: Vec<ViewMap> = prepared.views.iter().map(|v| v.map).collect();
        let outputs = self.run_views(prepared.views)?;
        Ok(if plain {
            outputs.into_iter().next().unwrap_or_default()
        } else {
            let dets = maps
                .into_iter()
                .zip(outputs)
                .flat_map(|(map, dets)| dets.into_iter().filter_map(move |d| map.to_frame(d)))
                .collect();
            let views = self.config.views;
            let mut merged = merge_views(dets, views.merge, views.merge_iou);
            merged.truncate(self.config.max_detections);
            merged
        })
    }

    /// Runs prepared views: in one batch when the model allows it, else
    /// one run each.
    fn run_views(
        &mut self,
        views: Vec<PreparedView>,
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        if !self.model.batchable() || views.len() == 1 {
            let mut out = Vec::with_capacity(views.len());
            for v in views {
                out.extend(self.run_letterboxed(vec![v.letterbox], v.input)?);
            }
            return Ok(out);
        }
        let boxes = views.iter().map(|v| v.letterbox).collect();
        let input = views.into_iter().flat_map(|v| v.input).collect();
        self.run_letterboxed(boxes, input)
    }

    /// Model classes to road-user types; detections of unmapped classes go.
    fn classify(&self, raw: Vec<RawDetection>) -> Vec<Detection> {
        raw.into_iter()
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
    }

    /// Detects in several images (one per camera) through every configured
    /// view, in one run when the model has a dynamic batch dimension, else
    /// one run per image and view.
    pub fn detect_batch(
        &mut self,
        images: &[&RgbImage],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let raw = self.detect_views_raw_batch(images)?;
        Ok(raw.into_iter().map(|dets| self.classify(dets)).collect())
    }

    /// Every configured view of each image (see [`Views`]), mapped back to
    /// the image and merged, in model classes.
    pub fn detect_views_raw_batch(
        &mut self,
        images: &[&RgbImage],
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        let views = self.config.views;
        if views.is_plain() {
            return self.detect_raw_batch(images);
        }
        // (image, how its boxes map back, index into `owned` or the image itself)
        let mut plan: Vec<(usize, ViewMap, Option<usize>)> = Vec::new();
        let mut owned: Vec<RgbImage> = Vec::new();
        for (i, image) in images.iter().enumerate() {
            plan.push((i, ViewMap::Whole, None));
            if views.flip {
                owned.push(mirrored(image));
                plan.push((
                    i,
                    ViewMap::Mirror(image.width as f32),
                    Some(owned.len() - 1),
                ));
            }
            let Some(grid) = views.tiles else { continue };
            for rect in grid.rects(image.width, image.height) {
                let [x, y, w, h] = rect.map(i64::from);
                if let Some(tile) = image.crop(x, y, w, h) {
                    owned.push(tile);
                    let map = ViewMap::Tile {
                        rect,
                        width: image.width,
                        height: image.height,
                    };
                    plan.push((i, map, Some(owned.len() - 1)));
                }
            }
        }
        let inputs: Vec<&RgbImage> = plan
            .iter()
            .map(|(i, _, o)| o.and_then(|k| owned.get(k)).unwrap_or(images[*i]))
            .collect();
        let outputs = self.detect_raw_batch(&inputs)?;
        let mut per_image: Vec<Vec<RawDetection>> = vec![Vec::new(); images.len()];
        for ((i, map, _), dets) in plan.iter().zip(outputs) {
            per_image[*i].extend(dets.into_iter().filter_map(|d| map.to_frame(d)));
        }
        let max = self.config.max_detections;
        Ok(per_image
            .into_iter()
            .map(|dets| {
                let mut merged = merge_views(dets, views.merge, views.merge_iou);
                merged.truncate(max);
                merged
            })
            .collect())
    }

    /// One letterboxed view of each image (no extra views), in model classes.
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
        self.run_letterboxed(boxes, input)
    }

    /// Runs `input` (one letterboxed image per box, back to back) and
    /// decodes each image's output.
    fn run_letterboxed(
        &mut self,
        boxes: Vec<Letterbox>,
        input: Vec<f32>,
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        let s = self.config.input_size as usize;
        let shape = [boxes.len(), 3, s, s];
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

/// Turns one image's `[4 + classes (+ extras), anchors]` output into
/// detections: class argmax, confidence threshold, per-class NMS, and
/// boxes mapped back through the letterbox. Public for the benches.
pub fn decode(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(class_id: usize, score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> RawDetection {
        RawDetection {
            class_id,
            score,
            bbox: BBox { x1, y1, x2, y2 },
        }
    }

    #[test]
    fn a_whole_frame_grid_overlaps_by_a_fifth_of_a_tile() {
        let rects = TileGrid::whole_frame(2, 2).rects(640, 480);
        assert_eq!(
            rects,
            vec![
                [0, 0, 384, 288],
                [256, 0, 384, 288],
                [0, 192, 384, 288],
                [256, 192, 384, 288]
            ]
        );
        let views = Views {
            tiles: Some(TileGrid::whole_frame(2, 2)),
            ..Views::default()
        };
        assert_eq!(views.inferences(640, 480), 5);
        assert_eq!(Views::default().inferences(640, 480), 1);
    }

    #[test]
    fn a_band_grid_covers_only_its_region() {
        let band = TileGrid {
            cols: 2,
            rows: 1,
            region: [0.0, 0.1875, 1.0, 0.6875],
            overlap: 0.2,
        };
        // 640x240 band from y = 90: tiles 320x240 grown by 64 and 48 px a side.
        assert_eq!(
            band.rects(640, 480),
            vec![[0, 42, 384, 336], [256, 42, 384, 336]]
        );
        // A region outside the frame yields no tiles rather than a panic.
        let outside = TileGrid {
            region: [1.0, 1.0, 1.0, 1.0],
            ..band
        };
        assert!(outside.rects(640, 480).is_empty());
    }

    #[test]
    fn mirrored_boxes_map_back_to_the_frame() {
        let img = RgbImage::from_raw(3, 1, vec![1, 1, 1, 2, 2, 2, 3, 3, 3]).expect("3x1");
        assert_eq!(mirrored(&img).data, vec![3, 3, 3, 2, 2, 2, 1, 1, 1]);
        let d = ViewMap::Mirror(640.0)
            .to_frame(raw(3, 0.5, 10.0, 20.0, 50.0, 80.0))
            .expect("kept");
        assert_eq!(
            d.bbox,
            BBox {
                x1: 590.0,
                y1: 20.0,
                x2: 630.0,
                y2: 80.0
            }
        );
    }

    #[test]
    fn tile_boxes_are_shifted_and_boxes_cut_by_an_inner_edge_dropped() {
        let map = ViewMap::Tile {
            rect: [256, 42, 384, 336],
            width: 640,
            height: 480,
        };
        let inside = map
            .to_frame(raw(0, 0.5, 10.0, 10.0, 30.0, 50.0))
            .expect("kept");
        assert_eq!(
            inside.bbox,
            BBox {
                x1: 266.0,
                y1: 52.0,
                x2: 286.0,
                y2: 92.0
            }
        );
        // Cut by the left and the bottom edges, which lie inside the frame.
        assert!(map.to_frame(raw(0, 0.5, 0.0, 10.0, 30.0, 50.0)).is_none());
        assert!(map
            .to_frame(raw(0, 0.5, 10.0, 300.0, 30.0, 336.0))
            .is_none());
        // The right edge is the frame's own edge: a box there is whole.
        assert!(map
            .to_frame(raw(0, 0.5, 350.0, 10.0, 384.0, 50.0))
            .is_some());
    }

    #[test]
    fn nms_keeps_the_best_of_each_object_and_every_class() {
        let dets = vec![
            raw(3, 0.4, 10.0, 10.0, 50.0, 50.0),
            raw(3, 0.8, 12.0, 10.0, 52.0, 50.0),
            raw(0, 0.3, 12.0, 10.0, 52.0, 50.0),
            raw(3, 0.6, 100.0, 10.0, 140.0, 50.0),
        ];
        let kept = merge_views(dets, ViewMerge::Nms, 0.55);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.8, 0.6, 0.3]);
    }

    #[test]
    fn wbf_fuses_one_object_into_the_score_weighted_box() {
        let dets = vec![
            raw(3, 0.25, 20.0, 10.0, 60.0, 50.0),
            raw(3, 0.75, 12.0, 10.0, 52.0, 50.0),
            raw(3, 0.6, 100.0, 10.0, 140.0, 50.0),
        ];
        let fused = merge_views(dets, ViewMerge::Wbf, 0.55);
        assert_eq!(fused.len(), 2);
        assert_eq!(fused[0].score, 0.75);
        assert_eq!(
            fused[0].bbox,
            BBox {
                x1: 14.0,
                y1: 10.0,
                x2: 54.0,
                y2: 50.0
            }
        );
        assert_eq!(
            fused[1].bbox,
            BBox {
                x1: 100.0,
                y1: 10.0,
                x2: 140.0,
                y2: 50.0
            }
        );
    }

    #[test]
    fn views_come_from_the_site_config() {
        let views = DetectorViews {
            flip: true,
            tiles: Some(vigil_core::config::DetectorTiles {
                grid: [2, 1],
                region: [0.0, 0.25, 1.0, 0.75],
                overlap: 0.1,
            }),
            merge: ViewMerge::Nms,
            merge_iou: 0.5,
        };
        let v = Views::from(&views);
        assert!(v.flip && !v.is_plain());
        assert_eq!(v.merge, ViewMerge::Nms);
        assert_eq!(
            v.tiles,
            Some(TileGrid {
                cols: 2,
                rows: 1,
                region: [0.0, 0.25, 1.0, 0.75],
                overlap: 0.1
            })
        );
        assert_eq!(v.inferences(640, 480), 4);
        assert!(Views::from(&DetectorViews::default()).is_plain());
    }
}
