// spated: the daemon. Runs the built-in pipeline with no arguments, or the
// pipeline of a TOML file; SIGTERM/SIGINT drain what was received and exit 0.
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "config/config.hpp"
#include "engine/engine.hpp"
#include "engine/kept_data.hpp"
#include "engine/source_kind.hpp"
#include "engine/view_registry.hpp"
#include "io/file/log.hpp"
#include "systemd_notify.hpp"
#include "query/metrics_server.hpp"
#include "query/query_server.hpp"

namespace {

using spate::engine::Config;
using spate::engine::Endpoint;

constexpr int kExitConfig = 78;  // EX_CONFIG

// Seconds rounded to the millisecond, for the log.
double seconds_ms(double seconds) { return std::round(seconds * 1000) / 1000; }

// FILE:LINE: error: ... as a compiler says it, in line order; the warnings
// (FILE:LINE: warning: ...) only of a file without errors: fixing an error
// may change them.
void report_config(const std::string& file, const spate::engine::ConfigResult& result) {
  const bool errors = !result.errors.empty();
  for (const auto& e : errors ? result.errors : result.warnings) {
    const char* what = errors ? "error" : "warning";
    if (e.line > 0) fmt::print(stderr, "{}:{}: {}: {}\n", file, e.line, what, e.message);
    else fmt::print(stderr, "{}: {}: {}\n", file, what, e.message);
  }
}

// --tcp-addr, --udp-addr: the listen address of every source of the type
// (one is added when there is none), or "off": none.
bool override_endpoint(Config& config, std::string_view type, const std::string& text) {
  Endpoint ep;
  if (text == "off") {
    std::erase_if(config.sources, [&](const auto& s) { return s.type == type; });
    return true;
  }
  if (!spate::engine::parse_endpoint(text, ep)) return false;
  bool found = false;
  for (auto& s : config.sources) {
    if (s.type == type) {
      s.set("listen", text);
      found = true;
    }
  }
  if (!found) {
    spate::engine::SourceConfig& s = config.sources.emplace_back();
    s.type = type;
    s.set("listen", text);
  }
  return true;
}

// A config file with what the engine's parts check (the sources' and the
// views' kinds and settings) beside what parse_config checks.
spate::engine::ConfigResult load_checked(const std::string& path) {
  auto result = spate::engine::load_config_file(path);
  for (auto& e : spate::engine::check_sources(result.config)) result.errors.push_back(std::move(e));
  for (auto& e : spate::engine::check_views(result.config)) result.errors.push_back(std::move(e));
  spate::engine::sort_by_line(result.errors);
  return result;
}

// What alarms refer to by index: the schema and the views. A reload may
// change the alarms only while these stay as the engine runs them.
bool same_pipeline(const Config& a, const Config& b) {
  if (a.id_field != b.id_field || a.ts_field != b.ts_field || a.fields.size() != b.fields.size() ||
      a.views.size() != b.views.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.fields.size(); ++i) {
    if (a.fields[i].name != b.fields[i].name || a.fields[i].type != b.fields[i].type) return false;
  }
  for (std::size_t v = 0; v < a.views.size(); ++v) {
    const auto& x = a.views[v];
    const auto& y = b.views[v];
    if (x.name != y.name || x.aggregates.size() != y.aggregates.size()) return false;
    for (std::size_t g = 0; g < x.aggregates.size(); ++g) {
      if (x.aggregates[g].label != y.aggregates[g].label) return false;
    }
  }
  return true;
}

// SIGHUP: the config file's [[alarm]] tables replace the running ones; the
// rest of the file needs a restart (docs/alarms.md).
void reload_alarms(const std::string& config_file, const Config& running, spate::query::QueryServer& server) {
  if (config_file.empty()) {
    spate::io::log_warn("SIGHUP: nothing to reload (spated runs the built-in pipeline, no --config)");
    return;
  }
  auto result = load_checked(config_file);
  if (!result.ok()) {
    for (const auto& e : result.errors) {
      spate::io::log_error("SIGHUP: config error; alarms not reloaded", {{"path", config_file}, {"line", e.line},
                                                                       {"error", e.message}});
    }
    return;
  }
  if (!same_pipeline(result.config, running)) {
    spate::io::log_error("SIGHUP: the schema or the views changed; alarms not reloaded (restart to apply)",
                         {{"path", config_file}});
    return;
  }
  spate::io::log_info("SIGHUP: alarms reloaded (other changes need a restart)",
                      {{"path", config_file}, {"alarms", result.config.alarms.size()}});
  server.reload_alarms(std::move(result.config.alarms));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spated: real-time JSON event ingestion and windowed views"};
  app.set_version_flag("--version", "spated " SPATE_VERSION);
  std::string config_file, check_file, data_dir, query_addr, tcp_addr, udp_addr, metrics_addr, log_format, log_level;
  std::vector<std::string> ingest;
  unsigned shards = 0;
  bool exit_after_ingest = false;
  app.add_option("--config", config_file, "pipeline description (TOML)")->check(CLI::ExistingFile);
  app.add_option("--check-config", check_file, "validate a config file, explain every error, and exit (78 if invalid); with --data-dir, also say what a start with it would do to that directory's kept data (78 if it would refuse to start)");
  app.add_option("--data-dir", data_dir, "data directory (default ./spate-data)");
  app.add_option("--ingest", ingest, "read NDJSON from FILE ('-' for stdin) as an extra source");
  app.add_option("--shards", shards, "number of shards (default: one per CPU)")->check(CLI::Range(1, 1024));
  app.add_option("--query-addr", query_addr, "query protocol address HOST:PORT (default 127.0.0.1:7070)");
  app.add_option("--tcp-addr", tcp_addr, "TCP NDJSON ingest HOST:PORT, or 'off' (default 127.0.0.1:7072)");
  app.add_option("--udp-addr", udp_addr, "UDP NDJSON ingest HOST:PORT, or 'off' (default 127.0.0.1:7071)");
  app.add_option("--metrics-addr", metrics_addr, "Prometheus endpoint HOST:PORT, or 'off' (default 127.0.0.1:9464)");
  app.add_flag("--exit-after-ingest", exit_after_ingest, "exit once every --ingest file is applied (batch mode)");
  app.add_option("--log-format", log_format, "log lines on stderr: logfmt or json (default [log] format, logfmt)");
  app.add_option("--log-level", log_level, "least level logged: debug, info, warn or error (default [log] level, info)");
  CLI11_PARSE(app, argc, argv);

  if (!check_file.empty()) {
    auto result = load_checked(check_file);
    report_config(check_file, result);
    if (!result.errors.empty()) return kExitConfig;
    const std::size_t warned = result.warnings.size();
    fmt::print("{}: ok ({} sources, {} views{})\n", check_file, result.config.sources.size(),
               result.config.views.size(),
               warned == 0 ? "" : fmt::format(", {} warning{}", warned, warned == 1 ? "" : "s"));
    if (data_dir.empty()) return 0;
    // What a start with this file would do to the data directory's kept data.
    result.config.data_dir = data_dir;
    std::string report;
    const int code = spate::engine::check_kept_data(result.config, shards, report);
    fmt::print("{}", report);
    return code;
  }

  Config config = spate::engine::default_config();
  std::vector<spate::engine::ConfigError> warnings;
  if (!config_file.empty()) {
    auto result = load_checked(config_file);
    if (!result.ok()) {
      report_config(config_file, result);
      return kExitConfig;
    }
    config = std::move(result.config);
    warnings = std::move(result.warnings);
  }
  // Before anything is logged: the flags over the file's [log].
  if (!log_format.empty() && !spate::io::parse_log_format(log_format, config.log.format)) {
    fmt::print(stderr, "spated: --log-format '{}' is not logfmt or json\n", log_format);
    return 2;
  }
  if (!log_level.empty() && !spate::io::parse_log_level(log_level, config.log.level)) {
    fmt::print(stderr, "spated: --log-level '{}' is not debug, info, warn or error\n", log_level);
    return 2;
  }
  spate::io::set_log_format(config.log.format);
  spate::io::set_log_level(config.log.level);
  for (const auto& w : warnings) {
    spate::io::log_warn("config warning", {{"path", config_file}, {"line", w.line}, {"warning", w.message}});
  }
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (shards != 0) config.shards = shards;
  if (!query_addr.empty() && !spate::engine::parse_endpoint(query_addr, config.query.listen)) {
    fmt::print(stderr, "spated: --query-addr '{}' is not HOST:PORT\n", query_addr);
    return 2;
  }
  if (metrics_addr == "off") {
    config.metrics.enabled = false;
  } else if (!metrics_addr.empty() && !spate::engine::parse_endpoint(metrics_addr, config.metrics.listen)) {
    fmt::print(stderr, "spated: --metrics-addr '{}' is not HOST:PORT or 'off'\n", metrics_addr);
    return 2;
  }
  if ((!tcp_addr.empty() && !override_endpoint(config, "tcp", tcp_addr)) ||
      (!udp_addr.empty() && !override_endpoint(config, "udp", udp_addr))) {
    fmt::print(stderr, "spated: ingest address is not HOST:PORT or 'off'\n");
    return 2;
  }
  for (const auto& f : ingest) {  // a capture by its name, else NDJSON
    spate::engine::SourceConfig& source = config.sources.emplace_back();
    source.type = f.ends_with(".pcap") || f.ends_with(".pcapng") || f.ends_with(".cap") ? "pcap" : "file";
    source.set("path", f);
  }

  // Every connection is a descriptor: take as many as the hard limit allows.
  if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    spate::io::log_error("cannot create data directory", {{"path", config.data_dir}, {"error", ec.message()}});
    return 1;
  }

