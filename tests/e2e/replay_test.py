"""spate-replay end to end: a capture or an NDJSON file sent to spated over
UDP, TCP and PUBLISH gives the generator's aggregates; loops repeat the
events (dropped as duplicates, or counted again with --fresh-ids);
--shift-time moves them to now; the rate controls hold the rate."""

import json
import os
import subprocess
import time
import unittest

from spate_e2e import GeneratedInputTest, BUILD_DIR, TEST_CONFIG, Daemon, read_expect

SPATE_REPLAY = os.path.join(BUILD_DIR, "tools", "spate-replay")
EVENTS = GeneratedInputTest.EVENTS


class ReplayTest(GeneratedInputTest):
    SEED = 29

    def daemon(self, **kw):
        d = Daemon(shards=2, config=TEST_CONFIG, **kw)
        self.daemons.append(d)
        return d

    def replay(self, *args):
        out = subprocess.run([SPATE_REPLAY, *args], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("spate-replay: ", out.stderr)  # the final progress line
        return json.loads(out.stdout)

    def test_a_capture_over_udp_and_ndjson_over_tcp_give_the_generators_aggregates(self):
        capture = self.gen("u.pcap")
        summary, windows = read_expect(self.expect)
        d = self.daemon(tcp=False, udp=True)
        r = self.replay(capture, "--to", "udp://127.0.0.1:%d" % d.udp_port, "--eps", "50000")
        self.assertEqual(r["events"], summary["events"])
        self.assertEqual(r["frames_skipped"], 0)
        c = d.wait_settled(summary["events"])
        self.assertEqual(c["udp.drops"], 0)
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

        ndjson = self.gen("e.ndjson")
        d = self.daemon(tcp=True, udp=False)
        r = self.replay(ndjson, "--to", "tcp://127.0.0.1:%d" % d.tcp_port, "--topspeed")
        self.assertEqual(r["events"], summary["events"])
        d.wait_settled(summary["events"])
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

    def test_a_tcp_capture_is_sent_as_its_lines(self):
        capture = self.gen("t.pcap", "--pcap-tcp", "--connections", "2")
        summary, windows = read_expect(self.expect)
        d = self.daemon(tcp=True, udp=False)
        r = self.replay(capture, "--to", "tcp://127.0.0.1:%d" % d.tcp_port, "--topspeed")
        self.assertEqual(r["events"], summary["events"])
        self.assertGreater(r["frames_skipped"], 0)  # the SYNs and FINs carry no lines
        d.wait_settled(summary["events"])
        self.assertEqual(d.counters()["errors"], 0)
        self.assertEqual(d.stop(), 0)

    def test_loops_repeat_as_duplicates_unless_the_ids_are_fresh(self):
        ndjson = self.gen("e.ndjson", "--late-share", "0", "--dup-share", "0")
        summary, windows = read_expect(self.expect)
        d = self.daemon(tcp=False, udp=False)
        to = "publish://127.0.0.1:%d" % d.query_port
        r = self.replay(ndjson, "--to", to, "--loop", "2", "--producer-id", "5")
        self.assertEqual(r["events"], 2 * EVENTS)
        self.assertEqual(r["errors"], 0)
        c = d.counters()
        self.assertEqual(c["publish.events_in"], 2 * EVENTS)
        self.assertEqual(c["dedup.duplicates"], EVENTS)  # the second loop, once per event
        self.assert_views_match(d, windows)

        # Fresh ids: the first loop is all duplicates again; the second is new
        # and counts, except where its windows closed meanwhile (its times are
        # the first loop's: --shift-time moves them on).
        self.replay(ndjson, "--to", to, "--loop", "2", "--fresh-ids", "--producer-id", "6")
        c = d.counters()
        self.assertEqual(c["publish.events_in"], 4 * EVENTS)
        self.assertEqual(c["dedup.duplicates"], 2 * EVENTS)
        types = {key for view, key in windows if view == "per_type_10s"}
        counted = sum(w["count"] for rows in d.client.view_get_many("per_type_10s", list(types)).values() for w in rows)
        self.assertGreater(c["late.per_type_10s"], 0)
        self.assertEqual(counted, 2 * EVENTS - c["late.per_type_10s"])
        self.assertEqual(d.stop(), 0)

    def test_shift_time_now_moves_the_events_to_the_present(self):
        ndjson = self.gen("e.ndjson", "--late-share", "0")
        d = self.daemon(tcp=True, udp=False)
        before = int(time.time() * 1000)
        self.replay(ndjson, "--to", "tcp://127.0.0.1:%d" % d.tcp_port, "--shift-time", "now", "--loop", "2")
        c = d.wait_settled(2 * EVENTS)
        self.assertEqual(c["events_in"], 2 * EVENTS)
        self.assertEqual(c["errors"], 0)
        rows = d.client.view_top("per_type_10s", None, k=1)
        # The newest window is now's (the second loop goes on after the first in event time).
        self.assertGreaterEqual(rows[0]["window_start"], before - 10000)
        self.assertEqual(d.stop(), 0)

    def test_the_rate_controls_hold_the_rate(self):
        ndjson = self.gen("e.ndjson")
        d = self.daemon(tcp=True, udp=False)
        to = "tcp://127.0.0.1:%d" % d.tcp_port
        t0 = time.time()
        r = self.replay(ndjson, "--to", to, "--eps", "20000", "--limit", "100", "--message-bytes", "200")
        self.assertGreaterEqual(time.time() - t0, (r["events"] - 1) / 20000)
        self.assertEqual(r["messages"], 100)
        t0 = time.time()
        r = self.replay(ndjson, "--to", to, "--pps", "400", "--limit", "100")
        self.assertGreaterEqual(r["seconds"], 99 / 400)
        self.assertEqual(d.stop(), 0)

    def test_bad_arguments_are_refused_with_the_reason(self):
        out = subprocess.run([SPATE_REPLAY, "/nonexistent.ndjson", "--to", "udp://127.0.0.1:9"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 1)
        self.assertIn("cannot read", out.stderr)
        ndjson = self.gen("e.ndjson")
        out = subprocess.run([SPATE_REPLAY, ndjson, "--to", "ftp://x:1"], capture_output=True, text=True, timeout=30)
        self.assertIn("the scheme is udp, tcp or publish", out.stderr)
        out = subprocess.run([SPATE_REPLAY, ndjson, "--to", "udp://127.0.0.1:9", "--multiplier", "2"],
                             capture_output=True, text=True, timeout=30)
        self.assertIn("--multiplier needs a capture", out.stderr)


if __name__ == "__main__":
    unittest.main()
