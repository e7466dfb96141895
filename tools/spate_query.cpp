// spate-query: command-line client of the query protocol (docs/protocol.md):
// ping, stats, view lookups and top-k, as aligned tables or JSON; watch, a
// terminal view of rates, backlog and alarms.
// Exit codes: 0 ok, 1 the server answered an error status, 2 usage, 3 connection.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <thread>

#include "client/client.hpp"
#include "duration_text.hpp"
#include "kernels/json_escape.hpp"
#include "kernels/number_text.hpp"
#include "kernels/rfc3339.hpp"

namespace {

using spate::query::Aggregate;
using spate::query::Client;
using spate::query::ClientError;
using spate::query::ShardStats;
using spate::query::StatKind;
using spate::query::StatsHistogram;
using spate::query::Status;
using spate::query::WindowRow;

constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConnection = 3;

struct UsageError {
  std::string message;
};

struct Address {
  std::string host;
  std::uint16_t port = 7070;
};

// HOST:PORT, [V6ADDR]:PORT, or HOST alone (port 7070).
Address parse_address(const std::string& text) {
  Address a;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) throw UsageError{"--addr: missing ']' in " + text};
    a.host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') throw UsageError{"--addr: expected ':' after ']' in " + text};
      port = text.substr(close + 2);
    }
  } else {
    const auto colon = text.rfind(':');
    a.host = text.substr(0, colon);
    if (colon != std::string::npos) port = text.substr(colon + 1);
  }
  if (a.host.empty()) throw UsageError{"--addr: empty host in '" + text + "'"};
  if (!port.empty() || text.back() == ':') {
    unsigned long v = 0;
    std::size_t used = 0;
    try {
      v = std::stoul(port, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != port.size() || port.empty() || v == 0 || v > 65535) {
      throw UsageError{"--addr: bad port '" + port + "' (1-65535)"};
    }
    a.port = static_cast<std::uint16_t>(v);
  }
  return a;
}

// A time option: milliseconds since the epoch ("1764000000000", "-5") or an
// RFC 3339 timestamp ("2025-11-24T16:00:00Z", "2025-11-24T17:00:00.250+01:00").
std::int64_t parse_time_ms(const std::string& option, const std::string& text) {
  std::int64_t ms = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, ms);
  if (!text.empty() && r.ec == std::errc{} && r.ptr == end) return ms;
  if (r.ec == std::errc::result_out_of_range && r.ptr == end) {
    throw UsageError{option + ": " + text + " is out of range for milliseconds since the epoch"};
  }
  if (const auto parsed = spate::kernels::parse_rfc3339_ms(text)) return *parsed;
  throw UsageError{option + ": '" + text +
                   "' is neither milliseconds since the epoch nor an RFC 3339 time (2025-11-24T16:00:00Z)"};
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  spate::kernels::append_json_escaped(out, s);
  return out + '"';
}

// Aggregate values: integers exactly (count, sums of integer fields); doubles
// in JSON in their shortest exact form, in tables to 15 significant digits
// (0.1, not the 0.09999999999999999 a sum may hold). Infinities and NaN are
// null in JSON.
std::string number_text(const Aggregate& a, bool json) {
  if (a.integer) return fmt::format("{}", a.exact);
  const double v = a.value;
  if (!std::isfinite(v) && json) return "null";
  char buf[spate::kernels::kNumberTextBytes];
  std::string text(buf, json ? spate::kernels::format_double_exact(v, buf) : spate::kernels::format_double_readable(v, buf));
  // Keep floating-point aggregates recognisable as such: 10.0, not 10.
  if (std::isfinite(v) && text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

// A table printed with every column as wide as its widest cell; numbers right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::size_t left_aligned_columns) const {
    std::vector<std::size_t> width;
    for (const auto& row : rows_) {
      if (width.size() < row.size()) width.resize(row.size(), 0);
      for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], columns(row[i]));
    }
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) {
        if (i > 0) line += "  ";
        if (i < left_aligned_columns) {
          line += fmt::format("{:<{}}", row[i], i + 1 == row.size() ? 0 : width[i]);
        } else {
          line += fmt::format("{:>{}}", row[i], width[i]);
        }
      }
      fmt::print("{}\n", line);
    }
  }

 private:
  // Columns a cell takes: its UTF-8 code points ("µs" is 2 bytes, 2 columns), as fmt pads it.
  static std::size_t columns(std::string_view text) {
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
  }

  std::vector<std::vector<std::string>> rows_;
};

