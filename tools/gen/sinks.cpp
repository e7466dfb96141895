// The output side of spate-gen: the file, TCP, UDP and PUBLISH sinks, and the output threads'
// loop that feeds a sink from its queue.
#include "gen/sinks.hpp"

#include "client/connect.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace spate::gen {

std::string errno_text(int err) { return std::strerror(err); }

std::size_t datagram_end(const char* base, std::size_t n, std::size_t start, std::size_t payload) noexcept {
  std::size_t end = start;
  while (end < n) {
    const void* nl = std::memchr(base + end, '\n', n - end);
    const std::size_t line_end = nl != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nl) - base) + 1 : n;
    if (line_end - start > payload && end > start) break;
    end = line_end;
    if (end - start >= payload) break;
  }
  return end;
}

int connect_to(const Endpoint& ep, int socktype, const char* option) {
  std::string error;
  const int fd = query::connect_socket(ep.host, ep.port, socktype, 10000, error);
  if (fd < 0) throw std::runtime_error(fmt::format("{} {}: cannot connect: {}", option, ep.text, error));
  return fd;
}

namespace {

void write_all(int fd, const char* p, std::size_t n, bool socket, const std::string& what) {
  while (n > 0) {
    const ssize_t w = socket ? ::send(fd, p, n, MSG_NOSIGNAL) : ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(fmt::format("{}: {}", what, errno_text(errno)));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

class FileSink final : public Sink {
 public:
  FileSink(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~FileSink() override {
    if (owned_) ::close(fd_);
  }
  bool send(Chunk& c) override {
    write_all(fd_, c.data.get(), c.len, false, name_);
    return false;
  }
  void flush() override {
    if (owned_ && ::close(fd_) != 0) {
      owned_ = false;
      throw std::runtime_error(fmt::format("{}: {}", name_, errno_text(errno)));
    }
    owned_ = false;
  }

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

class TcpSink final : public Sink {
 public:
  TcpSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  ~TcpSink() override { ::close(fd_); }
  bool send(Chunk& c) override {
    write_all(fd_, c.data.get(), c.len, true, name_);
    discard_input(false);
    return false;
  }
  void flush() override {
    if (::shutdown(fd_, SHUT_WR) != 0) throw std::runtime_error(fmt::format("{}: {}", name_, errno_text(errno)));
  }
  // Reads until the peer closes (or 500 ms of silence), so unread replies do not turn our close
  // into a reset that could discard data the peer has not read yet.
  void linger() override { discard_input(true); }

 private:
  // Drops whatever the peer sent (acks); the peer must not stall on a full send buffer.
  void discard_input(bool until_eof) {
    char buf[16384];
    for (;;) {
      if (until_eof) {
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 500) <= 0) return;
      }
      const ssize_t r = ::recv(fd_, buf, sizeof buf, until_eof ? 0 : MSG_DONTWAIT);
      if (r > 0) continue;
      if (r < 0 && errno == EINTR) continue;
      if (r == 0 && !until_eof) throw std::runtime_error(fmt::format("{}: connection closed by peer", name_));
      return;
    }
  }
  int fd_;
  std::string name_;
};

// Packs whole lines into datagrams of at most `payload` bytes (a longer line goes alone) and
// sends them with sendmmsg, 64 per call.
class UdpSink final : public Sink {
 public:
  UdpSink(int fd, std::size_t payload, std::string name, Shared& shared)
      : fd_(fd), payload_(payload), name_(std::move(name)), shared_(shared) {}
  ~UdpSink() override { ::close(fd_); }
  bool send(Chunk& c) override {
    const char* base = c.data.get();
    const std::size_t n = c.len;
    std::size_t pos = 0;
    while (pos < n) {
      unsigned count = 0;
      while (count < kBatch && pos < n) {
        const std::size_t start = pos;
        const std::size_t end = datagram_end(base, n, start, payload_);
        iov_[count].iov_base = const_cast<char*>(base + start);
        iov_[count].iov_len = end - start;
        msgs_[count] = mmsghdr{};
        msgs_[count].msg_hdr.msg_iov = &iov_[count];
        msgs_[count].msg_hdr.msg_iovlen = 1;
        ++count;
        pos = end;
      }
      send_batch(count);
    }
    return false;
  }

 private:
  static constexpr unsigned kBatch = 64;
  void send_batch(unsigned count) {
    unsigned done = 0;
    while (done < count) {
      const int r = ::sendmmsg(fd_, msgs_.data() + done, count - done, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS || errno == EAGAIN) {
          std::this_thread::sleep_for(std::chrono::microseconds(50));
          continue;
        }
        if (errno == ECONNREFUSED) {
          throw std::runtime_error(fmt::format("{}: nobody is listening (port unreachable)", name_));
        }
        throw std::runtime_error(fmt::format("{}: {}", name_, errno_text(errno)));
      }
      done += static_cast<unsigned>(r);
    }
    shared_.datagrams += count;
  }
  int fd_;
  std::size_t payload_;
  std::string name_;
  Shared& shared_;
  std::array<mmsghdr, kBatch> msgs_{};
  std::array<iovec, kBatch> iov_{};
};

// One PUBLISH per chunk, sequence 1, 2, 3...; up to 16 batches in flight. A chunk is kept until
// its answer arrives: a batch refused with OVERLOADED (nothing applied) is sent again under a
// new sequence once every other answer is in, after a backoff.
class PublishSink final : public Sink {
 public:
  PublishSink(query::Client client, std::uint64_t producer_id, std::string name, Shared& shared)
      : client_(std::move(client)), producer_id_(producer_id), name_(std::move(name)), shared_(shared) {}
  bool send(Chunk& c) override {
    while (inflight_.size() >= kMaxInflightBatches) receive_one();  // refused ones count: they hold chunks
    publish(&c, next_sequence_++);
    ++shared_.batches;
    return true;
  }
  void flush() override {
    while (!inflight_.empty()) receive_one();
  }
  void abandon() override {
    for (const auto& p : inflight_) shared_.free_chunks.push(p.chunk);
    inflight_.clear();
  }

 private:
  struct Pending {
    std::uint32_t request_id;
    std::uint64_t sequence;
    Chunk* chunk;
  };
  static constexpr int kMaxOverloadRounds = 50;  // ~45 s of backoff, then give up

  std::size_t awaiting() const noexcept { return inflight_.size() - overloaded_; }

  // On failure the chunk stays the caller's.
  void publish(Chunk* c, std::uint64_t sequence) {
    try {
      const auto id = client_.publish_send(producer_id_, sequence, std::string_view(c->data.get(), c->len));
      inflight_.push_back(Pending{id, sequence, c});
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", name_, e.what()));
    }
  }

  void receive_one() {
    if (awaiting() > 0) {
      try {
        const auto [id, result] = client_.publish_receive();
        shared_.accepted += result.accepted;
        shared_.rejected += result.rejected;
        if (result.duplicate) ++shared_.duplicate_batches;
        const auto it = std::find_if(inflight_.begin(), inflight_.end(), [id = id](const Pending& p) {
          return p.request_id == id;
        });
        if (it != inflight_.end()) {
          shared_.free_chunks.push(it->chunk);
          inflight_.erase(it);
        }
        overload_rounds_ = 0;
      } catch (const query::ClientError& e) {
        if (e.status() != query::Status::overloaded) throw std::runtime_error(fmt::format("{}: {}", name_, e.what()));
        ++overloaded_;  // which request is unknown: what is left once all answers are in
      }
    }
    if (overloaded_ > 0 && awaiting() == 0) resend_overloaded();
  }

  void resend_overloaded() {
    if (++overload_rounds_ > kMaxOverloadRounds) {
      throw std::runtime_error(fmt::format("{}: server stays OVERLOADED; lower --rate", name_));
    }
    if (!warned_) {
      fmt::print(stderr,
                 "spate-gen: {}: server OVERLOADED; retrying refused batches later, so events arrive out of "
                 "generation order and --expect results may not hold exactly\n",
                 name_);
      warned_ = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 10 << std::min(overload_rounds_, 7))));
    std::vector<Pending> refused;
    refused.swap(inflight_);
    overloaded_ = 0;
    std::sort(refused.begin(), refused.end(), [](const Pending& a, const Pending& b) { return a.sequence < b.sequence; });
    for (std::size_t i = 0; i < refused.size(); ++i) {
      try {
        publish(refused[i].chunk, next_sequence_++);
      } catch (...) {
        for (std::size_t j = i; j < refused.size(); ++j) shared_.free_chunks.push(refused[j].chunk);
        throw;
      }
      ++shared_.overloaded_retries;
    }
  }

