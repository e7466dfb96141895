// A shard's materialized state: the key table of each key group and every
// view, folded a batch at a time; answers view queries and keeps retention,
// both in bounded slices so the shard loop never stalls on a large view.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "kernels/counter.hpp"
#include "engine/dedup_table.hpp"
#include "engine/key_table.hpp"
#include "engine/route_batch.hpp"
#include "engine/tumbling_window.hpp"
#include "engine/view.hpp"

namespace spate::engine {

class ViewSet {
 public:
  // late[v] counts rows refused by view v; newest_window[v] publishes the
  // start of its newest window with rows (VIEW_TOP's default window).
  // key_limit[v] counts rows view v lost to the state budget (a new key refused).
  ViewSet(const Config& config, std::uint32_t shards, std::atomic<std::uint64_t>* late,
          std::atomic<std::uint64_t>* key_limit, std::atomic<std::int64_t>* newest_window);

  // Dedup by event id ([dedup], docs/engine.md): one table a shard. Rows
  // decided where they were parsed arrive as DedupRole::none; the others
  // are checked in apply(). Counted in STATS as dedup.*.
  bool dedups() const noexcept { return dedup_ != nullptr; }
  // Events dropped as duplicates, and events too old to check; any thread.
  std::uint64_t duplicates() const noexcept { return duplicates_.load(std::memory_order_relaxed); }
  std::uint64_t beyond_horizon() const noexcept { return beyond_horizon_.load(std::memory_order_relaxed); }
  void prefetch_id(const kernels::Fingerprint& fp) const noexcept { dedup_->prefetch(fp); }
  // Decides an event's rows on this shard where it was parsed; primary: the
  // event's first key group is among them (it counts the verdict). The
  // horizon is judged against the event's stamp (its input's watermark
  // before it), as a decider row elsewhere is: a function of the input's
  // order alone, not of how far this shard's batches were applied.
  bool is_duplicate(const kernels::Fingerprint& fp, std::int64_t ts, std::int64_t watermark, bool primary) {
    const DedupTable::Verdict v = dedup_->check(fp, ts, watermark);
    if (v == DedupTable::Verdict::first) return false;
    if (primary) kernels::add_relaxed(v == DedupTable::Verdict::duplicate ? duplicates_ : beyond_horizon_, 1);
    return v == DedupTable::Verdict::duplicate;
  }
  // The shard's thread: the table's own figures.
  struct DedupTotals {
    std::uint64_t evicted = 0, expired = 0, ids = 0, bytes = 0;
    std::int64_t horizon_covered_ms = 0;
  };
  DedupTotals dedup_totals(std::int64_t watermark) const noexcept;
  // Frees ids past the horizon, a bounded slice of the table a call.
  void expire_ids(std::int64_t watermark);

  std::size_t groups() const noexcept { return keys_.size(); }
  std::uint32_t keys_in(std::size_t group) const noexcept { return keys_[group].size(); }
  // True when every view of the group folds rows into a TumblingView store
  // (View::row_store: tumbling windows, a hopping view's panes): its rows
  // may take the per-row path (a direct call, no virtual one per row).
  bool has_row_path(std::size_t group) const noexcept { return !direct_[group].empty(); }

  // Interns the batch's keys (each key-table slot prefetched a few rows
  // ahead) into ids, then lets each view fold the rows of its group.
  // wms[r] is the stamp row r is judged against. Returns the rows no view
  // took (duplicates, refused by a key limit, late in every view).
  template <bool kOneGroup>
  std::uint32_t apply(const RouteBatch& b, std::uint32_t* ids, const std::int64_t* wms) {
    constexpr std::uint32_t kAhead = 8;
    const std::uint32_t rows = b.rows;
    KeyTable* const tables = keys_.data();
    std::uint32_t refused = 0;  // rows whose new key the budget refused
    for (std::uint32_t r = 0; r < rows; ++r) {
      if (r + kAhead < rows) tables[kOneGroup ? b.group[0] : b.group[r + kAhead]].prefetch(b.hash[r + kAhead]);
      ids[r] = tables[kOneGroup ? b.group[0] : b.group[r]].intern(b.hash[r], b.key(r));
      refused += ids[r] == KeyTable::kMissing;
    }
    if (refused != 0) count_refused(b, ids, kOneGroup);
    std::uint32_t dropped = refused;
    if (dedup_ != nullptr && !kOneGroup) dropped += drop_duplicates(b, ids);  // a local batch was decided as parsed
    for (std::size_t g = 0; g < group_views_.size(); ++g) {
      if (kOneGroup && g != b.group[0]) continue;
      const BatchRows batch_rows{b, ids, wms, 0, rows, kOneGroup ? -1 : static_cast<int>(g)};
      dropped += apply_group(g, batch_rows);
    }
    for (std::size_t v = 0; v < views_.size(); ++v) publish_newest(v, views_[v]->newest_start());
    return dropped;
  }
  // One row on the per-row path (has_row_path(group)).
  // Its dedup was decided as it was parsed.
  // Returns whether any view took it.
  bool apply_row(std::size_t group, std::uint64_t hash, std::string_view key, std::int64_t ts, const Cell* columns,
                 std::int64_t watermark) {
    const std::uint32_t key_id = keys_[group].intern(hash, key);
    if (key_id == KeyTable::kMissing) {
      for (const std::size_t v : group_views_[group]) kernels::add_relaxed(key_limit_[v], 1);
      return false;
    }
    bool taken = false;
    for (std::size_t i = 0; i < direct_[group].size(); ++i) {
      TumblingView& view = *direct_[group][i];
      const std::size_t v = group_views_[group][i];
      if (view.add(key_id, ts, columns, watermark)) taken = true;
      else count_late(v, 1);
      publish_newest(v, view.newest_start());
    }
    return taken;
  }

