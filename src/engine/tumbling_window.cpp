// Tumbling windows; see tumbling_window.hpp.
#include "engine/tumbling_window.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/rfc3339.hpp"
#include "engine/view_registry.hpp"

namespace spate::engine {

TumblingView::TumblingView(const ViewConfig& config, std::int64_t allowed_lateness_ms)
    : View(config), window_ms_(config.window_ms), lateness_ms_(allowed_lateness_ms) {
  for (const auto& agg : config_.aggregates) {
    const AggregateKind* kind = find_aggregate_kind(agg.function, agg.type);
    if (kind == nullptr) throw std::invalid_argument(fmt::format("'{}' is not an aggregate", agg.function));
    kinds_.push_back(kind);
    const AggregateKind* state = &kind->state_kind();
    if (state->words == 0) {
      agg_slot_.push_back(kNoSlot);
      continue;
    }
    const auto same = [&](const Slot& s) { return s.kind == state && s.column == agg.column; };
    auto it = std::find_if(slots_.begin(), slots_.end(), same);
    if (it == slots_.end()) {
      slots_.push_back({state, agg.column, words_});
      words_ += state->words;
      it = slots_.end() - 1;
    }
    agg_slot_.push_back(static_cast<std::uint32_t>(it - slots_.begin()));
  }
  record_words_ = words_ + 2;
  // A slot for the window the watermark is in, and one for each window
  // behind it that stays open (within the lateness) for at least half of
  // the next window's time: a 10 s window with 5 s of lateness gets two,
  // a minute with 5 s one (its previous window is open for 8% of the time:
  // a second slot would double the key's window bytes, measured 17% slower
  // at 10 M keys, for rows that the log's recent-window cache serves).
  // At most 8 slots: a lateness of many windows sends its oldest rows to
  // the log instead of costing every key memory for them.
  const std::int64_t behind = (2 * lateness_ms_ + window_ms_) / (2 * window_ms_);
  ring_slots_ = static_cast<std::uint32_t>(std::clamp<std::int64_t>(1 + behind, 1, 8));
  slots_at_ = ring_slots_ == 1 ? 1 : 2;
  key_words_ = slots_at_ + ring_slots_ * words_;
}

// Staged: each row's window is found and counted (its line prefetched 16
// rows before), then each aggregate folds a group of rows in one call, so
// an aggregate kind costs an indirect call a group, not a row. A window
// that moves while the group holds it (a key's newest, when a newer one
// comes) has the group folded first, so every aggregate sees a window's
// rows in order, as add() folds them.
std::uint64_t TumblingView::apply(const BatchRows& rows) {
  constexpr std::uint32_t kAhead = 16;
  constexpr std::uint32_t kGroup = 32;
  const RouteBatch& b = rows.batch;
  WindowWord* windows[kGroup];
  std::uint32_t picked[kGroup];
  std::uint32_t n = 0;
  const auto fold_group = [&] {
    fold_rows(b, windows, picked, n);
    n = 0;
  };
  const auto before_move = [&](const WindowWord* w) {
    if (n != 0 && (w == nullptr || std::find(windows, windows + n, w) != windows + n)) fold_group();
  };
  std::uint64_t late = 0;
  const auto ours = [&](std::uint32_t r) {
    return (rows.group < 0 || b.group[r] == rows.group) && rows.key_ids[r] != KeyTable::kMissing;
  };
  const std::uint32_t first = std::min(rows.end, rows.begin + kAhead);
  for (std::uint32_t r = rows.begin; r < first; ++r) {
    if (ours(r)) prefetch(rows.key_ids[r]);
  }
  for (std::uint32_t r = rows.begin; r < rows.end; ++r) {
    if (r + kAhead < rows.end && ours(r + kAhead)) prefetch(rows.key_ids[r + kAhead]);
    if (!ours(r)) continue;
    WindowWord* w = take(rows.key_ids[r], b.ts[r], rows.watermarks[r], before_move);
    if (w == nullptr) {
      ++late;
      if (rows.late_rows != nullptr) rows.late_rows[r / 64] |= std::uint64_t{1} << (r % 64);
      continue;
    }
    windows[n] = w;
    picked[n++] = r;
    if (n == kGroup) fold_group();
  }
  if (n != 0) fold_group();
  return late;
}

void TumblingView::fold_rows(const RouteBatch& b, WindowWord* const* windows, const std::uint32_t* rows,
                             std::uint32_t n) const {
  for (const Slot& slot : slots_) {
    slot.kind->fold(FoldRows{windows, rows, n, slot.offset, slot.column >= 0 ? b.columns[slot.column] : nullptr, b.ts});
  }
}

// Grows by half at least: a key id past the arrays' end (a new key) then
// costs a resize once in a while instead of every time, and ids not used yet
// are in range for prefetch. With 1 M keys, growing to exactly the new id
// showed as 1% of a 1-shard profile (perf record), now gone; the ratio to
// the raw parse did not move beyond the noise (0.41-0.45 either way).
void TumblingView::grow(std::uint32_t needed) {
  const std::uint32_t keys = std::max<std::uint32_t>({needed, keys_ + keys_ / 2, 1024});
  blocks_.resize(static_cast<std::size_t>(keys) * key_words_, WindowWord{0});
  for (std::uint32_t k = keys_; k < keys; ++k) block(k)[kHead].u = kNoRecord;
  recent_.resize(2 * static_cast<std::size_t>(keys), kNoRecord);
  keys_ = keys;
}

void TumblingView::remap_keys(const std::vector<std::uint32_t>& remap, std::uint32_t keys) {
  std::vector<WindowWord> blocks(static_cast<std::size_t>(keys) * key_words_, WindowWord{0});
  for (std::uint32_t k = 0; k < keys; ++k) blocks[static_cast<std::size_t>(k) * key_words_ + kHead].u = kNoRecord;
  std::vector<std::uint64_t> recent(2 * static_cast<std::size_t>(keys), kNoRecord);
  const std::uint32_t limit = std::min<std::uint32_t>(keys_, static_cast<std::uint32_t>(remap.size()));
  for (std::uint32_t old = 0; old < limit; ++old) {
    const std::uint32_t id = remap[old];
    if (id == KeyTable::kMissing) continue;
    std::copy_n(&blocks_[static_cast<std::size_t>(old) * key_words_], key_words_, &blocks[static_cast<std::size_t>(id) * key_words_]);
    recent[2 * static_cast<std::size_t>(id)] = recent_[2 * static_cast<std::size_t>(old)];
    recent[2 * static_cast<std::size_t>(id) + 1] = recent_[2 * static_cast<std::size_t>(old) + 1];
  }
  blocks_.swap(blocks);
  recent_.swap(recent);
  keys_ = keys;
}

void TumblingView::init(WindowWord* w, std::int64_t start) const noexcept {
  w[0].i = start;
  w[1].u = 0;
  for (const Slot& slot : slots_) slot.kind->init(w + slot.offset);
}

WindowWord* TumblingView::record(std::uint64_t index) noexcept {
  return &chunks_[index / kChunkRecords - first_chunk_][(index % kChunkRecords) * record_words_];
}

const WindowWord* TumblingView::record(std::uint64_t index) const noexcept {
  return &chunks_[index / kChunkRecords - first_chunk_][(index % kChunkRecords) * record_words_];
}

std::uint64_t TumblingView::new_record(std::uint32_t key_id, std::int64_t start) {
  if (next_record_ / kChunkRecords - first_chunk_ == chunks_.size()) {
    // Zeroed, though every record is written when appended: a checkpoint
    // saves whole chunks, and the unused tail must not carry stale memory.
    chunks_.push_back(std::make_unique<WindowWord[]>(kChunkRecords * record_words_));
    chunk_max_start_.push_back(INT64_MIN);
  }
  const std::uint64_t index = next_record_++;
  WindowWord* r = record(index);
  r[words_].u = kNoRecord;
  r[words_ + 1].u = key_id;
  auto& chunk_max = chunk_max_start_[index / kChunkRecords - first_chunk_];
  chunk_max = std::max(chunk_max, start);
  return index;
}

template <typename F>
void TumblingView::for_each_older(std::uint32_t key_id, F&& f) const {
  const std::uint64_t first = first_chunk_ * kChunkRecords;
  for (std::uint64_t i = block(key_id)[kHead].u; i != kNoRecord && i >= first; i = record(i)[words_].u) {
    if (f(i, record(i))) return;
  }
}

void TumblingView::link(std::uint32_t key_id, std::uint64_t index, std::int64_t start) {
  WindowWord* b = block(key_id);
  const std::uint64_t head = b[kHead].u;
  const std::uint64_t first = first_chunk_ * kChunkRecords;
  WindowWord* r = record(index);
  if (head == kNoRecord || head < first || ring_slots_ == 1 || start > b[kHeadStart].i) {  // the newest: in front
    r[words_].u = head;
    b[kHead].u = index;
    if (ring_slots_ > 1) b[kHeadStart].i = start;
    return;
  }
  // Behind a newer window that left its slot first (rows out of order):
  // the chain is sorted, so the walk stops at the first older window.
  std::uint64_t newer = head;
  std::uint64_t i = record(newer)[words_].u;
  while (i != kNoRecord && i >= first && record(i)[0].i > start) {
    newer = i;
    i = record(i)[words_].u;
  }
  r[words_].u = i;
  record(newer)[words_].u = index;
}

WindowWord* TumblingView::window_for(std::uint32_t key_id, WindowWord* slot, std::int64_t start) {
  if (slot[1].u == 0) {  // an empty slot
    init(slot, start);
    ++windows_;
    return slot;
  }
  if (start > slot[0].i) {  // a newer window takes the slot: the old one goes to the log
    const std::uint64_t index = new_record(key_id, slot[0].i);
    std::copy(slot, slot + words_, record(index));
    link(key_id, index, slot[0].i);
    init(slot, start);
    ++windows_;
    return slot;
  }
  // A window older than its slot's: in the log, the one used last, or a
  // walk of the key's chain. The chain is sorted, newest first, so the walk
  // stops at the first older window: it costs the distance to the wanted
  // window, not the length of the chain. (Unsorted, a TCP run whose two
  // producers drifted minutes apart in event time spent 1.2 M chain steps,
  // a cache miss each, on rows for windows the key did not have yet.)
  const std::uint64_t first = first_chunk_ * kChunkRecords;
  std::uint64_t* recent = &recent_[2 * static_cast<std::size_t>(key_id)];
  for (int k = 0; k < 2; ++k) {
    const std::uint64_t index = recent[k];
    if (index != kNoRecord && index >= first && record(index)[0].i == start) {
      if (k == 1) std::swap(recent[0], recent[1]);
      return record(index);
    }
  }
  const auto remember = [recent](std::uint64_t index) {
    recent[1] = recent[0];
    recent[0] = index;
  };
  WindowWord* b = block(key_id);
  std::uint64_t newer = kNoRecord;  // the chain's last record newer than start
  std::uint64_t i = b[kHead].u;
  for (; i != kNoRecord && i >= first; i = record(i)[words_].u) {
    const std::int64_t s = record(i)[0].i;
    if (s == start) {
      remember(i);
      return record(i);
    }
    if (s < start) break;
    newer = i;
  }
  // A new window, linked in between `newer` and `i`.
  const std::uint64_t index = new_record(key_id, start);
  remember(index);
  WindowWord* r = record(index);
  init(r, start);
  r[words_].u = i;
  if (newer == kNoRecord) {
    b[kHead].u = index;
    if (ring_slots_ > 1) b[kHeadStart].i = start;
  } else {
    record(newer)[words_].u = index;
  }
  ++windows_;
  return r;
}

const WindowWord* TumblingView::find(std::uint32_t key_id, std::int64_t start) const noexcept {
  const WindowWord* w = slot(key_id, slot_of(start));
  if (w[1].u != 0) {
    if (w[0].i == start) return w;
    if (w[0].i < start) return nullptr;  // a window in the log has a newer one in its slot
  }
  const WindowWord* found = nullptr;
  for_each_older(key_id, [&](std::uint64_t, const WindowWord* r) {
    if (r[0].i == start) found = r;
    return r[0].i <= start;  // the chain is sorted: nothing further can match
  });
  return found;
}

AggState TumblingView::state_of(const WindowWord* w, int aggregate) const noexcept {
  const auto a = static_cast<std::size_t>(aggregate);
  AggState state{kinds_[a], w[1].u};
  if (agg_slot_[a] != kNoSlot) {
    const Slot& slot = slots_[agg_slot_[a]];
    std::copy_n(w + slot.offset, slot.kind->words, state.words);
  }
  return state;
}

ViewRow TumblingView::to_row(std::string_view key, const WindowWord* w, std::int64_t watermark) const {
  ViewRow row;
  row.key = std::string(key);
  row.window_start = w[0].i;
  row.window_end = w[0].i + window_ms_;
  row.closed = row.window_end + lateness_ms_ <= watermark;
  row.aggs.reserve(config_.aggregates.size());
  for (std::size_t a = 0; a < config_.aggregates.size(); ++a) row.aggs.push_back(state_of(w, static_cast<int>(a)));
  return row;
}

void TumblingView::collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
                           std::int64_t watermark, std::vector<ViewRow>& out) const {
  if (key_id >= keys_) return;
  std::vector<const WindowWord*> windows;
  for (std::uint32_t i = 0; i < ring_slots_; ++i) {
    if (slot(key_id, i)[1].u != 0) windows.push_back(slot(key_id, i));
  }
  for_each_older(key_id, [&](std::uint64_t, const WindowWord* r) {
    windows.push_back(r);
    return false;
  });
  std::sort(windows.begin(), windows.end(), [](const WindowWord* a, const WindowWord* b) { return a[0].i < b[0].i; });
  for (const WindowWord* w : windows) {
    if (w[0].i < to && w[0].i + window_ms_ > from) out.push_back(to_row(key, w, watermark));
  }
}

