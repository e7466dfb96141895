// [schema] and [[view]] tables, and what the built-in views and the
// schema's unread fields need said of them; see config_checker.hpp.
#include <algorithm>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "config_checker.hpp"

namespace spate::engine::detail {

namespace {

// Field names are matched against an event's raw key bytes: a quote, a
// backslash or a control character could only appear escaped there, so a
// name holding one could never match.
bool check_field_name(Checker& check, const toml::node& where, std::string_view what, std::string_view name) {
  std::string why;
  if (name.empty()) why = "is empty";
  if (name.size() > kMaxFieldNameBytes) why = fmt::format("is longer than {} bytes", kMaxFieldNameBytes);
  for (const char c : name) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      why = "holds a quote, a backslash or a control character, which an event could only carry escaped";
    }
  }
  if (why.empty()) return true;
  check.error(where, fmt::format("{} {} {}", what, quoted(name), why));
  return false;
}

}  // namespace

// "NAME" or "NAME(FIELD)", NAME of [a-z0-9_]; which names are kinds and
// which take a field is the engine's to say (check_aggregates).
bool parse_aggregate(std::string_view text, AggregateConfig& out) {
  out.label = std::string(text);
  const auto open = text.find('(');
  const auto name = text.substr(0, open);
  if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string_view::npos) {
    return false;
  }
  out.function = std::string(name);
  if (open == std::string_view::npos) return true;
  if (text.back() != ')' || open + 2 >= text.size()) return false;
  out.field = std::string(text.substr(open + 1, text.size() - open - 2));
  return true;
}

void parse_schema(const toml::table& t, Checker& check, Config& config) {
  check.known_keys(t, "[schema]", {"id", "timestamp", "timestamp_unit", "fields"});
  if (const toml::node* unit = t.get("timestamp_unit")) {
    const auto* text = unit->as_string();
    static constexpr std::pair<std::string_view, Config::TsUnit> kUnits[] = {
        {"s", Config::TsUnit::s}, {"ms", Config::TsUnit::ms}, {"us", Config::TsUnit::us}, {"ns", Config::TsUnit::ns}};
    bool known = false;
    for (const auto& [name, value] : kUnits) {
      if (text != nullptr && text->get() == name) {
        config.ts_unit = value;
        known = true;
      }
    }
    if (!known) check.error(*unit, "schema.timestamp_unit must be \"s\", \"ms\", \"us\" or \"ns\"");
  }
  if (check.string(t, "id", config.id_field) && !config.id_field.empty()) {
    check_field_name(check, *t.get("id"), "schema.id", config.id_field);
  }
  if (check.string(t, "timestamp", config.ts_field)) {
    check_field_name(check, *t.get("timestamp"), "schema.timestamp", config.ts_field);
  }
  const toml::node* fields = t.get("fields");
  if (fields == nullptr) return;
  const toml::table* ft = fields->as_table();
  if (ft == nullptr) {
    check.error(*fields, "'fields' must be a table of name = \"string\" | \"number\" | \"integer\" | \"boolean\"");
    return;
  }
  config.fields.clear();
  for (auto&& [key, value] : *ft) {
    FieldConfig f;
    f.name = std::string(key.str());
    f.line = static_cast<int>(key.source().begin.line);
    if (!check_field_name(check, value, "field", f.name)) continue;
    const toml::node* type_node = &value;
    const toml::table* spec = value.as_table();
    if (spec != nullptr) {  // { type = "...", required = false, default = ... }
      check.known_keys(*spec, fmt::format("field '{}'", f.name), {"type", "required", "default"});
      type_node = spec->get("type");
      if (type_node == nullptr) {
        check.error(value, fmt::format("field '{}' needs a type", f.name));
        continue;
      }
      if (const toml::node* r = spec->get("required")) {
        if (const auto* b = r->as_boolean()) f.required = b->get();
        else check.error(*r, fmt::format("field '{}': required must be true or false", f.name));
      }
    }
    const auto* type = type_node->as_string();
    bool known = false;
    for (const FieldType t : {FieldType::string, FieldType::number, FieldType::integer, FieldType::boolean}) {
      if (type != nullptr && type->get() == field_type_name(t)) {
        f.type = t;
        known = true;
      }
    }
    if (!known) {
      check.error(*type_node, fmt::format("field '{}' must have type \"string\", \"number\", \"integer\" or \"boolean\"", f.name));
      continue;
    }
    if (const toml::node* d = spec != nullptr ? spec->get("default") : nullptr) {
      f.has_default = true;
      bool fits = false;
      if (f.type == FieldType::string && d->is_string()) {
        f.default_string = d->as_string()->get();
        fits = true;
      } else if (f.type == FieldType::number && (d->is_floating_point() || d->is_integer())) {
        f.default_number = d->is_integer() ? static_cast<double>(d->as_integer()->get()) : d->as_floating_point()->get();
        fits = true;
      } else if (f.type == FieldType::integer && d->is_integer()) {
        f.default_integer = d->as_integer()->get();
        fits = true;
      } else if (f.type == FieldType::boolean && d->is_boolean()) {
        f.default_integer = d->as_boolean()->get() ? 1 : 0;
        fits = true;
      }
      if (!fits) check.error(*d, fmt::format("field '{}': the default must be a {}", f.name, field_type_name(f.type)));
      if (f.required) check.error(*d, fmt::format("field '{}' has a default but is required: add required = false", f.name));
    }
    config.fields.push_back(std::move(f));
  }
}

