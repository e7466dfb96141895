// count, sum, min, max and avg: the aggregates every view had first. count
// reads the window's row count; avg keeps sum's state and divides by it.
// Each that reads a field comes for number fields (doubles) and for
// integer fields (exact: a sum in 128 bits, min and max in 64).
#include <cmath>
#include <functional>
#include <limits>

#include "engine/aggregate.hpp"

namespace spate::engine {

namespace {

// What a kind reads of a row's cell, and how it keeps it in a window word.
struct Number {
  using T = double;
  static constexpr FieldType kType = FieldType::number;
  static T of(const Cell& c) { return c.f; }
  static T& in(WindowWord& w) { return w.d; }
  static AggValue value(T v) { return AggValue::real(v); }
  static constexpr T kLowest = -std::numeric_limits<double>::infinity();
  static constexpr T kHighest = std::numeric_limits<double>::infinity();
  static bool valid(T v) { return !std::isnan(v); }
};
struct Integer {
  using T = std::int64_t;
  static constexpr FieldType kType = FieldType::integer;
  static T of(const Cell& c) { return c.i; }
  static T& in(WindowWord& w) { return w.i; }
  static AggValue value(T v) { return AggValue::integer(v); }
  static constexpr T kLowest = INT64_MIN;
  static constexpr T kHighest = INT64_MAX;
  static bool valid(T) { return true; }
};

// min and max: one word, the extreme so far (its identity before any row).
template <typename V, typename Better>
struct Extreme {
  using T = typename V::T;
  static constexpr T kIdentity = Better{}(T{1}, T{0}) ? V::kLowest : V::kHighest;
  static void init(WindowWord* s) { V::in(s[0]) = kIdentity; }
  static void fold(const FoldRows& f) {
    for (std::uint32_t i = 0; i < f.n; ++i) {
      T& s = V::in(f.windows[i][f.offset]);
      const T v = V::of(f.values[f.rows[i]]);
      if (Better{}(v, s)) s = v;
    }
  }
  static void merge(WindowWord* into, const WindowWord* from) {
    WindowWord w = from[0];
    if (Better{}(V::in(w), V::in(into[0]))) into[0] = from[0];
  }
  static AggValue finish(const WindowWord* s, std::uint64_t) {
    WindowWord w = s[0];
    return V::value(V::in(w));
  }
  static bool valid(const WindowWord* s, std::uint64_t) {
    WindowWord w = s[0];
    return V::valid(V::in(w));
  }
};

void sum_init(WindowWord* s) { s[0].d = 0; }
void sum_fold(const FoldRows& f) {
  for (std::uint32_t i = 0; i < f.n; ++i) f.windows[i][f.offset].d += f.values[f.rows[i]].f;
}
void sum_merge(WindowWord* into, const WindowWord* from) { into[0].d += from[0].d; }
bool sum_valid(const WindowWord* s, std::uint64_t) { return !std::isnan(s[0].d); }

// The sum of an integer field: two words, the low and high halves of a
// 128-bit sum, which 2^64 rows of any int64 cannot overflow.
__int128 wide_sum(const WindowWord* s) {
  return static_cast<__int128>((static_cast<unsigned __int128>(static_cast<std::uint64_t>(s[1].i)) << 64) | s[0].u);
}
void set_wide_sum(WindowWord* s, __int128 v) {
  s[0].u = static_cast<std::uint64_t>(v);
  s[1].i = static_cast<std::int64_t>(v >> 64);
}
void wide_sum_init(WindowWord* s) { set_wide_sum(s, 0); }
void wide_sum_fold(const FoldRows& f) {
  for (std::uint32_t i = 0; i < f.n; ++i) {
    WindowWord* s = f.windows[i] + f.offset;
    set_wide_sum(s, wide_sum(s) + f.values[f.rows[i]].i);
  }
}
void wide_sum_merge(WindowWord* into, const WindowWord* from) { set_wide_sum(into, wide_sum(into) + wide_sum(from)); }
// Exact while it fits an int64; a real (the nearest double) beyond.
AggValue wide_sum_finish(const WindowWord* s, std::uint64_t) {
  const __int128 v = wide_sum(s);
  if (v >= INT64_MIN && v <= INT64_MAX) return AggValue::integer(static_cast<std::int64_t>(v));
  return AggValue::real(static_cast<double>(v));
}
// Rows of int64 values, at most 2^64 of them, sum to within 2^127.
bool wide_sum_valid(const WindowWord* s, std::uint64_t count) {
  const __int128 v = wide_sum(s);
  const __int128 bound = static_cast<__int128>(count) << 63;
  return v <= bound && v >= -bound;
}

}  // namespace

extern const AggregateKind kCountKind;
const AggregateKind kCountKind{
    "count", false, FieldType::number, 0, nullptr, nullptr, nullptr, nullptr,
    [](const WindowWord*, std::uint64_t count) { return AggValue::count(count); },
    nullptr,
};

extern const AggregateKind kSumKind;
const AggregateKind kSumKind{
    "sum", true, FieldType::number, 1, nullptr, sum_init, sum_fold, sum_merge,
    [](const WindowWord* s, std::uint64_t) { return AggValue::real(s[0].d); },
    sum_valid,
};
extern const AggregateKind kIntegerSumKind;
const AggregateKind kIntegerSumKind{
    "sum",          true,           FieldType::integer, 2, nullptr, wide_sum_init, wide_sum_fold, wide_sum_merge,
    wide_sum_finish, wide_sum_valid,
};

extern const AggregateKind kAvgKind;
const AggregateKind kAvgKind{
    "avg", true, FieldType::number, 0, &kSumKind, nullptr, nullptr, nullptr,
    [](const WindowWord* s, std::uint64_t count) {
      return AggValue::real(count == 0 ? 0.0 : s[0].d / static_cast<double>(count));
    },
    nullptr,
};
extern const AggregateKind kIntegerAvgKind;
const AggregateKind kIntegerAvgKind{
    "avg", true, FieldType::integer, 0, &kIntegerSumKind, nullptr, nullptr, nullptr,
    [](const WindowWord* s, std::uint64_t count) {
      return AggValue::real(count == 0 ? 0.0 : static_cast<double>(wide_sum(s)) / static_cast<double>(count));
    },
    nullptr,
};

template <typename V, typename Better>
constexpr AggregateKind extreme_kind(std::string_view name) {
  using E = Extreme<V, Better>;
  return {name, true, V::kType, 1, nullptr, E::init, E::fold, E::merge, E::finish, E::valid};
}

extern const AggregateKind kMinKind;
const AggregateKind kMinKind = extreme_kind<Number, std::less<>>("min");
extern const AggregateKind kMaxKind;
const AggregateKind kMaxKind = extreme_kind<Number, std::greater<>>("max");
extern const AggregateKind kIntegerMinKind;
const AggregateKind kIntegerMinKind = extreme_kind<Integer, std::less<>>("min");
extern const AggregateKind kIntegerMaxKind;
const AggregateKind kIntegerMaxKind = extreme_kind<Integer, std::greater<>>("max");

}  // namespace spate::engine