void TumblingView::top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys,
                       std::int64_t watermark, std::uint32_t begin, std::uint32_t end, std::vector<ViewRow>& out) const {
  struct Candidate {
    double value;
    std::uint32_t key_id;
    const WindowWord* window;
  };
  std::vector<Candidate> candidates;
  end = std::min(end, keys_);
  for (std::uint32_t id = begin; id < end; ++id) {
    if (const WindowWord* w = find(id, window_start)) candidates.push_back({state_of(w, by).value().as_double(), id, w});
  }
  const auto better = [&](const Candidate& a, const Candidate& b) {
    if (a.value != b.value) return a.value > b.value;
    return keys.key(a.key_id) < keys.key(b.key_id);
  };
  const std::size_t n = std::min<std::size_t>(k, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(n), candidates.end(), better);
  for (std::size_t i = 0; i < n; ++i) out.push_back(to_row(keys.key(candidates[i].key_id), candidates[i].window, watermark));
}

std::int64_t TumblingView::horizon(std::int64_t watermark, std::int64_t retention_ms) const noexcept {
  return watermark - lateness_ms_ - retention_ms - window_ms_;
}

void TumblingView::evict_chunks(std::int64_t watermark, std::int64_t retention_ms) {
  const std::int64_t horizon = this->horizon(watermark, retention_ms);
  // Whole chunks whose newest window is past the horizon; a chunk holding
  // one younger window waits for it, so retention is a lower bound.
  while (!chunks_.empty() && chunk_max_start_.front() < horizon) {
    const std::uint64_t begin = first_chunk_ * kChunkRecords;
    const std::uint64_t end = begin + kChunkRecords;
    windows_ -= std::min(end, next_record_) - begin;
    if (next_record_ < end) next_record_ = end;  // the partly filled last chunk: continue in a new one
    chunks_.erase(chunks_.begin());
    chunk_max_start_.erase(chunk_max_start_.begin());
    ++first_chunk_;
  }
}

