// What the shards share to work together, and nothing else: the rings
// between every pair of shards (rows, and accepted connections handed
// over), whether each shard's inputs are active, how far each has come in
// event time, and a way to wake each one. The engine builds one for its
// shards; a test builds one for shards that are only an EventTime and a
// Router (tests/src/event_time_test.cpp), no threads, sockets or Engine.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "io/file/poller.hpp"
#include "engine/route_batch.hpp"
#include "engine/spsc_ring.hpp"

namespace spate::engine {

// An accepted connection on its way to another shard, and the listener it
// came through (whose limits it counts against).
struct HandedConnection {
  int fd = -1;
  std::uint32_t listener = 0;
};

class ShardMesh {
 public:
  // ring_slots: each row ring's batches (rounded up to a power of two).
  ShardMesh(std::uint32_t shards, std::uint32_t ring_slots);

  std::uint32_t shards() const noexcept { return shards_; }

  // The row ring from src to dst (src != dst): one producer, one consumer.
  SpscRing<RouteBatch>& ring(std::uint32_t src, std::uint32_t dst) noexcept {
    return *rings_[src * shards_ + dst];
  }
  // Accepted connections handed from the accepting shard to the least loaded one.
  SpscRing<HandedConnection>& handoff(std::uint32_t src, std::uint32_t dst) noexcept {
    return *handoffs_[src * shards_ + dst];
  }
  // Batches waiting in every ring into dst.
  std::size_t depth_into(std::uint32_t dst) const noexcept;

  // Wakes shard s's loop when it sleeps (a producer just published into
  // one of its rings); a shard without a poller (tests) needs none.
  void set_poller(std::uint32_t s, io::Poller* poller) noexcept { peers_[s].poller = poller; }
  void wake(std::uint32_t s) noexcept {
    if (peers_[s].poller != nullptr) peers_[s].poller->wake();
  }

  // Whether shard s has inputs that may still send rows: its consumers wait
  // for its rows while it is. Every change bumps the activity epoch, so a
  // consumer that caches what holds it back knows to look again.
  bool active(std::uint32_t s) const noexcept { return peers_[s].active.load(std::memory_order_acquire); }
  void set_active(std::uint32_t s, bool active) noexcept {
    peers_[s].active.store(active, std::memory_order_release);
    activity_epoch_.fetch_add(1, std::memory_order_acq_rel);
  }
  const std::atomic<std::uint64_t>& activity_epoch() const noexcept { return activity_epoch_; }

  // The watermark shard s has reached (INT64_MIN: none).
  void publish_watermark(std::uint32_t s, std::int64_t watermark) noexcept {
    peers_[s].watermark.store(watermark, std::memory_order_relaxed);
  }
  // How far shard s's own inputs have come (their watermark, never
  // decreasing; INT64_MIN: not yet): while s is active, no other shard's
  // stamp passes it.
  void publish_progress(std::uint32_t s, std::int64_t progress) noexcept {
    peers_[s].progress.store(progress, std::memory_order_relaxed);
  }
  std::int64_t progress(std::uint32_t s) const noexcept { return peers_[s].progress.load(std::memory_order_relaxed); }
  // How far shard s has seen event time go (its newest event, stamp and
  // watermark), and the highest of them: when no shard holds event time
  // back, every shard catches up to it.
  void publish_reach(std::uint32_t s, std::int64_t reach) noexcept {
    peers_[s].reach.store(reach, std::memory_order_relaxed);
  }
  std::int64_t max_reach() const noexcept;

 private:
  // Each on its own cache line: written by its shard, read by the others.
  struct alignas(64) Peer {
    std::atomic<bool> active{false};
    std::atomic<std::int64_t> watermark{INT64_MIN};
    std::atomic<std::int64_t> progress{INT64_MIN};
    std::atomic<std::int64_t> reach{INT64_MIN};
    io::Poller* poller = nullptr;
  };

  std::uint32_t shards_;
  std::vector<std::unique_ptr<SpscRing<RouteBatch>>> rings_;  // src * shards + dst; none for src == dst
  std::vector<std::unique_ptr<SpscRing<HandedConnection>>> handoffs_;
  std::unique_ptr<Peer[]> peers_;
  alignas(64) std::atomic<std::uint64_t> activity_epoch_{0};
};

}  // namespace spate::engine
