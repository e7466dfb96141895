// Encoding and decoding of segment headers, blocks and footers; see
// segment_format.hpp and docs/storage.md.
#include "storage/segment_format.hpp"

#include <algorithm>
#include <cstring>

#include <lz4.h>
#include <zstd.h>

#include "kernels/assert.hpp"
#include "kernels/hash.hpp"

namespace spate::storage {
namespace {

// Little-endian fields (the format's byte order; the hosts spate runs on are
// little-endian, so these are plain copies).
template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

template <typename T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// A bounds-checked reader over a byte range.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  template <typename T>
  bool read(T& v) {
    if (static_cast<std::size_t>(end_ - p_) < sizeof(T)) return false;
    v = get<T>(p_);
    p_ += sizeof(T);
    return true;
  }
  bool take(std::size_t n, std::string_view& out) {
    if (static_cast<std::size_t>(end_ - p_) < n) return false;
    out = {p_, n};
    p_ += n;
    return true;
  }
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const auto b = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  std::size_t consumed(const char* begin) const noexcept { return static_cast<std::size_t>(p_ - begin); }
  bool at_end() const noexcept { return p_ == end_; }
  std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }

 private:
  const char* p_;
  const char* end_;
};

std::uint64_t block_checksum(const char* header, const char* payload, std::size_t payload_len) {
  return XXH3_64bits_withSeed(payload, payload_len, XXH3_64bits(header, kBlockChecksumOffset));
}

}  // namespace

const char* codec_name(Codec codec) noexcept {
  switch (codec) {
    case Codec::none: return "none";
    case Codec::lz4: return "lz4";
    case Codec::zstd: return "zstd";
  }
  return "?";
}

std::optional<Codec> codec_from_name(std::string_view name) noexcept {
  for (Codec c : {Codec::none, Codec::lz4, Codec::zstd}) {
    if (name == codec_name(c)) return c;
  }
  return std::nullopt;
}

const char* block_status_name(BlockStatus status) noexcept {
  switch (status) {
    case BlockStatus::ok: return "ok";
    case BlockStatus::truncated: return "truncated";
    case BlockStatus::bad_magic: return "bad magic";
    case BlockStatus::bad_length: return "impossible length";
    case BlockStatus::bad_checksum: return "checksum mismatch";
    case BlockStatus::bad_payload: return "payload does not decode";
  }
  return "?";
}

// ---------------------------------------------------------------- header

