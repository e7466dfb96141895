// epoll and the wake-up eventfd; see poller.hpp.
#include "io/file/poller.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace spate::io {
namespace {
constexpr int kEpollEvents = 64;
constexpr std::uint64_t kWakeSlot = 0;  // slot 0 is the eventfd
}  // namespace

Poller::Poller() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeSlot << 56;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  nsources_ = 1;
}

Poller::~Poller() {
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void Poller::add(int fd, Source* source, std::uint64_t token) {
  std::uint32_t slot = 1;
  while (slot < nsources_ && sources_[slot] != source) ++slot;
  if (slot == nsources_) {
    if (nsources_ == 256) throw std::length_error("more than 255 polled sources on one shard");
    sources_[nsources_++] = source;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = (static_cast<std::uint64_t>(slot) << 56) | token;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }
}

void Poller::remove(int fd) noexcept { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

bool Poller::wait(int timeout_ms, LineSink& sink) {
  epoll_event events[kEpollEvents];
  const int n = epoll_wait(epoll_fd_, events, kEpollEvents, timeout_ms);
  for (int i = 0; i < n; ++i) {
    const std::uint64_t slot = events[i].data.u64 >> 56;
    if (slot == kWakeSlot) {
      std::uint64_t v;
      [[maybe_unused]] auto r = ::read(wake_fd_, &v, sizeof(v));
      continue;
    }
    sources_[slot]->ready(events[i].data.u64 & ((std::uint64_t{1} << 56) - 1), sink);
  }
  return n > 0;
}

void Poller::wake() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed)) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
  }
}

void Poller::sleeping(bool asleep) noexcept {
  sleeping_.store(asleep, asleep ? std::memory_order_seq_cst : std::memory_order_relaxed);
}

}  // namespace spate::io
