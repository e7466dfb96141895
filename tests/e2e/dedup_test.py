#!/usr/bin/env python3
"""Dedup by event id end to end: a producer that resends a stretch of its
traffic inside one open window gets every resent event counted once, across
connections, shards and restarts; a resend older than the horizon is counted
as beyond it; and a memory budget too small for the horizon says so (gauge,
alarm and log line) instead of forgetting in silence."""

import os
import signal
import socket
import subprocess
import time
import unittest

from spate_e2e import SPATE_QUERY, TEST_CONFIG, Daemon, GeneratedInputTest, read_expect

# 300,000 events over 45 s of event time (step 0.15 ms) from 100,000 users:
# the whole input sits in one open minute of per_user_1m.
EVENTS = 300000
RESEND = 60000
GEN = ("--step-ms", "0.15", "--users", "100000", "--late-share", "0", "--dup-share", "0")
CONFIG = TEST_CONFIG  # a checkpoint at a clean stop, none by time within a test


def send(port, data):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)


class DedupTest(GeneratedInputTest):
    EVENTS = EVENTS

    def start(self, data_dir, config=CONFIG, **kw):
        d = Daemon(config=config, udp=False, data_dir=data_dir, **kw)
        self.daemons.append(d)
        return d

    def test_a_resent_stretch_counts_once_across_connections_and_restarts(self):
        path = self.gen("e.ndjson", *GEN)
        summary, windows = read_expect(self.expect)
        self.assertEqual(summary["good"], EVENTS)
        with open(path, "rb") as f:
            lines = f.readlines()
        data_dir = os.path.join(self.tmp, "data")
        d = self.start(data_dir)
        send(d.tcp_port, b"".join(lines))
        d.wait_applied(EVENTS)
        self.assert_views_match(d, windows)

        # The first 60,000 again on a new connection, as a reconnecting
        # producer resends what it had no acknowledgement for.
        send(d.tcp_port, b"".join(lines[:RESEND]))
        c = d.wait_applied(EVENTS + RESEND)
        self.assertEqual(c["dedup.duplicates"], RESEND)
        self.assertEqual(c["dedup.beyond_horizon"], 0)
        self.assertEqual(c["dedup.evicted"], 0)
        self.assertEqual(c["late_events"], 0)
        horizon = {s["shard"]: s["counters"]["dedup.horizon_ms"] for s in d.client.stats()}
        self.assertEqual(set(horizon.values()), {65000})  # the widest window and its lateness
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

        # After a clean stop the checkpoint holds the ids: another stretch,
        # from the middle, is all duplicates.
        d = self.start(data_dir)
        self.assertEqual(d.counters()["replay.events_in"], 0)
        send(d.tcp_port, b"".join(lines[100000:100000 + RESEND]))
        c = d.wait_applied(RESEND)
        self.assertEqual(c["dedup.duplicates"], RESEND)
        self.assert_views_match(d, windows)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()

        # After kill -9 the log replays from that checkpoint, meeting the
        # duplicates of the stretch above once more; then the tail again.
        d = self.start(data_dir)
        c = d.counters()
        self.assertEqual(c["replay.events_in"], RESEND)
        self.assertEqual(c["dedup.duplicates"], RESEND)
        self.assert_views_match(d, windows)
        send(d.tcp_port, b"".join(lines[-RESEND:]))
        c = d.wait_applied(2 * RESEND)  # events_in counts the replayed ones too
        self.assertEqual(c["dedup.duplicates"], 2 * RESEND)
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

    def test_a_resend_older_than_the_horizon_is_counted_beyond_it(self):
        minute = 1764000000000
        line = '{"id":"%s","ts":%d,"user":"u%d","type":"click","amount":1}\n'
        first = [(line % ("a%d" % i, minute + i, i % 50)).encode() for i in range(1000)]
        # New events 120 s on: the watermark passes the first ones' horizon (65 s).
        later = [(line % ("b%d" % i, minute + 120000 + i, i % 50)).encode() for i in range(1000)]
        # One shard: with two, the shard that parsed none of the later events
        # holds the other's watermark back until it is idle, and the resend
        # may be (rightly) found as duplicates instead.
        d = self.start(os.path.join(self.tmp, "data"), shards=1)
        send(d.tcp_port, b"".join(first))
        d.wait_applied(1000)
        send(d.tcp_port, b"".join(later))
        d.wait_applied(2000)
        resent = 400
        send(d.tcp_port, b"".join(first[:resent]))
        c = d.wait_applied(2000 + resent)
        self.assertEqual(c["dedup.beyond_horizon"], resent)
        self.assertEqual(c["dedup.duplicates"], 0)
        self.assertEqual(c["late.per_user_1m"], resent)  # their windows closed: late, not counted twice
        self.assertEqual(sum(w["count"] for rows in d.client.view_get_many(
            "per_user_1m", ["u%d" % i for i in range(50)]).values() for w in rows), 2000)
        self.assertEqual(d.stop(), 0)

    def test_a_budget_short_of_the_horizon_is_reported(self):
        minute = 1764000000000
        line = '{"id":"s%d","ts":%d,"user":"u%d","type":"view","amount":2}\n'
        data = "".join(line % (i, minute + i, i % 100) for i in range(30000)).encode()
        d = self.start(os.path.join(self.tmp, "data"), config=CONFIG + "[dedup]\nmax_bytes = 65536\n", shards=1)
        send(d.tcp_port, data)
        d.wait_applied(30000)
        deadline = time.time() + 10
        while "dedup: the memory budget holds less than the horizon" not in d.read_log():
            self.assertLess(time.time(), deadline, "no warning: %s" % d.read_log())
            time.sleep(0.1)
        (s,) = d.client.stats()
        c = s["counters"]
        self.assertGreater(c["dedup.evicted"], 0)
        self.assertEqual(c["dedup.bytes"], 65536)
        self.assertLess(c["dedup.horizon_covered_ms"], c["dedup.horizon_ms"])
        self.assertIn("shard=0 ", d.read_log())
        # The alarm an operator watching sees.
        out = subprocess.run([SPATE_QUERY, "--addr", "127.0.0.1:%d" % d.query_port, "watch", "--interval-ms", "100",
                              "--count", "1"], capture_output=True, text=True, timeout=30).stdout
        self.assertIn("ALARM shard 0 dedup covers", out)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
