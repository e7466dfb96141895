// Reading segment files: block by block with checks, a whole-file scan that
// tells a clean, torn or corrupt segment apart, and recovery of a shard's
// segment directory at start (torn tails truncated, corrupt files
// quarantined).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/segment_format.hpp"

namespace spate::storage {

// Reads one segment file's blocks in order with pread.
class SegmentReader {
 public:
  SegmentReader() = default;
  ~SegmentReader();
  SegmentReader(SegmentReader&& other) noexcept;
  SegmentReader& operator=(SegmentReader&& other) noexcept;
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // Opens `path` and reads its header; false with `error` set when it cannot.
  bool open(const std::string& path, std::string& error);
  const SegmentHeader& header() const noexcept { return header_; }
  std::uint64_t size() const noexcept { return size_; }
  std::uint64_t header_bytes() const noexcept { return header_bytes_; }
  // n bytes at offset into out; false past the end or on a read error.
  bool read_at(std::uint64_t offset, std::size_t n, std::string& out);
  // The block at `offset` (decoded into `out` when decode, else only
  // checked): ok, or why not. `out.info.offset` is set.
  BlockStatus read_block(std::uint64_t offset, bool decode, Block& out);

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t header_bytes_ = 0;
  SegmentHeader header_;
  std::string buffer_;
};

enum class SegmentState : std::uint8_t {
  clean,       // every block checks out (sealed or not)
  torn_tail,   // a write cut short at the end: the blocks before it are good
  corrupt,     // a bad block with good data after it, or a footer that disagrees
  bad_header,  // not a segment, or a header cut short
};
const char* segment_state_name(SegmentState state) noexcept;

struct SegmentScan {
  std::string path;
  SegmentState state = SegmentState::clean;
  std::string problem;  // what is wrong and where, when not clean
  SegmentHeader header;
  std::uint64_t file_bytes = 0;
  std::uint64_t valid_end = 0;  // just past the last good block (or the header)
  bool sealed = false;          // a valid footer indexes exactly the blocks read
  std::vector<BlockInfo> blocks;  // the good blocks, in order
  std::uint64_t events = 0;       // in those blocks
};

// Reads and checks a whole segment (every block's checksum).
SegmentScan scan_segment(const std::string& path);

// A segment file's name in a shard directory: 20-digit sequence, ".seg".
std::string segment_file_name(std::uint64_t sequence);
// The segment files of a directory, in sequence order (quarantined ones not included).
std::vector<std::string> list_segments(const std::string& dir);

// What recovery did to one file.
struct RecoveryAction {
  std::string path;
  SegmentState state = SegmentState::clean;
  std::string problem;
  std::uint64_t bytes_dropped = 0;  // torn tail cut off
  bool quarantined = false;         // renamed to *.quarantined, not replayed
};
struct Recovery {
  std::vector<SegmentScan> segments;  // clean now, in order: what to replay
  std::vector<RecoveryAction> actions;
  std::uint64_t next_sequence = 0;  // for the next segment this shard writes
};
// Scans a shard's directory: truncates torn tails at their last good block,
// quarantines corrupt files, and lists what is left to replay.
Recovery recover_directory(const std::string& dir);

}  // namespace spate::storage
