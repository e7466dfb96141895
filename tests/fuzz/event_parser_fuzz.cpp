// libFuzzer target: engine::EventParser on NDJSON under several schemas.
// The first byte picks the schema; the rest is a receive buffer whose lines
// are parsed in place, each with the bytes after it as its padding, as a
// shard parses them. Every result is checked against JsonReader: bad JSON
// is malformed_json, and JSON gets exactly the reason the schema calls for,
// an accepted line the values the parser returned.
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/event_parser.hpp"
#include "json_oracle.hpp"
#include "kernels/rfc3339.hpp"

namespace {

using namespace spate::engine;
using spate::fuzz::JsonDoc;
using spate::fuzz::JsonReader;
using spate::fuzz::Kind;
using spate::fuzz::Member;

// String and number fields in other orders, names of 7, 8 and more bytes,
// no id field.
constexpr const char* kOtherOrder = R"toml(
[schema]
id = ""
timestamp = "time_utc"
fields = { qty = "number", note = "string", country = "string", price_usd_cents = "number", session_identifier = "string", amount = "number" }
[[view]]
name = "by_country"
key = "country"
size_ms = 5000
aggregates = ["count", "sum(price_usd_cents)", "max(amount)"]
[[view]]
name = "by_session"
key = "session_identifier"
size_ms = 60000
aggregates = ["avg(qty)"]
)toml";

// An id, and timestamps sent as RFC 3339 strings (the seeds' choice: every
// schema takes both forms).
constexpr const char* kRfc3339 = R"toml(
[schema]
id = "event_id"
timestamp = "timestamp"
fields = { user = "string", kind = "string", amount = "number", region = "string" }
[[view]]
name = "per_user"
key = "user"
size_ms = 60000
aggregates = ["count", "sum(amount)"]
[[view]]
name = "per_region"
key = "region"
size_ms = 60000
aggregates = ["min(amount)"]
)toml";

// Names that share their first 8 bytes, up to longer than the padding.
std::string long_names_schema() {
  const std::string n64 = "user_id_" + std::string(56, 'a');
  const std::string n100 = "user_id_" + std::string(92, 'b');
  return "[schema]\nfields = { user_id_ = \"string\", user_id_x = \"string\", " + n64 + " = \"number\", " + n100 +
         " = \"string\" }\n[[view]]\nname = \"v\"\nkey = \"user_id_\"\nsize_ms = 60000\naggregates = [\"sum(" + n64 + ")\"]\n" +
         "[[view]]\nname = \"w\"\nkey = \"" + n100 + "\"\nsize_ms = 60000\naggregates = [\"count\"]\n";
}

// Integer and boolean fields, aggregated (columns) and not.
constexpr const char* kTyped = R"toml(
[schema]
fields = { device = "string", bytes = "integer", ok = "boolean", seq = "integer", retried = "boolean", temp = "number" }
[[view]]
name = "per_device"
key = "device"
size_ms = 60000
aggregates = ["sum(bytes)", "max(bytes)", "avg(ok)", "last(temp)"]
)toml";

// Every limit: 62 fields (8 view keys, 16 number columns, 38 others).
std::string widest_schema() {
  std::string fields, views;
  for (int i = 0; i < 8; ++i) fields += "k" + std::to_string(i) + " = \"string\", ";
  for (int i = 0; i < 16; ++i) fields += "n" + std::to_string(i) + " = \"number\", ";
  for (int i = 0; i < 38; ++i) fields += "s" + std::to_string(i) + " = \"string\"" + (i + 1 < 38 ? ", " : "");
  for (int i = 0; i < 8; ++i) {
    views += "[[view]]\nname = \"v" + std::to_string(i) + "\"\nkey = \"k" + std::to_string(i) + "\"\nsize_ms = 60000\naggregates = [";
    for (int c = 0; c < 16; ++c) views += std::string(c == 0 ? "" : ", ") + "\"sum(n" + std::to_string(c) + ")\"";
    views += "]\n";
  }
  return "[schema]\nfields = { " + fields + " }\n" + views;
}

enum class Role { id, ts, key, column, other };

struct WantedField {
  std::string name;
  Role role;
  int index = 0;  // key group or column
  FieldType type = FieldType::string;
};

struct Schema {
  Config config;
  std::unique_ptr<EventParser> parser;
  std::vector<WantedField> wanted;
};

