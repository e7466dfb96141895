// Tumbling windows; see tumbling_window.hpp.
#include "src/tumbling_window.hpp"

#include <algorithm>
#include <limits>

namespace spate::engine {

TumblingView::TumblingView(const ViewConfig& config, std::int64_t allowed_lateness_ms)
    : config_(config), window_ms_(config.window_ms), lateness_ms_(allowed_lateness_ms) {
  for (const auto& agg : config_.aggregates) {
    if (agg.column < 0) continue;
    const auto c = static_cast<std::uint8_t>(agg.column);
    if (std::find(columns_, columns_ + ncolumns_, c) == columns_ + ncolumns_) columns_[ncolumns_++] = c;
  }
}

WindowAgg& TumblingView::find_or_insert(std::vector<WindowAgg>& windows, std::int64_t start) {
  // Events mostly land in the newest window: search from the back.
  auto it = windows.end();
  while (it != windows.begin() && (it - 1)->start > start) --it;
  if (it != windows.begin() && (it - 1)->start == start) return *(it - 1);
  WindowAgg w;
  w.start = start;
  for (std::size_t c = 0; c < kMaxColumns; ++c) {
    w.sum[c] = 0;
    w.min[c] = std::numeric_limits<double>::infinity();
    w.max[c] = -std::numeric_limits<double>::infinity();
  }
  ++windows_;
  return *windows.insert(it, w);
}

double TumblingView::value_of(const WindowAgg& w, int aggregate) const noexcept {
  const AggregateConfig& agg = config_.aggregates[static_cast<std::size_t>(aggregate)];
  switch (agg.kind) {
    case AggKind::count: return static_cast<double>(w.count);
    case AggKind::sum: return w.sum[agg.column];
    case AggKind::min: return w.min[agg.column];
    case AggKind::max: return w.max[agg.column];
    case AggKind::avg: return w.count == 0 ? 0.0 : w.sum[agg.column] / static_cast<double>(w.count);
  }
  return 0;
}

ViewRow TumblingView::to_row(std::string_view key, const WindowAgg& w, std::int64_t watermark) const {
  ViewRow row;
  row.key = std::string(key);
  row.window_start = w.start;
  row.window_end = w.start + window_ms_;
  row.closed = row.window_end + lateness_ms_ <= watermark;
  row.values.reserve(config_.aggregates.size());
  for (std::size_t a = 0; a < config_.aggregates.size(); ++a) row.values.push_back(value_of(w, static_cast<int>(a)));
  return row;
}

void TumblingView::collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
                           std::int64_t watermark, std::vector<ViewRow>& out) const {
  if (key_id >= per_key_.size()) return;
  for (const WindowAgg& w : per_key_[key_id]) {
    if (w.start < to && w.start + window_ms_ > from) out.push_back(to_row(key, w, watermark));
  }
}

void TumblingView::top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys,
                       std::int64_t watermark, std::vector<ViewRow>& out) const {
  struct Candidate {
    double value;
    std::uint32_t key_id;
    const WindowAgg* window;
  };
  std::vector<Candidate> candidates;
  for (std::uint32_t id = 0; id < per_key_.size(); ++id) {
    const auto& windows = per_key_[id];
    for (auto it = windows.rbegin(); it != windows.rend() && it->start >= window_start; ++it) {
      if (it->start == window_start) candidates.push_back({value_of(*it, by), id, &*it});
    }
  }
  const auto better = [&](const Candidate& a, const Candidate& b) {
    if (a.value != b.value) return a.value > b.value;
    return keys.key(a.key_id) < keys.key(b.key_id);
  };
  const std::size_t n = std::min<std::size_t>(k, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n), candidates.end(), better);
  for (std::size_t i = 0; i < n; ++i) out.push_back(to_row(keys.key(candidates[i].key_id), *candidates[i].window, watermark));
}

void TumblingView::evict(std::int64_t watermark, std::int64_t retention_ms) {
  const std::int64_t horizon = watermark - lateness_ms_ - retention_ms - window_ms_;
  for (auto& windows : per_key_) {
    std::size_t n = 0;
    while (n < windows.size() && windows[n].start < horizon) ++n;
    if (n == 0) continue;
    windows.erase(windows.begin(), windows.begin() + static_cast<std::ptrdiff_t>(n));
    windows_ -= n;
  }
}

}  // namespace spate::engine
