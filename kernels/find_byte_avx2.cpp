// find_byte for AVX2; compiled with -mavx2 -mbmi (see meson.build) and only
// called when the CPU has them.
#include "kernels/find_byte.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

namespace spate::kernels {

const char* find_byte_avx2(const char* p, const char* end, char byte) noexcept {
  const __m256i needle = _mm256_set1_epi8(byte);
  // Two 32-byte compares per 64-byte step: one branch per 64 bytes.
  while (end - p >= 64) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const auto lo = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, needle)));
    const auto hi = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, needle)));
    const std::uint64_t mask = (static_cast<std::uint64_t>(hi) << 32) | lo;
    if (mask != 0) return p + _tzcnt_u64(mask);
    p += 64;
  }
  if (end - p >= 32) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const auto mask = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, needle)));
    if (mask != 0) return p + _tzcnt_u32(mask);
    p += 32;
  }
  return find_byte_scalar(p, end, byte);
}

}  // namespace spate::kernels

#else

namespace spate::kernels {
const char* find_byte_avx2(const char* p, const char* end, char byte) noexcept { return find_byte_scalar(p, end, byte); }
}  // namespace spate::kernels

#endif
