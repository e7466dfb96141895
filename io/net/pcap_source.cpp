// A capture file as a source; see pcap_source.hpp.
#include "io/net/pcap_source.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/hash.hpp"

namespace spate::io {

bool PcapSource::FlowKey::operator==(const FlowKey& o) const noexcept {
  return std::memcmp(ip, o.ip, sizeof(ip)) == 0 && ports[0] == o.ports[0] && ports[1] == o.ports[1];
}

std::size_t PcapSource::FlowHash::operator()(const FlowKey& k) const noexcept {
  return kernels::hash_key(std::string_view(reinterpret_cast<const char*>(&k), sizeof(k)));
}

PcapSource::PcapSource(PcapOptions options, std::size_t padding) : options_(std::move(options)), padding_(padding) {
  char error[PCAP_ERRBUF_SIZE] = {};
  pcap_ = pcap_open_offline(options_.path.c_str(), error);
  if (pcap_ == nullptr) throw std::runtime_error("cannot read capture '" + options_.path + "': " + error);
  const int link = pcap_datalink(pcap_);
  if (!kernels::link_type_known(static_cast<std::uint32_t>(link))) {
    pcap_close(pcap_);
    throw std::runtime_error("capture '" + options_.path + "' has link type " + std::to_string(link) +
                             " (" + (pcap_datalink_val_to_name(link) ? pcap_datalink_val_to_name(link) : "?") +
                             "): spated reads Ethernet, Linux cooked, raw IP and loopback captures");
  }
  link_ = static_cast<kernels::LinkType>(link);
}

PcapSource::~PcapSource() {
  if (pcap_ != nullptr) pcap_close(pcap_);
}

void PcapSource::attach(LineSink& sink) {
  if (attached_) return;
  attached_ = true;
  udp_input_ = sink.open_input(kind(), false);
  SourceCounters::add(counters().inputs, 1);
}

bool PcapSource::poll(LineSink& sink, std::size_t budget) {
  if (done_ || paused()) return false;
  attach(sink);
  std::size_t taken = 0;
  bool any = false;
  while (taken < budget) {
    const std::uint8_t* data;
    std::size_t len;
    std::int64_t ts_us;
    if (held_) {
      data = reinterpret_cast<const std::uint8_t*>(held_frame_.data());
      len = held_frame_.size();
      ts_us = held_us_;
    } else {
      pcap_pkthdr* h = nullptr;
      const u_char* bytes = nullptr;
      const int r = pcap_next_ex(pcap_, &h, &bytes);
      if (r != 1) {  // the end (-2), or a file cut short or unreadable (-1): what came before counts
        finish(sink);
        return true;
      }
      data = bytes;
      len = h->caplen;
      ts_us = static_cast<std::int64_t>(h->ts.tv_sec) * 1000000 + h->ts.tv_usec;
      SourceCounters::add(counters().bytes_in, len);
    }
    if (options_.recorded_pace) {
      const std::int64_t now = monotonic_us();
      if (first_us_ < 0) {
        first_us_ = ts_us;
        start_us_ = now;
      }
      const auto due = start_us_ + static_cast<std::int64_t>(static_cast<double>(ts_us - first_us_) / options_.speed);
      if (due > now) {
        if (!held_) {
          held_frame_.assign(reinterpret_cast<const char*>(data), len);
          held_us_ = ts_us;
          held_ = true;
        }
        // Waiting for a packet's time is silence, as it was on the wire: a
        // long enough gap idles the input, as it would have live.
        due_ms_ = (due + 999) / 1000;
        return any;
      }
    }
    held_ = false;
    due_ms_ = INT64_MAX;
    ++frames_;
    SourceCounters::add(counters()[PcapFigure::frames], 1);
    const kernels::Frame f = kernels::parse_frame(data, len, link_, options_.verify_checksums);
    switch (f.kind) {
      case kernels::FrameKind::udp: udp(f, sink); break;
      case kernels::FrameKind::tcp: tcp(f, sink); break;
      case kernels::FrameKind::fragment: SourceCounters::add(counters()[PcapFigure::fragments], 1); break;
      case kernels::FrameKind::truncated: SourceCounters::add(counters()[PcapFigure::truncated], 1); break;
      case kernels::FrameKind::bad_checksum: SourceCounters::add(counters()[PcapFigure::bad_checksums], 1); break;
      case kernels::FrameKind::other: SourceCounters::add(counters()[PcapFigure::frames_other], 1); break;
    }
    taken += len;
    any = true;
  }
  return any;
}

void PcapSource::udp(const kernels::Frame& f, LineSink& sink) {
  if (options_.port != 0 && f.dst_port != options_.port) {
    SourceCounters::add(counters()[PcapFigure::frames_other], 1);
    return;
  }
  datagram_.assign(reinterpret_cast<const char*>(f.payload), f.payload_len);
  datagram_.resize(f.payload_len + padding_);
  sink.lines(udp_input_, datagram_.data(), f.payload_len, udp_position_);
  udp_position_ += f.payload_len;
}

void PcapSource::tcp(const kernels::Frame& f, LineSink& sink) {
  if (options_.port != 0 && f.dst_port != options_.port) {
    SourceCounters::add(counters()[PcapFigure::frames_other], 1);
    return;
  }
  FlowKey key{};
  std::memcpy(key.ip, f.src_ip, 16);
  std::memcpy(key.ip + 16, f.dst_ip, 16);
  key.ports[0] = f.src_port;
  key.ports[1] = f.dst_port;
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    if (f.payload_len == 0 && (f.tcp_flags & (kernels::kTcpFin | kernels::kTcpRst)) != 0) return;  // a close we never saw open
    if (flows_.size() >= options_.max_flows) {  // the one silent longest goes
      auto oldest = std::min_element(flows_.begin(), flows_.end(), [](const auto& a, const auto& b) {
        return a.second.last_frame < b.second.last_frame;
      });
      close_flow(oldest->second, sink);
      flows_.erase(oldest);
    }
    it = flows_.emplace(key, Flow{}).first;
    it->second.input = sink.open_input(kind(), false);
    SourceCounters::add(counters().inputs, 1);
  }
  Flow& flow = it->second;
  flow.last_frame = frames_;
  if (!flow.started) {
    // From its SYN, or from the first segment seen (a capture begun mid-stream).
    flow.started = true;
    flow.next_seq = f.seq + ((f.tcp_flags & kernels::kTcpSyn) != 0 ? 1 : 0);
  }
  if (f.payload_len != 0) {
    const auto ahead = static_cast<std::int32_t>(f.seq - flow.next_seq);
    if (ahead == 0) {
      stream(flow, f.payload, f.payload_len, sink);
      release(flow, sink);
    } else if (ahead < 0) {  // bytes already delivered: a retransmit, maybe with new bytes after them
      SourceCounters::add(counters()[PcapFigure::tcp_retransmits], 1);
      const auto seen = static_cast<std::size_t>(-static_cast<std::int64_t>(ahead));
      if (seen < f.payload_len) {
        stream(flow, f.payload + seen, f.payload_len - seen, sink);
        release(flow, sink);
      }
    } else {
      SourceCounters::add(counters()[PcapFigure::tcp_out_of_order], 1);
      auto [at, inserted] = flow.pending.try_emplace(f.seq);
      if (inserted || at->second.size() < f.payload_len) {
        flow.pending_bytes += f.payload_len - at->second.size();
        at->second.assign(reinterpret_cast<const char*>(f.payload), f.payload_len);
      }
      while (flow.pending_bytes > options_.max_flow_buffer) {  // the missing bytes are not coming: skip them
        auto first = flow.pending.begin();
        for (auto p = flow.pending.begin(); p != flow.pending.end(); ++p) {
          if (static_cast<std::int32_t>(p->first - first->first) < 0) first = p;
        }
        gap(flow, static_cast<std::uint32_t>(first->first - flow.next_seq));
        flow.next_seq = first->first;
        release(flow, sink);
      }
    }
  }
  if ((f.tcp_flags & (kernels::kTcpFin | kernels::kTcpRst)) != 0) {
    close_flow(flow, sink);
    flows_.erase(it);
  }
}

