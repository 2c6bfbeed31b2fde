#!/usr/bin/env python3
"""Joins one compare.sh sitting's outputs into one table (and JSON).

Inputs, per run N in the sitting directory:
  peer-N.json        tools/peer/peer_pipeline.py --json
  vigil-run-N.txt    stdout of `vigil run ... --no-evidence --no-upload`
  vigil-eval-N.json  `vigil eval violations ... --json`
  load-N.txt         `uptime` before and after each of the three commands
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

SITE_LINE = re.compile(r"^site \S+ \(.*\): ([0-9.]+) s, ([0-9.]+) frames/s", re.M)
CAMERA_LINE = re.compile(r"^\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.+)$", re.M)
LOAD = re.compile(r"load average: ([0-9.]+), ([0-9.]+), ([0-9.]+)")


def vigil_run(text: str) -> dict:
    m = SITE_LINE.search(text)
    if not m:
        raise SystemExit("could not find `site ...: S s, F frames/s` in the vigil run output:\n" + text)
    cams = [
        {"camera": c[0], "frames": int(c[1]), "dropped": int(c[2]), "events": int(c[3]), "ended": c[4]}
        for c in CAMERA_LINE.findall(text)
    ]
    seconds, fps = float(m.group(1)), float(m.group(2))
    return {"seconds": seconds, "fps": fps, "cameras": cams}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    runs = []
    for n in range(1, args.runs + 1):
        peer = json.loads((args.dir / f"peer-{n}.json").read_text())
        run = vigil_run((args.dir / f"vigil-run-{n}.txt").read_text())
        ev = json.loads((args.dir / f"vigil-eval-{n}.json").read_text())
        loads = [
            {"at": line.split(" ", 1)[0], "load_1m": float(m.group(1))}
            for line in (args.dir / f"load-{n}.txt").read_text().splitlines()
            if (m := LOAD.search(line))
        ]
        frames = sum(c["frames"] for c in run["cameras"])
        dropped = sum(c["dropped"] for c in run["cameras"])
        vigil = {
            "pipeline": "vigil (release): vigil run + vigil eval violations",
            "frames": frames,
            "frames_dropped": dropped,
            "seconds": run["seconds"],
            "fps": run["fps"],
            "ms_per_frame": 1000.0 / run["fps"] if run["fps"] > 0 else None,
            "inference_ms_per_frame": None,
            "events_in_run": sum(c["events"] for c in run["cameras"]),
            "eval_frames": ev["frames"],
            "eval_predictions": len(ev["predictions"]),
            "recall": ev["recall"],
            "precision": ev["precision"],
            "found": ev["found"],
            "missed": ev["missed"],
            "false_positives": ev["false_positives"],
            "dont_care": ev["dont_care"],
            "violations_labelled": ev["violations_labelled"],
        }
        p = {
            k: peer[k]
            for k in (
                "pipeline",
                "frames",
                "seconds",
                "fps",
                "ms_per_frame",
                "inference_ms_per_frame",
                "stage_ms_per_frame",
                "cpu_utilisation",
                "recall",
                "precision",
                "found",
                "missed",
                "false_positives",
                "dont_care",
                "violations_labelled",
                "settings",
                "versions",
            )
        }
        runs.append(
            {
                "run": n,
                "load": loads,
                "peer": p,
                "vigil": vigil,
                "fps_ratio_vigil_over_peer": vigil["fps"] / p["fps"] if p["fps"] > 0 else None,
                "recall_at_least_peer": vigil["recall"] >= p["recall"],
            }
        )

    def fmt(v, spec):
        width = int(spec.split(".")[0] or 0)
        return f"{'-':>{width}}" if v is None else format(v, spec)

    print()
    print(f"{'run':>3}  {'pipeline':<8} {'frames':>6} {'frames/s':>9} {'ms/frame':>9} {'infer ms':>9} "
          f"{'recall':>7} {'precision':>9} {'FP':>3}  found")
    for r in runs:
        for name in ("peer", "vigil"):
            x = r[name]
            print(
                f"{r['run']:>3}  {name:<8} {x['frames']:>6} {fmt(x['fps'], '9.2f')} "
                f"{fmt(x['ms_per_frame'], '9.1f')} {fmt(x['inference_ms_per_frame'], '9.1f')} "
                f"{100 * x['recall']:>6.0f}% {100 * x['precision']:>8.0f}% {x['false_positives']:>3}  "
                f"{'/'.join(x['found']) or '-'} of {x['violations_labelled']}"
            )
        loads = ", ".join(f"{l['load_1m']:.2f}" for l in r["load"])
        print(
            f"{r['run']:>3}  Vigil/peer frames/s = {fmt(r['fps_ratio_vigil_over_peer'], '.2f')}x; "
            f"recall {'>=' if r['recall_at_least_peer'] else '<'} peer's; 1-min load during the sitting: {loads}"
        )
        v = r["vigil"]
        print(
            f"     vigil run: {v['frames']} frames, {v['frames_dropped']} dropped, {v['events_in_run']} red-light events; "
            f"vigil eval violations: {v['eval_frames']} frames, {v['eval_predictions']} predictions"
        )
    print()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
        print(f"table written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
