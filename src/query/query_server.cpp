// The query server; see query_server.hpp and docs/protocol.md.
#include "query/query_server.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "io/file/source.hpp"
#include "io/net/socket.hpp"
#include "kernels/hash.hpp"

namespace spate::query {

using engine::QueryTask;

namespace {

constexpr std::uint32_t kMaxInflightPerConnection = 1024;
constexpr std::size_t kMaxUnsentBytes = 64u << 20;  // a client that does not read stops being read
constexpr std::size_t kReadChunk = 256 * 1024;
constexpr std::uint64_t kNotifyTag = UINT64_MAX;
constexpr std::uint64_t kListenTag = UINT64_MAX - 1;

// The wire type each request tag must have; 0 for tags requests do not use.
WireType expected_type(Tag tag) {
  switch (tag) {
    case Tag::version: case Tag::k: case Tag::producer_id: case Tag::sequence: return WireType::u64;
    case Tag::from_ms: case Tag::to_ms: case Tag::window_start: return WireType::i64;
    case Tag::client_name: case Tag::view: case Tag::key: case Tag::by: case Tag::payload: return WireType::bytes;
    default: return static_cast<WireType>(0);
  }
}


}  // namespace

struct QueryServer::Connection {
  int fd = -1;
  std::uint64_t id = 0;
  bool hello_done = false;
  bool closing = false;   // stop answering; shut down writing once wbuf is flushed
  bool draining = false;  // write side shut: discard input until the client closes
  bool reading = true;
  bool want_write = false;
  bool stalled = false;  // a PUBLISH waits for room in its shard's queue
  std::uint32_t inflight = 0;
  std::string rbuf;
  std::string wbuf;
};

struct QueryServer::Pending {
  int fd = -1;
  std::uint64_t connection_id = 0;
  std::uint32_t request_id = 0;
  Op op{};
  int view = -1;
  std::uint32_t k = 0;
  int by = 0;
  std::int64_t window_start = 0;
  std::uint32_t remaining = 0;  // shard tasks still out
  bool overloaded = false;      // a shard could not be asked: the answer is OVERLOADED
  std::vector<engine::ViewRow> rows;
  std::unique_ptr<QueryTask> publish;  // a publish waiting for its rows to be applied
};

QueryServer::QueryServer(engine::Engine& engine, const engine::Endpoint& listen)
    : engine_(engine), listen_(listen), inflight_per_shard_(engine.shard_count(), 0) {}

QueryServer::~QueryServer() {
  stop();
  for (auto& [fd, c] : connections_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (notify_fd_ >= 0) ::close(notify_fd_);
}

void QueryServer::start() {
  listen_fd_ = io::listen_tcp(listen_.host, listen_.port, false);
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
    const int timeout = waiting_publishes_.empty() ? 100 : 1;
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
    check_publishes();
    resume_reading();
    if (const std::int64_t now = io::monotonic_ms(); now >= next_dedup_sweep_ms_) {
      expire_producers(now);
      next_dedup_sweep_ms_ = now + 1000;
    }
  }
}

// Once a second: producers unseen for publish_dedup_ttl_ms are forgotten,
// so the table follows the live producers (a resend after that is applied
// again, as Kafka forgets an idle producer id).
void QueryServer::expire_producers(std::int64_t now_ms) {
  const std::int64_t ttl = engine_.config().publish_dedup_ttl_ms;
  for (auto it = producer_sequences_.begin(); it != producer_sequences_.end();) {
    if (now_ms - it->second.last_seen_ms < ttl) {
      ++it;
      continue;
    }
    const std::uint32_t shard =
        engine_.owner_of(kernels::hash_key(reinterpret_cast<const char*>(&it->first), sizeof(it->first)));
    engine::ShardCounters& k = engine_.shard(shard).counters();
    k.publish_producers.fetch_sub(1, std::memory_order_relaxed);
    k.publish_producers_expired.fetch_add(1, std::memory_order_relaxed);
    it = producer_sequences_.erase(it);
  }
}

void QueryServer::accept_all() {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->id = next_connection_id_++;
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

void QueryServer::close_connection(Connection& c) {
  const int fd = c.fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  connections_.erase(fd);  // answers still owed to it are dropped by connection id
}

void QueryServer::send(Connection& c, const std::string& frame) {
  c.wbuf.append(frame);
  on_writable(c);
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
  if (c.wbuf.empty() && c.closing && !c.draining) {
    // Shut down our side and let the client read the error before the
    // socket goes away (closing with unread input would reset it).
    ::shutdown(c.fd, SHUT_WR);
    c.draining = true;
    c.reading = true;
  }
  const bool want = !c.wbuf.empty();
  if (want != c.want_write) {
    c.want_write = want;
    update_interest(c);
  }
}

void QueryServer::reply_error(Connection& c, Op op, std::uint32_t request_id, Status status, std::string_view message) {
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
  if (c.reading) {
    const std::size_t old = c.rbuf.size();
    c.rbuf.resize(old + kReadChunk);
    const ssize_t n = ::recv(fd, c.rbuf.data() + old, kReadChunk, 0);
    c.rbuf.resize(old + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close_connection(c);
      return;
    }
  }
  std::size_t pos = 0;
  while (!c.closing && can_read(c)) {
    FrameHeader h;
    const std::string_view rest = std::string_view(c.rbuf).substr(pos);
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
  c.rbuf.erase(0, pos);
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
  switch (h.op) {
    case Op::ping: {
      std::string out;
      const auto mark = begin_frame(out, Op::ping, Status::ok, h.request_id);
      FieldReader reader(body);
      while (auto f = reader.next()) {
        if (f->tag == Tag::payload) FieldWriter(out).bytes(Tag::payload, f->bytes);
      }
      finish_frame(out, mark);
      send(c, out);
      return true;
    }
    case Op::stats:
      handle_stats(c, h);
      return true;
    case Op::view_get:
    case Op::view_top:
      handle_view(c, h, body);
      return true;
    case Op::publish:
      handle_publish(c, h, body);
      return true;
    case Op::hello:
      break;
  }
  reply_error(c, h.op, h.request_id, Status::unknown_op, fmt::format("unknown operation {}", static_cast<unsigned>(h.op)));
  return true;
}

void QueryServer::handle_hello(Connection& c, const FrameHeader& h, std::string_view body) {
  std::uint64_t version = 0;
  bool has_version = false;
  FieldReader reader(body);
  while (auto f = reader.next()) {
    if (f->tag == Tag::version && f->type == WireType::u64) {
      version = f->u;
      has_version = true;
    }
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

void QueryServer::handle_stats(Connection& c, const FrameHeader& h) {
  std::string out;
  const auto mark = begin_frame(out, Op::stats, Status::ok, h.request_id);
  FieldWriter w(out);
  const auto& config = engine_.config();
  for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
    const engine::ShardCounters& k = engine_.shard(s).counters();
    const auto shard_mark = w.begin_nested(Tag::shard);
    w.u64(Tag::shard_id, s);
    auto counter = [&](std::string_view name, std::uint64_t value) {
      const auto m = w.begin_nested(Tag::counter);
      w.bytes(Tag::name, name);
      w.u64(Tag::value_u64, value);
      w.end_nested(m);
    };
    auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    const engine::Shard& shard = engine_.shard(s);
    io::SourceTotals by_kind[engine::kSourceKinds];
    std::uint64_t bytes = 0, oversized = 0, late = 0;
    for (std::size_t src = 0; src < engine::kSourceKinds; ++src) {
      by_kind[src] = shard.source_totals(static_cast<engine::SourceKind>(src));
      bytes += by_kind[src].bytes_in;
      oversized += by_kind[src].oversized_lines;
    }
    for (std::size_t v = 0; v < config.views.size(); ++v) late += load(k.late[v]);
    counter("events_in", k.events());
    counter("bytes_in", bytes);
    counter("errors", k.rejected() + oversized);
    counter("late_events", late);
    counter("routed_out", load(k.routed_out));
    counter("routed_in", load(k.routed_in));
    counter("rows_applied", load(k.rows_applied));
    counter("ring_depth", engine_.ring_depth_into(s));
    counter("ring_full_waits", load(k.ring_full_waits));
    counter("publish.producers", load(k.publish_producers));
    counter("publish.producers_expired", load(k.publish_producers_expired));
    counter("keys", load(k.keys));
    counter("windows", load(k.windows));
    const std::int64_t wm = k.watermark_ms.load(std::memory_order_relaxed);
    counter("watermark_ms", wm == INT64_MIN ? 0 : static_cast<std::uint64_t>(wm));
    counter("active", engine_.shard(s).active() ? 1 : 0);
    counter("inputs_open", load(k.inputs_open));
    counter("inputs_active", load(k.inputs_active));
    counter("tcp.connections", by_kind[static_cast<std::size_t>(engine::SourceKind::tcp)].connections);
    counter("udp.drops", by_kind[static_cast<std::size_t>(engine::SourceKind::udp)].drops);
    for (std::size_t v = 0; v < config.views.size(); ++v) counter("late." + config.views[v].name, load(k.late[v]));
    for (std::size_t src = 0; src < engine::kSourceKinds; ++src) {
      const std::string prefix = engine::source_kind_name(static_cast<engine::SourceKind>(src));
      counter(prefix + ".events_in", load(k.events_in[src]));
      counter(prefix + ".bytes_in", by_kind[src].bytes_in);
      counter(prefix + ".inputs", by_kind[src].inputs);
      for (std::size_t r = 1; r < engine::kRejectReasons; ++r) {
        std::uint64_t n = load(k.errors[src][r]);
        if (static_cast<engine::Reject>(r) == engine::Reject::oversized_line) n += by_kind[src].oversized_lines;
        counter(prefix + ".errors." + engine::reject_name(static_cast<engine::Reject>(r)), n);
      }
    }
    w.end_nested(shard_mark);
  }
  finish_frame(out, mark);
  send(c, out);
}

bool QueryServer::has_capacity(std::uint32_t shard) const noexcept {
  // In-flight tasks per shard never exceed the response ring, so a shard never waits to answer.
  return inflight_per_shard_[shard] < engine_.shard(shard).requests().capacity();
}

bool QueryServer::submit(std::uint32_t shard, QueryTask* task) {
  auto& ring = engine_.shard(shard).requests();
  if (!has_capacity(shard)) return false;
  QueryTask** slot = ring.claim();
  if (slot == nullptr) return false;
  *slot = task;
  ring.publish();
  ++inflight_per_shard_[shard];
  engine_.shard(shard).wake();
  return true;
}

void QueryServer::handle_view(Connection& c, const FrameHeader& h, std::string_view body) {
  std::string_view view_name, key, by = "count";
  bool has_key = false, has_window = false;
  std::int64_t from = INT64_MIN, to = INT64_MAX, window_start = 0;
  std::uint64_t k = 10;
  FieldReader reader(body);
  while (auto f = reader.next()) {
    switch (f->tag) {
      case Tag::view: view_name = f->bytes; break;
      case Tag::key: key = f->bytes; has_key = true; break;
      case Tag::from_ms: from = f->as_i64(); break;
      case Tag::to_ms: to = f->as_i64(); break;
      case Tag::window_start: window_start = f->as_i64(); has_window = true; break;
      case Tag::k: k = f->u; break;
      case Tag::by: by = f->bytes; break;
      default: break;  // unknown fields are skipped
    }
  }
  const auto& config = engine_.config();
  const int view = config.find_view(view_name);
  if (view < 0) {
    reply_error(c, h.op, h.request_id, Status::unknown_view, fmt::format("no view named '{}'", view_name));
    return;
  }
  auto pending = std::make_unique<Pending>();
  pending->fd = c.fd;
  pending->connection_id = c.id;
  pending->request_id = h.request_id;
  pending->op = h.op;
  pending->view = view;
  const std::uint64_t ticket = next_ticket_++;
  if (h.op == Op::view_get) {
    if (!has_key || key.size() > kMaxKeyBytes) {
      reply_error(c, h.op, h.request_id, Status::bad_request,
                  has_key ? fmt::format("KEY longer than {} bytes", kMaxKeyBytes) : std::string("VIEW_GET needs KEY"));
      return;
    }
    auto* task = new QueryTask;
    task->kind = QueryTask::Kind::view_get;
    task->ticket = ticket;
    task->view = view;
    task->key = std::string(key);
    task->hash = kernels::hash_key(key);
    task->from_ms = from;
    task->to_ms = to;
    if (!submit(engine_.owner_of(task->hash), task)) {
      delete task;
      reply_error(c, h.op, h.request_id, Status::overloaded, "shard request queue is full; retry");
      return;
    }
    pending->remaining = 1;
  } else {
    const int agg = config.find_aggregate(view, by);
    if (agg < 0) {
      reply_error(c, h.op, h.request_id, Status::unknown_aggregate,
                  fmt::format("view '{}' has no aggregate '{}'", view_name, by));
      return;
    }
    if (k == 0 || k > kMaxTopK) {
      reply_error(c, h.op, h.request_id, Status::bad_request, fmt::format("K must be in [1, {}]", kMaxTopK));
      return;
    }
    if (!has_window) {
      // The newest window any shard has rows in.
      window_start = INT64_MIN;
      for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
        window_start = std::max(window_start, engine_.shard(s).counters().newest_window[view].load(std::memory_order_relaxed));
      }
    }
    pending->k = static_cast<std::uint32_t>(k);
    pending->by = agg;
    pending->window_start = window_start;
    for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
      auto* task = new QueryTask;
      task->kind = QueryTask::Kind::view_top;
      task->ticket = ticket;
      task->view = view;
      task->window_start = window_start;
      task->k = static_cast<std::uint32_t>(k);
      task->by = agg;
      if (!submit(s, task)) {
        delete task;
        continue;  // the merge then misses this shard; reported below by remaining mismatch
      }
      ++pending->remaining;
    }
    if (pending->remaining == 0) {
      reply_error(c, h.op, h.request_id, Status::overloaded, "every shard request queue is full; retry");
      return;
    }
    // Some shards were not asked: answer OVERLOADED once the others return.
    pending->overloaded = pending->remaining != engine_.shard_count();
  }
  ++c.inflight;
  pending_[ticket] = std::move(pending);
}

void QueryServer::handle_publish(Connection& c, const FrameHeader& h, std::string_view body) {
  std::uint64_t producer = 0, sequence = 0;
  std::string_view payload;
  bool has_payload = false;
  FieldReader reader(body);
  while (auto f = reader.next()) {
    switch (f->tag) {
      case Tag::producer_id: producer = f->u; break;
      case Tag::sequence: sequence = f->u; break;
      case Tag::payload: payload = f->bytes; has_payload = true; break;
      default: break;
    }
  }
  if (!has_payload) {
    reply_error(c, h.op, h.request_id, Status::bad_request, "PUBLISH needs PAYLOAD");
    return;
  }
  // One producer's batches always go to the same shard, so they are applied
  // in the order they were sent (like a Kafka partition); producers spread.
  const std::uint32_t shard = engine_.owner_of(kernels::hash_key(reinterpret_cast<const char*>(&producer), sizeof(producer)));
  if (sequence != 0) {
    const auto known = producer_sequences_.find(producer);
    if (known != producer_sequences_.end() && sequence <= known->second.sequence) {
      known->second.last_seen_ms = io::monotonic_ms();
      std::string out;
      const auto mark = begin_frame(out, Op::publish, Status::ok, h.request_id);
      FieldWriter w(out);
      w.u64(Tag::accepted, 0);
      w.u64(Tag::rejected, 0);
      w.u64(Tag::duplicate, 1);
      finish_frame(out, mark);
      send(c, out);
      return;
    }
  }
  if (!has_capacity(shard)) {
    // Backpressure: leave the frame unread and stop reading this
    // connection until the shard catches up (resume_reading retries).
    c.stalled = true;
    return;
  }
  if (sequence != 0) {
    auto [state, added] = producer_sequences_.try_emplace(producer);
    state->second = {sequence, io::monotonic_ms()};
    if (added) engine_.shard(shard).counters().publish_producers.fetch_add(1, std::memory_order_relaxed);
  }
  auto* task = new QueryTask;
  task->kind = QueryTask::Kind::publish;
  task->ticket = next_ticket_++;
  task->payload.resize(payload.size() + engine::kPadding);
  std::copy(payload.begin(), payload.end(), task->payload.begin());
  task->payload_len = payload.size();
  task->producer = producer;
  task->sequence = sequence;
  submit(shard, task);  // has_capacity said it fits
  auto pending = std::make_unique<Pending>();
  pending->fd = c.fd;
  pending->connection_id = c.id;
  pending->request_id = h.request_id;
  pending->op = Op::publish;
  pending->remaining = 1;
  ++c.inflight;
  pending_[task->ticket] = std::move(pending);
}

void QueryServer::collect_responses() {
  for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
    auto& ring = engine_.shard(s).responses();
    while (QueryTask** slot = ring.front()) {
      std::unique_ptr<QueryTask> task(*slot);
      ring.pop();
      --inflight_per_shard_[s];
      auto it = pending_.find(task->ticket);
      if (it == pending_.end()) continue;
      Pending& p = *it->second;
      if (task->kind == QueryTask::Kind::publish) {
        p.publish = std::move(task);
        waiting_publishes_.push_back(it->first);
        continue;
      }
      std::move(task->rows.begin(), task->rows.end(), std::back_inserter(p.rows));
      if (--p.remaining == 0) {
        finish(p);
        pending_.erase(it);
      }
    }
  }
}

void QueryServer::check_publishes() {
  auto done = [&](std::uint64_t ticket) {
    auto it = pending_.find(ticket);
    if (it == pending_.end()) return true;
    for (const auto& [ring, target] : it->second->publish->waits) {
      if (ring->popped() < target) return false;
    }
    finish(*it->second);
    pending_.erase(it);
    return true;
  };
  waiting_publishes_.erase(std::remove_if(waiting_publishes_.begin(), waiting_publishes_.end(), done),
                           waiting_publishes_.end());
}

void QueryServer::finish(Pending& p) {
  const auto it = connections_.find(p.fd);
  if (it == connections_.end() || it->second->id != p.connection_id) return;  // the client went away
  Connection* c = it->second.get();
  --c->inflight;
  const auto& config = engine_.config();
  std::string out;
  if (p.op == Op::publish) {
    const auto mark = begin_frame(out, Op::publish, Status::ok, p.request_id);
    FieldWriter w(out);
    w.u64(Tag::accepted, p.publish->accepted);
    w.u64(Tag::rejected, p.publish->rejected);
    w.u64(Tag::duplicate, 0);
    finish_frame(out, mark);
  } else if (p.overloaded) {
    reply_error(*c, p.op, p.request_id, Status::overloaded, "a shard request queue is full; retry");
    return;
  } else {
    const auto& view = config.views[static_cast<std::size_t>(p.view)];
    if (p.op == Op::view_top) {
      const int by = p.by;
      std::sort(p.rows.begin(), p.rows.end(), [by](const engine::ViewRow& a, const engine::ViewRow& b) {
        const double va = a.values[static_cast<std::size_t>(by)].as_double();
        const double vb = b.values[static_cast<std::size_t>(by)].as_double();
        if (va != vb) return va > vb;
        return a.key < b.key;
      });
      if (p.rows.size() > p.k) p.rows.resize(p.k);
    }
    const auto mark = begin_frame(out, p.op, Status::ok, p.request_id);
    FieldWriter w(out);
    if (p.op == Op::view_top && p.window_start != INT64_MIN) w.i64(Tag::window_start, p.window_start);
    std::size_t n = 0;
    for (const auto& row : p.rows) {
      // Stay within the frame limit with room for one more row and the flag.
      if (n++ == kMaxRowsPerResponse || out.size() - mark > kDefaultMaxFrameBytes - (64u << 10)) {
        w.u64(Tag::truncated, 1);
        break;
      }
      const auto rm = w.begin_nested(Tag::row);
      w.bytes(Tag::key, row.key);
      w.i64(Tag::window_start, row.window_start);
      w.i64(Tag::window_end, row.window_end);
      w.u64(Tag::closed, row.closed ? 1 : 0);
      for (std::size_t a = 0; a < view.aggregates.size(); ++a) {
        const auto am = w.begin_nested(Tag::agg);
        w.bytes(Tag::name, view.aggregates[a].label);
        if (row.values[a].integral) {
          w.u64(Tag::value_u64, row.values[a].u);
        } else {
          w.f64(Tag::value_f64, row.values[a].d);
        }
        w.end_nested(am);
      }
      w.end_nested(rm);
    }
    finish_frame(out, mark);
  }
  send(*c, out);
}

bool QueryServer::can_read(const Connection& c) const noexcept {
  return c.inflight < kMaxInflightPerConnection && c.wbuf.size() < kMaxUnsentBytes;
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
