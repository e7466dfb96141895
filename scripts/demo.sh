#!/usr/bin/env bash
# The appliance's main job on its built-in default: set up, build, start
# spated, feed it a few million generated events over TCP, query the views,
# print a short summary, stop it cleanly, start it again on the same data
# and show the views come back from its segments.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
bin=${BUILD_DIR:-build}
events=${EVENTS:-3000000}
work=$(mktemp -d -t spate-demo.XXXXXX)

cleanup() {
  if [[ -n "${daemon:-}" ]] && kill -0 "$daemon" 2>/dev/null; then kill -TERM "$daemon"; wait "$daemon" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

for port in 7070 7071 7072; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "demo: port $port is in use; stop whatever listens there (another spated?) and retry" >&2
    exit 1
  fi
done

echo "== starting spated (built-in pipeline: TCP 7072, UDP 7071, queries 7070, data in $work/spate-data)"
(cd "$work" && exec "$OLDPWD/$bin/src/spated" >"$work/ready" 2>"$work/spated.log") &
daemon=$!
for _ in $(seq 100); do [[ -s "$work/ready" ]] && break; sleep 0.05; done
cat "$work/ready"

# Give the shards the idle timeout to declare themselves idle, so that one
# connection's watermark alone drives the windows.
sleep 2.2

echo "== sending $events generated clickstream events over 2 TCP connections"
query() { "$bin/tools/spate-query" "$@"; }
total() { query --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['total'].get('$1', 0))"; }
start=$(date +%s.%N)
"$bin/tools/spate-gen" --events "$events" --seed 1 --connections 2 --tcp 127.0.0.1:7072 2>/dev/null
while [[ $(total rows_applied) -lt $((2 * events)) ]]; do sleep 0.02; done
end=$(date +%s.%N)
python3 - "$start" "$end" "$events" <<'PY'
import sys
start, end, events = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
secs = end - start
print("   %d events generated, sent and applied in %.2f s: %.2f million events/s end to end, generator included"
      % (events, secs, events / secs / 1e6))
PY

echo "== counters (spate-query stats)"
query stats | grep -E "^(counter|events_in|bytes_in|errors|late_events|routed_out|keys|windows|dedup.duplicates|storage.events|storage.bytes_written|storage.syncs) " || true
window=$((1764000000000 + 12 * 60000))  # spate-gen's event time starts at 1764000000000
echo "== latency over all shards, microseconds (spate-query stats; the generated events are dated"
echo "   2025-11-24, so their event time to queryable is past the histograms' last bound, 12.7 days: inf)"
query stats | sed -n '/^histogram/,$p'

echo "== top 5 users by count in the per_user_1m window starting at $window (spate-query top)"
query top per_user_1m --window "$window" -k 5
echo "== the first windows of user u1 (spate-query view per_user_1m u1 --to ...)"
query view per_user_1m u1 --to 1764000180000
echo "== top event types in the newest per_type_10s window"
query top per_type_10s -k 5

echo "== stopping (SIGTERM drains and exits 0)"
kill -TERM "$daemon"
wait "$daemon"
daemon=""
tail -1 "$work/spated.log"

echo "== the segments on disk (spate-inspect verify)"
"$bin/tools/spate-inspect" verify "$work/spate-data" | tail -1
echo "== starting again on the same data directory: the checkpoint the stop wrote is loaded, the segments after it replayed"
: >"$work/ready"
(cd "$work" && exec "$OLDPWD/$bin/src/spated" >"$work/ready" 2>>"$work/spated.log") &
daemon=$!
for _ in $(seq 600); do [[ -s "$work/ready" ]] && break; sleep 0.05; done
grep "recovery:" "$work/spated.log" | tail -1
echo "   replayed $(total replay.events_in) events"
echo "== the first windows of user u1 again"
query view per_user_1m u1 --to 1764000180000
kill -TERM "$daemon"
wait "$daemon"
daemon=""
