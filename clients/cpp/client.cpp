// C++ client for the query protocol (docs/protocol.md): a blocking TCP socket,
// the HELLO handshake, request/reply matching by id, and decoding of replies.
#include "client/client.hpp"

#include "client/connect.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <iterator>
#include <cstring>

#ifndef SPATE_VERSION
#define SPATE_VERSION "unknown"
#endif

namespace spate::query {
namespace {

// Replies are bounded by the server's max_frame, but a client that refuses a
// reply only loses it: accept up to this much before calling the stream garbage.
constexpr std::uint32_t kMaxReplyBytes = 256u << 20;
constexpr std::size_t kReadChunkBytes = 64 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

[[noreturn]] void malformed(const std::string& what) {
  throw ClientError(Status::internal, "malformed reply: " + what);
}

void expect_type(const Field& f, WireType type, const char* name) {
  if (f.type != type) malformed(std::string(name) + " has wire type " + std::to_string(static_cast<int>(f.type)));
}

// Error text of a reply, or a placeholder when the server sent none.
std::string error_text(std::string_view body) {
  FieldReader r(body);
  std::string text;
  while (auto f = r.next()) {
    if (f->tag == Tag::error && f->type == WireType::bytes) text.assign(f->bytes);
  }
  return text.empty() ? std::string("(no message)") : text;
}

bool server_closes_after(Status status) {
  return status == Status::frame_too_large || status == Status::version_unsupported ||
         status == Status::handshake_required;
}

Aggregate decode_aggregate(std::string_view body) {
  Aggregate a;
  bool has_value = false;
  FieldReader r(body);
  while (auto f = r.next()) {
    switch (f->tag) {
      case Tag::name:
        expect_type(*f, WireType::bytes, "NAME");
        a.name.assign(f->bytes);
        break;
      case Tag::value_u64:
        expect_type(*f, WireType::u64, "VALUE_U64");
        a.value = static_cast<double>(f->u);
        a.integer = true;
        a.exact = static_cast<std::int64_t>(std::min<std::uint64_t>(f->u, INT64_MAX));
        has_value = true;
        break;
      case Tag::value_i64:
        expect_type(*f, WireType::i64, "VALUE_I64");
        a.exact = static_cast<std::int64_t>(f->u);
        a.value = static_cast<double>(a.exact);
        a.integer = true;
        has_value = true;
        break;
      case Tag::value_f64:
        expect_type(*f, WireType::f64, "VALUE_F64");
        a.value = f->f;
        a.integer = false;
        has_value = true;
        break;
      default:
        break;  // unknown fields are skipped (forward compatibility)
    }
  }
  if (r.error()) malformed("AGG field");
  if (!has_value) malformed("AGG '" + a.name + "' without a value");
  return a;
}

WindowRow decode_row(std::string_view body) {
  WindowRow row;
  FieldReader r(body);
  while (auto f = r.next()) {
    switch (f->tag) {
      case Tag::key:
        expect_type(*f, WireType::bytes, "KEY");
        row.key.assign(f->bytes);
        break;
      case Tag::window_start:
        expect_type(*f, WireType::i64, "WINDOW_START");
        row.window_start = f->as_i64();
        break;
      case Tag::window_end:
        expect_type(*f, WireType::i64, "WINDOW_END");
        row.window_end = f->as_i64();
        break;
      case Tag::closed:
        expect_type(*f, WireType::u64, "CLOSED");
        row.closed = f->u != 0;
        break;
      case Tag::agg:
        expect_type(*f, WireType::nested, "AGG");
        row.aggregates.push_back(decode_aggregate(f->bytes));
        break;
      default:
        break;
    }
  }
  if (r.error()) malformed("ROW field");
  return row;
}

std::vector<WindowRow> decode_rows(std::string_view body) {
  std::vector<WindowRow> rows;
  FieldReader r(body);
  while (auto f = r.next()) {
    if (f->tag == Tag::row) {
      expect_type(*f, WireType::nested, "ROW");
      rows.push_back(decode_row(f->bytes));
    }
  }
  if (r.error()) malformed("frame fields");
  return rows;
}

StatsHistogram decode_histogram(std::string_view body) {
  StatsHistogram h;
  FieldReader r(body);
  while (auto f = r.next()) {
    if (f->tag == Tag::name) {
      expect_type(*f, WireType::bytes, "NAME");
      h.name.assign(f->bytes);
    } else if (f->tag == Tag::value_f64) {
      expect_type(*f, WireType::f64, "VALUE_F64");
      h.sum = f->f;
    } else if (f->tag == Tag::bucket) {
      expect_type(*f, WireType::nested, "BUCKET");
      std::uint64_t bound = 0, count = 0;
      FieldReader b(f->bytes);
      while (auto g = b.next()) {
        if (g->tag == Tag::bound) {
          expect_type(*g, WireType::u64, "BOUND");
          bound = g->u;
        } else if (g->tag == Tag::value_u64) {
          expect_type(*g, WireType::u64, "VALUE_U64");
          count = g->u;
        }
      }
      if (b.error()) malformed("BUCKET field");
      h.buckets.emplace_back(bound, count);
    }
  }
  if (r.error()) malformed("HISTOGRAM field");
  std::sort(h.buckets.begin(), h.buckets.end());
  return h;
}

ShardStats decode_shard(std::string_view body) {
  ShardStats s;
  FieldReader r(body);
  while (auto f = r.next()) {
    if (f->tag == Tag::shard_id) {
      expect_type(*f, WireType::u64, "SHARD_ID");
      s.shard = static_cast<std::uint32_t>(f->u);
    } else if (f->tag == Tag::counter) {
      expect_type(*f, WireType::nested, "COUNTER");
      std::string name;
      std::uint64_t value = 0;
      StatKind kind = StatKind::counter;
      FieldReader c(f->bytes);
      while (auto g = c.next()) {
        if (g->tag == Tag::name) {
          expect_type(*g, WireType::bytes, "NAME");
          name.assign(g->bytes);
        } else if (g->tag == Tag::value_u64) {
          expect_type(*g, WireType::u64, "VALUE_U64");
          value = g->u;
        } else if (g->tag == Tag::kind) {
          expect_type(*g, WireType::u64, "KIND");
          kind = g->u == static_cast<std::uint64_t>(StatKind::gauge) ? StatKind::gauge : StatKind::counter;
        }
      }
      if (c.error()) malformed("COUNTER field");
      s.counters.emplace_back(std::move(name), value);
      s.kinds.push_back(kind);
    } else if (f->tag == Tag::histogram) {
      expect_type(*f, WireType::nested, "HISTOGRAM");
      s.histograms.push_back(decode_histogram(f->bytes));
    }
  }
  if (r.error()) malformed("SHARD field");
  return s;
}

PublishResult decode_publish(std::string_view body) {
  PublishResult p;
  FieldReader r(body);
  while (auto f = r.next()) {
    if (f->tag == Tag::accepted) {
      expect_type(*f, WireType::u64, "ACCEPTED");
      p.accepted = f->u;
    } else if (f->tag == Tag::rejected) {
      expect_type(*f, WireType::u64, "REJECTED");
      p.rejected = f->u;
    } else if (f->tag == Tag::duplicate) {
      expect_type(*f, WireType::u64, "DUPLICATE");
      p.duplicate = f->u != 0;
    }
  }
  if (r.error()) malformed("frame fields");
  return p;
}

std::string publish_fields(std::uint64_t producer_id, std::uint64_t sequence, std::string_view ndjson) {
  std::string fields;
  fields.reserve(3 * kFieldHeaderBytes + 16 + ndjson.size());
  FieldWriter w(fields);
  w.u64(Tag::producer_id, producer_id);
  w.u64(Tag::sequence, sequence);
  w.bytes(Tag::payload, ndjson);
  return fields;
}

}  // namespace

std::optional<double> WindowRow::get(std::string_view name) const {
  for (const auto& a : aggregates) {
    if (a.name == name) return a.value;
  }
  return std::nullopt;
}

std::uint64_t ShardStats::get(std::string_view name) const {
  for (const auto& [n, v] : counters) {
    if (n == name) return v;
  }
  return 0;
}

const StatsHistogram* ShardStats::histogram(std::string_view name) const {
  for (const auto& h : histograms) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

std::uint64_t StatsHistogram::count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& b : buckets) n += b.second;
  return n;
}

