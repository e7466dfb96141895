"""The Prometheus endpoint: promtool accepts what it serves; counters move
exactly as the input says (N events in, K malformed by reason); /healthz and
/readyz answer; an address in use stops the start with the reason."""

import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

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
