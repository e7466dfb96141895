// Hopping windows over shared panes; see hopping_window.hpp.
#include "engine/hopping_window.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "engine/view_registry.hpp"

namespace spate::engine {
namespace {
// Query bounds may be the whole time line: the arithmetic saturates.
std::int64_t plus(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r;
  return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

ViewConfig pane_config(const ViewConfig& config) {
  ViewConfig panes = config;
  panes.window = "tumbling";
  panes.window_ms = config.slide_ms;
  panes.slide_ms = 0;
  return panes;
}
}  // namespace

HoppingView::HoppingView(const ViewConfig& config, std::int64_t allowed_lateness_ms)
    : View(config),
      size_ms_(config.window_ms),
      slide_ms_(config.slide_ms),
      lateness_ms_(allowed_lateness_ms),
      panes_(pane_config(config), allowed_lateness_ms) {}

void HoppingView::windows_of(const std::vector<ViewRow>& panes, std::int64_t from, std::int64_t to,
                             std::int64_t watermark, std::vector<ViewRow>& out) const {
  std::map<std::int64_t, ViewRow> windows;  // by start
  for (const ViewRow& pane : panes) {
    // The windows holding this pane start at it and up to size - slide before it.
    for (std::int64_t s = pane.window_start - size_ms_ + slide_ms_; s <= pane.window_start; s += slide_ms_) {
      if (s >= to || plus(s, size_ms_) <= from || s < shown_from_) continue;
      auto [it, fresh] = windows.try_emplace(s);
      ViewRow& w = it->second;
      if (fresh) {
        w.key = pane.key;
        w.window_start = s;
        w.window_end = s + size_ms_;
        w.closed = w.window_end + lateness_ms_ <= watermark;
        w.aggs = pane.aggs;
      } else {
        for (std::size_t a = 0; a < w.aggs.size(); ++a) w.aggs[a].merge(pane.aggs[a]);
      }
    }
  }
  for (auto& [start, row] : windows) out.push_back(std::move(row));
}

void HoppingView::collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
                          std::int64_t watermark, std::vector<ViewRow>& out) const {
  // Every pane of a window overlapping [from, to): the windows start after
  // from - size and before to, and reach size past their start.
  std::vector<ViewRow> panes;
  panes_.collect(key_id, key, plus(from, -size_ms_), plus(to, size_ms_), watermark, panes);
  windows_of(panes, from, to, watermark, out);
}

void HoppingView::evict_chunks(std::int64_t watermark, std::int64_t retention_ms) {
  const std::int64_t stretched = retention_ms + size_ms_ - slide_ms_;
  panes_.evict_chunks(watermark, stretched);
  // The panes' horizon (TumblingView::horizon): panes before it may be gone.
  shown_from_ = std::max(shown_from_, plus(plus(plus(watermark, -lateness_ms_), -stretched), -slide_ms_));
}

void HoppingView::save(kernels::ByteWriter& out) const {
  panes_.save(out);
  out.put<std::int64_t>(shown_from_);
}

bool HoppingView::load(kernels::ByteReader& in) {
  if (!panes_.load(in)) return false;
  shown_from_ = in.get<std::int64_t>();
  return in.ok();
}

// A window is merged for each key from its panes: a top over many keys
// costs a walk of each key's panes (the query's slices bound the pause).
void HoppingView::top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys,
                      std::int64_t watermark, std::uint32_t begin, std::uint32_t end, std::vector<ViewRow>& out) const {
  std::vector<ViewRow> best;
  std::vector<ViewRow> panes;
  std::vector<ViewRow> window;
  end = std::min(end, keys.id_limit());
  for (std::uint32_t id = begin; id < end; ++id) {
    panes.clear();
    panes_.collect(id, keys.key(id), window_start, plus(window_start, size_ms_), watermark, panes);
    if (panes.empty()) continue;
    window.clear();
    windows_of(panes, window_start, plus(window_start, 1), watermark, window);
    for (ViewRow& w : window) {
      if (w.window_start == window_start) best.push_back(std::move(w));
    }
    if (best.size() >= 2 * static_cast<std::size_t>(k) + 64) keep_top(best, k, by);
  }
  keep_top(best, k, by);
  for (ViewRow& row : best) out.push_back(std::move(row));
}

// window = "hopping": size_ms long, a new window every slide_ms.
extern const ViewKind kHoppingKind;
const ViewKind kHoppingKind{
    "hopping",
    [](const ViewConfig& view, std::vector<std::string>& problems) {
      if (view.slide_ms == 0) {
        problems.emplace_back("a hopping window needs slide_ms (how far each window starts after the one before)");
      } else if (view.slide_ms > view.window_ms || view.window_ms % view.slide_ms != 0) {
        problems.push_back(fmt::format("size_ms ({}) must be a multiple of slide_ms ({}): each row is folded once, "
                                       "into the slide-long pane that every window holding it covers whole",
                                       view.window_ms, view.slide_ms));
      } else if (view.window_ms / view.slide_ms > 1024) {
        problems.push_back(fmt::format("size_ms / slide_ms is {}: at most 1024 panes a window",
                                       view.window_ms / view.slide_ms));
      }
    },
    [](const ViewConfig& view) { return fmt::format("hopping/{}/{}", view.window_ms, view.slide_ms); },
    [](const ViewConfig& view, std::int64_t allowed_lateness_ms) -> std::unique_ptr<View> {
      return std::make_unique<HoppingView>(view, allowed_lateness_ms);
    },
    // Windows start every slide_ms, at multiples of it (a pane's start).
    [](const ViewConfig& view, std::int64_t t) { return window_start_of(t, view.slide_ms); },
};

}  // namespace spate::engine
