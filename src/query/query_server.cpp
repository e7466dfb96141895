// The query server; see query_server.hpp and docs/protocol.md.
#include "query/query_server.hpp"
#include "query/query_op.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "io/file/source.hpp"
#include "io/net/socket.hpp"

namespace spate::query {

using engine::QueryTask;

namespace {

constexpr std::uint32_t kMaxInflightPerConnection = 1024;
constexpr std::size_t kReadChunk = 256 * 1024;
// Out of descriptors, the listener stays readable: polling it would spin.
constexpr std::int64_t kAcceptPauseMs = 100;
constexpr std::int64_t kTimeoutSweepEveryMs = 200;
constexpr std::int64_t kDrainGraceMs = 2000;  // docs/protocol.md 4.2
constexpr std::uint64_t kNotifyTag = UINT64_MAX;
constexpr std::uint64_t kListenTag = UINT64_MAX - 1;

// The wire type each request tag must have; 0 for tags requests do not use.
WireType expected_type(Tag tag) {
  switch (tag) {
    case Tag::version: case Tag::k: case Tag::producer_id: case Tag::sequence: return WireType::u64;
    case Tag::from_ms: case Tag::to_ms: case Tag::window_start: return WireType::i64;
    case Tag::client_name: case Tag::auth_token: case Tag::view: case Tag::key: case Tag::by: case Tag::payload: return WireType::bytes;
    default: return static_cast<WireType>(0);
  }
}


}  // namespace

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

QueryServer::QueryServer(engine::Engine& engine, const engine::QueryConfig& config)
    : engine_(engine),
      config_(config),
      inflight_per_shard_(engine.shard_count(), 0),
      dedup_(engine),
      alarms_(engine, counters_.alarms) {
  alarms_.configure(engine.config().alarms);
  alarm_asked_.assign(alarms_.size(), 0);
  if (!config_.auth_token_file.empty()) {
    const auto token = read_auth_token(config_.auth_token_file);
    if (!token) throw std::runtime_error(fmt::format("cannot read auth_token_file '{}'", config_.auth_token_file));
    auth_token_ = *token;
    if (auth_token_.size() < 16) {
      throw std::runtime_error(fmt::format("auth_token_file '{}' holds a token of {} bytes; at least 16 are needed",
                                           config_.auth_token_file, auth_token_.size()));
    }
  } else if (!is_loopback(config_.listen.host)) {
    // Anyone who reaches the query port can PUBLISH: off loopback, only
    // with a shared token.
    throw std::runtime_error(fmt::format(
        "the query listener {} is not a loopback address: set [query] auth_token_file (docs/protocol.md)",
        config_.listen.to_string()));
  }
  scratch_.resize(kReadChunk);
}

QueryServer::~QueryServer() {
  stop();
  for (auto& [fd, c] : connections_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (notify_fd_ >= 0) ::close(notify_fd_);
}

void QueryServer::start() {
  // A producer's batches that the segments hold stay duplicates after a
  // restart: their sequences come back with the replay.
  engine_.wait_replayed();
  for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
    for (const auto& [producer, sequence] : engine_.shard(s).replayed_sequences()) {
      dedup_.record(producer, sequence, s, io::monotonic_ms());
    }
  }
  listen_fd_ = io::listen_tcp(config_.listen.host, config_.listen.port, false);
  port_ = io::local_port(listen_fd_);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  notify_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || notify_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kNotifyTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, notify_fd_, &ev);
  engine_.set_response_notifier(notify_fd_);
  thread_ = std::thread([this] { run(); });
}

void QueryServer::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(notify_fd_, &one, sizeof(one));
  thread_.join();
}

