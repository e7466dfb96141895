// NDJSON datagrams on a UDP socket (SO_REUSEPORT, one per shard), read in
// bursts with recvmmsg. The socket is one input; a datagram holds whole
// lines. Senders cannot be slowed down: what the kernel drops is counted.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>

#include "io/file/poller.hpp"
#include "io/file/source.hpp"

namespace spate::io {

// A UDP source's own counters (SourceCounters::own).
enum class UdpFigure : std::uint8_t {
  drops,  // datagrams the kernel dropped (SO_RXQ_OVFL), cumulative per socket
};

class UdpSource final : public Source {
 public:
  UdpSource(int fd, Poller& poller, std::size_t padding);
  ~UdpSource() override;

  void attach(LineSink& sink) override;
  bool poll(LineSink& sink, std::size_t budget) override;
  void ready(std::uint64_t token, LineSink& sink) override;
  void drain(LineSink& sink, std::int64_t deadline_ms) override;
  void measure_backlog() override;
  // Datagrams longer than this are truncated by the kernel and rejected whole.
  static constexpr std::size_t kDatagramBytes = 65536;

 private:
  static constexpr std::size_t kBurst = 32;
  bool read_burst(LineSink& sink);

  int fd_;
  Poller& poller_;
  std::size_t stride_;
  std::uint32_t input_ = 0;
  std::uint64_t position_ = 0;  // bytes received before this burst
  std::unique_ptr<char[]> buf_;  // kBurst datagrams of kDatagramBytes + padding
  mmsghdr msgs_[kBurst];
  iovec iov_[kBurst];
  char control_[kBurst][CMSG_SPACE(sizeof(std::uint32_t))];
};

}  // namespace spate::io
