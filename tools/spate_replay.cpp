// spate-replay: sends a capture's payloads (pcap, pcapng) or an NDJSON file
// to spated over UDP, TCP or PUBLISH, with tcpreplay's controls (--pps,
// --mbps, --multiplier, --topspeed, --loop, --limit) and what load tests
// need beyond them: --eps (events a second, whatever a message holds),
// --shift-time now (the events look live, each loop going
// on where the last ended) and --fresh-ids (each loop's ids new, so dedup
// keeps the repeats). A progress line every second on stderr; a summary at
// the end (JSON on stdout). docs/captures.md.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "replay/corpus.hpp"
#include "replay/rewrite.hpp"
#include "replay/senders.hpp"

using namespace spate::replay;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Waits until `due`: sleeps through long waits (what is batched goes first),
// spins through the last stretch, where a sleep would overshoot.
void wait_until(Clock::time_point due, Sender& sender) {
  auto now = Clock::now();
  if (due <= now) return;
  if (due - now > std::chrono::microseconds(50)) sender.flush();
  if (due - now > std::chrono::microseconds(300)) std::this_thread::sleep_until(due - std::chrono::microseconds(200));
  while (Clock::now() < due) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spate-replay: sends a capture's payloads, or NDJSON, to spated at a controlled rate"};
  std::string input, to, shift_time, ts_field = "ts", id_field = "id";
  double pps = 0, eps = 0, mbps = 0, multiplier = 0;
  bool topspeed = false, fresh_ids = false, quiet = false;
  std::uint64_t loops = 1, limit = 0, producer = 1;
  std::size_t message_bytes = 1400;
  std::uint16_t port = 0;
  app.add_option("input", input, "a pcap or pcapng capture, or NDJSON ('-': stdin)")->required();
  app.add_option("--to", to, "udp://HOST:PORT, tcp://HOST:PORT or publish://HOST:PORT")->required();
  auto* o_pps = app.add_option("--pps", pps, "messages (datagrams, TCP writes, PUBLISH batches) per second")
                    ->check(CLI::PositiveNumber);
  auto* o_eps = app.add_option("--eps", eps, "events (lines) per second")->check(CLI::PositiveNumber);
  auto* o_mbps = app.add_option("--mbps", mbps, "payload megabits per second")->check(CLI::PositiveNumber);
  auto* o_mult = app.add_option("--multiplier", multiplier, "a capture's recorded timing, this many times faster")
                     ->check(CLI::PositiveNumber);
  auto* o_top = app.add_flag("--topspeed", topspeed, "as fast as it goes (NDJSON's default)");
  o_pps->excludes(o_eps, o_mbps, o_mult, o_top);
  o_eps->excludes(o_mbps, o_mult, o_top);
  o_mbps->excludes(o_mult, o_top);
  o_mult->excludes(o_top);
  app.add_option("--loop", loops, "send the input this many times (0: until stopped)")->capture_default_str();
  app.add_option("--limit", limit, "stop after this many messages (0: no limit)");
  app.add_option("--shift-time", shift_time, "'now': move event times so that the input looks live")
      ->check(CLI::IsMember({"now"}));
  app.add_flag("--fresh-ids", fresh_ids, "rewrite ids on every loop after the first (strings get ~N, integers N*10^12)");
  app.add_option("--ts-field", ts_field, "the event time field (as spated's [schema] timestamp)")->capture_default_str();
  app.add_option("--id-field", id_field, "the event id field (as spated's [schema] id)")->capture_default_str();
  app.add_option("--message-bytes", message_bytes, "NDJSON and TCP streams: whole lines per message up to this")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{60000}));
  app.add_option("--port", port, "a capture: only payloads to this port (0: any)");
  app.add_option("--producer-id", producer, "publish://: the PUBLISH producer id")->capture_default_str();
  app.add_flag("--quiet", quiet, "no progress line");
  CLI11_PARSE(app, argc, argv);

  try {
    const bool capture = input != "-" && looks_like_capture(input);
    const Corpus corpus = capture ? load_capture(input, port, message_bytes) : load_ndjson(input, message_bytes);
    if (corpus.messages.empty()) throw std::runtime_error("'" + input + "' holds no lines to send");
    if (multiplier > 0 && !corpus.timed) throw std::runtime_error("--multiplier needs a capture's timestamps");
    if (pps == 0 && eps == 0 && mbps == 0 && multiplier == 0 && !topspeed) {
      if (corpus.timed) multiplier = 1;  // tcpreplay's default: the recorded timing
      else topspeed = true;
    }
    Rewriter rewriter(ts_field, id_field);
    std::int64_t lo = INT64_MAX, hi = INT64_MIN;
    const bool shift = shift_time == "now";
    if (shift || fresh_ids) rewriter.span(corpus.bytes, lo, hi);
    if (shift && lo > hi) throw std::runtime_error("--shift-time: no line has a '" + ts_field + "' time");
    const std::int64_t wall_now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::int64_t period_ms = shift ? hi - lo + 1 : 0;  // a loop's span of event time
    auto sender = make_sender(to, producer);

    const std::int64_t first_us = corpus.messages.front().ts_us;
    const std::int64_t capture_us = corpus.messages.back().ts_us - first_us;
    std::uint64_t sent = 0, events = 0, bytes = 0;
    std::string buffer;
    const auto start = Clock::now();
    auto next_progress = start + std::chrono::seconds(1);
    const double cpu0 = cpu_seconds();
    auto progress = [&](bool final) {
      const double s = seconds_between(start, Clock::now());
      const auto& c = sender->counters();
      fmt::print(stderr, "{}spate-replay: {} messages, {} events, {:.1f} MB, {:.0f} events/s, {:.0f} messages/s, {:.1f} s, {} errors{}",
                 final ? "" : "\r", sent, events, static_cast<double>(bytes) / 1e6, static_cast<double>(events) / s,
                 static_cast<double>(sent) / s, s, c.errors, final ? "\n" : "   ");
    };
    bool done = false;
    for (std::uint64_t loop = 0; !done && (loops == 0 || loop < loops); ++loop) {
      rewriter.set_loop(loop, shift, shift ? wall_now - lo + static_cast<std::int64_t>(loop) * period_ms : 0, fresh_ids);
      for (const Message& m : corpus.messages) {
        if (limit != 0 && sent == limit) {
          done = true;
          break;
        }
        if (pps > 0) {
          wait_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(sent) * 1e9 / pps)), *sender);
        } else if (eps > 0) {
          wait_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(events) * 1e9 / eps)), *sender);
        } else if (mbps > 0) {
          wait_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(bytes) * 8e3 / mbps)), *sender);
        } else if (multiplier > 0) {
          const double at_us = static_cast<double>(static_cast<std::int64_t>(loop) * (capture_us + 1) + m.ts_us - first_us);
          wait_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(at_us * 1e3 / multiplier)), *sender);
        }
        std::string_view text = corpus.text(m);
        if (rewriter.active()) {
          buffer.clear();
          rewriter.rewrite(text, buffer);
          text = buffer;
        }
        sender->send(text.data(), text.size());
        ++sent;
        events += m.lines;
        bytes += text.size();
        if (!quiet && (sent & 1023) == 0 && Clock::now() >= next_progress) {
          progress(false);
          next_progress += std::chrono::seconds(1);
        }
      }
    }
    sender->finish();
    const double seconds = seconds_between(start, Clock::now());
    const double cpu = cpu_seconds() - cpu0;
    if (!quiet) progress(true);
    const auto& c = sender->counters();
    fmt::print("{{\"messages\":{},\"events\":{},\"bytes\":{},\"seconds\":{:.6f},\"messages_per_s\":{:.0f},"
               "\"events_per_s\":{:.0f},\"mbps\":{:.2f},\"errors\":{},\"cpu_seconds\":{:.3f},\"cpu_ns_per_event\":{:.1f}"
               ",\"frames\":{},\"frames_skipped\":{}}}\n",
               sent, events, bytes, seconds, static_cast<double>(sent) / seconds, static_cast<double>(events) / seconds,
               static_cast<double>(bytes) * 8 / seconds / 1e6, c.errors, cpu,
               events != 0 ? cpu * 1e9 / static_cast<double>(events) : 0.0, corpus.frames, corpus.frames_skipped);
    if (c.errors != 0) fmt::print(stderr, "spate-replay: {} messages refused; the last: {}\n", c.errors, c.last_error);
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "spate-replay: {}\n", e.what());
    return 1;
  }
}
