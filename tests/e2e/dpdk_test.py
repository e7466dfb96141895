"""The DPDK source for real, through DPDK's pcap driver (--no-huge --no-pci
--vdev=net_pcap0,rx_pcap=FILE): the same capture gives exactly the same
aggregates through a NIC queue as through the UDP socket, two queues feed
two shards, and what is not UDP is counted, not applied."""

import os
import socket
import subprocess
import time
import unittest

from pcap_test import read_pcap, split_capture
from spate_e2e import GeneratedInputTest, SPATED, TEST_CONFIG, Daemon, read_expect

EVENTS = GeneratedInputTest.EVENTS


def dpdk_config(*captures, extra=""):
    vdev = "net_pcap0," + ",".join("rx_pcap=%s" % c for c in captures)
    return TEST_CONFIG + ('[[source]]\ntype = "dpdk"\neal_args = ["--no-huge", "--no-pci", "-m", "256", "--vdev=%s"]\n%s'
                          % (vdev, extra))


class DpdkTest(GeneratedInputTest):
    SEED = 23

    def start(self, config, shards=1, **kw):
        try:
            d = Daemon(shards=shards, tcp=False, udp=False, config=config, idle_first=False, **kw)
        except RuntimeError as e:
            if "built without DPDK" in str(e):
                self.skipTest("this build has no DPDK (dpdk-dev missing)")
            raise
        self.daemons.append(d)
        return d

    def settle(self, d, frames):
        """Waits until the port received `frames` and every row is applied."""
        deadline = time.time() + 60
        while True:
            c = d.counters()
            if c["dpdk.port_rx"] == frames and c["dpdk.frames"] == frames and c["ring_depth"] == 0:
                time.sleep(0.3)  # the last rows of the last burst
                if d.counters()["rows_handled"] == c["rows_handled"]:
                    return d.counters()
            self.assertLess(time.time(), deadline, "the port did not deliver %d frames: %r" % (frames, c))
            time.sleep(0.1)

    def test_the_same_capture_gives_the_same_aggregates_through_dpdk_and_the_udp_socket(self):
        path = self.gen("u.pcap")
        summary, windows = read_expect(self.expect)
        _, recs = read_pcap(path)

        d = self.start(dpdk_config(path))
        c = self.settle(d, len(recs))
        self.assertEqual(c["events_in"], summary["events"])
        self.assertEqual(c["dpdk.events_in"], summary["events"])
        self.assertEqual(c["dpdk.port_missed"] + c["dpdk.port_errors"] + c["dpdk.port_no_mbuf"], 0)
        self.assertEqual(c["dpdk.frames_other"] + c["dpdk.truncated"] + c["dpdk.fragments"], 0)
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

        # The same datagrams through the kernel's UDP socket.
        u = Daemon(shards=1, tcp=False, udp=True, config=TEST_CONFIG)
        self.daemons.append(u)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, r in enumerate(recs):
                s.sendto(r[3][42:], ("127.0.0.1", u.udp_port))
                if i % 200 == 199:
                    time.sleep(0.002)  # within what the socket buffer holds
        c = u.wait_settled(summary["events"])
        self.assertEqual(c["udp.drops"], 0)
        self.assertEqual(c["events_in"], summary["events"])
        self.assert_views_match(u, windows)
        self.assertEqual(u.stop(), 0)

    def test_two_queues_feed_two_shards(self):
        # No late events: two queues read side by side judge lateness by the
        # slower one, unlike the generator's single timeline.
        path = self.gen("u.pcap", "--late-share", "0")
        summary, windows = read_expect(self.expect)
        halves, frames = split_capture(path, self.tmp)
        d = self.start(dpdk_config(*halves), shards=2)
        c = self.settle(d, frames)
        per_shard = [s["counters"]["dpdk.frames"] for s in d.client.stats()]
        self.assertEqual(per_shard, [(frames + 1) // 2, frames // 2])
        self.assertEqual(c["events_in"], summary["events"])
        self.assert_views_match(d, windows, relative=1e-12)
        self.assertEqual(d.stop(), 0)

    def test_frames_that_are_not_udp_are_counted_not_applied(self):
        path = self.gen("t.pcap", "--pcap-tcp")
        _, recs = read_pcap(path)
        d = self.start(dpdk_config(path))
        c = self.settle(d, len(recs))
        self.assertEqual(c["dpdk.frames_other"], len(recs))
        self.assertEqual(c["events_in"], 0)
        self.assertEqual(d.stop(), 0)

    def test_eal_arguments_it_cannot_use_stop_the_start_with_the_reason(self):
        config = os.path.join(self.tmp, "bad.toml")
        with open(config, "w") as f:
            f.write(TEST_CONFIG + '[[source]]\ntype = "dpdk"\neal_args = ["--no-huge", "--no-pci", "--bogus-flag"]\n')
        out = subprocess.run([SPATED, "--config", config, "--data-dir", os.path.join(self.tmp, "data"),
                              "--query-addr", "127.0.0.1:0"], capture_output=True, text=True, timeout=60)
        if "built without DPDK" in out.stderr:
            self.skipTest("this build has no DPDK (dpdk-dev missing)")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn('level=error msg="cannot start" error="DPDK EAL initialisation failed', out.stderr)


if __name__ == "__main__":
    unittest.main()
