// Dedup by event id; see dedup_table.hpp.
#include "engine/dedup_table.hpp"

#include <algorithm>
#include <cstring>

namespace spate::engine {
namespace {
constexpr std::uint32_t kInitialIds = 4096;  // grows by doubling up to max_ids
}

DedupTable::DedupTable(std::uint32_t max_ids, std::int64_t horizon_ms)
    : max_ids_(std::max<std::uint32_t>(max_ids, 1)), horizon_ms_(horizon_ms) {}

std::uint64_t DedupTable::memory_bytes() const noexcept {
  std::uint64_t bytes = ring_.capacity() * sizeof(Entry) + slots_.capacity() * sizeof(std::uint32_t) +
                        long_.capacity() * sizeof(std::string);
  for (const std::string& s : long_) bytes += s.capacity();
  return bytes;
}

std::string_view DedupTable::id_of(const Entry& e, std::uint32_t pos) const noexcept {
  return e.len <= kInline ? std::string_view(e.bytes, e.len) : std::string_view(long_[pos]);
}

bool DedupTable::same(const Entry& e, std::uint32_t pos, std::uint64_t hash, std::string_view id) const noexcept {
  return e.hash == hash && e.len == id.size() && id_of(e, pos) == id;
}

DedupTable::Verdict DedupTable::check(std::uint64_t hash, std::string_view id, std::int64_t ts, std::int64_t watermark) {
  if (watermark != INT64_MIN && ts < watermark - horizon_ms_) return Verdict::beyond_horizon;
  if (!slots_.empty()) {
    for (std::uint64_t i = hash & mask_;; i = (i + 1) & mask_) {
      const std::uint32_t s = slots_[i];
      if (s == kEmpty) break;
      if (same(ring_[s - 1], s - 1, hash, id)) return Verdict::duplicate;
    }
  }
  insert(hash, id, ts);
  return Verdict::first;
}

void DedupTable::insert(std::uint64_t hash, std::string_view id, std::int64_t ts) {
  if (count_ == max_ids_) {
    pop_oldest();
    ++evicted_;
  }
  if (count_ == ring_.size()) grow();
  const auto cap = static_cast<std::uint32_t>(ring_.size());
  const std::uint32_t pos = (head_ + count_) % cap;
  Entry& e = ring_[pos];
  e.hash = hash;
  e.ts = ts;
  e.len = static_cast<std::uint32_t>(id.size());
  if (id.size() <= kInline) {
    std::memcpy(e.bytes, id.data(), id.size());
  } else {
    if (long_.size() < cap) long_.resize(cap);
    long_[pos].assign(id);
  }
  ++count_;
  place(pos);
}

void DedupTable::place(std::uint32_t pos) {
  std::uint64_t i = ring_[pos].hash & mask_;
  while (slots_[i] != kEmpty) i = (i + 1) & mask_;
  slots_[i] = pos + 1;
}

// Doubles the ring (in arrival order from position 0) and rebuilds the slots.
void DedupTable::grow() {
  const auto old_cap = static_cast<std::uint32_t>(ring_.size());
  const std::uint32_t cap = std::min<std::uint32_t>(max_ids_, old_cap == 0 ? kInitialIds : old_cap * 2);
  std::vector<Entry> ring(cap);
  std::vector<std::string> longs(long_.empty() ? 0 : cap);
  for (std::uint32_t i = 0; i < count_; ++i) {
    const std::uint32_t from = (head_ + i) % old_cap;
    ring[i] = ring_[from];
    if (!long_.empty() && ring_[from].len > kInline) longs[i] = std::move(long_[from]);
  }
  ring_ = std::move(ring);
  long_ = std::move(longs);
  head_ = 0;
  std::uint64_t nslots = 1;
  while (nslots < 2ull * cap) nslots <<= 1;
  slots_.assign(nslots, kEmpty);
  mask_ = nslots - 1;
  for (std::uint32_t i = 0; i < count_; ++i) place(i);
}

// Removes the oldest arrival: its slot goes, and the entries after it in
// its probe run shift back (linear probing's deletion, no tombstones).
void DedupTable::pop_oldest() {
  const std::uint32_t pos = head_;
  std::uint64_t i = ring_[pos].hash & mask_;
  while (slots_[i] != pos + 1) i = (i + 1) & mask_;
  for (std::uint64_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
    const std::uint32_t s = slots_[j];
    if (s == kEmpty) break;
    const std::uint64_t home = ring_[s - 1].hash & mask_;
    // s may move into the hole at i when its home is not in (i, j].
    if (((j - home) & mask_) >= ((j - i) & mask_)) {
      slots_[i] = s;
      i = j;
    }
  }
  slots_[i] = kEmpty;
  if (!long_.empty() && ring_[pos].len > kInline) std::string().swap(long_[pos]);
  head_ = (head_ + 1) % static_cast<std::uint32_t>(ring_.size());
  --count_;
}

void DedupTable::expire(std::int64_t watermark, std::uint32_t budget) {
  if (watermark == INT64_MIN) return;
  while (count_ > 0 && budget-- > 0 && ring_[head_].ts < watermark - horizon_ms_) {
    pop_oldest();
    ++expired_;
  }
}

}  // namespace spate::engine
