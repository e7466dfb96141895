// The shard run loop; see shard.hpp.
#include "engine/shard.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <unistd.h>

#include "io/file/file_source.hpp"
#include "kernels/find_byte.hpp"
#include "kernels/hash.hpp"
#include "kernels/assert.hpp"
#include "engine/engine.hpp"

namespace spate::engine {
namespace {

// Key groups with at most this many keys on a shard skip the local batch.
constexpr std::uint32_t kDirectKeys = 64;
// What one source may read per loop pass (a file reads this much at once).
constexpr std::size_t kPollBudgetBytes = 1 << 20;
// One read of a connection: the shard's arena holds this beside a partial
// line of up to max_line_bytes.
constexpr std::size_t kConnectionReadBytes = 256 * 1024;
constexpr std::int64_t kStopDrainBudgetMs = 2000;

bool all_whitespace(const char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
  }
  return true;
}

}  // namespace

Shard::Shard(std::uint32_t id, Engine& engine)
    : id_(id),
      engine_(engine),
      mesh_(engine.mesh()),
      config_(engine.config()),
      shards_(engine.shard_count()),
      parser_(config_),
      parse_batch_(std::make_unique<OneEvent[]>(kParseBatch)),
      batch_keys_(std::make_unique_for_overwrite<char[]>(kParseBatch * kMaxKeyGroups * kMaxKeyBytes)),
      counters_(config_.views.size()),
      views_(config_, engine.shard_count(), counters_.late.get(), counters_.key_limit.get(),
             counters_.newest_window.get()),
      time_(id, mesh_),
      router_(id, mesh_, config_, time_, counters_, *this),
      requests_(4096),
      responses_(4096) {
  read_clocks();
  if (views_.dedups()) parser_.capture_first_field();  // the id, whose fingerprint rides with the rows
  auto publish = std::make_unique<PublishSource>();
  publish_ = publish.get();
  add_source(kPublishSource, std::move(publish));
  mesh_.set_poller(id_, &poller_);
  in_rings_.assign(shards_, nullptr);
  barrier_seen_.assign(shards_, 0);
  for (std::uint32_t other = 0; other < shards_; ++other) {
    if (other != id_) in_rings_[other] = &mesh_.ring(other, id_);
  }
}

Shard::~Shard() = default;

// Sources attach (open the inputs that exist from the start, a UDP socket,
// a file's stripes) in prepare(), or after the replay when there is one: an
// input that holds event time back while the segments replay would let
// every replayed late event into a closed window.
void Shard::add_source(const SourceKind& kind, std::unique_ptr<io::Source> source) {
  source->set_kind(source_kind_id(kind));
  if (source->finite()) files_done_.store(false, std::memory_order_release);  // files_done() waits for it
  busy_poll_ = busy_poll_ || source->busy_poll();
  sources_.push_back(std::move(source));
}

void Shard::add_listener(const SourceKind& kind, std::uint32_t listener, std::unique_ptr<io::Source> source) {
  if (listeners_.size() <= listener) listeners_.resize(listener + 1, nullptr);
  listeners_[listener] = source.get();
  add_source(kind, std::move(source));
}

io::ReadArena& Shard::connection_arena() {
  if (!connection_arena_) {
    connection_arena_ = std::make_unique<io::ReadArena>(kConnectionReadBytes, config_.max_line_bytes, kPadding);
  }
  return *connection_arena_;
}

std::function<bool(int, bool)> Shard::connection_hand_off(std::uint32_t listener) {
  return [this, listener](int fd, bool may_move) { return hand_off(fd, listener, may_move); };
}

std::function<bool(std::uint64_t)> Shard::stripe_gate() {
  return [this](std::uint64_t stripe) { return may_read_stripe(stripe); };
}

void Shard::wake() noexcept { poller_.wake(); }

void Shard::publish_watermark(std::int64_t watermark) noexcept {
  counters_.watermark_ms.store(watermark, std::memory_order_relaxed);
  mesh_.publish_watermark(id_, watermark);
}

