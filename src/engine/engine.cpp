// The shard set; see engine.hpp.
#include "engine/engine.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <bit>
#include <cerrno>
#include <cstring>
#include <latch>
#include <memory>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "io/file/cpu_affinity.hpp"
#include "kernels/hash.hpp"
#include "kernels/assert.hpp"

namespace spate::engine {

Engine::Engine(Config config) : config_(std::move(config)) {
  const std::vector<int> cpus = io::allowed_cpus();
  shard_count_ = config_.shards != 0 ? config_.shards : static_cast<std::uint32_t>(cpus.size());
  SPATE_ASSERT(shard_count_ >= 1 && !config_.key_groups.empty(), "a finalized config with at least one view");
  // Refuse rings that cannot fit, with the reason, before allocating any.
  const auto pages = ::sysconf(_SC_PHYS_PAGES);
  const auto page = ::sysconf(_SC_PAGE_SIZE);
  const std::uint64_t memory = pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
  if (config_.max_state_bytes == 0) config_.max_state_bytes = memory != 0 ? memory / 2 : std::uint64_t{1} << 34;
  if (memory != 0 && ring_memory_bytes() > memory / 2) {
    throw std::runtime_error(fmt::format(
        "the shard-to-shard rings would take {:.1f} GiB ({} shards x {} rings x {} slots of {} rows), more than half "
        "of this machine's memory: lower ring_slots or ring_batch_rows (docs/configuration.md)",
        static_cast<double>(ring_memory_bytes()) / (1u << 30), shard_count_, shard_count_ - 1,
        std::bit_ceil(std::max<std::uint32_t>(config_.ring_slots, 2)), config_.ring_batch_rows));
  }
  mesh_ = std::make_unique<ShardMesh>(shard_count_, config_.ring_slots);
  for (std::uint32_t i = 0; i < shard_count_; ++i) shards_.push_back(std::make_unique<Shard>(i, *this));
}

Engine::~Engine() { stop(); }

std::uint64_t Engine::ring_memory_bytes() const noexcept {
  const std::uint64_t rings = static_cast<std::uint64_t>(shard_count_) * (shard_count_ - 1);
  return rings * std::bit_ceil(std::max<std::uint64_t>(config_.ring_slots, 2)) *
         (sizeof(RouteBatch) + RouteBatch::bytes_for(config_.ring_batch_rows, config_.columns.size()));
}

void Engine::wait_replayed() const {
  while (!all_replayed() && !refused() && !stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Engine::replay_finished() {
  if (replays_left_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Every shard is done: their counts of refused replayed lines are final.
  std::string why = replay_refusals();
  if (!why.empty() && config_.storage.replay_refused == "stop") {
    refusal_ = std::move(why);
    refused_.store(true, std::memory_order_release);
    return;
  }
  if (!why.empty()) io::log_warn("recovery: stored events refused on replay and dropped", {{"refused", why}});
  replayed_.store(true, std::memory_order_release);
}

void Engine::start() {
  if (started_) return;
  if (config_.storage.enabled) open_storage();
  replays_left_.store(replays_ ? shard_count_ : 0, std::memory_order_release);
  replayed_.store(!replays_, std::memory_order_release);
  for (std::uint32_t i = 0; i < config_.sources.size(); ++i) {
    const SourceConfig& source = config_.sources[i];
    const SourceKind* kind = find_source_kind(source.type);
    if (kind == nullptr || kind->start == nullptr) {
      throw std::invalid_argument(fmt::format("unknown source type '{}' ({})", source.type, source_kind_names()));
    }
    sources_.push_back(kind->start(source, i, *this));
  }
  for (const std::string_view buffer : buffers_) {
    const auto stripes = deal_stripes(buffer.size(), shard_count_, [&](std::uint64_t from) -> std::uint64_t {
      const void* nl = std::memchr(buffer.data() + from, '\n', buffer.size() - from);
      return nl == nullptr ? buffer.size() : static_cast<std::uint64_t>(static_cast<const char*>(nl) - buffer.data()) + 1;
    });
    for (std::uint32_t i = 0; i < shard_count_; ++i) {
      if (stripes[i].empty()) continue;
      auto source = io::FileSource::buffer(buffer.data(), shards_[i]->stripe_gate());
      for (const io::FileStripe& stripe : stripes[i]) source->add_stripe(stripe);
      shards_[i]->add_source(kFileSource, std::move(source));
    }
  }
  const std::vector<int> cpus = io::allowed_cpus();
  // Every shard allocates the batches it reads on its own thread, then all
  // wait until every ring is ready before any shard sends.
  auto prepared = std::make_shared<std::latch>(shard_count_);
  for (std::uint32_t i = 0; i < shard_count_; ++i) {
    threads_.emplace_back([this, i, cpu = cpus[i % cpus.size()], prepared] {
      io::pin_current_thread(cpu);
      shards_[i]->prepare();
      prepared->arrive_and_wait();
      shards_[i]->run();
    });
  }
  started_ = true;
}

void Engine::add_buffer_input(std::string_view ndjson) {
  SPATE_ASSERT(!started_, "buffer inputs are added before start()");
  buffers_.push_back(ndjson);
}

void Engine::stop() {
  if (!started_) return;
  started_ = false;
  stopping_.store(true, std::memory_order_release);
  for (auto& s : shards_) s->wake();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

bool Engine::files_done() const noexcept {
  for (const auto& s : shards_) {
    if (!s->files_done()) return false;
  }
  return true;
}

bool Engine::quiescent() const noexcept {
  std::uint64_t events = 0;
  std::uint64_t applied = 0;
  for (const auto& s : shards_) {
    events += s->counters().events();
    applied += s->counters().rows_handled.load(std::memory_order_acquire);
  }
  return applied == events * config_.key_groups.size();
}

void Engine::notify_response() noexcept {
  const int fd = response_fd_.load(std::memory_order_acquire);
  if (fd < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof(one));
}

}  // namespace spate::engine
