// What the kept data means to a configuration; see kept_data.hpp.
#include "engine/kept_data.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "engine/event_parser.hpp"
#include "engine/replay_source.hpp"
#include "engine/view_registry.hpp"
#include "kernels/hash.hpp"
#include "storage/checkpoint.hpp"

namespace spate::engine {
namespace {

namespace fs = std::filesystem;

// Parses the replayed lines as a shard would, counting what it refuses.
class RefusalCount final : public io::LineSink {
 public:
  explicit RefusalCount(const Config& config) : config_(config), parser_(config) {}

  Refusals refusals;

  std::uint32_t open_input(io::SourceKindId, bool) override { return 0; }
  void close_input(std::uint32_t) override {}
  void held_back(std::uint32_t) override {}
  void lines(std::uint32_t, const char* data, std::size_t size, std::uint64_t) override {
    const char* end = data + size;
    while (data < end) {
      const char* nl = static_cast<const char*>(std::memchr(data, '\n', static_cast<std::size_t>(end - data)));
      const char* line_end = nl != nullptr ? nl : end;
      judge(data, static_cast<std::size_t>(line_end - data), end + kPadding - data);
      data = line_end + 1;
    }
  }

 private:
  void judge(const char* line, std::size_t len, std::ptrdiff_t capacity) {
    Reject r = len > config_.max_line_bytes
                   ? Reject::oversized_line
                   : parser_.parse(line, len, static_cast<std::size_t>(capacity), ev_, true);
    if (r == Reject::missing_field || r == Reject::wrong_type) {
      for (std::uint64_t bits = parser_.absent_fields(); bits != 0; bits &= bits - 1) {
        ++refusals.by_field[std::countr_zero(bits)];
      }
    }
    if (r == Reject::none && ev_.ts_ms < config_.min_timestamp_ms) r = Reject::before_min_timestamp;
    ++refusals.by_reason[static_cast<std::size_t>(r)];
  }

  const Config& config_;
  EventParser parser_;
  ParsedEvent ev_;
};

std::uint64_t events_in(const std::vector<storage::SegmentScan>& segments) {
  std::uint64_t n = 0;
  for (const storage::SegmentScan& scan : segments) {
    for (const storage::BlockInfo& b : scan.blocks) n += b.events;
  }
  return n;
}

}  // namespace

std::uint32_t kept_shard_count(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "spate.manifest");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("shards = ", 0) == 0) return static_cast<std::uint32_t>(std::strtoul(line.c_str() + 9, nullptr, 10));
  }
  return 0;
}

std::uint64_t Refusals::total() const noexcept {
  std::uint64_t n = 0;
  for (std::size_t r = 1; r < kRejectReasons; ++r) n += by_reason[r];
  return n;
}

std::string Refusals::describe(const Config& config) const {
  std::string text;
  for (std::size_t r = 1; r < kRejectReasons; ++r) {
    if (by_reason[r] != 0) text += fmt::format("{}{} {}", text.empty() ? "" : ", ", by_reason[r], reject_name(static_cast<Reject>(r)));
  }
  // The parser's fields: the id, the timestamp, the schema's.
  std::vector<std::string> names;
  if (!config.id_field.empty()) names.push_back(config.id_field);
  names.push_back(config.ts_field);
  for (const FieldConfig& f : config.fields) names.push_back(f.name);
  std::string fields;
  for (std::size_t f = 0; f < names.size() && f < std::size(by_field); ++f) {
    if (by_field[f] != 0) fields += fmt::format("{}'{}' in {}", fields.empty() ? "" : ", ", names[f], by_field[f]);
  }
  return "(" + text + ")" + (fields.empty() ? "" : "; fields missing or of another type: " + fields);
}

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

