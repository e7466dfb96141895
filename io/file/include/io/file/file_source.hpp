// A file, a caller's buffer or stdin as a source. A file (or buffer) is cut
// into line-aligned stripes dealt round-robin to the shards; one shard's
// stripes of one file are one input, read in file order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "io/file/line_buffer.hpp"
#include "io/file/poller.hpp"
#include "io/file/source.hpp"

namespace spate::io {

struct FileStripe {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t index = 0;  // position in the file's stripe order
};

class FileSource final : public Source {
 public:
  // A file's stripes on this shard; `fd` is owned (closed at the end).
  // may_read(stripe) is asked before each read: a shard that runs ahead of
  // the others in the file waits for them (event-time alignment).
  static std::unique_ptr<FileSource> file(int fd, std::size_t max_line_bytes, std::size_t padding,
                                          std::function<bool(std::uint64_t)> may_read);
  // Stripes of a buffer the caller keeps alive, with `padding` readable
  // bytes past its end: parsed where they lie, never copied.
  static std::unique_ptr<FileSource> buffer(const char* data, std::function<bool(std::uint64_t)> may_read);
  // Standard input, read when the poller says so (never blocking the loop).
  static std::unique_ptr<FileSource> standard_input(Poller& poller, std::size_t max_line_bytes, std::size_t padding);
  ~FileSource() override;

  void add_stripe(FileStripe stripe) { stripes_.push_back(stripe); }

  bool finite() const noexcept override { return true; }
  void attach(LineSink& sink) override;
  bool poll(LineSink& sink, std::size_t budget) override;
  void ready(std::uint64_t token, LineSink& sink) override;
  bool finished() const noexcept override { return finished_; }
  void drain(LineSink& sink, std::int64_t deadline_ms) override;

 private:
  FileSource() = default;
  bool read_stdin(LineSink& sink);
  void finish(LineSink& sink);

  int fd_ = -1;
  bool is_stdin_ = false;
  Poller* poller_ = nullptr;
  const char* memory_ = nullptr;
  std::unique_ptr<LineBuffer> buffer_;
  std::vector<FileStripe> stripes_;
  std::size_t next_ = 0;  // the stripe being read
  std::size_t started_ = SIZE_MAX;  // the stripe whose reading began
  std::function<bool(std::uint64_t)> may_read_;
  std::uint32_t input_ = 0;
  bool finished_ = false;
};

}  // namespace spate::io
