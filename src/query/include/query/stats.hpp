// STATS: every shard's counters as the protocol names them (docs/protocol.md, 8.3).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "protocol/protocol.hpp"
#include "engine/engine.hpp"
#include "kernels/log_histogram.hpp"

namespace spate::query {

struct ServerCounters;

// Writes one SHARD (nested) per shard, in shard id order; the query
// server's own counters go in shard 0's.
void write_stats(const engine::Engine& engine, const ServerCounters& server, FieldWriter& w);

// Every figure of every shard, in STATS order: (shard, name, value, kind),
// then the shard's latency histograms (microseconds). The metrics endpoint
// renders the same figures (metrics_server.cpp). Any thread.
using StatsVisitor =
    std::function<void(std::uint32_t shard, std::string_view name, std::uint64_t value, StatKind kind)>;
using HistogramVisitor =
    std::function<void(std::uint32_t shard, std::string_view name, const kernels::HistogramCounts& counts)>;
void visit_stats(const engine::Engine& engine, const ServerCounters& server, const StatsVisitor& visit,
                 const HistogramVisitor& histogram = {});

}  // namespace spate::query
