// spate-gen's settings as parsed from the command line (the generator model reads the stream
// settings, the wiring the output ones), and the parsers of HOST:PORT and --types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace spate::gen {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string text;  // as given
};

struct Options {
  std::uint64_t events = 1000000;
  std::uint64_t seed = 42;
  std::uint32_t users = 10000;
  double zipf = 1.1;
  std::string types_text = "click,view,purchase,cart,search";
  std::vector<std::string> types;
  std::int64_t start_ms = 1764000000000;
  double step_ms = 1.0;
  // Events dated at the wall clock as they are generated (start_ms and
  // step_ms then unused): event time to queryable is measured against now.
  bool live = false;
  // The first event's id number ("e" and 11 digits or more); each event after
  // takes the next. Runs into the same pipeline need ids apart, or dedup drops
  // the later run's events as duplicates of the earlier's.
  std::uint64_t first_id = 0;
  double ooo_share = 0.05;
  double late_share = 0.001;
  double dup_share = 0.01;
  double rfc3339_share = 0.1;
  double hostile_share = 0.0;
  std::size_t max_line_bytes = 65536;

  std::string out = "-";
  std::string tcp;
  std::string udp;
  std::string publish;
  std::optional<Endpoint> endpoint;
  unsigned connections = 1;
  std::size_t udp_payload = 1400;
  std::size_t batch = 1000;
  std::optional<std::uint64_t> producer_id;

  // --out FILE.pcap: packets this far apart, to this UDP/TCP port; a TCP stream instead of datagrams.
  std::uint64_t pcap_pps = 100000;
  std::uint16_t pcap_port = 7071;
  bool pcap_tcp = false;

  double rate = 0;
  bool progress = false;
  std::string expect;
  // The pipeline keeps duplicates ([dedup] enabled = false): they count in
  // the expected views like their originals.
  bool expect_duplicates = false;
};

// "HOST:PORT" or "[V6HOST]:PORT"; throws std::runtime_error naming `option`.
Endpoint parse_endpoint(const std::string& text, const char* option);

// The comma-separated --types list, checked (1..kMaxTypeBytes characters without JSON escapes,
// no repeats, at most 255 types); throws std::runtime_error.
std::vector<std::string> split_types(const std::string& text);

}  // namespace spate::gen
