// A shard's views and key tables (ViewSet): batches of several key groups
// against a plain reference, dedup roles in a batch from another shard, the
// key limit, retention of idle keys and a save/load round trip.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/view_set.hpp"
#include "kernels/hash.hpp"

using namespace spate::engine;
namespace kernels = spate::kernels;

namespace {

constexpr std::int64_t kT0 = 1767225600000;  // 2026-01-01, ms

// A ViewSet of the built-in pipeline (per_user_1m keyed by user: group 0;
// per_type_10s keyed by type: group 1) with its counters.
struct Fixture {
  Config config;
  std::atomic<std::uint64_t> late[2]{};
  std::atomic<std::uint64_t> key_limit[2]{};
  std::atomic<std::int64_t> newest[2]{};
  ViewSet views;
  RouteBatch batch{kMaxBatchRows, 1};
  std::vector<std::uint32_t> ids = std::vector<std::uint32_t>(kMaxBatchRows);
  std::vector<std::int64_t> wms = std::vector<std::int64_t>(kMaxBatchRows);

  explicit Fixture(Config c) : config(std::move(c)), views(config, 1, late, key_limit, newest) {}

  // One row of group g, as a batch from another shard carries it.
  void row(std::uint8_t g, std::string_view key, std::int64_t ts, double amount, std::int64_t wm,
           DedupRole role = DedupRole::none, std::string_view id = {}) {
    wms[batch.rows] = wm;
    const Cell cell{amount};
    batch.append(g, kernels::hash_key(key), ts, wm, key, role, kernels::fingerprint(id), &cell, 1);
  }
  void apply() {
    views.apply<false>(batch, ids.data(), wms.data());
    batch.clear();
  }
  // Each window of a key: (start, count, sum of amount).
  std::vector<std::tuple<std::int64_t, std::uint64_t, double>> windows(int view, std::string_view key) const {
    std::vector<ViewRow> rows;
    views.collect(view, kernels::hash_key(key), key, INT64_MIN, INT64_MAX, INT64_MIN, rows);
    std::vector<std::tuple<std::int64_t, std::uint64_t, double>> out;
    for (const ViewRow& r : rows) out.emplace_back(r.window_start, r.aggs[0].count, r.value(1).as_double());
    return out;
  }
};

Config with_dedup(bool on) {
  Config c = default_config();
  c.dedup.enabled = on;
  return c;
}

}  // namespace

TEST_CASE("view set: rows of two key groups in one batch fold into their own views, as a plain count says") {
  Fixture f(with_dedup(false));
  std::mt19937_64 rng(3);
  // key group -> key -> window start -> (count, sum)
  std::map<int, std::map<std::string, std::map<std::int64_t, std::pair<std::uint64_t, double>>>> want;
  const std::int64_t window[2] = {60000, 10000};
  for (int b = 0; b < 5; ++b) {
    for (int r = 0; r < 300; ++r) {
      const auto g = static_cast<std::uint8_t>(rng() % 2);
      const std::string key = (g == 0 ? "u" : "t") + std::to_string(rng() % (g == 0 ? 50 : 4));
      const std::int64_t ts = kT0 + static_cast<std::int64_t>(rng() % 120000);
      const double amount = static_cast<double>(rng() % 100);
      f.row(g, key, ts, amount, INT64_MIN);
      auto& w = want[g][key][ts - (ts - kT0) % window[g]];
      ++w.first;
      w.second += amount;
    }
    f.apply();
  }
  std::uint64_t windows = 0;
  for (const auto& [g, keys] : want) {
    for (const auto& [key, starts] : keys) {
      std::vector<std::tuple<std::int64_t, std::uint64_t, double>> expect;
      for (const auto& [start, cs] : starts) expect.emplace_back(start, cs.first, cs.second);
      CHECK(f.windows(g, key) == expect);
      windows += starts.size();
    }
  }
  CHECK(f.views.window_count() == windows);
  CHECK(f.views.key_count() == want[0].size() + want[1].size());
  CHECK(f.late[0] == 0);
  CHECK(f.late[1] == 0);
}