std::uint64_t StatsHistogram::quantile(double q) const noexcept {
  const std::uint64_t n = count();
  if (n == 0) return 0;
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n))));
  std::uint64_t seen = 0;
  for (const auto& [bound, c] : buckets) {
    seen += c;
    if (seen >= rank) return bound;
  }
  return buckets.back().first;
}

void StatsHistogram::merge(const StatsHistogram& other) {
  sum += other.sum;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  std::merge(buckets.begin(), buckets.end(), other.buckets.begin(), other.buckets.end(), std::back_inserter(out));
  buckets.clear();
  for (const auto& b : out) {
    if (!buckets.empty() && buckets.back().first == b.first) {
      buckets.back().second += b.second;
    } else {
      buckets.push_back(b);
    }
  }
}

Client::Client(const std::string& host, std::uint16_t port, int timeout_ms, const std::string& auth_token) {
  peer_ = host + ":" + std::to_string(port);
  connect_to(host, port, timeout_ms);
  try {
    handshake(auth_token);
  } catch (...) {
    close_fd();  // no destructor runs for a constructor that throws
    throw;
  }
}

Client::~Client() { close_fd(); }

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      next_id_(other.next_id_),
      max_frame_(other.max_frame_),
      server_name_(std::move(other.server_name_)),
      rbuf_(std::move(other.rbuf_)),
      peer_(std::move(other.peer_)),
      pending_(std::move(other.pending_)),
      stash_(std::move(other.stash_)) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    close_fd();
    fd_ = std::exchange(other.fd_, -1);
    next_id_ = other.next_id_;
    max_frame_ = other.max_frame_;
    server_name_ = std::move(other.server_name_);
    rbuf_ = std::move(other.rbuf_);
    peer_ = std::move(other.peer_);
    pending_ = std::move(other.pending_);
    stash_ = std::move(other.stash_);
  }
  return *this;
}

