// PUBLISH dedup: per producer, the highest sequence applied and when it was
// last seen. A producer unseen for publish_dedup_ttl_ms is forgotten, as
// Kafka forgets an idle producer id, so the table follows live producers.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "engine/engine.hpp"

namespace spate::query {

class PublishDedup {
 public:
  explicit PublishDedup(engine::Engine& engine) : engine_(engine) {}

  // True when producer's batch `sequence` was applied already (sequence 0
  // is never a duplicate); a known producer counts as seen now.
  bool duplicate(std::uint64_t producer, std::uint64_t sequence, std::int64_t now_ms);
  // The batch is being applied on `shard` (the producer's shard, whose
  // publish.producers gauge counts it).
  void record(std::uint64_t producer, std::uint64_t sequence, std::uint32_t shard, std::int64_t now_ms);
  // The batch was not kept (its log write failed): its resend must be applied.
  void unrecord(std::uint64_t producer, std::uint64_t sequence);
  // Forgets producers unseen for the ttl; call about once a second.
  void expire(std::int64_t now_ms);

 private:
  struct Producer {
    std::uint64_t sequence = 0;
    std::int64_t last_seen_ms = 0;
    std::uint32_t shard = 0;
  };
  engine::Engine& engine_;
  std::unordered_map<std::uint64_t, Producer> producers_;
};

}  // namespace spate::query
