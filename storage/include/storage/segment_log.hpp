// One shard's hot log: accepted events gathered into blocks, written to the
// shard's segment files through its own io_uring, and made durable by the
// durability dial (none, group commit, sync). The loop never waits on the
// disk: writes and fsyncs complete in the background, and a caller that
// needs its events durable (a PUBLISH) holds a ticket (the number of the
// block holding them) and asks state() until it is durable or lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/counter.hpp"
#include "storage/checkpoint.hpp"
#include "storage/segment_format.hpp"

struct io_uring;
struct io_uring_sqe;

namespace spate::storage {

enum class Durability : std::uint8_t { none, group, sync };
const char* durability_name(Durability d) noexcept;

struct LogOptions {
  std::string dir;  // the shard's own directory
  std::uint32_t shard = 0;
  std::uint32_t shards = 1;
  std::vector<std::string> fields;  // the schema, in column order
  Durability durability = Durability::group;
  std::int64_t commit_interval_ms = 5;       // group: fsync this long after the first unsynced event at most
  std::uint64_t commit_bytes = 4u << 20;     // group: or once this many bytes are unsynced
  std::uint64_t block_bytes = 256u << 10;    // a block is sealed once its field bytes reach this
  std::uint64_t segment_bytes = 128u << 20;  // a segment rolls past this size
  std::int64_t segment_ms = 3600000;         // or this long after it was opened
  Codec codec = Codec::lz4;
  int level = 1;
  std::uint64_t first_sequence = 0;  // the number of the first segment this run writes
  // Sealed segments last modified longer ago than this are deleted (0: kept).
  std::int64_t retention_ms = 0;
  // The filesystem's used share (percent) at which the log reports the disk
  // full, and below which it reports it usable again (0: never full).
  std::uint32_t high_water_percent = 0;
  std::uint32_t low_water_percent = 0;
};

// Single writer (the shard), any reader.
struct LogCounters {
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> field_bytes{0};  // the events' field texts, before encoding
  std::atomic<std::uint64_t> bytes_written{0};
  std::atomic<std::uint64_t> blocks{0};
  std::atomic<std::uint64_t> segments{0};
  std::atomic<std::uint64_t> syncs{0};
  std::atomic<std::uint64_t> sync_us{0};  // summed time from fsync submission to completion
  std::atomic<std::uint64_t> write_errors{0};  // failed opens, writes and fsyncs
  std::atomic<std::uint64_t> blocks_lost{0};   // blocks whose write or file failed
  std::atomic<std::uint64_t> queue_full_waits{0};  // times the loop waited for the ring to have room
  std::atomic<std::uint64_t> bytes_in_flight{0};  // gauge: written, not yet completed
  std::atomic<std::uint64_t> segments_expired{0};  // deleted past retention_ms
  std::atomic<std::uint64_t> bytes_expired{0};
  std::atomic<std::uint64_t> disk_used_percent{0};  // gauge, as last measured
  // Gauges, measured every second: the hot tier's segment files in the
  // shard's directory (this run's and the ones recovered), and their bytes.
  std::atomic<std::uint64_t> hot_segments{0};
  std::atomic<std::uint64_t> hot_bytes{0};
  std::atomic<std::uint64_t> disk_full{0};          // gauge: 1 while above the high-water mark
  std::atomic<std::uint64_t> disk_full_events{0};   // times it crossed the high-water mark
  // gauge: 1 while no segment can be created (blocks held, input paused)
  // or after a failed write or fsync (input stopped until a restart)
  std::atomic<std::uint64_t> cannot_store{0};

  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept { kernels::add_relaxed(c, n); }
};

class SegmentLog {
 public:
  // Opens a new segment in options.dir. Completions signal `notify_fd` (an
  // eventfd the loop polls; -1 for none). Throws std::system_error.
  SegmentLog(LogOptions options, int notify_fd);
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  // One accepted event: values[f] is field f's JSON text ({data, size}),
  // present when bit f of `present` is set.
  template <typename Text>
  void append(const Text* values, std::uint64_t present, std::int64_t ts_ms, std::int64_t now_ms) {
    if (builder_.empty()) block_opened_ms_ = now_ms;
    builder_.append(values, present, ts_ms);
  }
  // The same with the event's stamp (BlockBuilder::append).
  template <typename Text>
  void append(const Text* values, std::uint64_t present, std::int64_t ts_ms, std::int64_t stamp, std::int64_t now_ms) {
    if (builder_.empty()) block_opened_ms_ = now_ms;
    builder_.append(values, present, ts_ms, stamp);
  }
  // Where the events appended last came from (a PUBLISH producer's
  // sequence); kept in the same block as they are.
  void add_position(const Position& p) { builder_.add_position(p); }
  // The end of a source's chunk: the block is sealed here once it is full,
  // so that a chunk (a PUBLISH batch) never straddles two blocks.
  void end_chunk(std::int64_t now_ms) {
    if (builder_.raw_bytes() >= options_.block_bytes) seal(now_ms);
  }
  // A ticket for everything appended so far (the block that holds it).
  // With durability none the ticket is 0, durable at once.
  std::uint64_t commit(std::int64_t now_ms);
  // The same ticket, without asking for a sync (durability sync).
  std::uint64_t ticket() const noexcept {
    if (options_.durability == Durability::none) return 0;
    return builder_.empty() ? blocks_sealed_ : blocks_sealed_ + 1;
  }
  // For a checkpoint: seals and syncs what was appended (whatever the
  // dial) and returns where the next block goes; `ticket` turns durable
  // once everything before that is.
  LogPosition mark(std::int64_t now_ms, std::uint64_t& ticket);
  // After close(): where the next run's first block goes.
  LogPosition end_position() const noexcept { return {sequence_, 0}; }
  enum class TicketState : std::uint8_t { pending, durable, lost };
  TicketState state(std::uint64_t ticket) const noexcept;

