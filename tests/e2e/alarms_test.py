"""Data-quality alarms ([[alarm]], docs/alarms.md): a field alarm fires when
the producer stops sending a field and clears when it resumes; a volume alarm
fires when the rate leaves its band (below and above, fixed or learned); an
aggregate alarm judges each closed window; SIGHUP reloads the alarms; STATS,
the metrics endpoint, watch and the log show them."""

import os
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.request

from spate_e2e import SPATE_QUERY, Daemon, E2ETest

PIPELINE = """
idle_timeout_ms = 300
allowed_lateness_ms = 0

[schema]
id = "id"
timestamp = "ts"
fields = { user = "string", type = "string", amount = "number" }

[[view]]
name = "per_type_1s"
key = "type"
window = "tumbling"
size_ms = 1000
aggregates = ["count", "sum(amount)"]
"""


class Sender:
    """Sends `rate` events a second over TCP until stopped; `with_amount`
    and `rate` may change while it runs."""

    def __init__(self, port, rate=200):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.rate, self.with_amount, self.sent = rate, True, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        tick = 0.05
        while not self.stopped.is_set():
            n = int(self.rate * tick)
            now = int(time.time() * 1000)
            lines = []
            for _ in range(n):
                amount = ',"amount":3' if self.with_amount else ""
                lines.append('{"id":"e%d","ts":%d,"user":"u%d","type":"click"%s}\n' % (self.sent, now, self.sent % 50,
                                                                                      amount))
                self.sent += 1
            if lines:
                self.sock.sendall("".join(lines).encode())
            time.sleep(tick)

    def stop(self):
        self.stopped.set()
        self.thread.join()
        self.sock.close()


