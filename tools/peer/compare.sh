#!/usr/bin/env bash
# Vigil against the Python peer pipeline on the same clip, in one sitting.
#
#   tools/peer/compare.sh [--runs N] [--json OUT.json] [--config CONFIG] [--truth violations.csv]
#                         [--run-args "ARGS"] [--eval-args "ARGS"]
#                         [--rounds K] [--round-frames F]
#
# --run-args / --eval-args: extra options for `vigil run` / `vigil eval
# violations`, e.g. --run-args "--detect-every 2" --eval-args "--detect-every 2"
# to measure a lower detection rate's speed and its recall.
#
# Per run, one after the other on the same machine:
#   1. the peer: tools/peer/peer_pipeline.py (Python, OpenCV, onnxruntime,
#      supervision ByteTrack + LineZone) on the config's clip;
#   2. Vigil's speed: `vigil run --config CONFIG --no-evidence --no-upload`
#      (the whole running chain; its printed frames/s);
#   3. Vigil's recall: `vigil eval violations --config CONFIG --truth ... --json`.
# 1 and 2 run under tools/peer/rusage.py (wall, CPU seconds, peak RSS).
# Then K speed rounds (default 4) of the first F frames (default 128), peer
# and `vigil run --max-frames F` alternating, for a paired frames/s ratio that
# load swings disturb less.
# Then one table: frames/s, ms/frame, CPU s/frame, recall, precision, the
# Vigil/peer ratio of each run, and the speed rounds' medians.
#
# Environment:
#   VIGIL_BIN=path    use this vigil binary instead of building the release one
#   VIGIL_REV=text    what that binary was built from (recorded with the results)
#   CARGO_TARGET_DIR  where `cargo build --release -p vigil-cli` builds
#   PEER_VENV=dir     the peer's virtualenv (default target/peer-venv)
#   PYTHON=python3    the interpreter that makes the venv
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

runs=1
json=""
config="configs/hanoi-16h15.toml"
truth="../shared/data/hanoi-16h15/violations.csv"
run_args=""
eval_args=""
rounds=4
round_frames=128
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        --config) config="$2"; shift 2 ;;
        --truth) truth="$2"; shift 2 ;;
        --run-args) run_args="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --round-frames) round_frames="$2"; shift 2 ;;
        --eval-args) eval_args="$2"; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ -f "$truth" ] || { echo "no truth file $truth (the Hanoi clip lives in ../shared/data/hanoi-16h15)" >&2; exit 2; }

# The peer's virtualenv (made once, then reused).
venv="${PEER_VENV:-target/peer-venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "== making $venv from tools/peer/requirements.txt"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -r tools/peer/requirements.txt
fi

# Vigil's release binary (cargo rebuilds only what changed).
if [ -n "${VIGIL_BIN:-}" ]; then
    vigil="$VIGIL_BIN"
else
    echo "== cargo build --release -p vigil-cli"
    cargo build --release -p vigil-cli
    vigil="${CARGO_TARGET_DIR:-target}/release/vigil"
fi
[ -x "$vigil" ] || { echo "no vigil binary at $vigil" >&2; exit 2; }

# The models both pipelines load (the peer checks the detector's SHA-256 too).
if ! "$vigil" models verify >/dev/null 2>&1; then
    echo "== vigil models fetch"
    "$vigil" models fetch
fi

out="target/peer-out/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
{
    echo "vigil_bin $vigil"
    echo "vigil_version $("$vigil" --version 2>/dev/null || echo unknown)"
    echo "vigil_source ${VIGIL_REV:-working tree at $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || echo ' with uncommitted changes in crates/')}"
    echo "run_args $run_args"
    echo "eval_args $eval_args"
    echo "cpus $(nproc)"
} >"$out/sitting.txt"
echo "== one sitting: $runs full run(s), then $rounds alternating speed round(s) of $round_frames frames; raw outputs in $out"
py="$venv/bin/python"
peer=(tools/peer/peer_pipeline.py --config "$config" --truth "$truth")
for n in $(seq 1 "$runs"); do
    load="$out/load-$n.txt"
    : >"$load"
    echo "peer-start $(uptime)" >>"$load"
    echo "-- run $n: peer ($(uptime | sed 's/.*load/load/'))"
    "$py" tools/peer/rusage.py "$out/peer-$n.rusage.json" -- "$py" "${peer[@]}" \
        --json "$out/peer-$n.json" | tee "$out/peer-$n.txt"
    echo "vigil-run-start $(uptime)" >>"$load"
    echo "-- run $n: vigil run ($(uptime | sed 's/.*load/load/'))"
    # shellcheck disable=SC2086 # word-split on purpose
    "$py" tools/peer/rusage.py "$out/vigil-run-$n.rusage.json" -- \
        "$vigil" run --config "$config" --no-evidence --no-upload $run_args \
        --events-out "$out/vigil-events-$n.jsonl" | tee "$out/vigil-run-$n.txt"
    echo "vigil-eval-start $(uptime)" >>"$load"
    echo "-- run $n: vigil eval violations"
    # shellcheck disable=SC2086
    "$vigil" eval violations --config "$config" --truth "$truth" $eval_args \
        --json "$out/vigil-eval-$n.json" | tee "$out/vigil-eval-$n.txt"
    echo "end $(uptime)" >>"$load"
done

# Speed only: short runs of the first frames, alternating which goes first,
# so that both pipelines see the same swings in the machine's load.
# `vigil run --max-frames` counts analysed frames: with --detect-every K it
# gets F/K so that both cover the same first F frames of the video.
every=$(sed -nE 's/.*--detect-every[ =]+([0-9]+).*/\1/p' <<<"$run_args")
vigil_round_frames=$(( (round_frames + ${every:-1} - 1) / ${every:-1} ))
for k in $(seq 1 "$rounds"); do
    echo "-- speed round $k ($(uptime | sed 's/.*load/load/'))"
    uptime >"$out/speed-load-$k.txt"
    order=(peer vigil)
    [ $((k % 2)) -eq 0 ] && order=(vigil peer)
    for who in "${order[@]}"; do
        if [ "$who" = peer ]; then
            "$py" "${peer[@]}" --max-frames "$round_frames" --json "$out/speed-peer-$k.json" \
                >"$out/speed-peer-$k.txt"
            head -1 "$out/speed-peer-$k.txt"
        else
            # shellcheck disable=SC2086
            "$vigil" run --config "$config" --no-evidence --no-upload $run_args \
                --max-frames "$vigil_round_frames" >"$out/speed-vigil-$k.txt"
            head -1 "$out/speed-vigil-$k.txt"
        fi
    done
    uptime >>"$out/speed-load-$k.txt"
done

"$py" tools/peer/summarise.py "$out" --runs "$runs" --rounds "$rounds" ${json:+--json "$json"} \
    | tee "$out/table.txt"