  // Reaps completions, and seals, syncs and rolls what is due. True when
  // anything happened. Call every loop pass.
  bool poll(std::int64_t now_ms);
  // When poll() has timed work next (the monotonic clock), INT64_MAX: none.
  std::int64_t next_deadline_ms() const noexcept;
  // Seals the segment (footer, fsync) and waits for every write: at stop.
  void close();

  Durability durability() const noexcept { return options_.durability; }
  // Above the high-water mark (until below the low-water mark): the caller
  // stops taking events in.
  bool disk_full() const noexcept { return disk_full_; }
  // Whether the caller must take no more events: the disk is full, no
  // segment can be created (blocks are held until one can), or a write or
  // fsync failed.
  bool blocked() const noexcept { return disk_full_ || !held_.empty() || failed_; }
  const LogCounters& counters() const noexcept { return counters_; }
  // A write or fsync failed: after it nothing is known durable (Linux may
  // drop the dirty pages of a failed fsync), so every later ticket is lost.
  bool failed() const noexcept { return failed_; }

 private:
  void seal(std::int64_t now_ms);
  void sync(std::int64_t now_ms);
  void write(std::string&& bytes, std::uint64_t block);
  bool open_segment(std::int64_t now_ms);
  void lose(std::uint64_t block);
  void place(std::string&& buffer, BlockInfo info, std::uint64_t block, std::int64_t now_ms);
  bool place_held(std::int64_t now_ms);
  void fail(const char* what, const char* error);
  void roll(std::int64_t now_ms);
  io_uring_sqe* next_sqe();
  bool reap(bool wait);
  void check_disk();
  void expire_segments();

  LogOptions options_;
  LogCounters counters_;
  BlockBuilder builder_;
  std::unique_ptr<io_uring> ring_;
  int dir_fd_ = -1;
  int fd_ = -1;
  int reserve_fd_ = -1;  // a descriptor held back for the next segment when the process runs out
  std::vector<std::pair<int, std::uint64_t>> closing_;  // old segments: closed once the sync numbered this is done
  bool dir_dirty_ = false;                              // a new file's entry is not yet synced
  std::uint64_t sequence_ = 0;
  std::uint64_t offset_ = 0;
  std::vector<BlockInfo> blocks_;
  std::int64_t segment_opened_ms_ = 0;
  std::int64_t block_opened_ms_ = 0;
  std::uint64_t unsynced_bytes_ = 0;
  std::int64_t unsynced_since_ms_ = 0;
  std::uint64_t blocks_sealed_ = 0;   // blocks numbered 1, 2, ... over this run
  std::int64_t next_size_check_ms_ = 0;
  void measure_tier();  // hot_segments, hot_bytes
  std::uint64_t durable_blocks_ = 0;  // every block up to this one is fsynced
  std::vector<std::uint64_t> lost_blocks_;  // ascending; the newest few thousand
  std::uint64_t syncs_issued_ = 0;
  std::uint64_t syncs_done_ = 0;
  std::uint64_t next_write_id_ = 1;
  struct Write {
    std::string bytes;
    std::uint64_t block;  // 0: a header or footer
  };
  std::unordered_map<std::uint64_t, Write> writes_;  // in flight, by id
  struct Sync {
    std::uint64_t covers;  // blocks_sealed_ when it was issued
    std::int64_t started_us;
  };
  std::vector<Sync> syncs_;  // in flight, in order (they complete in order)
  bool open_failing_ = false;  // the last segment open failed (logged once)
  // Sealed blocks no segment could take yet, in order; tried again every
  // kOpenRetryMs.
  struct Held {
    std::string bytes;
    BlockInfo info;
    std::uint64_t block;
  };
  std::vector<Held> held_;
  std::int64_t next_open_retry_ms_ = 0;
  static constexpr std::int64_t kOpenRetryMs = 100;
  static constexpr std::size_t kMaxHeld = 256;
  std::vector<std::string> spare_;  // buffers to reuse
  std::uint32_t in_flight_ = 0;
  bool failed_ = false;
  bool closed_ = false;
  bool disk_full_ = false;
  std::int64_t next_disk_check_ms_ = 0;
  std::int64_t next_expiry_ms_ = 0;
  std::string open_name_;  // the segment being written, never expired
};

}  // namespace spate::storage