  query::Client client_;
  std::uint64_t producer_id_;
  std::string name_;
  Shared& shared_;
  std::uint64_t next_sequence_ = 1;
  std::vector<Pending> inflight_;
  std::size_t overloaded_ = 0;  // answers that were OVERLOADED, for requests still in inflight_
  int overload_rounds_ = 0;
  bool warned_ = false;
};

}  // namespace

std::unique_ptr<Sink> make_file_sink(int fd, bool owned, std::string name) {
  return std::make_unique<FileSink>(fd, owned, std::move(name));
}

std::unique_ptr<Sink> make_tcp_sink(int fd, std::string name) {
  return std::make_unique<TcpSink>(fd, std::move(name));
}

std::unique_ptr<Sink> make_udp_sink(int fd, std::size_t payload, std::string name, Shared& shared) {
  return std::make_unique<UdpSink>(fd, payload, std::move(name), shared);
}

std::unique_ptr<Sink> make_publish_sink(query::Client client, std::uint64_t producer_id, std::string name,
                                        Shared& shared) {
  return std::make_unique<PublishSink>(std::move(client), producer_id, std::move(name), shared);
}

void run_sink(Sink& sink, BlockingQueue<Chunk*>& queue, Shared& shared, std::atomic<std::int64_t>& sent_done_ns) {
  auto fail = [&](const std::exception& e) {
    shared.fail(e.what());
    sink.abandon();
  };
  while (auto chunk = queue.pop()) {
    Chunk* c = *chunk;
    bool kept = false;
    if (!shared.failed) {
      try {
        kept = sink.send(*c);
        shared.bytes_sent += c->len;
      } catch (const std::exception& e) {
        fail(e);
      }
    }
    if (!kept) shared.free_chunks.push(c);
  }
  if (shared.failed) return;
  try {
    sink.flush();
    const std::int64_t t = Clock::now().time_since_epoch().count();
    std::int64_t prev = sent_done_ns.load();
    while (prev < t && !sent_done_ns.compare_exchange_weak(prev, t)) {
    }
    sink.linger();
  } catch (const std::exception& e) {
    fail(e);
  }
}

}  // namespace spate::gen
