// A columnar batch of rows bound for one shard (each row tagged with its key
// group): the unit that crosses cores over an SpscRing and that views consume.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "kernels/hash.hpp"
#include "kernels/small_bytes.hpp"
#include "kernels/assert.hpp"
#include "config/config.hpp"
#include "engine/cell.hpp"

namespace spate::engine {

// Rows per batch: ring_batch_rows, within these bounds. Key bytes per batch
// are kKeyBytesPerRow times that (a batch of long keys fills by bytes first).
inline constexpr std::uint32_t kDefaultBatchRows = 512;
inline constexpr std::uint32_t kMinBatchRows = 16;
inline constexpr std::uint32_t kMaxBatchRows = 4096;
inline constexpr std::uint32_t kKeyBytesPerRow = 32;

// Who decides a row's dedup by event id (docs/engine.md): the first of an
// event's key groups owned by a shard checks the id there, for that shard's
// rows of the event; its other rows there follow that verdict. Rows decided
// where they were parsed travel as `none`.
enum class DedupRole : std::uint8_t {
  none,       // not checked here (decided already, or no dedup)
  primary,    // the event's first key group: checks and counts dedup.duplicates
  secondary,  // the first of a later key group's on another shard: checks, counts nothing
  follower,   // takes the verdict of the decider row just before it in the batch
};

struct RouteBatch {
  std::uint32_t rows = 0;  // 0: a watermark-only batch, or a checkpoint barrier
  // A checkpoint barrier (no rows): the sender's rows before it are in the
  // sender's checkpoint of this epoch, those after it are not. 0: none.
  std::uint64_t barrier = 0;
  // The sender's input watermark when the batch was sealed: how far its
  // inputs had come after the last row (INT64_MIN: no claim).
  std::int64_t watermark = INT64_MIN;
  // When its first row was read from its input (the monotonic clock, us):
  // receive_to_applied is timed from it.
  std::int64_t received_us = 0;
  std::uint32_t key_bytes = 0;
  std::uint32_t capacity = 0;      // rows
  std::uint32_t key_capacity = 0;  // bytes
  // Columns, each `capacity` long, in one allocation made by allocate().
  std::int64_t* ts = nullptr;
  // Per row, the sender's input watermark as it stood before that row:
  // event time travels in band with the rows, so the receiver judges each
  // row against exactly what the sender knew then (never decreasing).
  std::int64_t* wm = nullptr;
  std::uint64_t* hash = nullptr;
  std::uint32_t* key_off = nullptr;
  std::uint16_t* key_len = nullptr;
  DedupRole* dedup = nullptr;
  kernels::Fingerprint* id = nullptr;  // the event id's fingerprint, for a primary or secondary row
  std::uint8_t* group = nullptr;
  Cell* columns[kMaxColumns] = {};  // Config::columns, typed as each says: the first ncolumns are allocated
  char* keys = nullptr;

  RouteBatch() = default;  // no memory: allocate() before use
  RouteBatch(std::uint32_t capacity_rows, std::size_t ncolumns) { allocate(capacity_rows, ncolumns); }
  // Sized for capacity_rows rows of ncolumns columns. Called by the
  // thread that will read the batch (a ring's consumer), so its pages land
  // on that thread's node.
  void allocate(std::uint32_t capacity_rows, std::size_t ncolumns);
  // Bytes one such batch takes.
  static std::size_t bytes_for(std::uint32_t capacity_rows, std::size_t ncolumns) noexcept;

  bool has_room(std::size_t bytes, std::uint32_t n = 1) const noexcept {
    return rows + n <= capacity && key_bytes + bytes <= key_capacity;
  }
  void clear() noexcept {
    rows = 0;
    key_bytes = 0;
    barrier = 0;
  }
  void append(std::uint8_t g, std::uint64_t h, std::int64_t t, std::int64_t w, std::string_view key, DedupRole role,
              const kernels::Fingerprint& fp, const Cell* cols, std::size_t ncols) noexcept {
    SPATE_DEBUG_ASSERT(has_room(key.size()), "append to a full batch");
    const std::uint32_t r = rows++;
    group[r] = g;
    ts[r] = t;
    wm[r] = w;
    hash[r] = h;
    key_off[r] = key_bytes;
    key_len[r] = static_cast<std::uint16_t>(key.size());
    kernels::copy_bytes(keys + key_bytes, key.data(), key.size());
    key_bytes += static_cast<std::uint32_t>(key.size());
    dedup[r] = role;
    id[r] = fp;
    for (std::size_t c = 0; c < ncols; ++c) columns[c][r] = cols[c];
  }
  std::string_view key(std::uint32_t r) const noexcept { return {keys + key_off[r], key_len[r]}; }

 private:
  std::unique_ptr<std::byte[]> memory_;
};

}  // namespace spate::engine
