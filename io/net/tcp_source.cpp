// TCP connections as inputs; see tcp_source.hpp.
#include "io/net/tcp_source.hpp"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace spate::io {
namespace {
constexpr std::uint64_t kListenToken = 0;  // connections use fd + 1
// Out of descriptors, the listener stays readable: polling it would spin.
// It is left alone this long, or until one of our connections closes.
constexpr std::int64_t kAcceptPauseMs = 100;
constexpr std::int64_t kIdleSweepEveryMs = 1000;
}  // namespace

TcpSource::TcpSource(int listen_fd, Poller& poller, ReadArena& arena, std::size_t max_line_bytes, TcpLimits limits,
                     std::function<bool(int, bool)> hand_off)
    : listen_fd_(listen_fd),
      poller_(poller),
      arena_(arena),
      max_line_bytes_(max_line_bytes),
      limits_(limits),
      hand_off_(std::move(hand_off)) {
  if (listen_fd_ >= 0) poller_.add(listen_fd_, this, kListenToken);
}

TcpSource::~TcpSource() {
  for (auto& c : connections_) {
    if (c) ::close(c->fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool TcpSource::poll(LineSink& sink, std::size_t) {
  if (accept_paused_until_ms_ == 0 && next_idle_sweep_ms_ == 0 && connections_.empty()) return false;
  const std::int64_t now = monotonic_ms();
  if (accept_paused_until_ms_ != 0 && now >= accept_paused_until_ms_) {
    accept_paused_until_ms_ = 0;
    if (listen_fd_ >= 0) poller_.add(listen_fd_, this, kListenToken);
  }
  if (now >= next_idle_sweep_ms_) {
    next_idle_sweep_ms_ = now + kIdleSweepEveryMs;
    for (auto& c : connections_) {
      if (c && limits_.max_idle_ms > 0 && now - c->last_read_ms >= limits_.max_idle_ms) {
        SourceCounters::add(counters()[TcpFigure::idle_closed], 1);
        c->buffer.prepare();
        c->buffer.commit(0, true, sink, c->input, counters());  // its partial line ends with it
        close(*c, sink);
      }
    }
  }
  return false;
}

void TcpSource::ready(std::uint64_t token, LineSink& sink) {
  if (token == kListenToken) {
    accept_all(sink, true);
    return;
  }
  const auto fd = static_cast<std::size_t>(token - 1);
  if (fd < connections_.size() && connections_[fd] && !paused()) read(*connections_[fd], sink);
}

void TcpSource::pause_accepting(std::int64_t now_ms) {
  if (accept_paused_until_ms_ != 0 || listen_fd_ < 0) return;
  poller_.remove(listen_fd_);
  accept_paused_until_ms_ = now_ms + kAcceptPauseMs;
  SourceCounters::add(counters()[TcpFigure::accept_pauses], 1);
}

void TcpSource::accept_all(LineSink& sink, bool allow_hand_off) {
  while (listen_fd_ >= 0 && accept_paused_until_ms_ == 0) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting(monotonic_ms());
      return;  // EAGAIN, or a transient error: try again on the next readiness
    }
    if (limits_.open != nullptr && limits_.open->fetch_add(1, std::memory_order_relaxed) >= limits_.max_connections) {
      limits_.open->fetch_sub(1, std::memory_order_relaxed);
      ::close(fd);
      SourceCounters::add(counters()[TcpFigure::refused], 1);
      continue;
    }
    if (hand_off_ && hand_off_(fd, allow_hand_off)) continue;
    adopt(fd, sink);
  }
}

void TcpSource::adopt(int fd, LineSink& sink) {
  auto c = std::make_unique<Connection>(arena_, max_line_bytes_);
  c->fd = fd;
  c->last_read_ms = monotonic_ms();
  c->input = sink.open_input(kind(), true);
  SourceCounters::add(counters().inputs, 1);
  SourceCounters::add(counters()[TcpFigure::connections], 1);
  if (connections_.size() <= static_cast<std::size_t>(fd)) connections_.resize(static_cast<std::size_t>(fd) + 1);
  connections_[static_cast<std::size_t>(fd)] = std::move(c);
  if (next_idle_sweep_ms_ == 0) next_idle_sweep_ms_ = monotonic_ms() + kIdleSweepEveryMs;
  poller_.add(fd, this, static_cast<std::uint64_t>(fd) + 1);
}

// Reads once (up to the arena's free space) and hands on whole lines.
TcpSource::ReadResult TcpSource::read(Connection& c, LineSink& sink) {
  char* at = c.buffer.prepare();
  const ssize_t n = ::read(c.fd, at, std::min(c.buffer.room(), arena_.chunk_bytes()));
  if (n > 0) {
    c.last_read_ms = monotonic_ms();
    SourceCounters::add(counters().bytes_in, static_cast<std::uint64_t>(n));
    c.buffer.commit(static_cast<std::size_t>(n), false, sink, c.input, counters());
    return ReadResult::data;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    c.buffer.commit(0, false, sink, c.input, counters());  // the partial line goes back to the connection
    return ReadResult::would_block;
  }
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
  std::atomic<std::uint64_t>& open = counters()[TcpFigure::connections];
  open.store(open.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  if (limits_.open != nullptr) limits_.open->fetch_sub(1, std::memory_order_relaxed);
  if (accept_paused_until_ms_ != 0) accept_paused_until_ms_ = 1;  // a descriptor is free: listen on the next pass
}

void TcpSource::stop_accepting(LineSink& sink) {
  if (listen_fd_ < 0) return;
  if (accept_paused_until_ms_ != 0) {
    accept_paused_until_ms_ = 0;
  } else {
    poller_.remove(listen_fd_);
  }
  accept_all(sink, false);
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

void TcpSource::measure_backlog() {
  std::uint64_t waiting = 0;
  for (const auto& c : connections_) {
    int unread = 0;
    if (c && ::ioctl(c->fd, SIOCINQ, &unread) == 0 && unread > 0) waiting += static_cast<std::uint64_t>(unread);
  }
  counters().waiting_bytes.store(waiting, std::memory_order_relaxed);
  // For a listener, TCP_INFO's unacked is its accept queue's length.
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (listen_fd_ >= 0 && ::getsockopt(listen_fd_, IPPROTO_TCP, TCP_INFO, &info, &len) == 0) {
    counters()[TcpFigure::accept_queue].store(info.tcpi_unacked, std::memory_order_relaxed);
  }
}

}  // namespace spate::io
