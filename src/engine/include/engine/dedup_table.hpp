// Dedup by event id for one shard: every id of the last horizon_ms of event
// time, within a memory budget, as a 96-bit fingerprint in a 16-byte slot.
//
// The table is an array of 64-byte buckets of four slots. An id may live in
// one of two buckets, both computed from its fingerprint, so a check reads
// at most two cache lines at addresses known as soon as the id is parsed
// (prefetchable, never a chain): its first bucket always, the second only
// when the first has ever overflowed into it. A slot keeps its id's event
// time (seconds); a slot dated past the horizon is free. A new id that finds
// both buckets full moves one of their ids to its other bucket; failing
// that, the table doubles (as it does past 85% full) while under the
// budget, and at the budget the new id takes the oldest of the eight, and
// the newest time so evicted bounds the horizon the table really covers
// (horizon_covered_ms). The two generations of exact ids this replaces
// forgot all but the newest 32-64 Ki ids, about a second of traffic.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/byte_io.hpp"
#include "kernels/hash.hpp"
#include "kernels/prefetch.hpp"

namespace spate::engine {

class DedupTable {
 public:
  enum class Verdict : std::uint8_t { first, duplicate, beyond_horizon };

  struct Options {
    std::int64_t horizon_ms = 65000;
    std::uint64_t max_bytes = std::uint64_t{384} << 20;
    // Bits of the fingerprint kept (96 in use; fewer only in the test that
    // checks the false-duplicate formula against a narrow model).
    unsigned fingerprint_bits = 96;
  };
  static constexpr std::uint64_t kBucketBytes = 64;
  static constexpr std::uint64_t kSlotsPerBucket = 4;
  static constexpr std::uint64_t kMinBuckets = 1024;

  explicit DedupTable(Options options);

  // The buckets check() may read, for prefetching: both, as a bucket that
  // once overflowed stays marked, and most are in a table that has run
  // near full (prefetching the first alone left a miss on the second:
  // perf/RESULTS.md, "Dedup by fingerprint").
  void prefetch(const kernels::Fingerprint& fp) const noexcept {
    const Spots s = spots_of(key_of(fp));
    kernels::prefetch(&buckets_[s.first]);
    kernels::prefetch(&buckets_[s.second]);
  }
  // The id of an event dated ts, judged against `watermark`: an event dated
  // more than the horizon behind it is let through unchecked
  // (beyond_horizon); a first sight is remembered.
  Verdict check(const kernels::Fingerprint& fp, std::int64_t ts, std::int64_t watermark);
  // Frees the slots dated past the horizon in the next `buckets` buckets
  // (a bounded slice of the sweep that keeps ids() exact).
  void sweep(std::int64_t watermark, std::uint64_t buckets) noexcept;

  // The event time behind `watermark` whose every id is still held: the
  // horizon, or less once the budget forced an eviction.
  std::int64_t horizon_covered_ms(std::int64_t watermark) const noexcept;

  // For a checkpoint: the buckets in use, slot for slot, so a loaded table
  // decides and evicts exactly as the saved one. load() is false when the
  // input is malformed.
  void save(kernels::ByteWriter& out) const;
  bool load(kernels::ByteReader& in);

  std::uint64_t ids() const noexcept { return used_; }  // slots in use (some may be past the horizon until swept)
  std::uint64_t capacity() const noexcept { return buckets_.size() * kSlotsPerBucket; }
  std::uint64_t memory_bytes() const noexcept { return buckets_.size() * kBucketBytes; }
  std::uint64_t evicted() const noexcept { return evicted_; }  // taken by a new id at the budget
  std::uint64_t expired() const noexcept { return expired_; }  // freed past the horizon
  std::int64_t horizon_ms() const noexcept { return horizon_ms_; }

