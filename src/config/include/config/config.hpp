// The daemon's configuration: plain structs parsed and validated once at
// start-up (from TOML or the built-in default), then handed to each layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/file/log.hpp"

namespace spate::engine {

// Limits checked when the configuration is loaded (docs/configuration.md).
inline constexpr std::size_t kMaxColumns = 16;       // numeric fields aggregated
inline constexpr std::size_t kMaxKeyGroups = 8;      // distinct view keys
inline constexpr std::size_t kMaxSchemaFields = 62;  // [schema].fields, besides the id and timestamp
inline constexpr std::size_t kMaxKeyBytes = 1024;
inline constexpr std::size_t kMaxFieldNameBytes = 256;

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
};

// The query listener and what bounds each of its clients.
struct QueryConfig {
  Endpoint listen{"127.0.0.1", 7070};
  std::uint32_t max_connections = 1000;        // more are accepted and closed at once
  std::int64_t handshake_timeout_ms = 10000;   // HELLO is due this long after connecting
  std::int64_t frame_timeout_ms = 30000;       // a frame begun must be whole this long after
  std::uint64_t max_reply_bytes = 64u << 20;   // answers a client has not read; past it, closed
  std::string auth_token_file;                 // HELLO must carry its token; required off loopback
};

// The Prometheus endpoint (/metrics, /healthz, /readyz): docs/metrics.md.
// Its limits keep a slow or idle client from holding it: metrics.* in STATS.
struct MetricsConfig {
  bool enabled = true;                     // listen = "off": false
  Endpoint listen{"127.0.0.1", 9464};
  std::uint32_t max_connections = 64;      // at it, a new one replaces the oldest waiting for a request, or is closed
  std::int64_t request_timeout_ms = 5000;  // a request head is due this long after it began; an answer, once ready
  std::int64_t idle_timeout_ms = 30000;    // a kept-alive connection with no request begun is closed after this long
  std::uint32_t max_request_bytes = 8192;  // a longer request head is answered 431
};

// The daemon's log lines on stderr (docs/operations.md, "Logs").
struct LogConfig {
  io::LogFormat format = io::LogFormat::logfmt;
  io::LogLevel level = io::LogLevel::info;  // lines below it are not written
};

// The hot log (docs/storage.md): every accepted event is kept in its
// shard's segment files under data_dir.
struct StorageConfig {
  bool enabled = true;                       // false: nothing is kept; a restart starts empty
  std::string durability = "group";          // none | group | sync
  std::int64_t commit_interval_ms = 5;       // group: fsync at most this long after the first unsynced event
  std::uint64_t commit_bytes = 4u << 20;     // group: or once this many bytes are unsynced
  std::uint64_t block_bytes = 256u << 10;    // field bytes per block
  std::uint64_t segment_bytes = 128u << 20;  // a segment rolls past this size
  std::int64_t segment_ms = 3600000;         // or this long after it was opened
  std::string compression = "lz4";           // none | lz4 | zstd
  int compression_level = 1;
  std::int64_t hot_retention_ms = 259200000;  // sealed segments older than this are deleted (0: never)
  std::uint32_t disk_high_water_percent = 90;  // ingest pauses at this much of the filesystem used
  std::uint32_t disk_low_water_percent = 85;   // and resumes below this
  bool keep_raw = false;      // also keep each event's line exactly as received
  bool dead_letters = true;   // rejected lines go to a dead-letter segment with their reason
  // Stored events this configuration refuses on replay (a field's type
  // changed, say): "stop" refuses to start (exit 78) and says why; "drop"
  // starts without them, counted in replay.errors.*.
  std::string replay_refused = "stop";
  // Line bytes a shard keeps as dead letters per second (a burst of as
  // much): a flood of junk must not fill the disk; past it lines are only counted.
  std::uint64_t dead_letter_bytes_per_s = 1u << 20;
  std::int64_t checkpoint_interval_ms = 60000;  // every shard's state to a checkpoint this often (0: never)
};

