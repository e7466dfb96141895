"""Captures end to end: spate-gen writes pcap files that tshark reads, and
spated's pcap source turns their UDP datagrams and TCP streams back into
exactly the generator's aggregates; reordered, retransmitted, missing,
fragmented, truncated and foreign frames are counted by why, and a capture
cut short is read up to its cut."""

import os
import shutil
import struct
import subprocess
import time
import unittest

from spate_e2e import GeneratedInputTest, TEST_CONFIG, Daemon, read_expect

EVENTS = GeneratedInputTest.EVENTS


def read_pcap(path):
    """(header bytes, [(ts_sec, ts_usec, orig_len, data)]) of a little-endian pcap."""
    with open(path, "rb") as f:
        blob = f.read()
    header, records, at = blob[:24], [], 24
    while at + 16 <= len(blob):
        sec, usec, incl, orig = struct.unpack_from("<IIII", blob, at)
        records.append((sec, usec, orig, blob[at + 16:at + 16 + incl]))
        at += 16 + incl
    return header, records


def write_pcap(path, header, records):
    with open(path, "wb") as f:
        f.write(header)
        for sec, usec, orig, data in records:
            f.write(struct.pack("<IIII", sec, usec, len(data), orig))
            f.write(data)


def split_capture(path, out_dir, parts=2):
    """The capture's records dealt round-robin into `parts` captures (one per
    NIC queue); returns their paths and the number of records."""
    header, records = read_pcap(path)
    paths = [os.path.join(out_dir, "q%d.pcap" % q) for q in range(parts)]
    for q, part in enumerate(paths):
        write_pcap(part, header, records[q::parts])
    return paths, len(records)


def tcp_info(frame):
    """(src port, seq, flags, payload) of an Ethernet/IPv4/TCP frame spate-gen wrote."""
    ihl = (frame[14] & 0x0F) * 4
    tcp = 14 + ihl
    sport, _, seq = struct.unpack_from(">HHI", frame, tcp)
    data_off = (frame[tcp + 12] >> 4) * 4
    return sport, seq, frame[tcp + 13], frame[tcp + data_off:]


