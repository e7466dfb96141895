// spated: the daemon. Runs the built-in pipeline with no arguments, or the
// pipeline of a TOML file; SIGTERM/SIGINT drain what was received and exit 0.
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
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
#include "systemd_notify.hpp"
#include "query/metrics_server.hpp"
#include "query/query_server.hpp"

namespace {

using spate::engine::Config;
using spate::engine::Endpoint;
using spate::engine::SourceKind;

constexpr int kExitConfig = 78;  // EX_CONFIG

void log(const std::string& msg) { fmt::print(stderr, "spated: {}\n", msg); }

int report_errors(const std::string& file, const std::vector<spate::engine::ConfigError>& errors) {
  for (const auto& e : errors) {
    if (e.line > 0) fmt::print(stderr, "{}:{}: error: {}\n", file, e.line, e.message);
    else fmt::print(stderr, "{}: error: {}\n", file, e.message);
  }
  return kExitConfig;
}

bool override_endpoint(Config& config, SourceKind kind, const std::string& text) {
  Endpoint ep;
  if (text == "off") {
    std::erase_if(config.sources, [&](const auto& s) { return s.kind == kind; });
    return true;
  }
  if (!spate::engine::parse_endpoint(text, ep)) return false;
  bool found = false;
  for (auto& s : config.sources) {
    if (s.kind == kind) {
      s.listen = ep;
      found = true;
    }
  }
  if (!found) config.sources.push_back({kind, ep, {}});
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spated: real-time JSON event ingestion and windowed views"};
  app.set_version_flag("--version", "spated " SPATE_VERSION);
  std::string config_file, check_file, data_dir, query_addr, tcp_addr, udp_addr, metrics_addr;
  std::vector<std::string> ingest;
  unsigned shards = 0;
  bool exit_after_ingest = false;
  app.add_option("--config", config_file, "pipeline description (TOML)")->check(CLI::ExistingFile);
  app.add_option("--check-config", check_file, "validate a config file, explain every error, and exit (78 if invalid)");
  app.add_option("--data-dir", data_dir, "data directory (default ./spate-data)");
  app.add_option("--ingest", ingest, "read NDJSON from FILE ('-' for stdin) as an extra source");
  app.add_option("--shards", shards, "number of shards (default: one per CPU)")->check(CLI::Range(1, 1024));
  app.add_option("--query-addr", query_addr, "query protocol address HOST:PORT (default 127.0.0.1:7070)");
  app.add_option("--tcp-addr", tcp_addr, "TCP NDJSON ingest HOST:PORT, or 'off' (default 127.0.0.1:7072)");
  app.add_option("--udp-addr", udp_addr, "UDP NDJSON ingest HOST:PORT, or 'off' (default 127.0.0.1:7071)");
  app.add_option("--metrics-addr", metrics_addr, "Prometheus endpoint HOST:PORT, or 'off' (default 127.0.0.1:9464)");
  app.add_flag("--exit-after-ingest", exit_after_ingest, "exit once every --ingest file is applied (batch mode)");
  CLI11_PARSE(app, argc, argv);

  if (!check_file.empty()) {
    auto result = spate::engine::load_config_file(check_file);
    for (auto& e : spate::engine::check_file_sources(result.config)) result.errors.push_back(std::move(e));
    spate::engine::sort_by_line(result.errors);
    if (!result.errors.empty()) return report_errors(check_file, result.errors);
    fmt::print("{}: ok ({} sources, {} views)\n", check_file, result.config.sources.size(), result.config.views.size());
    return 0;
  }

  Config config = spate::engine::default_config();
  if (!config_file.empty()) {
    auto result = spate::engine::load_config_file(config_file);
    if (!result.ok()) return report_errors(config_file, result.errors);
    config = std::move(result.config);
  }
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (shards != 0) config.shards = shards;
  if (!query_addr.empty() && !spate::engine::parse_endpoint(query_addr, config.query.listen)) {
    fmt::print(stderr, "spated: --query-addr '{}' is not HOST:PORT\n", query_addr);
    return 2;
  }
  if (metrics_addr == "off") {
    config.metrics_enabled = false;
  } else if (!metrics_addr.empty() && !spate::engine::parse_endpoint(metrics_addr, config.metrics_listen)) {
    fmt::print(stderr, "spated: --metrics-addr '{}' is not HOST:PORT or 'off'\n", metrics_addr);
    return 2;
  }
  if ((!tcp_addr.empty() && !override_endpoint(config, SourceKind::tcp, tcp_addr)) ||
      (!udp_addr.empty() && !override_endpoint(config, SourceKind::udp, udp_addr))) {
    fmt::print(stderr, "spated: ingest address is not HOST:PORT or 'off'\n");
    return 2;
  }
  for (const auto& f : ingest) {  // a capture by its name, else NDJSON
    spate::engine::SourceConfig source;
    source.kind = f.ends_with(".pcap") || f.ends_with(".pcapng") || f.ends_with(".cap") ? SourceKind::pcap : SourceKind::file;
    source.path = f;
    config.sources.push_back(std::move(source));
  }

  // Every connection is a descriptor: take as many as the hard limit allows.
  if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    fmt::print(stderr, "spated: cannot create data directory '{}': {}\n", config.data_dir, ec.message());
    return 1;
  }

  // Signals are taken by this thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
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
    for (const std::string& line : engine_ptr->recovery_report()) log("recovery: " + line);
    // Before the replay ends: /readyz says 503 until it has.
    if (config.metrics_enabled) {
      metrics_ptr = std::make_unique<spate::query::MetricsServer>(*engine_ptr, server_ptr->counters(), config.metrics_listen);
    }
    server_ptr->start();  // once the segments are replayed
  } catch (const std::exception& e) {
    fmt::print(stderr, "spated: cannot start: {}\n", e.what());
    return 1;
  }
  spate::engine::Engine& engine = *engine_ptr;
  spate::query::QueryServer& server = *server_ptr;
  std::string sources;
  for (std::size_t i = 0; i < config.sources.size(); ++i) {
    const auto& s = config.sources[i];
    if (s.kind == SourceKind::file || s.kind == SourceKind::pcap) {
      sources += fmt::format(" {}={}", spate::engine::source_kind_name(s.kind), s.path);
    } else if (s.kind == SourceKind::dpdk) {
      sources += fmt::format(" dpdk=port{}", s.dpdk_port);
    } else {
      sources += fmt::format(" {}={}:{}", spate::engine::source_kind_name(s.kind), s.listen.host, engine.bound_port(i));
    }
  }
  if (metrics_ptr) sources += fmt::format(" metrics={}:{}", config.metrics_listen.host, metrics_ptr->port());
  fmt::print("spated ready: shards={} query={}:{}{}\n", engine.shard_count(), config.query.listen.host, server.port(), sources);
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
    sigwait(&signals, &sig);
    log(fmt::format("signal {}: draining", sig));
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
  log(fmt::format("stopped after {:.3f} s: {} events applied, {} rejected; cpu {:.3f} s user, {:.3f} s system, "
                  "{} page faults",
                  secs, events, errors, usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6,
                  usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6, usage.ru_minflt + usage.ru_majflt));
  return 0;
}
