// Batch memory; see route_batch.hpp.
#include "engine/route_batch.hpp"

#include <algorithm>
#include <cstring>

namespace spate::engine {
namespace {
constexpr std::size_t kAlign = 64;
constexpr std::size_t align_up(std::size_t n) noexcept { return (n + kAlign - 1) & ~(kAlign - 1); }
// Room for the longest keys of one event even in the smallest batch (its
// rows on one shard share a batch when they are deduplicated).
std::uint32_t key_bytes_for(std::uint32_t rows) noexcept {
  return std::max<std::uint32_t>(rows * kKeyBytesPerRow, static_cast<std::uint32_t>(kMaxKeyGroups * kMaxKeyBytes));
}
}  // namespace

std::size_t RouteBatch::bytes_for(std::uint32_t n, std::size_t ncolumns) noexcept {
  return align_up(n * sizeof(std::int64_t)) * 3 +              // ts, wm, hash
         align_up(n * sizeof(std::uint32_t)) +                 // key_off
         align_up(n * sizeof(std::uint16_t)) +                 // key_len
         align_up(n * sizeof(kernels::Fingerprint)) +          // id
         align_up(n) * 2 +                                     // dedup, group
         align_up(n * sizeof(Cell)) * ncolumns +               // columns
         align_up(key_bytes_for(n)) + kAlign;                // keys, and room to align the start
}

void RouteBatch::allocate(std::uint32_t n, std::size_t ncolumns) {
  SPATE_ASSERT(ncolumns <= kMaxColumns, "finalize() allows at most kMaxColumns columns");
  memory_ = std::make_unique<std::byte[]>(bytes_for(n, ncolumns));  // zeroed: the pages are touched here
  auto p = reinterpret_cast<std::uintptr_t>(memory_.get());
  p = (p + kAlign - 1) & ~(std::uintptr_t{kAlign} - 1);
  const auto take = [&p](std::size_t bytes) {
    void* at = reinterpret_cast<void*>(p);
    p += align_up(bytes);
    return at;
  };
  ts = static_cast<std::int64_t*>(take(n * sizeof(std::int64_t)));
  wm = static_cast<std::int64_t*>(take(n * sizeof(std::int64_t)));
  hash = static_cast<std::uint64_t*>(take(n * sizeof(std::uint64_t)));
  key_off = static_cast<std::uint32_t*>(take(n * sizeof(std::uint32_t)));
  key_len = static_cast<std::uint16_t*>(take(n * sizeof(std::uint16_t)));
  id = static_cast<kernels::Fingerprint*>(take(n * sizeof(kernels::Fingerprint)));
  dedup = static_cast<DedupRole*>(take(n));
  group = static_cast<std::uint8_t*>(take(n));
  for (std::size_t c = 0; c < kMaxColumns; ++c) {
    columns[c] = c < ncolumns ? static_cast<Cell*>(take(n * sizeof(Cell))) : nullptr;
  }
  keys = static_cast<char*>(take(key_bytes_for(n)));
  capacity = n;
  key_capacity = key_bytes_for(n);
  rows = 0;
  key_bytes = 0;
}

}  // namespace spate::engine
