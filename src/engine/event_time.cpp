// A shard's event time; see event_time.hpp.
#include "engine/event_time.hpp"

namespace spate::engine {

EventTime::EventTime(std::uint32_t self, ShardMesh& mesh)
    : self_(self),
      shards_(mesh.shards()),
      mesh_(mesh),
      activity_(&mesh.activity_epoch()),
      channel_(shards_, INT64_MIN),
      channels_min_(shards_ == 1 ? kNone : INT64_MIN) {}

std::uint32_t EventTime::open_input() {
  if (!active_local_) set_active(true);
  return inputs_.open();
}

void EventTime::set_active(bool active) noexcept {
  active_local_ = active;
  mesh_.set_active(self_, active);
}

std::int64_t EventTime::progress() noexcept {
  const std::int64_t w = inputs_.watermark();
  if (w != kNone) {
    if (w > input_progress_) input_progress_ = w;
    const std::int64_t bound = std::min(w, others_);
    if (bound > stamp_) stamp_ = bound;
  }
  return stamp_;
}

std::int64_t EventTime::others_progress() const noexcept {
  std::int64_t w = kNone;
  for (std::uint32_t s = 0; s < shards_; ++s) {
    if (s != self_ && mesh_.active(s)) w = std::min(w, mesh_.progress(s));
  }
  return w;
}

void EventTime::catch_up() noexcept {
  others_ = others_progress();
  const std::int64_t w = others_ != kNone ? others_ : std::max(mesh_.max_reach(), inputs_.newest());
  if (w != kNone && w > stamp_) stamp_ = w;
}

void EventTime::resume() noexcept {
  catch_up();
  set_active(true);
}

std::int64_t EventTime::self_bound(std::int64_t pending) noexcept {
  if (pending != kNone) return pending;
  return inputs_.watermark() == kNone ? kNone : progress();
}

std::int64_t EventTime::channels_min(std::uint32_t except) const noexcept {
  std::int64_t w = kNone;
  for (std::uint32_t src = 0; src < shards_; ++src) {
    if (src == self_ || src == except) continue;
    if (mesh_.active(src) || mesh_.ring(src, self_).depth() > 0) w = std::min(w, channel_[src]);
  }
  return w;
}

void EventTime::recompute_channels() noexcept {
  activity_seen_ = activity_->load(std::memory_order_acquire);
  channels_min_ = channels_min(shards_);
}

void EventTime::tick(std::int64_t now_ms, std::int64_t idle_ms, std::int64_t pending, bool stalled) {
  inputs_.tick(now_ms, idle_ms, stalled);
  const bool active = inputs_.active_count() > 0;
  if (active != active_local_) set_active(active);
  if (!active_local_) catch_up();
  recompute_channels();
  advance(std::min(channels_min_, self_bound(pending)));
  // When every input here and upstream is idle, nothing holds event time
  // back: it catches up to how far any shard saw it go, as the stamps do.
  // It never moves with the wall clock, so an in-order stream that
  // resumes after a pause finds its windows open; the last windows close
  // when newer events arrive, as in Flink.
  if (!active_local_ && channels_min(shards_) == kNone) {
    std::int64_t w = std::max({mesh_.max_reach(), inputs_.newest(), stamp_});
    for (const std::int64_t c : channel_) w = std::max(w, c);
    advance(std::min(w, pending));  // never past our own rows not applied yet
  }
  publish_reach();
}

}  // namespace spate::engine
