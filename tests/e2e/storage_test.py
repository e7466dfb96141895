"""The hot log end to end: what was acknowledged survives restarts and kill -9
exactly once, torn and corrupt segments are reported and survived, and the
data directory refuses another shard count."""

import collections
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import spate_client
from spate_e2e import SPATED, SPATE_GEN, SPATE_INSPECT, TEST_CONFIG, Daemon, E2ETest, read_expect

EVENTS = 20000
# Checkpoints off: a restart replays every segment.
REPLAY_ONLY = TEST_CONFIG + "[storage]\ncheckpoint_interval_ms = 0\n"


def inspect(*args):
    return subprocess.run([SPATE_INSPECT, *args], capture_output=True, text=True, timeout=120)


def dumped_ids(data_dir):
    """The id of every event the segments hold, with its multiplicity."""
    out = inspect("dump", data_dir)
    return collections.Counter(json.loads(line)["id"] for line in out.stdout.splitlines()), out


class StorageTest(E2ETest):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="spate-storage-")
        self.data = os.path.join(self.tmp.name, "data")
        self.expect = os.path.join(self.tmp.name, "expect.ndjson")
        self.input = os.path.join(self.tmp.name, "in.ndjson")
        subprocess.run([SPATE_GEN, "--events", str(EVENTS), "--seed", "21", "--out", self.input,
                        "--expect", self.expect], check=True, timeout=120, capture_output=True)
        self.summary, self.windows = read_expect(self.expect)
        with open(self.input, "rb") as f:
            self.lines = f.read().splitlines(keepends=True)
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            d.client.close()
            d.proc.stdout.close()
            d.log.close()
            d.dir.cleanup()
        self.tmp.cleanup()

    def start(self, **kw):
        kw.setdefault("tcp", False)
        kw.setdefault("udp", False)
        d = Daemon(data_dir=self.data, **kw)
        self.daemons.append(d)
        return d

    def publish_all(self, daemon, batch=500, producer=7):
        for seq, i in enumerate(range(0, len(self.lines), batch), start=1):
            reply = daemon.client.publish(producer, seq, b"".join(self.lines[i:i + batch]))
            self.assertFalse(reply["duplicate"])

    def test_a_restart_replays_the_segments_and_every_view_comes_back_exactly(self):
        d = self.start()
        self.publish_all(d)
        self.assert_views_match(d, self.windows)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(inspect("verify", self.data).returncode, 0)
        ids, _ = dumped_ids(self.data)
        self.assertEqual(sum(ids.values()), EVENTS)

        # A clean stop wrote a checkpoint of everything: nothing replays.
        d = self.start()
        self.assertIn('msg="recovery: checkpoint loaded" epoch=1 blocks_to_replay=0\n', d.read_log())
        self.assertEqual(d.counters()["replay.events_in"], 0)
        self.assert_views_match(d, self.windows)
        reply = d.client.publish(7, 3, self.lines[0])  # the sequences are in the checkpoint
        self.assertEqual(reply, {"accepted": 0, "rejected": 0, "duplicate": True})
        self.assertEqual(d.stop(), 0)
        d = self.start()  # and in the checkpoint of a run that loaded them and published nothing
        self.assertIn('msg="recovery: checkpoint loaded" epoch=2 ', d.read_log())
        self.assertTrue(d.client.publish(7, 3, self.lines[0])["duplicate"])
        self.assert_views_match(d, self.windows)
        self.assertEqual(d.stop(), 0)
        for shard in ("shard-0", "shard-1"):
            shutil.rmtree(os.path.join(self.data, shard, "checkpoints"))

        # Without checkpoints, and with live sources configured again (a UDP
        # socket is an input from the start): they must not hold event time
        # back while the segments replay, or the replayed late events would
        # land in closed windows.
        d = self.start(tcp=True, udp=True)
        c = d.counters()
        self.assertEqual(c["replay.events_in"], EVENTS)
        log = d.read_log()
        self.assertIn('msg="recovery: no checkpoint loaded, replaying the whole log" checkpoint_epoch=0 ', log)
        self.assertIn(" events=%d\n" % EVENTS, log)
        # Each shard that held segments says what it replayed, and how long it took.
        done = [line for line in log.splitlines() if 'msg="replay done"' in line]
        self.assertEqual(sum(int(line.split(" events=")[1].split()[0]) for line in done), EVENTS)
        self.assertTrue(all(" ms=" in line for line in done))
        self.assertEqual(c["late.per_user_1m"], self.summary["late"])
        self.assertEqual(c["publish.events_in"], 0)
        self.assertEqual(c["errors"], 0)
        self.assert_views_match(d, self.windows)
        # The producer's batches are known again: a resend is a duplicate.
        reply = d.client.publish(7, 3, self.lines[0])
        self.assertEqual(reply, {"accepted": 0, "rejected": 0, "duplicate": True})
        self.assertEqual(d.stop(), 0)

    def test_each_durability_says_what_it_promised(self):
        for mode in ("none", "group", "sync"):
            d = Daemon(tcp=False, udp=False, config='idle_timeout_ms = 300\n[storage]\ndurability = "%s"\n' % mode)
            self.daemons.append(d)
            reply = d.client.publish(1, 1, b"".join(self.lines[:100]))
            self.assertEqual(reply["accepted"], 100)
            self.assertEqual(reply["durability"], mode)
            c = d.counters()
            if mode != "none":
                self.assertGreaterEqual(c["storage.syncs"], 1)
            self.assertEqual(d.stop(), 0)

    def test_a_producer_that_resends_after_kill_9_changes_no_aggregate(self):
        """Batches go out one at a time; the daemon is killed with SIGKILL at
        random moments; after each restart the producer resends from its first
        unacknowledged batch. In the end every event is counted once in the
        views and stored once in the segments."""
        self.crash_rounds(TEST_CONFIG, seed=5)

    def test_kill_9_during_checkpoints_changes_no_aggregate(self):
        """The same with a checkpoint every 50 ms: kills land before, inside
        and after checkpoints, and restarts load them and replay the rest."""
        self.crash_rounds(TEST_CONFIG + "[storage]\ncheckpoint_interval_ms = 50\n", seed=6, checkpoints=True)

    def crash_rounds(self, config, seed, checkpoints=False):
        batch = 20
        batches = [b"".join(self.lines[i:i + batch]) for i in range(0, len(self.lines), batch)]
        rng = random.Random(seed)
        acked = 0  # batches [0, acked) are acknowledged
        loaded = 0  # restarts that loaded a checkpoint
        kills = 0
        deadline = time.time() + 240
        while acked < len(batches) or kills < 20:
            self.assertLess(time.time(), deadline, "crash rounds took too long (%d kills, %d acked)" % (kills, acked))
            d = self.start(idle_first=False, config=config)
            loaded += 'msg="recovery: checkpoint loaded"' in d.read_log()
            if acked == len(batches):
                break
            killer = threading.Timer(rng.uniform(0.02, 0.2), lambda p=d.proc: p.send_signal(signal.SIGKILL))
            killer.start()
            try:
                while acked < len(batches):
                    reply = d.client.publish(9, acked + 1, batches[acked])
                    # A batch the segments held before a crash comes back as a duplicate.
                    self.assertEqual(reply["accepted"] + reply["rejected"] if not reply["duplicate"] else batch,
                                     min(batch, EVENTS - acked * batch))
                    acked += 1
            except (OSError, spate_client.ProtocolError, spate_client.SpateError):
                pass
            killer.join()
            if d.proc.wait(10) == -signal.SIGKILL:
                kills += 1
            else:  # every batch acknowledged before the timer fired
                break
        self.assertGreaterEqual(kills, 20)
        self.assertEqual(acked, len(batches))
        d = self.daemons[-1] if self.daemons[-1].proc.poll() is None else self.start(config=config)
        c = d.counters()
        if checkpoints:  # what a loaded checkpoint holds is not counted again
            self.assertGreater(loaded, 0, "no restart loaded a checkpoint")
        else:
            self.assertEqual(c["events_in"], EVENTS)
        self.assertEqual(c["errors"], 0)
        self.assert_views_match(d, self.windows)
        self.assertEqual(d.stop(), 0)
        ids, _ = dumped_ids(self.data)
        expected = collections.Counter(json.loads(line)["id"] for line in self.lines)
        self.assertEqual(ids, expected)

    def test_a_restart_loads_the_newest_checkpoint_and_replays_only_what_came_after(self):
        config = TEST_CONFIG + "[storage]\ncheckpoint_interval_ms = 200\nblock_bytes = 4096\n"
        d = self.start(config=config)
        half = len(self.lines) // 2
        for seq, i in enumerate(range(0, half, 500), start=1):
            d.client.publish(7, seq, b"".join(self.lines[i:i + 500]))
        deadline = time.time() + 20
        while min(s["counters"]["checkpoint.epoch"] for s in d.client.stats()) < 2:
            self.assertLess(time.time(), deadline, "no checkpoint written: %r" % d.client.stats())
            time.sleep(0.05)
        for shard in d.client.stats():
            c = shard["counters"]
            self.assertGreater(c["checkpoint.count"], 0)
            self.assertGreater(c["checkpoint.bytes"], 0)
            self.assertEqual(c["checkpoint.failures"], 0)
        # Most of the second half lands after the last checkpoint: it replays.
        for seq, i in enumerate(range(half, len(self.lines), 500), start=1000):
            d.client.publish(7, seq, b"".join(self.lines[i:i + 500]))
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()

        d = self.start(config=config)
        log = d.read_log()
        self.assertRegex(log, r'msg="recovery: checkpoint loaded" epoch=\d+ blocks_to_replay=\d+\n')
        replayed = d.counters()["events_in"]
        self.assertLess(replayed, EVENTS, "the whole log replayed: " + log)
        self.assert_views_match(d, self.windows)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()

        # The newest checkpoint of one shard damaged: an older epoch (or the
        # whole log) serves instead, and the views are the same.
        newest = sorted(os.listdir(os.path.join(self.data, "shard-1", "checkpoints")))[-1]
        path = os.path.join(self.data, "shard-1", "checkpoints", newest)
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0x40]))
        self.assertNotEqual(inspect("verify", self.data).returncode, 0)
        d = self.start(config=config)
        self.assertIn('msg="recovery: checkpoint unusable, an older one is tried" shard=1 ', d.read_log())
        self.assertIn(' path=%s error="checksum mismatch"\n' % path, d.read_log())
        self.assert_views_match(d, self.windows)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()

        # Another state layout (here the dedup horizon): the checkpoints
        # do not fit it, and the whole log replays.
        d = self.start(config=config + "[dedup]\nhorizon_ms = 600000\n")
        self.assertIn("taken with other views, schema or dedup settings", d.read_log())
        self.assertEqual(d.counters()["events_in"], EVENTS)
        self.assert_views_match(d, self.windows)
        self.assertEqual(d.stop(), 0)

    def test_torn_and_corrupt_segments_are_reported_and_the_rest_replays(self):
        d = self.start(config=REPLAY_ONLY + 'block_bytes = 4096\n')
        self.publish_all(d, producer=3)
        self.publish_all(d, producer=4)  # a second producer, likely on the other shard
        self.assertEqual(d.stop(), 0)
        segments = sorted(os.path.join(r, f) for r, _, fs in os.walk(self.data) for f in fs if f.endswith(".seg"))
        self.assertEqual(len(segments), 2)
        listing = inspect("list", segments[0]).stdout
        # A torn tail in the first: cut in the middle of its last block.
        size = os.path.getsize(segments[0])
        os.truncate(segments[0], size - 200)
        # A flipped byte in the middle of the second.
        with open(segments[1], "r+b") as f:
            f.seek(os.path.getsize(segments[1]) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x40]))
        self.assertEqual(inspect("verify", self.data).returncode, 1)

        d = self.start(config=REPLAY_ONLY + 'block_bytes = 4096\n')
        log = d.read_log()
        self.assertIn("torn tail", log)
        self.assertIn("bytes cut off", log)
        self.assertIn("quarantined", log)
        self.assertTrue(os.path.exists(segments[1] + ".quarantined"))
        c = d.counters()
        # The torn segment's good blocks replay: all but the last block's events.
        ids, _ = dumped_ids(os.path.dirname(segments[0]))
        self.assertEqual(c["replay.events_in"], sum(ids.values()))
        self.assertGreater(c["replay.events_in"], 0)
        self.assertLess(c["replay.events_in"], 2 * EVENTS)
        self.assertEqual(c["errors"], 0)
        self.assertEqual(d.stop(), 0, listing)
        # The torn one is whole again; only the quarantined file fails.
        out = inspect("verify", self.data)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout.count("FAIL"), 1, out.stdout)

    def test_rejected_lines_go_to_dead_letters_with_their_reason_and_keep_raw_keeps_lines_exactly(self):
        bad = [b'{"id":"b1","ts":1764000000000,"user":"u1"}\n',                      # missing_field
               b'{"id":"b2","ts":"yesterday","user":"u1","type":"x","amount":1}\n',  # bad_timestamp
               b'{"id":"b3",\x01}\n']                                               # malformed_json
        good = self.lines[:300]
        d = self.start(config=REPLAY_ONLY + 'keep_raw = true\n')
        reply = d.client.publish(1, 1, b"".join(good[:150] + bad + good[150:]))
        self.assertEqual((reply["accepted"], reply["rejected"]), (300, 3))
        self.assertEqual(d.stop(), 0)
        dead = []
        for root, dirs, files in os.walk(self.data):
            if os.path.basename(root) == "dead":
                dead += [json.loads(l) for l in inspect("dump", root).stdout.splitlines()]
        self.assertEqual(sorted((x["reason"], x["source"], x["line"].encode()) for x in dead),
                         sorted([("missing_field", "publish", bad[0].rstrip(b"\n")),
                                 ("bad_timestamp", "publish", bad[1].rstrip(b"\n")),
                                 ("malformed_json", "publish", bad[2].rstrip(b"\n"))]))
        # keep_raw: each event's line exactly as it came, beside its fields.
        kept = [l for l in inspect("dump", self.data).stdout.splitlines() if '"reason"' not in l]
        raws = sorted(l[l.index('"_raw":') + len('"_raw":'):-1].encode() for l in kept)  # the last field
        self.assertEqual(raws, sorted(l.rstrip(b"\n") for l in good))
        # A restart replays the raw lines, and the rejected ones are not replayed.
        d = self.start(config=REPLAY_ONLY + 'keep_raw = true\n')
        c = d.counters()
        self.assertEqual(c["replay.events_in"], 300)
        self.assertEqual(c["errors"], 0)
        self.assertEqual(d.stop(), 0)

    def test_dead_letters_are_kept_within_their_byte_budget_and_the_rest_counted(self):
        d = self.start(shards=1, config='idle_timeout_ms = 300\n[storage]\ndead_letter_bytes_per_s = 100\n')
        bad = b"".join(b"{\"broken %02d\n" % i for i in range(20))  # 11 bytes a line, without its newline
        self.assertEqual(d.client.publish(1, 1, bad)["rejected"], 20)
        self.assertEqual(d.counters()["storage.dead_letters_dropped"], 11)
        self.assertEqual(d.stop(), 0)
        kept = inspect("dump", os.path.join(self.data, "shard-0", "dead")).stdout.splitlines()
        self.assertEqual(len(kept), 9)  # a burst of 100 bytes: 9 lines of 11

    def test_a_full_disk_pauses_ingest_refuses_publish_and_loses_nothing(self):
        mnt = os.path.join(self.tmp.name, "mnt")
        os.makedirs(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs here (needs root)")
        try:
            ballast = os.path.join(mnt, "ballast")
            with open(ballast, "wb") as f:
                f.write(os.urandom(1800 * 1024))
            self.data = os.path.join(mnt, "data")
            d = self.start(tcp=True, config='idle_timeout_ms = 300\n[storage]\ndisk_high_water_percent = 60\n'
                                            'disk_low_water_percent = 50\nblock_bytes = 4096\n')
            accepted, refused, seq = 0, 0, 0
            deadline = time.time() + 60
            while refused == 0:
                self.assertLess(time.time(), deadline, "the disk never filled")
                seq += 1
                i = (seq * 100) % (len(self.lines) - 100)
                try:
                    accepted += d.client.publish(2, seq, b"".join(self.lines[i:i + 100]))["accepted"]
                except spate_client.SpateError as e:
                    self.assertEqual(e.status_code, spate_client.Status.DISK_FULL, str(e))
                    refused += 1
            # Both shards write to this filesystem; each looks every 100 ms.
            deadline = time.time() + 5
            while d.counters()["storage.disk_full"] != 2:
                self.assertLess(time.time(), deadline, "not every shard saw the disk full: %r" % d.counters())
                time.sleep(0.02)
            c = d.counters()
            self.assertGreaterEqual(c["storage.disk_full_events"], 1)
            self.assertEqual(c["publish.events_in"], accepted)
            # TCP is not read while full: its lines wait in the socket.
            import socket
            with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
                s.sendall(b"".join(self.lines[:500]))
                time.sleep(0.5)
                self.assertEqual(d.counters()["tcp.events_in"], 0)
                # The lag shows: nothing is accepted while full, so the connection waits in
                # the listener's accept queue (measured every second).
                deadline = time.time() + 5
                while d.counters()["tcp.accept_queue"] != 1:
                    self.assertLess(time.time(), deadline, "no bytes seen waiting: %r" % d.counters())
                    time.sleep(0.05)
                # Room again: below the low-water mark ingest resumes and nothing was lost.
                os.unlink(ballast)
                deadline = time.time() + 20
                while d.counters()["tcp.events_in"] < 500:
                    self.assertLess(time.time(), deadline, "TCP did not resume: %r" % d.counters())
                    time.sleep(0.05)
            # Each shard looks again within 100 ms; the one reading TCP may be first.
            deadline = time.time() + 5
            while d.counters()["storage.disk_full"] != 0:
                self.assertLess(time.time(), deadline, "a shard still sees the disk full: %r" % d.counters())
                time.sleep(0.02)
            seq += 1
            self.assertEqual(d.client.publish(2, seq, self.lines[0])["accepted"], 1)
            self.assertIn("high-water mark", d.read_log())
            self.assertEqual(d.stop(), 0)
        finally:
            subprocess.run(["umount", "-l", mnt])

    def test_segments_older_than_the_hot_retention_are_deleted(self):
        d = self.start(shards=1, config='idle_timeout_ms = 300\n[storage]\nsegment_ms = 1000\nhot_retention_ms = 1500\n')
        d.client.publish(1, 1, b"".join(self.lines[:100]))
        time.sleep(1.2)  # the segment is a second old: the next block rolls it
        d.client.publish(1, 2, b"".join(self.lines[100:200]))
        deadline = time.time() + 10
        while d.counters()["storage.segments_expired"] == 0:
            self.assertLess(time.time(), deadline, "no segment expired: %r" % d.counters())
            time.sleep(0.1)
        c = d.counters()
        self.assertEqual(c["storage.segments_expired"], 1)
        self.assertGreater(c["storage.bytes_expired"], 0)
        self.assertEqual(d.stop(), 0)
        ids, _ = dumped_ids(self.data)
        self.assertEqual(sum(ids.values()), 100)  # the second batch's segment is left

    def test_the_same_input_sent_twice_changes_no_aggregate(self):
        """20,000 events (20 s of event time, inside the dedup horizon: the
        widest window and its lateness) over TCP, then all of them again on
        another connection: every non-late event of the second pass is a
        duplicate, the views are the expected ones, and a restart keeps it so."""
        import socket
        d = self.start(tcp=True, config=REPLAY_ONLY)
        data = b"".join(self.lines)

        def send():
            with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
                s.sendall(data)

        send()
        d.wait_applied(EVENTS)
        self.assert_views_match(d, self.windows)
        first = d.counters()
        send()
        d.wait_applied(2 * EVENTS)
        c = d.counters()
        late = self.summary["late"]
        self.assertEqual(c["dedup.duplicates"] - first["dedup.duplicates"], EVENTS - late)
        self.assertEqual(c["late.per_user_1m"] - first["late.per_user_1m"], late)  # beyond the horizon: late again
        self.assertEqual(c["dedup.beyond_horizon"] - first["dedup.beyond_horizon"], late)
        self.assertGreater(c["dedup.ids"], 0)
        self.assertGreater(c["dedup.bytes"], 0)
        self.assert_views_match(d, self.windows)
        self.assertEqual(d.stop(), 0)
        d = self.start(config=REPLAY_ONLY)  # the replay meets the same duplicates
        self.assertEqual(d.counters()["replay.events_in"], 2 * EVENTS)
        self.assert_views_match(d, self.windows)
        self.assertEqual(d.stop(), 0)

    def test_a_second_daemon_on_the_same_data_directory_is_refused_naming_the_first(self):
        d = self.start(shards=1)
        d.client.publish(1, 1, self.lines[0])
        with self.assertRaises(RuntimeError) as e:
            self.start(shards=1)
        self.assertIn("is in use by another spated (pid %d, started " % d.proc.pid, str(e.exception))
        self.assertEqual(d.client.view_get("per_type_10s", json.loads(self.lines[0])["type"])[0]["count"], 1)
        # The kernel drops the lock with the process, kill -9 included.
        d.proc.kill()
        d.proc.wait()
        again = self.start(shards=1)
        self.assertEqual(again.counters()["events_in"], 1)
        self.assertEqual(again.stop(), 0)

    def test_a_segment_that_cannot_be_created_pauses_ingest_and_loses_nothing(self):
        d = self.start(shards=1, tcp=True, config=TEST_CONFIG + "[storage]\nsegment_ms = 1000\n")
        self.assertEqual(d.client.publish(1, 1, b"".join(self.lines[:100]))["accepted"], 100)
        shard_dir = os.path.join(self.data, "shard-0")
        newest = max(int(n[:-4]) for n in os.listdir(shard_dir) if n.endswith(".seg"))
        # Files in the way of the next segments: creating them fails (EEXIST).
        squatters = [os.path.join(shard_dir, "%020d.seg" % (newest + k)) for k in (1, 2, 3)]
        for path in squatters:
            open(path, "wb").close()
        time.sleep(1.2)  # the open segment is older than segment_ms: the next block opens a new one
        import socket
        tcp_lines = self.lines[100:4100]
        with socket.create_connection(("127.0.0.1", d.tcp_port)) as s:
            s.sendall(b"".join(tcp_lines[:2000]))
            deadline = time.time() + 10
            while d.counters()["storage.cannot_store"] != 1:
                self.assertLess(time.time(), deadline, "the log never said it cannot store: %r" % d.counters())
                time.sleep(0.02)
            # Paused: what was read before waits in memory, what comes now in the socket.
            paused_at = d.counters()["tcp.events_in"]
            s.sendall(b"".join(tcp_lines[2000:]))
            time.sleep(0.5)
            self.assertEqual(d.counters()["tcp.events_in"], paused_at)
            with self.assertRaises(spate_client.SpateError) as e:
                d.client.publish(1, 2, b"".join(self.lines[4100:4200]))
            self.assertEqual(e.exception.status_code, spate_client.Status.STORAGE_FAILED, str(e.exception))
            self.assertIn("nothing was taken", str(e.exception))
            self.assertGreaterEqual(d.counters()["storage.write_errors"], 1)
            self.assertIn("cannot create segment: ingest paused", d.read_log())
            for path in squatters:
                os.unlink(path)
            deadline = time.time() + 10
            while d.counters()["tcp.events_in"] < len(tcp_lines):
                self.assertLess(time.time(), deadline, "TCP did not resume: %r" % d.counters())
                time.sleep(0.05)
        self.assertEqual(d.counters()["storage.cannot_store"], 0)
        self.assertEqual(d.client.publish(1, 2, b"".join(self.lines[4100:4200]))["accepted"], 100)
        self.assertIn("segment created: ingest resumed", d.read_log())
        self.assertEqual(d.counters()["storage.blocks_lost"], 0)
        self.assertEqual(d.stop(), 0)
        # Every event taken is in the segments exactly once.
        ids, out = dumped_ids(self.data)
        want = collections.Counter(json.loads(line)["id"] for line in self.lines[:4200])
        self.assertEqual(ids, want, out.stderr)

    def test_a_field_added_to_the_schema_replays_the_kept_events_or_is_refused_saying_why(self):
        views = ('[[view]]\nname = "per_user_1m"\nkey = "user"\nsize_ms = 60000\n'
                 'aggregates = ["count", "sum(amount)"]\n'
                 '[[view]]\nname = "per_type_1m"\nkey = "type"\nsize_ms = 60000\naggregates = ["count"]\n')
        base = TEST_CONFIG + "[storage]\ncheckpoint_interval_ms = 0\n"
        d = self.start(shards=2, config=base + views)
        self.publish_all(d)
        users = sorted({json.loads(line)["user"] for line in self.lines})[:20]
        before = d.client.view_get_many("per_user_1m", users)
        types = set()
        for line in self.lines:
            try:
                t = json.loads(line).get("type")
            except (ValueError, AttributeError):
                continue
            if isinstance(t, str):
                types.add(t)
        types = sorted(types)
        # Every row of a one-minute view, whatever its key (lateness depends on the window, not the key).
        rows = sum(r["count"] for rs in d.client.view_get_many("per_type_1m", types).values() for r in rs)
        self.assertEqual(d.stop(), 0)

        # A new required field: every kept event lacks it. Refused, exit 78, with the count and the way out.
        required = base + '[schema]\nfields = { user = "string", type = "string", amount = "number", region = "string" }\n' + views
        path = os.path.join(self.tmp.name, "required.toml")
        with open(path, "w") as f:
            f.write(required)
        out = subprocess.run([SPATED, "--config", path, "--data-dir", self.data, "--shards", "2", "--tcp-addr", "off",
                              "--udp-addr", "off", "--query-addr", "127.0.0.1:0", "--metrics-addr", "off"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 78, out.stderr)
        self.assertIn("field 'region' is required but %d stored events lack it" % EVENTS, out.stderr)
        self.assertIn("required = false", out.stderr)

        # Optional with a default: the kept events replay with it, the old view is unchanged,
        # and a new view keyed by it is built from the log.
        optional = (base + '[schema]\nfields = { user = "string", type = "string", amount = "number", '
                    'region = { type = "string", required = false, default = "unknown" } }\n' + views +
                    '[[view]]\nname = "per_region"\nkey = "region"\nsize_ms = 60000\naggregates = ["count"]\n')
        d = self.start(shards=2, config=optional)
        self.assertEqual(d.client.view_get_many("per_user_1m", users), before)
        self.assertEqual(sum(r["count"] for r in d.client.view_get("per_region", "unknown")), rows)
        new = [b'{"id":"r1","ts":%d,"user":"zz","type":"t","amount":1,"region":"eu"}\n' % json.loads(self.lines[-1])["ts"],
               b'{"id":"r2","ts":%d,"user":"zz","type":"t","amount":1,"region":null}\n' % json.loads(self.lines[-1])["ts"],
               b'{"id":"r3","ts":%d,"user":"zz","type":"t","amount":1,"region":7}\n' % json.loads(self.lines[-1])["ts"]]
        reply = d.client.publish(9, 1, b"".join(new))
        self.assertEqual((reply["accepted"], reply["rejected"]), (2, 1))  # a value of another type is still wrong_type
        self.assertEqual(sum(r["count"] for r in d.client.view_get("per_region", "eu")), 1)
        self.assertEqual(sum(r["count"] for r in d.client.view_get("per_region", "unknown")), rows + 1)
        # After a crash the log replays the same way.
        d.proc.kill()
        d.proc.wait()
        d = self.start(shards=2, config=optional)
        self.assertEqual(sum(r["count"] for r in d.client.view_get("per_region", "unknown")), rows + 1)
        self.assertEqual(sum(r["count"] for r in d.client.view_get("per_region", "eu")), 1)
        self.assertEqual(d.client.view_get_many("per_user_1m", users), before)
        self.assertEqual(d.stop(), 0)

    def test_another_shard_count_is_refused_with_the_reason(self):
        d = self.start(shards=2)
        d.client.publish(1, 1, self.lines[0])
        self.assertEqual(d.stop(), 0)
        with self.assertRaises(RuntimeError) as e:
            self.start(shards=3)
        self.assertIn("holds segments of 2 shards and this run has 3", str(e.exception))


if __name__ == "__main__":
    unittest.main()
