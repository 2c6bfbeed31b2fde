#!/usr/bin/env bash
# Makes camera-like benchmark inputs from the bundled demo clip (real traffic):
# 720p and 1080p H.264 at 25 fps and 4 Mbit/s with 2 s GOPs, the way an
# intersection camera streams. Usage: benches/make-inputs.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-inputs}
mkdir -p "$out"
for size in 1280x720 1920x1080; do
  name="$out/demo-${size#*x}p-h264-4M.mp4"
  if [ -s "$name" ]; then
    echo "present: $name"
    continue
  fi
  ffmpeg -hide_banner -v error -y -i demo/motorway-a40.mp4 \
    -vf "scale=${size/x/:}:flags=lanczos,fps=25" \
    -c:v libx264 -preset medium -profile:v main -pix_fmt yuv420p \
    -b:v 4M -maxrate 4M -bufsize 8M -g 50 -bf 0 -an "$name"
  echo "made: $name"
done
