// libFuzzer target: decoding request frames of the query protocol, with
// peek_frame, frame_body and FieldReader (protocol/protocol.hpp) applied to a
// connection's bytes the way QueryServer::on_readable and handle_frame apply
// them. The server's handlers themselves are private and reachable only
// through a socket; this covers the decoding under them.
//
// Input: byte 0 picks the frame limit (the server's 16 MiB, or a small one
// so that FRAME_TOO_LARGE is reachable); the rest is the byte stream.
// Checked: a complete frame lies inside the stream and its prefixes need
// more; fields lie inside their body; a body read without error
// encodes back to the same bytes (FieldWriter, begin_frame/finish_frame);
// a body read with an error really is malformed where the reader stopped.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "protocol/protocol.hpp"

namespace {

using namespace spate::query;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "protocol invariant: %s\n", what);
  std::abort();
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// Reads every field of `body` (and of nested fields, as deep as the
// protocol allows) and checks them; returns the fields encoded again.
std::string check_fields(std::string_view body, unsigned depth) {
  std::string again;
  FieldWriter w(again);
  FieldReader reader(body);
  while (const auto f = reader.next()) {
    const auto type = static_cast<unsigned>(f->type);
    require(type >= 1 && type <= 5, "a field with a wire type outside 1-5");
    switch (f->type) {
      case WireType::u64: w.u64(f->tag, f->u); break;
      case WireType::i64: w.i64(f->tag, f->as_i64()); break;
      case WireType::f64: {
        std::uint64_t bits;
        std::memcpy(&bits, &f->f, sizeof(bits));
        require(bits == f->u, "an f64 field whose value is not its bits");
        w.f64(f->tag, f->f);
        break;
      }
      case WireType::bytes:
        require(inside(f->bytes, body), "a bytes field outside its body");
        w.bytes(f->tag, f->bytes);
        break;
      case WireType::nested: {
        require(inside(f->bytes, body), "a nested field outside its body");
        // The content is checked on its own; the field itself is copied as
        // is, since a malformed content is still a well-formed field.
        if (depth + 1 < kMaxNestingDepth) check_fields(f->bytes, depth + 1);
        const auto mark = w.begin_nested(f->tag);
        again.append(f->bytes);
        w.end_nested(mark);
        break;
      }
    }
  }
  require(!reader.next(), "a reader that goes on after its end or an error");
  if (!reader.error()) {
    require(again == body, "fields read without error do not encode back to their bytes");
    return again;
  }
  // The fields before the error were whole; what follows is not a field.
  require(again.size() < body.size() && body.substr(0, again.size()) == again, "an error before the end of the fields");
  const std::string_view rest = body.substr(again.size());
  if (rest.size() >= kFieldHeaderBytes) {
    const auto type = static_cast<unsigned char>(rest[2]);
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(static_cast<unsigned char>(rest[3 + i])) << (8 * i);
    const bool fixed = type >= 1 && type <= 3;
    require(type < 1 || type > 5 || len > rest.size() - kFieldHeaderBytes || (fixed && len != 8),
            "an error at a well-formed field");
  }
  return again;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint32_t max_frame = (data[0] & 1) != 0 ? kDefaultMaxFrameBytes : 8u + data[0];
  // A copy of exactly the stream's size, so that ASan sees any read past it.
  const std::string stream(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t pos = 0;
  while (true) {
    const std::string_view rest = std::string_view(stream).substr(pos);
    FrameHeader h;
    const FrameParse r = peek_frame(rest, max_frame, h);
    if (r == FrameParse::need_more) {
      require(rest.size() < kFrameHeaderBytes || rest.size() - 4 < h.length, "need_more with a whole frame at hand");
      break;
    }
    if (r == FrameParse::too_large) {
      require(h.length > max_frame, "too_large for a frame within the limit");
      break;
    }
    if (r == FrameParse::malformed) {
      require(h.length < kFrameHeaderBytes - 4, "malformed for a length of at least 8");
      break;
    }
    const std::size_t total = 4 + static_cast<std::size_t>(h.length);
    require(h.length >= kFrameHeaderBytes - 4 && h.length <= max_frame && total <= rest.size(),
            "a complete frame that does not fit");
    // A connection may deliver the frame in pieces: no prefix of it is a frame.
    // Checked for the header's prefixes and the longest one.
    for (std::size_t p = 0; p < total; ++p) {
      if (p > kFrameHeaderBytes && p + 1 < total) p = total - 1;
      FrameHeader ph;
      require(peek_frame(rest.substr(0, p), max_frame, ph) == FrameParse::need_more, "a frame's prefix is not need_more");
    }
    const std::string_view body = frame_body(rest, h);
    require(body.data() == rest.data() + kFrameHeaderBytes && body.size() == h.length - 8, "the body is not length - 8 bytes");
    (void)op_name(h.op);
    (void)status_name(h.status);
    std::string again;
    const auto mark = begin_frame(again, h.op, h.status, h.request_id);
    again.append(check_fields(body, 0));
    finish_frame(again, mark);
    // Bodies with an error encode back only up to it.
    FieldReader reader(body);
    while (reader.next()) {
    }
    if (!reader.error()) require(again == rest.substr(0, total), "a frame does not encode back to its bytes");
    pos += total;
  }
  return 0;
}
