#!/usr/bin/env bash
# Builds spate with AddressSanitizer (leaks included) and UndefinedBehavior-
# Sanitizer into ./build-asan (BUILD_DIR overrides) and runs every unit and
# end-to-end test under them. Any sanitizer report fails the run, also one
# from a daemon whose exit status or stderr a test does not look at.
# Arguments go to meson test (e.g. a test name).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${BUILD_DIR:-build-asan}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  # Static sanitizer runtimes: GCC's shared libubsan ignores log_path when
  # libasan is loaded too, and its reports would then get lost with stderr.
  link_args=()
  if ! ${CXX:-c++} --version | grep -q clang; then link_args=("-Dcpp_link_args=-static-libasan -static-libubsan"); fi
  meson setup "$build_dir" --buildtype=debugoptimized -Db_sanitize=address,undefined \
    -Dcpp_args=-fno-sanitize-recover=all "${link_args[@]}" -Dnative=false -Dbenchmarks=disabled ${MESON_ARGS:-}
fi
ninja -C "$build_dir" -j"${JOBS:-2}"

reports=$(mktemp -d -t spate-sanitize.XXXXXX)
trap 'rm -rf "$reports"' EXIT
# Each process writes its reports to its own file there (log_path); any file fails the run.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:print_stacktrace=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
status=0
meson test -C "$build_dir" --num-processes 1 --print-errorlogs "$@" || status=$?
for report in "$reports"/*; do
  [[ -e $report ]] || continue
  echo "== sanitizer report ${report##*/} (the number is the process id)"
  cat "$report"
  status=1
done
python3 - "$build_dir/meson-logs/testlog.json" "$(find "$reports" -type f | wc -l)" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    result = json.loads(line)["result"]
    key = "OK" if result in ("OK", "EXPECTEDFAIL") else "SKIP" if result == "SKIP" else "FAIL"
    counts[key] += 1
print("sanitize: %d passed, %d failed, %d skipped, %s sanitizer reports"
      % (counts["OK"], counts["FAIL"], counts["SKIP"], sys.argv[2]))
PY
exit $status
