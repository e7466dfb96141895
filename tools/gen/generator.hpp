// The generator model of spate-gen: one line (event or hostile) per call, with duplicates,
// late and out-of-order times. The per-event path is defined here, inlined into the caller's
// chunk loop; set-up and hostile lines are in generator.cpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gen/event.hpp"
#include "gen/expect.hpp"
#include "gen/options.hpp"
#include "gen/rng.hpp"

namespace spate::gen {

// ---------------------------------------------------------------------------------------------
// The generator: one line per call, into a caller's buffer.

class Generator {
 public:
  // Keeps references to `o` and `expect` (may be null); every event not late goes to expect.
  Generator(const Options& o, Expect* expect);

  bool done() const noexcept { return counts_.events >= o_.events; }
  // --live: the wall clock, read once a chunk, dates the events that follow
  // (never moving back). The other mode never calls it: start_ms + i * step_ms.
  void set_clock_ms(std::int64_t now_ms) noexcept { base_ms_ = std::max(base_ms_, now_ms); }
  const Counts& counts() const noexcept { return counts_; }

  // Upper bound of the bytes one call to next_line writes.
  std::size_t line_capacity() const noexcept {
    return std::max(kMaxEventLineBytes, oversized_bytes_max(o_.max_line_bytes) + 16);
  }
  static std::size_t oversized_bytes_max(std::size_t max_line_bytes) noexcept {
    return max_line_bytes + kOversizedSlackMin + kOversizedSlackSpan + 1;  // + newline
  }

  // Writes the next line (with its newline) at p and returns its end. Forced inline, with
  // next_event: GCC 12 leaves them out of line, and the call per event made generation into
  // /dev/null ~10% slower on a 2-core EPYC VM.
  [[gnu::always_inline]] char* next_line(char* p, bool& is_event) {
    if (!hostile_checked_) {
      hostile_checked_ = true;
      if (hostile_ != 0 && hostile_rng_.bits53() < hostile_) {
        is_event = false;
        return next_hostile(p);
      }
    }
    hostile_checked_ = false;
    is_event = true;
    return next_event(p);
  }

 private:
  std::int64_t now_of(std::uint64_t i) const noexcept {
    return base_ms_ + static_cast<std::int64_t>(static_cast<double>(i) * o_.step_ms);  // --live: step_ms is 0
  }
  std::string_view type_name(std::uint8_t t) const noexcept { return o_.types[t]; }

  char* emit(char* p, const Event& e) {
    p = write_event_body(p, e, type_name(e.type), 'e');
    *p++ = '\n';
    return p;
  }

  void account(const Event& e) {
    if (e.late) {
      ++counts_.late;
    } else if (expect_ != nullptr) {
      expect_->add(e);
    }
  }

  Event fresh(Rng& rng, std::int64_t ts) const noexcept {
    Event e;
    e.ts = ts;
    e.user = users_.draw(rng.bits53()) + 1;
    e.type = static_cast<std::uint8_t>(types_.draw(rng.bits53()));
    e.cents = static_cast<std::uint32_t>(1 + rng.below(kMaxAmountCents));
    e.page = static_cast<std::uint16_t>(rng.below(kPages));
    e.rfc = rng.bits53() < rfc_;
    return e;
  }

  std::uint32_t session_of(std::uint32_t user, std::int64_t ts) const noexcept {
    const auto bucket = static_cast<std::uint64_t>(floor_div(ts, kSessionMs));
    return static_cast<std::uint32_t>(mix64((static_cast<std::uint64_t>(user) << 32) ^ bucket ^ o_.seed) & 0xffffff);
  }

  [[gnu::always_inline]] char* next_event(char* p) {
    const std::uint64_t i = counts_.events++;
    const std::int64_t now = now_of(i);
    const std::uint64_t u = rng_.bits53();
    if (u < dup_end_ && ring_size_ > 0) {
      const std::uint64_t back = rng_.below(std::min<std::uint64_t>(ring_size_, dup_lookback_));
      const Event& src = ring_[(ring_next_ - 1 - back) % kDupRing];
      if (src.late || src.ts >= now - kDupMaxBehindMs) {  // a re-sent late event is late again
        ++counts_.duplicates;
        // The pipeline drops a duplicate by its id, except a late one: it
        // is dated beyond the dedup horizon (5 min) and is late again.
        if (src.late || o_.expect_duplicates) account(src);
        return emit(p, src);
      }
    }
    Event e = fresh(rng_, now);
    e.id = static_cast<std::int64_t>(next_id_++);
    if (u >= dup_end_ && u < late_end_) {
      if (i >= kLateWarmupEvents) {
        e.late = true;
        e.ts = now - kLateMinMs - static_cast<std::int64_t>(rng_.below(kLateSpanMs + 1));
      }
    } else if (u >= late_end_ && u < ooo_end_) {
      e.ts = now - 1 - static_cast<std::int64_t>(rng_.below(kOooMaxMs));
    }
    e.session = session_of(e.user, e.ts);
    ring_[ring_next_ % kDupRing] = e;
    ++ring_next_;
    ring_size_ = std::min<std::uint64_t>(ring_size_ + 1, kDupRing);
    account(e);
    return emit(p, e);
  }

  // Rotates through the reasons; each reason rotates through its variants.
  char* next_hostile(char* p);

  const Options& o_;
  Expect* expect_;
  Rng rng_;
  Rng hostile_rng_;
  WeightedTable users_;
  WeightedTable types_;
  std::uint64_t dup_end_, late_end_, ooo_end_, rfc_, hostile_;
  std::uint64_t dup_lookback_ = kDupLookbackEvents;
  std::array<Event, kDupRing> ring_{};
  std::uint64_t ring_next_ = 0;
  std::uint64_t ring_size_ = 0;
  std::uint64_t next_id_ = 0;
  std::int64_t base_ms_;  // start_ms, or with --live the wall clock of the chunk
  bool hostile_checked_ = false;
  Counts counts_;
  std::string scratch_;
};

}  // namespace spate::gen
