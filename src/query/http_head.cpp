// HTTP/1.x request heads as the metrics endpoint reads them; see http_head.hpp.
#include "query/http_head.hpp"

#include <algorithm>

namespace spate::query {
namespace {

bool is_tchar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_request_line(std::string_view line, HttpHead& out) {
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (out.method.empty() || !std::all_of(out.method.begin(), out.method.end(), is_tchar)) return false;
  if (out.target.empty()) return false;
  for (const char c : out.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  if (version == "HTTP/1.1") {
    out.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    out.minor_version = 0;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::size_t find_http_head_end(std::string_view buf, std::size_t from, std::size_t& head_bytes) {
  for (std::size_t p = buf.find('\n', from); p != std::string_view::npos; p = buf.find('\n', p + 1)) {
    if (p + 1 < buf.size() && buf[p + 1] == '\n') {
      head_bytes = p + 1;
      return p + 2;
    }
    if (p + 2 < buf.size() && buf[p + 1] == '\r' && buf[p + 2] == '\n') {
      head_bytes = p + 1;
      return p + 3;
    }
  }
  return std::string_view::npos;
}

const char* http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
  }
  return "Error";
}

bool parse_http_head(std::string_view head, HttpHead& out) {
  out = HttpHead{};
  bool first = true, close = false, keep_alive = false;
  std::size_t pos = 0;
  while (pos < head.size()) {
    const std::size_t nl = head.find('\n', pos);
    std::string_view line = head.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? head.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      if (!parse_request_line(line, out)) return false;
      first = false;
      continue;
    }
    // An empty line would have ended the head; a line that starts with
    // white space is an obsolete folded value (RFC 9112, 5.2): both refused.
    if (line.empty() || line.front() == ' ' || line.front() == '\t') return false;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return false;
    const std::string_view value = trim(line.substr(colon + 1));
    for (const char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
    }
    if (iequals(name, "connection")) {
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view option = trim(rest.substr(0, comma));
        close = close || iequals(option, "close");
        keep_alive = keep_alive || iequals(option, "keep-alive");
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    } else if (iequals(name, "content-length")) {
      if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return false;
      }
      out.has_body = out.has_body || value.find_first_not_of('0') != std::string_view::npos;
    } else if (iequals(name, "transfer-encoding")) {
      out.has_body = true;
    }
  }
  if (first) return false;
  out.keep_alive = !close && (out.minor_version == 1 || keep_alive);
  return true;
}

}  // namespace spate::query
