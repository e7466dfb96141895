// A shard's event time: the watermark of each of its own inputs, the stamp
// each event's rows carry and are judged against (its inputs' watermark
// before it, bounded by how far the other active shards' inputs have come),
// what the other shards' rows said in band of theirs, and the shard's
// watermark that says which windows have closed. docs/engine.md, "Event
// time", tells the rules.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "kernels/byte_io.hpp"
#include "kernels/rfc3339.hpp"
#include "engine/input_clock.hpp"
#include "engine/shard_mesh.hpp"

namespace spate::engine {

class EventTime {
 public:
  static constexpr std::int64_t kNone = InputClock::kNone;  // a bound that holds nothing back

  EventTime(std::uint32_t self, ShardMesh& mesh);

  // Inputs. An open input holds event time back (and makes this shard a
  // channel others wait for) until it closes or idles.
  std::uint32_t open_input();
  void close_input(std::uint32_t input) noexcept { inputs_.close(input); }
  bool input_active(std::uint32_t input) const noexcept { return inputs_.is_active(input); }
  // The input has data it was not allowed to deliver yet: not silent.
  void held_back(std::uint32_t input) noexcept { inputs_.touch(input); }
  // Records an event of `input` and returns the stamp its rows carry and
  // are judged against: the watermark as it stood before the event, this
  // shard's inputs' and the other active shards' alike, never decreasing
  // (INT64_MIN: no claim yet). It is kept in the log with the event, so a
  // replay judges the event's rows as the live run did.
  std::int64_t stamp(std::uint32_t input, std::int64_t ts) noexcept {
    if (!active_local_) [[unlikely]] resume();
    const std::int64_t before = inputs_.observe(input, ts);
    if (before != kNone) {
      if (before > input_progress_) input_progress_ = before;
      const std::int64_t bound = before < others_ ? before : others_;
      if (bound > stamp_) stamp_ = bound;
    }
    return stamp_;
  }
  // A logged event replayed: its rows carry the stamp it was logged with,
  // and this shard's clocks move as the live run's did.
  std::int64_t replayed(std::uint32_t input, std::int64_t ts, std::int64_t logged) noexcept {
    if (!active_local_) set_active(true);
    inputs_.observe(input, logged);
    inputs_.saw(ts);
    if (logged > input_progress_) input_progress_ = logged;
    if (logged > stamp_) stamp_ = logged;
    return logged;
  }
  // Once a loop pass: says how far this shard's inputs have come, and
  // reads how far the other active shards' have (what stamps are bounded by).
  void exchange() noexcept {
    if (shards_ == 1) return;
    const std::int64_t w = inputs_.watermark();
    if (w != kNone && w > input_progress_) input_progress_ = w;
    if (input_progress_ != published_progress_) {
      published_progress_ = input_progress_;
      mesh_.publish_progress(self_, input_progress_);
    }
    others_ = others_progress();
  }
  // How far this shard's inputs have come, as a claim for rows not yet
  // parsed (INT64_MIN: none); sent to other shards with batches.
  std::int64_t progress() noexcept;
  // What this shard's own inputs allow while another shard's batch is
  // applied: `pending` (its rows not applied yet) or else its progress.
  std::int64_t self_bound(std::int64_t pending) noexcept;
  bool active() const noexcept { return mesh_.active(self_); }
  bool active_local() const noexcept { return active_local_; }

  // Channels: the other shards that send us rows.
  std::int64_t channel(std::uint32_t src) const noexcept { return channel_[src]; }
  void advance_channel(std::uint32_t src, std::int64_t wm) noexcept { channel_[src] = std::max(channel_[src], wm); }
  // The minimum over the channels whose rows may still come (active, or
  // with batches in their ring), leaving `except` out; kNone when none.
  std::int64_t channels_min(std::uint32_t except) const noexcept;
  // The same over every channel, cached for the per-row path: refreshed
  // after batches are applied and, in one load, when any shard turns
  // active or idle.
  std::int64_t channels_min_cached() noexcept {
    if (activity_->load(std::memory_order_acquire) != activity_seen_) recompute_channels();
    return channels_min_;
  }
  void recompute_channels() noexcept;

