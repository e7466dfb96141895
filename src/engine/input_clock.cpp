// Per-input event time; see input_clock.hpp.
#include "engine/input_clock.hpp"

#include <algorithm>

namespace spate::engine {

std::uint32_t InputClock::open() {
  std::uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<std::uint32_t>(inputs_.size());
    inputs_.emplace_back();
  }
  inputs_[id] = Input{};
  inputs_[id].open = true;
  inputs_[id].active = true;
  inputs_[id].fresh = true;  // the idle timeout counts from the next tick
  ++open_;
  recompute();
  return id;
}

void InputClock::close(std::uint32_t input) noexcept {
  Input& in = inputs_[input];
  if (!in.open) return;
  const bool was_active = in.active;
  in = Input{};
  free_.push_back(input);
  --open_;
  if (was_active) recompute();
}

void InputClock::tick(std::int64_t now_ms, std::int64_t idle_ms, bool stalled) noexcept {
  bool changed = false;
  for (Input& in : inputs_) {
    if (!in.open) continue;
    if (in.fresh || stalled) {
      in.fresh = false;
      in.last_event_ms = now_ms;
    } else if (in.active && now_ms - in.last_event_ms >= idle_ms) {
      in.active = false;
      changed = true;
    }
  }
  if (changed) recompute();
}

void InputClock::recompute() noexcept {
  std::int64_t m = kNone;
  std::uint32_t active = 0;
  for (const Input& in : inputs_) {
    if (!in.active) continue;
    ++active;
    if (in.newest < m) m = in.newest;
  }
  min_ = m;
  active_ = active;
}

}  // namespace spate::engine
