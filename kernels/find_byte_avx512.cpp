// find_byte for AVX-512 (F and BW); compiled with -mavx512f -mavx512bw -mbmi
// (see meson.build) and only called when the CPU has them.
#include "kernels/find_byte.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

namespace spate::kernels {

const char* find_byte_avx512(const char* p, const char* end, char byte) noexcept {
  const __m512i needle = _mm512_set1_epi8(byte);
  while (end - p >= 64) {
    const __m512i v = _mm512_loadu_si512(p);
    const std::uint64_t mask = _mm512_cmpeq_epi8_mask(v, needle);
    if (mask != 0) return p + _tzcnt_u64(mask);
    p += 64;
  }
  // The tail with a masked load: bytes past `end` are neither read nor matched.
  const auto left = static_cast<unsigned>(end - p);
  if (left == 0) return end;
  const __mmask64 valid = (1ull << left) - 1;  // left < 64
  const __m512i v = _mm512_maskz_loadu_epi8(valid, p);
  const std::uint64_t mask = _mm512_mask_cmpeq_epi8_mask(valid, v, needle);
  return mask != 0 ? p + _tzcnt_u64(mask) : end;
}

}  // namespace spate::kernels

#else

namespace spate::kernels {
const char* find_byte_avx512(const char* p, const char* end, char byte) noexcept { return find_byte_scalar(p, end, byte); }
}  // namespace spate::kernels

#endif
