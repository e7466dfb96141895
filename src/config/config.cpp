// TOML configuration parsing and validation; see config.hpp.
#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "config_checker.hpp"
#include "kernels/rfc3339.hpp"

namespace spate::engine {

namespace detail {

// A name as the error messages show it: in quotes, with what cannot be
// printed escaped.
std::string quoted(std::string_view name) {
  std::string out = "\"";
  for (const char c : name.substr(0, 200)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + (name.size() > 200 ? "...\"" : "\"");
}

}  // namespace detail

namespace {

using detail::Checker;
using detail::parse_aggregate;

}  // namespace

std::string Endpoint::to_string() const { return fmt::format("{}:{}", host, port); }

const char* field_type_name(FieldType type) noexcept {
  switch (type) {
    case FieldType::string: return "string";
    case FieldType::number: return "number";
    case FieldType::integer: return "integer";
    case FieldType::boolean: return "boolean";
  }
  return "unknown";
}

bool parse_endpoint(std::string_view text, Endpoint& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  unsigned port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    port = port * 10 + static_cast<unsigned>(c - '0');
    if (port > 65535) return false;
  }
  out.host = std::string(text.substr(0, colon));
  out.port = static_cast<std::uint16_t>(port);
  return true;
}

int Config::find_view(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < views.size(); ++i) {
    if (views[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Config::find_aggregate(int view, std::string_view label) const noexcept {
  const auto& aggs = views[static_cast<std::size_t>(view)].aggregates;
  for (std::size_t i = 0; i < aggs.size(); ++i) {
    if (aggs[i].label == label) return static_cast<int>(i);
  }
  return -1;
}

Config default_config() {
  Config c;
  for (const auto& [type, listen] : {std::pair{"tcp", "127.0.0.1:7072"}, std::pair{"udp", "127.0.0.1:7071"}}) {
    SourceConfig& s = c.sources.emplace_back();
    s.type = type;
    s.set("listen", listen);
  }
  c.fields = {{"user", FieldType::string}, {"type", FieldType::string}, {"amount", FieldType::number}};
  auto aggregates = [](std::initializer_list<std::string_view> labels) {
    std::vector<AggregateConfig> out(labels.size());
    std::size_t i = 0;
    for (const auto label : labels) parse_aggregate(label, out[i++]);
    return out;
  };
  c.views = {
      {"per_user_1m", "user", "tumbling", 60000, 0,
       aggregates({"count", "sum(amount)", "min(amount)", "max(amount)", "avg(amount)"}), -1, 0},
      {"per_type_10s", "type", "tumbling", 10000, 0, aggregates({"count", "sum(amount)"}), -1, 0},
  };
  std::vector<ConfigError> errors;
  finalize(c, errors);
  return c;
}

void finalize(Config& config, std::vector<ConfigError>& errors) {
  config.dedup.effective_horizon_ms = config.dedup.horizon_ms;
  if (config.dedup.horizon_ms == 0) {
    std::int64_t widest = 0;
    for (const auto& v : config.views) widest = std::max(widest, v.window_ms);
    config.dedup.effective_horizon_ms = std::max<std::int64_t>(widest + config.allowed_lateness_ms, 1000);
  }
  config.columns.clear();
  config.key_groups.clear();
  auto field_type = [&](const std::string& name, FieldType& type) {
    for (const auto& f : config.fields) {
      if (f.name == name) {
        type = f.type;
        return true;
      }
    }
    return false;
  };
  if (config.ts_field.empty()) errors.push_back({0, "schema.timestamp must name a field"});
  if (config.id_field == config.ts_field) {
    errors.push_back({0, fmt::format("schema.id and schema.timestamp are both '{}': they must be two fields", config.ts_field)});
  }
  if (config.fields.size() > kMaxSchemaFields) {
    errors.push_back({config.fields[kMaxSchemaFields].line, fmt::format("[schema].fields declares {} fields; at most {} are supported (other fields of "
                                     "an event need no declaration: they are skipped)",
                                     config.fields.size(), kMaxSchemaFields)});
  }
  if (config.views.empty()) errors.push_back({0, "at least one [[view]] is required"});
  for (std::size_t v = 0; v < config.views.size(); ++v) {
    auto& view = config.views[v];
    for (std::size_t o = 0; o < v; ++o) {
      if (config.views[o].name == view.name) errors.push_back({view.line, fmt::format("view name '{}' is used twice", view.name)});
    }
    FieldType type;
    if (!view.key_field.empty()) {
      if (!field_type(view.key_field, type) || type != FieldType::string) {
        errors.push_back({view.line, fmt::format("view '{}': key '{}' must be a string field of [schema].fields", view.name,
                                         view.key_field)});
      } else {
        int group = -1;
        for (std::size_t g = 0; g < config.key_groups.size(); ++g) {
          if (config.key_groups[g].field == view.key_field) group = static_cast<int>(g);
        }
        if (group < 0) {
          if (config.key_groups.size() == kMaxKeyGroups) {
            errors.push_back({0, fmt::format("at most {} distinct view keys are supported", kMaxKeyGroups)});
          } else {
            group = static_cast<int>(config.key_groups.size());
            config.key_groups.push_back({view.key_field, {}});
          }
        }
        view.key_group = group;
        if (group >= 0) config.key_groups[static_cast<std::size_t>(group)].views.push_back(static_cast<int>(v));
      }
    }
    for (auto& agg : view.aggregates) {
      for (const auto& other : view.aggregates) {
        if (&other != &agg && other.label == agg.label && &other < &agg) {
          errors.push_back({view.line, fmt::format("view '{}': aggregate '{}' is listed twice", view.name, agg.label)});
        }
      }
      if (agg.field.empty()) {
        agg.column = -1;
        continue;
      }
      const std::string& field = agg.field;
      if (!field_type(field, type) || type == FieldType::string) {
        errors.push_back({view.line, fmt::format("view '{}': aggregate '{}' needs a number, integer or boolean field '{}' in "
                                                 "[schema].fields",
                                                 view.name, agg.label, field)});
        continue;
      }
      int column = -1;
      for (std::size_t c = 0; c < config.columns.size(); ++c) {
        if (config.columns[c].name == field) column = static_cast<int>(c);
      }
      if (column < 0) {
        if (config.columns.size() == kMaxColumns) {
          errors.push_back({0, fmt::format("at most {} fields can be aggregated", kMaxColumns)});
          continue;
        }
        column = static_cast<int>(config.columns.size());
        config.columns.push_back({field, type});
      }
      agg.column = column;
      agg.type = type;
    }
  }
  // A view reads every event's value of its key and fields: an optional one
  // needs a default to read when the event lacks it.
  for (const auto& f : config.fields) {
    if (f.type == FieldType::string && f.default_string.size() > kMaxKeyBytes) {
      errors.push_back({f.line, fmt::format("field '{}': the default is longer than {} bytes", f.name, kMaxKeyBytes)});
    }
    if (f.required || f.has_default) continue;
    for (const auto& view : config.views) {
      bool reads = view.key_field == f.name;
      for (const auto& agg : view.aggregates) reads = reads || agg.field == f.name;
      if (reads) {
        errors.push_back({f.line, fmt::format("field '{}' is optional and view '{}' reads it: give it a default", f.name,
                                              view.name)});
        break;
      }
    }
  }
  for (const auto& f : config.fields) {
    if (f.name == config.id_field || f.name == config.ts_field) {
      errors.push_back({f.line, fmt::format("field '{}' is already the schema's id or timestamp", f.name)});
    }
  }
}

ConfigResult parse_config(std::string_view text, std::string_view source_name) {
  ConfigResult result;
  result.config = default_config();
  Config& config = result.config;
  Checker check(result.errors);
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    result.errors.push_back({static_cast<int>(e.source().begin.line), std::string(e.description())});
    return result;
  }
  check.known_keys(root, "the top level",
                   {"shards", "data_dir", "allowed_lateness_ms", "idle_timeout_ms", "window_retention_ms", "max_future_ms",
                    "max_watermark_ahead_ms", "min_timestamp", "max_state_bytes",
                    "max_line_bytes", "ring_slots", "ring_batch_rows", "publish_dedup_ttl_ms", "ring_flush_us", "query", "storage", "dedup", "source", "schema", "view", "metrics", "log",
                    "alarm"});
  check.integer(root, "shards", config.shards, 1, 1024);
  check.string(root, "data_dir", config.data_dir);
  check.integer(root, "allowed_lateness_ms", config.allowed_lateness_ms, 0, std::int64_t{30} * 86400000);
  check.integer(root, "idle_timeout_ms", config.idle_timeout_ms, 1, 3600000);
  check.integer(root, "window_retention_ms", config.window_retention_ms, 0, std::int64_t{366} * 86400000);
  check.integer(root, "max_future_ms", config.max_future_ms, 1000, std::int64_t{3660} * 86400000);
  check.integer(root, "max_watermark_ahead_ms", config.max_watermark_ahead_ms, 0, std::int64_t{3660} * 86400000);
  if (const toml::node* floor = root.get("min_timestamp")) {  // epoch ms or RFC 3339
    std::optional<std::int64_t> ms;
    if (const auto* i = floor->as_integer()) ms = i->get();
    if (const auto* text = floor->as_string()) ms = kernels::parse_rfc3339_ms(text->get());
    if (ms && *ms >= kernels::kRfc3339MinMs && *ms <= kernels::kRfc3339MaxMs) {
      config.min_timestamp_ms = *ms;
    } else {
      check.error(*floor, "min_timestamp must be epoch milliseconds or an RFC 3339 time (\"2000-01-01T00:00:00Z\") within years 0000-9999");
    }
  }
  check.integer(root, "max_line_bytes", config.max_line_bytes, 64, 16 << 20);
  check.integer(root, "max_state_bytes", config.max_state_bytes, 0, std::int64_t{1} << 50);
  check.integer(root, "ring_slots", config.ring_slots, 2, 65536);
  check.integer(root, "ring_batch_rows", config.ring_batch_rows, 16, 4096);
  check.integer(root, "publish_dedup_ttl_ms", config.publish_dedup_ttl_ms, 1000, std::int64_t{30} * 86400000);
  check.integer(root, "ring_flush_us", config.ring_flush_us, 0, 1000000);
  if (const toml::node* m = root.get("metrics")) {  // docs/metrics.md
    if (const toml::table* mt = m->as_table()) {
      check.known_keys(*mt, "[metrics]",
                       {"listen", "max_connections", "request_timeout_ms", "idle_timeout_ms", "max_request_bytes"});
      MetricsConfig& metrics = config.metrics;
      if (const toml::node* l = mt->get("listen"); l != nullptr && l->value<std::string>() == "off") {
        metrics.enabled = false;
      } else {
        check.endpoint(*mt, "listen", metrics.listen);
      }
      check.integer(*mt, "max_connections", metrics.max_connections, 1, 65536);
      check.integer(*mt, "request_timeout_ms", metrics.request_timeout_ms, 100, 600000);
      check.integer(*mt, "idle_timeout_ms", metrics.idle_timeout_ms, 100, 3600000);
      check.integer(*mt, "max_request_bytes", metrics.max_request_bytes, 1024, 1 << 20);
    } else {
      check.error(*m, "'metrics' must be a table");
    }
  }
  if (const toml::node* l = root.get("log")) {  // docs/operations.md, "Logs"
    if (const toml::table* lt = l->as_table()) {
      check.known_keys(*lt, "[log]", {"format", "level"});
      std::string format = io::log_format_name(config.log.format), level = io::log_level_name(config.log.level);
      check.choice(*lt, "format", format, {"logfmt", "json"});
      check.choice(*lt, "level", level, {"debug", "info", "warn", "error"});
      io::parse_log_format(format, config.log.format);
      io::parse_log_level(level, config.log.level);
    } else {
      check.error(*l, "'log' must be a table");
    }
  }
  if (const toml::node* q = root.get("query")) {
    if (const toml::table* qt = q->as_table()) {
      check.known_keys(*qt, "[query]", {"listen", "max_connections", "handshake_timeout_ms", "frame_timeout_ms",
                                         "max_reply_bytes", "auth_token_file"});
      QueryConfig& query = config.query;
      check.endpoint(*qt, "listen", query.listen);
      check.integer(*qt, "max_connections", query.max_connections, 1, 1000000);
      check.integer(*qt, "handshake_timeout_ms", query.handshake_timeout_ms, 100, 3600000);
      check.integer(*qt, "frame_timeout_ms", query.frame_timeout_ms, 100, 3600000);
      check.integer(*qt, "max_reply_bytes", query.max_reply_bytes, std::int64_t{1} << 20, std::int64_t{1} << 36);
      check.string(*qt, "auth_token_file", query.auth_token_file);
    } else {
      check.error(*q, "'query' must be a table");
    }
  }
  if (const toml::node* s = root.get("storage")) {
    if (const toml::table* st = s->as_table()) {
      check.known_keys(*st, "[storage]", {"enabled", "durability", "commit_interval_ms", "commit_bytes", "block_bytes",
                                           "segment_bytes", "segment_ms", "compression", "compression_level",
                                           "hot_retention_ms", "disk_high_water_percent", "disk_low_water_percent",
                                           "keep_raw", "dead_letters", "dead_letter_bytes_per_s",
                                           "checkpoint_interval_ms", "replay_refused"});
      StorageConfig& storage = config.storage;
      check.boolean(*st, "enabled", storage.enabled);
      check.choice(*st, "durability", storage.durability, {"none", "group", "sync"});
      check.integer(*st, "commit_interval_ms", storage.commit_interval_ms, 0, 60000);
      check.integer(*st, "commit_bytes", storage.commit_bytes, 4096, std::int64_t{1} << 32);
      check.integer(*st, "block_bytes", storage.block_bytes, 4096, 16 << 20);
      check.integer(*st, "segment_bytes", storage.segment_bytes, 1 << 20, std::int64_t{1} << 40);
      check.integer(*st, "segment_ms", storage.segment_ms, 1000, std::int64_t{366} * 86400000);
      check.choice(*st, "compression", storage.compression, {"none", "lz4", "zstd"});
      check.integer(*st, "compression_level", storage.compression_level, 1, 19);
      check.integer(*st, "hot_retention_ms", storage.hot_retention_ms, 0, std::int64_t{3660} * 86400000);
      check.integer(*st, "disk_high_water_percent", storage.disk_high_water_percent, 0, 100);
      check.integer(*st, "disk_low_water_percent", storage.disk_low_water_percent, 0, 100);
      check.boolean(*st, "keep_raw", storage.keep_raw);
      check.boolean(*st, "dead_letters", storage.dead_letters);
      check.integer(*st, "dead_letter_bytes_per_s", storage.dead_letter_bytes_per_s, 0, std::int64_t{1} << 40);
      check.integer(*st, "checkpoint_interval_ms", storage.checkpoint_interval_ms, 0, std::int64_t{7} * 86400000);
      check.choice(*st, "replay_refused", storage.replay_refused, {"stop", "drop"});
      if (storage.disk_low_water_percent > storage.disk_high_water_percent) {
        const toml::node* low = st->get("disk_low_water_percent");
        check.error(low != nullptr ? *low : *s, fmt::format("[storage] disk_low_water_percent ({}) is above disk_high_water_percent ({})",
                                    storage.disk_low_water_percent, storage.disk_high_water_percent));
      }
    } else {
      check.error(*s, "'storage' must be a table");
    }
  }
  if (const toml::node* d = root.get("dedup")) {
    if (const toml::table* dt = d->as_table()) {
      if (const toml::node* old = dt->get("max_ids")) {
        check.error(*old, "[dedup] max_ids is gone: dedup keeps every id of horizon_ms within max_bytes a shard "
                          "(default 384 MiB); remove max_ids, and set max_bytes to bound the memory");
      }
      check.known_keys(*dt, "[dedup]", {"enabled", "horizon_ms", "max_bytes", "max_ids"});
      check.boolean(*dt, "enabled", config.dedup.enabled);
      check.integer(*dt, "horizon_ms", config.dedup.horizon_ms, 1000, std::int64_t{30} * 86400000);
      check.integer(*dt, "max_bytes", config.dedup.max_bytes, 65536, std::int64_t{1} << 40);
    } else {
      check.error(*d, "'dedup' must be a table");
    }
  }
  if (const toml::node* s = root.get("source")) {
    config.sources.clear();
    detail::parse_sources(*s, check, config);
  }
  if (const toml::node* s = root.get("schema")) {
    if (const toml::table* st = s->as_table()) {
      detail::parse_schema(*st, check, config);
    } else {
      check.error(*s, "'schema' must be a table");
    }
  }
  const toml::node* views = root.get("view");
  if (views != nullptr) detail::parse_views(*views, check, config);
  finalize(config, result.errors);
  if (const toml::node* s = root.get("schema"); s != nullptr && views == nullptr) {
    detail::check_builtin_views(*s, config, result.errors);
  }
  if (const toml::node* a = root.get("alarm")) detail::parse_alarms(*a, check, config);
  detail::warn_unread_fields(config, result.warnings);
  sort_by_line(result.errors);
  sort_by_line(result.warnings);
  return result;
}

void sort_by_line(std::vector<ConfigError>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return (a.line == 0 ? INT_MAX : a.line) < (b.line == 0 ? INT_MAX : b.line);
  });
}

ConfigResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigResult r;
    r.errors.push_back({0, fmt::format("cannot read config file '{}'", path)});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace spate::engine
