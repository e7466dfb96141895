// One shard: a thread pinned to one core that polls its own sources and
// rings, parses, routes rows by key to their owning shards, folds rows into
// its views and answers its part of queries. Run to completion, no locks:
// everything here is touched by the shard's own thread only, except the
// counters (single writer, relaxed atomics) and the rings.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/file/file_source.hpp"
#include "io/file/poller.hpp"
#include "io/file/source.hpp"
#include "io/file/line_buffer.hpp"
#include "config/config.hpp"
#include "kernels/counter.hpp"
#include "kernels/log_histogram.hpp"
#include "engine/event_parser.hpp"
#include "engine/event_time.hpp"
#include "engine/key_table.hpp"
#include "engine/query_task.hpp"
#include "engine/route_batch.hpp"
#include "engine/publish_source.hpp"
#include "engine/replay_source.hpp"
#include "engine/source_kind.hpp"
#include "storage/checkpoint.hpp"
#include "storage/segment_file.hpp"
#include "storage/segment_log.hpp"
#include "engine/router.hpp"
#include "engine/spsc_ring.hpp"
#include "engine/view_set.hpp"

namespace spate::engine {

class Engine;

// The shard's maintenance tick (shard_maintenance.cpp).
inline constexpr std::int64_t kMaintenanceEveryMs = 100;

// Counters owned by one shard. Only the shard writes them (plain load+store,
// no locked instruction on the hot path); anyone may read them.
struct ShardCounters {
  explicit ShardCounters(std::size_t views)
      : late(std::make_unique<std::atomic<std::uint64_t>[]>(views)),
        key_limit(std::make_unique<std::atomic<std::uint64_t>[]>(views)),
        newest_window(std::make_unique<std::atomic<std::int64_t>[]>(views)),
        view_keys(std::make_unique<std::atomic<std::uint64_t>[]>(views)),
        view_windows(std::make_unique<std::atomic<std::uint64_t>[]>(views)),
        view_bytes(std::make_unique<std::atomic<std::uint64_t>[]>(views)) {
    for (std::size_t v = 0; v < views; ++v) newest_window[v].store(INT64_MIN);
  }
  std::atomic<std::uint64_t> events_in[kMaxSourceKinds] = {};  // by source kind (io::SourceKindId)
  // Lines rejected missing a schema field or holding it with the wrong
  // type, by field (EventParser::field_name order): the field alarms.
  std::atomic<std::uint64_t> field_absent[kMaxSchemaFields + 2] = {};
  std::atomic<std::uint64_t> errors[kMaxSourceKinds][kRejectReasons] = {};
  // Connections placed on this shard, for the accept balancing: written by
  // the shard that accepts (another one when it hands a connection over).
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> routed_out{0};
  std::atomic<std::uint64_t> routed_in{0};
  std::atomic<std::uint64_t> ring_full_waits{0};  // times a batch waited for room in a full ring (ring_slots)
  // Written by the query server, for the producers whose PUBLISHes go to this shard.
  std::atomic<std::uint64_t> publish_producers{0};          // gauge: producers whose last sequence is remembered
  std::atomic<std::uint64_t> publish_producers_expired{0};  // forgotten after publish_dedup_ttl_ms unseen
  // Rows dealt with (an event is one row per key group): events x groups
  // when nothing is in flight. Of those, the ones no view took: dropped as
  // duplicates, refused by a key limit, or late in every view of the group.
  std::atomic<std::uint64_t> rows_handled{0};
  std::atomic<std::uint64_t> rows_dropped{0};
  std::atomic<std::uint64_t> events_ahead_of_clock{0};  // dated past the wall clock + max_watermark_ahead_ms
  std::atomic<std::uint64_t> keys{0};
  std::atomic<std::uint64_t> windows{0};
  std::atomic<std::uint64_t> inputs_open{0};    // the shard's own inputs (connections, sockets, files, producers)
  std::atomic<std::uint64_t> inputs_active{0};  // of those, the ones holding event time back
  std::atomic<std::int64_t> watermark_ms{INT64_MIN};
  std::atomic<std::int64_t> tick_ms{0};  // the monotonic clock at the last maintenance tick: the loop is alive
  std::atomic<std::uint64_t> file_stripe{UINT64_MAX};  // the stripe being read; UINT64_MAX: none
  std::atomic<std::int64_t> replay_next_ms{INT64_MAX};  // when the next block to replay was sealed
  std::unique_ptr<std::atomic<std::uint64_t>[]> late;  // per view
  std::unique_ptr<std::atomic<std::uint64_t>[]> key_limit;  // per view: rows lost to the state budget
  std::atomic<std::uint64_t> state_bytes{0};  // gauge: key tables and views
  // Dedup by event id, published every maintenance tick.
  std::atomic<std::uint64_t> dedup_evicted{0};
  std::atomic<std::uint64_t> dedup_expired{0};
  std::atomic<std::uint64_t> dedup_ids{0};    // gauge
  std::atomic<std::uint64_t> dedup_bytes{0};  // gauge
  std::atomic<std::uint64_t> dedup_horizon_covered_ms{0};  // gauge: every id this far behind the watermark is held
  bool dedup_short = false;  // the shard's thread: the covered horizon was short at the last tick (logged once)
  std::unique_ptr<std::atomic<std::int64_t>[]> newest_window;  // per view: start of the newest window with rows
  // Gauges per view, every maintenance tick: keys, windows, windows' bytes.
  std::unique_ptr<std::atomic<std::uint64_t>[]> view_keys;
  std::unique_ptr<std::atomic<std::uint64_t>[]> view_windows;
  std::unique_ptr<std::atomic<std::uint64_t>[]> view_bytes;
  // Checkpoints (docs/storage.md): the newest epoch this shard is done
  // with (written, failed or given up) and the newest it wrote.
  std::atomic<std::uint64_t> checkpoint_epoch{0};
  std::atomic<std::uint64_t> checkpoint_written_epoch{0};
  std::atomic<std::uint64_t> checkpoints{0};          // written
  std::atomic<std::uint64_t> checkpoint_failures{0};  // not written (a write failed, its log block was lost)
  std::atomic<std::uint64_t> checkpoint_bytes{0};     // gauge: the last one's file size
  std::atomic<std::uint64_t> checkpoint_align_us{0};  // gauge, the last one: barriers sent until all arrived
  std::atomic<std::uint64_t> checkpoint_snapshot_us{0};  // the loop's pause to copy the state
  std::atomic<std::uint64_t> checkpoint_duration_us{0};  // barriers sent until the file was durable
  // Latency, in microseconds (docs/metrics.md, "Latency"): one sample per
  // row applied, or per event durable.
  kernels::LogHistogram receive_to_applied;  // read from its input until its view holds it
  kernels::LogHistogram event_to_queryable;  // its event time until its view holds it, by the wall clock
  kernels::LogHistogram receive_to_durable;  // read from its input until the hot log holds it durably

  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept { kernels::add_relaxed(c, n); }
  // Sums over source kinds (and reasons); kAllSources means every kind.
  std::uint64_t events(std::size_t source = kAllSources) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t s = 0; s < kMaxSourceKinds; ++s) {
      if (source == kAllSources || source == s) n += events_in[s].load(std::memory_order_acquire);
    }
    return n;
  }
  std::uint64_t rejected(std::size_t source = kAllSources) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t s = 0; s < kMaxSourceKinds; ++s) {
      if (source != kAllSources && source != s) continue;
      for (std::size_t r = 0; r < kRejectReasons; ++r) n += errors[s][r].load(std::memory_order_relaxed);
    }
    return n;
  }
};