// The memory of the batches this shard reads (its inbound rings' slots, its
// local batches) is allocated here, on the shard's own thread, so that on a
// NUMA machine the pages land on its node (first touch).
void Shard::prepare() {
  const std::uint32_t rows = config_.ring_batch_rows;
  const std::size_t ncolumns = config_.columns.size();
  router_.prepare();
  if (!engine_.replays()) attach_sources();
  if (!log_dir_.empty()) open_logs();
  for (SpscRing<RouteBatch>* ring : in_rings_) {
    if (ring != nullptr) ring->for_each_slot([rows, ncolumns](RouteBatch& b) { b.allocate(rows, ncolumns); });
  }
}

// ---------------------------------------------------------------- sources

std::uint32_t Shard::open_input(io::SourceKindId kind, bool connection) {
  const std::uint32_t input = time_.open_input();
  if (inputs_.size() <= input) inputs_.resize(input + 1);
  inputs_[input] = {kind, connection, false};
  return input;
}

void Shard::close_input(std::uint32_t input) {
  time_.close_input(input);
  if (inputs_[input].connection) counters_.connections.fetch_sub(1, std::memory_order_relaxed);
}

void Shard::lines(std::uint32_t input, const char* data, std::size_t size, std::uint64_t) {
  const io::SourceKindId kind = inputs_[input].kind;
  // Replayed events are in the log already; a PUBLISH batch ends its chunk
  // once its position is logged too (execute), in the same block.
  logging_ = log_ != nullptr && kind != replay_kind_;
  router_.set_received(loop_us_);
  if (!logging_) {
    replay_at_ = data;
    replay_line_ = 0;
    ingest_chunk(data, size, {kind, input});
    replay_stamps_ = nullptr;
    return;
  }
  std::atomic<std::uint64_t>& events = counters_.events_in[kind];
  const std::uint64_t before = events.load(std::memory_order_relaxed);
  ingest_chunk(data, size, {kind, input});
  if (kind != publish_kind_) log_->end_chunk(loop_ms_);
  logging_ = false;
  // Timed once durable (poll_log); one entry per block and loop pass.
  const std::uint64_t logged = events.load(std::memory_order_relaxed) - before;
  const std::uint64_t ticket = log_->ticket();
  if (logged == 0 || ticket == 0) return;  // nothing, or durability none: never durable
  if (!unsynced_.empty() && unsynced_.back().ticket == ticket && unsynced_.back().received_us == loop_us_) {
    unsynced_.back().events += logged;
  } else {
    unsynced_.push_back({ticket, loop_us_, logged});
  }
}

void Shard::read_clocks() noexcept {
  const std::int64_t now_us = io::monotonic_us();
  if (direct_rows_ != 0) {
    counters_.receive_to_applied.record(static_cast<std::uint64_t>(std::max<std::int64_t>(now_us - loop_us_, 0)),
                                        direct_rows_);
    counters_.event_to_queryable.add_sum(static_cast<double>(direct_age_ms_) * 1000.0);
    direct_rows_ = 0;
    direct_age_ms_ = 0;
  }
  loop_us_ = now_us;
  loop_ms_ = now_us / 1000;
  wall_ms_ = io::wall_ms();
  future_limit_ms_ = wall_ms_ + config_.max_future_ms;
  watermark_cap_ms_ = wall_ms_ + config_.max_watermark_ahead_ms;
  time_.exchange();
}

io::SourceTotals Shard::source_totals(io::SourceKindId kind) const noexcept {
  io::SourceTotals t;
  for (const auto& source : sources_) {
    if (source->kind() == kind) t.add(source->counters());
  }
  return t;
}

std::uint64_t Shard::rejected(io::SourceKindId kind, Reject reason) const noexcept {
  std::uint64_t n = counters_.errors[kind][static_cast<std::size_t>(reason)].load(
      std::memory_order_relaxed);
  if (reason == Reject::oversized_line) n += source_totals(kind).oversized_lines;
  return n;
}

