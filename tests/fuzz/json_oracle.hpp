// A slow, strict RFC 8259 reader for the fuzz targets to check the parsers
// against: it shares no code with simdjson or the engine, so a disagreement
// is a bug in one of them. It validates the whole text (UTF-8 included) and
// keeps the members of a top-level object with their raw (escaped) names.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spate::fuzz {

enum class Kind : std::uint8_t { object, array, string, number, boolean, null };

struct Member {
  std::string_view raw_name;  // between the quotes, escapes not decoded
  Kind kind;
  std::string_view raw_value;  // the value's text; for strings, between the quotes
};

struct JsonDoc {
  bool valid = false;
  // Valid JSON whose handling the RFC leaves open (lone surrogate escapes,
  // numbers past a double or an int64, exponents of more than 18 digits,
  // nesting past simdjson's depth limit): parsers may accept or refuse it.
  bool unsure = false;
  Kind kind = Kind::null;
  std::vector<Member> members;  // a top-level object's, in order
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : s_(text) {}

  JsonDoc read() {
    JsonDoc doc;
    ws();
    Kind kind;
    std::string_view raw;
    if (!value(kind, raw, 0, &doc.members)) return doc;
    ws();
    doc.valid = pos_ == s_.size();
    doc.unsure = unsure_;
    doc.kind = kind;
    return doc;
  }

 private:
  static constexpr int kMaxDepth = 1000;  // simdjson's limit is 1024 levels

  bool at_end() const { return pos_ >= s_.size(); }
  unsigned char peek() const { return static_cast<unsigned char>(s_[pos_]); }

  void ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // `members` is non-null only for the top-level value.
  bool value(Kind& kind, std::string_view& raw, int depth, std::vector<Member>* members) {
    if (at_end()) return false;
    if (depth > kMaxDepth) unsure_ = true;
    const std::size_t start = pos_;
    switch (peek()) {
      case '{': kind = Kind::object; if (!object(depth, members)) return false; break;
      case '[': kind = Kind::array; if (!array(depth)) return false; break;
      case '"': kind = Kind::string; if (!string()) return false; raw = s_.substr(start + 1, pos_ - start - 2); return true;
      case 't': kind = Kind::boolean; if (!literal("true")) return false; break;
      case 'f': kind = Kind::boolean; if (!literal("false")) return false; break;
      case 'n': kind = Kind::null; if (!literal("null")) return false; break;
      default: kind = Kind::number; if (!number()) return false; break;
    }
    raw = s_.substr(start, pos_ - start);
    return true;
  }

