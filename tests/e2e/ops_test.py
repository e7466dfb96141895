"""Running under systemd: the unit in scripts/ passes systemd-analyze
verify, and spated speaks sd_notify (READY, the watchdog while its shards
tick, STOPPING) over $NOTIFY_SOCKET."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from spate_e2e import SPATED

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "spated.service")


class OpsTest(unittest.TestCase):
    def test_the_systemd_unit_verifies(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory(prefix="spate-unit-") as tmp:
            unit = os.path.join(tmp, "spated.service")
            with open(UNIT) as f, open(unit, "w") as out:
                out.write(f.read().replace("/usr/local/bin/spated", os.path.abspath(SPATED)))
            r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("spated.service:", r.stderr)  # no complaint about a line of ours

    def test_spated_reports_ready_pings_the_watchdog_and_says_it_stops(self):
        with tempfile.TemporaryDirectory(prefix="spate-notify-") as tmp:
            path = os.path.join(tmp, "notify")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.settimeout(10)
            env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
            proc = subprocess.Popen([SPATED, "--data-dir", os.path.join(tmp, "data"), "--shards", "2",
                                     "--tcp-addr", "off", "--udp-addr", "off", "--query-addr", "127.0.0.1:0",
                                     "--metrics-addr", "off"], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            try:
                self.assertTrue(proc.stdout.readline().startswith("spated ready"))
                self.assertEqual(sock.recv(4096), b"READY=1\nSTATUS=ingesting")
                t0 = time.time()
                pings = 0
                while time.time() - t0 < 1.0:
                    if sock.recv(4096) == b"WATCHDOG=1":
                        pings += 1
                self.assertGreaterEqual(pings, 5)  # every 100 ms, half of WATCHDOG_USEC
                proc.send_signal(signal.SIGTERM)
                while True:
                    msg = sock.recv(4096)
                    if msg != b"WATCHDOG=1":
                        break
                self.assertEqual(msg, b"STOPPING=1")
                self.assertEqual(proc.wait(30), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.stdout.close()
                sock.close()


if __name__ == "__main__":
    unittest.main()