void Client::close_fd() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pending_.clear();
  stash_.clear();
  rbuf_.clear();
}

void Client::fail(const std::string& message) {
  close_fd();
  throw ClientError(Status::internal, message);
}

void Client::connect_to(const std::string& host, std::uint16_t port, int timeout_ms) {
  std::string error;
  fd_ = connect_socket(host, port, SOCK_STREAM, timeout_ms, error);
  if (fd_ < 0) throw ClientError(Status::internal, "connect to " + peer_ + ": " + error);
  // Blocking from here on, with the timeout applied to every send and receive.
  if (timeout_ms > 0) {
    timeval tv{};
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
}

void Client::handshake(const std::string& auth_token) {
  std::string fields;
  FieldWriter w(fields);
  w.u64(Tag::version, kProtocolVersion);
  w.bytes(Tag::client_name, "spate-client " SPATE_VERSION);
  if (!auth_token.empty()) w.bytes(Tag::auth_token, auth_token);
  Reply reply = call(Op::hello, fields);
  bool has_version = false;
  FieldReader r(reply.body());
  while (auto f = r.next()) {
    if (f->tag == Tag::version) {
      expect_type(*f, WireType::u64, "VERSION");
      has_version = f->u == kProtocolVersion;
    } else if (f->tag == Tag::max_frame) {
      expect_type(*f, WireType::u64, "MAX_FRAME");
      if (f->u < kFrameHeaderBytes) fail("malformed reply: MAX_FRAME " + std::to_string(f->u));
      max_frame_ = f->u > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(f->u);
    } else if (f->tag == Tag::server_name) {
      expect_type(*f, WireType::bytes, "SERVER_NAME");
      server_name_.assign(f->bytes);
    }
  }
  if (r.error()) fail("malformed reply: HELLO fields");
  if (!has_version) fail("malformed reply: HELLO without VERSION 1");
}

void Client::write_all(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) fail("send to " + peer_ + ": timed out");
      fail("send to " + peer_ + ": " + errno_text(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::uint32_t Client::send(Op op, const std::string& fields) {
  if (fd_ < 0) throw ClientError(Status::internal, peer_.empty() ? "not connected" : "not connected to " + peer_);
  if (fields.size() > max_frame_ - (kFrameHeaderBytes - 4)) {
    // The server would answer FRAME_TOO_LARGE and close; refuse it here instead.
    throw ClientError(Status::frame_too_large, std::string("FRAME_TOO_LARGE: ") + op_name(op) + " request of " +
                                                   std::to_string(fields.size() + kFrameHeaderBytes - 4) +
                                                   " bytes exceeds the server's limit of " +
                                                   std::to_string(max_frame_) + " bytes");
  }
  // Id 0 is what the server uses for errors not tied to a request; skip it,
  // and any id still awaiting an answer after a wrap-around.
  std::uint32_t id = next_id_;
  while (id == 0 || pending_.count(id) != 0) ++id;
  next_id_ = id + 1;

  std::string frame;
  frame.reserve(kFrameHeaderBytes + fields.size());
  const std::size_t mark = begin_frame(frame, op, Status::ok, id);
  frame.append(fields);
  finish_frame(frame, mark);
  write_all(frame);
  return id;
}

Client::Reply Client::receive() {
  if (fd_ < 0) throw ClientError(Status::internal, peer_.empty() ? "not connected" : "not connected to " + peer_);
  for (;;) {
    FrameHeader header;
    switch (peek_frame(rbuf_, kMaxReplyBytes, header)) {
      case FrameParse::complete: {
        const std::size_t size = std::size_t{header.length} + 4;
        Reply reply{header, rbuf_.substr(0, size)};
        rbuf_.erase(0, size);
        return reply;
      }
      case FrameParse::too_large:
        fail("malformed reply: frame of " + std::to_string(header.length) + " bytes");
      case FrameParse::malformed:
        fail("malformed reply: frame length " + std::to_string(header.length));
      case FrameParse::need_more:
        break;
    }
    std::size_t want = kReadChunkBytes;
    if (rbuf_.size() >= 4 && header.length + std::size_t{4} > rbuf_.size()) {
      want = std::max(want, header.length + std::size_t{4} - rbuf_.size());
    }
    const std::size_t old = rbuf_.size();
    rbuf_.resize(old + want);
    ssize_t n;
    do {
      n = ::recv(fd_, rbuf_.data() + old, want, 0);
    } while (n < 0 && errno == EINTR);
    rbuf_.resize(old + (n > 0 ? static_cast<std::size_t>(n) : 0));
    if (n == 0) fail("connection closed by " + peer_);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) fail("receive from " + peer_ + ": timed out");
      fail("receive from " + peer_ + ": " + errno_text(errno));
    }
  }
}

void Client::check_status(const Reply& reply) {
  const Status status = reply.header.status;
  if (status == Status::ok) return;
  std::string message = std::string(status_name(status)) + ": " + error_text(reply.body());
  if (server_closes_after(status) || reply.header.request_id == 0) close_fd();
  throw ClientError(status, message);
}

Client::Reply Client::call(Op op, const std::string& fields) {
  const std::uint32_t id = send(op, fields);
  for (;;) {
    Reply reply = receive();
    const std::uint32_t got = reply.header.request_id;
    if (got == id) {
      check_status(reply);
      if (reply.header.op != op) {
        fail(std::string("malformed reply: ") + op_name(op) + " answered with op " +
             std::to_string(static_cast<unsigned>(reply.header.op)));
      }
      return reply;
    }
    if (pending_.erase(got) != 0) {
      stash_.push_back(std::move(reply));  // a pipelined PUBLISH answered meanwhile
      continue;
    }
    if (got == 0) check_status(reply);  // an error about the connection, not a request
    fail("malformed reply: answer to request " + std::to_string(got) + " while waiting for " + std::to_string(id));
  }
}

void Client::ping() { call(Op::ping, {}); }

std::vector<ShardStats> Client::stats() {
  Reply reply = call(Op::stats, {});
  std::vector<ShardStats> shards;
  FieldReader r(reply.body());
  while (auto f = r.next()) {
    if (f->tag == Tag::shard) {
      expect_type(*f, WireType::nested, "SHARD");
      shards.push_back(decode_shard(f->bytes));
    }
  }
  if (r.error()) malformed("frame fields");
  return shards;
}

std::vector<WindowRow> Client::view_get(std::string_view view, std::string_view key, std::int64_t from_ms,
                                        std::int64_t to_ms) {
  std::string fields;
  FieldWriter w(fields);
  w.bytes(Tag::view, view);
  w.bytes(Tag::key, key);
  if (from_ms != INT64_MIN) w.i64(Tag::from_ms, from_ms);
  if (to_ms != INT64_MAX) w.i64(Tag::to_ms, to_ms);
  return decode_rows(call(Op::view_get, fields).body());
}

std::vector<WindowRow> Client::view_top(std::string_view view, std::optional<std::int64_t> window_start,
                                        std::uint32_t k, std::string_view by) {
  std::string fields;
  FieldWriter w(fields);
  w.bytes(Tag::view, view);
  if (window_start) w.i64(Tag::window_start, *window_start);
  w.u64(Tag::k, k);
  w.bytes(Tag::by, by);
  return decode_rows(call(Op::view_top, fields).body());
}

PublishResult Client::publish(std::uint64_t producer_id, std::uint64_t sequence, std::string_view ndjson) {
  return decode_publish(call(Op::publish, publish_fields(producer_id, sequence, ndjson)).body());
}

std::uint32_t Client::publish_send(std::uint64_t producer_id, std::uint64_t sequence, std::string_view ndjson) {
  const std::uint32_t id = send(Op::publish, publish_fields(producer_id, sequence, ndjson));
  pending_.insert(id);
  return id;
}

std::pair<std::uint32_t, PublishResult> Client::publish_receive() {
  Reply reply;
  if (!stash_.empty()) {
    reply = std::move(stash_.front());
    stash_.pop_front();
  } else {
    if (pending_.empty()) throw ClientError(Status::internal, "publish_receive: no PUBLISH is outstanding");
    for (;;) {
      reply = receive();
      if (pending_.erase(reply.header.request_id) != 0) break;
      if (reply.header.request_id == 0) check_status(reply);
      fail("malformed reply: answer to request " + std::to_string(reply.header.request_id) +
           ", which is not an outstanding PUBLISH");
    }
  }
  try {
    check_status(reply);
  } catch (const ClientError& e) {
    throw ClientError(e.status(), std::string(e.what()) + " (PUBLISH request " +
                                      std::to_string(reply.header.request_id) + ")");
  }
  if (reply.header.op != Op::publish) {
    fail("malformed reply: PUBLISH answered with op " + std::to_string(static_cast<unsigned>(reply.header.op)));
  }
  return {reply.header.request_id, decode_publish(reply.body())};
}

}  // namespace spate::query
