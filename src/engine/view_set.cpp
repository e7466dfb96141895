// A shard's views and key tables; see view_set.hpp.
#include "engine/view_set.hpp"

#include <algorithm>
#include <bit>

#include "kernels/hash.hpp"
#include "engine/tumbling_window.hpp"
#include "engine/view_registry.hpp"

namespace spate::engine {

namespace {
// Below this many key ids the arrays are small enough to keep.
constexpr std::uint32_t kRenumberMinIds = 65536;

// Hands freed pages back to the system now instead of after jemalloc's
// decay (and purges the huge pages it would otherwise keep whole). Weak:
// a program linked without jemalloc has no mallctl and skips it.
extern "C" int mallctl(const char*, void*, std::size_t*, void*, std::size_t) __attribute__((weak));
void purge_freed_memory() {
  if (mallctl != nullptr) mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: every arena
}
}  // namespace

ViewSet::ViewSet(const Config& config, std::uint32_t shards, std::atomic<std::uint64_t>* late,
                 std::atomic<std::uint64_t>* key_limit, std::atomic<std::int64_t>* newest_window)
    : config_(config), keys_(config.key_groups.size()), late_(late), key_limit_(key_limit), newest_window_(newest_window) {
  for (const auto& v : config.views) views_.push_back(make_view(v, config.allowed_lateness_ms));
  newest_seen_.assign(views_.size(), INT64_MIN);
  for (const auto& group : config.key_groups) {
    auto& views = group_views_.emplace_back();
    auto& direct = direct_.emplace_back();
    for (const int v : group.views) {
      views.push_back(static_cast<std::size_t>(v));
      direct.push_back(views_[static_cast<std::size_t>(v)]->row_store());
    }
    if (std::find(direct.begin(), direct.end(), nullptr) != direct.end()) direct.clear();
    // A view's max_keys is over all shards; keys spread evenly by hash, so
    // each shard holds its share (rounded up). A group keeps the smallest.
    std::uint64_t max_keys = 0;
    for (const int v : group.views) {
      const std::uint64_t m = config.views[static_cast<std::size_t>(v)].max_keys;
      if (m != 0 && (max_keys == 0 || m < max_keys)) max_keys = m;
    }
    if (max_keys != 0) keys_[group_views_.size() - 1].set_max_keys((max_keys + shards - 1) / shards);
  }
  if (config.dedup.enabled && !config.id_field.empty()) {
    dedup_ = std::make_unique<DedupTable>(DedupTable::Options{config.dedup.effective_horizon_ms, config.dedup.max_bytes});
  }
}

// Group prefetching: every decider row's bucket is asked for a group of
// rows ahead of its check, so the misses of a table far larger than the
// caches overlap instead of waiting one by one.
std::uint32_t ViewSet::drop_duplicates(const RouteBatch& b, std::uint32_t* ids) {
  constexpr std::uint32_t kAhead = 16;
  const std::uint32_t rows = b.rows;
  const DedupRole* role = b.dedup;
  for (std::uint32_t r = 0; r < std::min(rows, kAhead); ++r) {
    if (role[r] == DedupRole::primary || role[r] == DedupRole::secondary) dedup_->prefetch(b.id[r]);
  }
  bool duplicate = false;  // the verdict of the last decider row
  std::uint32_t dropped = 0;
  for (std::uint32_t r = 0; r < rows; ++r) {
    const std::uint32_t ahead = r + kAhead;
    if (ahead < rows && (role[ahead] == DedupRole::primary || role[ahead] == DedupRole::secondary)) {
      dedup_->prefetch(b.id[ahead]);
    }
    switch (role[r]) {
      case DedupRole::none: continue;
      case DedupRole::follower: break;
      case DedupRole::primary:
      case DedupRole::secondary: {
        // A row whose key the state budget refused still has its id
        // remembered: its event's rows elsewhere were applied.
        const DedupTable::Verdict v = dedup_->check(b.id[r], b.ts[r], b.wm[r]);
        duplicate = v == DedupTable::Verdict::duplicate;
        if (role[r] == DedupRole::primary && v != DedupTable::Verdict::first) {
          kernels::add_relaxed(duplicate ? duplicates_ : beyond_horizon_, 1);
        }
        break;
      }
    }
    if (duplicate && ids[r] != KeyTable::kMissing) {
      ids[r] = KeyTable::kMissing;
      ++dropped;
    }
  }
  return dropped;
}

std::uint32_t ViewSet::apply_group(std::size_t g, BatchRows rows) {
  const std::vector<std::size_t>& views = group_views_[g];
  if (views.size() == 1) {
    const std::uint64_t late = views_[views[0]]->apply(rows);
    count_late(views[0], late);
    return static_cast<std::uint32_t>(late);
  }
  // Several views: a row none of them took is late in each. Its bit is
  // kept while every view so far found it late (the bits are asked for
  // only while some row may be).
  constexpr std::size_t kWords = kMaxBatchRows / 64;
  std::uint64_t all[kWords];
  std::uint64_t one[kWords];
  const std::size_t words = (rows.end + 63) / 64;
  bool some = true;
  for (std::size_t i = 0; i < views.size(); ++i) {
    rows.late_rows = nullptr;
    if (some) {
      std::fill_n(i == 0 ? all : one, words, 0);
      rows.late_rows = i == 0 ? all : one;
    }
    const std::uint64_t late = views_[views[i]]->apply(rows);
    count_late(views[i], late);
    if (!some) continue;
    some = late != 0;
    if (i > 0) {
      for (std::size_t w = 0; w < words; ++w) all[w] &= one[w];
    }
  }
  if (!some) return 0;
  std::uint32_t n = 0;
  for (std::size_t w = 0; w < words; ++w) n += static_cast<std::uint32_t>(std::popcount(all[w]));
  return n;
}

void ViewSet::expire_ids(std::int64_t watermark) {
  if (dedup_ != nullptr) dedup_->sweep(watermark, 16384);  // 1 MiB of buckets a tick
}

ViewSet::DedupTotals ViewSet::dedup_totals(std::int64_t watermark) const noexcept {
  if (dedup_ == nullptr) return {};
  return {dedup_->evicted(), dedup_->expired(), dedup_->ids(), dedup_->memory_bytes(),
          dedup_->horizon_covered_ms(watermark)};
}

void ViewSet::collect(int view, std::uint64_t hash, std::string_view key, std::int64_t from, std::int64_t to,
                      std::int64_t watermark, std::vector<ViewRow>& out) const {
  const auto v = static_cast<std::size_t>(view);
  const KeyTable& keys = keys_[static_cast<std::size_t>(config_.views[v].key_group)];
  const std::uint32_t id = keys.find(hash, key);
  if (id != KeyTable::kMissing) views_[v]->collect(id, key, from, to, watermark, out);
}

std::uint32_t ViewSet::top_slice(int view, std::int64_t window_start, std::uint32_t k, int by,
                                 std::int64_t watermark, std::uint32_t begin, std::uint32_t budget,
                                 std::vector<ViewRow>& out) const {
  const auto v = static_cast<std::size_t>(view);
  const KeyTable& keys = keys_[static_cast<std::size_t>(config_.views[v].key_group)];
  const std::uint32_t limit = keys.id_limit();
  const std::uint32_t end = limit - begin <= budget ? limit : begin + budget;
  views_[v]->top(window_start, k, by, keys, watermark, begin, end, out);
  keep_top(out, k, by);  // this slice's best merged with the earlier slices'
  return end == limit ? 0 : end;
}

void ViewSet::retention_step(std::int64_t watermark, std::int64_t retention_ms, std::uint32_t budget,
                             bool may_renumber) {
  if (watermark == INT64_MIN || keys_.empty()) return;
  const std::size_t g = sweep_group_;
  KeyTable& keys = keys_[g];
  const auto& views = group_views_[g];
  if (sweep_key_ == 0) {
    for (const std::size_t v : views) views_[v]->evict_chunks(watermark, retention_ms);
  }
  const std::uint32_t limit = keys.id_limit();
  const std::uint32_t end = limit - sweep_key_ <= budget ? limit : sweep_key_ + budget;
  for (const std::size_t v : views) views_[v]->evict_keys(watermark, retention_ms, sweep_key_, end);
  for (std::uint32_t id = sweep_key_; id < end; ++id) {
    if (!keys.alive(id)) continue;
    const bool idle = std::all_of(views.begin(), views.end(), [&](std::size_t v) { return views_[v]->key_idle(id); });
    if (!idle) continue;
    keys.erase(id);
    for (const std::size_t v : views) views_[v]->reset_key(id);
  }
  sweep_key_ = end;
  if (end == limit && may_renumber && limit >= kRenumberMinIds && keys.size() < limit / 4) {
    // One pass over the group's ids (tens of ms for a million): rare, as
    // it takes three quarters of the ids to have gone since the last one.
    const std::vector<std::uint32_t> remap = keys.compact_ids();
    for (const std::size_t v : views) views_[v]->remap_keys(remap, keys.size());
    purge_freed_memory();
  }
  if (end == limit) {  // this group is done: the next one, from its first key
    sweep_key_ = 0;
    sweep_group_ = (g + 1) % keys_.size();
  }
}

void ViewSet::count_refused(const RouteBatch& b, const std::uint32_t* ids, bool one_group) noexcept {
  for (std::uint32_t r = 0; r < b.rows; ++r) {
    if (ids[r] != KeyTable::kMissing) continue;
    for (const std::size_t v : group_views_[one_group ? b.group[0] : b.group[r]]) kernels::add_relaxed(key_limit_[v], 1);
  }
}

std::uint64_t ViewSet::memory_bytes() const noexcept {
  std::uint64_t n = 0;
  for (const auto& k : keys_) n += k.memory_bytes();
  for (const auto& v : views_) n += v->memory_bytes();
  return n;
}

void ViewSet::set_key_allowance(std::uint64_t keys) noexcept {
  if (keys_.empty()) return;
  for (auto& k : keys_) k.set_allowance(keys / keys_.size());
}

ViewSet::ViewFigures ViewSet::view_figures(std::size_t view) const noexcept {
  const auto group = static_cast<std::size_t>(config_.views[view].key_group);
  return {keys_[group].size(), views_[view]->window_count(), views_[view]->memory_bytes()};
}

std::uint64_t ViewSet::window_count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& v : views_) n += v->window_count();
  return n;
}

