#!/usr/bin/env python3
"""What the hot log costs, per durability mode, on one input:

  1. loopback TCP ingest (spate-e2e-harness --skip-in-process) with the log
     off and with durability none, group and sync, in alternating rounds;
  2. segment bytes against the raw NDJSON, per compression (spated --ingest);
  3. the latency of a PUBLISH of 100 events, p50/p99, per mode, against the
     log off: what each promise adds;
  4. the restart: seconds from launch to ready (the segments replayed), per
     GB of segments; then from a checkpoint taken of that state (what the
     checkpoint cost the loop, its size, the restart with nothing to replay).

    perf/durability.py [--build build] [--input FILE | --events N] [--rounds 2] [--skip-tcp] [--skip-publish]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
import spate_client  # noqa: E402

MODES = ["off", "none", "group", "sync"]


def config_text(mode, compression="lz4", keep_raw=False):
    if mode == "off":
        return "[storage]\nenabled = false\n"
    return '[storage]\ndurability = "%s"\ncompression = "%s"\nkeep_raw = %s\n' % (
        mode, compression, "true" if keep_raw else "false")


def write_config(tmp, mode, compression="lz4", keep_raw=False):
    path = os.path.join(tmp, "%s-%s%s.toml" % (mode, compression, "-raw" if keep_raw else ""))
    with open(path, "w") as f:
        f.write(config_text(mode, compression, keep_raw))
    return path


def tcp_rate(build, tmp, input_path, mode, shards):
    out = subprocess.run([os.path.join(build, "perf", "spate-e2e-harness"), "--input", input_path, "--skip-in-process",
                          "--repeat", "3", "--shards", str(shards), "--spated-config", write_config(tmp, mode)],
                         capture_output=True, text=True, timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith("{") and '"spated_tcp_loopback"' in line:
            return json.loads(line)["events_per_s"]
    raise RuntimeError("no TCP figure from the harness: %s %s" % (out.stdout[-2000:], out.stderr[-2000:]))


def seg_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".seg"))
    return total


def start_spated(build, tmp, config, data_dir, shards, extra=()):
    log = open(os.path.join(tmp, "spated.log"), "a")
    t0 = time.time()
    proc = subprocess.Popen([os.path.join(build, "src", "spated"), "--config", config, "--shards", str(shards),
                             "--data-dir", data_dir, "--tcp-addr", "off", "--udp-addr", "off",
                             "--query-addr", "127.0.0.1:0", *extra], stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    ready = time.time() - t0
    m = re.search(r"query=127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError("spated did not start: %r" % line)
    return proc, int(m.group(1)), ready


def publish_latency(build, tmp, lines, mode, shards, batches=1500, batch=100):
    sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
    import spate_client
    data = os.path.join(tmp, "pub-" + mode)
    proc, port, _ = start_spated(build, tmp, write_config(tmp, mode), data, shards)
    try:
        client = spate_client.Client("127.0.0.1", port, timeout=60)
        took = []
        for i in range(batches):
            payload = b"".join(lines[(i * batch) % (len(lines) - batch):][:batch])
            t0 = time.perf_counter()
            client.publish(1, i + 1, payload)
            took.append((time.perf_counter() - t0) * 1e6)
        client.close()
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(data, ignore_errors=True)
    took.sort()
    return took[len(took) // 2], took[int(len(took) * 0.99)]


def checkpoint_restart(build, tmp, data_dir, shards):
    """Loads data_dir (a full replay), waits for a checkpoint of that state,
    stops, and times the restart that loads it."""
    for shard in os.listdir(data_dir):
        shutil.rmtree(os.path.join(data_dir, shard, "checkpoints"), ignore_errors=True)
    config = os.path.join(tmp, "checkpoint.toml")
    with open(config, "w") as f:
        f.write(config_text("group") + "checkpoint_interval_ms = 1000\n")
    proc, port, replay_ready = start_spated(build, tmp, config, data_dir, shards)
    client = spate_client.Client("127.0.0.1", port, timeout=60)
    deadline = time.time() + 120
    while min(s["counters"]["checkpoint.epoch"] for s in client.stats()) < 1:
        if time.time() > deadline:
            raise RuntimeError("no checkpoint in 120 s")
        time.sleep(0.1)
    stats = [s["counters"] for s in client.stats()]
    client.close()
    proc.terminate()
    proc.wait(60)
    proc, port, ready = start_spated(build, tmp, config, data_dir, shards)
    client = spate_client.Client("127.0.0.1", port, timeout=60)
    replayed = sum(s["counters"]["replay.events_in"] for s in client.stats())
    keys = sum(s["counters"]["keys"] for s in client.stats())
    client.close()
    proc.terminate()
    proc.wait(60)
    size = sum(c["checkpoint.bytes"] for c in stats)
    print("  from a checkpoint: %.2f s (the full replay before it: %.2f s); %d keys, checkpoint %.1f MB over %d shards,"
          " %d events replayed after it" % (ready, replay_ready, keys, size / 1e6, shards, replayed))
    print("  the checkpoint: align %s us, snapshot (the loop's pause) %s us, until durable %s us, per shard" % (
        "/".join(str(c["checkpoint.align_us"]) for c in stats), "/".join(str(c["checkpoint.snapshot_us"]) for c in stats),
        "/".join(str(c["checkpoint.duration_us"]) for c in stats)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--input", help="NDJSON input (default: generated)")
    ap.add_argument("--events", type=int, default=2000000)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of the TCP runs")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--skip-tcp", action="store_true")
    ap.add_argument("--skip-publish", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix="spate-durability-")
    try:
        input_path = args.input
        if not input_path:
            input_path = os.path.join(tmp, "in.ndjson")
            subprocess.run([os.path.join(build, "tools", "spate-gen"), "--events", str(args.events), "--seed", "42",
                            "--out", input_path], check=True, stdout=subprocess.DEVNULL)
        raw = os.path.getsize(input_path)
        print("input: %s, %.1f MB" % (input_path, raw / 1e6))

        if not args.skip_tcp:
            rates = {m: [] for m in MODES}
            for r in range(args.rounds):
                for mode in (MODES if r % 2 == 0 else list(reversed(MODES))):
                    rates[mode].append(tcp_rate(build, tmp, input_path, mode, args.shards))
                    print("  round %d %-5s %.2f M events/s" % (r + 1, mode, rates[mode][-1] / 1e6), flush=True)
            print("\n1. loopback TCP, %d shards (harness, best of 3 passes each):" % args.shards)
            none = statistics.median(rates["none"])
            for mode in MODES:
                med = statistics.median(rates[mode])
                print("  %-5s %s M events/s  (median %.2f; %.2f of none)" % (
                    mode, ", ".join("%.2f" % (x / 1e6) for x in rates[mode]), med / 1e6, med / none))

        print("\n2. segment bytes (spated --ingest, durability group, %d shards):" % args.shards)
        restart_dir = None
        for compression, keep_raw in (("lz4", False), ("zstd", False), ("none", False), ("lz4", True), ("zstd", True)):
            data = os.path.join(tmp, "seg-%s%s" % (compression, "-raw" if keep_raw else ""))
            t0 = time.time()
            subprocess.run([os.path.join(build, "src", "spated"), "--config",
                            write_config(tmp, "group", compression, keep_raw),
                            "--shards", str(args.shards), "--data-dir", data, "--ingest", input_path,
                            "--exit-after-ingest", "--tcp-addr", "off", "--udp-addr", "off",
                            "--query-addr", "127.0.0.1:0"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=600)
            secs = time.time() - t0
            b = seg_bytes(data)
            print("  %-5s%-9s %7.1f MB = %5.1f%% of the raw NDJSON; ingest and exit in %.2f s" % (
                compression, " keep_raw" if keep_raw else "", b / 1e6, 100.0 * b / raw, secs))
            if compression == "lz4" and not keep_raw:
                restart_dir = data
            else:
                shutil.rmtree(data, ignore_errors=True)

        print("\n4. restart (launch to ready, every segment replayed):")
        b = seg_bytes(restart_dir)
        for _ in range(2):
            for shard in os.listdir(restart_dir):  # the checkpoint the last stop wrote: without it, all replays
                shutil.rmtree(os.path.join(restart_dir, shard, "checkpoints"), ignore_errors=True)
            proc, _, ready = start_spated(build, tmp, write_config(tmp, "group"), restart_dir, args.shards)
            proc.terminate()
            proc.wait(60)
            print("  %.2f s for %.1f MB of segments: %.1f s per GB of segments (%.1f s per GB of raw NDJSON)" % (
                ready, b / 1e6, ready / (b / 1e9), ready / (raw / 1e9)))
        checkpoint_restart(build, tmp, restart_dir, args.shards)
        shutil.rmtree(restart_dir, ignore_errors=True)

        if args.skip_publish:
            return
        print("\n3. PUBLISH of 100 events, one at a time (Python client):")
        with open(input_path, "rb") as f:
            lines = f.read().splitlines(keepends=True)[:200000]
        base = None
        for mode in MODES:
            p50, p99 = publish_latency(build, tmp, lines, mode, args.shards)
            if base is None:
                base = (p50, p99)
            print("  %-5s p50 %7.0f us  p99 %7.0f us   (adds p50 %+.0f us, p99 %+.0f us)" % (
                mode, p50, p99, p50 - base[0], p99 - base[1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
