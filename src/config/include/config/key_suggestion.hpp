// The known key an unknown config key was probably meant to be, for the
// "did you mean" of an unknown-key error.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace spate::engine {

// Edits (insert, delete, substitute, swap two neighbours) from a to b,
// ignoring ASCII case: the optimal-string-alignment distance.
std::size_t key_distance(std::string_view a, std::string_view b);

// The known key nearest to `unknown`: within max(2, length / 3) edits (and
// fewer edits than either key has characters, so two short keys that share
// nothing are not matched), or one that `unknown` (3 characters or more)
// begins. The fewest edits wins, the first listed on a tie. nullopt if none.
std::optional<std::string_view> nearest_key(std::string_view unknown, std::span<const std::string_view> known);

}  // namespace spate::engine
