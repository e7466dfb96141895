// Tumbling event-time windows per key for one view on one shard, each
// holding the view's aggregates (engine/aggregate.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/prefetch.hpp"
#include "config/config.hpp"
#include "engine/aggregate.hpp"
#include "engine/key_table.hpp"
#include "engine/route_batch.hpp"
#include "engine/view.hpp"

namespace spate::engine {

inline std::int64_t window_start_of(std::int64_t ts, std::int64_t window_ms) noexcept {
  std::int64_t q = ts / window_ms;
  if (ts % window_ms != 0 && ts < 0) --q;  // floor, not truncation
  return q * window_ms;
}

class TumblingView final : public View {
 public:
  TumblingView(const ViewConfig& config, std::int64_t allowed_lateness_ms);

  std::uint64_t apply(const BatchRows& rows) override;

  // Folds row r of batch b into key_id's window. Returns false, changing
  // nothing, when that window closed: watermark >= window end + lateness.
  // One row at a time: apply() is the staged path for a batch, and this the
  // reference it is tested against.
  bool add(std::uint32_t key_id, const RouteBatch& b, std::uint32_t r, std::int64_t watermark) {
    WindowWord* w = take(key_id, b.ts[r], watermark, [](const WindowWord*) {});
    if (w != nullptr) fold(w, r, b.ts, [&b](int c) { return b.columns[c]; });
    return w != nullptr;
  }
  // The same for one row outside a batch; columns[c] is batch column c.
  bool add(std::uint32_t key_id, std::int64_t ts, const Cell* columns, std::int64_t watermark) {
    WindowWord* w = take(key_id, ts, watermark, [](const WindowWord*) {});
    if (w == nullptr) return false;
    fold(w, 0, &ts, [columns](int c) { return columns + c; });
    return true;
  }

  // Where a row of key_id goes: the key's block (its window slots, and its
  // chain's head for a window that leaves its slot).
  void prefetch(std::uint32_t key_id) const noexcept {
    if (key_id < keys_) {
      const WindowWord* b = block(key_id);
      kernels::prefetch(b);
      kernels::prefetch(b + key_words_ - 1);
    }
  }

