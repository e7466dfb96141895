"""End to end: spated's log lines on stderr, logfmt by default or JSON lines,
with a level, a message and the values as separate keys; [log] and the
--log-format and --log-level flags; config errors stay compiler-style text."""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import unittest

from spate_e2e import SPATED, TEST_CONFIG, Daemon

T0 = 1764000000000
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = ("debug", "info", "warn", "error")
LOGFMT = re.compile(r'^ts=(\S+) level=(debug|info|warn|error) msg=("(?:[^"\\]|\\.)*"|[^ ="]+)( [a-z_]+=("(?:[^"\\]|\\.)*"|[^ ="]+))*$')


def event(i):
    return '{"id":"l%d","ts":%d,"user":"u%d","type":"log","amount":2}\n' % (i, T0 + i * 1000, i % 7)


def stop_and_read(d):
    """SIGTERM, then the exit code and the whole of stderr (Daemon.stop()
    would remove the log with the rest)."""
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(30)
    log = d.read_log()
    return d.stop(), log


def json_lines(text):
    """Every line parsed; each must be a JSON object with ts, level and msg."""
    out = []
    for line in text.splitlines():
        obj = json.loads(line)
        if not (isinstance(obj, dict) and TS.match(obj.get("ts", "")) and obj.get("level") in LEVELS
                and isinstance(obj.get("msg"), str)):
            raise AssertionError("not a log line: %r" % line)
        out.append(obj)
    return out


def logfmt_lines(text):
    """Every line matched against the logfmt shape: ts, level, msg, then keys."""
    for line in text.splitlines():
        if not LOGFMT.match(line):
            raise AssertionError("not a logfmt line: %r" % line)
    return text.splitlines()


class LogsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="spate-logs-")

    def tearDown(self):
        self.tmp.cleanup()

    def test_json_lines_carry_ts_level_msg_and_the_start_and_stop_at_info(self):
        d = Daemon(udp=False, extra_args=("--log-format", "json"))
        with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
            s.sendall("".join(event(i) for i in range(300)).encode() + b"{broken\n")
        d.wait_settled(300)
        code, log = stop_and_read(d)
        self.assertEqual(code, 0, log)
        lines = json_lines(log)
        started = [l for l in lines if l["msg"] == "started"]
        self.assertEqual(len(started), 1, log)
        self.assertEqual(started[0]["level"], "info")
        self.assertEqual(started[0]["shards"], 2)
        self.assertEqual(started[0]["query"], "127.0.0.1:%d" % d.query_port)
        self.assertEqual(started[0]["metrics"], "127.0.0.1:%d" % d.metrics_port)
        self.assertEqual(started[0]["sources"], "tcp=127.0.0.1:%d" % d.tcp_port)
        draining = [l for l in lines if l["msg"] == "signal received: draining"]
        self.assertEqual([(l["level"], l["signal"]) for l in draining], [("info", signal.SIGTERM)])
        stopped = [l for l in lines if l["msg"] == "stopped"]
        self.assertEqual(len(stopped), 1, log)
        self.assertEqual(stopped[0]["level"], "info")
        self.assertEqual((stopped[0]["events_applied"], stopped[0]["rejected"]), (300, 1))
        self.assertIsInstance(stopped[0]["seconds"], (int, float))
        self.assertEqual(lines[-1]["msg"], "stopped")

    def test_logfmt_is_the_default_with_level_and_msg_keys(self):
        d = Daemon(tcp=False, udp=False)
        code, log = stop_and_read(d)
        self.assertEqual(code, 0, log)
        lines = logfmt_lines(log)
        self.assertRegex(lines[0], r"^ts=\S+ level=info msg=started version=\S+ shards=2 query=127\.0\.0\.1:%d "
                                   r'sources="" metrics=127\.0\.0\.1:%d data_dir=' % (d.query_port, d.metrics_port))
        self.assertRegex(lines[-1], r"^ts=\S+ level=info msg=stopped seconds=[0-9.]+ events_applied=0 rejected=0 ")
        self.assertTrue(TS.match(lines[0].split()[0][3:]), lines[0])

    def test_log_section_sets_format_and_level_and_the_flags_override_it(self):
        config = TEST_CONFIG + '[log]\nformat = "json"\nlevel = "warn"\n'
        d = Daemon(tcp=False, udp=False, config=config)
        code, log = stop_and_read(d)
        self.assertEqual(code, 0, log)
        self.assertEqual(log, "")  # start and stop are info: below warn
        d = Daemon(tcp=False, udp=False, config=config, extra_args=("--log-level", "debug"))
        code, log = stop_and_read(d)
        self.assertEqual(code, 0, log)
        self.assertEqual([l["msg"] for l in json_lines(log)], ["started", "signal received: draining", "stopped"])
        d = Daemon(tcp=False, udp=False, config=config, extra_args=("--log-format", "logfmt", "--log-level", "info"))
        code, log = stop_and_read(d)
        self.assertEqual(code, 0, log)
        self.assertEqual(len(logfmt_lines(log)), 3)

    def test_values_with_quotes_and_spaces_survive_both_formats(self):
        # A data directory whose name needs quoting, holding a segment that is
        # not one: recovery sets it aside and says so at warn, the path a key.
        data = os.path.join(self.tmp.name, 'da"ta dir=x')
        os.makedirs(os.path.join(data, "shard-0"))
        segment = os.path.join(data, "shard-0", "%020d.seg" % 1)
        with open(segment, "wb") as f:
            f.write(b"\x00not a segment\n" * 600)
        d = Daemon(shards=1, tcp=False, udp=False, data_dir=data, extra_args=("--log-format", "json"))
        code, log = stop_and_read(d)
        self.assertEqual(code, 0, log)
        warned = [l for l in json_lines(log) if l["level"] == "warn"]
        self.assertEqual(len(warned), 1, log)
        self.assertEqual(warned[0]["msg"], "recovery: segment quarantined, not replayed")
        self.assertEqual((warned[0]["shard"], warned[0]["path"], warned[0]["state"]), (0, segment, "bad header"))
        self.assertTrue(os.path.exists(segment + ".quarantined"))

        # The same directory with another shard count: the start fails, with the reason as error=.
        d_args = [SPATED, "--shards", "2", "--data-dir", data, "--query-addr", "127.0.0.1:0", "--tcp-addr", "off",
                  "--udp-addr", "off", "--metrics-addr", "off"]
        r = subprocess.run(d_args + ["--log-format", "json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        [line] = json_lines(r.stderr)
        self.assertEqual((line["level"], line["msg"]), ("error", "cannot start"))
        self.assertTrue(line["error"].startswith("data directory '%s' holds segments of 1 shards" % data), line)
        r = subprocess.run(d_args, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        [line] = logfmt_lines(r.stderr)
        escaped = data.replace("\\", "\\\\").replace('"', '\\"')
        self.assertIn(' level=error msg="cannot start" error="data directory \'%s\' holds segments of 1 shards'
                      % escaped, line)

    def test_config_errors_and_bad_flags_stay_plain_text(self):
        path = os.path.join(self.tmp.name, "bad.toml")
        with open(path, "w") as f:
            f.write('[log]\nformat = "xml"\nlevel = "loud"\nsink = "syslog"\n')
        r = subprocess.run([SPATED, "--check-config", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertEqual(r.stderr.splitlines(), [
            "%s:2: error: 'format' = 'xml' is not one of 'logfmt', 'json'" % path,
            "%s:3: error: 'level' = 'loud' is not one of 'debug', 'info', 'warn', 'error'" % path,
            "%s:4: error: unknown key 'sink' in [log]" % path,
        ])
        r = subprocess.run([SPATED, "--config", path, "--log-format", "json"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertTrue(r.stderr.startswith("%s:2: error: " % path), r.stderr)
        for flag, value in (("--log-format", "xml"), ("--log-level", "loud")):
            r = subprocess.run([SPATED, flag, value, "--data-dir", os.path.join(self.tmp.name, "data")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertTrue(r.stderr.startswith("spated: %s '%s' is not " % (flag, value)), r.stderr)


if __name__ == "__main__":
    unittest.main()
