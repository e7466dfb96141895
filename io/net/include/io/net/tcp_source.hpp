// NDJSON over TCP: a listening socket (SO_REUSEPORT, one per shard) and the
// connections this shard reads. Each connection is an input; whole lines go
// to the sink from the receive buffer they landed in.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "io/file/line_buffer.hpp"
#include "io/file/poller.hpp"
#include "io/file/source.hpp"

namespace spate::io {

// A TCP source's own counters (SourceCounters::own).
enum class TcpFigure : std::uint8_t {
  connections,    // gauge: connections open now
  refused,        // connections closed at once, over max_connections
  idle_closed,    // connections closed after max_idle_ms silent
  accept_pauses,  // times the listener rested, out of descriptors
  accept_queue,   // gauge: connections the kernel completed that wait to be accepted, every second
};

// One listener's limits, shared by its sockets on every shard.
struct TcpLimits {
  std::uint32_t max_connections = 10000;  // beyond: accepted and closed at once, counted
  std::int64_t max_idle_ms = 600000;      // a connection silent this long is closed, counted
  std::atomic<std::uint32_t>* open = nullptr;  // the listener's connections, over all shards
};

class TcpSource final : public Source {
 public:
  // Takes the listening descriptor (or -1: a source only for connections
  // handed over from other shards' listeners). Connections read through
  // `arena`, one at a time. hand_off(fd, may_move) is told of every
  // accepted connection; it may give it to another shard (true) instead of
  // keeping it here, unless may_move is false (a stop in progress).
  TcpSource(int listen_fd, Poller& poller, ReadArena& arena, std::size_t max_line_bytes, TcpLimits limits,
            std::function<bool(int, bool)> hand_off);
  ~TcpSource() override;

  // Housekeeping on the loop's pass: closes idle connections (once a
  // second) and listens again after running out of descriptors.
  bool poll(LineSink& sink, std::size_t budget) override;
  void ready(std::uint64_t token, LineSink& sink) override;
  void drain(LineSink& sink, std::int64_t deadline_ms) override;
  void measure_backlog() override;  // SIOCINQ of every connection, the listener's accept queue

  // A connection accepted elsewhere (for this listener) and handed over.
  void adopt(int fd, LineSink& sink) override;
  // Stop, step one: accept what the kernel completed, here, and close the listener.
  void stop_accepting(LineSink& sink) override;

 private:
  struct Connection {
    int fd = -1;
    std::uint32_t input = 0;
    std::int64_t last_read_ms = 0;
    LineBuffer buffer;
    Connection(ReadArena& arena, std::size_t max_line_bytes) : buffer(arena, max_line_bytes) {}
  };
  enum class ReadResult { data, would_block, closed };
  void accept_all(LineSink& sink, bool allow_hand_off);
  void pause_accepting(std::int64_t now_ms);
  ReadResult read(Connection& c, LineSink& sink);
  void close(Connection& c, LineSink& sink);

  int listen_fd_;
  Poller& poller_;
  ReadArena& arena_;
  std::size_t max_line_bytes_;
  TcpLimits limits_;
  std::function<bool(int, bool)> hand_off_;
  std::vector<std::unique_ptr<Connection>> connections_;  // by descriptor
  std::int64_t accept_paused_until_ms_ = 0;  // out of descriptors: not polling the listener until then
  std::int64_t next_idle_sweep_ms_ = 0;
};

}  // namespace spate::io