  bool object(int depth, std::vector<Member>* members) {
    ++pos_;
    ws();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      ws();
      if (at_end() || peek() != '"') return false;
      const std::size_t name_start = pos_ + 1;
      if (!string()) return false;
      const std::string_view name = s_.substr(name_start, pos_ - name_start - 1);
      ws();
      if (at_end() || peek() != ':') return false;
      ++pos_;
      ws();
      Member m{name, Kind::null, {}};
      if (!value(m.kind, m.raw_value, depth + 1, nullptr)) return false;
      if (members != nullptr) members->push_back(m);
      ws();
      if (at_end()) return false;
      if (peek() == '}') {
        ++pos_;
        return true;
      }
      if (peek() != ',') return false;
      ++pos_;
    }
  }

  bool array(int depth) {
    ++pos_;
    ws();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      ws();
      Kind kind;
      std::string_view raw;
      if (!value(kind, raw, depth + 1, nullptr)) return false;
      ws();
      if (at_end()) return false;
      if (peek() == ']') {
        ++pos_;
        return true;
      }
      if (peek() != ',') return false;
      ++pos_;
    }
  }

  bool hex4(unsigned& out) {
    if (pos_ + 4 > s_.size()) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') out |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') out |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') out |= static_cast<unsigned>(c - 'A' + 10);
      else return false;
    }
    return true;
  }

  // One UTF-8 sequence starting at a byte >= 0x80: well formed, shortest
  // form, no surrogates, at most U+10FFFF.
  bool utf8() {
    const unsigned char b = peek();
    int n;
    std::uint32_t cp;
    if (b >= 0xC2 && b <= 0xDF) { n = 1; cp = b & 0x1Fu; }
    else if (b >= 0xE0 && b <= 0xEF) { n = 2; cp = b & 0x0Fu; }
    else if (b >= 0xF0 && b <= 0xF4) { n = 3; cp = b & 0x07u; }
    else return false;
    ++pos_;
    for (int i = 0; i < n; ++i) {
      if (at_end() || (peek() & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (peek() & 0x3Fu);
      ++pos_;
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    return true;
  }

  bool string() {
    ++pos_;
    while (true) {
      if (at_end()) return false;
      const unsigned char c = peek();
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c >= 0x80) {
        if (!utf8()) return false;
        continue;
      }
      ++pos_;
      if (c != '\\') continue;
      if (at_end()) return false;
      const char e = s_[pos_++];
      if (e == 'u') {
        unsigned u;
        if (!hex4(u)) return false;
        if (u >= 0xDC00 && u <= 0xDFFF) unsure_ = true;  // a low surrogate alone
        if (u >= 0xD800 && u <= 0xDBFF) {
          // A high surrogate needs a low one right after it.
          unsigned low = 0;
          const std::size_t save = pos_;
          if (s_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            if (!hex4(low)) return false;
          }
          if (low < 0xDC00 || low > 0xDFFF) {
            unsure_ = true;
            pos_ = save;
          }
        }
      } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') {
        return false;
      }
    }
  }

  bool digits() {
    const std::size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ > start;
  }

  bool number() {
    const std::size_t start = pos_;
    if (!at_end() && peek() == '-') ++pos_;
    if (at_end()) return false;
    if (peek() == '0') {
      ++pos_;
    } else if (!digits()) {
      return false;
    }
    bool integer = true;
    if (!at_end() && peek() == '.') {
      ++pos_;
      integer = false;
      if (!digits()) return false;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      integer = false;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      const std::size_t exponent = pos_;
      if (!digits()) return false;
      // RFC 8259 lets parsers limit numbers; simdjson refuses exponents of
      // more digits than an int64 holds, even of 0e...
      if (pos_ - exponent > 18) unsure_ = true;
    }
    const std::string text(s_.substr(start, pos_ - start));
    if (integer) {
      errno = 0;
      // Integers past 64 bits are JSON, but how a parser takes them varies.
      const bool negative = text[0] == '-';
      if (negative) (void)std::strtoll(text.c_str(), nullptr, 10);
      else (void)std::strtoull(text.c_str(), nullptr, 10);
      if (errno == ERANGE) unsure_ = true;
    } else {
      // Past a double's range (underflow to zero or a subnormal is fine).
      if (std::isinf(std::strtod(text.c_str(), nullptr))) unsure_ = true;
    }
    return true;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  bool unsure_ = false;
};

inline void put_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the escapes of a string the reader accepted; nullopt for a lone
// surrogate, which decoders treat differently.
inline std::optional<std::string> unescape(std::string_view raw) {
  std::string out;
  const auto hex = [&](std::size_t at) { return static_cast<std::uint32_t>(std::strtoul(std::string(raw.substr(at, 4)).c_str(), nullptr, 16)); };
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out += raw[i];
      continue;
    }
    const char e = raw[++i];
    switch (e) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        std::uint32_t cp = hex(i + 1);
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return std::nullopt;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (raw.substr(i + 1, 2) != "\\u") return std::nullopt;
          const std::uint32_t low = hex(i + 3);
          if (low < 0xDC00 || low > 0xDFFF) return std::nullopt;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        }
        put_utf8(out, cp);
        break;
      }
      default: out += e; break;  // " \ /
    }
  }
  return out;
}

}  // namespace spate::fuzz
