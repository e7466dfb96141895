// A counter with one writer and any number of readers (STATS): the writer
// adds with a relaxed load and store, no locked instruction on its path.
#pragma once

#include <atomic>
#include <cstdint>

namespace spate::kernels {

inline void add_relaxed(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace spate::kernels
