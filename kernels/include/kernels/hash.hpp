// Key hashing and shard selection: xxh3 over the key bytes, then a
// multiply-shift range reduction so any shard count works without a modulo.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

// GCC 12 reports false uninitialized-value warnings inside xxh3's AVX-512 intrinsics.
#pragma GCC diagnostic push
#if !defined(__clang__)  // a GCC-only warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

namespace spate::kernels {

inline std::uint64_t hash_key(const char* data, std::size_t len) noexcept {
  return XXH3_64bits(data, len);
}

inline std::uint64_t hash_key(std::string_view key) noexcept { return hash_key(key.data(), key.size()); }

// An event id's 128-bit fingerprint, computed once where the id is parsed:
// dedup keeps 96 of its bits (docs/engine.md states the false-duplicate
// probability that follows).
struct Fingerprint {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
};

inline Fingerprint fingerprint(std::string_view id) noexcept {
  const XXH128_hash_t h = XXH3_128bits(id.data(), id.size());
  return {h.low64, h.high64};
}

// Maps a 64-bit hash to [0, shards) using its high half (Lemire's fastrange):
// uniform for any shard count and independent of the low bits the key tables use.
inline std::uint32_t shard_of(std::uint64_t hash, std::uint32_t shards) noexcept {
  return static_cast<std::uint32_t>(((hash >> 32) * static_cast<std::uint64_t>(shards)) >> 32);
}

}  // namespace spate::kernels
