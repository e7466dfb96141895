// Durations as spate-query's tables and watch show them to a person: in the
// unit that keeps them short, to 3 significant digits.
#pragma once

#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace spate::tools {

// µs below 1 ms, ms below 1 s, s from there: "875 µs", "1.02 ms", "12.3 ms",
// "1.07 s", "1070 s". Rounded to 3 significant digits before the unit is
// chosen, so 999.7 ms reads "1.00 s", not "1000 ms". UINT64_MAX (a
// histogram's bound past its last) is "inf".
inline std::string duration_text(std::uint64_t us) {
  if (us == UINT64_MAX) return "inf";
  if (us < 1000) return fmt::format("{} µs", us);
  std::uint64_t scale = 1;  // 10^(digits - 3): what the third significant digit counts
  for (std::uint64_t v = us; v >= 1000; v /= 10) scale *= 10;
  const std::uint64_t rounded = (us / scale + (us % scale >= scale / 2 ? 1 : 0)) * scale;
  const bool seconds = rounded >= 1000000;
  const double value = static_cast<double>(rounded) / (seconds ? 1e6 : 1e3);
  return fmt::format("{:.{}f} {}", value, value < 10 ? 2 : value < 100 ? 1 : 0, seconds ? "s" : "ms");
}

}  // namespace spate::tools
