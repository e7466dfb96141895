// The output side of spate-gen: chunks of generated lines, the queues that hand them to one
// output thread per sink, and the sinks (file, TCP, UDP datagrams, query-protocol PUBLISH).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "client/client.hpp"
#include "gen/options.hpp"

namespace spate::gen {

using Clock = std::chrono::steady_clock;

inline constexpr std::size_t kUdpMaxPayload = 65507;
inline constexpr std::size_t kMaxInflightBatches = 16;
inline constexpr std::size_t kQueueDepth = 4;  // chunks queued per output thread

// ---------------------------------------------------------------------------------------------
// Chunks and the threads that send them.

struct Chunk {
  std::unique_ptr<char[]> data;
  std::size_t capacity = 0;
  std::size_t len = 0;
  std::uint64_t events = 0;
  std::uint64_t lines = 0;
};

template <typename T>
class BlockingQueue {
 public:
  explicit BlockingQueue(std::size_t capacity) : capacity_(capacity) {}
  void push(T v) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(v));
    not_empty_.notify_one();
  }
  // Waits for an item; nullopt once closed and empty.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return v;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

struct Shared {
  BlockingQueue<Chunk*> free_chunks{std::numeric_limits<std::size_t>::max()};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string error;
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> datagrams{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> duplicate_batches{0};
  std::atomic<std::uint64_t> overloaded_retries{0};

  void fail(const std::string& message) {
    std::lock_guard lock(error_mutex);
    if (error.empty()) error = message;
    failed = true;
  }
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Sends a chunk (throws std::runtime_error). Returns true when the sink keeps the chunk and
  // hands it back to the free list itself later.
  virtual bool send(Chunk& chunk) = 0;
  virtual void flush() {}    // after the last chunk; part of the timed run
  virtual void linger() {}   // untimed wind-down (TCP: wait for the peer's close)
  virtual void abandon() {}  // after a failure: give back every chunk still kept
};

std::string errno_text(int err);

// A socket of type `socktype` connected to the first address of `ep` that accepts; throws
// std::runtime_error naming `option`.
int connect_to(const Endpoint& ep, int socktype, const char* option);

// The sinks (sinks.cpp describes each); each closes the fd it is given (a file sink only if `owned`).
// `name` starts every error message.
std::unique_ptr<Sink> make_file_sink(int fd, bool owned, std::string name);
std::unique_ptr<Sink> make_tcp_sink(int fd, std::string name);
std::unique_ptr<Sink> make_udp_sink(int fd, std::size_t payload, std::string name, Shared& shared);
// --out FILE.pcap (pcap_sink.cpp).
std::unique_ptr<Sink> make_pcap_sink(const std::string& path, const Options& o);
// Where the datagram that starts at `start` of `n` bytes of lines ends:
// whole lines up to `payload` bytes (a longer line goes alone).
std::size_t datagram_end(const char* base, std::size_t n, std::size_t start, std::size_t payload) noexcept;
std::unique_ptr<Sink> make_publish_sink(query::Client client, std::uint64_t producer_id, std::string name,
                                        Shared& shared);

// Sends every chunk of its queue; after a failure anywhere it only recycles chunks. Once the sink
// is flushed, raises sent_done_ns (Clock ticks) to the time it finished.
void run_sink(Sink& sink, BlockingQueue<Chunk*>& queue, Shared& shared, std::atomic<std::int64_t>& sent_done_ns);

}  // namespace spate::gen
