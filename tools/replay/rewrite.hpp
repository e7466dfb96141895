// Per-loop rewriting of events for spate-replay: --shift-time now moves
// every event time by one offset so that the capture looks live (each loop
// continuing where the last one ended in event time), and --fresh-ids
// makes every loop's ids new so that dedup does not drop the repeats.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace spate::replay {

class Rewriter {
 public:
  Rewriter(std::string ts_field, std::string id_field);

  // The event-time span of `ndjson`: the lowest and highest time of its
  // lines (INT64_MAX / INT64_MIN when none has one).
  void span(std::string_view ndjson, std::int64_t& lo, std::int64_t& hi) const;

  // Loop `loop` (from 0): times moved by shift_ms (when shifting), ids
  // suffixed with "~<loop>" (strings) or raised by loop * 10^12 (integers)
  // from the second loop on (when fresh_ids).
  void set_loop(std::uint64_t loop, bool shift, std::int64_t shift_ms, bool fresh_ids) noexcept {
    loop_ = loop;
    shift_ = shift;
    shift_ms_ = shift_ms;
    fresh_ = fresh_ids && loop > 0;
  }
  bool active() const noexcept { return shift_ || fresh_; }
  // Appends the message's lines, rewritten, to `out`.
  void rewrite(std::string_view ndjson, std::string& out) const;

 private:
  // Where the value of the field `key` (with quotes and colon) starts in
  // `line`, or npos.
  std::size_t value_at(std::string_view line, std::string_view key) const noexcept;
  void line(std::string_view line, std::string& out) const;

  std::string ts_key_;  // "ts":
  std::string id_key_;
  std::uint64_t loop_ = 0;
  bool shift_ = false;
  std::int64_t shift_ms_ = 0;
  bool fresh_ = false;
};

}  // namespace spate::replay