void parse_views(const toml::node& node, Checker& check, Config& config) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) {
    check.error(node, "'view' must be an array of tables ([[view]])");
    return;
  }
  config.views.clear();
  for (const toml::node& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      check.error(item, "each [[view]] must be a table");
      continue;
    }
    check.known_keys(*t, "[[view]]", {"name", "key", "window", "size_ms", "slide_ms", "aggregates", "max_keys"});
    ViewConfig view;
    const int line = static_cast<int>(item.source().begin.line);
    view.line = line;
    if (!check.string(*t, "name", view.name) || view.name.empty()) check.error(line, "[[view]] needs a name");
    if (!check.string(*t, "key", view.key_field) || view.key_field.empty()) {
      check.error(line, fmt::format("view '{}' needs key = \"FIELD\"", view.name));
    }
    check.string(*t, "window", view.window);  // the kind and its settings: engine::check_views()
    check.integer(*t, "size_ms", view.window_ms, 1, std::int64_t{366} * 86400000);
    // No default: a window's length is what the view means (one coming from
    // Flink states it), and a minute taken silently answered other questions.
    // Every kind registered takes size_ms; a kind that does not (a session
    // window's gap) would move this check into the kinds' own (ViewKind::check).
    if (t->get("size_ms") == nullptr) {
      check.error(line, fmt::format("view '{}': a {} window needs size_ms (each window's length in milliseconds)",
                                    view.name, view.window));
    }
    check.integer(*t, "slide_ms", view.slide_ms, 1, std::int64_t{366} * 86400000);
    check.integer(*t, "max_keys", view.max_keys, 0, std::int64_t{1} << 40);
    const toml::node* aggs = t->get("aggregates");
    const toml::array* aggs_arr = aggs != nullptr ? aggs->as_array() : nullptr;
    if (aggs_arr == nullptr || aggs_arr->empty()) {
      check.error(aggs != nullptr ? static_cast<int>(aggs->source().begin.line) : line,
                  fmt::format("view '{}' needs aggregates = [\"count\", \"sum(FIELD)\", ...]", view.name));
    } else {
      for (const toml::node& a : *aggs_arr) {
        AggregateConfig agg;
        if (!a.is_string() || !parse_aggregate(a.as_string()->get(), agg)) {
          check.error(a, "aggregate must be \"NAME\" or \"NAME(FIELD)\", such as \"count\" or \"sum(amount)\"");
          continue;
        }
        agg.line = static_cast<int>(a.source().begin.line);
        view.aggregates.push_back(std::move(agg));
      }
    }
    config.views.push_back(std::move(view));
  }
}