 private:
  // What a slot stores: 96 bits of the fingerprint, from which both bucket
  // numbers are computed (so the table can grow without the ids).
  struct Key {
    std::uint64_t a;
    std::uint32_t b;
  };
  struct Slot {
    std::uint64_t a;
    std::uint32_t b;
    std::uint32_t meta;  // bits 0-30: event time in seconds since kEpochS, + 1 (0: empty); bit 31 of slot 0: overflowed
  };
  struct alignas(64) Bucket {
    Slot slots[kSlotsPerBucket];
  };
  static_assert(sizeof(Bucket) == kBucketBytes);
  static constexpr std::uint32_t kTimeMask = 0x7fffffffu;
  static constexpr std::uint32_t kOverflowBit = 0x80000000u;

  Key key_of(const kernels::Fingerprint& fp) const noexcept {
    return {fp.lo & a_mask_, static_cast<std::uint32_t>(fp.hi) & b_mask_};
  }
  // An id's two buckets, both from one hash of its key (distinct).
  struct Spots {
    std::uint64_t first;
    std::uint64_t second;
  };
  Spots spots_of(const Key& k) const noexcept {
    std::uint64_t h = k.a ^ (static_cast<std::uint64_t>(k.b) * 0x9e3779b97f4a7c15ull);
    h ^= h >> 33;  // murmur3's finalizer
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    const std::uint64_t n = buckets_.size();
    const std::uint64_t first = ((h >> 32) * n) >> 32;
    const std::uint64_t second = ((h & 0xffffffffull) * n) >> 32;
    return {first, second != first ? second : (second + 1 == n ? 0 : second + 1)};
  }
  static std::uint32_t time_of(std::int64_t ts_ms) noexcept;
  std::uint32_t stale_below(std::int64_t watermark) const noexcept;
  // A slot dated below live_from (at least 1: 0 is an empty slot) is past
  // the horizon, swept or not: matching it would make the verdict depend
  // on how far the sweep had come (an id resent with another timestamp).
  // All four slots compared with no branch (bitwise, not &&: with && the
  // compiler branched on each slot's time and key, and a check took about
  // 200 instructions: perf/RESULTS.md).
  static bool find(const Bucket& bucket, const Key& k, std::uint32_t live_from) noexcept {
    unsigned found = 0;
    for (const Slot& s : bucket.slots) {
      found |= static_cast<unsigned>((s.meta & kTimeMask) >= live_from) & static_cast<unsigned>(s.a == k.a) &
               static_cast<unsigned>(s.b == k.b);
    }
    return found != 0;
  }
  // The bucket's free slots (see is_free) as bits 0-3.
  static unsigned free_slots(const Bucket& bucket, std::uint32_t live_from) noexcept {
    unsigned free = 0;
    for (unsigned i = 0; i < kSlotsPerBucket; ++i) {
      free |= static_cast<unsigned>((bucket.slots[i].meta & kTimeMask) < live_from) << i;
    }
    return free;
  }
  // Places an id known to be absent; false when it found no room and the
  // table may grow (else the oldest of its eight slots goes).
  bool place(const Key& k, const Spots& spots, std::uint32_t time, std::uint32_t stale, bool may_grow);
  bool put(Slot& s, const Key& k, std::uint32_t time, std::uint32_t stale) noexcept;
  // Empty, or holding an id past the horizon (dated below stale).
  static bool is_free(const Slot& s, std::uint32_t stale) noexcept {
    return (s.meta & kTimeMask) < std::max<std::uint32_t>(stale, 1);
  }
  Slot* make_room(Bucket& b, std::uint32_t stale, int depth) noexcept;
  void grow(std::int64_t watermark, bool full);

  const std::int64_t horizon_ms_;
  const std::uint64_t max_buckets_;
  const std::uint64_t a_mask_;
  const std::uint32_t b_mask_;
  std::vector<Bucket> buckets_;
  std::uint64_t used_ = 0;
  std::uint64_t grow_at_ = 0;  // used_ past which the table grows (UINT64_MAX: at the budget)
  std::uint64_t evicted_ = 0;
  std::uint64_t expired_ = 0;
  std::uint32_t newest_evicted_ = 0;  // the newest time an eviction took (0: none yet)
  std::uint64_t sweep_at_ = 0;
};

}  // namespace spate::engine
