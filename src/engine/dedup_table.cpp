// Dedup by event id; see dedup_table.hpp.
#include "engine/dedup_table.hpp"

#include <algorithm>
#include <bit>

namespace spate::engine {
namespace {
constexpr std::int64_t kEpochS = 1577836800;  // slot times count seconds from 2020-01-01
constexpr std::uint64_t kMaxBuckets = std::uint64_t{1} << 32;
// Grows past this share of slots in use; after growing it is under half.
constexpr std::uint64_t kGrowPercent = 85;

std::int64_t minus(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t r;
  return __builtin_sub_overflow(a, b, &r) ? INT64_MIN : r;
}
}  // namespace

DedupTable::DedupTable(Options options)
    : horizon_ms_(options.horizon_ms),
      max_buckets_(std::clamp<std::uint64_t>(options.max_bytes / kBucketBytes, 1, kMaxBuckets)),
      a_mask_(options.fingerprint_bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << options.fingerprint_bits) - 1),
      b_mask_(options.fingerprint_bits >= 96   ? ~std::uint32_t{0}
              : options.fingerprint_bits <= 64 ? 0u
                                               : (std::uint32_t{1} << (options.fingerprint_bits - 64)) - 1) {
  buckets_.resize(std::min(kMinBuckets, max_buckets_));
  grow_at_ = buckets_.size() < max_buckets_ ? capacity() * kGrowPercent / 100 : UINT64_MAX;
}

std::uint32_t DedupTable::time_of(std::int64_t ts_ms) noexcept {
  const std::int64_t s = (ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000) - kEpochS;
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(s, 0, kTimeMask - 1)) + 1;
}

// A slot dated below this holds only ids dated past the horizon.
std::uint32_t DedupTable::stale_below(std::int64_t watermark) const noexcept {
  if (watermark == INT64_MIN) return 0;
  const std::int64_t edge = minus(watermark, horizon_ms_);
  return edge == INT64_MIN ? 0 : time_of(edge);
}

DedupTable::Verdict DedupTable::check(const kernels::Fingerprint& fp, std::int64_t ts, std::int64_t watermark) {
  if (watermark != INT64_MIN && ts < minus(watermark, horizon_ms_)) return Verdict::beyond_horizon;
  const Key k = key_of(fp);
  Spots spots = spots_of(k);
  const Bucket& first = buckets_[spots.first];
  const std::uint32_t stale = stale_below(watermark);
  const std::uint32_t live_from = std::max<std::uint32_t>(stale, 1);
  if (find(first, k, live_from)) return Verdict::duplicate;
  if ((first.slots[0].meta & kOverflowBit) != 0 && find(buckets_[spots.second], k, live_from)) return Verdict::duplicate;
  if (used_ >= grow_at_) {
    grow(watermark, false);
    spots = spots_of(k);
  }
  while (!place(k, spots, time_of(ts), stale, true)) {
    grow(watermark, true);
    spots = spots_of(k);
  }
  return Verdict::first;
}

bool DedupTable::place(const Key& k, const Spots& spots, std::uint32_t time, std::uint32_t stale, bool may_grow) {
  Bucket& first = buckets_[spots.first];
  Bucket& second = buckets_[spots.second];
  const std::uint32_t live_from = std::max<std::uint32_t>(stale, 1);
  if (const unsigned free = free_slots(first, live_from)) return put(first.slots[std::countr_zero(free)], k, time, stale);
  first.slots[0].meta |= kOverflowBit;
  if (const unsigned free = free_slots(second, live_from)) return put(second.slots[std::countr_zero(free)], k, time, stale);
  // Both full: an id of theirs moves to its other bucket, or one of that
  // bucket's ids to its own other one first. With one step only, two
  // buckets of four overflowed from about 75% full on; and at 10 M ids a
  // rare miss of the one step made the table double while 60% full.
  for (Bucket* b : {&first, &second}) {
    if (Slot* s = make_room(*b, stale, 2)) return put(*s, k, time, stale);
  }
  // Nowhere: a table under its budget grows; at the budget the oldest of the eight goes.
  if (may_grow && buckets_.size() < max_buckets_) return false;
  Slot* oldest = &first.slots[0];
  for (Bucket* b : {&first, &second}) {
    for (Slot& s : b->slots) {
      if ((s.meta & kTimeMask) < (oldest->meta & kTimeMask)) oldest = &s;
    }
  }
  return put(*oldest, k, time, stale);
}