// Dedup by event id (docs/engine.md): an event is checked once on each
// shard that owns one of its keys, by a 96-bit fingerprint of its id, against
// every id of the horizon that the memory budget holds.
struct DedupConfig {
  bool enabled = true;  // needs [schema] id
  // Ids dated further behind the watermark are not checked. 0 (the default):
  // the largest view window plus the allowed lateness, past which every
  // copy of an event is late for every view anyway.
  std::int64_t horizon_ms = 0;
  std::int64_t effective_horizon_ms = 0;  // set by finalize(): horizon_ms, or what 0 means
  // Each shard's table at most (16-byte slots, 64-byte buckets); it grows
  // by doubling up to this while the horizon's ids need it. 384 MiB holds
  // 20.9 M ids at 85% full: 65 s of 320 k ids/s (docs/engine.md).
  std::uint64_t max_bytes = std::uint64_t{384} << 20;
};

// One key of a [[source]] table as written. The source's kind reads and
// checks it (engine/source_kind.hpp), as a view kind checks its window.
struct Setting {
  std::string key;
  std::variant<std::string, std::int64_t, double, bool, std::vector<std::string>> value;
  int line = 0;
};

// A [[source]]: its kind by name ("tcp", "file"...: the kinds the engine
// registers) and its other keys, for the kind to read.
struct SourceConfig {
  std::string type;
  std::vector<Setting> settings;
  int line = 0;       // where it is declared, for error messages
  int type_line = 0;  // where its type is

  const Setting* find(std::string_view key) const noexcept;
  // Replaces the key's value, or adds it (the built-in sources, flags over the file).
  void set(std::string_view key, std::string value);
};

// A schema field's JSON type. number: any JSON number, kept as a double;
// integer: a JSON integer within int64 (no fraction or exponent), kept
// exactly; boolean: true or false.
enum class FieldType : std::uint8_t { string, number, integer, boolean };
const char* field_type_name(FieldType type) noexcept;  // as the config writes it

struct FieldConfig {
  std::string name;
  FieldType type = FieldType::string;
  int line = 0;  // where it is declared, for error messages
  // `name = { type = "string", required = false, default = "none" }`: an
  // event may lack the field (or hold null there), and then has the default;
  // a field a view reads needs one. Events stored before a field was added
  // replay this way.
  bool required = true;
  bool has_default = false;
  std::string default_string;  // a string field's default
  double default_number = 0;   // a number field's
  std::int64_t default_integer = 0;  // an integer's, or a boolean's as 0 or 1
};

// "count", "sum(amount)": the kind (engine/aggregate.hpp checks the name)
// and the number field it reads, if it takes one.
struct AggregateConfig {
  std::string function;  // "sum"
  std::string label;     // "sum(amount)": the name clients see
  std::string field;     // empty for a kind that takes none (count)
  int column = -1;       // index into Config::columns, set by finalize(); -1 without a field
  FieldType type = FieldType::number;  // the field's, set by finalize()
  int line = 0;          // where it is written, for error messages
};

struct ViewConfig {
  std::string name;
  std::string key_field;
  // The view kind (engine/view_registry.hpp checks the name and the kind's
  // settings); size_ms and slide_ms are read by the kinds that use them.
  std::string window = "tumbling";
  std::int64_t window_ms = 60000;  // size_ms: a file must state it (the built-in views' is set)
  std::int64_t slide_ms = 0;       // hopping: how far each window starts after the one before (0: not set)
  std::vector<AggregateConfig> aggregates;
  int key_group = -1;  // index into Config::key_groups
  int line = 0;        // where the view is declared, for error messages
  std::uint64_t max_keys = 0;  // distinct keys held at once, over all shards (0: no limit but max_state_bytes)
};

// Views sharing a key field: rows are routed once per group.
struct KeyGroup {
  std::string field;
  std::vector<int> views;
};

// A data-quality alarm (docs/alarms.md), evaluated every second: it fires
// once its figure is out of bounds `fire_after` evaluations in a row and
// clears once it is back in bounds `clear_after` in a row.
struct AlarmConfig {
  enum class Kind : std::uint8_t { volume, field, aggregate };
  std::string name;  // [a-z0-9_], unique: a label in the metrics
  Kind kind = Kind::volume;
  // volume: events a second accepted from this source kind ("all": every source)
  std::string source = "all";
  // field: the share of JSON objects holding this schema field with its type
  std::string field;
  int field_index = -1;  // in the parser's order (id, timestamp, [schema].fields): set by finalize()
  // aggregate: this aggregate of `key` in the view's newest closed window
  std::string view;
  std::string aggregate;
  std::string key;
  int view_index = -1;       // set by finalize()
  int aggregate_index = -1;  // set by finalize()
  // Fixed bounds (either may be absent) and a band learned from the last
  // `learn` samples: their mean plus or minus `sigmas` standard deviations.
  bool has_min = false;
  bool has_max = false;
  double min = 0;
  double max = 0;
  std::uint32_t learn = 0;  // 0: no learned band
  double sigmas = 3;
  double min_band = 0.1;  // the learned band is at least this share of the mean wide either way
  std::uint32_t fire_after = 3;
  std::uint32_t clear_after = 3;
  int line = 0;
};

