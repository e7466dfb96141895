// [[source]] tables: the type and the other keys as written. What a kind
// takes and what its values may be is the kind's (engine/source_kind.hpp,
// check_sources), as a view's window is its view kind's.
#include "config_checker.hpp"

namespace spate::engine {
namespace detail {

void parse_sources(const toml::node& node, Checker& check, Config& config) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) {
    check.error(node, "'source' must be an array of tables ([[source]])");
    return;
  }
  for (const toml::node& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      check.error(item, "each [[source]] must be a table");
      continue;
    }
    SourceConfig source;
    source.line = static_cast<int>(item.source().begin.line);
    constexpr const char* kNeedsType = "[[source]] needs type = \"KIND\" (tcp, udp, file, pcap, dpdk: docs/sources.md)";
    if (!check.string(*t, "type", source.type)) {
      check.error(item, kNeedsType);
      continue;
    }
    if (source.type.empty()) {  // type = "": no kind is named by nothing
      check.error(*t->get("type"), kNeedsType);
      continue;
    }
    source.type_line = static_cast<int>(t->get("type")->source().begin.line);
    for (auto&& [key, value] : *t) {
      if (key.str() == "type") continue;
      Setting setting{std::string(key.str()), {}, static_cast<int>(value.source().begin.line)};
      if (const auto* s = value.as_string()) {
        setting.value = s->get();
      } else if (const auto* i = value.as_integer()) {
        setting.value = i->get();
      } else if (const auto* f = value.as_floating_point()) {
        setting.value = f->get();
      } else if (const auto* b = value.as_boolean()) {
        setting.value = b->get();
      } else if (const auto* a = value.as_array(); a != nullptr && (a->empty() || a->is_homogeneous(toml::node_type::string))) {
        std::vector<std::string> strings;
        for (const toml::node& e : *a) strings.push_back(e.as_string()->get());
        setting.value = std::move(strings);
      } else {
        check.error(value, fmt::format("'{}' must be a string, a number, true or false, or an array of strings",
                                       key.str()));
        continue;
      }
      source.settings.push_back(std::move(setting));
    }
    config.sources.push_back(std::move(source));
  }
}

}  // namespace detail

const Setting* SourceConfig::find(std::string_view key) const noexcept {
  for (const Setting& s : settings) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

void SourceConfig::set(std::string_view key, std::string value) {
  for (Setting& s : settings) {
    if (s.key == key) {
      s.value = std::move(value);
      return;
    }
  }
  settings.push_back({std::string(key), std::move(value), 0});
}

}  // namespace spate::engine
