#!/usr/bin/env python3
"""Composite evaluation set: real Vietnamese plate crops pasted on real vehicle crops.

Vigil has labelled plate crops (one-line `vn-plates-1line`, two-line
`eval/xemay-clean`) but no labelled set of *vehicle* crops that contain a
Vietnamese plate. This script builds one, deterministically, to measure
"locate the plate in the vehicle crop, then read it":

1. Vehicle backgrounds: frames decoded with the ffmpeg CLI from the demo
   clips and the Hanoi clip; vehicles found with YOLOv8n (COCO) on
   onnxruntime; side views (no plate visible) and near-duplicate detections
   (a stopped vehicle seen again) dropped; each box padded by 5% as a
   tracker's crop would be.
2. Every one-line plate goes on a car/bus/truck crop; every two-line plate on
   a motorbike crop.
3. The plate keeps (about) its native pixel size; the vehicle crop is
   resized (bilinear, aspect kept) so the plate covers a plausible fraction
   of the vehicle's width. The plate goes over the vehicle's own (real,
   unlabelled) plate where a simple heuristic finds one, otherwise at a
   random plausible position.
4. The plate is pasted with a 1-px feathered edge, then the whole composite
   gets a mild per-image degradation (Gaussian blur, JPEG re-encode) and is
   saved as PNG.

Outputs (under --out): `labels.csv`, `images/*.png`, `details.csv` (every
random draw and the vehicle's box in its source frame), `contact-sheet.png`,
`summary.json`. See README.md next to this script for the choices and the
limits of this set as a proxy. The output derives from "internal use only"
data: never commit it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

YOLO_SHA256 = "75cc3648650bdab6baac92fcff3627148405a9a15aca86ca7117b6d1ab478726"
YOLO_NAMES = ("yolov8n-coco.onnx", "yolov8n.onnx")
COCO_VEHICLES = {2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}
CAR_LIKE = ("car", "bus", "truck")

# (path under --data, frame stride). Strides keep ~0.2-0.33 s between sampled
# frames so that consecutive samples of a moving vehicle differ in position,
# scale and background; a vehicle standing still is dropped as a duplicate.
VIDEOS = (
    ("demo/motorway-a40.mp4", 6),  # 30 fps, 600 frames -> 100 sampled
    ("demo/intersection-320x240.mp4", 3),  # 15 fps, 150 frames -> 50 sampled
    ("hanoi-16h15/16h15.25.9.22.mp4", 2),  # ~6 fps, 384 frames -> 192 sampled
)

# Plates sit on a vehicle's front or rear. Side views (cars crossing the far
# road in Hanoi, motorbikes crossing the intersection) are dropped by the
# width/height of the detector box: a car seen from the side is >= ~1.8 wide
# per unit height, front/rear/three-quarter views <= ~1.6; a motorbike seen
# from the side is >= ~1.0, from the front or rear <= ~0.9.
MAX_ASPECT = {"car": 1.6, "bus": 1.6, "truck": 1.6, "motorcycle": 0.92}

# Compositing parameters (see README.md).
PLATE_SCALE = (0.8, 1.25)  # plate pixel size = reference size x U(...)
TWO_LINE_REF_WIDTH = 94  # two-line crops (760x560) are brought to this width first
WIDTH_FRACTION = {"one-line": (0.22, 0.35), "two-line": (0.30, 0.45)}
CENTRE_Y = {"one-line": (0.55, 0.85), "two-line": (0.45, 0.80)}
CENTRE_X_JITTER = 0.12  # plate centre x = crop centre +- U(0, 0.12) x width
# Over the vehicle's own plate, the centre may be further off-centre (the
# motorway cars are seen at an angle: three-quarter views) and lower (a
# plate low on a bumper or a motorbike's mudguard).
OWN_PLATE_X = 0.22
OWN_PLATE_Y_MAX = 0.92
BOX_PAD = 0.05  # vehicle box padded by 5% of its size on each side
BLUR_SIGMA = (0.0, 0.6)
JPEG_QUALITY = (70, 95)  # inclusive


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


@dataclass
class Plate:
    """One labelled plate crop."""

    path: Path
    text: str
    layout: str  # "one-line" or "two-line"
    source_name: str  # file name as given in its labels.csv (for details.csv)


def load_one_line(data: Path) -> list[Plate]:
    """All rows of `vn-plates-1line/labels.csv` (1,232 crops of 94x24 px)."""
    folder = data / "vn-plates-1line"
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [Plate(folder / r["file"], r["plate_text"], "one-line", r["file"]) for r in rows]


def load_two_line(labels_csv: Path, data: Path) -> list[Plate]:
    """All rows of `eval/xemay-clean/labels.csv` (194 two-line motorbike plates).

    Its `file` column is relative to the csv's folder; if that does not
    resolve (the data folder lives elsewhere), the image is looked up by name
    in `DATA/vn-plates-silver/images/`.
    """
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    plates = []
    for r in rows:
        path = labels_csv.parent / r["file"]
        if not path.exists():
            path = data / "vn-plates-silver" / "images" / Path(r["file"]).name
        if not path.exists():
            raise SystemExit(f"{labels_csv}: image not found for {r['file']}")
        plates.append(Plate(path, r["plate_text"], "two-line", Path(r["file"]).name))
    return plates


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_model(models_dir: Path, wait_s: float) -> Path:
    """The YOLOv8n COCO ONNX file under `models_dir`, checked by SHA-256.

    `vigil models fetch` installs it as `models/yolov8n-coco.onnx`. If it is
    not there yet (a fetch may be running), poll every 15 s for up to
    `wait_s` seconds. The model is never downloaded here.
    """
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        candidates = [models_dir / n for n in YOLO_NAMES]
        candidates += sorted(p for p in models_dir.rglob("*.onnx") if p not in candidates)
        for path in candidates:
            if path.is_file() and not path.name.endswith(".partial"):
                if path.name in YOLO_NAMES or path.stat().st_size < 20_000_000:
                    if sha256_of(path) == YOLO_SHA256:
                        return path
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"no YOLOv8n COCO model (sha256 {YOLO_SHA256[:12]}...) under {models_dir}; "
                "run `target/release/vigil models fetch` first"
            )
        if not announced:
            print(f"waiting up to {wait_s:.0f} s for the model under {models_dir} ...", flush=True)
            announced = True
        time.sleep(15)


# --------------------------------------------------------------------------
# Vehicle detection
# --------------------------------------------------------------------------


class VehicleDetector:
    """YOLOv8n (COCO) on onnxruntime's CPU provider: letterbox, run, decode, NMS."""

    def __init__(self, model: Path, threads: int, conf: float, iou: float):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.size = 640
        self.conf = conf
        self.iou = iou

    def letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """RGB HxWx3 uint8 -> [1,3,640,640] float32 in [0,1], pad value 114, centred."""
        h, w = frame.shape[:2]
        r = min(self.size / h, self.size / w)
        nw, nh = round(w * r), round(h * r)
        resized = np.asarray(Image.fromarray(frame).resize((nw, nh), Image.BILINEAR))
        canvas = np.full((self.size, self.size, 3), 114, dtype=np.uint8)
        dx, dy = (self.size - nw) / 2, (self.size - nh) / 2
        x0, y0 = int(round(dx - 0.1)), int(round(dy - 0.1))
        canvas[y0 : y0 + nh, x0 : x0 + nw] = resized
        tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return tensor, r, x0, y0

    def __call__(self, frame: np.ndarray) -> list[tuple[np.ndarray, float, str]]:
        """Vehicle boxes (x1,y1,x2,y2 in frame pixels), score, class name; after NMS."""
        tensor, r, x0, y0 = self.letterbox(frame)
        out = self.session.run(None, {self.input_name: tensor})[0][0].T  # (8400, 84)
        scores_all = out[:, 4:]
        cls = scores_all.argmax(1)
        score = scores_all[np.arange(len(cls)), cls]
        keep = (score >= self.conf) & np.isin(cls, list(COCO_VEHICLES))
        if not keep.any():
            return []
        b, score, cls = out[keep, :4], score[keep], cls[keep]
        xyxy = np.stack(
            [b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2],
            axis=1,
        )
        xyxy = (xyxy - [x0, y0, x0, y0]) / r
        # Class-agnostic among the vehicle classes: one vehicle is not kept
        # twice as both "car" and "truck".
        order = nms(xyxy, score, self.iou)
        return [(xyxy[i], float(score[i]), COCO_VEHICLES[int(cls[i])]) for i in order]


def iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1y1x2y2 box against an (N,4) array."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression; indices kept, best first."""
    order = list(np.argsort(-scores, kind="stable"))
    kept: list[int] = []
    while order:
        i = order.pop(0)
        kept.append(i)
        if order:
            ious = iou_one(boxes[i], boxes[order])
            order = [j for j, v in zip(order, ious) if v < iou]
    return kept


def iter_frames(video: Path, stride: int):
    """Yield (frame_index, RGB uint8 array) for every `stride`-th frame (0-based).

    Decoded by the ffmpeg CLI into raw RGB on a pipe; frame_index counts
    decoded frames from 0, so `#f<index>` matches ffmpeg's `n`.
    """
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(video)],
        check=True, capture_output=True, text=True,
    )
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-i", str(video),
           "-vf", f"select=not(mod(n\\,{stride}))", "-fps_mode", "passthrough",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    size = w * h * 3
    k = 0
    try:
        while True:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            yield k * stride, np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            k += 1
    finally:
        proc.stdout.close()
        if proc.wait() != 0:
            raise SystemExit(f"ffmpeg failed on {video}")


@dataclass
class Vehicle:
    """One vehicle crop (already padded) with where it came from."""

    video: str
    frame: int
    cls: str
    score: float
    box: tuple[int, int, int, int]  # padded crop box in the frame, x2/y2 exclusive
    det_box: tuple[float, float, float, float]  # detector box in the frame
    crop: np.ndarray = field(repr=False)
    # The vehicle's own plate, if `find_real_plate` saw one (crop pixels).
    real_plate: tuple[int, int, int, int] | None = None

    @property
    def source(self) -> str:
        return f"{self.video}#f{self.frame}"


