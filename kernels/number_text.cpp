// Doubles as text; see number_text.hpp.
#include "kernels/number_text.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

namespace spate::kernels {
namespace {

std::size_t not_finite(double v, char* out) noexcept {
  const char* text = std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  const std::size_t n = std::strlen(text);
  std::memcpy(out, text, n);
  return n;
}

}  // namespace

std::size_t format_double_exact(double v, char* out) noexcept {
  if (!std::isfinite(v)) return not_finite(v, out);
  return static_cast<std::size_t>(std::to_chars(out, out + kNumberTextBytes, v).ptr - out);
}

std::size_t format_double_readable(double v, char* out) noexcept {
  if (!std::isfinite(v)) return not_finite(v, out);
  const std::size_t exact = format_double_exact(v, out);
  char rounded[kNumberTextBytes];
  const auto r = std::to_chars(rounded, rounded + sizeof(rounded), v, std::chars_format::general, 15);
  const auto n = static_cast<std::size_t>(r.ptr - rounded);
  if (n >= exact) return exact;  // already short: keep its exact text
  std::memcpy(out, rounded, n);
  return n;
}

}  // namespace spate::kernels
