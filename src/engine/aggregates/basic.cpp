// count, sum, min, max and avg: the aggregates every view had first. count
// reads the window's row count; avg keeps sum's state and divides by it.
#include <cmath>
#include <functional>
#include <limits>

#include "engine/aggregate.hpp"

namespace spate::engine {

namespace {

// min and max: one word, the extreme so far (its identity before any row).
template <typename Better>
struct Extreme {
  static constexpr double kIdentity = Better{}(1.0, 0.0) ? -std::numeric_limits<double>::infinity()
                                                         : std::numeric_limits<double>::infinity();
  static void init(WindowWord* s) { s[0].d = kIdentity; }
  static void fold(const FoldRows& f) {
    for (std::uint32_t i = 0; i < f.n; ++i) {
      WindowWord& s = f.windows[i][f.offset];
      const double v = f.values[f.rows[i]];
      if (Better{}(v, s.d)) s.d = v;
    }
  }
  static void merge(WindowWord* into, const WindowWord* from) {
    if (Better{}(from[0].d, into[0].d)) into[0].d = from[0].d;
  }
  static AggValue finish(const WindowWord* s, std::uint64_t) { return AggValue::real(s[0].d); }
  static bool valid(const WindowWord* s, std::uint64_t) { return !std::isnan(s[0].d); }
};
using Min = Extreme<std::less<double>>;
using Max = Extreme<std::greater<double>>;

void sum_init(WindowWord* s) { s[0].d = 0; }
void sum_fold(const FoldRows& f) {
  for (std::uint32_t i = 0; i < f.n; ++i) f.windows[i][f.offset].d += f.values[f.rows[i]];
}
void sum_merge(WindowWord* into, const WindowWord* from) { into[0].d += from[0].d; }
bool sum_valid(const WindowWord* s, std::uint64_t) { return !std::isnan(s[0].d); }

}  // namespace

extern const AggregateKind kCountKind;
const AggregateKind kCountKind{
    "count", false, 0, nullptr, nullptr, nullptr, nullptr,
    [](const WindowWord*, std::uint64_t count) { return AggValue::count(count); },
    nullptr,
};

extern const AggregateKind kSumKind;
const AggregateKind kSumKind{
    "sum", true, 1, nullptr, sum_init, sum_fold, sum_merge,
    [](const WindowWord* s, std::uint64_t) { return AggValue::real(s[0].d); },
    sum_valid,
};

extern const AggregateKind kAvgKind;
const AggregateKind kAvgKind{
    "avg", true, 0, &kSumKind, nullptr, nullptr, nullptr,
    [](const WindowWord* s, std::uint64_t count) {
      return AggValue::real(count == 0 ? 0.0 : s[0].d / static_cast<double>(count));
    },
    nullptr,
};

extern const AggregateKind kMinKind;
const AggregateKind kMinKind{"min", true, 1, nullptr, Min::init, Min::fold, Min::merge, Min::finish, Min::valid};

extern const AggregateKind kMaxKind;
const AggregateKind kMaxKind{"max", true, 1, nullptr, Max::init, Max::fold, Max::merge, Max::finish, Max::valid};

}  // namespace spate::engine
