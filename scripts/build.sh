#!/usr/bin/env bash
# Configures (once) and builds spate into ./build (BUILD_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  meson setup "$build_dir" --buildtype=release ${MESON_ARGS:-}
fi
ninja -C "$build_dir" -j"${JOBS:-2}"