Schema make_schema(Config config) {
  Schema s;
  if (!config.id_field.empty()) s.wanted.push_back({config.id_field, Role::id});
  s.wanted.push_back({config.ts_field, Role::ts});
  for (const auto& f : config.fields) {
    WantedField w{f.name, Role::other, 0, f.type};
    for (std::size_t g = 0; g < config.key_groups.size(); ++g) {
      if (config.key_groups[g].field == f.name) w = {f.name, Role::key, static_cast<int>(g), f.type};
    }
    for (std::size_t c = 0; c < config.columns.size(); ++c) {
      if (config.columns[c].name == f.name) w = {f.name, Role::column, static_cast<int>(c), f.type};
    }
    s.wanted.push_back(w);
  }
  s.config = std::move(config);
  s.parser = std::make_unique<EventParser>(s.config);
  return s;
}

Config parsed(const std::string& toml) {
  auto r = parse_config(toml, "fuzz-schema.toml");
  if (!r.ok()) {
    std::fprintf(stderr, "fuzz schema invalid: line %d: %s\n", r.errors[0].line, r.errors[0].message.c_str());
    std::abort();
  }
  return std::move(r.config);
}

// New schemas go at the end: the first byte of the kept inputs (corpus,
// regressions) picks one by its index.
std::vector<Schema>& schemas() {
  static std::vector<Schema> all = [] {
    std::vector<Schema> v;
    v.push_back(make_schema(default_config()));
    v.push_back(make_schema(parsed(kOtherOrder)));
    v.push_back(make_schema(parsed(kRfc3339)));
    v.push_back(make_schema(parsed(widest_schema())));
    v.push_back(make_schema(parsed(long_names_schema())));
    v.push_back(make_schema(parsed(kTyped)));
    return v;
  }();
  return all;
}

[[noreturn]] void fail(std::string_view line, std::size_t schema, const char* what, Reject got, const std::string& detail = {}) {
  std::fprintf(stderr, "event_parser invariant: %s%s (schema %zu, parse() said %s)\nline (%zu bytes): ", what, detail.c_str(),
               schema, reject_name(got), line.size());
  for (const char c : line) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) std::fputc(c, stderr);
    else std::fprintf(stderr, "\\x%02x", u);
  }
  std::fputc('\n', stderr);
  std::abort();
}

std::optional<std::int64_t> as_int64(std::string_view raw) {
  if (raw.find_first_of(".eE") != std::string_view::npos) return std::nullopt;
  const std::string text(raw);
  errno = 0;
  const long long v = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE) return std::nullopt;
  return v;
}

double as_double(std::string_view raw) { return std::strtod(std::string(raw).c_str(), nullptr); }

// Whether a value has a schema field's type (docs/configuration.md): an
// integer is a number without fraction or exponent within int64.
bool typed(FieldType type, const Member& m) {
  switch (type) {
    case FieldType::string: return m.kind == Kind::string;
    case FieldType::number: return m.kind == Kind::number;
    case FieldType::integer: return m.kind == Kind::number && as_int64(m.raw_value).has_value();
    case FieldType::boolean: return m.kind == Kind::boolean;
  }
  return false;
}

// An event time as docs/configuration.md defines it: epoch milliseconds (a
// fraction floors) or an RFC 3339 string, within what RFC 3339 can write.
std::optional<std::int64_t> timestamp(const Member& m) {
  using spate::kernels::kRfc3339MaxMs;
  using spate::kernels::kRfc3339MinMs;
  std::optional<std::int64_t> ms;
  if (m.kind == Kind::string) {
    ms = spate::kernels::parse_rfc3339_ms(*spate::fuzz::unescape(m.raw_value));
  } else if (const auto v = as_int64(m.raw_value)) {
    ms = v;
  } else if (const double d = as_double(m.raw_value); d >= static_cast<double>(kRfc3339MinMs) && d < static_cast<double>(kRfc3339MaxMs) + 1) {
    ms = static_cast<std::int64_t>(std::floor(d));
  }
  if (ms && (*ms < kRfc3339MinMs || *ms > kRfc3339MaxMs)) ms.reset();
  return ms;
}