class Shard final : public io::LineSink, private Router::Host {
 public:
  Shard(std::uint32_t id, Engine& engine);
  ~Shard() override;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Start-up (before run): the sources this shard polls, each of a kind
  // (source_kind.hpp), which starts them; the loop knows no kind.
  void add_source(const SourceKind& kind, std::unique_ptr<io::Source> source);
  // A source that accepts connections, as listener number `listener` (the
  // same on every shard: its place in config.sources): connections it
  // hands over with connection_hand_off(listener) go to another shard's
  // source of that number.
  void add_listener(const SourceKind& kind, std::uint32_t listener, std::unique_ptr<io::Source> source);
  // What sources are built with: the shard's poller; the buffer every
  // connection of the shard reads into, one at a time (an idle one keeps
  // only its partial line: docs/engine.md); the hand-off of an accepted
  // connection to the shard with the fewest; the gate a file stripe waits
  // at, so that no shard reads far ahead of the others in event time.
  io::Poller& poller() noexcept { return poller_; }
  io::ReadArena& connection_arena();
  std::function<bool(int, bool)> connection_hand_off(std::uint32_t listener);
  std::function<bool(std::uint64_t)> stripe_gate();
  // The hot log: this shard's segment directory as recovery left it (what
  // to replay, where the next segment's numbers start). Before prepare().
  void set_storage(std::string dir, storage::Recovery recovery);
  // The state of a checkpoint (before set_storage, before the threads
  // start). Throws std::runtime_error when its body is malformed.
  void restore(const storage::Checkpoint& checkpoint);

