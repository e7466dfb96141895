// Invariants asserted loudly: SPATE_ASSERT always, SPATE_DEBUG_ASSERT for
// checks too costly for the hot path of release builds.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace spate::engine {

[[noreturn, gnu::cold]] inline void assert_failed(const char* cond, const char* why, const char* file, int line) noexcept {
  std::fprintf(stderr, "spate: invariant violated at %s:%d: %s (%s)\n", file, line, why, cond);
  std::abort();
}

}  // namespace spate::engine

#define SPATE_ASSERT(cond, why)                                                   \
  do {                                                                            \
    if (!(cond)) [[unlikely]] ::spate::engine::assert_failed(#cond, why, __FILE__, __LINE__); \
  } while (0)

#ifdef NDEBUG
#define SPATE_DEBUG_ASSERT(cond, why) ((void)0)
#else
#define SPATE_DEBUG_ASSERT(cond, why) SPATE_ASSERT(cond, why)
#endif
