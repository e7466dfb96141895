// The shard loop's one wait: epoll over every source's descriptors plus a
// wake-up eventfd that other threads ring after pushing to the shard's rings.
#pragma once

#include <atomic>
#include <cstdint>

#include "io/file/source.hpp"

namespace spate::io {

class Poller {
 public:
  Poller();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Readiness of fd goes to source->ready(token). Tokens are the source's own
  // (below 2^56).
  void add(int fd, Source* source, std::uint64_t token);
  void remove(int fd) noexcept;

  // Waits up to timeout_ms (0: just looks) and dispatches what is ready to
  // the sources. Returns true when anything was ready.
  bool wait(int timeout_ms, LineSink& sink);

  // Any thread: wakes a wait() that is sleeping. The loop marks its sleep
  // with sleeping(true) before it checks for pending work, so a wake() after
  // that check is never lost.
  void wake() noexcept;
  void sleeping(bool asleep) noexcept;
  // The wake-up eventfd, for what else should end a wait (io_uring
  // completions): wait() drains it.
  int wake_fd() const noexcept { return wake_fd_; }

 private:
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> sleeping_{false};
  // epoll carries one 64-bit word: the source's slot in the top byte, its token below.
  Source* sources_[256] = {};
  std::uint32_t nsources_ = 0;
};

}  // namespace spate::io
