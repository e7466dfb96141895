// Query operations by opcode: what the server does with a request frame of
// each Op once HELLO is done. An operation is one file under src/query/ops/
// (its decoder, the shard tasks it asks for, how it merges their answers
// and encodes the reply) and one line in query_ops.cpp's list; the server's
// loop names none of them.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/query_task.hpp"
#include "protocol/protocol.hpp"
#include "query/query_server.hpp"

namespace spate::query {

using Connection = QueryServer::Connection;
using Pending = QueryServer::Pending;

struct QueryOp {
  Op code;
  // A request (its fields' wire types checked): answered at once
  // (QueryServer::send), refused (reply_error), or handed to shards as
  // tasks under one ticket (QueryServer::submit, then add_pending).
  void (*handle)(QueryServer& server, Connection& c, const FrameHeader& h, std::string_view body);
  // A shard's answer to one of the request's tasks, given with the
  // request's state (the op's own Pending type, as the task is the op's own
  // task type); true once the request has every answer it waits for (then
  // finish). nullptr: no shard tasks.
  bool (*answered)(QueryServer& server, std::uint64_t ticket, Pending& p, std::unique_ptr<engine::QueryTask> task);
  // The request is whole: the reply, to c (nullptr when the client went
  // away: only what must happen regardless).
  void (*finish)(QueryServer& server, Pending& p, Connection* c);
  // For a request put to wait_until_settled(): true once it may finish.
  // nullptr: the op never waits so.
  bool (*settled)(const Pending& p) = nullptr;
};

// VIEW_GET's and VIEW_TOP's request: the shards' rows as they come back,
// merged into the reply (ops/view_rows.cpp).
struct ViewRowsPending : Pending {
  int view = -1;
  std::uint32_t k = 0;                  // VIEW_TOP: how many keys
  int by = 0;                           // VIEW_TOP: the aggregate ranked by
  std::int64_t window_start = INT64_MIN;  // VIEW_TOP: the window ranked
  std::vector<engine::ViewRow> rows;
};

// VIEW_GET's task (and an aggregate alarm's): one key's windows of a view
// overlapping [from_ms, to_ms), on the shard that owns the key
// (ops/view_get.cpp).
struct KeyWindowsTask final : engine::ViewRowsTask {
  bool run(engine::Shard& shard) override;
  std::string key;
  std::uint64_t hash = 0;
  std::int64_t from_ms = INT64_MIN;
  std::int64_t to_ms = INT64_MAX;
};

// VIEW_TOP's task: one shard's best k keys of a window by one aggregate,
// ranked a slice of the view's keys per loop pass (ops/view_top.cpp).
struct TopSliceTask final : engine::ViewRowsTask {
  bool run(engine::Shard& shard) override;
  std::int64_t window_start = 0;
  std::uint32_t k = 10;
  int by = 0;
  std::uint32_t next_key = 0;  // where the next slice starts
};

// The operation with that opcode, or nullptr (HELLO is the server's own).
const QueryOp* find_query_op(Op code) noexcept;

// What VIEW_GET and VIEW_TOP share (ops/view_rows.cpp): the view named
// in the request, or -1 once UNKNOWN_VIEW is the reply; taking a shard's
// rows; and the reply, the rows merged in one frame (nothing when the
// client has gone).
int find_view_or_refuse(QueryServer& server, Connection& c, const FrameHeader& h, std::string_view name);
bool view_rows_answered(QueryServer& server, std::uint64_t ticket, Pending& p, std::unique_ptr<engine::QueryTask> task);
void reply_view_rows(QueryServer& server, Pending& p, Connection* c);

}  // namespace spate::query
