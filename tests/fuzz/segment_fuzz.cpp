// libFuzzer target: reading hot segment files (storage/segment_format.hpp
// and segment_file.hpp), as a restart reads a shard's directory: the input
// is a segment file, scanned, its good blocks decoded, its directory
// recovered; and the same bytes decoded directly (header, a block at
// offset 0 with 0, 1 and 5 fields, trailer, footer).
//
// Every step runs twice: on the input as it is, then on a copy whose
// checksums (header, the chain of blocks after it, footer) the harness has
// recomputed. A mutation almost always breaks a checksum, so without the
// second pass nothing past check_block would see mutated bytes.
// Checked: a scan's blocks lie in the file, contiguous from the header's
// end to valid_end; its events are those of its blocks; a block it found
// good reads back with the same header; decoded values are events x
// fields views inside the block's buffer; a header decodes to what encodes
// back to it; recovery keeps clean files, cuts a torn tail to a clean
// file, and moves corrupt ones aside.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "kernels/hash.hpp"
#include "storage/segment_file.hpp"
#include "storage/segment_format.hpp"

namespace {

namespace fs = std::filesystem;
using namespace spate::storage;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "segment invariant: %s\n", what);
  std::abort();
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

template <typename T>
T load(std::string_view b, std::size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

template <typename T>
void store(std::string& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// One directory per process (the pid in its name, so that parallel and
// forked fuzzers never share one), holding the input as the first segment
// of a shard. Removed at exit; a crashed process's is removed by the next
// one, since crash minimization runs hundreds of crashing processes. In
// memory when /dev/shm exists: recovery fdatasyncs every torn file it cuts,
// which took about 0.5 s per input on an ext4 /tmp (2 inputs/s instead of
// thousands).
struct Scratch {
  static constexpr std::string_view kPrefix = "spate-fuzz-segment-";
  fs::path dir;
  std::string file;
  Scratch() {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    for (const auto& entry : fs::directory_iterator(base, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) continue;
      const long pid = std::strtol(name.c_str() + kPrefix.size(), nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
    }
    dir = base / (std::string(kPrefix) + std::to_string(::getpid()));
    fs::remove_all(dir, ec);
    require(fs::create_directories(dir, ec), "cannot create the scratch directory");
    file = (dir / segment_file_name(0)).string();
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Recovery may truncate, rename or delete the file: each pass starts afresh.
  void reset() {
    std::error_code ec;
    fs::remove(file, ec);
    fs::remove(file + ".quarantined", ec);
  }
};

Scratch& scratch() {
  static Scratch s;
  return s;
}

void write_file(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  require(fd >= 0, "cannot create the scratch file");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    require(n > 0, "cannot write the scratch file");
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  require(!ec, "the scratch file is gone");
  return n;
}

// The input with every checksum it carries made right, so that the fuzzer's
// changes reach the payloads: the header's, those of the blocks that follow
// one another from the header's end (or from offset 0 without a header),
// and the footer's that the trailer points at.
std::string repaired(std::string_view in) {
  std::string out(in);
  std::size_t pos = 0;
  if (out.size() >= 12 && std::memcmp(out.data(), kHeaderMagic, sizeof(kHeaderMagic)) == 0) {
    const auto total = load<std::uint16_t>(out, 10);
    if (total < 50 || total > out.size()) return out;
    store<std::uint64_t>(out, total - 8u, XXH3_64bits(out.data(), total - 8u));
    pos = total;
  }
  while (out.size() - pos >= kBlockHeaderBytes && load<std::uint32_t>(out, pos) == kBlockMagic) {
    const auto stored = load<std::uint32_t>(out, pos + 4);
    if (stored > out.size() - pos - kBlockHeaderBytes) break;
    const std::uint64_t seed = XXH3_64bits(out.data() + pos, kBlockChecksumOffset);
    store<std::uint64_t>(out, pos + kBlockChecksumOffset,
                         XXH3_64bits_withSeed(out.data() + pos + kBlockHeaderBytes, stored, seed));
    pos += kBlockHeaderBytes + stored;
  }
  if (out.size() >= kTrailerBytes &&
      std::memcmp(out.data() + out.size() - 8, kTrailerMagic, sizeof(kTrailerMagic)) == 0) {
    const auto at = load<std::uint64_t>(out, out.size() - kTrailerBytes);
    const std::size_t end = out.size() - kTrailerBytes;
    if (at <= end && end - at >= 16) store<std::uint64_t>(out, end - 8, XXH3_64bits(out.data() + at, end - at - 8));
  }
  return out;
}

bool inside(std::string_view part, const std::string& whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// What decode_block promises of a block it decoded.
void check_decoded(const Block& b, std::size_t fields) {
  require(b.fields == fields, "a decoded block with another field count");
  require(b.values.size() == static_cast<std::size_t>(b.info.events) * fields, "not events x fields values");
  std::size_t bytes = 0;
  for (const std::string_view v : b.values) {
    // An absent value may be a default view, with no pointer at all.
    if (v.empty()) continue;
    require(inside(v, b.raw), "a value outside the block's buffer");
    bytes += v.size();
  }
  require(bytes <= b.raw.size(), "values that add up to more than the block");
  require(b.stamps.empty() || b.stamps.size() == b.info.events, "stamps other than one per event");
}

bool same_info(const BlockInfo& a, const BlockInfo& b) {
  return a.offset == b.offset && a.bytes == b.bytes && a.events == b.events && a.min_ts_ms == b.min_ts_ms &&
         a.max_ts_ms == b.max_ts_ms;
}

// The codec functions on the bytes themselves.
void check_direct(std::string_view in) {
  std::size_t header_bytes = 0;
  if (const auto h = decode_header(in, header_bytes)) {
    require(header_bytes >= 50 && header_bytes <= in.size(), "a header longer than its bytes");
    require(h->fields.size() <= kMaxFields, "a header with more fields than the limit");
    // The reserved word (bytes 20-23) is read and dropped, and the checksum
    // covers it; the rest encodes back to the same bytes.
    const std::string again = encode_header(*h);
    require(again.size() == header_bytes && again.compare(0, 20, in.substr(0, 20)) == 0 &&
                again.compare(24, header_bytes - 32, in.substr(24, header_bytes - 32)) == 0,
            "a header that does not encode back to its bytes");
  }

  BlockInfo info;
  const BlockStatus checked = check_block(in, info);
  if (checked == BlockStatus::ok) {
    require(info.bytes >= kBlockHeaderBytes && info.bytes <= in.size(), "an accepted block longer than its bytes");
  }
  for (const std::size_t fields : {0, 1, 5}) {
    Block block;
    const BlockStatus decoded = decode_block(in, fields, block);
    require(decoded == checked || (checked == BlockStatus::ok && decoded == BlockStatus::bad_payload),
            "decode_block disagrees with check_block");
    if (decoded == BlockStatus::ok) check_decoded(block, fields);
  }

  if (in.size() >= kTrailerBytes) {
    const std::size_t end = in.size() - kTrailerBytes;
    if (const auto at = decode_trailer(in.substr(end)); at && *at <= end) {
      const std::string_view footer = in.substr(*at, end - *at);
      if (const auto blocks = decode_footer(footer)) {
        require(footer.size() == 16 + blocks->size() * kFooterEntryBytes, "a footer of another length than its entries");
      }
    }
  }
  if (const auto blocks = decode_footer(in)) {
    require(in.size() == 16 + blocks->size() * kFooterEntryBytes, "a footer of another length than its entries");
  }
}

// The file functions, on the bytes written as a shard's only segment.
void check_file(std::string_view in) {
  Scratch& s = scratch();
  s.reset();
  write_file(s.file, in);

  const SegmentScan scan = scan_segment(s.file);
  require(scan.file_bytes == in.size(), "a scan that misreads the file's size");
  require(scan.valid_end <= scan.file_bytes, "valid_end past the end of the file");
  require(scan.state == SegmentState::clean || !scan.problem.empty(), "a segment that is not clean, without a problem");
  require(!scan.sealed || scan.state == SegmentState::clean, "sealed but not clean");
  std::size_t header_bytes = 0;
  const auto header = decode_header(in, header_bytes);
  require((scan.state == SegmentState::bad_header) == !header, "a scan and decode_header disagree on the header");
  if (!header) {
    require(scan.blocks.empty() && scan.events == 0 && !scan.sealed && scan.valid_end == 0,
            "blocks in a segment without a header");
  } else {
    require(scan.header.fields == header->fields && scan.header.sequence == header->sequence,
            "a scan's header differs from decode_header's");
    std::uint64_t at = header_bytes;
    std::uint64_t events = 0;
    for (const BlockInfo& b : scan.blocks) {
      require(b.offset == at, "a scan's blocks are not contiguous from the header's end");
      require(b.bytes >= kBlockHeaderBytes && b.bytes <= scan.file_bytes - b.offset, "a scan's block outside the file");
      at += b.bytes;
      events += b.events;
    }
    require(scan.valid_end == at, "valid_end is not the end of the last good block");
    require(scan.events == events, "a scan's events are not those of its blocks");

    // Each block the scan found good, decoded.
    SegmentReader reader;
    std::string error;
    require(reader.open(s.file, error), "a scanned segment does not open");
    require(reader.header_bytes() == header_bytes && reader.size() == in.size(), "the reader sees another header or size");
    Block block;
    for (const BlockInfo& b : scan.blocks) {
      const BlockStatus status = reader.read_block(b.offset, true, block);
      // Its checksum held in the scan; only its payload can still be wrong.
      require(status == BlockStatus::ok || status == BlockStatus::bad_payload, "a block the scan found good does not check");
      require(same_info(block.info, b), "read_block describes a block otherwise than the scan");
      if (status == BlockStatus::ok) check_decoded(block, header->fields.size());
    }
  }

  const Recovery recovery = recover_directory(s.dir.string());
  require(recovery.next_sequence == 1, "recovery numbers the next segment wrongly");
  require(recovery.actions.size() == (scan.state == SegmentState::clean ? 0u : 1u), "recovery acts on a clean file, or not on another");
  const bool gone = !fs::exists(s.file);
  const bool quarantined = fs::exists(s.file + ".quarantined");
  switch (scan.state) {
    case SegmentState::clean:
      require(recovery.segments.size() == 1 && !gone && file_size(s.file) == in.size(), "recovery changed a clean file");
      break;
    case SegmentState::torn_tail: {
      require(recovery.segments.size() == 1 && !gone && !quarantined && !recovery.actions[0].quarantined,
              "a torn tail is not kept");
      require(recovery.actions[0].bytes_dropped == scan.file_bytes - scan.valid_end &&
                  file_size(s.file) == scan.valid_end && recovery.segments[0].file_bytes == scan.valid_end,
              "a torn tail is not cut at the last good block");
      // What recovery kept must read as clean at the next start, or it
      // would be quarantined then, with events already acknowledged.
      const SegmentScan again = scan_segment(s.file);
      require(again.state == SegmentState::clean && again.blocks.size() == scan.blocks.size() && again.events == scan.events,
              "a torn tail cut by recovery does not scan clean");
      break;
    }
    case SegmentState::corrupt:
      require(recovery.segments.empty() && gone && quarantined && recovery.actions[0].quarantined,
              "a corrupt file is not quarantined");
      break;
    case SegmentState::bad_header:
      require(recovery.segments.empty() && gone, "a file with a bad header is replayed");
      require(quarantined == recovery.actions[0].quarantined, "recovery misreports a quarantine");
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy of exactly the input's size, so that ASan sees any read past it.
  const std::string in(reinterpret_cast<const char*>(data), size);
  check_direct(in);
  check_file(in);
  const std::string fixed = repaired(in);
  if (fixed != in) {
    check_direct(fixed);
    check_file(fixed);
  }
  return 0;
}
