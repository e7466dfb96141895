"""End to end: event time under a busy loop. Short connections each send a
few in-order events far apart in event time, while another connection keeps
the shards busy with junk lines. A shard whose last input closes must send
and apply the rows it still holds in batches before it turns inactive, or
they are judged against a watermark that moved on without them."""

import random
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


REPLAY_CONFIG = """
allowed_lateness_ms = 2000
idle_timeout_ms = 200
max_watermark_ahead_ms = 1000
window_retention_ms = 31622400000

[[view]]
name = "per_user_10s"
key = "user"
size_ms = 10000
aggregates = ["count", "sum(amount)"]

[[view]]
name = "per_type_1s"
key = "type"
size_ms = 1000
aggregates = ["count", "max(amount)"]
"""

# What a replay of the whole log counts again.
RECOUNTED = ("late_events", "late.per_user_10s", "late.per_type_1s", "dedup.duplicates", "dedup.beyond_horizon",
             "events_ahead_of_clock", "rows_applied")


def replay_inputs(now):
    """Three inputs over live-dated event time, each a list of lines: one in
    order, one 5 s behind with stragglers up to 4 s back, one jittered by
    up to 4 s that resends some of the first input's events 200 events
    after them and, near its end, dates a few 20 minutes ahead of the clock."""
    rnd = random.Random(7)
    t0 = now - 30000

    def line(i, ts, user, kind, amount):
        return '{"id":"%s","ts":%d,"user":"%s","type":"%s","amount":%d}\n' % (i, ts, user, kind, amount)

    a = [line("a%d" % i, t0 + 50 * i, "u%d" % (i % 7), "t%d" % (i % 3), i) for i in range(400)]
    b = [line("b%d" % i, t0 - 5000 + 50 * i - (rnd.randrange(4000) if i % 20 == 0 else 0), "v%d" % (i % 5),
              "t%d" % (i % 3), i) for i in range(400)]
    c = []
    for i in range(400):
        c.append(line("c%d" % i, t0 + 50 * i + rnd.randrange(-4000, 4000), "w%d" % (i % 11), "t%d" % (i % 4), i))
        if i >= 200 and i % 10 == 0:
            c.append(a[i - 200])  # the same event again, well after its first copy
        if i >= 300 and i % 23 == 0:
            c.append(line("f%d" % i, now + 20 * 60000, "w%d" % (i % 11), "t9", 1))
    return [a, b, c]


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
        while (c["events_in"] < sent or c["rows_handled"] < sent) and time.time() < deadline:
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
                    while d.counters()["rows_handled"] < len(lines):
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

    def test_a_replay_of_the_whole_log_gives_what_the_live_run_gave(self):
        """Live-dated events on three connections at once (in order, lagging
        with stragglers, jittered with resent events and a clock 20 minutes
        fast), then a crash (the whole log replays) and a start with a view
        added (no checkpoint fits): every window of every key, the tops and
        every counter a replay counts again are what the live run gave, with
        1, 2 and 3 shards."""
        for shards in (1, 2, 3):
            data = tempfile.TemporaryDirectory(prefix="spate-replay-")
            d = Daemon(shards=shards, config=REPLAY_CONFIG, udp=False, data_dir=data.name)
            try:
                inputs = replay_inputs(int(time.time() * 1000))
                conns = [socket.create_connection(("127.0.0.1", d.tcp_port)) for _ in inputs]
                time.sleep(0.1)  # every connection accepted: each input holds event time back from the start
                for i in range(0, 460, 20):  # interleaved, a few lines of each at a time
                    for conn, lines in zip(conns, inputs):
                        conn.sendall("".join(lines[i:i + 20]).encode())
                    time.sleep(0.01)
                for conn in conns:
                    conn.close()
                events = sum(len(lines) for lines in inputs)
                live = self.settled(d, events)
                self.assertGreater(live["late_events"], 0, live)
                self.assertGreater(live["dedup.duplicates"], 0, live)
                self.assertGreater(live["events_ahead_of_clock"], 0, live)
                answers = self.answers(d, ["per_user_10s", "per_type_1s"])
                deadline = time.time() + 10
                while not (d.counters()["storage.events"] == live["events_in"]
                           and d.counters()["storage.bytes_in_flight"] == 0):
                    self.assertLess(time.time(), deadline, "not logged: %r" % d.counters())
                    time.sleep(0.02)
                time.sleep(0.2)  # and synced by the group commit
                d.proc.kill()
                d.proc.wait()
                d = Daemon(shards=shards, config=REPLAY_CONFIG, udp=False, data_dir=data.name)
                again = self.settled(d, events, replayed=True)
                self.assertEqual({k: again[k] for k in RECOUNTED}, {k: live[k] for k in RECOUNTED}, "after a crash")
                self.assertEqual(self.answers(d, ["per_user_10s", "per_type_1s"]), answers, "after a crash")
                self.assertEqual(d.stop(), 0)
                # A view added: the checkpoint of that clean stop does not fit; the copy answers as its original.
                added = REPLAY_CONFIG + REPLAY_CONFIG[REPLAY_CONFIG.index("[[view]]"):].split("[[view]]")[1].join(
                    ["[[view]]", ""]).replace("per_user_10s", "per_user_10s_again")
                d = Daemon(shards=shards, config=added, udp=False, data_dir=data.name)
                again = self.settled(d, events, replayed=True)
                self.assertEqual({k: again[k] for k in RECOUNTED if k != "late_events"},
                                 {k: live[k] for k in RECOUNTED if k != "late_events"}, "with a view added")
                self.assertEqual(again["late.per_user_10s_again"], live["late.per_user_10s"])
                got = self.answers(d, ["per_user_10s", "per_type_1s", "per_user_10s_again"])
                self.assertEqual(got.pop("per_user_10s_again"), answers["per_user_10s"], "the added copy")
                self.assertEqual(got, answers, "with a view added")
            finally:
                d.stop()
                data.cleanup()

    def settled(self, d, events, replayed=False):
        """The counters once every event (replayed, or taken live and not refused)
        has every row applied and no input is active."""
        deadline = time.time() + 20
        while True:
            c = d.counters()
            taken = c["replay.events_in"] if replayed else c["events_in"]
            if (taken + c["errors"] == events and c["rows_handled"] == 2 * taken and c["ring_depth"] == 0
                    and c["inputs_active"] == 0):
                time.sleep(0.3)  # every shard idle a few ticks: event time at rest, which windows are closed
                return d.counters()
            self.assertLess(time.time(), deadline, "not settled: %r" % c)
            time.sleep(0.02)

    def answers(self, d, views):
        """Every window of every key the views hold, and each view's top."""
        out = {}
        for view in views:
            keys = [r["key"] for r in d.client.view_top(view, None, k=100)]
            top_window = d.client.view_top(view, None, k=100)
            rows = d.client.view_get_many(view, sorted({"u%d" % i for i in range(7)} | {"v%d" % i for i in range(5)} |
                                                       {"w%d" % i for i in range(11)} | {"t%d" % i for i in range(4)} |
                                                       {"t9"}))
            out[view] = {"rows": {k: v for k, v in rows.items() if v}, "top": top_window, "top_keys": keys}
        return out

    def test_in_order_events_on_short_connections_are_never_late_one_shard(self):
        self.check(1)

    def test_in_order_events_on_short_connections_are_never_late_two_shards(self):
        self.check(2)


if __name__ == "__main__":
    unittest.main()
