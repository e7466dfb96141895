// spate-query: command-line client of the query protocol (docs/protocol.md):
// ping, stats, view lookups and top-k, as aligned tables or JSON.
// Exit codes: 0 ok, 1 the server answered an error status, 2 usage, 3 connection.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"

namespace {

using spate::query::Client;
using spate::query::ClientError;
using spate::query::ShardStats;
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

std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

// Aggregate values: integers exactly (count), others in their shortest exact form.
std::string number_text(double v, bool integer, bool json) {
  if (integer && v >= 0 && v < 18446744073709551616.0) return fmt::format("{}", static_cast<std::uint64_t>(v));
  if (!std::isfinite(v)) return json ? "null" : fmt::format("{}", v);
  std::string text = fmt::format("{}", v);
  // Keep floating-point aggregates recognisable as such: 10.0, not 10.
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
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
      for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
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

void print_stats(Client& client, bool json) {
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
  if (json) {
    std::string out = "{\"shards\":[";
    for (std::size_t i = 0; i < shards.size(); ++i) {
      if (i > 0) out += ',';
      out += fmt::format("{{\"shard\":{},\"counters\":{{", shards[i].shard);
      for (std::size_t j = 0; j < shards[i].counters.size(); ++j) {
        if (j > 0) out += ',';
        out += fmt::format("{}:{}", json_string(shards[i].counters[j].first), shards[i].counters[j].second);
      }
      out += "}}";
    }
    out += "],\"total\":{";
    for (std::size_t j = 0; j < names.size(); ++j) {
      if (j > 0) out += ',';
      out += fmt::format("{}:{}", json_string(names[j]), total.find(names[j])->second);
    }
    out += "}}";
    fmt::print("{}\n", out);
    return;
  }
  std::vector<std::string> header{"counter"};
  for (const auto& s : shards) header.push_back(fmt::format("shard {}", s.shard));
  header.push_back("total");
  Table table(std::move(header));
  for (const auto& name : names) {
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
        out += fmt::format(",{}:{}", json_string(a.name), number_text(a.value, a.integer, true));
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
        if (a.name == name) cell = number_text(a.value, a.integer, false);
      }
      row.push_back(std::move(cell));
    }
    table.add(std::move(row));
  }
  table.print(1);
}

}  // namespace

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

  std::string view_name;
  std::string key;
  std::int64_t from_ms = INT64_MIN;
  std::int64_t to_ms = INT64_MAX;
  auto* view_cmd = app.add_subcommand("view", "the windows of one key of a view");
  view_cmd->add_option("VIEW", view_name, "view name")->required();
  view_cmd->add_option("KEY", key, "key")->required();
  view_cmd->add_option("--from", from_ms, "only windows ending after this time (ms since the epoch)");
  view_cmd->add_option("--to", to_ms, "only windows starting before this time (ms since the epoch)");

  std::string top_view;
  std::int64_t window_ms = 0;
  std::uint32_t k = 10;
  std::string by = "count";
  auto* top_cmd = app.add_subcommand("top", "the top keys of one window of a view");
  top_cmd->add_option("VIEW", top_view, "view name")->required();
  auto* window_opt = top_cmd->add_option("--window", window_ms, "window start in ms (default: the newest window)");
  top_cmd->add_option("-k", k, "number of keys")->capture_default_str()->check(CLI::Range(1, 10000));
  top_cmd->add_option("--by", by, "aggregate to rank by")->capture_default_str();

  Address addr;
  std::string token;
  try {
    app.parse(argc, argv);
    addr = parse_address(addr_text);
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
      print_stats(client, json);
    } else if (*view_cmd) {
      print_rows(client.view_get(view_name, key, from_ms, to_ms), json);
    } else if (*top_cmd) {
      std::optional<std::int64_t> window;
      if (window_opt->count() > 0) window = window_ms;
      print_rows(client.view_top(top_view, window, k, by), json);
    }
  } catch (const ClientError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return is_connection_error(e) ? kExitConnection : kExitServerError;
  }
  return 0;
}