std::uint64_t Shard::rejected() const noexcept {
  std::uint64_t n = 0;
  for (std::size_t k = 0; k < source_kinds().size(); ++k) {
    for (std::size_t r = 1; r < kRejectReasons; ++r) n += rejected(static_cast<io::SourceKindId>(k), static_cast<Reject>(r));
  }
  return n;
}

// ---------------------------------------------------------------- parsing

bool Shard::parse_line(const char* line, std::size_t len, const char* buffer_end, From from, bool escapes,
                       OneEvent& out) {
  const io::SourceKindId source = from.source;
  if (len > 0 && line[len - 1] == '\r') --len;
  if (len == 0) return false;
  if (len > config_.max_line_bytes) {
    reject(source, Reject::oversized_line);
    return false;
  }
  ParsedEvent& ev = out.ev;  // kept between lines: zeroing ~100 bytes per line showed in the profile
  const Reject r = parser_.parse(line, len, static_cast<std::size_t>(buffer_end - line), ev, escapes);
  if (r != Reject::none) {
    if (r == Reject::malformed_json && all_whitespace(line, len)) return false;
    if (r == Reject::missing_field || r == Reject::wrong_type) {  // for the field alarms (docs/alarms.md)
      for (std::uint64_t bits = parser_.absent_fields(); bits != 0; bits &= bits - 1) {
        ShardCounters::add(counters_.field_absent[std::countr_zero(bits)], 1);
      }
    }
    reject(source, r, line, len);
    return false;
  }
  if (ev.ts_ms > future_limit_ms_) {  // it would close every window before its time
    reject(source, Reject::future_timestamp, line, len);
    return false;
  }
  if (ev.ts_ms < config_.min_timestamp_ms) [[unlikely]] {  // a unit mistaken, most likely
    reject(source, Reject::before_min_timestamp, line, len);
    return false;
  }
  out.line = line;
  out.len = len;
  EventRows& rows = out.rows;
  rows.ts = ev.ts_ms;
  if (views_.dedups()) {
    // With dedup, the id's fingerprint is all that is kept of it; its
    // bucket is asked for now and read when the event is routed.
    const std::string_view id = ev.fields[0].view();  // the id is the schema's first field
    if (id.size() > kMaxKeyBytes) {
      reject(source, Reject::key_too_long, line, len);
      return false;
    }
    rows.id = kernels::fingerprint(id);
    views_.prefetch_id(rows.id);
  }
  return true;
}

void Shard::admit(OneEvent& event, From from) {
  ParsedEvent& ev = event.ev;
  ShardCounters::add(counters_.events_in[from.source], 1);
  // The watermark as it stood before this event travels with its rows and
  // is logged with it; a replayed event has its logged one.
  EventRows& rows = event.rows;
  const std::int64_t ts = ev.ts_ms <= watermark_cap_ms_ ? ev.ts_ms : ahead_of_clock(from, ev.ts_ms);
  rows.stamp = replay_stamps_ == nullptr ? time_.stamp(from.input, ts) : replayed_stamp(event.line, from, ts);
  if (logging_) {
    ev.fields[raw_field_] = {event.line, event.len};  // used only when keep_raw made it a column
    log_->append(ev.fields, ~ev.missing, ev.ts_ms, rows.stamp, loop_ms_);  // an optional field it lacked is stored absent
  }
  route_rows(rows, ev.columns, views_.dedups());
}

// An event dated past the cap goes into its own window, but its input's
// watermark moves only to the cap: one fast clock cannot make every other
// event late. The first per input is logged.
std::int64_t Shard::ahead_of_clock(From from, std::int64_t ts) {
  ShardCounters::add(counters_.events_ahead_of_clock, 1);
  InputInfo& input = inputs_[from.input];
  if (!input.ahead_logged) {
    input.ahead_logged = true;
    io::log_warn("event dated ahead of the wall clock: its input's watermark held at the clock + max_watermark_ahead_ms",
                 {{"shard", id_}, {"source", source_kinds()[from.source]->name}, {"input", from.input},
                  {"event_ms", ts}, {"cap_ms", watermark_cap_ms_}});
  }
  return watermark_cap_ms_;
}

