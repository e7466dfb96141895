"""Data-driven pipeline cases: every folder beside this file is one case.

    NAME/config.toml    the pipeline (views, lateness, retention); the runner
                        sets the sources and ports itself
    NAME/input-*.ndjson the inputs, one file per input (a connection, a UDP
                        sender, a file source, a PUBLISH producer); a line
                        "#pause MS" pauses that input's sender and is not sent;
                        a line "#check STEP" is a query mid-stream: each
                        input's sender stops there until every input has
                        reached its "#check STEP" (or its end), the answers
                        must then be NAME/expected-STEP.json (the same form
                        as expected.json), and the inputs go on. A line
                        "#restart kill" or "#restart term" is a restart
                        mid-stream: the inputs stop there the same way, the
                        daemon is stopped (SIGKILL once the log is durable,
                        or SIGTERM) and started again on its data with the
                        same source, and the inputs go on, reconnected. The
                        file and pcap sources read their input whole: they
                        skip the mid-stream checks and restarts
    NAME/expected.json  the exact answers, written by hand:
                        {"counters": {NAME: VALUE}, totals over shards;
                                   (with restarts mid-stream: what the daemons
                                   counted live, each restarted one from
                                   after its replay, summed; gauges are not
                                   summed, so name counters only);
                         "views": {VIEW: {KEY: [[WINDOW_START, {AGG: VALUE}], ...]}},
                                   every window of each listed key;
                         "windows": N, how many windows the daemon holds;
                         "top": {VIEW: {"window_start": W, "keys": [...]}},
                                   VIEW_TOP with its default window}
    NAME/case.json      optional: {"sources": [...], "shards": [...],
                        "restarts": [...]}; "tcp-split" among the sources
                        sends each input over TCP in two writes, split at
                        each of SPLITS byte offsets spread over it (mid-line
                        ones included), one run each: how the socket happens
                        to be read must change no answer. By default every source kind
                        (file, tcp, udp, publish, pcap: the UDP datagrams in a
                        capture read at its recorded pace) with 1, 2 and 3
                        shards. Each restart ("term": SIGTERM, a clean stop;
                        "kill": SIGKILL once the log is durable, a crash)
                        starts the daemon again on its data with no source,
                        in turn, and the views, window count and top must be
                        the expected ones again: a restart never changes an
                        answer. "views" is a clean stop and a start with a
                        copy of the first view added (NAME_again): no
                        checkpoint fits, the whole log is replayed, and the
                        copy answers as its original. After a replay of the
                        whole log every counter it counts again (each
                        view's late rows, dedup's, events ahead of the
                        clock) is what the live run counted. {"config_error": [TEXT, ...]}: the config
                        is refused instead, by --check-config and at start
                        (exit 78), with each TEXT in what it says; such a
                        case has no inputs and no expected.json

Each case runs through every source kind it names with every shard count and
must give the same answers. Adding a case needs no code.

    python3 run_cases.py [CASE ...]
    (SPATE_BUILD_DIR names the build; PYTHONPATH holds clients/python and tests/e2e)
"""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib

from spate_e2e import SPATED, Daemon

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_SOURCES = ["file", "tcp", "udp", "publish", "pcap"]
SPLITS = 12  # offsets a "tcp-split" source sends its inputs split at


