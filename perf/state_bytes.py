#!/usr/bin/env python3
"""Bytes of view state per key at rest, and the checkpoint of that state.

For each key count N: writes N events, one per distinct user (u0..uN-1, 20
types, all inside one 60 s window), feeds them to spated with --ingest (the
built-in views per_user_1m and per_type_10s, one shard, dedup on), and at
rest reads STATS and /proc:

  1. state_bytes and, per view, keys, windows and bytes (state_bytes.<view>
     counts the view's windows; the key tables are the rest of state_bytes),
     the bytes per key of each; dedup.bytes per dedup.ids; the process's
     resident and jemalloc-allocated bytes against an empty daemon;
  2. the clean stop (SIGTERM: drain, then the checkpoint is written and
     fsynced) and its file's size; the restart from it (launch to
     "recovery: checkpoint loaded", and to the ready line); then one
     periodic checkpoint of the loaded state (checkpoint.* in STATS).

The restart reads the checkpoint from the page cache, as it was just
written. Prints one JSON line per figure, then a table. Everything runs
in a temporary directory (deleted unless --keep), on 127.0.0.1 with ports
spated picks, each wait bounded.

    perf/state_bytes.py [--build build] [--keys 1000000,10000000] [--keep]
"""

import argparse
import calendar
import ctypes
import glob
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
import spate_client  # noqa: E402

VIEWS = ("per_user_1m", "per_type_10s")
TYPES = 20
DEDUP_MAX_BYTES = 402653184  # [dedup] max_bytes, the default: the table grows by doubling up to it
T0_MS = 1764000000000  # a multiple of 60000: every event falls in one per_user_1m window
LINE = '{"id":"e%d","ts":%d,"user":"u%d","type":"t%d","amount":1.5}\n'
START_TIMEOUT_S = 300   # launch to the ready line (a checkpoint load included)
INGEST_TIMEOUT_S = 600  # the whole file applied
STOP_TIMEOUT_S = 300    # SIGTERM to exit (the checkpoint written)


def config_text(checkpoint_interval_ms):
    return ("shards = 1\n"
            "[query]\nlisten = \"127.0.0.1:0\"\n"
            "[metrics]\nlisten = \"off\"\n"
            "[log]\nformat = \"json\"\n"
            "[storage]\ncheckpoint_interval_ms = %d\n" % checkpoint_interval_ms)


