"""End to end: event time under a busy loop. Short connections each send a
few in-order events far apart in event time, while another connection keeps
the shards busy with junk lines. A shard whose last input closes must send
and apply the rows it still holds in batches before it turns inactive, or
they are judged against a watermark that moved on without them."""

import socket
import tempfile
import threading
import time
import unittest

from spate_e2e import Daemon

CONFIG = """
allowed_lateness_ms = 0
idle_timeout_ms = 100
ring_flush_us = 1000000
window_retention_ms = 31622400000

[[view]]
name = "per_user_1m"
key = "user"
size_ms = 60000
aggregates = ["count"]
"""


class EventTimeTest(unittest.TestCase):
    def check(self, shards):
        d = Daemon(shards=shards, config=CONFIG, udp=False)
        stop = threading.Event()

        def flood():
            with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
                junk = b"x\n" * 4000
                while not stop.is_set():
                    s.sendall(junk)

        flooder = threading.Thread(target=flood)
        flooder.start()
        try:
            time.sleep(0.3)
            base, sent = 0, 0
            for it in range(12):
                lines = "".join('{"id":"e","ts":%d,"user":"k%d_%d","type":"t","amount":1}\n'
                                % (base + 60000 * j, it, j) for j in range(10))
                base += 600000
                with socket.create_connection(("127.0.0.1", d.tcp_port)) as a:
                    a.sendall(lines.encode())
                sent += 10
                time.sleep(0.15)  # longer than the idle timeout: the input leaves, the shard may turn inactive
        finally:
            stop.set()
            flooder.join()
        deadline = time.time() + 20
        c = d.counters()
        while (c["events_in"] < sent or c["rows_applied"] < sent) and time.time() < deadline:
            time.sleep(0.05)
            c = d.counters()
        self.assertEqual(c["events_in"], sent)
        self.assertEqual(c["late.per_user_1m"], 0)
        self.assertGreater(c["tcp.errors.malformed_json"], 0)
        self.assertEqual(d.stop(), 0)

    def test_a_clock_far_ahead_moves_no_watermark_past_the_wall_clock(self):
        """One device 20 minutes fast on a connection of correctly dated
        events: its event goes into its own window, the others stay on
        time, live and after a crash's replay; the first is logged."""
        config = CONFIG.replace("allowed_lateness_ms = 0", "allowed_lateness_ms = 5000\nmax_watermark_ahead_ms = 1000")
        for shards in (1, 2):
            data = tempfile.TemporaryDirectory(prefix="spate-ahead-")
            d = Daemon(shards=shards, config=config, udp=False, data_dir=data.name)
            try:
                now = int(time.time() * 1000)
                fast = now + 20 * 60000
                lines = ['{"id":"a%d","ts":%d,"user":"dev%d","type":"t","amount":1}' % (i, now - 3000 + i * 10, i % 4)
                         for i in range(20)]
                lines.append('{"id":"fast","ts":%d,"user":"dev9","type":"t","amount":1}' % fast)
                lines += ['{"id":"b%d","ts":%d,"user":"dev%d","type":"t","amount":1}' % (i, now - 2000 + i * 10, i % 4)
                          for i in range(20)]
                with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
                    s.sendall(("\n".join(lines) + "\n").encode())
                    deadline = time.time() + 10
                    while d.counters()["rows_applied"] < len(lines):
                        self.assertLess(time.time(), deadline, "not every row applied: %r" % d.counters())
                        time.sleep(0.02)
                c = d.counters()
                self.assertEqual(c["late.per_user_1m"], 0, c)
                self.assertEqual(c["events_ahead_of_clock"], 1)
                self.assertEqual(d.client.view_get("per_user_1m", "dev9")[0]["window_start"], fast - fast % 60000)
                live = {k: sum(r["count"] for r in d.client.view_get("per_user_1m", k)) for k in ("dev0", "dev1", "dev2", "dev3")}
                self.assertEqual(sum(live.values()), 40)
                self.assertEqual(d.read_log().count("event dated ahead of the wall clock"), 1)
                # A crash: the log replays, and the fast event is capped as it was live.
                time.sleep(0.3)  # past the group commit: every event is in the log
                d.proc.kill()
                d.proc.wait()
                d = Daemon(shards=shards, config=config, udp=False, data_dir=data.name)
                c = d.counters()
                self.assertEqual(c["replay.events_in"], len(lines), c)
                self.assertEqual(c["late.per_user_1m"], 0, c)
                self.assertEqual({k: sum(r["count"] for r in d.client.view_get("per_user_1m", k)) for k in live}, live)
                self.assertEqual(c["events_ahead_of_clock"], 1)
            finally:
                d.stop()
                data.cleanup()

    def test_in_order_events_on_short_connections_are_never_late_one_shard(self):
        self.check(1)

    def test_in_order_events_on_short_connections_are_never_late_two_shards(self):
        self.check(2)


if __name__ == "__main__":
    unittest.main()
