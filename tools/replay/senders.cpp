// spate-replay's senders; see senders.hpp.
#include "replay/senders.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "client/connect.hpp"

namespace spate::replay {
namespace {

struct Url {
  std::string scheme, host;
  std::uint16_t port = 0;
};

Url parse_url(const std::string& url) {
  const auto sep = url.find("://");
  const auto colon = url.rfind(':');
  if (sep == std::string::npos || colon == std::string::npos || colon < sep + 3) {
    throw std::runtime_error("--to '" + url + "': want udp://HOST:PORT, tcp://HOST:PORT or publish://HOST:PORT");
  }
  Url u;
  u.scheme = url.substr(0, sep);
  u.host = url.substr(sep + 3, colon - sep - 3);
  if (u.host.size() > 2 && u.host.front() == '[' && u.host.back() == ']') u.host = u.host.substr(1, u.host.size() - 2);
  const unsigned long port = std::strtoul(url.c_str() + colon + 1, nullptr, 10);
  if (port == 0 || port > 65535 || u.host.empty()) throw std::runtime_error("--to '" + url + "': no HOST:PORT");
  u.port = static_cast<std::uint16_t>(port);
  return u;
}

int connect(const Url& u, int type) {
  std::string error;
  const int fd = query::connect_socket(u.host, u.port, type, 10000, error);
  if (fd < 0) throw std::runtime_error("--to " + u.scheme + "://" + u.host + ":" + std::to_string(u.port) + ": " + error);
  return fd;
}

// Datagrams gathered into one sendmmsg call of up to kBatch.
class UdpSender final : public Sender {
 public:
  explicit UdpSender(int fd) : fd_(fd) { arena_.reserve(kBatch * 1500); }
  ~UdpSender() override { ::close(fd_); }
  void send(const char* data, std::size_t len) override {
    if (count_ == kBatch) flush();
    offsets_[count_] = {arena_.size(), len};
    arena_.append(data, len);
    ++count_;
  }
  void flush() override {
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    for (unsigned i = 0; i < count_; ++i) {
      iov[i] = {arena_.data() + offsets_[i].first, offsets_[i].second};
      msgs[i] = mmsghdr{};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned done = 0;
    while (done < count_) {
      const int r = ::sendmmsg(fd_, msgs + done, count_ - done, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == ENOBUFS || errno == EAGAIN)) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));
        continue;
      }
      if (r < 0) {  // ECONNREFUSED: nobody listens (yet); that datagram is gone, the rest go on
        ++counters_.errors;
        counters_.last_error = std::strerror(errno);
        ++done;
        continue;
      }
      for (int i = 0; i < r; ++i) counters_.bytes += offsets_[done + static_cast<unsigned>(i)].second;
      counters_.messages += static_cast<std::uint64_t>(r);
      done += static_cast<unsigned>(r);
    }
    count_ = 0;
    arena_.clear();
  }

 private:
  static constexpr unsigned kBatch = 64;
  int fd_;
  std::string arena_;
  std::pair<std::size_t, std::size_t> offsets_[kBatch];
  unsigned count_ = 0;
};

class TcpSender final : public Sender {
 public:
  explicit TcpSender(int fd) : fd_(fd) {}
  ~TcpSender() override { ::close(fd_); }
  void send(const char* data, std::size_t len) override {
    buffer_.append(data, len);
    ++pending_;
    if (buffer_.size() >= kFlushBytes) flush();
  }
  void flush() override {
    std::size_t at = 0;
    while (at < buffer_.size()) {
      const ssize_t n = ::send(fd_, buffer_.data() + at, buffer_.size() - at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("--to tcp: ") + std::strerror(errno));
      at += static_cast<std::size_t>(n);
    }
    counters_.bytes += buffer_.size();
    counters_.messages += pending_;
    pending_ = 0;
    buffer_.clear();
  }
  void finish() override {
    flush();
    ::shutdown(fd_, SHUT_WR);
  }

 private:
  static constexpr std::size_t kFlushBytes = 64 * 1024;
  int fd_;
  std::string buffer_;
  std::uint64_t pending_ = 0;
};

// Each message a PUBLISH batch with the next sequence; up to kWindow in
// flight. A refused batch (OVERLOADED, DISK_FULL...) is counted, not resent.
class PublishSender final : public Sender {
 public:
  PublishSender(query::Client client, std::uint64_t producer) : client_(std::move(client)), producer_(producer) {}
  void send(const char* data, std::size_t len) override {
    while (in_flight_ >= kWindow) receive();
    client_.publish_send(producer_, ++sequence_, std::string_view(data, len));
    ++in_flight_;
    counters_.bytes += len;
    ++counters_.messages;
  }
  void flush() override {}
  void finish() override {
    while (in_flight_ > 0) receive();
  }

 private:
  static constexpr std::uint64_t kWindow = 16;
  void receive() {
    try {
      client_.publish_receive();
    } catch (const query::ClientError& e) {
      if (e.status() == query::Status::internal) throw;  // the connection is gone
      ++counters_.errors;
      counters_.last_error = e.what();
    }
    --in_flight_;
  }
  query::Client client_;
  std::uint64_t producer_;
  std::uint64_t sequence_ = 0;
  std::uint64_t in_flight_ = 0;
};

}  // namespace

std::unique_ptr<Sender> make_sender(const std::string& url, std::uint64_t producer_id) {
  const Url u = parse_url(url);
  if (u.scheme == "udp") return std::make_unique<UdpSender>(connect(u, SOCK_DGRAM));
  if (u.scheme == "tcp") return std::make_unique<TcpSender>(connect(u, SOCK_STREAM));
  if (u.scheme == "publish") return std::make_unique<PublishSender>(query::Client(u.host, u.port), producer_id);
  throw std::runtime_error("--to '" + url + "': the scheme is udp, tcp or publish");
}

}  // namespace spate::replay