void QueryServer::run() {
  epoll_event events[64];
  while (!stop_.load(std::memory_order_acquire)) {
    // A PUBLISH waits for rings to be consumed past its rows: the shards
    // ring the notifier when they drain one while this is set, so the
    // answer need not wait for a timeout (a 1 ms poll added about 1 ms).
    engine_.set_publish_waiting(!unsettled_.empty());
    const int timeout = unsettled_.empty() ? 100 : 10;
    const int n = epoll_wait(epoll_fd_, events, 64, timeout);
    for (int i = 0; i < n; ++i) {
      const std::uint64_t t = events[i].data.u64;
      if (t == kNotifyTag) {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(notify_fd_, &v, sizeof(v));
        continue;
      }
      if (t == kListenTag) {
        accept_all();
        continue;
      }
      auto it = connections_.find(static_cast<int>(t));
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      if ((events[i].events & EPOLLOUT) != 0) on_writable(c);
      if (connections_.count(static_cast<int>(t)) != 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        on_readable(c);
      }
    }
    collect_responses();
    check_unsettled();
    resume_reading();
    const std::int64_t now = io::monotonic_ms();
    if (now >= next_dedup_sweep_ms_) {
      dedup_.expire(now);
      next_dedup_sweep_ms_ = now + 1000;
    }
    if (accept_paused_until_ms_ != 0 && now >= accept_paused_until_ms_) {
      accept_paused_until_ms_ = 0;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenTag;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    }
    if (now >= next_timeout_sweep_ms_) {
      sweep_timeouts(now);
      next_timeout_sweep_ms_ = now + kTimeoutSweepEveryMs;
    }
    if (now >= next_alarms_ms_) {
      evaluate_alarms(now);
      next_alarms_ms_ = now + 1000;
    }
  }
}

void QueryServer::accept_all() {
  while (accept_paused_until_ms_ == 0) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting(io::monotonic_ms());
      return;
    }
    if (connections_.size() >= config_.max_connections) {
      ::close(fd);
      ++counters_.refused;
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->id = next_connection_id_++;
    c->accepted_ms = io::monotonic_ms();
    ++counters_.connections;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<std::uint64_t>(fd);
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    connections_[fd] = std::move(c);
  }
}

