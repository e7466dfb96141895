// A unit of query work handed from the query server to a shard over an
// SpscRing, run there and handed back. Each query operation defines the
// tasks it asks for (src/query/ops/); the shard runs any task it is given
// and knows none of them, except the PUBLISH batch it ingests.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/route_batch.hpp"
#include "engine/spsc_ring.hpp"
#include "engine/view.hpp"

namespace spate::engine {

class Shard;

struct QueryTask {
  virtual ~QueryTask() = default;
  // On the shard's thread: true once done; false to be run again on the
  // shard's next loop pass (a slice of a long task, as VIEW_TOP's ranking).
  virtual bool run(Shard& shard) = 0;
  // A task that ingests waits while the shard may not ingest (a
  // checkpoint's alignment).
  virtual bool ingests() const noexcept { return false; }

  std::uint64_t ticket = 0;  // the server's handle for the request this belongs to
  // The log's ticket the answer waits for (0: none), and whether the log
  // lost it instead of making it durable (set by the shard).
  std::uint64_t durable_ticket = 0;
  bool durable_lost = false;
};

// A task whose answer is rows of a view (VIEW_GET's, VIEW_TOP's, an
// aggregate alarm's).
struct ViewRowsTask : QueryTask {
  int view = -1;
  std::vector<ViewRow> rows;
};

// A PUBLISH batch: NDJSON with kPadding readable bytes past payload_len,
// ingested by the shard its producer maps to like lines of any input.
struct PublishTask final : QueryTask {
  bool run(Shard& shard) override;  // shard_queries.cpp
  bool ingests() const noexcept override { return true; }

  std::vector<char> payload;
  std::size_t payload_len = 0;
  std::uint64_t producer = 0;  // the PUBLISH producer id: one input of the shard's event time
  std::uint64_t sequence = 0;  // its batch sequence: the position of these lines
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  const char* durability = "none";  // the promise kept (storage::durability_name, or "none" without a log)
  bool disk_full = false;           // not taken: the disk is above its high-water mark
  bool cannot_store = false;        // not taken: the log cannot create or write a segment
  // The publish is applied everywhere once each ring has popped this many batches.
  std::vector<std::pair<const SpscRing<RouteBatch>*, std::uint64_t>> waits;
};

}  // namespace spate::engine
