// The view factory; see view.hpp.
#include "engine/view.hpp"

#include <algorithm>

#include "engine/tumbling_window.hpp"

namespace spate::engine {

void keep_top(std::vector<ViewRow>& rows, std::uint32_t k, int by) {
  const auto b = static_cast<std::size_t>(by);
  std::sort(rows.begin(), rows.end(), [b](const ViewRow& x, const ViewRow& y) {
    const double vx = x.values[b].as_double();
    const double vy = y.values[b].as_double();
    if (vx != vy) return vx > vy;
    return x.key < y.key;
  });
  if (rows.size() > k) rows.resize(k);
}

std::unique_ptr<View> make_view(const ViewConfig& config, std::int64_t allowed_lateness_ms) {
  return std::make_unique<TumblingView>(config, allowed_lateness_ms);
}

}  // namespace spate::engine
