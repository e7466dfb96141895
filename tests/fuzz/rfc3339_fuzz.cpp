// libFuzzer target: kernels::parse_rfc3339_ms and format_rfc3339_ms.
// Checked: an accepted text names a real calendar date and its value is
// what std::chrono computes from its fields; 't', ' ' and 'z' read as 'T'
// and 'Z'; a time in years 0000-9999 formats to text that parses back to it.
// The first 8 bytes are also formatted as a time of their own.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "kernels/rfc3339.hpp"

namespace {

using spate::kernels::format_rfc3339_ms;
using spate::kernels::parse_rfc3339_ms;

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "rfc3339 invariant: %s: '%.*s'\n", what, static_cast<int>(text.size()), text.data());
  std::abort();
}

int num(std::string_view s, std::size_t pos, std::size_t n) {
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) v = v * 10 + (s[pos + i] - '0');
  return v;
}

// 0000-01-01T00:00:00.000Z up to 9999-12-31T23:59:59.999Z: what the formatter's four digits hold.
constexpr std::int64_t kMinFormattable = spate::kernels::days_from_civil(0, 1, 1) * 86400000;
constexpr std::int64_t kEndFormattable = spate::kernels::days_from_civil(10000, 1, 1) * 86400000;

void check_round_trip(std::int64_t ms, std::string_view from) {
  // Exactly 24 bytes, so that ASan sees a write past them.
  const auto out = std::make_unique<char[]>(24);
  const std::size_t n = format_rfc3339_ms(ms, out.get());
  if (n != 24) fail("format wrote other than 24 bytes", from);
  if (ms < kMinFormattable || ms >= kEndFormattable) return;
  const std::string_view text(out.get(), n);
  const auto back = parse_rfc3339_ms(text);
  if (!back) fail("a formatted time does not parse", text);
  if (*back != ms) fail("a formatted time parses to another value", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size >= 8) {
    std::int64_t ms;
    std::memcpy(&ms, data, sizeof(ms));
    check_round_trip(ms, "(the first 8 bytes)");
  }
  // A copy of exactly the text's size, so that ASan sees a read past it.
  const auto copy = std::make_unique<char[]>(size);
  std::memcpy(copy.get(), data, size);
  const std::string_view text(copy.get(), size);
  const auto parsed = parse_rfc3339_ms(text);
  if (!parsed) return 0;

  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), from the fixed positions.
  using namespace std::chrono;
  const year_month_day date{year{num(text, 0, 4)}, month{static_cast<unsigned>(num(text, 5, 2))},
                            day{static_cast<unsigned>(num(text, 8, 2))}};
  if (!date.ok()) fail("accepted a date that does not exist", text);
  std::int64_t want = sys_days{date}.time_since_epoch().count() * std::int64_t{86400000} +
                      (num(text, 11, 2) * 3600 + num(text, 14, 2) * 60 + num(text, 17, 2)) * std::int64_t{1000};
  std::size_t pos = 19;
  if (text[pos] == '.') {
    // The first three digits, the rest truncated.
    ++pos;
    int millis = 0, scale = 100;
    for (; text[pos] >= '0' && text[pos] <= '9'; ++pos, scale /= 10) millis += (text[pos] - '0') * scale;
    want += millis;
  }
  if (text[pos] == '+' || text[pos] == '-') {
    const std::int64_t offset = (num(text, pos + 1, 2) * 60 + num(text, pos + 4, 2)) * std::int64_t{60000};
    want -= text[pos] == '-' ? -offset : offset;
  } else if (text[pos] != 'Z' && text[pos] != 'z') {
    fail("accepted without a zone", text);
  }
  if (*parsed != want) fail("parsed to another value than std::chrono's", text);

  std::string upper(text);
  upper[10] = 'T';
  if (upper[pos] == 'z') upper[pos] = 'Z';
  if (parse_rfc3339_ms(upper) != parsed) fail("'t', ' ' or 'z' read differently from 'T' or 'Z'", text);
  check_round_trip(*parsed, text);
  return 0;
}
