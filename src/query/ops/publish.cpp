// PUBLISH: a batch of NDJSON lines from a producer, ingested by the shard
// its producer id maps to, answered once its rows are applied everywhere
// (and durable as the log promises). A (producer, sequence) seen recently
// is answered as a duplicate and not ingested again.
#include <algorithm>

#include "io/file/source.hpp"
#include "kernels/hash.hpp"
#include "query/query_op.hpp"

namespace spate::query {
namespace {

// A PUBLISH whose shard took the batch: its task (the counts and the rings
// its rows went to) until every row is applied.
struct PublishPending final : Pending {
  std::unique_ptr<engine::PublishTask> task;
};

}  // namespace

extern const QueryOp kPublishOp;
const QueryOp kPublishOp{
    Op::publish,
    [](QueryServer& server, Connection& c, const FrameHeader& h, std::string_view body) {
      std::uint64_t producer = 0, sequence = 0;
      std::string_view payload;
      bool has_payload = false;
      FieldReader reader(body);
      while (auto f = reader.next()) {
        switch (f->tag) {
          case Tag::producer_id: producer = f->u; break;
          case Tag::sequence: sequence = f->u; break;
          case Tag::payload: payload = f->bytes; has_payload = true; break;
          default: break;
        }
      }
      if (!has_payload) {
        server.reply_error(c, h.op, h.request_id, Status::bad_request, "PUBLISH needs PAYLOAD");
        return;
      }
      // One producer's batches always go to the same shard, so they are applied
      // in the order they were sent (like a Kafka partition); producers spread.
      engine::Engine& engine = server.engine();
      const std::uint32_t shard = engine.owner_of(kernels::hash_key(reinterpret_cast<const char*>(&producer), sizeof(producer)));
      PublishDedup& dedup = server.publish_dedup();
      if (dedup.duplicate(producer, sequence, io::monotonic_ms())) {
        std::string out;
        const auto mark = begin_frame(out, Op::publish, Status::ok, h.request_id);
        FieldWriter w(out);
        w.u64(Tag::accepted, 0);
        w.u64(Tag::rejected, 0);
        w.u64(Tag::duplicate, 1);
        finish_frame(out, mark);
        server.send(c, out);
        return;
      }
      if (!server.has_capacity(shard)) {
        // Backpressure: leave the frame unread and stop reading this
        // connection until the shard catches up (resume_reading retries).
        c.stalled = true;
        return;
      }
      dedup.record(producer, sequence, shard, io::monotonic_ms());
      const std::uint64_t ticket = server.next_ticket();
      auto task = std::make_unique<engine::PublishTask>();
      task->ticket = ticket;
      task->payload.resize(payload.size() + engine::kPadding);
      std::copy(payload.begin(), payload.end(), task->payload.begin());
      task->payload_len = payload.size();
      task->producer = producer;
      task->sequence = sequence;
      server.submit(shard, task);  // has_capacity said it fits
      auto pending = server.pending_for<PublishPending>(c, h, kPublishOp);
      pending->remaining = 1;
      server.add_pending(c, ticket, std::move(pending));
    },
    // The shard took the batch: the answer waits until every shard it
    // routed rows to has applied them (settled, below).
    [](QueryServer& server, std::uint64_t ticket, Pending& p, std::unique_ptr<engine::QueryTask> task) {
      static_cast<PublishPending&>(p).task.reset(static_cast<engine::PublishTask*>(task.release()));  // the op's own
      server.wait_until_settled(ticket);
      return false;
    },
    [](QueryServer& server, Pending& p, Connection* c) {
      const engine::PublishTask& task = *static_cast<PublishPending&>(p).task;
      // A batch not taken must be applied when it is resent.
      if (task.disk_full || task.cannot_store || task.durable_lost) {
        server.publish_dedup().unrecord(task.producer, task.sequence);
      }
      if (c == nullptr) return;
      if (task.durable_lost) {
        server.reply_error(*c, p.op, p.request_id, Status::storage_failed,
                           "the shard's log could not write this batch (see the daemon's log and storage.write_errors); "
                           "it may be lost: retry");
        return;
      }
      if (task.cannot_store) {
        server.reply_error(*c, p.op, p.request_id, Status::storage_failed,
                           "the shard's log cannot create or write a segment (storage.cannot_store; see the daemon's "
                           "log); nothing was taken: retry later");
        return;
      }
      if (task.disk_full) {
        server.reply_error(*c, p.op, p.request_id, Status::disk_full,
                           "the data directory's disk is above its high-water mark (storage.disk_full); nothing was "
                           "taken: retry once it is below the low-water mark");
        return;
      }
      std::string out;
      const auto mark = begin_frame(out, Op::publish, Status::ok, p.request_id);
      FieldWriter w(out);
      w.u64(Tag::accepted, task.accepted);
      w.u64(Tag::rejected, task.rejected);
      w.u64(Tag::duplicate, 0);
      w.bytes(Tag::durability, task.durability);
      finish_frame(out, mark);
      server.send(*c, out);
    },
    [](const Pending& p) {
      for (const auto& [ring, target] : static_cast<const PublishPending&>(p).task->waits) {
        if (ring->popped() < target) return false;
      }
      return true;
    },
};

}  // namespace spate::query
