// The Prometheus endpoint; see metrics_server.hpp and docs/metrics.md.
#include "query/metrics_server.hpp"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "query/query_server.hpp"
#include "query/stats.hpp"

namespace spate::query {
namespace {

// A STATS figure as a Prometheus sample: the family's name, its labels
// besides shard, its type, and the factor to base units (seconds, ratios).
struct Sample {
  std::string family;
  std::string labels;
  bool gauge = false;
  double scale = 1;
};

bool is_source(std::string_view s) { return engine::find_source_kind(s) != nullptr; }

// nullopt: a total of figures the endpoint gives by label (errors, late_events...).
std::optional<Sample> sample_of(std::string_view name, StatKind kind) {
  static constexpr std::string_view kTotals[] = {"events_in", "bytes_in", "errors", "late_events"};
  for (std::string_view t : kTotals) {
    if (name == t) return std::nullopt;
  }
  if (name.starts_with("errors.")) return std::nullopt;
  Sample s;
  s.gauge = kind == StatKind::gauge;
  std::string base(name);
  const auto dot = name.find('.');
  const std::string_view head = name.substr(0, dot);
  const std::string_view rest = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  if (is_source(head) && rest == "events_in") {
    return Sample{"spate_events_in", fmt::format("source=\"{}\"", head), false, 1};
  } else if (is_source(head) && rest == "bytes_in") {
    return Sample{"spate_received_bytes", fmt::format("source=\"{}\"", head), false, 1};
  } else if (is_source(head) && rest == "sources") {
    return Sample{"spate_sources", fmt::format("source=\"{}\"", head), true, 1};
  } else if (is_source(head) && rest == "inputs") {
    return Sample{"spate_inputs_opened", fmt::format("source=\"{}\"", head), false, 1};
  } else if (is_source(head) && rest.starts_with("errors.")) {
    return Sample{"spate_rejected_lines", fmt::format("source=\"{}\",reason=\"{}\"", head, rest.substr(7)), false, 1};
  } else if (head == "late") {
    return Sample{"spate_late_rows", fmt::format("view=\"{}\"", rest), false, 1};
  } else if (head == "log" && rest.starts_with("lines.")) {
    return Sample{"spate_log_lines", fmt::format("level=\"{}\"", rest.substr(6)), false, 1};
  } else if (head == "alarm") {  // alarm.<name>.active, alarm.<name>.fired
    const auto last = rest.rfind('.');
    return Sample{fmt::format("spate_alarm_{}", rest.substr(last + 1)),
                  fmt::format("alarm=\"{}\"", rest.substr(0, last)), kind == StatKind::gauge, 1};
  } else if ((head == "keys" || head == "windows" || head == "state_bytes") && !rest.empty()) {
    return Sample{fmt::format("spate_view_{}", head), fmt::format("view=\"{}\"", rest), true, 1};
  } else if (head == "key_limit") {
    return Sample{"spate_key_limit_dropped_rows", fmt::format("view=\"{}\"", rest), false, 1};
  }
  if (base.ends_with("_us")) {
    base.replace(base.size() - 3, 3, "_seconds");
    s.scale = 1e-6;
  } else if (base.ends_with("_ms")) {
    base.replace(base.size() - 3, 3, "_seconds");
    s.scale = 1e-3;
  } else if (base.ends_with("_percent")) {
    base.replace(base.size() - 8, 8, "_ratio");
    s.scale = 0.01;
  }
  for (char& c : base) {
    if (c == '.') c = '_';
  }
  s.family = "spate_" + base;
  return s;
}

}  // namespace

std::string render_prometheus(const engine::Engine& engine, const ServerCounters& server) {
  struct Family {
    const char* type = "counter";
    std::string stats_name;
    std::vector<std::string> lines;
  };
  std::map<std::string, Family> families;
  visit_stats(
      engine, server,
      [&](std::uint32_t shard, std::string_view name, std::uint64_t value, StatKind kind) {
        const std::optional<Sample> s = sample_of(name, kind);
        if (!s) return;
        const std::string family = s->family + (s->gauge ? "" : "_total");
        Family& f = families[family];
        f.type = s->gauge ? "gauge" : "counter";
        if (f.stats_name.empty()) f.stats_name = name;
        const std::string labels = fmt::format("shard=\"{}\"{}{}", shard, s->labels.empty() ? "" : ",", s->labels);
        if (s->scale == 1) {
          f.lines.push_back(fmt::format("{}{{{}}} {}", family, labels, value));
        } else {
          f.lines.push_back(fmt::format("{}{{{}}} {}", family, labels, static_cast<double>(value) * s->scale));
        }
      },
      [&](std::uint32_t shard, std::string_view name, const kernels::HistogramCounts& h) {
        // Microseconds to seconds; a bucket per power of two from 8 us
        // (each holds whole buckets of the histogram: le counts values below 2^k us).
        const std::string family = sample_of(name, StatKind::counter)->family;
        Family& f = families[family];
        f.type = "histogram";
        if (f.stats_name.empty()) f.stats_name = name;
        for (unsigned k = kernels::kHistogramSubBits; k <= kernels::kHistogramMaxBits; ++k) {
          f.lines.push_back(fmt::format("{}_bucket{{shard=\"{}\",le=\"{}\"}} {}", family, shard,
                                        std::ldexp(1e-6, static_cast<int>(k)), h.below(std::uint64_t{1} << k)));
        }
        const std::uint64_t total = h.total();
        f.lines.push_back(fmt::format("{}_bucket{{shard=\"{}\",le=\"+Inf\"}} {}", family, shard, total));
        f.lines.push_back(fmt::format("{}_sum{{shard=\"{}\"}} {}", family, shard, h.sum * 1e-6));
        f.lines.push_back(fmt::format("{}_count{{shard=\"{}\"}} {}", family, shard, total));
      });
  std::string out;
  for (const auto& [name, f] : families) {
    out += fmt::format("# HELP {} spate STATS figure {} (docs/metrics.md).\n# TYPE {} {}\n", name, f.stats_name, name,
                       f.type);
    for (const std::string& line : f.lines) {
      out += line;
      out += '\n';
    }
  }
  return out;
}

MetricsServer::MetricsServer(const engine::Engine& engine, const ServerCounters& server, const engine::Endpoint& listen)
    : http_(std::make_unique<httplib::Server>()) {
  http_->Get("/metrics", [&engine, &server](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_prometheus(engine, server), "text/plain; version=0.0.4; charset=utf-8");
  });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  http_->Get("/readyz", [&engine](const httplib::Request&, httplib::Response& res) {
    // Ready once every shard has replayed its segments (the query port
    // listens from then on: the server starts after the replay).
    const bool ready = engine.all_replayed() && !engine.stopping();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready: replaying the segments, or stopping\n", "text/plain");
  });
  const int port = listen.port == 0 ? http_->bind_to_any_port(listen.host)
                                    : (http_->bind_to_port(listen.host, listen.port) ? listen.port : -1);
  if (port <= 0) {
    throw std::runtime_error(fmt::format("cannot listen for metrics on {}: in use or not an address here "
                                         "([metrics] listen, --metrics-addr; 'off' turns it off)",
                                         listen.to_string()));
  }
  port_ = static_cast<std::uint16_t>(port);
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  // cpp-httplib's stop() does nothing before the listener runs: a stop
  // that came first would wait forever on a thread blocked in accept().
  // (Bounded: a listener that failed at once never runs.)
  for (int i = 0; i < 5000 && !http_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

MetricsServer::~MetricsServer() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace spate::query
