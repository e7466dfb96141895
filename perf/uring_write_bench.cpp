// spate-uring-write-bench: appends segment-like blocks to one file through
// io_uring the way storage/segment_log.cpp does, buffered and O_DIRECT, under
// each durability mode, so the log can keep the faster way of writing.
#include <fcntl.h>
#include <liburing.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace {

namespace fs = std::filesystem;

// As storage/segment_log.cpp: 64 entries, user_data of a sync carries this bit.
constexpr unsigned kRingEntries = 64;
constexpr std::uint64_t kSyncBit = std::uint64_t{1} << 63;
constexpr std::uint64_t kAlign = 4096;  // O_DIRECT buffers, lengths and offsets
constexpr std::uint64_t kFixedBlock = 96u << 10;
constexpr std::uint64_t kMinBlock = 40u << 10;
constexpr std::uint64_t kMaxBlock = 120u << 10;
constexpr std::uint64_t kGroupBytes = 4u << 20;  // LogOptions::commit_bytes
constexpr std::uint64_t kSizeSeed = 0x5eed'b10cULL;

enum class SyncMode { group, sync, none };

struct Variant {
  const char* name;
  SyncMode sync;
  bool varying;  // block sizes drawn from [40, 120] KiB, else 96 KiB each
};

constexpr Variant kVariants[] = {
    {"group-96k", SyncMode::group, false}, {"group-40-120k", SyncMode::group, true},
    {"sync-96k", SyncMode::sync, false},   {"sync-40-120k", SyncMode::sync, true},
    {"none-96k", SyncMode::none, false},   {"none-40-120k", SyncMode::none, true},
};

struct Options {
  std::uint64_t bytes = 1ull << 30;
  std::string dir;
  unsigned repeat = 3;
  unsigned depth = 32;
};

struct Run {
  std::uint64_t payload_bytes = 0;
  std::uint64_t pad_bytes = 0;
  std::uint64_t writes = 0;
  double seconds = 0;
  double cpu_s = 0;
  std::vector<double> sync_us;  // each datasync, submission to completion
};

std::string g_cleanup_dir;  // a temporary directory of our own, removed on every exit path

