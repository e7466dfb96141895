#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan, UBSan) into
# ./build-fuzz (BUILD_DIR overrides), replays every kept reproducer
# (tests/fuzz/regressions/TARGET/), then fuzzes each target for SECONDS
# (default 30) from its seeds (tests/fuzz/corpus/TARGET/). Exits non-zero on
# any crash, leak, timeout or broken invariant; one summary line per target.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (FUZZ_JOBS targets at once, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
seconds=${1:-30}
(($# > 0)) && shift
targets=("$@")
((${#targets[@]} > 0)) || targets=(event_parser protocol config rfc3339 segment checkpoint_state packet)
build_dir=${BUILD_DIR:-build-fuzz}
parallel=${FUZZ_JOBS:-2}

if [[ ! -f "$build_dir/build.ninja" ]]; then
  # fuzzer-no-link on every library: libFuzzer learns nothing from code without coverage.
  CXX=${FUZZ_CXX:-clang++} meson setup "$build_dir" --buildtype=debugoptimized -Dfuzz=true -Dnative=false \
    -Dbenchmarks=disabled -Db_sanitize=address,undefined -Db_lundef=false \
    "-Dcpp_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all"
fi
ninja -C "$build_dir" -j"${JOBS:-2}" "${targets[@]/#/tests/fuzz/fuzz_}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:print_stacktrace=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
out="$build_dir/fuzz-out"
mkdir -p "$out"

# Runs one target; its summary line goes to $out/TARGET.summary.
fuzz_one() {
  local t=$1 bin="$build_dir/tests/fuzz/fuzz_$1" log="$out/$1.log" art="$out/$1.artifacts/"
  local work="$build_dir/fuzz-corpus/$1"  # what this machine found; the seeds stay untouched
  mkdir -p "$work" "$art"
  rm -f "$art"/* "$log"
  local regressions=()
  if [[ -d tests/fuzz/regressions/$t ]]; then
    mapfile -t regressions < <(find "tests/fuzz/regressions/$t" -type f | sort)
  fi
  # One process per reproducer, so that every one still failing is named.
  local failed=() r
  for r in "${regressions[@]}"; do
    "$bin" -runs=0 -timeout=10 -rss_limit_mb=2048 "$r" >"$out/$t.replay.log" 2>&1 && continue
    failed+=("  $r: $(grep -m1 -E "invariant|^SUMMARY" "$out/$t.replay.log" || echo "failed, see $out/$t.replay.log")")
  done
  if ((${#failed[@]} > 0)); then
    # A known bug would only be found again: no fuzzing until it is fixed.
    { echo "fuzz $t: FAILED, ${#failed[@]} of ${#regressions[@]} kept reproducers still fail (not fuzzed):"
      printf '%s\n' "${failed[@]}"; } >"$out/$t.summary"
    return 0
  fi
  local dict=()
  [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
  local status=0
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$art" "${dict[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
  python3 - "$t" "$log" "$status" "${#regressions[@]}" >"$out/$t.summary" <<'PY'
import re, sys
target, log, status, replayed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
text = open(log, errors="replace").read()
stat = dict(re.findall(r"^stat::(\w+):\s+(\d+)", text, re.M))
covs = re.findall(r"^#\d+\s+\w+\s+cov: (\d+)", text, re.M)
inited = re.search(r"^#\d+\s+INITED cov: (\d+)", text, re.M)
start = int(inited.group(1)) if inited else int(covs[0]) if covs else 0
end = int(covs[-1]) if covs else 0
print("fuzz %s: %s, %s runs, %s exec/s, cov %d -> %d (+%d), %s new inputs, %s regressions replayed, peak %s MB"
      % (target, "ok" if status == 0 else "FAILED (exit %d)" % status, stat.get("number_of_executed_units", "?"),
         stat.get("average_exec_per_sec", "?"), start, end, end - start, stat.get("new_units_added", "?"), replayed,
         stat.get("peak_rss_mb", "?")))
PY
  if ((status != 0)); then
    local found
    found=$(find "$art" -type f -name '*-*' | sort | head -1) || true
    if [[ -n $found ]]; then
      # A smaller reproducer to keep; bounded, so a failing run stays short.
      "$bin" -minimize_crash=1 -max_total_time=20 -timeout=10 -exact_artifact_path="$found.min" "$found" \
        >"$out/$t.minimize.log" 2>&1 || true
      [[ -f $found.min ]] || cp "$found" "$found.min"
      echo "  reproducer: $found.min (keep it: cp it to tests/fuzz/regressions/$t/NAME)" >>"$out/$t.summary"
    fi
  fi
}

for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  rm -f "$out/$t.summary"
  fuzz_one "$t" &
done
wait || true
status=0
for t in "${targets[@]}"; do
  if [[ ! -s $out/$t.summary ]]; then
    echo "fuzz $t: FAILED (no summary; see $out/$t.log)"
    status=1
    continue
  fi
  cat "$out/$t.summary"
  if grep -q FAILED "$out/$t.summary"; then
    status=1
    # The report of a new crash: the sanitizer's or the invariant's message and its stack.
    grep -q "kept reproducers" "$out/$t.summary" && continue
    grep -E -A40 "^==[0-9]+==ERROR|runtime error|invariant|^SUMMARY" "$out/$t.log" | head -80 | sed 's/^/  /'
  fi
done
exit $status
