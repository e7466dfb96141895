// What the kept data of a data directory means to a configuration: the
// checkpoint it may load, the segments it replays, the stored events it
// would refuse. Shared by a start (engine_storage.cpp) and by
// `spated --check-config FILE --data-dir DIR`, which says what a start
// would do without changing anything (docs/storage.md, "Changing the
// pipeline on kept data").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/event_parser.hpp"
#include "storage/segment_file.hpp"
#include "storage/segment_log.hpp"

namespace spate::engine {

// The shard count a data directory's segments were written with (its
// spate.manifest); 0 when it holds none.
std::uint32_t kept_shard_count(const std::string& dir);

// Everything the checkpointed state's layout depends on; a checkpoint of
// another fingerprint is not loaded (the segments replay instead).
std::uint64_t state_fingerprint(const Config& config, std::uint32_t shards);

// Drops the blocks a checkpoint at `from` holds already; returns the blocks left.
std::uint64_t drop_replayed(std::vector<storage::SegmentScan>& segments, storage::LogPosition from);

// Stored events a replay refused: how many for each reason, and for each
// field (in the parser's order) how many lacked it or held another type.
struct Refusals {
  std::uint64_t by_reason[kRejectReasons] = {};
  std::uint64_t by_field[kMaxSchemaFields + 2] = {};
  std::uint64_t total() const noexcept;
  // "(4 wrong_type, 1 before_min_timestamp); fields missing or of another type: 'amount' in 4".
  std::string describe(const Config& config) const;
};

// Fields the configuration requires that stored events lack (so every one
// of them would be refused on replay), with what to do; empty when none.
std::string stored_field_problems(const Config& config,
                                  const std::vector<const std::vector<storage::SegmentScan>*>& segments);

// The report of what a start with `config` (its data_dir, and `shards`, 0
// for the directory's own count) would do to the kept data: the checkpoint
// it would load, the views rebuilt from the log, the stored events a
// replay would refuse and why. Reads only. Returns 0 when such a start
// would run, 78 when it would refuse to (as it would exit).
int check_kept_data(const Config& config, std::uint32_t shards, std::string& report);

}  // namespace spate::engine