// Checks one line's result against what the schema makes of the JSON.
void check(std::size_t index, const Schema& schema, std::string_view line, Reject got, const ParsedEvent& ev) {
  // Lengths and the wall clock are judged outside the parser.
  if (static_cast<std::size_t>(got) >= kRejectReasons || got == Reject::oversized_line || got == Reject::future_timestamp ||
      got == Reject::before_min_timestamp) {
    fail(line, index, "a reason parse() never gives", got);
  }
  const JsonDoc doc = JsonReader(line).read();
  if (!doc.valid || doc.kind != Kind::object) {
    if (got != Reject::malformed_json) fail(line, index, "not one JSON object, yet not malformed_json", got);
    return;
  }
  if (doc.unsure) return;
  // Each wanted field's first occurrence, by its name's raw bytes as the parser compares them.
  std::vector<Reject> errors;
  bool missing = false;
  std::vector<const Member*> found;
  for (const WantedField& w : schema.wanted) {
    const Member* m = nullptr;
    for (const Member& candidate : doc.members) {
      if (candidate.raw_name == w.name) {
        m = &candidate;
        break;
      }
    }
    found.push_back(m);
    if (m == nullptr) {
      missing = true;
      continue;
    }
    switch (w.role) {
      case Role::ts:
        if (m->kind == Kind::number || m->kind == Kind::string) {
          if (!timestamp(*m)) errors.push_back(Reject::bad_timestamp);
        } else {
          errors.push_back(Reject::wrong_type);
        }
        break;
      case Role::key:
        if (m->kind != Kind::string) errors.push_back(Reject::wrong_type);
        else if (spate::fuzz::unescape(m->raw_value)->size() > kMaxKeyBytes) errors.push_back(Reject::key_too_long);
        break;
      case Role::id:
        if (m->kind != Kind::string && m->kind != Kind::number) errors.push_back(Reject::wrong_type);
        break;
      case Role::column:
      case Role::other:
        if (!typed(w.type, *m)) errors.push_back(Reject::wrong_type);
        break;
    }
  }
  if (!errors.empty()) {
    // The first bad field in line order decides; any of them will do here.
    for (const Reject r : errors) {
      if (r == got) return;
    }
    fail(line, index, "a field of the wrong type, timestamp or key length, yet another reason", got);
  }
  if (missing) {
    if (got != Reject::missing_field) fail(line, index, "a wanted field is missing, yet not missing_field", got);
    return;
  }
  if (got != Reject::none) fail(line, index, "every wanted field is present and good, yet rejected", got);
  for (std::size_t i = 0; i < schema.wanted.size(); ++i) {
    const WantedField& w = schema.wanted[i];
    const Member& m = *found[i];
    if (w.role == Role::ts) {
      const std::int64_t want = *timestamp(m);
      if (ev.ts_ms != want) {
        fail(line, index, "accepted with another timestamp", got, ": " + std::to_string(ev.ts_ms) + ", not " + std::to_string(want));
      }
    } else if (w.role == Role::key) {
      const std::string want = *spate::fuzz::unescape(m.raw_value);
      if (ev.keys[w.index] != want) fail(line, index, "accepted with another key", got, ": " + std::string(ev.keys[w.index]) + ", not " + want);
    } else if (w.role == Role::column && w.type == FieldType::number) {
      const double want = as_double(m.raw_value);
      if (ev.columns[w.index].f != want) {
        char values[64];
        std::snprintf(values, sizeof(values), ": %.17g, not %.17g", ev.columns[w.index].f, want);
        fail(line, index, "accepted with another number", got, values);
      }
    } else if (w.role == Role::column) {
      const std::int64_t want = w.type == FieldType::integer ? *as_int64(m.raw_value) : m.raw_value == "true" ? 1 : 0;
      if (ev.columns[w.index].i != want) {
        fail(line, index, "accepted with another integer", got,
             ": " + std::to_string(ev.columns[w.index].i) + ", not " + std::to_string(want));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto& all = schemas();
  const std::size_t index = data[0] % all.size();
  Schema& schema = all[index];
  // Exactly the bytes a receive buffer would hold, so ASan sees any read past the padding.
  const std::size_t n = size - 1;
  const std::size_t capacity = n + kPadding;
  const auto buf = std::make_unique<char[]>(capacity);
  std::memcpy(buf.get(), data + 1, n);
  ParsedEvent ev;
  std::size_t pos = 0;
  while (pos <= n) {
    const char* nl = static_cast<const char*>(std::memchr(buf.get() + pos, '\n', n - pos));
    const std::size_t end = nl != nullptr ? static_cast<std::size_t>(nl - buf.get()) : n;
    const char* line = buf.get() + pos;
    const std::size_t len = end - pos;
    const Reject r = schema.parser->parse(line, len, capacity - pos, ev);
    check(index, schema, std::string_view(line, len), r, ev);
    pos = end + 1;
  }
  return 0;
}
