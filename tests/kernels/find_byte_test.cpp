// find_byte: every variant this CPU has against the scalar reference.
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/find_byte.hpp"

using namespace spate::kernels;

namespace {

// The variants this CPU can run, each switched to and confirmed running.
std::vector<std::string_view> runnable_variants() {
  std::vector<std::string_view> names;
  for (const std::string_view name : {"scalar", "avx2", "avx512"}) {
    if (use_find_byte_variant(name)) {
      REQUIRE(find_byte_variant() == name);  // not a silent fallback to another variant
      names.push_back(name);
    }
  }
  return names;
}

// Restores the start-up choice after a test switched variants.
struct RestoreVariant {
  std::string saved{find_byte_variant()};
  ~RestoreVariant() { use_find_byte_variant(saved); }
};

}  // namespace

TEST_CASE("find byte: every variant finds the first newline like the scalar reference") {
  const RestoreVariant restore;
  const auto variants = runnable_variants();
  REQUIRE(!variants.empty());
  MESSAGE("find_byte variants on this CPU: ", variants.size());
  std::mt19937_64 rng(7);
  std::string buf(512, 'x');
  bool all_equal = true;
  for (const std::string_view name : variants) {
    REQUIRE(use_find_byte_variant(name));
    for (std::size_t len = 0; len <= 200; ++len) {
      for (std::size_t start = 0; start < 64; start += (len < 70 ? 1 : 7)) {
        for (auto& c : buf) c = static_cast<char>('a' + rng() % 26);
        const char* p = buf.data() + start;
        // No newline, a newline at every position, and two of them.
        all_equal = all_equal && find_byte(p, p + len, '\n') == p + len;
        for (std::size_t at = 0; at < len; at += (len < 70 ? 1 : 5)) {
          buf[start + at] = '\n';
          if (at + 3 < len) buf[start + at + 3] = '\n';
          all_equal = all_equal && find_byte(p, p + len, '\n') == find_byte_scalar(p, p + len, '\n') &&
                      find_byte(p, p + len, '\n') == p + at;
          buf[start + at] = 'x';
          if (at + 3 < len) buf[start + at + 3] = 'x';
        }
        // A newline just past the end is not found.
        buf[start + len] = '\n';
        all_equal = all_equal && find_byte(p, p + len, '\n') == p + len;
        // Bytes with the high bit set are not mistaken for the needle.
        for (std::size_t i = 0; i < len; ++i) buf[start + i] = static_cast<char>(0x80 | '\n');
        all_equal = all_equal && find_byte(p, p + len, '\n') == p + len;
      }
    }
    CHECK_MESSAGE(all_equal, "variant ", name);
  }
}

TEST_CASE("find byte: no variant reads past the end of its range") {
  const RestoreVariant restore;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  // Two pages, the second inaccessible: a read past the first one faults.
  auto* mem = static_cast<char*>(::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(mem != MAP_FAILED);
  REQUIRE(::mprotect(mem + page, page, PROT_NONE) == 0);
  std::memset(mem, 'y', page);
  for (const std::string_view name : runnable_variants()) {
    REQUIRE(use_find_byte_variant(name));
    for (std::size_t len = 0; len <= 130; ++len) {
      const char* end = mem + page;
      CHECK(find_byte(end - len, end, '\n') == end);
    }
  }
  ::munmap(mem, 2 * page);
}
