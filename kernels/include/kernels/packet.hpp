// Frames parsed in place: link layer (Ethernet with VLAN and QinQ tags,
// Linux cooked capture v1 and v2, raw IP, BSD loopback), IPv4 (options,
// fragments), IPv6 (extension headers, fragments), then UDP or TCP. No copy:
// the result points into the frame. Used by the pcap source, the DPDK
// source and the capture tools alike, so every path reads a frame the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace spate::kernels {

// The link types of pcap files (LINKTYPE_*) this parser reads.
enum class LinkType : std::uint16_t {
  null = 0,          // BSD loopback: 4-byte address family in host order
  ethernet = 1,
  raw = 101,         // the IP header first
  linux_sll = 113,
  loop = 108,        // as null, family in network order
  linux_sll2 = 276,
};
bool link_type_known(std::uint32_t link) noexcept;

enum class FrameKind : std::uint8_t {
  udp,
  tcp,
  fragment,   // an IPv4 or IPv6 fragment: not reassembled, counted
  other,      // not IP, or IP carrying neither UDP nor TCP
  truncated,  // the headers or the payload are cut short (the capture's snap length, or a bad length field)
  bad_checksum,
};

struct Frame {
  FrameKind kind = FrameKind::other;
  std::uint8_t ip_version = 0;
  std::uint8_t src_ip[16] = {};  // IPv4 addresses in the first 4 bytes
  std::uint8_t dst_ip[16] = {};
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  // TCP only.
  std::uint32_t seq = 0;
  std::uint8_t tcp_flags = 0;  // FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10
  const std::uint8_t* payload = nullptr;
  std::size_t payload_len = 0;
  // Where the payload ends in the buffer holding the frame: the bytes after
  // it (the frame's trailer, the buffer's tailroom) are readable padding.
  std::size_t payload_offset = 0;
};

inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;

// Parses `len` captured bytes of one frame. With verify_checksums, a UDP
// or TCP checksum (and the IPv4 header's) that does not add up makes it
// bad_checksum (a UDP checksum of 0 means none, as RFC 768 says).
Frame parse_frame(const std::uint8_t* data, std::size_t len, LinkType link, bool verify_checksums = false) noexcept;

// The Internet checksum (RFC 1071) of `len` bytes, folded, not inverted,
// added to `sum`; for building and checking headers.
std::uint32_t checksum_add(std::uint32_t sum, const std::uint8_t* data, std::size_t len) noexcept;
std::uint16_t checksum_fold(std::uint32_t sum) noexcept;

// Building frames (captures written by the tools, tests): Ethernet, IPv4
// and UDP or TCP, every checksum filled in. Addresses in host order.
struct FlowV4 {
  std::uint32_t src_ip = 0x0a000001;  // 10.0.0.1
  std::uint32_t dst_ip = 0x0a000002;
  std::uint16_t src_port = 40000;
  std::uint16_t dst_port = 7072;
};
void append_udp_frame(std::string& out, const FlowV4& flow, const void* payload, std::size_t len, std::uint16_t ip_id);
void append_tcp_frame(std::string& out, const FlowV4& flow, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags,
                      const void* payload, std::size_t len, std::uint16_t ip_id);
inline constexpr std::uint8_t kTcpAck = 0x10;
inline constexpr std::uint8_t kTcpPsh = 0x08;

}  // namespace spate::kernels
