#!/usr/bin/env python3
"""spate-replay's rate accuracy and its own cost: a capture sent over UDP
to a socket that never reads (the kernel drops what overflows it, so only
the sender is measured) at --eps 100k and 1M, and at --topspeed.

    perf/replay_rate.py [--build build] [--capture FILE.pcap] [--seconds 2]
"""

import argparse
import json
import os
import socket
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--capture", help="a capture (default: spate-gen --events 2000000 --seed 42 as UDP datagrams)")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    with tempfile.TemporaryDirectory(prefix="spate-replay-rate-") as tmp:
        capture = args.capture
        if not capture:
            capture = os.path.join(tmp, "h42.pcap")
            subprocess.run([os.path.join(build, "tools", "spate-gen"), "--events", "2000000", "--seed", "42",
                            "--out", capture], check=True, capture_output=True)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        to = "udp://127.0.0.1:%d" % sink.getsockname()[1]
        print("%-12s %14s %14s %9s %10s %12s" % ("target", "events/s", "datagrams/s", "error", "seconds", "cpu ns/event"))
        for target in (100000, 1000000, None):
            cmd = [os.path.join(build, "tools", "spate-replay"), capture, "--to", to, "--quiet"]
            cmd += ["--topspeed"] if target is None else ["--eps", str(target)]
            if target:
                cmd += ["--limit", str(int(target * args.seconds / 8))]  # about 8 events a datagram
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            err = "" if target is None else "%+.2f%%" % (100.0 * (r["events_per_s"] - target) / target)
            print("%-12s %14.0f %14.0f %9s %10.3f %12.1f" % (target or "topspeed", r["events_per_s"],
                  r["messages_per_s"], err, r["seconds"], r["cpu_ns_per_event"]))


if __name__ == "__main__":
    main()
