// The view factory; see view.hpp.
#include "engine/view.hpp"

#include "engine/tumbling_window.hpp"

namespace spate::engine {

std::unique_ptr<View> make_view(const ViewConfig& config, std::int64_t allowed_lateness_ms) {
  return std::make_unique<TumblingView>(config, allowed_lateness_ms);
}

}  // namespace spate::engine
