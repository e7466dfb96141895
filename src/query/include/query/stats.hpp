// STATS: every shard's counters as the protocol names them (docs/protocol.md, 8.3).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "client/protocol.hpp"
#include "engine/engine.hpp"

namespace spate::query {

struct ServerCounters;

// Writes one SHARD (nested) per shard, in shard id order; the query
// server's own counters go in shard 0's.
void write_stats(const engine::Engine& engine, const ServerCounters& server, FieldWriter& w);

// Every counter of every shard, in STATS order: (shard, name, value). The
// metrics endpoint renders the same figures (prometheus.hpp). Any thread.
using StatsVisitor = std::function<void(std::uint32_t shard, std::string_view name, std::uint64_t value)>;
void visit_stats(const engine::Engine& engine, const ServerCounters& server, const StatsVisitor& visit);

}  // namespace spate::query
