// Segments: the block format round trip, the log written through io_uring,
// and what a scan and recovery make of torn and corrupted files.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "io/file/source.hpp"
#include "storage/segment_file.hpp"
#include "storage/segment_log.hpp"

namespace fs = std::filesystem;
using namespace spate::storage;

namespace {

struct Text {
  const char* data;
  std::size_t size;
};

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/spate-seg-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Event i: {"id":"e<i>","ts":<1000+i>,"user":"u<i%7>"} with "amount" only on even i.
std::vector<std::string> event_fields(int i) {
  std::vector<std::string> f = {"\"e" + std::to_string(i) + "\"", std::to_string(1000 + i),
                                "\"u" + std::to_string(i % 7) + "\"", i % 2 == 0 ? std::to_string(i) + ".5" : ""};
  return f;
}

void append_event(SegmentLog& log, int i) {
  const auto f = event_fields(i);
  Text t[4];
  std::uint64_t present = 0;
  for (int k = 0; k < 4; ++k) {
    t[k] = {f[static_cast<std::size_t>(k)].data(), f[static_cast<std::size_t>(k)].size()};
    if (!f[static_cast<std::size_t>(k)].empty()) present |= 1u << k;
  }
  log.append(t, present, 1000 + i, 0);
}

LogOptions options(const fs::path& dir, Codec codec = Codec::lz4) {
  LogOptions o;
  o.dir = dir.string();
  o.fields = {"id", "ts", "user", "amount"};
  o.codec = codec;
  o.block_bytes = 2000;
  o.durability = Durability::sync;
  return o;
}

// Every event of every clean segment of `dir`, field texts joined by '|'.
std::vector<std::string> read_all(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& path : list_segments(dir.string())) {
    SegmentReader reader;
    std::string error;
    REQUIRE(reader.open(path, error));
    const SegmentScan scan = scan_segment(path);
    Block block;
    for (const BlockInfo& info : scan.blocks) {
      REQUIRE(reader.read_block(info.offset, true, block) == BlockStatus::ok);
      for (std::uint32_t e = 0; e < block.info.events; ++e) {
        std::string line;
        for (std::size_t f = 0; f < block.fields; ++f) {
          if (f > 0) line += '|';
          line += block.values[e * block.fields + f];
        }
        out.push_back(line);
      }
    }
  }
  return out;
}

std::string expected_line(int i) {
  const auto f = event_fields(i);
  return f[0] + "|" + f[1] + "|" + f[2] + "|" + f[3];
}

void write_events(const fs::path& dir, int n, Codec codec = Codec::lz4, std::uint64_t segment_bytes = 128u << 20) {
  LogOptions o = options(dir, codec);
  o.segment_bytes = segment_bytes;
  SegmentLog log(o, -1);
  for (int i = 0; i < n; ++i) {
    append_event(log, i);
    if (i % 10 == 9) log.end_chunk(0);
  }
  log.close();
}

}  // namespace

TEST_CASE("segment: every field of every event reads back exactly, with each codec") {
  for (Codec codec : {Codec::none, Codec::lz4, Codec::zstd}) {
    TempDir dir;
    write_events(dir.path, 500, codec);
    const auto lines = read_all(dir.path);
    REQUIRE(lines.size() == 500);
    for (int i = 0; i < 500; ++i) CHECK(lines[static_cast<std::size_t>(i)] == expected_line(i));
    const auto scan = scan_segment(list_segments(dir.path.string()).at(0));
    CHECK(scan.state == SegmentState::clean);
    CHECK(scan.sealed);
    CHECK(scan.events == 500);
    CHECK(scan.header.fields == std::vector<std::string>{"id", "ts", "user", "amount"});
    CHECK(scan.blocks.front().min_ts_ms == 1000);
    CHECK(scan.blocks.size() > 3);
  }
}

TEST_CASE("segment: positions travel in the block of their events") {
  TempDir dir;
  {
    SegmentLog log(options(dir.path), -1);
    append_event(log, 1);
    log.add_position({3, 77, 5});
    log.end_chunk(0);
    log.close();
  }
  SegmentReader reader;
  std::string error;
  const auto path = list_segments(dir.path.string()).at(0);
  REQUIRE(reader.open(path, error));
  Block block;
  REQUIRE(reader.read_block(scan_segment(path).blocks.at(0).offset, true, block) == BlockStatus::ok);
  REQUIRE(block.positions.size() == 1);
  CHECK(block.positions[0].kind == 3);
  CHECK(block.positions[0].input == 77);
  CHECK(block.positions[0].value == 5);
}

