// Deterministic randomness for spate-gen: the parts run once at start-up (probability scaling,
// the weighted table's thresholds, zipf weights from a libm-free log and exp).
#include "gen/rng.hpp"

#include <algorithm>
#include <cmath>

namespace spate::gen {
namespace {

// k^-theta from + - * / and exact frexp/ldexp only: libm's pow may differ in the last bit
// between libc versions, which would move a zipf threshold and change the stream. Every product
// that meets an addition is exact (a power of two, or a small integer times the 32-bit head of
// ln 2), so a compiler contracting a*b+c into an fma cannot change a result either.
constexpr double kLn2Head = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000: low 21 bits zero

double det_log(double x) noexcept {  // x >= 1
  int e = 0;
  double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);  // |s| < 0.172: ln m = 2 atanh(s)
  const double s2 = s * s;
  double term = s;
  double sum = 0.0;
  for (int k = 0; k < 24; ++k) {
    sum += term / static_cast<double>(2 * k + 1);
    term *= s2;
  }
  return 2.0 * sum + static_cast<double>(e) * kLn2Head;
}

double det_exp(double y) noexcept {  // y <= 0
  const double n = std::floor(y / kLn2Head + 0.5);
  const double r = y - n * kLn2Head;  // |r| <= ~0.35
  double term = 1.0;
  double sum = 1.0;
  for (int k = 1; k < 24; ++k) {
    term = term * r / static_cast<double>(k);
    sum += term;
  }
  return std::ldexp(sum, static_cast<int>(n));
}

}  // namespace

std::uint64_t probability53(double p) noexcept {
  return static_cast<std::uint64_t>(std::clamp(p, 0.0, 1.0) * static_cast<double>(kOne53));
}

WeightedTable::WeightedTable(const std::vector<double>& weights) {
  double total = 0;
  for (double w : weights) total += w;
  thresholds_.resize(weights.size());
  double cum = 0;
  for (std::size_t k = 0; k < weights.size(); ++k) {
    cum += weights[k];
    thresholds_[k] = static_cast<std::uint64_t>(cum / total * static_cast<double>(kOne53));
  }
  thresholds_.back() = kOne53;
  for (std::size_t k = 1; k < thresholds_.size(); ++k) {
    thresholds_[k] = std::max(thresholds_[k], thresholds_[k - 1]);
  }
  guide_.resize(std::size_t{1} << kGuideBits);
  std::uint32_t k = 0;
  for (std::size_t g = 0; g < guide_.size(); ++g) {
    const std::uint64_t floor_value = static_cast<std::uint64_t>(g) << (53 - kGuideBits);
    while (thresholds_[k] <= floor_value) ++k;
    guide_[g] = k;
  }
}

std::vector<double> zipf_weights(std::uint32_t n, double theta) {
  std::vector<double> w(n);
  for (std::uint32_t k = 0; k < n; ++k) {
    const volatile double y = -theta * det_log(static_cast<double>(k + 1));  // rounded here, not fused
    w[k] = det_exp(y);
  }
  return w;
}

std::vector<double> type_weights(std::size_t n) {  // the first listed type is the most frequent
  std::vector<double> w(n);
  for (std::size_t k = 0; k < n; ++k) w[k] = 1.0 / static_cast<double>(k + 1);
  return w;
}

}  // namespace spate::gen
