// The shard's own segments read back at start, as a source: each block's
// events are rebuilt as NDJSON lines of their stored fields and go through
// the pipeline like any input. Blocks of all shards go in the order they
// were sealed (wall clock), so that inputs which followed one another live
// do not run side by side in the replay and judge lateness differently.
// PUBLISH positions found on the way are kept, so a producer's resent
// batch stays a duplicate after a restart.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/file/source.hpp"
#include "storage/segment_file.hpp"

namespace spate::engine {

class ReplaySource final : public io::Source {
 public:
  // `padding`: readable bytes the sink needs past each handed chunk.
  // may_replay(sealed_ms) says whether the block sealed then may go now;
  // it is asked before every block, and with INT64_MAX at the end, until
  // it says true (this source is done).
  ReplaySource(std::vector<storage::SegmentScan> segments, std::size_t padding,
               std::function<bool(std::int64_t)> may_replay);
  // When the next block was sealed (INT64_MAX: none left).
  std::int64_t next_sealed_ms() const noexcept;

  void attach(io::LineSink& sink) override;
  bool poll(io::LineSink& sink, std::size_t budget) override;
  void ready(std::uint64_t, io::LineSink&) override {}
  void drain(io::LineSink&, std::int64_t) override {}
  bool finished() const noexcept override { return done_; }

  // Per PUBLISH producer, the highest batch sequence read back.
  const std::unordered_map<std::uint64_t, std::uint64_t>& publish_sequences() const noexcept { return sequences_; }
  std::uint64_t events() const noexcept { return events_; }
  std::uint64_t bytes() const noexcept { return bytes_; }  // segment bytes read

 private:
  bool open_next();

  std::vector<storage::SegmentScan> segments_;
  std::size_t padding_;
  std::function<bool(std::int64_t)> may_replay_;
  bool input_open_ = false;  // the input opens with the first block it delivers
  std::size_t next_segment_ = 0;
  std::size_t next_block_ = 0;
  storage::SegmentReader reader_;
  bool open_ = false;
  std::vector<std::string> prefixes_;  // per field: ,"name":
  std::size_t raw_column_ = SIZE_MAX;   // the segment's raw-line column, if it kept one
  storage::Block block_;
  std::string lines_;
  std::uint32_t input_ = 0;
  bool done_ = false;
  std::uint64_t events_ = 0;
  std::uint64_t bytes_ = 0;
  std::unordered_map<std::uint64_t, std::uint64_t> sequences_;
};

}  // namespace spate::engine
