// Finds the first occurrence of a byte (the newline that ends an NDJSON
// line) in a range. Lines are ~150 bytes: libc memchr spent most of its
// ~100 instructions per call on set-up for long inputs and was 4-5% of the
// shard profile; the vector variants here take one 64-byte step per block.
//
// Each instruction set has its own source compiled with its own flags; one
// dispatch at start-up picks the best the CPU has. SPATE_KERNELS=scalar (or
// avx2) in the environment forces a variant; find_byte_variant() says which
// one runs.
#pragma once

#include <cstddef>
#include <string_view>

namespace spate::kernels {

// The scalar reference: the first `byte` in [p, end), or end. Reads nothing
// outside the range (neither do the vector variants).
const char* find_byte_scalar(const char* p, const char* end, char byte) noexcept;
const char* find_byte_avx2(const char* p, const char* end, char byte) noexcept;
const char* find_byte_avx512(const char* p, const char* end, char byte) noexcept;

using FindByteFn = const char* (*)(const char*, const char*, char) noexcept;

namespace detail {
extern FindByteFn find_byte_impl;
}

inline const char* find_byte(const char* p, const char* end, char byte) noexcept {
  return detail::find_byte_impl(p, end, byte);
}

// "avx512", "avx2" or "scalar".
std::string_view find_byte_variant() noexcept;
// Switches to a variant by name; false (and no change) when this CPU or
// build lacks it. For tests and benchmarks, before any shard runs.
bool use_find_byte_variant(std::string_view name) noexcept;

}  // namespace spate::kernels
