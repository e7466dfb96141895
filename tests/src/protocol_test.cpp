// Unit tests of the query protocol codec (protocol/protocol.hpp): golden
// bytes from docs/protocol.md, round trips, and rejection of malformed input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/protocol.hpp"

namespace {

using namespace spate::query;

std::string bytes_of(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

// A field header followed by `value`, written by hand rather than by FieldWriter.
std::string raw_field(std::uint16_t tag, std::uint8_t type, std::uint32_t len, std::string_view value) {
  std::string s;
  s.push_back(static_cast<char>(tag & 0xff));
  s.push_back(static_cast<char>(tag >> 8));
  s.push_back(static_cast<char>(type));
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  s.append(value);
  return s;
}

std::string frame_with_length(std::uint32_t length, std::string_view rest) {
  std::string s;
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  s.append(rest);
  return s;
}

}  // namespace

TEST_CASE("protocol: op, status, tag and wire type numbers are those of the spec") {
  CHECK(static_cast<int>(Op::hello) == 1);
  CHECK(static_cast<int>(Op::ping) == 2);
  CHECK(static_cast<int>(Op::stats) == 3);
  CHECK(static_cast<int>(Op::view_get) == 16);
  CHECK(static_cast<int>(Op::view_top) == 17);
  CHECK(static_cast<int>(Op::publish) == 32);
  CHECK(static_cast<int>(Status::ok) == 0);
  CHECK(static_cast<int>(Status::bad_request) == 1);
  CHECK(static_cast<int>(Status::unknown_op) == 2);
  CHECK(static_cast<int>(Status::unknown_view) == 3);
  CHECK(static_cast<int>(Status::frame_too_large) == 4);
  CHECK(static_cast<int>(Status::version_unsupported) == 5);
  CHECK(static_cast<int>(Status::handshake_required) == 6);
  CHECK(static_cast<int>(Status::overloaded) == 7);
  CHECK(static_cast<int>(Status::internal) == 8);
  CHECK(static_cast<int>(Status::unknown_aggregate) == 9);
  CHECK(static_cast<int>(WireType::u64) == 1);
  CHECK(static_cast<int>(WireType::i64) == 2);
  CHECK(static_cast<int>(WireType::f64) == 3);
  CHECK(static_cast<int>(WireType::bytes) == 4);
  CHECK(static_cast<int>(WireType::nested) == 5);
  CHECK(static_cast<int>(Tag::version) == 1);
  CHECK(static_cast<int>(Tag::error) == 4);
  CHECK(static_cast<int>(Tag::row) == 18);
  CHECK(static_cast<int>(Tag::closed) == 24);
  CHECK(static_cast<int>(Tag::counter) == 32);
  CHECK(static_cast<int>(Tag::payload) == 42);
  CHECK(static_cast<int>(Tag::duplicate) == 45);
  CHECK(std::string_view(status_name(Status::unknown_aggregate)) == "UNKNOWN_AGGREGATE");
  CHECK(std::string_view(status_name(static_cast<Status>(99))) == "UNKNOWN_STATUS");
  CHECK(std::string_view(op_name(Op::view_top)) == "VIEW_TOP");
}

TEST_CASE("protocol: a HELLO request frame encodes to the golden bytes of the spec") {
  std::string out;
  const std::size_t mark = begin_frame(out, Op::hello, Status::ok, 1);
  FieldWriter w(out);
  w.u64(Tag::version, 1);
  w.bytes(Tag::client_name, "demo");
  finish_frame(out, mark);
  const std::string golden = bytes_of({0x22, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
                                       0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x05, 0x00, 0x04, 0x04, 0x00, 0x00, 0x00, 0x64, 0x65, 0x6d, 0x6f});
  CHECK(out == golden);
}

TEST_CASE("protocol: a frame appended after existing bytes patches its own length") {
  std::string out = "xy";
  const std::size_t mark = begin_frame(out, Op::ping, Status::ok, 2);
  FieldWriter(out).bytes(Tag::payload, "hi");
  finish_frame(out, mark);
  CHECK(out == "xy" + bytes_of({0x11, 0, 0, 0, 0x02, 0, 0, 0, 0x02, 0, 0, 0, 0x2a, 0, 0x04, 0x02, 0, 0, 0, 'h', 'i'}));
}

TEST_CASE("protocol: a nested field encodes to the golden bytes with its content length patched") {
  std::string out;
  FieldWriter w(out);
  const std::size_t agg = w.begin_nested(Tag::agg);
  w.bytes(Tag::name, "count");
  w.u64(Tag::value_u64, 3);
  w.end_nested(agg);
  const std::string golden = bytes_of({0x13, 0x00, 0x05, 0x1b, 0x00, 0x00, 0x00, 0x14, 0x00, 0x04, 0x05, 0x00,
                                       0x00, 0x00, 'c',  'o',  'u',  'n',  't',  0x16, 0x00, 0x01, 0x08, 0x00,
                                       0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  CHECK(out == golden);
}

TEST_CASE("protocol: a VIEW_GET response with one row encodes to the golden bytes of the spec") {
  std::string out;
  const std::size_t mark = begin_frame(out, Op::view_get, Status::ok, 3);
  FieldWriter w(out);
  const std::size_t row = w.begin_nested(Tag::row);
  w.bytes(Tag::key, "u42");
  w.i64(Tag::window_start, 60000);
  w.i64(Tag::window_end, 120000);
  w.u64(Tag::closed, 1);
  std::size_t agg = w.begin_nested(Tag::agg);
  w.bytes(Tag::name, "count");
  w.u64(Tag::value_u64, 3);
  w.end_nested(agg);
  agg = w.begin_nested(Tag::agg);
  w.bytes(Tag::name, "sum(amount)");
  w.f64(Tag::value_f64, 7.5);
  w.end_nested(agg);
  w.end_nested(row);
  finish_frame(out, mark);
  const std::string golden = bytes_of({
      0x90, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x12, 0x00, 0x05, 0x81, 0x00, 0x00,
      0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x00, 0x00, 0x75, 0x34, 0x32, 0x0e, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00,
      0x60, 0xea, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0xc0, 0xd4, 0x01,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x13, 0x00, 0x05, 0x1b, 0x00, 0x00, 0x00, 0x14, 0x00, 0x04, 0x05, 0x00, 0x00, 0x00, 0x63, 0x6f,
      0x75, 0x6e, 0x74, 0x16, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x13, 0x00, 0x05, 0x21, 0x00, 0x00, 0x00, 0x14, 0x00, 0x04, 0x0b, 0x00, 0x00, 0x00, 0x73, 0x75, 0x6d, 0x28,
      0x61, 0x6d, 0x6f, 0x75, 0x6e, 0x74, 0x29, 0x15, 0x00, 0x03, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x1e, 0x40,
  });
  CHECK(out.size() == 148);
  CHECK(out == golden);
}

TEST_CASE("protocol: every wire type round-trips through the writer and the reader") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::string body;
  FieldWriter w(body);
  w.u64(Tag::max_frame, 0);
  w.u64(Tag::max_frame, std::numeric_limits<std::uint64_t>::max());
  w.i64(Tag::from_ms, std::numeric_limits<std::int64_t>::min());
  w.i64(Tag::to_ms, -1);
  w.f64(Tag::value_f64, 7.5);
  w.f64(Tag::value_f64, -0.0);
  w.f64(Tag::value_f64, std::numeric_limits<double>::infinity());
  w.f64(Tag::value_f64, nan);
  w.bytes(Tag::key, "");
  w.bytes(Tag::key, std::string_view("a\0b\xff", 4));
  const std::size_t outer = w.begin_nested(Tag::shard);
  w.u64(Tag::shard_id, 3);
  const std::size_t inner = w.begin_nested(Tag::counter);
  w.bytes(Tag::name, "events_in");
  w.u64(Tag::value_u64, 42);
  w.end_nested(inner);
  w.end_nested(outer);
  const std::size_t empty = w.begin_nested(Tag::row);
  w.end_nested(empty);

  FieldReader r(body);
  std::vector<Field> f;
  while (auto x = r.next()) f.push_back(*x);
  CHECK_FALSE(r.error());
  REQUIRE(f.size() == 12);
  CHECK((f[0].tag == Tag::max_frame && f[0].type == WireType::u64 && f[0].u == 0));
  CHECK(f[1].u == std::numeric_limits<std::uint64_t>::max());
  CHECK((f[2].type == WireType::i64 && f[2].as_i64() == std::numeric_limits<std::int64_t>::min()));
  CHECK(f[3].as_i64() == -1);
  CHECK((f[4].type == WireType::f64 && f[4].f == 7.5));
  CHECK((f[5].f == 0.0 && std::signbit(f[5].f)));
  CHECK(f[6].f == std::numeric_limits<double>::infinity());
  CHECK(std::isnan(f[7].f));
  CHECK((f[8].type == WireType::bytes && f[8].bytes.empty()));
  CHECK(f[9].bytes == std::string_view("a\0b\xff", 4));
  REQUIRE(f[10].type == WireType::nested);
  CHECK(f[11].tag == Tag::row);
  CHECK((f[11].type == WireType::nested && f[11].bytes.empty()));

  FieldReader shard(f[10].bytes);
  auto id = shard.next();
  REQUIRE(id);
  CHECK((id->tag == Tag::shard_id && id->u == 3));
  auto counter = shard.next();
  REQUIRE(counter);
  CHECK(counter->tag == Tag::counter);
  CHECK_FALSE(shard.next());
  CHECK_FALSE(shard.error());
  FieldReader c(counter->bytes);
  auto name = c.next();
  auto value = c.next();
  REQUIRE(name);
  REQUIRE(value);
  CHECK(name->bytes == "events_in");
  CHECK(value->u == 42);
  CHECK_FALSE(c.next());
  CHECK_FALSE(c.error());
}

TEST_CASE("protocol: an empty body has no fields and no error") {
  FieldReader r(std::string_view{});
  CHECK_FALSE(r.next());
  CHECK_FALSE(r.error());
}

TEST_CASE("protocol: a truncated field header stops the reader with an error") {
  const std::string body = raw_field(1, 1, 8, std::string(8, '\0'));
  for (std::size_t cut = 1; cut < kFieldHeaderBytes; ++cut) {
    CAPTURE(cut);
    FieldReader r(std::string_view(body).substr(0, cut));
    CHECK_FALSE(r.next());
    CHECK(r.error());
  }
  // A whole field followed by a partial header: the first field is still read.
  const std::string two = body + body.substr(0, 3);
  FieldReader r(two);
  auto first = r.next();
  REQUIRE(first);
  CHECK(first->tag == Tag::version);
  CHECK_FALSE(r.next());
  CHECK(r.error());
}

TEST_CASE("protocol: a field whose length runs past the frame stops the reader with an error") {
  const std::string ok = raw_field(20, 4, 3, "abc");
  const std::string past = raw_field(11, 4, 5, "abcd");  // claims 5, has 4
  const std::string body = ok + past;
  FieldReader r(body);
  auto first = r.next();
  REQUIRE(first);
  CHECK(first->bytes == "abc");
  CHECK_FALSE(r.next());
  CHECK(r.error());
  CHECK_FALSE(r.next());  // the error sticks
  CHECK(r.error());

  const std::string huge = raw_field(18, 5, 0xffffffffu, "xxxx");
  FieldReader h(huge);
  CHECK_FALSE(h.next());
  CHECK(h.error());
}

TEST_CASE("protocol: a fixed-width field of length 7 stops the reader with an error") {
  for (std::uint8_t type : {1, 2, 3}) {
    CAPTURE(static_cast<int>(type));
    // Seven value bytes followed by one more, so only the declared length is wrong.
    const std::string body = raw_field(1, type, 7, std::string(8, '\x01'));
    FieldReader r(body);
    CHECK_FALSE(r.next());
    CHECK(r.error());
  }
  const std::string nine_body = raw_field(1, 1, 9, std::string(9, '\0'));
  FieldReader nine(nine_body);
  CHECK_FALSE(nine.next());
  CHECK(nine.error());
}

TEST_CASE("protocol: an unknown wire type stops the reader with an error") {
  for (std::uint8_t type : {0, 6, 9, 255}) {
    CAPTURE(static_cast<int>(type));
    const std::string body = raw_field(1, type, 1, "x");
    FieldReader r(body);
    CHECK_FALSE(r.next());
    CHECK(r.error());
  }
}

TEST_CASE("protocol: a reader skips a field with an unknown tag and continues to the next field") {
  std::string body;
  FieldWriter w(body);
  w.bytes(Tag::view, "clicks");
  body += raw_field(999, 4, 5, "later");
  body += raw_field(1000, 5, 9, raw_field(1, 4, 2, "zz"));  // unknown nested: not looked into
  body += raw_field(1001, 1, 8, std::string(8, '\x7f'));
  w.bytes(Tag::key, "u1");

  FieldReader r(body);
  std::vector<std::uint16_t> known;
  int unknown = 0;
  while (auto f = r.next()) {
    switch (f->tag) {
      case Tag::view:
      case Tag::key:
        known.push_back(static_cast<std::uint16_t>(f->tag));
        break;
      default:
        ++unknown;
    }
  }
  CHECK_FALSE(r.error());
  CHECK(unknown == 3);
  CHECK(known == std::vector<std::uint16_t>{10, 11});
}

TEST_CASE("protocol: peek_frame needs more bytes until the length and then the whole frame are there") {
  std::string frame;
  const std::size_t mark = begin_frame(frame, Op::ping, Status::ok, 7);
  FieldWriter(frame).bytes(Tag::payload, "hi");
  finish_frame(frame, mark);
  REQUIRE(frame.size() == 21);
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    CAPTURE(cut);
    FrameHeader h;
    CHECK(peek_frame(std::string_view(frame).substr(0, cut), kDefaultMaxFrameBytes, h) == FrameParse::need_more);
  }
}

TEST_CASE("protocol: peek_frame returns a complete frame's header and body and leaves what follows") {
  std::string buf;
  std::size_t mark = begin_frame(buf, Op::view_get, Status::unknown_view, 0xdeadbeef);
  FieldWriter(buf).bytes(Tag::error, "no");
  finish_frame(buf, mark);
  const std::size_t first_size = buf.size();
  mark = begin_frame(buf, Op::ping, Status::ok, 2);  // a second, pipelined frame
  finish_frame(buf, mark);

  FrameHeader h;
  REQUIRE(peek_frame(buf, kDefaultMaxFrameBytes, h) == FrameParse::complete);
  CHECK(h.length == 8 + 9);
  CHECK(h.op == Op::view_get);
  CHECK(h.status == Status::unknown_view);
  CHECK(h.request_id == 0xdeadbeef);
  CHECK(h.length + 4 == first_size);
  FieldReader r(frame_body(buf, h));
  auto f = r.next();
  REQUIRE(f);
  CHECK((f->tag == Tag::error && f->bytes == "no"));
  CHECK_FALSE(r.next());
  CHECK_FALSE(r.error());

  FrameHeader second;
  REQUIRE(peek_frame(std::string_view(buf).substr(first_size), kDefaultMaxFrameBytes, second) == FrameParse::complete);
  CHECK(second.length == 8);
  CHECK(second.op == Op::ping);
  CHECK(second.request_id == 2);
  CHECK(frame_body(std::string_view(buf).substr(first_size), second).empty());
}

TEST_CASE("protocol: peek_frame reports too_large from the length alone, and accepts exactly the limit") {
  FrameHeader h;
  CHECK(peek_frame(frame_with_length(101, ""), 100, h) == FrameParse::too_large);
  CHECK(h.length == 101);
  CHECK(peek_frame(frame_with_length(0xffffffffu, ""), kDefaultMaxFrameBytes, h) == FrameParse::too_large);
  CHECK(peek_frame(frame_with_length(kDefaultMaxFrameBytes + 1, std::string(8, '\0')), kDefaultMaxFrameBytes, h) ==
        FrameParse::too_large);
  CHECK(peek_frame(frame_with_length(100, std::string(8, '\0')), 100, h) == FrameParse::need_more);
  CHECK(peek_frame(frame_with_length(100, std::string(100, '\0')), 100, h) == FrameParse::complete);
}

TEST_CASE("protocol: peek_frame reports a length below the 8-byte header as malformed") {
  FrameHeader h;
  for (std::uint32_t length : {0u, 1u, 7u}) {
    CAPTURE(length);
    CHECK(peek_frame(frame_with_length(length, std::string(16, '\0')), kDefaultMaxFrameBytes, h) ==
          FrameParse::malformed);
    CHECK(peek_frame(frame_with_length(length, ""), kDefaultMaxFrameBytes, h) == FrameParse::malformed);
  }
  CHECK(peek_frame(frame_with_length(8, std::string(8, '\0')), kDefaultMaxFrameBytes, h) == FrameParse::complete);
}