// Puts id k, dated time, in slot s, counting what it held: nothing, an id
// past the horizon (expired), or a live id (evicted).
bool DedupTable::put(Slot& s, const Key& k, std::uint32_t time, std::uint32_t stale) noexcept {
  const std::uint32_t was = s.meta & kTimeMask;
  if (was == 0) {
    ++used_;
  } else if (was < stale) {
    ++expired_;
  } else {
    ++evicted_;
    newest_evicted_ = std::max(newest_evicted_, was);
  }
  s.a = k.a;
  s.b = k.b;
  s.meta = (s.meta & ~kTimeMask) | time;  // slot 0 keeps its bucket's overflow bit
  return true;
}

// Frees a slot of the full bucket b by moving one of its ids to its other
// bucket; with depth 2, that bucket may first move one of its own ids on.
// Returns the freed slot (empty), or nullptr.
DedupTable::Slot* DedupTable::make_room(Bucket& b, std::uint32_t stale, int depth) noexcept {
  const std::uint64_t here = static_cast<std::uint64_t>(&b - buckets_.data());
  for (int d = 1; d <= depth; ++d) {
    for (Slot& s : b.slots) {
      const Key moved{s.a, s.b};
      const Spots its = spots_of(moved);
      const bool from_home = its.first == here;
      Bucket& other = buckets_[from_home ? its.second : its.first];
      Slot* to = nullptr;
      for (Slot& t : other.slots) {
        if (is_free(t, stale)) {
          to = &t;
          break;
        }
      }
      if (to == nullptr && d > 1) to = make_room(other, stale, d - 1);
      if (to == nullptr) continue;
      put(*to, moved, s.meta & kTimeMask, stale);
      if (from_home) b.slots[0].meta |= kOverflowBit;  // its home now sends lookups on
      s.meta &= ~kTimeMask;
      --used_;
      return &s;
    }
  }
  return nullptr;
}

void DedupTable::sweep(std::int64_t watermark, std::uint64_t buckets) noexcept {
  const std::uint32_t stale = stale_below(watermark);
  if (stale <= 1) return;
  for (std::uint64_t n = std::min<std::uint64_t>(buckets, buckets_.size()); n > 0; --n) {
    if (sweep_at_ >= buckets_.size()) sweep_at_ = 0;
    for (Slot& s : buckets_[sweep_at_].slots) {
      const std::uint32_t t = s.meta & kTimeMask;
      if (t != 0 && t < stale) {
        s.meta &= ~kTimeMask;
        --used_;
        ++expired_;
      }
    }
    ++sweep_at_;
  }
}

// Frees what the horizon let go first; doubles (up to the budget) only when
// the ids still held need it, or (`full`) a new id found no room. One pass over the table, on the shard's
// thread: tens of milliseconds at tens of millions of ids, and each growth
// doubles, so it happens a handful of times while the rate ramps up.
void DedupTable::grow(std::int64_t watermark, bool full) {
  sweep(watermark, buckets_.size());
  const std::uint64_t n = buckets_.size();
  if ((full || used_ * 100 >= capacity() * 60) && n < max_buckets_) {
    std::vector<Bucket> old(std::min(2 * n, max_buckets_));
    old.swap(buckets_);
    used_ = 0;
    // Each id goes to a random bucket of the new table: their buckets are
    // asked for kAhead ids before they are placed, so that the misses
    // overlap (one at a time, the moves were most of a growth's time).
    constexpr std::size_t kAhead = 16;
    struct Moving {
      Key key;
      Spots spots;
      std::uint32_t time;
    };
    Moving ring[kAhead];
    std::size_t queued = 0;
    const auto place_moving = [&](const Moving& m) { place(m.key, m.spots, m.time, 0, false); };  // half full: it fits
    for (const Bucket& b : old) {
      for (const Slot& s : b.slots) {
        if ((s.meta & kTimeMask) == 0) continue;
        Moving& m = ring[queued % kAhead];
        if (queued >= kAhead) place_moving(m);
        m.key = {s.a, s.b};
        m.spots = spots_of(m.key);
        m.time = s.meta & kTimeMask;
        kernels::prefetch(&buckets_[m.spots.first]);
        ++queued;
      }
    }
    for (std::size_t i = queued > kAhead ? queued - kAhead : 0; i < queued; ++i) place_moving(ring[i % kAhead]);
  }
  grow_at_ = buckets_.size() < max_buckets_ ? capacity() * kGrowPercent / 100 : UINT64_MAX;
}

