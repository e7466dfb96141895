// VIEW_GET: one key's windows of a view overlapping [FROM_MS, TO_MS), from
// the shard that owns the key.
#include <fmt/format.h>

#include "engine/shard.hpp"
#include "kernels/hash.hpp"
#include "query/query_op.hpp"

namespace spate::query {

bool KeyWindowsTask::run(engine::Shard& shard) {
  shard.views().collect(view, hash, key, from_ms, to_ms, shard.watermark(), rows);
  return true;
}

extern const QueryOp kViewGetOp;
const QueryOp kViewGetOp{
    Op::view_get,
    [](QueryServer& server, Connection& c, const FrameHeader& h, std::string_view body) {
      std::string_view view_name, key;
      bool has_key = false;
      std::int64_t from = INT64_MIN, to = INT64_MAX;
      FieldReader reader(body);
      while (auto f = reader.next()) {
        switch (f->tag) {
          case Tag::view: view_name = f->bytes; break;
          case Tag::key: key = f->bytes; has_key = true; break;
          case Tag::from_ms: from = f->as_i64(); break;
          case Tag::to_ms: to = f->as_i64(); break;
          default: break;  // unknown fields are skipped
        }
      }
      engine::Engine& engine = server.engine();
      const int view = find_view_or_refuse(server, c, h, view_name);
      if (view < 0) return;
      if (!has_key || key.size() > kMaxKeyBytes) {
        server.reply_error(c, h.op, h.request_id, Status::bad_request,
                           has_key ? fmt::format("KEY longer than {} bytes", kMaxKeyBytes) : std::string("VIEW_GET needs KEY"));
        return;
      }
      const std::uint64_t ticket = server.next_ticket();
      auto task = std::make_unique<KeyWindowsTask>();
      task->ticket = ticket;
      task->view = view;
      task->key = std::string(key);
      task->hash = kernels::hash_key(key);
      task->from_ms = from;
      task->to_ms = to;
      if (!server.submit(engine.owner_of(task->hash), task)) {
        server.reply_error(c, h.op, h.request_id, Status::overloaded, "shard request queue is full; retry");
        return;
      }
      auto pending = server.pending_for<ViewRowsPending>(c, h, kViewGetOp);
      pending->view = view;
      pending->remaining = 1;
      server.add_pending(c, ticket, std::move(pending));
    },
    view_rows_answered,
    reply_view_rows,
};

}  // namespace spate::query
