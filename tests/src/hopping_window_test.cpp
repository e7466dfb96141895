// Hopping windows: each window equals a plain fold of the rows it holds
// (an independent reference over random rows), lateness judged by the last
// window holding a row, and the kind's settings checked at load.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/hopping_window.hpp"
#include "engine/view_registry.hpp"

using namespace spate::engine;

namespace {

ViewConfig hopping(std::int64_t size_ms, std::int64_t slide_ms) {
  Config config = default_config();
  ViewConfig view = config.views[0];  // per_user_1m: count, sum, min, max and avg of amount
  view.window = "hopping";
  view.window_ms = size_ms;
  view.slide_ms = slide_ms;
  return view;
}

struct Fixture {
  explicit Fixture(const ViewConfig& config, std::int64_t lateness_ms = 5000) : view(config, lateness_ms) {}
  HoppingView view;
  RouteBatch batch{kDefaultBatchRows, kMaxColumns};
  KeyTable keys;

  // True when the row was folded (not late).
  bool add(std::string_view key, std::int64_t ts, double amount, std::int64_t watermark) {
    batch.clear();
    const Cell cols[1] = {{amount}};
    batch.append(0, 1, ts, INT64_MIN, key, DedupRole::none, {}, cols, 1);
    const std::uint32_t id = keys.intern(std::hash<std::string_view>{}(key), key);
    return view.apply({batch, &id, &watermark, 0, 1, -1}) == 0;
  }
  std::vector<ViewRow> rows(std::string_view key, std::int64_t from, std::int64_t to, std::int64_t watermark) {
    std::vector<ViewRow> out;
    view.collect(keys.find(std::hash<std::string_view>{}(key), key), key, from, to, watermark, out);
    return out;
  }
};

// The reference: a window is its rows' count, sum, min and max.
struct RefWindow {
  std::uint64_t count = 0;
  double sum = 0, min = 1e300, max = -1e300;
};

}  // namespace

TEST_CASE("hopping window: each row is in size / slide windows, each the fold of its rows") {
  Fixture f(hopping(30000, 10000));
  CHECK(f.add("a", 5000, 2.0, INT64_MIN));
  CHECK(f.add("a", 15000, 3.0, INT64_MIN));
  CHECK(f.add("a", 25000, 4.0, INT64_MIN));
  const std::vector<ViewRow> rows = f.rows("a", INT64_MIN, INT64_MAX, INT64_MIN);
  // Windows start every 10 s; [−20 s, 10 s) holds the first row only, [0, 30 s) all three.
  REQUIRE(rows.size() == 5);
  const std::int64_t starts[] = {-20000, -10000, 0, 10000, 20000};
  const std::uint64_t counts[] = {1, 2, 3, 2, 1};
  const double sums[] = {2, 5, 9, 7, 4};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(rows[i].window_start == starts[i]);
    CHECK(rows[i].window_end == starts[i] + 30000);
    CHECK(rows[i].value(0).u == counts[i]);
    CHECK(rows[i].value(1).as_double() == sums[i]);
  }
  CHECK(f.view.window_count() == 3);  // one pane a row: the windows share them
  // Only the windows overlapping [25 s, 26 s).
  const std::vector<ViewRow> some = f.rows("a", 25000, 26000, INT64_MIN);
  REQUIRE(some.size() == 3);
  CHECK(some.front().window_start == 0);
  CHECK(some.back().window_start == 20000);
}

TEST_CASE("hopping window: a row is late once the oldest window holding it has closed, and goes to none") {
  Fixture f(hopping(30000, 10000), 5000);
  // The row at 5 s is in [-20 s, 10 s) (closed at 15 s), [-10 s, 20 s) and [0, 30 s).
  CHECK(f.add("a", 5000, 1.0, 14999));
  CHECK_FALSE(f.add("a", 5000, 1.0, 15000));
  CHECK(f.add("a", 15000, 1.0, 15000));  // its oldest window, [-10 s, 20 s), closes at 25 s
  std::vector<ViewRow> rows = f.rows("a", INT64_MIN, INT64_MAX, 15000);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].closed);
  CHECK(rows[0].value(0).u == 1);  // the closed window did not change
  CHECK_FALSE(rows[1].closed);
  CHECK(rows[2].value(0).u == 2);
  CHECK(f.rows("a", INT64_MIN, INT64_MAX, 35000)[2].closed);  // [0, 30 s) at 35 s
  // Retention keeps a pane until the newest window holding it has closed
  // retention ago ([0, 30 s) at 35 s for the pane at 0, [10 s, 40 s) at
  // 45 s for the pane at 10 s), and shows no window that lost a pane.
  f.view.evict(44999, 0);
  rows = f.rows("a", INT64_MIN, INT64_MAX, 44999);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].window_start == 10000);
  CHECK(rows[0].value(0).u == 1);
  f.view.evict(45001, 0);
  CHECK(f.rows("a", INT64_MIN, INT64_MAX, 45001).empty());
}

