// Frames parsed in place; see packet.hpp.
#include "kernels/packet.hpp"

#include <cstring>

namespace spate::kernels {
namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;

std::uint16_t be16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t be32(const std::uint8_t* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// The checksum over the pseudo-header and the transport segment.
bool transport_checksum_ok(const Frame& f, const std::uint8_t* segment, std::size_t len, std::uint8_t proto) noexcept {
  const std::size_t addr = f.ip_version == 4 ? 4 : 16;
  std::uint32_t sum = checksum_add(0, f.src_ip, addr);
  sum = checksum_add(sum, f.dst_ip, addr);
  sum += proto;
  sum += static_cast<std::uint32_t>(len & 0xffff) + static_cast<std::uint32_t>(len >> 16);
  sum = checksum_add(sum, segment, len);
  return checksum_fold(sum) == 0xffff;
}

// The transport header at `p` (`len` bytes of IP payload, all captured).
Frame& transport(Frame& f, const std::uint8_t* base, const std::uint8_t* p, std::size_t len, std::uint8_t proto,
                 bool verify) noexcept {
  if (proto == kProtoUdp) {
    if (len < 8) return f.kind = FrameKind::truncated, f;
    const std::uint16_t udp_len = be16(p + 4);
    if (udp_len < 8 || udp_len > len) return f.kind = FrameKind::truncated, f;
    f.src_port = be16(p);
    f.dst_port = be16(p + 2);
    if (verify && be16(p + 6) != 0 && !transport_checksum_ok(f, p, udp_len, proto)) {
      return f.kind = FrameKind::bad_checksum, f;
    }
    f.kind = FrameKind::udp;
    f.payload = p + 8;
    f.payload_len = udp_len - 8u;
  } else if (proto == kProtoTcp) {
    if (len < 20) return f.kind = FrameKind::truncated, f;
    const std::size_t header = static_cast<std::size_t>(p[12] >> 4) * 4;
    if (header < 20 || header > len) return f.kind = FrameKind::truncated, f;
    f.src_port = be16(p);
    f.dst_port = be16(p + 2);
    f.seq = be32(p + 4);
    f.tcp_flags = p[13];
    if (verify && !transport_checksum_ok(f, p, len, proto)) return f.kind = FrameKind::bad_checksum, f;
    f.kind = FrameKind::tcp;
    f.payload = p + header;
    f.payload_len = len - header;
  } else {
    return f.kind = FrameKind::other, f;
  }
  f.payload_offset = static_cast<std::size_t>(f.payload - base);
  return f;
}

Frame& ipv4(Frame& f, const std::uint8_t* base, const std::uint8_t* p, std::size_t len, bool verify) noexcept {
  if (len < 20) return f.kind = FrameKind::truncated, f;
  const std::size_t header = static_cast<std::size_t>(p[0] & 0x0f) * 4;
  const std::size_t total = be16(p + 2);
  if (header < 20 || total < header) return f.kind = FrameKind::truncated, f;
  if (total > len) return f.kind = FrameKind::truncated, f;  // cut by the snap length
  f.ip_version = 4;
  std::memcpy(f.src_ip, p + 12, 4);
  std::memcpy(f.dst_ip, p + 16, 4);
  if (verify && checksum_fold(checksum_add(0, p, header)) != 0xffff) return f.kind = FrameKind::bad_checksum, f;
  if ((be16(p + 6) & 0x3fff) != 0) return f.kind = FrameKind::fragment, f;  // more fragments, or an offset
  return transport(f, base, p + header, total - header, p[9], verify);
}

Frame& ipv6(Frame& f, const std::uint8_t* base, const std::uint8_t* p, std::size_t len, bool verify) noexcept {
  if (len < 40) return f.kind = FrameKind::truncated, f;
  const std::size_t payload = be16(p + 4);
  if (payload == 0) return f.kind = FrameKind::other, f;  // a jumbogram: not carried here
  if (40 + payload > len) return f.kind = FrameKind::truncated, f;
  f.ip_version = 6;
  std::memcpy(f.src_ip, p + 8, 16);
  std::memcpy(f.dst_ip, p + 24, 16);
  std::uint8_t next = p[6];
  const std::uint8_t* at = p + 40;
  std::size_t left = payload;
  while (true) {
    std::size_t ext;
    switch (next) {
      case 0:   // hop-by-hop options
      case 43:  // routing
      case 60:  // destination options
        if (left < 8) return f.kind = FrameKind::truncated, f;
        ext = (static_cast<std::size_t>(at[1]) + 1) * 8;
        break;
      case 51:  // authentication header
        if (left < 8) return f.kind = FrameKind::truncated, f;
        ext = (static_cast<std::size_t>(at[1]) + 2) * 4;
        break;
      case 44:
        return f.kind = FrameKind::fragment, f;
      default:
        return transport(f, base, at, left, next, verify);
    }
    if (ext > left) return f.kind = FrameKind::truncated, f;
    next = at[0];
    at += ext;
    left -= ext;
  }
}

}  // namespace

bool link_type_known(std::uint32_t link) noexcept {
  switch (static_cast<LinkType>(link)) {
    case LinkType::null:
    case LinkType::ethernet:
    case LinkType::raw:
    case LinkType::linux_sll:
    case LinkType::loop:
    case LinkType::linux_sll2: return true;
  }
  return false;
}

std::uint32_t checksum_add(std::uint32_t sum, const std::uint8_t* data, std::size_t len) noexcept {
  std::uint64_t s = sum;
  std::size_t i = 0;
  for (; i + 1 < len; i += 2) s += be16(data + i);
  if (i < len) s += static_cast<std::uint32_t>(data[i]) << 8;
  while (s >> 32) s = (s & 0xffffffff) + (s >> 32);
  return static_cast<std::uint32_t>(s);
}

std::uint16_t checksum_fold(std::uint32_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

namespace {

void put16(std::string& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<char>(v >> 8);
  out[at + 1] = static_cast<char>(v & 0xff);
}
void put32(std::string& out, std::size_t at, std::uint32_t v) {
  put16(out, at, static_cast<std::uint16_t>(v >> 16));
  put16(out, at + 2, static_cast<std::uint16_t>(v & 0xffff));
}

// Ethernet and IPv4 headers for `transport` bytes of protocol `proto`;
// returns the offset of the transport header.
std::size_t append_ip(std::string& out, const FlowV4& flow, std::size_t transport, std::uint8_t proto, std::uint16_t id) {
  static constexpr std::uint8_t kMacs[12] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
  out.append(reinterpret_cast<const char*>(kMacs), sizeof(kMacs));
  out.append("\x08\x00", 2);
  const std::size_t ip = out.size();
  out.append(20, '\0');
  out[ip] = 0x45;
  put16(out, ip + 2, static_cast<std::uint16_t>(20 + transport));
  put16(out, ip + 4, id);
  put16(out, ip + 6, 0x4000);  // don't fragment
  out[ip + 8] = 64;
  out[ip + 9] = static_cast<char>(proto);
  put32(out, ip + 12, flow.src_ip);
  put32(out, ip + 16, flow.dst_ip);
  put16(out, ip + 10,
        static_cast<std::uint16_t>(~checksum_fold(checksum_add(0, reinterpret_cast<const std::uint8_t*>(out.data() + ip), 20))));
  return out.size();
}

// The transport checksum at `sum_at` over the segment from `at` to the end.
void fill_transport_checksum(std::string& out, std::size_t at, std::size_t sum_at, const FlowV4& flow, std::uint8_t proto) {
  std::uint8_t addrs[8];
  for (int i = 0; i < 4; ++i) {
    addrs[i] = static_cast<std::uint8_t>(flow.src_ip >> (24 - 8 * i));
    addrs[4 + i] = static_cast<std::uint8_t>(flow.dst_ip >> (24 - 8 * i));
  }
  const std::size_t len = out.size() - at;
  std::uint32_t sum = checksum_add(0, addrs, 8) + proto + static_cast<std::uint32_t>(len);
  sum = checksum_add(sum, reinterpret_cast<const std::uint8_t*>(out.data() + at), len);
  std::uint16_t c = static_cast<std::uint16_t>(~checksum_fold(sum));
  if (c == 0 && proto == kProtoUdp) c = 0xffff;  // 0 would mean "no checksum"
  put16(out, sum_at, c);
}

}  // namespace

void append_udp_frame(std::string& out, const FlowV4& flow, const void* payload, std::size_t len, std::uint16_t ip_id) {
  const std::size_t at = append_ip(out, flow, 8 + len, kProtoUdp, ip_id);
  out.append(8, '\0');
  put16(out, at, flow.src_port);
  put16(out, at + 2, flow.dst_port);
  put16(out, at + 4, static_cast<std::uint16_t>(8 + len));
  out.append(static_cast<const char*>(payload), len);
  fill_transport_checksum(out, at, at + 6, flow, kProtoUdp);
}

void append_tcp_frame(std::string& out, const FlowV4& flow, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags,
                      const void* payload, std::size_t len, std::uint16_t ip_id) {
  const std::size_t at = append_ip(out, flow, 20 + len, kProtoTcp, ip_id);
  out.append(20, '\0');
  put16(out, at, flow.src_port);
  put16(out, at + 2, flow.dst_port);
  put32(out, at + 4, seq);
  put32(out, at + 8, ack);
  out[at + 12] = 0x50;
  out[at + 13] = static_cast<char>(flags);
  put16(out, at + 14, 65535);
  if (len != 0) out.append(static_cast<const char*>(payload), len);
  fill_transport_checksum(out, at, at + 16, flow, kProtoTcp);
}

Frame parse_frame(const std::uint8_t* data, std::size_t len, LinkType link, bool verify) noexcept {
  Frame f;
  std::uint16_t ether = 0;
  std::size_t off = 0;
  switch (link) {
    case LinkType::ethernet:
      if (len < 14) return f.kind = FrameKind::truncated, f;
      off = 12;
      ether = be16(data + off);
      // 802.1Q and 802.1ad (QinQ) tags, any number of them.
      while (ether == 0x8100 || ether == 0x88a8 || ether == 0x9100) {
        off += 4;
        if (len < off + 2) return f.kind = FrameKind::truncated, f;
        ether = be16(data + off);
      }
      off += 2;
      break;
    case LinkType::linux_sll:
      if (len < 16) return f.kind = FrameKind::truncated, f;
      ether = be16(data + 14);
      off = 16;
      break;
    case LinkType::linux_sll2:
      if (len < 20) return f.kind = FrameKind::truncated, f;
      ether = be16(data);
      off = 20;
      break;
    case LinkType::null:
    case LinkType::loop: {
      if (len < 4) return f.kind = FrameKind::truncated, f;
      std::uint32_t family;
      std::memcpy(&family, data, 4);
      if (link == LinkType::loop || (family & 0xffff) == 0) family = be32(data);  // network order, or a big-endian writer
      ether = family == 2 ? kEtherIpv4 : (family == 24 || family == 28 || family == 30) ? kEtherIpv6 : 0;
      off = 4;
      break;
    }
    case LinkType::raw:
      if (len < 1) return f.kind = FrameKind::truncated, f;
      ether = (data[0] >> 4) == 4 ? kEtherIpv4 : (data[0] >> 4) == 6 ? kEtherIpv6 : 0;
      break;
  }
  if (ether == kEtherIpv4) return ipv4(f, data, data + off, len - off, verify);
  if (ether == kEtherIpv6) return ipv6(f, data, data + off, len - off, verify);
  return f;
}

}  // namespace spate::kernels
