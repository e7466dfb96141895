// Per-shard key interning: maps key bytes (with their precomputed xxh3 hash)
// to dense ids, so views index their state by id instead of by string. Keys
// whose windows are all gone are erased and their ids reused, so memory
// follows the live keys, not every key ever seen.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "kernels/byte_io.hpp"
#include "kernels/prefetch.hpp"
#include "kernels/small_bytes.hpp"

namespace spate::engine {

class KeyTable {
 public:
  static constexpr std::uint32_t kMissing = UINT32_MAX;

  KeyTable() { slots_.resize(1024); }

  // The id of `key`, inserting it when new. Open addressing with linear
  // probing on the hash: one cache line per lookup in the common case. The
  // lookup is small enough to inline into the apply loop; inserting is not
  // (an out-of-line intern cost a call per row).
  std::uint32_t intern(std::uint64_t hash, std::string_view key) {
    const std::size_t mask = mask_;
    const std::uint32_t tag = tag_of(hash);
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id_plus_one == 0) return insert(i, hash, key);
      if (s.tag == tag && equals(s, key)) return s.id_plus_one - 1;
    }
  }

  std::uint32_t find(std::uint64_t hash, std::string_view key) const noexcept {
    const std::size_t mask = mask_;
    const std::uint32_t tag = tag_of(hash);
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id_plus_one == 0) return kMissing;
      if (s.tag == tag && equals(s, key)) return s.id_plus_one - 1;
    }
  }

  void prefetch(std::uint64_t hash) const noexcept { kernels::prefetch(&slots_[hash & mask_]); }

  // The state budget: intern() refuses a new key (kMissing) once the table
  // holds `max_keys`, or once `allowance` more keys were added since it was
  // set (the shard sets it from the bytes left of max_state_bytes). Known
  // keys are always found. Checked only on the insert path.
  void set_max_keys(std::uint64_t max_keys) noexcept { max_keys_ = max_keys; }
  void set_allowance(std::uint64_t allowance) noexcept { allowance_ = allowance; }
  // Bytes this table holds (slots, per-key arrays, key bytes).
  std::uint64_t memory_bytes() const noexcept {
    return slots_.capacity() * sizeof(Slot) +
           offsets_.capacity() * (sizeof(std::uint32_t) + sizeof(std::uint16_t) + sizeof(std::uint64_t) + 1) +
           free_ids_.capacity() * sizeof(std::uint32_t) + bytes_.capacity();
  }

  std::string_view key(std::uint32_t id) const noexcept { return {bytes_.data() + offsets_[id], lengths_[id]}; }
  std::uint32_t size() const noexcept { return count_; }
  // Ids in use lie below this; alive() tells which of them are.
  std::uint32_t id_limit() const noexcept { return static_cast<std::uint32_t>(offsets_.size()); }
  bool alive(std::uint32_t id) const noexcept { return alive_[id] != 0; }

  // Renumbers the live keys 0..size()-1 in id order and rebuilds every
  // array at the size they need, so that memory follows the live keys
  // after many were forgotten (the arrays only grow otherwise). Returns
  // the old id -> new id map (kMissing for ids not alive).
  std::vector<std::uint32_t> compact_ids() {
    std::vector<std::uint32_t> remap(id_limit(), kMissing);
    std::vector<std::uint32_t> offsets;
    std::vector<std::uint16_t> lengths;
    std::vector<std::uint64_t> hashes;
    std::vector<char> bytes;
    offsets.reserve(count_);
    lengths.reserve(count_);
    hashes.reserve(count_);
    bytes.reserve(bytes_.size() - dead_bytes_);
    for (std::uint32_t id = 0; id < id_limit(); ++id) {
      if (!alive(id)) continue;
      remap[id] = static_cast<std::uint32_t>(offsets.size());
      offsets.push_back(static_cast<std::uint32_t>(bytes.size()));
      lengths.push_back(lengths_[id]);
      hashes.push_back(hashes_[id]);
      bytes.insert(bytes.end(), bytes_.begin() + offsets_[id], bytes_.begin() + offsets_[id] + lengths_[id]);
    }
    std::size_t slots = 1024;
    while (count_ * 4 > slots * 3 / 2) slots *= 2;  // half full at most, so it need not grow again at once
    std::vector<Slot> table(slots);
    mask_ = slots - 1;
    for (const Slot& s : slots_) {
      if (s.id_plus_one == 0) continue;
      const std::uint32_t id = remap[s.id_plus_one - 1];
      std::size_t i = hashes[id] & mask_;
      while (table[i].id_plus_one != 0) i = (i + 1) & mask_;
      table[i] = s;
      table[i].id_plus_one = id + 1;
    }
    slots_.swap(table);
    offsets_.swap(offsets);
    lengths_.swap(lengths);
    hashes_.swap(hashes);
    bytes_.swap(bytes);
    alive_.assign(count_, 1);
    std::vector<std::uint32_t>().swap(free_ids_);
    dead_bytes_ = 0;
    return remap;
  }

  // For a checkpoint: the arrays as they are, so that ids stay what the
  // views' state is indexed by. load() is false when the input is malformed.
  void save(kernels::ByteWriter& out) const {
    out.put_vector(slots_);
    out.put_vector(offsets_);
    out.put_vector(lengths_);
    out.put_vector(hashes_);
    out.put_vector(alive_);
    out.put_vector(free_ids_);
    out.put_vector(bytes_);
    out.put<std::uint64_t>(dead_bytes_);
    out.put<std::uint32_t>(count_);
  }
  // A body that passes its checksum can still be malformed (a bug, another
  // build): every array is checked against what the table relies on, so
  // that nothing loaded can make a lookup, an erase or a compaction read
  // out of bounds or probe forever.
  bool load(kernels::ByteReader& in) {
    in.get_vector(slots_);
    in.get_vector(offsets_);
    in.get_vector(lengths_);
    in.get_vector(hashes_);
    in.get_vector(alive_);
    in.get_vector(free_ids_);
    in.get_vector(bytes_);
    dead_bytes_ = in.get<std::uint64_t>();
    count_ = in.get<std::uint32_t>();
    const std::size_t ids = offsets_.size();
    // At most 3/4 full (intern grows past it): a probe always meets an empty slot.
    if (!in.ok() || slots_.size() < 1024 || (slots_.size() & (slots_.size() - 1)) != 0 || lengths_.size() != ids ||
        hashes_.size() != ids || alive_.size() != ids || ids >= kMissing || count_ > ids ||
        static_cast<std::uint64_t>(count_) * 4 > slots_.size() * 3 || free_ids_.size() != ids - count_ ||
        dead_bytes_ > bytes_.size()) {
      return in.fail();
    }
    // The live keys' bytes lie in bytes_ beside the dead ones'.
    std::uint64_t live_bytes = 0;
    std::uint32_t live = 0;
    for (std::size_t id = 0; id < ids; ++id) {
      if (alive_[id] > 1) return in.fail();
      if (alive_[id] == 0) continue;
      if (offsets_[id] + static_cast<std::uint64_t>(lengths_[id]) > bytes_.size()) return in.fail();
      live_bytes += lengths_[id];
      ++live;
    }
    if (live != count_ || live_bytes > bytes_.size() - dead_bytes_) return in.fail();
    // The free ids are the dead ones, each once.
    std::vector<std::uint8_t> seen(ids, 0);
    for (const std::uint32_t id : free_ids_) {
      if (id >= ids || alive_[id] != 0 || seen[id] != 0) return in.fail();
      seen[id] = 1;
    }
    mask_ = slots_.size() - 1;
    return load_slots(seen) || in.fail();
  }

  // Forgets key `id`; a later intern may hand the id to another key.
  void erase(std::uint32_t id) {
    const std::size_t mask = mask_;
    std::size_t i = hashes_[id] & mask;
    while (slots_[i].id_plus_one != id + 1) i = (i + 1) & mask;
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    for (std::size_t j = (i + 1) & mask; slots_[j].id_plus_one != 0; j = (j + 1) & mask) {
      const std::size_t home = hashes_[slots_[j].id_plus_one - 1] & mask;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    alive_[id] = 0;
    dead_bytes_ += lengths_[id];
    free_ids_.push_back(id);
    --count_;
    if (dead_bytes_ > (1u << 20) && dead_bytes_ * 2 > bytes_.size()) compact();
  }

 private:
  // A slot is 16 bytes: 10,000 keys fit in 256 KiB instead of the 1 MiB of
  // 32-byte slots at half load, which left the L2 cache (1 MiB here) no room
  // for the parser and the windows. Keys up to kInline bytes are also kept in
  // the slot, so a lookup that hits touches one cache line instead of three
  // (slot, offsets, bytes); the tag (high hash bits, the probe position uses
  // the low ones) skips most other keys without looking at their bytes.
  static constexpr std::size_t kInline = 7;
  static constexpr std::uint8_t kLongKey = 0xff;
  struct Slot {
    std::uint32_t tag = 0;
    std::uint32_t id_plus_one = 0;
    std::uint8_t length = 0;  // kLongKey: longer than kInline, bytes in bytes_ only
    char inline_key[kInline] = {};
  };
  static_assert(sizeof(Slot) == 16);

  static std::uint32_t tag_of(std::uint64_t hash) noexcept { return static_cast<std::uint32_t>(hash >> 32); }

  bool equals(const Slot& s, std::string_view key) const noexcept {
    if (s.length != kLongKey) return s.length == key.size() && kernels::equal_bytes(s.inline_key, key.data(), key.size());
    const std::uint32_t id = s.id_plus_one - 1;
    return lengths_[id] == key.size() && kernels::equal_bytes(bytes_.data() + offsets_[id], key.data(), key.size());
  }

  // Adds `key` at the empty slot where its lookup ended (or, after growing,
  // where a new lookup ends); returns its id.
  [[gnu::noinline]] std::uint32_t insert(std::size_t slot, std::uint64_t hash, std::string_view key) {
    if (count_ >= max_keys_ || allowance_ == 0) return kMissing;
    --allowance_;
    if ((count_ + 1) * 4 > slots_.size() * 3) {
      grow();
      slot = hash & mask_;
      while (slots_[slot].id_plus_one != 0) slot = (slot + 1) & mask_;
    }
    std::uint32_t id;
    if (free_ids_.empty()) {
      id = static_cast<std::uint32_t>(offsets_.size());
      offsets_.push_back(0);
      lengths_.push_back(0);
      hashes_.push_back(0);
      alive_.push_back(0);
    } else {
      id = free_ids_.back();
      free_ids_.pop_back();
    }
    offsets_[id] = static_cast<std::uint32_t>(bytes_.size());
    lengths_[id] = static_cast<std::uint16_t>(key.size());
    hashes_[id] = hash;
    alive_[id] = 1;
    bytes_.insert(bytes_.end(), key.begin(), key.end());
    Slot& s = slots_[slot];
    s.tag = tag_of(hash);
    s.id_plus_one = id + 1;
    if (key.size() <= kInline) {
      s.length = static_cast<std::uint8_t>(key.size());
      kernels::copy_bytes(s.inline_key, key.data(), key.size());
    } else {
      s.length = kLongKey;
    }
    ++count_;
    return id;
  }

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    const std::size_t mask = mask_;
    for (const Slot& s : old) {
      if (s.id_plus_one == 0) continue;
      std::size_t i = hashes_[s.id_plus_one - 1] & mask;
      while (slots_[i].id_plus_one != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  // Rewrites the key bytes without the erased keys' bytes.
  void compact() {
    std::vector<char> live;
    live.reserve(bytes_.size() - dead_bytes_);
    for (std::uint32_t id = 0; id < id_limit(); ++id) {
      if (!alive(id)) continue;
      const std::uint32_t at = static_cast<std::uint32_t>(live.size());
      live.insert(live.end(), bytes_.begin() + offsets_[id], bytes_.begin() + offsets_[id] + lengths_[id]);
      offsets_[id] = at;
    }
    bytes_.swap(live);
    dead_bytes_ = 0;
  }

  // load()'s check of the slots: each live key in exactly one, with its
  // tag and short bytes, where a lookup from its home slot finds it (no
  // empty slot between). `seen` is scratch of id_limit() bytes.
  bool load_slots(std::vector<std::uint8_t>& seen) const {
    std::fill(seen.begin(), seen.end(), 0);
    std::size_t empty = 0;
    while (empty < slots_.size() && slots_[empty].id_plus_one != 0) ++empty;
    if (empty == slots_.size()) return false;
    std::uint32_t used = 0;
    std::size_t run = 0;  // occupied slots just before i, back to the last empty one
    for (std::size_t n = 1; n <= slots_.size(); ++n) {
      const std::size_t i = (empty + n) & mask_;
      const Slot& s = slots_[i];
      if (s.id_plus_one == 0) {
        run = 0;
        continue;
      }
      const std::uint32_t id = s.id_plus_one - 1;
      if (id >= offsets_.size() || alive_[id] == 0 || seen[id] != 0) return false;
      seen[id] = 1;
      ++used;
      if (((i - hashes_[id]) & mask_) > run++) return false;  // an empty slot cuts the probe from its home
      if (s.tag != tag_of(hashes_[id])) return false;
      if (s.length == kLongKey ? lengths_[id] <= kInline
                               : s.length > kInline || s.length != lengths_[id] ||
                                     !kernels::equal_bytes(s.inline_key, bytes_.data() + offsets_[id], s.length)) {
        return false;
      }
    }
    return used == count_;
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 1023;  // slots_.size() - 1, kept rather than recomputed at every probe
  std::vector<std::uint32_t> offsets_;
  std::vector<std::uint16_t> lengths_;
  std::vector<std::uint64_t> hashes_;
  std::vector<std::uint8_t> alive_;
  std::vector<std::uint32_t> free_ids_;
  std::vector<char> bytes_;
  std::uint64_t dead_bytes_ = 0;
  std::uint32_t count_ = 0;
  std::uint64_t max_keys_ = UINT32_MAX - 1;  // ids are 32 bits, kMissing excluded
  std::uint64_t allowance_ = UINT64_MAX;
};

}  // namespace spate::engine
