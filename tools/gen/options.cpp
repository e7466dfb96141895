// spate-gen's option parsers: HOST:PORT endpoints and the --types list.
#include "gen/options.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "gen/event.hpp"

namespace spate::gen {

Endpoint parse_endpoint(const std::string& text, const char* option) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    throw std::runtime_error(fmt::format("{} {}: expected HOST:PORT", option, text));
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || port == 0 || port > 65535 || port_text[0] == '-' || port_text[0] == '+') {
    throw std::runtime_error(fmt::format("{} {}: bad port '{}'", option, text, port_text));
  }
  return Endpoint{host, static_cast<std::uint16_t>(port), text};
}

std::vector<std::string> split_types(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name.empty() || name.size() > kMaxTypeBytes) {
      throw std::runtime_error(fmt::format("--types: each type needs 1..{} characters", kMaxTypeBytes));
    }
    for (const char c : name) {
      if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
        throw std::runtime_error(fmt::format("--types: '{}' has a character that would need JSON escaping", name));
      }
    }
    if (std::find(out.begin(), out.end(), name) != out.end()) {
      throw std::runtime_error(fmt::format("--types: '{}' is listed twice", name));
    }
    out.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() > 255) throw std::runtime_error("--types: at most 255 types");
  return out;
}

}  // namespace spate::gen