TEST_CASE("view set: a decider row's verdict holds for its followers, and a duplicate is counted once") {
  Fixture f(with_dedup(true));
  REQUIRE(f.views.dedups());
  const std::int64_t ts = kT0 + 1000;
  // Event e1: its user row decides (primary), its type row follows.
  f.row(0, "u1", ts, 5, ts, DedupRole::primary, "\"e1\"");
  f.row(1, "click", ts, 5, ts, DedupRole::follower);
  // Event e2 with a type row deciding as a secondary (its first key group is elsewhere).
  f.row(1, "view", ts, 7, ts, DedupRole::secondary, "\"e2\"");
  // e1 again, in the same batch: both rows dropped; then e2 again.
  f.row(0, "u1", ts, 5, ts, DedupRole::primary, "\"e1\"");
  f.row(1, "click", ts, 5, ts, DedupRole::follower);
  f.row(1, "view", ts, 7, ts, DedupRole::secondary, "\"e2\"");
  f.apply();
  CHECK(f.windows(0, "u1") == std::vector<std::tuple<std::int64_t, std::uint64_t, double>>{{kT0, 1, 5.0}});
  CHECK(f.windows(1, "click") == std::vector<std::tuple<std::int64_t, std::uint64_t, double>>{{kT0, 1, 5.0}});
  CHECK(f.windows(1, "view") == std::vector<std::tuple<std::int64_t, std::uint64_t, double>>{{kT0, 1, 7.0}});
  CHECK(f.views.duplicates() == 1);  // the secondary's duplicate is dropped, not counted
}

TEST_CASE("view set: past max_keys a new key is refused and counted, known keys go on") {
  Config c = with_dedup(false);
  c.views[0].max_keys = 3;
  Fixture f(std::move(c));
  for (int k = 0; k < 5; ++k) f.row(0, "u" + std::to_string(k), kT0, 1, INT64_MIN);
  f.row(0, "u0", kT0, 1, INT64_MIN);
  f.apply();
  CHECK(f.views.keys_in(0) == 3);
  CHECK(f.key_limit[0] == 2);
  CHECK(f.windows(0, "u0") == std::vector<std::tuple<std::int64_t, std::uint64_t, double>>{{kT0, 2, 2.0}});
  CHECK(f.windows(0, "u4").empty());
}

TEST_CASE("view set: retention frees keys whose windows are all gone, and a saved set loads the same") {
  Fixture f(with_dedup(true));
  for (int k = 0; k < 10; ++k) {
    const std::int64_t ts = kT0 + (k < 5 ? 0 : 600000);  // five keys ten minutes later
    f.row(0, "u" + std::to_string(k), ts, k, ts, DedupRole::primary, "\"e" + std::to_string(k) + "\"");
  }
  f.apply();
  CHECK(f.views.keys_in(0) == 10);

  std::string saved;
  kernels::ByteWriter out(saved);
  f.views.save(out);
  Fixture g(with_dedup(true));
  kernels::ByteReader in(saved);
  REQUIRE(g.views.load(in));
  CHECK(in.remaining() == 0);
  CHECK(g.views.window_count() == f.views.window_count());
  for (int k = 0; k < 10; ++k) CHECK(g.windows(0, "u" + std::to_string(k)) == f.windows(0, "u" + std::to_string(k)));
  // The ids came along: a resend is a duplicate in the loaded set.
  g.row(0, "u3", kT0, 3, kT0, DedupRole::primary, "\"e3\"");
  g.apply();
  CHECK(g.views.duplicates() == 1);

  // Retention of 60 s behind a watermark past the early windows' end: the
  // first five keys lose their window, then their ids.
  const std::int64_t wm = kT0 + 600000;
  for (int step = 0; step < 4; ++step) f.views.retention_step(wm, 60000, 1 << 20, false);
  CHECK(f.views.keys_in(0) == 5);
  CHECK(f.windows(0, "u0").empty());
  CHECK(f.windows(0, "u7").size() == 1);
}
