"""End to end: every limit on connections acts, is counted, and leaves the
daemon serving everything within it."""

import os
import socket
import time
import unittest

import spate_e2e
from spate_e2e import Daemon, E2ETest

LINE = '{"id":"l%d","ts":%d,"user":"u%d","type":"limits","amount":1}\n'
T0 = 1764000000000


def wait_for(daemon, pred, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = daemon.counters()
        if pred(c):
            return c
        time.sleep(0.05)
    raise AssertionError("%s: not reached; counters %r" % (what, daemon.counters()))


def tcp_config(**keys):
    extra = "".join("%s = %d\n" % kv for kv in keys.items())
    return spate_e2e.TEST_CONFIG + '[[source]]\ntype = "tcp"\nlisten = "127.0.0.1:1"\n' + extra


class LimitsTest(E2ETest):
    def tearDown(self):
        if self.daemon.proc.poll() is None:
            self.daemon.stop()

    def test_connections_over_max_connections_are_closed_at_once_and_counted(self):
        self.daemon = Daemon(config=tcp_config(max_connections=3), udp=False)
        conns = [socket.create_connection(("127.0.0.1", self.daemon.tcp_port)) for _ in range(5)]
        wait_for(self.daemon, lambda c: c["tcp.connections_refused"] == 2 and c["tcp.connections"] == 3,
                 "two refused, three open")
        for i, s in enumerate(conns):
            try:
                s.sendall((LINE % (i, T0 + i, i)).encode())
            except OSError:
                pass  # a refused one
        c = wait_for(self.daemon, lambda c: c["events_in"] == 3, "the three kept connections' events")
        self.assertEqual(c["tcp.connections_refused"], 2)
        # A closed connection frees its place.
        for s in conns:
            s.close()
        wait_for(self.daemon, lambda c: c["tcp.connections"] == 0, "all closed")
        with socket.create_connection(("127.0.0.1", self.daemon.tcp_port)) as s:
            s.sendall((LINE % (9, T0 + 9, 9)).encode())
        wait_for(self.daemon, lambda c: c["events_in"] == 4, "a new connection after the others closed")
        self.assertEqual(self.daemon.counters()["tcp.connections_refused"], 2)
        self.assertEqual(self.daemon.stop(), 0)

    def test_a_silent_connection_is_closed_after_max_idle_ms_and_its_last_line_kept(self):
        self.daemon = Daemon(config=tcp_config(max_idle_ms=400), udp=False)
        busy = socket.create_connection(("127.0.0.1", self.daemon.tcp_port))
        quiet = socket.create_connection(("127.0.0.1", self.daemon.tcp_port))
        quiet.sendall((LINE % (0, T0, 0)).encode() + (LINE % (1, T0 + 1, 1)).rstrip("\n").encode())  # no newline yet
        deadline = time.time() + 1.5
        i = 2
        while time.time() < deadline:  # the busy one keeps talking past the limit
            busy.sendall((LINE % (i, T0 + i, i)).encode())
            i += 1
            time.sleep(0.05)
        c = wait_for(self.daemon, lambda c: c["tcp.idle_closed"] == 1, "the quiet connection closed")
        self.assertEqual(c["tcp.connections"], 1)
        # Closing ends the stream: its last line, without a newline, counts.
        wait_for(self.daemon, lambda c: c["events_in"] == i, "every event, the quiet one's last included")
        self.assertEqual(quiet.recv(1), b"")  # the daemon closed it
        busy.close()
        quiet.close()
        self.assertEqual(self.daemon.counters()["errors"], 0)
        self.assertEqual(self.daemon.stop(), 0)

    def test_out_of_descriptors_the_listener_rests_instead_of_spinning(self):
        self.daemon = Daemon(config=tcp_config(), udp=False, shards=1, max_descriptors=64)
        conns = []
        for _ in range(100):  # more than the daemon can hold; the rest wait in the backlog
            conns.append(socket.create_connection(("127.0.0.1", self.daemon.tcp_port)))
        wait_for(self.daemon, lambda c: c["tcp.accept_pauses"] > 0, "the listener rested")
        cpu_before = self.cpu_seconds()
        time.sleep(1.0)
        spent = self.cpu_seconds() - cpu_before
        self.assertLess(spent, 0.5, "spated spun on the listener: %.2f s of CPU in 1 s" % spent)
        # Descriptors freed: the waiting connections are taken and read.
        open_now = self.daemon.counters()["tcp.connections"]
        self.assertGreater(open_now, 0)
        for s in conns[:open_now]:
            s.close()
        for i, s in enumerate(conns[open_now:]):
            s.sendall((LINE % (i, T0 + i, i)).encode())
        rest = len(conns) - open_now
        wait_for(self.daemon, lambda c: c["events_in"] == rest, "the backlog's events", timeout=30)
        for s in conns[open_now:]:
            s.close()
        self.assertEqual(self.daemon.stop(), 0)

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.daemon.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


if __name__ == "__main__":
    unittest.main()
