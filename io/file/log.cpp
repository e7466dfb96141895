// Structured log lines; see log.hpp.
#include "io/file/log.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>

#include "io/file/source.hpp"
#include "kernels/json_escape.hpp"
#include "kernels/rfc3339.hpp"

namespace spate::io {
namespace {

std::atomic<LogFormat> g_format{LogFormat::logfmt};
std::atomic<LogLevel> g_level{LogLevel::info};
std::array<std::atomic<std::uint64_t>, kLogLevels> g_lines{};

constexpr std::array<const char*, kLogLevels> kLevelNames = {"debug", "info", "warn", "error"};

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

// logfmt leaves a value bare unless a reader could split it or misread it.
bool needs_quotes(std::string_view text) {
  if (text.empty()) return true;
  for (const char c : text) {
    if (c == ' ' || c == '=' || c == '"' || is_control(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

void append_string(std::string& out, LogFormat format, std::string_view text) {
  const bool cut = text.size() > kLogMaxValueBytes;
  if (cut) text = text.substr(0, kLogMaxValueBytes);
  if (format == LogFormat::logfmt && !cut && !needs_quotes(text)) {
    out += text;
    return;
  }
  out += '"';
  kernels::append_json_escaped(out, text);  // quoted logfmt values too
  if (cut) out += "...";
  out += '"';
}

template <typename Number>
void append_number(std::string& out, Number value) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, r.ptr);
}

void append_value(std::string& out, LogFormat format, const LogField& f) {
  switch (f.kind) {
    case LogField::Kind::string: append_string(out, format, f.text); break;
    case LogField::Kind::int64: append_number(out, f.i64); break;
    case LogField::Kind::uint64: append_number(out, f.u64); break;
    case LogField::Kind::boolean: out += f.boolean ? "true" : "false"; break;
    case LogField::Kind::real:
      if (std::isfinite(f.real)) append_number(out, f.real);
      else if (format == LogFormat::json) out += "null";  // JSON has no NaN or infinity
      else out += std::isnan(f.real) ? "NaN" : (f.real > 0 ? "+Inf" : "-Inf");
      break;
  }
}

void append_key(std::string& out, LogFormat format, std::string_view key) {
  if (format == LogFormat::json) {
    out += ",\"";
    kernels::append_json_escaped(out, key);
    out += "\":";
  } else {
    out += ' ';
    out += key;  // keys are the code's own identifiers
    out += '=';
  }
}

}  // namespace

void set_log_format(LogFormat format) noexcept { g_format.store(format, std::memory_order_relaxed); }
void set_log_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }
LogFormat log_format() noexcept { return g_format.load(std::memory_order_relaxed); }
LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }
bool log_enabled(LogLevel level) noexcept { return level >= log_level(); }

bool parse_log_format(std::string_view text, LogFormat& out) noexcept {
  if (text == "logfmt") out = LogFormat::logfmt;
  else if (text == "json") out = LogFormat::json;
  else return false;
  return true;
}

bool parse_log_level(std::string_view text, LogLevel& out) noexcept {
  for (std::size_t i = 0; i < kLogLevels; ++i) {
    if (text == kLevelNames[i]) {
      out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

const char* log_level_name(LogLevel level) noexcept {
  const auto i = static_cast<std::size_t>(level);
  return i < kLogLevels ? kLevelNames[i] : "?";
}

const char* log_format_name(LogFormat format) noexcept { return format == LogFormat::json ? "json" : "logfmt"; }

void format_log_line(std::string& out, LogFormat format, LogLevel level, std::int64_t wall_ms, std::string_view message,
                     std::span<const LogField> fields) {
  char ts[32];
  const std::string_view stamp(ts, kernels::format_rfc3339_ms(wall_ms, ts));
  if (format == LogFormat::json) {
    out += "{\"ts\":\"";
    out += stamp;
    out += "\",\"level\":\"";
    out += log_level_name(level);
    out += "\",\"msg\":";
    append_string(out, format, message);
  } else {
    out += "ts=";
    out += stamp;
    out += " level=";
    out += log_level_name(level);
    out += " msg=";
    append_string(out, format, message);
  }
  for (const LogField& f : fields) {
    append_key(out, format, f.key);
    append_value(out, format, f);
  }
  out += format == LogFormat::json ? "}\n" : "\n";
}

void log(LogLevel level, std::string_view message, std::span<const LogField> fields) noexcept {
  if (!log_enabled(level)) return;
  const int saved_errno = errno;  // a caller may log between a failure and reading errno
  try {
    // One buffer per thread, kept: after its first lines a line costs no allocation.
    thread_local std::string line;
    line.clear();
    format_log_line(line, log_format(), level, wall_ms(), message, fields);
    // One write: the kernel keeps a write to a pipe of up to PIPE_BUF (4 KiB)
    // bytes whole, and one to a file opened O_APPEND; a short write (a
    // longer line to a full pipe) goes on where it stopped.
    for (std::size_t done = 0; done < line.size();) {
      const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    g_lines[static_cast<std::size_t>(level) % kLogLevels].fetch_add(1, std::memory_order_relaxed);
  } catch (...) {  // out of memory: the line is lost, the caller carries on
  }
  errno = saved_errno;
}

std::uint64_t log_lines(LogLevel level) noexcept {
  return g_lines[static_cast<std::size_t>(level) % kLogLevels].load(std::memory_order_relaxed);
}

}  // namespace spate::io
