// Key hashing and shard selection.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/hash.hpp"

using spate::kernels::hash_key;
using spate::kernels::shard_of;

TEST_CASE("hash: xxh3 of a key is stable across runs (routing depends on it)") {
  CHECK(hash_key("") == 0x2D06800538D394C2ull);
  CHECK(hash_key("u1") == hash_key(std::string_view("u1")));
  CHECK(hash_key("u1") != hash_key("u2"));
}

TEST_CASE("hash: shard_of stays in range and spreads keys evenly") {
  for (std::uint32_t shards : {1u, 2u, 3u, 7u, 64u}) {
    std::vector<int> hits(shards, 0);
    for (int i = 0; i < 100000; ++i) {
      const std::string key = "user-" + std::to_string(i);
      const auto s = shard_of(hash_key(key), shards);
      REQUIRE(s < shards);
      ++hits[s];
    }
    for (int h : hits) CHECK(std::abs(h - 100000 / static_cast<int>(shards)) < 100000 / static_cast<int>(shards) / 10 + 50);
  }
  CHECK(shard_of(0, 5) == 0);
  CHECK(shard_of(~0ull, 5) == 4);
}
