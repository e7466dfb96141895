"""The Prometheus endpoint: promtool accepts what it serves; counters move
exactly as the input says (N events in, K malformed by reason); /healthz and
/readyz answer; an address in use stops the start with the reason."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import spate_client
from spate_e2e import SPATED, Daemon, E2ETest


def scrape(daemon, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (daemon.metrics_port, path), timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def samples(text, family):
    """{labels text: value} of one family's samples."""
    out = {}
    for line in text.splitlines():
        if line.startswith(family + "{"):
            labels, value = line[len(family) + 1:].rsplit("} ", 1)
            out[labels] = float(value)
    return out


class MetricsTest(E2ETest):
    def test_promtool_accepts_the_endpoint_and_counters_follow_the_input(self):
        d = Daemon(tcp=True, udp=False)
        good = b"".join(b'{"id":"e%d","ts":%d,"user":"u%d","type":"click","amount":1}\n' % (i, 1000 + i, i % 7)
                        for i in range(300))
        bad = b'{"id":"x","ts":1,\n' * 4 + b'{"id":"y","user":"u1","type":"click","amount":1}\n' * 3
        with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
            s.sendall(good + bad)
        d.wait_settled(300)
        status, content_type, text = scrape(d)
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("text/plain"), content_type)
        events = samples(text, "spate_events_in_total")
        self.assertEqual(sum(v for k, v in events.items() if 'source="tcp"' in k), 300)
        self.assertEqual(sum(events.values()), 300)
        rejected = samples(text, "spate_rejected_lines_total")
        self.assertEqual(sum(v for k, v in rejected.items() if 'reason="malformed_json"' in k), 4)
        self.assertEqual(sum(v for k, v in rejected.items() if 'reason="missing_field"' in k), 3)
        self.assertEqual(sum(rejected.values()), 7)
        self.assertIn("# TYPE spate_keys gauge", text)
        deadline = time.time() + 5
        while True:  # per view, published every maintenance tick
            keys = samples(scrape(d)[2], "spate_view_keys")
            per_view = {v: sum(n for k, n in keys.items() if 'view="%s"' % v in k) for v in ("per_user_1m", "per_type_10s")}
            if per_view == {"per_user_1m": 7, "per_type_10s": 1} or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(per_view, {"per_user_1m": 7, "per_type_10s": 1})
        self.assertIn("# TYPE spate_view_state_bytes gauge", text)
        self.assertIn("# TYPE spate_rows_applied_total counter", text)
        self.assertEqual(set(k.split(",")[0] for k in samples(text, "spate_keys")), {'shard="0"', 'shard="1"'})
        if shutil.which("promtool") is None:
            self.skipTest("promtool is not installed (scripts/setup.sh installs prometheus, which brings it)")
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual(scrape(d, "/healthz")[0], 200)
        self.assertEqual(scrape(d, "/readyz")[0], 200)
        with self.assertRaises(urllib.error.HTTPError) as e:
            scrape(d, "/nothing")
        self.assertEqual(e.exception.code, 404)
        self.assertEqual(d.stop(), 0)

    def test_latency_histograms_count_every_row_applied_and_every_event_made_durable(self):
        d = Daemon(tcp=True, udp=False)
        now_ms = int(time.time() * 1000)
        events = 5000
        with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
            for chunk in range(10):  # in bursts, so that batches of every size are timed
                s.sendall(b"".join(b'{"id":"e%d","ts":%d,"user":"u%d","type":"t%d","amount":2}\n'
                                   % (i, now_ms - 2000, i, i % 3) for i in range(chunk * 500, chunk * 500 + 500)))
                time.sleep(0.02)
        d.wait_settled(events)
        rows = 2 * events  # two key groups: user and type
        deadline = time.time() + 10
        while True:  # rows applied at once are timed at the shard's next loop pass
            shards = d.client.stats()
            counts = {name: sum(sum(c for _, c in sh["histograms"][name]["buckets"]) for sh in shards)
                      for name in shards[0]["histograms"]}
            if counts.get("latency.receive_to_applied_us") == rows or time.time() > deadline:
                break
            time.sleep(0.05)
        applied = sum(sh["counters"]["rows_applied"] for sh in shards)
        self.assertEqual(applied, rows)
        self.assertEqual(counts["latency.receive_to_applied_us"], rows)
        self.assertEqual(counts["latency.event_to_queryable_us"], rows)
        self.assertEqual(counts["latency.receive_to_durable_us"], events)
        c0 = shards[0]["counters"]
        if "ASAN_OPTIONS" not in os.environ:  # under AddressSanitizer its allocator serves, not jemalloc
            self.assertGreater(c0["memory.allocated_bytes"], 1 << 20)  # jemalloc's, for the process
            self.assertGreaterEqual(c0["memory.resident_bytes"], c0["memory.allocated_bytes"])
        for name in ("memory.allocated_bytes", "tcp.waiting_bytes", "udp.waiting_bytes", "requests_waiting"):
            self.assertIn(name, shards[0]["gauges"])
        deadline = time.time() + 5  # all read by now; the gauge is measured once a second
        while d.counters()["tcp.waiting_bytes"] != 0 and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(d.counters()["tcp.waiting_bytes"], 0)
        self.assertIn("kernel.udp_rcvbuf_errors", c0)
        # The hot tier on disk: every shard that logged has a segment file open.
        deadline = time.time() + 5
        while sum(sh["counters"]["storage.hot_segments"] for sh in d.client.stats()) == 0 and time.time() < deadline:
            time.sleep(0.1)
        tiers = d.client.stats()
        self.assertGreaterEqual(sum(sh["counters"]["storage.hot_segments"] for sh in tiers), 1)
        self.assertGreater(sum(sh["counters"]["storage.hot_bytes"] for sh in tiers), 0)
        self.assertIn("storage.hot_bytes", tiers[0]["gauges"])
        self.assertIn("keys", shards[0]["gauges"])
        self.assertIn("watermark_ms", shards[0]["gauges"])
        self.assertNotIn("events_in", shards[0]["gauges"])
        # Every row was dated 2 s before it was sent: its age when applied is
        # 2 s and a little, in the bucket of 2 s to 2.25 s.
        for sh in shards:
            ages = sh["histograms"]["latency.event_to_queryable_us"]
            p50 = spate_client.histogram_quantile(ages, 0.5)
            if p50 is not None:
                self.assertTrue(2_000_000 <= p50 <= 2_600_000, p50)
        text = scrape(d)[2]
        for family, want in (("spate_latency_receive_to_applied_seconds", rows),
                             ("spate_latency_event_to_queryable_seconds", rows),
                             ("spate_latency_receive_to_durable_seconds", events)):
            self.assertIn("# TYPE %s histogram" % family, text)
            self.assertEqual(sum(samples(text, family + "_count").values()), want)
            inf = samples(text, family + "_bucket")
            self.assertEqual(sum(v for k, v in inf.items() if 'le="+Inf"' in k), want)
        # Cumulative buckets: no row was younger than 2^20 us, every one younger than 2^22 us.
        ages = samples(text, "spate_latency_event_to_queryable_seconds_bucket")
        self.assertEqual(sum(v for k, v in ages.items() if 'le="1.048576"' in k), 0)
        self.assertEqual(sum(v for k, v in ages.items() if 'le="4.194304"' in k), rows)
        if shutil.which("promtool") is not None:
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                                   timeout=60)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual(d.stop(), 0)

    def test_a_metrics_address_in_use_stops_the_start_with_the_reason(self):
        with socket.socket() as taken, tempfile.TemporaryDirectory(prefix="spate-metrics-") as tmp:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            out = subprocess.run([SPATED, "--tcp-addr", "off", "--udp-addr", "off", "--query-addr", "127.0.0.1:0",
                                  "--data-dir", tmp, "--metrics-addr", "127.0.0.1:%d" % port],
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("cannot listen for metrics on 127.0.0.1:%d" % port, out.stderr)


if __name__ == "__main__":
    unittest.main()
