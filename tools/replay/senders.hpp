// Where spate-replay sends: UDP datagrams (batched with sendmmsg), a TCP
// stream, or PUBLISH batches over the query protocol (pipelined). Each
// takes one message at a time and copies it, so the caller may reuse its
// buffer; flush() hands over what is batched.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace spate::replay {

struct SendCounters {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t errors = 0;  // datagrams refused (nobody listening), PUBLISHes refused
  std::string last_error;
};

class Sender {
 public:
  virtual ~Sender() = default;
  virtual void send(const char* data, std::size_t len) = 0;
  virtual void flush() = 0;
  // After the last message: waits for every answer (PUBLISH) and closes.
  virtual void finish() { flush(); }
  const SendCounters& counters() const noexcept { return counters_; }

 protected:
  SendCounters counters_;
};

// "udp://HOST:PORT", "tcp://HOST:PORT" or "publish://HOST:PORT" (producer
// id for PUBLISH). Throws std::runtime_error naming what is wrong.
std::unique_ptr<Sender> make_sender(const std::string& url, std::uint64_t producer_id);

}  // namespace spate::replay
