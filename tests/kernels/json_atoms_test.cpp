// The strict JSON checks for what On-Demand skips.
#include <doctest/doctest.h>

#include <string>

#include "kernels/json_atoms.hpp"

using namespace spate::kernels;

namespace {

// One value and whitespace only.
bool valid_json_value(std::string_view text) {
  const char* end = text.data() + text.size();
  const char* p = skip_json_value(text.data(), end);
  while (p != nullptr && p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  return p == end;
}

}  // namespace

TEST_CASE("json atoms: a special byte is found at every position of the 8-byte steps") {
  for (std::size_t at = 0; at < 24; ++at) {
    for (const char special : {'\x01', '\x1f', '\\'}) {
      std::string body(32, 'a');
      body[at] = special;
      body += '"';
      const char* close = nullptr;
      CAPTURE(at);
      CHECK_FALSE(valid_json_string_body(body.data(), body.data() + body.size(), &close));
    }
    std::string body(at, '\xc3');  // bytes above 0x7f are not special
    body += "\"tail";
    const char* close = nullptr;
    REQUIRE(valid_json_string_body(body.data(), body.data() + body.size(), &close));
    CHECK(close == body.data() + at);
  }
  const std::string unterminated = "abc\\\"";
  const char* close = nullptr;
  CHECK_FALSE(valid_json_string_body(unterminated.data(), unterminated.data() + unterminated.size(), &close));
}

TEST_CASE("json atoms: scalars follow JSON's grammar exactly") {
  for (const char* good : {"0", "-0", "1", "-12", "1.5", "0.0", "1e5", "1E+5", "1e-05", "-0.5e10", "true", "false", "null", "7 \t\r\n"}) {
    CAPTURE(good);
    CHECK(valid_json_scalar(good));
  }
  for (const char* bad : {"", "-", "01", "-01", "1.", ".1", "1e", "1e+", "+1", "1.5.5", "0x1", "NaN", "Infinity", "tru", "nulls", "True", "1 2", " 1"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_json_scalar(bad));
  }
}

TEST_CASE("json atoms: whole values nest, and every misplaced token is found") {
  for (const char* good : {"[]", "{}", " [ 1 , [ ] , { } ] ", R"({"a":{"b":[1,"x",null,{"c":true}]}})", R"("s")", "3"}) {
    CAPTURE(good);
    CHECK(valid_json_value(good));
  }
  for (const char* bad : {"", "[", "]", "[1,]", "[,1]", "[1 2]", R"({"a"})", R"({"a":})", R"({"a":1,})", R"({1:2})",
                          R"({"a":1]})", "[1}", "[1] [2]", R"({"a":[tru]})", R"(["\x"])", "[1]]", R"({"a" "b"})"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_json_value(bad));
  }
  CHECK(valid_json_value(std::string(100000, '[') + std::string(100000, ']')));
}

TEST_CASE("json atoms: a line's escapes are read from the left, each consumed whole") {
  const auto ok = [](std::string_view s) { return valid_json_escapes(s.data(), s.data() + s.size()); };
  CHECK(ok(R"({"a":"plain"})"));
  CHECK(ok(R"({"a\"b":"x\\q","c":"\\\"","d":"\u00e9\/\b\f\n\r\t"})"));  // \\ then q is a backslash and a q
  CHECK_FALSE(ok(R"({"a":"x\q"})"));
  CHECK_FALSE(ok(R"({"a":"\\\q"})"));  // \\ then \q
  CHECK_FALSE(ok(R"({"a\x":1})"));
  CHECK_FALSE(ok(R"({"a":"\u00e"})"));
  CHECK_FALSE(ok("{\"a\":\"\\"));  // a backslash that ends the line
}