def thumb(crop: np.ndarray) -> np.ndarray:
    """16x16 grey thumbnail used to recognise a re-seen (stopped) vehicle."""
    return np.asarray(Image.fromarray(crop).convert("L").resize((16, 16), Image.BILINEAR), np.float32)


def collect_vehicles(data: Path, detector: VehicleDetector, min_width: int,
                     edge_margin: int, dup_iou: float, dup_diff: float) -> list[Vehicle]:
    """Detect vehicles in the sampled frames of every clip and keep distinct ones.

    A detection is kept when it is at least `min_width` px wide, not a side
    view (box width/height above MAX_ASPECT for its class), at least
    `edge_margin` px from every frame edge (not cut by the frame), and not a
    near-duplicate of a vehicle already kept from the same clip (IoU >=
    `dup_iou` with it *and* a mean absolute grey difference of the 16x16
    thumbnails < `dup_diff`: the same vehicle standing still).
    """
    vehicles: list[Vehicle] = []
    for rel, stride in VIDEOS:
        video = data / rel
        name = video.name
        kept_boxes: list[np.ndarray] = []
        kept_thumbs: list[np.ndarray] = []
        n_frames = n_dets = n_dups = 0
        for idx, frame in iter_frames(video, stride):
            n_frames += 1
            fh, fw = frame.shape[:2]
            for box, score, cls in detector(frame):
                x1, y1, x2, y2 = box
                if x2 - x1 < min_width:
                    continue
                if (x2 - x1) / max(y2 - y1, 1e-6) > MAX_ASPECT[cls]:
                    continue  # side view: no plate would be visible
                if x1 < edge_margin or y1 < edge_margin or x2 > fw - edge_margin or y2 > fh - edge_margin:
                    continue
                n_dets += 1
                bw, bh = x2 - x1, y2 - y1
                px1 = max(0, int(np.floor(x1 - BOX_PAD * bw)))
                py1 = max(0, int(np.floor(y1 - BOX_PAD * bh)))
                px2 = min(fw, int(np.ceil(x2 + BOX_PAD * bw)))
                py2 = min(fh, int(np.ceil(y2 + BOX_PAD * bh)))
                crop = frame[py1:py2, px1:px2].copy()
                t = thumb(crop)
                if kept_boxes:
                    ious = iou_one(box, np.array(kept_boxes))
                    near = [j for j in np.nonzero(ious >= dup_iou)[0]
                            if np.abs(kept_thumbs[j] - t).mean() < dup_diff]
                    if near:
                        n_dups += 1
                        continue
                kept_boxes.append(box)
                kept_thumbs.append(t)
                vehicles.append(Vehicle(name, idx, cls, score, (px1, py1, px2, py2),
                                        tuple(round(float(v), 1) for v in box), crop,
                                        find_real_plate(crop, cls == "motorcycle")))
        kinds = {}
        n_real = sum(1 for v in vehicles if v.video == name and v.real_plate)
        for v in vehicles:
            if v.video == name:
                kinds[v.cls] = kinds.get(v.cls, 0) + 1
        print(f"  {name}: {n_frames} frames sampled (every {stride}), {n_dets} usable "
              f"detections, {n_dups} near-duplicates dropped, kept {kinds}; own plate seen on {n_real}", flush=True)
    return vehicles


