// A unit of query work handed from the query server to a shard over an
// SpscRing, filled in by the shard and handed back.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/route_batch.hpp"
#include "engine/spsc_ring.hpp"
#include "engine/view.hpp"

namespace spate::engine {

struct QueryTask {
  enum class Kind : std::uint8_t { view_get, view_top, publish };
  Kind kind = Kind::view_get;
  std::uint64_t ticket = 0;  // the server's handle for the request this belongs to

  // view_get / view_top
  int view = -1;
  std::string key;
  std::uint64_t hash = 0;
  std::int64_t from_ms = INT64_MIN;
  std::int64_t to_ms = INT64_MAX;
  std::int64_t window_start = 0;
  std::uint32_t k = 10;
  int by = 0;
  std::vector<ViewRow> rows;
  std::uint32_t next_key = 0;  // view_top: where the next slice starts

  // publish: NDJSON with kPadding readable bytes past payload_len
  std::vector<char> payload;
  std::size_t payload_len = 0;
  std::uint64_t producer = 0;  // the PUBLISH producer id: one input of the shard's event time
  std::uint64_t sequence = 0;  // its batch sequence: the position of these lines
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  // The log's ticket the answer waits for (0: none), the promise it then
  // keeps (storage::durability_name, or "none" without a log), and why the
  // batch was not taken, if it was not.
  std::uint64_t durable_ticket = 0;
  const char* durability = "none";
  enum class Refusal : std::uint8_t { none, storage_failed, disk_full };
  Refusal refusal = Refusal::none;
  // The publish is applied everywhere once each ring has popped this many batches.
  std::vector<std::pair<const SpscRing<RouteBatch>*, std::uint64_t>> waits;
};

}  // namespace spate::engine
