// A log-linear histogram of non-negative integers (latencies in
// microseconds): eight buckets per power of two, so a bucket's bounds are
// within 12.5% of each other, from 0 to 2^40 (12.7 days) and one bucket past
// it. One thread records (relaxed load and store, no locked instruction);
// any thread reads. Snapshots of several (one per shard) merge by adding.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "kernels/counter.hpp"

namespace spate::kernels {

inline constexpr unsigned kHistogramSubBits = 3;
inline constexpr std::uint64_t kHistogramSub = 1u << kHistogramSubBits;
inline constexpr unsigned kHistogramMaxBits = 40;  // values from 2^40 on share the last bucket
inline constexpr std::size_t kHistogramBuckets = kHistogramSub * (kHistogramMaxBits - kHistogramSubBits + 1) + 1;

// The bucket holding `value`: values below kHistogramSub have one each;
// above, each power of two is split in kHistogramSub equal parts.
constexpr std::size_t histogram_bucket(std::uint64_t value) noexcept {
  if (value < kHistogramSub) return static_cast<std::size_t>(value);
  if (value >> kHistogramMaxBits) return kHistogramBuckets - 1;
  const unsigned e = 63u - static_cast<unsigned>(std::countl_zero(value));  // >= kHistogramSubBits
  const std::uint64_t sub = (value >> (e - kHistogramSubBits)) & (kHistogramSub - 1);
  return static_cast<std::size_t>(kHistogramSub * (e - kHistogramSubBits + 1) + sub);
}

// The smallest value of bucket b.
constexpr std::uint64_t histogram_lower(std::size_t b) noexcept {
  if (b < kHistogramSub) return b;
  const std::uint64_t e = (b - kHistogramSub) / kHistogramSub + kHistogramSubBits;
  const std::uint64_t sub = (b - kHistogramSub) % kHistogramSub;
  return (kHistogramSub + sub) << (e - kHistogramSubBits);
}

// The largest value of bucket b (UINT64_MAX for the last).
constexpr std::uint64_t histogram_upper(std::size_t b) noexcept {
  return b + 1 >= kHistogramBuckets ? UINT64_MAX : histogram_lower(b + 1) - 1;
}

// A copy of a histogram's figures, or the sum of several.
struct HistogramCounts {
  std::uint64_t counts[kHistogramBuckets] = {};
  double sum = 0;  // of the values recorded (a double: a backfill of old events would overflow integers)

  std::uint64_t total() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t c : counts) n += c;
    return n;
  }
  void merge(const HistogramCounts& other) noexcept {
    for (std::size_t b = 0; b < kHistogramBuckets; ++b) counts[b] += other.counts[b];
    sum += other.sum;
  }
  // Values recorded below `bound` (a power of two at least kHistogramSub,
  // or anything below it): what a Prometheus bucket `le` counts.
  std::uint64_t below(std::uint64_t bound) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t b = 0; b < kHistogramBuckets && histogram_upper(b) < bound; ++b) n += counts[b];
    return n;
  }
  // The q-quantile (0 < q <= 1), as the largest value of the bucket that
  // holds it: at most 12.5% above the true value. 0 when empty.
  std::uint64_t quantile(double q) const noexcept {
    const std::uint64_t n = total();
    if (n == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n) + 0.999999);
    if (rank < 1) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kHistogramBuckets; ++b) {
      seen += counts[b];
      if (seen >= rank) return histogram_upper(b);
    }
    return histogram_upper(kHistogramBuckets - 1);
  }
};

class LogHistogram {
 public:
  void record(std::uint64_t value, std::uint64_t n = 1) noexcept {
    add_bucket(histogram_bucket(value), n);
    add_sum(static_cast<double>(value) * static_cast<double>(n));
  }
  // In parts, for a loop that buckets each value and adds their sum once.
  void add_bucket(std::size_t b, std::uint64_t n = 1) noexcept { add_relaxed(counts_[b], n); }
  void add_sum(double s) noexcept { sum_.store(sum_.load(std::memory_order_relaxed) + s, std::memory_order_relaxed); }

  void copy_to(HistogramCounts& out) const noexcept {
    for (std::size_t b = 0; b < kHistogramBuckets; ++b) out.counts[b] = counts_[b].load(std::memory_order_relaxed);
    out.sum = sum_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> counts_[kHistogramBuckets] = {};
  std::atomic<double> sum_{0};
};

}  // namespace spate::kernels