class PcapTest(GeneratedInputTest):
    SEED = 17

    def ingest(self, path, extra=""):
        """spated reading the capture; returns it once every frame is read and applied."""
        config = TEST_CONFIG + '[[source]]\ntype = "pcap"\npath = "%s"\n%s' % (path, extra)
        d = Daemon(tcp=False, udp=False, config=config, idle_first=False)
        self.daemons.append(d)
        deadline = time.time() + 60
        last = None
        while True:
            c = d.counters()
            now = (c["pcap.frames"], c["rows_handled"], c["inputs_open"])
            if now == last and c["ring_depth"] == 0 and c["inputs_open"] == 0:
                return d, c
            self.assertLess(time.time(), deadline, "the capture was not read: %r" % c)
            last = now
            time.sleep(0.3)

    def test_tshark_reads_what_spate_gen_writes_every_checksum_right(self):
        if shutil.which("tshark") is None:
            self.skipTest("tshark is not installed (scripts/setup.sh installs it)")
        for name, args in (("u.pcap", ()), ("t.pcap", ("--pcap-tcp", "--connections", "2"))):
            path = self.gen(name, *args)
            frames = len(read_pcap(path)[1])
            out = subprocess.run(["tshark", "-r", path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                                  "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "frame.number",
                                  "-e", "ip.checksum.status", "-e", "udp.checksum.status", "-e", "tcp.checksum.status",
                                  "-e", "tcp.analysis.flags"], capture_output=True, text=True, timeout=120)
            rows = [r.split("\t") for r in out.stdout.splitlines()]
            self.assertEqual(len(rows), frames, out.stderr)
            for row in rows:
                self.assertEqual(row[1], "1", row)  # good
                self.assertIn("1", row[2:4], row)
                self.assertEqual(row[4], "", row)  # no retransmission, gap or reordering seen

    def test_udp_datagrams_of_a_capture_give_the_generators_aggregates(self):
        path = self.gen("u.pcap")
        summary, windows = read_expect(self.expect)
        d, c = self.ingest(path, "verify_checksums = true\n")
        self.assertEqual(c["pcap.frames"], len(read_pcap(path)[1]))
        self.assertEqual(c["events_in"], summary["events"])
        self.assertEqual(c["errors"], 0)
        self.assertEqual(c["pcap.bad_checksums"], 0)
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

    def test_a_pcapng_capture_reads_as_its_pcap_does(self):
        if shutil.which("editcap") is None:
            self.skipTest("editcap is not installed (scripts/setup.sh installs tshark, which brings it)")
        path = self.gen("u.pcap")
        summary, windows = read_expect(self.expect)
        ng = os.path.join(self.tmp, "u.pcapng")
        subprocess.run(["editcap", "-F", "pcapng", path, ng], check=True, capture_output=True, timeout=60)
        d, c = self.ingest(ng)
        self.assertEqual(c["pcap.frames"], len(read_pcap(path)[1]))
        self.assertEqual(c["events_in"], summary["events"])
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

    def test_tcp_streams_reordered_and_retransmitted_are_reassembled_exactly(self):
        # No late events: three streams read side by side judge lateness by
        # the slowest (one not yet begun holds event time back), unlike the
        # generator's single timeline.
        path = self.gen("t.pcap", "--pcap-tcp", "--connections", "3", "--late-share", "0")
        summary, windows = read_expect(self.expect)
        header, recs = read_pcap(path)
        # In each stream: every 7th data segment swapped with the next, every 11th sent twice.
        out, swapped, doubled, i = [], 0, 0, 0
        while i < len(recs):
            _, _, flags, payload = tcp_info(recs[i][3])
            if payload and i % 7 == 0 and i + 1 < len(recs) and tcp_info(recs[i + 1][3])[3]:
                out += [recs[i + 1], recs[i]]
                swapped += 1
                i += 2
                continue
            out.append(recs[i])
            if payload and i % 11 == 0:
                out.append(recs[i])
                doubled += 1
            i += 1
        mangled = os.path.join(self.tmp, "mangled.pcap")
        write_pcap(mangled, header, out)
        d, c = self.ingest(mangled)
        self.assertGreater(swapped, 10)
        self.assertEqual(c["events_in"], summary["events"])
        self.assertEqual(c["pcap.tcp_retransmits"], doubled)
        self.assertGreaterEqual(c["pcap.tcp_out_of_order"], swapped // 2)
        self.assertEqual(c["pcap.tcp_gaps"], 0)
        self.assertEqual(c["pcap.inputs"], 1 + 3)  # the datagrams' input, and one per stream
        self.assert_views_match(d, windows)
        self.assertEqual(d.stop(), 0)

    def test_a_missing_segment_loses_exactly_the_lines_it_cuts(self):
        path = self.gen("t.pcap", "--pcap-tcp")
        summary, _ = read_expect(self.expect)
        header, recs = read_pcap(path)
        data = [i for i, r in enumerate(recs) if tcp_info(r[3])[3]]
        victim = data[len(data) // 2]
        _, seq0, _, _ = tcp_info(recs[data[0]][3])
        _, seq, _, payload = tcp_info(recs[victim][3])
        stream = b"".join(tcp_info(recs[i][3])[3] for i in data)
        lo, hi = seq - seq0, seq - seq0 + len(payload)
        # Lines that overlap the missing bytes are lost; the rest arrive.
        lost, at = 0, 0
        for line in stream.split(b"\n")[:-1]:
            end = at + len(line) + 1
            lost += at < hi and end > lo
            at = end
        mangled = os.path.join(self.tmp, "gap.pcap")
        write_pcap(mangled, header, recs[:victim] + recs[victim + 1:])
        d, c = self.ingest(mangled)
        self.assertEqual(c["pcap.tcp_gaps"], len(payload))
        self.assertEqual(c["events_in"] + c["errors"], summary["events"] - lost)
        self.assertEqual(c["errors"], 0)
        self.assertEqual(d.stop(), 0)

    def test_fragments_truncated_and_foreign_frames_are_counted_and_the_rest_applied(self):
        path = self.gen("u.pcap")
        header, recs = read_pcap(path)
        lines_in = lambda r: r[3][42:].count(b"\n")
        out, lost, kinds = [], 0, {"fragments": 0, "truncated": 0, "frames_other": 0}
        for i, r in enumerate(recs):
            data = bytearray(r[3])
            if i % 10 == 1:
                data[20] |= 0x20  # more fragments
                kinds["fragments"] += 1
            elif i % 10 == 2:
                data = data[:len(data) // 2]  # cut by a snap length
                kinds["truncated"] += 1
            elif i % 10 == 3:
                data[12:14] = b"\x08\x06"  # ARP
                kinds["frames_other"] += 1
            elif i % 10 == 4:
                data[23] = 1  # ICMP
                kinds["frames_other"] += 1
            else:
                out.append((r[0], r[1], r[2], bytes(data)))
                continue
            lost += lines_in(r)
            out.append((r[0], r[1], r[2], bytes(data)))
        mangled = os.path.join(self.tmp, "mixed.pcap")
        write_pcap(mangled, header, out)
        d, c = self.ingest(mangled)
        for k, v in kinds.items():
            self.assertEqual(c["pcap." + k], v, k)
        self.assertEqual(c["events_in"], sum(lines_in(r) for r in recs) - lost)
        self.assertEqual(d.stop(), 0)

    def test_a_capture_cut_short_is_read_up_to_the_cut(self):
        path = self.gen("u.pcap")
        header, recs = read_pcap(path)
        with open(path, "rb") as f:
            blob = f.read()
        half = len(recs) // 2
        keep = 24 + sum(16 + len(r[3]) for r in recs[:half])
        with open(path, "wb") as f:
            f.write(blob[:keep + 30])  # half the records, and a piece of the next
        d, c = self.ingest(path)
        self.assertEqual(c["pcap.frames"], half)
        self.assertEqual(c["events_in"], sum(r[3][42:].count(b"\n") for r in recs[:half]))
        self.assertEqual(d.stop(), 0)

    def test_recorded_pace_takes_the_captures_time(self):
        path = self.gen("u.pcap", "--pcap-pps", "500")
        frames = len(read_pcap(path)[1])  # about 2,500 datagrams: 5 s of capture at 500 a second
        t0 = time.time()
        d, c = self.ingest(path, 'pace = "recorded"\nspeed = 10\n')
        self.assertGreaterEqual(time.time() - t0, (frames - 1) / 500 / 10)
        self.assertEqual(c["pcap.frames"], frames)
        self.assertEqual(d.stop(), 0)

    def test_a_file_that_is_no_capture_is_refused_at_start(self):
        bogus = os.path.join(self.tmp, "x.pcap")
        with open(bogus, "wb") as f:
            f.write(b"{\"not\":\"a capture\"}\n")
        with self.assertRaises(RuntimeError) as e:
            Daemon(tcp=False, udp=False, config=TEST_CONFIG + '[[source]]\ntype = "pcap"\npath = "%s"\n' % bogus)
        self.assertIn("cannot read capture", str(e.exception))


if __name__ == "__main__":
    unittest.main()
