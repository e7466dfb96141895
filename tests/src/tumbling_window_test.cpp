// Tumbling windows: aggregates, lateness and eviction.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/tumbling_window.hpp"

using namespace spate::engine;

namespace {

std::vector<double> doubles(const ViewRow& row) {
  std::vector<double> out;
  for (const AggState& a : row.aggs) out.push_back(a.value().as_double());
  return out;
}

struct Fixture {
  Config config = default_config();
  TumblingView view{config.views[0], config.allowed_lateness_ms};  // per_user_1m
  RouteBatch batch{kDefaultBatchRows, kMaxColumns};
  KeyTable keys;

  bool add(std::string_view key, std::int64_t ts, double amount, std::int64_t watermark) {
    batch.clear();
    const Cell cols[1] = {{amount}};
    batch.append(0, 1, ts, INT64_MIN, key, DedupRole::none, {}, cols, 1);
    return view.add(keys.intern(std::hash<std::string_view>{}(key), key), batch, 0, watermark);
  }
};

}  // namespace

TEST_CASE("tumbling window: floor division puts negative timestamps in the right window") {
  CHECK(window_start_of(0, 60000) == 0);
  CHECK(window_start_of(59999, 60000) == 0);
  CHECK(window_start_of(60000, 60000) == 60000);
  CHECK(window_start_of(-1, 60000) == -60000);
  CHECK(window_start_of(-60000, 60000) == -60000);
}

TEST_CASE("tumbling window: count, sum, min, max and avg per key and window") {
  Fixture f;
  CHECK(f.add("a", 1000, 2.0, 1000));
  CHECK(f.add("a", 59999, 5.0, 59999));
  CHECK(f.add("a", 30000, -1.0, 59999));  // out of order, same window
  CHECK(f.add("a", 60000, 7.0, 60000));
  CHECK(f.add("b", 1000, 100.0, 60000));
  std::vector<ViewRow> rows;
  f.view.collect(f.keys.find(std::hash<std::string_view>{}("a"), "a"), "a", INT64_MIN, INT64_MAX, 60000, rows);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].window_start == 0);
  CHECK(rows[0].window_end == 60000);
  CHECK(doubles(rows[0]) == std::vector<double>{3, 6.0, -1.0, 5.0, 2.0});
  CHECK((rows[0].value(0).type == AggValue::Type::count && rows[0].value(0).u == 3));  // a count stays an integer
  CHECK(rows[0].value(1).type == AggValue::Type::real);
  CHECK(rows[1].window_start == 60000);
  CHECK(doubles(rows[1]) == std::vector<double>{1, 7.0, 7.0, 7.0, 7.0});
  CHECK_FALSE(rows[0].closed);  // 60000 + 5000 lateness not reached
  rows.clear();
  f.view.collect(0, "a", 60000, 120000, 65000, rows);  // only the second window overlaps
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].window_start == 60000);
  rows.clear();
  f.view.collect(0, "a", INT64_MIN, INT64_MAX, 65000, rows);
  CHECK(rows[0].closed);
  CHECK(f.view.window_count() == 3);
}

TEST_CASE("tumbling window: an event for a window closed past the allowed lateness is refused") {
  Fixture f;
  CHECK(f.add("a", 59000, 1.0, 64999));  // window [0, 60000) closes at 65000
  CHECK_FALSE(f.add("a", 59000, 1.0, 65000));
  std::vector<ViewRow> rows;
  f.view.collect(0, "a", INT64_MIN, INT64_MAX, 65000, rows);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].value(0).as_double() == 1);
}

TEST_CASE("tumbling window: top-k orders by the aggregate, ties by key") {
  Fixture f;
  for (int i = 0; i < 3; ++i) f.add("c", 1000, 1.0, 1000);
  for (int i = 0; i < 5; ++i) f.add("a", 1000, 1.0, 1000);
  for (int i = 0; i < 3; ++i) f.add("b", 1000, 1.0, 1000);
  f.add("d", 61000, 50.0, 61000);
  std::vector<ViewRow> rows;
  f.view.top(0, 2, 0, f.keys, 61000, rows);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].key == "a");
  CHECK(rows[1].key == "b");
  rows.clear();
  f.view.top(60000, 10, 1, f.keys, 61000, rows);  // by sum(amount)
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].key == "d");
}