  // The watermark: advanced to `bound` (never backwards, never by kNone).
  std::int64_t watermark() const noexcept { return watermark_; }
  std::int64_t advance(std::int64_t bound) noexcept {
    if (bound != kNone && bound > watermark_) watermark_ = bound;
    return watermark_;
  }

  // At a clean stop every input leaves: this shard tells how far it saw
  // event time go (before any shard's final checkpoint), then its stamp
  // catches up to the furthest any shard saw, as when all inputs idle, so
  // that the checkpoint holds what a later input is judged against, the
  // same on every shard and for any number of shards.
  void publish_reach() noexcept { mesh_.publish_reach(self_, std::max({inputs_.newest(), stamp_, watermark_})); }
  void leave_all() noexcept { stamp_ = std::max({stamp_, inputs_.newest(), mesh_.max_reach()}); }

  // Maintenance: idles silent inputs (unless the loop `stalled`: then no
  // input was read and their clocks restart), updates this shard's
  // activity, and moves the watermark to what nothing holds back any more
  // (never past `pending`, its own rows not applied yet).
  void tick(std::int64_t now_ms, std::int64_t idle_ms, std::int64_t pending, bool stalled);
  std::uint32_t inputs_open() const noexcept { return inputs_.open_count(); }

  // For a checkpoint: the watermark, this shard's stamp and what each
  // channel said (the inputs are not kept: a restart opens new ones).
  void save(kernels::ByteWriter& out) const {
    out.put<std::int64_t>(watermark_);
    out.put<std::int64_t>(stamp_);
    out.put_vector(channel_);
  }
  // Each is an event time the parser accepts, or INT64_MIN (none yet):
  // what they are compared and summed with assumes it.
  bool load(kernels::ByteReader& in) {
    const auto valid = [](std::int64_t t) {
      return t == INT64_MIN || (t >= kernels::kRfc3339MinMs && t <= kernels::kRfc3339MaxMs);
    };
    watermark_ = in.get<std::int64_t>();
    stamp_ = in.get<std::int64_t>();
    std::vector<std::int64_t> channels;
    if (!in.get_vector(channels) || channels.size() != channel_.size() || !valid(watermark_) || !valid(stamp_) ||
        !std::all_of(channels.begin(), channels.end(), valid)) {
      return in.fail();
    }
    channel_ = std::move(channels);
    recompute_channels();
    return true;
  }
  std::uint32_t inputs_active() const noexcept { return inputs_.active_count(); }

 private:
  void set_active(bool active) noexcept;
  // The least progress of the other active shards (kNone: none is active).
  std::int64_t others_progress() const noexcept;
  // While no input of this shard is active it holds nothing back: its stamp
  // follows the other active shards' progress, or, when none is active,
  // catches up to the newest event time any shard saw.
  void catch_up() noexcept;
  // The first event after a silence: caught up, then active again.
  void resume() noexcept;

  const std::uint32_t self_;
  const std::uint32_t shards_;
  ShardMesh& mesh_;
  const std::atomic<std::uint64_t>* activity_;  // the mesh's activity epoch, loaded inline per row
  InputClock inputs_;
  std::int64_t stamp_ = INT64_MIN;
  std::int64_t input_progress_ = INT64_MIN;  // this shard's inputs' watermark, never decreasing
  std::int64_t published_progress_ = INT64_MIN;
  std::int64_t others_ = kNone;  // others_progress() as of the last exchange
  std::vector<std::int64_t> channel_;  // by source shard: its stamps, as its rows and batches said
  std::int64_t channels_min_;
  std::uint64_t activity_seen_ = UINT64_MAX;
  std::int64_t watermark_ = INT64_MIN;
  bool active_local_ = false;  // what this shard last told the mesh
};

}  // namespace spate::engine
