// Source helpers; see source.hpp.
#include "io/file/source.hpp"

#include <unistd.h>

#include <chrono>

#include "kernels/assert.hpp"

namespace spate::io {

// Only a source that accepts connections is handed one.
void Source::adopt(int fd, LineSink&) {
  SPATE_ASSERT(false, "a connection handed to a source that accepts none");
  ::close(fd);
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
