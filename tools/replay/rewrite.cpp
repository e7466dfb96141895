// Per-loop rewriting of events; see rewrite.hpp.
#include "replay/rewrite.hpp"

#include <charconv>
#include <cstring>

#include "kernels/rfc3339.hpp"

namespace spate::replay {
namespace {

constexpr std::int64_t kIdLoopStep = 1000000000000;  // integer ids: loop k adds k * 10^12

// The end of the number at `at` (digits with an optional sign), or `at`
// when there is none; `value` gets it when it is an integer.
std::size_t integer_end(std::string_view s, std::size_t at, std::int64_t& value) noexcept {
  const auto r = std::from_chars(s.data() + at, s.data() + s.size(), value);
  if (r.ec != std::errc()) return at;
  const std::size_t end = static_cast<std::size_t>(r.ptr - s.data());
  if (end < s.size() && (s[end] == '.' || s[end] == 'e' || s[end] == 'E')) return at;  // not an integer
  return end;
}

// The closing quote of the string whose opening quote is at `at`, or npos.
std::size_t string_end(std::string_view s, std::size_t at) noexcept {
  for (std::size_t i = at + 1; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '"') return i;
  }
  return std::string_view::npos;
}

}  // namespace

Rewriter::Rewriter(std::string ts_field, std::string id_field)
    : ts_key_('"' + ts_field + '"'), id_key_('"' + id_field + '"') {}

std::size_t Rewriter::value_at(std::string_view line, std::string_view key) const noexcept {
  for (std::size_t at = line.find(key); at != std::string_view::npos; at = line.find(key, at + 1)) {
    std::size_t i = at + key.size();
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size() || line[i] != ':') continue;  // the text of a value, not a key
    ++i;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    return i;
  }
  return std::string_view::npos;
}

void Rewriter::span(std::string_view ndjson, std::int64_t& lo, std::int64_t& hi) const {
  for (std::size_t at = 0; at < ndjson.size();) {
    std::size_t nl = ndjson.find('\n', at);
    if (nl == std::string_view::npos) nl = ndjson.size();
    const std::string_view line = ndjson.substr(at, nl - at);
    at = nl + 1;
    const std::size_t v = value_at(line, ts_key_);
    if (v == std::string_view::npos) continue;
    std::int64_t ts = 0;
    if (line[v] == '"') {
      const std::size_t end = string_end(line, v);
      if (end == std::string_view::npos) continue;
      const auto parsed = kernels::parse_rfc3339_ms(line.substr(v + 1, end - v - 1));
      if (!parsed) continue;
      ts = *parsed;
    } else if (integer_end(line, v, ts) == v) {
      continue;
    }
    lo = std::min(lo, ts);
    hi = std::max(hi, ts);
  }
}

void Rewriter::rewrite(std::string_view ndjson, std::string& out) const {
  for (std::size_t at = 0; at < ndjson.size();) {
    std::size_t nl = ndjson.find('\n', at);
    if (nl == std::string_view::npos) nl = ndjson.size() - 1;
    line(ndjson.substr(at, nl + 1 - at), out);
    at = nl + 1;
  }
}

// A value rewritten keeps its type and its form: a number stays a number,
// an RFC 3339 time a time (as UTC with milliseconds), a string id a string.
void Rewriter::line(std::string_view line, std::string& out) const {
  struct Edit {
    std::size_t from = std::string_view::npos, to = 0;
    std::string text;
  } edits[2];
  if (shift_) {
    const std::size_t v = value_at(line, ts_key_);
    if (v != std::string_view::npos) {
      std::int64_t ts = 0;
      if (line[v] == '"') {
        const std::size_t end = string_end(line, v);
        const auto parsed = end == std::string_view::npos ? std::nullopt
                                                          : kernels::parse_rfc3339_ms(line.substr(v + 1, end - v - 1));
        if (parsed) {
          char text[40];
          const std::size_t n = kernels::format_rfc3339_ms(*parsed + shift_ms_, text);
          edits[0].from = v;
          edits[0].to = end + 1;
          edits[0].text.assign(1, '"').append(text, n).push_back('"');
        }
      } else if (const std::size_t end = integer_end(line, v, ts); end != v) {
        edits[0].from = v;
        edits[0].to = end;
        edits[0].text = std::to_string(ts + shift_ms_);
      }
    }
  }
  if (fresh_) {
    const std::size_t v = value_at(line, id_key_);
    if (v != std::string_view::npos) {
      std::int64_t id = 0;
      if (line[v] == '"') {
        if (const std::size_t end = string_end(line, v); end != std::string_view::npos) {
          edits[1].from = edits[1].to = end;  // before the closing quote
          edits[1].text.assign(1, '~').append(std::to_string(loop_));
        }
      } else if (const std::size_t end = integer_end(line, v, id); end != v) {
        edits[1].from = v;
        edits[1].to = end;
        edits[1].text = std::to_string(id + static_cast<std::int64_t>(loop_) * kIdLoopStep);
      }
    }
  }
  if (edits[0].from > edits[1].from) std::swap(edits[0], edits[1]);
  std::size_t at = 0;
  for (const Edit& e : edits) {
    if (e.from == std::string_view::npos) continue;
    out.append(line.substr(at, e.from - at));
    out.append(e.text);
    at = e.to;
  }
  out.append(line.substr(at));
}

}  // namespace spate::replay
