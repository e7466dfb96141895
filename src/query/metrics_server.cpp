// The Prometheus endpoint; see metrics_server.hpp and docs/metrics.md.
//
// The HTTP server is our own, one epoll thread with non-blocking sockets,
// not cpp-httplib (used until this endpoint had to stay up under slow
// clients): httplib serves each connection on a worker of a fixed pool with
// blocking reads whose timeout restarts at every byte, so a few clients
// that trickle a request head, or send half of one and wait, hold every
// worker and /healthz, /readyz and /metrics go unanswered for as long as
// they like. It has no deadline for a whole request head and no way to
// serve a connection without tying a thread to it. Here a connection costs
// a descriptor and a buffer of at most max_request_bytes, never a thread;
// its request head has a deadline from its first byte (from the accept for
// the first request), an idle kept-alive connection another, and at
// max_connections a new client replaces the one that has waited longest
// without a whole request, so that those holding connections cannot keep
// a probe out ([metrics] in docs/configuration.md).
#include "query/metrics_server.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "io/file/source.hpp"
#include "io/net/socket.hpp"
#include "query/query_server.hpp"
#include "query/stats.hpp"

namespace spate::query {
namespace {

// A STATS figure as a Prometheus sample: the family's name, its labels
// besides shard, its type, and the factor to base units (seconds, ratios).
struct Sample {
  std::string family;
  std::string labels;
  bool gauge = false;
  double scale = 1;
};

bool is_source(std::string_view s) { return engine::find_source_kind(s) != nullptr; }

// nullopt: a total of figures the endpoint gives by label (errors, late_events...).
std::optional<Sample> sample_of(std::string_view name, StatKind kind) {
  static constexpr std::string_view kTotals[] = {"events_in", "bytes_in", "errors", "late_events"};
  for (std::string_view t : kTotals) {
    if (name == t) return std::nullopt;
  }
  if (name.starts_with("errors.")) return std::nullopt;
  Sample s;
  s.gauge = kind == StatKind::gauge;
  std::string base(name);
  const auto dot = name.find('.');
  const std::string_view head = name.substr(0, dot);
  const std::string_view rest = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  if (is_source(head) && rest == "events_in") {
    return Sample{"spate_events_in", fmt::format("source=\"{}\"", head), false, 1};
  } else if (is_source(head) && rest == "bytes_in") {
    return Sample{"spate_received_bytes", fmt::format("source=\"{}\"", head), false, 1};
  } else if (is_source(head) && rest == "sources") {
    return Sample{"spate_sources", fmt::format("source=\"{}\"", head), true, 1};
  } else if (is_source(head) && rest == "inputs") {
    return Sample{"spate_inputs_opened", fmt::format("source=\"{}\"", head), false, 1};
  } else if (is_source(head) && rest.starts_with("errors.")) {
    return Sample{"spate_rejected_lines", fmt::format("source=\"{}\",reason=\"{}\"", head, rest.substr(7)), false, 1};
  } else if (head == "late") {
    return Sample{"spate_late_rows", fmt::format("view=\"{}\"", rest), false, 1};
  } else if (head == "log" && rest.starts_with("lines.")) {
    return Sample{"spate_log_lines", fmt::format("level=\"{}\"", rest.substr(6)), false, 1};
  } else if (head == "alarm") {  // alarm.<name>.active, alarm.<name>.fired
    const auto last = rest.rfind('.');
    return Sample{fmt::format("spate_alarm_{}", rest.substr(last + 1)),
                  fmt::format("alarm=\"{}\"", rest.substr(0, last)), kind == StatKind::gauge, 1};
  } else if ((head == "keys" || head == "windows" || head == "state_bytes") && !rest.empty()) {
    return Sample{fmt::format("spate_view_{}", head), fmt::format("view=\"{}\"", rest), true, 1};
  } else if (head == "key_limit") {
    return Sample{"spate_key_limit_dropped_rows", fmt::format("view=\"{}\"", rest), false, 1};
  }
  if (base.ends_with("_us")) {
    base.replace(base.size() - 3, 3, "_seconds");
    s.scale = 1e-6;
  } else if (base.ends_with("_ms")) {
    base.replace(base.size() - 3, 3, "_seconds");
    s.scale = 1e-3;
  } else if (base.ends_with("_percent")) {
    base.replace(base.size() - 8, 8, "_ratio");
    s.scale = 0.01;
  }
  for (char& c : base) {
    if (c == '.') c = '_';
  }
  s.family = "spate_" + base;
  return s;
}

}  // namespace

std::string render_prometheus(const engine::Engine& engine, const ServerCounters& server) {
  struct Family {
    const char* type = "counter";
    std::string stats_name;
    std::vector<std::string> lines;
  };
  std::map<std::string, Family> families;
  visit_stats(
      engine, server,
      [&](std::uint32_t shard, std::string_view name, std::uint64_t value, StatKind kind) {
        const std::optional<Sample> s = sample_of(name, kind);
        if (!s) return;
        const std::string family = s->family + (s->gauge ? "" : "_total");
        Family& f = families[family];
        f.type = s->gauge ? "gauge" : "counter";
        if (f.stats_name.empty()) f.stats_name = name;
        const std::string labels = fmt::format("shard=\"{}\"{}{}", shard, s->labels.empty() ? "" : ",", s->labels);
        if (s->scale == 1) {
          f.lines.push_back(fmt::format("{}{{{}}} {}", family, labels, value));
        } else {
          f.lines.push_back(fmt::format("{}{{{}}} {}", family, labels, static_cast<double>(value) * s->scale));
        }
      },
      [&](std::uint32_t shard, std::string_view name, const kernels::HistogramCounts& h) {
        // Microseconds to seconds; a bucket per power of two from 8 us
        // (each holds whole buckets of the histogram: le counts values below 2^k us).
        const std::string family = sample_of(name, StatKind::counter)->family;
        Family& f = families[family];
        f.type = "histogram";
        if (f.stats_name.empty()) f.stats_name = name;
        for (unsigned k = kernels::kHistogramSubBits; k <= kernels::kHistogramMaxBits; ++k) {
          f.lines.push_back(fmt::format("{}_bucket{{shard=\"{}\",le=\"{}\"}} {}", family, shard,
                                        std::ldexp(1e-6, static_cast<int>(k)), h.below(std::uint64_t{1} << k)));
        }
        const std::uint64_t total = h.total();
        f.lines.push_back(fmt::format("{}_bucket{{shard=\"{}\",le=\"+Inf\"}} {}", family, shard, total));
        f.lines.push_back(fmt::format("{}_sum{{shard=\"{}\"}} {}", family, shard, h.sum * 1e-6));
        f.lines.push_back(fmt::format("{}_count{{shard=\"{}\"}} {}", family, shard, total));
      });
  std::string out;
  for (const auto& [name, f] : families) {
    out += fmt::format("# HELP {} spate STATS figure {} (docs/metrics.md).\n# TYPE {} {}\n", name, f.stats_name, name,
                       f.type);
    for (const std::string& line : f.lines) {
      out += line;
      out += '\n';
    }
  }
  return out;
}

namespace {

constexpr std::uint64_t kWakeTag = UINT64_MAX;
constexpr std::uint64_t kListenTag = UINT64_MAX - 1;
constexpr int kTickMs = 100;                 // deadlines are checked this often
constexpr int kAcceptBurst = 64;             // accepts per loop pass, so a flood of connects cannot starve reads
constexpr std::int64_t kAcceptPauseMs = 100; // out of descriptors, the listener stays readable: polling it would spin
constexpr std::int64_t kLingerMs = 1000;     // after an answer that closes: the client's time to read it
constexpr std::size_t kReadChunk = 16384;

// A connection: reading a request head, sending an answer, or lingering
// after an answer that closes it (our side shut, its input discarded, so
// that closing with input unread does not reset the answer away).
enum class Phase : std::uint8_t { head, answering, lingering };

}  // namespace

struct MetricsServer::Connection {
  std::uint64_t id = 0;
  int fd = -1;
  Phase phase = Phase::head;
  bool idle = false;         // head phase, kept alive, no byte of the next request yet
  bool close_after = false;  // once wbuf is sent: linger, then close
  std::uint32_t interest = 0;
  std::int64_t since_ms = 0;  // the phase's deadline runs from here (see sweep)
  std::size_t scanned = 0;    // rbuf searched up to here for the end of the head
  std::string rbuf;           // the head being read, at most max_request_bytes
  std::string wbuf;
  std::size_t wpos = 0;
};

MetricsServer::MetricsServer(const engine::Engine& engine, const ServerCounters& server, MetricsCounters& counters,
                             const engine::MetricsConfig& config)
    : engine_(engine), server_(server), counters_(counters), config_(config) {
  keep_alive_header_ = fmt::format("Keep-Alive: timeout={}\r\n", config_.idle_timeout_ms / 1000);
  scratch_.resize(kReadChunk);
  try {
    listen_fd_ = io::listen_tcp(config_.listen.host, config_.listen.port, false);
    port_ = io::local_port(listen_fd_);
  } catch (const std::exception&) {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw std::runtime_error(fmt::format("cannot listen for metrics on {}: in use or not an address here "
                                         "([metrics] listen, --metrics-addr; 'off' turns it off)",
                                         config_.listen.to_string()));
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    const int err = errno;
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    ::close(listen_fd_);
    throw std::system_error(err, std::generic_category(), "metrics endpoint: epoll/eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  thread_ = std::thread([this] { run(); });
}

MetricsServer::~MetricsServer() {
  stop_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  for (auto& [id, c] : connections_) ::close(c->fd);
  counters_.connections.store(0, std::memory_order_relaxed);
  ::close(listen_fd_);
  ::close(epoll_fd_);
  ::close(wake_fd_);
}

void MetricsServer::run() {
  epoll_event events[64];
  std::int64_t next_sweep_ms = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    const int n = epoll_wait(epoll_fd_, events, 64, kTickMs);
    const std::int64_t now = io::monotonic_ms();
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof(v));
        continue;
      }
      if (tag == kListenTag) {
        accept_all(now);
        continue;
      }
      const auto it = connections_.find(tag);  // gone if closed earlier in this pass
      if (it == connections_.end()) continue;
      Connection& c = *it->second;
      if (c.phase == Phase::answering) {
        flush(c, now);  // an error or hang-up shows as a failed send
        if (connections_.count(tag) != 0 && c.phase == Phase::head) serve_buffered(c, now);
      } else {
        on_readable(c, now);
      }
    }
    if (!listening_ && now >= accept_paused_until_ms_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenTag;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
      listening_ = true;
    }
    if (now >= next_sweep_ms) {
      sweep(now);
      next_sweep_ms = now + kTickMs;
    }
  }
}

