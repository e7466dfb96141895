// Doubles as text: the exact form reads back as the same double, the readable
// form drops the drift of a sum in the 16th and 17th digits.
#include <doctest/doctest.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "kernels/number_text.hpp"

using spate::kernels::format_double_exact;
using spate::kernels::format_double_readable;
using spate::kernels::kNumberTextBytes;

namespace {
std::string exact(double v) {
  char buf[kNumberTextBytes];
  return {buf, format_double_exact(v, buf)};
}
std::string readable(double v) {
  char buf[kNumberTextBytes];
  return {buf, format_double_readable(v, buf)};
}
double parse(const std::string& s) {
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  REQUIRE(r.ec == std::errc{});
  REQUIRE(r.ptr == s.data() + s.size());
  return v;
}
}  // namespace

TEST_CASE("number text: the exact form is the shortest that reads back as the same double") {
  CHECK(exact(0.1 + 0.2) == "0.30000000000000004");
  CHECK(exact(0.1) == "0.1");
  CHECK(exact(34739.74) == "34739.74");
  CHECK(exact(10.0) == "10");
  CHECK(exact(-2.5) == "-2.5");
  CHECK(exact(1e21) == "1e+21");
  CHECK(exact(0.0) == "0");
  CHECK(exact(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(exact(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(exact(std::nan("")) == "nan");
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    double v = 0;
    do {
      const std::uint64_t bits = rng();
      std::memcpy(&v, &bits, sizeof(v));
    } while (!std::isfinite(v));
    const std::string s = exact(v);
    CHECK(s.size() <= kNumberTextBytes - 2);  // room for a ".0"
    CHECK(parse(s) == v);
  }
  CHECK(parse(exact(std::numeric_limits<double>::max())) == std::numeric_limits<double>::max());
  CHECK(parse(exact(std::numeric_limits<double>::denorm_min())) == std::numeric_limits<double>::denorm_min());
  CHECK(parse(exact(-std::numeric_limits<double>::lowest())) == -std::numeric_limits<double>::lowest());
}

TEST_CASE("number text: the readable form prints a sum's drift as the decimal it stands for") {
  double sum = 0;
  for (int i = 0; i < 10; ++i) sum += 0.01;  // 0.09999999999999999, not 0.1
  CHECK(exact(sum) == "0.09999999999999999");
  CHECK(readable(sum) == "0.1");
  CHECK(readable(0.1 + 0.2) == "0.3");
  CHECK(exact(34739.74 + 1e-11) == "34739.740000000005");
  CHECK(readable(34739.74 + 1e-11) == "34739.74");
  // Short values print exactly as they are, in the same form.
  CHECK(readable(34739.74) == "34739.74");
  CHECK(readable(10.0) == "10");
  CHECK(readable(1e21) == "1e+21");
  CHECK(readable(1e-7) == "1e-07");
  CHECK(readable(0.0) == "0");
  CHECK(readable(-1.5) == "-1.5");
  // Fifteen digits are kept, the 16th rounded; no exponent where the exact form has none.
  CHECK(readable(123456789012345.6) == "123456789012346");
  CHECK(readable(1.0 / 3.0) == "0.333333333333333");
  CHECK(readable(123456789012345680.0) == "123456789012345680");
  CHECK(readable(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(readable(std::nan("")) == "nan");
  // Never further from the value than half a unit in the 15th digit.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> spread(-1e9, 1e9);
  for (int i = 0; i < 20000; ++i) {
    const double v = spread(rng);
    const double back = parse(readable(v));
    CHECK(std::fabs(back - v) <= std::fabs(v) * 5e-15);
  }
}
