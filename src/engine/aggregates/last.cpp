// last(FIELD): the field's value in the window's row of the latest event
// time; of rows with the same event time, the one applied last (the log's
// order, so a replay picks the same). Two words: that event time and value.
#include <cmath>
#include <cstdint>

#include "kernels/rfc3339.hpp"
#include "engine/aggregate.hpp"

namespace spate::engine {

extern const AggregateKind kLastKind;
const AggregateKind kLastKind{
    "last", true, 2, nullptr,
    [](WindowWord* s) {
      s[0].i = INT64_MIN;
      s[1].d = 0;
    },
    [](const FoldRows& f) {
      for (std::uint32_t i = 0; i < f.n; ++i) {
        WindowWord* s = f.windows[i] + f.offset;
        const std::uint32_t r = f.rows[i];
        if (f.ts[r] >= s[0].i) {
          s[0].i = f.ts[r];
          s[1].d = f.values[r];
        }
      }
    },
    // The parts of a window hold rows of disjoint times (panes) or of a
    // later apply (`from`): an equal time goes to the later part.
    [](WindowWord* into, const WindowWord* from) {
      if (from[0].i >= into[0].i) {
        into[0].i = from[0].i;
        into[1].d = from[1].d;
      }
    },
    [](const WindowWord* s, std::uint64_t) { return AggValue::real(s[1].d); },
    [](const WindowWord* s, std::uint64_t) {
      return s[0].i >= kernels::kRfc3339MinMs && s[0].i <= kernels::kRfc3339MaxMs && !std::isnan(s[1].d);
    },
};

}  // namespace spate::engine
