// Doubles as text: exactly (the shortest text that reads back as the same
// double) for machines, and as people read them for tables.
#pragma once

#include <cstddef>

namespace spate::kernels {

// Room for either form of any double, with a ".0" appended.
inline constexpr std::size_t kNumberTextBytes = 32;

// The shortest text that parses back to exactly `v` ("0.30000000000000004",
// "1e+21"); "inf", "-inf" or "nan" when not finite. Returns the length.
std::size_t format_double_exact(double v, char* out) noexcept;

// `v` to 15 significant digits, trailing zeros dropped: any decimal of at most
// 15 digits reads back from the double nearest it, so a sum that drifted in
// its 16th or 17th digit prints as the decimal it stands for ("0.3",
// "34739.74"). A value whose exact text is no longer prints as that. Not
// exact: two doubles may print alike. Returns the length.
std::size_t format_double_readable(double v, char* out) noexcept;

}  // namespace spate::kernels
