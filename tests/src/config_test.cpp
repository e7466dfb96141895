// Configuration parsing: defaults, a full file, and errors with their lines.
#include <doctest/doctest.h>

#include <climits>
#include <string>

#include "config/config.hpp"
#include "config/key_suggestion.hpp"
#include "engine/source_kind.hpp"

using namespace spate::engine;

TEST_CASE("config: the built-in pipeline has two views over two keys and one amount column") {
  const Config c = default_config();
  REQUIRE(c.views.size() == 2);
  CHECK(c.views[0].name == "per_user_1m");
  CHECK(c.views[0].window_ms == 60000);
  CHECK(c.views[1].name == "per_type_10s");
  CHECK(c.key_groups.size() == 2);
  REQUIRE(c.columns.size() == 1);
  CHECK((c.columns[0].name == "amount" && c.columns[0].type == FieldType::number));
  CHECK(c.query.listen.to_string() == "127.0.0.1:7070");
  CHECK(c.sources.size() == 2);
  CHECK(c.allowed_lateness_ms == 5000);
}

TEST_CASE("config: a complete file is read into the structs") {
  const auto r = parse_config(R"toml(
shards = 3
data_dir = "/var/lib/spate"
allowed_lateness_ms = 1000
[query]
listen = "127.0.0.1:9000"
[[source]]
type = "tcp"
listen = "127.0.0.1:9001"
[[source]]
type = "file"
path = "events.ndjson"
[schema]
id = "event_id"
timestamp = "time"
fields = { country = "string", price = "number", qty = "number" }
[[view]]
name = "by_country"
key = "country"
size_ms = 5000
aggregates = ["count", "sum(price)", "max(qty)"]
)toml",
                              "t.toml");
  REQUIRE(r.ok());
  const Config& c = r.config;
  CHECK(c.shards == 3);
  CHECK(c.data_dir == "/var/lib/spate");
  CHECK(c.query.listen.port == 9000);
  REQUIRE(c.sources.size() == 2);
  CHECK(c.sources[1].type == "file");
  CHECK(c.id_field == "event_id");
  CHECK(c.ts_field == "time");
  REQUIRE(c.views.size() == 1);
  CHECK(c.views[0].aggregates[2].label == "max(qty)");
  REQUIRE(c.columns.size() == 2);
  CHECK((c.columns[0].name == "price" && c.columns[1].name == "qty"));
  CHECK(c.views[0].aggregates[2].column == 1);
  CHECK(r.warnings.empty());  // every field is read
}

TEST_CASE("config: a view without size_ms is refused at its line, whatever its kind; nothing stands in for it") {
  const auto r = parse_config(R"toml(
[[view]]
name = "per_user"
key = "user"
aggregates = ["count"]
[[view]]
name = "per_type_hop"
key = "type"
window = "hopping"
slide_ms = 10000
aggregates = ["count"]
[[view]]
name = "sized"
key = "user"
size_ms = 1000
aggregates = ["count"]
)toml",
                              "size.toml");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[0].message == "view 'per_user': a tumbling window needs size_ms (each window's length in milliseconds)");
  CHECK(r.errors[1].line == 6);
  CHECK(r.errors[1].message ==
        "view 'per_type_hop': a hopping window needs size_ms (each window's length in milliseconds)");
}

