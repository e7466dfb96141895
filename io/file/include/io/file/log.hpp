// Structured log lines to stderr, logfmt or JSON lines, with levels: each
// line is formatted whole and written with one write(2), so the lines of
// different threads never interleave (docs/operations.md, "Logs").
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace spate::io {

enum class LogLevel : std::uint8_t { debug, info, warn, error };
enum class LogFormat : std::uint8_t { logfmt, json };
inline constexpr std::size_t kLogLevels = 4;

// Process-wide settings, applied once at start-up (relaxed atomics: a line
// racing a change may come out in either setting). Defaults: logfmt, info.
void set_log_format(LogFormat format) noexcept;
void set_log_level(LogLevel level) noexcept;  // lines below it are not written
LogFormat log_format() noexcept;
LogLevel log_level() noexcept;
bool log_enabled(LogLevel level) noexcept;

// "logfmt" | "json" and "debug" | "info" | "warn" | "error"; false (and `out`
// untouched) for anything else.
bool parse_log_format(std::string_view text, LogFormat& out) noexcept;
bool parse_log_level(std::string_view text, LogLevel& out) noexcept;
const char* log_level_name(LogLevel level) noexcept;
const char* log_format_name(LogFormat format) noexcept;

// One key and its value. Strings are quoted and escaped as the format needs;
// integers, doubles and booleans are written bare. It holds views: build it
// in the call, as `{"shard", id}`, `{"error", std::strerror(e)}`.
struct LogField {
  enum class Kind : std::uint8_t { string, int64, uint64, real, boolean };

  std::string_view key;
  Kind kind = Kind::string;
  std::string_view text;
  union {
    std::int64_t i64 = 0;
    std::uint64_t u64;
    double real;
    bool boolean;
  };

  LogField(std::string_view k, std::string_view v) noexcept : key(k), kind(Kind::string), text(v) {}
  LogField(std::string_view k, const char* v) noexcept : key(k), kind(Kind::string), text(v != nullptr ? v : "") {}
  LogField(std::string_view k, const std::string& v) noexcept : key(k), kind(Kind::string), text(v) {}
  template <std::signed_integral Int>
    requires(!std::same_as<Int, bool> && !std::same_as<Int, char>)
  LogField(std::string_view k, Int v) noexcept : key(k), kind(Kind::int64), i64(v) {}
  template <std::unsigned_integral Int>
    requires(!std::same_as<Int, bool> && !std::same_as<Int, char>)
  LogField(std::string_view k, Int v) noexcept : key(k), kind(Kind::uint64), u64(v) {}
  LogField(std::string_view k, double v) noexcept : key(k), kind(Kind::real), real(v) {}
  LogField(std::string_view k, bool v) noexcept : key(k), kind(Kind::boolean), boolean(v) {}
};

// Appends one whole line, "\n" included, to `out`: what log() writes, given
// the time. String values longer than kLogMaxValueBytes are cut, marked "...".
inline constexpr std::size_t kLogMaxValueBytes = 4096;
void format_log_line(std::string& out, LogFormat format, LogLevel level, std::int64_t wall_ms, std::string_view message,
                     std::span<const LogField> fields);

// Writes the line to stderr if `level` is at or above the set level. Never
// throws; a line that cannot be formatted (out of memory) is dropped.
void log(LogLevel level, std::string_view message, std::span<const LogField> fields) noexcept;
inline void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {}) noexcept {
  log(level, message, std::span<const LogField>(fields.begin(), fields.size()));
}
inline void log_debug(std::string_view message, std::initializer_list<LogField> fields = {}) noexcept {
  log(LogLevel::debug, message, fields);
}
inline void log_info(std::string_view message, std::initializer_list<LogField> fields = {}) noexcept {
  log(LogLevel::info, message, fields);
}
inline void log_warn(std::string_view message, std::initializer_list<LogField> fields = {}) noexcept {
  log(LogLevel::warn, message, fields);
}
inline void log_error(std::string_view message, std::initializer_list<LogField> fields = {}) noexcept {
  log(LogLevel::error, message, fields);
}

// Lines written at `level` since start (for the metrics).
std::uint64_t log_lines(LogLevel level) noexcept;

}  // namespace spate::io
