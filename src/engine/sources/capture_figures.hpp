// Figures a capture (pcap) and a NIC queue (dpdk) share: frames read, and
// those not delivered by why (docs/captures.md).
#pragma once

#include "engine/source_kind.hpp"

namespace spate::engine {

inline void frame_stats(const io::SourceTotals& t, const StatEmit& emit) {
  emit("frames", t.frames, false);
  emit("frames_other", t.frames_other, false);
  emit("fragments", t.fragments, false);
  emit("truncated", t.truncated, false);
  emit("bad_checksums", t.bad_checksums, false);
}

}  // namespace spate::engine
