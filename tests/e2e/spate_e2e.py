"""Shared fixtures for the end-to-end tests: start the real spated on free
loopback ports in a temporary directory, run spate-gen, read its --expect file,
and compare the daemon's views with it exactly."""

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import spate_client

BUILD_DIR = os.environ["SPATE_BUILD_DIR"]
SPATED = os.path.join(BUILD_DIR, "src", "spated")
SPATE_GEN = os.path.join(BUILD_DIR, "tools", "spate-gen")
SPATE_QUERY = os.path.join(BUILD_DIR, "tools", "spate-query")
SPATE_INSPECT = os.path.join(BUILD_DIR, "tools", "spate-inspect")

# The default pipeline, with a short idle timeout so a shard that gets no
# traffic stops holding back the watermark quickly.
TEST_CONFIG = """
idle_timeout_ms = 300
"""


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """spated on free ports; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, shards=2, config=TEST_CONFIG, extra_args=(), tcp=True, udp=True, idle_first=True,
                 max_descriptors=None, auth_token=None, data_dir=None, metrics=True):
        """tcp/udp/metrics: open those sources and the metrics endpoint on free ports (else off); idle_first:
        return once every shard is idle, so that lateness is exact;
        max_descriptors: spated's RLIMIT_NOFILE (soft and hard); data_dir:
        the data directory, kept after stop (default: one removed with the rest)."""
        self.dir = tempfile.TemporaryDirectory(prefix="spate-e2e-")
        self.data_dir = data_dir or os.path.join(self.dir.name, "data")
        # Chosen together, each held until all are: no two alike.
        with socket.socket() as q, socket.socket() as t, socket.socket() as m:
            for s in (q, t, m):
                s.bind(("127.0.0.1", 0))
            self.query_port, tcp_port, self.metrics_port = (s.getsockname()[1] for s in (q, t, m))
        self.tcp_port = tcp_port if tcp else None
        self.udp_port = free_port(socket.SOCK_DGRAM) if udp else None
        config_path = os.path.join(self.dir.name, "spate.toml")
        with open(config_path, "w") as f:
            f.write(config)
        self.log = open(os.path.join(self.dir.name, "spated.log"), "w+")
        self.proc = subprocess.Popen(
            [SPATED, "--config", config_path, "--shards", str(shards),
             "--data-dir", self.data_dir,
             "--query-addr", "127.0.0.1:%d" % self.query_port,
             "--tcp-addr", "127.0.0.1:%d" % self.tcp_port if tcp else "off",
             "--udp-addr", "127.0.0.1:%d" % self.udp_port if udp else "off",
             # A port of its own too: a port 0 here could be handed the query
             # port reserved above, which spated binds only after the replay.
             "--metrics-addr", "127.0.0.1:%d" % self.metrics_port if metrics else "off", *extra_args],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (max_descriptors, max_descriptors)))
            if max_descriptors else None)
        line = self.proc.stdout.readline()
        if not line.startswith("spated ready"):
            self.proc.kill()
            raise RuntimeError("spated did not start: %r; log: %s" % (line, self.read_log()))
        self.ready_line = line
        self.client = spate_client.Client("127.0.0.1", self.query_port, timeout=60, auth_token=auth_token)
        if idle_first:
            self.wait_idle()

    def wait_idle(self, timeout=10):
        """Every shard starts active and holds the watermark back until it has
        been silent for idle_timeout_ms; a test that checks exactly which
        events are late starts sending once that has passed."""
        deadline = time.time() + timeout
        while self.counters()["active"] != 0:
            if time.time() > deadline:
                raise AssertionError("shards still active: %r" % self.counters())
            time.sleep(0.02)

    def read_log(self):
        self.log.seek(0)
        return self.log.read()

    def counters(self):
        """Counters summed over shards."""
        total = {}
        for shard in self.client.stats():
            for name, value in shard["counters"].items():
                total[name] = total.get(name, 0) + value
        return total

    def wait_applied(self, events, timeout=120):
        """Waits until `events` events are parsed and every row is applied."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            c = self.counters()
            if c["events_in"] == events and c["rows_handled"] == 2 * events and c["ring_depth"] == 0:
                return c
            time.sleep(0.05)
        raise AssertionError("not applied in time: want %d events, have %r" % (events, self.counters()))

    def wait_settled(self, events, quiet=1.0, timeout=120):
        """Waits until `events` are applied or nothing changes for `quiet` seconds
        (datagrams the kernel dropped never arrive); returns the counters."""
        deadline = time.time() + timeout
        last, since = None, time.time()
        while time.time() < deadline:
            c = self.counters()
            if c["events_in"] == events and c["rows_handled"] == 2 * events and c["ring_depth"] == 0:
                return c
            now = (c["events_in"], c["rows_handled"])
            if now != last:
                last, since = now, time.time()
            elif time.time() - since > quiet:
                return c
            time.sleep(0.05)
        return self.counters()

    def wait_windows(self, windows, timeout=10):
        deadline = time.time() + timeout
        c = self.counters()
        while time.time() < deadline and c["windows"] != windows:
            time.sleep(0.05)
            c = self.counters()
        return c["windows"]

    def stop(self, timeout=30, sig=signal.SIGTERM):
        """Sends sig (SIGTERM: drain and seal; SIGKILL: a crash) and returns
        the exit code; the data directory stays when it was given."""
        self.client.close()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.stdout.close()
            self.log.close()
            self.dir.cleanup()
        return code


