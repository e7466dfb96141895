// The Prometheus endpoint (docs/metrics.md): GET /metrics renders every
// STATS figure in Prometheus's text format (names with units and _total,
// labels for shard, source, reason and view), /healthz says the process
// answers, /readyz that the segments are replayed and the query port
// listens. Served by cpp-httplib on a thread of its own, off the hot path:
// a scrape reads the shards' counters (relaxed atomics) and nothing else.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "engine/engine.hpp"

namespace httplib {
class Server;
}

namespace spate::query {

struct ServerCounters;

// The text of a scrape.
std::string render_prometheus(const engine::Engine& engine, const ServerCounters& server);

class MetricsServer {
 public:
  // Binds `listen` (throws std::runtime_error when it cannot) and serves.
  MetricsServer(const engine::Engine& engine, const ServerCounters& server, const engine::Endpoint& listen);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  std::uint16_t port() const noexcept { return port_; }

 private:
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace spate::query