def write_events(path, n):
    """One event per key, in event-time order, spread over [T0_MS, T0_MS + 60 s)."""
    chunk = 200000
    with open(path, "w") as f:
        for lo in range(0, n, chunk):
            f.write("".join([LINE % (i, T0_MS + i * 60000 // n, i, i % TYPES) for i in range(lo, min(n, lo + chunk))]))


def mean_key_bytes(n):
    """Mean length of u0..u(n-1)."""
    total, digits, lo = 0, 1, 0
    while lo < n:
        hi = min(n, 10 ** digits)
        total += (hi - lo) * (1 + digits)
        lo, digits = hi, digits + 1
    return total / n


def proc_status(pid):
    """VmRSS, RssAnon, RssFile, VmHWM in bytes."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[name] = int(rest.split()[0]) * 1024
    return out


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def die_with_parent():
    # PR_SET_PDEATHSIG: the daemon gets SIGKILL if this script dies without its cleanup.
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


class Daemon:
    """One spated on 127.0.0.1 with a port of its choosing; stderr (JSON log lines) to a file."""

    def __init__(self, build, config, data_dir, log_path, ingest=None, rss_limit=0):
        self.log_path = log_path
        self.rss_limit = rss_limit
        cmd = [os.path.join(build, "src", "spated"), "--config", config, "--data-dir", data_dir,
               "--tcp-addr", "off", "--udp-addr", "off"]
        if ingest:
            cmd += ["--ingest", ingest]
        self.log = open(log_path, "ab")
        self.launched = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        line = self._ready_line(START_TIMEOUT_S)
        self.ready_s = time.time() - self.launched
        port = [w for w in line.split() if w.startswith("query=")]
        if not line.startswith("spated ready") or not port:
            raise RuntimeError("spated did not start: %r; log %s" % (line, log_path))
        self.port = int(port[0].rpartition(":")[2])
        self.client = spate_client.Client("127.0.0.1", self.port, timeout=60)

    def _ready_line(self, timeout):
        fd, buf, deadline = self.proc.stdout.fileno(), b"", time.time() + timeout
        while b"\n" not in buf:
            left = deadline - time.time()
            if left <= 0:
                raise RuntimeError("no ready line in %d s" % timeout)
            if select.select([fd], [], [], min(left, 1.0))[0]:
                data = os.read(fd, 4096)
                if not data:
                    raise RuntimeError("spated exited (%s) before it was ready; log %s"
                                       % (self.proc.poll(), self.log_path))
                buf += data
        return buf.split(b"\n", 1)[0].decode()

    def stats(self):
        """Counters summed over shards (one shard here)."""
        total = {}
        for shard in self.client.stats():
            for k, v in shard["counters"].items():
                total[k] = total.get(k, 0) + v
        return total

    def status(self):
        s = proc_status(self.proc.pid)
        if self.rss_limit and s["VmRSS"] > self.rss_limit:
            raise RuntimeError("spated's resident memory %.1f GiB passed the bound %.1f GiB"
                               % (s["VmRSS"] / 2 ** 30, self.rss_limit / 2 ** 30))
        return s

    def wait_for(self, what, test, timeout, every=0.2):
        deadline = time.time() + timeout
        while True:
            s = self.stats()
            self.status()
            if test(s):
                return s
            if time.time() > deadline:
                raise RuntimeError("%s: not reached in %d s" % (what, timeout))
            time.sleep(every)

    def stop(self):
        """SIGTERM; seconds until the process is gone."""
        self.client.close()
        t = time.time()
        self.proc.terminate()
        self.proc.wait(STOP_TIMEOUT_S)
        return time.time() - t

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass
        self.kill()
        self.log.close()

    def log_lines(self):
        out = []
        with open(self.log_path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


def log_ms(lines, msg):
    """Wall-clock ms of the last log line with this msg."""
    for line in reversed(lines):
        if line.get("msg") == msg:
            t = line["ts"]  # 2026-11-27T22:01:02.123Z
            return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(t[20:23])
    return None


def settle(daemon):
    """Reads STATS until state_bytes (measured every 100 ms) and dedup.bytes hold still."""
    last = None
    for _ in range(100):
        time.sleep(0.3)
        s = daemon.stats()
        now = (s["state_bytes"], s["dedup.bytes"], s["dedup.ids"], s["windows"])
        if now == last:
            return s
        last = now
    raise RuntimeError("state_bytes did not settle")


def state_record(n, s, empty):
    views = {}
    view_bytes = 0
    for v in VIEWS:
        keys, windows, b = s["keys.%s" % v], s["windows.%s" % v], s["state_bytes.%s" % v]
        view_bytes += b
        views[v] = {"keys": keys, "windows": windows, "bytes": b,
                    "bytes_per_key": round(b / keys, 1), "bytes_per_window": round(b / windows, 1)}
    key_tables = s["state_bytes"] - view_bytes
    users = s["keys.per_user_1m"]
    return {
        "key_tables_bytes": key_tables,
        "key_tables_bytes_per_user": round(key_tables / users, 1),
        "views": views,
        "state_bytes": s["state_bytes"],
        "state_bytes_per_user": round(s["state_bytes"] / users, 1),
        "dedup_ids": s["dedup.ids"],
        "dedup_bytes": s["dedup.bytes"],
        "dedup_bytes_per_id": round(s["dedup.bytes"] / s["dedup.ids"], 1),
        "dedup_at_max_bytes": s["dedup.bytes"] == DEDUP_MAX_BYTES,
        "dedup_evicted": s["dedup.evicted"],
        "dedup_horizon_covered_ms": s["dedup.horizon_covered_ms"],
        "allocated_bytes": s["memory.allocated_bytes"],
        "allocated_bytes_per_key": round((s["memory.allocated_bytes"] - empty["memory.allocated_bytes"]) / n, 1),
    }


def ckpt_file(data_dir):
    files = sorted(glob.glob(os.path.join(data_dir, "shard-0", "checkpoints", "*.ckpt")))
    return files[-1] if files else None


def seg_bytes(data_dir):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(data_dir, "shard-0", "*.seg")))


def measure(build, tmp, n, empty, empty_status, keep):
    out = {}
    work = os.path.join(tmp, "keys-%d" % n)
    os.makedirs(work)
    events, data = os.path.join(work, "events.ndjson"), os.path.join(work, "data")
    t = time.time()
    write_events(events, n)
    gen_s = time.time() - t
    config_a, config_b = os.path.join(work, "ingest.toml"), os.path.join(work, "restart.toml")
    with open(config_a, "w") as f:
        f.write(config_text(3600000))  # no periodic checkpoint while the file goes in; one at the stop
    with open(config_b, "w") as f:
        f.write(config_text(3000))  # one periodic checkpoint 3 s after the restart is ready
    rss_limit = min(int(mem_available() * 0.8), n * 1000 + (1 << 30))

    # 1. Ingest, then at rest.
    d = Daemon(build, config_a, data, os.path.join(work, "ingest.log"), ingest=events, rss_limit=rss_limit)
    try:
        s = d.wait_for("%d events applied" % n, lambda s: s["file.events_in"] + s["errors"] >= n
                       and s["rows_handled"] >= 2 * s["file.events_in"] and s["storage.bytes_in_flight"] == 0,
                       INGEST_TIMEOUT_S)
        ingest_s = time.time() - d.launched
        if s["errors"] or s["late_events"] or s["key_limit.per_user_1m"] or s["dedup.duplicates"]:
            raise RuntimeError("events lost: errors %d, late %d, key_limit %d, duplicates %d" % (
                s["errors"], s["late_events"], s["key_limit.per_user_1m"], s["dedup.duplicates"]))
        s = settle(d)
        st = d.status()
        if s["keys.per_user_1m"] != n or s["dedup.ids"] != n:
            raise RuntimeError("expected %d keys and ids, STATS holds %d keys, %d ids" % (
                n, s["keys.per_user_1m"], s["dedup.ids"]))
        rec = {"figure": "state_at_rest", "keys": n, "shards": 1, "dedup": True,
               "key_bytes_mean": round(mean_key_bytes(n), 2), "generate_s": round(gen_s, 2),
               "launch_to_applied_s": round(ingest_s, 2)}
        rec.update(state_record(n, s, empty))
        rec.update({"rss_bytes": st["VmRSS"], "rss_anon_bytes": st["RssAnon"], "rss_peak_bytes": st["VmHWM"],
                    "rss_anon_bytes_per_key": round((st["RssAnon"] - empty_status["RssAnon"]) / n, 1)})
        print(json.dumps(rec), flush=True)
        out["state"] = rec

        # 2. The clean stop writes the checkpoint.
        stop_s = d.stop()
        lines = d.log_lines()
    finally:
        d.close()
    if not keep:
        os.remove(events)
    drain_ms, stopped_ms = log_ms(lines, "signal received: draining"), log_ms(lines, "stopped")
    path = ckpt_file(data)
    if path is None:
        raise RuntimeError("the stop wrote no checkpoint (log %s)" % d.log_path)
    ckpt_bytes = os.path.getsize(path)
    segments = seg_bytes(data)

    # 3. The restart loads it; then one periodic checkpoint of the loaded state.
    d = Daemon(build, config_b, data, os.path.join(work, "restart.log"), rss_limit=rss_limit)
    try:
        lines = d.log_lines()
        loaded = [x for x in lines if x.get("msg") == "recovery: checkpoint loaded"]
        if not loaded or loaded[-1].get("blocks_to_replay") != 0:
            raise RuntimeError("the restart did not come back from the checkpoint alone: %r" % loaded)
        # The gauges are refreshed by the shard's maintenance, every 100 ms.
        d.wait_for("%d keys after the load" % n, lambda s: s["keys.per_user_1m"] == n, 30, every=0.05)
        s = settle(d)
        st = d.status()
        load_s = log_ms(lines, "recovery: checkpoint loaded") / 1000.0 - d.launched
        after = d.wait_for("a periodic checkpoint", lambda s: s["checkpoint.count"] + s["checkpoint.failures"] >= 1,
                           120, every=0.1)
        if after["checkpoint.failures"]:
            raise RuntimeError("the periodic checkpoint failed (log %s)" % d.log_path)
        peak = d.status()["VmHWM"]  # the load and the periodic checkpoint's buffers
        rec = {"figure": "checkpoint", "keys": n, "file_bytes": ckpt_bytes,
               "file_bytes_per_key": round(ckpt_bytes / n, 1), "segment_bytes": segments,
               "stop_s": round(stop_s, 3),
               "stop_log_s": round((stopped_ms - drain_ms) / 1000.0, 3) if drain_ms and stopped_ms else None,
               "load_s": round(load_s, 3), "ready_s": round(d.ready_s, 3), "rss_peak_bytes_load": st["VmHWM"],
               "state_bytes_after_load": s["state_bytes"],
               "state_bytes_per_user_after_load": round(s["state_bytes"] / n, 1),
               "dedup_bytes_after_load": s["dedup.bytes"],
               "rss_bytes_after_load": st["VmRSS"], "rss_peak_bytes_restart": peak,
               "periodic_bytes": after["checkpoint.bytes"], "periodic_align_us": after["checkpoint.align_us"],
               "periodic_snapshot_us": after["checkpoint.snapshot_us"],
               "periodic_duration_us": after["checkpoint.duration_us"]}
        print(json.dumps(rec), flush=True)
        out["checkpoint"] = rec
    finally:
        d.close()  # SIGKILL: a third checkpoint would measure nothing new
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def baseline(build, tmp):
    """An empty daemon of the same configuration, at rest."""
    work = os.path.join(tmp, "empty")
    os.makedirs(work)
    config = os.path.join(work, "empty.toml")
    with open(config, "w") as f:
        f.write(config_text(3600000))
    d = Daemon(build, config, os.path.join(work, "data"), os.path.join(work, "empty.log"))
    try:
        s = settle(d)
        st = d.status()
    finally:
        d.close()
    rec = {"figure": "empty", "state_bytes": s["state_bytes"], "dedup_bytes": s["dedup.bytes"],
           "allocated_bytes": s["memory.allocated_bytes"], "rss_bytes": st["VmRSS"], "rss_anon_bytes": st["RssAnon"]}
    print(json.dumps(rec), flush=True)
    return s, st


def mib(b):
    return "%.1f" % (b / 2 ** 20)


def table(empty, results):
    print()
    print("state at rest (1 shard, dedup on; bytes per key = bytes / keys.<view>)")
    head = "%-34s" % "" + "".join("%18s" % ("%d keys" % r["state"]["keys"]) for r in results)
    print(head)
    rows = [
        ("key tables, MiB", lambda r: mib(r["state"]["key_tables_bytes"])),
        ("  per user key, B", lambda r: "%.1f" % r["state"]["key_tables_bytes_per_user"]),
        ("per_user_1m windows, MiB", lambda r: mib(r["state"]["views"]["per_user_1m"]["bytes"])),
        ("  per key, B", lambda r: "%.1f" % r["state"]["views"]["per_user_1m"]["bytes_per_key"]),
        ("per_type_10s windows, MiB", lambda r: mib(r["state"]["views"]["per_type_10s"]["bytes"])),
        ("  keys / windows", lambda r: "%d / %d" % (r["state"]["views"]["per_type_10s"]["keys"],
                                                    r["state"]["views"]["per_type_10s"]["windows"])),
        ("state_bytes, MiB", lambda r: mib(r["state"]["state_bytes"])),
        ("  per user key, B", lambda r: "%.1f" % r["state"]["state_bytes_per_user"]),
        ("dedup.bytes, MiB", lambda r: mib(r["state"]["dedup_bytes"])),
        ("  per id, B", lambda r: "%.1f" % r["state"]["dedup_bytes_per_id"]
         + (" (max_bytes)" if r["state"]["dedup_at_max_bytes"] else "")),
        ("jemalloc allocated over empty, B/key", lambda r: "%.1f" % r["state"]["allocated_bytes_per_key"]),
        ("RssAnon over empty, B/key", lambda r: "%.1f" % r["state"]["rss_anon_bytes_per_key"]),
        ("VmRSS at rest, MiB", lambda r: mib(r["state"]["rss_bytes"])),
        ("checkpoint file, MiB", lambda r: mib(r["checkpoint"]["file_bytes"])),
        ("  per key, B", lambda r: "%.1f" % r["checkpoint"]["file_bytes_per_key"]),
        ("stop (SIGTERM to exit), s", lambda r: "%.2f" % r["checkpoint"]["stop_s"]),
        ("restart to checkpoint loaded, s", lambda r: "%.2f" % r["checkpoint"]["load_s"]),
        ("restart to ready, s", lambda r: "%.2f" % r["checkpoint"]["ready_s"]),
        ("state_bytes after the load, MiB", lambda r: mib(r["checkpoint"]["state_bytes_after_load"])),
        ("  per user key, B", lambda r: "%.1f" % r["checkpoint"]["state_bytes_per_user_after_load"]),
        ("periodic checkpoint pause, ms", lambda r: "%.0f" % (r["checkpoint"]["periodic_snapshot_us"] / 1000)),
        ("periodic checkpoint to durable, ms", lambda r: "%.0f" % (r["checkpoint"]["periodic_duration_us"] / 1000)),
        ("VmHWM of the restarted daemon once loaded, MiB", lambda r: mib(r["checkpoint"]["rss_peak_bytes_load"])),
        ("VmHWM of the restarted daemon, MiB", lambda r: mib(r["checkpoint"]["rss_peak_bytes_restart"])),
    ]
    for name, f in rows:
        print("%-34s" % name + "".join("%18s" % f(r) for r in results))
    print("empty daemon: state_bytes %s MiB, dedup.bytes %s MiB, VmRSS %s MiB" % (
        mib(empty[0]["state_bytes"]), mib(empty[0]["dedup.bytes"]), mib(empty[1]["VmRSS"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--keys", default="1000000,10000000", help="distinct keys per run, comma-separated")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (events, data, logs)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    counts = [int(k) for k in args.keys.split(",") if k]
    if not counts or min(counts) < 1000 or max(counts) > 20000000:
        sys.exit("--keys: counts between 1000 and 20000000")
    for sig in (signal.SIGTERM, signal.SIGHUP):  # so that the finally blocks stop the daemon
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    tmp = tempfile.mkdtemp(prefix="spate-state-bytes-")
    try:
        # Disk: the NDJSON (~80 B an event), segments and two checkpoints (~200 B a key each).
        need = max(counts) * 600
        free = shutil.disk_usage(tmp).free
        if free < need:
            sys.exit("needs %.1f GB free in %s, has %.1f" % (need / 1e9, tmp, free / 1e9))
        empty = baseline(build, tmp)
        results = [measure(build, tmp, n, *empty, args.keep) for n in counts]
        table(empty, results)
    finally:
        if args.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
