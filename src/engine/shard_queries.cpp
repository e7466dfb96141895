// The shard's side of queries: each task run on the shard's thread (again
// on later passes while it says it is not done), PUBLISH batches ingested
// like any input, answers through the response ring.
#include "engine/shard.hpp"

#include "kernels/assert.hpp"
#include "engine/engine.hpp"

namespace spate::engine {

bool Shard::serve_requests(bool may_ingest) {
  bool any = false;
  if (!in_progress_.empty()) {
    QueryTask* task = in_progress_.front();
    if (task->run(*this)) {
      in_progress_.erase(in_progress_.begin());
      respond(task);
    }
    any = true;
  }
  while (QueryTask** slot = requests_.front()) {
    QueryTask* task = *slot;
    if (!may_ingest && task->ingests()) break;
    requests_.pop();
    if (!task->run(*this)) {
      in_progress_.push_back(task);
    } else if (log_ && log_->state(task->durable_ticket) == storage::SegmentLog::TicketState::pending) {
      durable_waits_.push_back(task);  // answered once its events are durable (poll_log)
    } else {
      respond(task);
    }
    any = true;
  }
  return any;
}

void Shard::respond(QueryTask* task) {
  QueryTask** out = responses_.claim();
  SPATE_ASSERT(out != nullptr, "the server keeps no more tasks in flight per shard than the response ring holds");
  *out = task;
  responses_.publish();
  engine_.notify_response();
}

bool PublishTask::run(Shard& shard) {
  shard.publish(*this);
  return true;
}

void Shard::publish(PublishTask& task) {
  if (cannot_store()) {
    task.disk_full = log_->disk_full();
    task.cannot_store = !task.disk_full;
    return;
  }
  const std::size_t s = publish_kind_;
  const std::uint64_t in0 = counters_.events(s);
  const std::uint64_t rej0 = counters_.rejected(s);
  const bool joined = publish_->deliver(task.producer, task.sequence, task.payload.data(), task.payload_len, *this);
  router_.flush_all();
  task.accepted = counters_.events(s) - in0;
  // An input holds event time back from its opening; a producer whose
  // first batch held no good event would hold it for nothing.
  if (joined && task.accepted == 0) publish_->leave(task.producer, *this);
  task.rejected = counters_.rejected(s) - rej0;
  for (std::uint32_t d = 0; d < shards_; ++d) {
    if (const auto* ring = router_.ring_to(d)) task.waits.emplace_back(ring, ring->pushed());
  }
  if (log_) {
    // The batch's sequence goes in the block of its events, so that
    // after a crash either both are read back or neither is.
    if (task.sequence != 0) {
      log_->add_position({static_cast<std::uint8_t>(storage::PositionKind::publish), task.producer, task.sequence});
      published_[task.producer] = {task.sequence, loop_ms_};
    }
    log_->end_chunk(loop_ms_);
    task.durable_ticket = log_->commit(loop_ms_);
    task.durability = storage::durability_name(log_->durability());
  }
}

}  // namespace spate::engine
