// libFuzzer target: parse_config on TOML text. For every text the loader
// accepts, the limits it promises hold and every cross-reference resolves;
// and an event that holds each schema field with its declared type is
// accepted by an EventParser built from the configuration (a configuration
// that passes validation but can never accept an event is a loader bug).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/event_parser.hpp"
#include "engine/source_kind.hpp"
#include "engine/view_registry.hpp"

namespace {

using namespace spate::engine;

[[noreturn]] void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "config invariant: %s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

void require(bool ok, const char* what, std::string_view detail = {}) {
  if (!ok) fail(what, detail);
}

// A JSON string literal for `s` (valid UTF-8, as TOML keys are).
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", u);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void check_valid(const Config& c) {
  require(!c.ts_field.empty(), "an empty timestamp field");
  require(c.fields.size() <= kMaxSchemaFields, "more schema fields than the limit");
  require(c.columns.size() <= kMaxColumns, "more columns than the limit");
  require(c.key_groups.size() <= kMaxKeyGroups, "more view keys than the limit");
  require(!c.views.empty(), "no view");
  for (std::size_t i = 0; i < c.fields.size(); ++i) {
    require(c.fields[i].name != c.id_field && c.fields[i].name != c.ts_field, "a field that is the id or timestamp",
            c.fields[i].name);
    for (std::size_t j = 0; j < i; ++j) require(c.fields[i].name != c.fields[j].name, "a field declared twice", c.fields[i].name);
  }
  const auto field_type = [&](const std::string& name, FieldType type) {
    for (const auto& f : c.fields) {
      if (f.name == name) return f.type == type;
    }
    return false;
  };
  for (std::size_t v = 0; v < c.views.size(); ++v) {
    const ViewConfig& view = c.views[v];
    require(c.find_view(view.name) == static_cast<int>(v), "a view name that finds another view", view.name);
    require(view.window_ms >= 1, "a window of no length", view.name);
    require(!view.aggregates.empty(), "a view without aggregates", view.name);
    require(view.key_group >= 0 && static_cast<std::size_t>(view.key_group) < c.key_groups.size(), "a view without its key group",
            view.name);
    const KeyGroup& group = c.key_groups[static_cast<std::size_t>(view.key_group)];
    require(group.field == view.key_field && field_type(view.key_field, FieldType::string), "a view keyed by no string field",
            view.name);
    bool listed = false;
    for (const int gv : group.views) listed = listed || gv == static_cast<int>(v);
    require(listed, "a view its key group does not list", view.name);
    for (std::size_t a = 0; a < view.aggregates.size(); ++a) {
      const AggregateConfig& agg = view.aggregates[a];
      require(c.find_aggregate(static_cast<int>(v), agg.label) == static_cast<int>(a), "an aggregate label that finds another",
              agg.label);
      if (agg.field.empty()) {
        require(agg.column == -1, "an aggregate without a field but with a column", agg.label);
      } else {
        require(agg.column >= 0 && static_cast<std::size_t>(agg.column) < c.columns.size() &&
                    c.columns[static_cast<std::size_t>(agg.column)].name == agg.field &&
                    c.columns[static_cast<std::size_t>(agg.column)].type == agg.type && field_type(agg.field, agg.type) &&
                    agg.type != FieldType::string,
                "an aggregate without its typed column", agg.label);
      }
    }
  }
  for (const auto& s : c.sources) {
    require(!s.type.empty(), "a source without its type");
  }

  // One event with every wanted field once, each of its declared type.
  std::vector<std::string> names;
  std::string line = "{";
  const auto add = [&](const std::string& name, const char* value) {
    for (const auto& n : names) {
      if (n == name) return;
    }
    names.push_back(name);
    line += (names.size() > 1 ? "," : "") + json_string(name) + ":" + value;
  };
  if (!c.id_field.empty()) add(c.id_field, "\"e1\"");
  add(c.ts_field, "1764000000000");
  const auto value_of = [](FieldType type) {
    switch (type) {
      case FieldType::string: return "\"k\"";
      case FieldType::number: return "1.5";
      case FieldType::integer: return "-7";
      case FieldType::boolean: return "true";
    }
    return "null";
  };
  for (const auto& f : c.fields) add(f.name, value_of(f.type));
  line += "}";
  EventParser parser(c);
  ParsedEvent ev;
  const std::size_t capacity = line.size() + kPadding;
  const auto buf = std::make_unique<char[]>(capacity);
  std::copy(line.begin(), line.end(), buf.get());
  const Reject r = parser.parse(buf.get(), line.size(), capacity, ev);
  if (r != Reject::none) {
    std::fprintf(stderr, "config invariant: a valid configuration rejects a complete event as %s\n", reject_name(r));
    fail("event", line);
  }
  require(ev.ts_ms == 1764000000000, "the complete event's timestamp", line);
  for (std::size_t g = 0; g < c.key_groups.size(); ++g) require(ev.keys[g] == "k", "the complete event's key", line);
  for (std::size_t col = 0; col < c.columns.size(); ++col) {
    const Cell cell = ev.columns[col];
    const FieldType type = c.columns[col].type;
    require(type == FieldType::number ? cell.f == 1.5 : cell.i == (type == FieldType::integer ? -7 : 1),
            "the complete event's value of each column", line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const ConfigResult r = parse_config(text, "fuzz.toml");
  if (r.ok()) {
    check_valid(r.config);
    // What the kinds check (each source's keys, each view's window): errors, never a crash.
    std::vector<ConfigError> kinds = check_sources(r.config);
    for (ConfigError& e : check_views(r.config)) kinds.push_back(std::move(e));
    for (const auto& e : kinds) require(e.line >= 0 && !e.message.empty(), "a kind's error without a line or message", e.message);
  } else {
    for (const auto& e : r.errors) require(e.line >= 0 && !e.message.empty(), "an error without a line or message", e.message);
  }
  return 0;
}