void MetricsServer::accept_all(std::int64_t now_ms) {
  for (int i = 0; i < kAcceptBurst && listening_; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        listening_ = false;
        accept_paused_until_ms_ = now_ms + kAcceptPauseMs;
        counters_.accept_pauses.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    }
    if (connections_.size() >= config_.max_connections && !make_room()) {
      ::close(fd);
      counters_.connections_refused.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->id = next_id_++;
    c->fd = fd;
    c->since_ms = now_ms;  // the first request's head is due request_timeout_ms after the accept
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id;
    c->interest = EPOLLIN;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    connections_.emplace(c->id, std::move(c));
    counters_.connections.fetch_add(1, std::memory_order_relaxed);
  }
}

// At max_connections: closes the connection that has waited longest
// without a whole request (one lingering after its answer first), so that
// clients holding connections cannot keep a new one out; a new client is
// only refused while every connection is being answered. O(connections),
// once per accept at the limit.
bool MetricsServer::make_room() {
  Connection* victim = nullptr;
  for (const auto& [id, c] : connections_) {
    if (c->phase == Phase::answering) continue;
    if (victim == nullptr) {
      victim = c.get();
      continue;
    }
    const bool lingers = c->phase == Phase::lingering, victim_lingers = victim->phase == Phase::lingering;
    if (lingers != victim_lingers ? lingers : (c->since_ms != victim->since_ms ? c->since_ms < victim->since_ms
                                                                                 : c->id < victim->id)) {
      victim = c.get();
    }
  }
  if (victim == nullptr) return false;
  if (victim->phase != Phase::lingering) counters_.connections_evicted.fetch_add(1, std::memory_order_relaxed);
  close_connection(*victim);
  return true;
}

