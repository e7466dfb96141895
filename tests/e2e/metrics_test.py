"""The Prometheus endpoint: promtool accepts what it serves; counters move
exactly as the input says (N events in, K malformed by reason); /healthz and
/readyz answer; an address in use stops the start with the reason. Slow and
idle clients beyond max_connections do not keep probes out, and are closed
at their deadline; every limit of [metrics] acts and is counted."""

import http.client
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import spate_client
import spate_e2e
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
        applied = sum(sh["counters"]["rows_handled"] for sh in shards)
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


def probe(port, path, method="GET", timeout=5.0):
    """(status, headers, body, seconds) of one request on a fresh connection."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Connection": "close"})
        r = conn.getresponse()
        body = r.read()
        return r.status, r.headers, body, time.monotonic() - start
    finally:
        conn.close()


def exchange(port, data, timeout=5.0):
    """Sends raw bytes on a fresh connection; all that comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def closed_by_server(sock):
    """True once the server closed sock (end of stream or reset), reading
    away whatever it said first (a 408); False while it is open."""
    while True:
        try:
            ready = select.select([sock], [], [], 0)[0]
            if not ready:
                return False
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True


def metrics_figures(daemon):
    """The metrics.* figures of STATS (shard 0's block)."""
    return {k: v for k, v in daemon.counters().items() if k.startswith("metrics.")}


