"""End to end: changing the pipeline on kept data. Each change either works
on the stored events (they replay under the new configuration and give the
answers they gave) or is refused at start, exit 78, saying how many stored
events it would refuse and why; `spated --check-config FILE --data-dir DIR`
says the same before anything is restarted, and changes nothing."""

import os
import subprocess
import tempfile
import unittest

from spate_e2e import SPATED, Daemon

USERS = ["u0", "u1", "u2", "u3", "u4"]
SCHEMA = '[schema]\nfields = {{ user = "string", type = "string", amount = "{amount}" }}\n'
VIEW = ('[[view]]\nname = "per_user"\nkey = "user"\nsize_ms = {size}\n'
        'aggregates = ["count", "sum(amount)"]\n')
BASE = "idle_timeout_ms = 300\n[storage]\n"


def config(amount="number", size=60000, extra=""):
    return BASE + extra + SCHEMA.format(amount=amount) + VIEW.format(size=size)


def events(fractions):
    """100 events over 5 users and 2 minutes; the first `fractions` have an amount with a fraction."""
    return b"".join(b'{"id":"e%d","ts":%d,"user":"u%d","type":"t%d","amount":%s}\n'
                    % (i, 1000 * i + 500, i % 5, i % 2, (b"%d.5" % i) if i < fractions else (b"%d" % i))
                    for i in range(100))


class SchemaChangeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="spate-schema-")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.stop()
        self.tmp.cleanup()

    def start(self, data, text):
        d = Daemon(shards=2, config=text, tcp=False, udp=False, data_dir=data)
        self.daemons.append(d)
        return d

    def path(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def spated(self, *args):
        return subprocess.run([SPATED, *args], capture_output=True, text=True, timeout=60)

    def refused_start(self, data, text):
        return self.spated("--config", self.path("start.toml", text), "--data-dir", data, "--shards", "2",
                           "--tcp-addr", "off", "--udp-addr", "off", "--query-addr", "127.0.0.1:0",
                           "--metrics-addr", "off")

    def kept(self, name, fractions):
        """A data directory holding the 100 events, logged under config(); the views as they were live."""
        data = os.path.join(self.tmp.name, name)
        d = self.start(data, config())
        reply = d.client.publish(1, 1, events(fractions))
        self.assertEqual(reply["accepted"], 100)
        live = d.client.view_get_many("per_user", USERS)
        self.assertEqual(d.stop(), 0)
        return data, live

    def test_a_changed_type_that_some_stored_events_do_not_fit_is_refused_at_start_or_dropped_when_asked(self):
        data, live = self.kept("data", fractions=10)
        # The check says what a start would do, and touches nothing.
        before = sorted(os.listdir(os.path.join(data, "shard-0")))
        out = self.spated("--check-config", self.path("int.toml", config("integer")), "--data-dir", data)
        self.assertEqual(out.returncode, 78, out.stdout + out.stderr)
        self.assertIn("100 stored events", out.stdout)
        self.assertIn("10 would be refused (10 wrong_type)", out.stdout)
        self.assertIn("'amount' in 10", out.stdout)
        self.assertIn("no checkpoint fits this configuration", out.stdout)
        self.assertIn("rebuilt from the log: per_user", out.stdout)
        self.assertEqual(sorted(os.listdir(os.path.join(data, "shard-0"))), before)

        out = self.refused_start(data, config("integer"))
        self.assertEqual(out.returncode, 78, out.stderr)
        self.assertIn("10 stored events, accepted when they were logged, are refused by this configuration "
                      "(10 wrong_type); fields missing or of another type: 'amount' in 10", out.stderr)
        self.assertIn('replay_refused = \\"drop\\"', out.stderr)
        # Nothing was written that would hide them from the next start: refused again.
        self.assertEqual(self.refused_start(data, config("integer")).returncode, 78)
        # And the old configuration still finds every event.
        d = self.start(data, config())
        self.assertEqual(d.client.view_get_many("per_user", USERS), live)
        self.assertEqual(d.stop(), 0)

        # Asked to, it starts without them, and counts them.
        d = self.start(data, config("integer", extra='replay_refused = "drop"\n'))
        c = d.counters()
        self.assertEqual((c["replay.events_in"], c["replay.errors.wrong_type"]), (90, 10))
        self.assertEqual(sum(r["count"] for rows in d.client.view_get_many("per_user", USERS).values() for r in rows), 90)
        self.assertIn("stored events refused on replay and dropped", d.read_log())

    def test_a_type_key_window_or_field_change_the_stored_events_fit_rebuilds_the_views_from_them(self):
        data, live = self.kept("data", fractions=0)
        # Every stored amount is integral: integer fits, and the sums are the same (exact now).
        out = self.spated("--check-config", self.path("int.toml", config("integer")), "--data-dir", data)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("none would be refused", out.stdout)
        d = self.start(data, config("integer"))
        self.assertEqual(d.client.view_get_many("per_user", USERS), live)
        self.assertEqual(d.stop(), 0)
        # A field dropped from the schema (no view used it): the stored values are skipped.
        dropped = BASE + '[schema]\nfields = { user = "string", amount = "integer" }\n' + VIEW.format(size=60000)
        d = self.start(data, dropped)
        self.assertEqual(d.client.view_get_many("per_user", USERS), live)
        self.assertEqual(d.stop(), 0)
        # Another window: rebuilt from the log, every event in it.
        d = self.start(data, config("integer", size=10000))
        rows = d.client.view_get_many("per_user", USERS)
        self.assertEqual(sum(r["count"] for rs in rows.values() for r in rs), 100)
        self.assertEqual({r["window_start"] for rs in rows.values() for r in rs}, set(range(0, 100000, 10000)))
        self.assertEqual(d.stop(), 0)
        # Another key: the same view name keyed by type, rebuilt.
        by_type = config("integer").replace('key = "user"', 'key = "type"')
        out = self.spated("--check-config", self.path("type.toml", by_type), "--data-dir", data)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("rebuilt from the log: per_user", out.stdout)
        d = self.start(data, by_type)
        self.assertEqual(sum(r["count"] for r in d.client.view_get("per_user", "t0")), 50)
        self.assertEqual(d.stop(), 0)
        # A clean stop's checkpoint fits the same configuration: nothing rebuilt.
        out = self.spated("--check-config", self.path("type.toml", by_type), "--data-dir", data)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("checkpoint", out.stdout)
        self.assertIn("no view is rebuilt", out.stdout)


if __name__ == "__main__":
    unittest.main()
