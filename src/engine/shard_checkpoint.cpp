// Checkpoints (docs/storage.md, "Checkpoints"). Rows cross shards, so one
// shard's state holds events of every shard's log: the shards checkpoint
// together, aligned by barriers as in Flink. At epoch E each shard stops
// reading its inputs, sends every row routed so far and then a barrier to
// each other shard, seals its log block (the position its own replay will
// start from) and keeps applying what the others send until each one's
// barrier came; rows behind a barrier wait in their ring. Its state then
// holds exactly the events of every log before E's barriers: it is copied
// on the loop (a pause that grows with the state), the loop goes on, and a
// thread writes the file once the log holds everything before the position
// durably, whatever the durability dial says.
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/shard.hpp"
#include "io/file/log.hpp"
#include "kernels/byte_io.hpp"

namespace spate::engine {

bool Shard::ring_held(std::uint32_t src) const noexcept {
  return barrier_seen_[src] > snap_epoch_ && !engine_.stopping();
}

std::uint64_t Shard::checkpoint_due() const noexcept {
  if (!log_ || pending_.epoch != 0 || engine_.stopping()) return 0;
  std::uint64_t epoch = engine_.checkpoint_requested();
  for (const std::uint64_t seen : barrier_seen_) epoch = std::max(epoch, seen);
  return epoch > snap_epoch_ ? epoch : 0;
}

// Shard 0 asks for the next epoch once every shard is done with the last.
void Shard::maybe_request_checkpoint(std::int64_t now_ms) {
  const std::int64_t interval = config_.storage.checkpoint_interval_ms;
  if (id_ != 0 || !log_ || interval <= 0 || engine_.stopping() || !engine_.all_replayed()) return;
  if (next_checkpoint_ms_ == 0) next_checkpoint_ms_ = now_ms + interval;
  if (now_ms < next_checkpoint_ms_) return;
  const std::uint64_t last = engine_.checkpoint_requested();
  for (std::uint32_t s = 0; s < shards_; ++s) {
    if (engine_.shard(s).counters().checkpoint_epoch.load(std::memory_order_acquire) < last) return;
  }
  engine_.request_checkpoint(last + 1);
  next_checkpoint_ms_ = now_ms + interval;
  for (std::uint32_t s = 1; s < shards_; ++s) mesh_.wake(s);
}

void Shard::checkpoint(std::uint64_t epoch) {
  const std::int64_t started = io::monotonic_us();
  router_.send_barriers(epoch);
  const storage::LogPosition position = log_->mark(loop_ms_, pending_.ticket);
  while (true) {
    bool aligned = true;
    for (std::uint32_t s = 0; s < shards_; ++s) aligned = aligned && (s == id_ || barrier_seen_[s] >= epoch);
    if (aligned) break;
    if (engine_.stopping()) {  // given up: a restart loads an older epoch
      snap_epoch_ = epoch;
      counters_.checkpoint_epoch.store(epoch, std::memory_order_release);
      return;
    }
    if (!pass(kAligning)) ::usleep(50);
  }
  counters_.checkpoint_align_us.store(static_cast<std::uint64_t>(io::monotonic_us() - started),
                                      std::memory_order_relaxed);
  snapshot(epoch, position, started);
}

void Shard::snapshot(std::uint64_t epoch, storage::LogPosition position, std::int64_t started_us) {
  const std::int64_t at = io::monotonic_us();
  std::string& body = pending_.body;
  body = writer_.take_buffer();
  body.reserve(views_.memory_bytes() + views_.dedup_totals(INT64_MIN).bytes + 4096);
  kernels::ByteWriter out(body);
  time_.save(out);
  views_.save(out);
  // The producers the query server still remembers (publish_dedup_ttl_ms).
  std::erase_if(published_, [this](const auto& p) {
    return loop_ms_ - p.second.seen_ms > config_.publish_dedup_ttl_ms;
  });
  out.put<std::uint64_t>(published_.size());
  for (const auto& [producer, p] : published_) {
    out.put<std::uint64_t>(producer);
    out.put<std::uint64_t>(p.sequence);
  }
  storage::CheckpointHeader header;
  header.position = position;
  header.shard = id_;
  header.shards = shards_;
  header.epoch = epoch;
  header.created_ms = io::wall_ms();
  header.fingerprint = engine_.checkpoint_fingerprint();
  pending_.header = header;
  pending_.epoch = epoch;
  pending_.started_us = started_us;
  pending_.writing = false;
  snap_epoch_ = epoch;
  counters_.checkpoint_snapshot_us.store(static_cast<std::uint64_t>(io::monotonic_us() - at), std::memory_order_relaxed);
}

// Once every shard stopped handing off connections, shard 0 asks for no
// more epochs, so every shard numbers this one alike. Every row is applied
// and every log sealed: the state holds exactly what the logs hold, and
// needs no barriers. A restart then replays nothing. (A stop during the
// replay at start leaves a state short of the logs: no checkpoint then.)
void Shard::final_checkpoint() {
  if (!log_ || log_->failed() || config_.storage.checkpoint_interval_ms <= 0 || !engine_.all_replayed()) return;
  pending_.ticket = 0;  // close() made everything durable
  snapshot(engine_.checkpoint_requested() + 1, log_->end_position(), io::monotonic_us());
  counters_.checkpoint_align_us.store(0, std::memory_order_relaxed);
  poll_checkpoint(true);
}

void Shard::poll_checkpoint(bool stopping) {
  if (pending_.epoch == 0) return;
  if (!pending_.writing) {
    const auto state = log_->state(pending_.ticket);
    if (state == storage::SegmentLog::TicketState::pending) return;
    if (state == storage::SegmentLog::TicketState::lost) {
      io::log_error("checkpoint not written: the log lost blocks it counts on",
                    {{"shard", id_}, {"epoch", pending_.epoch}});
      ShardCounters::add(counters_.checkpoint_failures, 1);
      counters_.checkpoint_epoch.store(pending_.epoch, std::memory_order_release);
      pending_ = {};
      return;
    }
    writer_.start(log_dir_, pending_.header, std::move(pending_.body), poller_.wake_fd());
    pending_.writing = true;
  }
  if (stopping) writer_.wait();
  if (!writer_.finished()) return;
  if (writer_.error().empty()) {
    ShardCounters::add(counters_.checkpoints, 1);
    counters_.checkpoint_bytes.store(writer_.bytes(), std::memory_order_relaxed);
    counters_.checkpoint_duration_us.store(static_cast<std::uint64_t>(io::monotonic_us() - pending_.started_us),
                                           std::memory_order_relaxed);
    counters_.checkpoint_written_epoch.store(pending_.epoch, std::memory_order_release);
    // Older files go once every shard wrote a newer one: a restart needs
    // the newest epoch that all shards hold.
    std::uint64_t all = pending_.epoch;
    for (std::uint32_t s = 0; s < shards_; ++s) {
      all = std::min(all, engine_.shard(s).counters().checkpoint_written_epoch.load(std::memory_order_acquire));
    }
    storage::remove_checkpoints(log_dir_, all);
  } else {
    io::log_error("checkpoint not written", {{"shard", id_}, {"epoch", pending_.epoch}, {"error", writer_.error()}});
    ShardCounters::add(counters_.checkpoint_failures, 1);
  }
  counters_.checkpoint_epoch.store(pending_.epoch, std::memory_order_release);
  pending_ = {};
}

void Shard::remember_sequences() {
  const std::int64_t now = io::monotonic_ms();
  for (const auto& [producer, sequence] : replayed_) published_[producer] = {sequence, now};
}

void Shard::restore(const storage::Checkpoint& c) {
  kernels::ByteReader in(c.body);
  bool ok = time_.load(in) && views_.load(in);
  const auto producers = in.get<std::uint64_t>();
  if (producers > in.remaining() / 16) ok = in.fail();
  for (std::uint64_t i = 0; ok && i < producers; ++i) {
    const auto producer = in.get<std::uint64_t>();
    replayed_[producer] = in.get<std::uint64_t>();
  }
  if (!ok || !in.ok() || in.remaining() != 0) {
    throw std::runtime_error(fmt::format(
        "checkpoint {} passed its checksum but does not hold the state this build lays out: move the checkpoints "
        "directory away to rebuild the state from the segments",
        c.path));
  }
  remember_sequences();
  counters_.checkpoint_written_epoch.store(c.header.epoch, std::memory_order_relaxed);
}

}  // namespace spate::engine
