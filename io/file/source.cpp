// Source helpers; see source.hpp.
#include "io/file/source.hpp"

#include <chrono>

namespace spate::io {

const char* source_kind_name(SourceKind kind) noexcept {
  switch (kind) {
    case SourceKind::tcp: return "tcp";
    case SourceKind::udp: return "udp";
    case SourceKind::file: return "file";
    case SourceKind::publish: return "publish";
    case SourceKind::replay: return "replay";
    case SourceKind::pcap: return "pcap";
    case SourceKind::dpdk: return "dpdk";
  }
  return "unknown";
}

std::int64_t monotonic_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t monotonic_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace spate::io