def expand_sources(sources, inputs):
    """Each "tcp-split" as "tcp-split:OFFSET" for SPLITS offsets into the longest input."""
    size = max((sum(len(v) for k, v in items if k == "line") for items in inputs), default=0)
    out = []
    for source in sources:
        if source != "tcp-split":
            out.append(source)
            continue
        out += ["tcp-split:%d" % (1 + (size - 2) * k // (SPLITS - 1)) for k in range(SPLITS)]
    return out
IDLE_TIMEOUT_MS = 200


def read_input(path):
    """[(kind, value)]: ("line", bytes) or ("pause", seconds)."""
    items = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if line.startswith(b"#pause "):
                items.append(("pause", int(line.split()[1]) / 1000.0))
            elif line.startswith(b"#check "):
                items.append(("check", line.split()[1].decode()))
            elif line.startswith(b"#restart "):
                how = line.split()[1].decode()
                if how not in ("kill", "term"):
                    raise ValueError("%s: #restart kill or #restart term, not %r" % (path, how))
                items.append(("restart", how))
            elif line:
                items.append(("line", line + b"\n"))
    return items


BARRIERS = ("check", "restart")  # steps every input stops at until all have reached them


def segments(items):
    """The lines between pauses and steps, as ("send", bytes, pause seconds
    after them), and the steps as ("check", STEP, 0) or ("restart", HOW, 0)."""
    out, cur = [], b""
    for kind, value in items:
        if kind == "line":
            cur += value
            continue
        out.append(("send", cur, value if kind == "pause" else 0))
        cur = b""
        if kind in BARRIERS:
            out.append((kind, value, 0))
    out.append(("send", cur, 0))
    return [e for e in out if e[0] in BARRIERS or e[1] or e[2]]


def udp_frame(payload):
    """Ethernet, IPv4 (its checksum filled in) and UDP (no checksum) around payload."""
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), 0, 0x4000, 64, 17, 0,
                               bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    total = sum(struct.unpack(">10H", ip))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    ip[10:12] = struct.pack(">H", ~total & 0xFFFF)
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + bytes(ip) + struct.pack(">HHHH", 40000, 7071, 8 + len(payload), 0) + payload


def write_capture(path, inputs):
    """The inputs as the UDP datagrams feed() sends (a line each, round-robin,
    each input's pauses kept), stamped as if captured then."""
    queues = [list(items) for items in inputs]
    resume = [0.0] * len(queues)
    now, records = 0.0, []
    while any(queues):
        ready = [i for i, q in enumerate(queues) if q and resume[i] <= now]
        if not ready:
            now = min(resume[i] for i, q in enumerate(queues) if q)
            continue
        for i in ready:
            kind, value = queues[i].pop(0)
            if kind == "pause":
                resume[i] = now + value
            elif kind == "line":
                records.append((now, udp_frame(value)))
        now += 0.0001
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, frame in records:
            f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(frame), len(frame)) + frame)


def case_config(case_dir):
    config_text = open(os.path.join(case_dir, "config.toml")).read()
    if "idle_timeout_ms" not in config_text:
        config_text = "idle_timeout_ms = %d\n" % IDLE_TIMEOUT_MS + config_text
    return config_text


def start(case_dir, source, shards, inputs, tmp):
    """spated on free ports with the case's config and only the source under
    test (file inputs are written without their pause lines)."""
    config_text = case_config(case_dir)
    extra = []
    if source == "file":
        for i, items in enumerate(inputs):
            path = os.path.join(tmp, "input-%d.ndjson" % i)
            with open(path, "wb") as f:
                f.write(b"".join(v for k, v in items if k == "line"))
            extra += ["--ingest", path]
    if source == "pcap":  # at the recorded pace, so that pauses are silences as on the wire
        path = os.path.join(tmp, "inputs.pcap")
        write_capture(path, inputs)
        config_text += '\n[[source]]\ntype = "pcap"\npath = "%s"\npace = "recorded"\n' % path
    tcp = source == "tcp" or source.startswith("tcp-split")
    daemon = Daemon(shards=shards, config=config_text, extra_args=extra, tcp=tcp, udp=source == "udp",
                    idle_first=source not in ("file", "pcap"), data_dir=os.path.join(tmp, "data"))
    daemon.views = tomllib.loads(config_text).get("view", [])
    return daemon


def stop_for_restart(daemon, how):
    """Stops the daemon as a restart does (how: "term", or "kill" once every
    accepted event is in the log and synced); returns (the events it logged,
    its counters just before, failures)."""
    failures = []
    # Every event accepted live is in a sealed block (blocks seal every
    # commit_interval_ms, 5 ms: the views may hold an event before its
    # block is sealed and counted) and, for a kill, written.
    c = wait(daemon, lambda c: c["storage.events"] == c["events_in"] - c.get("replay.events_in", 0)
             and (how != "kill" or c["storage.bytes_in_flight"] == 0), "log written")
    if how == "kill":
        time.sleep(0.2)  # and synced by the group commit
        c = daemon.counters()
        daemon.stop(sig=signal.SIGKILL)
    else:
        c = daemon.counters()
        code = daemon.stop()
        if code != 0:
            failures.append("spated exited %d at SIGTERM" % code)
    return c["storage.events"], c, failures


def check_replayed(again, how, logged):
    """A crash replays every logged event (no checkpoint yet: the cases run
    for less than its interval); a clean stop's checkpoint replays none."""
    replayed = again.counters()["replay.events_in"]
    if replayed != (logged if how == "kill" else 0):
        return ["after %s: %d events replayed of %d logged" % (how, replayed, logged)]
    return []


