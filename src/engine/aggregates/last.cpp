// last(FIELD): the field's value in the window's row of the latest event
// time; of rows with the same event time, the one applied last (the log's
// order, so a replay picks the same). Two words: that event time and the
// value (a double of a number field, an int64 of an integer field).
#include <cmath>
#include <cstdint>

#include "kernels/rfc3339.hpp"
#include "engine/aggregate.hpp"

namespace spate::engine {

namespace {

void init(WindowWord* s) {
  s[0].i = INT64_MIN;
  s[1].u = 0;
}
// The value's word is copied as it is: a cell and a window word hold the
// same eight bytes, whichever the field's type.
void fold(const FoldRows& f) {
  for (std::uint32_t i = 0; i < f.n; ++i) {
    WindowWord* s = f.windows[i] + f.offset;
    const std::uint32_t r = f.rows[i];
    if (f.ts[r] >= s[0].i) {
      s[0].i = f.ts[r];
      s[1].i = f.values[r].i;
    }
  }
}
// The parts of a window hold rows of disjoint times (panes) or of a later
// apply (`from`): an equal time goes to the later part.
void merge(WindowWord* into, const WindowWord* from) {
  if (from[0].i >= into[0].i) {
    into[0].i = from[0].i;
    into[1].u = from[1].u;
  }
}
bool valid_time(const WindowWord* s) { return s[0].i >= kernels::kRfc3339MinMs && s[0].i <= kernels::kRfc3339MaxMs; }

}  // namespace

extern const AggregateKind kLastKind;
const AggregateKind kLastKind{
    "last", true, FieldType::number, 2, nullptr, init, fold, merge,
    [](const WindowWord* s, std::uint64_t) { return AggValue::real(s[1].d); },
    [](const WindowWord* s, std::uint64_t) { return valid_time(s) && !std::isnan(s[1].d); },
};

extern const AggregateKind kIntegerLastKind;
const AggregateKind kIntegerLastKind{
    "last", true, FieldType::integer, 2, nullptr, init, fold, merge,
    [](const WindowWord* s, std::uint64_t) { return AggValue::integer(s[1].i); },
    [](const WindowWord* s, std::uint64_t) { return valid_time(s); },
};

}  // namespace spate::engine