void print_ping(Client& client, const Address& addr, bool json) {
  const auto start = std::chrono::steady_clock::now();
  client.ping();
  const double rtt_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (json) {
    fmt::print("{{\"server\":{},\"rtt_ms\":{:.3f}}}\n", json_string(client.server_name()), rtt_ms);
  } else {
    fmt::print("pong from {} ({}:{}): time={:.3f} ms\n", client.server_name(), addr.host, addr.port, rtt_ms);
  }
}

// The total of a counter over shards: a sum, except for the watermark, where
// the appliance's watermark is the lowest of its shards'.
std::uint64_t combine(std::string_view name, std::uint64_t total, std::uint64_t value) {
  if (name == "watermark_ms") return std::min(total, value);
  return total + value;
}

// A histogram bound in JSON: microseconds, null past the last (values from 2^40 us, 12.7 days).
std::string bound_json(std::uint64_t us) { return us == UINT64_MAX ? "null" : fmt::format("{}", us); }

// A histogram's q-quantile in a table: a duration in its unit ("1.31 ms"),
// "-" when it holds no value (there is no quantile, and 0 would read as a
// measured 0 µs), "inf" in the last bucket.
std::string quantile_text(const StatsHistogram& h, double q) {
  return h.count() == 0 ? "-" : spate::tools::duration_text(h.quantile(q));
}
std::string quantile_json(const StatsHistogram& h, double q) {
  return h.count() == 0 ? "null" : bound_json(h.quantile(q));
}

// Each histogram merged over shards, in the server's order.
std::vector<StatsHistogram> merge_histograms(const std::vector<ShardStats>& shards) {
  std::vector<StatsHistogram> merged;
  for (const auto& s : shards) {
    for (const auto& h : s.histograms) {
      auto it = std::find_if(merged.begin(), merged.end(), [&](const StatsHistogram& m) { return m.name == h.name; });
      if (it == merged.end()) {
        merged.push_back(h);
      } else {
        it->merge(h);
      }
    }
  }
  return merged;
}

// What `now` recorded since `before` (the same histogram, looked at earlier).
StatsHistogram recorded_since(const StatsHistogram& now, const std::vector<StatsHistogram>& before) {
  StatsHistogram d = now;
  for (const auto& h : before) {
    if (h.name != now.name) continue;
    d.sum -= h.sum;
    for (auto& [bound, count] : d.buckets) {
      for (const auto& [b, c] : h.buckets) {
        if (b == bound) count -= std::min(count, c);
      }
    }
  }
  return d;
}

// The sections ("dpdk.") of source kinds the daemon did not start
// ("dpdk.sources" is 0) whose figures are all 0 on every shard: noise in a table.
std::vector<std::string> idle_unstarted_sections(const std::vector<ShardStats>& shards,
                                                 const std::vector<std::string>& names) {
  std::vector<std::string> idle;
  for (const auto& name : names) {
    if (!name.ends_with(".sources")) continue;
    const std::string section = name.substr(0, name.size() - std::string_view("sources").size());
    bool zero = true;
    for (const auto& s : shards) {
      for (const auto& [n, v] : s.counters) zero = zero && (v == 0 || !n.starts_with(section));
    }
    if (zero) idle.push_back(section);
  }
  return idle;
}