  // On the shard's thread, before any shard runs: allocates what it reads.
  void prepare();
  // The thread body: returns after Engine::stop() once everything received is applied.
  void run();

  std::uint32_t id() const noexcept { return id_; }
  ShardCounters& counters() noexcept { return counters_; }
  const ShardCounters& counters() const noexcept { return counters_; }
  SpscRing<QueryTask*>& requests() noexcept { return requests_; }
  const SpscRing<QueryTask*>& requests() const noexcept { return requests_; }
  SpscRing<QueryTask*>& responses() noexcept { return responses_; }
  bool files_done() const noexcept { return files_done_.load(std::memory_order_acquire); }
  // Counters of this shard's sources of one kind, summed; any thread.
  io::SourceTotals source_totals(io::SourceKindId kind) const noexcept;
  // Lines rejected from sources of one kind for one reason: by the parser,
  // and (oversized lines cut across reads) by the sources themselves.
  std::uint64_t rejected(io::SourceKindId kind, Reject reason) const noexcept;
  // Every line rejected, any source and reason.
  std::uint64_t rejected() const noexcept;

  // What query tasks read and do, on the shard's thread (query_task.hpp):
  // the views and the watermark they are judged at; a PUBLISH batch ingested.
  const ViewSet& views() const noexcept { return views_; }
  std::int64_t watermark() const noexcept { return time_.watermark(); }
  void publish(PublishTask& task);

  // Wakes the shard if it sleeps; call after pushing to one of its rings.
  void wake() noexcept;

  // True while one of this shard's own inputs holds event time back (open
  // and not idle); consumers ignore the watermark of an inactive producer.
  bool active() const noexcept { return time_.active(); }

  // The hot log's counters (nullptr when nothing is kept); any thread.
  const storage::LogCounters* log_counters() const noexcept { return log_ ? &log_->counters() : nullptr; }
  const storage::LogCounters* dead_letter_counters() const noexcept { return dead_ ? &dead_->counters() : nullptr; }
  std::uint64_t dead_letters_dropped() const noexcept { return dead_dropped_.load(std::memory_order_relaxed); }
  // Dedup by event id: whether it is on, and rows dropped and let through unchecked; any thread.
  bool dedups() const noexcept { return views_.dedups(); }
  std::uint64_t duplicates() const noexcept { return views_.duplicates(); }
  std::uint64_t beyond_horizon() const noexcept { return views_.beyond_horizon(); }
  // After replay: per PUBLISH producer, the last batch sequence the segments hold.
  const std::unordered_map<std::uint64_t, std::uint64_t>& replayed_sequences() const noexcept { return replayed_; }

 private:
  // io::LineSink: what the sources call.
  std::uint32_t open_input(io::SourceKindId kind, bool connection) override;
  void close_input(std::uint32_t input) override;
  void lines(std::uint32_t input, const char* data, std::size_t size, std::uint64_t position) override;
  void held_back(std::uint32_t input) override { time_.held_back(input); }
  void read_at(std::int64_t wall_ms) override { watermark_cap_ms_ = wall_ms + config_.max_watermark_ahead_ms; }
  void read_stamps(const std::int64_t* stamps, std::size_t count) override {
    replay_stamps_ = stamps;
    replay_stamp_count_ = count;
  }

  // Input.
  bool poll_sources();
  bool hand_off(int fd, std::uint32_t listener, bool may_move);
  bool adopt_handoffs();
  bool may_read_stripe(std::uint64_t stripe);
  bool may_replay(std::int64_t sealed_ms);
  void drain_inputs_for_stop();

