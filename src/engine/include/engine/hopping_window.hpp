// Hopping event-time windows per key for one view on one shard: windows of
// size_ms starting every slide_ms, so each row is in size / slide of them.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/key_table.hpp"
#include "engine/tumbling_window.hpp"
#include "engine/view.hpp"

namespace spate::engine {

// A row is folded once, into its pane: the slide_ms-long slice of time that
// every window holding the row covers whole (size_ms is a multiple of
// slide_ms). A window is the merge of its size / slide panes, made when it
// is read, so a row costs what a tumbling row costs however much the
// windows overlap. The panes are a TumblingView of slide_ms windows.
//
// Lateness: a row is late once the oldest window holding it has closed (at
// its pane's end + allowed lateness), and then it goes to none of them. A
// closed window thus never changes, and no window holds a row its
// neighbours refused. (Flink adds such a row to the windows still open;
// with shared panes that would change the closed ones too.)
class HoppingView final : public View {
 public:
  HoppingView(const ViewConfig& config, std::int64_t allowed_lateness_ms);

  std::uint64_t apply(const BatchRows& rows) override { return panes_.apply(rows); }

  // Each window overlapping [from, to) that holds a row, oldest first.
  void collect(std::uint32_t key_id, std::string_view key, std::int64_t from, std::int64_t to,
               std::int64_t watermark, std::vector<ViewRow>& out) const override;
  using View::top;
  void top(std::int64_t window_start, std::uint32_t k, int by, const KeyTable& keys, std::int64_t watermark,
           std::uint32_t begin, std::uint32_t end, std::vector<ViewRow>& out) const override;

  // A pane goes once the newest window holding it (size - slide after the
  // pane's own end) is past retention; a window that lost a pane so is not
  // shown any more.
  void evict_chunks(std::int64_t watermark, std::int64_t retention_ms) override;
  void evict_keys(std::int64_t watermark, std::int64_t retention_ms, std::uint32_t begin, std::uint32_t end) override {
    panes_.evict_keys(watermark, retention_ms + size_ms_ - slide_ms_, begin, end);
  }
  bool key_idle(std::uint32_t key_id) const noexcept override { return panes_.key_idle(key_id); }
  void reset_key(std::uint32_t key_id) noexcept override { panes_.reset_key(key_id); }
  void remap_keys(const std::vector<std::uint32_t>& remap, std::uint32_t keys) override {
    panes_.remap_keys(remap, keys);
  }

  void save(kernels::ByteWriter& out) const override;
  bool load(kernels::ByteReader& in) override;

  // The panes held: what the state costs (STATS windows.VIEW).
  std::uint64_t window_count() const noexcept override { return panes_.window_count(); }
  std::uint64_t memory_bytes() const noexcept override { return panes_.memory_bytes(); }
  // The newest pane's start, which is also the start of the newest window.
  std::int64_t newest_start() const noexcept override { return panes_.newest_start(); }
  TumblingView* row_store() noexcept override { return &panes_; }

 private:
  // Folds the panes (oldest first) into the windows overlapping [from, to).
  void windows_of(const std::vector<ViewRow>& panes, std::int64_t from, std::int64_t to, std::int64_t watermark,
                  std::vector<ViewRow>& out) const;

  std::int64_t size_ms_;
  std::int64_t slide_ms_;
  std::int64_t lateness_ms_;
  std::int64_t shown_from_ = INT64_MIN;  // windows starting before this may have lost panes to retention
  TumblingView panes_;
};

}  // namespace spate::engine
