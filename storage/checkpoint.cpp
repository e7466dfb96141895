// Checkpoint files; see checkpoint.hpp and docs/storage.md.
#include "storage/checkpoint.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "kernels/byte_io.hpp"
#include "kernels/hash.hpp"

namespace spate::storage {
namespace {

constexpr char kMagic[8] = {'S', 'P', 'A', 'T', 'E', 'C', 'K', 'P'};
constexpr char kTrailer[8] = {'C', 'K', 'P', 'T', 'E', 'N', 'D', '\0'};
constexpr std::size_t kFixedBytes = 8 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + 8;  // magic .. body length
constexpr std::size_t kTailBytes = 8 + 8;                                 // checksum, trailer

[[noreturn]] void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

void write_all(int fd, std::string_view bytes, const std::string& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw_errno("write " + path);
    done += static_cast<std::size_t>(n);
  }
}

// The file's bytes before the body: the magic, the header and the body's length.
std::string head_of(const CheckpointHeader& h, std::uint64_t body_size) {
  std::string out;
  out.append(kMagic, sizeof(kMagic));
  kernels::ByteWriter w(out);
  w.put<std::uint32_t>(kCheckpointVersion);
  w.put<std::uint32_t>(h.shard);
  w.put<std::uint32_t>(h.shards);
  w.put<std::uint64_t>(h.epoch);
  w.put<std::int64_t>(h.created_ms);
  w.put<std::uint64_t>(h.fingerprint);
  w.put<std::uint64_t>(h.position.segment);
  w.put<std::uint64_t>(h.position.block);
  w.put<std::uint64_t>(body_size);
  return out;
}

// The bytes after the body: the checksum of everything before, the trailer.
std::string tail_of(std::string_view head, std::string_view body) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  XXH3_64bits_update(&state, head.data(), head.size());
  XXH3_64bits_update(&state, body.data(), body.size());
  const std::uint64_t sum = XXH3_64bits_digest(&state);
  std::string out(reinterpret_cast<const char*>(&sum), sizeof(sum));
  out.append(kTrailer, sizeof(kTrailer));
  return out;
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + path);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw_errno("fsync " + path);
}

}  // namespace

std::string encode_checkpoint(const CheckpointHeader& h, std::string_view body) {
  std::string out = head_of(h, body.size());
  const std::string tail = tail_of(out, body);
  out.reserve(out.size() + body.size() + tail.size());
  out.append(body);
  out.append(tail);
  return out;
}

std::optional<Checkpoint> read_checkpoint(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("cannot open: {}", std::strerror(errno));
    return std::nullopt;
  }
  // Read in place at its size: a body of gigabytes is held once, not
  // grown by doubling and then copied out.
  struct stat st {};
  std::string bytes;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) bytes.resize(static_cast<std::size_t>(st.st_size));
  std::size_t have = 0;
  ssize_t n = 0;
  while (true) {
    if (have == bytes.size()) bytes.resize(std::max<std::size_t>(2 * bytes.size(), 1 << 16));  // it grew meanwhile
    n = ::read(fd, bytes.data() + have, bytes.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += static_cast<std::size_t>(n);
  }
  const int read_errno = errno;
  ::close(fd);
  bytes.resize(have);
  if (n < 0) {
    error = fmt::format("cannot read: {}", std::strerror(read_errno));
    return std::nullopt;
  }
  if (bytes.size() < kFixedBytes + kTailBytes || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    error = bytes.size() < kFixedBytes + kTailBytes ? fmt::format("cut short ({} bytes)", bytes.size())
                                                    : std::string("not a checkpoint (bad magic)");
    return std::nullopt;
  }
  if (std::memcmp(bytes.data() + bytes.size() - sizeof(kTrailer), kTrailer, sizeof(kTrailer)) != 0) {
    error = "cut short (no trailer)";
    return std::nullopt;
  }
  const std::size_t checked = bytes.size() - kTailBytes;
  std::uint64_t sum;
  std::memcpy(&sum, bytes.data() + checked, sizeof(sum));
  if (XXH3_64bits(bytes.data(), checked) != sum) {
    error = "checksum mismatch";
    return std::nullopt;
  }
  kernels::ByteReader r(std::string_view(bytes.data() + sizeof(kMagic), checked - sizeof(kMagic)));
  const auto version = r.get<std::uint32_t>();
  if (version != kCheckpointVersion) {
    error = fmt::format("version {} (this build reads {})", version, kCheckpointVersion);
    return std::nullopt;
  }
  Checkpoint c;
  c.path = path;
  c.header.shard = r.get<std::uint32_t>();
  c.header.shards = r.get<std::uint32_t>();
  c.header.epoch = r.get<std::uint64_t>();
  c.header.created_ms = r.get<std::int64_t>();
  c.header.fingerprint = r.get<std::uint64_t>();
  c.header.position.segment = r.get<std::uint64_t>();
  c.header.position.block = r.get<std::uint64_t>();
  const std::string_view body = r.get_bytes();
  if (!r.ok() || r.remaining() != 0) {
    error = "body length disagrees with the file";
    return std::nullopt;
  }
  const auto offset = static_cast<std::size_t>(body.data() - bytes.data());
  const std::size_t size = body.size();
  bytes.erase(0, offset);  // the body moves down in place: no second copy
  bytes.resize(size);
  c.body = std::move(bytes);
  return c;
}

