// spate-e2e-harness: one run over one NDJSON file measuring the raw simdjson
// parse rate beside the engine in process (1 and N shards) and the daemon fed
// over loopback TCP by a sender on the same machine. One JSON line per
// measurement on stdout; a summary table on stderr.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <simdjson.h>

#include "io/file/cpu_affinity.hpp"
#include "config/config.hpp"
#include "engine/engine.hpp"
#include "engine/event_parser.hpp"
#include "client/client.hpp"
#include "client/connect.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace od = simdjson::ondemand;
using Clock = std::chrono::steady_clock;
using spate::engine::kPadding;

constexpr int kExitTimeout = 124;  // as timeout(1)
constexpr int kExitTargetsMissed = 3;
constexpr std::size_t kWriteBytes = 4u << 20;  // per write() on a sender connection
constexpr auto kEnginePoll = std::chrono::microseconds(200);
constexpr auto kStatsPoll = std::chrono::microseconds(500);
constexpr auto kReadyWait = std::chrono::seconds(10);
constexpr auto kStallLimit = std::chrono::seconds(10);  // no counter progress for this long: give up

// Targets stated for the project (perf/RESULTS.md).
constexpr double kTargetInProcessRatio = 0.5;   // pipeline, 1 shard, vs raw parse
constexpr double kTargetTcpEventsPerS = 5e6;    // spated over loopback TCP, 2 shards, sender included
constexpr std::uint32_t kTargetTcpShards = 2;

std::atomic<pid_t> g_child{0};  // the child to kill on timeout or failure
fs::path g_tmp;                 // removed on exit unless --keep-temp
bool g_keep_tmp = false;

double seconds_since(Clock::time_point t0, Clock::time_point t1 = Clock::now()) {
  return std::chrono::duration<double>(t1 - t0).count();
}

void cleanup() noexcept {
  const pid_t child = g_child.exchange(0);
  if (child > 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  }
  if (!g_tmp.empty() && !g_keep_tmp) {
    std::error_code ec;
    fs::remove_all(g_tmp, ec);
  }
}

[[noreturn]] void fail(const std::string& message) {
  fmt::print(stderr, "spate-e2e-harness: {}\n", message);
  cleanup();
  std::exit(1);
}

