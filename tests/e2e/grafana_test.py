"""The Grafana dashboard (scripts/grafana/spate-dashboard.json) asks only for
metrics spated serves: scripts/grafana/check_dashboard.py passes it against a
live /metrics scrape of a daemon with TCP, UDP, a DPDK port (through DPDK's
pcap driver, when the build has DPDK), storage, dedup and an alarm; the same
check fails and names the metric when one expr asks for a metric that does
not exist, and fails on a dashboard without panels or with a panel without
targets. promtool parses every expr, and the PromQL reading of the checker
is tested on its own."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

from dpdk_test import dpdk_config
from pcap_test import split_capture
from spate_e2e import TEST_CONFIG, Daemon, GeneratedInputTest, read_expect

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GRAFANA = os.path.join(ROOT, "scripts", "grafana")
DASHBOARD = os.path.join(GRAFANA, "spate-dashboard.json")
CHECKER = os.path.join(GRAFANA, "check_dashboard.py")
sys.path.insert(0, GRAFANA)

import check_dashboard  # noqa: E402

# An alarm, so that the alarm families have a sample (min 0: it never fires).
ALARM = """
[[alarm]]
name = "events_flow"
type = "volume"
source = "all"
min = 0
"""
# Counted on shard 0 only while a DPDK port runs.
DPDK_PORT_FAMILIES = ["spate_dpdk_port_missed_total", "spate_dpdk_port_no_mbuf_total", "spate_dpdk_port_errors_total"]


def run_checker(dashboard, metrics, *extra):
    out = subprocess.run([sys.executable, CHECKER, dashboard, metrics, *extra], capture_output=True, text=True,
                         timeout=60)
    return out.returncode, out.stdout + out.stderr


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


class GrafanaDashboardTest(GeneratedInputTest):
    EVENTS = 400
    SEED = 29

    def start(self):
        """A daemon with TCP and UDP sources, storage (the default), dedup,
        an alarm and, when the build has DPDK, a port of two queues; events
        through every one of them. Returns (daemon, whether DPDK runs)."""
        path = self.gen("u.pcap", "--late-share", "0")
        summary, _ = read_expect(self.expect)
        halves, _ = split_capture(path, self.tmp)
        try:
            d = Daemon(shards=2, config=dpdk_config(*halves, extra=ALARM), idle_first=False)
            dpdk, expected = True, summary["events"]
        except RuntimeError as e:
            if "built without DPDK" not in str(e):
                raise
            d = Daemon(shards=2, config=TEST_CONFIG + ALARM, idle_first=False)
            dpdk, expected = False, 0
        self.daemons.append(d)
        good = b"".join(b'{"id":"t%d","ts":%d,"user":"u%d","type":"click","amount":1}\n' % (i, 1000 + i, i % 7)
                        for i in range(200))
        bad = b'{"id":"x","ts":1,\n' * 3
        with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
            s.sendall(good + bad)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(20):
                s.sendto(b'{"id":"v%d","ts":%d,"user":"u1","type":"view","amount":2}\n' % (i, 2000 + i),
                         ("127.0.0.1", d.udp_port))
        expected += 200  # and the datagrams the kernel did not drop
        deadline = time.time() + 60
        c = d.counters()
        while c["events_in"] < expected or c["ring_depth"] != 0:
            self.assertLess(time.time(), deadline, "events not in: want %d, have %r" % (expected, c))
            time.sleep(0.05)
            c = d.counters()
        return d, dpdk

    def scrape(self, d):
        path = os.path.join(self.tmp, "metrics.txt")
        url = "http://127.0.0.1:%d/metrics" % d.metrics_port
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        with open(path, "w") as f:
            f.write(text)
        return url, path, text

    def test_every_metric_the_dashboard_asks_for_is_served(self):
        d, dpdk = self.start()
        url, path, text = self.scrape(d)
        allow = [] if dpdk else ["--allow-missing=" + n for n in DPDK_PORT_FAMILIES]
        if dpdk:
            self.assertIn("spate_dpdk_port_missed_total{", text)
        code, out = run_checker(DASHBOARD, url, *allow)  # the endpoint itself
        self.assertEqual(code, 0, out)
        self.assertIn("all served", out)
        code, out = run_checker(DASHBOARD, path, *allow)  # a saved scrape
        self.assertEqual(code, 0, out)

        # One expr renamed to a metric that does not exist: the check fails and names it.
        bad = load_dashboard()
        target = next(t for p in all_panels(bad["panels"]) for t in p.get("targets", [])
                      if "spate_ring_full_waits_total" in t["expr"])
        target["expr"] = target["expr"].replace("spate_ring_full_waits_total", "spate_ring_full_waits_renamed_total")
        bad_path = os.path.join(self.tmp, "renamed.json")
        with open(bad_path, "w") as f:
            json.dump(bad, f)
        code, out = run_checker(bad_path, path, *allow)
        self.assertEqual(code, 1, out)
        self.assertIn("missing metric: spate_ring_full_waits_renamed_total (used by panel 'Ring full waits')", out)
        self.assertNotIn("spate_ring_full_waits_total", out)
        self.assertEqual(d.stop(), 0)

    def test_a_dashboard_without_panels_or_with_a_panel_without_targets_fails(self):
        metrics = os.path.join(self.tmp, "metrics.txt")
        with open(metrics, "w") as f:
            f.write("# TYPE spate_keys gauge\nspate_keys{shard=\"0\"} 1\n")
        cases = {
            "none.json": ({"title": "x", "schemaVersion": 39}, "the dashboard has no panels"),
            "empty.json": ({"title": "x", "panels": []}, "the dashboard has no panels"),
            "no_targets.json": ({"panels": [{"type": "row", "title": "r"}, {"type": "text", "title": "t"},
                                            {"type": "timeseries", "title": "Keys", "targets": [{"expr": "spate_keys"}]},
                                            {"type": "timeseries", "title": "Empty", "targets": []}]},
                                "panel 'Empty' (timeseries) has no targets"),
            "collapsed.json": ({"panels": [{"type": "row", "title": "r", "collapsed": True,
                                            "panels": [{"type": "stat", "title": "Inside"}]}]},
                               "panel 'Inside' (stat) has no targets"),
            "no_expr.json": ({"panels": [{"type": "stat", "title": "S", "targets": [{"refId": "A"}]}]},
                             "panel 'S': target A has no expr"),
        }
        for name, (dashboard, message) in cases.items():
            path = os.path.join(self.tmp, name)
            with open(path, "w") as f:
                json.dump(dashboard, f)
            code, out = run_checker(path, metrics)
            self.assertEqual(code, 1, name + ": " + out)
            self.assertIn(message, out, name)
        ok = os.path.join(self.tmp, "ok.json")
        with open(ok, "w") as f:
            json.dump({"panels": [{"type": "row", "title": "r"},
                                  {"type": "stat", "title": "K", "targets": [{"expr": "sum(spate_keys)"}]}]}, f)
        self.assertEqual(run_checker(ok, metrics)[0], 0)
        self.assertEqual(run_checker(os.path.join(self.tmp, "absent.json"), metrics)[0], 2)

    def test_the_dashboard_uses_its_variables(self):
        dash = load_dashboard()
        self.assertGreaterEqual(dash["schemaVersion"], 39)
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        for name in ("shard", "view"):
            self.assertEqual(variables[name]["type"], "query")
            self.assertTrue(variables[name]["definition"].startswith("label_values("), name)
        exprs = []
        for p in all_panels(dash["panels"]):
            if p["type"] == "row":
                continue
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p["title"])
                exprs.append(t["expr"])
        self.assertTrue(any('shard=~"$shard"' in e for e in exprs))
        self.assertTrue(any('view=~"$view"' in e for e in exprs))
        ids = [p["id"] for p in all_panels(dash["panels"])]
        self.assertEqual(len(ids), len(set(ids)))

    def test_promtool_parses_every_expr(self):
        if shutil.which("promtool") is None:
            self.skipTest("promtool is not installed (scripts/setup.sh installs prometheus, which brings it)")
        values = {"$__rate_interval": "1m", "$__range": "1h", "$shard": ".*", "$view": ".*"}
        rules = []
        for p in all_panels(load_dashboard()["panels"]):
            for n, t in enumerate(p.get("targets", [])):
                expr = t["expr"]
                for var, value in values.items():
                    expr = expr.replace(var, value)
                self.assertNotIn("$", expr, p["title"])
                rules.append({"record": "grafana:panel%d_%d" % (p["id"], n), "expr": expr})
        path = os.path.join(self.tmp, "rules.yml")
        with open(path, "w") as f:
            json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # JSON is YAML
        check = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)


class PromqlNamesTest(unittest.TestCase):
    """check_dashboard.metric_names: the names of metrics, and nothing else."""

    def test_names(self):
        names = check_dashboard.metric_names
        self.assertEqual(names('histogram_quantile(0.99, sum by (le) (rate(x_bucket{shard=~"$shard"}[$__rate_interval])))'),
                         ["x_bucket"])
        self.assertEqual(names("sum(rate(a_total[5m])) by (shard, le) / on(shard) group_left(view) b offset 1h30m"),
                         ["a_total", "b"])
        self.assertEqual(names('label_replace(x, "dst", "$1", "src", "(.*)") and without_x unless bool_y'),
                         ["x", "without_x", "bool_y"])
        self.assertEqual(names('{__name__="named", job="a"} * 1e-3 + 0x1F - .5 > bool Inf'), ["named"])
        self.assertEqual(names("topk(5, sum without (instance) (y)) @ start() # z is a comment\n+ w"), ["y", "w"])
        self.assertEqual(names('count_values("v", q) or vector(0) AND ON (a) r'), ["q", "r"])
        self.assertEqual(names("rate(m[1m:10s]) + ${shard} * $__range_s + m"), ["m"])
        self.assertEqual(names("time() - min(w > 0)"), ["w"])
        for bad in ("sum(x", 'x{a="b"', "x)", '"abc', "x]"):
            with self.assertRaises(check_dashboard.ExprError, msg=bad):
                names(bad)

    def test_variable_queries(self):
        q = check_dashboard.variable_query_names
        self.assertEqual(q('label_values(spate_events_in_total{a="b"}, shard)'), ["spate_events_in_total"])
        self.assertEqual(q("label_values(shard)"), [])
        self.assertEqual(q("query_result(sum(x) by (y))"), ["x"])
        self.assertEqual(q("metrics(spate_.*)"), [])

    def test_histogram_and_counter_suffixes(self):
        types = {"h": "histogram", "s": "summary", "c": "counter"}
        exists = check_dashboard.exists
        for name in ("h_bucket", "h_sum", "h_count", "s_sum", "s_count", "c_total", "plain"):
            self.assertTrue(exists(name, {"plain"}, types), name)
        for name in ("s_bucket", "c_bucket", "h_total", "other"):
            self.assertFalse(exists(name, {"plain"}, types), name)


if __name__ == "__main__":
    unittest.main()
