// Dedup by event id: every id of the horizon held while the budget allows,
// what the budget forces out stated by the covered horizon, the
// false-duplicate formula checked on a narrow fingerprint, and checkpoints
// that decide as the saved table did.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>

#include "engine/dedup_table.hpp"
#include "kernels/hash.hpp"

using spate::engine::DedupTable;
using spate::kernels::fingerprint;
using V = DedupTable::Verdict;

namespace {
constexpr std::int64_t kT0 = 1767225600000;  // 2026-01-01, ms

std::string id_of(std::uint64_t i) { return "\"e" + std::to_string(i) + "\""; }
}  // namespace

TEST_CASE("dedup: a repeated id is a duplicate; another id is not") {
  DedupTable t({60000, 1 << 20});
  CHECK(t.check(fingerprint("\"a\""), kT0, kT0) == V::first);
  CHECK(t.check(fingerprint("\"a\""), kT0, kT0) == V::duplicate);
  CHECK(t.check(fingerprint("\"b\""), kT0, kT0) == V::first);
  CHECK(t.check(fingerprint("1"), kT0, kT0) == V::first);
  CHECK(t.check(fingerprint("\"1\""), kT0, kT0) == V::first);  // the integer 1 and the string "1" differ
  CHECK(t.check(fingerprint("\"1\""), kT0 - 5000, kT0) == V::duplicate);  // the same id, whatever its time
  CHECK(t.ids() == 4);
}

TEST_CASE("dedup: ids beyond the event-time horizon pass unchecked, and expire") {
  DedupTable t({10000, 1 << 20});
  CHECK(t.check(fingerprint("a"), kT0, kT0) == V::first);
  CHECK(t.check(fingerprint("b"), kT0 - 10001, kT0) == V::beyond_horizon);
  CHECK(t.check(fingerprint("b"), kT0 - 10001, kT0) == V::beyond_horizon);
  CHECK(t.check(fingerprint("c"), kT0 - 10000, kT0) == V::first);  // exactly at the horizon: checked
  t.sweep(kT0 + 500, 1 << 20);  // "c" is kept up to a second longer than the horizon, never shorter
  CHECK(t.ids() == 2);
  t.sweep(kT0 + 1000, 1 << 20);
  CHECK(t.ids() == 1);
  CHECK(t.expired() == 1);
  t.sweep(kT0 + 11000, 1 << 20);
  CHECK(t.ids() == 0);
  CHECK(t.check(fingerprint("a"), kT0 + 11000, kT0 + 11000) == V::first);
}

TEST_CASE("dedup: within the budget every id of the horizon is held through growth") {
  DedupTable t({3600000, std::uint64_t{64} << 20});
  const std::uint64_t n = 1'000'000;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::int64_t ts = kT0 + static_cast<std::int64_t>(i / 1000);
    REQUIRE(t.check(fingerprint(id_of(i)), ts, ts) == V::first);
  }
  CHECK(t.ids() == n);
  CHECK(t.evicted() == 0);
  CHECK(t.memory_bytes() <= std::uint64_t{64} << 20);
  CHECK(t.ids() * 100 <= t.capacity() * 85);
  MESSAGE("1 M ids in ", t.memory_bytes(), " bytes: ", static_cast<double>(t.memory_bytes()) / n, " bytes an id");
  const std::int64_t wm = kT0 + 1000;
  CHECK(t.horizon_covered_ms(wm) == 3600000);
  std::uint64_t dups = 0;
  for (std::uint64_t i = 0; i < n; ++i) dups += t.check(fingerprint(id_of(i)), kT0, wm) == V::duplicate;
  CHECK(dups == n);
}

TEST_CASE("dedup: at the budget the oldest ids go, and every id newer than the covered horizon is still held") {
  DedupTable t({600000, 65536});  // 1024 buckets, 4096 slots
  const std::uint64_t n = 20000;
  std::int64_t wm = kT0;
  for (std::uint64_t i = 0; i < n; ++i) {
    wm = kT0 + static_cast<std::int64_t>(i) * 10;  // 100 ids a second of event time
    REQUIRE(t.check(fingerprint(id_of(i)), wm, wm) == V::first);
  }
  CHECK(t.memory_bytes() == 65536);
  CHECK(t.evicted() > 0);
  CHECK(t.evicted() + t.ids() == n);
  const std::int64_t covered = t.horizon_covered_ms(wm);
  CHECK(covered < 600000);
  // The newest 4096 ids are 41 s; the oldest of eight is not the oldest of all.
  CHECK(covered > 10000);
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::int64_t ts = kT0 + static_cast<std::int64_t>(i) * 10;
    if (ts < wm - covered) continue;
    INFO("id ", i);
    REQUIRE(t.check(fingerprint(id_of(i)), ts, wm) == V::duplicate);
  }
}

