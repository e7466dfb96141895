// A byte stream cut into whole lines: reads append at the end, whole lines go
// to the sink where they lie (no copy), a partial last line moves to the
// front for the next read, and a line longer than max_line_bytes is dropped
// up to its newline and counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "io/file/source.hpp"

namespace spate::io {

class LineBuffer {
 public:
  // Room for `chunk_bytes` per read beside a partial line of up to
  // max_line_bytes, plus `padding` readable bytes past the data.
  LineBuffer(std::size_t chunk_bytes, std::size_t max_line_bytes, std::size_t padding);

  char* write_ptr() noexcept { return buf_.get() + used_; }
  std::size_t room() const noexcept { return capacity_ - used_; }
  // n bytes were written at write_ptr(): hands the whole lines to the sink
  // (at eof the partial last line too) and keeps the rest.
  void commit(std::size_t n, bool eof, LineSink& sink, std::uint32_t input, SourceCounters& counters);
  // The next bytes written start at `position` of the stream (a file's next
  // stripe); nothing may be pending.
  void restart_at(std::uint64_t position) noexcept { position_ = position; }

 private:
  std::size_t capacity_;
  std::size_t max_line_bytes_;
  std::unique_ptr<char[]> buf_;  // capacity_ + padding bytes
  std::size_t used_ = 0;
  std::uint64_t position_ = 0;  // stream offset of buf_[0]
  bool skipping_ = false;       // inside an oversized line: drop up to the next newline
};

}  // namespace spate::io
