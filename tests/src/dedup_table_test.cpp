// Dedup by event id: exact (same hash, other id: not a duplicate), bounded
// by count and by event time, and right after many deletions (checked
// against a plain model).
#include <doctest/doctest.h>

#include <deque>
#include <random>
#include <set>
#include <string>

#include "engine/dedup_table.hpp"
#include "kernels/hash.hpp"

using spate::engine::DedupTable;
using V = DedupTable::Verdict;

TEST_CASE("dedup: a repeated id is a duplicate; another id with the same hash is not") {
  DedupTable t(100, 60000);
  CHECK(t.check(7, "\"a\"", 1000, 1000) == V::first);
  CHECK(t.check(7, "\"a\"", 1000, 1000) == V::duplicate);
  CHECK(t.check(7, "\"b\"", 1000, 1000) == V::first);  // a collision of hashes is no duplicate
  CHECK(t.check(7, "\"b\"", 1000, 1000) == V::duplicate);
  CHECK(t.check(8, "1", 1000, 1000) == V::first);
  CHECK(t.check(8, "\"1\"", 1000, 1000) == V::first);  // the integer 1 and the string "1" differ
  const std::string long_id = "\"" + std::string(100, 'x') + "\"";
  CHECK(t.check(9, long_id, 1000, 1000) == V::first);
  CHECK(t.check(9, long_id, 1000, 1000) == V::duplicate);
  CHECK(t.check(9, long_id.substr(0, 99) + "y\"", 1000, 1000) == V::first);
  CHECK(t.size() == 6);
}

TEST_CASE("dedup: past max_ids the oldest id is forgotten, and counted") {
  DedupTable t(3, 60000);
  for (const char* id : {"1", "2", "3", "4"}) CHECK(t.check(spate::kernels::hash_key(id), id, 0, 0) == V::first);
  CHECK(t.evicted() == 1);
  CHECK(t.check(spate::kernels::hash_key("1"), "1", 0, 0) == V::first);  // fell out
  CHECK(t.check(spate::kernels::hash_key("4"), "4", 0, 0) == V::duplicate);
}

TEST_CASE("dedup: ids beyond the event-time horizon pass unchecked and expire") {
  DedupTable t(100, 1000);
  CHECK(t.check(1, "a", 5000, 5000) == V::first);
  CHECK(t.check(2, "b", 3000, 5000) == V::beyond_horizon);  // more than 1 s behind the watermark
  CHECK(t.check(2, "b", 3000, 5000) == V::beyond_horizon);
  t.expire(5500, 100);
  CHECK(t.size() == 1);
  t.expire(6001, 100);
  CHECK(t.size() == 0);
  CHECK(t.expired() == 1);
}

TEST_CASE("dedup: agrees with a plain model through growth, evictions and deletions") {
  std::mt19937_64 rng(11);
  const std::uint32_t max_ids = 5000;
  DedupTable t(max_ids, INT64_MAX / 4);
  std::deque<std::string> order;
  std::set<std::string> held;
  for (int i = 0; i < 200000; ++i) {
    const std::string id = std::to_string(rng() % 20000);
    // A few hash values only: long probe runs, many shifts on deletion.
    const std::uint64_t hash = spate::kernels::hash_key(id) % 64;
    const bool seen = held.count(id) != 0;
    const V v = t.check(hash, id, 0, 0);
    REQUIRE(v == (seen ? V::duplicate : V::first));
    if (!seen) {
      if (order.size() == max_ids) {
        held.erase(order.front());
        order.pop_front();
      }
      order.push_back(id);
      held.insert(id);
    }
  }
  CHECK(t.size() == held.size());
}