def components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """4-connected components of a small boolean mask: (x1, y1, x2, y2, area), x2/y2 exclusive."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack = [(y0, x0)]
        xs, ys = [], []
        while stack:
            y, x = stack.pop()
            xs.append(x)
            ys.append(y)
            for yy, xx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    stack.append((yy, xx))
        out.append((min(xs), min(ys), max(xs) + 1, max(ys) + 1, len(xs)))
    return out


def find_real_plate(crop: np.ndarray, motorbike: bool) -> tuple[int, int, int, int] | None:
    """Where the vehicle's own (real, unlabelled) plate probably is, or None.

    The source vehicles carry real plates (German ones on the motorway,
    Vietnamese ones in Hanoi). Pasting the labelled plate elsewhere leaves a
    second plate in the crop; when this finds the real one, `compose` puts
    the labelled plate over it (within the brief's position ranges).

    A model-free heuristic, so the set does not lean on any plate detector
    Vigil might be evaluated with: in the central lower part of the crop,
    bright (>= the 90th percentile, >= 120) unsaturated pixels, or bright
    yellow ones (Vietnamese commercial plates); a connected
    blob shaped like a plate (cars: 2.2-7 wide per unit height, 10-45% of
    the crop width; motorbikes: 0.8-2.2 and 12-50%), at least 45% filled.
    The largest, most central such blob wins. Misses (white cars) and false
    hits only change where the plate goes within the allowed ranges.
    """
    img = crop.astype(np.float32)
    h, w = img.shape[:2]
    hi, lo = img.max(2), img.min(2)
    sat = (hi - lo) / np.maximum(hi, 1)
    x0, x1, y0, y1 = int(0.15 * w), int(0.85 * w), int(0.40 * h), int(0.97 * h)
    grey, s = lo[y0:y1, x0:x1], sat[y0:y1, x0:x1]
    if grey.size == 0:
        return None
    white = (grey >= max(120.0, float(np.percentile(grey, 90)))) & (s < 0.35)
    r, g, b = (img[y0:y1, x0:x1, i] for i in range(3))
    yellow = (r >= 140) & (g >= 120) & (b < 0.7 * np.minimum(r, g)) & (np.abs(r - g) < 60)
    mask = white | yellow
    best = None
    for bx1, by1, bx2, by2, area in components(mask):
        bw, bh = bx2 - bx1, by2 - by1
        if bw < 4 or bh < 2 or area / (bw * bh) < 0.45:
            continue
        aspect, frac = bw / bh, bw / w
        if motorbike:
            ok = 0.8 <= aspect <= 2.2 and 0.12 <= frac <= 0.5
        else:
            ok = 2.2 <= aspect <= 7.0 and 0.10 <= frac <= 0.45
        if not ok:
            continue
        score = area * (1 - abs((x0 + (bx1 + bx2) / 2) / w - 0.5))
        if best is None or score > best[0]:
            best = (score, (x0 + bx1, y0 + by1, x0 + bx2, y0 + by2))
    return best[1] if best else None


# --------------------------------------------------------------------------
# Compositing
# --------------------------------------------------------------------------


def plate_reference_size(img: Image.Image, layout: str) -> tuple[float, float]:
    """The plate's reference pixel size before the U(0.8, 1.25) scale.

    One-line crops are used at their native 94x24. The two-line crops are
    760x560 (upscaled far beyond what a traffic camera sees), so they are
    referenced to a 94-px width (aspect kept, ~94x69): the same width as the
    one-line crops, which also gives about the same character height.
    """
    w, h = img.size
    if layout == "two-line":
        return TWO_LINE_REF_WIDTH, TWO_LINE_REF_WIDTH * h / w
    return w, h


def feather_paste(bg: np.ndarray, plate: np.ndarray, x1: int, y1: int) -> None:
    """Paste `plate` into `bg` at (x1, y1) in place, with a 1-px feathered edge.

    The outermost ring of plate pixels is a 50/50 mix with the background
    (the corners 25/75), everything inside is the plate.
    """
    ph, pw = plate.shape[:2]
    ramp_y = np.ones(ph, np.float32)
    ramp_x = np.ones(pw, np.float32)
    ramp_y[[0, -1]] = 0.5
    ramp_x[[0, -1]] = 0.5
    alpha = (ramp_y[:, None] * ramp_x[None, :])[..., None]
    region = bg[y1 : y1 + ph, x1 : x1 + pw].astype(np.float32)
    bg[y1 : y1 + ph, x1 : x1 + pw] = np.round(alpha * plate + (1 - alpha) * region).astype(np.uint8)


def degrade(img: Image.Image, sigma: float, quality: int) -> Image.Image:
    """Mild whole-image degradation: Gaussian blur (sigma px) then a JPEG round trip."""
    if sigma >= 0.05:
        img = img.filter(ImageFilter.GaussianBlur(radius=sigma))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality), subsampling=2)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def compose(plate: Plate, vehicle: Vehicle, rng: np.random.Generator) -> tuple[Image.Image, tuple, dict]:
    """Composite one plate onto one vehicle crop.

    The plate goes over the vehicle's own plate when `find_real_plate` found
    one inside the allowed position ranges (the width fraction is raised,
    within its range, so the pasted plate covers it); otherwise at the
    random position drawn from the ranges. Returns the composite (already
    degraded), the plate box (x1, y1, x2, y2; x2 = x1 + plate width,
    exclusive) and a dict of every random draw.
    """
    layout = plate.layout
    pimg = Image.open(plate.path).convert("RGB")
    ref_w, ref_h = plate_reference_size(pimg, layout)
    s = rng.uniform(*PLATE_SCALE)
    pw, ph = max(8, round(ref_w * s)), max(4, round(ref_h * s))
    pimg = pimg.resize((pw, ph), Image.BILINEAR)

    lo, hi = WIDTH_FRACTION[layout]
    frac = rng.uniform(lo, hi)
    jitter_x = rng.uniform(-CENTRE_X_JITTER, CENTRE_X_JITTER)
    centre_y = rng.uniform(*CENTRE_Y[layout])
    vh0, vw0 = vehicle.crop.shape[:2]
    real = vehicle.real_plate
    if real is not None:
        # Cover the vehicle's own plate: at least 10% wider than it, within range.
        frac = float(np.clip(max(frac, 1.1 * (real[2] - real[0]) / vw0), lo, hi))
    vw = round(pw / frac)
    k = vw / vw0
    vh = round(vh0 * k)
    if vh < ph + 4:  # very flat crop: grow it (keeps aspect) so the plate fits
        k = (ph + 4) / vh0
        vw, vh = round(vw0 * k), ph + 4
    bg = np.array(Image.fromarray(vehicle.crop).resize((vw, vh), Image.BILINEAR))

    cx = vw / 2 + jitter_x * vw
    cy = centre_y * vh
    placement = "random"
    if real is not None:
        rcx, rcy = (real[0] + real[2]) / 2 * k, (real[1] + real[3]) / 2 * k
        ylo = CENTRE_Y[layout][0]
        if abs(rcx - vw / 2) <= OWN_PLATE_X * vw and ylo * vh <= rcy <= OWN_PLATE_Y_MAX * vh:
            cx, cy, placement = rcx, rcy, "own-plate"
    x1 = int(np.clip(round(cx - pw / 2), 1, vw - pw - 1))
    y1 = int(np.clip(round(cy - ph / 2), 1, vh - ph - 1))
    feather_paste(bg, np.asarray(pimg), x1, y1)
    covered = ""
    if real is not None:
        r = [v * k for v in real]
        covered = int(x1 <= r[0] and y1 <= r[1] and x1 + pw >= r[2] and y1 + ph >= r[3])

    sigma = rng.uniform(*BLUR_SIGMA)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    out = degrade(Image.fromarray(bg), sigma, quality)
    params = {
        "plate_scale": round(s, 4),
        "plate_w": pw,
        "plate_h": ph,
        "width_fraction": round(pw / vw, 4),
        "vehicle_scale": round(k, 4),
        "placement": placement,
        "own_plate_box": " ".join(str(round(v * k)) for v in real) if real is not None else "",
        "own_plate_covered": covered,
        "blur_sigma": round(sigma, 4),
        "jpeg_quality": quality,
    }
    return out, (x1, y1, x1 + pw, y1 + ph), params


def assign(plates: list[Plate], pool: list[Vehicle], rng: np.random.Generator) -> list[Vehicle]:
    """One vehicle per plate: the pool shuffled, cycled, so each is used about equally."""
    order = rng.permutation(len(pool))
    return [pool[order[i % len(pool)]] for i in range(len(plates))]


# --------------------------------------------------------------------------
# Sanity check
# --------------------------------------------------------------------------


def contact_sheet(out: Path, rows: list[dict], rng: np.random.Generator, n: int = 48,
                  cols: int = 8, tile: int = 200) -> Path:
    """Save `n` random composites with their plate boxes drawn, labelled, in a grid."""
    pick = sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False))
    nrows = (len(pick) + cols - 1) // cols
    cap = 24
    sheet = Image.new("RGB", (cols * tile, nrows * (tile + cap)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for t, i in enumerate(pick):
        r = rows[i]
        img = Image.open(out / r["file"]).convert("RGB")
        k = min(tile / img.width, tile / img.height)
        small = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.BILINEAR)
        ox = (t % cols) * tile + (tile - small.width) // 2
        oy = (t // cols) * (tile + cap) + (tile - small.height) // 2
        sheet.paste(small, (ox, oy))
        bx = [r["plate_x1"], r["plate_y1"], r["plate_x2"], r["plate_y2"]]
        draw.rectangle([ox + bx[0] * k - 1, oy + bx[1] * k - 1, ox + bx[2] * k, oy + bx[3] * k],
                       outline=(255, 0, 0))
        tx, ty = (t % cols) * tile + 2, (t // cols) * (tile + cap) + tile + 1
        draw.text((tx, ty), f"{Path(r['file']).stem} {r['plate_text']} {img.width}x{img.height}",
                  fill=(255, 255, 255), font=font)
        draw.text((tx, ty + 11), r["vehicle_source"], fill=(200, 200, 200), font=font)
    path = out / "contact-sheet.png"
    sheet.save(path)
    return path


def summarise(rows: list[dict], details: list[dict]) -> dict:
    """Counts per layout and source, and the size distributions; printed and returned."""
    def dist(vals):
        v = np.array(vals)
        return {"min": int(v.min()), "median": float(np.median(v)), "max": int(v.max())}

    summary: dict = {"total": len(rows), "by_layout": {}, "by_layout_source": {}, "by_layout_class": {}}
    for r, d in zip(rows, details):
        video = r["vehicle_source"].split("#")[0]
        summary["by_layout"][r["layout"]] = summary["by_layout"].get(r["layout"], 0) + 1
        key = f"{r['layout']} / {video}"
        summary["by_layout_source"][key] = summary["by_layout_source"].get(key, 0) + 1
        key = f"{r['layout']} / {d['vehicle_class']}"
        summary["by_layout_class"][key] = summary["by_layout_class"].get(key, 0) + 1
    for layout in sorted(summary["by_layout"]):
        sel = [d for r, d in zip(rows, details) if r["layout"] == layout]
        summary[f"{layout} sizes"] = {
            "composite_w": dist([d["width"] for d in sel]),
            "composite_h": dist([d["height"] for d in sel]),
            "plate_w": dist([d["plate_w"] for d in sel]),
            "plate_h": dist([d["plate_h"] for d in sel]),
            "source_crop_w": dist([d["crop_w"] for d in sel]),
            "vehicle_upscale": {
                "min": round(min(d["vehicle_scale"] for d in sel), 2),
                "median": round(float(np.median([d["vehicle_scale"] for d in sel])), 2),
                "max": round(max(d["vehicle_scale"] for d in sel), 2),
            },
            "distinct_vehicles": len({(d["vehicle_source"], d["crop_box"]) for d in sel}),
            "placed_on_own_plate": sum(d["placement"] == "own-plate" for d in sel),
            "own_plate_seen_not_covered": sum(d["own_plate_covered"] == 0 for d in sel),
        }
    return summary


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Build the composited vehicle-crop + Vietnamese plate evaluation set "
        "(deterministic; see tools/vehicle-plate-set/README.md).")
    p.add_argument("--data", type=Path, required=True,
                   help="the shared data folder (e.g. ../shared/data)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (e.g. target/vehicle-plates); must be empty or absent unless --force")
    p.add_argument("--models", type=Path, default=REPO / "models",
                   help="folder holding yolov8n-coco.onnx as `vigil models fetch` installs it "
                   "(default: the repo's models/)")
    p.add_argument("--two-line-labels", type=Path, default=REPO / "eval" / "xemay-clean" / "labels.csv",
                   help="two-line labels csv (default: the repo's eval/xemay-clean/labels.csv)")
    p.add_argument("--one-line-limit", type=int, default=0,
                   help="use a deterministic random subset of this many one-line plates (0 = all 1,232)")
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    p.add_argument("--conf", type=float, default=0.4, help="detector score threshold (default 0.4)")
    p.add_argument("--nms-iou", type=float, default=0.5, help="NMS IoU (default 0.5)")
    p.add_argument("--min-width", type=int, default=40, help="minimum vehicle box width in px (default 40)")
    p.add_argument("--wait-model", type=float, default=1800,
                   help="seconds to wait for the model to appear (default 1800)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    data, out = args.data.resolve(), args.out.resolve()
    if out.exists() and any(out.iterdir()) and not args.force:
        raise SystemExit(f"{out} is not empty (use --force to overwrite)")
    (out / "images").mkdir(parents=True, exist_ok=True)
    for old in (out / "images").glob("*.png"):
        old.unlink()
    rng = np.random.default_rng(args.seed)
    seeds = rng.integers(0, 2**63 - 1, size=4)  # independent streams per stage

    one = load_one_line(data)
    if args.one_line_limit and args.one_line_limit < len(one):
        pick = np.sort(np.random.default_rng(seeds[0]).choice(len(one), args.one_line_limit, replace=False))
        one = [one[i] for i in pick]
    two = load_two_line(args.two_line_labels.resolve(), data)
    print(f"plates: {len(one)} one-line, {len(two)} two-line")

    model = find_model(args.models.resolve(), args.wait_model)
    print(f"model: {model} (sha256 ok)")
    detector = VehicleDetector(model, args.threads, args.conf, args.nms_iou)
    t1 = time.monotonic()
    vehicles = collect_vehicles(data, detector, args.min_width, edge_margin=2, dup_iou=0.6, dup_diff=12.0)
    t_detect = time.monotonic() - t1
    cars = [v for v in vehicles if v.cls in CAR_LIKE]
    bikes = [v for v in vehicles if v.cls == "motorcycle"]
    print(f"vehicle pool: {len(cars)} car/bus/truck, {len(bikes)} motorbike ({t_detect:.1f} s)")
    if not cars:
        raise SystemExit("no car/bus/truck crops found")
    bike_pool = bikes if bikes else cars  # fall back to cars only if no motorbike at all
    if not bikes:
        print("WARNING: no motorbike crops; two-line plates go on car crops")

    arng = np.random.default_rng(seeds[1])
    jobs = list(zip(one, assign(one, cars, arng))) + list(zip(two, assign(two, bike_pool, arng)))

    rows, details = [], []
    for i, (plate, vehicle) in enumerate(jobs, start=1):
        crng = np.random.default_rng([int(seeds[2]), i])
        img, box, params = compose(plate, vehicle, crng)
        name = f"images/{i:04d}.png"
        img.save(out / name, compress_level=3)
        source = vehicle.source
        if plate.layout == "two-line" and vehicle.cls != "motorcycle":
            source += f"/{vehicle.cls}"
        rows.append({"file": name, "plate_text": plate.text, "layout": plate.layout,
                     "plate_x1": box[0], "plate_y1": box[1], "plate_x2": box[2], "plate_y2": box[3],
                     "vehicle_source": source})
        details.append({"file": name, "plate_file": plate.source_name, "vehicle_source": vehicle.source,
                        "vehicle_class": vehicle.cls, "det_score": round(vehicle.score, 3),
                        "det_box": " ".join(str(v) for v in vehicle.det_box),
                        "crop_box": " ".join(str(v) for v in vehicle.box),
                        "crop_w": vehicle.crop.shape[1], "crop_h": vehicle.crop.shape[0],
                        "width": img.width, "height": img.height, **params})

    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(out / "details.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(details[0]))
        w.writeheader()
        w.writerows(details)

    sheet = contact_sheet(out, rows, np.random.default_rng(seeds[3]))
    summary = summarise(rows, details)
    summary.update({
        "seed": args.seed, "model_sha256": YOLO_SHA256,
        "one_line_subset": args.one_line_limit or None,
        "vehicle_pool": {"car_bus_truck": len(cars), "motorbike": len(bikes)},
        "detect_seconds": round(t_detect, 1), "total_seconds": round(time.monotonic() - t0, 1),
    })
    with open(out / "summary.json", "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: v for k, v in summary.items()}, indent=2))
    print(f"wrote {len(rows)} composites, {out / 'labels.csv'}, {sheet} in {summary['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