void Shard::EventRows::locate(std::size_t g, std::string_view key, const Engine& engine) noexcept {
  keys[g] = key;
  hash[g] = kernels::hash_key(key);
  dst[g] = engine.owner_of(hash[g]);
}

// An event's rows to the owners of its keys. With dedup (docs/engine.md),
// on each shard the first of its key groups owned there decides for all of
// them there: here at once, elsewhere as the decider row of a run that
// travels in one batch.
void Shard::route_rows(const EventRows& e, const Cell* columns, bool dedup) {
  const std::string_view* keys = e.keys;
  const std::size_t groups = views_.groups();
  bool duplicate_here = false;
  if (dedup) {
    for (std::size_t g = 0; g < groups; ++g) {
      if (e.dst[g] != id_) continue;
      duplicate_here = views_.is_duplicate(e.id, e.ts, e.stamp, g == 0);
      break;
    }
  }
  for (std::size_t g = 0; g < groups; ++g) {
    const std::uint32_t dst = e.dst[g];
    const auto group = static_cast<std::uint8_t>(g);
    if (dst == id_) {
      if (duplicate_here) {
        ShardCounters::add(counters_.rows_dropped, 1);
        count_direct_row(e.ts);
        continue;
      }
      if (views_.keys_in(g) <= kDirectKeys && views_.has_row_path(g)) {
        apply_row(g, e.hash[g], keys[g], e.ts, columns, e.stamp);
      } else {
        router_.append(dst, group, e.hash[g], e.ts, e.stamp, keys[g], columns);
      }
      continue;
    }
    if (!dedup) {
      router_.append(dst, group, e.hash[g], e.ts, e.stamp, keys[g], columns);
      continue;
    }
    DedupRole role = g == 0 ? DedupRole::primary : DedupRole::secondary;
    for (std::size_t o = 0; o < g; ++o) {
      if (e.dst[o] == dst) role = DedupRole::follower;
    }
    if (role != DedupRole::follower) {  // the decider's run leaves in one batch
      std::uint32_t run = 1;
      std::size_t bytes = keys[g].size();
      for (std::size_t o = g + 1; o < groups; ++o) {
        if (e.dst[o] != dst) continue;
        ++run;
        bytes += keys[o].size();
      }
      if (run > 1) router_.reserve(dst, run, bytes);
    }
    router_.append(dst, group, e.hash[g], e.ts, e.stamp, keys[g], columns, role, e.id);
  }
}

void Shard::ingest_chunk(const char* data, std::size_t len, From from) {
  const char* end = data + len;
  const char* buffer_end = end + kPadding;
  const char* p = data;
  // The chunk's backslashes, found in one scan rather than one per line:
  // the parser checks the escapes of a line only when it holds one.
  const char* escape = kernels::find_byte(data, end, '\\');
  const std::size_t groups = views_.groups();
  // Without dedup nothing waits for a miss the batch would overlap, and
  // batches cost about 5% there (perf/RESULTS.md): one line at a time.
  const std::size_t batch = views_.dedups() ? kParseBatch : 1;
  while (p < end) {
    std::size_t n = 0;
    char* key_bytes = batch_keys_.get();
    while (p < end && n < batch) {
      const char* line_end = kernels::find_byte(p, end, '\n');
      OneEvent& event = parse_batch_[n];
      if (parse_line(p, static_cast<std::size_t>(line_end - p), buffer_end, from, escape < line_end, event)) {
        for (std::size_t g = 0; g < groups; ++g) {
          std::string_view key = event.ev.keys[g];
          if (batch > 1) {  // the parser's copy of a key lasts until its next line
            key = {static_cast<const char*>(std::memcpy(key_bytes, key.data(), key.size())), key.size()};
            key_bytes += key.size();
          }
          event.rows.locate(g, key, engine_);
        }
        ++n;
      }
      p = line_end + 1;
      if (escape < p && p < end) escape = kernels::find_byte(p, end, '\\');
    }
    for (std::size_t i = 0; i < n; ++i) admit(parse_batch_[i], from);
  }
}