  // Signals are taken by this thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<spate::engine::Engine> engine_ptr;
  std::unique_ptr<spate::query::QueryServer> server_ptr;
  std::unique_ptr<spate::query::MetricsServer> metrics_ptr;
  try {
    engine_ptr = std::make_unique<spate::engine::Engine>(config);
    server_ptr = std::make_unique<spate::query::QueryServer>(*engine_ptr, config.query);
    engine_ptr->start();
    // Before the replay ends: /readyz says 503 until it has.
    if (config.metrics.enabled) {
      metrics_ptr = std::make_unique<spate::query::MetricsServer>(*engine_ptr, server_ptr->counters(),
                                                                  server_ptr->metrics_counters(), config.metrics);
    }
    server_ptr->start();  // once the segments are replayed
    if (engine_ptr->refused()) throw spate::engine::DataConflict(engine_ptr->refusal());
  } catch (const spate::engine::DataConflict& e) {
    spate::io::log_error("cannot start: the configuration does not fit the kept data", {{"error", e.what()}});
    return 78;  // EX_CONFIG, as --check-config
  } catch (const std::exception& e) {
    spate::io::log_error("cannot start", {{"error", e.what()}});
    return 1;
  }
  spate::engine::Engine& engine = *engine_ptr;
  spate::query::QueryServer& server = *server_ptr;
  std::string sources;
  for (const spate::engine::StartedSource& s : engine.sources()) sources += fmt::format(" {}={}", s.kind->name, s.where);
  const std::string query = fmt::format("{}:{}", config.query.listen.host, server.port());
  const std::string metrics = metrics_ptr ? fmt::format("{}:{}", config.metrics.listen.host, metrics_ptr->port()) : "off";
  // Logged before the ready line, so that whoever waits for that line finds it.
  spate::io::log_info("started", {{"version", SPATE_VERSION}, {"shards", engine.shard_count()}, {"query", query},
                                  {"sources", std::string_view(sources).substr(sources.empty() ? 0 : 1)},
                                  {"metrics", metrics}, {"data_dir", config.data_dir}});
  if (metrics_ptr) sources += " metrics=" + metrics;
  fmt::print("spated ready: shards={} query={}{}\n", engine.shard_count(), query, sources);
  std::fflush(stdout);
  // Under systemd (Type=notify): ready now, and the watchdog pinged while
  // every shard's loop keeps ticking (scripts/spated.service).
  spate::sd_notify("READY=1\nSTATUS=ingesting");
  auto watchdog = std::make_unique<spate::Watchdog>([&engine] {
    const std::int64_t now = spate::io::monotonic_ms();
    for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
      if (now - engine.shard(s).counters().tick_ms.load(std::memory_order_relaxed) > 5000) return false;
    }
    return true;
  });

  if (exit_after_ingest) {
    while (!(engine.files_done() && engine.quiescent())) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } else {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) reload_alarms(config_file, config, server);
    spate::io::log_info("signal received: draining", {{"signal", sig}});
  }
  spate::sd_notify("STOPPING=1");
  watchdog.reset();
  metrics_ptr.reset();
  server.stop();
  engine.stop();
  std::uint64_t events = 0, errors = 0;
  for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
    events += engine.shard(s).counters().events();
    errors += engine.shard(s).rejected();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  spate::io::log_info("stopped", {{"seconds", seconds_ms(secs)},
                                  {"events_applied", events},
                                  {"rejected", errors},
                                  {"cpu_user_s", seconds_ms(usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6)},
                                  {"cpu_system_s", seconds_ms(usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6)},
                                  {"page_faults", usage.ru_minflt + usage.ru_majflt}});
  return 0;
}
