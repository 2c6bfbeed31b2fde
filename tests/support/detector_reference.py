#!/usr/bin/env python3
"""Reference YOLOv8n (COCO) detections for the Rust detector's fixture tests.

Runs models/yolov8n-coco.onnx with Python onnxruntime on the PNG frames in
tests/fixtures/detector/ and writes one <name>.json per frame, plus
input-motorway-300.json (SHA-256, sampled values, sum and sum of squares of
the letterboxed input tensor for motorway-300). The Rust detector must
reproduce the same classes, boxes within 1 px and scores within 1e-3.

The letterbox and the post-processing are implemented by hand in numpy, in
float32, exactly as specified in tests/fixtures/detector/README.md, so that
the Rust side can reproduce the input tensor bit for bit. Do not replace them
with cv2/PIL resizing.

Set-up (once):

    python3 -m venv /tmp/ref
    /tmp/ref/bin/pip install onnxruntime==1.31.1 numpy pillow

Usage, from the repository root:

    # Re-extract the PNG frames with ffmpeg (only needed if they are missing
    # or the frame list changed), then regenerate every JSON fixture:
    /tmp/ref/bin/python tests/support/detector_reference.py --extract

    # Regenerate the JSON fixtures from the committed PNGs:
    /tmp/ref/bin/python tests/support/detector_reference.py

Options:

    --model PATH         ONNX model (default models/yolov8n-coco.onnx; its
                         SHA-256 must be the one in EXPECTED_MODEL_SHA256)
    --out DIR            fixture directory (default tests/fixtures/detector)
    --shared-demo DIR    where intersection-320x240.mp4 lives
                         (default ../shared/data/demo relative to the repo)
    --extract            (re)create the PNGs with ffmpeg before detecting
    --dump-input PATH    also write the raw motorway-300 input tensor
                         (float32 LE, 1x3x640x640, 4 915 200 bytes) to PATH;
                         not committed, for debugging only
    --draw DIR           draw the detections onto copies of the frames in DIR
"""

import argparse
import ast
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

EXPECTED_MODEL_SHA256 = "75cc3648650bdab6baac92fcff3627148405a9a15aca86ca7117b6d1ab478726"
INPUT_SIZE = 640
CONF = 0.25
IOU = 0.45
MAX_DET = 300
PAD_VALUE = 114

# Input tensor sample for input-motorway-300.json: element (not byte)
# indices i * SAMPLE_STRIDE for i in 0..SAMPLE_COUNT, where
# SAMPLE_STRIDE = floor(3 * 640 * 640 / 1000) = 1228.
SAMPLE_COUNT = 1000
SAMPLE_STRIDE = (3 * INPUT_SIZE * INPUT_SIZE) // SAMPLE_COUNT
INPUT_SAMPLE_FRAME = "motorway-300"

# (name, clip, frame index); clip "repo:" is relative to the repository root,
# "shared:" to --shared-demo.
FRAMES = [
    ("motorway-000", "repo:demo/motorway-a40.mp4", 0),
    ("motorway-300", "repo:demo/motorway-a40.mp4", 300),
    ("motorway-599", "repo:demo/motorway-a40.mp4", 599),
    ("intersection-075", "shared:intersection-320x240.mp4", 75),
]

COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]

