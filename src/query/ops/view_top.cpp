// VIEW_TOP: the best K keys of a view's window by one aggregate (BY), each
// shard's best merged into the best K. Without WINDOW_START, the newest
// window any shard has rows in; a WINDOW_START that is not a window's start
// is moved back to the start of the newest window starting at or before it
// (a time inside a tumbling window asks for that window).
#include <algorithm>

#include <fmt/format.h>

#include "engine/shard.hpp"
#include "engine/view_registry.hpp"
#include "query/query_op.hpp"

namespace spate::query {
namespace {
// VIEW_TOP visits every key of a view: a shard ranks this many keys per
// loop pass, so ingest and other queries go on while a large view is ranked.
constexpr std::uint32_t kTopKeysPerSlice = 16384;
}  // namespace

bool TopSliceTask::run(engine::Shard& shard) {
  next_key = shard.views().top_slice(view, window_start, k, by, shard.watermark(), next_key, kTopKeysPerSlice, rows);
  return next_key == 0;
}

extern const QueryOp kViewTopOp;
const QueryOp kViewTopOp{
    Op::view_top,
    [](QueryServer& server, Connection& c, const FrameHeader& h, std::string_view body) {
      std::string_view view_name, by = "count";
      bool has_window = false;
      std::int64_t window_start = 0;
      std::uint64_t k = 10;
      FieldReader reader(body);
      while (auto f = reader.next()) {
        switch (f->tag) {
          case Tag::view: view_name = f->bytes; break;
          case Tag::window_start: window_start = f->as_i64(); has_window = true; break;
          case Tag::k: k = f->u; break;
          case Tag::by: by = f->bytes; break;
          default: break;  // unknown fields are skipped
        }
      }
      engine::Engine& engine = server.engine();
      const auto& config = engine.config();
      const int view = find_view_or_refuse(server, c, h, view_name);
      if (view < 0) return;
      const int agg = config.find_aggregate(view, by);
      if (agg < 0) {
        server.reply_error(c, h.op, h.request_id, Status::unknown_aggregate,
                           fmt::format("view '{}' has no aggregate '{}'", view_name, by));
        return;
      }
      if (k == 0 || k > kMaxTopK) {
        server.reply_error(c, h.op, h.request_id, Status::bad_request, fmt::format("K must be in [1, {}]", kMaxTopK));
        return;
      }
      if (has_window) {
        window_start = engine::align_window_start(config.views[static_cast<std::size_t>(view)], window_start);
      } else {
        window_start = INT64_MIN;
        for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
          window_start = std::max(window_start, engine.shard(s).counters().newest_window[view].load(std::memory_order_relaxed));
        }
      }
      const std::uint64_t ticket = server.next_ticket();
      auto pending = server.pending_for<ViewRowsPending>(c, h, kViewTopOp);
      pending->view = view;
      pending->k = static_cast<std::uint32_t>(k);
      pending->by = agg;
      pending->window_start = window_start;
      for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
        auto task = std::make_unique<TopSliceTask>();
        task->ticket = ticket;
        task->view = view;
        task->window_start = window_start;
        task->k = static_cast<std::uint32_t>(k);
        task->by = agg;
        if (server.submit(s, task)) ++pending->remaining;  // a shard not asked: OVERLOADED below
      }
      if (pending->remaining == 0) {
        server.reply_error(c, h.op, h.request_id, Status::overloaded, "every shard request queue is full; retry");
        return;
      }
      // Some shards were not asked: answer OVERLOADED once the others return.
      pending->overloaded = pending->remaining != engine.shard_count();
      server.add_pending(c, ticket, std::move(pending));
    },
    view_rows_answered,
    reply_view_rows,
};

}  // namespace spate::query
