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

use crate::letterbox::{letterbox_into, letterbox_part_into, Letterbox};
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
    /// The network input, width by height: the export's square, or a
    /// rectangle fitted to the frames (see [`DetectorConfig::fitted_input`]).
    pub input: (u32, u32),
    pub confidence: f32,
    pub nms_iou: f32,
    pub max_detections: usize,
    /// Extra views merged into [`Detector::detect`]; the default is none.
    pub views: Views,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            input: (640, 640),
            confidence: 0.25,
            nms_iou: 0.45,
            max_detections: 300,
            views: Views::default(),
        }
    }
}

impl DetectorConfig {
    /// The input that holds frames of these sizes with the least padding:
    /// the square's side along each frame's long side, the other side
    /// rounded up to a multiple of 32 (the network's coarsest stride). A
    /// 960x540 camera in a 640 square gets 640x384: the same scale, 12 grey
    /// rows above and below instead of 140, ~40% less work.
    pub fn fitted_input(side: u32, frames: &[(u32, u32)]) -> (u32, u32) {
        let up32 = |v: f64| ((v / 32.0).ceil() as u32 * 32).clamp(32, side.max(32));
        frames
            .iter()
            .filter(|(w, h)| *w > 0 && *h > 0)
            .map(|&(w, h)| {
                let scale = f64::from(side) / f64::from(w.max(h));
                (up32(f64::from(w) * scale), up32(f64::from(h) * scale))
            })
            .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1)))
            .unwrap_or((side, side))
    }
}

impl From<&vigil_core::config::Detector> for DetectorConfig {
    /// Input size, thresholds and views from the site config's `[detector]`.
    fn from(d: &vigil_core::config::Detector) -> Self {
        Self {
            input: (d.input_size, d.input_size),
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
                d.bbox = b.shifted(x as f32, y as f32);
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
    /// The most images in one model run, when the model is batchable.
    max_batch: usize,
    /// Input buffers of views this detector prepared itself, kept for the
    /// next frame: a fresh 4.9 MB buffer per frame costs its page faults
    /// and zeroing again every time (about a millisecond on a 2-core box).
    spare: Vec<Vec<f32>>,
    /// Where several views are put back to back for one batched run.
    batch_input: Vec<f32>,
}

/// Input buffers a detector keeps for reuse (one frame's views, or more).
const SPARE_BUFFERS: usize = 8;

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
    /// Where the part of the frame the views were made from begins
    /// (see [`Preparer::prepare_region`]): added to every box.
    offset: (f32, f32),
    /// The settings it was prepared with; a detector with others refuses it.
    config: DetectorConfig,
}

struct PreparedView {
    map: ViewMap,
    letterbox: Letterbox,
    input: Vec<f32>,
    /// Taken from the detector's spare buffers, so it goes back there.
    spare: bool,
}

impl Prepared {
    /// Model inputs of this frame: the whole frame (or its detect region),
    /// then any mirror and tiles.
    pub fn view_count(&self) -> usize {
        self.views.len()
    }
}

impl Preparer {
    /// Prepares inputs for a detector built with `config`.
    pub fn new(config: DetectorConfig) -> Self {
        Self { config }
    }

    /// The views of `image` in the order the detector merges them: the
    /// whole frame, its mirror, then the tiles.
    pub fn prepare(&self, image: &RgbImage) -> Prepared {
        self.prepare_into(image, None, &mut || None)
    }

    /// [`Preparer::prepare`] of only the part `[x, y, w, h]` of the frame
    /// (clipped to it), a camera's detect region; boxes still come back in
    /// frame pixels. A region with nothing inside the frame, or `None`,
    /// means the whole frame.
    pub fn prepare_region(&self, image: &RgbImage, region: Option<[u32; 4]>) -> Prepared {
        self.prepare_into(image, region, &mut || None)
    }

