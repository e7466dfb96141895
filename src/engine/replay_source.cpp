// Replaying the shard's segments; see replay_source.hpp.
#include "engine/replay_source.hpp"

#include <fmt/format.h>

#include "engine/source_kind.hpp"
#include "io/file/log.hpp"

namespace spate::engine {

ReplaySource::ReplaySource(std::vector<storage::SegmentScan> segments, std::size_t padding,
                           std::function<bool(std::int64_t)> may_replay)
    : segments_(std::move(segments)), padding_(padding), may_replay_(std::move(may_replay)) {
  done_ = segments_.empty();
}

// Not at attach: an input holds event time back from its opening, and this
// one may wait for other shards' older blocks first.
void ReplaySource::attach(io::LineSink&) {}

std::int64_t ReplaySource::next_sealed_ms() const noexcept {
  for (std::size_t s = next_segment_, b = next_block_; s < segments_.size(); ++s, b = 0) {
    if (b < segments_[s].blocks.size()) return segments_[s].blocks[b].sealed_ms;
  }
  return INT64_MAX;
}

bool ReplaySource::open_next() {
  while (next_segment_ < segments_.size()) {
    const storage::SegmentScan& scan = segments_[next_segment_];
    std::string error;
    reader_ = storage::SegmentReader();
    if (reader_.open(scan.path, error)) {
      prefixes_.clear();
      const auto& fields = reader_.header().fields;
      raw_column_ = !fields.empty() && fields.back() == storage::kRawLineField ? fields.size() - 1 : SIZE_MAX;
      // Field names were checked at configuration (no quote, backslash or
      // control byte), so they need no escaping.
      for (const std::string& name : reader_.header().fields) prefixes_.push_back(fmt::format(",\"{}\":", name));
      next_block_ = 0;
      open_ = true;
      return true;
    }
    io::log_error("cannot replay segment", {{"path", scan.path}, {"error", error}});
    ++next_segment_;
  }
  return false;
}

bool ReplaySource::poll(io::LineSink& sink, std::size_t budget) {
  if (done_) return false;
  std::size_t handed = 0;
  // Each block's lines go on their own, after the wall clock they were
  // logged at (what capped the watermark live) and the stamps its events
  // were judged against.
  const auto hand = [&](std::int64_t sealed_ms) {
    if (lines_.empty()) return;
    const std::size_t size = lines_.size();
    lines_.append(padding_, '\0');
    io::SourceCounters::add(counters().bytes_in, size);
    sink.read_at(sealed_ms);
    if (!block_.stamps.empty()) sink.read_stamps(block_.stamps.data(), block_.stamps.size());
    sink.lines(input_, lines_.data(), size, events_);
    handed += size;
    lines_.clear();
  };
  lines_.clear();
  while (handed < budget) {
    if (!open_ && !open_next()) break;
    const storage::SegmentScan& scan = segments_[next_segment_];
    if (next_block_ == scan.blocks.size()) {
      open_ = false;
      ++next_segment_;
      continue;
    }
    if (!may_replay_(scan.blocks[next_block_].sealed_ms)) {  // another shard's older block first
      if (input_open_) sink.held_back(input_);
      break;
    }
    if (!input_open_) {
      input_ = sink.open_input(kind(), false);
      io::SourceCounters::add(counters().inputs, 1);
      input_open_ = true;
    }
    const storage::BlockInfo& info = scan.blocks[next_block_++];
    const storage::BlockStatus status = reader_.read_block(info.offset, true, block_);
    bytes_ += info.bytes;
    if (status != storage::BlockStatus::ok) {  // changed since the scan at start
      io::log_warn("segment block skipped", {{"path", scan.path}, {"offset", info.offset},
                                             {"error", storage::block_status_name(status)}});
      continue;
    }
    for (std::uint32_t e = 0; e < block_.info.events; ++e) {
      if (raw_column_ != SIZE_MAX) {  // keep_raw: the line as it came
        lines_ += block_.values[e * block_.fields + raw_column_];
        lines_ += '\n';
        continue;
      }
      char open = '{';
      for (std::size_t f = 0; f < block_.fields; ++f) {
        const std::string_view value = block_.values[e * block_.fields + f];
        if (value.empty()) continue;  // the event lacked the field
        lines_.push_back(open);
        lines_.append(prefixes_[f], 1);
        lines_ += value;
        open = ',';
      }
      lines_ += open == '{' ? "{}\n" : "}\n";
    }
    events_ += block_.info.events;
    for (const storage::Position& p : block_.positions) {
      if (p.kind != static_cast<std::uint8_t>(storage::PositionKind::publish)) continue;
      std::uint64_t& seq = sequences_[p.input];
      seq = std::max(seq, p.value);
    }
    hand(info.sealed_ms);
  }
  if (!open_ && next_segment_ >= segments_.size() && may_replay_(INT64_MAX)) {  // the others told, once our rows are applied
    done_ = true;
    if (input_open_) sink.close_input(input_);
  }
  return handed != 0 || done_;
}

// Made by the engine, named by no [[source]]; its events are counted as its own.
extern const SourceKind kReplaySource{"replay"};

}  // namespace spate::engine
