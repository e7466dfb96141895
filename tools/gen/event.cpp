// The clickstream event of spate-gen: the fmt-built objects of hostile lines, and amounts as an
// engine reads them.
#include "gen/event.hpp"

#include <cstdlib>
#include <iterator>

#include <fmt/format.h>

namespace spate::gen {

void append_fields(std::string& s, const Event& e, std::string_view type, int omit, int wrong) {
  auto out = std::back_inserter(s);
  s.push_back('{');
  bool first = true;
  auto sep = [&] {
    if (!first) s.push_back(',');
    first = false;
  };
  if (omit != 0) {
    sep();
    fmt::format_to(out, "\"id\":\"h{:011}\"", e.id);
  }
  if (omit != 1) {
    sep();
    if (wrong == 2) {
      s.append("\"ts\":true");
    } else if (wrong == 4) {
      s.append("\"ts\":\"not-a-date\"");
    } else if (wrong == 5) {
      s.append("\"ts\":\"2025-13-45T99:00:00Z\"");
    } else {
      fmt::format_to(out, "\"ts\":{}", e.ts);
    }
  }
  if (omit != 2) {
    sep();
    if (wrong == 1) {
      fmt::format_to(out, "\"user\":{}", e.user);
    } else {
      fmt::format_to(out, "\"user\":\"u{}\"", e.user);
    }
  }
  if (omit != 3) {
    sep();
    if (wrong == 3) {
      fmt::format_to(out, "\"type\":{}", e.type + 7);
    } else {
      fmt::format_to(out, "\"type\":\"{}\"", type);
    }
  }
  if (omit != 4) {
    sep();
    if (wrong == 0) {
      fmt::format_to(out, "\"amount\":\"{}.{:02}\"", e.cents / 100, e.cents % 100);
    } else {
      fmt::format_to(out, "\"amount\":{}.{:02}", e.cents / 100, e.cents % 100);
    }
  }
  sep();
  fmt::format_to(out, "\"session\":\"s{:06x}\",\"page\":\"/p/{}/{}\",\"ua\":\"{}\"}}", e.session, e.page,
                 kPageKinds[e.type % kPageKinds.size()], kUserAgents[e.user % kUserAgents.size()]);
}

double printed_amount(std::uint32_t cents) {
  char buf[16];
  *put_cents(buf, cents) = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace spate::gen