# What a replay of the whole log counts again: each view's late rows, the
# duplicates and what dedup let through unchecked, events dated ahead of the
# clock, the rows some view took (a copy of a view changes none of these).
RECOUNTED = ("dedup.duplicates", "dedup.beyond_horizon", "events_ahead_of_clock", "rows_applied")


def with_view_copy(config_text):
    """The config with a copy of its first view, named NAME_again (a changed
    view set: no checkpoint fits it); (text, NAME), or (text, None) when the
    case has no view of its own."""
    views = tomllib.loads(config_text).get("view", [])
    if not views:
        return config_text, None
    copy = dict(views[0], name=views[0]["name"] + "_again")
    return config_text + "\n[[view]]\n" + "".join("%s = %s\n" % (k, json.dumps(v)) for k, v in copy.items()), \
        views[0]["name"]


def restart(daemon, case_dir, shards, tmp, how, live):
    """Stops the daemon (how: "term", "kill", or "views": a clean stop and a
    start with a copy of the first view added) and starts it again on its
    data, with no source; returns (the new daemon, the copied view's name or
    None, failures). After a replay of the whole log every counter it
    recounts is what the live run (`live`, counted by every daemon) said."""
    logged, _, failures = stop_for_restart(daemon, "term" if how == "views" else how)
    config_text, copied = with_view_copy(case_config(case_dir)) if how == "views" else (case_config(case_dir), None)
    again = Daemon(shards=shards, config=config_text, tcp=False, udp=False, idle_first=False,
                   data_dir=os.path.join(tmp, "data"))
    again.views = daemon.views
    # Ready once every shard has read its log; the rows it routed may still be on their way.
    groups = len({v["key"] for v in daemon.views}) or 2
    c = wait(again, lambda c: c["rows_handled"] == groups * c["replay.events_in"] and c["ring_depth"] == 0,
             "every replayed row applied")
    if how == "views":
        if c["replay.events_in"] != live["events_in"]:
            failures.append("after views: %d events replayed of %d" % (c["replay.events_in"], live["events_in"]))
    else:
        failures += check_replayed(again, how, logged)
    if c["replay.events_in"] == live["events_in"]:  # the whole log: recounted
        want = {k: v for k, v in live.items() if k.startswith("late.") or k in RECOUNTED}
        if copied:
            want["late.%s_again" % copied] = live["late." + copied]
        failures += ["after %s: counter %s: live %r, replayed %r" % (how, k, v, c.get(k))
                     for k, v in sorted(want.items()) if c.get(k) != v]
    return again, copied, failures


def wait(daemon, predicate, what, timeout=20, settle=None):
    """The counters once predicate holds. With settle, a timeout returns the
    last counters instead of raising, for the caller to report what differs."""
    deadline = time.time() + timeout
    while True:
        c = daemon.counters()
        if predicate(c):
            return c
        if time.time() > deadline:
            if settle:
                return c
            raise AssertionError("%s: not reached in %d s; counters %r" % (what, timeout, c))
        time.sleep(0.02)


def connect(daemon, source, n):
    """n senders to the daemon's TCP or UDP source: (their sockets, send(i, data))."""
    if source == "tcp":
        conns = [socket.create_connection(("127.0.0.1", daemon.tcp_port)) for _ in range(n)]
        return conns, lambda i, data: conns[i].sendall(data)
    conns = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    return conns, lambda i, data: conns[i].sendto(data, ("127.0.0.1", daemon.udp_port))


