// C++ client library for the query protocol (docs/protocol.md): one blocking
// TCP connection, HELLO on connect, pipelined PUBLISH. Not for the hot path:
// errors are exceptions carrying the server's status and message.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "protocol/protocol.hpp"

namespace spate::query {

class ClientError : public std::runtime_error {
 public:
  ClientError(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  // Status::internal for transport failures (connect, EOF, malformed reply).
  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

struct Aggregate {
  std::string name;   // as in the view's config: "count", "sum(amount)", ...
  double value = 0;      // every aggregate's value as a double (exact to 2^53)
  bool integer = false;  // sent as an integer (a count, an integer field's sum, min, max, last)
  std::int64_t exact = 0;  // an integer's value, exactly
};

struct WindowRow {
  std::string key;
  std::int64_t window_start = 0;
  std::int64_t window_end = 0;
  bool closed = false;
  std::vector<Aggregate> aggregates;

  // The aggregate named `name`, or nullopt.
  std::optional<double> get(std::string_view name) const;
};

// A latency histogram of one shard (microseconds): the buckets holding
// values, as (largest value, values in it), in order. Shards' histograms
// merge by adding the counts of equal bounds.
struct StatsHistogram {
  std::string name;
  double sum = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets;

  std::uint64_t count() const noexcept;
  // The q-quantile as its bucket's largest value (at most 12.5% above); 0 when empty.
  std::uint64_t quantile(double q) const noexcept;
  void merge(const StatsHistogram& other);
};

struct ShardStats {
  std::uint32_t shard = 0;
  std::vector<std::pair<std::string, std::uint64_t>> counters;  // name -> value, in server order
  std::vector<StatKind> kinds;                                  // of each counter, by index
  std::vector<StatsHistogram> histograms;

  std::uint64_t get(std::string_view name) const;  // 0 when absent
  const StatsHistogram* histogram(std::string_view name) const;  // nullptr when absent
};

struct PublishResult {
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  bool duplicate = false;  // the (producer, sequence) was already applied; nothing changed
};

class Client {
 public:
  // Connects and performs the HELLO handshake (with the server's shared
  // token when it wants one); throws ClientError on failure.
  Client(const std::string& host, std::uint16_t port, int timeout_ms = 30000, const std::string& auth_token = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;

  const std::string& server_name() const noexcept { return server_name_; }
  std::uint32_t max_frame_bytes() const noexcept { return max_frame_; }

  void ping();
  std::vector<ShardStats> stats();
  std::vector<WindowRow> view_get(std::string_view view, std::string_view key,
                                  std::int64_t from_ms = INT64_MIN, std::int64_t to_ms = INT64_MAX);
  // Top `k` keys of one window by aggregate `by`; without window_start the
  // server picks the newest window.
  std::vector<WindowRow> view_top(std::string_view view, std::optional<std::int64_t> window_start,
                                  std::uint32_t k = 10, std::string_view by = "count");
  PublishResult publish(std::uint64_t producer_id, std::uint64_t sequence, std::string_view ndjson);

  // Pipelined publishing: send without waiting, then collect answers in any
  // order. publish_send returns the request id.
  std::uint32_t publish_send(std::uint64_t producer_id, std::uint64_t sequence, std::string_view ndjson);
  // Waits for the answer to any outstanding request; returns its id and result.
  std::pair<std::uint32_t, PublishResult> publish_receive();

 private:
  struct Reply {
    FrameHeader header;
    std::string frame;  // the whole frame
    std::string_view body() const { return frame_body(frame, header); }
  };
  std::uint32_t send(Op op, const std::string& fields);
  Reply receive();
  Reply call(Op op, const std::string& fields);
  void connect_to(const std::string& host, std::uint16_t port, int timeout_ms);
  void handshake(const std::string& auth_token);
  void write_all(std::string_view data);
  // Throws ClientError for a non-OK reply, closing the connection when the
  // server closes it too.
  void check_status(const Reply& reply);
  [[noreturn]] void fail(const std::string& message);  // closes, then throws Status::internal
  void close_fd() noexcept;

  int fd_ = -1;
  std::uint32_t next_id_ = 1;
  std::uint32_t max_frame_ = kDefaultMaxFrameBytes;
  std::string server_name_;
  std::string rbuf_;
  std::string peer_;                            // "host:port", for messages
  std::unordered_set<std::uint32_t> pending_;   // ids of PUBLISHes sent and not yet answered
  std::deque<Reply> stash_;                     // PUBLISH answers that arrived during call()
};

}  // namespace spate::query
