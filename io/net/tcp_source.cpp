// TCP connections as inputs; see tcp_source.hpp.
#include "io/net/tcp_source.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace spate::io {
namespace {
constexpr std::size_t kReadBytes = 256 * 1024;
constexpr std::uint64_t kListenToken = 0;  // connections use fd + 1
}  // namespace

TcpSource::Connection::Connection(std::size_t max_line_bytes, std::size_t padding)
    : buffer(kReadBytes, max_line_bytes, padding) {}

TcpSource::TcpSource(int listen_fd, Poller& poller, std::size_t max_line_bytes, std::size_t padding,
                     std::function<bool(int, bool)> hand_off)
    : listen_fd_(listen_fd),
      poller_(poller),
      max_line_bytes_(max_line_bytes),
      padding_(padding),
      hand_off_(std::move(hand_off)) {
  poller_.add(listen_fd_, this, kListenToken);
}

TcpSource::~TcpSource() {
  for (auto& c : connections_) {
    if (c) ::close(c->fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool TcpSource::poll(LineSink&, std::size_t) { return false; }

void TcpSource::ready(std::uint64_t token, LineSink& sink) {
  if (token == kListenToken) {
    accept_all(sink, true);
    return;
  }
  const auto fd = static_cast<std::size_t>(token - 1);
  if (fd < connections_.size() && connections_[fd] && !paused()) read(*connections_[fd], sink);
}

void TcpSource::accept_all(LineSink& sink, bool allow_hand_off) {
  while (listen_fd_ >= 0) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error: try again on the next readiness
    if (hand_off_ && hand_off_(fd, allow_hand_off)) continue;
    adopt(fd, sink);
  }
}

void TcpSource::adopt(int fd, LineSink& sink) {
  auto c = std::make_unique<Connection>(max_line_bytes_, padding_);
  c->fd = fd;
  c->input = sink.open_input(SourceKind::tcp);
  SourceCounters::add(counters().inputs, 1);
  SourceCounters::add(counters().connections, 1);
  if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(static_cast<std::size_t>(fd) + 1);
  connections_[static_cast<std::size_t>(fd)] = std::move(c);
  poller_.add(fd, this, static_cast<std::uint64_t>(fd) + 1);
}

// Reads once (up to the buffer's free space) and hands on whole lines.
TcpSource::ReadResult TcpSource::read(Connection& c, LineSink& sink) {
  const ssize_t n = ::read(c.fd, c.buffer.write_ptr(), c.buffer.room());
  if (n > 0) {
    SourceCounters::add(counters().bytes_in, static_cast<std::uint64_t>(n));
    c.buffer.commit(static_cast<std::size_t>(n), false, sink, c.input, counters());
    return ReadResult::data;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return ReadResult::would_block;
  c.buffer.commit(0, true, sink, c.input, counters());
  close(c, sink);
  return ReadResult::closed;
}

void TcpSource::close(Connection& c, LineSink& sink) {
  const int fd = c.fd;
  sink.close_input(c.input);
  poller_.remove(fd);
  ::close(fd);
  connections_[static_cast<std::size_t>(fd)].reset();
  counters().connections.store(counters().connections.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void TcpSource::stop_accepting(LineSink& sink) {
  if (listen_fd_ < 0) return;
  accept_all(sink, false);
  poller_.remove(listen_fd_);
  ::close(listen_fd_);
  listen_fd_ = -1;
}

void TcpSource::drain(LineSink& sink, std::int64_t deadline_ms) {
  // What the kernel holds for us was received: hand it over, up to each
  // client's FIN, within the deadline so that a client that keeps sending
  // cannot hold the stop back.
  for (auto& c : connections_) {
    while (c && monotonic_ms() < deadline_ms && read(*c, sink) == ReadResult::data) {
    }
  }
}

}  // namespace spate::io
