// spate-inspect: lists, dumps (as NDJSON) and verifies hot segments, read
// with the storage library alone (no daemon needed, none disturbed).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "storage/segment_file.hpp"

namespace fs = std::filesystem;
using namespace spate::storage;

namespace {

// Segment files under `path` (a data directory, a shard directory or one
// file), quarantined ones included when asked, in path order.
std::vector<std::string> segment_paths(const std::string& path, bool quarantined) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    const bool seg = name.size() > 4 && name.ends_with(".seg");
    if (it->is_regular_file() && (seg || (quarantined && name.ends_with(".seg.quarantined")))) {
      out.push_back(it->path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string time_range(const SegmentScan& s) {
  if (s.blocks.empty()) return "-";
  std::int64_t lo = s.blocks[0].min_ts_ms, hi = s.blocks[0].max_ts_ms;
  for (const auto& b : s.blocks) {
    lo = std::min(lo, b.min_ts_ms);
    hi = std::max(hi, b.max_ts_ms);
  }
  return fmt::format("{}..{}", lo, hi);
}

int list(const std::string& path) {
  const auto paths = segment_paths(path, true);
  fmt::print("{:<60} {:>5} {:>10} {:>7} {:>10} {:>12}  {}\n", "segment", "shard", "state", "blocks", "events", "bytes",
             "event time (ms)");
  for (const auto& p : paths) {
    const SegmentScan s = scan_segment(p);
    const std::string state = s.state == SegmentState::clean ? (s.sealed ? "sealed" : "open") : segment_state_name(s.state);
    fmt::print("{:<60} {:>5} {:>10} {:>7} {:>10} {:>12}  {}\n", p, s.header.shard, state, s.blocks.size(), s.events,
               s.file_bytes, time_range(s));
  }
  return 0;
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

int dump(const std::string& path, bool positions) {
  int status = 0;
  for (const auto& p : segment_paths(path, false)) {
    SegmentReader reader;
    std::string error;
    if (!reader.open(p, error)) {
      fmt::print(stderr, "spate-inspect: {}: {}\n", p, error);
      status = 1;
      continue;
    }
    const SegmentScan scan = scan_segment(p);
    Block block;
    std::string line;
    for (const BlockInfo& info : scan.blocks) {
      if (const BlockStatus st = reader.read_block(info.offset, true, block); st != BlockStatus::ok) {
        fmt::print(stderr, "spate-inspect: {}: block at byte {}: {}\n", p, info.offset, block_status_name(st));
        status = 1;
        continue;
      }
      for (std::uint32_t e = 0; e < block.info.events; ++e) {
        line.clear();
        for (std::size_t f = 0; f < block.fields; ++f) {
          const std::string_view value = block.values[e * block.fields + f];
          if (value.empty()) continue;
          line += line.empty() ? '{' : ',';
          json_string(line, reader.header().fields[f]);
          line += ':';
          line += value;
        }
        line += line.empty() ? "{}\n" : "}\n";
        std::fwrite(line.data(), 1, line.size(), stdout);
      }
      if (positions) {
        for (const Position& pos : block.positions) {
          fmt::print("{{\"position\":{{\"kind\":{},\"input\":{},\"value\":{}}}}}\n", pos.kind, pos.input, pos.value);
        }
      }
    }
    if (scan.state != SegmentState::clean) {
      fmt::print(stderr, "spate-inspect: {}: {} ({}); dumped the blocks before it\n", p, segment_state_name(scan.state),
                 scan.problem);
      status = 1;
    }
  }
  return status;
}

// Every segment under `path`, every block's checksum and the footers; a
// quarantined segment or a data directory without its manifest fails.
int verify(const std::string& path) {
  int bad = 0;
  std::uint64_t events = 0, bytes = 0;
  const auto paths = segment_paths(path, true);
  if (fs::is_directory(path) && fs::exists(fs::path(path) / "shard-0") && !fs::exists(fs::path(path) / "spate.manifest")) {
    fmt::print("{}: no spate.manifest\n", path);
    ++bad;
  }
  for (const auto& p : paths) {
    if (p.ends_with(".quarantined")) {
      fmt::print("FAIL {}: quarantined at an earlier start\n", p);
      ++bad;
      continue;
    }
    const SegmentScan s = scan_segment(p);
    if (s.state != SegmentState::clean) {
      fmt::print("FAIL {}: {} ({})\n", p, segment_state_name(s.state), s.problem);
      ++bad;
      continue;
    }
    // A scan checks each block's checksum; decoding proves the payload whole.
    SegmentReader reader;
    std::string error;
    reader.open(p, error);
    Block block;
    bool decoded = true;
    for (const BlockInfo& info : s.blocks) {
      if (const BlockStatus st = reader.read_block(info.offset, true, block); st != BlockStatus::ok) {
        fmt::print("FAIL {}: block at byte {}: {}\n", p, info.offset, block_status_name(st));
        decoded = false;
        break;
      }
    }
    if (!decoded) {
      ++bad;
      continue;
    }
    events += s.events;
    bytes += s.file_bytes;
    fmt::print("ok   {}: {} blocks, {} events{}\n", p, s.blocks.size(), s.events, s.sealed ? ", sealed" : "");
  }
  fmt::print("{} segments, {} failed; {} events in {} bytes verified\n", paths.size(), bad, events, bytes);
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Lists, dumps and verifies spate's hot segments.\nExit status: 0 ok, 1 something did not verify, 2 usage."};
  app.require_subcommand(1);
  std::string path;
  bool positions = false;
  auto* list_cmd = app.add_subcommand("list", "each segment under PATH: shard, state, blocks, events, bytes, event time");
  list_cmd->add_option("PATH", path, "a data directory, a shard directory or a segment file")->required();
  auto* dump_cmd = app.add_subcommand("dump", "the events of the segments under PATH as NDJSON");
  dump_cmd->add_option("PATH", path, "a data directory, a shard directory or a segment file")->required();
  dump_cmd->add_flag("--positions", positions, "also the recorded positions (PUBLISH producer sequences)");
  auto* verify_cmd = app.add_subcommand("verify", "checks every segment under PATH; exit 0 only if all verify");
  verify_cmd->add_option("PATH", path, "a data directory, a shard directory or a segment file")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!fs::exists(path)) {
    fmt::print(stderr, "spate-inspect: '{}' does not exist\n", path);
    return 2;
  }
  if (*list_cmd) return list(path);
  if (*dump_cmd) return dump(path, positions);
  return verify(path);
}
