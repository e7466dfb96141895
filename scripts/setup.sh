#!/usr/bin/env bash
# Installs the Debian packages spate builds and tests with. Idempotent: runs
# apt-get only when something is missing. Works as root or through sudo.
set -euo pipefail

packages=(
  build-essential g++ meson ninja-build pkg-config python3
  libsimdjson-dev liburing-dev libjemalloc-dev libxxhash-dev liblz4-dev libzstd-dev
  doctest-dev libbenchmark-dev libtomlplusplus-dev libcli11-dev libfmt-dev
  clang libclang-rt-14-dev llvm
  libpcap-dev tshark dpdk-dev prometheus
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
