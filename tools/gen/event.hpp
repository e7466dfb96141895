// The clickstream event of spate-gen: the shape of the generated stream, the event and the
// tallies of what was generated, and the formatting of event lines and hostile objects.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "kernels/rfc3339.hpp"

namespace spate::gen {

// ---------------------------------------------------------------------------------------------
// Constants of the generated stream.

inline constexpr std::uint64_t kLateWarmupEvents = 10000;  // no late event before every shard saw traffic
inline constexpr std::int64_t kOooMaxMs = 2000;            // out-of-order: ts = now - [1, 2000]
inline constexpr std::int64_t kLateMinMs = 600000;         // late: ts = now - [600000, 1200000]
inline constexpr std::int64_t kLateSpanMs = 600000;
inline constexpr std::size_t kDupRing = 1024;              // recent events a duplicate may copy
inline constexpr std::uint64_t kDupLookbackEvents = 1000;
inline constexpr double kDupLookbackMs = 1000.0;           // a duplicate copies an event at most ~1 s older...
inline constexpr std::int64_t kDupMaxBehindMs = 3000;      // ...so its ts is never 3 s behind now (lateness 5 s)
inline constexpr std::uint32_t kMaxAmountCents = 99999;    // amounts 0.01 .. 999.99
inline constexpr std::uint32_t kPages = 10000;
inline constexpr std::int64_t kSessionMs = 30 * 60 * 1000;  // a user's session id changes every 30 min
inline constexpr std::int64_t kMinStartMs = kLateMinMs + kLateSpanMs;     // keeps every ts >= 0
inline constexpr std::int64_t kMaxTsMs = 253402300799999 - kLateSpanMs;  // RFC 3339 years stay <= 9999
inline constexpr std::size_t kOversizedSlackMin = 64;  // an oversized line exceeds the limit by 64..1087 bytes
inline constexpr std::size_t kOversizedSlackSpan = 1024;

enum class Reason : std::uint8_t { malformed_json, missing_field, wrong_type, bad_timestamp, oversized_line };
inline constexpr std::size_t kReasons = 5;
inline constexpr std::array<const char*, kReasons> kReasonNames = {"malformed_json", "missing_field", "wrong_type",
                                                                   "bad_timestamp", "oversized_line"};

inline constexpr std::array<const char*, 4> kUserAgents = {
    "Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (Windows NT 10.0)", "Mozilla/5.0 (Macintosh)",
    "Mozilla/5.0 (iPhone; iOS 17)"};
inline constexpr std::array<const char*, 5> kPageKinds = {"item", "list", "cart", "search", "home"};

// ---------------------------------------------------------------------------------------------
// The event, and what a generator counts.

struct Event {
  std::int64_t id = 0;
  std::int64_t ts = 0;
  std::uint32_t user = 0;     // 1-based: "u<user>"
  std::uint32_t cents = 0;    // amount in cents, 1..99999
  std::uint32_t session = 0;  // 24 bits
  std::uint16_t page = 0;
  std::uint8_t type = 0;
  bool rfc = false;  // ts written as an RFC 3339 string
  bool late = false;
};

struct Counts {
  std::uint64_t events = 0;  // event lines, duplicates and late ones included
  std::uint64_t late = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t hostile = 0;
  std::array<std::uint64_t, kReasons> rejects{};
};

inline constexpr std::size_t kMaxTypeBytes = 32;
inline constexpr std::size_t kMaxEventLineBytes = 400;  // generous bound of write_event's output

// ---------------------------------------------------------------------------------------------
// Hand-written formatting of the event line (fixed shapes, digit pairs from a table). Inline
// here so the generator's per-event path compiles with it: called out of line in another file,
// generation into /dev/null ran ~9% slower on a 2-core EPYC VM.

inline constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

inline unsigned decimal_digits(std::uint64_t v) noexcept {
  unsigned n = 1;
  while (n < 20 && v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Writes v with at least `width` digits (zero-padded).
inline char* put_u64(char* p, std::uint64_t v, unsigned width = 1) noexcept {
  const unsigned n = std::max(decimal_digits(v), width);
  char* const end = p + n;
  char* q = end;
  while (v >= 100) {
    q -= 2;
    std::memcpy(q, kDigitPairs + (v % 100) * 2, 2);
    v /= 100;
  }
  if (v >= 10) {
    q -= 2;
    std::memcpy(q, kDigitPairs + v * 2, 2);
  } else {
    *--q = static_cast<char>('0' + v);
  }
  while (q > p) *--q = '0';
  return end;
}

inline char* put_i64(char* p, std::int64_t v) noexcept {
  if (v < 0) {
    *p++ = '-';
    return put_u64(p, 0 - static_cast<std::uint64_t>(v));
  }
  return put_u64(p, static_cast<std::uint64_t>(v));
}

inline char* put_cents(char* p, std::uint32_t cents) noexcept {
  p = put_u64(p, cents / 100);
  *p++ = '.';
  std::memcpy(p, kDigitPairs + (cents % 100) * 2, 2);
  return p + 2;
}

inline char* put_hex6(char* p, std::uint32_t v) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 5; i >= 0; --i) {
    p[i] = kHex[v & 15];
    v >>= 4;
  }
  return p + 6;
}

template <std::size_t N>
inline char* put_lit(char* p, const char (&s)[N]) noexcept {
  std::memcpy(p, s, N - 1);
  return p + N - 1;
}

inline char* put_str(char* p, std::string_view s) noexcept {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// {"id":"e00000000042","ts":1764000000042,"user":"u1234","type":"click","amount":12.34,
//  "session":"s3f9a2c","page":"/p/1234/item","ua":"Mozilla/5.0 (X11; Linux)"}  (newline not included)
inline char* write_event_body(char* p, const Event& e, std::string_view type, char id_prefix) noexcept {
  p = put_lit(p, "{\"id\":\"");
  *p++ = id_prefix;
  p = put_u64(p, static_cast<std::uint64_t>(e.id), 11);
  p = put_lit(p, "\",\"ts\":");
  if (e.rfc) {
    *p++ = '"';
    p += kernels::format_rfc3339_ms(e.ts, p);
    *p++ = '"';
  } else {
    p = put_i64(p, e.ts);
  }
  p = put_lit(p, ",\"user\":\"u");
  p = put_u64(p, e.user);
  p = put_lit(p, "\",\"type\":\"");
  p = put_str(p, type);
  p = put_lit(p, "\",\"amount\":");
  p = put_cents(p, e.cents);
  p = put_lit(p, ",\"session\":\"s");
  p = put_hex6(p, e.session);
  p = put_lit(p, "\",\"page\":\"/p/");
  p = put_u64(p, e.page);
  *p++ = '/';
  p = put_str(p, kPageKinds[e.type % kPageKinds.size()]);
  p = put_lit(p, "\",\"ua\":\"");
  p = put_str(p, kUserAgents[e.user % kUserAgents.size()]);
  p = put_lit(p, "\"}");
  return p;
}

// ---------------------------------------------------------------------------------------------
// Lines that are not events, and amounts as read back.

// An event object with field `omit` (0 id, 1 ts, 2 user, 3 type, 4 amount) left out, or one
// field given a wrong value (`wrong`: 0 amount as string, 1 user as number, 2 ts as bool,
// 3 type as number, 4 ts "not-a-date", 5 ts with out-of-range fields).
void append_fields(std::string& s, const Event& e, std::string_view type, int omit, int wrong);

// The amount of `cents` as an engine reads it: strtod of the text the event line prints ("12.34").
double printed_amount(std::uint32_t cents);

}  // namespace spate::gen