    /// [`Preparer::prepare_region`], each view's buffer from `buffer` when
    /// it has one (any length: it is resized), else newly allocated.
    fn prepare_into(
        &self,
        image: &RgbImage,
        region: Option<[u32; 4]>,
        buffer: &mut dyn FnMut() -> Option<Vec<f32>>,
    ) -> Prepared {
        // The region clipped to the frame; nothing left of it means the
        // whole frame.
        let part = region.and_then(|[x, y, w, h]| {
            let (x, y) = (x.min(image.width), y.min(image.height));
            let (w, h) = (w.min(image.width - x), h.min(image.height - y));
            (w > 0 && h > 0 && [x, y, w, h] != [0, 0, image.width, image.height])
                .then_some([x, y, w, h])
        });
        let Some(part @ [x, y, w, h]) = part else {
            return self.prepare_views(image, buffer);
        };
        let offset = (x as f32, y as f32);
        if self.config.views.is_plain() {
            // The one view, letterboxed straight from the frame's part.
            let view = self.prepare_view(ViewMap::Whole, buffer, |size, input| {
                letterbox_part_into(image, part, size, input)
            });
            return Prepared {
                views: vec![view],
                offset,
                config: self.config,
            };
        }
        // Views of the part (mirror, tiles) are made from a copy of it.
        match image.crop(x.into(), y.into(), w.into(), h.into()) {
            Some(crop) => Prepared {
                offset,
                ..self.prepare_views(&crop, buffer)
            },
            None => self.prepare_views(image, buffer),
        }
    }

    /// One view's input, its buffer from `buffer` when it has one (any
    /// length: it is resized), filled by `letterbox`.
    fn prepare_view(
        &self,
        map: ViewMap,
        buffer: &mut dyn FnMut() -> Option<Vec<f32>>,
        letterbox: impl FnOnce((u32, u32), &mut [f32]) -> Letterbox,
    ) -> PreparedView {
        let size = self.config.input;
        let (mut input, spare) = match buffer() {
            Some(b) => (b, true),
            None => (Vec::new(), false),
        };
        // Every value is written by the letterbox: no need to clear.
        input.resize(3 * size.0 as usize * size.1 as usize, 0.0);
        let letterbox = letterbox(size, &mut input);
        PreparedView {
            map,
            letterbox,
            input,
            spare,
        }
    }