// Kills the child and exits non-zero once the whole run exceeds its budget.
class Watchdog {
 public:
  explicit Watchdog(double seconds) : thread_([this, seconds] { run(seconds); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void run(double seconds) {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) return;
    fmt::print(stderr, "spate-e2e-harness: timed out after {} s; stopping\n", seconds);
    cleanup();
    std::_Exit(kExitTimeout);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// ---------------------------------------------------------------- child processes

fs::path self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

// Starts argv[0] with stdout and stderr on the given descriptors.
pid_t spawn(const std::vector<std::string>& argv, int out_fd, int err_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);  // the harness ignores SIGPIPE; the child should not inherit that
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) fail(fmt::format("cannot start {}: {}", argv[0], std::strerror(rc)));
  g_child.store(pid);
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child.store(0);
  return status;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("signal {}", WTERMSIG(status));
  return fmt::format("status {}", status);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int open_log(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
  return fd;
}

void generate_input(const fs::path& spate_gen, std::uint64_t events, std::uint64_t seed, const fs::path& out) {
  const fs::path log = g_tmp / "spate-gen.log";
  const int log_fd = open_log(log);
  fmt::print(stderr, "generating {} events with {} ...\n", events, spate_gen.filename().string());
  const auto t0 = Clock::now();
  const pid_t pid = spawn({spate_gen.string(), "--events", std::to_string(events), "--seed", std::to_string(seed),
                           "--out", out.string()},
                          log_fd, log_fd);
  ::close(log_fd);
  const int status = wait_child(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fail(fmt::format("spate-gen failed ({}): {}", describe_status(status), read_text(log)));
  }
  fmt::print(stderr, "generated in {:.2f} s\n", seconds_since(t0));
}

// Other work on the machine skews every figure here: say how busy it was.
std::string load_average() {
  std::string text = read_text("/proc/loadavg");
  const auto third = text.find(' ', text.find(' ', text.find(' ') + 1) + 1);
  return third == std::string::npos ? "unknown" : text.substr(0, third);
}

// ---------------------------------------------------------------- input

// The whole file in memory with kPadding readable bytes after it.
struct Input {
  std::unique_ptr<char[]> data;
  std::size_t size = 0;
  const char* begin() const noexcept { return data.get(); }
  const char* end() const noexcept { return data.get() + size; }
};

Input load(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st{};
  if (fd < 0 || ::fstat(fd, &st) != 0) fail(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  Input in;
  in.size = static_cast<std::size_t>(st.st_size);
  in.data = std::make_unique_for_overwrite<char[]>(in.size + kPadding);
  std::size_t got = 0;
  while (got < in.size) {
    const ssize_t n = ::read(fd, in.data.get() + got, in.size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(fmt::format("cannot read {}: {}", path.string(), n < 0 ? std::strerror(errno) : "short file"));
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::memset(in.data.get() + in.size, ' ', kPadding);
  return in;
}

// Calls f(line, len) for each non-empty line, '\r' stripped, as a shard splits input.
template <typename F>
void for_each_line(const Input& in, F&& f) {
  const char* end = in.end();
  for (const char* p = in.begin(); p < end;) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* line_end = nl != nullptr ? nl : end;
    std::size_t len = static_cast<std::size_t>(line_end - p);
    if (len > 0 && p[len - 1] == '\r') --len;
    if (len > 0) f(p, len);
    p = line_end + 1;
  }
}

// The input cut into line-aligned stripes of about stripe_bytes, in order.
// Senders take the next stripe from a shared counter as their connection
// accepts more, the way producers behind TCP backpressure share a stream:
// all connections move through the stream's event time together, and the
// faster shard's connection carries more. (Stripes dealt round-robin in
// advance let one connection run a quarter of the file ahead in event time
// when its shard was faster, and left the other shard working alone at the
// end: 0.30 to 0.60 s for the same bytes.)
std::vector<std::string_view> line_stripes(const Input& in, std::size_t stripe_bytes = 1 << 20) {
  std::vector<std::string_view> out;
  std::size_t begin = 0;
  while (begin < in.size) {
    std::size_t end = std::min(in.size, begin + stripe_bytes);
    const void* nl = end < in.size ? std::memchr(in.begin() + end, '\n', in.size - end) : nullptr;
    end = nl != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nl) - in.begin()) + 1 : in.size;
    out.emplace_back(in.begin() + begin, end - begin);
    begin = end;
  }
  return out;
}

// ---------------------------------------------------------------- measurements

struct Measurement {
  std::string name;
  std::uint64_t events = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
  std::uint32_t shards = 0;       // 0: no engine involved
  std::uint32_t connections = 0;  // TCP only
  std::vector<std::uint64_t> placement = {};  // TCP only: connections accepted by each shard
  double events_per_s() const { return static_cast<double>(events) / seconds; }
  double gb_per_s() const { return static_cast<double>(bytes) / seconds / 1e9; }
};

// What the raw parse extracts, summed so nothing is optimized away.
struct RawSums {
  std::uint64_t events = 0;
  std::uint64_t errors = 0;
  std::int64_t ts = 0;
  double amount = 0;
  std::uint64_t string_bytes = 0;
  bool operator==(const RawSums&) const = default;
};

// The baseline: simdjson On-Demand over each line in place, the five fields
// in document order (find_field), nothing else: no schema, routing or state.
bool raw_parse_line(od::parser& parser, const char* line, std::size_t len, std::size_t capacity, RawSums& s) {
  od::document doc;
  std::string_view id, user, type;
  od::value ts;
  od::json_type ts_type;
  double amount;
  if (parser.iterate(line, len, capacity).get(doc) != simdjson::SUCCESS ||
      doc.find_field("id").get_string().get(id) != simdjson::SUCCESS ||
      doc.find_field("ts").get(ts) != simdjson::SUCCESS || ts.type().get(ts_type) != simdjson::SUCCESS) {
    return false;
  }
  if (ts_type == od::json_type::number) {
    std::int64_t t;
    if (ts.get_int64().get(t) != simdjson::SUCCESS) return false;
    s.ts += t;
  } else {
    std::string_view t;  // an RFC 3339 string: taken, not converted
    if (ts.get_string().get(t) != simdjson::SUCCESS) return false;
    s.string_bytes += t.size();
  }
  if (doc.find_field("user").get_string().get(user) != simdjson::SUCCESS ||
      doc.find_field("type").get_string().get(type) != simdjson::SUCCESS ||
      doc.find_field("amount").get_double().get(amount) != simdjson::SUCCESS) {
    return false;
  }
  s.amount += amount;
  s.string_bytes += id.size() + user.size() + type.size();
  return true;
}

RawSums raw_parse(const Input& in) {
  od::parser parser;
  RawSums s;
  const char* buffer_end = in.end() + kPadding;
  for_each_line(in, [&](const char* line, std::size_t len) {
    if (raw_parse_line(parser, line, len, static_cast<std::size_t>(buffer_end - line), s)) ++s.events;
    else ++s.errors;
  });
  return s;
}

// The engine's own parser on one thread, as a shard calls it: its count of
// good lines is what the pipelines must report.
std::uint64_t event_parser_pass(const Input& in) {
  const spate::engine::Config config = spate::engine::default_config();
  spate::engine::EventParser parser(config);
  const char* buffer_end = in.end() + kPadding;
  std::uint64_t good = 0;
  for_each_line(in, [&](const char* line, std::size_t len) {
    if (len > config.max_line_bytes) return;
    spate::engine::ParsedEvent ev;
    if (parser.parse(line, len, static_cast<std::size_t>(buffer_end - line), ev) == spate::engine::Reject::none) ++good;
  });
  return good;
}

// Pins the calling thread to one CPU for its lifetime, then restores its
// mask (the engine takes its shard CPUs from the mask of the thread that
// builds it).
class PinnedTo {
 public:
  explicit PinnedTo(int cpu) {
    pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_);
    spate::io::pin_current_thread(cpu);
  }
  ~PinnedTo() { pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_); }
  PinnedTo(const PinnedTo&) = delete;
  PinnedTo& operator=(const PinnedTo&) = delete;

