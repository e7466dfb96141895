// Data-quality alarms; see alarms.hpp and docs/alarms.md.
#include "query/alarms.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "io/file/log.hpp"

namespace spate::query {
namespace {

using engine::AlarmConfig;

const char* kind_name(AlarmConfig::Kind k) {
  switch (k) {
    case AlarmConfig::Kind::volume: return "volume";
    case AlarmConfig::Kind::field: return "field";
    case AlarmConfig::Kind::aggregate: return "aggregate";
  }
  return "?";
}

// Whether two definitions watch the same figure (bounds may differ).
bool same_figure(const AlarmConfig& a, const AlarmConfig& b) {
  return a.name == b.name && a.kind == b.kind && a.source == b.source && a.field == b.field && a.view == b.view &&
         a.aggregate == b.aggregate && a.key == b.key;
}

std::size_t source_index(const std::string& source) {
  const engine::SourceKind* kind = engine::find_source_kind(source);
  return kind != nullptr ? engine::source_kind_id(*kind) : engine::kAllSources;  // "all"
}

}  // namespace

Alarms::Alarms(const engine::Engine& engine, AlarmBoard& board) : engine_(engine), board_(board) {}

void Alarms::configure(std::vector<AlarmConfig> alarms) {
  std::vector<State> next;
  std::vector<bool> kept(states_.size(), false);
  for (AlarmConfig& def : alarms) {
    State s;
    for (std::size_t i = 0; i < states_.size(); ++i) {
      if (!kept[i] && same_figure(states_[i].def, def)) {
        s = std::move(states_[i]);
        kept[i] = true;
      }
    }
    s.def = std::move(def);
    while (s.history.size() > s.def.learn) s.history.pop_front();
    next.push_back(std::move(s));
  }
  for (std::size_t i = 0; i < states_.size(); ++i) {
    if (!kept[i] && states_[i].active) io::log_info("alarm removed while active", {{"alarm", states_[i].def.name}});
  }
  states_ = std::move(next);
  ++generation_;
  publish();
}

std::vector<std::size_t> Alarms::evaluate(std::int64_t now_ms) {
  std::vector<std::size_t> aggregates;
  for (std::size_t i = 0; i < states_.size(); ++i) {
    State& s = states_[i];
    if (s.def.kind == AlarmConfig::Kind::aggregate) {
      aggregates.push_back(i);
      continue;
    }
    // Sums over shards of the counters the alarm reads.
    std::uint64_t events = 0, objects = 0, absent = 0;
    for (std::uint32_t sh = 0; sh < engine_.shard_count(); ++sh) {
      const engine::ShardCounters& k = engine_.shard(sh).counters();
      if (s.def.kind == AlarmConfig::Kind::volume) {
        events += k.events(source_index(s.def.source));
        continue;
      }
      // Lines that were JSON objects: accepted, or refused for what they held.
      objects += k.events();
      for (std::size_t src = 0; src < engine::kMaxSourceKinds; ++src) {
        for (engine::Reject r : {engine::Reject::missing_field, engine::Reject::wrong_type,
                                 engine::Reject::bad_timestamp, engine::Reject::future_timestamp,
                                 engine::Reject::key_too_long}) {
          objects += k.errors[src][static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
        }
      }
      absent += k.field_absent[s.def.field_index].load(std::memory_order_relaxed);
    }
    if (!s.primed || now_ms <= s.last_ms) {
      s.primed = true;
    } else if (s.def.kind == AlarmConfig::Kind::volume) {
      sample(s, static_cast<double>(events - s.last_events) * 1000.0 / static_cast<double>(now_ms - s.last_ms));
    } else if (objects > s.last_objects) {  // no line, no sample
      const double lines = static_cast<double>(objects - s.last_objects);
      sample(s, 1.0 - static_cast<double>(absent - s.last_absent) / lines);
    }
    s.last_events = events;
    s.last_objects = objects;
    s.last_absent = absent;
    s.last_ms = now_ms;
  }
  publish();
  return aggregates;
}

void Alarms::aggregate_rows(std::size_t alarm, std::uint64_t generation, const std::vector<engine::ViewRow>& rows) {
  if (generation != generation_ || alarm >= states_.size()) return;  // reconfigured meanwhile
  State& s = states_[alarm];
  const engine::ViewRow* newest = nullptr;
  for (const engine::ViewRow& r : rows) {
    if (r.closed && (newest == nullptr || r.window_start > newest->window_start)) newest = &r;
  }
  if (newest == nullptr || newest->window_start <= s.last_window) return;
  s.last_window = newest->window_start;
  sample(s, newest->value(static_cast<std::size_t>(s.def.aggregate_index)).as_double());
  publish();
}

void Alarms::sample(State& s, double value) {
  const AlarmConfig& d = s.def;
  double lo = d.has_min ? d.min : -std::numeric_limits<double>::infinity();
  double hi = d.has_max ? d.max : std::numeric_limits<double>::infinity();
  if (d.learn != 0 && s.history.size() >= d.learn) {
    double mean = 0, var = 0;
    for (double v : s.history) mean += v;
    mean /= static_cast<double>(s.history.size());
    for (double v : s.history) var += (v - mean) * (v - mean);
    // A band at least min_band of the mean wide each way: a figure that
    // was steady while the band learned must not fire on its first wobble
    // (nor stay firing for want of a sample inside a band too narrow).
    const double half = std::max(d.sigmas * std::sqrt(var / static_cast<double>(s.history.size())),
                                 d.min_band * std::abs(mean));
    lo = std::max(lo, mean - half);
    hi = std::min(hi, mean + half);
  }
  const bool in_bounds = value >= lo && value <= hi;
  if (in_bounds) {
    s.out = 0;
    ++s.in;
    if (d.learn != 0) {  // the band learns from what it judged normal
      s.history.push_back(value);
      if (s.history.size() > d.learn) s.history.pop_front();
    }
  } else {
    s.in = 0;
    ++s.out;
  }
  const bool fires = !s.active && s.out >= d.fire_after;
  const bool clears = s.active && s.in >= d.clear_after;
  if (!fires && !clears) return;
  s.active = fires;
  if (fires) ++s.fired;
  std::vector<io::LogField> fields{{"alarm", d.name}, {"type", kind_name(d.kind)}, {"value", value},
                                   {"evaluations", fires ? d.fire_after : d.clear_after}};
  if (std::isfinite(lo)) fields.emplace_back("min", lo);
  if (std::isfinite(hi)) fields.emplace_back("max", hi);
  io::log(fires ? io::LogLevel::warn : io::LogLevel::info, fires ? "alarm fired" : "alarm cleared", fields);
}

void Alarms::publish() {
  std::vector<AlarmFigure> figures;
  figures.reserve(states_.size());
  for (const State& s : states_) figures.push_back({s.def.name, s.active, s.fired});
  board_.publish(std::move(figures));
}

}  // namespace spate::query
