// PUBLISH's hand-off as a source: the query server hands a producer's batch
// to the shard its producer id maps to, and this source delivers it to the
// shard like lines read from a socket. Each producer id is an input; one
// that idles leaves, so producer ids cannot pile up.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

#include "io/file/source.hpp"

namespace spate::engine {

class PublishSource final : public io::Source {
 public:
  bool poll(io::LineSink&, std::size_t) override { return false; }  // batches arrive through deliver()
  void ready(std::uint64_t, io::LineSink&) override {}
  void drain(io::LineSink&, std::int64_t) override {}  // a batch is delivered whole when it arrives

  // One batch of `producer`: `size` bytes of NDJSON with the sink's padding
  // readable after them; `sequence` is its position. Returns true when the
  // producer joined with this batch.
  bool deliver(std::uint64_t producer, std::uint64_t sequence, const char* data, std::size_t size,
               io::LineSink& sink);
  // The producer leaves (a first batch with no good event: a producer joins
  // with its first event, since a PUBLISH has no bytes still in flight).
  void leave(std::uint64_t producer, io::LineSink& sink);
  // Producers whose input is no longer active (active(input) false) leave.
  void expire(const std::function<bool(std::uint32_t)>& active, io::LineSink& sink);

 private:
  std::unordered_map<std::uint64_t, std::uint32_t> producers_;  // producer id -> input
};

}  // namespace spate::engine