void print_stats(Client& client, bool json, bool all) {
  const std::vector<ShardStats> shards = client.stats();
  // Counter names in the server's order of first appearance; the set is open.
  std::vector<std::string> names;
  std::map<std::string, std::uint64_t, std::less<>> total;
  for (const auto& s : shards) {
    for (const auto& [name, value] : s.counters) {
      auto it = total.find(name);
      if (it == total.end()) {
        names.push_back(name);
        total.emplace(name, value);
      } else {
        it->second = combine(name, it->second, value);
      }
    }
  }
  const std::vector<StatsHistogram> merged = merge_histograms(shards);
  const auto histogram_json = [](const StatsHistogram& h) {
    std::string out = fmt::format("{{\"count\":{},\"sum\":{},\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"buckets\":[",
                                  h.count(), h.sum, quantile_json(h, 0.5), quantile_json(h, 0.99),
                                  quantile_json(h, 0.999), quantile_json(h, 1));
    for (std::size_t b = 0; b < h.buckets.size(); ++b) {
      out += fmt::format("{}[{},{}]", b > 0 ? "," : "", bound_json(h.buckets[b].first), h.buckets[b].second);
    }
    return out + "]}";
  };
  if (json) {
    std::string out = "{\"shards\":[";
    for (std::size_t i = 0; i < shards.size(); ++i) {
      if (i > 0) out += ',';
      out += fmt::format("{{\"shard\":{},\"counters\":{{", shards[i].shard);
      std::string gauges;
      for (std::size_t j = 0; j < shards[i].counters.size(); ++j) {
        if (j > 0) out += ',';
        out += fmt::format("{}:{}", json_string(shards[i].counters[j].first), shards[i].counters[j].second);
        if (j < shards[i].kinds.size() && shards[i].kinds[j] == StatKind::gauge) {
          gauges += (gauges.empty() ? "" : ",") + json_string(shards[i].counters[j].first);
        }
      }
      out += "},\"gauges\":[" + gauges + "],\"histograms\":{";
      for (std::size_t j = 0; j < shards[i].histograms.size(); ++j) {
        out += fmt::format("{}{}:{}", j > 0 ? "," : "", json_string(shards[i].histograms[j].name),
                           histogram_json(shards[i].histograms[j]));
      }
      out += "}}";
    }
    out += "],\"total\":{";
    for (std::size_t j = 0; j < names.size(); ++j) {
      if (j > 0) out += ',';
      out += fmt::format("{}:{}", json_string(names[j]), total.find(names[j])->second);
    }
    out += "},\"histograms\":{";
    for (std::size_t j = 0; j < merged.size(); ++j) {
      out += fmt::format("{}{}:{}", j > 0 ? "," : "", json_string(merged[j].name), histogram_json(merged[j]));
    }
    out += "}}";
    fmt::print("{}\n", out);
    return;
  }
  std::vector<std::string> header{"counter"};
  for (const auto& s : shards) header.push_back(fmt::format("shard {}", s.shard));
  header.push_back("total");
  Table table(std::move(header));
  const std::vector<std::string> hidden = all ? std::vector<std::string>{} : idle_unstarted_sections(shards, names);
  for (const auto& name : names) {
    if (std::any_of(hidden.begin(), hidden.end(), [&](const std::string& h) { return name.starts_with(h); })) continue;
    std::vector<std::string> row{name};
    for (const auto& s : shards) {
      bool present = false;
      for (const auto& [n, v] : s.counters) present = present || n == name;
      row.push_back(present ? fmt::format("{}", s.get(name)) : "-");
    }
    row.push_back(fmt::format("{}", total.find(name)->second));
    table.add(std::move(row));
  }
  table.print(1);
  if (!hidden.empty()) {
    std::string list;
    for (const auto& h : hidden) list += fmt::format("{}{}*", list.empty() ? "" : ", ", h);
    fmt::print("(not shown: {}: source kinds not started, every figure 0; --all shows them)\n", list);
  }
  if (merged.empty()) return;
  fmt::print("\n");
  Table latency({"histogram (all shards)", "count", "p50", "p99", "p99.9", "max"});
  for (const auto& h : merged) {
    latency.add({h.name, fmt::format("{}", h.count()), quantile_text(h, 0.5), quantile_text(h, 0.99),
                 quantile_text(h, 0.999), quantile_text(h, 1)});
  }
  latency.print(1);
}