std::uint64_t ViewSet::key_count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& k : keys_) n += k.size();
  return n;
}

void ViewSet::save(kernels::ByteWriter& out) const {
  for (const KeyTable& keys : keys_) keys.save(out);
  for (const auto& view : views_) view->save(out);
  if (dedup_ != nullptr) dedup_->save(out);
}

bool ViewSet::load(kernels::ByteReader& in) {
  for (KeyTable& keys : keys_) {
    if (!keys.load(in)) return false;
  }
  for (std::size_t v = 0; v < views_.size(); ++v) {
    View& view = *views_[v];
    if (!view.load(in)) return false;
    // Per-key state only for keys the group's table holds: an erased key's
    // id goes to the next new key, and retention walks only the table's ids
    // (an erased key's bytes may be gone: VIEW_TOP could not name it).
    const KeyTable& keys = keys_[static_cast<std::size_t>(config_.views[v].key_group)];
    for (std::uint32_t id = 0; id < keys.id_limit(); ++id) {
      if (!keys.alive(id) && !view.key_idle(id)) return in.fail();
    }
    // Past the table's ids, evicting every window must find none.
    const std::uint64_t windows = view.window_count();
    view.evict_keys(INT64_MAX, 0, keys.id_limit(), UINT32_MAX);
    if (view.window_count() != windows) return in.fail();
  }
  if (dedup_ != nullptr && !dedup_->load(in)) return false;
  sweep_group_ = 0;
  sweep_key_ = 0;
  for (std::size_t v = 0; v < views_.size(); ++v) publish_newest(v, views_[v]->newest_start());
  return true;
}

}  // namespace spate::engine
