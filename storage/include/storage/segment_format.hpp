// The hot segment file format (docs/storage.md is its specification):
// a self-describing header, checksummed blocks of events stored column by
// column and compressed, and a footer that indexes the blocks. Pure
// encoding and decoding over byte buffers; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spate::storage {

inline constexpr std::uint16_t kFormatVersion = 1;
inline constexpr char kHeaderMagic[8] = {'S', 'P', 'A', 'T', 'E', 'S', 'E', 'G'};
inline constexpr char kTrailerMagic[8] = {'S', 'P', 'A', 'T', 'E', 'E', 'N', 'D'};
inline constexpr std::uint32_t kBlockMagic = 0x4B4C4253;   // "SBLK"
inline constexpr std::uint32_t kFooterMagic = 0x52544653;  // "SFTR"
inline constexpr std::size_t kBlockHeaderBytes = 56;
inline constexpr std::size_t kBlockChecksumOffset = kBlockHeaderBytes - 8;  // the checksum ends the header
inline constexpr std::size_t kFooterEntryBytes = 32;
inline constexpr std::size_t kTrailerBytes = 16;
// Limits a reader enforces before it trusts a length.
inline constexpr std::uint32_t kMaxFields = 1024;
inline constexpr std::uint32_t kMaxBlockBytes = 64u << 20;
// keep_raw: the column holding each event's line exactly as received (a
// JSON object's text), after the schema's fields.
inline constexpr const char* kRawLineField = "_raw";
// A block header's flag: its payload ends with each event's stamp.
inline constexpr std::uint8_t kBlockHasStamps = 1;

enum class Codec : std::uint8_t { none = 0, lz4 = 1, zstd = 2 };
const char* codec_name(Codec codec) noexcept;
std::optional<Codec> codec_from_name(std::string_view name) noexcept;

struct SegmentHeader {
  std::uint32_t shard = 0;
  std::uint32_t shards = 1;
  std::int64_t created_ms = 0;   // wall clock
  std::uint64_t sequence = 0;    // the segment's number within its shard
  std::vector<std::string> fields;  // the schema's field names, in column order
};

// What a block says of itself (its header), and where it lies.
struct BlockInfo {
  std::uint64_t offset = 0;  // of its header, in the file
  std::uint32_t bytes = 0;   // header and payload
  std::uint32_t events = 0;
  std::int64_t min_ts_ms = 0;
  std::int64_t max_ts_ms = 0;
  std::int64_t sealed_ms = 0;  // wall clock when it was sealed: the order a replay keeps across shards
};

// Where a batch of events came from, recorded in the block that holds them
// (a PUBLISH producer's sequence, later a Kafka partition's offset).
// What a position is a place in. Stored: a value keeps its meaning for good
// (3 is what PUBLISH's positions were first written with).
enum class PositionKind : std::uint8_t { publish = 3 };

struct Position {
  std::uint8_t kind = 0;     // a PositionKind
  std::uint64_t input = 0;   // the producer id (PUBLISH)
  std::uint64_t value = 0;   // the batch sequence
};

std::string encode_header(const SegmentHeader& header);
// Parses a header at the start of `bytes`; on success sets `size` to its length.
std::optional<SegmentHeader> decode_header(std::string_view bytes, std::size_t& size);

// Events of one block, column by column: a field's value lengths (LEB128;
// 0 when the event lacks the field), then its values' bytes, for each
// field in turn; then the positions. Appending costs a few copies per
// event; encode() compresses the lot.
class BlockBuilder {
 public:
  explicit BlockBuilder(std::size_t fields) : lengths_(fields), values_(fields) {}

  // values[i] is field i's JSON text, present when bit i of `present` is set.
  template <typename Text>
  void append(const Text* values, std::uint64_t present, std::int64_t ts_ms) {
    append_fields(values, present, ts_ms);
  }
  // The same with the event's stamp: the watermark its rows were judged
  // against (event time, never decreasing from one event to the next), so
  // that a replay judges them so again. A block's events have one each or
  // none.
  template <typename Text>
  void append(const Text* values, std::uint64_t present, std::int64_t ts_ms, std::int64_t stamp) {
    put_stamp(stamp);
    append_fields(values, present, ts_ms);
  }
  void add_position(const Position& p) { positions_.push_back(p); }

  std::uint32_t events() const noexcept { return events_; }
  bool empty() const noexcept { return events_ == 0 && positions_.empty(); }
  std::size_t raw_bytes() const noexcept { return raw_bytes_; }
  // Appends the block (header and compressed payload) to `out` and clears;
  // sealed_ms is the wall clock now.
  BlockInfo encode(Codec codec, int level, std::int64_t sealed_ms, std::string& out);

 private:
  static void put_length(std::string& out, std::size_t n);
  void put_stamp(std::int64_t stamp);
  template <typename Text>
  void append_fields(const Text* values, std::uint64_t present, std::int64_t ts_ms) {
    for (std::size_t f = 0; f < lengths_.size(); ++f) {
      if (((present >> f) & 1) == 0) {
        lengths_[f].push_back(0);
        continue;
      }
      put_length(lengths_[f], values[f].size);
      values_[f].append(values[f].data, values[f].size);
      raw_bytes_ += values[f].size;
    }
    min_ts_ = events_ == 0 ? ts_ms : std::min(min_ts_, ts_ms);
    max_ts_ = events_ == 0 ? ts_ms : std::max(max_ts_, ts_ms);
    ++events_;
  }

  std::vector<std::string> lengths_;
  std::vector<std::string> values_;
  std::vector<Position> positions_;
  std::string stamps_;  // the first 8 bytes, then each next one's LEB128 difference
  std::uint32_t stamped_ = 0;
  std::int64_t last_stamp_ = 0;
  std::string raw_;  // scratch for encode
  std::size_t raw_bytes_ = 0;
  std::uint32_t events_ = 0;
  std::int64_t min_ts_ = 0;
  std::int64_t max_ts_ = 0;
};

// A decoded block: events[e * fields + f] is field f of event e (empty when absent).
struct Block {
  BlockInfo info;
  std::size_t fields = 0;
  std::vector<std::string_view> values;
  std::vector<Position> positions;
  std::vector<std::int64_t> stamps;  // one per event, or none (written without)
  std::string raw;  // owns what values point into
};

enum class BlockStatus : std::uint8_t { ok, truncated, bad_magic, bad_length, bad_checksum, bad_payload };
const char* block_status_name(BlockStatus status) noexcept;

// Checks the block whose header starts `bytes` (which may run past it):
// magic, lengths and checksum. On ok, `info` is filled (offset left 0).
BlockStatus check_block(std::string_view bytes, BlockInfo& info);
// Decompresses and splits a block check_block accepted.
BlockStatus decode_block(std::string_view bytes, std::size_t fields, Block& out);

// The footer (its magic, block count, one entry per block, checksum) and
// the trailer after it (the footer's offset, then kTrailerMagic): a segment
// ending in a valid trailer and footer is sealed.
std::string encode_footer(const std::vector<BlockInfo>& blocks, std::uint64_t footer_offset);
// The footer's offset, from a file's last kTrailerBytes.
std::optional<std::uint64_t> decode_trailer(std::string_view last_bytes);
// The block index, from the bytes between the footer's offset and the trailer.
std::optional<std::vector<BlockInfo>> decode_footer(std::string_view footer);

}  // namespace spate::storage
