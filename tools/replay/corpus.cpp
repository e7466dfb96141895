// Loading what spate-replay sends; see corpus.hpp.
#include "replay/corpus.hpp"

#include <pcap/pcap.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <tuple>

#include "kernels/packet.hpp"

namespace spate::replay {
namespace {

// Appends whole lines of `data` to the corpus as messages of at most
// message_bytes (a longer line goes alone); returns the bytes left over (a
// partial last line).
std::size_t add_lines(Corpus& c, std::string_view data, std::size_t message_bytes, std::int64_t ts_us) {
  std::size_t at = 0;
  while (at < data.size()) {
    std::size_t end = at;
    std::uint32_t lines = 0;
    while (end < data.size()) {
      const void* nl = std::memchr(data.data() + end, '\n', data.size() - end);
      if (nl == nullptr) break;
      const std::size_t line_end = static_cast<std::size_t>(static_cast<const char*>(nl) - data.data()) + 1;
      if (line_end - at > message_bytes && lines > 0) break;
      end = line_end;
      ++lines;
    }
    if (lines == 0) break;
    Message m;
    m.begin = c.bytes.size();
    c.bytes.append(data.substr(at, end - at));
    m.end = c.bytes.size();
    m.ts_us = ts_us;
    m.lines = lines;
    c.lines += lines;
    c.messages.push_back(m);
    at = end;
  }
  return data.size() - at;
}

}  // namespace

bool looks_like_capture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char magic[4] = {};
  if (!in.read(reinterpret_cast<char*>(magic), 4)) return false;
  const std::uint32_t m = static_cast<std::uint32_t>(magic[0]) | magic[1] << 8 | magic[2] << 16 |
                          static_cast<std::uint32_t>(magic[3]) << 24;
  return m == 0xa1b2c3d4 || m == 0xd4c3b2a1 || m == 0xa1b23c4d || m == 0x4d3cb2a1 || m == 0x0a0d0d0a;
}

Corpus load_capture(const std::string& path, std::uint16_t port, std::size_t message_bytes) {
  char error[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), error);
  if (p == nullptr) throw std::runtime_error("cannot read capture '" + path + "': " + error);
  const int link = pcap_datalink(p);
  if (!kernels::link_type_known(static_cast<std::uint32_t>(link))) {
    pcap_close(p);
    throw std::runtime_error("capture '" + path + "' has link type " + std::to_string(link) + ", not one spate reads");
  }
  Corpus c;
  c.timed = true;
  // Per TCP flow, the bytes of a line not yet whole.
  std::map<std::tuple<std::string, std::uint16_t, std::uint16_t>, std::string> partial;
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(p, &h, &data) == 1) {
    ++c.frames;
    const std::int64_t ts = static_cast<std::int64_t>(h->ts.tv_sec) * 1000000 + h->ts.tv_usec;
    const kernels::Frame f = kernels::parse_frame(data, h->caplen, static_cast<kernels::LinkType>(link));
    const bool ours = (f.kind == kernels::FrameKind::udp || f.kind == kernels::FrameKind::tcp) &&
                      (port == 0 || f.dst_port == port) && f.payload_len > 0;
    if (!ours) {
      ++c.frames_skipped;
      continue;
    }
    const std::string_view payload(reinterpret_cast<const char*>(f.payload), f.payload_len);
    if (f.kind == kernels::FrameKind::udp) {
      std::string datagram(payload);
      if (datagram.back() != '\n') datagram += '\n';
      add_lines(c, datagram, SIZE_MAX, ts);  // a datagram stays one message
      continue;
    }
    std::string addresses(reinterpret_cast<const char*>(f.src_ip), 16);
    addresses.append(reinterpret_cast<const char*>(f.dst_ip), 16);
    std::string& rest = partial[{addresses, f.src_port, f.dst_port}];
    rest.append(payload);
    const std::size_t left = add_lines(c, rest, message_bytes, ts);
    rest.erase(0, rest.size() - left);
  }
  pcap_close(p);
  return c;
}

Corpus load_ndjson(const std::string& path, std::size_t message_bytes) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read '" + path + "'");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (!text.empty() && text.back() != '\n') text += '\n';
  Corpus c;
  c.bytes.reserve(text.size());
  add_lines(c, text, message_bytes, 0);
  return c;
}

}  // namespace spate::replay