TEST_CASE("config: a [schema] without [[view]]s lacking what the built-in views read is one error naming each field") {
  const auto missing = parse_config("shards = 1\n[schema]\nfields = { device = \"string\", bytes = \"integer\" }\n",
                                    "schema.toml");
  REQUIRE(missing.errors.size() == 1);  // none about views the file never wrote
  CHECK(missing.errors[0].line == 2);
  CHECK(missing.errors[0].message ==
        "[schema] comes without a [[view]], so the built-in views apply (per_user_1m, per_type_10s), and they need "
        "fields that [schema].fields lacks: 'user' (a string), 'amount' (a number, integer or boolean), 'type' (a "
        "string); declare [[view]]s of your own, or add these fields");
  // Declared, but of another type or optional without a default: said in the same error.
  const auto otherwise = parse_config(R"toml([schema]
fields = { user = "integer", type = { type = "string", required = false }, amount = "number" }
)toml",
                                      "schema.toml");
  REQUIRE(otherwise.errors.size() == 1);
  CHECK(otherwise.errors[0].line == 1);
  CHECK(otherwise.errors[0].message.find("[schema].fields lacks or declares otherwise: 'user' (a string; declared "
                                         "integer), 'type' (required, or with a default; declared optional without "
                                         "one); declare") != std::string::npos);
  // What they read, given: no error; views of the file's own: their own errors.
  CHECK(parse_config("[schema]\nfields = { user = \"string\", type = \"string\", amount = \"integer\" }\n", "s.toml").ok());
  const auto own = parse_config("[schema]\nfields = { device = \"string\" }\n[[view]]\nname = \"v\"\nkey = \"user\"\n"
                                "size_ms = 1000\naggregates = [\"count\"]\n",
                                "own.toml");
  REQUIRE(own.errors.size() == 1);
  CHECK(own.errors[0].message == "view 'v': key 'user' must be a string field of [schema].fields");
}

TEST_CASE("config: a required field that no view or alarm reads is a warning naming it and how to take events without it") {
  const auto r = parse_config(R"toml(
[schema]
fields = { user = "string", page = "string", "ua.raw" = "string", score = { type = "number", required = false }, ok = "boolean" }
[[view]]
name = "v"
key = "user"
size_ms = 1000
aggregates = ["count"]
[[alarm]]
name = "ok_present"
type = "field"
field = "ok"
min = 0.5
)toml",
                              "unread.toml");
  REQUIRE(r.ok());
  REQUIRE(r.warnings.size() == 2);  // not user (the key), score (optional), ok (an alarm's)
  CHECK(r.warnings[0].line == 3);
  CHECK(r.warnings[0].message ==
        "field 'page' is read by no view or alarm, yet required: an event lacking it is refused (missing_field); to "
        "take such events, declare it page = { type = \"string\", required = false }");
  CHECK(r.warnings[1].message.find("declare it \"ua.raw\" = { type = \"string\", required = false }") !=
        std::string::npos);
  // The built-in schema's fields under a file's own views: the way out is a [schema] of the file's.
  const auto builtin = parse_config("[[view]]\nname = \"v\"\nkey = \"user\"\nsize_ms = 1000\naggregates = [\"count\"]\n",
                                    "builtin.toml");
  REQUIRE(builtin.ok());
  REQUIRE(builtin.warnings.size() == 2);
  CHECK(builtin.warnings[0].line == 0);
  CHECK(builtin.warnings[0].message.starts_with("field 'type' of the built-in schema (the file declares no [schema] "
                                                "fields) is read by no view or alarm, yet required"));
  CHECK(builtin.warnings[1].message.starts_with("field 'amount' of the built-in schema"));
  CHECK(parse_config("", "empty.toml").warnings.empty());
}

