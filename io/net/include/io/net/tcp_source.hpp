// NDJSON over TCP: a listening socket (SO_REUSEPORT, one per shard) and the
// connections this shard reads. Each connection is an input; whole lines go
// to the sink from the receive buffer they landed in.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "io/file/line_buffer.hpp"
#include "io/file/poller.hpp"
#include "io/file/source.hpp"

namespace spate::io {

class TcpSource final : public Source {
 public:
  // Takes the listening descriptor. hand_off(fd, may_move) is told of every
  // accepted connection; it may give it to another shard (true) instead of
  // keeping it here, unless may_move is false (a stop in progress).
  TcpSource(int listen_fd, Poller& poller, std::size_t max_line_bytes, std::size_t padding,
            std::function<bool(int, bool)> hand_off);
  ~TcpSource() override;

  SourceKind kind() const noexcept override { return SourceKind::tcp; }
  bool poll(LineSink& sink, std::size_t budget) override;
  void ready(std::uint64_t token, LineSink& sink) override;
  void drain(LineSink& sink, std::int64_t deadline_ms) override;

  // A connection accepted elsewhere and handed to this shard.
  void adopt(int fd, LineSink& sink);
  // Stop, step one: accept what the kernel completed, here, and close the listener.
  void stop_accepting(LineSink& sink);

 private:
  struct Connection {
    int fd = -1;
    std::uint32_t input = 0;
    LineBuffer buffer;
    Connection(std::size_t max_line_bytes, std::size_t padding);
  };
  enum class ReadResult { data, would_block, closed };
  void accept_all(LineSink& sink, bool allow_hand_off);
  ReadResult read(Connection& c, LineSink& sink);
  void close(Connection& c, LineSink& sink);

  int listen_fd_;
  Poller& poller_;
  std::size_t max_line_bytes_;
  std::size_t padding_;
  std::function<bool(int, bool)> hand_off_;
  std::vector<std::unique_ptr<Connection>> connections_;  // by descriptor
};

}  // namespace spate::io
