// Query protocol v1 codec; see protocol.hpp and docs/protocol.md.
#include "protocol/protocol.hpp"

#include <fstream>

#include <cstring>

namespace spate::query {
namespace {

template <typename T>
void put_le(std::string& out, T v) {
  char buf[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) buf[i] = static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
  out.append(buf, sizeof(T));
}

template <typename T>
T get_le(const char* p) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return static_cast<T>(v);
}

void patch_u32(std::string& out, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) out[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

std::optional<std::string> read_auth_token(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string token;
  std::getline(in, token, '\n');
  if (!token.empty() && token.back() == '\r') token.pop_back();
  return token;
}

const char* op_name(Op op) noexcept {
  switch (op) {
    case Op::hello: return "HELLO";
    case Op::ping: return "PING";
    case Op::stats: return "STATS";
    case Op::view_get: return "VIEW_GET";
    case Op::view_top: return "VIEW_TOP";
    case Op::publish: return "PUBLISH";
  }
  return "UNKNOWN";
}

const char* status_name(Status status) noexcept {
  switch (status) {
    case Status::ok: return "OK";
    case Status::bad_request: return "BAD_REQUEST";
    case Status::unknown_op: return "UNKNOWN_OP";
    case Status::unknown_view: return "UNKNOWN_VIEW";
    case Status::frame_too_large: return "FRAME_TOO_LARGE";
    case Status::version_unsupported: return "VERSION_UNSUPPORTED";
    case Status::handshake_required: return "HANDSHAKE_REQUIRED";
    case Status::overloaded: return "OVERLOADED";
    case Status::internal: return "INTERNAL";
    case Status::unknown_aggregate: return "UNKNOWN_AGGREGATE";
    case Status::auth_failed: return "AUTH_FAILED";
    case Status::storage_failed: return "STORAGE_FAILED";
    case Status::disk_full: return "DISK_FULL";
  }
  return "UNKNOWN_STATUS";
}

std::optional<Field> FieldReader::next() noexcept {
  if (error_ || pos_ == data_.size()) return std::nullopt;
  if (data_.size() - pos_ < kFieldHeaderBytes) {
    error_ = true;
    return std::nullopt;
  }
  const char* p = data_.data() + pos_;
  Field f;
  f.tag = static_cast<Tag>(get_le<std::uint16_t>(p));
  const auto type = static_cast<std::uint8_t>(p[2]);
  const auto len = get_le<std::uint32_t>(p + 3);
  if (type < 1 || type > 5 || len > data_.size() - pos_ - kFieldHeaderBytes) {
    error_ = true;
    return std::nullopt;
  }
  f.type = static_cast<WireType>(type);
  const char* v = p + kFieldHeaderBytes;
  switch (f.type) {
    case WireType::u64:
    case WireType::i64:
    case WireType::f64:
      if (len != 8) {
        error_ = true;
        return std::nullopt;
      }
      f.u = get_le<std::uint64_t>(v);
      if (f.type == WireType::f64) std::memcpy(&f.f, &f.u, 8);
      break;
    case WireType::bytes:
    case WireType::nested:
      f.bytes = std::string_view(v, len);
      break;
  }
  pos_ += kFieldHeaderBytes + len;
  return f;
}

void FieldWriter::header(Tag tag, WireType type, std::uint32_t len) {
  put_le(out_, static_cast<std::uint16_t>(tag));
  out_.push_back(static_cast<char>(type));
  put_le(out_, len);
}

void FieldWriter::u64(Tag tag, std::uint64_t v) {
  header(tag, WireType::u64, 8);
  put_le(out_, v);
}

void FieldWriter::i64(Tag tag, std::int64_t v) {
  header(tag, WireType::i64, 8);
  put_le(out_, static_cast<std::uint64_t>(v));
}

void FieldWriter::f64(Tag tag, double v) {
  header(tag, WireType::f64, 8);
  std::uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_le(out_, bits);
}

void FieldWriter::bytes(Tag tag, std::string_view v) {
  header(tag, WireType::bytes, static_cast<std::uint32_t>(v.size()));
  out_.append(v);
}

std::size_t FieldWriter::begin_nested(Tag tag) {
  header(tag, WireType::nested, 0);
  return out_.size();
}

void FieldWriter::end_nested(std::size_t mark) {
  patch_u32(out_, mark - 4, static_cast<std::uint32_t>(out_.size() - mark));
}

std::size_t begin_frame(std::string& out, Op op, Status status, std::uint32_t request_id) {
  const std::size_t mark = out.size();
  put_le(out, std::uint32_t{0});
  put_le(out, static_cast<std::uint16_t>(op));
  put_le(out, static_cast<std::uint16_t>(status));
  put_le(out, request_id);
  return mark;
}

void finish_frame(std::string& out, std::size_t mark) {
  patch_u32(out, mark, static_cast<std::uint32_t>(out.size() - mark - 4));
}

FrameParse peek_frame(std::string_view buf, std::uint32_t max_frame_bytes, FrameHeader& header) noexcept {
  if (buf.size() < 4) return FrameParse::need_more;
  header.length = get_le<std::uint32_t>(buf.data());
  if (header.length < kFrameHeaderBytes - 4) return FrameParse::malformed;
  if (header.length > max_frame_bytes) return FrameParse::too_large;
  if (buf.size() < kFrameHeaderBytes) return FrameParse::need_more;
  header.op = static_cast<Op>(get_le<std::uint16_t>(buf.data() + 4));
  header.status = static_cast<Status>(get_le<std::uint16_t>(buf.data() + 6));
  header.request_id = get_le<std::uint32_t>(buf.data() + 8);
  if (buf.size() - 4 < header.length) return FrameParse::need_more;
  return FrameParse::complete;
}

}  // namespace spate::query
