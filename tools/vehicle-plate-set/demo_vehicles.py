#!/usr/bin/env python3
"""Vehicle crops from the two demo clips, for calibrating the INT8 text detector.

`vigil eval plates --locate --calibrate FILE` measures the value ranges an
INT8 text detector needs on the search bands of vehicle crops. The table
Vigil ships (crates/vigil-infer/src/calibration/ppocrv6-det-small.vehicles.toml)
was measured on the crops this script writes: every distinct, non-side-view
vehicle YOLOv8n finds in `demo/motorway-a40.mp4` (every 3rd frame) and
`demo/intersection-320x240.mp4` (every frame), found and padded exactly as
compose.py finds its backgrounds. Only the demo clips may leave
../shared/data, so the table derives from nothing else.

    python tools/vehicle-plate-set/demo_vehicles.py --data ../shared/data --out target/demo-vehicles
    target/release/vigil eval plates --dataset target/demo-vehicles --locate \\
        --calibrate crates/vigil-infer/src/calibration/ppocrv6-det-small.vehicles.toml

labels.csv lists every crop (calibration ignores plate_text; the column is
there because `eval plates` reads it). Deterministic; ~25 s on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from PIL import Image

import compose

DEMO_VIDEOS = (("demo/motorway-a40.mp4", 3), ("demo/intersection-320x240.mp4", 1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="../shared/data")
    p.add_argument("--out", type=Path, required=True, help="output folder (e.g. target/demo-vehicles)")
    p.add_argument("--models", type=Path, default=compose.REPO / "models",
                   help="folder holding yolov8n-coco.onnx (default: the repo's models/)")
    args = p.parse_args(argv)
    compose.VIDEOS = DEMO_VIDEOS
    detector = compose.VehicleDetector(compose.find_model(args.models.resolve(), 10), 2, 0.4, 0.5)
    vehicles = compose.collect_vehicles(args.data, detector, 40, edge_margin=2, dup_iou=0.7, dup_diff=6.0)
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    with open(args.out / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "plate_text"])
        for i, v in enumerate(vehicles):
            name = f"images/{i:04d}.png"
            Image.fromarray(v.crop).save(args.out / name)
            w.writerow([name, ""])
    print(f"wrote {len(vehicles)} vehicle crops and {args.out / 'labels.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
