// A prefetch the compiler keeps: asks for the cache line at p ahead of its
// use, and never faults.
#pragma once

namespace spate::kernels {

// GCC 12 dropped __builtin_prefetch from every inlined helper of the engine
// whose only effect it was (its IPA mod-ref analysis takes such a function
// for one with no effect: -fno-ipa-modref or -fno-tree-dce keep it): the
// window, key-table and dedup prefetches the comments describe were not in
// the binary (objdump showed no prefetch in tumbling_window.cpp.o).
// An asm statement with side effects cannot be dropped.
inline void prefetch(const void* p) noexcept {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#else
  __builtin_prefetch(p);
#endif
}

}  // namespace spate::kernels