[[noreturn]] void fail(const std::string& message) {
  fmt::print(stderr, "spate-uring-write-bench: {}\n", message);
  if (!g_cleanup_dir.empty()) {
    std::error_code ec;
    fs::remove_all(g_cleanup_dir, ec);
  }
  std::exit(1);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double cpu_s() {
  // RUSAGE_SELF covers io_uring's io-wq workers (threads of this process),
  // not the kernel's writeback threads that flush buffered pages.
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// One slot per write in flight, aligned for O_DIRECT and filled with random
// bytes once (compressed blocks look random; nothing on the path compresses).
class Buffers {
 public:
  Buffers(unsigned slots, std::uint64_t slot_bytes) {
    std::uint64_t seed = 42;
    for (unsigned i = 0; i < slots; ++i) {
      void* p = nullptr;
      if (const int r = ::posix_memalign(&p, kAlign, slot_bytes); r != 0) fail("posix_memalign failed");
      auto* words = static_cast<std::uint64_t*>(p);
      for (std::uint64_t w = 0; w < slot_bytes / 8; ++w) words[w] = splitmix(seed);
      slots_.push_back(static_cast<char*>(p));
    }
  }
  ~Buffers() {
    for (char* p : slots_) std::free(p);
  }
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
  char* operator[](std::size_t i) const { return slots_[i]; }

 private:
  std::vector<char*> slots_;
};

// One pass: a new file, --bytes of blocks appended at increasing offsets, up
// to `depth` writes in flight, syncs as the variant says, the file durable at
// the end. Timed from the first submission to the last completion.
Run run_once(const Options& o, const Variant& v, bool direct, const Buffers& buffers, const std::string& path,
             int dir_fd) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0) fail(fmt::format("cannot create '{}'{}: {}", path, direct ? " with O_DIRECT" : "", std::strerror(errno)));
  io_uring ring{};
  if (const int r = io_uring_queue_init(kRingEntries, &ring, 0); r < 0) {
    fail(fmt::format("io_uring_queue_init: {}", std::strerror(-r)));
  }

  std::vector<unsigned> free_slots;
  for (unsigned i = o.depth; i-- > 0;) free_slots.push_back(i);
  std::vector<std::uint64_t> write_len(o.depth, 0);
  std::vector<double> sync_started;  // by sync id
  Run run;
  run.sync_us.reserve(o.bytes / kMinBlock + 2);
  std::uint64_t size_seed = kSizeSeed;  // the same block sizes for every pass
  std::uint64_t remaining = o.bytes;
  std::uint64_t offset = 0;
  std::uint64_t unsynced = 0;
  unsigned writes_in_flight = 0;
  unsigned syncs_in_flight = 0;

  auto reap = [&](bool wait) {
    io_uring_cqe* cqe = nullptr;
    bool any = false;
    while (true) {
      const int r = wait && !any ? io_uring_wait_cqe(&ring, &cqe) : io_uring_peek_cqe(&ring, &cqe);
      if (r == -EINTR) continue;
      if (r != 0 || cqe == nullptr) break;
      const double t = now_s();
      const std::uint64_t data = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      any = true;
      if ((data & kSyncBit) != 0) {
        if (res < 0) fail(fmt::format("datasync failed: {}", std::strerror(-res)));
        run.sync_us.push_back((t - sync_started[data & ~kSyncBit]) * 1e6);
        --syncs_in_flight;
        continue;
      }
      if (res < 0) fail(fmt::format("write failed: {}", std::strerror(-res)));
      if (static_cast<std::uint64_t>(res) != write_len[data]) fail("short write");
      free_slots.push_back(static_cast<unsigned>(data));
      --writes_in_flight;
    }
  };

  const double cpu0 = cpu_s();
  const double t0 = now_s();
  while (remaining > 0 || writes_in_flight + syncs_in_flight > 0) {
    if (remaining == 0 || writes_in_flight == o.depth) {
      reap(true);
      continue;
    }
    std::uint64_t len = v.varying ? kMinBlock + splitmix(size_seed) % (kMaxBlock - kMinBlock + 1) : kFixedBlock;
    len = std::min(len, remaining);
    // O_DIRECT moves whole aligned blocks: the tail is padded with the
    // slot's bytes and the next block starts on the next 4 KiB boundary.
    const std::uint64_t io_len = direct ? round_up(len, kAlign) : len;
    const unsigned slot = free_slots.back();
    free_slots.pop_back();
    write_len[slot] = io_len;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) fail("submission queue full");
    io_uring_prep_write(sqe, fd, buffers[slot], static_cast<unsigned>(io_len), offset);
    io_uring_sqe_set_data64(sqe, slot);
    ++writes_in_flight;
    ++run.writes;
    offset += io_len;
    remaining -= len;
    unsynced += len;
    run.payload_bytes += len;
    run.pad_bytes += io_len - len;

    bool due = false;
    switch (v.sync) {
      case SyncMode::group: due = unsynced >= kGroupBytes || (remaining == 0 && unsynced > 0); break;
      case SyncMode::sync: due = true; break;
      case SyncMode::none: break;
    }
    if (due) {  // as SegmentLog::sync: drained, so it covers every write before it
      sqe = io_uring_get_sqe(&ring);
      if (sqe == nullptr) fail("submission queue full");
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      sqe->flags |= IOSQE_IO_DRAIN;
      io_uring_sqe_set_data64(sqe, kSyncBit | sync_started.size());
      // Stamped before the submit: a buffered write in the same submit may
      // be copied inline, and the sync's wait for it is part of its latency.
      sync_started.push_back(now_s());
      ++syncs_in_flight;
      unsynced = 0;
    }
    // One submit per block, as the log does once per sealed block.
    if (const int r = io_uring_submit(&ring); r < 0) fail(fmt::format("io_uring_submit: {}", std::strerror(-r)));
    reap(false);
  }
  if (v.sync == SyncMode::none) {
    const double s0 = now_s();
    if (::fdatasync(fd) != 0) fail(fmt::format("fdatasync: {}", std::strerror(errno)));
    run.sync_us.push_back((now_s() - s0) * 1e6);
  }
  run.seconds = now_s() - t0;
  run.cpu_s = cpu_s() - cpu0;

  io_uring_queue_exit(&ring);
  ::close(fd);
  // The next pass starts on a clean slate: no page cache of this file, and
  // the journal commit of its deletion not landing inside the next timing.
  if (::unlink(path.c_str()) != 0) fail(fmt::format("unlink '{}': {}", path, std::strerror(errno)));
  ::syncfs(dir_fd);
  return run;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p * static_cast<double>(v.size()))));
  return v[std::min(rank, v.size()) - 1];
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

