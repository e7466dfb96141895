// The list of source kinds (source_kind.hpp) and what reads their
// settings. Adding a kind is adding its file in sources/ and its line below.
#include <algorithm>

#include <fmt/format.h>

#include "engine/registry.hpp"
#include "engine/source_kind.hpp"

namespace spate::engine {

extern const SourceKind kTcpSource;   // sources/tcp.cpp
extern const SourceKind kUdpSource;   // sources/udp.cpp
extern const SourceKind kPcapSource;  // sources/pcap.cpp
extern const SourceKind kDpdkSource;  // sources/dpdk.cpp

namespace {
// Slot order: what STATS lists them in.
const SourceKind* const kKinds[] = {
    &kTcpSource, &kUdpSource, &kFileSource, &kPublishSource, &kReplaySource, &kPcapSource, &kDpdkSource,
};
static_assert(std::size(kKinds) <= kMaxSourceKinds, "raise kMaxSourceKinds: each kind has counter slots");

std::string_view type_name(const Setting& s) {
  switch (s.value.index()) {
    case 0: return "a string";
    case 1: return "an integer";
    case 2: return "a number";
    case 3: return "true or false";
    default: return "an array of strings";
  }
}
}  // namespace

std::span<const SourceKind* const> source_kinds() noexcept { return kKinds; }

const SourceKind* find_source_kind(std::string_view name) noexcept { return find_by_name<SourceKind>(kKinds, name); }

io::SourceKindId source_kind_id(const SourceKind& kind) noexcept {
  for (std::size_t i = 0; i < std::size(kKinds); ++i) {
    if (kKinds[i] == &kind) return static_cast<io::SourceKindId>(i);
  }
  return 0;
}

std::string source_kind_names() {
  std::string names;
  for (const SourceKind* kind : kKinds) {
    if (kind->check == nullptr) continue;
    if (!names.empty()) names += ", ";
    names += kind->name;
  }
  return names;
}

// ---------------------------------------------------------------- settings

const Setting* SourceSettings::get(std::string_view key) {
  if (std::find(taken_.begin(), taken_.end(), key) == taken_.end()) taken_.push_back(key);
  return source_.find(key);
}

void SourceSettings::error_at(const Setting& setting, std::string message) {
  errors_.push_back({setting.line != 0 ? setting.line : source_.line, std::move(message)});
}

void SourceSettings::error(std::string message) { errors_.push_back({source_.line, std::move(message)}); }

template <typename T>
const T* SourceSettings::get_as(std::string_view key, std::string_view what) {
  const Setting* s = get(key);
  if (s == nullptr) return nullptr;
  if (const T* v = std::get_if<T>(&s->value)) return v;
  error_at(*s, fmt::format("'{}' must be {}, not {}", key, what, type_name(*s)));
  return nullptr;
}

bool SourceSettings::string(std::string_view key, std::string& out) {
  const auto* v = get_as<std::string>(key, "a string");
  if (v != nullptr) out = *v;
  return v != nullptr;
}

bool SourceSettings::strings(std::string_view key, std::vector<std::string>& out) {
  const auto* v = get_as<std::vector<std::string>>(key, "an array of strings");
  if (v != nullptr) out = *v;
  return v != nullptr;
}

bool SourceSettings::boolean(std::string_view key, bool& out) {
  const auto* v = get_as<bool>(key, "true or false");
  if (v != nullptr) out = *v;
  return v != nullptr;
}

bool SourceSettings::number(std::string_view key, double& out, double min, double max) {
  const Setting* s = get(key);
  if (s == nullptr) return false;
  double v = 0;
  if (const auto* d = std::get_if<double>(&s->value)) v = *d;
  else if (const auto* i = std::get_if<std::int64_t>(&s->value)) v = static_cast<double>(*i);
  else {
    error_at(*s, fmt::format("'{}' must be a number, not {}", key, type_name(*s)));
    return false;
  }
  if (!(v >= min && v <= max)) {
    error_at(*s, fmt::format("'{}' = {} is out of range [{}, {}]", key, v, min, max));
    return false;
  }
  out = v;
  return true;
}

bool SourceSettings::integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max) {
  const auto* v = get_as<std::int64_t>(key, "an integer");
  if (v == nullptr) return false;
  if (*v < min || *v > max) {
    error_at(*source_.find(key), fmt::format("'{}' = {} is out of range [{}, {}]", key, *v, min, max));
    return false;
  }
  out = *v;
  return true;
}

bool SourceSettings::endpoint(std::string_view key, Endpoint& out) {
  std::string text;
  if (!string(key, text)) return false;
  if (!parse_endpoint(text, out)) {
    error_at(*source_.find(key), fmt::format("'{}' = \"{}\" is not HOST:PORT", key, text));
    return false;
  }
  return true;
}

bool SourceSettings::choice(std::string_view key, std::string& out, std::initializer_list<std::string_view> choices) {
  std::string value;
  if (!string(key, value)) return false;
  std::string list;
  for (std::string_view c : choices) {
    if (value == c) {
      out = value;
      return true;
    }
    list += fmt::format("{}'{}'", list.empty() ? "" : ", ", c);
  }
  error_at(*source_.find(key), fmt::format("'{}' = '{}' is not one of {}", key, value, list));
  return false;
}

std::vector<ConfigError> SourceSettings::errors() const {
  std::vector<ConfigError> errors = errors_;
  for (const Setting& s : source_.settings) {
    if (std::find(taken_.begin(), taken_.end(), s.key) != taken_.end()) continue;
    std::string takes;
    for (std::string_view k : taken_) takes += fmt::format("{}'{}'", takes.empty() ? "" : ", ", k);
    errors.push_back({s.line != 0 ? s.line : source_.line,
                      fmt::format("unknown key '{}' in a {} [[source]] (it takes {})", s.key, source_.type,
                                  takes.empty() ? "no other key" : takes)});
  }
  return errors;
}

// ---------------------------------------------------------------- checks

std::vector<ConfigError> check_sources(const Config& config) {
  std::vector<ConfigError> errors;
  for (const SourceConfig& source : config.sources) {
    const SourceKind* kind = find_source_kind(source.type);
    if (kind == nullptr || kind->check == nullptr) {
      errors.push_back({source.type_line != 0 ? source.type_line : source.line,
                        fmt::format("unknown source type '{}' ({})", source.type, source_kind_names())});
      continue;
    }
    SourceSettings settings(source, config);
    kind->check(settings);
    for (ConfigError& e : settings.errors()) errors.push_back(std::move(e));
  }
  for (const AlarmConfig& alarm : config.alarms) {
    if (alarm.kind != AlarmConfig::Kind::volume || alarm.source == "all" || find_source_kind(alarm.source)) continue;
    errors.push_back({alarm.line, fmt::format("alarm '{}': unknown source '{}' (all, {})", alarm.name, alarm.source,
                                              names_of<SourceKind>(kKinds))});
  }
  return errors;
}

}  // namespace spate::engine