std::int64_t DedupTable::horizon_covered_ms(std::int64_t watermark) const noexcept {
  if (newest_evicted_ == 0 || watermark == INT64_MIN) return horizon_ms_;
  // A slot dated t held ids dated before (t + kEpochS) seconds.
  const std::int64_t newest_lost_ms = (static_cast<std::int64_t>(newest_evicted_) + kEpochS) * 1000;
  return std::clamp<std::int64_t>(minus(watermark, newest_lost_ms), 0, horizon_ms_);
}

void DedupTable::save(kernels::ByteWriter& out) const {
  out.put<std::uint64_t>(buckets_.size());
  out.put<std::uint64_t>(used_);
  out.put<std::uint64_t>(evicted_);
  out.put<std::uint64_t>(expired_);
  out.put<std::uint32_t>(newest_evicted_);
  out.put<std::uint64_t>(sweep_at_);
  std::uint64_t in_use = 0;
  const auto empty = [](const Bucket& b) {
    return std::all_of(std::begin(b.slots), std::end(b.slots), [](const Slot& s) { return s.meta == 0; });
  };
  for (const Bucket& b : buckets_) in_use += !empty(b);
  out.put<std::uint64_t>(in_use);
  for (std::uint64_t i = 0; i < buckets_.size(); ++i) {
    if (empty(buckets_[i])) continue;
    out.put<std::uint32_t>(static_cast<std::uint32_t>(i));
    out.put<Bucket>(buckets_[i]);
  }
}

// Refuses a body whose slots the lookups could not find (an id in neither
// of its buckets, or in its second without the first's overflow bit), or
// whose counts disagree with its slots.
bool DedupTable::load(kernels::ByteReader& in) {
  const auto n = in.get<std::uint64_t>();
  if (n == 0 || n > max_buckets_) return in.fail();
  buckets_.assign(n, Bucket{});
  used_ = in.get<std::uint64_t>();
  evicted_ = in.get<std::uint64_t>();
  expired_ = in.get<std::uint64_t>();
  newest_evicted_ = in.get<std::uint32_t>();
  sweep_at_ = in.get<std::uint64_t>();
  const auto in_use = in.get<std::uint64_t>();
  if (!in.ok() || in_use > n || in_use > in.remaining() / (sizeof(std::uint32_t) + sizeof(Bucket)) ||
      newest_evicted_ > kTimeMask || sweep_at_ > n) {
    return in.fail();
  }
  std::uint64_t prev = 0, slots = 0;
  for (std::uint64_t k = 0; k < in_use; ++k) {
    const std::uint64_t i = in.get<std::uint32_t>();
    if ((k > 0 && i <= prev) || i >= n) return in.fail();
    prev = i;
    buckets_[i] = in.get<Bucket>();
  }
  for (std::uint64_t i = 0; i < n && in.ok(); ++i) {
    for (std::size_t j = 0; j < kSlotsPerBucket; ++j) {
      const Slot& s = buckets_[i].slots[j];
      if (j != 0 && (s.meta & kOverflowBit) != 0) return in.fail();
      if ((s.meta & kTimeMask) == 0) continue;
      ++slots;
      const Key key{s.a, s.b};
      if ((key.a & ~a_mask_) != 0 || (key.b & ~b_mask_) != 0) return in.fail();
      const Spots spots = spots_of(key);
      const bool overflowed = (buckets_[spots.first].slots[0].meta & kOverflowBit) != 0;
      if (spots.first != i && !(spots.second == i && overflowed)) return in.fail();
    }
  }
  if (!in.ok() || slots != used_) return in.fail();
  grow_at_ = n < max_buckets_ ? capacity() * kGrowPercent / 100 : UINT64_MAX;
  return true;
}

}  // namespace spate::engine