void MetricsServer::on_readable(Connection& c, std::int64_t now_ms) {
  if (c.phase == Phase::lingering) {  // discard until the client closes
    const ssize_t n = ::recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_connection(c);
    return;
  }
  // Never more than max_request_bytes held: a head that does not end
  // within them is answered 431 (serve_buffered).
  const std::size_t room = std::min<std::size_t>(config_.max_request_bytes - c.rbuf.size(), scratch_.size());
  if (room == 0) {  // not left so (serve_buffered answers a full buffer), but a read of 0 bytes would look like a close
    serve_buffered(c, now_ms);
    return;
  }
  const ssize_t n = ::recv(c.fd, scratch_.data(), room, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    close_connection(c);
    return;
  }
  if (n < 0) return;
  if (c.idle) {  // the next request begins: its head is due request_timeout_ms from now
    c.idle = false;
    c.since_ms = now_ms;
  }
  c.rbuf.append(scratch_.data(), static_cast<std::size_t>(n));
  serve_buffered(c, now_ms);
}

// Answers the requests whose heads rbuf holds, one at a time: the next is
// read only once the answer before it is sent.
void MetricsServer::serve_buffered(Connection& c, std::int64_t now_ms) {
  const std::uint64_t id = c.id;
  while (c.phase == Phase::head) {
    // Empty lines before a request line are skipped (RFC 9112, 2.2).
    const std::size_t blank = std::min(c.rbuf.find_first_not_of("\r\n"), c.rbuf.size());
    if (blank != 0) {
      c.rbuf.erase(0, blank);
      c.scanned = 0;
    }
    if (c.rbuf.empty()) return;
    std::size_t head_bytes = 0;
    const std::size_t end = find_http_head_end(c.rbuf, c.scanned, head_bytes);
    if (end == std::string::npos) {
      c.scanned = c.rbuf.size() >= 2 ? c.rbuf.size() - 2 : 0;
      if (c.rbuf.size() < config_.max_request_bytes) return;
      counters_.oversized_requests.fetch_add(1, std::memory_order_relaxed);
      const std::string why =
          fmt::format("request head over {} bytes ([metrics] max_request_bytes)", config_.max_request_bytes);
      answer(c, nullptr, 431, why, now_ms);
    } else {
      HttpHead head;
      if (parse_http_head(std::string_view(c.rbuf).substr(0, head_bytes), head)) {
        answer(c, &head, 0, {}, now_ms);
      } else {
        counters_.bad_requests.fetch_add(1, std::memory_order_relaxed);
        answer(c, nullptr, 400, "not an HTTP/1.x request head", now_ms);
      }
      c.rbuf.erase(0, end);
      c.scanned = 0;
    }
    flush(c, now_ms);
    if (connections_.count(id) == 0) return;
  }
}

