// The config parser's error collector and typed readers, shared by the
// files of src/config (not installed: an implementation detail).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "config/config.hpp"
#include "config/key_suggestion.hpp"

namespace spate::engine::detail {

class Checker {
 public:
  explicit Checker(std::vector<ConfigError>& errors) : errors_(errors) {}

  void error(const toml::node& node, std::string message) {
    errors_.push_back({static_cast<int>(node.source().begin.line), std::move(message)});
  }
  void error(int line, std::string message) { errors_.push_back({line, std::move(message)}); }

  // Reports every key of `table` not in `known`, with the known key it was
  // probably meant to be ("did you mean 'size_ms'?"), if one is near.
  void known_keys(const toml::table& table, std::string_view where, std::initializer_list<std::string_view> known) {
    for (auto&& [key, value] : table) {
      bool found = false;
      for (auto k : known) found = found || k == key.str();
      if (!found) {
        const auto near = nearest_key(key.str(), std::span<const std::string_view>(known.begin(), known.size()));
        error(static_cast<int>(key.source().begin.line),
              fmt::format("unknown key '{}' in {}{}", key.str(), where,
                          near ? fmt::format("; did you mean '{}'?", *near) : std::string()));
      }
    }
  }

  bool string(const toml::table& t, std::string_view key, std::string& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (!n->is_string()) {
      error(*n, fmt::format("'{}' must be a string", key));
      return false;
    }
    out = n->as_string()->get();
    return true;
  }

  bool boolean(const toml::table& t, std::string_view key, bool& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (!n->is_boolean()) {
      error(*n, fmt::format("'{}' must be true or false", key));
      return false;
    }
    out = n->as_boolean()->get();
    return true;
  }

  // A string that must be one of `choices`.
  void choice(const toml::table& t, std::string_view key, std::string& out, std::initializer_list<std::string_view> choices) {
    std::string value = out;
    if (!string(t, key, value)) return;
    for (std::string_view c : choices) {
      if (value == c) {
        out = value;
        return;
      }
    }
    std::string list;
    for (std::string_view c : choices) list += fmt::format("{}'{}'", list.empty() ? "" : ", ", c);
    error(*t.get(key), fmt::format("'{}' = '{}' is not one of {}", key, value, list));
  }

  template <typename Int>
  bool integer(const toml::table& t, std::string_view key, Int& out, std::int64_t min, std::int64_t max) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return false;
    if (!n->is_integer()) {
      error(*n, fmt::format("'{}' must be an integer", key));
      return false;
    }
    const std::int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      error(*n, fmt::format("'{}' = {} is out of range [{}, {}]", key, v, min, max));
      return false;
    }
    out = static_cast<Int>(v);
    return true;
  }

  bool endpoint(const toml::table& t, std::string_view key, Endpoint& out) {
    std::string text;
    if (!string(t, key, text)) return false;
    if (!parse_endpoint(text, out)) {
      error(*t.get(key), fmt::format("'{}' = \"{}\" is not HOST:PORT", key, text));
      return false;
    }
    return true;
  }

 private:
  std::vector<ConfigError>& errors_;
};

// A name as the error messages show it (config.cpp).
std::string quoted(std::string_view name);

// "NAME" or "NAME(FIELD)" into `out` (config_schema.cpp); false if malformed.
bool parse_aggregate(std::string_view text, AggregateConfig& out);
// The [schema] table and the [[view]] array (config_schema.cpp).
void parse_schema(const toml::table& t, Checker& check, Config& config);
void parse_views(const toml::node& node, Checker& check, Config& config);
// A file with a [schema] and no [[view]] runs the built-in views over its
// fields: what they read that the schema lacks is one error at `schema`,
// naming every such field, in place of finalize()'s error per view the file
// never wrote (those are taken out of `errors`).
void check_builtin_views(const toml::node& schema, const Config& config, std::vector<ConfigError>& errors);
// A required field that no view, aggregate or alarm reads still refuses
// every event lacking it: one warning per such field (config_schema.cpp).
void warn_unread_fields(const Config& config, std::vector<ConfigError>& warnings);
// [[source]] tables (config_sources.cpp).
void parse_sources(const toml::node& node, Checker& check, Config& config);
// [[alarm]] tables (config_alarms.cpp); after the schema and views are finalized.
void parse_alarms(const toml::node& node, Checker& check, Config& config);

}  // namespace spate::engine::detail