TEST_CASE("config: every error is reported with its line, unknown keys included") {
  const auto r = parse_config(R"toml(shards = 0
bogus = 1
[[source]]
type = "carrier-pigeon"
[[view]]
name = "v"
key = "nope"
size_ms = 1000
aggregates = ["count", "Sum amount", "sum(user)"]
colour = "blue"
)toml",
                              "bad.toml");
  REQUIRE_FALSE(r.ok());
  std::vector<ConfigError> errors = r.errors;
  for (ConfigError& e : check_sources(r.config)) errors.push_back(std::move(e));  // the kinds' checks
  auto has = [&](int line, const std::string& text) {
    for (const auto& e : errors) {
      if (e.line == line && e.message.find(text) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(has(1, "'shards' = 0 is out of range"));
  CHECK(has(2, "unknown key 'bogus'"));
  CHECK(has(4, "unknown source type 'carrier-pigeon'"));
  CHECK(has(9, "aggregate must be"));
  CHECK(has(10, "unknown key 'colour'"));
  CHECK(has(5, "key 'nope' must be a string field"));
  CHECK(has(5, "'sum(user)' needs a number, integer or boolean field"));
}

TEST_CASE("config: a TOML syntax error names its line") {
  const auto r = parse_config("shards = 2\n[query\nlisten = 1\n", "syntax.toml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 2);
}

TEST_CASE("config: limits are checked when the file is loaded, each with a clear error") {
  std::string fields;
  for (int i = 0; i < 63; ++i) fields += std::string(i == 0 ? "" : ", ") + "f" + std::to_string(i) + " = \"string\"";
  const auto many_fields = parse_config("[schema]\nfields = { user = \"string\", " + fields +
                                            " }\n[[view]]\nname = \"v\"\nkey = \"user\"\nsize_ms = 1000\naggregates = [\"count\"]\n",
                                        "t.toml");
  REQUIRE_FALSE(many_fields.ok());
  CHECK(many_fields.errors[0].message.find("at most 62") != std::string::npos);

  std::string numbers, aggregates;
  for (int i = 0; i < 17; ++i) {
    numbers += ", n" + std::to_string(i) + " = \"number\"";
    aggregates += std::string(i == 0 ? "" : ", ") + "\"sum(n" + std::to_string(i) + ")\"";
  }
  const auto many_columns = parse_config("[schema]\nfields = { user = \"string\"" + numbers +
                                             " }\n[[view]]\nname = \"v\"\nkey = \"user\"\nsize_ms = 1000\naggregates = [" + aggregates +
                                             "]\n",
                                         "t.toml");
  REQUIRE_FALSE(many_columns.ok());
  CHECK(many_columns.errors[0].message.find("at most 16 fields can be aggregated") != std::string::npos);

  const auto bad_ring = parse_config("ring_batch_rows = 8\nring_flush_us = -1\n", "t.toml");
  REQUIRE(bad_ring.errors.size() == 2);
  CHECK(bad_ring.errors[0].line == 1);
  CHECK(bad_ring.errors[1].line == 2);
}

TEST_CASE("config: field names an event could only carry escaped are refused, naming the value") {
  const auto r = parse_config(R"toml(
[schema]
id = "i\"d"
timestamp = ""
fields = { user = "string", "a\\b" = "number", "tab\there" = "string", "" = "string" }
[[view]]
name = "v"
key = "user"
size_ms = 1000
aggregates = ["count"]
)toml",
                              "names.toml");
  REQUIRE_FALSE(r.ok());
  std::vector<ConfigError> errors = r.errors;
  for (ConfigError& e : check_sources(r.config)) errors.push_back(std::move(e));  // the kinds' checks
  auto has = [&](int line, const std::string& text) {
    for (const auto& e : errors) {
      if (e.line == line && e.message.find(text) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(has(3, R"(schema.id "i\"d" holds a quote)"));
  CHECK(has(4, R"(schema.timestamp "" is empty)"));
  CHECK(has(5, R"(field "a\\b" holds a quote, a backslash)"));
  CHECK(has(5, R"(field "tab\x09here" holds)"));
  CHECK(has(5, R"(field "" is empty)"));
  const auto long_name = parse_config("[schema]\nfields = { user = \"string\", " + std::string(300, 'n') +
                                          " = \"string\" }\n[[view]]\nname = \"v\"\nkey = \"user\"\nsize_ms = 1000\naggregates = [\"count\"]\n",
                                      "long.toml");
  REQUIRE_FALSE(long_name.ok());
  CHECK(long_name.errors[0].message.find("is longer than 256 bytes") != std::string::npos);
}

TEST_CASE("config: errors come sorted by line, the ones tied to no line last") {
  const auto r = parse_config(R"toml(
[[view]]
name = "v"
key = "nope"
size_ms = 1000
aggregates = ["count"]
[schema]
fields = { user = "string", "q\"" = "string" }
shards = 0
)toml",
                              "order.toml");
  REQUIRE(r.errors.size() >= 2);
  for (std::size_t i = 1; i < r.errors.size(); ++i) {
    const int a = r.errors[i - 1].line == 0 ? INT_MAX : r.errors[i - 1].line;
    const int b = r.errors[i].line == 0 ? INT_MAX : r.errors[i].line;
    CHECK(a <= b);
  }
  CHECK(r.errors.front().line == 2);  // the view's key error, found last, comes first
}

TEST_CASE("config: file sources must be readable files") {
  Config config = default_config();
  const auto file = [](std::string path, int line) {
    SourceConfig s;
    s.type = "file";
    s.set("path", std::move(path));
    s.line = line;
    return s;
  };
  config.sources = {file("/nonexistent/spate/input.ndjson", 7), file(".", 9), file("-", 11)};
  const auto errors = check_sources(config);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].line == 7);
  CHECK(errors[0].message.find("\"/nonexistent/spate/input.ndjson\": cannot be read: No such file") != std::string::npos);
  CHECK(errors[1].line == 9);
  CHECK(errors[1].message.find("is a directory") != std::string::npos);
}

TEST_CASE("config: configurations the fuzzer found, each refused with its reason") {
  const auto empty_key = parse_config("[schema]\nfields = { n1 = \"number\" }\n[[view]]\nname = \"_\"\nkey = \"\"\n"
                                      "size_ms = 1000\naggregates = [\"max(n1)\"]\n",
                                      "f.toml");
  REQUIRE_FALSE(empty_key.ok());
  CHECK(empty_key.errors[0].message.find("needs key") != std::string::npos);
  const auto id_is_ts = parse_config("[schema]\nid = \"ts\"\n", "f.toml");
  REQUIRE_FALSE(id_is_ts.ok());
  CHECK(id_is_ts.errors[0].message.find("must be two fields") != std::string::npos);
}

TEST_CASE("config: the [storage] table is read, and bad values are refused with their line") {
  const auto r = parse_config(R"toml(
[storage]
enabled = true
durability = "sync"
commit_interval_ms = 2
compression = "zstd"
compression_level = 3
hot_retention_ms = 86400000
disk_high_water_percent = 80
disk_low_water_percent = 70
keep_raw = true
dead_letters = false
)toml",
                              "s.toml");
  REQUIRE(r.ok());
  const StorageConfig& s = r.config.storage;
  CHECK(s.durability == "sync");
  CHECK(s.commit_interval_ms == 2);
  CHECK(s.compression == "zstd");
  CHECK(s.compression_level == 3);
  CHECK(s.hot_retention_ms == 86400000);
  CHECK(s.disk_high_water_percent == 80);
  CHECK(s.keep_raw);
  CHECK_FALSE(s.dead_letters);
  CHECK(default_config().storage.durability == "group");

  const auto bad = parse_config(R"toml(
[storage]
durability = "fsync"
compression = "snappy"
enabled = 1
disk_high_water_percent = 50
disk_low_water_percent = 60
)toml",
                                "b.toml");
  REQUIRE(bad.errors.size() == 4);
  CHECK(bad.errors[0].line == 3);
  CHECK(bad.errors[0].message == "'durability' = 'fsync' is not one of 'none', 'group', 'sync'");
  CHECK(bad.errors[1].message == "'compression' = 'snappy' is not one of 'none', 'lz4', 'zstd'");
  CHECK(bad.errors[2].message == "'enabled' must be true or false");
  CHECK(bad.errors[3].message.find("disk_low_water_percent (60) is above") != std::string::npos);
}

TEST_CASE("config: the [dedup] table is read and checked") {
  const auto r = parse_config("[dedup]\nenabled = false\nhorizon_ms = 60000\nmax_bytes = 1048576\n", "d.toml");
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.dedup.enabled);
  CHECK(r.config.dedup.effective_horizon_ms == 60000);
  CHECK(r.config.dedup.max_bytes == 1048576);
  CHECK(default_config().dedup.enabled);
  // By default the horizon is the widest window plus the allowed lateness.
  CHECK(default_config().dedup.effective_horizon_ms == 65000);
  const auto wide = parse_config("allowed_lateness_ms = 2000\n[[view]]\nname = \"v\"\nkey = \"user\"\nsize_ms = 300000\n"
                                 "aggregates = [\"count\"]\n", "w.toml");
  REQUIRE(wide.ok());
  CHECK(wide.config.dedup.effective_horizon_ms == 302000);
  const auto old = parse_config("[dedup]\nmax_ids = 4096\n", "o.toml");
  REQUIRE(old.errors.size() == 1);
  CHECK(old.errors[0].line == 2);
  CHECK(old.errors[0].message.find("max_ids is gone") != std::string::npos);
  const auto bad = parse_config("[dedup]\nhorizon_ms = 10\nwindow = 3\n", "d.toml");
  REQUIRE(bad.errors.size() == 2);
  CHECK(bad.errors[0].message == "'horizon_ms' = 10 is out of range [1000, 2592000000]");
  CHECK(bad.errors[1].message.find("window") != std::string::npos);
}

