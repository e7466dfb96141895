// spate-gen --out FILE.pcap: the generated lines as the frames a capture of
// them on the wire would hold, written through libpcap (Ethernet, IPv4,
// every checksum filled in), so that tshark, tcpreplay and spated's pcap
// source read them like any capture. UDP: lines packed into datagrams of at
// most --udp-payload bytes (whole lines). TCP: one stream per connection
// (SYN, data cut at the MSS wherever it falls, FIN), so that a reader must
// reassemble it. Packets are stamped --pcap-pps apart.
#include "gen/sinks.hpp"

#include <pcap/pcap.h>

#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "kernels/packet.hpp"

namespace spate::gen {
namespace {

constexpr std::size_t kMss = 1460;
constexpr std::size_t kRunBytes = 16384;

class PcapSink final : public Sink {
 public:
  PcapSink(const std::string& path, const Options& o) : name_("--out " + path), o_(o) {
    pcap_ = pcap_open_dead(DLT_EN10MB, 65535);
    if (pcap_ == nullptr) throw std::runtime_error(name_ + ": pcap_open_dead failed");
    dumper_ = pcap_dump_open(pcap_, path.c_str());
    if (dumper_ == nullptr) {
      const std::string error = pcap_geterr(pcap_);
      pcap_close(pcap_);
      throw std::runtime_error(fmt::format("{}: {}", name_, error));
    }
    for (unsigned c = 0; c < std::max(1u, o.connections); ++c) {
      Flow f;
      f.flow.src_port = static_cast<std::uint16_t>(40000 + c);
      f.flow.dst_port = o.pcap_port;
      f.seq = 1000 + 100000 * c;
      flows_.push_back(f);
    }
    if (o_.pcap_tcp) {
      for (Flow& f : flows_) segment(f, kernels::kTcpSyn, nullptr, 0);
    }
  }
  ~PcapSink() override {
    if (dumper_ != nullptr) pcap_dump_close(dumper_);
    if (pcap_ != nullptr) pcap_close(pcap_);
  }

  // Lines go to the flows in turn: a datagram each, or (TCP) runs of
  // whole lines of about kRunBytes, cut into segments wherever the MSS falls.
  bool send(Chunk& c) override {
    const char* base = c.data.get();
    for (std::size_t at = 0; at < c.len;) {
      Flow& f = flows_[next_flow_++ % flows_.size()];
      const std::size_t end = datagram_end(base, c.len, at, o_.pcap_tcp ? kRunBytes : o_.udp_payload);
      if (o_.pcap_tcp) {
        for (std::size_t s = at; s < end; s += kMss) {
          segment(f, kernels::kTcpAck | kernels::kTcpPsh, base + s, std::min(kMss, end - s));
        }
      } else {
        frame_.clear();
        kernels::append_udp_frame(frame_, f.flow, base + at, end - at, ip_id_++);
        write();
      }
      at = end;
    }
    return false;
  }

  void flush() override {
    if (o_.pcap_tcp) {
      for (Flow& f : flows_) segment(f, kernels::kTcpFin | kernels::kTcpAck, nullptr, 0);
    }
    if (pcap_dump_flush(dumper_) != 0) throw std::runtime_error(name_ + ": cannot write the capture");
  }

 private:
  struct Flow {
    kernels::FlowV4 flow;
    std::uint32_t seq = 0;
  };

  void segment(Flow& f, std::uint8_t flags, const char* data, std::size_t len) {
    frame_.clear();
    kernels::append_tcp_frame(frame_, f.flow, f.seq, 1, flags, data, len, ip_id_++);
    f.seq += static_cast<std::uint32_t>(len) + ((flags & (kernels::kTcpSyn | kernels::kTcpFin)) != 0 ? 1 : 0);
    write();
  }

  void write() {
    pcap_pkthdr h{};
    const std::uint64_t us = static_cast<std::uint64_t>(o_.start_ms) * 1000 + packets_ * 1000000 / o_.pcap_pps;
    h.ts.tv_sec = static_cast<time_t>(us / 1000000);
    h.ts.tv_usec = static_cast<suseconds_t>(us % 1000000);
    h.caplen = h.len = static_cast<bpf_u_int32>(frame_.size());
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, reinterpret_cast<const u_char*>(frame_.data()));
    ++packets_;
  }

  std::string name_;
  const Options& o_;
  pcap_t* pcap_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  std::vector<Flow> flows_;
  std::size_t next_flow_ = 0;
  std::string frame_;
  std::uint16_t ip_id_ = 1;
  std::uint64_t packets_ = 0;
};

}  // namespace

std::unique_ptr<Sink> make_pcap_sink(const std::string& path, const Options& o) {
  return std::make_unique<PcapSink>(path, o);
}

}  // namespace spate::gen
