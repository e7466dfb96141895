#!/usr/bin/env python3
"""Resident memory of spated per idle connection: starts spated on free
loopback ports, opens N TCP ingest connections that send nothing, then P
more that each leave a partial line pending, then M query connections that
complete HELLO and go quiet; prints spated's VmRSS after each step and the
cost per connection.

    perf/idle_connections.py [--build build] [--ingest 10000] [--partial 5000] [--query 1000]
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kib(pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--ingest", type=int, default=10000)
    ap.add_argument("--partial", type=int, default=5000)
    ap.add_argument("--query", type=int, default=1000)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(HERE, "..", "clients", "python"))
    import spate_client

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.ingest + args.partial + args.query + 64
    if hard < need:
        sys.exit("needs %d descriptors; the hard limit is %d" % (need, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tcp_port, query_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "spate.toml")
        with open(config, "w") as f:
            f.write('[query]\nmax_connections = %d\n[[source]]\ntype = "tcp"\nlisten = "127.0.0.1:%d"\n'
                    'max_connections = %d\n' % (args.query + 10, tcp_port, args.ingest + args.partial + 10))
        proc = subprocess.Popen([os.path.join(args.build, "src", "spated"), "--config", config, "--shards", "2",
                                 "--query-addr", "127.0.0.1:%d" % query_port, "--data-dir", os.path.join(tmp, "d")],
                                stdout=subprocess.PIPE, text=True)
        try:
            if not proc.stdout.readline().startswith("spated ready"):
                sys.exit("spated did not start")
            client = spate_client.Client("127.0.0.1", query_port)
            base = settle(proc.pid)
            print("spated at rest: %d KiB" % base)

            idle = [socket.create_connection(("127.0.0.1", tcp_port)) for _ in range(args.ingest)]
            deadline = time.time() + 60
            while sum(s["counters"].get("tcp.connections", 0) for s in client.stats()) < args.ingest:
                if time.time() > deadline:
                    sys.exit("connections not taken")
                time.sleep(0.1)
            with_idle = settle(proc.pid)
            print("%d idle ingest connections: %d KiB, %.2f KiB each"
                  % (args.ingest, with_idle, (with_idle - base) / args.ingest))

            partial = [socket.create_connection(("127.0.0.1", tcp_port)) for _ in range(args.partial)]
            for s in partial:
                s.sendall(b'{"id":"p","ts":1764000000000,"user":"u1","type":"click","amount":1.5,"page":"/p/1')
            with_partial = settle(proc.pid, 2.0)
            print("%d more, each holding a 100-byte partial line: %d KiB, %.2f KiB each"
                  % (args.partial, with_partial, (with_partial - with_idle) / args.partial))

            queries = [spate_client.Client("127.0.0.1", query_port) for _ in range(args.query)]
            with_query = settle(proc.pid)
            print("%d idle query connections (after HELLO): %d KiB, %.2f KiB each"
                  % (args.query, with_query, (with_query - with_partial) / args.query))
            for q in queries:
                q.close()
            for s in idle + partial:
                s.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
