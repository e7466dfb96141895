// A byte stream cut into whole lines: reads append at the end, whole lines go
// to the sink where they lie (no copy), a partial last line moves to the
// front for the next read, and a line longer than max_line_bytes is dropped
// up to its newline and counted.
//
// A buffer either owns its memory (a file: one stream, read without pause)
// or borrows a ReadArena for each read (TCP: thousands of connections, most
// of them idle at any moment). A borrowing buffer keeps, between reads,
// only the partial line it was left with, so an idle connection costs its
// partial line instead of a whole read buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "io/file/source.hpp"

namespace spate::io {

// The memory one thread's borrowing LineBuffers read into, one at a time.
class ReadArena {
 public:
  ReadArena(std::size_t chunk_bytes, std::size_t max_line_bytes, std::size_t padding);
  char* data() noexcept { return buf_.get(); }
  std::size_t capacity() const noexcept { return capacity_; }  // not counting the padding
  std::size_t chunk_bytes() const noexcept { return chunk_bytes_; }

 private:
  std::size_t chunk_bytes_;
  std::size_t capacity_;
  std::unique_ptr<char[]> buf_;
};

class LineBuffer {
 public:
  // Owns room for `chunk_bytes` per read beside a partial line of up to
  // max_line_bytes, plus `padding` readable bytes past the data.
  LineBuffer(std::size_t chunk_bytes, std::size_t max_line_bytes, std::size_t padding);
  // Borrows `arena` (sized for the same max_line_bytes) for each read.
  LineBuffer(ReadArena& arena, std::size_t max_line_bytes);

  // Where the next read goes (a borrowing buffer first puts its partial
  // line back in front of it); room() bytes fit there.
  char* prepare() noexcept;
  std::size_t room() const noexcept { return capacity_ - used_; }
  // n bytes were written at prepare(): hands the whole lines to the sink
  // (at eof the partial last line too) and keeps the rest.
  void commit(std::size_t n, bool eof, LineSink& sink, std::uint32_t input, SourceCounters& counters);
  // The next bytes written start at `position` of the stream (a file's next
  // stripe); nothing may be pending.
  void restart_at(std::uint64_t position) noexcept { position_ = position; }

 private:
  ReadArena* arena_ = nullptr;   // borrowing: buf_ is the arena's during a read
  std::unique_ptr<char[]> own_;  // owning: capacity_ + padding bytes
  char* buf_ = nullptr;
  std::size_t capacity_;
  std::size_t max_line_bytes_;
  std::size_t used_ = 0;
  std::string partial_;         // borrowing: the partial line between reads
  std::uint64_t position_ = 0;  // stream offset of buf_[0]
  bool skipping_ = false;       // inside an oversized line: drop up to the next newline
};

}  // namespace spate::io