  void collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
               std::int64_t watermark, std::vector<ViewRow>& out) const override;
  using View::top;
  void top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys, std::int64_t watermark,
           std::uint32_t begin, std::uint32_t end, std::vector<ViewRow>& out) const override;
  // Drops windows that closed more than retention_ms (event time) ago.
  void evict_chunks(std::int64_t watermark, std::int64_t retention_ms) override;
  void evict_keys(std::int64_t watermark, std::int64_t retention_ms, std::uint32_t begin, std::uint32_t end) override;

  // True when key_id holds no window any more: its slots were evicted and
  // its older windows are in dropped chunks.
  bool key_idle(std::uint32_t key_id) const noexcept override {
    if (key_id >= keys_) return true;
    for (std::uint32_t i = 0; i < ring_slots_; ++i) {
      if (slot(key_id, i)[1].u != 0) return false;
    }
    const std::uint64_t head = block(key_id)[kHead].u;
    return head == kNoRecord || head < first_chunk_ * kChunkRecords;
  }
  // Forgets key_id's state so the id can serve another key.
  void reset_key(std::uint32_t key_id) noexcept override {
    if (key_id >= keys_) return;
    for (std::uint32_t i = 0; i < ring_slots_; ++i) slot(key_id, i)[1].u = 0;
    block(key_id)[kHead].u = kNoRecord;
    recent_[2 * static_cast<std::size_t>(key_id)] = kNoRecord;
    recent_[2 * static_cast<std::size_t>(key_id) + 1] = kNoRecord;
  }

  void remap_keys(const std::vector<std::uint32_t>& remap, std::uint32_t keys) override;

  void save(kernels::ByteWriter& out) const override;
  bool load(kernels::ByteReader& in) override;

  std::uint64_t window_count() const noexcept override { return windows_; }
  std::uint64_t memory_bytes() const noexcept override {
    return blocks_.capacity() * sizeof(WindowWord) + recent_.capacity() * sizeof(std::uint64_t) +
           chunks_.size() * kChunkRecords * record_words_ * sizeof(WindowWord);
  }
  std::int64_t window_ms() const noexcept { return window_ms_; }
  // Window slots a key has (the constructor says how many).
  std::uint32_t ring_slots() const noexcept { return ring_slots_; }
  std::int64_t newest_start() const noexcept override { return newest_start_; }
  TumblingView* row_store() noexcept override { return this; }

 private:
  // Where a view's aggregates live in a window: one slot per distinct state
  // (its kind's state kind and its field), so sum(x) and avg(x) share one.
  struct Slot {
    const AggregateKind* kind;  // the state kind: its words, init and fold
    int column;                 // batch column it reads; -1 for none
    std::uint32_t offset;       // its first word in a window
  };
  static constexpr std::uint32_t kNoSlot = UINT32_MAX;

  // The window of key_id a row at ts goes to, with the row counted; nullptr,
  // changing nothing, when that window closed. before_move(w) is called
  // before the window at w moves (a slot's window, when a newer one takes
  // the slot), and before_move(nullptr) before every window may (the arrays
  // grow): the staged apply folds the rows it holds pointers for first.
  template <typename BeforeMove>
  WindowWord* take(std::uint32_t key_id, std::int64_t ts, std::int64_t watermark, BeforeMove before_move) {
    // Rows mostly fall into the window of the row before: reuse its start
    // and slot instead of 64-bit divisions per row (8% of apply in a profile).
    if (static_cast<std::uint64_t>(ts) - static_cast<std::uint64_t>(last_start_) >= static_cast<std::uint64_t>(window_ms_)) {
      last_start_ = window_start_of(ts, window_ms_);
      last_slot_ = slot_of(last_start_);
    }
    const std::int64_t start = last_start_;
    if (start + window_ms_ + lateness_ms_ <= watermark) return nullptr;
    if (start > newest_start_) newest_start_ = start;
    if (key_id >= keys_) {
      before_move(nullptr);
      grow(key_id + 1);
    }
    // The window's slot: an address computed from the key and the window,
    // no walk. A slot holding another window sends the row the slow way.
    WindowWord* w = slot(key_id, last_slot_);
    if (w[1].u == 0 || w[0].i != start) {
      if (w[1].u != 0 && w[0].i < start) before_move(w);
      w = window_for(key_id, w, start);
    }
    ++w[1].u;
    return w;
  }
  // Folds row r (its ts[r], column(c)[r]) into the aggregates of w.
  template <typename Column>
  void fold(WindowWord* w, std::uint32_t r, const std::int64_t* ts, Column column) const {
    for (const Slot& slot : slots_) {
      slot.kind->fold(FoldRows{&w, &r, 1, slot.offset, slot.column >= 0 ? column(slot.column) : nullptr, ts});
    }
  }
  void fold_rows(const RouteBatch& b, WindowWord* const* windows, const std::uint32_t* rows, std::uint32_t n) const;
  void grow(std::uint32_t keys);
  std::int64_t horizon(std::int64_t watermark, std::int64_t retention_ms) const noexcept;
  // The slot (0..ring_slots_) of the window starting at start.
  std::uint32_t slot_of(std::int64_t start) const noexcept {
    const std::int64_t n = start / window_ms_ % ring_slots_;  // start is a multiple of the window
    return static_cast<std::uint32_t>(n < 0 ? n + ring_slots_ : n);
  }
  // The slow way for a row whose slot `slot` does not hold its window.
  WindowWord* window_for(std::uint32_t key_id, WindowWord* slot, std::int64_t start);
  // A new record at the log's end for key_id's window at start, not yet
  // linked into the key's chain; its index.
  std::uint64_t new_record(std::uint32_t key_id, std::int64_t start);
  // Links record `index` (its window at start) into key_id's chain, in order.
  void link(std::uint32_t key_id, std::uint64_t index, std::int64_t start);
  WindowWord* record(std::uint64_t index) noexcept;
  const WindowWord* record(std::uint64_t index) const noexcept;
  template <typename F>
  void for_each_older(std::uint32_t key_id, F&& f) const;  // f(index, record) over the key's chain until it returns true
  void init(WindowWord* w, std::int64_t start) const noexcept;
  const WindowWord* find(std::uint32_t key_id, std::int64_t start) const noexcept;
  AggState state_of(const WindowWord* w, int aggregate) const noexcept;
  ViewRow to_row(std::string_view key, const WindowWord* w, std::int64_t watermark) const;

  std::int64_t window_ms_;
  std::int64_t lateness_ms_;
  std::vector<Slot> slots_;
  std::vector<const AggregateKind*> kinds_;  // per aggregate
  std::vector<std::uint32_t> agg_slot_;      // per aggregate: its slot, or kNoSlot (count)
  std::uint32_t words_ = 2;                  // words per window
  std::uint32_t keys_ = 0;

  // Each key's block: the head of its older windows' chain (below), with
  // more than one slot that window's start too (so a window leaving its
  // slot is linked in order without reading the head; with one slot the
  // window leaving it is always the key's newest), then its window slots.
  // A window numbered n (its start / the window) lives in slot n mod
  // ring_slots_, so the window a row goes to is found by arithmetic and
  // prefetched with the block. Count 0: an empty slot.
  static constexpr std::uint32_t kHead = 0;       // word: the chain's head record, or kNoRecord
  static constexpr std::uint32_t kHeadStart = 1;  // word, with more than one slot: its window's start
  std::uint32_t ring_slots_ = 1;
  std::uint32_t slots_at_ = 1;   // the first slot's first word in a block
  std::uint32_t key_words_ = 3;  // slots_at_ + ring_slots_ * words_
  std::vector<WindowWord> blocks_;
  WindowWord* block(std::uint32_t key_id) noexcept { return &blocks_[static_cast<std::size_t>(key_id) * key_words_]; }
  const WindowWord* block(std::uint32_t key_id) const noexcept {
    return &blocks_[static_cast<std::size_t>(key_id) * key_words_];
  }
  WindowWord* slot(std::uint32_t key_id, std::uint32_t i) noexcept { return block(key_id) + slots_at_ + i * words_; }
  const WindowWord* slot(std::uint32_t key_id, std::uint32_t i) const noexcept {
    return block(key_id) + slots_at_ + i * words_;
  }

  // Older windows: those a newer window took the slot of, and those a row
  // reached after its slot had moved on (producers further apart in event
  // time than the lateness). An append-only log in fixed chunks, each
  // record a window plus the index of the key's next older window and the
  // key id: a chain per key, sorted newest first. Records are never moved;
  // eviction drops whole chunks from the front, which ends every chain that
  // reaches them. Per-key vectors here cost 8% of the time in reallocation
  // copies plus the page faults of the fresh memory. Queries and rows past
  // the slots read it.
  static constexpr std::uint64_t kChunkRecords = 4096;
  static constexpr std::uint64_t kNoRecord = UINT64_MAX;
  std::uint32_t record_words_ = 4;  // words_ + next older + key
  // Per key, the two records its last rows past the slots went to, most
  // recent first. Producers drift apart in event time (two TCP
  // connections, one ahead): every key's rows then alternate between two
  // windows, and walking the chain for each of them took 19% of a
  // 2-connection profile.
  std::vector<std::uint64_t> recent_;
  std::vector<std::unique_ptr<WindowWord[]>> chunks_;  // chunks_[0] holds record first_chunk_ * kChunkRecords
  std::vector<std::int64_t> chunk_max_start_;
  std::uint64_t first_chunk_ = 0;
  std::uint64_t next_record_ = 0;
  std::uint64_t windows_ = 0;
  std::int64_t newest_start_ = INT64_MIN;
  std::int64_t last_start_ = 0;  // the window start of the last row added
  std::uint32_t last_slot_ = 0;  // and its slot
};

}  // namespace spate::engine
