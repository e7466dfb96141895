// Bounded single-producer single-consumer ring whose slots are filled in
// place: the producer claims a slot, writes it, publishes; the consumer reads
// the front slot and pops it once it is done with it. No allocation after
// construction; the head and tail live on their own cache lines.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/assert.hpp"

namespace spate::engine {

template <typename T>
class SpscRing {
 public:
  explicit SpscRing(std::size_t capacity)
      : capacity_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<T[]>(capacity_)) {}

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const noexcept { return capacity_; }
  // Set-up only, before either side uses the ring: f(slot) for every slot.
  template <typename F>
  void for_each_slot(F&& f) {
    for (std::size_t i = 0; i < capacity_; ++i) f(slots_[i]);
  }

  // Producer: the next free slot, or nullptr when the ring is full.
  T* claim() noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - cached_tail_ == capacity_) {
      cached_tail_ = tail_.load(std::memory_order_acquire);
      if (head - cached_tail_ == capacity_) return nullptr;
    }
    return &slots_[head & mask_];
  }
  // Producer: makes the claimed slot visible to the consumer.
  void publish() noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);
    SPATE_DEBUG_ASSERT(head - tail_.load(std::memory_order_relaxed) < capacity_, "publish without a claimed slot");
    head_.store(head + 1, std::memory_order_release);
  }

  // Consumer: the oldest published slot, or nullptr when empty.
  T* front() noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == cached_head_) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (tail == cached_head_) return nullptr;
    }
    return &slots_[tail & mask_];
  }
  // Consumer: releases the front slot (after it has been fully processed).
  void pop() noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    SPATE_DEBUG_ASSERT(tail != head_.load(std::memory_order_relaxed), "pop from an empty ring");
    tail_.store(tail + 1, std::memory_order_release);
  }

  // Totals since construction; readable from any thread.
  std::uint64_t pushed() const noexcept { return head_.load(std::memory_order_acquire); }
  std::uint64_t popped() const noexcept { return tail_.load(std::memory_order_acquire); }
  std::size_t depth() const noexcept { return static_cast<std::size_t>(pushed() - popped()); }

 private:
  const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<T[]> slots_;
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::uint64_t cached_tail_ = 0;  // producer's view of tail_
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::uint64_t cached_head_ = 0;  // consumer's view of head_
};

}  // namespace spate::engine
