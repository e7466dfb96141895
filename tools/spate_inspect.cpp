// spate-inspect: lists, dumps (as NDJSON) and verifies hot segments, and
// lists and verifies the shards' checkpoint files, read with the storage
// library alone (no daemon needed, none disturbed). `dump` is about
// segments only: a checkpoint's body is the engine's state, not events.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "storage/checkpoint.hpp"
#include "storage/segment_file.hpp"

namespace fs = std::filesystem;
using namespace spate::storage;

namespace {

// A file named on the command line is read as a checkpoint when its name
// says so (a leftover .ckpt.tmp too: asked for by name, it is read as what
// it may be, a checkpoint cut short), and as a segment otherwise.
bool named_checkpoint(const std::string& path) { return path.ends_with(".ckpt") || path.ends_with(".ckpt.tmp"); }

// The name the daemon gives a checkpoint file, and the only one it reads
// one by: `<epoch, 20 digits>.ckpt`.
bool checkpoint_name(const std::string& name) {
  return name.size() == 25 && name.ends_with(".ckpt") &&
         std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; });
}

// Segment files under `path` (a data directory, a shard directory or one
// file), quarantined ones included when asked, in path order.
std::vector<std::string> segment_paths(const std::string& path, bool quarantined) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return named_checkpoint(path) ? out : std::vector<std::string>{path};
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

// Checkpoint files under `path` (a data directory, a shard directory or
// one file), in path order. In a directory, only files named as the daemon
// names them: it reads no other. A leftover `<epoch>.ckpt.tmp` is not one
// either: it is a write cut short (a crash before the rename), never read
// at start, and the daemon deletes it; it is neither listed nor an error.
std::vector<std::string> checkpoint_paths(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return named_checkpoint(path) ? std::vector<std::string>{path} : out;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_regular_file() && checkpoint_name(it->path().filename().string())) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Reads the checkpoint at `path`: "" when it is good, else why not. Beyond
// the file's own checks, what the daemon checks at start that the path
// tells: the epoch of its name, and the shard of its shard-N directory.
std::string check_checkpoint(const std::string& path, std::optional<Checkpoint>& c) {
  std::string error;
  c = read_checkpoint(path, error);
  if (!c) return error.empty() ? "unreadable" : error;
  const fs::path p(path);
  // (A file given by another name, a .ckpt.tmp say, names no epoch.)
  const std::string name = p.filename().string();
  if (checkpoint_name(name) && name != checkpoint_file_name(c->header.epoch)) {
    return fmt::format("the header says epoch {}, the file name another", c->header.epoch);
  }
  const std::string shard_dir = p.parent_path().parent_path().filename().string();
  if (p.parent_path().filename() == "checkpoints" && shard_dir.starts_with("shard-") &&
      shard_dir != fmt::format("shard-{}", c->header.shard)) {
    return fmt::format("the header says shard {}, the directory {}", c->header.shard, shard_dir);
  }
  return "";
}

std::string log_position(const LogPosition& at) { return fmt::format("{}/{}", at.segment, at.block); }

// The checkpoint table of `list`; the log position is segment/block, where
// a restart from the checkpoint starts to replay.
template <typename... Cells>
void checkpoint_row(const Cells&... cells) {
  fmt::print("{:<60} {:>5} {:>6} {:>20} {:>13} {:>12} {:>12}  {}\n", cells...);
}

int list_checkpoint_table(const std::vector<std::string>& paths) {
  checkpoint_row("checkpoint", "shard", "shards", "epoch", "created (ms)", "log position", "body bytes", "state");
  for (const auto& p : paths) {
    std::optional<Checkpoint> c;
    const std::string problem = check_checkpoint(p, c);
    const std::string state = problem.empty() ? "ok" : problem;
    if (!c) {
      checkpoint_row(p, "-", "-", "-", "-", "-", "-", state);
      continue;
    }
    const CheckpointHeader& h = c->header;
    checkpoint_row(p, h.shard, h.shards, h.epoch, h.created_ms, log_position(h.position), c->body.size(), state);
  }
  return 0;
}

