// Tumbling event-time windows per key for one view on one shard: count, sum,
// min, max and avg of the view's numeric columns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/config.hpp"
#include "src/key_table.hpp"
#include "src/route_batch.hpp"

namespace spate::engine {

struct WindowAgg {
  std::int64_t start = 0;
  std::uint64_t count = 0;
  double sum[kMaxColumns];
  double min[kMaxColumns];
  double max[kMaxColumns];
};

// One window of one key as a query sees it: aggregates in the view's order.
struct ViewRow {
  std::string key;
  std::int64_t window_start = 0;
  std::int64_t window_end = 0;
  bool closed = false;
  std::vector<double> values;
};

inline std::int64_t window_start_of(std::int64_t ts, std::int64_t window_ms) noexcept {
  std::int64_t q = ts / window_ms;
  if (ts % window_ms != 0 && ts < 0) --q;  // floor, not truncation
  return q * window_ms;
}

class TumblingView {
 public:
  TumblingView(const ViewConfig& config, std::int64_t allowed_lateness_ms);

  // Folds row r of batch b into key_id's window. Returns false, changing
  // nothing, when that window closed: watermark >= window end + lateness.
  bool add(std::uint32_t key_id, const RouteBatch& b, std::uint32_t r, std::int64_t watermark) {
    const std::int64_t start = window_start_of(b.ts[r], window_ms_);
    if (start + window_ms_ + lateness_ms_ <= watermark) return false;
    if (start > newest_start_) newest_start_ = start;
    if (key_id >= per_key_.size()) per_key_.resize(key_id + 1);
    WindowAgg& w = find_or_insert(per_key_[key_id], start);
    ++w.count;
    for (std::uint32_t i = 0; i < ncolumns_; ++i) {
      const std::uint8_t c = columns_[i];
      const double v = b.columns[c][r];
      w.sum[c] += v;
      if (v < w.min[c]) w.min[c] = v;
      if (v > w.max[c]) w.max[c] = v;
    }
    return true;
  }

  // Windows of one key overlapping [from, to), oldest first.
  void collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
               std::int64_t watermark, std::vector<ViewRow>& out) const;
  // This shard's best k keys of the window starting at window_start by aggregate `by`.
  void top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys, std::int64_t watermark,
           std::vector<ViewRow>& out) const;
  // Drops windows that closed more than retention_ms (event time) ago.
  void evict(std::int64_t watermark, std::int64_t retention_ms);

  std::uint64_t window_count() const noexcept { return windows_; }
  // The start of the newest window any row went into (INT64_MIN: none yet).
  std::int64_t newest_start() const noexcept { return newest_start_; }
  std::int64_t window_ms() const noexcept { return window_ms_; }
  const ViewConfig& config() const noexcept { return config_; }

  double value_of(const WindowAgg& w, int aggregate) const noexcept;

 private:
  WindowAgg& find_or_insert(std::vector<WindowAgg>& windows, std::int64_t start);
  ViewRow to_row(std::string_view key, const WindowAgg& w, std::int64_t watermark) const;

  ViewConfig config_;
  std::int64_t window_ms_;
  std::int64_t lateness_ms_;
  std::uint8_t columns_[kMaxColumns] = {};
  std::uint32_t ncolumns_ = 0;
  std::vector<std::vector<WindowAgg>> per_key_;  // by key id, sorted by start
  std::uint64_t windows_ = 0;
  std::int64_t newest_start_ = INT64_MIN;
};

}  // namespace spate::engine
