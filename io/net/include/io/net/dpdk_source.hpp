// A NIC port owned through DPDK: the EAL set up once per process, the port
// with one RX queue per shard (RSS over the UDP 5-tuple when there is more
// than one), and per shard a source that busy-polls its queue inside the
// shard's own loop. Frames are parsed in place (kernels/packet.hpp); a UDP
// payload goes to the parser straight from the mbuf when its tailroom holds
// the parser's padding, and through a copy (counted) when not. Built only
// with DPDK (-Ddpdk=auto finds Debian's dpdk-dev); docs/captures.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/file/source.hpp"

struct rte_mempool;
struct rte_mbuf;

namespace spate::io {

// A NIC queue's own counters (SourceCounters::own): frames read, those not
// delivered by why (as a capture's), and payloads copied.
enum class DpdkFigure : std::uint8_t {
  frames,
  frames_other,    // not IP, not UDP, or another port
  fragments,       // IP fragments: not reassembled
  truncated,       // cut short by a bad length field
  bad_checksums,   // when checksums are verified
  padding_copies,  // the mbuf's tailroom too short for the parser's padding
};

struct DpdkOptions {
  std::vector<std::string> eal_args;  // after the program name; --file-prefix and -l are added when absent
  std::uint16_t port = 0;             // the DPDK port id
  std::uint16_t udp_port = 0;         // only datagrams to this port (0: any)
  std::uint32_t rx_descriptors = 1024;
  std::uint32_t mbufs = 0;            // the pool's size; 0: enough for every queue's ring and bursts
  bool verify_checksums = false;
};

// Port-wide counters, read from the device by the source of queue 0.
struct DpdkPortCounters {
  std::atomic<std::uint64_t> rx{0};       // frames the port received
  std::atomic<std::uint64_t> missed{0};   // dropped by the NIC: no room in an RX ring
  std::atomic<std::uint64_t> errors{0};   // receive errors
  std::atomic<std::uint64_t> no_mbuf{0};  // no mbuf to receive into
};

class DpdkPort {
 public:
  // Initialises the EAL and starts the port with `queues` RX queues (fewer
  // when the device has fewer: queues() says). Throws std::runtime_error.
  DpdkPort(DpdkOptions options, std::uint32_t queues);
  ~DpdkPort();
  DpdkPort(const DpdkPort&) = delete;
  DpdkPort& operator=(const DpdkPort&) = delete;

  std::uint32_t queues() const noexcept { return queues_; }
  const DpdkOptions& options() const noexcept { return options_; }
  const DpdkPortCounters& counters() const noexcept { return counters_; }
  void read_stats() noexcept;  // device counters into counters(); one caller at a time
  std::string describe() const;

 private:
  DpdkOptions options_;
  std::uint32_t queues_ = 0;
  rte_mempool* pool_ = nullptr;
  DpdkPortCounters counters_;
  bool started_ = false;
};

class DpdkSource final : public Source {
 public:
  DpdkSource(DpdkPort& port, std::uint16_t queue, std::size_t padding);
  ~DpdkSource() override;

  void attach(LineSink& sink) override;
  bool poll(LineSink& sink, std::size_t budget) override;
  void ready(std::uint64_t, LineSink&) override {}
  void drain(LineSink& sink, std::int64_t deadline_ms) override;
  bool busy_poll() const noexcept override { return true; }

 private:
  static constexpr std::uint16_t kBurst = 32;
  void deliver(rte_mbuf* m, LineSink& sink);

  DpdkPort& port_;
  std::uint16_t queue_;
  std::size_t padding_;
  std::uint32_t input_ = 0;
  bool attached_ = false;
  std::uint64_t position_ = 0;
  std::uint64_t polls_ = 0;
  std::vector<char> scratch_;  // a frame over several mbufs, made whole
  std::vector<char> copy_;     // a payload copied for its padding
};

}  // namespace spate::io
