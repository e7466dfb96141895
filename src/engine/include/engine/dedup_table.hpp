// Exact dedup by event id for one key group on one shard: the ids seen
// inside a horizon bounded by event time and by a count, oldest first out.
// Every copy of an event carries the same key, so all its rows of a group
// meet on the shard that owns the key: each group's owner decides alone,
// and decides exactly (ids are compared byte for byte, never by hash only).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spate::engine {

class DedupTable {
 public:
  enum class Verdict : std::uint8_t { first, duplicate, beyond_horizon };

  // max_ids: the most ids held (the oldest is forgotten past it);
  // horizon_ms: ids dated further behind the watermark are not held.
  DedupTable(std::uint32_t max_ids, std::int64_t horizon_ms);

  // The id (its JSON text) of an event dated ts, judged against `watermark`.
  // An event dated more than the horizon behind the watermark is let through
  // unchecked (beyond_horizon); a first sight is remembered.
  Verdict check(std::uint64_t hash, std::string_view id, std::int64_t ts, std::int64_t watermark);
  // The slot check() will probe for this hash, for prefetching.
  void prefetch(std::uint64_t hash) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }
  // Forgets ids dated more than the horizon behind the watermark, oldest
  // arrivals first, at most `budget` of them.
  void expire(std::int64_t watermark, std::uint32_t budget);

  std::uint32_t size() const noexcept { return count_; }
  std::uint64_t memory_bytes() const noexcept;
  std::uint64_t evicted() const noexcept { return evicted_; }  // forgotten at max_ids
  std::uint64_t expired() const noexcept { return expired_; }  // forgotten past the horizon

 private:
  static constexpr std::size_t kInline = 40;  // id bytes kept in the entry; longer ones beside it
  struct Entry {
    std::uint64_t hash;
    std::int64_t ts;
    std::uint32_t len;
    char bytes[kInline];
  };
  static constexpr std::uint32_t kEmpty = 0;  // slots hold entry position + 1

  bool same(const Entry& e, std::uint32_t pos, std::uint64_t hash, std::string_view id) const noexcept;
  std::string_view id_of(const Entry& e, std::uint32_t pos) const noexcept;
  void insert(std::uint64_t hash, std::string_view id, std::int64_t ts);
  void pop_oldest();
  void grow();
  void place(std::uint32_t pos);

  const std::uint32_t max_ids_;
  const std::int64_t horizon_ms_;
  std::vector<Entry> ring_;           // arrival order, oldest at head_
  std::vector<std::string> long_;     // by ring position: ids over kInline bytes (rare)
  std::vector<std::uint32_t> slots_;  // open addressing over hash, linear probing, at most half full
  std::uint64_t mask_ = 0;
  std::uint32_t head_ = 0;
  std::uint32_t count_ = 0;
  std::uint64_t evicted_ = 0;
  std::uint64_t expired_ = 0;
};

}  // namespace spate::engine