class SlowClientsTest(E2ETest):
    def tearDown(self):
        for s in getattr(self, "sockets", []):
            s.close()
        if self.daemon.proc.poll() is None:
            self.daemon.stop()

    def test_probes_are_answered_while_slow_clients_beyond_max_connections_hold_connections(self):
        timeout_ms = 4000
        self.daemon = d = Daemon(tcp=False, udp=False, config=spate_e2e.TEST_CONFIG +
                                 "[metrics]\nmax_connections = 64\nrequest_timeout_ms = %d\n" % timeout_ms)
        slow = 300
        # A third send half a request line and wait, a third trickle a
        # header byte every 200 ms (a head that never ends), a third say
        # nothing: each connected after the one before was established, so
        # the server accepts them in this order.
        self.sockets = []
        kinds = []
        for i in range(slow):
            s = socket.create_connection(("127.0.0.1", d.metrics_port), timeout=5)
            kind = ("half", "trickle", "silent")[i % 3]
            if kind == "half":
                s.sendall(b"GET /metr")
            elif kind == "trickle":
                s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            self.sockets.append(s)
            kinds.append(kind)
        opened = time.monotonic()
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.2):
                for s, kind in zip(self.sockets, kinds):
                    if kind == "trickle":
                        try:
                            s.send(b"a")
                        except OSError:
                            pass  # closed by the server
        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            # At the limit each new client replaced the one that had waited
            # longest: the first 236 are gone, the last 64 held.
            held = 64
            deadline = time.time() + 10
            while time.time() < deadline:
                m = metrics_figures(d)
                if m["metrics.connections_evicted"] == slow - held and m["metrics.connections"] == held:
                    break
                time.sleep(0.02)
            self.assertEqual(m["metrics.connections_evicted"], slow - held, m)
            self.assertEqual(m["metrics.connections"], held, m)
            self.assertEqual(m["metrics.connections_refused"], 0, m)
            self.assertEqual(m["metrics.request_timeouts"], 0, m)
            # Fresh probes, repeatedly, each answered well within the
            # request timeout. The first replaces the oldest slow client
            # held; the others the probe before them, lingering after its
            # answer (not counted), or a free place.
            worst = 0.0
            scrape_text = None
            for _ in range(5):
                for path in ("/healthz", "/readyz", "/metrics"):
                    status, headers, body, seconds = probe(d.metrics_port, path)
                    self.assertEqual(status, 200, (path, body))
                    worst = max(worst, seconds)
                    if path == "/metrics":
                        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
                        scrape_text = body.decode()
                time.sleep(0.05)
            self.assertLess(worst, 0.5, "a probe took %.3f s" % worst)
            self.assertLess(time.monotonic() - opened, timeout_ms / 1000 - 0.5, "probing took too long to test")
            # Still held, before their deadline: the last 63 (the 237th went to the first probe).
            evicted = slow - held + 1
            for i, s in enumerate(self.sockets):
                self.assertEqual(closed_by_server(s), i < evicted, "slow client %d (%s)" % (i, kinds[i]))
            self.assertEqual(samples(scrape_text, "spate_metrics_connections_evicted_total"), {'shard="0"': evicted})
            self.assertEqual(samples(scrape_text, "spate_metrics_request_timeouts_total"), {'shard="0"': 0})
            # Past the deadline (request_timeout_ms from the accept, whatever
            # trickled in), every slow client is closed and counted once.
            while time.monotonic() < opened + timeout_ms / 1000 + 1.5:
                time.sleep(0.1)
            for i, s in enumerate(self.sockets):
                self.assertTrue(closed_by_server(s), "slow client %d (%s) still open" % (i, kinds[i]))
        finally:
            stop.set()
            trickler.join()
        m = metrics_figures(d)
        self.assertEqual(m["metrics.connections_evicted"], evicted, m)
        self.assertEqual(m["metrics.request_timeouts"], slow - evicted, m)
        self.assertEqual(m["metrics.connections"], 0, m)
        self.assertEqual(m["metrics.connections_refused"], 0, m)
        self.assertEqual(m["metrics.requests"], 15, m)
        text = probe(d.metrics_port, "/metrics")[2].decode()
        self.assertEqual(samples(text, "spate_metrics_request_timeouts_total"), {'shard="0"': slow - evicted})
        if shutil.which("promtool") is not None:
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                                   timeout=60)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual(d.stop(), 0)

    def test_each_limit_acts_and_is_counted(self):
        self.daemon = d = Daemon(tcp=False, udp=False, config=spate_e2e.TEST_CONFIG +
                                 "[metrics]\nmax_connections = 4\nrequest_timeout_ms = 2000\nidle_timeout_ms = 600\n"
                                 "max_request_bytes = 1024\n")
        port = d.metrics_port
        # A head of max_request_bytes (its empty line included) is read; one more byte is 431.
        line = b"GET /healthz HTTP/1.1\r\nConnection: close\r\nX-Pad: "
        fit = line + b"p" * (1024 - len(line) - 4) + b"\r\n\r\n"
        self.assertEqual(len(fit), 1024)
        self.assertTrue(exchange(port, fit).startswith(b"HTTP/1.1 200 OK\r\n"))
        over = exchange(port, line + b"p" * (1025 - len(line) - 4) + b"\r\n\r\n")
        self.assertTrue(over.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"), over)
        over = exchange(port, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * 100000)  # never ends: still 431
        self.assertTrue(over.startswith(b"HTTP/1.1 431 "), over[:100])
        # Malformed heads are 400; other methods 405; other paths 404.
        for bad in (b"garbage\r\n\r\n", b"GET /healthz HTTP/2.0\r\n\r\n", b"GET /healthz HTTP/1.1\r\nNo colon\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\n folded: x\r\n\r\n", b"GET  /healthz HTTP/1.1\r\n\r\n"):
            out = exchange(port, bad)
            self.assertTrue(out.startswith(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"), (bad, out))
        out = exchange(port, b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
        self.assertTrue(out.startswith(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nConnection: close\r\n"), out)
        self.assertEqual(exchange(port, b"GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n"),
                         b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(exchange(port, b"HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"),
                         b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\n")
        self.assertEqual(exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n"),
                         b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n")
        # Kept alive: pipelined requests answered in order, then closed
        # after idle_timeout_ms without a request.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            want = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\nKeep-Alive: timeout=0\r\n\r\nok\n"
                    b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\nKeep-Alive: timeout=0\r\n\r\nready\n")
            got = b""
            while len(got) < len(want):
                got += s.recv(65536)
            self.assertEqual(got, want)
            answered = time.monotonic()
            self.assertEqual(s.recv(65536), b"")  # the server closes it
            self.assertGreater(time.monotonic() - answered, 0.5)
        m = metrics_figures(d)
        self.assertEqual(m["metrics.oversized_requests"], 2, m)
        self.assertEqual(m["metrics.bad_requests"], 5, m)
        self.assertEqual(m["metrics.idle_closed"], 1, m)
        self.assertEqual(m["metrics.request_timeouts"], 0, m)
        # Clients that ask for scrapes and do not read them: their answers
        # fill the sockets, and a connection being answered is not replaced.
        # With all four such, a new connection is closed at once.
        self.sockets = []
        for _ in range(4):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n" * 300)
            self.sockets.append(s)
        last, since = None, time.time()
        while time.time() - since < 0.2:  # until the server stops answering them: all four stuck
            n = metrics_figures(d)["metrics.requests"]
            if n != last:
                last, since = n, time.time()
            time.sleep(0.02)
        self.assertEqual(metrics_figures(d)["metrics.connections"], 4)
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            probe(port, "/healthz", timeout=2)
        m = metrics_figures(d)
        self.assertEqual(m["metrics.connections_refused"], 1, m)
        self.assertEqual(m["metrics.send_timeouts"], 0, m)
        # request_timeout_ms after their answers began, they are closed, and probes are answered again.
        deadline = time.time() + 5
        while metrics_figures(d)["metrics.send_timeouts"] < 4 and time.time() < deadline:
            time.sleep(0.05)
        m = metrics_figures(d)
        self.assertEqual(m["metrics.send_timeouts"], 4, m)
        self.assertEqual(probe(port, "/healthz")[0], 200)
        self.assertEqual(m["metrics.connections_evicted"], 0, m)
        self.assertEqual(m["metrics.request_timeouts"], 0, m)
        self.assertEqual(d.stop(), 0)

    def test_off_serves_nothing_and_counts_nothing(self):
        self.daemon = d = Daemon(tcp=False, udp=False, metrics=False)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", d.metrics_port), timeout=5).close()
        self.assertEqual(metrics_figures(d), {})
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