  // Windows of one key of view v overlapping [from, to).
  void collect(int view, std::uint64_t hash, std::string_view key, std::int64_t from, std::int64_t to,
               std::int64_t watermark, std::vector<ViewRow>& out) const;
  // Top k keys of view v's window at window_start among key ids [begin, end)
  // merged into out (kept sorted, at most k rows). Returns the next id to
  // look at, or 0 when the view's keys are done.
  std::uint32_t top_slice(int view, std::int64_t window_start, std::uint32_t k, int by, std::int64_t watermark,
                          std::uint32_t begin, std::uint32_t budget, std::vector<ViewRow>& out) const;

  // Retention in slices: each call visits at most `budget` key ids of one
  // group (whole chunks of old windows go at the start of a sweep); keys
  // with no window left in any view of their group are forgotten. At the
  // end of a group's sweep, when fewer than a quarter of its ids are alive,
  // its keys are renumbered and its arrays shrunk (memory goes back), if
  // `may_renumber` (no VIEW_TOP is walking key ids in slices).
  void retention_step(std::int64_t watermark, std::int64_t retention_ms, std::uint32_t budget, bool may_renumber);

  // The state for a checkpoint (key tables, views, dedup tables), and
  // back into a ViewSet of the same configuration; false when malformed.
  void save(kernels::ByteWriter& out) const;
  bool load(kernels::ByteReader& in);

  std::uint64_t window_count() const noexcept;
  std::uint64_t key_count() const noexcept;
  std::uint64_t memory_bytes() const noexcept;
  // One view's: the keys of its key group, its windows, and their memory
  // (the group's key table is in memory_bytes() only: views share it).
  struct ViewFigures {
    std::uint64_t keys = 0, windows = 0, bytes = 0;
  };
  ViewFigures view_figures(std::size_t view) const noexcept;
  // The state budget for the keys to come: each key table may add about
  // `keys` more (split evenly over the groups) before the next call.
  void set_key_allowance(std::uint64_t keys) noexcept;

 private:
  void count_late(std::size_t view, std::uint64_t n) noexcept { kernels::add_relaxed(late_[view], n); }
  // The views of group g fold its rows; returns the rows late in every one.
  std::uint32_t apply_group(std::size_t g, BatchRows rows);
  // Out of line: a batch with refused keys is the rare case.
  void count_refused(const RouteBatch& b, const std::uint32_t* ids, bool one_group) noexcept;
  // Marks the rows whose event id this shard has seen (ids[r] = kMissing).
  // Returns the rows it dropped (ids[r] set to kMissing) that a key limit had not.
  std::uint32_t drop_duplicates(const RouteBatch& b, std::uint32_t* ids);
  // Stored only when it moves: a plain compare per row (loading the atomic
  // and an out-of-line call per row cost 37 instructions an event).
  void publish_newest(std::size_t view, std::int64_t newest) noexcept {
    if (newest == newest_seen_[view]) return;
    newest_seen_[view] = newest;
    newest_window_[view].store(newest, std::memory_order_relaxed);
  }

  const Config& config_;
  std::vector<KeyTable> keys_;  // by key group
  std::vector<std::unique_ptr<View>> views_;
  std::vector<std::vector<std::size_t>> group_views_;  // by key group: the views keyed by it
  std::vector<std::vector<TumblingView*>> direct_;     // by key group: its views' row stores if all have one, else empty
  std::atomic<std::uint64_t>* late_;
  std::atomic<std::uint64_t>* key_limit_;
  std::atomic<std::int64_t>* newest_window_;
  std::vector<std::int64_t> newest_seen_;
  std::unique_ptr<DedupTable> dedup_;  // nullptr: no dedup
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> beyond_horizon_{0};
  // Retention sweep: the group and key id it continues from.
  std::size_t sweep_group_ = 0;
  std::uint32_t sweep_key_ = 0;
};

}  // namespace spate::engine
