// The shard's maintenance tick (every 100 ms): idleness and watermarks,
// retention, the state budget, and the figures STATS reads from it.
#include "engine/shard.hpp"

#include <algorithm>

namespace spate::engine {
namespace {

// Keys the retention sweep visits per maintenance tick (100 ms): a million
// keys are swept in about 6 s, and no tick stalls the loop for long.
constexpr std::uint32_t kRetentionKeysPerTick = 16384;
// How often the bytes waiting in the kernel for each source are measured.
constexpr std::int64_t kBacklogEveryMs = 1000;

}  // namespace

void Shard::maintenance(std::int64_t now_ms) {
  // Rows still in batches are sent and applied first: once this shard
  // turns inactive, the shards it feeds stop waiting for it, and its own
  // watermark may catch up, so no row of ours may be left behind.
  router_.flush_all();
  // Idleness: inputs that delivered nothing for idle_timeout_ms stop
  // holding back our watermark and, once none is left, the shards we feed.
  // A tick long overdue (the loop waited on a full ring) is no evidence of
  // silence: the inputs were not read, so their clocks restart instead.
  const bool stalled = last_tick_ms_ != 0 && now_ms - last_tick_ms_ > 2 * kMaintenanceEveryMs;
  last_tick_ms_ = now_ms;
  time_.tick(now_ms, config_.idle_timeout_ms, router_.pending_min(), stalled);
  // A producer is an input while it publishes; once idle it leaves.
  publish_->expire([this](std::uint32_t input) { return time_.input_active(input); }, *this);
  router_.send_watermarks();
  // Retention, a slice of keys per tick: windows past it go, and then keys
  // with no window left in any view of their group.
  const std::int64_t watermark = time_.watermark();
  views_.retention_step(watermark, config_.window_retention_ms, kRetentionKeysPerTick, in_progress_.empty());
  if (views_.dedups()) {
    views_.expire_ids(watermark);
    const ViewSet::DedupTotals d = views_.dedup_totals(watermark);
    counters_.dedup_evicted.store(d.evicted, std::memory_order_relaxed);
    counters_.dedup_expired.store(d.expired, std::memory_order_relaxed);
    counters_.dedup_ids.store(d.ids, std::memory_order_relaxed);
    counters_.dedup_bytes.store(d.bytes, std::memory_order_relaxed);
    counters_.dedup_horizon_covered_ms.store(static_cast<std::uint64_t>(d.horizon_covered_ms), std::memory_order_relaxed);
    // The operator sees what the promise covers: once when it falls short, once when it is whole again.
    const bool short_now = d.horizon_covered_ms < config_.dedup.effective_horizon_ms;
    if (short_now != counters_.dedup_short) {
      counters_.dedup_short = short_now;
      if (short_now) {
        io::log_warn("dedup: the memory budget holds less than the horizon; an older resend may be counted twice",
                     {{"shard", id_}, {"horizon_covered_ms", d.horizon_covered_ms},
                      {"horizon_ms", config_.dedup.effective_horizon_ms}, {"max_bytes", config_.dedup.max_bytes}});
      } else {
        io::log_info("dedup: the whole horizon is held again",
                     {{"shard", id_}, {"horizon_ms", config_.dedup.effective_horizon_ms}});
      }
    }
  }
  counters_.windows.store(views_.window_count(), std::memory_order_relaxed);
  for (std::size_t v = 0; v < config_.views.size(); ++v) {
    const ViewSet::ViewFigures f = views_.view_figures(v);
    counters_.view_keys[v].store(f.keys, std::memory_order_relaxed);
    counters_.view_windows[v].store(f.windows, std::memory_order_relaxed);
    counters_.view_bytes[v].store(f.bytes, std::memory_order_relaxed);
  }
  const std::uint64_t keys = views_.key_count();
  counters_.keys.store(keys, std::memory_order_relaxed);
  set_state_budget(keys);
  counters_.inputs_open.store(time_.inputs_open(), std::memory_order_relaxed);
  counters_.inputs_active.store(time_.inputs_active(), std::memory_order_relaxed);
  publish_watermark(watermark);
  counters_.tick_ms.store(now_ms, std::memory_order_relaxed);
  if (now_ms >= next_backlog_ms_) {  // a syscall per connection: once a second
    for (auto& source : sources_) source->measure_backlog();
    next_backlog_ms_ = now_ms + kBacklogEveryMs;
  }
  maybe_request_checkpoint(now_ms);
}

// max_state_bytes, this shard's share: the bytes left, at what a key has
// cost so far (its key-table slot and bytes, its windows; 512 bytes until
// there are enough keys to tell), is how many new keys may come before the
// next tick. Measured every tick rather than per key, so the hot path only
// counts down an allowance on its insert path.
void Shard::set_state_budget(std::uint64_t keys) {
  const std::uint64_t bytes = views_.memory_bytes();
  counters_.state_bytes.store(bytes, std::memory_order_relaxed);
  const std::uint64_t share = config_.max_state_bytes / shards_;
  const std::uint64_t per_key = keys >= 1024 ? std::max<std::uint64_t>(bytes / keys, 64) : 512;
  // Growing a table doubles it: keep the next doubling within the share.
  views_.set_key_allowance(bytes >= share ? 0 : (share - bytes) / (2 * per_key));
}

}  // namespace spate::engine