struct Config {
  std::uint32_t shards = 0;  // 0: one per CPU of the process's affinity mask
  std::string data_dir = "./spate-data";
  QueryConfig query;
  MetricsConfig metrics;
  LogConfig log;
  StorageConfig storage;
  DedupConfig dedup;
  std::vector<SourceConfig> sources;
  std::string id_field = "id";
  std::string ts_field = "ts";
  // What a numeric timestamp counts since 1970: 1000 per second for "s",
  // 1 for "ms", 1/1000 for "us", 1/1000000 for "ns". RFC 3339 strings are
  // read as they say, whatever the unit.
  enum class TsUnit : std::uint8_t { s, ms, us, ns };
  TsUnit ts_unit = TsUnit::ms;
  // Events dated before this are refused as before_min_timestamp (INT64_MIN:
  // no floor): epoch seconds sent as milliseconds land in 1970, where they
  // would only count as late.
  std::int64_t min_timestamp_ms = INT64_MIN;
  std::vector<FieldConfig> fields;
  std::vector<ViewConfig> views;
  std::vector<AlarmConfig> alarms;
  std::int64_t allowed_lateness_ms = 5000;
  std::int64_t idle_timeout_ms = 2000;
  std::int64_t window_retention_ms = 3600000;
  // Events dated further ahead of the wall clock are refused as
  // future_timestamp: one bad clock must not close every window.
  std::int64_t max_future_ms = 3600000;
  // An event dated further ahead of the wall clock than this goes into its
  // window but moves its input's watermark only this far ahead: a fast
  // clock cannot close other events' windows (events_ahead_of_clock).
  std::int64_t max_watermark_ahead_ms = 1000;
  // Key tables and windows of every view, over all shards: at the limit a
  // new key is refused (key_limit.<view>), known keys keep aggregating.
  // 0: half of the machine's memory.
  std::uint64_t max_state_bytes = 0;  // closed windows stay queryable this long (event time)
  std::uint32_t max_line_bytes = 65536;
  std::uint32_t ring_slots = 32;  // batches per shard-to-shard ring
  std::int64_t publish_dedup_ttl_ms = 86400000;  // a PUBLISH producer's last sequence is forgotten after this long unseen
  std::uint32_t ring_batch_rows = 512;  // rows per batch (a ring slot)
  std::int64_t ring_flush_us = 200;  // a partly filled batch leaves after this long (0: every loop pass)

  // Derived by finalize(): the columns aggregates read (each field once, in
  // the order views name them) and key groups.
  struct Column {
    std::string name;
    FieldType type;  // number, integer or boolean
  };
  std::vector<Column> columns;
  std::vector<KeyGroup> key_groups;

  int find_view(std::string_view name) const noexcept;
  int find_aggregate(int view, std::string_view label) const noexcept;
};

struct ConfigError {
  int line = 0;  // 0 when not tied to a line
  std::string message;
};

struct ConfigResult {
  Config config;
  std::vector<ConfigError> errors;
  // Said of a valid file: a required field that nothing reads (its absence
  // still refuses an event). In line order, as errors; spated says them
  // only when there is no error (fixing one may change them).
  std::vector<ConfigError> warnings;
  bool ok() const noexcept { return errors.empty(); }
};

// The built-in pipeline: TCP 7072, UDP 7071, query 7070, per_user_1m and per_type_10s.
Config default_config();

// Parses and validates TOML text. Every problem is reported, each with its line.
ConfigResult parse_config(std::string_view toml_text, std::string_view source_name);
ConfigResult load_config_file(const std::string& path);
// In file order, errors tied to no line last (parse_config's order).
void sort_by_line(std::vector<ConfigError>& errors);

// Resolves columns and key groups and checks cross-references; appends errors.
void finalize(Config& config, std::vector<ConfigError>& errors);

bool parse_endpoint(std::string_view text, Endpoint& out);

}  // namespace spate::engine
