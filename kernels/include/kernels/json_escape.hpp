// A JSON string's escapes (RFC 8259): what the log lines, the dead-letter
// segments and the command-line tools write. Appends to the caller's string.
#pragma once

#include <string>
#include <string_view>

namespace spate::kernels {

// `text` as the inside of a JSON string: `"` and `\` escaped, \n \r \t
// short, other control bytes and DEL as \u00XX (DEL is legal JSON, but a
// terminal showing a log would act on it); every other byte (UTF-8 or not)
// as it is.
inline void append_json_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[static_cast<unsigned char>(c) >> 4];
          out += kHex[static_cast<unsigned char>(c) & 15];
        } else {
          out += c;
        }
    }
  }
}

}  // namespace spate::kernels
