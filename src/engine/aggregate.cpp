// The list of aggregate kinds; see aggregate.hpp. Adding a kind is adding
// its file under aggregates/ and its line below.
#include "engine/aggregate.hpp"

#include <fmt/format.h>


namespace spate::engine {

extern const AggregateKind kCountKind;  // aggregates/basic.cpp
extern const AggregateKind kSumKind;
extern const AggregateKind kMinKind;
extern const AggregateKind kMaxKind;
extern const AggregateKind kAvgKind;
extern const AggregateKind kIntegerSumKind;
extern const AggregateKind kIntegerMinKind;
extern const AggregateKind kIntegerMaxKind;
extern const AggregateKind kIntegerAvgKind;
extern const AggregateKind kLastKind;  // aggregates/last.cpp
extern const AggregateKind kIntegerLastKind;

namespace {
// By name, then each name's kinds by the type of field they read.
const AggregateKind* const kKinds[] = {
    &kCountKind,       &kSumKind, &kIntegerSumKind, &kMinKind,  &kIntegerMinKind,  &kMaxKind,
    &kIntegerMaxKind,  &kAvgKind, &kIntegerAvgKind, &kLastKind, &kIntegerLastKind,
};
}  // namespace

const AggregateKind* find_aggregate_kind(std::string_view name, FieldType field) noexcept {
  // A boolean is folded as the integer 0 or 1: sum counts its trues, avg
  // gives their share.
  const FieldType input = field == FieldType::boolean ? FieldType::integer : field;
  for (const AggregateKind* kind : kKinds) {
    if (kind->name == name && (!kind->takes_field || kind->input == input)) return kind;
  }
  return nullptr;
}

std::string aggregate_kind_names() {
  std::string names;
  for (std::size_t k = 0; k < std::size(kKinds); ++k) {
    if (k > 0 && kKinds[k - 1]->name == kKinds[k]->name) continue;  // the same name for another type
    if (!names.empty()) names += ", ";
    names += kKinds[k]->name;
  }
  return names;
}

void check_aggregates(const ViewConfig& view, std::vector<ConfigError>& errors) {
  for (const AggregateConfig& agg : view.aggregates) {
    const auto error = [&](std::string reason) {
      errors.push_back({agg.line != 0 ? agg.line : view.line,
                        fmt::format("view '{}': aggregate '{}' {}", view.name, agg.label, reason)});
    };
    const AggregateKind* kind = find_aggregate_kind(agg.function, agg.type);
    if (kind == nullptr && find_aggregate_kind(agg.function, FieldType::number) != nullptr) {
      error(fmt::format("cannot read a {} field", field_type_name(agg.type)));
    } else if (kind == nullptr) {
      error(fmt::format("is not an aggregate ({})", aggregate_kind_names()));
    } else if (kind->takes_field && agg.field.empty()) {
      error(fmt::format("needs a field: {}(FIELD)", agg.function));
    } else if (!kind->takes_field && !agg.field.empty()) {
      error(fmt::format("takes no field: {}", agg.function));
    }
  }
}

}  // namespace spate::engine
