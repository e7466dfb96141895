// Stream reassembly into whole lines; see line_buffer.hpp.
#include "io/file/line_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace spate::io {

LineBuffer::LineBuffer(std::size_t chunk_bytes, std::size_t max_line_bytes, std::size_t padding)
    : capacity_(chunk_bytes + max_line_bytes + 1),
      max_line_bytes_(max_line_bytes),
      buf_(std::make_unique<char[]>(capacity_ + padding)) {}

void LineBuffer::commit(std::size_t n, bool eof, LineSink& sink, std::uint32_t input, SourceCounters& counters) {
  used_ += n;
  std::size_t start = 0;
  if (skipping_) {
    const void* nl = std::memchr(buf_.get(), '\n', used_);
    if (nl == nullptr) {  // still inside the oversized line
      position_ += used_;
      used_ = 0;
      if (eof) skipping_ = false;
      return;
    }
    start = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.get()) + 1;
    skipping_ = false;
  }
  // One backward scan finds where the whole lines end; the sink splits them.
  std::size_t whole = start;
  if (eof) {
    whole = used_;
  } else if (used_ > start) {
    const void* last = ::memrchr(buf_.get() + start, '\n', used_ - start);
    if (last != nullptr) whole = static_cast<std::size_t>(static_cast<const char*>(last) - buf_.get()) + 1;
  }
  if (whole > start) sink.lines(input, buf_.get() + start, whole - start, position_ + start);
  std::size_t tail = used_ - whole;
  if (tail > max_line_bytes_) {
    SourceCounters::add(counters.oversized_lines, 1);
    skipping_ = true;
    whole = used_;
    tail = 0;
  }
  if (tail > 0 && whole > 0) std::memmove(buf_.get(), buf_.get() + whole, tail);
  position_ += whole;
  used_ = tail;
}

}  // namespace spate::io
