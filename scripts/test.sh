#!/usr/bin/env bash
# Sets up, builds and runs every test (unit and end-to-end), then all of
# them again under AddressSanitizer and UBSan (scripts/sanitize.sh) and the
# libFuzzer targets for FUZZ_SECONDS each (scripts/fuzz.sh, default 30).
# With arguments (meson test names or options) only those tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build_dir=${BUILD_DIR:-build}
status=0
meson test -C "$build_dir" --num-processes 1 --print-errorlogs "$@" || status=$?
# One closing line that any CI reads: counts from meson's machine-readable log.
python3 - "$build_dir/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    result = json.loads(line)["result"]
    key = "OK" if result in ("OK", "EXPECTEDFAIL") else "SKIP" if result == "SKIP" else "FAIL"
    counts[key] += 1
print("tests: %d passed, %d failed, %d skipped" % (counts["OK"], counts["FAIL"], counts["SKIP"]))
PY
if (($# == 0)); then
  checks=""
  scripts/sanitize.sh && checks="sanitizers ok" || { status=1; checks="sanitizers FAILED"; }
  scripts/fuzz.sh "${FUZZ_SECONDS:-30}" && checks="$checks, fuzz ok" || { status=1; checks="$checks, fuzz FAILED"; }
  echo "checks: $checks"
fi
exit $status