// Segments now in order go out; ones wholly delivered already are dropped.
void PcapSource::release(Flow& flow, LineSink& sink) {
  bool progressed = true;
  while (progressed && !flow.pending.empty()) {
    progressed = false;
    for (auto p = flow.pending.begin(); p != flow.pending.end(); ++p) {
      const auto ahead = static_cast<std::int32_t>(p->first - flow.next_seq);
      if (ahead > 0) continue;
      const std::string bytes = std::move(p->second);
      flow.pending_bytes -= bytes.size();
      flow.pending.erase(p);
      const auto seen = static_cast<std::size_t>(-static_cast<std::int64_t>(ahead));
      if (seen < bytes.size()) {
        stream(flow, reinterpret_cast<const std::uint8_t*>(bytes.data()) + seen, bytes.size() - seen, sink);
      } else {
        SourceCounters::add(counters()[PcapFigure::tcp_retransmits], 1);
      }
      progressed = true;
      break;
    }
  }
}

// Bytes never captured: the line they cut is lost with them.
void PcapSource::gap(Flow& flow, std::uint64_t bytes) {
  SourceCounters::add(counters()[PcapFigure::tcp_gaps], bytes);
  flow.position += bytes + flow.line.size();
  flow.line.clear();
  flow.skipping = true;
}