void print_rows(const std::vector<WindowRow>& rows, bool json) {
  if (json) {
    std::string out = "[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      if (i > 0) out += ',';
      out += fmt::format("{{\"key\":{},\"window_start\":{},\"window_end\":{},\"closed\":{}", json_string(r.key),
                         r.window_start, r.window_end, r.closed ? "true" : "false");
      for (const auto& a : r.aggregates) {
        out += fmt::format(",{}:{}", json_string(a.name), number_text(a, true));
      }
      out += '}';
    }
    out += ']';
    fmt::print("{}\n", out);
    return;
  }
  if (rows.empty()) {
    fmt::print("(no rows)\n");
    return;
  }
  // Aggregate columns in the order the server sends them (the view's order).
  std::vector<std::string> aggs;
  for (const auto& r : rows) {
    for (const auto& a : r.aggregates) {
      if (std::find(aggs.begin(), aggs.end(), a.name) == aggs.end()) aggs.push_back(a.name);
    }
  }
  std::vector<std::string> header{"key", "window_start", "window_end", "closed"};
  header.insert(header.end(), aggs.begin(), aggs.end());
  Table table(std::move(header));
  for (const auto& r : rows) {
    std::vector<std::string> row{r.key, fmt::format("{}", r.window_start), fmt::format("{}", r.window_end),
                                 r.closed ? "yes" : "no"};
    for (const auto& name : aggs) {
      std::string cell = "-";
      for (const auto& a : r.aggregates) {
        if (a.name == name) cell = number_text(a, false);
      }
      row.push_back(std::move(cell));
    }
    table.add(std::move(row));
  }
  table.print(1);
}

}  // namespace

// The sum over shards of a counter.
std::uint64_t total(const std::vector<ShardStats>& stats, std::string_view name) {
  std::uint64_t n = 0;
  for (const auto& s : stats) n += s.get(name);
  return n;
}

