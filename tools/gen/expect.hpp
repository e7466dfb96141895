// The expected-results oracle of spate-gen: per-view window aggregates computed from the
// generated events alone, written as the NDJSON an engine's results are compared with.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gen/event.hpp"
#include "gen/rng.hpp"

namespace spate::gen {

// ---------------------------------------------------------------------------------------------
// Expected results, computed from the generated events alone.

class WindowAgg {
 public:
  struct Row {
    std::uint32_t key = 0;
    std::int64_t window_start = 0;
    std::uint64_t count = 0;
    double sum = 0;
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
  };

  WindowAgg(std::int64_t width_ms, std::size_t keys) : width_ms_(width_ms), recent_(keys) {}

  void add(std::uint32_t key, std::int64_t ts, double amount) {
    const std::int64_t window = floor_div(ts, width_ms_) * width_ms_;
    // Events arrive nearly in order, so a key's two newest windows take almost every event;
    // older windows are found by walking the key's rows, newest first (rare: only disorder
    // wider than a window reaches them).
    Recent& c = recent_[key];
    std::uint32_t row;
    if (c.window[0] == window) {
      row = c.row[0];
    } else if (c.window[1] == window) {
      row = c.row[1];
    } else if (window > c.window[0]) {  // newer than any window of the key: a new row
      row = new_row(key, window);
      c.window[1] = c.window[0];
      c.row[1] = c.row[0];
      c.window[0] = window;
      c.row[0] = row;
    } else {
      row = find_or_new_row(key, window);
      c.window[1] = window;
      c.row[1] = row;
    }
    Row& r = rows_[row];
    r.count += 1;
    r.sum += amount;
    r.min = std::min(r.min, amount);
    r.max = std::max(r.max, amount);
  }

  std::int64_t width_ms() const noexcept { return width_ms_; }
  std::size_t keys() const noexcept { return recent_.size(); }
  const std::vector<Row>& rows() const noexcept { return rows_; }

 private:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  struct Recent {
    std::array<std::int64_t, 2> window{std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::min()};
    std::array<std::uint32_t, 2> row{};
    std::uint32_t newest_row = kNone;  // head of the key's rows, newest first
  };

  std::uint32_t new_row(std::uint32_t key, std::int64_t window);
  std::uint32_t find_or_new_row(std::uint32_t key, std::int64_t window);

  std::int64_t width_ms_;
  std::vector<Recent> recent_;
  std::vector<Row> rows_;
  std::vector<std::uint32_t> older_;  // per row: the key's next older row, or kNone
};

class Expect {
 public:
  // Keeps a reference to `types` (names of the per_type_10s keys).
  Expect(std::uint32_t users, const std::vector<std::string>& types);

  void add(const Event& e) {
    const double amount = amounts_[e.cents];
    per_user_.add(e.user, e.ts, amount);
    per_type_.add(e.type, e.ts, amount);
  }

  // Writes the summary line and every view's rows to `path`; throws std::runtime_error.
  void write(const std::string& path, const Counts& counts) const;

 private:
  const std::vector<std::string>& types_;
  WindowAgg per_user_;
  WindowAgg per_type_;
  std::vector<double> amounts_;
};

}  // namespace spate::gen
