// The data directory at start: its manifest, each shard's segments
// recovered, and the newest checkpoint every shard holds loaded, so that
// only what was logged after it replays (docs/storage.md).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/view_registry.hpp"
#include "io/file/log.hpp"
#include "kernels/hash.hpp"
#include "storage/checkpoint.hpp"

namespace spate::engine {
namespace {

namespace fs = std::filesystem;

// fsync of a file or directory, so that a rename survives a crash.
void sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Everything the checkpointed state's layout depends on: the schema (the
// columns), the key groups, each view's key, window and aggregates, the
// lateness that closes windows, and dedup. Retention and limits are not in
// it: they act on the state as it is.
std::uint64_t state_fingerprint(const Config& c, std::uint32_t shards) {
  std::string text = fmt::format("v{} shards={} id={} ts={} lateness={} dedup={}/{}", storage::kCheckpointVersion,
                                 shards, c.id_field, c.ts_field, c.allowed_lateness_ms, c.dedup.enabled,
                                 c.dedup.effective_horizon_ms);
  // A number column as before types came, so that those checkpoints load.
  for (const Config::Column& column : c.columns) {
    text += " column=" + column.name;
    if (column.type != FieldType::number) text += std::string(":") + field_type_name(column.type);
  }
  for (const KeyGroup& g : c.key_groups) text += " group=" + g.field;
  for (const ViewConfig& v : c.views) {
    const ViewKind* kind = find_view_kind(v.window);
    text += fmt::format(" view={}/{}/{}", v.name, v.key_field, kind != nullptr ? kind->state_tag(v) : v.window);
    for (const AggregateConfig& a : v.aggregates) text += "/" + a.label;
  }
  return kernels::hash_key(text);
}

// The blocks a checkpoint already holds are not replayed: the segments
// before its position go, and that segment's blocks before it.
std::uint64_t drop_replayed(std::vector<storage::SegmentScan>& segments, storage::LogPosition from) {
  std::uint64_t blocks = 0;
  std::vector<storage::SegmentScan> kept;
  for (storage::SegmentScan& scan : segments) {
    if (scan.header.sequence < from.segment) continue;
    if (scan.header.sequence == from.segment) {
      scan.blocks.erase(scan.blocks.begin(), scan.blocks.begin() + static_cast<std::ptrdiff_t>(
                                                                        std::min<std::uint64_t>(from.block, scan.blocks.size())));
    }
    blocks += scan.blocks.size();
    kept.push_back(std::move(scan));
  }
  segments = std::move(kept);
  return blocks;
}

}  // namespace

// The data directory remembers the shard count its segments were written
// with: replayed events are re-routed, but a segment's events are replayed
// by the shard of the same number, and a checkpointed state is partitioned
// the old way. A different count is refused, not guessed at.
void Engine::open_storage() {
  const fs::path dir(config_.data_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create data directory '{}': {}", dir.string(), ec.message()));
  lock_ = std::make_unique<storage::DirectoryLock>(dir.string());  // before anything in it is read or written
  const fs::path manifest = dir / "spate.manifest";
  if (std::ifstream in(manifest); in) {
    std::string line;
    std::uint32_t shards = 0;
    while (std::getline(in, line)) {
      if (line.rfind("shards = ", 0) == 0) shards = static_cast<std::uint32_t>(std::strtoul(line.c_str() + 9, nullptr, 10));
    }
    if (shards != shard_count_) {
      throw std::runtime_error(fmt::format(
          "data directory '{}' holds segments of {} shards and this run has {}: start with --shards {} (or "
          "shards = {}), or point data_dir elsewhere; changing the shard count of kept data is not supported",
          dir.string(), shards, shard_count_, shards, shards));
    }
  } else {
    const fs::path tmp = dir / "spate.manifest.tmp";
    {
      std::ofstream out(tmp);
      out << "# spate data directory\nformat = " << storage::kFormatVersion << "\nshards = " << shard_count_ << "\n";
      if (!out) throw std::runtime_error(fmt::format("cannot write '{}'", tmp.string()));
    }
    sync_path(tmp, false);
    fs::rename(tmp, manifest);
    sync_path(dir, true);
  }
  fingerprint_ = state_fingerprint(config_, shard_count_);
  std::vector<storage::Recovery> recoveries;
  for (std::uint32_t i = 0; i < shard_count_; ++i) {
    const fs::path shard_dir = dir / fmt::format("shard-{}", i);
    fs::create_directories(shard_dir, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot create '{}': {}", shard_dir.string(), ec.message()));
    storage::Recovery& recovery = recoveries.emplace_back(storage::recover_directory(shard_dir.string()));
    for (const storage::RecoveryAction& a : recovery.actions) {
      const char* state = storage::segment_state_name(a.state);
      if (a.quarantined) {
        io::log_warn("recovery: segment quarantined, not replayed",
                     {{"shard", i}, {"path", a.path}, {"state", state}, {"problem", a.problem}});
      } else {
        io::log_warn("recovery: segment bytes cut off", {{"shard", i}, {"path", a.path}, {"state", state},
                                                         {"problem", a.problem}, {"bytes", a.bytes_dropped}});
      }
    }
  }
  const std::uint64_t epoch = load_checkpoints(recoveries);
  check_stored_fields(recoveries);
  std::uint64_t blocks = 0, events = 0, segments = 0;
  for (const storage::Recovery& recovery : recoveries) {
    for (const storage::SegmentScan& scan : recovery.segments) {
      segments += !scan.blocks.empty();
      blocks += scan.blocks.size();
      for (const storage::BlockInfo& b : scan.blocks) events += b.events;
    }
  }
  if (blocks != 0) {  // each shard logs its part's time when done ("replay done")
    io::log_info(epoch != 0 ? "recovery: replaying the log after the checkpoint" : "recovery: no checkpoint loaded, replaying the whole log",
                 {{"checkpoint_epoch", epoch}, {"segments", segments}, {"blocks", blocks}, {"events", events}});
  }
  for (std::uint32_t i = 0; i < shard_count_; ++i) {
    replays_ = replays_ || !recoveries[i].segments.empty();
    shards_[i]->set_storage((dir / fmt::format("shard-{}", i)).string(), std::move(recoveries[i]));
  }
}

// A field the schema requires that stored events lack would refuse every one
// of them on replay and empty the views: refused before anything starts,
// with what to do. (An optional field, or one dropped from the schema, is
// fine: the replay gives the default, or skips it.)
void Engine::check_stored_fields(const std::vector<storage::Recovery>& recoveries) const {
  std::vector<std::string> required;
  if (!config_.id_field.empty()) required.push_back(config_.id_field);
  required.push_back(config_.ts_field);
  for (const FieldConfig& f : config_.fields) {
    if (f.required) required.push_back(f.name);
  }
  std::vector<std::uint64_t> lacking(required.size(), 0);
  for (const storage::Recovery& recovery : recoveries) {
    for (const storage::SegmentScan& scan : recovery.segments) {
      std::uint64_t events = 0;
      for (const storage::BlockInfo& b : scan.blocks) events += b.events;
      const auto& stored = scan.header.fields;
      for (std::size_t r = 0; r < required.size(); ++r) {
        if (std::find(stored.begin(), stored.end(), required[r]) == stored.end()) lacking[r] += events;
      }
    }
  }
  std::string problems;
  for (std::size_t r = 0; r < required.size(); ++r) {
    if (lacking[r] == 0) continue;
    problems += fmt::format(
        "{}field '{}' is required but {} stored events lack it (they were written before it was declared) and would "
        "all be refused on replay: declare it optional with a default, {} = {{ type = \"...\", required = false, "
        "default = ... }}, or start on another data_dir",
        problems.empty() ? "" : "; ", required[r], lacking[r], required[r]);
  }
  if (!problems.empty()) throw DataConflict(fmt::format("data directory '{}': {}", config_.data_dir, problems));
}

std::uint64_t Engine::load_checkpoints(std::vector<storage::Recovery>& recoveries) {
  std::vector<std::string> dirs;
  std::vector<std::vector<std::pair<std::uint64_t, std::string>>> lists;
  std::uint64_t newest = 0;
  for (std::uint32_t i = 0; i < shard_count_; ++i) {
    dirs.push_back((fs::path(config_.data_dir) / fmt::format("shard-{}", i)).string());
    lists.push_back(storage::list_checkpoints(dirs.back()));
    if (!lists.back().empty()) newest = std::max(newest, lists.back().front().first);
  }
  checkpoint_epoch_.store(newest, std::memory_order_release);  // the next one is numbered after every file
  // Newest first: the first epoch every shard has a good file of.
  for (const auto& [epoch, first_path] : lists[0]) {
    std::vector<storage::Checkpoint> loaded;
    for (std::uint32_t i = 0; i < shard_count_; ++i) {
      const auto& list = lists[i];
      const auto it = std::find_if(list.begin(), list.end(), [e = epoch](const auto& p) { return p.first == e; });
      if (it == list.end()) break;  // that shard did not finish it
      std::string error;
      std::optional<storage::Checkpoint> c = storage::read_checkpoint(it->second, error);
      if (c && (c->header.shard != i || c->header.shards != shard_count_ || c->header.epoch != epoch)) {
        error = fmt::format("it names shard {} of {}, epoch {}", c->header.shard, c->header.shards, c->header.epoch);
        c.reset();
      }
      if (c && c->header.fingerprint != fingerprint_) {
        io::log_warn("recovery: checkpoint taken with other views, schema or dedup settings: not loaded, the "
                     "segments replay instead",
                     {{"shard", i}, {"epoch", epoch}, {"path", it->second}});
        break;
      }
      if (!c) {
        io::log_warn("recovery: checkpoint unusable, an older one is tried",
                     {{"shard", i}, {"epoch", epoch}, {"path", it->second}, {"error", error}});
        break;
      }
      loaded.push_back(std::move(*c));
    }
    if (loaded.size() != shard_count_) continue;
    std::uint64_t blocks = 0;
    for (std::uint32_t i = 0; i < shard_count_; ++i) {
      shards_[i]->restore(loaded[i]);
      blocks += drop_replayed(recoveries[i].segments, loaded[i].header.position);
      storage::remove_checkpoints(dirs[i], 0, epoch);  // later epochs not every shard finished
    }
    io::log_info("recovery: checkpoint loaded", {{"epoch", epoch}, {"blocks_to_replay", blocks}});
    return epoch;
  }
  return 0;
}

}  // namespace spate::engine
