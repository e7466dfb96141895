// type = "pcap": the UDP payloads and TCP streams of a capture file, read
// by one shard (its rows go to their owners like any), as fast as read or
// at the recorded pace. docs/captures.md.
#include "engine/engine.hpp"
#include "engine/source_kind.hpp"
#include "io/net/pcap_source.hpp"
#include "sources/capture_figures.hpp"

namespace spate::engine {

extern const SourceKind kPcapSource;

namespace {

io::PcapOptions read(SourceSettings& s) {
  io::PcapOptions o;
  if (!s.string("path", o.path) || o.path.empty()) s.error("pcap source needs path = \"FILE\" (a pcap or pcapng capture)");
  std::string pace = "fast";
  s.choice("pace", pace, {"fast", "recorded"});
  o.recorded_pace = pace == "recorded";
  s.number("speed", o.speed, 0.001, 1000);
  s.integer("port", o.port, 0, 65535);
  s.boolean("verify_checksums", o.verify_checksums);
  o.max_line_bytes = s.config().max_line_bytes;
  return o;
}

StartedSource start(const SourceConfig& config, std::uint32_t index, Engine& engine) {
  SourceSettings s(config, engine.config());
  io::PcapOptions o = read(s);
  std::string path = o.path;
  // Captures are spread over the shards by their place in the config.
  engine.shard(index % engine.shard_count()).add_source(kPcapSource, std::make_unique<io::PcapSource>(std::move(o), kPadding));
  return {&kPcapSource, std::move(path), 0, nullptr};
}

void stats(const io::SourceTotals& t, const StatEmit& emit) {
  using F = io::PcapFigure;
  frame_stats<F>(t, emit);
  emit("tcp_gaps", t[F::tcp_gaps], false);
  emit("tcp_retransmits", t[F::tcp_retransmits], false);
  emit("tcp_out_of_order", t[F::tcp_out_of_order], false);
  emit("oversized_lines", t.oversized_lines, false);
}

}  // namespace

extern const SourceKind kPcapSource{"pcap", [](SourceSettings& s) { read(s); }, start, stats};

}  // namespace spate::engine
