// The Prometheus endpoint (docs/metrics.md): GET /metrics renders every
// STATS figure in Prometheus's text format (names with units and _total,
// labels for shard, source, reason and view), /healthz says the process
// answers, /readyz that the segments are replayed and the query port
// listens. Served by a small HTTP/1.1 server on one epoll thread of its own,
// off the hot path: a scrape reads the shards' counters (relaxed atomics)
// and nothing else, and no client can hold the thread (limits below).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "config/config.hpp"
#include "engine/engine.hpp"
#include "query/http_head.hpp"

namespace spate::query {

struct ServerCounters;

// What the endpoint did to its clients, in STATS under metrics.* (shard 0's
// block). Written by the endpoint's thread, read by STATS and scrapes.
struct MetricsCounters {
  std::atomic<std::uint64_t> connections{0};          // gauge
  std::atomic<std::uint64_t> requests{0};             // answered, any status
  std::atomic<std::uint64_t> connections_refused{0};  // closed at once: max_connections, all being answered
  std::atomic<std::uint64_t> connections_evicted{0};  // closed to make room for a new one at max_connections
  std::atomic<std::uint64_t> request_timeouts{0};     // a head not whole within request_timeout_ms
  std::atomic<std::uint64_t> send_timeouts{0};        // an answer not taken within request_timeout_ms
  std::atomic<std::uint64_t> idle_closed{0};          // kept alive idle for idle_timeout_ms
  std::atomic<std::uint64_t> oversized_requests{0};   // 431: a head over max_request_bytes
  std::atomic<std::uint64_t> bad_requests{0};         // 400: a malformed head
  std::atomic<std::uint64_t> accept_pauses{0};        // the listener rested, out of descriptors
};

// The text of a scrape.
std::string render_prometheus(const engine::Engine& engine, const ServerCounters& server);

class MetricsServer {
 public:
  // Binds config.listen (throws std::runtime_error when it cannot) and
  // serves; `counters` must outlive the server.
  MetricsServer(const engine::Engine& engine, const ServerCounters& server, MetricsCounters& counters,
                const engine::MetricsConfig& config);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  std::uint16_t port() const noexcept { return port_; }

 private:
  struct Connection;
  void run();
  void accept_all(std::int64_t now_ms);
  bool make_room();
  void on_readable(Connection& c, std::int64_t now_ms);
  void serve_buffered(Connection& c, std::int64_t now_ms);
  void answer(Connection& c, const HttpHead* head, int status, std::string_view why, std::int64_t now_ms);
  void flush(Connection& c, std::int64_t now_ms);
  void sweep(std::int64_t now_ms);
  void set_interest(Connection& c, std::uint32_t events);
  void close_connection(Connection& c);

  const engine::Engine& engine_;
  const ServerCounters& server_;
  MetricsCounters& counters_;
  engine::MetricsConfig config_;
  std::string keep_alive_header_;  // "Keep-Alive: timeout=S\r\n"
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool listening_ = true;           // the listener is polled (false while out of descriptors)
  std::int64_t accept_paused_until_ms_ = 0;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;  // by id
  std::uint64_t next_id_ = 1;
  std::string scratch_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace spate::query
