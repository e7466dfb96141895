// Unit tests of the metrics endpoint's request-head parser
// (query/metrics_server.hpp): what it reads, and what it answers 400.
#include <doctest/doctest.h>

#include <string_view>

#include "query/metrics_server.hpp"

using spate::query::HttpHead;
using spate::query::parse_http_head;

TEST_CASE("metrics endpoint: a request head gives its method, target, version and whether to keep the connection") {
  HttpHead h;
  REQUIRE(parse_http_head("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n", h));
  CHECK(h.method == "GET");
  CHECK(h.target == "/metrics");
  CHECK(h.minor_version == 1);
  CHECK(h.keep_alive);
  CHECK_FALSE(h.has_body);
  REQUIRE(parse_http_head("HEAD /healthz?verbose=1 HTTP/1.1\nconnection: Upgrade, CLOSE\n", h));  // LF alone ends a line
  CHECK(h.method == "HEAD");
  CHECK(h.target == "/healthz?verbose=1");
  CHECK_FALSE(h.keep_alive);
  REQUIRE(parse_http_head("GET /readyz HTTP/1.0\r\n", h));
  CHECK(h.minor_version == 0);
  CHECK_FALSE(h.keep_alive);  // HTTP/1.0 closes unless asked
  REQUIRE(parse_http_head("GET /readyz HTTP/1.0\r\nConnection:keep-alive\r\n", h));
  CHECK(h.keep_alive);
  REQUIRE(parse_http_head("POST /metrics HTTP/1.1\r\nContent-Length: 000\r\n", h));
  CHECK_FALSE(h.has_body);
  REQUIRE(parse_http_head("POST /metrics HTTP/1.1\r\nContent-Length: 12\r\n", h));
  CHECK(h.has_body);
  REQUIRE(parse_http_head("POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", h));
  CHECK(h.has_body);
  REQUIRE(parse_http_head("BREW /pot HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tv\t\r\n", h));  // any method is read (and answered 405)
  CHECK(h.method == "BREW");
}

TEST_CASE("metrics endpoint: a malformed request head is refused") {
  HttpHead h;
  for (const std::string_view bad : {
           "",
           "\r\n",
           "GET /metrics\r\n",                           // no version
           "GET /metrics HTTP/2.0\r\n",                  // not HTTP/1.x
           "GET /metrics http/1.1\r\n",
           "GET /metrics HTTP/1.1 \r\n",                 // trailing space
           "GET  /metrics HTTP/1.1\r\n",                 // empty target
           "GET /met\x01rics HTTP/1.1\r\n",              // control character in the target
           "G(T /metrics HTTP/1.1\r\n",                  // not a token
           " GET /metrics HTTP/1.1\r\n",
           "GET /metrics HTTP/1.1\r\nNo colon here\r\n",
           "GET /metrics HTTP/1.1\r\n: empty name\r\n",
           "GET /metrics HTTP/1.1\r\nHost : x\r\n",      // space before the colon
           "GET /metrics HTTP/1.1\r\nX: a\r\n folded\r\n",
           "GET /metrics HTTP/1.1\r\nX: a\rb\r\n",       // bare CR in a value
           "GET /metrics HTTP/1.1\r\nX: a\x7f\r\n",
           "GET /metrics HTTP/1.1\r\n\r\nHost: x\r\n",   // an empty line inside the head
           "GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n",
           "GET /metrics HTTP/1.1\r\nContent-Length: 1, 1\r\n",
       }) {
    CAPTURE(bad);
    CHECK_FALSE(parse_http_head(bad, h));
  }
}
