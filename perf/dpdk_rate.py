#!/usr/bin/env python3
"""Events per second per core into one shard: the DPDK path (DPDK's pcap
driver replaying a capture from memory, infinite_rx=1) against the kernel's
UDP socket fed by spate-replay --topspeed, on the same datagrams of one
event each. Each rate is events_in over a window of --seconds, read from
STATS while the daemon runs.

    perf/dpdk_rate.py [--build build] [--events 50000] [--seconds 5]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
import spate_client  # noqa: E402


def start(build, tmp, config_text):
    config = os.path.join(tmp, "spate.toml")
    with open(config, "w") as f:
        f.write(config_text)
    proc = subprocess.Popen([os.path.join(build, "src", "spated"), "--config", config, "--shards", "1",
                             "--data-dir", os.path.join(tmp, "data-%d" % time.monotonic_ns()), "--query-addr",
                             "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"query=127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError("spated did not start: %r" % line)
    return proc, spate_client.Client("127.0.0.1", int(m.group(1)))


def rate(client, seconds, key):
    def read():
        c = client.stats()[0]["counters"]
        return c[key], c
    time.sleep(1)  # past the start
    a, _ = read()
    t0 = time.time()
    time.sleep(seconds)
    b, c = read()
    return (b - a) / (time.time() - t0), c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--events", type=int, default=50000)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    with tempfile.TemporaryDirectory(prefix="spate-dpdk-rate-") as tmp:
        capture = os.path.join(tmp, "one.pcap")
        subprocess.run([os.path.join(build, "tools", "spate-gen"), "--events", str(args.events), "--seed", "42",
                        "--udp-payload", "64", "--out", capture], check=True, capture_output=True)
        common = "idle_timeout_ms = 300\n[storage]\nenabled = false\n[dedup]\nenabled = false\n"

        proc, client = start(build, tmp, common + (
            '[[source]]\ntype = "dpdk"\nmbufs = %d\neal_args = ["--no-huge", "--no-pci", "-m", "2048", '
            '"--vdev=net_pcap0,rx_pcap=%s,infinite_rx=1"]\n' % (args.events + 16384, capture)))
        dpdk, c = rate(client, args.seconds, "events_in")
        client.close()
        proc.terminate()
        proc.wait(30)
        print("dpdk (net_pcap, infinite_rx): %.0f events/s = frames/s into one shard; padding copies %d, errors %d" % (
            dpdk, c["dpdk.padding_copies"], c["errors"]))

        port = 17071
        proc, client = start(build, tmp, common + '[[source]]\ntype = "udp"\nlisten = "127.0.0.1:%d"\n' % port)
        sender = subprocess.Popen([os.path.join(build, "tools", "spate-replay"), capture, "--to",
                                   "udp://127.0.0.1:%d" % port, "--topspeed", "--loop", "0", "--quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        udp, c = rate(client, args.seconds, "events_in")
        sender.terminate()
        sender.wait(30)
        client.close()
        proc.terminate()
        proc.wait(30)
        print("kernel UDP socket (spate-replay --topspeed, same machine): %.0f events/s; udp.drops %d" % (
            udp, c["udp.drops"]))
        print("dpdk / kernel UDP: %.1fx" % (dpdk / udp if udp else float("inf")))
        print(json.dumps({"dpdk_events_per_s": round(dpdk), "udp_events_per_s": round(udp)}))


if __name__ == "__main__":
    main()
