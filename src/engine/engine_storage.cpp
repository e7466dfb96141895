// The data directory at start: its manifest, each shard's segments
// recovered, and the newest checkpoint every shard holds loaded, so that
// only what was logged after it replays (docs/storage.md).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/kept_data.hpp"
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
  if (fs::exists(manifest)) {
    const std::uint32_t shards = kept_shard_count(dir.string());
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
// of them on replay and empty the views: refused before anything starts.
void Engine::check_stored_fields(const std::vector<storage::Recovery>& recoveries) const {
  std::vector<const std::vector<storage::SegmentScan>*> segments;
  for (const storage::Recovery& recovery : recoveries) segments.push_back(&recovery.segments);
  const std::string problems = stored_field_problems(config_, segments);
  if (!problems.empty()) throw DataConflict(fmt::format("data directory '{}': {}", config_.data_dir, problems));
}

// Stored events refused on replay: they were accepted when logged, so a
// change of the configuration refuses them now (a field's type, a new
// min_timestamp, a smaller max_line_bytes). Empty when none was.
std::string Engine::replay_refusals() const {
  const io::SourceKindId replay = source_kind_id(kReplaySource);
  Refusals refusals;
  for (const auto& shard : shards_) {
    for (std::size_t r = 1; r < kRejectReasons; ++r) refusals.by_reason[r] += shard->rejected(replay, static_cast<Reject>(r));
    for (std::size_t f = 0; f < std::size(refusals.by_field); ++f) {
      refusals.by_field[f] += shard->counters().field_absent[f].load(std::memory_order_relaxed);
    }
  }
  if (refusals.total() == 0) return {};
  return fmt::format(
      "{} stored events, accepted when they were logged, are refused by this configuration {}: start with the "
      "configuration they were logged under, make the change fit them (a field's old type, required = false), or set "
      "[storage] replay_refused = \"drop\" to start without them (spated --check-config FILE --data-dir DIR tells "
      "before a start)",
      refusals.total(), refusals.describe(config_));
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