class AlarmsTest(E2ETest):
    def alarm(self, d, name):
        c = d.client.stats()[0]["counters"]
        return c.get("alarm.%s.active" % name), c.get("alarm.%s.fired" % name)

    def wait_alarm(self, d, name, active, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.alarm(d, name)
            if state[0] == active:
                return state
            time.sleep(0.1)
        self.fail("alarm %s not %s in %d s: %r; log:\n%s" % (name, active, timeout, self.alarm(d, name), d.read_log()))

    def wait_log(self, d, text, timeout=10):
        deadline = time.time() + timeout
        while text not in d.read_log():
            if time.time() > deadline:
                self.fail("%r not logged; log:\n%s" % (text, d.read_log()))
            time.sleep(0.05)

    def start(self, alarms):
        d = Daemon(tcp=True, udp=False, config=PIPELINE + alarms)
        self.addCleanup(lambda: d.proc.poll() is not None or (d.proc.kill(), d.proc.wait()))
        return d

    def test_a_field_alarm_fires_when_the_field_stops_coming_and_clears_when_it_resumes(self):
        d = self.start("""
[[alarm]]
name = "amount_present"
type = "field"
field = "amount"
min = 0.9
fire_after = 2
clear_after = 2
""")
        sender = Sender(d.tcp_port)
        try:
            time.sleep(3)
            self.assertEqual(self.alarm(d, "amount_present"), (0, 0))
            sender.with_amount = False  # schema drift: the producer stops sending amount
            self.assertEqual(self.wait_alarm(d, "amount_present", 1), (1, 1))
            sender.with_amount = True
            self.assertEqual(self.wait_alarm(d, "amount_present", 0), (0, 1))
        finally:
            sender.stop()
        log = d.read_log()
        self.assertIn("alarm fired", log)
        self.assertIn("alarm=amount_present", log)
        self.assertIn("alarm cleared", log)
        counters = d.counters()
        self.assertGreater(counters["errors.missing_field"], 0)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.metrics_port, timeout=10) as r:
            text = r.read().decode()
        self.assertIn('spate_alarm_active{shard="0",alarm="amount_present"} 0', text)
        self.assertIn('spate_alarm_fired_total{shard="0",alarm="amount_present"} 1', text)
        warn_lines = [l for l in text.splitlines() if l.startswith('spate_log_lines_total{shard="0",level="warn"}')]
        self.assertEqual(len(warn_lines), 1)
        self.assertGreaterEqual(float(warn_lines[0].split()[-1]), 1)  # "alarm fired" at least
        self.assertEqual(d.stop(), 0)

    def test_a_volume_alarm_fires_outside_its_band_and_a_learned_band_catches_a_burst(self):
        d = self.start("""
[[alarm]]
name = "tcp_rate"
type = "volume"
source = "tcp"
min = 50
max = 2000
fire_after = 2
clear_after = 2

[[alarm]]
name = "learned_rate"
type = "volume"
learn = 5
sigmas = 4
min_band = 0.3  # the sender's pace wobbles under a sanitizer's load
fire_after = 2
clear_after = 2
""")
        sender = Sender(d.tcp_port, rate=200)
        try:
            time.sleep(8)  # the learned band fills with 200/s
            self.assertEqual(self.alarm(d, "tcp_rate"), (0, 0))
            self.assertEqual(self.alarm(d, "learned_rate")[0], 0)
            sender.rate = 0  # the producer stalls: below the band
            self.assertEqual(self.wait_alarm(d, "tcp_rate", 1), (1, 1))
            self.wait_alarm(d, "learned_rate", 1)
            watch = subprocess.run([SPATE_QUERY, "--addr", "127.0.0.1:%d" % d.query_port, "watch", "--count", "1",
                                    "--interval-ms", "200"], capture_output=True, text=True, timeout=30)
            self.assertIn("ALARM data quality: tcp_rate (fired 1 times)", watch.stdout)
            sender.rate = 200
            self.assertEqual(self.wait_alarm(d, "tcp_rate", 0), (0, 1))
            self.wait_alarm(d, "learned_rate", 0)
            sender.rate = 5000  # a burst: above both bands
            self.assertEqual(self.wait_alarm(d, "tcp_rate", 1), (1, 2))
            self.wait_alarm(d, "learned_rate", 1)
        finally:
            sender.stop()
        self.assertEqual(d.stop(), 0)

    def test_an_aggregate_alarm_judges_each_closed_window_and_sighup_reloads_the_alarms(self):
        d = self.start("""
[[alarm]]
name = "clicks_per_second"
type = "aggregate"
view = "per_type_1s"
aggregate = "count"
key = "click"
min = 100
fire_after = 2  # the first window of a sender that starts mid-window is partial
clear_after = 1
""")
        sender = Sender(d.tcp_port, rate=300)
        try:
            time.sleep(3)
            self.assertEqual(self.alarm(d, "clicks_per_second"), (0, 0))
            sender.rate = 40  # 40 clicks a window, under 100
            self.assertEqual(self.wait_alarm(d, "clicks_per_second", 1), (1, 1))
            sender.rate = 300
            self.assertEqual(self.wait_alarm(d, "clicks_per_second", 0), (0, 1))
            # SIGHUP: the file's alarms replace the running ones.
            config = os.path.join(d.dir.name, "spate.toml")
            with open(config, "w") as f:
                f.write(PIPELINE + """
[[alarm]]
name = "too_quiet"
type = "volume"
min = 1000000
fire_after = 1
""")
            d.proc.send_signal(signal.SIGHUP)
            self.assertEqual(self.wait_alarm(d, "too_quiet", 1), (1, 1))
            self.assertNotIn("alarm.clicks_per_second.active", d.client.stats()[0]["counters"])
            # A file with an error, or with other views, changes nothing.
            with open(config, "w") as f:
                f.write(PIPELINE + '[[alarm]]\nname = "x"\ntype = "field"\nfield = "nope"\nmin = 1\n')
            d.proc.send_signal(signal.SIGHUP)
            self.wait_log(d, "is not a field of the schema")
            with open(config, "w") as f:
                f.write(PIPELINE.replace("per_type_1s", "per_type_other") + '[[alarm]]\nname = "y"\ntype = "volume"\nmin = 1\n')
            d.proc.send_signal(signal.SIGHUP)
            self.wait_log(d, "the schema or the views changed")
            time.sleep(1.5)
            self.assertEqual(self.alarm(d, "too_quiet"), (1, 1))
            self.assertNotIn("alarm.y.active", d.client.stats()[0]["counters"])
        finally:
            sender.stop()
        self.assertIn("SIGHUP: alarms reloaded", d.read_log())
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
