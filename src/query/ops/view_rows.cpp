// What VIEW_GET and VIEW_TOP share: taking the shards' rows, and the reply
// that merges and encodes them.
#include <iterator>

#include <fmt/format.h>

#include "query/query_op.hpp"

namespace spate::query {

bool view_rows_answered(QueryServer&, std::uint64_t, Pending& pending, std::unique_ptr<engine::QueryTask> task) {
  auto& p = static_cast<ViewRowsPending&>(pending);                 // the op's own state
  auto& rows = static_cast<engine::ViewRowsTask&>(*task).rows;  // and task
  std::move(rows.begin(), rows.end(), std::back_inserter(p.rows));
  return --p.remaining == 0;
}

int find_view_or_refuse(QueryServer& server, Connection& c, const FrameHeader& h, std::string_view name) {
  const int view = server.engine().config().find_view(name);
  if (view < 0) server.reply_error(c, h.op, h.request_id, Status::unknown_view, fmt::format("no view named '{}'", name));
  return view;
}

void reply_view_rows(QueryServer& server, Pending& pending, Connection* client) {
  if (client == nullptr) return;
  auto& p = static_cast<ViewRowsPending&>(pending);
  Connection& c = *client;
  if (p.overloaded) {
    server.reply_error(c, p.op, p.request_id, Status::overloaded, "a shard request queue is full; retry");
    return;
  }
  const auto& view = server.engine().config().views[static_cast<std::size_t>(p.view)];
  // Each shard's part of a window merged (a key's rows live on one shard
  // today, so parts meet only when state is spread wider), then for
  // VIEW_TOP each shard's best merged into the best k.
  engine::merge_rows(p.rows);
  if (p.op == Op::view_top) engine::keep_top(p.rows, p.k, p.by);
  std::string out;
  const auto mark = begin_frame(out, p.op, Status::ok, p.request_id);
  FieldWriter w(out);
  if (p.op == Op::view_top && p.window_start != INT64_MIN) w.i64(Tag::window_start, p.window_start);
  std::size_t n = 0;
  for (const auto& row : p.rows) {
    // Stay within the frame limit with room for one more row and the flag.
    if (n++ == kMaxRowsPerResponse || out.size() - mark > kDefaultMaxFrameBytes - (64u << 10)) {
      w.u64(Tag::truncated, 1);
      break;
    }
    const auto rm = w.begin_nested(Tag::row);
    w.bytes(Tag::key, row.key);
    w.i64(Tag::window_start, row.window_start);
    w.i64(Tag::window_end, row.window_end);
    w.u64(Tag::closed, row.closed ? 1 : 0);
    for (std::size_t a = 0; a < view.aggregates.size(); ++a) {
      const auto am = w.begin_nested(Tag::agg);
      w.bytes(Tag::name, view.aggregates[a].label);
      const engine::AggValue value = row.value(a);
      switch (value.type) {
        case engine::AggValue::Type::count: w.u64(Tag::value_u64, value.u); break;
        case engine::AggValue::Type::integer: w.i64(Tag::value_i64, value.i); break;
        case engine::AggValue::Type::real: w.f64(Tag::value_f64, value.d); break;
      }
      w.end_nested(am);
    }
    w.end_nested(rm);
  }
  finish_frame(out, mark);
  server.send(c, out);
}

}  // namespace spate::query
