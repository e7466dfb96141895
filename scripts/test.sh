#!/usr/bin/env bash
# Sets up, builds and runs every test (unit and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build_dir=${BUILD_DIR:-build}
meson test -C "$build_dir" --num-processes 1 --print-errorlogs "$@"
