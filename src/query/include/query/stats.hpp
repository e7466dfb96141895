// STATS: every shard's counters as the protocol names them (docs/protocol.md, 8.3).
#pragma once

#include "client/protocol.hpp"
#include "engine/engine.hpp"

namespace spate::query {

// Writes one SHARD (nested) per shard, in shard id order.
void write_stats(const engine::Engine& engine, FieldWriter& w);

}  // namespace spate::query
