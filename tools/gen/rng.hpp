// Deterministic randomness for spate-gen: the xoshiro256** generator, weighted draws and zipf
// weights, built from integer operations and exactly rounded arithmetic so a seed gives the same
// stream on every machine and library version.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace spate::gen {

inline constexpr std::uint64_t kOne53 = std::uint64_t{1} << 53;  // probabilities are 53-bit integers

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: xoshiro256** seeded through splitmix64. Every draw is an integer
// operation, so a seed yields the same stream on every machine and library version.

inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline std::uint64_t mix64(std::uint64_t v) noexcept { return splitmix64(v); }

class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept {
    for (auto& word : s_) word = splitmix64(seed);
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 2^53): compared against probabilities scaled by 2^53.
  std::uint64_t bits53() noexcept { return next() >> 11; }
  // Uniform in [0, n) by multiply-shift (bias below 2^-40 for the ranges used here).
  std::uint64_t below(std::uint64_t n) noexcept {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

// p (clamped to [0, 1]) in 2^53 units, for comparison with Rng::bits53.
std::uint64_t probability53(double p) noexcept;

// Draws an index in [0, n) from fixed weights: cumulative thresholds in 2^53 units, a guide
// table indexed by the top 16 bits finds the start, a short scan finishes (O(1) expected;
// a plain binary search over 10000 users costs ~14 mispredicted branches per event).
class WeightedTable {
 public:
  explicit WeightedTable(const std::vector<double>& weights);
  std::uint32_t draw(std::uint64_t r53) const noexcept {
    std::uint32_t k = guide_[r53 >> (53 - kGuideBits)];
    while (thresholds_[k] <= r53) ++k;
    return k;
  }

 private:
  static constexpr unsigned kGuideBits = 16;
  std::vector<std::uint64_t> thresholds_;
  std::vector<std::uint32_t> guide_;
};

// Weight k^-theta of rank k = 1..n, computed without libm (see det_log in rng.cpp).
std::vector<double> zipf_weights(std::uint32_t n, double theta);

std::vector<double> type_weights(std::size_t n);  // the first listed type is the most frequent

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace spate::gen
