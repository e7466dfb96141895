// JSON atom checks; see json_atoms.hpp.
#include "kernels/json_atoms.hpp"

#include "kernels/find_byte.hpp"

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

namespace spate::kernels {

namespace {

bool is_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_special(unsigned char c) noexcept { return c == '"' || c == '\\' || c < 0x20; }

// A mask with the high bit set in each of x's 8 bytes that is a quote, a
// backslash or below 0x20 (the classic SWAR zero-byte tests). Bytes above
// the first flagged one may be flagged wrongly; the first one is exact.
std::uint64_t special_bytes(std::uint64_t x) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t highs = 0x8080808080808080ull;
  const auto zero_byte = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  const std::uint64_t below_space = (x - ones * 0x20) & ~x & highs;
  return zero_byte(x ^ (ones * '"')) | zero_byte(x ^ (ones * '\\')) | below_space;
}

// The escape at p (a backslash): its length, 0 when it is not one of JSON's.
std::size_t escape_length(const char* p, const char* end) noexcept {
  if (end - p < 2) return 0;
  switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
      return 2;
    case 'u':
      return end - p >= 6 && is_hex(p[2]) && is_hex(p[3]) && is_hex(p[4]) && is_hex(p[5]) ? 6 : 0;
    default:
      return 0;
  }
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

bool valid_json_escapes(const char* p, const char* end) noexcept {
  for (;;) {
    p = find_byte(p, end, '\\');
    if (p == end) return true;
    const std::size_t n = escape_length(p, end);
    if (n == 0) return false;
    p += n;
  }
}

// Most strings hold no special byte: 8 bytes a step to the closing quote.
bool valid_json_string_body(const char* p, const char* end, const char** close) noexcept {
  for (;;) {
    std::uint64_t special = 0;
    while (end - p >= 8) {
      std::uint64_t x;
      std::memcpy(&x, p, sizeof(x));
      special = special_bytes(x);
      if (special != 0) break;
      p += 8;
    }
    if (special != 0) {
      p += std::countr_zero(special) / 8;
    } else {
      while (p < end && !is_special(static_cast<unsigned char>(*p))) ++p;
      if (p == end) return false;
    }
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') {
      *close = p;
      return true;
    }
    if (c < 0x20) return false;
    const std::size_t n = escape_length(p, end);  // a backslash
    if (n == 0) return false;
    p += n;
  }
}

bool valid_json_scalar(std::string_view token) noexcept {
  while (!token.empty() && is_space(token.back())) token.remove_suffix(1);
  if (token == "true" || token == "false" || token == "null") return true;
  // number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT )
  const char* p = token.data();
  const char* const end = p + token.size();
  if (p < end && *p == '-') ++p;
  if (p == end || !is_digit(*p)) return false;
  if (*p == '0') {
    ++p;
  } else {
    while (p < end && is_digit(*p)) ++p;
  }
  if (p < end && *p == '.') {
    ++p;
    if (p == end || !is_digit(*p)) return false;
    while (p < end && is_digit(*p)) ++p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p < end && (*p == '+' || *p == '-')) ++p;
    if (p == end || !is_digit(*p)) return false;
    while (p < end && is_digit(*p)) ++p;
  }
  return p == end;
}

const char* skip_json_value(const char* p, const char* end) noexcept {
  enum class Expect { value, value_or_close, key, key_or_close, colon, after_value };
  std::string open;  // '{' or '[' per level; grows only for nested values
  Expect expect = Expect::value;
  for (;;) {
    while (p < end && is_space(*p)) ++p;
    if (expect == Expect::after_value && open.empty()) return p;
    if (p == end) return nullptr;
    const char c = *p;
    switch (expect) {
      case Expect::value_or_close:
        if (c == ']') {
          open.pop_back();
          ++p;
          expect = Expect::after_value;
          break;
        }
        [[fallthrough]];
      case Expect::value:
        if (c == '{' || c == '[') {
          open.push_back(c);
          ++p;
          expect = c == '{' ? Expect::key_or_close : Expect::value_or_close;
        } else if (c == '"') {
          const char* close = nullptr;
          if (!valid_json_string_body(p + 1, end, &close)) return nullptr;
          p = close + 1;
          expect = Expect::after_value;
        } else {
          const char* q = p;
          while (q < end && !is_space(*q) && *q != ',' && *q != ']' && *q != '}' && *q != ':' && *q != '"') ++q;
          if (!valid_json_scalar({p, static_cast<std::size_t>(q - p)})) return nullptr;
          p = q;
          expect = Expect::after_value;
        }
        break;
      case Expect::key_or_close:
        if (c == '}') {
          open.pop_back();
          ++p;
          expect = Expect::after_value;
          break;
        }
        [[fallthrough]];
      case Expect::key: {
        const char* close = nullptr;
        if (c != '"' || !valid_json_string_body(p + 1, end, &close)) return nullptr;
        p = close + 1;
        expect = Expect::colon;
        break;
      }
      case Expect::colon:
        if (c != ':') return nullptr;
        ++p;
        expect = Expect::value;
        break;
      case Expect::after_value:
        if (c == ',') {
          expect = open.back() == '{' ? Expect::key : Expect::value;
        } else if ((c == '}' && open.back() == '{') || (c == ']' && open.back() == '[')) {
          open.pop_back();
        } else {
          return nullptr;
        }
        ++p;
        break;
    }
  }
}

}  // namespace spate::kernels