TEST_CASE("tumbling window: eviction drops windows older than retention and keeps the rest") {
  Fixture f;
  f.add("a", 1000, 1.0, 1000);
  f.add("a", 200000, 1.0, 200000);
  f.view.evict(200000, 60000);  // horizon = 200000 - 5000 - 60000 - 60000 = 75000
  std::vector<ViewRow> rows;
  f.view.collect(0, "a", INT64_MIN, INT64_MAX, 200000, rows);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].window_start == 180000);
  CHECK(f.view.window_count() == 1);
}

TEST_CASE("tumbling window: thousands of closed windows per key stay queryable across log chunks and evict by chunk") {
  Fixture f;
  constexpr std::int64_t kWindows = 10000;  // more than two chunks of the closed-window log
  for (std::int64_t w = 0; w < kWindows; ++w) {
    CHECK(f.add("a", w * 60000 + 1, static_cast<double>(w), w * 60000 + 1));
    if (w % 3 == 0) CHECK(f.add("b", w * 60000 + 2, 1.0, w * 60000 + 2));
  }
  // An out-of-order event for a window the key never had (within lateness) joins its chain.
  const std::int64_t last = (kWindows - 1) * 60000;
  CHECK(f.add("b", last - 60000 + 5, 7.0, last + 2));
  std::vector<ViewRow> rows;
  f.view.collect(0, "a", INT64_MIN, INT64_MAX, last, rows);
  REQUIRE(rows.size() == kWindows);
  bool ordered = true;
  for (std::int64_t w = 0; w < kWindows; ++w) {
    ordered = ordered && rows[static_cast<std::size_t>(w)].window_start == w * 60000 &&
              rows[static_cast<std::size_t>(w)].value(1).as_double() == static_cast<double>(w);
  }
  CHECK(ordered);
  rows.clear();
  f.view.collect(1, "b", last - 60000, INT64_MAX, last, rows);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].window_start == last - 60000);
  CHECK(rows[0].value(1).as_double() == 7.0);
  CHECK(rows[1].window_start == last);
  CHECK(f.view.window_count() == static_cast<std::uint64_t>(kWindows + kWindows / 3 + 2));
  // Evict up to about window 6000: the first chunk (4096 records, all older) goes; the rest stays.
  f.view.evict(6000 * 60000 + 5000 + 60000, 0);
  rows.clear();
  f.view.collect(0, "a", INT64_MIN, INT64_MAX, last, rows);
  CHECK(rows.size() < static_cast<std::size_t>(kWindows));
  CHECK(rows.size() >= static_cast<std::size_t>(kWindows - 6000));
  CHECK(rows.back().window_start == last);
  CHECK(rows.front().window_start > 0);
  std::vector<ViewRow> top;
  f.view.top(last - 60000, 5, 1, f.keys, last, top);  // by sum(amount)
  REQUIRE(top.size() == 2);
  CHECK(top[0].key == "a");
  CHECK(top[1].key == "b");
}

TEST_CASE("tumbling window: rows in random window order land exactly, and each key's windows come back in order") {
  Fixture f;
  // Three keys whose rows jump between 40 windows, as when producers drift
  // apart in event time; the watermark stays back, so nothing is late.
  std::map<std::pair<std::string, std::int64_t>, std::pair<std::uint64_t, double>> expected;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "k" + std::to_string(rng() % 3);
    const std::int64_t ts = static_cast<std::int64_t>(rng() % 40) * 60000 + static_cast<std::int64_t>(rng() % 60000);
    const double amount = static_cast<double>(rng() % 100);
    REQUIRE(f.add(key, ts, amount, INT64_MIN));
    auto& e = expected[{key, window_start_of(ts, 60000)}];
    e.first += 1;
    e.second += amount;
  }
  for (const std::string key : {"k0", "k1", "k2"}) {
    std::vector<ViewRow> rows;
    f.view.collect(f.keys.find(std::hash<std::string_view>{}(key), key), key, INT64_MIN, INT64_MAX, INT64_MIN, rows);
    REQUIRE(rows.size() == 40);
    bool exact = true;
    for (std::size_t w = 0; w < rows.size(); ++w) {
      const auto& e = expected[{key, static_cast<std::int64_t>(w) * 60000}];
      exact = exact && rows[w].window_start == static_cast<std::int64_t>(w) * 60000 &&
              rows[w].value(0).as_double() == static_cast<double>(e.first) && rows[w].value(1).as_double() == e.second;
    }
    CHECK(exact);
  }
  CHECK(f.view.window_count() == 120);
}