// `watch`: every interval, the rates since the last look, the backlog, and
// the alarms an operator acts on (what grew since the last look).
void watch(Client& client, int interval_ms, std::uint64_t count) {
  static constexpr std::string_view kAlarms[][2] = {
      {"storage.disk_full_events", "disk above the high-water mark: ingest paused"},
      {"udp.drops", "UDP datagrams dropped by the kernel"},
      {"ring_full_waits", "backpressure: a shard waited for room in a ring"},
      {"storage.write_errors", "the hot log failed to write"},
      {"storage.blocks_lost", "log blocks lost"},
      {"storage.dead_letters_dropped", "rejected lines past the dead-letter budget"},
      {"checkpoint.failures", "a checkpoint was not written"},
      {"dpdk.port_missed", "the NIC dropped frames: no room in an RX ring"},
      {"dedup.beyond_horizon", "events older than the dedup horizon let through unchecked"},
      {"dedup.evicted", "dedup ids forgotten before the horizon: the table is full at max_bytes"},
      {"key_limit", "rows dropped: a view's key limit"},
  };
  const bool tty = ::isatty(1) != 0;
  std::vector<ShardStats> last = client.stats();
  auto last_at = std::chrono::steady_clock::now();
  for (std::uint64_t round = 0; count == 0 || round < count; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    const std::vector<ShardStats> now = client.stats();
    const auto at = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(at - last_at).count();
    const auto rate = [&](std::string_view name) {
      return static_cast<double>(total(now, name) - std::min(total(now, name), total(last, name))) / secs;
    };
    std::string out = tty ? "\x1b[H\x1b[2J" : "";
    out += fmt::format("spate-query watch  {}  every {} ms\n", client.server_name(), interval_ms);
    out += fmt::format("in {:>12.0f} events/s {:>10.1f} MB/s   rejected {:>8.0f}/s   late {:>8.0f}/s   duplicates {:>8.0f}/s\n",
                       rate("events_in"), rate("bytes_in") / 1e6, rate("errors"), rate("late_events"),
                       rate("dedup.duplicates"));
    out += fmt::format("backlog  socket bytes waiting {}   connections waiting {}   requests waiting {}   ring depth {}"
                       "   inputs active {} of {}   log bytes in flight {}   disk {}%\n",
                       total(now, "tcp.waiting_bytes") + total(now, "udp.waiting_bytes"), total(now, "tcp.accept_queue"),
                       total(now, "requests_waiting"), total(now, "ring_depth"), total(now, "inputs_active"),
                       total(now, "inputs_open"), total(now, "storage.bytes_in_flight"),
                       now.empty() ? 0 : now.front().get("storage.disk_used_percent"));
    out += fmt::format("{:>5} {:>14} {:>12} {:>10} {:>12} {:>14} {:>12}\n", "shard", "events/s", "rows/s", "ring",
                       "keys", "state MB", "checkpoint");
    for (std::size_t i = 0; i < now.size(); ++i) {
      const auto delta = [&](std::string_view name) {
        const std::uint64_t before = i < last.size() ? last[i].get(name) : 0;
        return static_cast<double>(now[i].get(name) - std::min(now[i].get(name), before)) / secs;
      };
      out += fmt::format("{:>5} {:>14.0f} {:>12.0f} {:>10} {:>12} {:>14.1f} {:>12}\n", now[i].shard, delta("events_in"),
                         delta("rows_applied"), now[i].get("ring_depth"), now[i].get("keys"),
                         static_cast<double>(now[i].get("state_bytes")) / 1e6, now[i].get("checkpoint.epoch"));
    }
    // Latency of what was applied (made durable) since the last look, over every shard.
    const std::vector<StatsHistogram> before = merge_histograms(last);
    for (const auto& h : merge_histograms(now)) {
      const StatsHistogram d = recorded_since(h, before);
      out += fmt::format("{:<30} p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  ({} samples)\n", h.name,
                         quantile_text(d, 0.5), quantile_text(d, 0.99), quantile_text(d, 0.999), quantile_text(d, 1),
                         d.count());
    }
    std::string alarms;
    for (const auto& [name, what] : kAlarms) {
      std::uint64_t grew = 0;
      for (std::size_t i = 0; i < now.size(); ++i) {
        for (const auto& [counter, value] : now[i].counters) {
          if (counter != name && !counter.starts_with(std::string(name) + ".")) continue;
          const std::uint64_t before = i < last.size() ? last[i].get(counter) : 0;
          grew += value - std::min(value, before);
        }
      }
      if (grew != 0) alarms += fmt::format("ALARM {} (+{})\n", what, grew);
    }
    if (total(now, "storage.disk_full") != 0) alarms += "ALARM disk full now: ingest paused\n";
    for (const auto& s : now) {
      const std::uint64_t horizon = s.get("dedup.horizon_ms");
      const std::uint64_t covered = s.get("dedup.horizon_covered_ms");
      if (covered < horizon) {
        alarms += fmt::format("ALARM shard {} dedup covers {:.1f} s of its {:.1f} s horizon: raise [dedup] max_bytes\n",
                              s.shard, static_cast<double>(covered) / 1e3, static_cast<double>(horizon) / 1e3);
      }
    }
    // The data-quality alarms firing now ([[alarm]], docs/alarms.md).
    for (const auto& [counter, value] : now.empty() ? std::vector<std::pair<std::string, std::uint64_t>>{}
                                                     : now.front().counters) {
      if (value == 0 || !counter.starts_with("alarm.") || !counter.ends_with(".active")) continue;
      const std::string name = counter.substr(6, counter.size() - 6 - 7);
      alarms += fmt::format("ALARM data quality: {} (fired {} times)\n", name,
                            now.front().get("alarm." + name + ".fired"));
    }
    out += alarms.empty() ? "no alarm\n" : alarms;
    if (!tty) out += "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    last = now;
    last_at = at;
  }
}

