"""End to end: hostile input on every port. Good events around bad ones are
all applied, each bad one is counted under its reason, the daemon stays up."""

import os
import socket
import struct
import tempfile
import time
import unittest

import spate_client
import spate_e2e
from spate_e2e import Daemon, E2ETest, generate

GOOD = '{"id":"g%d","ts":%d,"user":"h%d","type":"hostile","amount":%d.25}'
T0 = 1764000000000


def good_line(i):
    return GOOD % (i, T0 + i, i % 5, i % 7)


class HostileTest(E2ETest):
    def setUp(self):
        self.daemon = Daemon()

    def tearDown(self):
        if self.daemon.proc.poll() is None:
            self.daemon.stop()

    def test_generated_hostile_lines_are_counted_by_reason_and_good_events_all_applied(self):
        with tempfile.TemporaryDirectory() as tmp:
            summary, windows = generate(["--events", "200000", "--seed", "5", "--hostile-share", "0.05",
                                         "--tcp", "127.0.0.1:%d" % self.daemon.tcp_port],
                                        os.path.join(tmp, "expect.ndjson"))
        c = self.daemon.wait_applied(summary["events"])
        self.assertGreater(summary["hostile"], 5000)
        for reason, count in summary["rejects"].items():
            self.assertEqual(c["tcp.errors." + reason], count, reason)
        self.assertEqual(c["errors"], summary["hostile"])
        self.assert_views_match(self.daemon, windows)
        self.assertEqual(self.daemon.stop(), 0)

    def test_hand_made_garbage_over_tcp_and_udp(self):
        bad = [
            b"\x00\x01\x02\xff\xfe binary garbage",                         # malformed_json
            b"{}",                                                          # missing_field
            b'{"id":"x","ts":1,"user":"u","type":"t","amount":1}{"x":1}',  # malformed_json (trailing)
            b'{"id":"x","ts":1,"user":"u","type":"t","amount":"1"}',       # wrong_type
            b'{"id":"x","ts":"yesterday","user":"u","type":"t","amount":1}',  # bad_timestamp
            b'{"id":"x","ts":1,"user":"u","type":"t","amount":1,"pad":"' + b"p" * 100000 + b'"}',  # oversized_line
            b'{"id":"x","ts":1,"user":"' + b"k" * 2000 + b'","type":"t","amount":1}',  # key_too_long
            b"\xc3\x28 invalid utf-8",                                       # malformed_json
            b"   ",                                                          # blank: skipped, not counted
        ]
        stream = b""
        for i, b in enumerate(bad * 20):
            stream += good_line(i).encode() + b"\n" + b + b"\n"
        stream += good_line(999).encode()  # the last line has no newline: EOF ends it
        with socket.create_connection(("127.0.0.1", self.daemon.tcp_port)) as s:
            for i in range(0, len(stream), 777):  # lines split across reads
                s.sendall(stream[i:i + 777])
        udp_lines = [good_line(1000 + i).encode() for i in range(10)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(b"\n".join(udp_lines[:5]) + b"\n{nope\n" + b"\n".join(udp_lines[5:]),
                     ("127.0.0.1", self.daemon.udp_port))
        c = self.daemon.wait_applied(len(bad) * 20 + 1 + 10)
        self.assertEqual(c["tcp.events_in"], len(bad) * 20 + 1)
        self.assertEqual(c["udp.events_in"], 10)
        self.assertEqual(c["tcp.errors.malformed_json"], 60)
        self.assertEqual(c["tcp.errors.missing_field"], 20)
        self.assertEqual(c["tcp.errors.wrong_type"], 20)
        self.assertEqual(c["tcp.errors.bad_timestamp"], 20)
        self.assertEqual(c["tcp.errors.oversized_line"], 20)
        self.assertEqual(c["tcp.errors.key_too_long"], 20)
        self.assertEqual(c["udp.errors.malformed_json"], 1)
        self.assertEqual(c["errors"], 161)
        total = sum(r["count"] for k in range(5) for r in self.daemon.client.view_get("per_user_1m", "h%d" % k))
        self.assertEqual(total, len(bad) * 20 + 1 + 10)
        self.assertEqual(self.daemon.stop(), 0)

    def test_event_time_ahead_of_the_wall_clock_is_refused_and_moves_nothing(self):
        self.daemon.stop()
        self.daemon = Daemon(config=spate_e2e.TEST_CONFIG + "max_future_ms = 600000\n")
        now = int(time.time() * 1000)
        line = '{"id":"f%d","ts":%d,"user":"f","type":"future","amount":1}'
        stream = "\n".join([
            line % (0, now - 3600000),       # an hour old: accepted
            line % (1, now + 3600000),       # an hour ahead, past max_future_ms: refused
            line % (2, now - 3600000 + 1),   # not late: the refused event moved no watermark
            line % (3, now + 60000),         # a minute ahead: accepted
        ]) + "\n"
        with socket.create_connection(("127.0.0.1", self.daemon.tcp_port)) as s:
            s.sendall(stream.encode())
        c = self.daemon.wait_applied(3)
        self.assertEqual(c["tcp.errors.future_timestamp"], 1)
        self.assertEqual(c["errors"], 1)
        self.assertEqual(c["late_events"], 0)
        self.assertEqual(self.daemon.stop(), 0)

    def test_hostile_query_frames_get_status_codes_and_the_server_stays_up(self):
        port = self.daemon.query_port

        def raw(data):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                reply = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return reply
                    reply += chunk

        hello = spate_client.encode_frame(spate_client.Op.HELLO, 1,
                                          spate_client.encode_field(spate_client.Tag.VERSION, spate_client.WireType.U64, 1))

        def status_of(reply, index=0):
            """(op, status, request id) of the index-th frame in reply."""
            frames, buf = [], reply
            while buf:
                op, status, rid, _, size = spate_client.parse_frame(buf)
                frames.append((op, status, rid))
                buf = buf[size:]
            return frames[index]

        # A declared length over the limit: FRAME_TOO_LARGE with op 0 and request id 0, then close.
        f = status_of(raw(struct.pack("<IHHI", 1 << 30, 2, 0, 5)))
        self.assertEqual(f, (0, spate_client.Status.FRAME_TOO_LARGE, 0))
        # A request before HELLO.
        f = status_of(raw(spate_client.encode_frame(spate_client.Op.PING, 9)))
        self.assertEqual((f[1], f[2]), (spate_client.Status.HANDSHAKE_REQUIRED, 9))
        # An unsupported version.
        f = status_of(raw(spate_client.encode_frame(spate_client.Op.HELLO, 3, spate_client.encode_field(
            spate_client.Tag.VERSION, spate_client.WireType.U64, 99))))
        self.assertEqual(f[1], spate_client.Status.VERSION_UNSUPPORTED)
        # After HELLO: an unknown op keeps the connection, a field running past the frame closes it.
        broken_field = struct.pack("<HBI", spate_client.Tag.VIEW, spate_client.WireType.BYTES, 1000) + b"abc"
        reply = raw(hello + spate_client.encode_frame(777, 4) + spate_client.encode_frame(spate_client.Op.PING, 5)
                    + spate_client.encode_frame(spate_client.Op.VIEW_GET, 6, broken_field))
        self.assertEqual(status_of(reply, 1)[1:3], (spate_client.Status.UNKNOWN_OP, 4))
        self.assertEqual(status_of(reply, 2)[1:3], (spate_client.Status.OK, 5))
        self.assertEqual(status_of(reply, 3)[1:3], (spate_client.Status.BAD_REQUEST, 6))
        # Random bytes.
        raw(os.urandom(5000))
        # Errors that leave the connection open.
        c = self.daemon.client
        with self.assertRaises(spate_client.SpateError) as e:
            c.view_get("no_such_view", "k")
        self.assertEqual(e.exception.status_code, spate_client.Status.UNKNOWN_VIEW)
        with self.assertRaises(spate_client.SpateError) as e:
            c.view_top("per_user_1m", by="median(amount)")
        self.assertEqual(e.exception.status_code, spate_client.Status.UNKNOWN_AGGREGATE)
        with self.assertRaises(spate_client.SpateError) as e:
            c.view_get("per_user_1m", "k" * 5000)
        self.assertEqual(e.exception.status_code, spate_client.Status.BAD_REQUEST)
        # An error that echoes a name as long as a frame allows still fits in
        # one: the echo is cut (on a character boundary: é is two bytes).
        long_name = "é" * ((16 << 20) // 2 - 64)
        with self.assertRaises(spate_client.SpateError) as e:
            c.view_get(long_name, "k")
        self.assertEqual(e.exception.status_code, spate_client.Status.UNKNOWN_VIEW)
        self.assertLess(len(str(e.exception).encode()), 2048)
        self.assertTrue(str(e.exception).rstrip("'").endswith("é..."), str(e.exception)[-20:])
        self.assertGreaterEqual(c.ping(), 0)
        self.assertEqual(self.daemon.stop(), 0)


if __name__ == "__main__":
    unittest.main()