    /// Every configured view of `image`, boxes in its own pixels.
    fn prepare_views(
        &self,
        image: &RgbImage,
        buffer: &mut dyn FnMut() -> Option<Vec<f32>>,
    ) -> Prepared {
        let mut one = |img: &RgbImage, map: ViewMap| {
            self.prepare_view(map, buffer, |size, input| letterbox_into(img, size, input))
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
            offset: (0.0, 0.0),
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
        let (iw, ih) = (i64::from(config.input.0), i64::from(config.input.1));
        match model.input_shape() {
            [_, 3, h, w] if (*h == ih || *h < 0) && (*w == iw || *w < 0) => {}
            other => {
                return Err(shape_err(format!(
                    "a YOLO detector with a {iw}x{ih} input needs an input of shape [N, 3, {ih}, {iw}], the model takes {other:?}"
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
            // As many as a call brings, unless capped.
            max_batch: usize::MAX,
            spare: Vec::new(),
            batch_input: Vec::new(),
        })
    }

    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The model input (width, height) every view is letterboxed into.
    pub fn input_size(&self) -> (u32, u32) {
        self.config.input
    }

    /// The model input for one image (letterboxed, planar RGB in [0, 1]).
    pub fn input_tensor(&self, image: &RgbImage) -> Vec<f32> {
        let (w, h) = self.config.input;
        let mut input = vec![0.0f32; 3 * w as usize * h as usize];
        letterbox_into(image, self.config.input, &mut input);
        input
    }

    /// Runs the model alone on prepared inputs (one or more letterboxed
    /// images back to back, as one batch) and discards the output: the
    /// floor that `vigil bench` compares the full path against.
    pub fn infer_only(&mut self, input: &[f32]) -> Result<(), InferError> {
        let (w, h) = (self.config.input.0 as usize, self.config.input.1 as usize);
        let batch = (input.len() / (3 * w * h)).max(1);
        self.model.run_f32(&[batch, 3, h, w], input, |_| Ok(()))
    }

    /// Runs the model alone on every view of a prepared frame, in the same
    /// runs [`Detector::detect_prepared`] makes (up to
    /// [`Detector::max_batch`] views each), and discards the output: the
    /// inference floor of a site's frame, with its views and detect region.
    pub fn infer_prepared_only(&mut self, prepared: &Prepared) -> Result<(), InferError> {
        for chunk in prepared.views.chunks(self.max_batch()) {
            self.with_batch_input(chunk, |detector, input| detector.infer_only(input))?;
        }
        Ok(())
    }

    /// Calls `run` with the views' inputs back to back, as one batch (a
    /// lone view's own buffer, without a copy).
    fn with_batch_input<R>(
        &mut self,
        chunk: &[PreparedView],
        run: impl FnOnce(&mut Self, &[f32]) -> R,
    ) -> R {
        if let [one] = chunk {
            return run(self, &one.input);
        }
        let mut input = std::mem::take(&mut self.batch_input);
        input.clear();
        for v in chunk {
            input.extend_from_slice(&v.input);
        }
        let result = run(self, &input);
        self.batch_input = input;
        result
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
        let prepared = self.prepare(image);
        self.detect_prepared(prepared)
    }

    /// What prepares this detector's inputs, for use on another thread.
    pub fn preparer(&self) -> Preparer {
        Preparer {
            config: self.config,
        }
    }

    /// Prepares a frame here, in buffers the detector reuses from frame to
    /// frame (what [`Detector::detect`] does before detecting).
    pub fn prepare(&mut self, image: &RgbImage) -> Prepared {
        self.prepare_region(image, None)
    }

    /// [`Detector::prepare`] of only a part of the frame (see
    /// [`Preparer::prepare_region`]).
    pub fn prepare_region(&mut self, image: &RgbImage, region: Option<[u32; 4]>) -> Prepared {
        let preparer = self.preparer();
        let spare = &mut self.spare;
        preparer.prepare_into(image, region, &mut || Some(spare.pop().unwrap_or_default()))
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
        Ok(self
            .detect_prepared_raw_batch(vec![prepared])?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Detects in several prepared frames (one per camera) at once: every
    /// view of every frame goes through the model in runs of up to
    /// [`Detector::max_batch`] images when the model has a dynamic batch
    /// dimension, else one run each. Each frame gets exactly the boxes
    /// [`Detector::detect_prepared`] gives it alone.
    pub fn detect_prepared_batch(
        &mut self,
        frames: Vec<Prepared>,
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let raw = self.detect_prepared_raw_batch(frames)?;
        Ok(raw.into_iter().map(|dets| self.classify(dets)).collect())
    }

    /// [`Detector::detect_prepared_batch`] in model classes.
    pub fn detect_prepared_raw_batch(
        &mut self,
        frames: Vec<Prepared>,
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        if let Some(other) = frames.iter().find(|p| p.config != self.config) {
            return Err(InferError::Shape {
                model: self.model.name().to_owned(),
                message: format!(
                    "a frame prepared for {:?} given to a detector with {:?}",
                    other.config, self.config
                ),
            });
        }
        let frame_count = frames.len();
        let offsets: Vec<(f32, f32)> = frames.iter().map(|f| f.offset).collect();
        // Which frame each view belongs to, and how its boxes map back.
        let mut owners: Vec<(usize, ViewMap)> = Vec::new();
        let mut views = Vec::new();
        for (i, frame) in frames.into_iter().enumerate() {
            for view in frame.views {
                owners.push((i, view.map));
                views.push(view);
            }
        }
        let outputs = self.run_views(views)?;
        let mut per_frame: Vec<Vec<RawDetection>> = vec![Vec::new(); frame_count];
        if self.config.views.is_plain() {
            for ((i, _), dets) in owners.into_iter().zip(outputs) {
                per_frame[i] = dets;
            }
        } else {
            for ((i, map), dets) in owners.into_iter().zip(outputs) {
                per_frame[i].extend(dets.into_iter().filter_map(|d| map.to_frame(d)));
            }
            let views = self.config.views;
            let max = self.config.max_detections;
            for dets in &mut per_frame {
                *dets = merge_views(std::mem::take(dets), views.merge, views.merge_iou);
                dets.truncate(max);
            }
        }
        for (dets, (dx, dy)) in per_frame.iter_mut().zip(offsets) {
            if (dx, dy) != (0.0, 0.0) {
                for d in dets {
                    d.bbox = d.bbox.shifted(dx, dy);
                }
            }
        }
        Ok(per_frame)
    }

    /// The most images one model run takes (1 when the model's batch size
    /// is fixed).
    pub fn max_batch(&self) -> usize {
        if self.model.batchable() {
            self.max_batch
        } else {
            1
        }
    }

    /// Caps the images per model run (at least 1). Larger batches share the
    /// per-run overhead but hold every image's activations at once.
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Runs prepared views in batches of up to [`Detector::max_batch`],
    /// then keeps the buffers the detector lent for the next frame.
    fn run_views(
        &mut self,
        views: Vec<PreparedView>,
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        let batch = self.max_batch();
        let mut out = Vec::with_capacity(views.len());
        let mut views = views.into_iter().peekable();
        while views.peek().is_some() {
            let chunk: Vec<PreparedView> = views.by_ref().take(batch).collect();
            let boxes = chunk.iter().map(|v| v.letterbox).collect();
            let result = self.with_batch_input(&chunk, |detector, input| {
                detector.run_letterboxed(boxes, input)
            });
            for v in chunk {
                if v.spare && self.spare.len() < SPARE_BUFFERS {
                    self.spare.push(v.input);
                }
            }
            out.extend(result?);
        }
        Ok(out)
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
    /// view, in runs of up to [`Detector::max_batch`] images.
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
        let frames = images.iter().map(|i| self.prepare(i)).collect();
        self.detect_prepared_raw_batch(frames)
    }

    /// One letterboxed view of each image (no extra views), in model classes.
    pub fn detect_raw_batch(
        &mut self,
        images: &[&RgbImage],
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        let plain = Preparer {
            config: DetectorConfig {
                views: Views::default(),
                ..self.config
            },
        };
        let mut views = Vec::with_capacity(images.len());
        for image in images {
            let spare = &mut self.spare;
            let frame =
                plain.prepare_into(image, None, &mut || Some(spare.pop().unwrap_or_default()));
            views.extend(frame.views);
        }
        self.run_views(views)
    }

    /// Runs `input` (one letterboxed image per box, back to back) and
    /// decodes each image's output.
    fn run_letterboxed(
        &mut self,
        boxes: Vec<Letterbox>,
        input: &[f32],
    ) -> Result<Vec<Vec<RawDetection>>, InferError> {
        let (w, h) = (self.config.input.0 as usize, self.config.input.1 as usize);
        let shape = [boxes.len(), 3, h, w];
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
    // Class argmax row by row: the output is channel-major, so this walks
    // memory in order. Selects instead of branches (and a 32-bit class
    // beside the f32 score) let the compiler vectorise the 672,000
    // comparisons of an 80-class, 8400-anchor output; a strictly greater
    // score still wins, so ties keep the first class.
    let mut best = vec![f32::NEG_INFINITY; anchors];
    let mut best_class = vec![0u32; anchors];
    for c in 0..classes {
        let row = &out[(4 + c) * anchors..(5 + c) * anchors];
        let class = c as u32;
        for ((b, bc), &v) in best.iter_mut().zip(best_class.iter_mut()).zip(row) {
            let take = v > *b;
            *b = if take { v } else { *b };
            *bc = if take { class } else { *bc };
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
                class_id: best_class[i] as usize,
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
