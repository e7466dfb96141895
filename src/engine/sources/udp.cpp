// type = "udp": NDJSON datagrams. Every shard binds the port (SO_REUSEPORT)
// and its socket is one input. docs/configuration.md.
#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/source_kind.hpp"
#include "io/net/socket.hpp"
#include "io/net/udp_source.hpp"

namespace spate::engine {

extern const SourceKind kUdpSource;

namespace {

constexpr int kUdpReceiveBufferBytes = 8 << 20;

Endpoint read(SourceSettings& s) {
  Endpoint listen;
  if (!s.endpoint("listen", listen) && s.source().find("listen") == nullptr) {
    s.error("udp source needs listen = \"HOST:PORT\"");
  }
  return listen;
}

StartedSource start(const SourceConfig& config, std::uint32_t, Engine& engine) {
  SourceSettings s(config, engine.config());
  const Endpoint listen = read(s);
  std::uint16_t port = listen.port;
  for (std::uint32_t i = 0; i < engine.shard_count(); ++i) {
    Shard& shard = engine.shard(i);
    const int fd = io::bind_udp(listen.host, port, true, kUdpReceiveBufferBytes);
    if (port == 0) port = io::local_port(fd);  // the other shards join the same port
    shard.add_source(kUdpSource, std::make_unique<io::UdpSource>(fd, shard.poller(), kPadding));
  }
  return {&kUdpSource, fmt::format("{}:{}", listen.host, port), port, nullptr};
}

void stats(const io::SourceTotals& t, const StatEmit& emit) {
  emit("drops", t[io::UdpFigure::drops], false);
  emit("waiting_bytes", t.waiting_bytes, true);  // the socket's queued datagrams, as the kernel accounts them
}

}  // namespace

extern const SourceKind kUdpSource{"udp", [](SourceSettings& s) { read(s); }, start, stats};

}  // namespace spate::engine