 private:
  cpu_set_t saved_{};
};

struct PipelineCounts {
  std::uint64_t events_in = 0;
  std::uint64_t errors = 0;
  std::uint64_t rows_handled = 0;
  std::uint64_t routed_out = 0;
};

// The engine in this process, from start() until every row is applied. Its
// input is the buffer the raw parse reads (parsed in place, as the yardstick
// does) or, with `path`, the file read with pread (it is in the page cache),
// which adds the kernel's copy into the shard's buffer.
std::string g_spated_config;  // --spated-config: a pipeline file for the daemon and the in-process runs

double run_in_process(const Input& in, const fs::path* path, std::uint32_t shards, const fs::path& data_dir,
                      PipelineCounts& counts) {
  spate::engine::Config config = spate::engine::default_config();
  if (!g_spated_config.empty()) {
    auto loaded = spate::engine::load_config_file(g_spated_config);
    if (!loaded.ok()) fail(fmt::format("{}: {}", g_spated_config, loaded.errors.front().message));
    config = std::move(loaded.config);
  }
  config.shards = shards;
  config.data_dir = data_dir.string();
  // The pipeline against the raw parse: the hot log is measured by
  // perf/durability.py, over TCP and PUBLISH, where its promises apply.
  config.storage.enabled = false;
  config.sources.clear();
  if (path != nullptr) {
    spate::engine::SourceConfig file;
    file.type = "file";
    file.set("path", path->string());
    config.sources.push_back(std::move(file));
  }
  spate::engine::Engine engine(config);
  if (path == nullptr) engine.add_buffer_input({in.begin(), in.size});
  const auto t0 = Clock::now();
  engine.start();
  while (!(engine.files_done() && engine.quiescent())) std::this_thread::sleep_for(kEnginePoll);
  const double seconds = seconds_since(t0);
  engine.stop();
  counts = {};
  for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
    const auto& c = engine.shard(s).counters();
    counts.events_in += c.events();
    counts.errors += c.rejected();
    counts.rows_handled += c.rows_handled.load();
    counts.routed_out += c.routed_out.load();
  }
  return seconds;
}

// ---------------------------------------------------------------- the daemon over TCP

struct Daemon {
  pid_t pid = -1;
  int stdout_fd = -1;
  std::uint16_t query_port = 0;
  std::uint16_t tcp_port = 0;
  fs::path log;
  fs::path data_dir;
};

