// The query server: one thread that speaks protocol v1 (docs/protocol.md) on
// its own epoll loop and hands view lookups and PUBLISH batches to the
// shards that own them over SPSC rings; shards answer on their own rings.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "engine/engine.hpp"
#include "protocol/protocol.hpp"
#include "query/alarms.hpp"
#include "query/metrics_server.hpp"
#include "query/publish_dedup.hpp"

namespace spate::query {

struct QueryOp;

// What the server did to its clients, in STATS under query.* (shard 0's
// block, so that sums over shards stay right). Kept by the server thread,
// which also answers STATS.
// Written by the server's thread, read by STATS and the metrics endpoint.
struct ServerCounters {
  std::atomic<std::uint64_t> connections{0};  // gauge
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> frame_timeouts{0};
  std::atomic<std::uint64_t> slow_clients_closed{0};
  std::atomic<std::uint64_t> accept_pauses{0};
  std::atomic<std::uint64_t> auth_failures{0};
  AlarmBoard alarms;  // the data-quality alarms' state (alarms.hpp)
  MetricsCounters metrics;  // the metrics endpoint's, written by its thread (metrics_server.hpp)
};

// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& host);

class QueryServer {
 public:
  // Throws when the listener needs a token it cannot have (off loopback
  // without auth_token_file, or an unreadable or empty token file).
  QueryServer(engine::Engine& engine, const engine::QueryConfig& config);
  ~QueryServer();
  QueryServer(const QueryServer&) = delete;
  QueryServer& operator=(const QueryServer&) = delete;

  void start();  // binds (throws on failure) and starts the thread
  void stop();   // stops accepting and answering, joins
  std::uint16_t port() const noexcept { return port_; }
  // New alarm definitions (SIGHUP), taken up by the server's thread; any thread.
  void reload_alarms(std::vector<engine::AlarmConfig> alarms);
  const ServerCounters& counters() const noexcept { return counters_; }
  // The metrics endpoint's counters, kept here so that STATS can read them
  // for as long as the server answers (MetricsServer writes them).
  MetricsCounters& metrics_counters() noexcept { return counters_.metrics; }

  // For the query operations (query_op.hpp). A connection, and a request
  // that waits for its shards' answers:
  struct Connection {
    int fd = -1;
    std::uint64_t id = 0;
    bool hello_done = false;
    bool closing = false;   // stop answering; shut down writing once wbuf is flushed
    bool draining = false;  // write side shut: discard input until the client closes
    bool reading = true;
    bool want_write = false;
    bool stalled = false;  // a PUBLISH waits for room in its shard's queue
    std::uint32_t inflight = 0;
    std::int64_t accepted_ms = 0;
    std::int64_t partial_since_ms = 0;  // when rbuf last began to hold a partial frame; 0: it holds none
    std::int64_t draining_since_ms = 0;
    std::string rbuf;  // only what a read left over: a partial (or stalled) frame
    std::string wbuf;
  };

  // A request waiting for its shards' answers: what every operation's
  // request has. Each operation keeps its own state in a type derived from
  // it (ViewRowsPending, PublishPending: query_op.hpp).
  struct Pending {
    virtual ~Pending() = default;
    int fd = -1;  // -1: the server's own request (an alarm's sample), no connection
    std::uint64_t connection_id = 0;
    std::uint32_t request_id = 0;
    Op op{};
    const QueryOp* handler = nullptr;  // its operation
    std::uint32_t remaining = 0;  // shard tasks still out
    bool overloaded = false;      // a shard could not be asked: the answer is OVERLOADED
  };

  engine::Engine& engine() noexcept { return engine_; }
  void send(Connection& c, const std::string& frame);
  void reply_error(Connection& c, Op op, std::uint32_t request_id, Status status, std::string_view message);
  std::uint64_t next_ticket() noexcept { return next_ticket_++; }
  // Whether the shard's request ring has room; submit() hands it the task
  // (false, the task kept, when it is full).
  bool has_capacity(std::uint32_t shard) const noexcept;
  bool submit(std::uint32_t shard, std::unique_ptr<engine::QueryTask>& task);
  template <typename Task>
  bool submit(std::uint32_t shard, std::unique_ptr<Task>& task) {
    std::unique_ptr<engine::QueryTask> any(task.release());
    const bool taken = submit(shard, any);
    task.reset(static_cast<Task*>(any.release()));  // back when not taken
    return taken;
  }
  // A request of c handled by op (its state a P), and its wait for the
  // tasks under ticket.
  template <typename P = Pending>
  std::unique_ptr<P> pending_for(const Connection& c, const FrameHeader& h, const QueryOp& op) const {
    auto pending = std::make_unique<P>();
    pending->fd = c.fd;
    pending->connection_id = c.id;
    pending->request_id = h.request_id;
    pending->op = h.op;
    pending->handler = &op;
    return pending;
  }
  void add_pending(Connection& c, std::uint64_t ticket, std::unique_ptr<Pending> pending);
  // A request whose shards have all answered but that is not whole yet
  // (a PUBLISH until the rows it routed are applied): its operation's
  // settled() is asked every loop pass until it says so, then it finishes.
  void wait_until_settled(std::uint64_t ticket) { unsettled_.push_back(ticket); }
  // An aggregate alarm's sample (the server's own VIEW_GET) came back.
  void alarm_sampled(std::size_t alarm, std::uint64_t generation, const std::vector<engine::ViewRow>& rows);
  PublishDedup& publish_dedup() noexcept { return dedup_; }

 private:
  void run();
  void accept_all();
  void pause_accepting(std::int64_t now_ms);
  void sweep_timeouts(std::int64_t now_ms);
  bool token_matches(std::string_view token) const noexcept;
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  bool handle_frame(Connection& c, const FrameHeader& h, std::string_view body);
  void handle_hello(Connection& c, const FrameHeader& h, std::string_view body);
  void collect_responses();
  void check_unsettled();
  void finish(Pending& p);
  // Every second: evaluates the alarms and asks for the aggregate alarms' windows.
  void evaluate_alarms(std::int64_t now_ms);
  void close_connection(Connection& c);
  void update_interest(Connection& c);
  bool can_read(const Connection& c) const noexcept;
  void resume_reading();

  engine::Engine& engine_;
  engine::QueryConfig config_;
  std::string auth_token_;  // empty: no token asked
  ServerCounters counters_;
  std::string scratch_;     // every connection reads into this, one at a time
  std::int64_t accept_paused_until_ms_ = 0;
  std::int64_t next_timeout_sweep_ms_ = 0;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int notify_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
  std::uint64_t next_connection_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Pending>> pending_;
  std::vector<std::uint64_t> unsettled_;  // tickets whose shards answered (wait_until_settled)
  std::uint64_t next_ticket_ = 1;
  std::vector<std::uint32_t> inflight_per_shard_;
  PublishDedup dedup_;
  Alarms alarms_;
  std::int64_t next_alarms_ms_ = 0;
  std::vector<std::uint8_t> alarm_asked_;  // by alarm: a VIEW_GET is out
  std::mutex reload_mu_;
  std::optional<std::vector<engine::AlarmConfig>> reload_;  // under reload_mu_
  std::int64_t next_dedup_sweep_ms_ = 0;
};

}  // namespace spate::query
