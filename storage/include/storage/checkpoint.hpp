// Checkpoint files: one shard's state at one checkpoint epoch, and where its
// hot log stood then, so that a restart loads the state and replays only
// the blocks written after it (docs/storage.md, "Checkpoints").
//
//   shard-N/checkpoints/<epoch, 20 digits>.ckpt
//
// The body (the state) is opaque here; the file adds a header, a checksum
// of everything and a trailer, and is written atomically: a temporary
// file, fsync, rename, fsync of the directory.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace spate::storage {

inline constexpr std::uint32_t kCheckpointVersion = 4;  // 2: dedup as one table of id fingerprints a shard; 3: a window keeps each aggregate kind's own words; 4: each key's windows in slots by window number

// A place in a shard's hot log: block `block` (0-based) of segment
// `segment`; replay starts there. Later segments replay whole.
struct LogPosition {
  std::uint64_t segment = 0;
  std::uint64_t block = 0;
};

struct CheckpointHeader {
  std::uint32_t shard = 0;
  std::uint32_t shards = 1;
  std::uint64_t epoch = 0;
  std::int64_t created_ms = 0;    // wall clock
  std::uint64_t fingerprint = 0;  // of the configuration the state is laid out by
  LogPosition position;           // the first block not in the state
};

struct Checkpoint {
  std::string path;
  CheckpointHeader header;
  std::string body;
};

// The whole file for `body`.
std::string encode_checkpoint(const CheckpointHeader& header, std::string_view body);
// Reads and checks a checkpoint file; nullopt with `error` saying why not
// (cut short, checksum, not a checkpoint).
std::optional<Checkpoint> read_checkpoint(const std::string& path, std::string& error);

std::string checkpoint_dir(const std::string& shard_dir);
std::string checkpoint_file_name(std::uint64_t epoch);
// The checkpoint files of a shard directory, newest epoch first.
std::vector<std::pair<std::uint64_t, std::string>> list_checkpoints(const std::string& shard_dir);
// Writes `bytes` as the checkpoint of `epoch` atomically. Throws std::system_error.
void write_checkpoint_file(const std::string& shard_dir, std::uint64_t epoch, const std::string& bytes);
// The same for a file given in parts, written one after the other.
void write_checkpoint_file(const std::string& shard_dir, std::uint64_t epoch, std::initializer_list<std::string_view> parts);
// Deletes the shard's checkpoints of epochs below `epoch`, and above
// `above` (leftovers of a run that crashed before finishing them).
void remove_checkpoints(const std::string& shard_dir, std::uint64_t below, std::uint64_t above = UINT64_MAX);

// Writes one checkpoint file at a time off the shard's thread, so that the
// loop never waits on its fsyncs.
class CheckpointWriter {
 public:
  ~CheckpointWriter();
  // Encodes and writes the checkpoint (waiting for the last one first);
  // signals the eventfd `notify_fd` (-1: none) when done.
  void start(std::string shard_dir, CheckpointHeader header, std::string body, int notify_fd);
  // Whether the write started last has finished (then error() and bytes()
  // tell how); wait() waits for it.
  bool finished() noexcept;
  void wait();
  const std::string& error() const noexcept { return error_; }
  std::uint64_t bytes() const noexcept { return bytes_; }
  // After finished(): the body's buffer, emptied, for the next state copy
  // (fresh memory for every copy cost its page faults in the loop's pause).
  std::string take_buffer() noexcept {
    body_.clear();
    return std::move(body_);
  }

 private:
  std::string body_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::string error_;
  std::uint64_t bytes_ = 0;
};

}  // namespace spate::storage
