#!/usr/bin/env python3
"""Joins one compare.sh sitting's outputs into one table (and JSON).

Inputs, per run N in the sitting directory:
  peer-N.json        tools/peer/peer_pipeline.py --json
  vigil-run-N.txt    stdout of `vigil run ... --no-evidence --no-upload`
  vigil-eval-N.json  `vigil eval violations ... --json`
  load-N.txt         `uptime` before and after each of the three commands
  peer-N.rusage.json, vigil-run-N.rusage.json   tools/peer/rusage.py
  speed-peer-K.json, speed-vigil-K.txt, speed-load-K.txt   the speed rounds
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

SITE_LINE = re.compile(r"^site \S+ \(.*\): ([0-9.]+) s, ([0-9.]+) frames/s", re.M)
LOAD = re.compile(r"load average: ([0-9.]+), ([0-9.]+), ([0-9.]+)")


def is_number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def vigil_run(text: str) -> dict:
    """`vigil run`'s printed report: the site line, then a camera table whose
    columns are read from its header (camera, frames, [frames/s,] [skipped,]
    dropped, [every,] events, [plates, unreadable,] ended)."""
    m = SITE_LINE.search(text)
    if not m:
        raise SystemExit("could not find `site ...: S s, F frames/s` in the vigil run output:\n" + text)
    lines = text[m.end():].splitlines()
    header = next((l.split() for l in lines if l.split()[:2] == ["camera", "frames"]), None)
    if header is None or header[-1] != "ended":
        raise SystemExit("could not find the camera table in the vigil run output:\n" + text)
    cams = []
    for line in lines[lines.index(next(l for l in lines if l.split()[:2] == ["camera", "frames"])) + 1 :]:
        parts = line.split(None, len(header) - 1)
        if len(parts) < len(header) or not all(is_number(p) for p in parts[1:-1]):
            break
        row = {"camera": parts[0], "ended": parts[-1]}
        row.update({h: float(v) if "." in v else int(v) for h, v in zip(header[1:-1], parts[1:-1])})
        cams.append(row)
    return {"seconds": float(m.group(1)), "fps": float(m.group(2)), "cameras": cams}


def vigil_speed(run: dict) -> dict:
    frames = sum(c["frames"] for c in run["cameras"])
    skipped = sum(c.get("skipped", 0) for c in run["cameras"])
    # `vigil run` counts only analysed frames in its frames/s. With a
    # detection rate below every frame (--detect-every), the video's frames/s
    # is analysed + skipped over the same wall time: that is the figure
    # comparable with the peer, which analyses every frame.
    fps = (frames + skipped) / run["seconds"] if skipped else run["fps"]
    return {"frames": frames + skipped, "frames_analysed": frames, "frames_skipped": skipped, "fps": fps}


def rusage(path: Path, frames: int) -> dict:
    if not path.exists():
        return {"cpu_s": None, "cpu_s_per_frame": None, "peak_rss_mb": None}
    r = json.loads(path.read_text())
    return {
        "process_wall_s": r["wall_s"],
        "cpu_s": r["cpu_s"],
        "cpu_s_per_frame": r["cpu_s"] / max(frames, 1),
        "peak_rss_mb": r["peak_rss_mb"],
    }


def loads(path: Path) -> list[float]:
    if not path.exists():
        return []
    return [float(m.group(1)) for line in path.read_text().splitlines() if (m := LOAD.search(line))]


PEER_KEYS = (
    "pipeline", "frames", "seconds", "fps", "ms_per_frame", "inference_ms_per_frame",
    "stage_ms_per_frame", "cpu_utilisation", "recall", "precision", "found", "missed",
    "false_positives", "dont_care", "violations_labelled", "settings", "versions",
)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    runs = []
    for n in range(1, args.runs + 1):
        peer = json.loads((args.dir / f"peer-{n}.json").read_text())
        run = vigil_run((args.dir / f"vigil-run-{n}.txt").read_text())
        ev = json.loads((args.dir / f"vigil-eval-{n}.json").read_text())
        speed = vigil_speed(run)
        vigil = {
            "pipeline": "vigil (release): vigil run (speed) + vigil eval violations (recall)",
            **speed,
            "frames_dropped": sum(c.get("dropped", 0) for c in run["cameras"]),
            "seconds": run["seconds"],
            "fps_printed_analysed": run["fps"],
            "ms_per_frame": 1000.0 / speed["fps"] if speed["fps"] > 0 else None,
            "inference_ms_per_frame": None,  # `vigil run` does not print its stage times
            "events_in_run": sum(c["events"] for c in run["cameras"]),
            "eval_frames": ev["frames"],
            "eval_predictions": len(ev["predictions"]),
            **{k: ev[k] for k in ("recall", "precision", "found", "missed", "false_positives",
                                  "dont_care", "violations_labelled")},
            **rusage(args.dir / f"vigil-run-{n}.rusage.json", speed["frames"]),
        }
        p = {k: peer[k] for k in PEER_KEYS}
        p.update(rusage(args.dir / f"peer-{n}.rusage.json", p["frames"]))
        runs.append(
            {
                "run": n,
                "load_1m": loads(args.dir / f"load-{n}.txt"),
                "peer": p,
                "vigil": vigil,
                "fps_ratio_vigil_over_peer": vigil["fps"] / p["fps"] if p["fps"] > 0 else None,
                "recall_at_least_peer": vigil["recall"] >= p["recall"],
            }
        )

    rounds = []
    for k in range(1, args.rounds + 1):
        pf, vf = args.dir / f"speed-peer-{k}.json", args.dir / f"speed-vigil-{k}.txt"
        if not (pf.exists() and vf.exists()):
            continue
        pj = json.loads(pf.read_text())
        peer_fps = pj["fps"]
        vs = vigil_speed(vigil_run(vf.read_text()))
        rounds.append(
            {
                "round": k,
                "first": "peer" if k % 2 else "vigil",
                "peer_frames": pj["frames"],
                "vigil_frames": vs["frames"],
                "peer_fps": peer_fps,
                "vigil_fps": vs["fps"],
                "ratio": vs["fps"] / peer_fps if peer_fps > 0 else None,
                "load_1m": loads(args.dir / f"speed-load-{k}.txt"),
            }
        )

    def fmt(v, spec):
        width = int(spec.split(".")[0] or 0)
        return f"{'-':>{width}}" if v is None else format(v, spec)

    print()
    print(
        f"{'run':>3}  {'pipeline':<8} {'frames':>6} {'frames/s':>9} {'ms/frame':>9} {'infer ms':>9} "
        f"{'CPU s/frame':>11} {'RSS MB':>7} {'recall':>7} {'precision':>9} {'FP':>3}  found"
    )
    for r in runs:
        for name in ("peer", "vigil"):
            x = r[name]
            print(
                f"{r['run']:>3}  {name:<8} {x['frames']:>6} {fmt(x['fps'], '9.2f')} "
                f"{fmt(x['ms_per_frame'], '9.1f')} {fmt(x['inference_ms_per_frame'], '9.1f')} "
                f"{fmt(x['cpu_s_per_frame'], '11.3f')} {fmt(x['peak_rss_mb'], '7.0f')} "
                f"{100 * x['recall']:>6.0f}% {100 * x['precision']:>8.0f}% {x['false_positives']:>3}  "
                f"{'/'.join(x['found']) or '-'} of {x['violations_labelled']}"
            )
        ld = ", ".join(f"{v:.2f}" for v in r["load_1m"])
        print(
            f"{r['run']:>3}  Vigil/peer frames/s = {fmt(r['fps_ratio_vigil_over_peer'], '.2f')}x; "
            f"recall {'>=' if r['recall_at_least_peer'] else '<'} peer's; 1-min load at each step: {ld}"
        )
        v = r["vigil"]
        print(
            f"     vigil run: {v['frames']} frames ({v['frames_analysed']} analysed, {v['frames_skipped']} skipped), "
            f"{v['frames_dropped']} dropped, {v['events_in_run']} red-light events; "
            f"vigil eval violations: {v['eval_frames']} frames, {v['eval_predictions']} predictions"
        )
    summary = {}
    if rounds:
        print()
        print(
            f"speed rounds (the first frames: peer {rounds[0]['peer_frames']}, "
            f"vigil {rounds[0]['vigil_frames']}; alternating):"
        )
        for r in rounds:
            ld = ", ".join(f"{v:.2f}" for v in r["load_1m"])
            print(
                f"  round {r['round']} ({r['first']} first): peer {r['peer_fps']:.2f}, vigil {r['vigil_fps']:.2f} "
                f"frames/s, Vigil/peer {fmt(r['ratio'], '.2f')}x (load {ld})"
            )
        ratios = [r["ratio"] for r in rounds if r["ratio"] is not None]
        summary = {
            "median_peer_fps": statistics.median(r["peer_fps"] for r in rounds),
            "median_vigil_fps": statistics.median(r["vigil_fps"] for r in rounds),
            "median_ratio": statistics.median(ratios) if ratios else None,
            "min_ratio": min(ratios) if ratios else None,
            "max_ratio": max(ratios) if ratios else None,
        }
        print(
            f"  median: peer {summary['median_peer_fps']:.2f}, vigil {summary['median_vigil_fps']:.2f} frames/s; "
            f"Vigil/peer median {fmt(summary['median_ratio'], '.2f')}x "
            f"(range {fmt(summary['min_ratio'], '.2f')}-{fmt(summary['max_ratio'], '.2f')})"
        )
    print()
    sitting = {}
    if (args.dir / "sitting.txt").exists():
        for line in (args.dir / "sitting.txt").read_text().splitlines():
            k, _, v = line.partition(" ")
            sitting[k] = v
        print("  " + "; ".join(f"{k}: {v}" for k, v in sitting.items() if v))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"sitting": sitting, "runs": runs, "speed_rounds": rounds, "speed_rounds_summary": summary}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"table written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