TEST_CASE("config: [metrics] listen is an address or off, on loopback by default") {
  CHECK(default_config().metrics.enabled);
  CHECK(default_config().metrics.listen.to_string() == "127.0.0.1:9464");
  auto r = parse_config("[metrics]\nlisten = \"127.0.0.1:9100\"\n", "m.toml");
  REQUIRE(r.ok());
  CHECK(r.config.metrics.listen.port == 9100);
  r = parse_config("[metrics]\nlisten = \"off\"\n", "m.toml");
  REQUIRE(r.ok());
  CHECK_FALSE(r.config.metrics.enabled);
  r = parse_config("[metrics]\nlisten = \"nowhere\"\nport = 1\n", "m.toml");
  CHECK(r.errors.size() == 2);
}

TEST_CASE("config: [metrics] limits have defaults, are read, and a value out of range names its line") {
  const auto d = default_config().metrics;
  CHECK(d.max_connections == 64);
  CHECK(d.request_timeout_ms == 5000);
  CHECK(d.idle_timeout_ms == 30000);
  CHECK(d.max_request_bytes == 8192);
  auto r = parse_config("[metrics]\nmax_connections = 8\nrequest_timeout_ms = 250\nidle_timeout_ms = 1000\n"
                        "max_request_bytes = 1024\n", "m.toml");
  REQUIRE(r.ok());
  CHECK(r.config.metrics.max_connections == 8);
  CHECK(r.config.metrics.request_timeout_ms == 250);
  CHECK(r.config.metrics.idle_timeout_ms == 1000);
  CHECK(r.config.metrics.max_request_bytes == 1024);
  r = parse_config("[metrics]\nlisten = \"127.0.0.1:9100\"\nmax_connections = 0\nrequest_timeout_ms = 99\n"
                   "idle_timeout_ms = 3600001\nmax_request_bytes = 1023\n", "m.toml");
  REQUIRE(r.errors.size() == 4);
  CHECK(r.errors[0].line == 3);
  CHECK(r.errors[0].message == "'max_connections' = 0 is out of range [1, 65536]");
  CHECK(r.errors[1].line == 4);
  CHECK(r.errors[1].message == "'request_timeout_ms' = 99 is out of range [100, 600000]");
  CHECK(r.errors[2].line == 5);
  CHECK(r.errors[2].message == "'idle_timeout_ms' = 3600001 is out of range [100, 3600000]");
  CHECK(r.errors[3].line == 6);
  CHECK(r.errors[3].message == "'max_request_bytes' = 1023 is out of range [1024, 1048576]");
  // Refused values leave the defaults.
  CHECK(r.config.metrics.max_connections == 64);
  CHECK(r.config.metrics.max_request_bytes == 8192);
  r = parse_config("[metrics]\nmax_connections = 65537\nmax_request_bytes = \"8k\"\n", "m.toml");
  REQUIRE(r.errors.size() == 2);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[0].message == "'max_connections' = 65537 is out of range [1, 65536]");
  CHECK(r.errors[1].line == 3);
  CHECK(r.errors[1].message == "'max_request_bytes' must be an integer");
}

