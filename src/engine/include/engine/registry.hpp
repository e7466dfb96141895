// What every list of parts registered by name shares (view kinds,
// sources): finding one by its name, and naming them all for a message.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace spate::engine {

template <typename Kind>
const Kind* find_by_name(std::span<const Kind* const> kinds, std::string_view name) noexcept {
  for (const Kind* kind : kinds) {
    if (kind->name == name) return kind;
  }
  return nullptr;
}

// "a, b, c"
template <typename Kind>
std::string names_of(std::span<const Kind* const> kinds) {
  std::string names;
  for (const Kind* kind : kinds) {
    if (!names.empty()) names += ", ";
    names += kind->name;
  }
  return names;
}

}  // namespace spate::engine
