// PUBLISH batches as a source; see publish_source.hpp.
#include "engine/publish_source.hpp"

#include "engine/source_kind.hpp"

namespace spate::engine {

bool PublishSource::deliver(std::uint64_t producer, std::uint64_t sequence, const char* data, std::size_t size,
                            io::LineSink& sink) {
  io::SourceCounters::add(counters().bytes_in, size);
  auto [it, joined] = producers_.try_emplace(producer, 0);
  if (joined) {
    it->second = sink.open_input(kind(), false);
    io::SourceCounters::add(counters().inputs, 1);
  }
  sink.lines(it->second, data, size, sequence);
  return joined;
}

void PublishSource::leave(std::uint64_t producer, io::LineSink& sink) {
  const auto it = producers_.find(producer);
  if (it == producers_.end()) return;
  sink.close_input(it->second);
  producers_.erase(it);
}

void PublishSource::expire(const std::function<bool(std::uint32_t)>& active, io::LineSink& sink) {
  for (auto it = producers_.begin(); it != producers_.end();) {
    if (active(it->second)) {
      ++it;
    } else {
      sink.close_input(it->second);
      it = producers_.erase(it);
    }
  }
}

// Made by the engine, named by no [[source]]; its events are counted as its own.
extern const SourceKind kPublishSource{"publish"};

}  // namespace spate::engine
