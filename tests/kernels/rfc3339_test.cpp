// RFC 3339 parsing and formatting.
#include <doctest/doctest.h>

#include "kernels/rfc3339.hpp"

using spate::kernels::format_rfc3339_ms;
using spate::kernels::parse_rfc3339_ms;

TEST_CASE("rfc3339: UTC, offsets and fractions give exact epoch milliseconds") {
  CHECK(parse_rfc3339_ms("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339_ms("2025-11-24T16:00:00.123Z") == 1764000000123);
  CHECK(parse_rfc3339_ms("2025-11-24T17:00:00.123+01:00") == 1764000000123);
  CHECK(parse_rfc3339_ms("2025-11-24T15:30:00.123-00:30") == 1764000000123);
  CHECK(parse_rfc3339_ms("2025-11-24t16:00:00.1239z") == 1764000000123);  // truncated past ms
  CHECK(parse_rfc3339_ms("2025-11-24 16:00:00.5Z") == 1764000000500);
  CHECK(parse_rfc3339_ms("1969-12-31T23:59:59.999Z") == -1);
  CHECK(parse_rfc3339_ms("2024-02-29T00:00:00Z") == 1709164800000);
}

TEST_CASE("rfc3339: malformed or out-of-range text is rejected") {
  for (const char* bad : {"", "2025-11-24", "2025-11-24T16:00:00", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                          "2025-11-24T24:00:00Z", "2025-11-24T16:00:00.Z", "2025-11-24T16:00:00Zjunk",
                          "2025-11-24T16:00:00+0100", "not-a-date", "2025-11-24T16:0a:00Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_rfc3339_ms(bad).has_value());
  }
}

TEST_CASE("rfc3339: formatting round-trips through parsing") {
  char buf[32];
  for (std::int64_t ms : {std::int64_t{0}, std::int64_t{1764000000123}, std::int64_t{-1}, std::int64_t{951782400000},
                          std::int64_t{4102444799999}}) {
    const auto n = format_rfc3339_ms(ms, buf);
    CHECK(n == 24);
    CHECK(parse_rfc3339_ms(std::string_view(buf, n)) == ms);
  }
  format_rfc3339_ms(1764000000123, buf);
  CHECK(std::string_view(buf, 24) == "2025-11-24T16:00:00.123Z");
}
