// UDP datagrams as one input; see udp_source.hpp.
#include "io/net/udp_source.hpp"

#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <unistd.h>

#include <cstring>

namespace spate::io {

UdpSource::UdpSource(int fd, Poller& poller, std::size_t padding)
    : fd_(fd), poller_(poller), stride_(kDatagramBytes + padding), buf_(std::make_unique<char[]>(kBurst * stride_)) {
  poller_.add(fd_, this, 0);
}

UdpSource::~UdpSource() {
  poller_.remove(fd_);
  ::close(fd_);
}

void UdpSource::attach(LineSink& sink) {
  input_ = sink.open_input(kind(), false);
  SourceCounters::add(counters().inputs, 1);
}

bool UdpSource::poll(LineSink&, std::size_t) { return false; }

void UdpSource::ready(std::uint64_t, LineSink& sink) {
  if (!paused()) read_burst(sink);
}

bool UdpSource::read_burst(LineSink& sink) {
  for (std::size_t i = 0; i < kBurst; ++i) {
    iov_[i] = {buf_.get() + i * stride_, kDatagramBytes};
    msgs_[i].msg_hdr = msghdr{};
    msgs_[i].msg_hdr.msg_iov = &iov_[i];
    msgs_[i].msg_hdr.msg_iovlen = 1;
    msgs_[i].msg_hdr.msg_control = control_[i];
    msgs_[i].msg_hdr.msg_controllen = sizeof(control_[i]);
  }
  const int n = ::recvmmsg(fd_, msgs_, kBurst, MSG_DONTWAIT, nullptr);
  if (n <= 0) return false;
  for (int i = 0; i < n; ++i) {
    const msghdr& h = msgs_[i].msg_hdr;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(const_cast<msghdr*>(&h), cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
        std::uint32_t dropped;
        std::memcpy(&dropped, CMSG_DATA(cm), sizeof(dropped));
        counters()[UdpFigure::drops].store(dropped, std::memory_order_relaxed);  // cumulative per socket
      }
    }
    const std::size_t len = msgs_[i].msg_len;
    SourceCounters::add(counters().bytes_in, len);
    if ((h.msg_flags & MSG_TRUNC) != 0) {
      SourceCounters::add(counters().oversized_lines, 1);
    } else {
      sink.lines(input_, buf_.get() + static_cast<std::size_t>(i) * stride_, len, position_);
    }
    position_ += len;
  }
  return true;
}

void UdpSource::drain(LineSink& sink, std::int64_t deadline_ms) {
  // At most what an 8 MiB receive buffer holds in small datagrams.
  for (int bursts = 0; bursts < 4096 && monotonic_ms() < deadline_ms && read_burst(sink); ++bursts) {
  }
}

// The socket's receive queue as the kernel accounts it (SO_MEMINFO, Linux
// 4.12): FIONREAD would give only the next datagram's size.
void UdpSource::measure_backlog() {
  std::uint32_t info[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, info, &len) == 0 && len > SK_MEMINFO_RMEM_ALLOC * sizeof(info[0])) {
    counters().waiting_bytes.store(info[SK_MEMINFO_RMEM_ALLOC], std::memory_order_relaxed);
  }
}

}  // namespace spate::io
