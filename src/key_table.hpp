// Per-shard key interning: maps key bytes (with their precomputed xxh3 hash)
// to dense ids, so views index their state by id instead of by string.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "kernels/small_bytes.hpp"

namespace spate::engine {

class KeyTable {
 public:
  static constexpr std::uint32_t kMissing = UINT32_MAX;

  KeyTable() { slots_.resize(1024); }

  // The id of `key`, inserting it when new. Open addressing with linear
  // probing on the full hash: one cache line per lookup in the common case.
  std::uint32_t intern(std::uint64_t hash, std::string_view key) {
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.id_plus_one == 0) {
        if ((count_ + 1) * 2 > slots_.size()) {
          grow();
          return intern(hash, key);
        }
        const auto id = static_cast<std::uint32_t>(offsets_.size());
        offsets_.push_back(static_cast<std::uint32_t>(bytes_.size()));
        lengths_.push_back(static_cast<std::uint16_t>(key.size()));
        bytes_.insert(bytes_.end(), key.begin(), key.end());
        s.hash = hash;
        s.id_plus_one = id + 1;
        s.length = static_cast<std::uint16_t>(key.size());
        if (key.size() <= kInline) kernels::copy_bytes(s.inline_key, key.data(), key.size());
        ++count_;
        return id;
      }
      if (s.hash == hash && equals(s, key)) return s.id_plus_one - 1;
    }
  }

  std::uint32_t find(std::uint64_t hash, std::string_view key) const noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id_plus_one == 0) return kMissing;
      if (s.hash == hash && equals(s, key)) return s.id_plus_one - 1;
    }
  }

  void prefetch(std::uint64_t hash) const noexcept { __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]); }

  std::string_view key(std::uint32_t id) const noexcept { return {bytes_.data() + offsets_[id], lengths_[id]}; }
  std::uint32_t size() const noexcept { return count_; }

 private:
  // Keys up to kInline bytes are also kept in the slot, so a lookup that
  // hits touches one cache line instead of three (slot, offsets, bytes).
  static constexpr std::size_t kInline = 16;
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t id_plus_one = 0;
    std::uint16_t length = 0;
    char inline_key[kInline] = {};
  };

  bool equals(const Slot& s, std::string_view key) const noexcept {
    if (s.length != key.size()) return false;
    if (key.size() <= kInline) return kernels::equal_bytes(s.inline_key, key.data(), key.size());
    return kernels::equal_bytes(bytes_.data() + offsets_[s.id_plus_one - 1], key.data(), key.size());
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.id_plus_one == 0) continue;
      std::size_t i = s.hash & mask;
      while (slots_[i].id_plus_one != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> offsets_;
  std::vector<std::uint16_t> lengths_;
  std::vector<char> bytes_;
  std::uint32_t count_ = 0;
};

}  // namespace spate::engine
