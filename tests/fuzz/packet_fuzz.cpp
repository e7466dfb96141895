// libFuzzer target: kernels::parse_frame, as the pcap and DPDK sources call
// it on every frame. The first byte picks the link type and whether
// checksums are verified; the rest is the frame, in a buffer exactly its
// size so that ASan sees any read past it. Checked: a UDP or TCP frame's
// payload lies inside the frame, at payload_offset; other kinds carry none.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "kernels/packet.hpp"

namespace {

using namespace spate::kernels;

constexpr LinkType kLinks[] = {LinkType::ethernet, LinkType::linux_sll, LinkType::linux_sll2,
                               LinkType::raw,      LinkType::null,      LinkType::loop};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "packet invariant: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const LinkType link = kLinks[data[0] % std::size(kLinks)];
  const bool verify = (data[0] & 0x80) != 0;
  const std::size_t len = size - 1;
  const auto frame = std::make_unique<std::uint8_t[]>(len == 0 ? 1 : len);
  if (len != 0) std::memcpy(frame.get(), data + 1, len);
  const Frame f = parse_frame(frame.get(), len, link, verify);
  if (f.kind == FrameKind::udp || f.kind == FrameKind::tcp) {
    if (f.payload == nullptr && f.payload_len != 0) fail("a payload length without a payload");
    if (f.payload != nullptr) {
      if (f.payload < frame.get() || f.payload + f.payload_len > frame.get() + len) fail("the payload leaves the frame");
      if (f.payload_offset != static_cast<std::size_t>(f.payload - frame.get())) fail("payload_offset disagrees");
    }
    if (f.ip_version != 4 && f.ip_version != 6) fail("a transport frame without its IP version");
  } else if (f.payload_len != 0) {
    fail("a frame that is not UDP or TCP carries a payload");
  }
  return 0;
}
