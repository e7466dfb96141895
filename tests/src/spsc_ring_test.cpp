// The single-producer single-consumer ring.
#include <doctest/doctest.h>

#include <cstdint>
#include <thread>

#include "engine/spsc_ring.hpp"

using spate::engine::SpscRing;

TEST_CASE("spsc ring: a full ring refuses a claim and keeps order") {
  SpscRing<int> ring(4);
  CHECK(ring.capacity() == 4);
  for (int i = 0; i < 4; ++i) {
    int* slot = ring.claim();
    REQUIRE(slot != nullptr);
    *slot = i;
    ring.publish();
  }
  CHECK(ring.claim() == nullptr);
  CHECK(ring.depth() == 4);
  for (int i = 0; i < 4; ++i) {
    int* front = ring.front();
    REQUIRE(front != nullptr);
    CHECK(*front == i);
    ring.pop();
  }
  CHECK(ring.front() == nullptr);
  CHECK(ring.pushed() == 4);
  CHECK(ring.popped() == 4);
}

TEST_CASE("spsc ring: capacity rounds up to a power of two") {
  SpscRing<int> ring(5);
  CHECK(ring.capacity() == 8);
}

TEST_CASE("spsc ring: two threads pass a million values in order without loss") {
  SpscRing<std::uint64_t> ring(64);
  constexpr std::uint64_t kCount = 1000000;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kCount; ++i) {
      std::uint64_t* slot;
      while ((slot = ring.claim()) == nullptr) std::this_thread::yield();
      *slot = i;
      ring.publish();
    }
  });
  std::uint64_t expected = 0, sum = 0;
  bool ordered = true;
  while (expected < kCount) {
    if (std::uint64_t* v = ring.front()) {
      ordered = ordered && *v == expected;
      sum += *v;
      ring.pop();
      ++expected;
    } else {
      std::this_thread::yield();
    }
  }
  producer.join();
  CHECK(ordered);
  CHECK(sum == kCount * (kCount - 1) / 2);
}
