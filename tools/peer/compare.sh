#!/usr/bin/env bash
# Vigil against the Python peer pipeline on the same clip, in one sitting.
#
#   tools/peer/compare.sh [--runs N] [--json OUT.json] [--config CONFIG] [--truth violations.csv]
#
# Per run, one after the other on the same machine:
#   1. the peer: tools/peer/peer_pipeline.py (Python, OpenCV, onnxruntime,
#      supervision ByteTrack + LineZone) on the config's clip;
#   2. Vigil's speed: `vigil run --config CONFIG --no-evidence --no-upload`
#      (the whole running chain; its printed frames/s);
#   3. Vigil's recall: `vigil eval violations --config CONFIG --truth ... --json`.
# Then one table: frames/s, ms/frame, recall, precision, Vigil/peer ratio.
#
# Environment:
#   VIGIL_BIN=path    use this vigil binary instead of building the release one
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
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        --config) config="$2"; shift 2 ;;
        --truth) truth="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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
echo "== one sitting, $runs run(s); raw outputs in $out"
for n in $(seq 1 "$runs"); do
    load="$out/load-$n.txt"
    : >"$load"
    echo "peer-start $(uptime)" >>"$load"
    echo "-- run $n: peer ($(uptime | sed 's/.*load/load/'))"
    "$venv/bin/python" tools/peer/peer_pipeline.py --config "$config" --truth "$truth" \
        --json "$out/peer-$n.json" | tee "$out/peer-$n.txt"
    echo "vigil-run-start $(uptime)" >>"$load"
    echo "-- run $n: vigil run ($(uptime | sed 's/.*load/load/'))"
    "$vigil" run --config "$config" --no-evidence --no-upload \
        --events-out "$out/vigil-events-$n.jsonl" | tee "$out/vigil-run-$n.txt"
    echo "vigil-eval-start $(uptime)" >>"$load"
    echo "-- run $n: vigil eval violations"
    "$vigil" eval violations --config "$config" --truth "$truth" \
        --json "$out/vigil-eval-$n.json" | tee "$out/vigil-eval-$n.txt"
    echo "end $(uptime)" >>"$load"
done

"$venv/bin/python" tools/peer/summarise.py "$out" --runs "$runs" ${json:+--json "$json"} \
    | tee "$out/table.txt"
