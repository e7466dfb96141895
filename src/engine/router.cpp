// Routing batches; see router.hpp.
#include "engine/router.hpp"

#include <thread>

#include "engine/shard.hpp"
#include "io/file/source.hpp"

namespace spate::engine {

Router::Router(std::uint32_t self, ShardMesh& mesh, const Config& config, EventTime& time, ShardCounters& counters,
               Host& host)
    : self_(self),
      shards_(mesh.shards()),
      mesh_(mesh),
      config_(config),
      time_(time),
      counters_(counters),
      host_(host),
      ncolumns_(config.columns.size()),
      open_(shards_, nullptr),
      out_rings_(shards_, nullptr),
      sent_(shards_, INT64_MIN) {
  for (std::size_t g = 0; g < config.key_groups.size(); ++g) local_.push_back(std::make_unique<RouteBatch>());
  for (std::uint32_t other = 0; other < shards_; ++other) {
    if (other != self_) out_rings_[other] = &mesh.ring(self_, other);
  }
}

void Router::prepare() {
  for (auto& b : local_) b->allocate(config_.ring_batch_rows, ncolumns_);
}

RouteBatch* Router::batch_for(std::uint32_t dst, std::uint8_t group, std::size_t key_size, std::uint32_t rows) {
  if (dst == self_) {
    if (!local_[group]->has_room(key_size)) flush_local(group);
    return local_[group].get();
  }
  RouteBatch* b = open_[dst];
  if (b != nullptr && b->has_room(key_size, rows)) return b;
  if (b != nullptr) flush(dst);
  // Claim a slot; while the destination is full, the shard keeps applying
  // what others send it. Not reading its inputs meanwhile is the
  // backpressure: TCP senders slow down.
  if ((b = out_rings_[dst]->claim()) == nullptr) {
    ShardCounters::add(counters_.ring_full_waits, 1);
    while ((b = out_rings_[dst]->claim()) == nullptr) {
      if (!host_.work_while_waiting()) std::this_thread::yield();
    }
  }
  b->clear();
  open_[dst] = b;
  return b;
}

void Router::flush(std::uint32_t dst) {
  if (dst == self_) {
    for (std::size_t g = 0; g < local_.size(); ++g) flush_local(g);
    return;
  }
  RouteBatch* b = open_[dst];
  if (b == nullptr || b->rows == 0) return;
  ShardCounters::add(counters_.routed_out, b->rows);
  b->watermark = time_.progress();
  sent_[dst] = b->watermark;
  open_[dst] = nullptr;
  out_rings_[dst]->publish();
  mesh_.wake(dst);
}

void Router::flush_local(std::size_t g) {
  RouteBatch& b = *local_[g];
  if (b.rows == 0) return;
  host_.apply_local(b);
  b.clear();
}

void Router::flush_all() {
  for (std::uint32_t d = 0; d < shards_; ++d) flush(d);
  pending_since_us_ = 0;
}

void Router::flush_if_due(bool busy) {
  if (!busy || config_.ring_flush_us == 0) {
    flush_all();
    return;
  }
  bool pending = false;
  for (std::uint32_t d = 0; d < shards_ && !pending; ++d) pending = open_[d] != nullptr && open_[d]->rows != 0;
  for (std::size_t g = 0; g < local_.size() && !pending; ++g) pending = local_[g]->rows != 0;
  if (!pending) return;
  const std::int64_t now = io::monotonic_us();
  if (pending_since_us_ == 0) pending_since_us_ = now;
  else if (now - pending_since_us_ >= config_.ring_flush_us) flush_all();
}

void Router::send_barriers(std::uint64_t epoch) {
  flush_all();
  for (std::uint32_t dst = 0; dst < shards_; ++dst) {
    if (out_rings_[dst] == nullptr) continue;
    RouteBatch* b;
    while ((b = out_rings_[dst]->claim()) == nullptr) {
      if (!host_.work_while_waiting()) std::this_thread::yield();
    }
    b->clear();
    b->watermark = INT64_MIN;
    b->barrier = epoch;
    out_rings_[dst]->publish();
    mesh_.wake(dst);
  }
}

void Router::send_watermarks() {
  if (!time_.active_local()) return;
  const std::int64_t progress = time_.progress();
  for (std::uint32_t dst = 0; dst < shards_; ++dst) {
    if (out_rings_[dst] == nullptr || open_[dst] != nullptr || sent_[dst] >= progress) continue;
    RouteBatch* b = out_rings_[dst]->claim();
    if (b == nullptr) continue;  // full: the rows in it carry stamps anyway
    b->clear();
    b->watermark = progress;
    sent_[dst] = progress;
    out_rings_[dst]->publish();
    mesh_.wake(dst);
  }
}

}  // namespace spate::engine
