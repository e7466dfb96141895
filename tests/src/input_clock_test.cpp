// Per-input event time: the watermark is the minimum over active inputs, a
// new input holds it back, an idle one stops holding it back, and each event
// is judged against the watermark as it stood before it; checked against a
// plain model on random operations (the incremental minimum against a walk).
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>

#include "engine/input_clock.hpp"

using spate::engine::InputClock;

TEST_CASE("input clock: a new input holds event time back until it delivers or idles") {
  InputClock clock;
  CHECK(clock.watermark() == InputClock::kNone);  // no input: nothing holds back
  const std::uint32_t a = clock.open();
  const std::uint32_t b = clock.open();
  CHECK(clock.watermark() == INT64_MIN);  // both open, neither delivered
  CHECK(clock.observe(a, 1000) == INT64_MIN);
  CHECK(clock.watermark() == INT64_MIN);  // b still holds it back
  clock.tick(0, 300);                      // both fresh (b since it opened): silence counts from now
  clock.tick(299, 300);
  CHECK(clock.is_active(b));
  clock.observe(a, 1100);
  clock.tick(300, 300);  // b silent for 300 ms: idle
  CHECK_FALSE(clock.is_active(b));
  CHECK(clock.is_active(a));
  CHECK(clock.watermark() == 1100);
  CHECK(clock.active_count() == 1);
  // b delivers again: it holds the watermark back at its own event time.
  CHECK(clock.observe(b, 500) == 1100);  // judged against the watermark before it
  CHECK(clock.watermark() == 500);
}

TEST_CASE("input clock: an in-order stream is judged against the watermark before each event") {
  InputClock clock;
  const std::uint32_t a = clock.open();
  std::int64_t before = INT64_MIN;
  for (std::int64_t ts = 0; ts < 10000; ts += 7) {
    CHECK(clock.observe(a, ts) == before);
    before = ts;
  }
  CHECK(clock.observe(a, 3) == 9996);  // out of order: the watermark does not go back
  CHECK(clock.watermark() == 9996);
  CHECK(clock.newest() == 9996);
}

TEST_CASE("input clock: a closed input stops holding back and its slot serves the next input") {
  InputClock clock;
  const std::uint32_t a = clock.open();
  const std::uint32_t b = clock.open();
  clock.observe(a, 5000);
  clock.observe(b, 100);
  CHECK(clock.watermark() == 100);
  clock.close(b);
  CHECK(clock.watermark() == 5000);
  CHECK(clock.open_count() == 1);
  const std::uint32_t c = clock.open();
  CHECK(c == b);
  CHECK(clock.watermark() == INT64_MIN);  // the new input holds back from its start
  clock.close(c);
  clock.close(c);  // twice: no effect
  CHECK(clock.open_count() == 1);
  CHECK(clock.watermark() == 5000);
}

TEST_CASE("input clock: after a stall every input's silence counts from now") {
  InputClock clock;
  const std::uint32_t a = clock.open();
  clock.observe(a, 10);
  clock.tick(0, 100);
  clock.tick(500, 100, true);  // nothing was read for 500 ms: not the input's silence
  CHECK(clock.is_active(a));
  clock.tick(599, 100);
  CHECK(clock.is_active(a));
  clock.tick(600, 100);
  CHECK_FALSE(clock.is_active(a));
  CHECK(clock.watermark() == InputClock::kNone);
}

// The model: every input's newest stamp and state, the minimum by a walk.
TEST_CASE("input clock: random opens, closes, events and ticks agree with a plain model") {
  struct Model {
    std::int64_t newest = INT64_MIN;
    std::int64_t last_ms = 0;
    bool active = true;
    bool fresh = true;
  };
  std::mt19937_64 rng(11);
  for (int round = 0; round < 50; ++round) {
    InputClock clock;
    std::map<std::uint32_t, Model> model;
    std::int64_t now = 0;
    const std::int64_t idle_ms = 50;
    const auto model_min = [&] {
      std::int64_t m = InputClock::kNone;
      for (const auto& [id, in] : model) {
        if (in.active) m = std::min(m, in.newest);
      }
      return m;
    };
    for (int step = 0; step < 2000; ++step) {
      const unsigned op = static_cast<unsigned>(rng() % 100);
      if (op < 5 || model.empty()) {
        const std::uint32_t id = clock.open();
        REQUIRE(model.count(id) == 0);
        model[id] = Model{};
      } else if (op < 8) {
        auto it = model.begin();
        std::advance(it, static_cast<long>(rng() % model.size()));
        clock.close(it->first);
        model.erase(it);
      } else if (op < 15) {
        now += static_cast<std::int64_t>(rng() % 40);
        const bool stalled = rng() % 10 == 0;
        clock.tick(now, idle_ms, stalled);
        for (auto& [id, in] : model) {
          if (in.fresh || stalled) {
            in.fresh = false;
            in.last_ms = now;
          } else if (in.active && now - in.last_ms >= idle_ms) {
            in.active = false;
          }
        }
      } else {
        auto it = model.begin();
        std::advance(it, static_cast<long>(rng() % model.size()));
        // Inputs drift apart: each has its own pace, some events out of order.
        const std::int64_t ts = static_cast<std::int64_t>(it->first) * 37 + step * 3 -
                                static_cast<std::int64_t>(rng() % 4 == 0 ? rng() % 200 : 0);
        const std::int64_t want_before = model_min();
        Model& in = it->second;
        in.fresh = true;
        in.active = true;
        in.newest = std::max(in.newest, ts);
        INFO("round ", round, " step ", step);
        REQUIRE(clock.observe(it->first, ts) == want_before);
      }
      REQUIRE(clock.watermark() == model_min());
      REQUIRE(clock.open_count() == model.size());
      REQUIRE(clock.active_count() ==
              static_cast<std::uint32_t>(std::count_if(model.begin(), model.end(), [](const auto& p) {
                return p.second.active;
              })));
    }
  }
}
