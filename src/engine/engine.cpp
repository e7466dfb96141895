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
#include "io/net/socket.hpp"
#include "kernels/hash.hpp"
#include "kernels/assert.hpp"

namespace spate::engine {
namespace {

constexpr int kUdpReceiveBufferBytes = 8 << 20;
constexpr std::uint64_t kMaxFileStripeBytes = 1 << 20;
constexpr std::uint64_t kMinFileStripeBytes = 64 << 10;

// The offset just past the first newline at or after `from` (or the file's end).
std::uint64_t next_line_start(int fd, std::uint64_t from, std::uint64_t size) {
  char buf[4096];
  while (from < size) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(from));
    if (n <= 0) return size;
    if (const void* nl = std::memchr(buf, '\n', static_cast<std::size_t>(n))) {
      return from + static_cast<std::uint64_t>(static_cast<const char*>(nl) - buf) + 1;
    }
    from += static_cast<std::uint64_t>(n);
  }
  return size;
}

// Cuts [0, size) into stripes of up to 1 MiB that end at line starts and
// deals them round-robin: every shard parses its own part, and all shards
// move through the input (and its event time) together, as they would on
// live traffic. Halves instead put one shard's rows far ahead in event time
// of the other's, and windows thrashed between them.
template <typename NextLineStart, typename Assign>
void deal_stripes(std::uint64_t size, std::uint32_t shards, NextLineStart&& next_line_start, Assign&& assign) {
  const std::uint64_t stripe =
      std::clamp<std::uint64_t>(size / (8ull * shards), kMinFileStripeBytes, kMaxFileStripeBytes);
  std::uint64_t begin = 0;
  for (std::uint64_t k = 0; begin < size; ++k) {
    const std::uint64_t end = std::max(begin, next_line_start(std::min(size, (k + 1) * stripe)));
    if (end == begin) continue;
    assign(static_cast<std::uint32_t>(k % shards), begin, end, k);
    begin = end;
  }
}

}  // namespace

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
  rings_.resize(static_cast<std::size_t>(shard_count_) * shard_count_);
  handoffs_.resize(rings_.size());
  for (std::uint32_t s = 0; s < shard_count_; ++s) {
    for (std::uint32_t d = 0; d < shard_count_; ++d) {
      if (s == d) continue;
      rings_[s * shard_count_ + d] = std::make_unique<SpscRing<RouteBatch>>(config_.ring_slots);
      handoffs_[s * shard_count_ + d] = std::make_unique<SpscRing<HandedConnection>>(64);
    }
  }
  for (std::uint32_t i = 0; i < shard_count_; ++i) shards_.push_back(std::make_unique<Shard>(i, *this));
}

Engine::~Engine() { stop(); }

std::size_t Engine::ring_depth_into(std::uint32_t dst) const noexcept {
  std::size_t depth = 0;
  for (std::uint32_t s = 0; s < shard_count_; ++s) {
    if (s != dst) depth += rings_[s * shard_count_ + dst]->depth();
  }
  return depth;
}

std::uint64_t Engine::ring_memory_bytes() const noexcept {
  const std::uint64_t rings = static_cast<std::uint64_t>(shard_count_) * (shard_count_ - 1);
  return rings * std::bit_ceil(std::max<std::uint64_t>(config_.ring_slots, 2)) *
         (sizeof(RouteBatch) + RouteBatch::bytes_for(config_.ring_batch_rows, config_.columns.size()));
}