TEST_CASE("config: [log] sets the format and level, logfmt and info by default, and bad values name their line") {
  CHECK(default_config().log.format == spate::io::LogFormat::logfmt);
  CHECK(default_config().log.level == spate::io::LogLevel::info);
  auto r = parse_config("[log]\nformat = \"json\"\nlevel = \"warn\"\n", "l.toml");
  REQUIRE(r.ok());
  CHECK(r.config.log.format == spate::io::LogFormat::json);
  CHECK(r.config.log.level == spate::io::LogLevel::warn);
  r = parse_config("[log]\nformat = \"text\"\nlevel = \"verbose\"\ncolour = true\n", "l.toml");
  REQUIRE(r.errors.size() == 3);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[0].message == "'format' = 'text' is not one of 'logfmt', 'json'");
  CHECK(r.errors[1].line == 3);
  CHECK(r.errors[1].message == "'level' = 'verbose' is not one of 'debug', 'info', 'warn', 'error'");
  CHECK(r.errors[2].line == 4);
  CHECK(r.errors[2].message == "unknown key 'colour' in [log]");
  CHECK(r.config.log.format == spate::io::LogFormat::logfmt);
  r = parse_config("log = \"json\"\n", "l.toml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message == "'log' must be a table");
}

TEST_CASE("config: [[alarm]] tables are read, resolved against the schema and views, and bad ones refused by line") {
  const auto ok = parse_config(R"toml(
[[alarm]]
name = "rate"
type = "volume"
source = "tcp"
min = 10
max = 1e6
fire_after = 5

[[alarm]]
name = "amount_present"
type = "field"
field = "amount"
min = 0.99

[[alarm]]
name = "clicks"
type = "aggregate"
view = "per_type_10s"
aggregate = "sum(amount)"
key = "click"
learn = 60
sigmas = 4
)toml",
                               "t.toml");
  REQUIRE(ok.ok());
  REQUIRE(ok.config.alarms.size() == 3);
  const auto& rate = ok.config.alarms[0];
  CHECK(rate.kind == AlarmConfig::Kind::volume);
  CHECK(rate.source == "tcp");
  CHECK((rate.has_min && rate.min == 10 && rate.has_max && rate.max == 1e6));
  CHECK(rate.fire_after == 5);
  CHECK(rate.clear_after == 3);
  CHECK(ok.config.alarms[1].field_index == 4);  // id, ts, user, type, amount
  const auto& clicks = ok.config.alarms[2];
  CHECK(clicks.view_index == ok.config.find_view("per_type_10s"));
  CHECK(clicks.aggregate_index == ok.config.find_aggregate(clicks.view_index, "sum(amount)"));
  CHECK((clicks.learn == 60 && clicks.sigmas == 4 && clicks.min_band == 0.1 && !clicks.has_min && !clicks.has_max));

  const auto bad = parse_config(R"toml([[alarm]]
name = "Bad.Name"
type = "volume"
min = 1
[[alarm]]
name = "no_bounds"
type = "volume"
[[alarm]]
name = "f"
type = "field"
field = "nope"
min = 1
[[alarm]]
name = "a"
type = "aggregate"
view = "per_type_10s"
aggregate = "p99(amount)"
key = "k"
max = 1
[[alarm]]
name = "f"
type = "volume"
source = "kafka"
field = "amount"
min = 5
max = 1
)toml",
                                "t.toml");
  REQUIRE_FALSE(bad.ok());
  std::string all;
  for (const auto& e : bad.errors) all += std::to_string(e.line) + ": " + e.message + "\n";
  for (const auto& e : check_sources(bad.config)) all += std::to_string(e.line) + ": " + e.message + "\n";
  CHECK(all.find("1: [[alarm]] needs name") != std::string::npos);
  CHECK(all.find("5: alarm 'no_bounds' needs bounds") != std::string::npos);
  CHECK(all.find("11: alarm 'f': \"nope\" is not a field of the schema") != std::string::npos);
  CHECK(all.find("17: alarm 'a': view 'per_type_10s' has no aggregate 'p99(amount)'") != std::string::npos);
  CHECK(all.find("alarm 'f' is declared twice") != std::string::npos);
  CHECK(all.find("unknown source 'kafka'") != std::string::npos);
  CHECK(all.find("'field' is for field alarms") != std::string::npos);
  CHECK(all.find("min is above max") != std::string::npos);
}

