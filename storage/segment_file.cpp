// Segment reading, scanning and recovery; see segment_file.hpp.
#include "storage/segment_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

namespace spate::storage {
namespace {

// The largest header: kMaxFields names of up to 256 bytes, and the fixed part.
constexpr std::size_t kMaxHeaderBytes = 50 + kMaxFields * (2 + 256);

bool pread_all(int fd, char* out, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    out += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
  return true;
}

bool parse_sequence(const std::string& name, std::uint64_t& sequence) {
  if (name.size() != 24 || name.substr(20) != ".seg") return false;
  sequence = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    sequence = sequence * 10 + static_cast<std::uint64_t>(name[i] - '0');
  }
  return true;
}

}  // namespace

SegmentReader::~SegmentReader() {
  if (fd_ >= 0) ::close(fd_);
}

SegmentReader::SegmentReader(SegmentReader&& other) noexcept { *this = std::move(other); }

SegmentReader& SegmentReader::operator=(SegmentReader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    header_bytes_ = other.header_bytes_;
    header_ = std::move(other.header_);
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

bool SegmentReader::open(const std::string& path, std::string& error) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st{};
  if (fd_ < 0 || ::fstat(fd_, &st) != 0) {
    error = fmt::format("cannot open: {}", std::strerror(errno));
    return false;
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  buffer_.resize(std::min<std::uint64_t>(size_, kMaxHeaderBytes));
  if (!pread_all(fd_, buffer_.data(), buffer_.size(), 0)) {
    error = "cannot read the header";
    return false;
  }
  std::size_t header_bytes = 0;
  const auto header = decode_header(buffer_, header_bytes);
  if (!header) {
    // A file that begins like a header but ends before the header does was
    // torn while it was created.
    std::uint16_t declared = 0;
    if (buffer_.size() >= 12) std::memcpy(&declared, buffer_.data() + 10, sizeof(declared));
    const bool prefix = std::memcmp(buffer_.data(), kHeaderMagic, std::min<std::size_t>(buffer_.size(), 8)) == 0;
    error = prefix && (buffer_.size() < 12 || declared > size_) ? "header cut short"
                                                                 : "not a segment header (magic, version or checksum)";
    return false;
  }
  header_ = *header;
  header_bytes_ = header_bytes;
  return true;
}

bool SegmentReader::read_at(std::uint64_t offset, std::size_t n, std::string& out) {
  if (offset > size_ || n > size_ - offset) return false;
  out.resize(n);
  return pread_all(fd_, out.data(), n, offset);
}

BlockStatus SegmentReader::read_block(std::uint64_t offset, bool decode, Block& out) {
  if (offset + kBlockHeaderBytes > size_) return BlockStatus::truncated;
  buffer_.resize(kBlockHeaderBytes);
  if (!pread_all(fd_, buffer_.data(), kBlockHeaderBytes, offset)) return BlockStatus::truncated;
  out.info.offset = offset;
  BlockInfo info;
  BlockStatus status = check_block(buffer_, info);
  // A bad header ends it before the payload is read (a header alone can
  // check out only if its payload is empty, which check_block refuses).
  if (status != BlockStatus::truncated) return status;
  std::uint32_t stored = 0;
  std::memcpy(&stored, buffer_.data() + 4, sizeof(stored));
  if (offset + kBlockHeaderBytes + stored > size_) return BlockStatus::truncated;
  buffer_.resize(kBlockHeaderBytes + stored);
  if (!pread_all(fd_, buffer_.data() + kBlockHeaderBytes, stored, offset + kBlockHeaderBytes)) {
    return BlockStatus::truncated;
  }
  status = decode ? decode_block(buffer_, header_.fields.size(), out) : check_block(buffer_, out.info);
  out.info.offset = offset;
  return status;
}

const char* segment_state_name(SegmentState state) noexcept {
  switch (state) {
    case SegmentState::clean: return "clean";
    case SegmentState::torn_tail: return "torn tail";
    case SegmentState::corrupt: return "corrupt";
    case SegmentState::bad_header: return "bad header";
  }
  return "?";
}

SegmentScan scan_segment(const std::string& path) {
  SegmentScan scan;
  scan.path = path;
  SegmentReader reader;
  std::string error;
  if (!reader.open(path, error)) {
    scan.state = SegmentState::bad_header;
    scan.problem = error;
    scan.file_bytes = reader.size();
    return scan;
  }
  scan.header = reader.header();
  scan.file_bytes = reader.size();
  scan.valid_end = reader.header_bytes();

  // A sealed segment ends in a trailer that points at a valid footer.
  std::optional<std::vector<BlockInfo>> footer;
  std::uint64_t footer_offset = scan.file_bytes;
  Block block;
  if (scan.file_bytes >= reader.header_bytes() + kTrailerBytes) {
    std::string tail;
    if (reader.read_at(scan.file_bytes - kTrailerBytes, kTrailerBytes, tail)) {
      if (const auto at = decode_trailer(tail);
          at && *at >= reader.header_bytes() && *at <= scan.file_bytes - kTrailerBytes) {
        std::string bytes;
        if (reader.read_at(*at, scan.file_bytes - kTrailerBytes - *at, bytes)) footer = decode_footer(bytes);
        if (footer) footer_offset = *at;
      }
    }
  }

  std::uint64_t offset = reader.header_bytes();
  while (offset < footer_offset) {
    const BlockStatus status = reader.read_block(offset, false, block);
    if (status == BlockStatus::ok) {
      scan.blocks.push_back(block.info);
      scan.events += block.info.events;
      offset += block.info.bytes;
      scan.valid_end = offset;
      continue;
    }
    // A torn tail is a write cut short at the end of the file; anything
    // with a good block after it, or in a sealed file, is corruption.
    bool later_good = footer.has_value();
    if (!later_good && status != BlockStatus::truncated) {
      std::uint32_t stored = 0;
      std::string head;
      if (reader.read_at(offset, kBlockHeaderBytes, head)) std::memcpy(&stored, head.data() + 4, 4);
      const std::uint64_t next = offset + kBlockHeaderBytes + stored;
      Block probe;
      later_good = stored <= kMaxBlockBytes && next < scan.file_bytes &&
                   reader.read_block(next, false, probe) == BlockStatus::ok;
    }
    scan.state = later_good ? SegmentState::corrupt : SegmentState::torn_tail;
    scan.problem = fmt::format("block at byte {}: {}", offset, block_status_name(status));
    return scan;
  }
  if (footer) {
    bool agree = footer->size() == scan.blocks.size();
    for (std::size_t i = 0; agree && i < footer->size(); ++i) {
      agree = (*footer)[i].offset == scan.blocks[i].offset && (*footer)[i].bytes == scan.blocks[i].bytes &&
              (*footer)[i].events == scan.blocks[i].events;
    }
    if (!agree) {
      scan.state = SegmentState::corrupt;
      scan.problem = "the footer's block index disagrees with the blocks";
      return scan;
    }
    scan.sealed = true;
  }
  return scan;
}

std::string segment_file_name(std::uint64_t sequence) { return fmt::format("{:020}.seg", sequence); }

std::vector<std::string> list_segments(const std::string& dir) {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::uint64_t sequence = 0;
    if (entry.is_regular_file() && parse_sequence(entry.path().filename().string(), sequence)) {
      found.emplace_back(sequence, entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (auto& [sequence, path] : found) paths.push_back(std::move(path));
  return paths;
}

Recovery recover_directory(const std::string& dir) {
  Recovery out;
  for (const std::string& path : list_segments(dir)) {
    std::uint64_t sequence = 0;
    parse_sequence(std::filesystem::path(path).filename().string(), sequence);
    out.next_sequence = std::max(out.next_sequence, sequence + 1);
    SegmentScan scan = scan_segment(path);
    if (scan.state == SegmentState::clean) {
      out.segments.push_back(std::move(scan));
      continue;
    }
    RecoveryAction action{path, scan.state, scan.problem, 0, false};
    // A header cut short is a segment torn at its creation: nothing in it
    // was ever written, let alone acknowledged.
    const bool torn = scan.state == SegmentState::torn_tail ||
                      (scan.state == SegmentState::bad_header && scan.file_bytes < 4096 && scan.problem == "header cut short");
    if (torn) {
      action.bytes_dropped = scan.file_bytes - scan.valid_end;
      if (scan.state == SegmentState::bad_header) {
        ::unlink(path.c_str());
      } else {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
          if (::ftruncate(fd, static_cast<off_t>(scan.valid_end)) == 0) ::fdatasync(fd);
          ::close(fd);
        }
        scan.state = SegmentState::clean;
        scan.file_bytes = scan.valid_end;
        out.segments.push_back(std::move(scan));
      }
    } else {
      std::error_code ec;
      std::filesystem::rename(path, path + ".quarantined", ec);
      action.quarantined = !ec;
    }
    out.actions.push_back(std::move(action));
  }
  return out;
}

}  // namespace spate::storage
