// Figures a capture (pcap) and a NIC queue (dpdk) share: frames read, and
// those not delivered by why (docs/captures.md).
#pragma once

#include "engine/source_kind.hpp"

namespace spate::engine {

// Figure: the kind's own enum (io::PcapFigure, io::DpdkFigure), naming these five.
template <typename Figure>
void frame_stats(const io::SourceTotals& t, const StatEmit& emit) {
  emit("frames", t[Figure::frames], false);
  emit("frames_other", t[Figure::frames_other], false);
  emit("fragments", t[Figure::fragments], false);
  emit("truncated", t[Figure::truncated], false);
  emit("bad_checksums", t[Figure::bad_checksums], false);
}

}  // namespace spate::engine