TEST_CASE("tumbling window: a key's windows within the lateness each have a slot; older ones go to the log") {
  Config config = default_config();
  ViewConfig view = config.views[0];
  view.window_ms = 1000;
  TumblingView tumbling(view, 2500);  // a window and 2.5 behind it: 4 slots
  REQUIRE(tumbling.ring_slots() == 4);
  RouteBatch batch{kDefaultBatchRows, kMaxColumns};
  const auto add = [&](std::uint32_t key, std::int64_t ts, std::int64_t wm) {
    batch.clear();
    const Cell cols[1] = {{1.0}};
    batch.append(0, 1, ts, INT64_MIN, "k", DedupRole::none, {}, cols, 1);
    return tumbling.add(key, batch, 0, wm);
  };
  // Rows of 1000 keys jumping between the four windows a watermark of 3500
  // leaves open: all of them in slots, the log not even allocated.
  REQUIRE(add(0, 0, INT64_MIN));
  const std::uint64_t slots_only = tumbling.memory_bytes();
  std::mt19937_64 rng(5);
  std::set<std::pair<std::uint32_t, std::int64_t>> windows{{0, 0}};
  for (int i = 0; i < 20000; ++i) {
    const auto key = static_cast<std::uint32_t>(rng() % 1000);
    const auto ts = static_cast<std::int64_t>(rng() % 4000);
    REQUIRE(add(key, ts, 3499));
    windows.emplace(key, ts / 1000);
  }
  CHECK(tumbling.memory_bytes() == slots_only);
  CHECK(tumbling.window_count() == windows.size());
  // A fifth window takes window 0's slot: window 0 moves to the log and
  // stays queryable; a row still allowed into it finds it there.
  for (std::int64_t ts : {0, 1000, 2000, 3000}) REQUIRE(add(7, ts, 3499));
  const std::uint64_t before = tumbling.window_count();
  REQUIRE(add(7, 4000, 3499));
  CHECK(tumbling.memory_bytes() > slots_only);
  REQUIRE(add(7, 10, 3499));
  std::vector<ViewRow> rows;
  tumbling.collect(7, "k", INT64_MIN, INT64_MAX, 3499, rows);
  REQUIRE(rows.size() == 5);
  for (std::size_t w = 0; w < rows.size(); ++w) CHECK(rows[w].window_start == static_cast<std::int64_t>(w) * 1000);
  CHECK(tumbling.window_count() == before + 1);

  // A checkpoint round trip keeps every window; a view with another
  // lateness (other slots) refuses the body instead of misreading it.
  std::string bytes;
  spate::kernels::ByteWriter out(bytes);
  tumbling.save(out);
  TumblingView same(view, 2500);
  spate::kernels::ByteReader in(bytes);
  REQUIRE(same.load(in));
  std::vector<ViewRow> again;
  same.collect(7, "k", INT64_MIN, INT64_MAX, 3499, again);
  REQUIRE(again.size() == rows.size());
  for (std::size_t w = 0; w < rows.size(); ++w) CHECK(again[w].aggs[0].count == rows[w].aggs[0].count);
  CHECK(same.window_count() == before + 1);
  TumblingView other(view, 500);
  spate::kernels::ByteReader in_other(bytes);
  CHECK_FALSE(other.load(in_other));
}

