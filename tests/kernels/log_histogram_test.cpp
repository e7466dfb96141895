// The log-linear histogram: every value lands in the bucket whose bounds
// hold it, bounds stay within 12.5%, and quantiles, merges and Prometheus
// bucket counts follow from the counts.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>

#include "kernels/log_histogram.hpp"

using namespace spate::kernels;

TEST_CASE("log histogram: buckets tile the values in order, each within 12.5% of its lower bound") {
  CHECK(histogram_lower(0) == 0);
  for (std::size_t b = 0; b + 1 < kHistogramBuckets; ++b) {
    CHECK(histogram_upper(b) + 1 == histogram_lower(b + 1));
    CHECK(histogram_bucket(histogram_lower(b)) == b);
    CHECK(histogram_bucket(histogram_upper(b)) == b);
    if (b >= kHistogramSub) {
      CHECK(static_cast<double>(histogram_upper(b) - histogram_lower(b) + 1) <=
            0.125 * static_cast<double>(histogram_lower(b)));
    }
  }
  CHECK(histogram_bucket(std::uint64_t{1} << kHistogramMaxBits) == kHistogramBuckets - 1);
  CHECK(histogram_bucket(UINT64_MAX) == kHistogramBuckets - 1);
  CHECK(histogram_upper(kHistogramBuckets - 1) == UINT64_MAX);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 64);
    const std::size_t b = histogram_bucket(v);
    CHECK(histogram_lower(b) <= v);
    CHECK(v <= histogram_upper(b));
  }
}

TEST_CASE("log histogram: counts, sum, quantiles, Prometheus bounds and merges") {
  LogHistogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);
  h.record(5000, 10);
  HistogramCounts c;
  h.copy_to(c);
  CHECK(c.total() == 1010);
  CHECK(c.sum == doctest::Approx(500500.0 + 50000.0));
  // The median is 505: reported as its bucket's top, at most 12.5% above.
  CHECK(c.quantile(0.5) >= 505);
  CHECK(c.quantile(0.5) <= 505 * 1.125);
  CHECK(c.quantile(1.0) >= 5000);
  CHECK(c.quantile(1.0) <= 5000 * 1.125);
  CHECK(c.below(1024) == 1000);  // 1..1000 are below 2^10, the ten 5000s are not
  CHECK(c.below(8) == 7);
  CHECK(c.below(UINT64_MAX) == 1010);
  HistogramCounts empty;
  CHECK(empty.quantile(0.99) == 0);
  HistogramCounts merged;
  merged.merge(c);
  merged.merge(c);
  CHECK(merged.total() == 2020);
  CHECK(merged.below(1024) == 2000);
  CHECK(merged.quantile(0.5) == c.quantile(0.5));
}