void Engine::wait_replayed() const {
  while (!all_replayed() && !stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Engine::start() {
  if (started_) return;
  if (config_.storage.enabled) open_storage();
  replays_left_.store(replays_ ? shard_count_ : 0, std::memory_order_release);
  std::uint32_t pcap_sources = 0;
  for (const SourceConfig& source : config_.sources) {
    std::uint16_t port = source.listen.port;
    switch (source.kind) {
      case SourceKind::tcp:
      case SourceKind::udp:
        for (std::uint32_t i = 0; i < shard_count_; ++i) {
          int fd;
          if (source.kind == SourceKind::tcp) {
            if (i == 0) tcp_open_.push_back(std::make_unique<std::atomic<std::uint32_t>>(0));
            fd = io::listen_tcp(source.listen.host, port, true);
            shards_[i]->add_tcp_listener(fd, static_cast<std::uint32_t>(tcp_open_.size() - 1),
                                         {source.max_connections, source.max_idle_ms, tcp_open_.back().get()});
          } else {
            fd = io::bind_udp(source.listen.host, port, true, kUdpReceiveBufferBytes);
            shards_[i]->add_udp_socket(fd);
          }
          if (port == 0) port = io::local_port(fd);  // the other shards join the same port
        }
        break;
      case SourceKind::file: {
        if (source.path == "-") {
          shards_[0]->add_stdin();
          break;
        }
        struct stat st{};
        const int probe = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (probe < 0 || ::fstat(probe, &st) != 0) {
          throw std::system_error(errno, std::generic_category(), "cannot open input file '" + source.path + "'");
        }
        if (S_ISDIR(st.st_mode)) {
          ::close(probe);
          throw std::system_error(EISDIR, std::generic_category(), "cannot read input file '" + source.path + "'");
        }
        const auto size = static_cast<std::uint64_t>(st.st_size);
        std::vector<std::vector<io::FileStripe>> stripes(shard_count_);
        deal_stripes(
            size, shard_count_, [&](std::uint64_t from) { return next_line_start(probe, from, size); },
            [&](std::uint32_t shard, std::uint64_t begin, std::uint64_t end, std::uint64_t k) {
              stripes[shard].push_back({begin, end, k});
            });
        ::close(probe);
        for (std::uint32_t shard = 0; shard < shard_count_; ++shard) {
          if (stripes[shard].empty()) continue;
          const int fd = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open '" + source.path + "'");
          shards_[shard]->add_file(fd, stripes[shard]);
        }
        break;
      }
      case SourceKind::pcap: {  // a capture is read by one shard; its rows go to their owners like any
        io::PcapOptions o;
        o.path = source.path;
        o.recorded_pace = source.recorded_pace;
        o.speed = source.speed;
        o.port = source.port;
        o.verify_checksums = source.verify_checksums;
        shards_[pcap_sources++ % shard_count_]->add_pcap(std::move(o));
        break;
      }
      case SourceKind::dpdk: {
        io::DpdkOptions o;
        o.eal_args = source.eal_args;
        o.port = source.dpdk_port;
        o.udp_port = source.port;
        o.rx_descriptors = source.rx_descriptors;
        o.mbufs = source.mbufs;
        o.verify_checksums = source.verify_checksums;
        dpdk_ = std::make_unique<io::DpdkPort>(std::move(o), shard_count_);
        // One queue per shard; a device with fewer queues feeds fewer shards.
        for (std::uint32_t q = 0; q < dpdk_->queues(); ++q) shards_[q]->add_dpdk(*dpdk_, static_cast<std::uint16_t>(q));
        break;
      }
      case SourceKind::publish:
      case SourceKind::replay:  // neither is configured as a source
        break;
    }
    bound_ports_.push_back(port);
  }
  for (const std::string_view buffer : buffers_) {
    std::vector<std::vector<io::FileStripe>> stripes(shard_count_);
    deal_stripes(
        buffer.size(), shard_count_,
        [&](std::uint64_t from) -> std::uint64_t {
          const void* nl = std::memchr(buffer.data() + from, '\n', buffer.size() - from);
          return nl == nullptr ? buffer.size() : static_cast<std::uint64_t>(static_cast<const char*>(nl) - buffer.data()) + 1;
        },
        [&](std::uint32_t shard, std::uint64_t begin, std::uint64_t end, std::uint64_t k) {
          stripes[shard].push_back({begin, end, k});
        });
    for (std::uint32_t shard = 0; shard < shard_count_; ++shard) {
      if (!stripes[shard].empty()) shards_[shard]->add_buffer(buffer.data(), stripes[shard]);
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
    applied += s->counters().rows_applied.load(std::memory_order_acquire);
  }
  return applied == events * config_.key_groups.size();
}

void Engine::notify_response() noexcept {
  const int fd = response_fd_.load(std::memory_order_acquire);
  if (fd < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof(one));
}

std::int64_t Engine::max_watermark() const noexcept {
  std::int64_t wm = INT64_MIN;
  for (const auto& s : shards_) wm = std::max(wm, s->counters().watermark_ms.load(std::memory_order_relaxed));
  return wm;
}

}  // namespace spate::engine