TEST_CASE("hopping window: random rows give the reference's windows and top keys") {
  std::mt19937_64 rng(7);
  const std::int64_t size = 60000, slide = 15000, lateness = 5000;
  Fixture f(hopping(size, slide), lateness);
  std::map<std::pair<std::string, std::int64_t>, RefWindow> ref;
  std::int64_t wm = INT64_MIN, newest = 0;
  std::uint64_t late = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "k" + std::to_string(rng() % 50);
    newest += static_cast<std::int64_t>(rng() % 100);
    const std::int64_t ts = newest - static_cast<std::int64_t>(rng() % 8 == 0 ? rng() % 90000 : 0);
    const double amount = static_cast<double>(rng() % 1000) / 4;
    // The oldest window holding ts ends with its pane and closes lateness after.
    const std::int64_t pane = window_start_of(ts, slide);
    const bool want_late = wm != INT64_MIN && pane + slide + lateness <= wm;
    REQUIRE(f.add(key, ts, amount, wm) == !want_late);
    if (want_late) {
      ++late;
    } else {
      for (std::int64_t s = pane - size + slide; s <= pane; s += slide) {
        RefWindow& w = ref[{key, s}];
        ++w.count;
        w.sum += amount;
        w.min = std::min(w.min, amount);
        w.max = std::max(w.max, amount);
      }
    }
    wm = std::max(wm, newest - lateness);
  }
  CHECK(late > 0);
  std::size_t windows = 0;
  for (int k = 0; k < 50; ++k) {
    const std::string key = "k" + std::to_string(k);
    for (const ViewRow& row : f.rows(key, INT64_MIN, INT64_MAX, wm)) {
      INFO(key, " window ", row.window_start);
      const auto it = ref.find({key, row.window_start});
      REQUIRE(it != ref.end());
      CHECK(row.value(0).u == it->second.count);
      CHECK(row.value(1).as_double() == doctest::Approx(it->second.sum));
      CHECK(row.value(2).as_double() == it->second.min);
      CHECK(row.value(3).as_double() == it->second.max);
      CHECK(row.closed == (row.window_start + size + lateness <= wm));
      ++windows;
    }
  }
  CHECK(windows == ref.size());

  // The top 5 keys by sum of one window, against the reference's.
  const std::int64_t start = window_start_of(newest / 2, slide);
  std::vector<std::pair<double, std::string>> want;
  for (const auto& [kw, w] : ref) {
    if (kw.second == start) want.emplace_back(-w.sum, kw.first);
  }
  std::sort(want.begin(), want.end());
  std::vector<ViewRow> top;
  f.view.top(start, 5, 1, f.keys, wm, top);
  REQUIRE(top.size() == 5);
  for (std::size_t i = 0; i < top.size(); ++i) {
    CHECK(top[i].key == want[i].second);
    CHECK(top[i].value(1).as_double() == doctest::Approx(-want[i].first));
    CHECK(top[i].window_start == start);
  }
}

TEST_CASE("view kinds: a window kind is looked up by name and checks its own settings") {
  Config config = default_config();
  CHECK(check_views(config).empty());
  config.views[0].window = "hopping";
  config.views[0].line = 12;
  std::vector<ConfigError> errors = check_views(config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].line == 12);
  CHECK(errors[0].message.find("needs slide_ms") != std::string::npos);
  config.views[0].slide_ms = 7000;  // 60 s is not a multiple of 7 s
  errors = check_views(config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.find("must be a multiple of slide_ms (7000)") != std::string::npos);
  config.views[0].slide_ms = 20000;
  CHECK(check_views(config).empty());
  CHECK(make_view(config.views[0], 5000)->row_store() != nullptr);
  config.views[1].window = "sliding";
  errors = check_views(config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message == "view 'per_type_10s': window 'sliding' is not a view kind (tumbling, hopping)");
  CHECK_THROWS_AS(make_view(config.views[1], 5000), std::invalid_argument);
  config.views[1].window = "tumbling";
  config.views[1].slide_ms = 5000;
  REQUIRE(check_views(config).size() == 1);
}

TEST_CASE("view kinds: a time inside a window aligns to the start VIEW_TOP answers for") {
  const ViewConfig tumbling = default_config().views[0];  // per_user_1m
  REQUIRE(tumbling.window == "tumbling");
  CHECK(align_window_start(tumbling, 1764000000000) == 1764000000000);
  CHECK(align_window_start(tumbling, 1764000059999) == 1764000000000);
  CHECK(align_window_start(tumbling, 1764000060000) == 1764000060000);
  CHECK(align_window_start(tumbling, -1) == -60000);  // floor, not truncation
  CHECK(align_window_start(tumbling, 0) == 0);
  // Past the range of event times: held to it, no overflow.
  CHECK(align_window_start(tumbling, INT64_MIN) == -62167219200000);
  CHECK(align_window_start(tumbling, INT64_MAX) == 253402300740000);
  // Hopping (60 s windows every 10 s): the window starting in the same slide.
  const ViewConfig hop = hopping(60000, 10000);
  CHECK(align_window_start(hop, 1764000000000) == 1764000000000);
  CHECK(align_window_start(hop, 1764000019999) == 1764000010000);
  CHECK(align_window_start(hop, -10001) == -20000);
}