TEST_CASE("segment: each event's stamp reads back exactly, in about a byte an event; unstamped blocks have none") {
  BlockBuilder builder(1);
  const std::string value = "1";
  const Text t[1] = {{value.data(), value.size()}};
  // No claim yet, then a jump past 2^63 in one difference, steps and repeats.
  const std::vector<std::int64_t> stamps = {INT64_MIN, INT64_MIN, 1700000000000, 1700000000000, 1700000000001,
                                            1700000000128, INT64_MAX};
  for (const std::int64_t s : stamps) builder.append(t, 1, 5, s);
  std::string bytes;
  const BlockInfo info = builder.encode(Codec::none, 0, 42, bytes);
  CHECK(static_cast<std::uint8_t>(bytes[33]) == kBlockHasStamps);
  Block block;
  REQUIRE(decode_block(bytes, 1, block) == BlockStatus::ok);
  CHECK(block.stamps == stamps);
  // They end the payload: the first in 8 bytes, then the LEB128 varint of each difference.
  const std::string golden(
      "\x00\x00\x00\x00\x00\x00\x00\x80"  // INT64_MIN
      "\x00"                                  // + 0
      "\x80\xd0\x95\xff\xbc\xb1\x80\x80\x80\x01"  // + 2^63 + 1700000000000
      "\x00\x01\x7f"                          // + 0, + 1, + 127
      "\xff\xae\xea\x80\xc3\xce\xff\xff\x7f",     // up to INT64_MAX
      31);
  REQUIRE(info.bytes == bytes.size());
  CHECK(bytes.substr(bytes.size() - golden.size()) == golden);

  builder.append(t, 1, 5);  // the dead-letter log's blocks carry none
  bytes.clear();
  builder.encode(Codec::lz4, 1, 43, bytes);
  CHECK(static_cast<std::uint8_t>(bytes[33]) == 0);
  REQUIRE(decode_block(bytes, 1, block) == BlockStatus::ok);
  CHECK(block.stamps.empty());
}

TEST_CASE("segment log: segments roll by size, and tickets turn durable once their fsync completes") {
  TempDir dir;
  LogOptions o = options(dir.path);
  o.segment_bytes = 4096;
  o.durability = Durability::group;
  o.commit_interval_ms = 0;
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  {
    SegmentLog log(o, efd);
    for (int i = 0; i < 2000; ++i) {
      append_event(log, i);
      if (i % 10 == 9) log.end_chunk(0);
    }
    const std::uint64_t ticket = log.commit(0);
    CHECK(ticket > 0);
    CHECK(log.state(ticket) == SegmentLog::TicketState::pending);
    for (int spins = 0; log.state(ticket) == SegmentLog::TicketState::pending && spins < 100000; ++spins) {
      log.poll(spate::io::monotonic_ms());
      ::usleep(100);
    }
    CHECK(log.state(ticket) == SegmentLog::TicketState::durable);
    std::uint64_t signalled = 0;
    CHECK(::read(efd, &signalled, sizeof(signalled)) == sizeof(signalled));  // completions rang the eventfd
    CHECK(log.counters().events.load() == 2000);
    log.close();
  }
  ::close(efd);
  CHECK(list_segments(dir.path.string()).size() > 3);
  const auto lines = read_all(dir.path);
  REQUIRE(lines.size() == 2000);
  for (int i = 0; i < 2000; i += 97) CHECK(lines[static_cast<std::size_t>(i)] == expected_line(i));
  for (const auto& path : list_segments(dir.path.string())) CHECK(scan_segment(path).sealed);
}

TEST_CASE("recovery: a tail torn anywhere is cut at the last good block, and the events before it survive") {
  TempDir base;
  const fs::path original = base.path / "original";
  fs::create_directories(original);
  write_events(original, 1000);
  const std::string path = list_segments(original.string()).at(0);
  const auto full = scan_segment(path);
  REQUIRE(full.blocks.size() >= 4);
  const std::uint64_t size = fs::file_size(path);
  // Every cut from inside the header's end to just before the file's end.
  std::srand(7);
  for (int round = 0; round < 60; ++round) {
    const std::uint64_t cut = round == 0 ? size - 1 : 40 + static_cast<std::uint64_t>(std::rand()) % (size - 41);
    const fs::path dir = base.path / ("cut" + std::to_string(round));
    fs::create_directories(dir);
    const fs::path copy = dir / fs::path(path).filename();
    fs::copy_file(path, copy);
    fs::resize_file(copy, cut);
    const Recovery recovery = recover_directory(dir.string());
    REQUIRE(recovery.actions.size() == 1);
    const RecoveryAction& action = recovery.actions[0];
    CHECK_FALSE(action.quarantined);
    // The good blocks are the ones that end at or before the cut (the footer never counts).
    std::uint64_t kept_events = 0, kept_end = 0;
    for (const BlockInfo& b : full.blocks) {
      if (b.offset + b.bytes <= cut) {
        kept_events += b.events;
        kept_end = b.offset + b.bytes;
      }
    }
    if (cut < full.blocks[0].offset) {
      // Cut inside the header: nothing was ever acknowledged from this file.
      CHECK(action.state == SegmentState::bad_header);
      CHECK(recovery.segments.empty());
      CHECK_FALSE(fs::exists(copy));
      continue;
    }
    CHECK(action.state == SegmentState::torn_tail);
    if (kept_end == 0) kept_end = full.blocks[0].offset;  // the header alone
    CHECK(action.bytes_dropped == cut - kept_end);
    REQUIRE(recovery.segments.size() == 1);
    CHECK(recovery.segments[0].events == kept_events);
    CHECK(fs::file_size(copy) == kept_end);
    CHECK(read_all(dir).size() == kept_events);
    // A second recovery finds it clean.
    CHECK(recover_directory(dir.string()).actions.empty());
  }
}