  // Parsing and routing.
  // Where bytes came from: the source kind (for counters) and the input (for event time).
  struct From {
    io::SourceKindId source;
    std::uint32_t input;
  };
  // With dedup, a chunk's lines go in batches of up to kParseBatch: each
  // line parsed (a refused one counted and kept as a dead letter), and each
  // accepted event's id bucket prefetched; then each event in turn counted,
  // logged, stamped and routed. So the dedup check's miss overlaps the
  // parse of the lines after it, and what an event is judged against (the
  // input's watermark before it) is as it was line by line.
  void ingest_chunk(const char* data, std::size_t len, From from);  // data has kPadding readable
  std::int64_t replayed_stamp(const char* line, From from, std::int64_t ts);
  static constexpr std::size_t kParseBatch = 16;
  struct OneEvent;
  // escapes: the line may hold a backslash (else its escapes need no check).
  // False when the line is refused (or blank).
  bool parse_line(const char* line, std::size_t len, const char* buffer_end, From from, bool escapes, OneEvent& out);
  void admit(OneEvent& event, From from);
  void reject(io::SourceKindId source, Reject reason) noexcept {
    ShardCounters::add(counters_.errors[static_cast<std::size_t>(source)][static_cast<std::size_t>(reason)], 1);
  }
  // A rejected line, kept with its reason in the dead-letter segments.
  void reject(io::SourceKindId source, Reject reason, const char* line, std::size_t len);
  // Applying. Router::Host: what the router calls.
  void apply_local(const RouteBatch& batch) override;
  bool work_while_waiting() override;
  void apply(const RouteBatch& batch, std::uint32_t source_shard);
  template <bool kOneGroup>
  void apply_rows(const RouteBatch& batch, std::int64_t base, std::int64_t& channel, std::int64_t advance_bound);
  void apply_row(std::size_t group, std::uint64_t hash, std::string_view key, std::int64_t ts, const Cell* columns,
                 std::int64_t row_wm);
  void count_direct_row(std::int64_t ts);
  // One parsed event's rows, on their way to the owners of its keys.
  struct EventRows {
    std::int64_t ts = 0;
    std::int64_t stamp = 0;  // the input watermark before it
    kernels::Fingerprint id;
    std::string_view keys[kMaxKeyGroups];
    std::uint64_t hash[kMaxKeyGroups] = {};
    std::uint32_t dst[kMaxKeyGroups] = {};
    void locate(std::size_t g, std::string_view key, const Engine& engine) noexcept;
  };
  // columns: the parser's, for this event.
  void route_rows(const EventRows& e, const Cell* columns, bool dedup);
  struct OneEvent {
    ParsedEvent ev;
    EventRows rows;
    const char* line = nullptr;
    std::size_t len = 0;
  };

