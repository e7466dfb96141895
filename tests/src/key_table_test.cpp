// Key interning: ids, colliding hashes, erase with id reuse and compaction.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/key_table.hpp"

using spate::engine::KeyTable;

TEST_CASE("key table: erasing keys in colliding probe chains keeps every other key findable") {
  KeyTable t;
  // Few distinct hashes, so probe chains are long and wrap around.
  auto hash_of = [](int i) { return static_cast<std::uint64_t>(i % 7) * 0x9e3779b97f4a7c15ull; };
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back("key-" + std::to_string(i) + (i % 5 == 0 ? std::string(40, 'x') : ""));
  std::vector<std::uint32_t> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back(t.intern(hash_of(i), keys[static_cast<std::size_t>(i)]));
  CHECK(t.size() == 3000);
  for (int i = 0; i < 3000; i += 3) t.erase(ids[static_cast<std::size_t>(i)]);
  CHECK(t.size() == 2000);
  bool all = true;
  for (int i = 0; i < 3000; ++i) {
    const auto id = t.find(hash_of(i), keys[static_cast<std::size_t>(i)]);
    all = all && (i % 3 == 0 ? id == KeyTable::kMissing : id == ids[static_cast<std::size_t>(i)] &&
                                                             t.key(id) == keys[static_cast<std::size_t>(i)]);
  }
  CHECK(all);
  // New keys take the freed ids; the others keep theirs.
  const auto reused = t.intern(12345, "fresh");
  CHECK(reused < 3000);
  CHECK(reused % 3 == 0);  // one of the erased keys' ids (ids were handed out in order)
  CHECK(t.key(reused) == "fresh");
  CHECK(t.find(12345, "fresh") == reused);
}

TEST_CASE("key table: erasing most long keys compacts their bytes and keeps the rest intact") {
  KeyTable t;
  std::vector<std::uint32_t> ids;
  const std::string pad(900, 'p');
  for (int i = 0; i < 4000; ++i) ids.push_back(t.intern(static_cast<std::uint64_t>(i) * 2654435761u, pad + std::to_string(i)));
  for (int i = 0; i < 4000; ++i) {
    if (i % 10 != 0) t.erase(ids[static_cast<std::size_t>(i)]);  // 3.2 MB dead: compaction runs
  }
  bool intact = true;
  for (int i = 0; i < 4000; i += 10) {
    const auto id = t.find(static_cast<std::uint64_t>(i) * 2654435761u, pad + std::to_string(i));
    intact = intact && id == ids[static_cast<std::size_t>(i)] && t.key(id) == pad + std::to_string(i);
  }
  CHECK(intact);
  CHECK(t.size() == 400);
}

TEST_CASE("key table: at its budget a new key is refused and every known key is still found") {
  KeyTable t;
  t.set_max_keys(5);
  t.set_allowance(3);
  const auto h = [](int i) { return static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ull; };
  for (int i = 0; i < 3; ++i) CHECK(t.intern(h(i), "k" + std::to_string(i)) == static_cast<std::uint32_t>(i));
  CHECK(t.intern(h(3), "k3") == KeyTable::kMissing);  // the allowance is spent
  CHECK(t.intern(h(1), "k1") == 1);                   // a known key is not a new one
  t.set_allowance(100);
  CHECK(t.intern(h(3), "k3") == 3);
  CHECK(t.intern(h(4), "k4") == 4);
  CHECK(t.intern(h(5), "k5") == KeyTable::kMissing);  // max_keys
  CHECK(t.size() == 5);
  t.erase(0);  // retention frees a place
  CHECK(t.intern(h(5), "k5") == 0);
  CHECK(t.find(h(5), "k5") == 0);
}
