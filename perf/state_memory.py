#!/usr/bin/env python3
"""Resident memory of spated as keys come and go: loads N distinct users
(uniform, one event each) over TCP, then one event an hour of event time
later, so that every window passes retention and every key is forgotten;
prints spated's VmRSS and its key and window counts at rest, loaded, and
every few seconds after the eviction until the memory settles.

    perf/state_memory.py [--build build] [--users 1000000]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--settle", type=float, default=40.0, help="seconds to watch after the eviction")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
    import spate_client

    tcp_port, query_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "spate.toml")
        with open(config, "w") as f:
            f.write("idle_timeout_ms = 200\nwindow_retention_ms = 0\n")
        proc = subprocess.Popen([os.path.join(args.build, "src", "spated"), "--config", config, "--shards", "2",
                                 "--query-addr", "127.0.0.1:%d" % query_port, "--tcp-addr", "127.0.0.1:%d" % tcp_port,
                                 "--udp-addr", "off", "--data-dir", os.path.join(tmp, "d")],
                                stdout=subprocess.PIPE, text=True)
        try:
            if not proc.stdout.readline().startswith("spated ready"):
                sys.exit("spated did not start")
            client = spate_client.Client("127.0.0.1", query_port)

            def totals():
                t = {}
                for s in client.stats():
                    for k, v in s["counters"].items():
                        t[k] = t.get(k, 0) + v
                return t

            def show(what):
                t = totals()
                print("%-28s rss %8.1f MiB  keys %8d  windows %8d  state_bytes %8.1f MiB"
                      % (what, rss_mib(proc.pid), t["keys"], t["windows"], t.get("state_bytes", 0) / 2 ** 20))
                return t

            show("at rest")
            t0 = 1764000000000
            line = '{"id":"m%d","ts":%d,"user":"user-%d","type":"t","amount":1}\n'
            with socket.create_connection(("127.0.0.1", tcp_port)) as s:
                chunk = []
                for i in range(args.users):
                    chunk.append(line % (i, t0 + i // 1000, i))
                    if len(chunk) == 10000:
                        s.sendall("".join(chunk).encode())
                        chunk = []
                s.sendall("".join(chunk).encode())
            while totals()["events_in"] < args.users:
                time.sleep(0.2)
            time.sleep(1)
            show("%d keys loaded" % args.users)
            with socket.create_connection(("127.0.0.1", tcp_port)) as s:
                s.sendall((line % (0, t0 + 3600000, 0)).encode())
            start = time.time()
            while time.time() - start < args.settle:
                time.sleep(5)
                show("%2.0f s after the eviction" % (time.time() - start))
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