TEST_CASE("recovery: a flipped byte inside a segment quarantines it; the daemon's other segments stay") {
  TempDir base;
  for (bool sealed : {true, false}) {
    const fs::path dir = base.path / (sealed ? "sealed" : "open");
    fs::create_directories(dir);
    write_events(dir, 2000, Codec::lz4, 3000);  // several segments
    auto paths = list_segments(dir.string());
    REQUIRE(paths.size() >= 3);
    const std::string victim = paths[1];
    const auto scan = scan_segment(victim);
    REQUIRE(scan.blocks.size() >= 2);
    if (!sealed) fs::resize_file(victim, scan.blocks.back().offset + scan.blocks.back().bytes);  // footer gone
    // A byte in the middle of the first block's payload.
    const BlockInfo& b = scan.blocks[0];
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(b.offset + b.bytes / 2));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(b.offset + b.bytes / 2));
    f.put(static_cast<char>(c ^ 0x20));
    f.close();
    const Recovery recovery = recover_directory(dir.string());
    REQUIRE(recovery.actions.size() == 1);
    CHECK(recovery.actions[0].state == SegmentState::corrupt);
    CHECK(recovery.actions[0].quarantined);
    CHECK(recovery.actions[0].problem.find("checksum") != std::string::npos);
    CHECK(recovery.segments.size() == paths.size() - 1);
    CHECK(fs::exists(victim + ".quarantined"));
    CHECK(list_segments(dir.string()).size() == paths.size() - 1);
  }
}

TEST_CASE("segment log: blocks no segment can take are held in order, input is told to wait, nothing is lost") {
  TempDir dir;
  const fs::path squatter = dir.path / segment_file_name(0);
  {
    SegmentLog log(options(dir.path), -1);  // durability sync
    std::ofstream(squatter).put('x');       // a file in the way of the first segment
    append_event(log, 0);
    const std::uint64_t first = log.commit(0);
    append_event(log, 1);
    const std::uint64_t second = log.commit(0);
    CHECK(log.state(first) == SegmentLog::TicketState::pending);
    CHECK(log.state(second) == SegmentLog::TicketState::pending);
    CHECK(log.blocked());
    CHECK_FALSE(log.failed());
    CHECK(log.counters().cannot_store.load() == 1);
    CHECK(log.counters().write_errors.load() >= 1);
    CHECK(log.counters().blocks_lost.load() == 0);
    log.poll(50);  // within the retry interval, and the file still in the way
    CHECK(log.blocked());
    fs::remove(squatter);
    for (int i = 0; i < 1000 && log.state(second) != SegmentLog::TicketState::durable; ++i) {
      log.poll(1000 + i * 100);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(log.state(first) == SegmentLog::TicketState::durable);
    CHECK(log.state(second) == SegmentLog::TicketState::durable);
    CHECK_FALSE(log.blocked());
    CHECK(log.counters().cannot_store.load() == 0);
    append_event(log, 2);
    log.close();
  }
  const auto lines = read_all(dir.path);
  REQUIRE(lines.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(lines[static_cast<std::size_t>(i)] == expected_line(i));
}

TEST_CASE("segment log: blocks still held at close are lost, said so, and counted") {
  TempDir dir;
  const fs::path gone = dir.path / "gone";
  fs::create_directories(gone);
  SegmentLog log(options(gone), -1);
  fs::remove(gone);  // no segment can be created in it again
  append_event(log, 1);
  const std::uint64_t ticket = log.commit(0);
  CHECK(log.state(ticket) == SegmentLog::TicketState::pending);
  CHECK(log.blocked());
  log.close();
  CHECK(log.state(ticket) == SegmentLog::TicketState::lost);
  CHECK(log.counters().blocks_lost.load() == 1);
}