std::optional<std::uint16_t> port_after(std::string_view line, std::string_view prefix) {
  const auto at = line.find(prefix);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view ep = line.substr(at + prefix.size());
  ep = ep.substr(0, ep.find(' '));
  const auto colon = ep.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  unsigned port = 0;
  for (const char c : ep.substr(colon + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

// Port 0 lets the daemon bind free ports; its ready line says which.
// data_dir: an earlier run's (a restart), or empty for a fresh one.
Daemon start_daemon(const fs::path& spated, std::uint32_t shards, std::uint16_t port_base, const fs::path& dir,
                    const fs::path& data_dir = {}) {
  static int started = 0;  // each daemon run gets its own data directory and log
  ++started;
  Daemon d;
  d.log = dir / fmt::format("spated-{}.log", started);
  d.data_dir = data_dir.empty() ? dir / fmt::format("spated-data-{}", started) : data_dir;
  const std::string tcp_port = port_base != 0 ? std::to_string(port_base) : "0";
  const std::string query_port = port_base != 0 ? std::to_string(port_base + 1) : "0";
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) fail(fmt::format("pipe: {}", std::strerror(errno)));
  const int log_fd = open_log(d.log);
  std::vector<std::string> args = {spated.string(), "--shards", std::to_string(shards), "--tcp-addr",
                                   "127.0.0.1:" + tcp_port, "--udp-addr", "off", "--query-addr",
                                   "127.0.0.1:" + query_port, "--data-dir", d.data_dir.string()};
  if (!g_spated_config.empty()) {
    args.push_back("--config");
    args.push_back(g_spated_config);
  }
  d.pid = spawn(args, out[1], log_fd);
  ::close(out[1]);
  ::close(log_fd);
  d.stdout_fd = out[0];
  const auto deadline = Clock::now() + kReadyWait;
  std::string text;
  while (true) {
    const auto nl = text.find('\n');
    if (nl != std::string::npos) {
      const std::string line = text.substr(0, nl);
      text.erase(0, nl + 1);
      if (line.rfind("spated ready:", 0) != 0) continue;
      const auto q = port_after(line, " query=");
      const auto t = port_after(line, " tcp=");
      if (!q || !t) fail(fmt::format("cannot read the ports from spated's ready line: {}", line));
      d.query_port = *q;
      d.tcp_port = *t;
      return d;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) fail(fmt::format("spated was not ready within 10 s: {}", read_text(d.log)));
    pollfd p{d.stdout_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(d.stdout_fd, buf, sizeof(buf));
    if (n == 0) fail(fmt::format("spated exited before it was ready: {}", read_text(d.log)));
    if (n > 0) text.append(buf, static_cast<std::size_t>(n));
  }
}

int stop_daemon(Daemon& d) {
  ::kill(d.pid, SIGTERM);
  const int status = wait_child(d.pid);
  ::close(d.stdout_fd);
  return status;
}

int connect_loopback(std::uint16_t port) {
  std::string error;
  const int fd = spate::query::connect_socket("127.0.0.1", port, SOCK_STREAM, 10000, error);
  if (fd < 0) fail(fmt::format("cannot connect to 127.0.0.1:{}: {}", port, error));
  return fd;
}

// Writes every part to fd in order; returns 0, or the errno that stopped it.
// Sends stripes taken from `next` until none is left; 0 or an errno.
int send_stripes(int fd, const std::vector<std::string_view>& stripes, std::atomic<std::size_t>& next) {
  for (std::size_t k; (k = next.fetch_add(1)) < stripes.size();) {
    const char* p = stripes[k].data();
    std::size_t left = stripes[k].size();
    while (left > 0) {
      const ssize_t n = ::write(fd, p, std::min(left, kWriteBytes));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return n < 0 ? errno : EPIPE;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  return 0;
}

struct Totals {
  std::uint64_t events_in = 0;
  std::uint64_t rows_handled = 0;
  std::uint64_t errors = 0;
  std::vector<std::uint64_t> connections;  // per shard
};

Totals totals(spate::query::Client& client) {
  Totals t;
  for (const auto& s : client.stats()) {
    t.events_in += s.get("events_in");
    t.rows_handled += s.get("rows_handled");
    t.errors += s.get("errors");
    t.connections.push_back(s.get("tcp.connections"));
  }
  return t;
}

std::string join(const std::vector<std::uint64_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// From the first byte sent until STATS shows every good event applied to
// every key group; the senders run on this machine, beside the daemon.
// `placement` receives how many connections each shard accepted.
// A restart on the segments a run left: from launch until the daemon is
// ready, which it is once every shard has replayed (docs/storage.md). The
// checkpoint the stop wrote is removed first: every segment replays.
Measurement measure_restart(const fs::path& spated, std::uint32_t shards, std::uint16_t port_base,
                            const fs::path& data_dir, std::uint64_t expected_events) {
  for (std::uint32_t s = 0; s < shards; ++s) fs::remove_all(data_dir / fmt::format("shard-{}", s) / "checkpoints");
  std::uint64_t segment_bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(data_dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".seg") segment_bytes += entry.file_size();
  }
  const auto t0 = Clock::now();
  Daemon d = start_daemon(spated, shards, port_base, g_tmp, data_dir);
  const double seconds = seconds_since(t0);
  std::uint64_t replayed = 0;
  {
    spate::query::Client client("127.0.0.1", d.query_port);
    for (const auto& s : client.stats()) replayed += s.get("replay.events_in");
  }
  stop_daemon(d);
  if (replayed != expected_events) {
    fail(fmt::format("the restart replayed {} events, not {}: {}", replayed, expected_events, read_text(d.log)));
  }
  fmt::print(stderr, "spated_restart_replay: {:.3f} s for {:.1f} MB of segments ({:.1f} s per GB of segments)\n",
             seconds, static_cast<double>(segment_bytes) / 1e6, seconds / (static_cast<double>(segment_bytes) / 1e9));
  return {"spated_restart_replay", replayed, segment_bytes, seconds, shards};
}

double run_tcp(const Input& in, const fs::path& spated, std::uint32_t shards, std::uint32_t connections,
               std::uint16_t port_base, std::uint64_t expected_events, std::size_t key_groups,
               std::vector<std::uint64_t>& placement, Measurement* restart = nullptr) {
  Daemon d = start_daemon(spated, shards, port_base, g_tmp);
  const double seconds = [&] {
    spate::query::Client client("127.0.0.1", d.query_port);
    const auto stripes = line_stripes(in);
    std::atomic<std::size_t> next{0};
    std::vector<int> fds;
    for (std::uint32_t i = 0; i < connections; ++i) fds.push_back(connect_loopback(d.tcp_port));
    // SO_REUSEPORT spreads connections over the shards by address hash:
    // note where they landed, since a shard holding none only applies routed rows.
    Totals before = totals(client);
    for (const auto t0 = Clock::now(); std::accumulate(before.connections.begin(), before.connections.end(), 0ull) <
                                           connections && seconds_since(t0) < 2;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      before = totals(client);
    }
    fmt::print(stderr, "spated_tcp_loopback: {} connections; accepted per shard: [{}]\n", connections,
               join(before.connections));
    placement = before.connections;

    std::latch go(1);
    std::atomic<int> send_errno{0};
    std::vector<std::thread> senders;
    for (std::uint32_t i = 0; i < connections; ++i) {
      senders.emplace_back([&, i] {
        go.wait();
        if (const int err = send_stripes(fds[i], stripes, next); err != 0) {
          send_errno.store(err);
          return;
        }
        ::shutdown(fds[i], SHUT_WR);
      });
    }
    const auto t0 = Clock::now();
    go.count_down();
    for (auto& t : senders) t.join();
    const double send_seconds = seconds_since(t0);
    if (send_errno.load() != 0) fail(fmt::format("a sender failed: {}", std::strerror(send_errno.load())));

    Totals now = totals(client);
    auto last_progress = Clock::now();
    std::uint64_t last_applied = now.rows_handled;
    while (!(now.events_in == expected_events && now.rows_handled == key_groups * expected_events)) {
      if (now.events_in > expected_events) {
        fail(fmt::format("spated counted {} events, expected {}", now.events_in, expected_events));
      }
      if (now.rows_handled != last_applied) {
        last_applied = now.rows_handled;
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > kStallLimit) {
        fail(fmt::format("spated stalled at events_in={} rows_handled={} errors={} (expected {} events)",
                         now.events_in, now.rows_handled, now.errors, expected_events));
      }
      std::this_thread::sleep_for(kStatsPoll);
      now = totals(client);
    }
    const double total = seconds_since(t0);
    fmt::print(stderr, "spated_tcp_loopback: sent in {:.3f} s, applied in {:.3f} s; events_in={} rows_handled={} errors={}\n",
               send_seconds, total, now.events_in, now.rows_handled, now.errors);
    for (const int fd : fds) ::close(fd);
    return total;
  }();
  const int status = stop_daemon(d);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fail(fmt::format("spated did not stop cleanly ({}): {}", describe_status(status), read_text(d.log)));
  }
  if (restart != nullptr) *restart = measure_restart(spated, shards, port_base, d.data_dir, expected_events);
  return seconds;
}

// Query latency under load: the input sent `passes` times at full speed over
// `connections` loopback connections while two clients ask VIEW_TOP of the
// per-user view back to back and a third PINGs once a millisecond. Prints
// the PING latency percentiles: a shard ranking a large view must not hold
// the others' answers back (VIEW_TOP runs a slice of keys per loop pass).
void run_query_latency(const Input& in, std::uint64_t good_events, const fs::path& spated, std::uint32_t shards,
                       std::uint32_t connections, std::uint16_t port_base, std::uint32_t passes) {
  Daemon d = start_daemon(spated, shards, port_base, g_tmp);
  {
    std::vector<std::string_view> stripes;
    const auto one_pass = line_stripes(in);
    for (std::uint32_t p = 0; p < passes; ++p) stripes.insert(stripes.end(), one_pass.begin(), one_pass.end());
    std::atomic<std::size_t> next{0};
    std::atomic<bool> done{false};
    std::atomic<std::uint64_t> tops{0};
    std::vector<double> ping_us;
    std::vector<int> fds;
    for (std::uint32_t i = 0; i < connections; ++i) fds.push_back(connect_loopback(d.tcp_port));
    std::vector<std::thread> senders, queries;
    const auto t0 = Clock::now();
    for (std::uint32_t i = 0; i < connections; ++i) {
      senders.emplace_back([&, i] {
        send_stripes(fds[i], stripes, next);
        ::shutdown(fds[i], SHUT_WR);
      });
    }
    for (int i = 0; i < 2; ++i) {
      queries.emplace_back([&] {
        spate::query::Client c("127.0.0.1", d.query_port);
        while (!done.load()) {
          c.view_top("per_user_1m", std::nullopt, 10);
          tops.fetch_add(1);
        }
      });
    }
    queries.emplace_back([&] {
      spate::query::Client c("127.0.0.1", d.query_port);
      while (!done.load()) {
        const auto p0 = Clock::now();
        c.ping();
        ping_us.push_back(seconds_since(p0) * 1e6);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    for (auto& t : senders) t.join();
    const double seconds = seconds_since(t0);
    done.store(true);
    for (auto& t : queries) t.join();
    for (const int fd : fds) ::close(fd);
    std::sort(ping_us.begin(), ping_us.end());
    const auto pct = [&](double q) {
      return ping_us.empty() ? 0.0 : ping_us[std::min(ping_us.size() - 1, static_cast<std::size_t>(q * ping_us.size()))];
    };
    fmt::print("{{\"name\":\"ping_under_ingest_and_view_top\",\"events_sent\":{},\"seconds\":{:.3f},\"view_tops\":{},"
               "\"pings\":{},\"ping_p50_us\":{:.0f},\"ping_p99_us\":{:.0f},\"ping_max_us\":{:.0f},\"shards\":{}}}\n",
               good_events * passes, seconds, tops.load(), ping_us.size(), pct(0.5), pct(0.99),
               ping_us.empty() ? 0.0 : ping_us.back(), shards);
    fmt::print(stderr, "ping under ingest and VIEW_TOP: {} pings, p50 {:.0f} us, p99 {:.0f} us, max {:.0f} us; {} VIEW_TOPs in {:.2f} s\n",
               ping_us.size(), pct(0.5), pct(0.99), ping_us.empty() ? 0.0 : ping_us.back(), tops.load(), seconds);
  }
  stop_daemon(d);
}

// The ceiling for (c) on this machine: the same bytes over the same number
// of loopback connections into receivers that only read and discard them.
double run_loopback_copy(const Input& in, std::uint32_t connections) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener < 0 || ::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener, 64) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fail(fmt::format("loopback listener: {}", std::strerror(errno)));
  }
  const auto stripes = line_stripes(in);
  std::atomic<std::size_t> next{0};
  std::vector<int> fds;
  for (std::uint32_t i = 0; i < connections; ++i) fds.push_back(connect_loopback(ntohs(addr.sin_port)));
  std::vector<std::thread> receivers;
  for (std::uint32_t i = 0; i < connections; ++i) {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) fail(fmt::format("loopback accept: {}", std::strerror(errno)));
    receivers.emplace_back([fd] {
      std::vector<char> buf(256 * 1024);
      while (::read(fd, buf.data(), buf.size()) > 0) {
      }
      ::close(fd);
    });
  }
  const auto t0 = Clock::now();
  std::vector<std::thread> senders;
  for (std::uint32_t i = 0; i < connections; ++i) {
    senders.emplace_back([&, i] {
      if (send_stripes(fds[i], stripes, next) != 0) fail("a loopback copy sender failed");
      ::close(fds[i]);
    });
  }
  for (auto& t : senders) t.join();
  for (auto& t : receivers) t.join();
  ::close(listener);
  return seconds_since(t0);
}

// ---------------------------------------------------------------- output

void print_json(const Measurement& m, double raw_seconds) {
  std::string extra;
  if (m.shards != 0) extra += fmt::format(",\"shards\":{}", m.shards);
  if (m.connections != 0) extra += fmt::format(",\"connections\":{}", m.connections);
  if (!m.placement.empty()) extra += fmt::format(",\"connections_per_shard\":[{}]", join(m.placement));
  fmt::print("{{\"name\":\"{}\",\"events\":{},\"bytes\":{},\"seconds\":{:.6f},\"events_per_s\":{:.0f},"
             "\"gb_per_s\":{:.4f},\"ratio_to_raw_parse\":{:.4f}{}}}\n",
             m.name, m.events, m.bytes, m.seconds, m.events_per_s(), m.gb_per_s(), raw_seconds / m.seconds, extra);
  std::fflush(stdout);
}

void print_table(const std::vector<Measurement>& ms, double raw_seconds) {
  fmt::print(stderr, "\n{:<42} {:>10} {:>9} {:>9} {:>9} {:>7} {:>7}\n", "measurement", "events", "MB", "seconds",
             "Mev/s", "GB/s", "ratio");
  for (const auto& m : ms) {
    fmt::print(stderr, "{:<42} {:>10} {:>9.1f} {:>9.3f} {:>9.2f} {:>7.3f} {:>7.3f}\n", m.name, m.events,
               static_cast<double>(m.bytes) / 1e6, m.seconds, m.events_per_s() / 1e6, m.gb_per_s(),
               raw_seconds / m.seconds);
  }
  fmt::print(stderr, "ratio = raw_simdjson_parse seconds / seconds, on the same bytes\n\n");
}

struct Options {
  std::uint64_t events = 2000000;
  std::uint64_t seed = 42;
  std::string input, spated, spate_gen;
  std::uint32_t shards = 0, connections = 0, repeat = 1;
  std::uint16_t port_base = 0;
  double timeout_s = 120;
  bool skip_tcp = false, skip_in_process = false, enforce = false, profile = false, restart = false;
  std::uint32_t query_latency_passes = 0;
};

// Runs every measurement; returns false when a project target is missed.
bool run_all(const Options& o) {
  const fs::path here = self_dir();
  const fs::path spated = o.spated.empty() ? here / ".." / "src" / "spated" : fs::path(o.spated);
  const fs::path spate_gen = o.spate_gen.empty() ? here / ".." / "tools" / "spate-gen" : fs::path(o.spate_gen);
  if (!o.skip_tcp && ::access(spated.c_str(), X_OK) != 0) {
    fail(fmt::format("spated not found at {} (build it, or pass --spated or --skip-tcp)", spated.string()));
  }

  std::string tmpl = (fs::temp_directory_path() / "spate-e2e-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) fail(fmt::format("mkdtemp: {}", std::strerror(errno)));
  g_tmp = tmpl;

  fs::path path;
  if (!o.input.empty()) {
    path = o.input;
  } else {
    if (::access(spate_gen.c_str(), X_OK) != 0) {
      fail(fmt::format("spate-gen not found at {} (build it, or pass --spate-gen or --input)", spate_gen.string()));
    }
    path = g_tmp / "events.ndjson";
    generate_input(spate_gen, o.events, o.seed, path);
  }

  const std::vector<int> cpus = spate::io::allowed_cpus();
  const std::uint32_t n = o.shards != 0 ? o.shards : static_cast<std::uint32_t>(std::max<std::size_t>(1, cpus.size()));
  const std::uint32_t c = o.connections != 0 ? o.connections : n;
  const std::size_t key_groups = spate::engine::default_config().key_groups.size();

  // Reading the file puts it in the page cache for the in-process runs.
  const Input in = load(path);
  std::uint64_t lines = 0;
  for_each_line(in, [&](const char*, std::size_t) { ++lines; });
  const std::uint64_t good = event_parser_pass(in);
  fmt::print(stderr, "input: {} ({} bytes, {} lines, {} good events); {} CPUs in the affinity mask, N = {} shards\n",
             path.filename().string(), in.size, lines, good, cpus.size(), n);
  fmt::print(stderr, "load average before: {}\n", load_average());
  if (good == 0) fail("the input holds no good event");

  if (o.query_latency_passes != 0) {
    run_query_latency(in, good, spated, n, c, o.port_base, o.query_latency_passes);
    return true;
  }
  if (o.profile) {
    // Only the pipeline, for a profiler: nothing else in the process competes for the samples.
    for (std::uint32_t r = 0; r < o.repeat; ++r) {
      PipelineCounts counts;
      const std::uint32_t k = o.shards != 0 ? o.shards : 1;
      const double seconds = run_in_process(in, nullptr, k, g_tmp / "engine-data", counts);
      fmt::print(stderr, "pipeline_in_process, {} shard(s): {:.3f} s, {:.2f} M events/s\n", k, seconds,
                 static_cast<double>(counts.events_in) / seconds / 1e6);
    }
    return true;
  }

  std::vector<Measurement> ms;
  // (a), the engine's parser alone, and (b) the pipeline in process with 1
  // and N shards, from the buffer and from the file: measured in rounds, one
  // pass of each per round, the best pass of each kept. The machine's speed
  // drifts over minutes; interleaving keeps a slow stretch from landing on
  // one measurement only. The single-thread passes run on the CPU of the
  // 1-shard pipeline's shard (the first in the mask): a VM's CPUs need not
  // be equally fast.
  std::vector<std::uint32_t> shard_counts;
  if (!o.skip_in_process) shard_counts.push_back(1);
  if (!o.skip_in_process && n != 1) shard_counts.push_back(n);
  struct Pipeline {
    std::string name;
    std::uint32_t shards;
    bool from_file;
    double best = 1e300;
    PipelineCounts counts;
  };
  std::vector<Pipeline> pipelines;
  for (const bool from_file : {false, true}) {
    for (const std::uint32_t k : shard_counts) {
      pipelines.push_back({fmt::format("pipeline_in_process_{}{}", k == 1 ? std::string("1_shard") : fmt::format("{}_shards", k),
                                       from_file ? "_file_read" : ""),
                           k, from_file, 1e300, {}});
    }
  }
  RawSums first;
  double raw_seconds = 1e300;
  double parser_seconds = 1e300;
  std::uint64_t parsed = 0;
  const std::uint32_t rounds = std::max<std::uint32_t>(3, o.repeat);
  for (std::uint32_t round = 0; round < rounds; ++round) {
    {
      const PinnedTo pin(cpus.front());
      auto t0 = Clock::now();
      const RawSums sums = raw_parse(in);
      raw_seconds = std::min(raw_seconds, seconds_since(t0));
      if (round == 0) first = sums;
      else if (!(sums == first)) fail("raw parse passes disagree");
      t0 = Clock::now();
      parsed = event_parser_pass(in);
      parser_seconds = std::min(parser_seconds, seconds_since(t0));
    }
    for (Pipeline& p : pipelines) {
      p.best = std::min(p.best, run_in_process(in, p.from_file ? &path : nullptr, p.shards, g_tmp / "engine-data", p.counts));
    }
  }
  if (first.events == 0 || first.amount <= 0) fail("the raw parse extracted nothing");
  fmt::print(stderr, "raw_simdjson_parse: {} events ({} lines without the five fields), sum(amount)={:.2f}\n",
             first.events, first.errors, first.amount);
  ms.push_back({"raw_simdjson_parse", first.events, in.size, raw_seconds});
  print_json(ms.back(), raw_seconds);
  ms.push_back({"spate_event_parser", parsed, in.size, parser_seconds});
  print_json(ms.back(), raw_seconds);
  for (const Pipeline& p : pipelines) {
    fmt::print(stderr, "{}: events_in={} (expected {}), errors={}, rows_handled={}, routed_out={}\n", p.name,
               p.counts.events_in, good, p.counts.errors, p.counts.rows_handled, p.counts.routed_out);
    if (p.counts.events_in != good || p.counts.rows_handled != key_groups * good) {
      fail("the in-process pipeline did not apply every good event");
    }
    ms.push_back({p.name, p.counts.events_in, in.size, p.best, p.shards});
    print_json(ms.back(), raw_seconds);
  }

  // (c) spated over loopback TCP, sender included.
  if (!o.skip_tcp) {
    double best = 1e300;
    std::vector<std::uint64_t> best_placement;
    Measurement restart{"spated_restart_replay"};
    restart.seconds = 1e300;
    for (std::uint32_t r = 0; r < o.repeat; ++r) {
      std::vector<std::uint64_t> placement;
      Measurement this_restart;
      const double seconds =
          run_tcp(in, spated, n, c, o.port_base, good, key_groups, placement, o.restart ? &this_restart : nullptr);
      if (o.restart && this_restart.seconds < restart.seconds) restart = this_restart;
      if (seconds < best) {
        best = seconds;
        best_placement = placement;
      }
    }
    ms.push_back({"spated_tcp_loopback", good, in.size, best, n, c, best_placement});
    print_json(ms.back(), raw_seconds);
    if (o.restart) {  // its bytes are the segments', so its ratio is no ratio to the raw parse
      ms.push_back(restart);
      print_json(ms.back(), raw_seconds);
    }
    double copy = 1e300;
    for (std::uint32_t r = 0; r < o.repeat; ++r) copy = std::min(copy, run_loopback_copy(in, c));
    ms.push_back({"loopback_tcp_copy_only", good, in.size, copy, 0, c});
    print_json(ms.back(), raw_seconds);
  }

  print_table(ms, raw_seconds);
  fmt::print(stderr, "load average after: {}\n", load_average());
  bool met_all = true;
  for (const auto& m : ms) {
    if (m.name == "pipeline_in_process_1_shard") {
      const double ratio = raw_seconds / m.seconds;
      met_all &= ratio >= kTargetInProcessRatio;
      fmt::print(stderr, "target: in process, 1 shard, >= {:.2f} of the raw parse rate: {} ({:.3f})\n",
                 kTargetInProcessRatio, ratio >= kTargetInProcessRatio ? "met" : "NOT met", ratio);
    }
    if (m.name == "spated_tcp_loopback") {
      const bool met = m.events_per_s() >= kTargetTcpEventsPerS;
      met_all &= met;
      fmt::print(stderr, "target: spated over loopback TCP, {} shards, sender included, >= {:.0f} M events/s: {} ({:.2f} M){}\n",
                 kTargetTcpShards, kTargetTcpEventsPerS / 1e6, met ? "met" : "NOT met", m.events_per_s() / 1e6,
                 m.shards == kTargetTcpShards ? "" : fmt::format(" [measured with {} shards]", m.shards));
    }
  }
  return met_all;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spate-e2e-harness: raw simdjson parse vs the pipeline in process and spated over loopback TCP"};
  Options o;
  app.add_option("--events", o.events, "events to generate when --input is not given")
      ->capture_default_str()
      ->check(CLI::Range(1ull, 1ull << 34));
  app.add_option("--seed", o.seed, "spate-gen seed")->capture_default_str();
  app.add_option("--input", o.input, "NDJSON file to use instead of generating one")->check(CLI::ExistingFile);
  app.add_option("--shards", o.shards, "shards of the N-shard runs (default: CPUs in the affinity mask)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--connections", o.connections, "TCP sender connections, one thread each (default: --shards)")
      ->check(CLI::Range(1, 256));
  app.add_option("--spated", o.spated, "spated binary (default: ../src/spated beside this harness)");
  app.add_option("--spate-gen", o.spate_gen, "spate-gen binary (default: ../tools/spate-gen beside this harness)");
  app.add_flag("--skip-tcp", o.skip_tcp, "skip the spated loopback TCP measurement");
  app.add_flag("--restart", o.restart,
               "after each TCP run, restart spated on its segments and time launch to ready (every segment replayed)");
  app.add_flag("--skip-in-process", o.skip_in_process, "skip the in-process pipeline measurements (for profiling)");
  app.add_flag("--profile", o.profile,
               "run only the in-process pipeline from memory (--shards, default 1), --repeat times, to profile it");
  app.add_option("--port-base", o.port_base, "spated TCP ingest port; the query port is +1 (default: free ports)")
      ->check(CLI::Range(1, 65534));
  app.add_option("--repeat", o.repeat, "runs of each pipeline measurement; the best is kept")
      ->capture_default_str()
      ->check(CLI::Range(1, 20));
  app.add_option("--timeout", o.timeout_s, "seconds before everything is stopped and the harness fails")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 3600.0));
  app.add_flag("--keep-temp", g_keep_tmp, "keep the temporary directory (input, logs)");
  app.add_option("--query-latency", o.query_latency_passes,
                 "only this: PING latency while the input is sent N times and two clients ask VIEW_TOP back to back")
      ->check(CLI::Range(1, 1000));
  app.add_option("--spated-config", g_spated_config, "pipeline file for spated and the in-process runs (its views must be the default ones; in process the log stays off)")
      ->check(CLI::ExistingFile);
  app.add_flag("--enforce-targets", o.enforce, "exit 3 when a project target is missed");
  CLI11_PARSE(app, argc, argv);

  ::signal(SIGPIPE, SIG_IGN);
  Watchdog watchdog(o.timeout_s);
  bool met = false;
  try {
    met = run_all(o);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  cleanup();
  return o.enforce && !met ? kExitTargetsMissed : 0;
}
