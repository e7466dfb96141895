// type = "dpdk": a NIC port through DPDK, one RX queue per shard (a device
// with fewer queues feeds fewer shards). docs/captures.md.
#include <algorithm>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/source_kind.hpp"
#include "io/net/dpdk_source.hpp"
#include "sources/capture_figures.hpp"

namespace spate::engine {

extern const SourceKind kDpdkSource;

namespace {

io::DpdkOptions read(SourceSettings& s) {
  io::DpdkOptions o;
  s.strings("eal_args", o.eal_args);
  s.integer("dpdk_port", o.port, 0, 65535);
  s.integer("port", o.udp_port, 0, 65535);
  s.integer("rx_descriptors", o.rx_descriptors, 64, 32768);
  s.integer("mbufs", o.mbufs, 0, 16777216);
  s.boolean("verify_checksums", o.verify_checksums);
  const auto dpdk = [](const SourceConfig& c) { return c.type == "dpdk"; };
  const auto& sources = s.config().sources;
  if (&*std::find_if(sources.begin(), sources.end(), dpdk) != &s.source()) {
    s.error("one dpdk source at most (the EAL is set up once)");
  }
  return o;
}

// The port, which its queues' sources use until they go.
struct DpdkGroup final : SourceGroup {
  std::unique_ptr<io::DpdkPort> port;
  void stats(const StatEmit& emit) const override {
    const io::DpdkPortCounters& c = port->counters();
    emit("port_rx", c.rx.load(std::memory_order_relaxed), false);
    emit("port_missed", c.missed.load(std::memory_order_relaxed), false);
    emit("port_errors", c.errors.load(std::memory_order_relaxed), false);
    emit("port_no_mbuf", c.no_mbuf.load(std::memory_order_relaxed), false);
  }
};

StartedSource start(const SourceConfig& config, std::uint32_t, Engine& engine) {
  SourceSettings s(config, engine.config());
  io::DpdkOptions o = read(s);
  const std::uint16_t id = o.port;
  auto group = std::make_unique<DpdkGroup>();
  group->port = std::make_unique<io::DpdkPort>(std::move(o), engine.shard_count());
  for (std::uint32_t q = 0; q < group->port->queues(); ++q) {
    engine.shard(q).add_source(kDpdkSource,
                               std::make_unique<io::DpdkSource>(*group->port, static_cast<std::uint16_t>(q), kPadding));
  }
  return {&kDpdkSource, fmt::format("port{}", id), 0, std::move(group)};
}

void stats(const io::SourceTotals& t, const StatEmit& emit) {
  frame_stats<io::DpdkFigure>(t, emit);  // this shard's queue
  emit("padding_copies", t[io::DpdkFigure::padding_copies], false);
}

}  // namespace

extern const SourceKind kDpdkSource{"dpdk", [](SourceSettings& s) { read(s); }, start, stats};

}  // namespace spate::engine
