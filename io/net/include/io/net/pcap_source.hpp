// A capture file (pcap or pcapng, read through libpcap) as a source: the
// payloads of its UDP datagrams and its TCP streams, as fast as the shard
// takes them or at the capture's recorded pace. Frames are parsed in place
// (kernels/packet.hpp). UDP datagrams are one input, as a UDP socket is;
// each TCP flow is an input of its own, reassembled in order: out-of-order
// segments wait (up to max_flow_buffer bytes a flow), retransmitted bytes
// are dropped, bytes never captured are skipped and the lines they cut
// with them. Every frame not delivered is counted by why.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "io/file/source.hpp"
#include "kernels/packet.hpp"

struct pcap;

namespace spate::io {

// A capture's own counters (SourceCounters::own): frames read, and those
// not delivered by why; the TCP streams' reassembly.
enum class PcapFigure : std::uint8_t {
  frames,
  frames_other,      // not IP, neither UDP nor TCP, or another port
  fragments,         // IP fragments: not reassembled
  truncated,         // cut short by the snap length or a bad length field
  bad_checksums,     // when checksums are verified
  tcp_gaps,          // stream bytes never captured, skipped
  tcp_retransmits,   // segments (or parts) already delivered
  tcp_out_of_order,  // segments held until the bytes before them came
};

struct PcapOptions {
  std::string path;
  bool recorded_pace = false;  // else as fast as the shard reads
  double speed = 1.0;          // recorded pace times this
  std::uint16_t port = 0;      // only datagrams and streams to this port (0: any)
  bool verify_checksums = false;
  std::size_t max_line_bytes = 65536;
  std::size_t max_flow_buffer = 4u << 20;  // out-of-order bytes held per TCP flow; past it the gap is skipped
  std::size_t max_flows = 65536;           // TCP flows open at once; past it the oldest is closed
};

class PcapSource final : public Source {
 public:
  // Opens the capture (throws std::runtime_error with libpcap's reason).
  PcapSource(PcapOptions options, std::size_t padding);
  ~PcapSource() override;

  bool finite() const noexcept override { return true; }
  void attach(LineSink& sink) override;
  bool poll(LineSink& sink, std::size_t budget) override;
  void ready(std::uint64_t, LineSink&) override {}
  void drain(LineSink& sink, std::int64_t deadline_ms) override;
  bool finished() const noexcept override { return done_; }
  std::int64_t next_deadline_ms() const noexcept override { return due_ms_; }

 private:
  struct FlowKey {
    std::uint8_t ip[32];
    std::uint16_t ports[2];
    bool operator==(const FlowKey& o) const noexcept;
  };
  struct FlowHash {
    std::size_t operator()(const FlowKey& k) const noexcept;
  };
  struct Flow {
    std::uint32_t input = 0;
    bool started = false;
    std::uint32_t next_seq = 0;
    std::map<std::uint32_t, std::string> pending;  // out-of-order segments by sequence (wrap-aware order not needed within a window)
    std::size_t pending_bytes = 0;
    std::string line;    // a partial line, and kPadding room after it
    bool skipping = false;  // after a gap: the rest of the cut line is dropped
    std::uint64_t position = 0;
    std::uint64_t last_frame = 0;
  };

  void udp(const kernels::Frame& f, LineSink& sink);
  void tcp(const kernels::Frame& f, LineSink& sink);
  void stream(Flow& flow, const std::uint8_t* data, std::size_t len, LineSink& sink);
  void gap(Flow& flow, std::uint64_t bytes);
  void release(Flow& flow, LineSink& sink);
  void close_flow(Flow& flow, LineSink& sink);
  void finish(LineSink& sink);

  PcapOptions options_;
  std::size_t padding_;
  pcap* pcap_ = nullptr;
  kernels::LinkType link_ = kernels::LinkType::ethernet;
  bool done_ = false;
  bool attached_ = false;
  std::uint32_t udp_input_ = 0;
  std::uint64_t udp_position_ = 0;
  std::string datagram_;  // a datagram's payload and padding
  std::unordered_map<FlowKey, Flow, FlowHash> flows_;
  std::uint64_t frames_ = 0;
  // Recorded pace: the capture's first timestamp, when it was read, and
  // when the packet held back is due.
  std::int64_t first_us_ = -1;
  std::int64_t start_us_ = 0;
  std::int64_t due_ms_ = INT64_MAX;
  bool held_ = false;  // a packet read but not yet due
  std::string held_frame_;
  std::int64_t held_us_ = 0;
};

}  // namespace spate::io