TEST_CASE("config: an unknown key names the known key it is nearest to, and none when nothing is near") {
  const auto message_at = [](const ConfigResult& r, int line) {
    for (const auto& e : r.errors) {
      if (e.line == line) return e.message;
    }
    return std::string("(no error at that line)");
  };
  auto r = parse_config(R"toml(shard = 2
[[view]]
name = "v"
key = "user"
size = 1000
aggregates = ["count"]
Slide_MS = 500
colour = "blue"
[query]
lsiten = "127.0.0.1:7070"
[log]
lvl = "warn"
)toml",
                        "near.toml");
  REQUIRE(r.errors.size() == 7);
  CHECK(message_at(r, 1) == "unknown key 'shard' in the top level; did you mean 'shards'?");
  // The misspelt size is not taken for a minute: the view has none.
  CHECK(message_at(r, 2) == "view 'v': a tumbling window needs size_ms (each window's length in milliseconds)");
  CHECK(message_at(r, 5) == "unknown key 'size' in [[view]]; did you mean 'size_ms'?");  // a prefix
  CHECK(message_at(r, 7) == "unknown key 'Slide_MS' in [[view]]; did you mean 'slide_ms'?");  // case
  CHECK(message_at(r, 8) == "unknown key 'colour' in [[view]]");  // nothing near
  CHECK(message_at(r, 10) == "unknown key 'lsiten' in [query]; did you mean 'listen'?");  // a swap
  CHECK(message_at(r, 12) == "unknown key 'lvl' in [log]; did you mean 'level'?");
}

