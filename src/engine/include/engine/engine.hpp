// The shard set: creates one shard per core, the shard-to-shard rings and the
// input sockets, starts the pinned threads and stops them with a drain.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kernels/hash.hpp"
#include "config/config.hpp"
#include "engine/shard.hpp"
#include "engine/shard_mesh.hpp"
#include "storage/directory_lock.hpp"

namespace spate::engine {

// The configuration cannot run on the data directory's kept events (a
// required field they lack): spated exits 78, as for a bad config.
struct DataConflict : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Engine {
 public:
  explicit Engine(Config config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // An NDJSON input the caller holds in memory, read like a file source:
  // split into line-aligned stripes and parsed in place by every shard.
  // The buffer must stay alive and unchanged until files_done(), and
  // kPadding readable bytes must follow it. Call before start().
  void add_buffer_input(std::string_view ndjson);

  // Opens every source (throws std::exception with a clear message when a
  // port cannot be bound or a file opened) and starts the shard threads.
  void start();
  // Stops reading inputs, applies everything already received, joins.
  void stop();

  const Config& config() const noexcept { return config_; }
  std::uint32_t shard_count() const noexcept { return shard_count_; }
  Shard& shard(std::uint32_t i) noexcept { return *shards_[i]; }
  const Shard& shard(std::uint32_t i) const noexcept { return *shards_[i]; }
  std::uint32_t owner_of(std::uint64_t key_hash) const noexcept { return kernels::shard_of(key_hash, shard_count_); }

  // The rings between the shards, their activity and watermarks.
  ShardMesh& mesh() noexcept { return *mesh_; }
  const ShardMesh& mesh() const noexcept { return *mesh_; }
  // What the shard-to-shard rings take once every shard has allocated its
  // inbound slots (ring_slots rounded up to a power of two).
  std::uint64_t ring_memory_bytes() const noexcept;

  // The configured sources as started (config.sources' order): where each
  // reads, the port a listener is bound to (useful with port 0).
  const std::vector<StartedSource>& sources() const noexcept { return sources_; }

  // True once every file source has been read to its end.
  bool files_done() const noexcept;
  // True when all rows received so far are applied (rings empty, nothing parsed but unrouted).
  bool quiescent() const noexcept;

  // Start: every shard replays its segments before any reads live input.
  // The last shard to finish checks that the configuration refused none of
  // the stored events; if it did (and [storage] replay_refused is "stop"),
  // the replay never counts as done: no live input is read, no checkpoint
  // taken, and refusal() says why.
  void replay_finished();
  bool all_replayed() const noexcept { return replayed_.load(std::memory_order_acquire); }
  const std::string& refusal() const noexcept { return refusal_; }
  bool refused() const noexcept { return refused_.load(std::memory_order_acquire); }
  // Whether any shard has segments to replay (set before the threads start).
  bool replays() const noexcept { return replays_; }
  // Blocks until every shard has replayed (or the replay was refused, or
  // the engine stops). After it, each shard's replayed_sequences() is set.
  void wait_replayed() const;
  // Checkpoints (docs/storage.md): the epoch last asked for. Shard 0 asks
  // for the next once every shard is done with this one.
  std::uint64_t checkpoint_requested() const noexcept { return checkpoint_epoch_.load(std::memory_order_acquire); }
  void request_checkpoint(std::uint64_t epoch) noexcept { checkpoint_epoch_.store(epoch, std::memory_order_release); }
  // What the checkpoints' state layout depends on: a checkpoint of another
  // configuration is not loaded (the segments replay instead).
  std::uint64_t checkpoint_fingerprint() const noexcept { return fingerprint_; }

  // Shard-side view of the stop protocol.
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  void input_finished() noexcept { inputs_finished_.fetch_add(1, std::memory_order_acq_rel); }
  // Stop protocol, first step: a shard hands off no more connections.
  void handoffs_closed() noexcept { handoffs_closed_.fetch_add(1, std::memory_order_acq_rel); }
  bool all_handoffs_closed() const noexcept {
    return handoffs_closed_.load(std::memory_order_acquire) == shard_count();
  }
  bool all_inputs_finished() const noexcept {
    return inputs_finished_.load(std::memory_order_acquire) == shard_count();
  }

  // Called by shards after pushing a response; the query server sets it.
  void set_response_notifier(int eventfd) noexcept { response_fd_.store(eventfd, std::memory_order_release); }
  void notify_response() noexcept;
  // The query server has PUBLISHes waiting for rings to drain: shards
  // notify it when they consume a batch.
  void set_publish_waiting(bool waiting) noexcept { publish_waiting_.store(waiting, std::memory_order_release); }
  bool publish_waiting() const noexcept { return publish_waiting_.load(std::memory_order_relaxed); }

 private:
  Config config_;
  std::uint32_t shard_count_ = 0;
  std::unique_ptr<storage::DirectoryLock> lock_;  // one daemon per data directory: held while storage is on
  std::vector<StartedSource> sources_;  // before the shards: their sources use what these hold until they go
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<ShardMesh> mesh_;
  std::vector<std::thread> threads_;
  std::vector<std::string_view> buffers_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint32_t> inputs_finished_{0};
  std::atomic<std::uint32_t> handoffs_closed_{0};
  std::atomic<int> response_fd_{-1};
  std::atomic<bool> publish_waiting_{false};
  std::atomic<std::uint32_t> replays_left_{0};
  std::atomic<bool> replayed_{false};
  std::atomic<bool> refused_{false};
  std::string refusal_;  // written before refused_ is set
  std::atomic<std::uint64_t> checkpoint_epoch_{0};
  std::uint64_t fingerprint_ = 0;
  bool replays_ = false;
  bool started_ = false;

  void open_storage();
  std::string replay_refusals() const;
  void check_stored_fields(const std::vector<storage::Recovery>& recoveries) const;
  // The newest checkpoint epoch every shard holds a valid file of, loaded
  // into the shards; the segments before it are not replayed.
  std::uint64_t load_checkpoints(std::vector<storage::Recovery>& recoveries);
};

}  // namespace spate::engine