std::string checkpoint_dir(const std::string& shard_dir) { return shard_dir + "/checkpoints"; }

std::string checkpoint_file_name(std::uint64_t epoch) { return fmt::format("{:020}.ckpt", epoch); }

std::vector<std::pair<std::uint64_t, std::string>> list_checkpoints(const std::string& shard_dir) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(checkpoint_dir(shard_dir), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 25 || name.substr(20) != ".ckpt") continue;
    if (!std::all_of(name.begin(), name.begin() + 20, [](char c) { return c >= '0' && c <= '9'; })) continue;
    out.emplace_back(std::stoull(name.substr(0, 20)), entry.path().string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

void write_checkpoint_file(const std::string& shard_dir, std::uint64_t epoch, const std::string& bytes) {
  write_checkpoint_file(shard_dir, epoch, {std::string_view(bytes)});
}

void write_checkpoint_file(const std::string& shard_dir, std::uint64_t epoch,
                           std::initializer_list<std::string_view> parts) {
  const std::string dir = checkpoint_dir(shard_dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + checkpoint_file_name(epoch);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("open " + tmp);
  try {
    for (const std::string_view part : parts) write_all(fd, part, tmp);
    if (::fsync(fd) != 0) throw_errno("fsync " + tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename " + tmp);
  fsync_path(dir, true);
}

void remove_checkpoints(const std::string& shard_dir, std::uint64_t below, std::uint64_t above) {
  for (const auto& [epoch, path] : list_checkpoints(shard_dir)) {
    if (epoch < below || epoch > above) ::unlink(path.c_str());
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(checkpoint_dir(shard_dir), ec)) {
    if (entry.path().extension() == ".tmp") std::filesystem::remove(entry.path(), ec);  // a write cut short
  }
}

CheckpointWriter::~CheckpointWriter() { wait(); }

void CheckpointWriter::start(std::string shard_dir, CheckpointHeader header, std::string body, int notify_fd) {
  wait();
  done_.store(false, std::memory_order_relaxed);
  error_.clear();
  bytes_ = 0;
  body_ = std::move(body);
  thread_ = std::thread([this, dir = std::move(shard_dir), header, notify_fd] {
    try {
      // Written in three parts: the body is not copied into a file image.
      const std::string head = head_of(header, body_.size());
      const std::string tail = tail_of(head, body_);
      write_checkpoint_file(dir, header.epoch, {head, body_, tail});
      bytes_ = head.size() + body_.size() + tail.size();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
    done_.store(true, std::memory_order_release);
    if (notify_fd >= 0) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(notify_fd, &one, sizeof(one));
    }
  });
}

bool CheckpointWriter::finished() noexcept {
  if (!done_.load(std::memory_order_acquire)) return false;
  wait();
  return true;
}

void CheckpointWriter::wait() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace spate::storage
