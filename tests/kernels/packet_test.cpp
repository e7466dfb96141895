// Frames parsed in place, against frames built here and by hand.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <string_view>

#include "kernels/packet.hpp"

using namespace spate::kernels;

namespace {

const std::uint8_t* bytes(const std::string& s) { return reinterpret_cast<const std::uint8_t*>(s.data()); }
std::string_view payload_of(const Frame& f) { return {reinterpret_cast<const char*>(f.payload), f.payload_len}; }

// An IPv6 + UDP packet after an Ethernet header, with `ext` extension
// headers (hop-by-hop, 8 bytes each) before the UDP header.
std::string ipv6_udp(std::string_view payload, int ext, std::uint8_t last_next = 17) {
  std::string f("\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd", 14);
  const std::size_t plen = 8 * ext + 8 + payload.size();
  f += std::string("\x60\0\0\0", 4);
  f += static_cast<char>(plen >> 8);
  f += static_cast<char>(plen & 0xff);
  f += static_cast<char>(ext > 0 ? 0 : last_next);
  f += '\x40';
  f += std::string(15, '\0') + '\x01' + std::string(15, '\0') + '\x02';
  for (int i = 0; i < ext; ++i) {
    f += static_cast<char>(i + 1 < ext ? 0 : last_next);
    f += std::string(7, '\0');
  }
  const std::size_t ulen = 8 + payload.size();
  f += std::string("\x9c\x40\x1b\xa0", 4);
  f += static_cast<char>(ulen >> 8);
  f += static_cast<char>(ulen & 0xff);
  f += std::string(2, '\0');  // no checksum
  f += payload;
  return f;
}

}  // namespace

TEST_CASE("packet: a built UDP frame parses back to its flow and payload, checksums included") {
  std::string frame;
  FlowV4 flow;
  flow.src_port = 40001;
  append_udp_frame(frame, flow, "{\"id\":1}\n", 9, 7);
  CHECK(frame.size() == 14 + 20 + 8 + 9);
  const Frame f = parse_frame(bytes(frame), frame.size(), LinkType::ethernet, true);
  REQUIRE(f.kind == FrameKind::udp);
  CHECK(f.ip_version == 4);
  CHECK(f.src_port == 40001);
  CHECK(f.dst_port == 7072);
  CHECK(f.src_ip[3] == 1);
  CHECK(f.dst_ip[3] == 2);
  CHECK(payload_of(f) == "{\"id\":1}\n");
  CHECK(f.payload_offset == 42);

  // Ethernet pads short frames to 60 bytes: the IP length bounds the payload.
  std::string padded = frame + std::string(18, '\0');
  CHECK(payload_of(parse_frame(bytes(padded), padded.size(), LinkType::ethernet)) == "{\"id\":1}\n");

  // One flipped payload byte: caught only when asked to verify.
  std::string bad = frame;
  bad[45] ^= 0x20;
  CHECK(parse_frame(bytes(bad), bad.size(), LinkType::ethernet, true).kind == FrameKind::bad_checksum);
  CHECK(parse_frame(bytes(bad), bad.size(), LinkType::ethernet, false).kind == FrameKind::udp);
  bad = frame;
  bad[14 + 8] ^= 1;  // the TTL: the IPv4 header checksum
  CHECK(parse_frame(bytes(bad), bad.size(), LinkType::ethernet, true).kind == FrameKind::bad_checksum);
}

TEST_CASE("packet: a built TCP segment carries its sequence, flags and data") {
  std::string frame;
  append_tcp_frame(frame, FlowV4{}, 1000, 1, kTcpAck | kTcpPsh, "abc\n", 4, 9);
  const Frame f = parse_frame(bytes(frame), frame.size(), LinkType::ethernet, true);
  REQUIRE(f.kind == FrameKind::tcp);
  CHECK(f.seq == 1000);
  CHECK(f.tcp_flags == (kTcpAck | kTcpPsh));
  CHECK(payload_of(f) == "abc\n");
  std::string syn;
  append_tcp_frame(syn, FlowV4{}, 999, 0, kTcpSyn, nullptr, 0, 8);
  const Frame s = parse_frame(bytes(syn), syn.size(), LinkType::ethernet, true);
  CHECK(s.kind == FrameKind::tcp);
  CHECK(s.tcp_flags == kTcpSyn);
  CHECK(s.payload_len == 0);
}

