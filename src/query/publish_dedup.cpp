// PUBLISH dedup; see publish_dedup.hpp.
#include "query/publish_dedup.hpp"

namespace spate::query {

bool PublishDedup::duplicate(std::uint64_t producer, std::uint64_t sequence, std::int64_t now_ms) {
  if (sequence == 0) return false;
  const auto it = producers_.find(producer);
  if (it == producers_.end() || sequence > it->second.sequence) return false;
  it->second.last_seen_ms = now_ms;
  return true;
}

void PublishDedup::unrecord(std::uint64_t producer, std::uint64_t sequence) {
  const auto it = producers_.find(producer);
  if (sequence != 0 && it != producers_.end() && it->second.sequence == sequence) it->second.sequence = sequence - 1;
}

void PublishDedup::record(std::uint64_t producer, std::uint64_t sequence, std::uint32_t shard, std::int64_t now_ms) {
  if (sequence == 0) return;
  auto [it, added] = producers_.try_emplace(producer);
  it->second = {sequence, now_ms, shard};
  if (added) engine_.shard(shard).counters().publish_producers.fetch_add(1, std::memory_order_relaxed);
}

void PublishDedup::expire(std::int64_t now_ms) {
  const std::int64_t ttl = engine_.config().publish_dedup_ttl_ms;
  for (auto it = producers_.begin(); it != producers_.end();) {
    if (now_ms - it->second.last_seen_ms < ttl) {
      ++it;
      continue;
    }
    engine::ShardCounters& k = engine_.shard(it->second.shard).counters();
    k.publish_producers.fetch_sub(1, std::memory_order_relaxed);
    k.publish_producers_expired.fetch_add(1, std::memory_order_relaxed);
    it = producers_.erase(it);
  }
}

}  // namespace spate::query
