// The shard's apply stage: batches from its own router and from the other
// shards' rings folded into its views, each row judged against the stamp
// its event was given (the watermark as it stood before it); see shard.hpp.
#include "engine/shard.hpp"

#include <algorithm>

#include "kernels/log_histogram.hpp"
#include "engine/engine.hpp"

namespace spate::engine {

void Shard::apply_local(const RouteBatch& batch) { apply(batch, id_); }

// Queries are answered meanwhile; a PUBLISH waits (it would ingest in the
// middle of the line whose rows are being routed).
bool Shard::work_while_waiting() { return pass(kWaiting); }

void Shard::apply(const RouteBatch& b, std::uint32_t source_shard) {
  // Each row is judged against its stamp (event_time.hpp). The shard's
  // watermark, which closes windows, moves to the minimum of `base`
  // (everything but this batch's own channel) and the batch's channel.
  if (source_shard == id_) {  // a local batch: one key group
    // Rows of other groups still pending (older ones) bound how far the
    // shard's watermark moves.
    std::int64_t channel = INT64_MIN;
    apply_rows<true>(b, time_.channels_min_cached(), channel, router_.pending_min(b.group[0]));
  } else {
    std::int64_t channel = time_.channel(source_shard);
    const std::int64_t base =
        std::min(time_.channels_min(source_shard), time_.self_bound(router_.pending_min()));
    apply_rows<false>(b, base, channel, EventTime::kNone);
    time_.advance_channel(source_shard, std::max(channel, b.watermark));
  }
  ShardCounters::add(counters_.rows_handled, b.rows);
  if (b.rows == 0) return;
  // Timed from the batch's first read: its other rows count as long.
  const std::int64_t waited = io::monotonic_us() - b.received_us;
  counters_.receive_to_applied.record(static_cast<std::uint64_t>(std::max<std::int64_t>(waited, 0)), b.rows);
}

// The views fold the batch, each row judged against its stamp; the
// watermark moves to what the batch's channel and `base` allow (the rows'
// stamps never decrease, so the last row's is the channel's).
// kOneGroup (a local batch) makes the group a constant of the loops.
template <bool kOneGroup>
void Shard::apply_rows(const RouteBatch& b, std::int64_t base, std::int64_t& channel, std::int64_t advance_bound) {
  if (b.rows == 0) return;
  std::uint32_t ids[kMaxBatchRows];
  // Each row's age by the wall clock, in its histogram bucket.
  kernels::LogHistogram& ages = counters_.event_to_queryable;
  std::int64_t age_sum_ms = 0;
  for (std::uint32_t r = 0; r < b.rows; ++r) {
    const std::int64_t age_ms = std::max<std::int64_t>(wall_ms_ - b.ts[r], 0);
    ages.add_bucket(kernels::histogram_bucket(static_cast<std::uint64_t>(age_ms) * 1000));
    age_sum_ms += age_ms;
  }
  ages.add_sum(static_cast<double>(age_sum_ms) * 1000.0);
  channel = std::max(channel, b.wm[b.rows - 1]);
  time_.advance(std::min({base, channel, advance_bound}));
  if (const std::uint32_t dropped = views_.apply<kOneGroup>(b, ids, b.wm)) ShardCounters::add(counters_.rows_dropped, dropped);
}

// A row of a key group with few keys on this shard (event types, say):
// its key table and windows stay in the L1 cache, so the batch, which is
// there to prefetch, only costs the copy (4% of a 1-shard run with the
// default views). Rows of the group still in the local batch go first, so
// every window sees its rows in arrival order.
void Shard::apply_row(std::size_t g, std::uint64_t hash, std::string_view key, std::int64_t ts, const Cell* columns,
                      std::int64_t row_wm) {
  router_.flush_local(g);
  // Judged as a batch's row is: by its stamp, and the shard's watermark
  // moves no further than the other groups' pending rows allow.
  time_.advance(std::min({row_wm, time_.channels_min_cached(), router_.pending_min(g)}));
  if (!views_.apply_row(g, hash, key, ts, columns, row_wm)) ShardCounters::add(counters_.rows_dropped, 1);
  count_direct_row(ts);
}

// A row handled on the spot (applied, or dropped as a duplicate where it
// was parsed): rows_handled and the latency histograms count every row, so
// that rows_handled reaching events x groups means nothing is in flight.
void Shard::count_direct_row(std::int64_t ts) {
  ShardCounters::add(counters_.rows_handled, 1);
  // Its age in its bucket now; the ages' sum is added once a pass (read_clocks).
  const std::int64_t age_ms = std::max<std::int64_t>(wall_ms_ - ts, 0);
  counters_.event_to_queryable.add_bucket(kernels::histogram_bucket(static_cast<std::uint64_t>(age_ms) * 1000));
  direct_age_ms_ += age_ms;
  ++direct_rows_;
}

bool Shard::drain_rings() {
  bool any = false;
  for (std::uint32_t src = 0; src < shards_; ++src) {
    SpscRing<RouteBatch>* ring = in_rings_[src];
    if (ring == nullptr || ring_held(src)) continue;
    while (const RouteBatch* b = ring->front()) {
      if (b->barrier != 0) {
        barrier_seen_[src] = std::max(barrier_seen_[src], b->barrier);
        ring->pop();
        any = true;
        if (ring_held(src)) break;
        continue;
      }
      apply(*b, src);
      ShardCounters::add(counters_.routed_in, b->rows);
      ring->pop();
      any = true;
    }
  }
  if (any) time_.recompute_channels();  // stamps moved; a drained idle channel no longer counts
  if (any && engine_.publish_waiting()) engine_.notify_response();
  return any;
}

}  // namespace spate::engine
