// Aggregates by name: `aggregates = ["count", "sum(amount)", "last(amount)"]`
// in a [[view]] names them. A kind is a few functions over a fixed run of
// words in each window (AggregateKind), in its own file under aggregates/,
// and one line in aggregate.cpp's list; no view, query or config code names
// a kind.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/cell.hpp"

namespace spate::engine {

// A window's state is a run of words: its start, its row count, then each
// aggregate's words. Keeping only what the view's aggregates use makes a
// per_user_1m window 40 bytes instead of 112, which halved the cache misses
// of the window update (the largest cost after parsing in a profile).
union WindowWord {
  std::int64_t i;
  std::uint64_t u;
  double d;
};

// One aggregate's result: a count, an integer (of an integer or boolean
// field: exact), or a real.
struct AggValue {
  enum class Type : std::uint8_t { count, integer, real };
  Type type = Type::real;
  std::uint64_t u = 0;  // count
  std::int64_t i = 0;   // integer
  double d = 0;         // real
  static AggValue count(std::uint64_t n) noexcept { return {Type::count, n, 0, 0}; }
  static AggValue integer(std::int64_t v) noexcept { return {Type::integer, 0, v, 0}; }
  static AggValue real(double v) noexcept { return {Type::real, 0, 0, v}; }
  double as_double() const noexcept {
    return type == Type::count ? static_cast<double>(u) : type == Type::integer ? static_cast<double>(i) : d;
  }
};

// The most words one aggregate keeps in a window.
inline constexpr std::uint32_t kMaxAggregateWords = 2;

// Rows to fold into one aggregate of their windows, in order: row rows[i]
// (its value values[rows[i]], typed as the kind's input, its event time
// ts[rows[i]]) into the words at windows[i] + offset. Two rows may share a
// window.
struct FoldRows {
  WindowWord* const* windows;
  const std::uint32_t* rows;
  std::uint32_t n;
  std::uint32_t offset;
  const Cell* values;  // the aggregate's field, by row (nullptr when it takes none)
  const std::int64_t* ts;
};

// An aggregate's partial state folds from any part of the rows and merges
// with another part's into the state of both (two panes of a hopping
// window, a checkpoint and what came after it): an average is kept as a
// sum and finished by the window's count, never averaged twice.
// A kind is registered once per type of field it reads: sum of a number
// field keeps a double, sum of an integer field an exact 128-bit integer.
struct AggregateKind {
  std::string_view name;
  bool takes_field;     // sum(FIELD); count takes none
  FieldType input;      // the field's type it folds: number or integer (a boolean folds as the integer 0 or 1)
  std::uint32_t words;  // in each window, at most kMaxAggregateWords; 0: it reads the row count only
  // The kind whose words and functions but finish it uses (avg keeps sum's
  // state and finishes it its own way), so that a view keeps one copy of
  // equal states of a field. nullptr: its own.
  const AggregateKind* keeps;
  void (*init)(WindowWord* state);
  void (*fold)(const FoldRows& rows);
  void (*merge)(WindowWord* into, const WindowWord* from);
  AggValue (*finish)(const WindowWord* state, std::uint64_t count);
  // What folding finite numbers into a window of `count` rows can give: a
  // checkpoint's state is checked with it (no NaN, which would break the
  // order VIEW_TOP sorts by).
  bool (*valid)(const WindowWord* state, std::uint64_t count);

  const AggregateKind& state_kind() const noexcept { return keeps != nullptr ? *keeps : *this; }
};

// The kind of that name for a field of that type (any type for a kind that
// takes no field), or nullptr.
const AggregateKind* find_aggregate_kind(std::string_view name, FieldType field) noexcept;
// Every kind's name, for error messages ("count, sum, ...").
std::string aggregate_kind_names();

// Each of the view's aggregates names a kind and gives it a field exactly
// when the kind takes one; each problem appended at the aggregate's line.
void check_aggregates(const ViewConfig& view, std::vector<ConfigError>& errors);

// One aggregate's partial state for one key and window, as a query sees
// it: what merges across the parts of a window into its result.
struct AggState {
  const AggregateKind* kind = nullptr;
  std::uint64_t count = 0;  // the window's rows
  WindowWord words[kMaxAggregateWords] = {};

  void merge(const AggState& other) noexcept {
    count += other.count;
    const AggregateKind& state = kind->state_kind();
    if (state.words != 0) state.merge(words, other.words);
  }
  AggValue value() const noexcept { return kind->finish(words, count); }
};

}  // namespace spate::engine
