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

TEST_CASE("dedup: past max_ids the older half is forgotten, and counted") {
  DedupTable t(4, 60000);  // two generations of two ids
  for (const char* id : {"1", "2", "3", "4", "5"}) CHECK(t.check(spate::kernels::hash_key(id), id, 0, 0) == V::first);
  CHECK(t.evicted() == 2);  // "1" and "2" went when "5" came
  CHECK(t.size() == 3);
  CHECK(t.check(spate::kernels::hash_key("3"), "3", 0, 0) == V::duplicate);
  CHECK(t.check(spate::kernels::hash_key("5"), "5", 0, 0) == V::duplicate);
  CHECK(t.check(spate::kernels::hash_key("1"), "1", 0, 0) == V::first);  // fell out
}

TEST_CASE("dedup: ids beyond the event-time horizon pass unchecked and expire") {
  DedupTable t(100, 1000);
  CHECK(t.check(1, "a", 5000, 5000) == V::first);
  CHECK(t.check(2, "b", 3000, 5000) == V::beyond_horizon);  // more than 1 s behind the watermark
  CHECK(t.check(2, "b", 3000, 5000) == V::beyond_horizon);
  t.expire(5500);
  CHECK(t.size() == 1);
  t.expire(6001);
  CHECK(t.size() == 0);
  CHECK(t.expired() == 1);
  CHECK(t.check(1, "a", 7000, 7000) == V::first);
}

TEST_CASE("dedup: agrees with a plain model of two generations through growth and turnover") {
  for (const bool few_hashes : {false, true}) {
    std::mt19937_64 rng(11);
    const std::uint32_t max_ids = 50000;
    DedupTable t(max_ids, INT64_MAX / 4);
    std::set<std::string> current, older;
    std::uint64_t evicted = 0;
    for (int i = 0; i < 300000; ++i) {
      const std::string id = std::to_string(rng() % 100000);
      // With few hash values every id shares one long probe run, and only
      // the bytes tell ids apart; the top half of the hash picks the slot.
      const std::uint64_t h = spate::kernels::hash_key(id);
      const std::uint64_t hash = few_hashes ? (h % 64) << 58 : h;
      const bool seen = current.count(id) != 0 || older.count(id) != 0;
      REQUIRE(t.check(hash, id, 0, 0) == (seen ? V::duplicate : V::first));
      if (!seen) {
        if (current.size() == max_ids / 2) {
          evicted += older.size();
          older = std::move(current);
          current.clear();
        }
        current.insert(id);
      }
    }
    CHECK(t.size() == current.size() + older.size());
    CHECK(t.evicted() == evicted);
  }
}