void check_builtin_views(const toml::node& schema, const Config& config, std::vector<ConfigError>& errors) {
  std::vector<std::string> names;  // each field once, in the order the views read them
  std::vector<std::string> unmet;  // "'amount' (a number, integer or boolean)"
  bool declared_otherwise = false;
  const auto need = [&](const std::string& name, bool key) {
    if (std::find(names.begin(), names.end(), name) != names.end()) return;
    names.push_back(name);
    const auto f = std::find_if(config.fields.begin(), config.fields.end(),
                                [&](const FieldConfig& field) { return field.name == name; });
    const std::string want = key ? "a string" : "a number, integer or boolean";
    if (f == config.fields.end()) {
      unmet.push_back(fmt::format("'{}' ({})", name, want));
    } else if (key != (f->type == FieldType::string)) {
      unmet.push_back(fmt::format("'{}' ({}; declared {})", name, want, field_type_name(f->type)));
      declared_otherwise = true;
    } else if (!f->required && !f->has_default) {
      unmet.push_back(fmt::format("'{}' (required, or with a default; declared optional without one)", name));
      declared_otherwise = true;
    }
  };
  for (const ViewConfig& view : config.views) {
    need(view.key_field, true);
    for (const AggregateConfig& agg : view.aggregates) {
      if (!agg.field.empty()) need(agg.field, false);
    }
  }
  if (unmet.empty()) return;
  std::string views, fields;
  for (const ViewConfig& view : config.views) views += fmt::format("{}{}", views.empty() ? "" : ", ", view.name);
  for (const std::string& u : unmet) fields += fmt::format("{}{}", fields.empty() ? "" : ", ", u);
  std::erase_if(errors, [&](const ConfigError& e) {
    return std::any_of(config.views.begin(), config.views.end(), [&](const ViewConfig& view) {
      return e.message.find(fmt::format("view '{}'", view.name)) != std::string::npos;
    });
  });
  errors.push_back({static_cast<int>(schema.source().begin.line),
                    fmt::format("[schema] comes without a [[view]], so the built-in views apply ({}), and they need "
                                "fields that [schema].fields {}: {}; declare [[view]]s of your own, or add these fields",
                                views, declared_otherwise ? "lacks or declares otherwise" : "lacks", fields)});
}

void warn_unread_fields(const Config& config, std::vector<ConfigError>& warnings) {
  for (const FieldConfig& f : config.fields) {
    if (!f.required) continue;
    bool read = std::any_of(config.alarms.begin(), config.alarms.end(),
                            [&](const AlarmConfig& alarm) { return alarm.field == f.name; });
    for (const ViewConfig& view : config.views) {
      read = read || view.key_field == f.name;
      for (const AggregateConfig& agg : view.aggregates) read = read || agg.field == f.name;
    }
    if (read) continue;
    if (f.line == 0) {  // the built-in schema's, under the file's views
      warnings.push_back({0, fmt::format("field '{}' of the built-in schema (the file declares no [schema] fields) is "
                                         "read by no view or alarm, yet required: an event lacking it is refused "
                                         "(missing_field); declare [schema] fields = {{ ... }} with your events' fields",
                                         f.name)});
      continue;
    }
    // As the file would write it: a bare key, else in quotes (a name holds no quote or backslash).
    const bool bare = f.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
                      std::string::npos;
    warnings.push_back({f.line, fmt::format("field '{}' is read by no view or alarm, yet required: an event lacking it "
                                            "is refused (missing_field); to take such events, declare it "
                                            "{} = {{ type = \"{}\", required = false }}",
                                            f.name, bare ? f.name : "\"" + f.name + "\"", field_type_name(f.type))});
  }
}

}  // namespace spate::engine::detail