TEST_CASE("tumbling window: partial states of two parts merge into the state of the whole") {
  // Rows of three keys over two windows, dealt round-robin to two views (as
  // two shards would hold them); the merged rows equal one view of them all.
  Fixture whole, part[2];
  const char* keys[] = {"a", "b", "c"};
  for (int i = 0; i < 60; ++i) {
    const std::string_view key = keys[i % 3];
    const std::int64_t ts = 1000 + 2000 * i;  // 1000 .. 119000: two windows
    const double amount = (i * 37) % 11 - 3.5;
    whole.add(key, ts, amount, ts);
    part[i % 2].add(key, ts, amount, ts);
  }
  const auto rows_of = [](Fixture& f) {
    std::vector<ViewRow> rows;
    for (std::string_view key : {"a", "b", "c"}) {
      const std::uint32_t id = f.keys.find(std::hash<std::string_view>{}(key), key);
      f.view.collect(id, key, INT64_MIN, INT64_MAX, 119000, rows);
    }
    return rows;
  };
  std::vector<ViewRow> merged = rows_of(part[0]);
  for (ViewRow& row : rows_of(part[1])) merged.push_back(std::move(row));
  REQUIRE(merged.size() == 12);  // each part holds every key and window
  merge_rows(merged);
  const std::vector<ViewRow> expected = rows_of(whole);
  REQUIRE(merged.size() == expected.size());
  REQUIRE(expected.size() == 6);
  for (std::size_t r = 0; r < expected.size(); ++r) {
    CHECK(merged[r].key == expected[r].key);
    CHECK(merged[r].window_start == expected[r].window_start);
    CHECK(merged[r].closed == expected[r].closed);
    CHECK((merged[r].value(0).type == AggValue::Type::count && merged[r].value(0).u == expected[r].value(0).u));
    CHECK(doubles(merged[r]) == doubles(expected[r]));  // the average of all, not of the two averages
  }
}

TEST_CASE("tumbling window: rows whose key the budget refused are skipped") {
  Fixture f;
  RouteBatch b{kDefaultBatchRows, kMaxColumns};
  const Cell cols[1] = {{5.0}};
  for (int i = 0; i < 4; ++i) b.append(0, 1, 1000, INT64_MIN, "k", DedupRole::none, {}, cols, 1);
  const std::uint32_t id = f.keys.intern(7, "k");
  const std::uint32_t ids[4] = {id, KeyTable::kMissing, id, KeyTable::kMissing};
  const std::int64_t wms[4] = {0, 0, 0, 0};
  CHECK(f.view.apply(BatchRows{b, ids, wms, 0, 4, -1}) == 0);
  std::vector<ViewRow> rows;
  f.view.collect(id, "k", INT64_MIN, INT64_MAX, 0, rows);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].value(0).u == 2);
  CHECK(rows[0].value(1).d == 10.0);
}

TEST_CASE("tumbling window: keys renumbered after most were forgotten keep their windows, in less memory") {
  Fixture f;
  constexpr int kKeys = 70000;
  const auto key = [](int i) { return "user-" + std::to_string(i); };
  const auto hash = [&](int i) { return std::hash<std::string>{}(key(i)); };
  for (int i = 0; i < kKeys; ++i) {
    for (int n = 0; n <= i % 3; ++n) {  // key i has 1 + i % 3 rows
      const Cell cols[1] = {{static_cast<double>(i)}};
      f.batch.clear();
      f.batch.append(0, 1, 1000, INT64_MIN, key(i), DedupRole::none, {}, cols, 1);
      CHECK(f.view.add(f.keys.intern(hash(i), key(i)), f.batch, 0, 1000));
    }
  }
  const std::uint64_t before = f.keys.memory_bytes() + f.view.memory_bytes();
  for (int i = 0; i < kKeys; ++i) {
    if (i % 10 == 0) continue;  // one key in ten stays
    const std::uint32_t id = f.keys.find(hash(i), key(i));
    f.keys.erase(id);
    f.view.reset_key(id);
  }
  const std::vector<std::uint32_t> remap = f.keys.compact_ids();
  f.view.remap_keys(remap, f.keys.size());
  CHECK(f.keys.size() == kKeys / 10);
  CHECK(f.keys.memory_bytes() + f.view.memory_bytes() < before / 5);
  for (int i = 0; i < kKeys; ++i) {
    const std::uint32_t id = f.keys.find(hash(i), key(i));
    if (i % 10 != 0) {
      CHECK(id == KeyTable::kMissing);
      continue;
    }
    REQUIRE(id < f.keys.size());
    CHECK(f.keys.key(id) == key(i));
    std::vector<ViewRow> rows;
    f.view.collect(id, key(i), INT64_MIN, INT64_MAX, 1000, rows);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].value(0).u == static_cast<std::uint64_t>(1 + i % 3));
    CHECK(rows[0].value(1).d == static_cast<double>(i * (1 + i % 3)));
  }
  // New keys after the renumbering get fresh ids past the live ones.
  const std::uint32_t fresh = f.keys.intern(hash(kKeys), key(kKeys));
  CHECK(fresh == f.keys.size() - 1);
  CHECK(f.add(key(kKeys), 2000, 1.0, 2000));
}

