// Data-quality alarms (docs/alarms.md): declared in the config, evaluated
// every second on the query server's thread, fired and cleared with
// hysteresis, logged, and shown by STATS, the metrics endpoint and watch.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/engine.hpp"

namespace spate::query {

// What STATS and the metrics endpoint show of one alarm.
struct AlarmFigure {
  std::string name;
  bool active = false;
  std::uint64_t fired = 0;  // times it fired since the start
};

// The alarms' figures as last evaluated: written by the query server's
// thread, read by STATS and the metrics endpoint's thread.
class AlarmBoard {
 public:
  void publish(std::vector<AlarmFigure> figures) {
    std::lock_guard lock(mu_);
    figures_ = std::move(figures);
  }
  std::vector<AlarmFigure> figures() const {
    std::lock_guard lock(mu_);
    return figures_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<AlarmFigure> figures_;
};

class Alarms {
 public:
  Alarms(const engine::Engine& engine, AlarmBoard& board);

  // New definitions (at start, and on SIGHUP). An alarm of the same name
  // watching the same figure keeps its state (active, history); the rest
  // start afresh, and one that is gone is logged as removed.
  void configure(std::vector<engine::AlarmConfig> alarms);
  // Volume and field alarms, from the shards' counters; call every second.
  // Returns the aggregate alarms to sample now: the caller asks the key's
  // owner shard for its windows (VIEW_GET) and hands them to aggregate_rows.
  std::vector<std::size_t> evaluate(std::int64_t now_ms);
  // An aggregate alarm's sample: its aggregate in the key's newest closed
  // window, once per window.
  // `generation`: generation() when it was asked (a sample asked before a
  // reload is dropped).
  void aggregate_rows(std::size_t alarm, std::uint64_t generation, const std::vector<engine::ViewRow>& rows);
  std::uint64_t generation() const noexcept { return generation_; }
  const engine::AlarmConfig& definition(std::size_t alarm) const { return states_[alarm].def; }
  // An aggregate alarm's VIEW_GET asks only for windows ending after this
  // (the newest window sampled is among them: it ends after its start).
  std::int64_t windows_from(std::size_t alarm) const noexcept {
    const std::int64_t w = states_[alarm].last_window;
    return w == INT64_MIN ? INT64_MIN : w + 1;
  }
  std::size_t size() const noexcept { return states_.size(); }

 private:
  struct State {
    engine::AlarmConfig def;
    bool active = false;
    std::uint64_t fired = 0;
    std::uint32_t out = 0;  // evaluations out of bounds in a row
    std::uint32_t in = 0;   // in bounds in a row
    std::deque<double> history;  // the learned band's samples (in bounds only)
    bool primed = false;         // volume and field: a baseline was read
    std::uint64_t last_events = 0, last_objects = 0, last_absent = 0;
    std::int64_t last_ms = 0;
    std::int64_t last_window = INT64_MIN;  // aggregate: the newest window sampled
  };
  // Judges one sample against the bounds; fires or clears.
  void sample(State& s, double value);
  void publish();

  const engine::Engine& engine_;
  AlarmBoard& board_;
  std::vector<State> states_;
  std::uint64_t generation_ = 0;  // configure() calls
};

}  // namespace spate::query