  bool drain_rings();
  // Checkpoints (shard_checkpoint.cpp). A ring that delivered the barrier
  // of an epoch this shard has not snapshotted yet waits: what follows the
  // barrier is not in that epoch.
  bool ring_held(std::uint32_t src) const noexcept;
  std::uint64_t checkpoint_due() const noexcept;
  // Sends the barriers, waits for every other shard's, copies the state.
  void checkpoint(std::uint64_t epoch);
  // Hands a copied state to the writer once the log holds everything
  // before it durably; notes a write that finished. At stop, waits.
  void poll_checkpoint(bool stopping);
  void maybe_request_checkpoint(std::int64_t now_ms);
  // Copies the state as the checkpoint of `epoch` at log `position`.
  void snapshot(std::uint64_t epoch, storage::LogPosition position, std::int64_t started_us);
  // At a clean stop, once every row is applied and the log closed.
  void final_checkpoint();
  // The loop's stages, each a bit; pass() runs those it is given, always
  // in this order, the data flow's: what the log finished, rows from other
  // shards applied, queries served, a checkpoint when due, then new input
  // (connections handed over, the sources, or the segments at start:
  // parsed, logged, stamped, routed), batches that are due sent, and the
  // bounded maintenance. The phases below name which stages each runs.
  enum Stage : std::uint32_t {
    kClocks = 1u << 0,       // read_clocks()
    kLog = 1u << 1,          // poll_log(): completions, seals and syncs due, durable PUBLISHes answered
    kRings = 1u << 2,        // drain_rings(): other shards' batches applied
    kQueries = 1u << 3,      // serve_requests(): query tasks, not PUBLISH
    kIngest = 1u << 4,       // ... and PUBLISH batches too
    kCheckpoint = 1u << 5,   // a checkpoint when due, and its writer's progress
    kHandoffs = 1u << 6,     // connections other shards accepted for us
    kSources = 1u << 7,      // poll_sources()
    kReplay = 1u << 8,       // the shard's segments, at start
    kFlush = 1u << 9,        // batches whose time has come leave
    kMaintenance = 1u << 10, // every kMaintenanceEveryMs: event time, retention, gauges
  };
  // Live; while stopping (no new input, no checkpoint); at start, replaying;
  // while a checkpoint waits for the other shards' barriers; while a ring
  // to another shard is full (the router waits: nothing may be routed).
  static constexpr std::uint32_t kLive = kClocks | kLog | kRings | kQueries | kIngest | kCheckpoint | kHandoffs |
                                         kSources | kFlush | kMaintenance;
  static constexpr std::uint32_t kStopping = kLive & ~(kCheckpoint | kHandoffs | kSources);
  static constexpr std::uint32_t kReplaying = kClocks | kRings | kQueries | kReplay | kFlush | kMaintenance;
  static constexpr std::uint32_t kAligning = kClocks | kLog | kRings | kQueries;
  static constexpr std::uint32_t kWaiting = kRings | kQueries;
  // One pass of the loop over `stages`; true when any did work.
  bool pass(std::uint32_t stages);
  // Replays the shard's segments, then waits until every shard has.
  void replay();
  void attach_sources();
  void open_logs();
  void close_logs();
  std::int64_t logs_deadline_ms() const noexcept;
  // Reaps the log's completions, does its timed work, and answers the
  // PUBLISHes whose events became durable.
  bool poll_log(std::int64_t now_ms);
  // Answers queued queries; a PUBLISH only when may_ingest.
  bool serve_requests(bool may_ingest = true);
  // Hands a task that is done back to the server.
  void respond(QueryTask* task);
  void maintenance(std::int64_t now_ms);
  void set_state_budget(std::uint64_t keys);

  const std::uint32_t id_;
  Engine& engine_;
  ShardMesh& mesh_;  // the other shards: rings, activity, watermarks, wake-ups
  const Config& config_;
  const std::uint32_t shards_;
  EventParser parser_;
  // The batch being parsed, and its keys' bytes: a key is the parser's
  // (unescaped) copy, which the next line's parse overwrites.
  std::unique_ptr<OneEvent[]> parse_batch_;
  std::unique_ptr<char[]> batch_keys_;
  ShardCounters counters_;

  std::vector<SpscRing<RouteBatch>*> in_rings_;   // by source; nullptr for self

  // State.
  ViewSet views_;
  EventTime time_;
  Router router_;
  std::int64_t next_maintenance_ms_ = 0;
  std::int64_t next_backlog_ms_ = 0;
  std::int64_t last_tick_ms_ = 0;
  // Events stamped after this are future_timestamp: the wall clock plus
  // max_future_ms, read once per loop pass.
  std::int64_t future_limit_ms_ = 0;
  // How far an event can move its input's watermark: the wall clock (at the
  // pass; a replayed block's when it was logged) + max_watermark_ahead_ms.
  std::int64_t watermark_cap_ms_ = 0;
  // A replayed block's stamps (read_stamps; none: events are stamped now),
  // and the line whose stamp was taken last.
  const std::int64_t* replay_stamps_ = nullptr;
  std::size_t replay_stamp_count_ = 0;
  const char* replay_at_ = nullptr;
  std::size_t replay_line_ = 0;
  std::int64_t ahead_of_clock(From from, std::int64_t ts);

  // Queries.
  SpscRing<QueryTask*> requests_;
  SpscRing<QueryTask*> responses_;
  std::vector<QueryTask*> in_progress_;  // VIEW_TOP tasks answered a slice per loop pass