void QueryServer::update_interest(Connection& c) {
  epoll_event ev{};
  ev.events = (c.reading ? EPOLLIN : 0u) | (c.want_write ? EPOLLOUT : 0u);
  ev.data.u64 = static_cast<std::uint64_t>(c.fd);
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void QueryServer::pause_accepting(std::int64_t now_ms) {
  if (accept_paused_until_ms_ != 0) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
  accept_paused_until_ms_ = now_ms + kAcceptPauseMs;
  ++counters_.accept_pauses;
}

void QueryServer::close_connection(Connection& c) {
  const int fd = c.fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  connections_.erase(fd);  // answers still owed to it are dropped by connection id
  --counters_.connections;
  if (accept_paused_until_ms_ != 0) accept_paused_until_ms_ = 1;  // a descriptor is free: listen again
}

// A client that never says HELLO, or leaves a frame half sent, holds a
// descriptor and a buffer: each gets a deadline.
void QueryServer::sweep_timeouts(std::int64_t now_ms) {
  std::vector<int> expired;
  for (const auto& [fd, c] : connections_) {
    if (c->draining) {
      // After an error that closes: the client had its grace period to read it.
      if (now_ms - c->draining_since_ms >= kDrainGraceMs) expired.push_back(fd);
      continue;
    }
    if (c->closing) continue;
    if (!c->hello_done && now_ms - c->accepted_ms >= config_.handshake_timeout_ms) {
      ++counters_.handshake_timeouts;
      expired.push_back(fd);
    } else if (c->partial_since_ms != 0 && now_ms - c->partial_since_ms >= config_.frame_timeout_ms) {
      ++counters_.frame_timeouts;
      expired.push_back(fd);
    }
  }
  for (const int fd : expired) close_connection(*connections_.at(fd));
}

// Answers wait in wbuf for a client that reads slowly; past half of
// max_reply_bytes it is not read (can_read), past all of it (the answers to
// what was already in flight) it is closed.
void QueryServer::send(Connection& c, const std::string& frame) {
  c.wbuf.append(frame);
  on_writable(c);
  const auto it = connections_.find(c.fd);
  if (it != connections_.end() && it->second.get() == &c && c.wbuf.size() > config_.max_reply_bytes) {
    ++counters_.slow_clients_closed;
    close_connection(c);
  }
}

void QueryServer::on_writable(Connection& c) {
  while (!c.wbuf.empty()) {
    const ssize_t n = ::send(c.fd, c.wbuf.data(), c.wbuf.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.wbuf.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    close_connection(c);
    return;
  }
  if (c.wbuf.empty() && c.wbuf.capacity() > kReadChunk) std::string().swap(c.wbuf);  // an idle client keeps none
  if (c.wbuf.empty() && c.closing && !c.draining) {
    // Shut down our side and let the client read the error before the
    // socket goes away (closing with unread input would reset it).
    ::shutdown(c.fd, SHUT_WR);
    c.draining = true;
    c.draining_since_ms = io::monotonic_ms();
    c.reading = true;
  }
  const bool want = !c.wbuf.empty();
  if (want != c.want_write) {
    c.want_write = want;
    update_interest(c);
  }
}

void QueryServer::reply_error(Connection& c, Op op, std::uint32_t request_id, Status status, std::string_view message) {
  // An error text echoes what the client sent (a view name can be as long
  // as a frame): cut, on a UTF-8 boundary, so every reply fits MAX_FRAME.
  constexpr std::size_t kMaxErrorBytes = 1024;
  std::string cut;
  if (message.size() > kMaxErrorBytes) {
    std::size_t n = kMaxErrorBytes;
    while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;  // not inside a character
    cut = std::string(message.substr(0, n)) + "...";
    message = cut;
  }
  std::string out;
  const auto mark = begin_frame(out, op, status, request_id);
  FieldWriter(out).bytes(Tag::error, message);
  finish_frame(out, mark);
  send(c, out);
}

void QueryServer::on_readable(Connection& c) {
  const int fd = c.fd;
  if (c.draining) {
    char sink[4096];
    const ssize_t n = ::recv(fd, sink, sizeof(sink), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_connection(c);
    return;
  }
  // Frames are read into the server's scratch buffer and handled there;
  // only a partial frame is kept in the connection's rbuf (appended to when
  // the next bytes come), so an idle client holds no read buffer.
  std::string_view data = c.rbuf;
  if (c.reading) {
    const ssize_t n = ::recv(fd, scratch_.data(), scratch_.size(), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close_connection(c);
      return;
    }
    if (n > 0) {
      if (c.rbuf.empty()) {
        data = std::string_view(scratch_.data(), static_cast<std::size_t>(n));
      } else {
        c.rbuf.append(scratch_.data(), static_cast<std::size_t>(n));
        data = c.rbuf;
      }
    }
  }
  const bool in_scratch = data.data() == scratch_.data();
  std::size_t pos = 0;
  while (!c.closing && can_read(c)) {
    FrameHeader h;
    const std::string_view rest = data.substr(pos);
    const FrameParse r = peek_frame(rest, kDefaultMaxFrameBytes, h);
    if (r == FrameParse::need_more) break;
    if (r == FrameParse::too_large || r == FrameParse::malformed) {
      reply_error(c, static_cast<Op>(0), 0, r == FrameParse::too_large ? Status::frame_too_large : Status::bad_request,
                  r == FrameParse::too_large
                      ? fmt::format("frame of {} bytes exceeds the limit of {}", h.length, kDefaultMaxFrameBytes)
                      : std::string("frame length shorter than the frame header"));
      if (connections_.count(fd) == 0) return;
      c.closing = true;
      break;
    }
    const bool keep = handle_frame(c, h, frame_body(rest, h));
    if (connections_.count(fd) == 0) return;
    if (c.stalled) break;  // the frame stays in rbuf until its shard has room
    pos += 4 + h.length;
    if (!keep) {
      c.closing = true;
      break;
    }
  }
  if (in_scratch) {
    c.rbuf.assign(data.substr(pos));
  } else {
    c.rbuf.erase(0, pos);
  }
  if (c.rbuf.empty() && c.rbuf.capacity() > kReadChunk) std::string().swap(c.rbuf);
  // frame_timeout_ms runs while the first frame held is incomplete (a
  // whole frame held back by backpressure is the server's doing).
  FrameHeader held;
  if (c.rbuf.empty() || peek_frame(c.rbuf, kDefaultMaxFrameBytes, held) != FrameParse::need_more) {
    c.partial_since_ms = 0;
  } else if (c.partial_since_ms == 0 || pos > 0) {
    c.partial_since_ms = io::monotonic_ms();  // this frame began now
  }
  if (c.closing) {
    c.rbuf.clear();
    on_writable(c);
    if (connections_.count(fd) != 0) update_interest(c);
    return;
  }
  // Backpressure: stop reading a connection with too many requests in
  // flight or too many answers it has not read; resume_reading() restarts it.
  const bool reading = can_read(c) && !c.stalled;
  if (reading != c.reading) {
    c.reading = reading;
    update_interest(c);
  }
}

bool QueryServer::handle_frame(Connection& c, const FrameHeader& h, std::string_view body) {
  // Validate the whole field structure up front: a malformed frame closes
  // the connection; a known tag with the wrong wire type is only refused.
  {
    FieldReader reader(body);
    std::optional<Field> wrong;
    while (auto f = reader.next()) {
      const WireType want = expected_type(f->tag);
      if (static_cast<int>(want) != 0 && f->type != want && !wrong) wrong = f;
    }
    if (reader.error()) {
      reply_error(c, h.op, h.request_id, Status::bad_request, "malformed field structure");
      return false;
    }
    if (wrong) {
      reply_error(c, h.op, h.request_id, Status::bad_request,
                  fmt::format("field tag {} has wire type {}, expected {}", static_cast<unsigned>(wrong->tag),
                              static_cast<unsigned>(wrong->type), static_cast<unsigned>(expected_type(wrong->tag))));
      return c.hello_done;
    }
  }
  if (h.op == Op::hello) {
    if (c.hello_done) {
      reply_error(c, h.op, h.request_id, Status::bad_request, "HELLO was already done on this connection");
      return true;
    }
    handle_hello(c, h, body);
    return c.hello_done;
  }
  if (!c.hello_done) {
    reply_error(c, h.op, h.request_id, Status::handshake_required, "the first frame must be HELLO");
    return false;
  }
  const QueryOp* op = find_query_op(h.op);
  if (op == nullptr) {
    reply_error(c, h.op, h.request_id, Status::unknown_op, fmt::format("unknown operation {}", static_cast<unsigned>(h.op)));
    return true;
  }
  op->handle(*this, c, h, body);
  return true;
}

void QueryServer::handle_hello(Connection& c, const FrameHeader& h, std::string_view body) {
  std::uint64_t version = 0;
  bool has_version = false;
  std::string_view token;
  bool has_token = false;
  FieldReader reader(body);
  while (auto f = reader.next()) {
    if (f->tag == Tag::version && f->type == WireType::u64) {
      version = f->u;
      has_version = true;
    } else if (f->tag == Tag::auth_token) {
      token = f->bytes;
      has_token = true;
    }
  }
  if (!auth_token_.empty() && (!has_token || !token_matches(token))) {
    ++counters_.auth_failures;
    reply_error(c, h.op, h.request_id, Status::auth_failed,
                has_token ? "AUTH_TOKEN does not match; the server closes the connection"
                          : "this server wants AUTH_TOKEN (tag 6) in HELLO; the server closes the connection");
    c.closing = true;
    return;
  }
  if (!has_version) {
    reply_error(c, h.op, h.request_id, Status::bad_request, "HELLO needs VERSION (tag 1, u64)");
    return;
  }
  std::string out;
  if (version != kProtocolVersion) {
    const auto mark = begin_frame(out, Op::hello, Status::version_unsupported, h.request_id);
    FieldWriter w(out);
    w.u64(Tag::version, kProtocolVersion);
    w.bytes(Tag::error, fmt::format("protocol version {} is not supported; this server speaks {}", version, kProtocolVersion));
    finish_frame(out, mark);
    send(c, out);
    return;
  }
  c.hello_done = true;
  const auto mark = begin_frame(out, Op::hello, Status::ok, h.request_id);
  FieldWriter w(out);
  w.u64(Tag::version, kProtocolVersion);
  w.u64(Tag::max_frame, kDefaultMaxFrameBytes);
  w.bytes(Tag::server_name, "spated " SPATE_VERSION);
  finish_frame(out, mark);
  send(c, out);
}

bool QueryServer::can_read(const Connection& c) const noexcept {
  return c.inflight < kMaxInflightPerConnection && c.wbuf.size() < config_.max_reply_bytes / 2;
}

bool QueryServer::token_matches(std::string_view token) const noexcept {
  // Constant time in the token's bytes: no early exit on the first
  // difference for an attacker to time.
  unsigned char diff = token.size() == auth_token_.size() ? 0 : 1;
  for (std::size_t i = 0; i < auth_token_.size(); ++i) {
    diff |= static_cast<unsigned char>(auth_token_[i] ^ (i < token.size() ? token[i] : 0));
  }
  return diff == 0;
}

void QueryServer::resume_reading() {
  std::vector<int> ready;
  for (const auto& [fd, c] : connections_) {
    if (!c->reading && !c->closing && can_read(*c)) {
      c->stalled = false;
      ready.push_back(fd);
    }
  }
  for (int fd : ready) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) continue;
    it->second->reading = true;
    update_interest(*it->second);
    on_readable(*it->second);  // frames already buffered are handled now
  }
}

}  // namespace spate::query
