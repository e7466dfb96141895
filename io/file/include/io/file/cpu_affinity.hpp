// CPU sets and thread pinning for the one-shard-per-core runtime.
#pragma once

#include <vector>

namespace spate::io {

// The CPUs this process may run on (its affinity mask), ascending.
std::vector<int> allowed_cpus();

// Pins the calling thread to `cpu`; returns false (and leaves it unpinned) on failure.
bool pin_current_thread(int cpu) noexcept;

}  // namespace spate::io
