// The one interface every input source implements (files, stdin, TCP, UDP;
// later DPDK queues, pcap captures, Kafka partitions): the shard loop polls
// its sources with a byte budget, and each hands over whole lines tagged
// with an input (a connection, a socket, a file's stripes) and a position.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/counter.hpp"

namespace spate::io {

// Which kind a source is: an index into the kinds its user registers (the
// engine's, engine/source_kind.hpp), given to the source when it is added.
// It picks the slot of the kind's counters; this layer knows no kind.
using SourceKindId = std::uint8_t;

// Counters a source keeps about itself. One writer (the shard thread that
// polls the source), any reader; relaxed stores, no locked instruction.
// Every source has the first few; the rest are the kind's own, indexed by
// an enum its source declares beside itself (io::TcpFigure, ...) and named
// in STATS by its kind (engine/source_kind.hpp): a kind with a new figure
// adds an enum value and a name, and nothing here.
struct SourceCounters {
  std::atomic<std::uint64_t> bytes_in{0};         // bytes received, whole or not, good or bad
  std::atomic<std::uint64_t> oversized_lines{0};  // lines over max_line_bytes, dropped unread
  std::atomic<std::uint64_t> inputs{0};           // inputs opened since start
  // Gauge: bytes the kernel holds for the source, received and not yet
  // read (TCP: unread stream bytes; UDP: the socket's queued datagrams, as
  // the kernel accounts their memory), measured every second.
  std::atomic<std::uint64_t> waiting_bytes{0};
  // The kind's own.
  static constexpr std::size_t kOwn = 16;
  std::atomic<std::uint64_t> own[kOwn] = {};

  template <typename Figure>
  std::atomic<std::uint64_t>& operator[](Figure f) noexcept {
    static_assert(std::is_enum_v<Figure>);
    return own[static_cast<std::size_t>(f)];
  }
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept { kernels::add_relaxed(c, n); }
};

// A plain copy of SourceCounters, for sums over sources.
struct SourceTotals {
  std::uint64_t bytes_in = 0, oversized_lines = 0, inputs = 0, waiting_bytes = 0;
  std::uint64_t own[SourceCounters::kOwn] = {};

  template <typename Figure>
  std::uint64_t operator[](Figure f) const noexcept {
    static_assert(std::is_enum_v<Figure>);
    return own[static_cast<std::size_t>(f)];
  }
  void add(const SourceCounters& c) noexcept {
    bytes_in += c.bytes_in.load(std::memory_order_relaxed);
    oversized_lines += c.oversized_lines.load(std::memory_order_relaxed);
    inputs += c.inputs.load(std::memory_order_relaxed);
    waiting_bytes += c.waiting_bytes.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < SourceCounters::kOwn; ++i) own[i] += c.own[i].load(std::memory_order_relaxed);
  }
};

// Where a source delivers. Implemented by the shard (event time per input,
// parsing, counting rejects).
class LineSink {
 public:
  virtual ~LineSink() = default;
  // An input begins: it holds event time back until it closes or idles.
  // A connection (one peer of a listener) is counted as one, so that
  // accepted connections can be balanced over the shards.
  virtual std::uint32_t open_input(SourceKindId kind, bool connection) = 0;
  virtual void close_input(std::uint32_t input) = 0;
  // `size` bytes of whole lines of one input (the last may lack its
  // newline only at the input's end), starting at byte `position` of the
  // input's stream. At least `padding` (the source's constructor argument)
  // readable bytes follow them.
  virtual void lines(std::uint32_t input, const char* data, std::size_t size, std::uint64_t position) = 0;
  // The input has data but was held back (a file stripe waiting for the
  // other shards): it is not silent, so it must not go idle.
  virtual void held_back(std::uint32_t input) = 0;
  // The lines handed next were read from their wire at this wall-clock time
  // (ms), not now: a replay of the log says when their block was logged.
  virtual void read_at(std::int64_t wall_ms) { (void)wall_ms; }
  // The lines handed next are a log's events, one a line, each judged live
  // against stamps[i] (event time): they are to be judged so again.
  virtual void read_stamps(const std::int64_t* stamps, std::size_t count) { (void)stamps, (void)count; }
};

class Source {
 public:
  virtual ~Source() = default;
  SourceKindId kind() const noexcept { return kind_; }
  void set_kind(SourceKindId kind) noexcept { kind_ = kind; }
  // Called once, before the shard's thread starts: a source whose input
  // exists from the start (a file, a socket) opens it here, so that it holds
  // event time back before its first read.
  virtual void attach(LineSink& sink) { (void)sink; }
  // Reads what is ready, about `budget` bytes at most, and hands whole lines
  // to the sink. Returns true when it did any work. Descriptor-driven
  // sources read in ready() instead and return false here.
  virtual bool poll(LineSink& sink, std::size_t budget) = 0;
  // A descriptor this source gave the Poller with `token` is readable.
  virtual void ready(std::uint64_t token, LineSink& sink) = 0;
  // Backpressure: a paused source reads nothing, so a TCP peer slows down.
  void pause() noexcept { paused_ = true; }
  void resume() noexcept { paused_ = false; }
  bool paused() const noexcept { return paused_; }
  // A finite source (a file, a capture) ends; finished() once read to its
  // end. Live sources never do.
  virtual bool finite() const noexcept { return false; }
  virtual bool finished() const noexcept { return false; }
  // Sources that accept connections (a listener): one accepted by another
  // shard's listener of the same source and handed over to this one; and,
  // at stop, accepting what the kernel completed, here, then no more.
  virtual void adopt(int fd, LineSink& sink);
  virtual void stop_accepting(LineSink& sink) { (void)sink; }
  // When poll() has work next that no descriptor announces (a capture
  // replayed at its recorded pace), on the monotonic clock in ms.
  virtual std::int64_t next_deadline_ms() const noexcept { return INT64_MAX; }
  // A source no descriptor announces (a NIC queue): the shard never sleeps.
  virtual bool busy_poll() const noexcept { return false; }
  // Sets counters().waiting_bytes from the kernel (sockets); on the shard's thread.
  virtual void measure_backlog() {}
  // Stop: reads what was already received (up to each peer's end, within
  // the deadline on the monotonic clock in ms), hands it over, and closes.
  virtual void drain(LineSink& sink, std::int64_t deadline_ms) = 0;
  SourceCounters& counters() noexcept { return counters_; }
  const SourceCounters& counters() const noexcept { return counters_; }

 private:
  bool paused_ = false;
  SourceKindId kind_ = 0;
  SourceCounters counters_;
};

// The monotonic clock in milliseconds, as the loops and deadlines use it.
std::int64_t monotonic_ms() noexcept;
std::int64_t monotonic_us() noexcept;
// The wall clock in milliseconds since 1970 (event time's scale).
std::int64_t wall_ms() noexcept;

}  // namespace spate::io
