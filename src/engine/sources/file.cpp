// type = "file": an NDJSON file ("-": stdin), cut into line-aligned stripes
// that every shard reads its share of. docs/configuration.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "engine/engine.hpp"
#include "engine/source_kind.hpp"

namespace spate::engine {
namespace {

constexpr std::uint64_t kMaxFileStripeBytes = 1 << 20;
constexpr std::uint64_t kMinFileStripeBytes = 64 << 10;

// The offset just past the first newline at or after `from` (or the file's end).
std::uint64_t next_line_start(int fd, std::uint64_t from, std::uint64_t size) {
  char buf[4096];
  while (from < size) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(from));
    if (n <= 0) return size;
    if (const void* nl = std::memchr(buf, '\n', static_cast<std::size_t>(n))) {
      return from + static_cast<std::uint64_t>(static_cast<const char*>(nl) - buf) + 1;
    }
    from += static_cast<std::uint64_t>(n);
  }
  return size;
}

std::string read(SourceSettings& s) {
  std::string path;
  if (!s.string("path", path) || path.empty()) {
    s.error("file source needs path = \"FILE\" (\"-\" for stdin)");
    return path;
  }
  if (path == "-") return path;
  // What the start would refuse, said before it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    s.error(fmt::format("file source \"{}\": cannot be read: {}", path, std::strerror(errno)));
    return path;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) s.error(fmt::format("file source \"{}\": is a directory", path));
  ::close(fd);
  return path;
}

StartedSource start(const SourceConfig& config, std::uint32_t, Engine& engine) {
  SourceSettings s(config, engine.config());
  const std::string path = read(s);
  const std::uint32_t shards = engine.shard_count();
  const std::size_t max_line = engine.config().max_line_bytes;
  if (path == "-") {
    Shard& shard = engine.shard(0);
    shard.add_source(kFileSource, io::FileSource::standard_input(shard.poller(), max_line, kPadding));
    return {&kFileSource, path, 0, nullptr};
  }
  struct stat st {};
  const int probe = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (probe < 0 || ::fstat(probe, &st) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open input file '" + path + "'");
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(probe);
    throw std::system_error(EISDIR, std::generic_category(), "cannot read input file '" + path + "'");
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto stripes = deal_stripes(size, shards, [&](std::uint64_t from) { return next_line_start(probe, from, size); });
  ::close(probe);
  for (std::uint32_t i = 0; i < shards; ++i) {
    if (stripes[i].empty()) continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open '" + path + "'");
    Shard& shard = engine.shard(i);
    auto file = io::FileSource::file(fd, max_line, kPadding, shard.stripe_gate());
    for (const io::FileStripe& stripe : stripes[i]) file->add_stripe(stripe);
    shard.add_source(kFileSource, std::move(file));
  }
  return {&kFileSource, path, 0, nullptr};
}

}  // namespace

// Stripes of up to 1 MiB, dealt round-robin: every shard parses its own
// part, and all shards move through the input (and its event time)
// together, as they would on live traffic. Halves instead put one shard's
// rows far ahead in event time of the other's, and windows thrashed
// between them.
std::vector<std::vector<io::FileStripe>> deal_stripes(std::uint64_t size, std::uint32_t shards,
                                                      const std::function<std::uint64_t(std::uint64_t)>& next_line_start) {
  std::vector<std::vector<io::FileStripe>> stripes(shards);
  const std::uint64_t stripe =
      std::clamp<std::uint64_t>(size / (8ull * shards), kMinFileStripeBytes, kMaxFileStripeBytes);
  std::uint64_t begin = 0;
  for (std::uint64_t k = 0; begin < size; ++k) {
    const std::uint64_t end = std::max(begin, next_line_start(std::min(size, (k + 1) * stripe)));
    if (end == begin) continue;
    stripes[k % shards].push_back({begin, end, k});
    begin = end;
  }
  return stripes;
}

extern const SourceKind kFileSource{"file", [](SourceSettings& s) { read(s); }, start, nullptr};

}  // namespace spate::engine
