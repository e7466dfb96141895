// Event-time progress of one shard's own inputs (a TCP connection, a UDP
// socket, a file's stripes on this shard, a PUBLISH producer), kept per input
// as Flink keeps watermarks per partition: the shard's input watermark is the
// minimum over its active inputs, judged event by event.
#pragma once

#include <cstdint>
#include <vector>

namespace spate::engine {

class InputClock {
 public:
  // watermark() when no input holds event time back.
  static constexpr std::int64_t kNone = INT64_MAX;

  // A new input. It holds event time back from the start, as a new Kafka
  // partition does in Flink: a file stripe that another shard has not begun
  // to read yet, or a connection whose first bytes are in flight, must not
  // find its windows closed. One that delivers nothing for the idle timeout
  // stops holding back.
  std::uint32_t open();
  // The input left (connection closed, file read to its end): it no longer
  // holds event time back, and its slot may serve another input.
  void close(std::uint32_t input) noexcept;

  // Records an event of `input` stamped ts and returns the watermark as it
  // stood before that event (kNone: every input was idle). An input that
  // was idle becomes active again.
  std::int64_t observe(std::uint32_t input, std::int64_t ts) noexcept {
    Input& in = inputs_[input];
    in.fresh = true;
    const std::int64_t before = min_;
    if (ts > newest_) newest_ = ts;
    if (!in.active) {
      in.active = true;
      if (ts > in.newest) in.newest = ts;
      recompute();
    } else if (ts > in.newest) {
      // Only the input that holds the minimum can move it. With N inputs at
      // similar paces that is one event in N, so the O(N) walk is O(1)
      // per event amortized.
      const bool held_min = in.newest == min_;
      in.newest = ts;
      if (held_min) {
        if (active_ == 1) min_ = ts;  // the only input: no walk (15 instructions an event)
        else recompute();
      }
    }
    return before;
  }

  // The minimum over active inputs of the newest stamp each delivered.
  std::int64_t watermark() const noexcept { return min_; }
  // The newest stamp any input ever delivered (INT64_MIN: none).
  std::int64_t newest() const noexcept { return newest_; }
  // An event dated ts was seen (a replayed one, whose input moves by its logged stamp).
  void saw(std::int64_t ts) noexcept {
    if (ts > newest_) newest_ = ts;
  }

  // Called every maintenance tick: an input that delivered nothing for
  // idle_ms stops holding the watermark back until its next event. After a
  // stall (nothing was read) every input's silence counts from now.
  void tick(std::int64_t now_ms, std::int64_t idle_ms, bool stalled = false) noexcept;

  // The input is alive without an event (held back by the engine): its
  // silence counts from the next tick.
  void touch(std::uint32_t input) noexcept { inputs_[input].fresh = true; }
  bool is_active(std::uint32_t input) const noexcept { return inputs_[input].active; }
  std::uint32_t open_count() const noexcept { return open_; }
  std::uint32_t active_count() const noexcept { return active_; }

 private:
  struct Input {
    std::int64_t newest = INT64_MIN;
    std::int64_t last_event_ms = 0;  // wall clock, as of the tick that saw it fresh
    bool open = false;
    bool active = false;  // counted in the minimum: open and not idle
    bool fresh = false;   // delivered an event since the last tick
  };
  void recompute() noexcept;

  std::vector<Input> inputs_;
  std::vector<std::uint32_t> free_;
  std::int64_t min_ = kNone;
  std::int64_t newest_ = INT64_MIN;
  std::uint32_t open_ = 0;
  std::uint32_t active_ = 0;  // inputs counted in the minimum
};

}  // namespace spate::engine
