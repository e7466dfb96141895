// sd_notify over $NOTIFY_SOCKET; see systemd_notify.hpp.
#include "systemd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

namespace spate {

bool sd_notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // an abstract socket
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  const bool sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                             addr_len) == static_cast<ssize_t>(state.size());
  ::close(fd);
  return sent;
}

Watchdog::Watchdog(std::function<bool()> healthy) : healthy_(std::move(healthy)) {
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (usec == nullptr || (pid != nullptr && std::strtol(pid, nullptr, 10) != ::getpid())) return;
  interval_us_ = std::strtoll(usec, nullptr, 10) / 2;
  if (interval_us_ <= 0) return;
  thread_ = std::thread([this] {
    while (!stop_.load(std::memory_order_acquire)) {
      if (healthy_()) sd_notify("WATCHDOG=1");
      for (std::int64_t slept = 0; slept < interval_us_ && !stop_.load(std::memory_order_acquire); slept += 10000) {
        std::this_thread::sleep_for(std::chrono::microseconds(std::min<std::int64_t>(10000, interval_us_ - slept)));
      }
    }
  });
}

Watchdog::~Watchdog() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

}  // namespace spate
