// Routing: the batches a shard fills for each destination. Rows for another
// shard go into a slot of the SPSC ring to it, filled in place; rows for the
// shard itself into a local batch per key group (so applying one touches
// one key table and one set of views). Batches leave when full, when the
// loop is about to sleep, or once their oldest row waited ring_flush_us.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/event_time.hpp"
#include "engine/route_batch.hpp"
#include "engine/shard_mesh.hpp"

namespace spate::engine {

struct ShardCounters;

class Router {
 public:
  // What the router needs from its shard.
  class Host {
   public:
    virtual ~Host() = default;
    // Applies a full (or flushed) local batch.
    virtual void apply_local(const RouteBatch& batch) = 0;
    // Called while a destination's ring is full: applies what others sent
    // and answers queries, so two shards waiting on each other go on.
    // Returns true when it did any work.
    virtual bool work_while_waiting() = 0;
  };

  Router(std::uint32_t self, ShardMesh& mesh, const Config& config, EventTime& time, ShardCounters& counters,
         Host& host);

  // On the shard's thread, before it runs: the local batches' memory.
  void prepare();

  // Appends one row of key group g for shard dst; role and fp: its dedup
  // by event id (route_batch.hpp).
  void append(std::uint32_t dst, std::uint8_t g, std::uint64_t hash, std::int64_t ts, std::int64_t stamp,
              std::string_view key, const Cell* columns, DedupRole role = DedupRole::none,
              const kernels::Fingerprint& fp = {}) {
    RouteBatch* b = dst == self_ ? local_[g].get() : open_[dst];
    if (b == nullptr || !b->has_room(key.size())) b = batch_for(dst, g, key.size(), 1);
    if (b->rows == 0) b->received_us = received_us_;
    b->append(g, hash, ts, stamp, key, role, fp, columns, ncolumns_);
  }
  // Makes room in the batch to another shard for `rows` rows and `bytes`
  // key bytes, so that a decider row and its followers travel together.
  void reserve(std::uint32_t dst, std::uint32_t rows, std::size_t bytes) {
    RouteBatch* b = open_[dst];
    if (b == nullptr || !b->has_room(bytes, rows)) batch_for(dst, 0, bytes, rows);
  }
  // When the rows appended from now on were read (the monotonic clock, us).
  void set_received(std::int64_t us) noexcept { received_us_ = us; }

  void flush_local(std::size_t g);
  void flush(std::uint32_t dst);
  void flush_all();
  // At the end of a loop pass; `busy`: the loop will not sleep now.
  void flush_if_due(bool busy);
  // Tells every other shard how far our inputs have come even when no rows
  // go its way, so its watermark does not wait on us.
  void send_watermarks();
  // A checkpoint: every row routed so far leaves (local ones are applied),
  // then each other shard gets the epoch's barrier behind them.
  void send_barriers(std::uint64_t epoch);

  // The lowest stamp among this shard's own rows still waiting in a local
  // batch of another key group (EventTime::kNone: none): the watermark must
  // not pass them before they are applied. Stamps only grow, so a batch's
  // first row has its lowest. Inline: it runs per row on the few-keys path.
  std::int64_t pending_min(std::size_t except_group) const noexcept {
    std::int64_t w = EventTime::kNone;
    for (std::size_t g = 0; g < local_.size(); ++g) {
      if (g != except_group && local_[g]->rows != 0) w = std::min(w, local_[g]->wm[0]);
    }
    return w;
  }
  std::int64_t pending_min() const noexcept { return pending_min(local_.size()); }

  // The ring to dst (nullptr for this shard), for PUBLISH's completion.
  const SpscRing<RouteBatch>* ring_to(std::uint32_t dst) const noexcept { return out_rings_[dst]; }
  // Whether batches this shard sent are still in a ring, not yet applied.
  bool in_flight() const noexcept {
    for (const SpscRing<RouteBatch>* ring : out_rings_) {
      if (ring != nullptr && ring->depth() > 0) return true;
    }
    return false;
  }

 private:
  RouteBatch* batch_for(std::uint32_t dst, std::uint8_t group, std::size_t key_size, std::uint32_t rows);

  const std::uint32_t self_;
  const std::uint32_t shards_;
  ShardMesh& mesh_;
  const Config& config_;
  EventTime& time_;
  ShardCounters& counters_;
  Host& host_;
  const std::size_t ncolumns_;
  std::vector<RouteBatch*> open_;                    // by destination: the slot being filled, or nullptr
  std::vector<std::unique_ptr<RouteBatch>> local_;   // by key group
  std::vector<SpscRing<RouteBatch>*> out_rings_;     // by destination; nullptr for self
  std::vector<std::int64_t> sent_;                   // by destination: the progress last sent
  std::int64_t pending_since_us_ = 0;                // when rows were first seen waiting (0: none)
  std::int64_t received_us_ = 0;                     // when the rows being appended were read
};

}  // namespace spate::engine
