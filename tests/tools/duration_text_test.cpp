// spate-query's durations: the unit that keeps them short, 3 significant digits.
#include <doctest/doctest.h>

#include <cstdint>

#include "duration_text.hpp"

using spate::tools::duration_text;

TEST_CASE("duration text: µs below 1 ms, ms below 1 s, s above, to 3 significant digits") {
  CHECK(duration_text(0) == "0 µs");
  CHECK(duration_text(7) == "7 µs");
  CHECK(duration_text(999) == "999 µs");
  CHECK(duration_text(1000) == "1.00 ms");
  CHECK(duration_text(1023) == "1.02 ms");
  CHECK(duration_text(1025) == "1.03 ms");  // half up
  CHECK(duration_text(12345) == "12.3 ms");
  CHECK(duration_text(123456) == "123 ms");
  CHECK(duration_text(999499) == "999 ms");
  CHECK(duration_text(1000000) == "1.00 s");
  CHECK(duration_text(1310719) == "1.31 s");
  CHECK(duration_text(45678901) == "45.7 s");
  CHECK(duration_text(999999999) == "1000 s");
  CHECK(duration_text(1073741823) == "1070 s");  // a bucket's top that watch showed as "1073741823 us"
}

TEST_CASE("duration text: what rounds up to the next unit is written in it, and the last bound is inf") {
  CHECK(duration_text(999500) == "1.00 s");  // not "1000 ms"
  CHECK(duration_text(999950) == "1.00 s");
  CHECK(duration_text(9995) == "10.0 ms");   // not "10.00 ms"
  CHECK(duration_text(99950) == "100 ms");   // not "100.0 ms"
  CHECK(duration_text(UINT64_MAX) == "inf");
  CHECK(duration_text(UINT64_MAX - 1) == "18400000000000 s");
}
