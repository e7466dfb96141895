// The nearest known key to an unknown one; see key_suggestion.hpp.
#include "config/key_suggestion.hpp"

#include <algorithm>
#include <vector>

namespace spate::engine {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  if (prefix.size() > text.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (lower(text[i]) != lower(prefix[i])) return false;
  }
  return true;
}

}  // namespace

std::size_t key_distance(std::string_view a, std::string_view b) {
  // Rows i-2, i-1 and i of the (|a|+1) x (|b|+1) table; keys are short.
  const std::size_t n = b.size();
  std::vector<std::size_t> before(n + 1), last(n + 1), row(n + 1);
  for (std::size_t j = 0; j <= n; ++j) last[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    row[0] = i;
    for (std::size_t j = 1; j <= n; ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      row[j] = std::min({last[j] + 1, row[j - 1] + 1, last[j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        row[j] = std::min(row[j], before[j - 2] + 1);  // two neighbours swapped
      }
    }
    std::swap(before, last);
    std::swap(last, row);
  }
  return last[n];
}

std::optional<std::string_view> nearest_key(std::string_view unknown, std::span<const std::string_view> known) {
  const std::size_t within = std::max<std::size_t>(2, unknown.size() / 3);
  std::optional<std::string_view> best;
  std::size_t best_distance = 0;
  for (const std::string_view k : known) {
    const std::size_t d = key_distance(unknown, k);
    const bool close = d <= within && d < std::min(unknown.size(), k.size());
    const bool prefix = unknown.size() >= 3 && starts_with_ignoring_case(k, unknown);
    if (!close && !prefix) continue;
    if (!best || d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  return best;
}

}  // namespace spate::engine
