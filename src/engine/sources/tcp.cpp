// type = "tcp": NDJSON over TCP. Every shard listens on the port
// (SO_REUSEPORT); each accepted connection is an input, handed to the shard
// with the fewest (Shard::connection_hand_off). docs/configuration.md.
#include <atomic>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/source_kind.hpp"
#include "io/net/socket.hpp"
#include "io/net/tcp_source.hpp"

namespace spate::engine {

extern const SourceKind kTcpSource;

namespace {

struct TcpSettings {
  Endpoint listen;
  std::uint32_t max_connections = 10000;  // more are accepted and closed at once
  std::int64_t max_idle_ms = 600000;      // a connection silent this long is closed (0: never)
};

TcpSettings read(SourceSettings& s) {
  TcpSettings t;
  if (!s.endpoint("listen", t.listen) && s.source().find("listen") == nullptr) {
    s.error("tcp source needs listen = \"HOST:PORT\"");
  }
  s.integer("max_connections", t.max_connections, 1, 1000000);
  s.integer("max_idle_ms", t.max_idle_ms, 0, std::int64_t{7} * 86400000);
  return t;
}

// The listener's connections over all shards, which max_connections bounds.
struct TcpGroup final : SourceGroup {
  std::atomic<std::uint32_t> open{0};
};

StartedSource start(const SourceConfig& config, std::uint32_t index, Engine& engine) {
  SourceSettings s(config, engine.config());
  const TcpSettings t = read(s);
  auto group = std::make_unique<TcpGroup>();
  std::uint16_t port = t.listen.port;
  for (std::uint32_t i = 0; i < engine.shard_count(); ++i) {
    Shard& shard = engine.shard(i);
    const int fd = io::listen_tcp(t.listen.host, port, true);
    if (port == 0) port = io::local_port(fd);  // the other shards join the same port
    shard.add_listener(kTcpSource, index,
                       std::make_unique<io::TcpSource>(fd, shard.poller(), shard.connection_arena(),
                                                       engine.config().max_line_bytes,
                                                       io::TcpLimits{t.max_connections, t.max_idle_ms, &group->open},
                                                       shard.connection_hand_off(index)));
  }
  return {&kTcpSource, fmt::format("{}:{}", t.listen.host, port), port, std::move(group)};
}

void stats(const io::SourceTotals& t, const StatEmit& emit) {
  using F = io::TcpFigure;
  emit("connections", t[F::connections], true);
  emit("connections_refused", t[F::refused], false);
  emit("idle_closed", t[F::idle_closed], false);
  emit("accept_pauses", t[F::accept_pauses], false);
  // Lag: what waits for the shard in the kernel.
  emit("waiting_bytes", t.waiting_bytes, true);
  emit("accept_queue", t[F::accept_queue], true);
}

}  // namespace

extern const SourceKind kTcpSource{"tcp", [](SourceSettings& s) { read(s); }, start, stats};

}  // namespace spate::engine
