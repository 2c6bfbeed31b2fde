#!/usr/bin/env python3
"""The pipeline people usually build for red-light detection, timed on a clip.

Python + OpenCV decoding + YOLOv8n on onnxruntime (CPU) + supervision's
ByteTrack + a supervision LineZone on the stop line, with the site config's
fixed-time signal plan: a tracked road user whose anchor crosses the stop line
in the direction of travel while the plan says red is a red-light violation.

It reads everything it can from Vigil's own files so that both pipelines see
the same inputs:

* the site config (`configs/hanoi-16h15.toml`): the video, the stop line,
  the direction of travel, the enforced classes, the signal plan, and the
  detector's confidence, NMS IoU and thread count;
* `models/manifest.toml`: the detector model file, whose SHA-256 is checked
  against the manifest so it is byte for byte the file Vigil loads.

The input is the model file's own square (640x640 for YOLOv8n), the whole
frame letterboxed into it, as the usual pipeline feeds an export. Vigil's
`[detector] input_size` and a camera's `detect_region` are Vigil's own ways
to spend less detector time per frame; the exported model takes no other
size without editing its graph, so the peer does not follow them.

Scoring copies `vigil eval violations` (crates/vigil-cli/src/eval_violations.rs):
see `score()` below.

Output: a JSON report (frames, seconds, fps, per-stage ms/frame, the
violations with track id, time and box, recall and precision).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import time
import tomllib
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


# --------------------------------------------------------------------------
# Inputs from Vigil's files
# --------------------------------------------------------------------------


def load_site(config_path: Path) -> dict:
    """The parts of a Vigil site config the peer needs (first red-light approach)."""
    with open(config_path, "rb") as f:
        cfg = tomllib.load(f)
    approach_id, approach = next(
        (k, a) for k, a in cfg["approaches"].items() if "red_light" in a.get("rules", [])
    )
    camera = cfg["cameras"][approach["camera"]]
    source = camera["source"]
    if source.get("kind") != "file":
        raise SystemExit(f"{config_path}: camera {approach['camera']} is not a file source")
    video = Path(source["path"])
    if not video.is_absolute():
        video = (config_path.parent / video).resolve()
    signal = cfg["signals"][approach["signal"]]
    plan = signal.get("fixed_time")
    if plan is None:
        raise SystemExit(f"{config_path}: the approach's signal has no fixed_time plan")
    det = cfg.get("detector", {})
    return {
        "approach_id": approach_id,
        "approach": approach,
        "video": video,
        "recorded_at": source.get("recorded_at"),
        "plan": plan,
        "detector": {
            "model": det["model"],
            # Defaults as in crates/vigil-core/src/config/schema.rs.
            "confidence": float(det.get("confidence", 0.25)),
            "nms_iou": float(det.get("nms_iou", 0.45)),
            "threads": int(det.get("threads", 0)),
            "classes": det.get("classes", {}),
        },
    }


def model_from_manifest(manifest_path: Path, name: str) -> tuple[Path, str, list[str]]:
    with open(manifest_path, "rb") as f:
        manifest = tomllib.load(f)
    entry = next((m for m in manifest["models"] if m["name"] == name), None)
    if entry is None:
        raise SystemExit(f"{manifest_path}: no model {name!r}")
    path = manifest_path.parent / entry["file"]
    if not path.exists():
        raise SystemExit(
            f"{path} is missing: run `target/release/vigil models fetch` (or target/debug/vigil)"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise SystemExit(f"{path}: SHA-256 {digest} is not the manifest's {entry['sha256']}")
    return path, digest, list(entry["labels"])


class FixedTimePlan:
    """Vigil's `[signals.X.fixed_time]`: phases repeat every `cycle_s` from `anchor + offset_s`."""

    def __init__(self, plan: dict, recorded_at):
        self.cycle = float(plan["cycle_s"])
        self.offset = float(plan.get("offset_s", 0.0))
        self.phases = [(p["state"], float(p["duration_s"])) for p in plan["phases"]]
        anchor = plan["anchor"]
        # Frame time = recorded_at + pts (as Vigil's file source stamps it).
        start = recorded_at if recorded_at is not None else anchor
        self.start_minus_anchor = _seconds(start) - _seconds(anchor)

    def state(self, pts_s: float) -> str:
        t = (pts_s + self.start_minus_anchor - self.offset) % self.cycle
        acc = 0.0
        for state, d in self.phases:
            acc += d
            if t < acc:
                return state
        return self.phases[-1][0]


