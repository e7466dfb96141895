// What spate-replay sends, loaded whole before the first send so that the
// send loop only paces and copies: messages of whole NDJSON lines, each
// with the time it was captured. A capture's UDP datagrams are a message
// each; its TCP streams are cut into messages of whole lines as their
// segments complete them (in capture order: spated's pcap source, not this
// tool, reassembles reordered streams). NDJSON is grouped into messages of
// up to `message_bytes` (whole lines).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spate::replay {

struct Message {
  std::size_t begin = 0;  // into Corpus::bytes
  std::size_t end = 0;
  std::int64_t ts_us = 0;  // when captured (0 for NDJSON)
  std::uint32_t lines = 0;
};

struct Corpus {
  std::string bytes;
  std::vector<Message> messages;
  std::uint64_t lines = 0;
  bool timed = false;  // a capture: messages carry their capture times
  // A capture's frames, and those that carried no payload for us (not UDP
  // or TCP, fragments, cut short, other ports, TCP without data).
  std::uint64_t frames = 0;
  std::uint64_t frames_skipped = 0;
  std::string_view text(const Message& m) const noexcept { return {bytes.data() + m.begin, m.end - m.begin}; }
};

// A capture (pcap or pcapng; `port`: only payloads to it, 0 any). Throws
// std::runtime_error when the file cannot be read as one.
Corpus load_capture(const std::string& path, std::uint16_t port, std::size_t message_bytes);
// NDJSON from a file ("-": stdin), grouped into messages of whole lines.
Corpus load_ndjson(const std::string& path, std::size_t message_bytes);
// True when the file starts like a pcap or pcapng capture.
bool looks_like_capture(const std::string& path);

}  // namespace spate::replay
