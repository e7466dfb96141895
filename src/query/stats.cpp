// STATS counters; see stats.hpp and docs/protocol.md.
#include "query/stats.hpp"

#include "query/query_server.hpp"

#include "io/file/log.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <utility>

#include <jemalloc/jemalloc.h>

namespace spate::query {
namespace {

// jemalloc's figures for the whole process (refreshed by bumping its epoch).
std::pair<std::uint64_t, std::uint64_t> allocated_and_resident() {
  std::uint64_t epoch = 1;
  std::size_t len = sizeof(epoch);
  mallctl("epoch", &epoch, &len, &epoch, len);
  std::size_t allocated = 0, resident = 0;
  len = sizeof(std::size_t);
  if (mallctl("stats.allocated", &allocated, &len, nullptr, 0) != 0) allocated = 0;
  len = sizeof(std::size_t);
  if (mallctl("stats.resident", &resident, &len, nullptr, 0) != 0) resident = 0;
  return {allocated, resident};
}

// The kernel's UDP drop counters for the whole host (/proc/net/snmp):
// datagrams dropped for want of room in a socket's buffer, and all input
// errors (those and bad checksums). Zeros when unreadable.
std::pair<std::uint64_t, std::uint64_t> udp_host_drops() {
  std::ifstream in("/proc/net/snmp");
  std::string header, values;
  while (std::getline(in, header) && std::getline(in, values)) {
    if (!header.starts_with("Udp:") || !values.starts_with("Udp:")) continue;
    std::istringstream names(header), numbers(values);
    std::string name, number;
    std::uint64_t rcvbuf = 0, in_errors = 0;
    while (names >> name && numbers >> number) {
      if (name == "RcvbufErrors") rcvbuf = std::strtoull(number.c_str(), nullptr, 10);
      if (name == "InErrors") in_errors = std::strtoull(number.c_str(), nullptr, 10);
    }
    return {rcvbuf, in_errors};
  }
  return {0, 0};
}

}  // namespace

void write_stats(const engine::Engine& engine, const ServerCounters& server, FieldWriter& w) {
  std::uint32_t current = UINT32_MAX;
  std::size_t shard_mark = 0;
  const auto enter = [&](std::uint32_t shard) {
    if (shard == current) return;
    if (current != UINT32_MAX) w.end_nested(shard_mark);
    shard_mark = w.begin_nested(Tag::shard);
    w.u64(Tag::shard_id, shard);
    current = shard;
  };
  visit_stats(
      engine, server,
      [&](std::uint32_t shard, std::string_view name, std::uint64_t value, StatKind kind) {
        enter(shard);
        const auto m = w.begin_nested(Tag::counter);
        w.bytes(Tag::name, name);
        w.u64(Tag::value_u64, value);
        if (kind != StatKind::counter) w.u64(Tag::kind, static_cast<std::uint64_t>(kind));
        w.end_nested(m);
      },
      [&](std::uint32_t shard, std::string_view name, const kernels::HistogramCounts& h) {
        enter(shard);
        const auto m = w.begin_nested(Tag::histogram);
        w.bytes(Tag::name, name);
        w.f64(Tag::value_f64, h.sum);
        for (std::size_t b = 0; b < kernels::kHistogramBuckets; ++b) {  // the buckets that hold values
          if (h.counts[b] == 0) continue;
          const auto bucket = w.begin_nested(Tag::bucket);
          w.u64(Tag::bound, kernels::histogram_upper(b));
          w.u64(Tag::value_u64, h.counts[b]);
          w.end_nested(bucket);
        }
        w.end_nested(m);
      });
  if (current != UINT32_MAX) w.end_nested(shard_mark);
}

void visit_stats(const engine::Engine& engine, const ServerCounters& server, const StatsVisitor& visit,
                 const HistogramVisitor& histogram) {
  const auto& config = engine.config();
  const auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
    const engine::Shard& shard = engine.shard(s);
    const engine::ShardCounters& k = shard.counters();
    const auto counter = [&](std::string_view name, std::uint64_t value) { visit(s, name, value, StatKind::counter); };
    const auto gauge = [&](std::string_view name, std::uint64_t value) { visit(s, name, value, StatKind::gauge); };
    const auto kinds = engine::source_kinds();
    io::SourceTotals by_kind[engine::kMaxSourceKinds];
    std::uint64_t bytes = 0, late = 0;
    for (std::size_t src = 0; src < kinds.size(); ++src) {
      by_kind[src] = shard.source_totals(static_cast<io::SourceKindId>(src));
      bytes += by_kind[src].bytes_in;
    }
    for (std::size_t v = 0; v < config.views.size(); ++v) late += load(k.late[v]);
    counter("events_in", k.events());
    counter("bytes_in", bytes);
    counter("errors", shard.rejected());
    for (std::size_t r = 1; r < engine::kRejectReasons; ++r) {  // by reason, over every source kind
      const auto reason = static_cast<engine::Reject>(r);
      std::uint64_t n = 0;
      for (std::size_t src = 0; src < kinds.size(); ++src) n += shard.rejected(static_cast<io::SourceKindId>(src), reason);
      counter(std::string("errors.") + engine::reject_name(reason), n);
    }
    counter("late_events", late);
    counter("events_ahead_of_clock", load(k.events_ahead_of_clock));
    counter("routed_out", load(k.routed_out));
    counter("routed_in", load(k.routed_in));
    counter("rows_handled", load(k.rows_handled));
    counter("rows_applied", load(k.rows_handled) - load(k.rows_dropped));
    gauge("ring_depth", engine.mesh().depth_into(s));
    counter("ring_full_waits", load(k.ring_full_waits));
    gauge("publish.producers", load(k.publish_producers));
    counter("publish.producers_expired", load(k.publish_producers_expired));
    gauge("keys", load(k.keys));
    gauge("windows", load(k.windows));
    const std::int64_t wm = k.watermark_ms.load(std::memory_order_relaxed);
    gauge("watermark_ms", wm == INT64_MIN ? 0 : static_cast<std::uint64_t>(wm));
    gauge("active", shard.active() ? 1 : 0);
    gauge("inputs_open", load(k.inputs_open));
    gauge("inputs_active", load(k.inputs_active));
    gauge("requests_waiting", shard.requests().depth());  // what waits for the shard in its request queue
    // Each kind's own figures ("tcp.connections"), and on shard 0 those of
    // each source as a whole (a NIC port's).
    const auto figures_of = [&](const engine::SourceKind& kind) -> engine::StatEmit {
      return [&visit, s, prefix = std::string(kind.name) + "."](std::string_view name, std::uint64_t value, bool is_gauge) {
        visit(s, prefix + std::string(name), value, is_gauge ? StatKind::gauge : StatKind::counter);
      };
    };
    for (std::size_t src = 0; src < kinds.size(); ++src) {
      if (kinds[src]->stats != nullptr) kinds[src]->stats(by_kind[src], figures_of(*kinds[src]));
    }
    for (const engine::StartedSource& source : s == 0 ? engine.sources() : std::span<const engine::StartedSource>{}) {
      if (source.group) source.group->stats(figures_of(*source.kind));
    }
    if (s == 0) {  // the sources of each kind the daemon started ("tcp.sources"), once
      for (const engine::SourceKind* kind : kinds) {
        const auto started = std::count_if(engine.sources().begin(), engine.sources().end(),
                                           [&](const engine::StartedSource& source) { return source.kind == kind; });
        gauge(std::string(kind->name) + ".sources", static_cast<std::uint64_t>(started));
      }
    }
    for (std::size_t v = 0; v < config.views.size(); ++v) counter("late." + config.views[v].name, load(k.late[v]));
    for (std::size_t v = 0; v < config.views.size(); ++v) {
      counter("key_limit." + config.views[v].name, load(k.key_limit[v]));
    }
    for (std::size_t v = 0; v < config.views.size(); ++v) {
      gauge("keys." + config.views[v].name, load(k.view_keys[v]));
      gauge("windows." + config.views[v].name, load(k.view_windows[v]));
      gauge("state_bytes." + config.views[v].name, load(k.view_bytes[v]));
    }
    gauge("state_bytes", load(k.state_bytes));
    if (shard.dedups()) {  // docs/engine.md, "Dedup by event id"
      counter("dedup.duplicates", shard.duplicates());
      counter("dedup.beyond_horizon", shard.beyond_horizon());
      counter("dedup.evicted", load(k.dedup_evicted));
      counter("dedup.expired", load(k.dedup_expired));
      gauge("dedup.ids", load(k.dedup_ids));
      gauge("dedup.bytes", load(k.dedup_bytes));
      gauge("dedup.horizon_ms", static_cast<std::uint64_t>(config.dedup.effective_horizon_ms));
      gauge("dedup.horizon_covered_ms", load(k.dedup_horizon_covered_ms));
    }
    if (const storage::LogCounters* log = shard.log_counters()) {  // the hot log (docs/storage.md)
      counter("storage.events", load(log->events));
      counter("storage.field_bytes", load(log->field_bytes));
      counter("storage.bytes_written", load(log->bytes_written));
      counter("storage.blocks", load(log->blocks));
      counter("storage.segments", load(log->segments));
      counter("storage.syncs", load(log->syncs));
      counter("storage.sync_us", load(log->sync_us));
      counter("storage.write_errors", load(log->write_errors));
      counter("storage.blocks_lost", load(log->blocks_lost));
      counter("storage.queue_full_waits", load(log->queue_full_waits));
      gauge("storage.bytes_in_flight", load(log->bytes_in_flight));
      counter("storage.segments_expired", load(log->segments_expired));
      counter("storage.bytes_expired", load(log->bytes_expired));
      gauge("storage.disk_used_percent", load(log->disk_used_percent));
      gauge("storage.hot_segments", load(log->hot_segments));
      gauge("storage.hot_bytes", load(log->hot_bytes));
      gauge("storage.disk_full", load(log->disk_full));
      counter("storage.disk_full_events", load(log->disk_full_events));
      gauge("storage.cannot_store", load(log->cannot_store));
      gauge("checkpoint.epoch", load(k.checkpoint_written_epoch));  // docs/storage.md, "Checkpoints"
      counter("checkpoint.count", load(k.checkpoints));
      counter("checkpoint.failures", load(k.checkpoint_failures));
      gauge("checkpoint.bytes", load(k.checkpoint_bytes));
      gauge("checkpoint.align_us", load(k.checkpoint_align_us));
      gauge("checkpoint.snapshot_us", load(k.checkpoint_snapshot_us));
      gauge("checkpoint.duration_us", load(k.checkpoint_duration_us));
    }
    if (const storage::LogCounters* dead = shard.dead_letter_counters()) {
      counter("storage.dead_letters", load(dead->events));
      counter("storage.dead_letter_bytes", load(dead->bytes_written));
      counter("storage.dead_letters_dropped", shard.dead_letters_dropped());
    }
    for (std::size_t src = 0; src < kinds.size(); ++src) {
      const auto kind = static_cast<io::SourceKindId>(src);
      const std::string prefix(kinds[src]->name);
      counter(prefix + ".events_in", load(k.events_in[src]));
      counter(prefix + ".bytes_in", by_kind[src].bytes_in);
      counter(prefix + ".inputs", by_kind[src].inputs);
      for (std::size_t r = 1; r < engine::kRejectReasons; ++r) {
        const auto reason = static_cast<engine::Reject>(r);
        counter(prefix + ".errors." + engine::reject_name(reason), shard.rejected(kind, reason));
      }
    }
    if (s == 0) {
      gauge("query.connections", load(server.connections));
      counter("query.connections_refused", load(server.refused));
      counter("query.handshake_timeouts", load(server.handshake_timeouts));
      counter("query.frame_timeouts", load(server.frame_timeouts));
      counter("query.slow_clients_closed", load(server.slow_clients_closed));
      counter("query.accept_pauses", load(server.accept_pauses));
      counter("query.auth_failures", load(server.auth_failures));
      if (config.metrics.enabled) {  // the metrics endpoint (docs/metrics.md, "Limits")
        const MetricsCounters& m = server.metrics;
        gauge("metrics.connections", load(m.connections));
        counter("metrics.requests", load(m.requests));
        counter("metrics.connections_refused", load(m.connections_refused));
        counter("metrics.connections_evicted", load(m.connections_evicted));
        counter("metrics.request_timeouts", load(m.request_timeouts));
        counter("metrics.send_timeouts", load(m.send_timeouts));
        counter("metrics.idle_closed", load(m.idle_closed));
        counter("metrics.oversized_requests", load(m.oversized_requests));
        counter("metrics.bad_requests", load(m.bad_requests));
        counter("metrics.accept_pauses", load(m.accept_pauses));
      }
      const auto [allocated, resident] = allocated_and_resident();  // the process's, on shard 0
      gauge("memory.allocated_bytes", allocated);
      gauge("memory.resident_bytes", resident);
      const auto [rcvbuf, in_errors] = udp_host_drops();  // the host's
      counter("kernel.udp_rcvbuf_errors", rcvbuf);
      counter("kernel.udp_in_errors", in_errors);
      for (std::size_t l = 0; l < io::kLogLevels; ++l) {  // lines logged, by level (docs/operations.md)
        const auto level = static_cast<io::LogLevel>(l);
        counter(std::string("log.lines.") + io::log_level_name(level), io::log_lines(level));
      }
      for (const AlarmFigure& a : server.alarms.figures()) {  // docs/alarms.md
        gauge("alarm." + a.name + ".active", a.active ? 1 : 0);
        counter("alarm." + a.name + ".fired", a.fired);
      }
    }
    if (histogram) {
      kernels::HistogramCounts h;
      k.receive_to_applied.copy_to(h);
      histogram(s, "latency.receive_to_applied_us", h);
      k.event_to_queryable.copy_to(h);
      histogram(s, "latency.event_to_queryable_us", h);
      if (shard.log_counters() != nullptr && config.storage.durability != "none") {
        k.receive_to_durable.copy_to(h);
        histogram(s, "latency.receive_to_durable_us", h);
      }
    }
  }
}

}  // namespace spate::query