// With b bits kept and n distinct fingerprints held, a new id is taken for
// a duplicate with probability n / 2^b (docs/engine.md): checked here on a
// 16-bit model, where it happens thousands of times.
TEST_CASE("dedup: false duplicates follow n / 2^bits on a narrow fingerprint") {
  for (const unsigned bits : {14u, 16u}) {
    DedupTable t({3600000, std::uint64_t{16} << 20, bits});
    double expected = 0;
    std::uint64_t false_dups = 0;
    for (std::uint64_t i = 0; i < 20000; ++i) {
      expected += static_cast<double>(t.ids()) / std::ldexp(1.0, static_cast<int>(bits));
      false_dups += t.check(fingerprint(id_of(i)), kT0, kT0) == V::duplicate;
    }
    INFO("bits ", bits, " expected ", expected, " seen ", false_dups);
    CHECK(std::abs(static_cast<double>(false_dups) - expected) < 6 * std::sqrt(expected));
  }
}

TEST_CASE("dedup: a loaded table decides and evicts as the saved one; a body its lookups could not serve is refused") {
  DedupTable a({600000, 65536});
  for (std::uint64_t i = 0; i < 6000; ++i) a.check(fingerprint(id_of(i)), kT0 + static_cast<std::int64_t>(i), kT0);
  std::string body;
  spate::kernels::ByteWriter w(body);
  a.save(w);
  DedupTable b({600000, 65536});
  spate::kernels::ByteReader r(body);
  REQUIRE(b.load(r));
  CHECK(b.ids() == a.ids());
  CHECK(b.evicted() == a.evicted());
  CHECK(b.horizon_covered_ms(kT0 + 10000) == a.horizon_covered_ms(kT0 + 10000));
  for (std::uint64_t i = 3000; i < 9000; ++i) {
    const std::int64_t ts = kT0 + static_cast<std::int64_t>(i);
    REQUIRE(a.check(fingerprint(id_of(i)), ts, kT0) == b.check(fingerprint(id_of(i)), ts, kT0));
  }
  CHECK(a.evicted() == b.evicted());

  DedupTable small({600000, 65536});
  for (std::size_t cut : {body.size() - 1, body.size() / 2, std::size_t{8}}) {
    spate::kernels::ByteReader short_reader(std::string_view(body).substr(0, cut));
    CHECK_FALSE(small.load(short_reader));
  }
  std::string moved = body;
  // The first bucket's first slot, its fingerprint changed: no longer in either of its buckets.
  const std::size_t first_slot = 6 * 8 + 4 + 4;  // the header's six u64 and one u32, then the bucket's index
  moved[first_slot + 3] ^= 0x5a;
  spate::kernels::ByteReader moved_reader(moved);
  CHECK_FALSE(small.load(moved_reader));
  DedupTable narrower({600000, 32768});  // a budget below the saved table's size
  spate::kernels::ByteReader narrow_reader(body);
  CHECK_FALSE(narrower.load(narrow_reader));
}

// An id past the horizon is gone whether the sweep has reached its slot or
// not: the same id sent again with a later time (inside the horizon) is a
// first either way, so a replay that sweeps at other moments decides alike.
TEST_CASE("dedup: a slot past the horizon matches nothing, swept or not") {
  for (const bool swept : {false, true}) {
    DedupTable t({10000, 1 << 20});
    CHECK(t.check(fingerprint("a"), kT0, kT0) == V::first);
    const std::int64_t later = kT0 + 20000;
    if (swept) t.sweep(later, 1 << 20);
    CHECK(t.check(fingerprint("a"), later, later) == V::first);
    CHECK(t.check(fingerprint("a"), later, later) == V::duplicate);
  }
}

// The table doubles for fullness (85%), not for a crowded corner: a new id
// whose two buckets are full moves a neighbour on, two steps deep, before
// the table grows. At 10 M ids one step alone once made it double while
// 60% full; here each doubling must come with the table at least 80% full.
TEST_CASE("dedup: the table grows when it is full, not when two buckets are") {
  DedupTable t({3600000, std::uint64_t{1} << 30});
  std::uint64_t capacity = t.capacity();
  std::uint64_t doublings = 0;
  for (std::uint64_t i = 0; i < 3'000'000; ++i) {
    const std::uint64_t before = t.ids();
    REQUIRE(t.check(fingerprint(id_of(i)), kT0, kT0) == V::first);
    if (t.capacity() != capacity) {
      CHECK(before * 100 >= capacity * 80);
      capacity = t.capacity();
      ++doublings;
    }
  }
  CHECK(doublings >= 5);
  CHECK(t.evicted() == 0);
}