std::string encode_header(const SegmentHeader& h) {
  std::string out(kHeaderMagic, sizeof(kHeaderMagic));
  put<std::uint16_t>(out, kFormatVersion);
  put<std::uint16_t>(out, 0);  // header length, set below
  put<std::uint32_t>(out, h.shard);
  put<std::uint32_t>(out, h.shards);
  put<std::uint32_t>(out, 0);
  put<std::int64_t>(out, h.created_ms);
  put<std::uint64_t>(out, h.sequence);
  put<std::uint16_t>(out, static_cast<std::uint16_t>(h.fields.size()));
  for (const auto& f : h.fields) {
    put<std::uint16_t>(out, static_cast<std::uint16_t>(f.size()));
    out += f;
  }
  const auto total = static_cast<std::uint16_t>(out.size() + sizeof(std::uint64_t));
  std::memcpy(out.data() + 10, &total, sizeof(total));
  put<std::uint64_t>(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

std::optional<SegmentHeader> decode_header(std::string_view bytes, std::size_t& size) {
  Reader r(bytes);
  std::string_view magic;
  std::uint16_t version = 0, total = 0, nfields = 0;
  std::uint32_t reserved = 0;
  SegmentHeader h;
  if (!r.take(sizeof(kHeaderMagic), magic) || std::memcmp(magic.data(), kHeaderMagic, sizeof(kHeaderMagic)) != 0 ||
      !r.read(version) || version != kFormatVersion || !r.read(total) || total > bytes.size() || total < 50 ||
      !r.read(h.shard) || !r.read(h.shards) || !r.read(reserved) || !r.read(h.created_ms) || !r.read(h.sequence) ||
      !r.read(nfields) || nfields > kMaxFields) {
    return std::nullopt;
  }
  if (XXH3_64bits(bytes.data(), total - sizeof(std::uint64_t)) != get<std::uint64_t>(bytes.data() + total - 8)) {
    return std::nullopt;
  }
  Reader fields(bytes.substr(0, total - sizeof(std::uint64_t)));
  std::string_view skip;
  fields.take(r.consumed(bytes.data()), skip);
  for (std::uint16_t i = 0; i < nfields; ++i) {
    std::uint16_t len = 0;
    std::string_view name;
    if (!fields.read(len) || !fields.take(len, name)) return std::nullopt;
    h.fields.emplace_back(name);
  }
  if (!fields.at_end()) return std::nullopt;
  size = total;
  return h;
}

// ---------------------------------------------------------------- blocks

void BlockBuilder::put_length(std::string& out, std::size_t n) {
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
}

void BlockBuilder::put_stamp(std::int64_t stamp) {
  if (stamped_ == 0) {
    put<std::int64_t>(stamps_, stamp);
  } else {  // never negative; a wrapped difference would still decode exactly
    put_length(stamps_, static_cast<std::uint64_t>(stamp) - static_cast<std::uint64_t>(last_stamp_));
  }
  last_stamp_ = stamp;
  ++stamped_;
}

BlockInfo BlockBuilder::encode(Codec codec, int level, std::int64_t sealed_ms, std::string& out) {
  raw_.clear();
  for (std::size_t f = 0; f < lengths_.size(); ++f) {
    put<std::uint32_t>(raw_, static_cast<std::uint32_t>(lengths_[f].size()));
    raw_ += lengths_[f];
    put<std::uint32_t>(raw_, static_cast<std::uint32_t>(values_[f].size()));
    raw_ += values_[f];
    lengths_[f].clear();
    values_[f].clear();
  }
  put<std::uint32_t>(raw_, static_cast<std::uint32_t>(positions_.size()));
  for (const Position& p : positions_) {
    put<std::uint8_t>(raw_, p.kind);
    put<std::uint64_t>(raw_, p.input);
    put<std::uint64_t>(raw_, p.value);
  }
  SPATE_ASSERT(stamped_ == 0 || stamped_ == events_, "a block's events have a stamp each or none");
  const bool stamped = stamped_ != 0;
  raw_ += stamps_;
  stamps_.clear();
  stamped_ = 0;

  BlockInfo info;
  info.events = events_;
  info.min_ts_ms = min_ts_;
  info.max_ts_ms = max_ts_;
  info.sealed_ms = sealed_ms;
  const std::size_t header_at = out.size();
  out.resize(header_at + kBlockHeaderBytes);
  std::size_t stored = 0;
  switch (codec) {
    case Codec::none:
      out += raw_;
      stored = raw_.size();
      break;
    case Codec::lz4: {
      const int bound = LZ4_compressBound(static_cast<int>(raw_.size()));
      out.resize(header_at + kBlockHeaderBytes + static_cast<std::size_t>(bound));
      stored = static_cast<std::size_t>(LZ4_compress_fast(raw_.data(), out.data() + header_at + kBlockHeaderBytes,
                                                          static_cast<int>(raw_.size()), bound, std::max(level, 1)));
      break;
    }
    case Codec::zstd: {
      const std::size_t bound = ZSTD_compressBound(raw_.size());
      out.resize(header_at + kBlockHeaderBytes + bound);
      stored = ZSTD_compress(out.data() + header_at + kBlockHeaderBytes, bound, raw_.data(), raw_.size(), level);
      if (ZSTD_isError(stored) != 0) stored = 0;
      break;
    }
  }
  if (stored == 0 && !raw_.empty()) {  // cannot happen with a large enough bound; store it plain then
    codec = Codec::none;
    out.resize(header_at + kBlockHeaderBytes);
    out += raw_;
    stored = raw_.size();
  }
  out.resize(header_at + kBlockHeaderBytes + stored);
  std::string head;
  put<std::uint32_t>(head, kBlockMagic);
  put<std::uint32_t>(head, static_cast<std::uint32_t>(stored));
  put<std::uint32_t>(head, static_cast<std::uint32_t>(raw_.size()));
  put<std::uint32_t>(head, events_);
  put<std::int64_t>(head, min_ts_);
  put<std::int64_t>(head, max_ts_);
  put<std::uint8_t>(head, static_cast<std::uint8_t>(codec));
  put<std::uint8_t>(head, stamped ? kBlockHasStamps : 0);
  head.append(2, '\0');
  put<std::uint32_t>(head, static_cast<std::uint32_t>(positions_.size()));
  put<std::int64_t>(head, sealed_ms);
  put<std::uint64_t>(head, block_checksum(head.data(), out.data() + header_at + kBlockHeaderBytes, stored));
  std::memcpy(out.data() + header_at, head.data(), kBlockHeaderBytes);
  info.bytes = static_cast<std::uint32_t>(kBlockHeaderBytes + stored);

  positions_.clear();
  raw_bytes_ = 0;
  events_ = 0;
  return info;
}

BlockStatus check_block(std::string_view bytes, BlockInfo& info) {
  if (bytes.size() < kBlockHeaderBytes) return BlockStatus::truncated;
  const char* h = bytes.data();
  if (get<std::uint32_t>(h) != kBlockMagic) return BlockStatus::bad_magic;
  const auto stored = get<std::uint32_t>(h + 4);
  const auto raw = get<std::uint32_t>(h + 8);
  // Every payload holds at least its 4-byte position count, so 0 is no block.
  if (stored == 0 || raw < 4 || stored > kMaxBlockBytes || raw > kMaxBlockBytes || static_cast<std::uint8_t>(h[32]) > 2) {
    return BlockStatus::bad_length;
  }
  if (bytes.size() < kBlockHeaderBytes + stored) return BlockStatus::truncated;
  if (block_checksum(h, h + kBlockHeaderBytes, stored) != get<std::uint64_t>(h + kBlockChecksumOffset)) {
    return BlockStatus::bad_checksum;
  }
  info.bytes = static_cast<std::uint32_t>(kBlockHeaderBytes + stored);
  info.events = get<std::uint32_t>(h + 12);
  info.min_ts_ms = get<std::int64_t>(h + 16);
  info.max_ts_ms = get<std::int64_t>(h + 24);
  info.sealed_ms = get<std::int64_t>(h + 40);
  return BlockStatus::ok;
}

BlockStatus decode_block(std::string_view bytes, std::size_t fields, Block& out) {
  const BlockStatus status = check_block(bytes, out.info);
  if (status != BlockStatus::ok) return status;
  const char* h = bytes.data();
  const auto stored = get<std::uint32_t>(h + 4);
  const auto raw = get<std::uint32_t>(h + 8);
  const auto codec = static_cast<Codec>(h[32]);
  const char* payload = h + kBlockHeaderBytes;
  out.raw.resize(raw);
  switch (codec) {
    case Codec::none:
      if (stored != raw) return BlockStatus::bad_payload;
      std::memcpy(out.raw.data(), payload, raw);
      break;
    case Codec::lz4:
      if (LZ4_decompress_safe(payload, out.raw.data(), static_cast<int>(stored), static_cast<int>(raw)) !=
          static_cast<int>(raw)) {
        return BlockStatus::bad_payload;
      }
      break;
    case Codec::zstd:
      if (ZSTD_decompress(out.raw.data(), raw, payload, stored) != raw) return BlockStatus::bad_payload;
      break;
  }
  const std::uint32_t events = out.info.events;
  // Each field of each event takes at least one length byte: a count the
  // payload cannot hold is refused before anything is sized by it.
  if (fields > 0 && events > raw / fields) return BlockStatus::bad_payload;
  out.fields = fields;
  out.values.assign(static_cast<std::size_t>(events) * fields, {});
  out.positions.clear();
  Reader r(out.raw);
  for (std::size_t f = 0; f < fields; ++f) {
    std::uint32_t nlen = 0, nval = 0;
    std::string_view lengths, values;
    if (!r.read(nlen) || !r.take(nlen, lengths) || !r.read(nval) || !r.take(nval, values)) {
      return BlockStatus::bad_payload;
    }
    std::size_t li = 0, vi = 0;
    for (std::uint32_t e = 0; e < events; ++e) {
      std::uint64_t n = 0;
      for (int shift = 0;; shift += 7) {
        if (li == lengths.size() || shift > 28) return BlockStatus::bad_payload;
        const auto b = static_cast<std::uint8_t>(lengths[li++]);
        n |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) break;
      }
      if (n > values.size() - vi) return BlockStatus::bad_payload;
      out.values[static_cast<std::size_t>(e) * fields + f] = values.substr(vi, n);
      vi += n;
    }
    if (li != lengths.size() || vi != values.size()) return BlockStatus::bad_payload;
  }
  std::uint32_t npos = 0;
  if (!r.read(npos)) return BlockStatus::bad_payload;
  for (std::uint32_t i = 0; i < npos; ++i) {
    Position p;
    if (!r.read(p.kind) || !r.read(p.input) || !r.read(p.value)) return BlockStatus::bad_payload;
    out.positions.push_back(p);
  }
  out.stamps.clear();
  if ((static_cast<std::uint8_t>(h[33]) & kBlockHasStamps) != 0 && events > 0) {
    std::int64_t stamp = 0;
    // Each stamp after the first takes a byte at least: a count the payload
    // cannot hold is refused before anything is sized by it.
    if (!r.read(stamp) || events - 1 > r.left()) return BlockStatus::bad_payload;
    out.stamps.reserve(events);
    out.stamps.push_back(stamp);
    for (std::uint32_t e = 1; e < events; ++e) {
      std::uint64_t d = 0;
      if (!r.varint(d)) return BlockStatus::bad_payload;
      stamp = static_cast<std::int64_t>(static_cast<std::uint64_t>(stamp) + d);
      out.stamps.push_back(stamp);
    }
  }
  return r.at_end() ? BlockStatus::ok : BlockStatus::bad_payload;
}

// ---------------------------------------------------------------- footer

std::string encode_footer(const std::vector<BlockInfo>& blocks, std::uint64_t footer_offset) {
  std::string out;
  put<std::uint32_t>(out, kFooterMagic);
  put<std::uint32_t>(out, static_cast<std::uint32_t>(blocks.size()));
  for (const BlockInfo& b : blocks) {
    put<std::uint64_t>(out, b.offset);
    put<std::uint32_t>(out, b.bytes);
    put<std::uint32_t>(out, b.events);
    put<std::int64_t>(out, b.min_ts_ms);
    put<std::int64_t>(out, b.max_ts_ms);
  }
  put<std::uint64_t>(out, XXH3_64bits(out.data(), out.size()));
  put<std::uint64_t>(out, footer_offset);
  out.append(kTrailerMagic, sizeof(kTrailerMagic));
  return out;
}

std::optional<std::uint64_t> decode_trailer(std::string_view last) {
  if (last.size() != kTrailerBytes || std::memcmp(last.data() + 8, kTrailerMagic, sizeof(kTrailerMagic)) != 0) {
    return std::nullopt;
  }
  return get<std::uint64_t>(last.data());
}

std::optional<std::vector<BlockInfo>> decode_footer(std::string_view footer) {
  if (footer.size() < 16) return std::nullopt;
  const std::size_t body = footer.size() - sizeof(std::uint64_t);
  if (XXH3_64bits(footer.data(), body) != get<std::uint64_t>(footer.data() + body)) return std::nullopt;
  Reader r(footer.substr(0, body));
  std::uint32_t magic = 0, n = 0;
  if (!r.read(magic) || magic != kFooterMagic || !r.read(n) || body != 8 + static_cast<std::size_t>(n) * kFooterEntryBytes) {
    return std::nullopt;
  }
  std::vector<BlockInfo> blocks(n);
  for (BlockInfo& b : blocks) {
    r.read(b.offset);
    r.read(b.bytes);
    r.read(b.events);
    r.read(b.min_ts_ms);
    r.read(b.max_ts_ms);
  }
  return blocks;
}

}  // namespace spate::storage
