// The shard's hot log through io_uring; see segment_log.hpp.
//
// Writes go through the page cache (buffered), not O_DIRECT: with the log's
// pattern (spate-uring-write-bench, 1 GiB of 96 KiB and 40-120 KiB blocks)
// buffered writes ran 1.2-2x faster without syncs and tied with a datasync
// every 4 MiB; O_DIRECT led only with a datasync after every block
// (1.3-1.44x), and would need every block padded to 4 KiB. Each block is one
// IORING_OP_WRITE at its offset; a sync is an IORING_OP_FSYNC (datasync)
// marked IOSQE_IO_DRAIN, so it starts only once every write before it has
// completed and then covers them all; syncs complete in order.
#include "storage/segment_log.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "io/file/log.hpp"
#include "io/file/source.hpp"
#include "storage/segment_file.hpp"

namespace spate::storage {
namespace {

constexpr unsigned kRingEntries = 64;
// user_data: syncs carry this bit and their ticket; writes their id.
constexpr std::uint64_t kSyncBit = std::uint64_t{1} << 63;
constexpr std::uint64_t kDirSync = kSyncBit - 1;  // a directory fsync: no ticket of its own
constexpr std::int64_t kDiskCheckEveryMs = 100;
constexpr std::int64_t kExpiryEveryMs = 10000;
constexpr std::int64_t kSizeCheckEveryMs = 1000;  // a directory listing: not every loop pass

}  // namespace

const char* durability_name(Durability d) noexcept {
  switch (d) {
    case Durability::none: return "none";
    case Durability::group: return "group";
    case Durability::sync: return "sync";
  }
  return "?";
}

SegmentLog::SegmentLog(LogOptions options, int notify_fd)
    : options_(std::move(options)), builder_(options_.fields.size()), ring_(std::make_unique<io_uring>()) {
  if (const int r = io_uring_queue_init(kRingEntries, ring_.get(), 0); r < 0) {
    ring_.reset();
    throw std::system_error(-r, std::generic_category(), "io_uring_queue_init");
  }
  if (notify_fd >= 0) io_uring_register_eventfd(ring_.get(), notify_fd);
  dir_fd_ = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot open '" + options_.dir + "'");
  sequence_ = options_.first_sequence;
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

SegmentLog::~SegmentLog() {
  close();
  if (ring_) io_uring_queue_exit(ring_.get());
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

bool SegmentLog::open_segment(std::int64_t now_ms) {
  const std::string name = segment_file_name(sequence_);
  fd_ = ::openat(dir_fd_, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0 && (errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
    // Out of descriptors (connections hold them): the one kept in reserve
    // makes this segment. Pausing input instead would never free any,
    // since only reading its connections to their end closes them.
    ::close(reserve_fd_);
    reserve_fd_ = -1;
    fd_ = ::openat(dir_fd_, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  const int err = errno;
  if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // taken back once one is free
  if (fd_ < 0) {  // out of descriptors or disk, or a file in the way: the caller holds its blocks and pauses input
    if (!open_failing_) {
      io::log_error("cannot create segment: ingest paused until it can", {{"shard", options_.shard},
                                              {"path", fmt::format("{}/{}", options_.dir, name)},
                                              {"error", std::strerror(err)}});
    }
    open_failing_ = true;
    counters_.cannot_store.store(1, std::memory_order_relaxed);
    LogCounters::add(counters_.write_errors, 1);
    return false;
  }
  if (open_failing_) io::log_info("segment created: ingest resumed", {{"shard", options_.shard}, {"path", options_.dir + "/" + name}});
  open_failing_ = false;
  counters_.cannot_store.store(failed_ ? 1 : 0, std::memory_order_relaxed);
  ++sequence_;
  open_name_ = name;
  SegmentHeader header;
  header.shard = options_.shard;
  header.shards = options_.shards;
  header.created_ms = io::wall_ms();
  header.sequence = sequence_ - 1;
  header.fields = options_.fields;
  offset_ = 0;
  blocks_.clear();
  segment_opened_ms_ = now_ms;
  dir_dirty_ = true;
  write(encode_header(header), 0);
  LogCounters::add(counters_.segments, 1);
  return true;
}

void SegmentLog::lose(std::uint64_t block) {
  lost_blocks_.insert(std::upper_bound(lost_blocks_.begin(), lost_blocks_.end(), block), block);
  if (lost_blocks_.size() > 4096) lost_blocks_.erase(lost_blocks_.begin(), lost_blocks_.begin() + 2048);
  LogCounters::add(counters_.blocks_lost, 1);
}

SegmentLog::TicketState SegmentLog::state(std::uint64_t ticket) const noexcept {
  if (ticket == 0) return TicketState::durable;
  if (std::binary_search(lost_blocks_.begin(), lost_blocks_.end(), ticket)) return TicketState::lost;
  if (ticket <= durable_blocks_) return TicketState::durable;
  return failed_ ? TicketState::lost : TicketState::pending;
}

io_uring_sqe* SegmentLog::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  while (sqe == nullptr) {  // the disk is behind: wait for a completion to make room
    LogCounters::add(counters_.queue_full_waits, 1);
    io_uring_submit(ring_.get());
    reap(true);
    sqe = io_uring_get_sqe(ring_.get());
  }
  return sqe;
}

void SegmentLog::write(std::string&& bytes, std::uint64_t block) {
  const std::uint64_t id = next_write_id_++;
  auto [it, added] = writes_.emplace(id, Write{std::move(bytes), block});
  const std::string& buffer = it->second.bytes;
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_write(sqe, fd_, buffer.data(), static_cast<unsigned>(buffer.size()), offset_);
  io_uring_sqe_set_data64(sqe, id);
  io_uring_submit(ring_.get());
  ++in_flight_;
  offset_ += buffer.size();
  unsynced_bytes_ += buffer.size();
  LogCounters::add(counters_.bytes_written, buffer.size());
  LogCounters::add(counters_.bytes_in_flight, buffer.size());
}

void SegmentLog::seal(std::int64_t now_ms) {
  if (builder_.empty()) return;
  // The group interval runs from the oldest unsynced event, not from its write.
  if (unsynced_bytes_ == 0) unsynced_since_ms_ = block_opened_ms_;
  std::string buffer;
  if (!spare_.empty()) {
    buffer = std::move(spare_.back());
    spare_.pop_back();
    buffer.clear();
  }
  const std::uint64_t block = ++blocks_sealed_;
  LogCounters::add(counters_.events, builder_.events());
  LogCounters::add(counters_.field_bytes, builder_.raw_bytes());
  BlockInfo info = builder_.encode(options_.codec, options_.level, io::wall_ms(), buffer);
  // The first block of a segment opens it. A block no segment can take
  // is held (in order) until one can: nothing accepted is dropped, and
  // blocked() pauses input meanwhile.
  if (!held_.empty() || (fd_ < 0 && !open_segment(now_ms))) {
    // A log nobody pauses for (the dead letters) keeps taking blocks: past
    // a bound they are lost, counted, rather than held without end.
    if (held_.size() >= kMaxHeld) {
      lose(block);
      return;
    }
    held_.push_back({std::move(buffer), info, block});
    return;
  }
  place(std::move(buffer), info, block, now_ms);
}

void SegmentLog::place(std::string&& buffer, BlockInfo info, std::uint64_t block, std::int64_t now_ms) {
  info.offset = offset_;
  blocks_.push_back(info);
  write(std::move(buffer), block);
  LogCounters::add(counters_.blocks, 1);
  if (offset_ >= options_.segment_bytes) roll(now_ms);
}

// A segment is tried again at most every kOpenRetryMs while blocks wait.
bool SegmentLog::place_held(std::int64_t now_ms) {
  if (held_.empty() || now_ms < next_open_retry_ms_) return false;
  next_open_retry_ms_ = now_ms + kOpenRetryMs;
  if (fd_ < 0 && !open_segment(now_ms)) return false;
  std::vector<Held> held = std::move(held_);
  held_.clear();
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (fd_ < 0 && !open_segment(now_ms)) {  // a roll between them, and the next file cannot be made
      held_.assign(std::make_move_iterator(held.begin() + static_cast<std::ptrdiff_t>(i)),
                   std::make_move_iterator(held.end()));
      return true;
    }
    place(std::move(held[i].bytes), held[i].info, held[i].block, now_ms);
  }
  return true;
}

void SegmentLog::sync(std::int64_t now_ms) {
  seal(now_ms);
  if (fd_ < 0) {  // nothing written since the last roll: the roll's own sync covers it
    unsynced_bytes_ = 0;
    return;
  }
  if (dir_dirty_) {  // the new segment's directory entry first
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_fsync(sqe, dir_fd_, 0);
    sqe->flags |= IOSQE_IO_DRAIN;
    io_uring_sqe_set_data64(sqe, kSyncBit | kDirSync);
    ++in_flight_;
    dir_dirty_ = false;
  }
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
  sqe->flags |= IOSQE_IO_DRAIN;
  io_uring_sqe_set_data64(sqe, kSyncBit | ++syncs_issued_);
  io_uring_submit(ring_.get());
  ++in_flight_;
  syncs_.push_back({blocks_sealed_, io::monotonic_us()});
  unsynced_bytes_ = 0;
  LogCounters::add(counters_.syncs, 1);
}

void SegmentLog::roll(std::int64_t now_ms) {
  write(encode_footer(blocks_, offset_), 0);
  sync(now_ms);  // seals nothing more: the builder was just emptied
  blocks_.clear();
  closing_.emplace_back(fd_, syncs_issued_);
  fd_ = -1;  // the next block opens the next segment
}

std::uint64_t SegmentLog::commit(std::int64_t now_ms) {
  if (options_.durability == Durability::none) return 0;
  if (builder_.empty()) return blocks_sealed_;  // in the last block (its sync issued, or due in poll)
  const std::uint64_t ticket = blocks_sealed_ + 1;  // the block being built
  if (options_.durability == Durability::sync) sync(now_ms);
  return ticket;  // group: poll seals it and syncs when the interval is up
}

LogPosition SegmentLog::mark(std::int64_t now_ms, std::uint64_t& ticket) {
  sync(now_ms);
  ticket = blocks_sealed_;
  // The next block opens the next segment, after the blocks held for it.
  if (fd_ < 0) return {sequence_, held_.size()};
  return {sequence_ - 1, blocks_.size()};
}

bool SegmentLog::reap(bool wait) {
  bool any = false;
  io_uring_cqe* cqe = nullptr;
  while (true) {
    const int r = wait && !any ? io_uring_wait_cqe(ring_.get(), &cqe) : io_uring_peek_cqe(ring_.get(), &cqe);
    if (r == -EINTR) continue;
    if (r != 0 || cqe == nullptr) break;
    const std::uint64_t data = io_uring_cqe_get_data64(cqe);
    const int res = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    --in_flight_;
    any = true;
    if ((data & kSyncBit) != 0) {
      if (res < 0) {
        fail("fsync failed", std::strerror(-res));
        LogCounters::add(counters_.write_errors, 1);
      }
      if ((data & ~kSyncBit) == kDirSync) continue;
      const Sync done = syncs_.front();
      syncs_.erase(syncs_.begin());
      ++syncs_done_;
      LogCounters::add(counters_.sync_us, static_cast<std::uint64_t>(io::monotonic_us() - done.started_us));
      if (!failed_) durable_blocks_ = std::max(durable_blocks_, done.covers);
      continue;
    }
    const auto it = writes_.find(data);
    if (it == writes_.end()) continue;
    Write& w = it->second;
    counters_.bytes_in_flight.fetch_sub(w.bytes.size(), std::memory_order_relaxed);
    if (res < 0 || static_cast<std::size_t>(res) != w.bytes.size()) {
      fail("segment write failed", res < 0 ? std::strerror(-res) : "short write");
      LogCounters::add(counters_.write_errors, 1);
      // The block's events are lost (their tickets say so); after a failed
      // write nothing more is taken in: what the disk refused once it may
      // refuse again, and acknowledging what cannot be stored is the one
      // thing the log must not do.
      if (w.block != 0) lose(w.block);
    }
    if (spare_.size() < 4) spare_.push_back(std::move(w.bytes));
    writes_.erase(it);
  }
  // Old segments close once the sync that sealed them is done.
  while (!closing_.empty() && closing_.front().second <= syncs_done_) {
    ::close(closing_.front().first);
    closing_.erase(closing_.begin());
  }
  return any;
}

bool SegmentLog::poll(std::int64_t now_ms) {
  if (closed_) return false;
  bool any = in_flight_ > 0 && reap(false);
  any = place_held(now_ms) || any;
  if (!builder_.empty() && now_ms - block_opened_ms_ >= options_.commit_interval_ms) {
    seal(now_ms);
    any = true;
  }
  const bool pending = unsynced_bytes_ > 0 || !builder_.empty();
  if (pending) {
    const std::int64_t since = unsynced_bytes_ > 0 ? unsynced_since_ms_ : block_opened_ms_;
    bool due = false;
    switch (options_.durability) {
      case Durability::none: break;
      case Durability::group:
        due = now_ms - since >= options_.commit_interval_ms || unsynced_bytes_ >= options_.commit_bytes;
        break;
      case Durability::sync: due = unsynced_bytes_ > 0; break;
    }
    if (due) {
      sync(now_ms);
      any = true;
    }
  }
  if (now_ms - segment_opened_ms_ >= options_.segment_ms && !blocks_.empty()) {
    roll(now_ms);
    any = true;
  }
  if (now_ms >= next_disk_check_ms_) {
    next_disk_check_ms_ = now_ms + kDiskCheckEveryMs;
    check_disk();
  }
  if (options_.retention_ms > 0 && now_ms >= next_expiry_ms_) {
    next_expiry_ms_ = now_ms + std::min(kExpiryEveryMs, options_.retention_ms / 2);
    expire_segments();
  }
  if (now_ms >= next_size_check_ms_) {
    next_size_check_ms_ = now_ms + kSizeCheckEveryMs;
    measure_tier();
  }
  return any;
}

void SegmentLog::measure_tier() {
  std::uint64_t files = 0, bytes = 0;
  for (const std::string& path : list_segments(options_.dir)) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) continue;  // expired meanwhile
    ++files;
    bytes += size;
  }
  counters_.hot_segments.store(files, std::memory_order_relaxed);
  counters_.hot_bytes.store(bytes, std::memory_order_relaxed);
}

// statvfs of the log's filesystem, with hysteresis between the marks.
void SegmentLog::check_disk() {
  if (options_.high_water_percent == 0) return;
  struct statvfs st{};
  if (::fstatvfs(dir_fd_, &st) != 0 || st.f_blocks == 0) return;
  // As df counts it: blocks in use over those in use or free to anyone, rounded up.
  const std::uint64_t in_use = st.f_blocks - st.f_bfree;
  const std::uint64_t used = in_use + st.f_bavail == 0 ? 100 : (100 * in_use + in_use + st.f_bavail - 1) / (in_use + st.f_bavail);
  counters_.disk_used_percent.store(used, std::memory_order_relaxed);
  if (!disk_full_ && used >= options_.high_water_percent) {
    disk_full_ = true;
    LogCounters::add(counters_.disk_full_events, 1);
    io::log_warn("disk at or above the high-water mark: ingest paused",
                 {{"shard", options_.shard}, {"disk_used_percent", used},
                  {"high_water_percent", options_.high_water_percent}});
  } else if (disk_full_ && used < options_.low_water_percent) {
    disk_full_ = false;
    io::log_info("disk below the low-water mark: ingest resumed",
                 {{"shard", options_.shard}, {"disk_used_percent", used}, {"low_water_percent", options_.low_water_percent}});
  }
  counters_.disk_full.store(disk_full_ ? 1 : 0, std::memory_order_relaxed);
}

// Hot retention by wall-clock age: a sealed segment untouched for
// retention_ms goes (the warm tier will take it instead, once it exists).
void SegmentLog::expire_segments() {
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const std::string& path : list_segments(options_.dir)) {
    const std::filesystem::path p(path);
    if (p.filename() == open_name_ && fd_ >= 0) continue;
    std::error_code ec;
    const auto mtime = std::filesystem::last_write_time(p, ec);
    if (ec) continue;
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - mtime).count();
    if (age < options_.retention_ms) continue;
    const auto bytes = std::filesystem::file_size(p, ec);
    if (::unlinkat(dir_fd_, p.filename().c_str(), 0) == 0) {
      LogCounters::add(counters_.segments_expired, 1);
      LogCounters::add(counters_.bytes_expired, ec ? 0 : bytes);
    }
  }
}