def _seconds(v) -> float:
    if isinstance(v, dt.datetime):
        return v.timestamp()
    raise SystemExit(f"expected a TOML date-time, got {v!r}")


# --------------------------------------------------------------------------
# Detector: letterbox + onnxruntime + NMS, the way people usually write it
# --------------------------------------------------------------------------


def letterbox(img_bgr: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Ultralytics-style letterbox: keep the aspect, pad with 114, centre."""
    h, w = img_bgr.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    if (nw, nh) != (w, h):
        img_bgr = cv2.resize(img_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(
        img_bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )
    blob = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None]
    blob = np.ascontiguousarray(blob, dtype=np.float32) / 255.0
    return blob, r, left, top


def postprocess(
    out: np.ndarray,
    r: float,
    pad_x: float,
    pad_y: float,
    conf: float,
    iou: float,
    keep_classes: np.ndarray,
    frame_wh: tuple[int, int],
) -> sv.Detections:
    """(1, 84, N) YOLOv8 output -> class-aware NMS'd detections in frame pixels."""
    pred = out[0].T  # (N, 4 + classes)
    scores_all = pred[:, 4:]
    class_id = scores_all.argmax(axis=1)
    score = scores_all[np.arange(len(pred)), class_id]
    m = (score >= conf) & np.isin(class_id, keep_classes)
    if not m.any():
        return sv.Detections.empty()
    boxes, score, class_id = pred[m, :4], score[m], class_id[m]
    cx, cy, bw, bh = boxes.T
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - pad_x) / r
    xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - pad_y) / r
    w, h = frame_wh
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(), score.tolist(), class_id.tolist(), conf, iou
    )
    keep = np.asarray(keep, dtype=int).reshape(-1)
    return sv.Detections(
        xyxy=xyxy[keep].astype(np.float32),
        confidence=score[keep].astype(np.float32),
        class_id=class_id[keep].astype(int),
    )


# --------------------------------------------------------------------------
# Scoring: a copy of `vigil eval violations`
# --------------------------------------------------------------------------


def read_truth(path: Path) -> list[dict]:
    labels = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            x, y, w, h = (float(v) for v in row["bbox"].split())
            labels.append(
                {
                    "id": row["vehicle_id"].strip(),
                    "frame": int(row["frame_first_beyond_line"]),
                    "bbox": (x, y, x + w, y + h),
                    "verdict": row["is_violation"].strip(),
                }
            )
    return labels


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _near(a, b) -> bool:
    """eval_violations.rs `near`: IoU >= 0.3, or centres within half the label box's longer side."""
    acx, acy = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    bcx, bcy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return _iou(a, b) >= 0.3 or ((acx - bcx) ** 2 + (acy - bcy) ** 2) ** 0.5 <= 0.5 * max(
        b[2] - b[0], b[3] - b[1]
    )


def score(predictions: list[dict], boxes: dict, labels: list[dict], frame_tolerance: int) -> dict:
    """Matches predictions to labels exactly as crates/vigil-cli/src/eval_violations.rs does.

    For each prediction, the first label (in file order) that it hits:
    * verdict `uncertain` (front-row bikes stopped astride the line, boxed at
      some later frame): the prediction's box at its stop-line frame is
      `near` the label's box;
    * otherwise: the prediction's stop-line frame is within `frame_tolerance`
      (default 4) frames of the label's `frame_first_beyond_line`, and the
      track's matched box *at the label's frame* is `near` the label's box.
    `near` = IoU >= 0.3 or centre distance <= 0.5 * max(label w, label h).
    A hit on `yes` finds that label (several hits on one label count once); a
    hit on `uncertain` is don't-care; a hit on `no` or no hit at all is a false
    positive. recall = found / labelled yes; precision = found / (found + FP).
    """
    found, fp, dont_care = set(), 0, 0
    for p in predictions:
        x, y, w, h = p["bbox_at_stop_line"]
        at_stop = (x, y, x + w, y + h)
        hit = None
        for l in labels:
            if l["verdict"] == "uncertain":
                ok = _near(at_stop, l["bbox"])
            else:
                b = boxes.get((p["track_id"], l["frame"]))
                ok = abs(p["frame_stop_line"] - l["frame"]) <= frame_tolerance and (
                    b is not None and _near(b, l["bbox"])
                )
            if ok:
                hit = l
                break
        if hit is None:
            p["matched"] = None
            fp += 1
            continue
        p["matched"] = f"{hit['id']} ({hit['verdict']})"
        if hit["verdict"] == "yes":
            found.add(hit["id"])
        elif hit["verdict"] == "uncertain":
            dont_care += 1
        else:
            fp += 1
    yes = [l["id"] for l in labels if l["verdict"] == "yes"]
    tp = len(found)
    return {
        "violations_labelled": len(yes),
        "found": sorted(found),
        "missed": [i for i in yes if i not in found],
        "false_positives": fp,
        "dont_care": dont_care,
        "recall": tp / max(len(yes), 1),
        "precision": tp / max(tp + fp, 1),
    }


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