// Puts the answer in wbuf: to `head` (status 0: by its method and path),
// or an error `status` (no head) that closes the connection. The headers
// are those cpp-httplib sent before, in its order.
void MetricsServer::answer(Connection& c, const HttpHead* head, int status, std::string_view why,
                           std::int64_t now_ms) {
  std::string body;
  const char* content_type = "text/plain";
  const char* allow = nullptr;
  bool keep = head != nullptr && head->keep_alive && !head->has_body;  // a body is not read: close after
  if (head == nullptr) {
    body = fmt::format("{}\n", why);
  } else if (head->method != "GET" && head->method != "HEAD") {
    status = 405;
    allow = "GET, HEAD";
    body = "only GET and HEAD are served\n";
  } else {
    const std::string_view path = head->target.substr(0, head->target.find('?'));
    if (path == "/metrics") {
      status = 200;
      body = render_prometheus(engine_, server_);
      content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (path == "/healthz") {
      status = 200;
      body = "ok\n";
    } else if (path == "/readyz") {
      // Ready once every shard has replayed its segments (the query port
      // listens from then on: the server starts after the replay).
      const bool ready = engine_.all_replayed() && !engine_.stopping();
      status = ready ? 200 : 503;
      body = ready ? "ready\n" : "not ready: replaying the segments, or stopping\n";
    } else {
      status = 404;
      content_type = nullptr;
    }
  }
  std::string& out = c.wbuf;
  out += fmt::format("HTTP/1.1 {} {}\r\n", status, http_reason(status));
  if (allow != nullptr) out += fmt::format("Allow: {}\r\n", allow);
  if (!keep) out += "Connection: close\r\n";
  if (keep && head->minor_version == 0) out += "Connection: keep-alive\r\n";
  out += fmt::format("Content-Length: {}\r\n", body.size());
  if (content_type != nullptr) out += fmt::format("Content-Type: {}\r\n", content_type);
  if (keep) out += keep_alive_header_;
  out += "\r\n";
  if (head == nullptr || head->method != "HEAD") out += body;
  c.close_after = !keep;
  c.phase = Phase::answering;
  c.since_ms = now_ms;  // the answer must be taken within request_timeout_ms
  counters_.requests.fetch_add(1, std::memory_order_relaxed);
}

void MetricsServer::flush(Connection& c, std::int64_t now_ms) {
  while (c.wpos < c.wbuf.size()) {
    const ssize_t n = ::send(c.fd, c.wbuf.data() + c.wpos, c.wbuf.size() - c.wpos, MSG_NOSIGNAL);
    if (n > 0) {
      c.wpos += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_interest(c, EPOLLOUT);
      return;
    } else {
      close_connection(c);
      return;
    }
  }
  c.wpos = 0;
  if (c.wbuf.capacity() > kReadChunk) {
    std::string().swap(c.wbuf);  // an idle connection keeps no scrape's buffer
  } else {
    c.wbuf.clear();
  }
  c.since_ms = now_ms;
  if (c.close_after) {
    ::shutdown(c.fd, SHUT_WR);
    c.phase = Phase::lingering;
    c.rbuf.clear();
  } else {
    c.phase = Phase::head;
    c.idle = c.rbuf.empty();  // else a pipelined head, due request_timeout_ms from now
  }
  set_interest(c, EPOLLIN);
}

// Every kTickMs: each phase's deadline.
void MetricsServer::sweep(std::int64_t now_ms) {
  std::vector<Connection*> expired;
  for (const auto& [id, c] : connections_) {
    const std::int64_t waited = now_ms - c->since_ms;
    if (c->phase == Phase::lingering) {
      if (waited >= kLingerMs) expired.push_back(c.get());
    } else if (c->phase == Phase::answering) {
      if (waited >= config_.request_timeout_ms) {
        counters_.send_timeouts.fetch_add(1, std::memory_order_relaxed);
        expired.push_back(c.get());
      }
    } else if (c->idle) {
      if (waited >= config_.idle_timeout_ms) {
        counters_.idle_closed.fetch_add(1, std::memory_order_relaxed);
        expired.push_back(c.get());
      }
    } else if (waited >= config_.request_timeout_ms) {
      counters_.request_timeouts.fetch_add(1, std::memory_order_relaxed);
      // Said if the socket takes it at once; the connection closes anyway.
      const std::string body = fmt::format("request head not whole within {} ms ([metrics] request_timeout_ms)\n",
                                           config_.request_timeout_ms);
      const std::string text = fmt::format("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: {}\r\n"
                                           "Content-Type: text/plain\r\n\r\n{}",
                                           body.size(), body);
      [[maybe_unused]] auto n = ::send(c->fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      expired.push_back(c.get());
    }
  }
  for (Connection* c : expired) close_connection(*c);
}

void MetricsServer::set_interest(Connection& c, std::uint32_t events) {
  if (c.interest == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.interest = events;
}

void MetricsServer::close_connection(Connection& c) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  counters_.connections.fetch_sub(1, std::memory_order_relaxed);
  if (!listening_) accept_paused_until_ms_ = 0;  // a descriptor is free: listen again
  connections_.erase(c.id);  // c is gone
}

}  // namespace spate::query
