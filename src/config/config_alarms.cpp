// [[alarm]] tables: data-quality alarms on event volume, a field's
// population and an aggregate's value (docs/alarms.md).
#include <cmath>

#include "config_checker.hpp"

namespace spate::engine {
namespace detail {
namespace {

bool alarm_name_ok(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

bool number(const toml::table& t, std::string_view key, double& out, Checker& check) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return false;
  const auto v = n->value<double>();
  if (!v || !std::isfinite(*v)) {
    check.error(*n, fmt::format("'{}' must be a number", key));
    return false;
  }
  out = *v;
  return true;
}

// The field's place among what the parser looks for: the id, the
// timestamp, then [schema].fields (EventParser's order); -1: none.
int schema_field_index(const Config& config, std::string_view name) {
  int i = 0;
  if (!config.id_field.empty()) {
    if (config.id_field == name) return i;
    ++i;
  }
  if (config.ts_field == name) return i;
  ++i;
  for (const FieldConfig& f : config.fields) {
    if (f.name == name) return i;
    ++i;
  }
  return -1;
}

}  // namespace

void parse_alarms(const toml::node& node, Checker& check, Config& config) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) {
    check.error(node, "'alarm' must be an array of tables ([[alarm]])");
    return;
  }
  for (const toml::node& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      check.error(item, "each [[alarm]] must be a table");
      continue;
    }
    check.known_keys(*t, "[[alarm]]",
                     {"name", "type", "source", "field", "view", "aggregate", "key", "min", "max", "learn", "sigmas",
                      "min_band", "fire_after", "clear_after"});
    AlarmConfig a;
    a.line = static_cast<int>(item.source().begin.line);
    if (!check.string(*t, "name", a.name) || !alarm_name_ok(a.name)) {
      check.error(item, "[[alarm]] needs name = \"...\" of 1 to 64 characters from a-z, 0-9 and _");
      continue;
    }
    for (const AlarmConfig& other : config.alarms) {
      if (other.name == a.name) check.error(item, fmt::format("alarm '{}' is declared twice", a.name));
    }
    std::string type;
    if (!check.string(*t, "type", type)) {
      check.error(item, fmt::format("alarm '{}' needs type = \"volume\" | \"field\" | \"aggregate\"", a.name));
      continue;
    }
    const auto only_for = [&](std::initializer_list<const char*> keys, const char* kind) {
      for (const char* key : keys) {
        if (const toml::node* n = t->get(key)) check.error(*n, fmt::format("'{}' is for {} alarms", key, kind));
      }
    };
    if (type == "volume") {
      a.kind = AlarmConfig::Kind::volume;
      check.string(*t, "source", a.source);  // a source kind's name: engine::check_sources()
    } else if (type == "field") {
      a.kind = AlarmConfig::Kind::field;
      if (!check.string(*t, "field", a.field)) {
        check.error(item, fmt::format("alarm '{}' needs field = \"...\" (a [schema] field)", a.name));
      } else if ((a.field_index = schema_field_index(config, a.field)) < 0) {
        check.error(*t->get("field"), fmt::format("alarm '{}': {} is not a field of the schema", a.name, quoted(a.field)));
      }
    } else if (type == "aggregate") {
      a.kind = AlarmConfig::Kind::aggregate;
      check.string(*t, "aggregate", a.aggregate);
      if (!check.string(*t, "view", a.view) || !check.string(*t, "key", a.key) || a.aggregate.empty()) {
        check.error(item, fmt::format("alarm '{}' needs view, aggregate and key", a.name));
      } else if ((a.view_index = config.find_view(a.view)) < 0) {
        check.error(*t->get("view"), fmt::format("alarm '{}': no view named '{}'", a.name, a.view));
      } else if ((a.aggregate_index = config.find_aggregate(a.view_index, a.aggregate)) < 0) {
        check.error(*t->get("aggregate"), fmt::format("alarm '{}': view '{}' has no aggregate '{}'", a.name, a.view,
                                                      a.aggregate));
      } else if (a.key.size() > kMaxKeyBytes) {
        check.error(*t->get("key"), fmt::format("alarm '{}': key longer than {} bytes", a.name, kMaxKeyBytes));
      }
    } else {
      check.error(*t->get("type"), fmt::format("alarm '{}': unknown type '{}' (volume, field, aggregate)", a.name, type));
      continue;
    }
    if (a.kind != AlarmConfig::Kind::volume) only_for({"source"}, "volume");
    if (a.kind != AlarmConfig::Kind::field) only_for({"field"}, "field");
    if (a.kind != AlarmConfig::Kind::aggregate) only_for({"view", "aggregate", "key"}, "aggregate");
    a.has_min = number(*t, "min", a.min, check);
    a.has_max = number(*t, "max", a.max, check);
    check.integer(*t, "learn", a.learn, 0, 86400);
    if (number(*t, "sigmas", a.sigmas, check) && !(a.sigmas > 0 && a.sigmas <= 100)) {
      check.error(*t->get("sigmas"), "'sigmas' must be above 0 and at most 100");
    }
    if (number(*t, "min_band", a.min_band, check) && !(a.min_band >= 0 && a.min_band <= 10)) {
      check.error(*t->get("min_band"), "'min_band' must be from 0 to 10 (a share of the learned mean)");
    }
    check.integer(*t, "fire_after", a.fire_after, 1, 3600);
    check.integer(*t, "clear_after", a.clear_after, 1, 3600);
    if (!a.has_min && !a.has_max && a.learn == 0) {
      check.error(item, fmt::format("alarm '{}' needs bounds: min, max, or learn (samples of a learned band)", a.name));
    }
    if (a.has_min && a.has_max && a.min > a.max) check.error(item, fmt::format("alarm '{}': min is above max", a.name));
    if (a.learn == 1) check.error(*t->get("learn"), "'learn' needs at least 2 samples (0: no learned band)");
    config.alarms.push_back(std::move(a));
  }
}

}  // namespace detail
}  // namespace spate::engine
