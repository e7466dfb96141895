"""End to end: every limit on connections acts, is counted, and leaves the
daemon serving everything within it."""

import os
import socket
import subprocess
import tempfile
import time
import unittest

import spate_client
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
        # One event first, so that the parse path's first run (and UBSan's
        # first check of its virtual calls, which needs a descriptor for a
        # pipe) happens before the descriptors run out.
        with socket.create_connection(("127.0.0.1", self.daemon.tcp_port)) as s:
            s.sendall((LINE % (999, T0, 999)).encode())
        wait_for(self.daemon, lambda c: c["events_in"] == 1 and c["tcp.connections"] == 0, "the first event")
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
        # Each sender closes after its line: the daemon's own descriptors (its
        # segment files) may take a place the closed connections left.
        for i, s in enumerate(conns[open_now:]):
            s.sendall((LINE % (i, T0 + i, i)).encode())
            s.close()
        rest = len(conns) - open_now
        wait_for(self.daemon, lambda c: c["events_in"] == 1 + rest, "the backlog's events", timeout=30)
        self.assertEqual(self.daemon.stop(), 0)

    def test_query_clients_are_bounded_in_number_handshake_and_frame_time(self):
        self.daemon = Daemon(config=spate_e2e.TEST_CONFIG + "[query]\nmax_connections = 4\n"
                             "handshake_timeout_ms = 300\nframe_timeout_ms = 300\n")
        port = self.daemon.query_port
        hello = spate_client.encode_frame(spate_client.Op.HELLO, 1, spate_client.encode_field(
            spate_client.Tag.VERSION, spate_client.WireType.U64, 1))
        # The daemon's own client is one; three more fit, two do not.
        silent = socket.create_connection(("127.0.0.1", port))          # never says HELLO
        half = socket.create_connection(("127.0.0.1", port))            # HELLO, then half a frame
        half.sendall(hello)
        ping = spate_client.encode_frame(spate_client.Op.PING, 2)
        half.sendall(ping[:5])
        third = spate_client.Client("127.0.0.1", port)
        extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        c = wait_for(self.daemon, lambda c: c["query.connections_refused"] == 2, "two refused")
        for s in extra:
            self.assertEqual(s.recv(1), b"")
        # Both timeouts act; the well-behaved clients stay.
        c = wait_for(self.daemon, lambda c: c["query.handshake_timeouts"] == 1 and c["query.frame_timeouts"] == 1,
                     "both timeouts")
        silent.settimeout(5)
        self.assertEqual(silent.recv(1), b"")
        half.settimeout(5)
        reply = b""
        while True:  # the HELLO answer, then the close
            chunk = half.recv(65536)
            if not chunk:
                break
            reply += chunk
        self.assertEqual(spate_client.parse_frame(reply)[1], spate_client.Status.OK)
        self.assertGreaterEqual(third.ping(), 0)
        self.assertEqual(self.daemon.counters()["query.connections"], 2)
        for s in extra + [silent, half]:
            s.close()
        third.close()
        self.assertEqual(self.daemon.stop(), 0)

    def test_a_client_that_does_not_read_its_answers_is_closed_past_max_reply_bytes(self):
        self.daemon = Daemon(config=spate_e2e.TEST_CONFIG + "[query]\nmax_reply_bytes = 1048576\n")
        lines = "".join(LINE % (i, T0 + i, i) for i in range(20000))
        with socket.create_connection(("127.0.0.1", self.daemon.tcp_port)) as s:
            s.sendall(lines.encode())
        self.daemon.wait_applied(20000)
        greedy = spate_client.Client("127.0.0.1", self.daemon.query_port)
        body = spate_client.encode_fields([(spate_client.Tag.VIEW, spate_client.WireType.BYTES, "per_user_1m"),
                                           (spate_client.Tag.K, spate_client.WireType.U64, 10000),
                                           (spate_client.Tag.BY, spate_client.WireType.BYTES, "count")])
        # 64 answers of about 1 MB each in flight, none read.
        greedy._sock.sendall(b"".join(spate_client.encode_frame(spate_client.Op.VIEW_TOP, 100 + i, body)
                                      for i in range(64)))
        wait_for(self.daemon, lambda c: c["query.slow_clients_closed"] == 1, "the greedy client closed", timeout=30)
        self.assertGreaterEqual(self.daemon.client.ping(), 0)  # the others are served
        self.assertEqual(len(self.daemon.client.view_top("per_user_1m", k=5)), 5)
        greedy.close()
        self.assertEqual(self.daemon.stop(), 0)

    def test_a_query_listener_with_a_token_wants_it_in_hello(self):
        with tempfile.TemporaryDirectory() as tmp:
            token_file = os.path.join(tmp, "token")
            with open(token_file, "w") as f:
                f.write("s3cret-token-of-enough-bytes\n")
            self.daemon = Daemon(config=spate_e2e.TEST_CONFIG + '[query]\nauth_token_file = "%s"\n' % token_file,
                                 auth_token="s3cret-token-of-enough-bytes")
            port = self.daemon.query_port
            for token in (None, "s3cret-token-of-enough-byteZ", "s3cret"):
                with self.assertRaises(spate_client.SpateError) as e:
                    spate_client.Client("127.0.0.1", port, auth_token=token)
                self.assertEqual(e.exception.status_code, spate_client.Status.AUTH_FAILED)
            self.assertEqual(self.daemon.counters()["query.auth_failures"], 3)
            self.assertGreaterEqual(self.daemon.client.ping(), 0)
            self.assertEqual(self.daemon.stop(), 0)

    def test_a_query_listener_off_loopback_without_a_token_refuses_to_start(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([spate_e2e.SPATED, "--query-addr", "0.0.0.0:0", "--tcp-addr", "off",
                                   "--udp-addr", "off", "--data-dir", os.path.join(tmp, "d")],
                                  capture_output=True, text=True, timeout=30)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("is not a loopback address: set [query] auth_token_file", proc.stderr)
        self.daemon = Daemon()  # for tearDown

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.daemon.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


if __name__ == "__main__":
    unittest.main()