int list(const std::string& path) {
  const auto paths = segment_paths(path, true);
  const auto checkpoints = checkpoint_paths(path);
  if (paths.empty() && !checkpoints.empty()) return list_checkpoint_table(checkpoints);
  fmt::print("{:<60} {:>5} {:>10} {:>7} {:>10} {:>12}  {}\n", "segment", "shard", "state", "blocks", "events", "bytes",
             "event time (ms)");
  for (const auto& p : paths) {
    const SegmentScan s = scan_segment(p);
    const std::string state = s.state == SegmentState::clean ? (s.sealed ? "sealed" : "open") : segment_state_name(s.state);
    fmt::print("{:<60} {:>5} {:>10} {:>7} {:>10} {:>12}  {}\n", p, s.header.shard, state, s.blocks.size(), s.events,
               s.file_bytes, time_range(s));
  }
  if (checkpoints.empty()) return 0;
  fmt::print("\n");
  return list_checkpoint_table(checkpoints);
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

// Every checkpoint file under `path`, read whole and checked as the daemon
// does at start; one that would not load fails. Returns how many failed.
int verify_checkpoints(const std::string& path) {
  int bad = 0;
  std::uint64_t bytes = 0;
  const auto paths = checkpoint_paths(path);  // without leftover .ckpt.tmp files: no error (see checkpoint_paths)
  for (const auto& p : paths) {
    std::optional<Checkpoint> c;
    if (const std::string problem = check_checkpoint(p, c); !problem.empty()) {
      fmt::print("FAIL {}: {}\n", p, problem);
      ++bad;
      continue;
    }
    const CheckpointHeader& h = c->header;
    bytes += c->body.size();
    fmt::print("ok   {}: epoch {}, shard {} of {}, log position {}, {} body bytes\n", p, h.epoch, h.shard, h.shards,
               log_position(h.position), c->body.size());
  }
  fmt::print("{} checkpoints, {} failed; {} body bytes verified\n", paths.size(), bad, bytes);
  return bad;
}

// Every segment under `path`, every block's checksum and the footers, then
// every checkpoint file; a quarantined segment, a bad checkpoint or a data
// directory without its manifest fails.
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
  if (!fs::is_regular_file(path) || named_checkpoint(path)) bad += verify_checkpoints(path);
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Lists, dumps and verifies spate's hot segments, and lists and verifies its checkpoint files.\n"
      "Exit status: 0 ok, 1 something did not verify, 2 usage."};
  app.require_subcommand(1);
  std::string path;
  bool positions = false;
  const std::string any_path = "a data directory, a shard directory, a segment file or a checkpoint (.ckpt) file";
  auto* list_cmd = app.add_subcommand(
      "list",
      "each segment under PATH: shard, state, blocks, events, bytes, event time; then each checkpoint: "
      "shard, shards, epoch, created, log position, body bytes, state");
  list_cmd->add_option("PATH", path, any_path)->required();
  auto* dump_cmd = app.add_subcommand("dump", "the events of the segments under PATH as NDJSON (not checkpoints)");
  dump_cmd->add_option("PATH", path, "a data directory, a shard directory or a segment file")->required();
  dump_cmd->add_flag("--positions", positions, "also the recorded positions (PUBLISH producer sequences)");
  auto* verify_cmd =
      app.add_subcommand("verify", "checks every segment and checkpoint file under PATH; exit 0 only if all verify");
  verify_cmd->add_option("PATH", path, any_path)->required();
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
  if (*dump_cmd && named_checkpoint(path)) {
    fmt::print(stderr, "spate-inspect: '{}' is a checkpoint file; dump reads segments (list shows it)\n", path);
    return 2;
  }
  if (*dump_cmd) return dump(path, positions);
  return verify(path);
}
