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
  bool add(std::uint32_t key_id, std::int64_t ts, const double* columns, std::int64_t watermark) {
    WindowWord* w = take(key_id, ts, watermark, [](const WindowWord*) {});
    if (w == nullptr) return false;
    fold(w, 0, &ts, [columns](int c) { return columns + c; });
    return true;
  }

  // The key's newest window, and the head of its older ones: a row that
  // opens a new window (most rows of rare keys) links the old one there.
  void prefetch(std::uint32_t key_id) const noexcept {
    if (key_id < keys_) {
      kernels::prefetch(&hot_[static_cast<std::size_t>(key_id) * words_]);
      kernels::prefetch(&head_[key_id]);
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

  // True when key_id holds no window any more: its newest was evicted and
  // its older ones are in dropped chunks.
  bool key_idle(std::uint32_t key_id) const noexcept override {
    if (key_id >= keys_) return true;
    if (hot_[static_cast<std::size_t>(key_id) * words_ + 1].u != 0) return false;
    return head_[key_id] == kNoRecord || head_[key_id] < first_chunk_ * kChunkRecords;
  }
  // Forgets key_id's state so the id can serve another key.
  void reset_key(std::uint32_t key_id) noexcept override {
    if (key_id >= keys_) return;
    hot_[static_cast<std::size_t>(key_id) * words_ + 1].u = 0;
    head_[key_id] = kNoRecord;
    recent_[2 * static_cast<std::size_t>(key_id)] = kNoRecord;
    recent_[2 * static_cast<std::size_t>(key_id) + 1] = kNoRecord;
  }

  void remap_keys(const std::vector<std::uint32_t>& remap, std::uint32_t keys) override;

  void save(kernels::ByteWriter& out) const override;
  bool load(kernels::ByteReader& in) override;

  std::uint64_t window_count() const noexcept override { return windows_; }
  std::uint64_t memory_bytes() const noexcept override {
    return hot_.capacity() * sizeof(WindowWord) + (head_.capacity() + recent_.capacity()) * sizeof(std::uint64_t) +
           chunks_.size() * kChunkRecords * record_words_ * sizeof(WindowWord);
  }
  std::int64_t window_ms() const noexcept { return window_ms_; }
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
  // before the window at w moves (the key's newest, when a newer one
  // comes), and before_move(nullptr) before every window may (the arrays
  // grow): the staged apply folds the rows it holds pointers for first.
  template <typename BeforeMove>
  WindowWord* take(std::uint32_t key_id, std::int64_t ts, std::int64_t watermark, BeforeMove before_move) {
    // Rows mostly fall into the window of the row before: reuse its start
    // instead of a 64-bit division per row (8% of apply in a profile).
    if (static_cast<std::uint64_t>(ts) - static_cast<std::uint64_t>(last_start_) >= static_cast<std::uint64_t>(window_ms_)) {
      last_start_ = window_start_of(ts, window_ms_);
    }
    const std::int64_t start = last_start_;
    if (start + window_ms_ + lateness_ms_ <= watermark) return nullptr;
    if (start > newest_start_) newest_start_ = start;
    if (key_id >= keys_) {
      before_move(nullptr);
      grow(key_id + 1);
    }
    // The newest window of each key lives in one flat array: in-order events
    // touch one place; new windows and out-of-order events take the slow path.
    WindowWord* w = &hot_[static_cast<std::size_t>(key_id) * words_];
    if (w[1].u == 0 || w[0].i != start) {
      if (w[1].u != 0 && start > w[0].i) before_move(w);
      w = window_for(key_id, start);
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
  WindowWord* window_for(std::uint32_t key_id, std::int64_t start);
  // A new record at the log's end for key_id's window at start, not yet
  // linked into the key's chain; its index.
  std::uint64_t new_record(std::uint32_t key_id, std::int64_t start);
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
  std::vector<WindowWord> hot_;  // newest window per key; count 0 = none

  // Older windows: an append-only log in fixed chunks, each record a window
  // plus the index of the key's next older window and the key id: a chain
  // per key from head_, sorted newest first. Records are never moved;
  // eviction drops whole chunks from the front, which ends every chain that
  // reaches them. Per-key vectors here cost 8% of the time in
  // reallocation copies plus the page faults of the fresh memory.
  static constexpr std::uint64_t kChunkRecords = 4096;
  static constexpr std::uint64_t kNoRecord = UINT64_MAX;
  std::uint32_t record_words_ = 4;                 // words_ + next older + key
  std::vector<std::uint64_t> head_;                // per key: its newest closed window, or kNoRecord
  std::vector<std::unique_ptr<WindowWord[]>> chunks_;  // chunks_[0] holds record first_chunk_ * kChunkRecords
  std::vector<std::int64_t> chunk_max_start_;
  std::uint64_t first_chunk_ = 0;
  std::uint64_t next_record_ = 0;
  // Per key, the two older windows its last out-of-order rows went to, most
  // recent first. Producers drift apart in event time (two TCP connections,
  // one ahead): every key's rows then alternate between the newest window
  // and one older window, and walking the chain for each of them took 19% of
  // a 2-connection profile. The second entry keeps that older window when a
  // late row for a third window comes between (each one cost a walk before).
  std::vector<std::uint64_t> recent_;
  std::uint64_t windows_ = 0;
  std::int64_t newest_start_ = INT64_MIN;
  std::int64_t last_start_ = 0;  // the window start of the last row added
};

}  // namespace spate::engine
