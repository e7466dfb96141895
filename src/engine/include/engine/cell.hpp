// One row's value of an aggregated field, in a parsed event and in a
// batch's column. The field's schema type says which member holds it: a
// number is `f`, an integer `i` (exact to 2^63), a boolean `i` (0 or 1).
// Eight bytes, as the double every column was before fields had these
// types, so typed columns cost a batch nothing.
#pragma once

#include <cstdint>

namespace spate::engine {

union Cell {
  double f;
  std::int64_t i;
};
static_assert(sizeof(Cell) == 8);

}  // namespace spate::engine
