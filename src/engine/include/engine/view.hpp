// A materialized view on one shard, behind the interface the shard loop
// applies batches through: per-key state for one key group, folded a batch
// at a time, with typed results a query merges across shards. A new kind of
// view (session, distinct) is a new implementation and a line in
// view_registry.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "kernels/byte_io.hpp"
#include "engine/aggregate.hpp"
#include "engine/key_table.hpp"
#include "engine/route_batch.hpp"

namespace spate::engine {

// One window of one key as a query sees it: each aggregate's state, in the
// view's order.
struct ViewRow {
  std::string key;
  std::int64_t window_start = 0;
  std::int64_t window_end = 0;
  bool closed = false;
  std::vector<AggState> aggs;
  AggValue value(std::size_t aggregate) const noexcept { return aggs[aggregate].value(); }
};

// Merges rows of the same key and window (from different parts of the
// state) into one, in place; the rest keep their order. A merged window is
// closed only when every part says so.
void merge_rows(std::vector<ViewRow>& rows);

// VIEW_TOP's order: by aggregate `by`, highest first, ties by key. Keeps the
// best k of rows (each shard's slices, then the server's merge of shards).
void keep_top(std::vector<ViewRow>& rows, std::uint32_t k, int by);

// The rows of a batch a view folds: the key id of each row (interned by the
// shard; KeyTable::kMissing for a row whose new key the state budget
// refused, which the view skips) and the watermark as it stood before each
// row.
struct BatchRows {
  const RouteBatch& batch;
  const std::uint32_t* key_ids;
  const std::int64_t* watermarks;
  std::uint32_t begin;
  std::uint32_t end;
  int group;  // fold only rows of this key group; -1 when every row is of it
  std::uint64_t* late_rows = nullptr;  // when set, the view sets bit r % 64 of word r / 64 of each late row r
};

class TumblingView;

class View {
 public:
  virtual ~View() = default;
  const ViewConfig& config() const noexcept { return config_; }

  // Folds the rows; returns how many were late (their window closed before
  // them: refused, not merged).
  virtual std::uint64_t apply(const BatchRows& rows) = 0;

  // Windows of one key overlapping [from, to), oldest first.
  virtual void collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
                       std::int64_t watermark, std::vector<ViewRow>& out) const = 0;
  // The best k keys among ids [begin, end) of the window starting at
  // window_start by aggregate `by`, appended to out (best first).
  virtual void top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys, std::int64_t watermark,
                   std::uint32_t begin, std::uint32_t end, std::vector<ViewRow>& out) const = 0;
  void top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys, std::int64_t watermark,
           std::vector<ViewRow>& out) const {
    top(window_start, k, by, keys, watermark, 0, UINT32_MAX, out);
  }
  // Drops state older than retention_ms (event time) behind the watermark:
  // the shared part in one go, per-key state for ids [begin, end), so a
  // sweep over a large view can be spread over many loop passes.
  virtual void evict_chunks(std::int64_t watermark, std::int64_t retention_ms) = 0;
  virtual void evict_keys(std::int64_t watermark, std::int64_t retention_ms, std::uint32_t begin,
                          std::uint32_t end) = 0;
  void evict(std::int64_t watermark, std::int64_t retention_ms) {
    evict_chunks(watermark, retention_ms);
    evict_keys(watermark, retention_ms, 0, UINT32_MAX);
  }
  // True when key_id holds no state any more; reset_key then frees its id.
  virtual bool key_idle(std::uint32_t key_id) const noexcept = 0;
  virtual void reset_key(std::uint32_t key_id) noexcept = 0;
  // The key table renumbered its keys (KeyTable::compact_ids): per-key
  // state moves from old id to remap[old] (dropped where kMissing), and
  // per-key arrays shrink to `keys` ids.
  virtual void remap_keys(const std::vector<std::uint32_t>& remap, std::uint32_t keys) = 0;

  // The state, for a checkpoint, and back: load() gets what save() wrote
  // for a view of the same configuration; false when it is malformed.
  virtual void save(kernels::ByteWriter& out) const = 0;
  virtual bool load(kernels::ByteReader& in) = 0;

  virtual std::uint64_t window_count() const noexcept = 0;
  // Bytes of state the view holds (for max_state_bytes and STATS).
  virtual std::uint64_t memory_bytes() const noexcept = 0;
  // The start of the newest window any row went into (INT64_MIN: none yet).
  virtual std::int64_t newest_start() const noexcept = 0;

  // The store a row is folded into, when it is a TumblingView (tumbling
  // windows, a hopping view's panes): a group of few keys then folds each
  // row as it is parsed, with no per-row virtual call (ViewSet::apply_row).
  virtual TumblingView* row_store() noexcept { return nullptr; }

 protected:
  explicit View(const ViewConfig& config) : config_(config) {}
  ViewConfig config_;
};


}  // namespace spate::engine
