"""End to end: the command-line surface of spated and spate-query: config
checking with line numbers, JSON output named as in the config, file ingest,
and a SIGTERM that drains what was received."""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from spate_e2e import SPATE_GEN, SPATE_QUERY, SPATED, TEST_CONFIG, Daemon

T0 = 1764000000000
# A duration as spate-query shows one: µs below 1 ms, ms below 1 s, s above, 3 significant digits.
HUMAN_DURATION = r"^(\d{1,3} µs|\d\.\d\d m?s|\d\d\.\d m?s|\d{3} ms|\d{3,} s|inf)$"


def event(i, user="c1", amount="1.50"):
    return '{"id":"c%d","ts":%d,"user":"%s","type":"cli","amount":%s}' % (i, T0 + i * 1000, user, amount)


class CliTest(unittest.TestCase):
    def run_cmd(self, *args, **kw):
        return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kw)

    def test_check_config_explains_every_error_with_its_line_and_exits_78(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.toml")
            with open(bad, "w") as f:
                f.write('shards = 2\nmystery = true\n[[view]]\nname = "v"\nkey = "user"\nsize_ms = -5\n'
                        'aggregates = ["count", "p99(amount)"]\n')
            r = self.run_cmd(SPATED, "--check-config", bad)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("bad.toml:2: error: unknown key 'mystery'", r.stderr)
            self.assertIn("bad.toml:6: error: 'size_ms' = -5 is out of range", r.stderr)
            self.assertIn("bad.toml:7: error: view 'v': aggregate 'p99(amount)' is not an aggregate", r.stderr)
            good = os.path.join(tmp, "good.toml")
            with open(good, "w") as f:
                f.write('shards = 2\n[[view]]\nname = "v"\nkey = "user"\nsize_ms = 1000\naggregates = ["count"]\n')
            r = self.run_cmd(SPATED, "--check-config", good)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("ok", r.stdout)
            # Starting with a bad config refuses to run, with the same explanation.
            r = self.run_cmd(SPATED, "--config", bad)
            self.assertEqual(r.returncode, 78)
            self.assertIn("unknown key 'mystery'", r.stderr)
        r = self.run_cmd(SPATED, "--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("spated "))

    def test_a_view_kind_checks_its_own_settings_at_its_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "kinds.toml")
            with open(bad, "w") as f:
                f.write('[[view]]\nname = "a"\nkey = "user"\nwindow = "hopping"\nsize_ms = 60000\n'
                        'aggregates = ["count"]\n\n'
                        '[[view]]\nname = "b"\nkey = "user"\nwindow = "hopping"\nsize_ms = 60000\n'
                        'slide_ms = 7000\naggregates = ["count"]\n\n'
                        '[[view]]\nname = "c"\nkey = "type"\nwindow = "sliding"\nsize_ms = 1000\n'
                        'aggregates = ["count"]\n')
            for args in (("--check-config", bad), ("--config", bad)):
                r = self.run_cmd(SPATED, *args)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn("kinds.toml:1: error: view 'a': a hopping window needs slide_ms", r.stderr)
                self.assertIn("kinds.toml:8: error: view 'b': size_ms (60000) must be a multiple of slide_ms (7000)",
                              r.stderr)
                self.assertIn("kinds.toml:16: error: view 'c': window 'sliding' is not a view kind (tumbling, hopping)",
                              r.stderr)
            good = os.path.join(tmp, "hop.toml")
            with open(good, "w") as f:
                f.write('[[view]]\nname = "a"\nkey = "user"\nwindow = "hopping"\nsize_ms = 60000\n'
                        'slide_ms = 10000\naggregates = ["count"]\n')
            r = self.run_cmd(SPATED, "--check-config", good)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_required_field_nothing_reads_is_a_warning_from_check_config_and_at_start(self):
        config = TEST_CONFIG + '[schema]\nfields = { user = "string", type = "string", amount = "number", page = "string" }\n'
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "unread.toml")
            with open(path, "w") as f:
                f.write(config)
            r = self.run_cmd(SPATED, "--check-config", path)
            self.assertEqual(r.returncode, 0, r.stderr)  # valid: a warning, not an error
            self.assertEqual(r.stdout, "%s: ok (2 sources, 2 views, 1 warning)\n" % path)
            self.assertEqual(r.stderr, "%s:4: warning: field 'page' is read by no view or alarm, yet required: an event "
                                       "lacking it is refused (missing_field); to take such events, declare it page = "
                                       '{ type = "string", required = false }\n' % path)
        d = Daemon(udp=False, config=config)
        try:
            log = d.read_log()
            self.assertIn('level=warn msg="config warning" ', log)
            self.assertIn(" line=4 warning=\"field 'page' is read by no view or alarm, yet required", log)
            # What it warns of: the event without page is refused, the one with it taken.
            with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
                s.sendall((event(1)[:-1] + ',"page":"/"}\n' + event(2) + "\n").encode())
            c = d.wait_settled(1)
            self.assertEqual((c["events_in"], c["errors.missing_field"]), (1, 1))
        finally:
            self.assertEqual(d.stop(), 0)

    def test_rings_too_large_for_the_machine_are_refused_with_the_reason(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "big.toml")
            with open(cfg, "w") as f:
                f.write("ring_slots = 65536\n")
            r = self.run_cmd(SPATED, "--config", cfg, "--shards", "64", "--tcp-addr", "off", "--udp-addr", "off",
                             "--query-addr", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("shard-to-shard rings would take", r.stderr)
            self.assertIn("lower ring_slots or ring_batch_rows", r.stderr)

    def test_spate_query_prints_json_named_as_in_the_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "in.ndjson")
            with open(path, "w") as f:
                for i in range(10):
                    f.write(event(i, "c%d" % (i % 2), "%d.50" % i) + "\n")
            d = Daemon(extra_args=("--ingest", path))
            try:
                d.wait_applied(10)
                addr = "127.0.0.1:%d" % d.query_port
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "--json", "view", "per_user_1m", "c1")
                self.assertEqual(r.returncode, 0, r.stderr)
                rows = json.loads(r.stdout)
                self.assertEqual(len(rows), 1)
                self.assertEqual(rows[0]["window_start"], T0)
                self.assertEqual(rows[0]["window_end"], T0 + 60000)
                self.assertEqual(rows[0]["count"], 5)
                self.assertEqual(rows[0]["sum(amount)"], 1.5 + 3.5 + 5.5 + 7.5 + 9.5)
                self.assertEqual(rows[0]["min(amount)"], 1.5)
                self.assertEqual(rows[0]["max(amount)"], 9.5)
                self.assertEqual(rows[0]["avg(amount)"], 5.5)
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "--json", "top", "per_user_1m", "--window", str(T0),
                                 "-k", "1", "--by", "sum(amount)")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual([(t["key"], t["sum(amount)"]) for t in json.loads(r.stdout)], [("c1", 27.5)])
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "--json", "stats")
                self.assertEqual(r.returncode, 0, r.stderr)
                stats = json.loads(r.stdout)
                self.assertEqual(stats["total"]["file.events_in"], 10)
                self.assertEqual(len(stats["shards"]), 2)
                self.assertIn("keys", stats["shards"][0]["gauges"])
                self.assertNotIn("events_in", stats["shards"][0]["gauges"])
                # Every row applied is timed as it is applied.
                applied = stats["histograms"]["latency.event_to_queryable_us"]
                self.assertEqual(applied["count"], stats["total"]["rows_handled"])
                self.assertEqual(sum(c for _, c in applied["buckets"]), applied["count"])
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "stats")
                self.assertIn("histogram (all shards)", r.stdout)
                figures = dict((m.group(1), m.group(2).split("  ")) for m in
                               (re.match(r"(latency\.\S+) +\d+ +(.*)$", l) for l in r.stdout.splitlines()) if m)
                # Dated 2025-11-24: past the last bound (2^40 us, 12.7 days), not a bucket's edge in us.
                self.assertEqual([f.strip() for f in figures["latency.event_to_queryable_us"] if f],
                                 ["inf"] * 4, r.stdout)
                for f in figures["latency.receive_to_applied_us"]:
                    if f:
                        self.assertRegex(f.strip(), HUMAN_DURATION, r.stdout)
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "view", "nope", "c1")
                self.assertEqual(r.returncode, 1)
                self.assertIn("UNKNOWN_VIEW", r.stderr)
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "ping")
                self.assertEqual(r.returncode, 0, r.stderr)
            finally:
                self.assertEqual(d.stop(), 0)
        r = self.run_cmd(SPATE_QUERY, "--addr", "127.0.0.1:1", "ping")
        self.assertEqual(r.returncode, 3)

    def test_spate_query_tables_print_a_sums_drift_as_the_decimal_and_json_exactly(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "in.ndjson")
            with open(path, "w") as f:
                f.write(event(0, "d1", "0.1") + "\n" + event(1, "d1", "0.2") + "\n")
            d = Daemon(extra_args=("--ingest", path))
            try:
                d.wait_applied(2)
                addr = "127.0.0.1:%d" % d.query_port
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "--json", "view", "per_user_1m", "d1")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn('"sum(amount)":0.30000000000000004', r.stdout)
                row = json.loads(r.stdout)[0]
                self.assertEqual(row["sum(amount)"], 0.1 + 0.2)
                self.assertEqual(row["avg(amount)"], (0.1 + 0.2) / 2)
                self.assertEqual(row["count"], 2)
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "view", "per_user_1m", "d1")
                self.assertEqual(r.returncode, 0, r.stderr)
                lines = r.stdout.splitlines()
                self.assertEqual(len(lines), 2, r.stdout)
                cells = dict(zip(lines[0].split(), lines[1].split()))
                self.assertEqual(cells["count"], "2")
                self.assertEqual(cells["sum(amount)"], "0.3")
                self.assertEqual(cells["avg(amount)"], "0.15")
                self.assertEqual(cells["min(amount)"], "0.1")
                self.assertEqual(cells["max(amount)"], "0.2")
            finally:
                self.assertEqual(d.stop(), 0)

    def test_spate_query_takes_rfc3339_times_and_top_aligns_a_time_inside_a_window(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "in.ndjson")
            with open(path, "w") as f:  # user a: 3 events in the minute at T0, 2 in the next; user b: 1 at T0
                for i in (0, 5, 20, 40, 60, 90):
                    f.write(event(i, "b" if i == 5 else "a") + "\n")
            d = Daemon(extra_args=("--ingest", path))
            try:
                d.wait_applied(6)
                addr = "127.0.0.1:%d" % d.query_port

                def query(*args):
                    r = self.run_cmd(SPATE_QUERY, "--addr", addr, "--json", *args)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    return [(row["key"], row["window_start"], row["count"]) for row in json.loads(r.stdout)]

                # T0 is 2025-11-24T16:00:00Z.
                first = [("a", T0, 3), ("b", T0, 1)]
                self.assertEqual(query("top", "per_user_1m", "--window", str(T0)), first)
                # A time inside the window: that window, not an empty answer.
                self.assertEqual(query("top", "per_user_1m", "--window", str(T0 + 30500)), first)
                self.assertEqual(query("top", "per_user_1m", "--window", str(T0 + 59999)), first)
                self.assertEqual(query("top", "per_user_1m", "--window", "2025-11-24T16:00:30.5Z"), first)
                self.assertEqual(query("top", "per_user_1m", "--window", "2025-11-24T17:01:59+01:00"),
                                 [("a", T0 + 60000, 2)])
                self.assertEqual(query("view", "per_user_1m", "a", "--from", "2025-11-24T16:01:00Z"),
                                 [("a", T0 + 60000, 2)])
                self.assertEqual(query("view", "per_user_1m", "a", "--to", "2025-11-24T16:01:00Z"), [("a", T0, 3)])
                self.assertEqual(query("view", "per_user_1m", "a", "--from", str(T0 + 60000), "--to",
                                       "2025-11-24T16:02:00.000Z"), [("a", T0 + 60000, 2)])
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "top", "per_user_1m", "--window", "yesterday")
                self.assertEqual(r.returncode, 2)
                self.assertIn("--window: 'yesterday' is neither milliseconds since the epoch nor an RFC 3339 time",
                              r.stderr)
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "view", "per_user_1m", "a", "--from",
                                 "2025-11-24T16:00:00")  # no offset: not RFC 3339
                self.assertEqual(r.returncode, 2)
            finally:
                self.assertEqual(d.stop(), 0)

    def test_spate_query_stats_hides_source_kinds_not_started_while_all_zero(self):
        d = Daemon(udp=False)
        try:
            addr = "127.0.0.1:%d" % d.query_port

            def sections(*args):
                r = self.run_cmd(SPATE_QUERY, "--addr", addr, "stats", *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                names = [l.split()[0] for l in r.stdout.splitlines()[1:] if l and not l.startswith(("(", "histogram"))]
                return {n.split(".")[0] for n in names if "." in n}, r.stdout

            shown, out = sections()
            self.assertIn("tcp", shown)  # started, even with every figure 0
            for kind in ("udp", "pcap", "dpdk", "file", "publish"):
                self.assertNotIn(kind, shown)
            self.assertIn("(not shown: udp.*, file.*, publish.*, replay.*, pcap.*, dpdk.*: source kinds not started", out)
            self.assertIn("tcp.sources ", out)
            shown, out = sections("--all")
            self.assertTrue({"tcp", "udp", "pcap", "dpdk", "file", "publish"} <= shown, out)
            self.assertNotIn("not shown", out)
            r = self.run_cmd(SPATE_QUERY, "--addr", addr, "--json", "stats")
            total = json.loads(r.stdout)["total"]
            self.assertEqual((total["tcp.sources"], total["udp.sources"], total["dpdk.sources"]), (1, 0, 0))
            self.assertIn("dpdk.events_in", total)  # --json keeps everything
            # A kind not started shows once a figure of it is not 0: PUBLISH.
            d.client.publish(1, 1, (event(1, "q") + "\n").encode())
            d.wait_applied(1)
            shown, out = sections()
            self.assertIn("publish", shown)
            self.assertIn("(not shown: udp.*, file.*, replay.*, pcap.*, dpdk.*:", out)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_stdin_ingest_in_batch_mode_applies_every_line_and_exits(self):
        lines = "".join(event(i, "p%d" % (i % 10)) + "\n" for i in range(20000)) + "{broken\n" + event(20000)
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([SPATED, "--shards", "2", "--tcp-addr", "off", "--udp-addr", "off",
                                "--query-addr", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data"),
                                "--metrics-addr", "off", "--ingest", "-", "--exit-after-ingest"],
                               input=lines, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("level=info msg=stopped ", r.stderr)
        self.assertIn(" events_applied=20001 rejected=1 ", r.stderr)

    def test_spate_query_watch_shows_rates_backlog_and_alarms(self):
        d = Daemon(udp=False)
        try:
            with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
                s.sendall("".join(event(i, "w%d" % (i % 10)) + "\n" for i in range(1000)).encode() + b"{broken\n")
            d.wait_settled(1000)
            deadline = time.time() + 5  # the bytes waiting in sockets are measured once a second
            while d.counters()["tcp.waiting_bytes"] != 0 and time.time() < deadline:
                time.sleep(0.1)
            r = self.run_cmd(SPATE_QUERY, "--addr", "127.0.0.1:%d" % d.query_port, "watch", "--count", "2",
                             "--interval-ms", "100")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.count("spate-query watch"), 2)
            self.assertIn("events/s", r.stdout)
            self.assertIn("ring depth 0", r.stdout)
            self.assertIn("socket bytes waiting 0", r.stdout)
            for latency in ("receive_to_applied", "event_to_queryable", "receive_to_durable"):
                self.assertEqual(r.stdout.count("latency.%s_us" % latency), 2)
            self.assertEqual(len([l for l in r.stdout.splitlines() if l.strip().startswith(("0 ", "1 "))]), 4)
            self.assertIn("no alarm", r.stdout)  # nothing grew while it watched
            # A latency with no sample in the interval has no percentile: "-", not "0 us".
            quiet = [l for l in r.stdout.splitlines() if l.startswith("latency.") and l.endswith("(0 samples)")]
            self.assertTrue(quiet, r.stdout)
            for line in quiet:
                self.assertEqual(line.split()[1:9], ["p50", "-", "p99", "-", "p99.9", "-", "max", "-"], line)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_spate_query_watch_prints_latencies_in_human_units(self):
        d = Daemon(udp=False)
        try:
            watch = subprocess.Popen([SPATE_QUERY, "--addr", "127.0.0.1:%d" % d.query_port, "watch", "--count", "3",
                                      "--interval-ms", "300"], stdout=subprocess.PIPE, text=True)
            now = int(time.time() * 1000)
            with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
                for i in range(5):  # event time now: a latency of milliseconds, not 'inf'
                    s.sendall("".join('{"id":"h%d","ts":%d,"user":"h%d","type":"t","amount":1}\n'
                                      % (i * 100 + j, now + i * 100, j) for j in range(100)).encode())
                    time.sleep(0.1)
            out, _ = watch.communicate(timeout=30)
            self.assertEqual(watch.returncode, 0)
            seen = 0
            for line in out.splitlines():
                m = re.match(r"(latency\.\S+) +p50 +(.+?) +p99 +(.+?) +p99\.9 +(.+?) +max +(.+?) +\((\d+) samples\)$", line)
                if m and m.group(6) != "0":
                    seen += 1
                    for figure in m.groups()[1:5]:
                        self.assertRegex(figure, HUMAN_DURATION, line)
                        self.assertNotEqual(figure, "inf", line)
            self.assertGreaterEqual(seen, 2, out)  # receive_to_applied and event_to_queryable at least
        finally:
            self.assertEqual(d.stop(), 0)

    def test_spate_gen_live_dates_events_at_the_wall_clock_and_spated_times_them_to_queryable(self):
        before = int(time.time() * 1000)
        r = self.run_cmd(SPATE_GEN, "--live", "--events", "20000", "--ooo-share", "0", "--late-share", "0",
                         "--dup-share", "0", "--rfc3339-share", "0")
        after = int(time.time() * 1000)
        self.assertEqual(r.returncode, 0, r.stderr)
        times = [json.loads(line)["ts"] for line in r.stdout.splitlines()]
        self.assertEqual(len(times), 20000)
        self.assertTrue(before <= times[0] and times == sorted(times) and times[-1] <= after, (before, after))
        r = self.run_cmd(SPATE_GEN, "--live", "--start-ms", "1764000000000", "--events", "1")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--start-ms excludes --live", r.stderr)
        r = self.run_cmd(SPATE_GEN, "--help")
        self.assertIn("--live", r.stdout)
        # A second run's ids past the first's: dedup takes its events for new ones.
        r = self.run_cmd(SPATE_GEN, "--live", "--first-id", "5000000", "--events", "2", "--dup-share", "0")
        self.assertEqual([json.loads(line)["id"] for line in r.stdout.splitlines()], ["e00005000000", "e00005000001"])
        # Into spated: every row's event time to queryable is a figure, none past the histogram ('inf').
        d = Daemon(udp=False)
        try:
            r = self.run_cmd(SPATE_GEN, "--live", "--events", "20000", "--ooo-share", "0", "--late-share", "0",
                             "--dup-share", "0", "--tcp", "127.0.0.1:%d" % d.tcp_port)
            self.assertEqual(r.returncode, 0, r.stderr)
            c = d.wait_settled(20000)
            self.assertEqual(c["rows_handled"], 40000)
            ages = d.client.stats()
            buckets = {}
            for shard in ages:
                for bound, count in shard["histograms"]["latency.event_to_queryable_us"]["buckets"]:
                    buckets[bound] = buckets.get(bound, 0) + count
            self.assertEqual(sum(buckets.values()), 40000)
            self.assertEqual(sum(n for bound, n in buckets.items() if bound is None or bound > 60 * 10**6), 0, buckets)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_sigterm_drains_everything_received_and_exits_zero(self):
        d = Daemon()
        n = 50000
        payload = "".join(event(i, "s%d" % (i % 100)) + "\n" for i in range(n)).encode()
        with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
            s.sendall(payload)
        # No waiting: what the kernel accepted was received and must be applied.
        d.proc.send_signal(signal.SIGTERM)
        code = d.proc.wait(30)
        log = d.read_log()
        d.proc.stdout.close()
        d.client.close()
        self.assertEqual(code, 0, log)
        self.assertIn(" events_applied=%d rejected=0 " % n, log)


if __name__ == "__main__":
    unittest.main()
