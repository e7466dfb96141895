// systemd's readiness and watchdog protocol (sd_notify(3)), spoken directly
// over $NOTIFY_SOCKET: no libsystemd needed. Outside systemd (no
// NOTIFY_SOCKET) every call does nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>
#include <thread>

namespace spate {

// Sends one state line ("READY=1", "STOPPING=1", "STATUS=..."); false when
// there is no socket or the send failed.
bool sd_notify(std::string_view state);

// With $WATCHDOG_USEC set (for this process), pings the watchdog every half
// of it while healthy() holds; once it does not, the pings stop and systemd
// restarts the daemon after WatchdogSec. Stops with the object.
class Watchdog {
 public:
  explicit Watchdog(std::function<bool()> healthy);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  std::int64_t interval_us() const noexcept { return interval_us_; }  // 0: no watchdog

 private:
  std::function<bool()> healthy_;
  std::int64_t interval_us_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace spate
