// The scalar reference and the dispatch; see find_byte.hpp.
#include "kernels/find_byte.hpp"

#include <cstdlib>
#include <iterator>

namespace spate::kernels {

const char* find_byte_scalar(const char* p, const char* end, char byte) noexcept {
  while (p < end && *p != byte) ++p;
  return p;
}

namespace detail {
FindByteFn find_byte_impl = find_byte_scalar;  // until the start-up pick below runs
}

namespace {

struct Variant {
  std::string_view name;
  FindByteFn fn;
  bool (*supported)();
};

// Best first. A variant compiled out of this build (not x86-64) is never supported.
const Variant kVariants[] = {
#if defined(__x86_64__)
    {"avx512", find_byte_avx512, [] { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"); }},
    {"avx2", find_byte_avx2, [] { return static_cast<bool>(__builtin_cpu_supports("avx2")); }},
#endif
    {"scalar", find_byte_scalar, [] { return true; }},
};

const Variant* chosen = nullptr;

const Variant* pick() noexcept {
#if defined(__x86_64__)
  __builtin_cpu_init();  // this may run before libgcc's own constructor has
#endif
  if (const char* forced = std::getenv("SPATE_KERNELS")) {
    for (const Variant& v : kVariants) {
      if (v.name == forced && v.supported()) return &v;
    }
  }
  for (const Variant& v : kVariants) {
    if (v.supported()) return &v;
  }
  return &kVariants[std::size(kVariants) - 1];
}

// Picked before main() runs (and so before any shard thread exists).
[[maybe_unused]] const bool picked_at_start = [] {
  chosen = pick();
  detail::find_byte_impl = chosen->fn;
  return true;
}();

}  // namespace

std::string_view find_byte_variant() noexcept {
  if (chosen == nullptr) chosen = pick();
  return chosen->name;
}

bool use_find_byte_variant(std::string_view name) noexcept {
  for (const Variant& v : kVariants) {
    if (v.name == name && v.supported()) {
      chosen = &v;
      detail::find_byte_impl = v.fn;
      return true;
    }
  }
  return false;
}

}  // namespace spate::kernels
