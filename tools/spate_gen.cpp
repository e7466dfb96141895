// spate-gen: deterministic synthetic clickstream generator. Writes NDJSON events (with out-of-order,
// late, duplicate and hostile lines on request) to a file, TCP, UDP or query-protocol PUBLISH, and
// can write the exact per-view results an engine should compute from what it sent.
// This file holds the command line and the wiring; the models and outputs live in tools/gen/.
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "client/client.hpp"
#include "gen/event.hpp"
#include "gen/expect.hpp"
#include "gen/generator.hpp"
#include "gen/options.hpp"
#include "gen/sinks.hpp"

namespace spate::gen {
namespace {

// ---------------------------------------------------------------------------------------------
// Command line.

// The wall clock, epoch ms (--live).
std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kFooter = R"FOOTER(Event lines (one JSON object per line, fields in this order):
  {"id":"e00000000042","ts":1764000000042,"user":"u1234","type":"click","amount":12.34,
   "session":"s3f9a2c","page":"/p/1234/item","ua":"Mozilla/5.0 (X11; Linux)"}
  Event i (0-based, duplicates included) has now = start-ms + floor(i * step-ms) (with --live: the
  wall clock when its chunk of lines was generated); ts is now, or
  now - [1,2000] ms (out of order), or now - [600000,1200000] ms (late, after the first 10000
  events only). ts is epoch ms, or an RFC 3339 string ("2025-11-24T16:00:00.123Z") for
  --rfc3339-share of the events. Users u1..uU are zipf(THETA) distributed (u1 most frequent);
  the first listed type is the most frequent (weights 1, 1/2, 1/3, ...). amount is 0.01..999.99
  with two decimals. Ids count up from --first-id over the events that are not duplicates
  ("e" and at least 11 digits). A duplicate re-sends one of the last ~1000 events (at most
  ~1 s older) verbatim, same id. Hostile lines (not events) rotate through malformed_json, missing_field,
  wrong_type, bad_timestamp, oversized_line; their ids start with 'h'. Events do not depend on
  --hostile-share: the same seed gives the same events with or without hostile lines.

--expect FILE (NDJSON): a summary line
  {"kind":"summary","events":N,"late":L,"duplicates":D,"good":N-L,"hostile":H,
   "rejects":{"malformed_json":a,"missing_field":b,"wrong_type":c,"bad_timestamp":d,"oversized_line":e}}
  then one line per view, key and window, sorted by view, key (bytewise), window_start:
  {"kind":"window","view":"per_type_10s","key":"click","window_start":S,"window_end":S+10000,
   "count":c,"sum(amount)":s}
  {"kind":"window","view":"per_user_1m","key":"u12","window_start":S,"window_end":S+60000,
   "count":c,"sum(amount)":s,"min(amount)":mn,"max(amount)":mx,"avg(amount)":s/c}
  Late events are excluded, duplicates counted again. Sums add the printed amounts in generation
  order (doubles, printed with 17 significant digits): an engine summing one ordered stream per
  key gets the same bits. --connections > 1 reorders events across connections, so sums may then
  differ in the last bits and events near the lateness bound may arrive late.

On success a JSON summary goes to stderr; errors print one message and exit 1.)FOOTER";

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"spate-gen: deterministic synthetic clickstream generator (NDJSON events)", "spate-gen"};
  app.footer(kFooter);
  app.get_formatter()->column_width(30);
  app.add_option("--events", o.events, "Event lines to generate, duplicates and late ones included")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed; the same options and seed give byte-identical output")->capture_default_str();
  app.add_option("--users", o.users, "Distinct users")->capture_default_str()->check(CLI::Range(1u, 20000000u));
  app.add_option("--zipf", o.zipf, "Zipf exponent of user popularity (0 = uniform)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--types", o.types_text, "Comma-separated event types, most frequent first")->capture_default_str();
  auto* start = app.add_option("--start-ms", o.start_ms, "Event time of the first event, epoch ms")->capture_default_str();
  auto* step = app.add_option("--step-ms", o.step_ms, "Event-time advance per event, ms")
                   ->capture_default_str()
                   ->check(CLI::Range(0.0, 1e9));
  app.add_flag("--live", o.live,
               "Date events at the wall clock as they are generated (read once a chunk: 256 KiB of lines over "
               "TCP/UDP, at most 5 ms of events with --rate), not --start-ms + i * --step-ms; for event time to "
               "queryable latency. Times, and so the output, then differ from run to run")
      ->excludes(start)
      ->excludes(step);
  app.add_option("--first-id", o.first_id,
                 "Id number of the first event, the next ones counting up: a second run into the same pipeline "
                 "needs ids past the first's, or dedup drops its events as duplicates")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1'000'000'000'000'000}));
  app.add_option("--ooo-share", o.ooo_share, "Share of out-of-order events (ts = now - [1,2000] ms)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--late-share", o.late_share, "Share of late events (ts = now - [600000,1200000] ms)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--dup-share", o.dup_share, "Share of events re-sent verbatim with the same id")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--rfc3339-share", o.rfc3339_share, "Share of events with an RFC 3339 string ts")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--hostile-share", o.hostile_share, "Bad lines added per event line (probability)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-line-bytes", o.max_line_bytes, "Engine's line limit; oversized_line lines exceed it")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20));
  auto* out = app.add_option("--out", o.out,
                             "Write to FILE ('-' = stdout); the default target. FILE.pcap: a capture of the lines "
                             "as UDP datagrams (or a TCP stream, --pcap-tcp) that tshark and spated's pcap source read")
                  ->capture_default_str();
  app.add_flag("--pcap-tcp", o.pcap_tcp, "--out FILE.pcap: one TCP stream per --connections instead of datagrams");
  app.add_option("--pcap-port", o.pcap_port, "--out FILE.pcap: the destination port")->capture_default_str();
  app.add_option("--pcap-pps", o.pcap_pps, "--out FILE.pcap: packets per second of the recorded timestamps")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000000u));
  auto* tcp = app.add_option("--tcp", o.tcp, "Send over TCP to HOST:PORT");
  auto* udp = app.add_option("--udp", o.udp, "Send UDP datagrams of whole lines to HOST:PORT");
  auto* publish = app.add_option("--publish", o.publish, "PUBLISH batches over the query protocol to HOST:PORT");
  out->excludes(tcp)->excludes(udp)->excludes(publish);
  tcp->excludes(udp)->excludes(publish);
  udp->excludes(publish);
  app.add_option("--connections", o.connections,
                 "TCP connections, one thread each; chunks go round-robin (reorders events across connections)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--udp-payload", o.udp_payload, "Max datagram payload, bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{64}, kUdpMaxPayload));
  app.add_option("--batch", o.batch, "Lines per PUBLISH batch")->capture_default_str()->check(CLI::Range(1u, 10000000u));
  std::uint64_t producer_id = 0;
  auto* producer = app.add_option("--producer-id", producer_id, "PUBLISH producer id (default: the seed)");
  app.add_option("--rate", o.rate, "Events per second limit, 0 = unlimited")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e10));
  app.add_flag("--progress", o.progress, "Print progress to stderr once per second");
  app.add_option("--expect", o.expect, "Write the expected summary and view results (NDJSON) to FILE");
  app.add_flag("--expect-duplicates", o.expect_duplicates,
               "Expect duplicates to count like their originals (a pipeline with [dedup] enabled = false)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (producer->count() > 0) o.producer_id = producer_id;
  if (o.live) {
    o.start_ms = wall_ms();
    o.step_ms = 0;
  }

  try {
    o.types = split_types(o.types_text);
    if (o.dup_share + o.late_share + o.ooo_share > 1.0) {
      throw std::runtime_error("--dup-share + --late-share + --ooo-share must not exceed 1");
    }
    if (o.start_ms < kMinStartMs) throw std::runtime_error(fmt::format("--start-ms must be at least {}", kMinStartMs));
    if (static_cast<double>(o.start_ms) + static_cast<double>(o.events) * o.step_ms > static_cast<double>(kMaxTsMs)) {
      throw std::runtime_error("--start-ms + --events * --step-ms goes past year 9999");
    }
    if (o.connections > 1 && o.tcp.empty() && !o.out.ends_with(".pcap")) {
      throw std::runtime_error("--connections applies to --tcp and --out FILE.pcap only");
    }
    if (!o.tcp.empty()) o.endpoint = parse_endpoint(o.tcp, "--tcp");
    if (!o.udp.empty()) o.endpoint = parse_endpoint(o.udp, "--udp");
    if (!o.publish.empty()) o.endpoint = parse_endpoint(o.publish, "--publish");
    if (!o.udp.empty() && o.hostile_share > 0 &&
        Generator::oversized_bytes_max(o.max_line_bytes) > kUdpMaxPayload) {
      throw std::runtime_error(fmt::format(
          "--udp with --hostile-share: oversized_line lines would not fit a datagram ({} bytes max); "
          "pass --max-line-bytes {} or less",
          kUdpMaxPayload, kUdpMaxPayload - kOversizedSlackMin - kOversizedSlackSpan - 1));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "spate-gen: {}\n", e.what());
    return 2;
  }

  std::signal(SIGPIPE, SIG_IGN);
  Shared shared;
  std::vector<std::unique_ptr<Sink>> sinks;
  std::size_t chunk_bytes = std::size_t{1} << 20;
  std::uint64_t chunk_lines = std::numeric_limits<std::uint64_t>::max();
  std::string target;
  try {
    if (!o.tcp.empty()) {
      target = "tcp";
      chunk_bytes = 256 << 10;
      for (unsigned c = 0; c < o.connections; ++c) {
        const int fd = connect_to(*o.endpoint, SOCK_STREAM, "--tcp");
        sinks.push_back(make_tcp_sink(fd, "--tcp " + o.tcp));
      }
    } else if (!o.udp.empty()) {
      target = "udp";
      chunk_bytes = 256 << 10;
      const int fd = connect_to(*o.endpoint, SOCK_DGRAM, "--udp");
      const int sndbuf = 4 << 20;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      sinks.push_back(make_udp_sink(fd, o.udp_payload, "--udp " + o.udp, shared));
    } else if (!o.publish.empty()) {
      target = "publish";
      std::optional<query::Client> connected;
      try {
        connected.emplace(o.endpoint->host, o.endpoint->port);
      } catch (const query::ClientError& e) {
        throw std::runtime_error(fmt::format("--publish {}: {}", o.publish, e.what()));
      }
      query::Client& client = *connected;
      const std::size_t frame = client.max_frame_bytes();
      const std::size_t line_cap = Generator::oversized_bytes_max(o.max_line_bytes) + kMaxEventLineBytes;
      if (frame < 2 * line_cap + 4096) {
        throw std::runtime_error(fmt::format("--publish {}: the server's max frame ({} bytes) is too small for "
                                             "--max-line-bytes {}",
                                             o.publish, frame, o.max_line_bytes));
      }
      chunk_bytes = std::min(frame / 2 - line_cap, std::size_t{4} << 20);
      chunk_lines = o.batch;
      sinks.push_back(make_publish_sink(std::move(client), o.producer_id.value_or(o.seed), "--publish " + o.publish,
                                        shared));
    } else {
      target = "file";
      if (o.out == "-") {
        sinks.push_back(make_file_sink(1, false, "stdout"));
      } else if (o.out.ends_with(".pcap")) {
        sinks.push_back(make_pcap_sink(o.out, o));
      } else {
        const int fd = ::open(o.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error(fmt::format("--out {}: {}", o.out, errno_text(errno)));
        sinks.push_back(make_file_sink(fd, true, "--out " + o.out));
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "spate-gen: {}\n", e.what());
    return 1;
  }

  std::unique_ptr<Expect> expect;
  if (!o.expect.empty()) expect = std::make_unique<Expect>(o.users, o.types);
  Generator gen(o, expect.get());

  // A rate limit caps a chunk at 5 ms of events so pacing stays smooth at any rate.
  std::uint64_t chunk_events = std::numeric_limits<std::uint64_t>::max();
  if (o.rate > 0) chunk_events = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(o.rate / 200.0));

  const std::size_t chunk_capacity = chunk_bytes + gen.line_capacity();
  const std::size_t chunk_count =
      sinks.size() * (kQueueDepth + 1) + 2 + (target == "publish" ? kMaxInflightBatches : 0);
  std::vector<std::unique_ptr<Chunk>> chunks;
  for (std::size_t i = 0; i < chunk_count; ++i) {
    auto c = std::make_unique<Chunk>();
    c->data = std::make_unique_for_overwrite<char[]>(chunk_capacity);  // pages are touched only when used
    c->capacity = chunk_capacity;
    shared.free_chunks.push(c.get());
    chunks.push_back(std::move(c));
  }
  std::vector<std::unique_ptr<BlockingQueue<Chunk*>>> queues;
  std::vector<std::thread> threads;
  std::atomic<std::int64_t> sent_done_ns{0};
  for (auto& sink : sinks) {
    queues.push_back(std::make_unique<BlockingQueue<Chunk*>>(kQueueDepth));
    threads.emplace_back(run_sink, std::ref(*sink), std::ref(*queues.back()), std::ref(shared), std::ref(sent_done_ns));
  }

  const auto t0 = Clock::now();
  auto pace_base = t0;
  std::uint64_t pace_events = 0;  // events generated since pace_base
  auto last_progress = t0;
  std::uint64_t last_progress_events = 0;
  std::uint64_t bytes = 0;
  std::uint64_t lines = 0;
  std::size_t next_sink = 0;
  // One thread generates (~12 M events/s into /dev/null on a 2-core EPYC VM) while the output
  // threads write the previous chunks.
  while (!gen.done() && !shared.failed) {
    if (o.rate > 0) {  // token bucket holding at most 100 ms of events
      const auto due = pace_base + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(static_cast<double>(pace_events) / o.rate));
      const auto now = Clock::now();
      if (now < due) {
        std::this_thread::sleep_until(due);
      } else if (now - due > std::chrono::milliseconds(100)) {
        pace_base = now - std::chrono::milliseconds(100);
        pace_events = 0;
      }
    }
    Chunk* c = *shared.free_chunks.pop();
    if (o.live) gen.set_clock_ms(wall_ms());  // once the chunk is free: the time its lines are written
    c->len = 0;
    c->events = 0;
    c->lines = 0;
    char* const base = c->data.get();
    char* p = base;
    while (!gen.done() && static_cast<std::size_t>(p - base) < chunk_bytes && c->lines < chunk_lines &&
           c->events < chunk_events) {
      bool is_event = false;
      p = gen.next_line(p, is_event);
      c->events += is_event;
      ++c->lines;
    }
    c->len = static_cast<std::size_t>(p - base);
    bytes += c->len;
    lines += c->lines;
    pace_events += c->events;
    queues[next_sink]->push(c);
    next_sink = (next_sink + 1) % queues.size();

    if (o.progress) {
      const auto now = Clock::now();
      if (now - last_progress >= std::chrono::seconds(1)) {
        const double dt = std::chrono::duration<double>(now - last_progress).count();
        const std::uint64_t ev = gen.counts().events;
        fmt::print(stderr, "spate-gen: {} events ({:.1f}%), {:.0f} events/s, {:.1f} MB\n", ev,
                   o.events > 0 ? 100.0 * static_cast<double>(ev) / static_cast<double>(o.events) : 100.0,
                   static_cast<double>(ev - last_progress_events) / dt, static_cast<double>(bytes) / 1e6);
        last_progress = now;
        last_progress_events = ev;
      }
    }
  }
  for (auto& q : queues) q->close();
  for (auto& t : threads) t.join();
  if (shared.failed) {
    fmt::print(stderr, "spate-gen: {}\n", shared.error);
    return 1;
  }
  const std::int64_t done_ns = sent_done_ns.load();
  const auto t1 = done_ns != 0 ? Clock::time_point(Clock::duration(done_ns)) : Clock::now();
  const double seconds = std::max(1e-9, std::chrono::duration<double>(t1 - t0).count());

  const Counts& counts = gen.counts();
  if (expect) {
    try {
      expect->write(o.expect, counts);
    } catch (const std::exception& e) {
      fmt::print(stderr, "spate-gen: {}\n", e.what());
      return 1;
    }
  }

  fmt::memory_buffer summary;
  auto it = std::back_inserter(summary);
  fmt::format_to(it,
                 "{{\"target\":\"{}\",\"events\":{},\"lines\":{},\"hostile\":{},\"late\":{},\"duplicates\":{},"
                 "\"bytes\":{},\"seconds\":{:.3f},\"events_per_s\":{:.0f},\"mb_per_s\":{:.1f}",
                 target, counts.events, lines, counts.hostile, counts.late, counts.duplicates, bytes, seconds,
                 static_cast<double>(counts.events) / seconds, static_cast<double>(bytes) / seconds / 1e6);
  if (target == "tcp") fmt::format_to(it, ",\"connections\":{}", o.connections);
  if (target == "udp") fmt::format_to(it, ",\"datagrams\":{}", shared.datagrams.load());
  if (target == "publish") {
    fmt::format_to(it, ",\"batches\":{},\"accepted\":{},\"rejected\":{},\"duplicate_batches\":{},\"overloaded_retries\":{}",
                   shared.batches.load(), shared.accepted.load(), shared.rejected.load(),
                   shared.duplicate_batches.load(), shared.overloaded_retries.load());
  }
  fmt::format_to(it, "}}\n");
  std::fwrite(summary.data(), 1, summary.size(), stderr);
  return 0;
}

}  // namespace
}  // namespace spate::gen

int main(int argc, char** argv) {
  try {
    return spate::gen::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spate-gen: %s\n", e.what());
    return 1;
  }
}