def feed(run, source, inputs, at_check, at_restart):
    """Sends every input at once, round-robin a line (UDP: a datagram, PUBLISH:
    the lines between two pauses) at a time, honouring each input's pauses;
    once every input has stopped at its "#check STEP" or ended,
    at_check(STEP); at its "#restart HOW", at_restart(HOW, lines sent so far),
    and the senders connect to run.daemon again."""
    if source in ("file", "pcap"):
        return
    if source.startswith("tcp-split:"):  # each input in two writes, the first ending at the offset
        offset = int(source.split(":")[1])
        conns = [socket.create_connection(("127.0.0.1", run.daemon.tcp_port)) for _ in inputs]
        data = [b"".join(v for k, v in items if k == "line") for items in inputs]
        for c, d in zip(conns, data):
            c.sendall(d[:offset])
        time.sleep(0.05)  # read apart
        for c, d in zip(conns, data):
            c.sendall(d[offset:])
            c.close()
        return
    if source == "publish":
        conns, sequences = [], [0] * len(inputs)
        queues = [segments(items) for items in inputs]

        def send(i, data):  # to whichever daemon runs now; a producer's sequence goes on
            sequences[i] += 1
            reply = run.daemon.client.publish(1000 + i, sequences[i], data)
            if reply["duplicate"]:
                raise AssertionError("publish %d/%d taken for a duplicate" % (i, sequences[i]))
    else:
        conns, send = connect(run.daemon, source, len(inputs))
        queues = [[("send", v, 0) if k == "line" else ("send", b"", v) if k == "pause" else (k, v, 0)
                   for k, v in items] for items in inputs]
    resume = [0.0] * len(inputs)
    sent = 0
    while any(queues):
        progressed = False
        for i, q in enumerate(queues):
            if not q or q[0][0] in BARRIERS or time.time() < resume[i]:
                continue
            _, data, pause = q.pop(0)
            if data:
                send(i, data)
                sent += data.count(b"\n")
            resume[i] = time.time() + pause
            progressed = True
        if all(not q or q[0][0] in BARRIERS for q in queues) and any(queues):
            for kind, value in sorted({q[0][:2] for q in queues if q}):
                if kind == "check":
                    at_check(value)
                    continue
                for c in conns:
                    c.close()
                at_restart(value, sent)
                if source != "publish":
                    conns, send = connect(run.daemon, source, len(inputs))
            for q in queues:
                if q:
                    q.pop(0)
            progressed = True
        if not progressed:
            time.sleep(0.005)
    for c in conns:
        c.close()


class Run:
    """The daemon of one source and shard count, and what the daemons before
    it counted: counters are what every daemon counted live, each restarted
    one from after its replay (its counters then are its baseline)."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.carried = {}
        self.baseline = {}

    def counters(self):
        c = self.daemon.counters()
        return {k: self.carried.get(k, 0) + v - self.baseline.get(k, 0) for k, v in c.items()}

    def restarted(self, before, again):
        """The daemon was replaced: `before` were its last counters."""
        for k, v in before.items():
            self.carried[k] = self.carried.get(k, 0) + v - self.baseline.get(k, 0)
        self.daemon = again
        self.baseline = again.counters()


def check(run, expected, groups):
    failures = []
    want_events = expected["counters"]["events_in"]
    c = wait(run, lambda c: c["events_in"] == want_events and c["rows_handled"] == groups * want_events
                 and run.daemon.counters()["ring_depth"] == 0, "every event applied")
    # A rejected or late line may follow the last good one: every expected
    # counter gets its time to arrive, and what still differs is reported.
    c = wait(run, lambda c: all(c.get(k) == v for k, v in expected["counters"].items()), "counters",
             timeout=5, settle=True)
    for name, value in expected["counters"].items():
        if c.get(name) != value:
            failures.append("counter %s: want %r, have %r" % (name, value, c.get(name)))
    return failures + check_answers(run.daemon, expected)


def check_answers(daemon, expected, copied=None):
    """The views, window count and top against the expected ones; a copy of
    a view (`copied`, added at a restart) answers as it does."""
    failures = []
    views = dict(expected.get("views", {}))
    tops = dict(expected.get("top", {}))
    if copied:
        views.update({"%s_again" % v: keys for v, keys in views.items() if v == copied})
        tops.update({"%s_again" % v: top for v, top in tops.items() if v == copied})
    for view, keys in views.items():
        got = daemon.client.view_get_many(view, list(keys))
        for key, rows in keys.items():
            have = [(r["window_start"], {a: r[a] for a in want}) for (_, want), r in zip(rows, got[key])]
            want = [(w, dict(aggs)) for w, aggs in rows]
            if len(got[key]) != len(rows) or have != want:
                failures.append("view %s key %s:\n      want %r\n      have %r" % (
                    view, key, want, [(r["window_start"], {k: v for k, v in r.items() if k not in ("key", "window_end", "closed", "window_start")}) for r in got[key]]))
    if "windows" in expected and not copied:
        try:
            wait(daemon, lambda c: c["windows"] == expected["windows"], "window count", timeout=3)
        except AssertionError as e:
            failures.append(str(e))
    for view, top in tops.items():
        rows = daemon.client.view_top(view, None, k=len(top["keys"]) + 1)
        have = {"window_start": rows[0]["window_start"] if rows else None, "keys": [r["key"] for r in rows]}
        if have != top:
            failures.append("top %s: want %r, have %r" % (view, top, have))
    return failures


def check_refused(case_dir, texts):
    """The case's config refused by --check-config and by a start, each
    saying every one of texts."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="spate-case-") as tmp:
        path = os.path.join(tmp, "config.toml")
        with open(path, "w") as f:
            f.write(open(os.path.join(case_dir, "config.toml")).read())
        for args in (["--check-config", path],
                     ["--config", path, "--data-dir", os.path.join(tmp, "data"), "--tcp-addr", "off",
                      "--udp-addr", "off", "--query-addr", "127.0.0.1:0", "--metrics-addr", "off"]):
            r = subprocess.run([SPATED, *args], capture_output=True, text=True, timeout=60)
            if r.returncode != 78:
                failures.append("%s: exit %d, want 78; stderr: %s" % (args[0], r.returncode, r.stderr[-500:]))
            failures += ["%s: %r not said; stderr: %s" % (args[0], t, r.stderr[-500:]) for t in texts
                         if t not in r.stderr]
    return failures