void TumblingView::evict_keys(std::int64_t watermark, std::int64_t retention_ms, std::uint32_t begin,
                              std::uint32_t end) {
  const std::int64_t horizon = this->horizon(watermark, retention_ms);
  end = std::min(end, keys_);
  for (std::uint32_t id = begin; id < end; ++id) {
    for (std::uint32_t i = 0; i < ring_slots_; ++i) {
      WindowWord* w = slot(id, i);
      if (w[1].u != 0 && w[0].i < horizon) {
        w[1].u = 0;
        --windows_;
      }
    }
  }
}

// A checkpoint holds the arrays as they are (the records' chunks only
// from the first live one): loading is a copy, no rebuilding.
void TumblingView::save(kernels::ByteWriter& out) const {
  out.put<std::uint32_t>(words_);
  out.put<std::uint32_t>(ring_slots_);
  out.put<std::uint32_t>(keys_);
  out.put_vector(blocks_);
  out.put_vector(recent_);
  out.put_vector(chunk_max_start_);
  out.put<std::uint64_t>(first_chunk_);
  out.put<std::uint64_t>(next_record_);
  for (const auto& chunk : chunks_) out.put_array(chunk.get(), kChunkRecords * record_words_);
  out.put<std::uint64_t>(windows_);
  out.put<std::int64_t>(newest_start_);
  out.put<std::int64_t>(last_start_);
}