TEST_CASE("packet: VLAN and QinQ tags, cooked and raw captures reach the same payload") {
  std::string frame;
  append_udp_frame(frame, FlowV4{}, "x\n", 2, 1);
  const std::string ip = frame.substr(14);
  std::string vlan = frame.substr(0, 12) + std::string("\x88\xa8\x00\x05\x81\x00\x00\x07", 8) + frame.substr(12);
  CHECK(payload_of(parse_frame(bytes(vlan), vlan.size(), LinkType::ethernet, true)) == "x\n");
  std::string sll = std::string(14, '\0') + std::string("\x08\x00", 2) + ip;
  CHECK(payload_of(parse_frame(bytes(sll), sll.size(), LinkType::linux_sll, true)) == "x\n");
  std::string sll2 = std::string("\x08\x00", 2) + std::string(18, '\0') + ip;
  CHECK(payload_of(parse_frame(bytes(sll2), sll2.size(), LinkType::linux_sll2, true)) == "x\n");
  CHECK(payload_of(parse_frame(bytes(ip), ip.size(), LinkType::raw, true)) == "x\n");
  std::string null = std::string("\x02\0\0\0", 4) + ip;  // AF_INET, little-endian writer
  CHECK(payload_of(parse_frame(bytes(null), null.size(), LinkType::null, true)) == "x\n");
  std::string loop = std::string("\0\0\0\x02", 4) + ip;
  CHECK(payload_of(parse_frame(bytes(loop), loop.size(), LinkType::loop, true)) == "x\n");
}

TEST_CASE("packet: IPv6 with extension headers, and its fragments") {
  for (int ext = 0; ext < 3; ++ext) {
    const std::string f6 = ipv6_udp("hello\n", ext);
    const Frame f = parse_frame(bytes(f6), f6.size(), LinkType::ethernet);
    REQUIRE(f.kind == FrameKind::udp);
    CHECK(f.ip_version == 6);
    CHECK(f.dst_ip[15] == 2);
    CHECK(f.dst_port == 7072);
    CHECK(payload_of(f) == "hello\n");
  }
  const std::string frag = ipv6_udp("hello\n", 1, 44);
  CHECK(parse_frame(bytes(frag), frag.size(), LinkType::ethernet).kind == FrameKind::fragment);
}

TEST_CASE("packet: IPv4 fragments, other protocols and non-IP frames are told apart") {
  std::string frame;
  append_udp_frame(frame, FlowV4{}, "abc", 3, 1);
  std::string frag = frame;
  frag[20] = 0x20;  // more fragments
  CHECK(parse_frame(bytes(frag), frag.size(), LinkType::ethernet).kind == FrameKind::fragment);
  frag = frame;
  frag[20] = 0;
  frag[21] = 0x10;  // an offset
  CHECK(parse_frame(bytes(frag), frag.size(), LinkType::ethernet).kind == FrameKind::fragment);
  std::string icmp = frame;
  icmp[23] = 1;
  CHECK(parse_frame(bytes(icmp), icmp.size(), LinkType::ethernet).kind == FrameKind::other);
  std::string arp = frame;
  arp[12] = 0x08;
  arp[13] = 0x06;
  CHECK(parse_frame(bytes(arp), arp.size(), LinkType::ethernet).kind == FrameKind::other);
}

TEST_CASE("packet: a frame cut anywhere is truncated, never read past its end") {
  std::string udp, tcp;
  append_udp_frame(udp, FlowV4{}, "0123456789", 10, 1);
  append_tcp_frame(tcp, FlowV4{}, 5, 6, kTcpAck, "0123456789", 10, 2);
  for (const std::string* frame : {&udp, &tcp}) {
    for (std::size_t cut = 0; cut < frame->size(); ++cut) {
      // A copy exactly `cut` bytes long, so that ASan sees any read past it.
      std::string shorter = frame->substr(0, cut);
      shorter.shrink_to_fit();
      const Frame f = parse_frame(bytes(shorter), cut, LinkType::ethernet, true);
      CHECK_MESSAGE(f.kind == FrameKind::truncated, "cut at " << cut);
    }
  }
  // A UDP length larger than the IP packet, and a TCP header length beyond it.
  std::string bad = udp;
  bad[38] = 0x7f;
  CHECK(parse_frame(bytes(bad), bad.size(), LinkType::ethernet).kind == FrameKind::truncated);
  bad = tcp;
  bad[46] = static_cast<char>(0xf0);
  CHECK(parse_frame(bytes(bad), bad.size(), LinkType::ethernet).kind == FrameKind::truncated);
}
