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
    if (std::find(columns_, columns_ + ncolumns_, c) == columns_ + ncolumns_) {
      slot_of_[c] = static_cast<std::uint8_t>(ncolumns_);
      columns_[ncolumns_++] = c;
    }
  }
  words_ = 2 + 3 * ncolumns_;
}

void TumblingView::grow(std::uint32_t keys) {
  hot_.resize(static_cast<std::size_t>(keys) * words_, WindowWord{0});
  history_.resize(keys);
  keys_ = keys;
}

void TumblingView::init(WindowWord* w, std::int64_t start) const noexcept {
  w[0].i = start;
  w[1].u = 0;
  for (std::uint32_t i = 0; i < ncolumns_; ++i) {
    w[2 + 3 * i].d = 0;
    w[3 + 3 * i].d = std::numeric_limits<double>::infinity();
    w[4 + 3 * i].d = -std::numeric_limits<double>::infinity();
  }
}

WindowWord* TumblingView::window_for(std::uint32_t key_id, std::int64_t start) {
  WindowWord* hot = &hot_[static_cast<std::size_t>(key_id) * words_];
  auto& history = history_[key_id];
  if (hot[1].u == 0) {  // the key has no window yet
    init(hot, start);
    ++windows_;
    return hot;
  }
  if (start > hot[0].i) {  // a new newest window: the current one moves to history
    history.insert(history.end(), hot, hot + words_);
    init(hot, start);
    ++windows_;
    return hot;
  }
  // An out-of-order event for an older window: search history from its end.
  std::size_t n = history.size() / words_;
  while (n > 0 && history[(n - 1) * words_].i > start) --n;
  if (n > 0 && history[(n - 1) * words_].i == start) return &history[(n - 1) * words_];
  const auto at = history.begin() + static_cast<std::ptrdiff_t>(n * words_);
  history.insert(at, words_, WindowWord{0});
  WindowWord* w = &history[n * words_];
  init(w, start);
  ++windows_;
  return w;
}

const WindowWord* TumblingView::find(std::uint32_t key_id, std::int64_t start) const noexcept {
  const WindowWord* hot = &hot_[static_cast<std::size_t>(key_id) * words_];
  if (hot[1].u == 0 || start > hot[0].i) return nullptr;
  if (hot[0].i == start) return hot;
  const auto& history = history_[key_id];
  for (std::size_t n = history.size() / words_; n > 0; --n) {
    const WindowWord* w = &history[(n - 1) * words_];
    if (w[0].i == start) return w;
    if (w[0].i < start) break;
  }
  return nullptr;
}

double TumblingView::value_of(const WindowWord* w, int aggregate) const noexcept {
  const AggregateConfig& agg = config_.aggregates[static_cast<std::size_t>(aggregate)];
  if (agg.kind == AggKind::count) return static_cast<double>(w[1].u);
  const WindowWord* c = w + 2 + 3 * slot_of_[agg.column];
  switch (agg.kind) {
    case AggKind::sum: return c[0].d;
    case AggKind::min: return c[1].d;
    case AggKind::max: return c[2].d;
    case AggKind::avg: return w[1].u == 0 ? 0.0 : c[0].d / static_cast<double>(w[1].u);
    case AggKind::count: break;
  }
  return 0;
}

ViewRow TumblingView::to_row(std::string_view key, const WindowWord* w, std::int64_t watermark) const {
  ViewRow row;
  row.key = std::string(key);
  row.window_start = w[0].i;
  row.window_end = w[0].i + window_ms_;
  row.closed = row.window_end + lateness_ms_ <= watermark;
  row.values.reserve(config_.aggregates.size());
  for (std::size_t a = 0; a < config_.aggregates.size(); ++a) row.values.push_back(value_of(w, static_cast<int>(a)));
  return row;
}

void TumblingView::collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
                           std::int64_t watermark, std::vector<ViewRow>& out) const {
  if (key_id >= keys_) return;
  auto emit = [&](const WindowWord* w) {
    if (w[0].i < to && w[0].i + window_ms_ > from) out.push_back(to_row(key, w, watermark));
  };
  const auto& history = history_[key_id];
  for (std::size_t i = 0; i < history.size(); i += words_) emit(&history[i]);
  const WindowWord* hot = &hot_[static_cast<std::size_t>(key_id) * words_];
  if (hot[1].u != 0) emit(hot);
}

void TumblingView::top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys,
                       std::int64_t watermark, std::vector<ViewRow>& out) const {
  struct Candidate {
    double value;
    std::uint32_t key_id;
    const WindowWord* window;
  };
  std::vector<Candidate> candidates;
  for (std::uint32_t id = 0; id < keys_; ++id) {
    if (const WindowWord* w = find(id, window_start)) candidates.push_back({value_of(w, by), id, w});
  }
  const auto better = [&](const Candidate& a, const Candidate& b) {
    if (a.value != b.value) return a.value > b.value;
    return keys.key(a.key_id) < keys.key(b.key_id);
  };
  const std::size_t n = std::min<std::size_t>(k, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n), candidates.end(), better);
  for (std::size_t i = 0; i < n; ++i) out.push_back(to_row(keys.key(candidates[i].key_id), candidates[i].window, watermark));
}

void TumblingView::evict(std::int64_t watermark, std::int64_t retention_ms) {
  const std::int64_t horizon = watermark - lateness_ms_ - retention_ms - window_ms_;
  for (std::uint32_t id = 0; id < keys_; ++id) {
    auto& history = history_[id];
    std::size_t n = 0;
    while (n < history.size() && history[n].i < horizon) n += words_;
    if (n > 0) {
      history.erase(history.begin(), history.begin() + static_cast<std::ptrdiff_t>(n));
      windows_ -= n / words_;
    }
    WindowWord* hot = &hot_[static_cast<std::size_t>(id) * words_];
    if (hot[1].u != 0 && hot[0].i < horizon) {
      hot[1].u = 0;
      --windows_;
    }
  }
}

}  // namespace spate::engine