TEST_CASE("key suggestion: edits counted ignoring case, a swap as one; near keys or prefixes only") {
  CHECK(key_distance("", "") == 0);
  CHECK(key_distance("size", "size_ms") == 3);
  CHECK(key_distance("SIZE_MS", "size_ms") == 0);
  CHECK(key_distance("lsiten", "listen") == 1);
  CHECK(key_distance("ca", "abc") == 3);  // optimal string alignment: a swapped pair is not edited again
  CHECK(key_distance("kitten", "sitting") == 3);
  CHECK(key_distance("", "abc") == 3);
  const std::string_view known[] = {"max_keys", "size_ms", "slide_ms", "name", "key", "id"};
  CHECK(nearest_key("size", known) == "size_ms");
  CHECK(nearest_key("slide", known) == "slide_ms");
  CHECK(nearest_key("sise_ms", known) == "size_ms");
  CHECK(nearest_key("max_key", known) == "max_keys");
  CHECK(nearest_key("nmae", known) == "name");
  CHECK(nearest_key("keys", known) == "key");
  CHECK(nearest_key("slide_ms2", known) == "slide_ms");
  CHECK(nearest_key("ts", known) == std::nullopt);     // two edits from "id", but it has only two letters
  CHECK(nearest_key("xy", known) == std::nullopt);
  CHECK(nearest_key("mystery", known) == std::nullopt);
  CHECK(nearest_key("window_size", known) == std::nullopt);
  CHECK(nearest_key("s", known) == std::nullopt);  // too short to be a prefix
  CHECK(nearest_key("anything", {}) == std::nullopt);
}