def generate(args, expect_path):
    """Runs spate-gen and returns (summary, windows) from its --expect file."""
    subprocess.run([SPATE_GEN, *args, "--expect", expect_path], check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return read_expect(expect_path)


def read_expect(path):
    summary, windows = None, {}
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if row["kind"] == "summary":
                summary = row
            else:
                windows.setdefault((row["view"], row["key"]), []).append(row)
    return summary, windows


class E2ETest(unittest.TestCase):
    def assert_views_match(self, daemon, windows, relative=0.0):
        """Every expected window of every key, exactly (sums within `relative`
        when rows met their owner in another order than the generator's: a
        float sum depends on the order); and no other window."""
        by_view = {}
        for (view, key), rows in windows.items():
            by_view.setdefault(view, {})[key] = rows
        total = 0
        for view, keys in by_view.items():
            got = daemon.client.view_get_many(view, list(keys))
            for key, expected_rows in keys.items():
                rows = got[key]
                self.assertEqual([r["window_start"] for r in rows], [r["window_start"] for r in expected_rows],
                                 "%s %s: windows differ" % (view, key))
                for want, have in zip(expected_rows, rows):
                    for name, value in want.items():
                        if name in ("kind", "view"):
                            continue
                        what = "%s %s window %d: %s" % (view, key, want["window_start"], name)
                        if relative and name != "count" and isinstance(value, (int, float)):  # counts stay exact
                            self.assertAlmostEqual(have[name], value, delta=abs(value) * relative, msg=what)
                        else:
                            self.assertEqual(have[name], value, what)
                total += len(expected_rows)
        # The daemon holds exactly these windows: no key or window the generator did not produce.
        self.assertEqual(daemon.wait_windows(total), total)


class GeneratedInputTest(E2ETest):
    """A temporary directory for spate-gen's outputs (gen()) and its
    expectation (self.expect), and the daemons a test started (self.daemons,
    killed if still running at the end)."""

    EVENTS = 20000
    SEED = 17

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="spate-e2e-gen-")
        self.expect = os.path.join(self.tmp, "expect.ndjson")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def gen(self, name, *args):
        """spate-gen's EVENTS events (seed SEED) into tmp/name; the expectation into self.expect."""
        path = os.path.join(self.tmp, name)
        subprocess.run([SPATE_GEN, "--events", str(self.EVENTS), "--seed", str(self.SEED), "--out", path,
                        "--expect", self.expect, *args], check=True, capture_output=True, timeout=120)
        return path