F32 = np.float32


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract_frame(clip, index, out_png):
    """Extract one frame, losslessly, as an rgb24 PNG (ffmpeg's default for PNG)."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", clip,
        "-vf", "select=eq(n\\,%d)" % index,
        "-frames:v", "1", "-vsync", "0",
        out_png,
    ]
    subprocess.run(cmd, check=True)
    if not os.path.exists(out_png):
        sys.exit("ffmpeg wrote no frame %d from %s" % (index, clip))


def letterbox_params(w, h, s=INPUT_SIZE):
    r = min(s / w, s / h)  # Python float = float64
    new_w = int(math.floor(w * r + 0.5))
    new_h = int(math.floor(h * r + 0.5))
    pad_x = (s - new_w) // 2
    pad_y = (s - new_h) // 2
    return r, new_w, new_h, pad_x, pad_y


def axis_coords(src, dst):
    """Half-pixel-centre source coordinates for one axis, all in float32.

    Returns (i0, i1, f) for each destination index: the two source indices
    and the float32 weight of i1.
    """
    scale = F32(src) / F32(dst)                       # float32 division
    o = np.arange(dst, dtype=np.float32)
    s = (o + F32(0.5)) * scale - F32(0.5)             # float32, no FMA
    s = np.minimum(np.maximum(s, F32(0.0)), F32(src - 1))
    i0 = np.floor(s).astype(np.int64)
    i1 = np.minimum(i0 + 1, src - 1)
    f = s - i0.astype(np.float32)                     # float32
    assert s.dtype == np.float32 and f.dtype == np.float32
    return i0, i1, f


def preprocess(rgb):
    """uint8 HxWx3 RGB -> (float32 [1,3,640,640] tensor, letterbox params)."""
    h, w, _ = rgb.shape
    s = INPUT_SIZE
    r, new_w, new_h, pad_x, pad_y = letterbox_params(w, h, s)

    x0, x1, fx = axis_coords(w, new_w)
    y0, y1, fy = axis_coords(h, new_h)

    p = rgb.astype(np.float32)                        # (H, W, 3)
    fx = fx[None, :, None]                            # (1, new_w, 1)
    fy = fy[:, None, None]                            # (new_h, 1, 1)
    one = F32(1.0)
    p00 = p[y0][:, x0]
    p01 = p[y0][:, x1]
    p10 = p[y1][:, x0]
    p11 = p[y1][:, x1]
    top = (one - fx) * p00 + fx * p01
    bot = (one - fx) * p10 + fx * p11
    val = (one - fy) * top + fy * bot
    val = val / F32(255.0)
    assert val.dtype == np.float32

    canvas = np.full((3, s, s), F32(PAD_VALUE) / F32(255.0), dtype=np.float32)
    canvas[:, pad_y:pad_y + new_h, pad_x:pad_x + new_w] = val.transpose(2, 0, 1)
    tensor = np.ascontiguousarray(canvas[None])
    lb = {"r": r, "new_w": new_w, "new_h": new_h, "pad_x": pad_x, "pad_y": pad_y}
    return tensor, lb


def iou_f32(a, b):
    """IoU of two float32 [x1,y1,x2,y2] boxes, in float32."""
    ix1 = max(a[0], b[0])
    iy1 = max(a[1], b[1])
    ix2 = min(a[2], b[2])
    iy2 = min(a[3], b[3])
    iw = max(ix2 - ix1, F32(0.0))
    ih = max(iy2 - iy1, F32(0.0))
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    union = area_a + area_b - inter
    if not union > F32(0.0):
        return F32(0.0)
    return inter / union


def postprocess(out, lb, w, h):
    """out: float32 [84, 8400] -> list of detections in source pixels."""
    assert out.dtype == np.float32 and out.shape[0] == 84
    scores_all = out[4:, :]
    cls = np.argmax(scores_all, axis=0)               # first max on ties
    score = scores_all[cls, np.arange(out.shape[1])]
    keep = np.nonzero(score >= F32(CONF))[0]          # ascending anchor index

    cx, cy, bw, bh = (out[k, keep] for k in range(4))
    half_w = bw / F32(2.0)
    half_h = bh / F32(2.0)
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    assert boxes.dtype == np.float32
    cand_cls = cls[keep]
    cand_score = score[keep]

    # Descending score; stable, so ties keep ascending anchor order.
    order = np.argsort(-cand_score, kind="stable")
    kept = []
    iou_thr = F32(IOU)
    for i in order:
        suppressed = False
        for j in kept:
            if cand_cls[j] == cand_cls[i] and iou_f32(boxes[i], boxes[j]) > iou_thr:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
            if len(kept) == MAX_DET:
                break

    # Back to source pixels: the float32 box coordinate is widened to
    # float64, mapped with the float64 r, clamped, then rounded to float32
    # (the spec leaves this precision open; the difference is < 1e-4 px).
    def to_src(v, pad, r, hi):
        return float(F32(min(max((float(v) - pad) / r, 0.0), float(hi))))

    r = lb["r"]
    dets = []
    for i in kept:
        b = boxes[i]
        x1 = to_src(b[0], lb["pad_x"], r, w)
        y1 = to_src(b[1], lb["pad_y"], r, h)
        x2 = to_src(b[2], lb["pad_x"], r, w)
        y2 = to_src(b[3], lb["pad_y"], r, h)
        c = int(cand_cls[i])
        dets.append({
            "class_id": c,
            "class": COCO80[c],
            "score": float(cand_score[i]),
            "box": [x1, y1, x2, y2],
        })
    return dets


def input_sample(tensor):
    flat = tensor.reshape(-1)
    data = flat.astype("<f4").tobytes()
    idx = [i * SAMPLE_STRIDE for i in range(SAMPLE_COUNT)]
    vals64 = flat.astype(np.float64)
    return {
        "image": INPUT_SAMPLE_FRAME + ".png",
        "shape": list(tensor.shape),
        "dtype": "float32",
        "byte_order": "little",
        "num_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sample_stride": SAMPLE_STRIDE,
        "sample_indices": idx,
        "sample_values": [float(flat[i]) for i in idx],
        # Exactly rounded float64 sums (math.fsum) of the float32 values
        # widened to float64; each square is exact in float64.
        "sum": math.fsum(vals64.tolist()),
        "sum_sq": math.fsum((vals64 * vals64).tolist()),
    }


def draw(rgb, dets, path):
    im = Image.fromarray(rgb)
    d = ImageDraw.Draw(im)
    for det in dets:
        x1, y1, x2, y2 = det["box"]
        d.rectangle([x1, y1, x2, y2], outline=(255, 0, 0), width=2)
        d.text((x1 + 2, max(y1 - 11, 0)), "%s %.2f" % (det["class"], det["score"]),
               fill=(255, 255, 0))
    im.save(path)


def to_json(obj, indent=0):
    """JSON with one line per top-level key and per list-of-objects item.

    Floats are written by json, i.e. with repr(): the shortest string that
    round-trips the float64 value (every float32 result is exactly
    representable, so it round-trips the float32 too).
    """
    pad = " " * (indent + 1)
    if isinstance(obj, dict) and indent == 0:
        items = ["%s%s: %s" % (pad, json.dumps(k), to_json(v, indent + 1)) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n}"
    if isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        items = [pad + json.dumps(v) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return json.dumps(obj)


def write_json(path, obj):
    text = to_json(obj) + "\n"
    assert json.loads(text) == obj
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "models", "yolov8n-coco.onnx"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "detector"))
    ap.add_argument("--shared-demo",
                    default=os.path.join(REPO, "..", "shared", "data", "demo"))
    ap.add_argument("--extract", action="store_true")
    ap.add_argument("--dump-input", metavar="PATH")
    ap.add_argument("--draw", metavar="DIR")
    args = ap.parse_args()

    model_sha = sha256_file(args.model)
    if model_sha != EXPECTED_MODEL_SHA256:
        sys.exit("%s: sha256 %s, expected %s" % (args.model, model_sha, EXPECTED_MODEL_SHA256))

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1      # deterministic reductions
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    meta_names = sess.get_modelmeta().custom_metadata_map.get("names")
    if meta_names is not None:
        names = ast.literal_eval(meta_names)
        if [names[i] for i in range(len(names))] != COCO80:
            sys.exit("model 'names' metadata differs from COCO80")

    os.makedirs(args.out, exist_ok=True)
    if args.draw:
        os.makedirs(args.draw, exist_ok=True)

    for name, clip, index in FRAMES:
        png = os.path.join(args.out, name + ".png")
        if args.extract:
            base, rel = clip.split(":", 1)
            root = REPO if base == "repo" else args.shared_demo
            extract_frame(os.path.join(root, rel), index, png)
        if not os.path.exists(png):
            sys.exit("%s is missing; run with --extract" % png)

        with Image.open(png) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
        h, w, _ = rgb.shape
        tensor, lb = preprocess(rgb)
        (out,) = sess.run(["output0"], {"images": tensor})
        dets = postprocess(out[0], lb, w, h)

        write_json(os.path.join(args.out, name + ".json"), {
            "image": name + ".png",
            "width": w,
            "height": h,
            "model_sha256": model_sha,
            "input_size": INPUT_SIZE,
            "conf": CONF,
            "iou": IOU,
            "letterbox": lb,
            "detections": dets,
        })
        counts = {}
        for d in dets:
            counts[d["class"]] = counts.get(d["class"], 0) + 1
        print("%s: %dx%d, %d detections %s" % (name, w, h, len(dets), counts))

        if name == INPUT_SAMPLE_FRAME:
            write_json(os.path.join(args.out, "input-" + name + ".json"), input_sample(tensor))
            if args.dump_input:
                with open(args.dump_input, "wb") as f:
                    f.write(tensor.astype("<f4").tobytes())
        if args.draw:
            draw(rgb, dets, os.path.join(args.draw, name + ".png"))


if __name__ == "__main__":
    main()
