// Query protocol v1 codec: frames, tagged length-prefixed fields, op and
// status codes. The wire format is specified in docs/protocol.md; this file
// and that spec change together (tests/src/protocol_test.cpp pins the bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spate::query {

inline constexpr std::uint16_t kProtocolVersion = 1;
inline constexpr std::size_t kFrameHeaderBytes = 12;          // length u32 + op u16 + status u16 + request id u32
inline constexpr std::size_t kFieldHeaderBytes = 7;           // tag u16 + type u8 + length u32
inline constexpr std::uint32_t kDefaultMaxFrameBytes = 16u << 20;
inline constexpr std::uint32_t kMaxRowsPerResponse = 100000;
inline constexpr std::uint32_t kMaxTopK = 10000;
inline constexpr std::uint32_t kMaxKeyBytes = 4096;
inline constexpr std::uint32_t kMaxNestingDepth = 4;

enum class Op : std::uint16_t {
  hello = 1,
  ping = 2,
  stats = 3,
  view_get = 16,
  view_top = 17,
  publish = 32,
};

enum class Status : std::uint16_t {
  ok = 0,
  bad_request = 1,
  unknown_op = 2,
  unknown_view = 3,
  frame_too_large = 4,
  version_unsupported = 5,
  handshake_required = 6,
  overloaded = 7,
  internal = 8,
  unknown_aggregate = 9,
  auth_failed = 10,
  storage_failed = 11,  // the shard's log could not write: the batch may be lost; retry
  disk_full = 12,       // the data directory's disk is above its high-water mark: nothing taken; retry later
};

enum class WireType : std::uint8_t { u64 = 1, i64 = 2, f64 = 3, bytes = 4, nested = 5 };

enum class Tag : std::uint16_t {
  version = 1,
  max_frame = 2,
  server_name = 3,
  error = 4,
  client_name = 5,
  auth_token = 6,
  view = 10,
  key = 11,
  from_ms = 12,
  to_ms = 13,
  window_start = 14,
  window_end = 15,
  k = 16,
  by = 17,
  row = 18,
  agg = 19,
  name = 20,
  value_f64 = 21,
  value_u64 = 22,
  value_i64 = 23,
  closed = 24,
  truncated = 25,
  shard = 30,
  shard_id = 31,
  counter = 32,
  kind = 33,       // STATS: a figure's StatKind (absent: counter)
  histogram = 34,  // STATS: NAME, VALUE_F64 (the sum) and a BUCKET per bucket holding values
  bucket = 35,     // BOUND and VALUE_U64 (the values in it)
  bound = 36,      // a bucket's largest value (UINT64_MAX: no bound)
  producer_id = 40,
  sequence = 41,
  payload = 42,
  accepted = 43,
  rejected = 44,
  duplicate = 45,
  durability = 46,  // PUBLISH: how far its events got before the answer (none, group, sync)
};

// What a STATS figure is: a running total since the start, or a level now.
enum class StatKind : std::uint8_t { counter = 0, gauge = 1 };

// The shared token in an auth_token_file: its first line, without the line
// end. nullopt when the file cannot be read.
std::optional<std::string> read_auth_token(const std::string& path);

const char* op_name(Op op) noexcept;
const char* status_name(Status status) noexcept;

// One decoded field. For bytes and nested fields `bytes` views the frame's
// buffer; decode a nested field's content with FieldReader{field.bytes}.
struct Field {
  Tag tag;
  WireType type;
  std::uint64_t u = 0;   // u64 and i64 (two's complement) values
  double f = 0;          // f64 values
  std::string_view bytes;

  std::int64_t as_i64() const noexcept { return static_cast<std::int64_t>(u); }
};

// Iterates the fields of a frame body or of a nested field. Malformed input
// (a length past the end, a fixed-width field whose length is not 8, an
// unknown wire type) stops iteration and sets error(); it never reads out of bounds.
class FieldReader {
 public:
  explicit FieldReader(std::string_view body) noexcept : data_(body) {}
  // Returns the next field, or nullopt at the end or on error.
  std::optional<Field> next() noexcept;
  bool error() const noexcept { return error_; }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  bool error_ = false;
};

// Appends fields to a byte buffer. Nested fields: begin_nested() returns a
// mark that end_nested() uses to patch the length.
class FieldWriter {
 public:
  explicit FieldWriter(std::string& out) noexcept : out_(out) {}
  void u64(Tag tag, std::uint64_t v);
  void i64(Tag tag, std::int64_t v);
  void f64(Tag tag, double v);
  void bytes(Tag tag, std::string_view v);
  std::size_t begin_nested(Tag tag);
  void end_nested(std::size_t mark);

 private:
  void header(Tag tag, WireType type, std::uint32_t len);
  std::string& out_;
};

struct FrameHeader {
  std::uint32_t length = 0;  // bytes after the length field
  Op op{};
  Status status{};
  std::uint32_t request_id = 0;
};

// Starts a frame in `out` (appending); write fields with FieldWriter{out},
// then call finish_frame with the returned mark to patch the length.
std::size_t begin_frame(std::string& out, Op op, Status status, std::uint32_t request_id);
void finish_frame(std::string& out, std::size_t mark);

enum class FrameParse { complete, need_more, too_large, malformed };

// Looks at the start of `buf`. On `complete`, header is filled and the frame
// occupies header.length + 4 bytes; its fields are buf.substr(12, header.length - 8).
FrameParse peek_frame(std::string_view buf, std::uint32_t max_frame_bytes, FrameHeader& header) noexcept;

inline std::string_view frame_body(std::string_view buf, const FrameHeader& header) noexcept {
  return buf.substr(kFrameHeaderBytes, header.length - (kFrameHeaderBytes - 4));
}

}  // namespace spate::query
