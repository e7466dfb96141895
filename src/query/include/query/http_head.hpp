// The request heads the metrics endpoint reads (HTTP/1.x, GET and HEAD of
// three paths): parsed whole, once a head's empty line has come.
#pragma once

#include <cstddef>
#include <string_view>

namespace spate::query {

// A request head as the endpoint reads it: the request line and the header
// lines, without the empty line that ends them (lines end in CRLF or LF).
// Views into the head's bytes. Exposed for its tests.
struct HttpHead {
  std::string_view method;
  std::string_view target;  // as sent, query string included
  int minor_version = 1;    // HTTP/1.x
  bool keep_alive = true;   // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"
  bool has_body = false;    // Content-Length other than 0, or Transfer-Encoding
};
// false: not an HTTP/1.x request head (answered 400).
bool parse_http_head(std::string_view head, HttpHead& out);
// Where the head that starts buf ends (after its empty line), searching
// for the empty line from `from`; npos while it is not whole. head_bytes:
// the head without the empty line.
std::size_t find_http_head_end(std::string_view buf, std::size_t from, std::size_t& head_bytes);
// A status code's reason phrase ("Not Found").
const char* http_reason(int status);

}  // namespace spate::query