// ---------------------------------------------------------------- inputs

// The kernel spreads connections over the SO_REUSEPORT listeners by a hash
// of the address pair, so two connections often land on one shard while the
// other idles. Each accepted connection goes to the shard with the fewest.
bool Shard::hand_off(int fd, std::uint32_t listener, bool may_move) {
  std::uint32_t target = id_;
  if (may_move) {
    std::uint64_t fewest = counters_.connections.load(std::memory_order_relaxed);
    for (std::uint32_t s = 0; s < shards_; ++s) {
      const std::uint64_t n = engine_.shard(s).counters().connections.load(std::memory_order_relaxed);
      if (n < fewest) {
        fewest = n;
        target = s;
      }
    }
  }
  if (target != id_) {
    if (HandedConnection* slot = mesh_.handoff(id_, target).claim()) {
      *slot = {fd, listener};
      engine_.shard(target).counters().connections.fetch_add(1, std::memory_order_relaxed);
      mesh_.handoff(id_, target).publish();
      mesh_.wake(target);
      return true;
    }
  }
  counters_.connections.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool Shard::adopt_handoffs() {
  bool any = false;
  for (std::uint32_t src = 0; src < shards_; ++src) {
    if (src == id_) continue;
    SpscRing<HandedConnection>& ring = mesh_.handoff(src, id_);
    while (HandedConnection* handed = ring.front()) {
      SPATE_ASSERT(handed->listener < listeners_.size() && listeners_[handed->listener] != nullptr,
                   "every shard listens on every listener");
      listeners_[handed->listener]->adopt(handed->fd, *this);
      ring.pop();
      any = true;
    }
  }
  return any;
}

// Event-time alignment: a shard that runs more than a few stripes ahead of
// the slowest reader waits for it. Unaligned, one shard's rows arrived a
// minute of event time ahead of the other's and every key's window flipped
// between the two, a 15% cost in a 2-shard profile.
bool Shard::may_read_stripe(std::uint64_t stripe) {
  if (stripe != counters_.file_stripe.load(std::memory_order_relaxed)) {
    counters_.file_stripe.store(stripe, std::memory_order_relaxed);
    for (std::uint32_t s = 0; s < shards_; ++s) {
      if (s != id_) mesh_.wake(s);  // a reader waiting on our progress may go on
    }
  }
  for (std::uint32_t s = 0; s < shards_; ++s) {
    const std::uint64_t other = engine_.shard(s).counters().file_stripe.load(std::memory_order_relaxed);
    if (other != UINT64_MAX && stripe > other + 4 * shards_) return false;
  }
  return true;
}

bool Shard::poll_sources() {
  bool any = false;
  for (auto& source : sources_) any |= source->poll(*this, kPollBudgetBytes);
  any |= poller_.wait(0, *this);
  if (!files_done_.load(std::memory_order_relaxed)) {
    const bool done = std::all_of(sources_.begin(), sources_.end(), [](const auto& source) {
      return !source->finite() || source->finished();
    });
    if (done) {
      router_.flush_all();
      counters_.file_stripe.store(UINT64_MAX, std::memory_order_relaxed);
      files_done_.store(true, std::memory_order_release);
      for (std::uint32_t s = 0; s < shards_; ++s) {
        if (s != id_) mesh_.wake(s);  // a reader waiting on our progress may go on
      }
    }
  }
  return any;
}

void Shard::drain_inputs_for_stop() {
  adopt_handoffs();
  // Each source has its own budget: one TCP client that keeps sending must
  // not use up the time the UDP socket's received datagrams need.
  for (auto& source : sources_) source->drain(*this, io::monotonic_ms() + kStopDrainBudgetMs);
  router_.flush_all();
}

// ---------------------------------------------------------------- loop

bool Shard::pass(std::uint32_t stages) {
  bool busy = false;
  if (stages & kClocks) read_clocks();
  if (stages & kLog) busy |= poll_log(loop_ms_);
  if (stages & kRings) busy |= drain_rings();
  if (stages & (kQueries | kIngest)) busy |= serve_requests((stages & kIngest) != 0);
  if (stages & kCheckpoint) {
    if (const std::uint64_t epoch = checkpoint_due()) checkpoint(epoch);
    poll_checkpoint(false);
  }
  if (stages & kHandoffs) busy |= adopt_handoffs();
  // Above the disk's high-water mark (as the log saw it just now) nothing is
  // read: TCP peers and files wait, UDP datagrams overflow the socket
  // (udp.drops), PUBLISH is refused.
  if ((stages & kSources) && !cannot_store()) busy |= poll_sources();
  if ((stages & kReplay) && replay_ != nullptr && !replay_->finished()) busy |= replay_->poll(*this, kPollBudgetBytes);
  if (stages & kFlush) router_.flush_if_due(busy);
  if (stages & kMaintenance) {
    const std::int64_t now = io::monotonic_ms();
    if (now >= next_maintenance_ms_) {
      maintenance(now);
      next_maintenance_ms_ = now + kMaintenanceEveryMs;
    }
  }
  return busy;
}

void Shard::attach_sources() {
  for (auto& source : sources_) source->attach(*this);
}

void Shard::run() {
  if (engine_.replays()) {
    replay();
    if (engine_.all_replayed()) attach_sources();  // not when the replay was refused (the daemon stops)
  }
  bool stopping = false;
  bool inputs_drained = false;
  while (true) {
    const bool busy = pass(stopping ? kStopping : kLive);
    const std::int64_t now = io::monotonic_ms();
    if (!stopping && engine_.stopping()) {
      // Stop, step 1: connections the kernel completed carry received data
      // too, so accept them here (no more handoffs) and close the listeners.
      stopping = true;
      for (auto& source : sources_) source->stop_accepting(*this);
      engine_.handoffs_closed();
      continue;
    }
    if (stopping && !inputs_drained && engine_.all_handoffs_closed()) {
      // Step 2: every handoff is in its ring; read what the kernel holds.
      inputs_drained = true;
      drain_inputs_for_stop();
      time_.publish_reach();
      engine_.input_finished();
      continue;
    }
    if (stopping && engine_.all_inputs_finished()) {
      // Every producer has flushed for the last time: one final drain.
      drain_rings();
      while (serve_requests()) {
      }
      close_logs();
      poll_checkpoint(true);
      time_.leave_all();
      final_checkpoint();
      publish_watermark(time_.watermark());
      return;
    }
    // A shard polling a NIC queue never sleeps: every pass polls the queue,
    // the rings, the query requests and the other sources' descriptors
    // (without waiting), and maintenance runs by the clock as always.
    if (busy || busy_poll_) continue;
    // Sleep until a socket, a ring or a query wakes us, or maintenance is due.
    poller_.sleeping(true);
    bool pending = requests_.depth() > 0;
    for (std::uint32_t src = 0; src < shards_; ++src) {
      if (src != id_) pending = pending || in_rings_[src]->depth() > 0 || mesh_.handoff(src, id_).depth() > 0;
    }
    if (!pending && !engine_.stopping() && cannot_store()) {
      ::usleep(1000);  // readable sockets would wake an epoll wait at once
    } else if (!pending && !engine_.stopping()) {
      std::int64_t wake_at = std::min(next_maintenance_ms_, logs_deadline_ms());
      for (const auto& source : sources_) wake_at = std::min(wake_at, source->next_deadline_ms());
      const auto timeout = static_cast<int>(std::clamp<std::int64_t>(wake_at - now, 1, kMaintenanceEveryMs));
      poller_.wait(timeout, *this);
    }
    poller_.sleeping(false);
  }
}

}  // namespace spate::engine