void PcapSource::stream(Flow& flow, const std::uint8_t* data, std::size_t len, LineSink& sink) {
  flow.next_seq += static_cast<std::uint32_t>(len);
  const char* p = reinterpret_cast<const char*>(data);
  if (flow.skipping) {
    const void* nl = std::memchr(p, '\n', len);
    const std::size_t drop = nl == nullptr ? len : static_cast<std::size_t>(static_cast<const char*>(nl) - p) + 1;
    flow.position += drop;
    p += drop;
    len -= drop;
    if (nl == nullptr) return;
    flow.skipping = false;
  }
  flow.line.append(p, len);
  const std::size_t last = flow.line.rfind('\n');
  if (last == std::string::npos) {
    if (flow.line.size() > options_.max_line_bytes) {  // one line past the limit: dropped unread
      SourceCounters::add(counters().oversized_lines, 1);
      flow.position += flow.line.size();
      flow.line.clear();
      flow.skipping = true;
    }
    return;
  }
  const std::size_t whole = last + 1;
  const std::size_t size = flow.line.size();
  flow.line.resize(size + padding_);
  sink.lines(flow.input, flow.line.data(), whole, flow.position);
  flow.line.resize(size);
  flow.line.erase(0, whole);
  flow.position += whole;
}

void PcapSource::close_flow(Flow& flow, LineSink& sink) {
  while (!flow.pending.empty()) {  // what waited for bytes that never came
    auto first = flow.pending.begin();
    for (auto p = flow.pending.begin(); p != flow.pending.end(); ++p) {
      if (static_cast<std::int32_t>(p->first - first->first) < 0) first = p;
    }
    const auto ahead = static_cast<std::int32_t>(first->first - flow.next_seq);
    if (ahead > 0) {
      gap(flow, static_cast<std::uint32_t>(ahead));
      flow.next_seq = first->first;
    }
    release(flow, sink);
  }
  if (!flow.line.empty() && !flow.skipping) {  // the stream's last line, without its newline
    const std::size_t size = flow.line.size();
    flow.line.resize(size + padding_);
    sink.lines(flow.input, flow.line.data(), size, flow.position);
  }
  sink.close_input(flow.input);
}

void PcapSource::finish(LineSink& sink) {
  for (auto& [key, flow] : flows_) close_flow(flow, sink);
  flows_.clear();
  if (attached_) sink.close_input(udp_input_);
  done_ = true;
  due_ms_ = INT64_MAX;
}

// A stop does not read the rest of a capture (as it does not of a file):
// what was read is applied, the rest is not.
void PcapSource::drain(LineSink&, std::int64_t) {}

}  // namespace spate::io
