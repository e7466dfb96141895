// Stream reassembly into whole lines; see line_buffer.hpp.
#include "io/file/line_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace spate::io {

ReadArena::ReadArena(std::size_t chunk_bytes, std::size_t max_line_bytes, std::size_t padding)
    : chunk_bytes_(chunk_bytes),
      capacity_(chunk_bytes + max_line_bytes + 1),
      buf_(std::make_unique<char[]>(capacity_ + padding)) {}

LineBuffer::LineBuffer(std::size_t chunk_bytes, std::size_t max_line_bytes, std::size_t padding)
    : own_(std::make_unique<char[]>(chunk_bytes + max_line_bytes + 1 + padding)),
      buf_(own_.get()),
      capacity_(chunk_bytes + max_line_bytes + 1),
      max_line_bytes_(max_line_bytes) {}

LineBuffer::LineBuffer(ReadArena& arena, std::size_t max_line_bytes)
    : arena_(&arena), buf_(arena.data()), capacity_(arena.capacity()), max_line_bytes_(max_line_bytes) {}

char* LineBuffer::prepare() noexcept {
  if (arena_ != nullptr) {
    buf_ = arena_->data();
    std::memcpy(buf_, partial_.data(), partial_.size());
    used_ = partial_.size();
    partial_.clear();
  }
  return buf_ + used_;
}

void LineBuffer::commit(std::size_t n, bool eof, LineSink& sink, std::uint32_t input, SourceCounters& counters) {
  used_ += n;
  std::size_t start = 0;
  if (skipping_) {
    const void* nl = std::memchr(buf_, '\n', used_);
    if (nl == nullptr) {  // still inside the oversized line
      position_ += used_;
      used_ = 0;
      if (eof) skipping_ = false;
      return;
    }
    start = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_) + 1;
    skipping_ = false;
  }
  // One backward scan finds where the whole lines end; the sink splits them.
  std::size_t whole = start;
  if (eof) {
    whole = used_;
  } else if (used_ > start) {
    const void* last = ::memrchr(buf_ + start, '\n', used_ - start);
    if (last != nullptr) whole = static_cast<std::size_t>(static_cast<const char*>(last) - buf_) + 1;
  }
  if (whole > start) sink.lines(input, buf_ + start, whole - start, position_ + start);
  std::size_t tail = used_ - whole;
  if (tail > max_line_bytes_) {
    SourceCounters::add(counters.oversized_lines, 1);
    skipping_ = true;
    whole = used_;
    tail = 0;
  }
  position_ += whole;
  if (arena_ != nullptr) {
    // The arena goes to the next connection: keep the partial line apart,
    // and give back the memory of a long one once it is done.
    if (tail == 0 && partial_.capacity() > 4096) std::string().swap(partial_);
    partial_.assign(buf_ + whole, tail);
    used_ = 0;
    return;
  }
  if (tail > 0 && whole > 0) std::memmove(buf_, buf_ + whole, tail);
  used_ = tail;
}

}  // namespace spate::io