std::string stored_field_problems(const Config& config,
                                  const std::vector<const std::vector<storage::SegmentScan>*>& segments) {
  std::vector<std::string> required;
  if (!config.id_field.empty()) required.push_back(config.id_field);
  required.push_back(config.ts_field);
  for (const FieldConfig& f : config.fields) {
    if (f.required) required.push_back(f.name);
  }
  std::vector<std::uint64_t> lacking(required.size(), 0);
  for (const auto* shard : segments) {
    for (const storage::SegmentScan& scan : *shard) {
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
  return problems;
}

int check_kept_data(const Config& config, std::uint32_t shards, std::string& report) {
  const fs::path dir(config.data_dir);
  const std::uint32_t kept_shards = kept_shard_count(dir.string());
  if (kept_shards == 0) {
    report += fmt::format("data directory '{}' holds no data: a start begins empty\n", dir.string());
    return 0;
  }
  if (shards != 0 && shards != kept_shards) {
    report += fmt::format("data directory '{}' holds segments of {} shards: a start with {} would refuse to run "
                          "(start with --shards {})\n", dir.string(), kept_shards, shards, kept_shards);
    return 78;
  }
  // Each shard's segments as a start would find them (a torn tail's good
  // blocks; a corrupt segment is quarantined and not replayed).
  std::vector<std::vector<storage::SegmentScan>> segments(kept_shards);
  std::vector<std::string> shard_dirs;
  std::uint64_t quarantined = 0;
  for (std::uint32_t i = 0; i < kept_shards; ++i) {
    shard_dirs.push_back((dir / fmt::format("shard-{}", i)).string());
    for (const std::string& path : storage::list_segments(shard_dirs.back())) {
      storage::SegmentScan scan = storage::scan_segment(path);
      if (scan.state == storage::SegmentState::corrupt || scan.state == storage::SegmentState::bad_header) {
        quarantined += scan.state == storage::SegmentState::corrupt;
        continue;
      }
      segments[i].push_back(std::move(scan));
    }
  }
  std::uint64_t stored = 0;
  for (const auto& s : segments) stored += events_in(s);
  report += fmt::format("data directory '{}': {} shards, {} stored events{}\n", dir.string(), kept_shards, stored,
                        quarantined != 0 ? fmt::format(" ({} corrupt segments would be quarantined)", quarantined) : "");

  // The newest checkpoint every shard holds a good file of, if it fits.
  const std::uint64_t fingerprint = state_fingerprint(config, kept_shards);
  std::optional<std::uint64_t> loaded;
  bool other_layout = false;
  const auto lists = [&] {
    std::vector<std::vector<std::pair<std::uint64_t, std::string>>> out;
    for (const std::string& d : shard_dirs) out.push_back(storage::list_checkpoints(d));
    return out;
  }();
  for (const auto& [epoch, first_path] : lists[0]) {
    std::vector<storage::LogPosition> positions;
    for (std::uint32_t i = 0; i < kept_shards; ++i) {
      const auto it = std::find_if(lists[i].begin(), lists[i].end(), [e = epoch](const auto& p) { return p.first == e; });
      if (it == lists[i].end()) break;
      std::string error;
      const auto c = storage::read_checkpoint(it->second, error);
      if (!c || c->header.shard != i || c->header.shards != kept_shards || c->header.epoch != epoch) break;
      if (c->header.fingerprint != fingerprint) {
        other_layout = true;
        break;
      }
      positions.push_back(c->header.position);
    }
    if (positions.size() != kept_shards) continue;
    for (std::uint32_t i = 0; i < kept_shards; ++i) drop_replayed(segments[i], positions[i]);
    loaded = epoch;
    break;
  }
  std::uint64_t replayed = 0;
  for (const auto& s : segments) replayed += events_in(s);
  if (loaded) {
    report += fmt::format("checkpoint epoch {} fits this configuration: the views are restored from it, and the {} "
                          "events logged after it replay; no view is rebuilt\n", *loaded, replayed);
  } else {
    std::string views;
    for (const ViewConfig& v : config.views) views += (views.empty() ? "" : ", ") + v.name;
    report += fmt::format("{}: every view is rebuilt from the log: {} ({} events replay)\n",
                          other_layout ? "no checkpoint fits this configuration (taken with other views, schema "
                                         "columns, lateness or dedup)"
                                       : "no checkpoint",
                          views, replayed);
  }

  std::vector<const std::vector<storage::SegmentScan>*> all;
  for (const auto& s : segments) all.push_back(&s);
  if (const std::string problems = stored_field_problems(config, all); !problems.empty()) {
    report += "a start would refuse to run (exit 78): " + problems + "\n";
    return 78;
  }
  // Every event that would replay, parsed as the replay would.
  RefusalCount count(config);
  for (auto& s : segments) {
    ReplaySource replay(std::move(s), kPadding, [](std::int64_t) { return true; });
    while (!replay.finished()) replay.poll(count, 1 << 20);
  }
  const std::uint64_t refused = count.refusals.total();
  if (refused == 0) {
    report += "replayed under this configuration: none would be refused\n";
    return 0;
  }
  report += fmt::format("replayed under this configuration: {} would be refused {}\n", refused,
                        count.refusals.describe(config));
  if (config.storage.replay_refused == "drop") {
    report += "[storage] replay_refused = \"drop\": a start would run without them (counted in replay.errors.*)\n";
    return 0;
  }
  report += "a start would refuse to run (exit 78): start with the configuration they were logged under, make the "
            "change fit them, or set [storage] replay_refused = \"drop\" to start without them\n";
  return 78;
}

}  // namespace spate::engine
