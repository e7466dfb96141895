// The list of aggregate kinds; see aggregate.hpp. Adding a kind is adding
// its file under aggregates/ and its line below.
#include "engine/aggregate.hpp"

#include <fmt/format.h>

#include "engine/registry.hpp"

namespace spate::engine {

extern const AggregateKind kCountKind;  // aggregates/basic.cpp
extern const AggregateKind kSumKind;
extern const AggregateKind kMinKind;
extern const AggregateKind kMaxKind;
extern const AggregateKind kAvgKind;
extern const AggregateKind kLastKind;  // aggregates/last.cpp

namespace {
const AggregateKind* const kKinds[] = {
    &kCountKind, &kSumKind, &kMinKind, &kMaxKind, &kAvgKind, &kLastKind,
};
}  // namespace

const AggregateKind* find_aggregate_kind(std::string_view name) noexcept {
  return find_by_name<AggregateKind>(kKinds, name);
}

std::string aggregate_kind_names() { return names_of<AggregateKind>(kKinds); }

void check_aggregates(const ViewConfig& view, std::vector<ConfigError>& errors) {
  for (const AggregateConfig& agg : view.aggregates) {
    const auto error = [&](std::string reason) {
      errors.push_back({agg.line != 0 ? agg.line : view.line,
                        fmt::format("view '{}': aggregate '{}' {}", view.name, agg.label, reason)});
    };
    const AggregateKind* kind = find_aggregate_kind(agg.function);
    if (kind == nullptr) {
      error(fmt::format("is not an aggregate ({})", aggregate_kind_names()));
    } else if (kind->takes_field && agg.field.empty()) {
      error(fmt::format("needs a field: {}(FIELD)", agg.function));
    } else if (!kind->takes_field && !agg.field.empty()) {
      error(fmt::format("takes no field: {}", agg.function));
    }
  }
}

}  // namespace spate::engine