int main(int argc, char** argv) {
  CLI::App app{"Queries a running spated over the query protocol.\n"
               "Exit status: 0 ok, 1 server error, 2 usage error, 3 connection error."};
  app.fallthrough();  // --addr and --json may also follow the command
  app.require_subcommand(1);

  std::string addr_text = "127.0.0.1:7070";
  bool json = false;
  int timeout_ms = 30000;
  app.add_option("--addr", addr_text, "server address HOST:PORT")->capture_default_str();
  app.add_flag("--json", json, "print JSON instead of tables");
  app.add_option("--timeout", timeout_ms, "connect, send and receive timeout in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600 * 1000));
  std::string token_file;
  app.add_option("--token-file", token_file, "file whose first line is the server's shared token (auth_token_file)")
      ->check(CLI::ExistingFile);

  auto* ping_cmd = app.add_subcommand("ping", "measure the round-trip time of one PING");
  auto* stats_cmd = app.add_subcommand("stats", "per-shard counters, with totals (watermark_ms: the lowest)");
  bool stats_all = false;
  stats_cmd->add_flag("--all", stats_all,
                      "also the figures of source kinds not started, all 0 (hidden in the table by default; --json "
                      "has everything)");
  int interval_ms = 1000;
  std::uint64_t rounds = 0;
  auto* watch_cmd = app.add_subcommand("watch", "rates, backlog and alarms, refreshed every second");
  watch_cmd->add_option("--interval-ms", interval_ms, "time between looks")->capture_default_str()->check(CLI::Range(50, 3600000));
  watch_cmd->add_option("--count", rounds, "stop after this many looks (0: until interrupted)")->capture_default_str();

  std::string view_name;
  std::string key;
  std::string from_text;
  std::string to_text;
  auto* view_cmd = app.add_subcommand("view", "the windows of one key of a view");
  view_cmd->add_option("VIEW", view_name, "view name")->required();
  view_cmd->add_option("KEY", key, "key")->required();
  auto* from_opt = view_cmd->add_option(
      "--from", from_text, "only windows ending after this time (ms since the epoch, or RFC 3339: 2025-11-24T16:00:00Z)");
  auto* to_opt = view_cmd->add_option("--to", to_text, "only windows starting before this time (ms or RFC 3339)");

  std::string top_view;
  std::string window_text;
  std::uint32_t k = 10;
  std::string by = "count";
  auto* top_cmd = app.add_subcommand("top", "the top keys of one window of a view");
  top_cmd->add_option("VIEW", top_view, "view name")->required();
  auto* window_opt = top_cmd->add_option(
      "--window", window_text,
      "a time in the window (ms since the epoch, or RFC 3339): the window holding it, or for a hopping view the one "
      "starting in the same slide (default: the newest window)");
  top_cmd->add_option("-k", k, "number of keys")->capture_default_str()->check(CLI::Range(1, 10000));
  top_cmd->add_option("--by", by, "aggregate to rank by")->capture_default_str();

  Address addr;
  std::string token;
  std::int64_t from_ms = INT64_MIN;
  std::int64_t to_ms = INT64_MAX;
  std::optional<std::int64_t> window;
  try {
    app.parse(argc, argv);
    addr = parse_address(addr_text);
    if (from_opt->count() > 0) from_ms = parse_time_ms("--from", from_text);
    if (to_opt->count() > 0) to_ms = parse_time_ms("--to", to_text);
    if (window_opt->count() > 0) window = parse_time_ms("--window", window_text);
    if (!token_file.empty()) token = spate::query::read_auth_token(token_file).value_or("");
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  } catch (const UsageError& e) {
    fmt::print(stderr, "error: {}\n", e.message);
    return kExitUsage;
  }

  // Transport failures carry Status::internal with a message of their own;
  // a server's INTERNAL answer reads "INTERNAL: ..." like every status answer.
  auto is_connection_error = [](const ClientError& e) {
    return e.status() == Status::internal && std::string_view(e.what()).rfind("INTERNAL: ", 0) != 0;
  };
  try {
    Client client(addr.host, addr.port, timeout_ms, token);
    if (*ping_cmd) {
      print_ping(client, addr, json);
    } else if (*stats_cmd) {
      print_stats(client, json, stats_all);
    } else if (*watch_cmd) {
      watch(client, interval_ms, rounds);
    } else if (*view_cmd) {
      print_rows(client.view_get(view_name, key, from_ms, to_ms), json);
    } else if (*top_cmd) {
      print_rows(client.view_top(top_view, window, k, by), json);
    }
  } catch (const ClientError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return is_connection_error(e) ? kExitConnection : kExitServerError;
  }
  return 0;
}
