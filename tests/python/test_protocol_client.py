"""Unit tests of the Python client's encoder and decoder against the golden
bytes of docs/protocol.md, and of its pipelining over a socket pair (no server).
Run: python3 -m unittest discover -s tests/python
"""

import os
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

import spate_client as sc  # noqa: E402
from spate_client import Op, Status, Tag, WireType  # noqa: E402

HELLO_REQUEST = bytes.fromhex(
    "22000000 0100 0000 01000000"
    "0100 01 08000000 0100000000000000"
    "0500 04 04000000 64656d6f".replace(" ", ""))

HELLO_RESPONSE = bytes.fromhex(
    "39000000 0100 0000 01000000"
    "0100 01 08000000 0100000000000000"
    "0200 01 08000000 0000000100000000"
    "0300 04 0c000000 7370617465642030 2e312e30".replace(" ", ""))

PING = bytes.fromhex("11000000 0200 0000 02000000 2a00 04 02000000 6869".replace(" ", ""))

VIEW_GET_RESPONSE = bytes.fromhex(
    "90000000 1000 0000 03000000"
    "1200 05 81000000"
    "0b00 04 03000000 753432"
    "0e00 02 08000000 60ea000000000000"
    "0f00 02 08000000 c0d4010000000000"
    "1800 01 08000000 0100000000000000"
    "1300 05 1b000000 1400 04 05000000 636f756e74 1600 01 08000000 0300000000000000"
    "1300 05 21000000 1400 04 0b000000 73756d28616d6f756e7429 1500 03 08000000 0000000000001e40"
    .replace(" ", ""))


def field(tag, wire_type, length, value):
    return struct.pack("<HBI", tag, wire_type, length) + value


class EncodingTest(unittest.TestCase):
    def test_hello_request_encodes_to_the_golden_bytes(self):
        body = sc.encode_fields([(Tag.VERSION, WireType.U64, 1), (Tag.CLIENT_NAME, WireType.BYTES, "demo")])
        self.assertEqual(sc.encode_frame(Op.HELLO, 1, body), HELLO_REQUEST)

    def test_ping_encodes_to_the_golden_bytes(self):
        self.assertEqual(sc.encode_frame(Op.PING, 2, sc.encode_field(Tag.PAYLOAD, WireType.BYTES, b"hi")), PING)

    def test_nested_fields_encode_to_the_golden_view_get_response(self):
        row = [
            (Tag.KEY, WireType.BYTES, "u42"),
            (Tag.WINDOW_START, WireType.I64, 60000),
            (Tag.WINDOW_END, WireType.I64, 120000),
            (Tag.CLOSED, WireType.U64, 1),
            (Tag.AGG, WireType.NESTED, [(Tag.NAME, WireType.BYTES, "count"), (Tag.VALUE_U64, WireType.U64, 3)]),
            (Tag.AGG, WireType.NESTED, [(Tag.NAME, WireType.BYTES, "sum(amount)"),
                                        (Tag.VALUE_F64, WireType.F64, 7.5)]),
        ]
        body = sc.encode_fields([(Tag.ROW, WireType.NESTED, row)])
        self.assertEqual(sc.encode_frame(Op.VIEW_GET, 3, body), VIEW_GET_RESPONSE)

    def test_every_wire_type_round_trips(self):
        fields = [
            (Tag.MAX_FRAME, WireType.U64, 0),
            (Tag.MAX_FRAME, WireType.U64, 2**64 - 1),
            (Tag.FROM_MS, WireType.I64, -2**63),
            (Tag.TO_MS, WireType.I64, -1),
            (Tag.VALUE_F64, WireType.F64, -7.25),
            (Tag.KEY, WireType.BYTES, b""),
            (Tag.KEY, WireType.BYTES, b"a\x00b\xff"),
            (Tag.ROW, WireType.NESTED, b""),
        ]
        self.assertEqual(sc.decode_fields(sc.encode_fields(fields)), fields)