  // Inputs.
  io::Poller poller_;
  std::vector<std::unique_ptr<io::Source>> sources_;
  std::vector<io::Source*> listeners_;  // by listener: where its connections, handed over too, go
  std::unique_ptr<io::ReadArena> connection_arena_;
  PublishSource* publish_ = nullptr;  // PUBLISH hand-offs, which arrive as query tasks
  struct InputInfo {
    io::SourceKindId kind = 0;
    bool connection = false;
    bool ahead_logged = false;  // an event of it was dated past the watermark's cap (logged once)
  };
  std::vector<InputInfo> inputs_;  // by input
  const io::SourceKindId publish_kind_ = source_kind_id(kPublishSource);
  const io::SourceKindId replay_kind_ = source_kind_id(kReplaySource);

  // The hot log (docs/storage.md).
  std::string log_dir_;
  storage::Recovery recovery_;
  std::unique_ptr<storage::SegmentLog> log_;
  std::unique_ptr<storage::SegmentLog> dead_;  // rejected lines and their reasons
  std::string dead_line_;        // a rejected line as a JSON string
  std::string dead_reason_text_[kRejectReasons];  // each reason, and each source kind, as a JSON string
  std::string dead_source_text_[kMaxSourceKinds];
  // Dead letters' token bucket (dead_letter_bytes_per_s): bytes it may
  // still keep, refilled from the loop's clock.
  double dead_budget_ = 0;
  std::int64_t dead_refill_ms_ = 0;
  std::atomic<std::uint64_t> dead_dropped_{0};  // rejected lines past the budget: counted, not kept
  std::size_t raw_field_ = 0;    // keep_raw: the raw line's column (after the schema's)
  bool logging_ = false;         // the lines being ingested go to the log
  std::int64_t loop_ms_ = 0;     // the monotonic clock, read once per loop pass
  std::int64_t loop_us_ = 0;     // the same in microseconds: when the pass's reads were received
  std::int64_t wall_ms_ = 0;     // the wall clock, read with it: when the pass's rows became queryable
  // Rows applied at once on their way in (apply_row) this pass: timed as a
  // whole when the next pass reads the clocks (a busy pass never sleeps).
  std::uint64_t direct_rows_ = 0;
  std::int64_t direct_age_ms_ = 0;  // and the sum of their ages (event_to_queryable's sum)
  // Reads the clocks once per loop pass (a read per chunk would cost ~10%
  // of a one-event datagram's path).
  void read_clocks() noexcept;
  // The watermark as STATS and the other shards see it.
  void publish_watermark(std::int64_t watermark) noexcept;
  // The log takes no events (its disk is above the high-water mark, no
  // segment can be created, or a write failed): no input is read.
  bool cannot_store() const noexcept { return log_ && log_->blocked(); }
  // Events logged but not yet durable, by the log's ticket and when they
  // were read: receive_to_durable is measured as their tickets turn durable.
  struct Unsynced {
    std::uint64_t ticket = 0;
    std::int64_t received_us = 0;
    std::uint64_t events = 0;
  };
  std::deque<Unsynced> unsynced_;
  std::vector<QueryTask*> durable_waits_;  // answered PUBLISHes whose events are not yet durable, in ticket order
  ReplaySource* replay_ = nullptr;
  std::unordered_map<std::uint64_t, std::uint64_t> replayed_;
  // Per PUBLISH producer, the last batch sequence logged and when (the
  // loop's clock): in checkpoints, until publish_dedup_ttl_ms unseen.
  struct Published {
    std::uint64_t sequence = 0;
    std::int64_t seen_ms = 0;
  };
  std::unordered_map<std::uint64_t, Published> published_;
  void remember_sequences();  // published_ from replayed_, seen now
  // Checkpoints.
  std::vector<std::uint64_t> barrier_seen_;  // by source shard: the newest barrier its ring delivered
  std::uint64_t snap_epoch_ = 0;             // the newest epoch snapshotted (or given up)
  struct PendingCheckpoint {
    std::uint64_t epoch = 0;   // 0: none
    std::uint64_t ticket = 0;  // the log block that must be durable first
    storage::CheckpointHeader header;
    std::string body;
    std::int64_t started_us = 0;
    bool writing = false;
  };
  PendingCheckpoint pending_;
  storage::CheckpointWriter writer_;
  std::int64_t next_checkpoint_ms_ = 0;  // shard 0: when to ask for the next
  std::atomic<bool> files_done_{true};
  bool busy_poll_ = false;  // a source no descriptor announces: the loop never sleeps
};

}  // namespace spate::engine
