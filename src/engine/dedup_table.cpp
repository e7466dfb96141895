// Dedup by event id; see dedup_table.hpp.
#include "engine/dedup_table.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace spate::engine {
namespace {
constexpr std::uint64_t kInitialSlots = 8192;  // each generation grows by doubling, up to 2 x its ids
constexpr std::uint64_t kHighHalf = 0xffffffff00000000ull;
constexpr std::size_t kEntryHead = sizeof(std::uint64_t) + sizeof(std::uint16_t);
constexpr std::size_t kMaxArenaBytes = (std::size_t{1} << 32) - 4096;  // offsets are 32-bit

std::uint64_t load_u64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

std::uint16_t load_u16(const char* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
}  // namespace

DedupTable::DedupTable(std::uint32_t max_ids, std::int64_t horizon_ms)
    : half_(std::max<std::uint32_t>(max_ids / 2, 1)), horizon_ms_(horizon_ms) {}

std::uint64_t DedupTable::memory_bytes() const noexcept {
  std::uint64_t bytes = 0;
  for (const Generation& g : gens_) bytes += g.slots.capacity() * sizeof(std::uint64_t) + g.arena.capacity();
  return bytes;
}

std::uint64_t DedupTable::Generation::find(std::uint64_t hash, std::string_view id, bool& found) const noexcept {
  const std::uint64_t high = hash & kHighHalf;
  std::uint64_t i = home(hash);
  for (;; i = (i + 1) & mask) {
    const std::uint64_t s = slots[i];
    if (s == 0) break;
    if ((s & kHighHalf) != high) continue;
    const char* e = arena.data() + (static_cast<std::uint32_t>(s) - 1);
    if (load_u64(e) == hash && load_u16(e + 8) == id.size() && std::memcmp(e + kEntryHead, id.data(), id.size()) == 0) {
      found = true;
      return i;
    }
  }
  found = false;
  return i;
}

void DedupTable::Generation::place(std::uint64_t hash, std::uint32_t offset) noexcept {
  std::uint64_t i = home(hash);
  while (slots[i] != 0) i = (i + 1) & mask;
  slots[i] = (hash & kHighHalf) | (static_cast<std::uint64_t>(offset) + 1);
}

// Slots for `ids` at most half full; the entries are placed again.
void DedupTable::Generation::size_for(std::uint64_t ids) {
  const std::uint64_t n = std::max(kInitialSlots, std::bit_ceil(2 * ids));
  if (n <= slots.size()) return;
  slots.assign(n, 0);
  mask = n - 1;
  shift = 64 - static_cast<unsigned>(std::countr_zero(n));
  for (std::size_t at = 0; at < arena.size();) {
    place(load_u64(arena.data() + at), static_cast<std::uint32_t>(at));
    at += kEntryHead + load_u16(arena.data() + at + 8);
  }
}

void DedupTable::Generation::clear() noexcept {
  std::fill(slots.begin(), slots.end(), 0);
  arena.clear();
  count = 0;
  max_ts = INT64_MIN;
}

DedupTable::Verdict DedupTable::check(std::uint64_t hash, std::string_view id, std::int64_t ts, std::int64_t watermark) {
  if (watermark != INT64_MIN && ts < watermark - horizon_ms_) return Verdict::beyond_horizon;
  Generation& older = gens_[1 - current_];
  bool found = false;
  if (older.count > 0) {
    older.find(hash, id, found);
    if (found) return Verdict::duplicate;
  }
  Generation* cur = &gens_[current_];
  std::uint64_t slot = 0;
  if (cur->count > 0) {
    slot = cur->find(hash, id, found);
    if (found) return Verdict::duplicate;
  }
  if (cur->count == half_ || cur->arena.size() > kMaxArenaBytes) {  // full: the older generation goes, the current one ages
    evicted_ += older.count;
    older.clear();
    current_ = 1 - current_;
    cur = &gens_[current_];
  }
  if (cur->slots.empty() || 2 * (static_cast<std::uint64_t>(cur->count) + 1) > cur->slots.size()) {
    cur->size_for(std::min<std::uint64_t>(half_, 2 * (static_cast<std::uint64_t>(cur->count) + 1)));
    slot = cur->find(hash, id, found);
  } else if (cur->count == 0) {
    slot = cur->find(hash, id, found);
  }
  const auto offset = static_cast<std::uint32_t>(cur->arena.size());
  char head[kEntryHead];
  const auto len = static_cast<std::uint16_t>(id.size());
  std::memcpy(head, &hash, sizeof(hash));
  std::memcpy(head + 8, &len, sizeof(len));
  cur->arena.append(head, kEntryHead);
  cur->arena.append(id.data(), id.size());
  cur->slots[slot] = (hash & kHighHalf) | (static_cast<std::uint64_t>(offset) + 1);
  ++cur->count;
  cur->max_ts = std::max(cur->max_ts, ts);
  return Verdict::first;
}

void DedupTable::expire(std::int64_t watermark) {
  if (watermark == INT64_MIN) return;
  for (int k = 0; k < 2; ++k) {
    Generation& older = gens_[1 - current_];
    if (older.count > 0 && older.max_ts < watermark - horizon_ms_) {
      expired_ += older.count;
      older.clear();
    }
    // The current generation too, once it is all past the horizon: it ages
    // and goes on the next turn of the loop.
    Generation& cur = gens_[current_];
    if (k == 0 && cur.count > 0 && cur.max_ts < watermark - horizon_ms_ && gens_[1 - current_].count == 0) {
      current_ = 1 - current_;
    } else {
      break;
    }
  }
}

// A checkpoint keeps each generation's arena; the hash slots are rebuilt.
void DedupTable::save(kernels::ByteWriter& out) const {
  out.put<std::int32_t>(current_);
  out.put<std::uint64_t>(evicted_);
  out.put<std::uint64_t>(expired_);
  for (const Generation& g : gens_) {
    out.put_bytes(g.arena);
    out.put<std::uint32_t>(g.count);
    out.put<std::int64_t>(g.max_ts);
  }
}

bool DedupTable::load(kernels::ByteReader& in) {
  const auto current = in.get<std::int32_t>();
  if (current != 0 && current != 1) return in.fail();
  current_ = current;
  evicted_ = in.get<std::uint64_t>();
  expired_ = in.get<std::uint64_t>();
  for (Generation& g : gens_) {
    g = Generation{};
    g.arena = std::string(in.get_bytes());
    g.count = in.get<std::uint32_t>();
    g.max_ts = in.get<std::int64_t>();
    std::uint32_t entries = 0;
    for (std::size_t at = 0; at < g.arena.size(); ++entries) {
      if (g.arena.size() - at < kEntryHead) return in.fail();
      at += kEntryHead + load_u16(g.arena.data() + at + 8);
      if (at > g.arena.size()) return in.fail();
    }
    if (!in.ok() || entries != g.count || g.count > half_) return in.fail();
    if (g.count > 0) g.size_for(g.count);
  }
  return true;
}

}  // namespace spate::engine
