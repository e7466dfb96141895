// The list of view kinds; see view_registry.hpp. Adding a kind is adding
// its file and its line below.
#include "engine/view_registry.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/registry.hpp"

#include "engine/aggregate.hpp"
#include "kernels/rfc3339.hpp"

namespace spate::engine {

extern const ViewKind kTumblingKind;  // tumbling_window.cpp
extern const ViewKind kHoppingKind;   // hopping_window.cpp

namespace {
const ViewKind* const kKinds[] = {
    &kTumblingKind,
    &kHoppingKind,
};
}  // namespace

const ViewKind* find_view_kind(std::string_view name) noexcept {
  return find_by_name<ViewKind>(kKinds, name);
}

std::string view_kind_names() { return names_of<ViewKind>(kKinds); }

std::vector<ConfigError> check_views(const Config& config) {
  std::vector<ConfigError> errors;
  for (const ViewConfig& view : config.views) {
    const ViewKind* kind = find_view_kind(view.window);
    if (kind == nullptr) {
      errors.push_back({view.line, fmt::format("view '{}': window '{}' is not a view kind ({})", view.name,
                                               view.window, view_kind_names())});
      continue;
    }
    std::vector<std::string> problems;
    kind->check(view, problems);
    for (const std::string& p : problems) errors.push_back({view.line, fmt::format("view '{}': {}", view.name, p)});
    check_aggregates(view, errors);
  }
  return errors;
}

std::int64_t align_window_start(const ViewConfig& view, std::int64_t t) {
  const ViewKind* kind = find_view_kind(view.window);
  if (kind == nullptr) throw std::invalid_argument(fmt::format("view '{}': window '{}' is not a view kind", view.name, view.window));
  return kind->align(view, std::clamp(t, kernels::kRfc3339MinMs, kernels::kRfc3339MaxMs));
}

std::unique_ptr<View> make_view(const ViewConfig& config, std::int64_t allowed_lateness_ms) {
  const ViewKind* kind = find_view_kind(config.window);
  if (kind == nullptr) {
    throw std::invalid_argument(fmt::format("view '{}': window '{}' is not a view kind ({})", config.name,
                                            config.window, view_kind_names()));
  }
  std::vector<std::string> problems;
  kind->check(config, problems);
  if (!problems.empty()) throw std::invalid_argument(fmt::format("view '{}': {}", config.name, problems.front()));
  std::vector<ConfigError> errors;
  check_aggregates(config, errors);
  if (!errors.empty()) throw std::invalid_argument(errors.front().message);
  return kind->make(config, allowed_lateness_ms);
}

}  // namespace spate::engine
