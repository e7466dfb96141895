// Short-key copy and compare against their scalar reference.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>

#include "kernels/small_bytes.hpp"

using spate::kernels::copy_bytes;
using spate::kernels::equal_bytes;
using spate::kernels::equal_bytes_reference;

TEST_CASE("small bytes: compare and copy agree with the reference for every length and unaligned start") {
  std::mt19937_64 rng(1);
  for (std::size_t n = 0; n <= 40; ++n) {
    for (std::size_t offset = 0; offset < 8; ++offset) {
      std::string a(n + 16, '\0'), b(n + 16, '\0');
      for (auto& c : a) c = static_cast<char>(rng());
      std::memcpy(b.data() + offset, a.data() + offset, n);
      CHECK(equal_bytes(a.data() + offset, b.data() + offset, n));
      CHECK(equal_bytes_reference(a.data() + offset, b.data() + offset, n));
      for (std::size_t flip = 0; flip < n; ++flip) {  // a difference at any position is seen
        b[offset + flip] ^= 1;
        CHECK_FALSE(equal_bytes(a.data() + offset, b.data() + offset, n));
        CHECK(equal_bytes(a.data() + offset, b.data() + offset, n) ==
              equal_bytes_reference(a.data() + offset, b.data() + offset, n));
        b[offset + flip] ^= 1;
      }
      std::string dst(n + 16, 'x');
      copy_bytes(dst.data() + offset, a.data() + offset, n);
      CHECK(std::memcmp(dst.data() + offset, a.data() + offset, n) == 0);
      for (std::size_t i = 0; i < offset; ++i) CHECK(dst[i] == 'x');  // nothing written outside [0, n)
      for (std::size_t i = offset + n; i < dst.size(); ++i) CHECK(dst[i] == 'x');
    }
  }
}