// The staged apply (windows found for a group of rows, then each aggregate
// folding the group) against the row-at-a-time path it replaced, on random
// batches: the same late rows and the same state, byte for byte, through
// out-of-order rows, windows rolling over while a group holds them, the
// arrays growing mid-batch, rows of another key group and refused keys.
TEST_CASE("tumbling window: the staged apply gives the row-at-a-time state bit for bit") {
  Config config = default_config();
  ViewConfig view = config.views[0];
  view.window_ms = 1000;
  view.aggregates.clear();
  for (const char* label : {"count", "sum(a)", "avg(a)", "min(b)", "max(a)", "last(b)", "last(a)", "sum(b)"}) {
    AggregateConfig agg;
    agg.label = label;
    const std::string text = label;
    const auto open = text.find('(');
    agg.function = text.substr(0, open);
    if (open != std::string::npos) {
      agg.field = text.substr(open + 1, text.size() - open - 2);
      agg.column = agg.field == "a" ? 0 : 1;
    }
    view.aggregates.push_back(agg);
  }
  std::mt19937_64 rng(7);
  for (int round = 0; round < 40; ++round) {
    TumblingView staged(view, 2000);
    TumblingView reference(view, 2000);
    RouteBatch batch{kMaxBatchRows, 2};
    std::vector<std::uint32_t> ids(kMaxBatchRows);
    std::vector<std::int64_t> wms(kMaxBatchRows);
    const std::uint32_t keys = round % 2 == 0 ? 8 : 5000;  // a few hot keys, or most rows a new window
    std::int64_t now = 0;
    std::int64_t wm = INT64_MIN;
    std::uint64_t late_staged = 0;
    std::uint64_t late_reference = 0;
    for (int b = 0; b < 6; ++b) {
      batch.clear();
      const std::uint32_t rows = 1 + static_cast<std::uint32_t>(rng() % kMaxBatchRows);
      for (std::uint32_t r = 0; r < rows; ++r) {
        now += static_cast<std::int64_t>(rng() % 7);
        // Mostly in order; some rows seconds back (late, or an older window
        // still open), some equal times (last's ties).
        const std::int64_t ts = rng() % 8 == 0 ? now - static_cast<std::int64_t>(rng() % 5000) : now;
        const Cell cols[2] = {{static_cast<double>(rng() % 1000) / 8.0 - 40.0}, {static_cast<double>(rng() % 13)}};
        batch.append(static_cast<std::uint8_t>(rng() % 4 == 0), 0, ts, INT64_MIN, "k", DedupRole::none, {}, cols, 2);
        wm = std::max(wm, now - 1500);
        wms[r] = wm;
        ids[r] = rng() % 50 == 0 ? KeyTable::kMissing : static_cast<std::uint32_t>(rng() % keys);
      }
      const int group = b % 2 == 0 ? -1 : 0;
      late_staged += staged.apply(BatchRows{batch, ids.data(), wms.data(), 0, batch.rows, group});
      for (std::uint32_t r = 0; r < batch.rows; ++r) {
        if ((group >= 0 && batch.group[r] != group) || ids[r] == KeyTable::kMissing) continue;
        late_reference += reference.add(ids[r], batch, r, wms[r]) ? 0 : 1;
      }
    }
    std::string a;
    std::string b;
    spate::kernels::ByteWriter wa(a);
    spate::kernels::ByteWriter wb(b);
    staged.save(wa);
    reference.save(wb);
    CHECK(late_staged == late_reference);
    CHECK(late_staged > 0);
    CHECK(staged.window_count() == reference.window_count());
    REQUIRE(a == b);
  }
}