// A body that passes its checksum can still be malformed (a bug, another
// build), so what the view relies on is checked, in one pass over the keys
// and one over the records: a query, an insert or retention must never
// index out of the arrays, walk a chain forever or overflow a window's end.
bool TumblingView::load(kernels::ByteReader& in) {
  // Another set of columns, or another lateness for the window: not this layout.
  if (in.get<std::uint32_t>() != words_ || in.get<std::uint32_t>() != ring_slots_) return in.fail();
  keys_ = in.get<std::uint32_t>();
  in.get_vector(blocks_);
  in.get_vector(recent_);
  in.get_vector(chunk_max_start_);
  first_chunk_ = in.get<std::uint64_t>();
  next_record_ = in.get<std::uint64_t>();
  const std::uint64_t nchunks = chunk_max_start_.size();
  // Far more chunks than were ever written, yet (first_chunk_ + nchunks) *
  // kChunkRecords cannot overflow and no record index reaches kNoRecord.
  constexpr std::uint64_t kMaxChunk = (kNoRecord / kChunkRecords) / 2;
  if (!in.ok() || blocks_.size() != static_cast<std::size_t>(keys_) * key_words_ ||
      recent_.size() != 2 * static_cast<std::size_t>(keys_) ||
      first_chunk_ > kMaxChunk || next_record_ < first_chunk_ * kChunkRecords ||
      next_record_ > (first_chunk_ + nchunks) * kChunkRecords) {
    return in.fail();
  }
  chunks_.clear();
  std::vector<WindowWord> chunk;
  for (std::size_t c = 0; c < nchunks; ++c) {
    if (!in.get_vector(chunk) || chunk.size() != kChunkRecords * record_words_) return in.fail();
    chunks_.push_back(std::make_unique_for_overwrite<WindowWord[]>(chunk.size()));
    std::copy(chunk.begin(), chunk.end(), chunks_.back().get());
  }
  windows_ = in.get<std::uint64_t>();
  newest_start_ = in.get<std::int64_t>();
  last_start_ = in.get<std::int64_t>();
  if (!in.ok()) return false;

  // Windows start at a multiple of the window within the event times the
  // parser accepts, none after the newest; each holds a row, and its
  // aggregates are what finite numbers fold to (no NaN: it would break the
  // order VIEW_TOP sorts by).
  const std::int64_t lowest = window_start_of(kernels::kRfc3339MinMs, window_ms_);
  const std::int64_t highest = window_start_of(kernels::kRfc3339MaxMs, window_ms_);
  const auto valid_start = [&](std::int64_t s) { return s >= lowest && s <= highest && s % window_ms_ == 0; };
  const auto valid_window = [&](const WindowWord* w) {
    if (w[1].u == 0 || !valid_start(w[0].i) || w[0].i > newest_start_) return false;
    return std::all_of(slots_.begin(), slots_.end(),
                       [&](const Slot& slot) { return slot.kind->valid(w + slot.offset, w[1].u); });
  };
  const std::uint64_t first = first_chunk_ * kChunkRecords;
  const auto valid_link = [&](std::uint64_t i) { return i == kNoRecord || i < next_record_; };
  if ((newest_start_ != INT64_MIN && !valid_start(newest_start_)) || !valid_start(last_start_)) return in.fail();
  last_slot_ = slot_of(last_start_);
  // Every record written since the first live chunk is a window; so is
  // each filled slot, in the slot of its window. The count and each
  // chunk's newest start follow.
  std::uint64_t windows = next_record_ - first;
  for (std::uint32_t k = 0; k < keys_; ++k) {
    for (std::uint32_t i = 0; i < ring_slots_; ++i) {
      const WindowWord* w = slot(k, i);
      if (w[1].u == 0) continue;
      if (!valid_window(w) || slot_of(w[0].i) != i) return in.fail();
      ++windows;
    }
    const std::uint64_t* recent = &recent_[2 * static_cast<std::size_t>(k)];
    if (!valid_link(block(k)[kHead].u) || !valid_link(recent[0]) || !valid_link(recent[1])) return in.fail();
  }
  if (windows != windows_) return in.fail();
  for (std::uint64_t c = 0; c < nchunks; ++c) {
    std::int64_t max_start = INT64_MIN;
    const std::uint64_t end = std::min(next_record_, first + (c + 1) * kChunkRecords);
    for (std::uint64_t i = first + c * kChunkRecords; i < end; ++i) {
      const WindowWord* r = record(i);
      // The key word is only written (a renumbering leaves it stale): a key id, no more.
      if (!valid_window(r) || !valid_link(r[words_].u) || r[words_ + 1].u >= KeyTable::kMissing) return in.fail();
      max_start = std::max(max_start, r[0].i);
    }
    if (chunk_max_start_[c] != max_start) return in.fail();
  }
  // Each key's chain (its older windows) is a path through records of its
  // own: no record on two chains, none twice, so every walk ends; a live
  // head's start is the one kept beside it. A key's recent windows are on
  // its chain, or on no chain (cut off by eviction).
  constexpr std::uint32_t kNoKey = UINT32_MAX;
  std::vector<std::uint32_t> owner(next_record_ - first, kNoKey);
  for (std::uint32_t k = 0; k < keys_; ++k) {
    const WindowWord* b = block(k);
    const std::uint64_t head = b[kHead].u;
    if (ring_slots_ > 1 && head != kNoRecord && head >= first && record(head)[0].i != b[kHeadStart].i) return in.fail();
    for (std::uint64_t i = head; i != kNoRecord && i >= first; i = record(i)[words_].u) {
      if (owner[i - first] != kNoKey) return in.fail();
      owner[i - first] = k;
    }
  }
  for (std::uint32_t k = 0; k < keys_; ++k) {
    for (int j = 0; j < 2; ++j) {
      const std::uint64_t i = recent_[2 * static_cast<std::size_t>(k) + j];
      if (i != kNoRecord && i >= first && owner[i - first] != kNoKey && owner[i - first] != k) return in.fail();
    }
  }
  return true;
}

// window = "tumbling": size_ms, every window [k * size, (k + 1) * size).
extern const ViewKind kTumblingKind;
const ViewKind kTumblingKind{
    "tumbling",
    [](const ViewConfig& view, std::vector<std::string>& problems) {
      if (view.slide_ms != 0) problems.emplace_back("slide_ms is for hopping windows; a tumbling window slides by its size");
    },
    [](const ViewConfig& view) { return fmt::format("tumbling/{}", view.window_ms); },
    [](const ViewConfig& view, std::int64_t allowed_lateness_ms) -> std::unique_ptr<View> {
      return std::make_unique<TumblingView>(view, allowed_lateness_ms);
    },
    [](const ViewConfig& view, std::int64_t t) { return window_start_of(t, view.window_ms); },
};

}  // namespace spate::engine
