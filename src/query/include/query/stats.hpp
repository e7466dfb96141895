// STATS: every shard's counters as the protocol names them (docs/protocol.md, 8.3).
#pragma once

#include "client/protocol.hpp"
#include "engine/engine.hpp"

namespace spate::query {

struct ServerCounters;

// Writes one SHARD (nested) per shard, in shard id order; the query
// server's own counters go in shard 0's.
void write_stats(const engine::Engine& engine, const ServerCounters& server, FieldWriter& w);

}  // namespace spate::query