TEST_CASE("tumbling window: aggregates of an integer field are exact, of a boolean field its trues") {
  const auto r = parse_config(R"toml(
[schema]
fields = { device = "string", bytes = "integer", ok = "boolean" }
[[view]]
name = "per_device"
key = "device"
size_ms = 60000
aggregates = ["count", "sum(bytes)", "min(bytes)", "max(bytes)", "avg(bytes)", "last(bytes)", "sum(ok)", "avg(ok)"]
)toml",
                              "typed.toml");
  REQUIRE(r.ok());
  TumblingView view{r.config.views[0], r.config.allowed_lateness_ms};
  RouteBatch batch{kDefaultBatchRows, kMaxColumns};
  KeyTable keys;
  const std::uint32_t id = keys.intern(1, "d");
  const auto add = [&](std::int64_t ts, std::int64_t bytes, bool ok) {
    batch.clear();
    Cell cols[2];
    cols[0].i = bytes;
    cols[1].i = ok ? 1 : 0;
    batch.append(0, 1, ts, INT64_MIN, "d", DedupRole::none, {}, cols, 2);
    REQUIRE(view.add(id, batch, 0, INT64_MIN));
  };
  const std::int64_t big = (std::int64_t{1} << 53) + 1;  // a double would round it
  add(1000, big, true);
  add(3000, 2, false);
  add(2000, -5, true);
  add(60000, INT64_MAX, true);  // the next window: a sum past int64
  add(61000, INT64_MAX, false);
  std::vector<ViewRow> rows;
  view.collect(id, "d", INT64_MIN, INT64_MAX, INT64_MIN, rows);
  REQUIRE(rows.size() == 2);
  const auto integer = [](const AggValue& v) { return v.type == AggValue::Type::integer ? v.i : INT64_MIN; };
  CHECK(rows[0].value(0).u == 3);
  CHECK(integer(rows[0].value(1)) == big + 2 - 5);
  CHECK(integer(rows[0].value(2)) == -5);
  CHECK(integer(rows[0].value(3)) == big);
  CHECK(rows[0].value(4).as_double() == doctest::Approx(static_cast<double>(big - 3) / 3));
  CHECK(integer(rows[0].value(5)) == 2);  // the latest event time, not the last applied
  CHECK(integer(rows[0].value(6)) == 2);
  CHECK(rows[0].value(7).as_double() == doctest::Approx(2.0 / 3));
  // Past int64 the sum is reported as the nearest real, never wrapped.
  CHECK(rows[1].value(1).type == AggValue::Type::real);
  CHECK(rows[1].value(1).d == 2 * static_cast<double>(INT64_MAX));
  CHECK(integer(rows[1].value(3)) == INT64_MAX);

  // A checkpoint's state of an integer sum round-trips exactly.
  std::string saved;
  spate::kernels::ByteWriter out(saved);
  view.save(out);
  TumblingView restored{r.config.views[0], r.config.allowed_lateness_ms};
  spate::kernels::ByteReader in(saved);
  REQUIRE(restored.load(in));
  std::vector<ViewRow> again;
  restored.collect(id, "d", INT64_MIN, INT64_MAX, INT64_MIN, again);
  REQUIRE(again.size() == 2);
  CHECK(integer(again[0].value(1)) == big - 3);
  CHECK(again[1].value(1).d == rows[1].value(1).d);
}
