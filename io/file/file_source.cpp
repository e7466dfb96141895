// Files, buffers and stdin as sources; see file_source.hpp.
#include "io/file/file_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace spate::io {
namespace {
constexpr std::size_t kChunkBytes = 1 << 20;
}  // namespace

std::unique_ptr<FileSource> FileSource::file(int fd, std::size_t max_line_bytes, std::size_t padding,
                                             std::function<bool(std::uint64_t)> may_read) {
  std::unique_ptr<FileSource> s(new FileSource);
  s->fd_ = fd;
  s->buffer_ = std::make_unique<LineBuffer>(kChunkBytes, max_line_bytes, padding);
  s->may_read_ = std::move(may_read);
  return s;
}

std::unique_ptr<FileSource> FileSource::buffer(const char* data, std::function<bool(std::uint64_t)> may_read) {
  std::unique_ptr<FileSource> s(new FileSource);
  s->memory_ = data;
  s->may_read_ = std::move(may_read);
  return s;
}

std::unique_ptr<FileSource> FileSource::standard_input(Poller& poller, std::size_t max_line_bytes,
                                                       std::size_t padding) {
  std::unique_ptr<FileSource> s(new FileSource);
  s->fd_ = STDIN_FILENO;
  s->is_stdin_ = true;
  s->poller_ = &poller;
  s->buffer_ = std::make_unique<LineBuffer>(kChunkBytes, max_line_bytes, padding);
  // Never block the shard loop on a pipe or terminal: read when epoll says
  // so. A regular file cannot be polled (EPERM) and is always readable.
  ::fcntl(STDIN_FILENO, F_SETFL, ::fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
  try {
    poller.add(STDIN_FILENO, s.get(), 0);
  } catch (const std::exception&) {
    s->poller_ = nullptr;
  }
  return s;
}

FileSource::~FileSource() {
  if (poller_ != nullptr && !finished_) poller_->remove(fd_);
  if (fd_ >= 0 && !is_stdin_ && !finished_) ::close(fd_);
}

void FileSource::attach(LineSink& sink) {
  input_ = sink.open_input(kind(), false);
  SourceCounters::add(counters().inputs, 1);
}

bool FileSource::poll(LineSink& sink, std::size_t budget) {
  if (finished_ || paused()) return false;
  if (is_stdin_) return poller_ == nullptr && read_stdin(sink);  // a polled stdin reads in ready()
  if (next_ >= stripes_.size()) {
    finish(sink);
    return true;
  }
  FileStripe& s = stripes_[next_];
  if (may_read_ && !may_read_(s.index)) {
    sink.held_back(input_);
    return false;
  }
  if (memory_ != nullptr) {
    // A buffer stripe (at most 1 MiB of whole lines) goes over in one piece.
    SourceCounters::add(counters().bytes_in, s.end - s.begin);
    sink.lines(input_, memory_ + s.begin, s.end - s.begin, s.begin);
    ++next_;
    return true;
  }
  if (started_ != next_) {  // positions are offsets in the file: a stripe starts where it lies
    buffer_->restart_at(s.begin);
    started_ = next_;
  }
  const std::size_t want = static_cast<std::size_t>(
      std::min<std::uint64_t>({buffer_->room(), std::max<std::size_t>(budget, 1), s.end - s.begin}));
  const ssize_t n = want == 0 ? 0 : ::pread(fd_, buffer_->prepare(), want, static_cast<off_t>(s.begin));
  if (n < 0 && errno == EINTR) return true;
  const bool stripe_end = n <= 0;  // a stripe ends at a line start: the rest is whole lines
  if (!stripe_end) {
    s.begin += static_cast<std::uint64_t>(n);
    SourceCounters::add(counters().bytes_in, static_cast<std::uint64_t>(n));
  }
  buffer_->commit(stripe_end ? 0 : static_cast<std::size_t>(n), stripe_end, sink, input_, counters());
  if (stripe_end) ++next_;
  return true;
}

void FileSource::ready(std::uint64_t, LineSink& sink) {
  if (!finished_ && !paused()) read_stdin(sink);
}

bool FileSource::read_stdin(LineSink& sink) {
  const ssize_t n = ::read(fd_, buffer_->prepare(), std::min(buffer_->room(), kChunkBytes));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return false;
  if (n > 0) {
    SourceCounters::add(counters().bytes_in, static_cast<std::uint64_t>(n));
    buffer_->commit(static_cast<std::size_t>(n), false, sink, input_, counters());
    return true;
  }
  buffer_->commit(0, true, sink, input_, counters());
  finish(sink);
  return true;
}

void FileSource::finish(LineSink& sink) {
  if (finished_) return;
  finished_ = true;
  if (poller_ != nullptr) poller_->remove(fd_);
  if (fd_ >= 0 && !is_stdin_) ::close(fd_);
  sink.close_input(input_);
}

void FileSource::drain(LineSink& sink, std::int64_t) {
  // A file is read to its end before a stop completes (batch mode), or the
  // stop abandons it; either way nothing received is pending here.
  (void)sink;
}

}  // namespace spate::io
