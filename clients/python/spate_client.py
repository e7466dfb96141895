"""Dependency-free Python 3 client for spate's query protocol v1 (docs/protocol.md).

    with Client("127.0.0.1", 7070) as c:
        print(c.view_get("clicks_per_user", "u42"))

Run as a script for a small CLI: python3 spate_client.py --addr 127.0.0.1:7070 ping|stats|view|top
"""

import argparse
import json
import socket
import struct
import sys
import time

__all__ = [
    "Client", "SpateError", "ProtocolError", "Op", "Status", "Tag", "WireType",
    "encode_frame", "encode_field", "decode_fields", "parse_frame", "STATUS_NAMES",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME = 16 << 20
FRAME_HEADER_BYTES = 12   # length u32, op u16, status u16, request id u32
FIELD_HEADER_BYTES = 7    # tag u16, wire type u8, length u32
MAX_NESTING_DEPTH = 4
MAX_REPLY_BYTES = 256 << 20   # sanity bound on a reply before the stream is called garbage
PIPELINE_WINDOW = 256         # requests in flight in view_get_many (the server allows 1024)


class Op:
    HELLO = 1
    PING = 2
    STATS = 3
    VIEW_GET = 16
    VIEW_TOP = 17
    PUBLISH = 32


class Status:
    OK = 0
    BAD_REQUEST = 1
    UNKNOWN_OP = 2
    UNKNOWN_VIEW = 3
    FRAME_TOO_LARGE = 4
    VERSION_UNSUPPORTED = 5
    HANDSHAKE_REQUIRED = 6
    OVERLOADED = 7
    INTERNAL = 8
    UNKNOWN_AGGREGATE = 9
    AUTH_FAILED = 10
    STORAGE_FAILED = 11
    DISK_FULL = 12


STATUS_NAMES = {v: k for k, v in vars(Status).items() if not k.startswith("_")}

# Statuses after which the server closes the connection.
_CLOSING_STATUSES = {Status.FRAME_TOO_LARGE, Status.VERSION_UNSUPPORTED, Status.HANDSHAKE_REQUIRED}


class WireType:
    U64 = 1
    I64 = 2
    F64 = 3
    BYTES = 4
    NESTED = 5


class Tag:
    VERSION = 1
    MAX_FRAME = 2
    SERVER_NAME = 3
    ERROR = 4
    CLIENT_NAME = 5
    AUTH_TOKEN = 6
    VIEW = 10
    KEY = 11
    FROM_MS = 12
    TO_MS = 13
    WINDOW_START = 14
    WINDOW_END = 15
    K = 16
    BY = 17
    ROW = 18
    AGG = 19
    NAME = 20
    VALUE_F64 = 21
    VALUE_U64 = 22
    VALUE_I64 = 23
    CLOSED = 24
    TRUNCATED = 25
    SHARD = 30
    SHARD_ID = 31
    COUNTER = 32
    KIND = 33
    HISTOGRAM = 34
    BUCKET = 35
    BOUND = 36
    PRODUCER_ID = 40
    SEQUENCE = 41
    PAYLOAD = 42
    ACCEPTED = 43
    REJECTED = 44
    DUPLICATE = 45
    DURABILITY = 46


class SpateError(Exception):
    """The server answered a request with a non-OK status."""

    def __init__(self, status_code, status_name, message):
        super().__init__("%s: %s" % (status_name, message))
        self.status_code = status_code
        self.status_name = status_name
        self.message = message


class ProtocolError(Exception):
    """The server sent bytes that are not protocol v1; the connection is closed."""


# ---------------------------------------------------------------- encoding

_FIELD_HEADER = struct.Struct("<HBI")
_FRAME_HEADER = struct.Struct("<IHHI")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


def encode_field(tag, wire_type, value):
    """One field as bytes. value: int (U64, I64), float (F64), bytes or str
    (BYTES; str is encoded as UTF-8), and for NESTED either bytes (already
    encoded fields) or a list of (tag, wire_type, value) tuples."""
    if wire_type == WireType.U64:
        payload = _U64.pack(value)
    elif wire_type == WireType.I64:
        payload = _I64.pack(value)
    elif wire_type == WireType.F64:
        payload = _F64.pack(value)
    elif wire_type == WireType.BYTES:
        payload = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    elif wire_type == WireType.NESTED:
        payload = value if isinstance(value, (bytes, bytearray)) else encode_fields(value)
    else:
        raise ValueError("unknown wire type %r" % (wire_type,))
    return _FIELD_HEADER.pack(tag, wire_type, len(payload)) + payload


def encode_fields(fields):
    return b"".join(encode_field(t, w, v) for t, w, v in fields)


def encode_frame(op, request_id, body=b"", status=Status.OK):
    """A whole frame: length (of what follows it), op, status, request id, fields."""
    return _FRAME_HEADER.pack(len(body) + FRAME_HEADER_BYTES - 4, op, status, request_id) + body


# ---------------------------------------------------------------- decoding

def decode_fields(body):
    """Fields of a frame body or of a nested field, as (tag, wire_type, value)
    tuples: int for U64 and I64 (signed), float for F64, bytes for BYTES and
    NESTED (decode a nested value with decode_fields again). Unknown tags are
    returned like any other; callers skip what they do not know. Raises
    ProtocolError on a truncated header, a length past the end, a fixed-width
    field whose length is not 8 or an unknown wire type."""
    body = memoryview(body)
    fields = []
    pos = 0
    end = len(body)
    while pos < end:
        if end - pos < FIELD_HEADER_BYTES:
            raise ProtocolError("truncated field header at offset %d" % pos)
        tag, wire_type, length = _FIELD_HEADER.unpack_from(body, pos)
        pos += FIELD_HEADER_BYTES
        if wire_type < WireType.U64 or wire_type > WireType.NESTED:
            raise ProtocolError("unknown wire type %d (tag %d)" % (wire_type, tag))
        if length > end - pos:
            raise ProtocolError("field (tag %d) of %d bytes runs past the end" % (tag, length))
        if wire_type == WireType.U64 or wire_type == WireType.I64 or wire_type == WireType.F64:
            if length != 8:
                raise ProtocolError("fixed-width field (tag %d) of length %d" % (tag, length))
            if wire_type == WireType.U64:
                value = _U64.unpack_from(body, pos)[0]
            elif wire_type == WireType.I64:
                value = _I64.unpack_from(body, pos)[0]
            else:
                value = _F64.unpack_from(body, pos)[0]
        else:
            value = body[pos:pos + length].tobytes()
        fields.append((tag, wire_type, value))
        pos += length
    return fields


def parse_frame(buf, max_frame=MAX_REPLY_BYTES):
    """Looks at the start of buf. Returns None when more bytes are needed, else
    (op, status, request_id, body, frame_size). Raises ProtocolError for a
    length below 8 or above max_frame."""
    if len(buf) < 4:
        return None
    (length,) = struct.unpack_from("<I", buf, 0)
    if length < FRAME_HEADER_BYTES - 4:
        raise ProtocolError("frame length %d is below the minimum of 8" % length)
    if length > max_frame:
        raise ProtocolError("frame length %d exceeds %d" % (length, max_frame))
    if len(buf) < 4 + length:
        return None
    _, op, status, request_id = _FRAME_HEADER.unpack_from(buf, 0)
    return op, status, request_id, bytes(buf[FRAME_HEADER_BYTES:4 + length]), 4 + length


def _expect(field, wire_type, name):
    if field[1] != wire_type:
        raise ProtocolError("%s has wire type %d, expected %d" % (name, field[1], wire_type))
    return field[2]


def _text(b):
    return b.decode("utf-8", "surrogateescape")


def _error_text(fields):
    text = ""
    for tag, wire_type, value in fields:
        if tag == Tag.ERROR and wire_type == WireType.BYTES:
            text = _text(value)
    return text or "(no message)"


def decode_row(body):
    """A ROW as a dict: key, window_start, window_end, closed, then each
    aggregate by name (int for u64 values, float for f64)."""
    row = {"key": "", "window_start": 0, "window_end": 0, "closed": False}
    for f in decode_fields(body):
        tag = f[0]
        if tag == Tag.KEY:
            row["key"] = _text(_expect(f, WireType.BYTES, "KEY"))
        elif tag == Tag.WINDOW_START:
            row["window_start"] = _expect(f, WireType.I64, "WINDOW_START")
        elif tag == Tag.WINDOW_END:
            row["window_end"] = _expect(f, WireType.I64, "WINDOW_END")
        elif tag == Tag.CLOSED:
            row["closed"] = _expect(f, WireType.U64, "CLOSED") != 0
        elif tag == Tag.AGG:
            name, value = None, None
            for g in decode_fields(_expect(f, WireType.NESTED, "AGG")):
                if g[0] == Tag.NAME:
                    name = _text(_expect(g, WireType.BYTES, "NAME"))
                elif g[0] == Tag.VALUE_U64:
                    value = _expect(g, WireType.U64, "VALUE_U64")
                elif g[0] == Tag.VALUE_I64:
                    value = _expect(g, WireType.I64, "VALUE_I64")
                elif g[0] == Tag.VALUE_F64:
                    value = _expect(g, WireType.F64, "VALUE_F64")
            if name is None or value is None:
                raise ProtocolError("AGG without NAME or value")
            row[name] = value
    return row


def decode_rows(fields):
    return [decode_row(_expect(f, WireType.NESTED, "ROW")) for f in fields if f[0] == Tag.ROW]


def decode_stats(fields):
    shards = []
    for f in fields:
        if f[0] != Tag.SHARD:
            continue
        shard = {"shard": 0, "counters": {}, "gauges": set(), "histograms": {}}
        for g in decode_fields(_expect(f, WireType.NESTED, "SHARD")):
            if g[0] == Tag.SHARD_ID:
                shard["shard"] = _expect(g, WireType.U64, "SHARD_ID")
            elif g[0] == Tag.COUNTER:
                name, value, kind = None, 0, 0
                for h in decode_fields(_expect(g, WireType.NESTED, "COUNTER")):
                    if h[0] == Tag.NAME:
                        name = _text(_expect(h, WireType.BYTES, "NAME"))
                    elif h[0] == Tag.VALUE_U64:
                        value = _expect(h, WireType.U64, "VALUE_U64")
                    elif h[0] == Tag.KIND:
                        kind = _expect(h, WireType.U64, "KIND")
                if name is None:
                    raise ProtocolError("COUNTER without NAME")
                shard["counters"][name] = value
                if kind == STAT_GAUGE:
                    shard["gauges"].add(name)
            elif g[0] == Tag.HISTOGRAM:
                name, histogram = decode_histogram(_expect(g, WireType.NESTED, "HISTOGRAM"))
                shard["histograms"][name] = histogram
        shards.append(shard)
    return shards


STAT_GAUGE = 1  # a COUNTER's KIND: a level now; absent or 0, a total since the start


def decode_histogram(body):
    """(name, {"sum": microseconds, "buckets": [(largest value or None for no bound, count)]})."""
    name, histogram = None, {"sum": 0.0, "buckets": []}
    for h in decode_fields(body):
        if h[0] == Tag.NAME:
            name = _text(_expect(h, WireType.BYTES, "NAME"))
        elif h[0] == Tag.VALUE_F64:
            histogram["sum"] = _expect(h, WireType.F64, "VALUE_F64")
        elif h[0] == Tag.BUCKET:
            bound, count = None, 0
            for b in decode_fields(_expect(h, WireType.NESTED, "BUCKET")):
                if b[0] == Tag.BOUND:
                    bound = _expect(b, WireType.U64, "BOUND")
                elif b[0] == Tag.VALUE_U64:
                    count = _expect(b, WireType.U64, "VALUE_U64")
            histogram["buckets"].append((None if bound in (None, 2**64 - 1) else bound, count))
    if name is None:
        raise ProtocolError("HISTOGRAM without NAME")
    return name, histogram


def histogram_quantile(histogram, q):
    """The q-quantile of a decoded histogram as its bucket's largest value (None: past the last bound, or empty)."""
    total = sum(c for _, c in histogram["buckets"])
    if total == 0:
        return None
    rank, seen = max(1, -(-q * total // 1)), 0
    for bound, count in sorted(histogram["buckets"], key=lambda b: float("inf") if b[0] is None else b[0]):
        seen += count
        if seen >= rank:
            return bound
    return None


def decode_publish(fields):
    result = {"accepted": 0, "rejected": 0, "duplicate": False}
    for f in fields:
        if f[0] == Tag.ACCEPTED:
            result["accepted"] = _expect(f, WireType.U64, "ACCEPTED")
        elif f[0] == Tag.REJECTED:
            result["rejected"] = _expect(f, WireType.U64, "REJECTED")
        elif f[0] == Tag.DUPLICATE:
            result["duplicate"] = _expect(f, WireType.U64, "DUPLICATE") != 0
        elif f[0] == Tag.DURABILITY:
            result["durability"] = _expect(f, WireType.BYTES, "DURABILITY").decode()
    return result


def _view_get_body(view, key, from_ms, to_ms):
    fields = [(Tag.VIEW, WireType.BYTES, view), (Tag.KEY, WireType.BYTES, key)]
    if from_ms is not None:
        fields.append((Tag.FROM_MS, WireType.I64, from_ms))
    if to_ms is not None:
        fields.append((Tag.TO_MS, WireType.I64, to_ms))
    return encode_fields(fields)


# ---------------------------------------------------------------- client

class Client:
    """One blocking connection. Performs HELLO in the constructor. Raises
    SpateError for error statuses, ProtocolError for malformed replies and
    OSError (socket.timeout, ConnectionError) for transport failures."""

    def __init__(self, host="127.0.0.1", port=7070, timeout=30.0, client_name="spate-python", auth_token=None):
        self.server_name = ""
        self.max_frame = DEFAULT_MAX_FRAME
        self._next_id = 1
        self._buf = bytearray()
        self._sock = socket.create_connection((host, port), timeout=timeout)
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = [
                (Tag.VERSION, WireType.U64, PROTOCOL_VERSION),
                (Tag.CLIENT_NAME, WireType.BYTES, client_name),
            ]
            if auth_token is not None:
                hello.append((Tag.AUTH_TOKEN, WireType.BYTES, auth_token))
            fields = self._call(Op.HELLO, encode_fields(hello))
            version = None
            for f in fields:
                if f[0] == Tag.VERSION:
                    version = _expect(f, WireType.U64, "VERSION")
                elif f[0] == Tag.MAX_FRAME:
                    self.max_frame = _expect(f, WireType.U64, "MAX_FRAME")
                elif f[0] == Tag.SERVER_NAME:
                    self.server_name = _text(_expect(f, WireType.BYTES, "SERVER_NAME"))
            if version != PROTOCOL_VERSION:
                raise ProtocolError("HELLO answered without VERSION %d" % PROTOCOL_VERSION)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- operations

    def ping(self, payload=b""):
        """Round-trip time of one PING, in seconds."""
        body = encode_field(Tag.PAYLOAD, WireType.BYTES, payload) if payload else b""
        start = time.perf_counter()
        self._call(Op.PING, body)
        return time.perf_counter() - start

    def stats(self):
        """[{"shard": id, "counters": {name: value}, "gauges": {names of levels, not totals},
        "histograms": {name: {"sum", "buckets"}}}]; the set of counters is open."""
        return decode_stats(self._call(Op.STATS))

    def view_get(self, view, key, from_ms=None, to_ms=None):
        """Rows of the windows of `key` that overlap [from_ms, to_ms), oldest first."""
        return decode_rows(self._call(Op.VIEW_GET, _view_get_body(view, key, from_ms, to_ms)))

    def view_get_many(self, view, keys, from_ms=None, to_ms=None, window=PIPELINE_WINDOW):
        """{key: rows} for many keys, with up to `window` requests in flight."""
        keys = list(keys)
        result = {}
        in_flight = {}
        first_error = None
        next_key = 0
        while next_key < len(keys) or in_flight:
            if first_error is None and next_key < len(keys) and len(in_flight) <= window // 2:
                frames = []
                while next_key < len(keys) and len(in_flight) < window:
                    rid = self._take_id()
                    frames.append(self._frame(Op.VIEW_GET, rid,
                                              _view_get_body(view, keys[next_key], from_ms, to_ms)))
                    in_flight[rid] = keys[next_key]
                    next_key += 1
                self._send_all(b"".join(frames))
                continue
            if not in_flight:
                break
            op, status, rid, body = self._receive()
            key = in_flight.pop(rid, None)
            if key is None:
                self._protocol_error("answer to request %d, which is not in flight" % rid, status, body)
            fields = decode_fields(body)
            if status != Status.OK:
                if first_error is None:
                    first_error = SpateError(status, STATUS_NAMES.get(status, "UNKNOWN_STATUS"),
                                             _error_text(fields))
                continue
            result[key] = decode_rows(fields)
        if first_error is not None:
            raise first_error
        return result

    def view_top(self, view, window_start=None, k=10, by="count"):
        """Top k keys of one window (the newest when window_start is None), as rows."""
        fields = [(Tag.VIEW, WireType.BYTES, view)]
        if window_start is not None:
            fields.append((Tag.WINDOW_START, WireType.I64, window_start))
        fields.append((Tag.K, WireType.U64, k))
        fields.append((Tag.BY, WireType.BYTES, by))
        return decode_rows(self._call(Op.VIEW_TOP, encode_fields(fields)))

    def publish(self, producer_id, sequence, ndjson_bytes):
        """{"accepted": n, "rejected": n, "duplicate": bool, "durability": "none" | "group" | "sync"}, once
        the events are queryable and as durable as "durability" says (absent on a duplicate)."""
        return decode_publish(self._call(Op.PUBLISH, encode_fields([
            (Tag.PRODUCER_ID, WireType.U64, producer_id),
            (Tag.SEQUENCE, WireType.U64, sequence),
            (Tag.PAYLOAD, WireType.BYTES, ndjson_bytes),
        ])))

    # -- transport

    def _take_id(self):
        rid = self._next_id
        self._next_id = rid + 1 if rid < 0xFFFFFFFF else 1   # id 0 is the server's "no request"
        return rid

    def _frame(self, op, rid, body):
        if len(body) + FRAME_HEADER_BYTES - 4 > self.max_frame:
            raise SpateError(Status.FRAME_TOO_LARGE, "FRAME_TOO_LARGE",
                             "request of %d bytes exceeds the server's limit of %d bytes"
                             % (len(body) + FRAME_HEADER_BYTES - 4, self.max_frame))
        return encode_frame(op, rid, body)

    def _send_all(self, data):
        if self._sock is None:
            raise ConnectionError("not connected")
        try:
            self._sock.sendall(data)
        except BaseException:
            self.close()
            raise

    def _receive(self):
        """The next frame: (op, status, request_id, body)."""
        if self._sock is None:
            raise ConnectionError("not connected")
        while True:
            try:
                parsed = parse_frame(self._buf)
            except ProtocolError:
                self.close()
                raise
            if parsed is not None:
                op, status, rid, body, size = parsed
                del self._buf[:size]
                return op, status, rid, body
            try:
                chunk = self._sock.recv(1 << 16)
            except BaseException:
                self.close()
                raise
            if not chunk:
                self.close()
                raise ConnectionError("connection closed by the server")
            self._buf += chunk

    def _protocol_error(self, what, status=Status.OK, body=b""):
        self.close()
        if status != Status.OK:
            try:
                text = _error_text(decode_fields(body))
            except ProtocolError:
                text = "(malformed)"
            raise SpateError(status, STATUS_NAMES.get(status, "UNKNOWN_STATUS"), text)
        raise ProtocolError(what)

    def _call(self, op, body=b""):
        rid = self._take_id()
        self._send_all(self._frame(op, rid, body))
        got_op, status, got_rid, reply = self._receive()
        if got_rid != rid:
            # Request id 0 carries an error about the connection itself.
            self._protocol_error("answer to request %d while waiting for %d" % (got_rid, rid),
                                 status if got_rid == 0 else Status.OK, reply)
        fields = decode_fields(reply)
        if status != Status.OK:
            if status in _CLOSING_STATUSES:
                self.close()
            raise SpateError(status, STATUS_NAMES.get(status, "UNKNOWN_STATUS"), _error_text(fields))
        if got_op != op:
            self._protocol_error("op %d answered with op %d" % (op, got_op))
        return fields


# ---------------------------------------------------------------- command line

def _parse_addr(text):
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 7070
    return host.strip("[]"), int(port)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Query a running spated (JSON output).")
    parser.add_argument("--addr", default="127.0.0.1:7070", help="HOST:PORT (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ping")
    sub.add_parser("stats")
    view = sub.add_parser("view")
    view.add_argument("view")
    view.add_argument("key")
    view.add_argument("--from", dest="from_ms", type=int)
    view.add_argument("--to", dest="to_ms", type=int)
    top = sub.add_parser("top")
    top.add_argument("view")
    top.add_argument("--window", type=int)
    top.add_argument("-k", type=int, default=10)
    top.add_argument("--by", default="count")
    args = parser.parse_args(argv)
    try:
        host, port = _parse_addr(args.addr)
    except ValueError:
        parser.error("bad --addr %r" % args.addr)
    try:
        with Client(host, port, timeout=args.timeout) as c:
            if args.command == "ping":
                out = {"server": c.server_name, "rtt_ms": round(c.ping() * 1000, 3)}
            elif args.command == "stats":
                out = c.stats()
            elif args.command == "view":
                out = c.view_get(args.view, args.key, args.from_ms, args.to_ms)
            else:
                out = c.view_top(args.view, args.window, args.k, args.by)
    except SpateError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except (OSError, ProtocolError) as e:
        print("error: %s: %s" % (args.addr, e), file=sys.stderr)
        return 3
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