def run_case(name):
    case_dir = os.path.join(HERE, name)
    meta = {}
    if os.path.exists(os.path.join(case_dir, "case.json")):
        meta = json.load(open(os.path.join(case_dir, "case.json")))
    if "config_error" in meta:
        failures = check_refused(case_dir, meta["config_error"])
        print("%-4s %s refused%s" % ("ok" if not failures else "FAIL", name, "".join("\n    " + f for f in failures)),
              flush=True)
        return [("config", 0, failures)]
    expected = json.load(open(os.path.join(case_dir, "expected.json")))
    inputs = [read_input(os.path.join(case_dir, f))
              for f in sorted(os.listdir(case_dir)) if f.startswith("input") and f.endswith(".ndjson")]
    results = []
    for source in expand_sources(meta.get("sources", ALL_SOURCES), inputs):
        for shards in meta.get("shards", [1, 2, 3]):
            with tempfile.TemporaryDirectory(prefix="spate-case-") as tmp:
                run = Run(start(case_dir, source, shards, inputs, tmp))
                daemon = run.daemon
                try:
                    groups = len({v["key"] for v in daemon.views}) or 2
                    failures = []

                    def at_check(step):
                        want = json.load(open(os.path.join(case_dir, "expected-%s.json" % step)))
                        failures.extend("at #check %s: %s" % (step, f) for f in check(run, want, groups))

                    def at_restart(how, sent):
                        nonlocal daemon
                        # Every line sent so far taken and applied: the counters carried over are whole.
                        wait(run, lambda c: c["events_in"] + c["errors"] == sent
                             and c["rows_handled"] == groups * c["events_in"],
                             "every event applied before #restart %s" % how)
                        stopping, daemon = run.daemon, None  # none running if the restart fails
                        logged, before, failed = stop_for_restart(stopping, how)
                        again = start(case_dir, source, shards, inputs, tmp)
                        daemon = again
                        run.restarted(before, again)
                        failures.extend("at #restart %s: %s" % (how, f)
                                        for f in failed + check_replayed(again, how, logged))

                    feed(run, source, inputs, at_check, at_restart)
                    failures += check(run, expected, groups)
                    live = run.counters()
                    for how in meta.get("restarts", []) if not failures else []:
                        stopping, daemon = daemon, None  # none running if the restart fails
                        daemon, copied, failed = restart(stopping, case_dir, shards, tmp, how, live)
                        failures += failed + ["after %s: %s" % (how, f) for f in check_answers(daemon, expected, copied)]
                except Exception as e:  # a timeout or a protocol error is this run's failure
                    failures = ["%s: %s" % (type(e).__name__, e)]
                if daemon is not None:
                    log = daemon.read_log()
                    code = daemon.stop()
                    if code != 0:
                        failures.append("spated exited %d; log: %s" % (code, log[-2000:]))
            results.append((source, shards, failures))
            print("%-4s %s %-8s %d shard%s%s" % ("ok" if not failures else "FAIL", name, source, shards,
                  "" if shards == 1 else "s", "".join("\n    " + f for f in failures)), flush=True)
    return results


def main(argv):
    names = argv or sorted(d for d in os.listdir(HERE) if os.path.isdir(os.path.join(HERE, d)) and not d.startswith("_"))
    passed = failed = 0
    for name in names:
        for _, _, failures in run_case(name):
            if failures:
                failed += 1
            else:
                passed += 1
    print("cases: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