std::int64_t SegmentLog::next_deadline_ms() const noexcept {
  std::int64_t at = INT64_MAX;
  if (!builder_.empty()) at = block_opened_ms_ + options_.commit_interval_ms;
  if (unsynced_bytes_ > 0 && options_.durability != Durability::none) {
    at = std::min(at, unsynced_since_ms_ + options_.commit_interval_ms);
  }
  if (!blocks_.empty()) at = std::min(at, segment_opened_ms_ + options_.segment_ms);
  return at;
}

// After a failed write or fsync nothing is known durable (Linux may drop
// the dirty pages of a failed fsync): every later ticket is lost, and
// blocked() pauses input for good; a restart replays what is on disk.
void SegmentLog::fail(const char* what, const char* error) {
  if (!failed_) {
    io::log_error(fmt::format("{}: ingest stopped; restart spated once the disk is fixed", what),
                  {{"shard", options_.shard}, {"dir", options_.dir}, {"error", error}});
  }
  failed_ = true;
  counters_.cannot_store.store(1, std::memory_order_relaxed);
}

void SegmentLog::close() {
  if (closed_ || !ring_) return;
  const std::int64_t now = io::monotonic_ms();
  seal(now);
  next_open_retry_ms_ = 0;  // a last try for blocks still held
  place_held(now);
  if (!held_.empty()) {
    io::log_error("blocks never stored: no segment could be created", {{"shard", options_.shard}, {"blocks", held_.size()}});
    for (const Held& h : held_) lose(h.block);
    held_.clear();
  }
  if (fd_ >= 0) {
    write(encode_footer(blocks_, offset_), 0);
    sync(now);
  }
  // Descriptors close only once nothing in flight names them: a deferred
  // (drained) operation looks its descriptor up when it starts.
  while (in_flight_ > 0) reap(true);
  for (const auto& [fd, ticket] : closing_) ::close(fd);
  closing_.clear();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  closed_ = true;
}

}  // namespace spate::storage