class DecodingTest(unittest.TestCase):
    def test_hello_response_decodes(self):
        op, status, rid, body, size = sc.parse_frame(HELLO_RESPONSE)
        self.assertEqual((op, status, rid, size), (Op.HELLO, Status.OK, 1, len(HELLO_RESPONSE)))
        self.assertEqual(sc.decode_fields(body), [
            (Tag.VERSION, WireType.U64, 1),
            (Tag.MAX_FRAME, WireType.U64, 16 << 20),
            (Tag.SERVER_NAME, WireType.BYTES, b"spated 0.1.0"),
        ])

    def test_view_get_response_decodes_to_row_dicts(self):
        _, _, _, body, _ = sc.parse_frame(VIEW_GET_RESPONSE)
        rows = sc.decode_rows(sc.decode_fields(body))
        self.assertEqual(rows, [{"key": "u42", "window_start": 60000, "window_end": 120000, "closed": True,
                                 "count": 3, "sum(amount)": 7.5}])
        self.assertIsInstance(rows[0]["count"], int)
        self.assertIsInstance(rows[0]["sum(amount)"], float)

    def test_unknown_tags_are_skipped_at_every_level(self):
        agg = field(Tag.NAME, 4, 5, b"count") + field(900, 4, 1, b"?") + field(Tag.VALUE_U64, 1, 8, struct.pack("<Q", 4))
        row = field(Tag.KEY, 4, 1, b"k") + field(901, 5, 3, b"xyz") + field(Tag.AGG, 5, len(agg), agg)
        body = field(902, 1, 8, bytes(8)) + field(Tag.ROW, 5, len(row), row)
        self.assertEqual(sc.decode_rows(sc.decode_fields(body)),
                         [{"key": "k", "window_start": 0, "window_end": 0, "closed": False, "count": 4}])

    def test_stats_decode_to_shard_dicts(self):
        def u64(tag, value):
            return field(tag, 1, 8, struct.pack("<Q", value))

        def counter(name, value, kind=None):
            inner = field(Tag.NAME, 4, len(name), name) + u64(Tag.VALUE_U64, value)
            if kind is not None:
                inner += u64(Tag.KIND, kind)
            return field(Tag.COUNTER, 5, len(inner), inner)

        def bucket(bound, count):
            inner = u64(Tag.BOUND, bound) + u64(Tag.VALUE_U64, count)
            return field(Tag.BUCKET, 5, len(inner), inner)
        histogram = (field(Tag.NAME, 4, 6, b"lat_us")
                     + field(Tag.VALUE_F64, 3, 8, struct.pack("<d", 123.5))
                     + bucket(9, 3) + bucket(2**64 - 1, 1) + bucket(4, 2))
        shard = (u64(Tag.SHARD_ID, 1) + counter(b"events_in", 10) + counter(b"udp.drops", 2)
                 + counter(b"keys", 7, kind=1) + field(Tag.HISTOGRAM, 5, len(histogram), histogram))
        self.assertEqual(sc.decode_stats(sc.decode_fields(field(Tag.SHARD, 5, len(shard), shard))),
                         [{"shard": 1, "counters": {"events_in": 10, "udp.drops": 2, "keys": 7}, "gauges": {"keys"},
                           "histograms": {"lat_us": {"sum": 123.5, "buckets": [(9, 3), (None, 1), (4, 2)]}}}])
        h = {"sum": 0, "buckets": [(9, 3), (None, 1), (4, 2)]}
        self.assertEqual(sc.histogram_quantile(h, 0.3), 4)   # 2 of 6 values are at most 4
        self.assertEqual(sc.histogram_quantile(h, 0.8), 9)
        self.assertIsNone(sc.histogram_quantile(h, 1.0))     # the largest is past every bound
        self.assertIsNone(sc.histogram_quantile({"sum": 0, "buckets": []}, 0.5))

    def test_malformed_fields_raise(self):
        cases = {
            "truncated header": field(1, 1, 8, bytes(8))[:6],
            "length past the end": field(11, 4, 5, b"abcd"),
            "fixed type with length 7": field(1, 1, 7, bytes(8)),
            "unknown wire type 9": field(1, 9, 1, b"x"),
        }
        for name, body in cases.items():
            with self.subTest(name):
                with self.assertRaises(sc.ProtocolError):
                    sc.decode_fields(body)

    def test_parse_frame_needs_more_until_the_frame_is_whole(self):
        for cut in range(len(PING)):
            self.assertIsNone(sc.parse_frame(PING[:cut]))
        self.assertEqual(sc.parse_frame(PING + b"next")[4], len(PING))

    def test_parse_frame_rejects_short_and_oversized_lengths(self):
        with self.assertRaises(sc.ProtocolError):
            sc.parse_frame(struct.pack("<I", 7) + bytes(16))
        with self.assertRaises(sc.ProtocolError):
            sc.parse_frame(struct.pack("<I", 101), max_frame=100)


class PipeliningTest(unittest.TestCase):
    """view_get_many over a socket pair whose far end answers in reverse order."""

    def test_view_get_many_matches_replies_by_request_id(self):
        near, far = socket.socketpair()
        client = sc.Client.__new__(sc.Client)
        client._sock, client._buf, client._next_id, client.max_frame = near, bytearray(), 1, 1 << 20
        keys = ["k%d" % i for i in range(600)]

        def answer():
            buf = bytearray()
            served = 0
            while served < len(keys):
                pending = []
                buf += far.recv(1 << 16)
                while True:
                    parsed = sc.parse_frame(buf)
                    if parsed is None:
                        break
                    op, _, rid, body, size = parsed
                    del buf[:size]
                    key = dict((t, v) for t, _, v in sc.decode_fields(body))[Tag.KEY]
                    row = [(Tag.KEY, WireType.BYTES, key), (Tag.AGG, WireType.NESTED,
                           [(Tag.NAME, WireType.BYTES, "count"), (Tag.VALUE_U64, WireType.U64, int(key[1:]))])]
                    pending.append(sc.encode_frame(op, rid, sc.encode_field(Tag.ROW, WireType.NESTED, row)))
                far.sendall(b"".join(reversed(pending)))
                served += len(pending)

        t = threading.Thread(target=answer)
        t.start()
        result = client.view_get_many("v", keys, window=64)
        t.join()
        client.close()
        far.close()
        self.assertEqual(len(result), len(keys))
        for k in keys:
            self.assertEqual([r["count"] for r in result[k]], [int(k[1:])])


if __name__ == "__main__":
    unittest.main()