// One variant under one way of writing: each metric is the median of its passes.
struct Summary {
  std::vector<double> mb_per_s, fsyncs_per_s, sync_mean_us, sync_p99_us, cpu_s_per_gb;
  std::uint64_t pad_bytes = 0, writes = 0, syncs = 0;

  void add(const Run& r) {
    mb_per_s.push_back(static_cast<double>(r.payload_bytes) / r.seconds / 1e6);
    fsyncs_per_s.push_back(static_cast<double>(r.sync_us.size()) / r.seconds);
    sync_mean_us.push_back(mean(r.sync_us));
    sync_p99_us.push_back(percentile(r.sync_us, 0.99));
    cpu_s_per_gb.push_back(r.cpu_s / (static_cast<double>(r.payload_bytes) / 1e9));
    pad_bytes = r.pad_bytes;
    writes = r.writes;
    syncs = r.sync_us.size();
  }
};

const char* fs_name(long type) {
  switch (static_cast<unsigned long>(type)) {
    case 0xEF53: return "ext2/3/4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x2FC12FC1: return "zfs";
    case 0x794C7630: return "overlayfs";
    default: return "other";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spate-uring-write-bench: segment appends through io_uring, buffered vs O_DIRECT"};
  Options o;
  app.add_option("--bytes", o.bytes, "payload bytes written per pass")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1} << 20, std::uint64_t{1} << 40));
  app.add_option("--dir", o.dir, "directory for the file (default: a fresh temporary directory here, removed after)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--repeat", o.repeat, "passes of each variant; the median is reported")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100u));
  app.add_option("--depth", o.depth, "writes in flight at most")->capture_default_str()->check(CLI::Range(1u, 32u));
  CLI11_PARSE(app, argc, argv);

  std::string dir = o.dir;
  if (dir.empty()) {
    std::string tmpl = "spate-uring-write-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) fail(fmt::format("mkdtemp: {}", std::strerror(errno)));
    dir = fs::absolute(tmpl).string();
    g_cleanup_dir = dir;
  }
  const std::string path = (fs::path(dir) / "segment.bench").string();
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) fail(fmt::format("cannot open '{}': {}", dir, std::strerror(errno)));
  struct statfs sfs{};
  ::fstatfs(dir_fd, &sfs);

  fmt::print("spate-uring-write-bench: {} MiB per pass in {} ({}), {} passes each, up to {} writes in flight, "
             "ring of {}\n",
             o.bytes >> 20, dir, fs_name(sfs.f_type), o.repeat, o.depth, kRingEntries);
  fmt::print("group: datasync (IOSQE_IO_DRAIN) every {} MiB; sync: after every block; none: one fdatasync at the end\n",
             kGroupBytes >> 20);
  fmt::print("O_DIRECT pads each block up to {} bytes (pad MB = bytes written beyond the payload); MB/s "
             "counts payload only\n\n",
             kAlign);
  std::fflush(stdout);  // before the progress lines on stderr

  const Buffers buffers(o.depth, round_up(std::max(kFixedBlock, kMaxBlock), kAlign));
  constexpr std::size_t kCount = std::size(kVariants);
  std::vector<Summary> buffered(kCount), direct(kCount);
  const double start = now_s();
  // Rounds over every variant, buffered and O_DIRECT alternating (their order
  // flipped each round), so a slow stretch of the disk spreads over all.
  for (unsigned rep = 0; rep < o.repeat; ++rep) {
    for (std::size_t i = 0; i < kCount; ++i) {
      for (int k = 0; k < 2; ++k) {
        const bool use_direct = (k == 1) != (rep % 2 == 1);
        const Run r = run_once(o, kVariants[i], use_direct, buffers, path, dir_fd);
        (use_direct ? direct : buffered)[i].add(r);
        fmt::print(stderr, "[{:6.1f} s] pass {} {:<14} {:<8} {:8.1f} MB/s, {} datasyncs, {:.2f} s\n", now_s() - start,
                   rep + 1, kVariants[i].name, use_direct ? "direct" : "buffered",
                   static_cast<double>(r.payload_bytes) / r.seconds / 1e6, r.sync_us.size(), r.seconds);
      }
    }
  }
  ::close(dir_fd);

  fmt::print("{:<14} {:<8} {:>8} {:>17} {:>7} {:>9} {:>11} {:>11} {:>8} {:>8}\n", "variant", "io", "MB/s",
             "MB/s min-max", "vs buf", "fsyncs/s", "sync mean", "sync p99", "CPU s/GB", "pad MB");
  fmt::print("{:<14} {:<8} {:>8} {:>17} {:>7} {:>9} {:>11} {:>11} {:>8} {:>8}\n", "", "", "", "", "", "", "(us)",
             "(us)", "", "");
  auto row = [&](const Variant& v, const char* io, const Summary& s, double buffered_mb) {
    const double mb = median(s.mb_per_s);
    const auto [lo, hi] = std::minmax_element(s.mb_per_s.begin(), s.mb_per_s.end());
    fmt::print("{:<14} {:<8} {:>8.1f} {:>17} {:>7.2f} {:>9.1f} {:>11.0f} {:>11.0f} {:>8.3f} {:>8.1f}\n", v.name, io,
               mb, fmt::format("{:.1f}-{:.1f}", *lo, *hi), mb / buffered_mb, median(s.fsyncs_per_s),
               median(s.sync_mean_us), median(s.sync_p99_us), median(s.cpu_s_per_gb),
               static_cast<double>(s.pad_bytes) / 1e6);
  };
  for (std::size_t i = 0; i < kCount; ++i) {
    const double b = median(buffered[i].mb_per_s);
    row(kVariants[i], "buffered", buffered[i], b);
    row(kVariants[i], "direct", direct[i], b);
  }
  fmt::print("medians of {} passes; MB = 10^6 bytes, GB = 10^9; CPU = getrusage user+sys of this process "
             "(io-wq workers included, kernel writeback threads not); vs buf = MB/s over buffered MB/s\n\n",
             o.repeat);

  for (std::size_t i = 0; i < kCount; ++i) {
    for (int k = 0; k < 2; ++k) {
      const Summary& s = k == 0 ? buffered[i] : direct[i];
      std::string runs;
      for (double x : s.mb_per_s) runs += fmt::format("{}{:.1f}", runs.empty() ? "" : ",", x);
      fmt::print("{{\"name\":\"uring_write\",\"variant\":\"{}\",\"io\":\"{}\",\"bytes\":{},\"depth\":{},\"repeat\":{},"
                 "\"writes\":{},\"syncs\":{},\"pad_bytes\":{},\"mb_per_s\":{:.1f},\"mb_per_s_passes\":[{}],"
                 "\"fsyncs_per_s\":{:.1f},\"sync_mean_us\":{:.0f},\"sync_p99_us\":{:.0f},\"cpu_s_per_gb\":{:.3f}}}\n",
                 kVariants[i].name, k == 0 ? "buffered" : "direct", o.bytes, o.depth, o.repeat, s.writes, s.syncs,
                 s.pad_bytes, median(s.mb_per_s), runs, median(s.fsyncs_per_s), median(s.sync_mean_us),
                 median(s.sync_p99_us), median(s.cpu_s_per_gb));
    }
  }

  if (!g_cleanup_dir.empty()) {
    std::error_code ec;
    fs::remove_all(g_cleanup_dir, ec);
  }
  return 0;
}
