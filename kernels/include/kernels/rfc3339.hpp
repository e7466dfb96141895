// RFC 3339 timestamps <-> epoch milliseconds, without locale or libc time
// zone look-ups (both are slow and not thread-safe in every libc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace spate::kernels {

// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)"; 't' and ' ' are
// accepted as the separator, 'z' as UTC. Fractions beyond milliseconds are
// truncated. Returns nullopt for anything else, including out-of-range fields.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text) noexcept;

// The instants RFC 3339 can write: 0000-01-01T00:00:00.000Z to
// 9999-12-31T23:59:59.999Z. Event times are held to this range, so that sums
// of an event time and a configured duration never overflow.
inline constexpr std::int64_t kRfc3339MinMs = -62167219200000;
inline constexpr std::int64_t kRfc3339MaxMs = 253402300799999;

// Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes) into out; returns the length.
std::size_t format_rfc3339_ms(std::int64_t epoch_ms, char* out) noexcept;

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace spate::kernels
