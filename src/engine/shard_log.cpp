// The shard's log stage: every accepted event to the hot log, rejected
// lines to the dead-letter log, PUBLISH answers held until their block is
// durable, and the replay of the segments at start: in which order the
// shards replay them, and each replayed event's logged stamp
// (docs/storage.md).
#include "engine/shard.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <thread>

#include "io/file/log.hpp"
#include "kernels/assert.hpp"
#include "kernels/counter.hpp"
#include "kernels/json_escape.hpp"
#include "engine/engine.hpp"

namespace spate::engine {

void Shard::set_storage(std::string dir, storage::Recovery recovery) {
  log_dir_ = std::move(dir);
  recovery_ = std::move(recovery);
  // Checkpoints are numbered on from the newest file found.
  snap_epoch_ = engine_.checkpoint_requested();
  counters_.checkpoint_epoch.store(snap_epoch_, std::memory_order_relaxed);
  if (!recovery_.segments.empty()) {
    auto replay = std::make_unique<ReplaySource>(std::move(recovery_.segments), kPadding,
                                                 [this](std::int64_t sealed_ms) { return may_replay(sealed_ms); });
    replay_ = replay.get();
    counters_.replay_next_ms.store(replay->next_sealed_ms(), std::memory_order_relaxed);  // before any shard runs
    add_source(kReplaySource, std::move(replay));
  }
}

// The hot log and the dead-letter log, on the shard's own thread.
void Shard::open_logs() {
  const StorageConfig& s = config_.storage;
  storage::LogOptions o;
  o.dir = log_dir_;
  o.shard = id_;
  o.shards = shards_;
  for (std::size_t f = 0; f < parser_.field_count(); ++f) o.fields.emplace_back(parser_.field_name(f));
  o.durability = s.durability == "none"   ? storage::Durability::none
                 : s.durability == "sync" ? storage::Durability::sync
                                          : storage::Durability::group;
  o.commit_interval_ms = s.commit_interval_ms;
  o.commit_bytes = s.commit_bytes;
  o.block_bytes = s.block_bytes;
  o.segment_bytes = s.segment_bytes;
  o.segment_ms = s.segment_ms;
  o.codec = storage::codec_from_name(s.compression).value_or(storage::Codec::lz4);
  o.level = s.compression_level;
  o.first_sequence = recovery_.next_sequence;
  o.retention_ms = s.hot_retention_ms;
  o.high_water_percent = s.disk_high_water_percent;
  o.low_water_percent = s.disk_low_water_percent;
  if (s.dead_letters) {
    storage::LogOptions d = o;
    d.dir = log_dir_ + "/dead";
    d.fields = {"reason", "source", "line"};
    d.durability = storage::Durability::none;  // kept for inspection; nothing is acknowledged
    d.high_water_percent = 0;
    std::filesystem::create_directories(d.dir);
    d.first_sequence = storage::recover_directory(d.dir).next_sequence;
    dead_ = std::make_unique<storage::SegmentLog>(std::move(d), -1);
    // The reason and source columns hold JSON strings: quoted once here.
    for (std::size_t r = 0; r < kRejectReasons; ++r) {
      dead_reason_text_[r] = std::string("\"") + reject_name(static_cast<Reject>(r)) + '"';
    }
    for (std::size_t k = 0; k < source_kinds().size(); ++k) {
      dead_source_text_[k] = "\"" + std::string(source_kinds()[k]->name) + '"';
    }
  }
  raw_field_ = o.fields.size();
  if (s.keep_raw) o.fields.emplace_back(storage::kRawLineField);
  // Completions ring the loop's own wake-up eventfd, so a sleeping shard
  // answers a PUBLISH as soon as its fsync is done.
  log_ = std::make_unique<storage::SegmentLog>(std::move(o), poller_.wake_fd());
  parser_.capture_fields(true);
}

void Shard::reject(io::SourceKindId source, Reject reason, const char* line, std::size_t len) {
  reject(source, reason);
  if (!dead_ || !logging_) return;  // replayed lines were judged before
  const double rate = static_cast<double>(config_.storage.dead_letter_bytes_per_s);
  if (loop_ms_ != dead_refill_ms_) {
    dead_budget_ = std::min(rate, dead_budget_ + rate * static_cast<double>(loop_ms_ - dead_refill_ms_) / 1000.0);
    dead_refill_ms_ = loop_ms_;
  }
  if (static_cast<double>(len) > dead_budget_) {
    kernels::add_relaxed(dead_dropped_, 1);
    return;
  }
  dead_budget_ -= static_cast<double>(len);
  // The line's bytes exactly, escaped only where a JSON string needs it.
  dead_line_.assign(1, '"');
  kernels::append_json_escaped(dead_line_, {line, len});
  dead_line_ += '"';
  const std::string& reason_text = dead_reason_text_[static_cast<std::size_t>(reason)];
  const std::string& source_text = dead_source_text_[static_cast<std::size_t>(source)];
  const ParsedEvent::Text values[3] = {{reason_text.data(), reason_text.size()},
                                       {source_text.data(), source_text.size()},
                                       {dead_line_.data(), dead_line_.size()}};
  dead_->append(values, 0b111, 0, loop_ms_);
  dead_->end_chunk(loop_ms_);
}

bool Shard::poll_log(std::int64_t now_ms) {
  if (!log_) return false;
  bool any = log_->poll(now_ms);
  if (dead_) any |= dead_->poll(now_ms);
  // Tickets turn durable in order; a lost one is answered as soon as it is known.
  std::size_t done = 0;
  while (done < durable_waits_.size()) {
    QueryTask* task = durable_waits_[done];
    const auto state = log_->state(task->durable_ticket);
    if (state == storage::SegmentLog::TicketState::pending) break;
    if (state == storage::SegmentLog::TicketState::lost) task->durable_lost = true;
    respond(task);
    ++done;
  }
  if (done > 0) {
    durable_waits_.erase(durable_waits_.begin(), durable_waits_.begin() + static_cast<std::ptrdiff_t>(done));
    any = true;
  }
  std::int64_t now_us = 0;
  while (!unsynced_.empty()) {
    const Unsynced& u = unsynced_.front();
    const auto state = log_->state(u.ticket);
    if (state == storage::SegmentLog::TicketState::pending) break;
    if (state == storage::SegmentLog::TicketState::durable) {  // a lost block's events never are
      if (now_us == 0) now_us = io::monotonic_us();
      const std::int64_t waited = std::max<std::int64_t>(now_us - u.received_us, 0);
      counters_.receive_to_durable.record(static_cast<std::uint64_t>(waited), u.events);
    }
    unsynced_.pop_front();
  }
  return any;
}

// Start: the shard's segments go through the pipeline before any live
// input is read (a live event must not overtake its logged past in event
// time), and live inputs start only when every shard has replayed, since
// replayed rows cross to their owners like any others. Queries are
// answered meanwhile; PUBLISHes wait.
void Shard::replay() {
  bool reported = false;
  const std::int64_t started_ms = io::monotonic_ms();
  while (!engine_.stopping()) {
    const bool busy = pass(kReplaying);
    if (!reported && (replay_ == nullptr || replay_->finished())) {
      router_.flush_all();
      if (replay_ != nullptr) {
        for (const auto& [producer, sequence] : replay_->publish_sequences()) {
          replayed_[producer] = std::max(replayed_[producer], sequence);
        }
      }
      remember_sequences();
      if (replay_ != nullptr) {
        io::log_info("replay done", {{"shard", id_}, {"events", replay_->events()}, {"segment_bytes", replay_->bytes()},
                                     {"ms", io::monotonic_ms() - started_ms}});
      }
      reported = true;
      engine_.replay_finished();
    }
    if (reported && engine_.all_replayed()) return;
    if (busy) continue;
    // Rows of ours on their way: the next block waits only for them (a
    // sleep for each block's rows cost a replay 15%).
    if (router_.in_flight()) std::this_thread::yield();
    else ::usleep(100);
  }
}

// A replayed event's logged stamp: its line's number in the block handed
// (read_stamps), counted from the newlines since the line before.
std::int64_t Shard::replayed_stamp(const char* line, From from, std::int64_t ts) {
  for (const char* p = replay_at_; p < line; ++replay_line_) {
    p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(line - p)));
    if (p == nullptr) break;
    ++p;
  }
  replay_at_ = line;
  SPATE_ASSERT(replay_line_ < replay_stamp_count_, "one stamp a replayed line");
  return time_.replayed(from.input, ts, replay_stamps_[replay_line_]);
}

