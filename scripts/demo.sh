#!/usr/bin/env bash
# The appliance's main job on its built-in default: set up, build, start
# spated, feed it a few million generated events over TCP dated at the wall
# clock, print the ingest rate with the event time -> queryable latency (at
# full speed, then paced), query the views, stop it cleanly, start it again
# on the same data and show the views come back from its segments.
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

query() { "$bin/tools/spate-query" "$@"; }
total() { query --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['total'].get('$1', 0))"; }
# p50 and p99 of a latency over all shards, as spate-query stats prints them
# (its table's columns are 2 or more spaces apart).
percentiles() { query stats | awk -F '  +' -v h="latency.$1_us" '$1 == h { print "p50 " $3 ", p99 " $4 }'; }

# spate-gen --live dates each event at the wall clock when it is generated,
# so that event time -> queryable is a latency (events dated in the past
# would only measure how old they are). In order (--ooo-share 0): an
# out-of-order event's age would count the delay it was generated with.
echo "== sending $events generated clickstream events over 2 TCP connections, dated as they are generated"
start=$(date +%s.%N)
start_ms=$(date +%s%3N)
"$bin/tools/spate-gen" --live --ooo-share 0 --events "$events" --seed 1 --connections 2 --tcp 127.0.0.1:7072 2>/dev/null
while [[ $(total rows_handled) -lt $((2 * events)) ]]; do sleep 0.02; done
end=$(date +%s.%N)
python3 - "$start" "$end" "$events" "$(percentiles event_to_queryable)" <<'PY'
import sys
start, end, events, latency = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
secs = end - start
print("   %d events generated, sent and applied in %.2f s: %.2f million events/s end to end, generator included;"
      % (events, secs, events / secs / 1e6))
print("   event time -> queryable %s (every row; at full speed mostly the time spent queued behind the others)"
      % latency)
PY

rate=${PACED_RATE:-300000}
echo "== paced at $rate events/s for 3 s (spate-gen --rate), as spate-query watch shows the last 2 s (event"
echo "   times are whole milliseconds, so an event queryable within the millisecond it is dated reads 0 µs)"
"$bin/tools/spate-gen" --live --ooo-share 0 --events $((3 * rate)) --seed 2 --first-id "$events" --rate "$rate" \
  --tcp 127.0.0.1:7072 2>/dev/null &
paced=$!
sleep 0.5
query watch --count 1 --interval-ms 2000 | grep -E "^in |^latency.event_to_queryable" | sed 's/^/   /'
wait "$paced"

echo "== counters (spate-query stats)"
query stats | grep -E "^(counter|events_in|bytes_in|errors|late_events|routed_out|keys|windows|dedup.duplicates|storage.events|storage.bytes_written|storage.syncs) " || true
echo "== latency over all shards (spate-query stats; the max is a late event: spate-gen dates 0.1% of its"
echo "   events 10 to 20 minutes back, past the allowed lateness)"
query stats | sed -n '/^histogram/,$p'

echo "== top 5 users by count in the per_user_1m window holding the first event (spate-query top --window $start_ms)"
query top per_user_1m --window "$start_ms" -k 5
echo "== the windows of user u1 (spate-query view per_user_1m u1)"
query view per_user_1m u1 | tee "$work/u1.before"
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
echo "== the windows of user u1 again"
query view per_user_1m u1 | tee "$work/u1.after"
cmp -s "$work/u1.before" "$work/u1.after" && echo "   the same rows as before the stop"
kill -TERM "$daemon"
wait "$daemon"
daemon=""