ANCHORS = {
    "bottom_center": [sv.Position.BOTTOM_CENTER],
    "corners": [
        sv.Position.TOP_LEFT,
        sv.Position.TOP_RIGHT,
        sv.Position.BOTTOM_LEFT,
        sv.Position.BOTTOM_RIGHT,
    ],
    "center": [sv.Position.CENTER],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=REPO / "configs/hanoi-16h15.toml")
    ap.add_argument("--manifest", type=Path, default=REPO / "models/manifest.toml")
    ap.add_argument("--truth", type=Path, help="violations.csv (default: beside the video)")
    ap.add_argument("--video", type=Path, help="override the config's camera source")
    ap.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: [detector] threads)")
    ap.add_argument("--confidence", type=float, help="default: [detector] confidence")
    ap.add_argument("--nms-iou", type=float, help="default: [detector] nms_iou")
    ap.add_argument(
        "--anchor",
        choices=sorted(ANCHORS),
        default="bottom_center",
        help="LineZone triggering anchor(s): the box's bottom centre (where it meets the road) by default",
    )
    ap.add_argument(
        "--tracker-frame-rate",
        type=float,
        help="sv.ByteTrack(frame_rate=...) (default: the video's own frame rate)",
    )
    ap.add_argument("--frame-tolerance", type=int, default=4, help="as `vigil eval violations`")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--json", type=Path, help="write the report here too")
    args = ap.parse_args()

    site = load_site(args.config)
    det = site["detector"]
    approach = site["approach"]
    video = args.video or site["video"]
    truth = args.truth or video.parent / "violations.csv"
    threads = args.threads if args.threads is not None else det["threads"]
    conf = args.confidence if args.confidence is not None else det["confidence"]
    nms_iou = args.nms_iou if args.nms_iou is not None else det["nms_iou"]

    model_path, model_sha, labels = model_from_manifest(args.manifest, det["model"])
    # The config maps road-user types to the model's labels; keep the enforced ones.
    enforced = approach.get("enforce_classes", ["car", "motorbike", "bus", "truck"])
    keep_names = sorted({n for t in enforced for n in det["classes"].get(t, [])})
    keep_classes = np.array([labels.index(n) for n in keep_names])
    road_user = {labels.index(n): t for t in enforced for n in det["classes"].get(t, [])}

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads > 0:
        so.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    input_name = model_input.name
    # The export's own square (see the module docstring).
    size = model_input.shape[-1] if isinstance(model_input.shape[-1], int) else 640

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {video}")
    video_fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frame_rate = args.tracker_frame_rate or video_fps
    with warnings.catch_warnings():
        # sv.ByteTrack is deprecated (moved to the `trackers` package) since
        # supervision 0.28 and gone in 0.31; 0.30.9 is the last that ships it.
        warnings.simplefilter("ignore")
        tracker = sv.ByteTrack(frame_rate=frame_rate)
    (sx, sy), (ex, ey) = approach["stop_line"]
    line = sv.LineZone(
        start=sv.Point(sx, sy), end=sv.Point(ex, ey), triggering_anchors=ANCHORS[args.anchor]
    )
    # LineZone counts "in" when the anchor moves to the side where the
    # line's cross product is negative; the travel vector's end says which
    # side the controlled direction leads to.
    (_, _), (tx, ty) = approach["travel"]
    forward_is_in = ((ex - sx) * (ty - sy) - (ey - sy) * (tx - sx)) < 0
    plan = FixedTimePlan(site["plan"], site["recorded_at"])

    stage = {"decode": 0.0, "preprocess": 0.0, "inference": 0.0, "postprocess": 0.0, "track_and_rules": 0.0}
    predictions: list[dict] = []
    crossings: list[dict] = []  # every forward crossing, any phase (diagnostic)
    boxes: dict[tuple[int, int], tuple[float, float, float, float]] = {}
    frames = 0
    clock = time.perf_counter
    cpu0 = time.process_time()
    started = clock()
    while args.max_frames is None or frames < args.max_frames:
        t0 = clock()
        ok, frame = cap.read()
        if not ok:
            break
        pts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        t1 = clock()
        blob, r, px, py = letterbox(frame, size)
        t2 = clock()
        out = session.run(None, {input_name: blob})[0]
        t3 = clock()
        h, w = frame.shape[:2]
        dets = postprocess(out, r, px, py, conf, nms_iou, keep_classes, (w, h))
        t4 = clock()
        tracked = tracker.update_with_detections(dets)
        crossed_in, crossed_out = line.trigger(tracked)
        crossed = crossed_in if forward_is_in else crossed_out
        index = frames
        for i in range(len(tracked)):
            tid = int(tracked.tracker_id[i])
            boxes[(tid, index)] = tuple(float(v) for v in tracked.xyxy[i])
            if crossed[i]:
                phase = plan.state(pts)
                crossings.append({"track_id": tid, "frame": index, "t": round(pts, 4), "phase": phase})
                if phase == "red":
                    x1, y1, x2, y2 = (float(v) for v in tracked.xyxy[i])
                    predictions.append(
                        {
                            "track_id": tid,
                            "class": road_user.get(int(tracked.class_id[i]), str(tracked.class_id[i])),
                            "frame_stop_line": index,
                            "t_stop_line": round(pts, 4),
                            "phase": phase,
                            "bbox_at_stop_line": [x1, y1, x2 - x1, y2 - y1],
                            "confidence": float(tracked.confidence[i]),
                        }
                    )
        t5 = clock()
        stage["decode"] += t1 - t0
        stage["preprocess"] += t2 - t1
        stage["inference"] += t3 - t2
        stage["postprocess"] += t4 - t3
        stage["track_and_rules"] += t5 - t4
        frames += 1
    seconds = clock() - started
    cpu_s = time.process_time() - cpu0
    cap.release()

    labels_truth = read_truth(truth)
    result = score(predictions, boxes, labels_truth, args.frame_tolerance)
    ms = {k: 1000.0 * v / max(frames, 1) for k, v in stage.items()}
    report = {
        "pipeline": "peer: Python + OpenCV + onnxruntime + supervision ByteTrack/LineZone",
        "config": str(args.config),
        "video": str(video),
        "truth": str(truth),
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else 0.0,
        "ms_per_frame": 1000.0 * seconds / max(frames, 1),
        "inference_ms_per_frame": ms["inference"],
        "stage_ms_per_frame": ms,
        "cpu_utilisation": cpu_s / seconds if seconds > 0 else 0.0,
        "settings": {
            "model": det["model"],
            "model_file": str(model_path),
            "model_sha256": model_sha,
            "input_size": size,
            "onnxruntime_intra_op_threads": threads,
            "graph_optimization": "ORT_ENABLE_ALL",
            "confidence": conf,
            "nms_iou": nms_iou,
            "nms": "class-aware (cv2.dnn.NMSBoxesBatched)",
            "classes": keep_names,
            "tracker": f"sv.ByteTrack(frame_rate={frame_rate:g}), other settings default",
            "line_zone_anchors": args.anchor,
            "stop_line": approach["stop_line"],
            "violation": "LineZone crossing in the travel direction while the fixed-time plan says red",
            "frame_tolerance": args.frame_tolerance,
        },
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "supervision": sv.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        **result,
        "predictions": predictions,
        "forward_crossings_any_phase": crossings,
        "backward_crossings": line.out_count if forward_is_in else line.in_count,
    }
    print(
        f"peer: {frames} frames in {seconds:.2f} s = {report['fps']:.2f} frames/s "
        f"({report['ms_per_frame']:.1f} ms/frame, inference {ms['inference']:.1f} ms); "
        f"found {len(result['found'])}/{result['violations_labelled']} "
        f"recall {100 * result['recall']:.0f}% precision {100 * result['precision']:.0f}% "
        f"false positives {result['false_positives']} don't-care {result['dont_care']}"
    )
    listed = ", ".join(f"track {c['track_id']} frame {c['frame']} {c['phase']}" for c in crossings)
    print(f"  forward crossings of the stop line, any phase: {len(crossings)} ({listed or 'none'})")
    for p in predictions:
        print(
            f"  track {p['track_id']:>4} {p['class']:<10} stop line frame {p['frame_stop_line']:>3} "
            f"(t {p['t_stop_line']:6.2f} s) box {[round(v) for v in p['bbox_at_stop_line']]} -> "
            f"{p['matched'] or 'FALSE POSITIVE'}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
