// What the shards share; see shard_mesh.hpp.
#include "engine/shard_mesh.hpp"

#include <algorithm>

namespace spate::engine {

ShardMesh::ShardMesh(std::uint32_t shards, std::uint32_t ring_slots)
    : shards_(shards),
      rings_(static_cast<std::size_t>(shards) * shards),
      handoffs_(rings_.size()),
      peers_(std::make_unique<Peer[]>(shards)) {
  for (std::uint32_t s = 0; s < shards; ++s) {
    for (std::uint32_t d = 0; d < shards; ++d) {
      if (s == d) continue;
      rings_[s * shards + d] = std::make_unique<SpscRing<RouteBatch>>(ring_slots);
      handoffs_[s * shards + d] = std::make_unique<SpscRing<HandedConnection>>(64);
    }
  }
}

std::size_t ShardMesh::depth_into(std::uint32_t dst) const noexcept {
  std::size_t depth = 0;
  for (std::uint32_t s = 0; s < shards_; ++s) {
    if (s != dst) depth += rings_[s * shards_ + dst]->depth();
  }
  return depth;
}

std::int64_t ShardMesh::max_reach() const noexcept {
  std::int64_t reach = INT64_MIN;
  for (std::uint32_t s = 0; s < shards_; ++s) reach = std::max(reach, peers_[s].reach.load(std::memory_order_relaxed));
  return reach;
}

}  // namespace spate::engine