// Replay order: the block sealed first, whichever shard wrote it, goes
// first (ties to the lower shard number). The shard with the oldest next
// block always may go, so the replay never stalls. Before this shard says
// its next block is due, the rows of the block it replayed are applied
// wherever they went: so every shard sees the replayed rows in the order
// their blocks were sealed, as it saw them live (which copy of an event
// sent twice arrived first, for dedup, among others).
bool Shard::may_replay(std::int64_t sealed_ms) {
  if (counters_.replay_next_ms.load(std::memory_order_relaxed) != sealed_ms) {
    router_.flush_all();
    if (router_.in_flight()) return false;  // asked again next pass
    counters_.replay_next_ms.store(sealed_ms, std::memory_order_release);
    for (std::uint32_t s = 0; s < shards_; ++s) {
      if (s != id_) mesh_.wake(s);
    }
  }
  if (sealed_ms == INT64_MAX) return true;  // done, and said so
  for (std::uint32_t s = 0; s < shards_; ++s) {
    if (s == id_) continue;
    const std::int64_t other = engine_.shard(s).counters().replay_next_ms.load(std::memory_order_acquire);
    if (other < sealed_ms || (other == sealed_ms && s < id_)) return false;
  }
  return true;
}

// At stop: the last events made durable, the segments sealed, and every
// PUBLISH still waiting answered (refused if its block was not kept).
void Shard::close_logs() {
  if (dead_) dead_->close();
  if (!log_) return;
  log_->close();
  for (QueryTask* task : durable_waits_) {
    if (log_->state(task->durable_ticket) != storage::SegmentLog::TicketState::durable) {
      task->durable_lost = true;
    }
    respond(task);
  }
  durable_waits_.clear();
}

// When the logs have timed work next (seals, group syncs, rolls).
std::int64_t Shard::logs_deadline_ms() const noexcept {
  std::int64_t at = INT64_MAX;
  if (log_) at = std::min(at, log_->next_deadline_ms());
  if (dead_) at = std::min(at, dead_->next_deadline_ms());
  return at;
}

}  // namespace spate::engine
