// spate-gen: deterministic synthetic clickstream generator. Writes NDJSON events (with out-of-order,
// late, duplicate and hostile lines on request) to a file, TCP, UDP or query-protocol PUBLISH, and
// can write the exact per-view results an engine should compute from what it sent.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "kernels/rfc3339.hpp"
#include "src/query/client.hpp"

namespace spate::gen {
namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Constants of the generated stream.

constexpr std::uint64_t kOne53 = std::uint64_t{1} << 53;  // probabilities are 53-bit integers
constexpr std::uint64_t kLateWarmupEvents = 10000;        // no late event before every shard saw traffic
constexpr std::int64_t kOooMaxMs = 2000;                  // out-of-order: ts = now - [1, 2000]
constexpr std::int64_t kLateMinMs = 600000;               // late: ts = now - [600000, 1200000]
constexpr std::int64_t kLateSpanMs = 600000;
constexpr std::size_t kDupRing = 1024;                    // recent events a duplicate may copy
constexpr std::uint64_t kDupLookbackEvents = 1000;
constexpr double kDupLookbackMs = 1000.0;                 // a duplicate copies an event at most ~1 s older...
constexpr std::int64_t kDupMaxBehindMs = 3000;            // ...so its ts is never 3 s behind now (lateness 5 s)
constexpr std::uint32_t kMaxAmountCents = 99999;          // amounts 0.01 .. 999.99
constexpr std::uint32_t kPages = 10000;
constexpr std::int64_t kSessionMs = 30 * 60 * 1000;       // a user's session id changes every 30 min
constexpr std::int64_t kMinStartMs = kLateMinMs + kLateSpanMs;      // keeps every ts >= 0
constexpr std::int64_t kMaxTsMs = 253402300799999 - kLateSpanMs;   // RFC 3339 years stay <= 9999
constexpr std::size_t kUdpMaxPayload = 65507;
constexpr std::size_t kMaxInflightBatches = 16;
constexpr std::size_t kOversizedSlackMin = 64;    // an oversized line exceeds the limit by 64..1087 bytes
constexpr std::size_t kOversizedSlackSpan = 1024;
constexpr std::size_t kQueueDepth = 4;            // chunks queued per output thread

constexpr std::array<const char*, 4> kUserAgents = {
    "Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (Windows NT 10.0)", "Mozilla/5.0 (Macintosh)",
    "Mozilla/5.0 (iPhone; iOS 17)"};
constexpr std::array<const char*, 5> kPageKinds = {"item", "list", "cart", "search", "home"};

enum class Reason : std::uint8_t { malformed_json, missing_field, wrong_type, bad_timestamp, oversized_line };
constexpr std::size_t kReasons = 5;
constexpr std::array<const char*, kReasons> kReasonNames = {"malformed_json", "missing_field", "wrong_type",
                                                            "bad_timestamp", "oversized_line"};

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: xoshiro256** seeded through splitmix64. Every draw is an integer
// operation, so a seed yields the same stream on every machine and library version.

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t mix64(std::uint64_t v) noexcept { return splitmix64(v); }

class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept {
    for (auto& word : s_) word = splitmix64(seed);
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 2^53): compared against probabilities scaled by 2^53.
  std::uint64_t bits53() noexcept { return next() >> 11; }
  // Uniform in [0, n) by multiply-shift (bias below 2^-40 for the ranges used here).
  std::uint64_t below(std::uint64_t n) noexcept {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

std::uint64_t probability53(double p) noexcept {
  return static_cast<std::uint64_t>(std::clamp(p, 0.0, 1.0) * static_cast<double>(kOne53));
}

// k^-theta from + - * / and exact frexp/ldexp only: libm's pow may differ in the last bit
// between libc versions, which would move a zipf threshold and change the stream. Every product
// that meets an addition is exact (a power of two, or a small integer times the 32-bit head of
// ln 2), so a compiler contracting a*b+c into an fma cannot change a result either.
constexpr double kLn2Head = 6.93147180369123816490e-01;  // 0x3fe62e42fee00000: low 21 bits zero

double det_log(double x) noexcept {  // x >= 1
  int e = 0;
  double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);  // |s| < 0.172: ln m = 2 atanh(s)
  const double s2 = s * s;
  double term = s;
  double sum = 0.0;
  for (int k = 0; k < 24; ++k) {
    sum += term / static_cast<double>(2 * k + 1);
    term *= s2;
  }
  return 2.0 * sum + static_cast<double>(e) * kLn2Head;
}

double det_exp(double y) noexcept {  // y <= 0
  const double n = std::floor(y / kLn2Head + 0.5);
  const double r = y - n * kLn2Head;  // |r| <= ~0.35
  double term = 1.0;
  double sum = 1.0;
  for (int k = 1; k < 24; ++k) {
    term = term * r / static_cast<double>(k);
    sum += term;
  }
  return std::ldexp(sum, static_cast<int>(n));
}

// Draws an index in [0, n) from fixed weights: cumulative thresholds in 2^53 units, a guide
// table indexed by the top 16 bits finds the start, a short scan finishes (O(1) expected;
// a plain binary search over 10000 users costs ~14 mispredicted branches per event).
class WeightedTable {
 public:
  explicit WeightedTable(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    thresholds_.resize(weights.size());
    double cum = 0;
    for (std::size_t k = 0; k < weights.size(); ++k) {
      cum += weights[k];
      thresholds_[k] = static_cast<std::uint64_t>(cum / total * static_cast<double>(kOne53));
    }
    thresholds_.back() = kOne53;
    for (std::size_t k = 1; k < thresholds_.size(); ++k) {
      thresholds_[k] = std::max(thresholds_[k], thresholds_[k - 1]);
    }
    guide_.resize(std::size_t{1} << kGuideBits);
    std::uint32_t k = 0;
    for (std::size_t g = 0; g < guide_.size(); ++g) {
      const std::uint64_t floor_value = static_cast<std::uint64_t>(g) << (53 - kGuideBits);
      while (thresholds_[k] <= floor_value) ++k;
      guide_[g] = k;
    }
  }
  std::uint32_t draw(std::uint64_t r53) const noexcept {
    std::uint32_t k = guide_[r53 >> (53 - kGuideBits)];
    while (thresholds_[k] <= r53) ++k;
    return k;
  }

 private:
  static constexpr unsigned kGuideBits = 16;
  std::vector<std::uint64_t> thresholds_;
  std::vector<std::uint32_t> guide_;
};

std::vector<double> zipf_weights(std::uint32_t n, double theta) {
  std::vector<double> w(n);
  for (std::uint32_t k = 0; k < n; ++k) {
    const volatile double y = -theta * det_log(static_cast<double>(k + 1));  // rounded here, not fused
    w[k] = det_exp(y);
  }
  return w;
}

std::vector<double> type_weights(std::size_t n) {  // the first listed type is the most frequent
  std::vector<double> w(n);
  for (std::size_t k = 0; k < n; ++k) w[k] = 1.0 / static_cast<double>(k + 1);
  return w;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// ---------------------------------------------------------------------------------------------
// Hand-written formatting of the event line (fixed shapes, digit pairs from a table).

constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

unsigned decimal_digits(std::uint64_t v) noexcept {
  unsigned n = 1;
  while (n < 20 && v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

// Writes v with at least `width` digits (zero-padded).
char* put_u64(char* p, std::uint64_t v, unsigned width = 1) noexcept {
  const unsigned n = std::max(decimal_digits(v), width);
  char* const end = p + n;
  char* q = end;
  while (v >= 100) {
    q -= 2;
    std::memcpy(q, kDigitPairs + (v % 100) * 2, 2);
    v /= 100;
  }
  if (v >= 10) {
    q -= 2;
    std::memcpy(q, kDigitPairs + v * 2, 2);
  } else {
    *--q = static_cast<char>('0' + v);
  }
  while (q > p) *--q = '0';
  return end;
}

char* put_i64(char* p, std::int64_t v) noexcept {
  if (v < 0) {
    *p++ = '-';
    return put_u64(p, 0 - static_cast<std::uint64_t>(v));
  }
  return put_u64(p, static_cast<std::uint64_t>(v));
}

char* put_cents(char* p, std::uint32_t cents) noexcept {
  p = put_u64(p, cents / 100);
  *p++ = '.';
  std::memcpy(p, kDigitPairs + (cents % 100) * 2, 2);
  return p + 2;
}

char* put_hex6(char* p, std::uint32_t v) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 5; i >= 0; --i) {
    p[i] = kHex[v & 15];
    v >>= 4;
  }
  return p + 6;
}

template <std::size_t N>
char* put_lit(char* p, const char (&s)[N]) noexcept {
  std::memcpy(p, s, N - 1);
  return p + N - 1;
}

char* put_str(char* p, std::string_view s) noexcept {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

struct Event {
  std::int64_t id = 0;
  std::int64_t ts = 0;
  std::uint32_t user = 0;     // 1-based: "u<user>"
  std::uint32_t cents = 0;    // amount in cents, 1..99999
  std::uint32_t session = 0;  // 24 bits
  std::uint16_t page = 0;
  std::uint8_t type = 0;
  bool rfc = false;  // ts written as an RFC 3339 string
  bool late = false;
};

constexpr std::size_t kMaxTypeBytes = 32;
constexpr std::size_t kMaxEventLineBytes = 400;  // generous bound of write_event's output

// {"id":"e00000000042","ts":1764000000042,"user":"u1234","type":"click","amount":12.34,
//  "session":"s3f9a2c","page":"/p/1234/item","ua":"Mozilla/5.0 (X11; Linux)"}  (newline not included)
char* write_event_body(char* p, const Event& e, std::string_view type, char id_prefix) noexcept {
  p = put_lit(p, "{\"id\":\"");
  *p++ = id_prefix;
  p = put_u64(p, static_cast<std::uint64_t>(e.id), 11);
  p = put_lit(p, "\",\"ts\":");
  if (e.rfc) {
    *p++ = '"';
    p += kernels::format_rfc3339_ms(e.ts, p);
    *p++ = '"';
  } else {
    p = put_i64(p, e.ts);
  }
  p = put_lit(p, ",\"user\":\"u");
  p = put_u64(p, e.user);
  p = put_lit(p, "\",\"type\":\"");
  p = put_str(p, type);
  p = put_lit(p, "\",\"amount\":");
  p = put_cents(p, e.cents);
  p = put_lit(p, ",\"session\":\"s");
  p = put_hex6(p, e.session);
  p = put_lit(p, "\",\"page\":\"/p/");
  p = put_u64(p, e.page);
  *p++ = '/';
  p = put_str(p, kPageKinds[e.type % kPageKinds.size()]);
  p = put_lit(p, "\",\"ua\":\"");
  p = put_str(p, kUserAgents[e.user % kUserAgents.size()]);
  p = put_lit(p, "\"}");
  return p;
}

// ---------------------------------------------------------------------------------------------
// Options.

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string text;  // as given
};

struct Options {
  std::uint64_t events = 1000000;
  std::uint64_t seed = 42;
  std::uint32_t users = 10000;
  double zipf = 1.1;
  std::string types_text = "click,view,purchase,cart,search";
  std::vector<std::string> types;
  std::int64_t start_ms = 1764000000000;
  double step_ms = 1.0;
  double ooo_share = 0.05;
  double late_share = 0.001;
  double dup_share = 0.01;
  double rfc3339_share = 0.1;
  double hostile_share = 0.0;
  std::size_t max_line_bytes = 65536;

  std::string out = "-";
  std::string tcp;
  std::string udp;
  std::string publish;
  std::optional<Endpoint> endpoint;
  unsigned connections = 1;
  std::size_t udp_payload = 1400;
  std::size_t batch = 1000;
  std::optional<std::uint64_t> producer_id;

  double rate = 0;
  bool progress = false;
  std::string expect;
};

Endpoint parse_endpoint(const std::string& text, const char* option) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    throw std::runtime_error(fmt::format("{} {}: expected HOST:PORT", option, text));
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || port == 0 || port > 65535 || port_text[0] == '-' || port_text[0] == '+') {
    throw std::runtime_error(fmt::format("{} {}: bad port '{}'", option, text, port_text));
  }
  return Endpoint{host, static_cast<std::uint16_t>(port), text};
}

std::vector<std::string> split_types(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name.empty() || name.size() > kMaxTypeBytes) {
      throw std::runtime_error(fmt::format("--types: each type needs 1..{} characters", kMaxTypeBytes));
    }
    for (const char c : name) {
      if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
        throw std::runtime_error(fmt::format("--types: '{}' has a character that would need JSON escaping", name));
      }
    }
    if (std::find(out.begin(), out.end(), name) != out.end()) {
      throw std::runtime_error(fmt::format("--types: '{}' is listed twice", name));
    }
    out.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.size() > 255) throw std::runtime_error("--types: at most 255 types");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Expected results, computed from the generated events alone.

class WindowAgg {
 public:
  struct Row {
    std::uint32_t key = 0;
    std::int64_t window_start = 0;
    std::uint64_t count = 0;
    double sum = 0;
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
  };

  WindowAgg(std::int64_t width_ms, std::size_t keys) : width_ms_(width_ms), recent_(keys) {}

  void add(std::uint32_t key, std::int64_t ts, double amount) {
    const std::int64_t window = floor_div(ts, width_ms_) * width_ms_;
    // Events arrive nearly in order, so a key's two newest windows take almost every event;
    // older windows are found by walking the key's rows, newest first (rare: only disorder
    // wider than a window reaches them).
    Recent& c = recent_[key];
    std::uint32_t row;
    if (c.window[0] == window) {
      row = c.row[0];
    } else if (c.window[1] == window) {
      row = c.row[1];
    } else if (window > c.window[0]) {  // newer than any window of the key: a new row
      row = new_row(key, window);
      c.window[1] = c.window[0];
      c.row[1] = c.row[0];
      c.window[0] = window;
      c.row[0] = row;
    } else {
      row = find_or_new_row(key, window);
      c.window[1] = window;
      c.row[1] = row;
    }
    Row& r = rows_[row];
    r.count += 1;
    r.sum += amount;
    r.min = std::min(r.min, amount);
    r.max = std::max(r.max, amount);
  }

  std::int64_t width_ms() const noexcept { return width_ms_; }
  std::size_t keys() const noexcept { return recent_.size(); }
  const std::vector<Row>& rows() const noexcept { return rows_; }

 private:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  struct Recent {
    std::array<std::int64_t, 2> window{std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::min()};
    std::array<std::uint32_t, 2> row{};
    std::uint32_t newest_row = kNone;  // head of the key's rows, newest first
  };

  std::uint32_t new_row(std::uint32_t key, std::int64_t window) {
    const auto row = static_cast<std::uint32_t>(rows_.size());
    rows_.push_back(Row{key, window});
    older_.push_back(recent_[key].newest_row);
    recent_[key].newest_row = row;
    return row;
  }
  std::uint32_t find_or_new_row(std::uint32_t key, std::int64_t window) {
    for (std::uint32_t r = recent_[key].newest_row; r != kNone; r = older_[r]) {
      if (rows_[r].window_start == window) return r;
    }
    return new_row(key, window);
  }

  std::int64_t width_ms_;
  std::vector<Recent> recent_;
  std::vector<Row> rows_;
  std::vector<std::uint32_t> older_;  // per row: the key's next older row, or kNone
};

struct Counts {
  std::uint64_t events = 0;  // event lines, duplicates and late ones included
  std::uint64_t late = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t hostile = 0;
  std::array<std::uint64_t, kReasons> rejects{};
};

class Expect {
 public:
  Expect(std::uint32_t users, const std::vector<std::string>& types)
      : types_(types), per_user_(60000, users + 1), per_type_(10000, types.size()), amounts_(kMaxAmountCents + 1) {
    // The amount the engine reads is strtod of the printed text; use exactly that value.
    for (std::uint32_t c = 1; c <= kMaxAmountCents; ++c) {
      char buf[16];
      *put_cents(buf, c) = '\0';
      amounts_[c] = std::strtod(buf, nullptr);
    }
  }

  void add(const Event& e) {
    const double amount = amounts_[e.cents];
    per_user_.add(e.user, e.ts, amount);
    per_type_.add(e.type, e.ts, amount);
  }

  void write(const std::string& path, const Counts& counts) const {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error(fmt::format("--expect {}: {}", path, std::strerror(errno)));
    Output out{f};
    auto it = fmt::appender(out.buf);
    fmt::format_to(it,
                   "{{\"kind\":\"summary\",\"events\":{},\"late\":{},\"duplicates\":{},\"good\":{},\"hostile\":{},"
                   "\"rejects\":{{",
                   counts.events, counts.late, counts.duplicates, counts.events - counts.late, counts.hostile);
    for (std::size_t r = 0; r < kReasons; ++r) {
      fmt::format_to(it, "{}\"{}\":{}", r == 0 ? "" : ",", kReasonNames[r], counts.rejects[r]);
    }
    fmt::format_to(it, "}}}}\n");
    // Views sorted by name, rows by key (bytewise) then window_start.
    write_view(out, "per_type_10s", per_type_, [&](std::uint32_t k) { return types_[k]; }, false);
    write_view(out, "per_user_1m", per_user_, [](std::uint32_t k) { return fmt::format("u{}", k); }, true);
    out.flush();
    if (std::fclose(f) != 0 || out.failed) throw std::runtime_error(fmt::format("--expect {}: write failed", path));
  }

 private:
  struct Output {
    explicit Output(std::FILE* file) : f(file) {}
    std::FILE* f;
    fmt::memory_buffer buf;
    bool failed = false;
    void flush() {
      if (std::fwrite(buf.data(), 1, buf.size(), f) != buf.size()) failed = true;
      buf.clear();
    }
  };

  template <typename KeyName>
  static void write_view(Output& out, std::string_view view, const WindowAgg& agg, KeyName key_name,
                         bool min_max_avg) {
    // Rank the keys present by name once, then sort rows by (rank, window_start) with integer compares.
    const auto& rows = agg.rows();
    std::vector<std::string> names(agg.keys());
    std::vector<std::uint32_t> by_name;
    for (const auto& r : rows) {
      if (names[r.key].empty()) {
        names[r.key] = key_name(r.key);
        by_name.push_back(r.key);
      }
    }
    std::sort(by_name.begin(), by_name.end(), [&](std::uint32_t a, std::uint32_t b) { return names[a] < names[b]; });
    std::vector<std::uint32_t> rank(names.size());
    for (std::uint32_t r = 0; r < by_name.size(); ++r) rank[by_name[r]] = r;
    std::vector<std::pair<std::uint64_t, std::int64_t>> order(rows.size());  // (rank << 32 | row, window)
    for (std::uint32_t i = 0; i < rows.size(); ++i) {
      order[i] = {(static_cast<std::uint64_t>(rank[rows[i].key]) << 32) | i, rows[i].window_start};
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      if ((a.first >> 32) != (b.first >> 32)) return (a.first >> 32) < (b.first >> 32);
      return a.second < b.second;
    });
    auto it = fmt::appender(out.buf);
    for (const auto& o : order) {
      const auto& r = rows[static_cast<std::uint32_t>(o.first)];
      fmt::format_to(it,
                     "{{\"kind\":\"window\",\"view\":\"{}\",\"key\":\"{}\",\"window_start\":{},\"window_end\":{},"
                     "\"count\":{},\"sum(amount)\":{:.17g}",
                     view, names[r.key], r.window_start, r.window_start + agg.width_ms(), r.count, r.sum);
      if (min_max_avg) {
        fmt::format_to(it, ",\"min(amount)\":{:.17g},\"max(amount)\":{:.17g},\"avg(amount)\":{:.17g}", r.min, r.max,
                       r.sum / static_cast<double>(r.count));
      }
      fmt::format_to(it, "}}\n");
      if (out.buf.size() >= (std::size_t{1} << 20)) out.flush();
    }
  }

  const std::vector<std::string>& types_;
  WindowAgg per_user_;
  WindowAgg per_type_;
  std::vector<double> amounts_;
};

// ---------------------------------------------------------------------------------------------
// The generator: one line per call, into a caller's buffer.

class Generator {
 public:
  Generator(const Options& o, Expect* expect)
      : o_(o),
        expect_(expect),
        rng_(o.seed),
        hostile_rng_(o.seed ^ 0x6a09e667f3bcc909ull),  // own stream: events do not depend on hostile share
        users_(zipf_weights(o.users, o.zipf)),
        types_(type_weights(o.types.size())),
        dup_end_(probability53(o.dup_share)),
        late_end_(probability53(o.dup_share + o.late_share)),
        ooo_end_(probability53(o.dup_share + o.late_share + o.ooo_share)),
        rfc_(probability53(o.rfc3339_share)),
        hostile_(probability53(o.hostile_share)) {
    dup_lookback_ = kDupLookbackEvents;
    if (o.step_ms > 0) {
      dup_lookback_ = static_cast<std::uint64_t>(
          std::clamp(kDupLookbackMs / o.step_ms, 1.0, static_cast<double>(kDupLookbackEvents)));
    }
  }

  bool done() const noexcept { return counts_.events >= o_.events; }
  const Counts& counts() const noexcept { return counts_; }

  // Upper bound of the bytes one call to next_line writes.
  std::size_t line_capacity() const noexcept {
    return std::max(kMaxEventLineBytes, oversized_bytes_max(o_.max_line_bytes) + 16);
  }
  static std::size_t oversized_bytes_max(std::size_t max_line_bytes) noexcept {
    return max_line_bytes + kOversizedSlackMin + kOversizedSlackSpan + 1;  // + newline
  }

  // Writes the next line (with its newline) at p and returns its end.
  char* next_line(char* p, bool& is_event) {
    if (!hostile_checked_) {
      hostile_checked_ = true;
      if (hostile_ != 0 && hostile_rng_.bits53() < hostile_) {
        is_event = false;
        return next_hostile(p);
      }
    }
    hostile_checked_ = false;
    is_event = true;
    return next_event(p);
  }

 private:
  std::int64_t now_of(std::uint64_t i) const noexcept {
    return o_.start_ms + static_cast<std::int64_t>(static_cast<double>(i) * o_.step_ms);
  }
  std::string_view type_name(std::uint8_t t) const noexcept { return o_.types[t]; }

  char* emit(char* p, const Event& e) {
    p = write_event_body(p, e, type_name(e.type), 'e');
    *p++ = '\n';
    return p;
  }

  void account(const Event& e) {
    if (e.late) {
      ++counts_.late;
    } else if (expect_ != nullptr) {
      expect_->add(e);
    }
  }

  Event fresh(Rng& rng, std::int64_t ts) const noexcept {
    Event e;
    e.ts = ts;
    e.user = users_.draw(rng.bits53()) + 1;
    e.type = static_cast<std::uint8_t>(types_.draw(rng.bits53()));
    e.cents = static_cast<std::uint32_t>(1 + rng.below(kMaxAmountCents));
    e.page = static_cast<std::uint16_t>(rng.below(kPages));
    e.rfc = rng.bits53() < rfc_;
    return e;
  }

  std::uint32_t session_of(std::uint32_t user, std::int64_t ts) const noexcept {
    const auto bucket = static_cast<std::uint64_t>(floor_div(ts, kSessionMs));
    return static_cast<std::uint32_t>(mix64((static_cast<std::uint64_t>(user) << 32) ^ bucket ^ o_.seed) & 0xffffff);
  }

  char* next_event(char* p) {
    const std::uint64_t i = counts_.events++;
    const std::int64_t now = now_of(i);
    const std::uint64_t u = rng_.bits53();
    if (u < dup_end_ && ring_size_ > 0) {
      const std::uint64_t back = rng_.below(std::min<std::uint64_t>(ring_size_, dup_lookback_));
      const Event& src = ring_[(ring_next_ - 1 - back) % kDupRing];
      if (src.late || src.ts >= now - kDupMaxBehindMs) {  // a re-sent late event is late again
        ++counts_.duplicates;
        account(src);
        return emit(p, src);
      }
    }
    Event e = fresh(rng_, now);
    e.id = static_cast<std::int64_t>(next_id_++);
    if (u >= dup_end_ && u < late_end_) {
      if (i >= kLateWarmupEvents) {
        e.late = true;
        e.ts = now - kLateMinMs - static_cast<std::int64_t>(rng_.below(kLateSpanMs + 1));
      }
    } else if (u >= late_end_ && u < ooo_end_) {
      e.ts = now - 1 - static_cast<std::int64_t>(rng_.below(kOooMaxMs));
    }
    e.session = session_of(e.user, e.ts);
    ring_[ring_next_ % kDupRing] = e;
    ++ring_next_;
    ring_size_ = std::min<std::uint64_t>(ring_size_ + 1, kDupRing);
    account(e);
    return emit(p, e);
  }

  // Rotates through the reasons; each reason rotates through its variants.
  char* next_hostile(char* p) {
    const std::uint64_t n = counts_.hostile++;
    const auto reason = static_cast<Reason>(n % kReasons);
    const std::uint64_t variant = n / kReasons;
    ++counts_.rejects[n % kReasons];

    Event h = fresh(hostile_rng_, now_of(counts_.events));
    h.id = static_cast<std::int64_t>(n);
    h.rfc = false;
    h.session = session_of(h.user, h.ts);
    std::string& s = scratch_;
    s.clear();
    const std::string_view type = type_name(h.type);

    switch (reason) {
      case Reason::malformed_json: {
        switch (variant % 6) {
          case 0: {  // truncated inside the "user" string: a lazy parser still hits the end
            char buf[kMaxEventLineBytes];
            const std::string_view line(buf, static_cast<std::size_t>(write_event_body(buf, h, type, 'h') - buf));
            s.assign(line.substr(0, line.find("\"user\":\"") + 9));
            break;
          }
          case 1: s = "GET / HTTP/1.1"; break;
          case 2: s = "\x80\xfe\xff garbage \x01\x02\x7f"; break;
          case 3: s = "[1,2]"; break;
          case 4: s = "42"; break;
          default: {  // unquoted key
            char buf[kMaxEventLineBytes];
            const std::string_view line(buf, static_cast<std::size_t>(write_event_body(buf, h, type, 'h') - buf));
            s.assign("{id:");
            s.append(line.substr(6));
            break;
          }
        }
        break;
      }
      case Reason::missing_field:
        append_fields(s, h, type, static_cast<int>(variant % 5), -1);
        break;
      case Reason::wrong_type:
        append_fields(s, h, type, -1, static_cast<int>(variant % 4));
        break;
      case Reason::bad_timestamp:
        append_fields(s, h, type, -1, 4 + static_cast<int>(variant % 2));
        break;
      case Reason::oversized_line: {
        char buf[kMaxEventLineBytes];
        const std::size_t body = static_cast<std::size_t>(write_event_body(buf, h, type, 'h') - buf);
        const std::size_t target =
            o_.max_line_bytes + kOversizedSlackMin + static_cast<std::size_t>(hostile_rng_.below(kOversizedSlackSpan));
        constexpr std::string_view kPadOpen = ",\"pad\":\"";
        const std::size_t fixed = body - 1 + kPadOpen.size() + 2;  // body without '}', pad, "}
        s.assign(buf, body - 1);
        s.append(kPadOpen);
        s.append(target > fixed ? target - fixed : 1, 'x');
        s.append("\"}");
        break;
      }
    }
    std::memcpy(p, s.data(), s.size());
    p += s.size();
    *p++ = '\n';
    return p;
  }

  // An event object with field `omit` (0 id, 1 ts, 2 user, 3 type, 4 amount) left out, or one
  // field given a wrong value (`wrong`: 0 amount as string, 1 user as number, 2 ts as bool,
  // 3 type as number, 4 ts "not-a-date", 5 ts with out-of-range fields).
  static void append_fields(std::string& s, const Event& e, std::string_view type, int omit, int wrong) {
    auto out = std::back_inserter(s);
    s.push_back('{');
    bool first = true;
    auto sep = [&] {
      if (!first) s.push_back(',');
      first = false;
    };
    if (omit != 0) {
      sep();
      fmt::format_to(out, "\"id\":\"h{:011}\"", e.id);
    }
    if (omit != 1) {
      sep();
      if (wrong == 2) {
        s.append("\"ts\":true");
      } else if (wrong == 4) {
        s.append("\"ts\":\"not-a-date\"");
      } else if (wrong == 5) {
        s.append("\"ts\":\"2025-13-45T99:00:00Z\"");
      } else {
        fmt::format_to(out, "\"ts\":{}", e.ts);
      }
    }
    if (omit != 2) {
      sep();
      if (wrong == 1) {
        fmt::format_to(out, "\"user\":{}", e.user);
      } else {
        fmt::format_to(out, "\"user\":\"u{}\"", e.user);
      }
    }
    if (omit != 3) {
      sep();
      if (wrong == 3) {
        fmt::format_to(out, "\"type\":{}", e.type + 7);
      } else {
        fmt::format_to(out, "\"type\":\"{}\"", type);
      }
    }
    if (omit != 4) {
      sep();
      if (wrong == 0) {
        fmt::format_to(out, "\"amount\":\"{}.{:02}\"", e.cents / 100, e.cents % 100);
      } else {
        fmt::format_to(out, "\"amount\":{}.{:02}", e.cents / 100, e.cents % 100);
      }
    }
    sep();
    fmt::format_to(out, "\"session\":\"s{:06x}\",\"page\":\"/p/{}/{}\",\"ua\":\"{}\"}}", e.session, e.page,
                   kPageKinds[e.type % kPageKinds.size()], kUserAgents[e.user % kUserAgents.size()]);
  }

  const Options& o_;
  Expect* expect_;
  Rng rng_;
  Rng hostile_rng_;
  WeightedTable users_;
  WeightedTable types_;
  std::uint64_t dup_end_, late_end_, ooo_end_, rfc_, hostile_;
  std::uint64_t dup_lookback_ = kDupLookbackEvents;
  std::array<Event, kDupRing> ring_{};
  std::uint64_t ring_next_ = 0;
  std::uint64_t ring_size_ = 0;
  std::uint64_t next_id_ = 0;
  bool hostile_checked_ = false;
  Counts counts_;
  std::string scratch_;
};

// ---------------------------------------------------------------------------------------------
// Chunks and the threads that send them.

struct Chunk {
  std::unique_ptr<char[]> data;
  std::size_t capacity = 0;
  std::size_t len = 0;
  std::uint64_t events = 0;
  std::uint64_t lines = 0;
};

template <typename T>
class BlockingQueue {
 public:
  explicit BlockingQueue(std::size_t capacity) : capacity_(capacity) {}
  void push(T v) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(v));
    not_empty_.notify_one();
  }
  // Waits for an item; nullopt once closed and empty.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T v = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return v;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

struct Shared {
  BlockingQueue<Chunk*> free_chunks{std::numeric_limits<std::size_t>::max()};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string error;
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> datagrams{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> duplicate_batches{0};
  std::atomic<std::uint64_t> overloaded_retries{0};

  void fail(const std::string& message) {
    std::lock_guard lock(error_mutex);
    if (error.empty()) error = message;
    failed = true;
  }
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Sends a chunk (throws std::runtime_error). Returns true when the sink keeps the chunk and
  // hands it back to the free list itself later.
  virtual bool send(Chunk& chunk) = 0;
  virtual void flush() {}    // after the last chunk; part of the timed run
  virtual void linger() {}   // untimed wind-down (TCP: wait for the peer's close)
  virtual void abandon() {}  // after a failure: give back every chunk still kept
};

std::string errno_text(int err) { return std::strerror(err); }

void write_all(int fd, const char* p, std::size_t n, bool socket, const std::string& what) {
  while (n > 0) {
    const ssize_t w = socket ? ::send(fd, p, n, MSG_NOSIGNAL) : ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(fmt::format("{}: {}", what, errno_text(errno)));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

class FileSink final : public Sink {
 public:
  FileSink(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {}
  ~FileSink() override {
    if (owned_) ::close(fd_);
  }
  bool send(Chunk& c) override {
    write_all(fd_, c.data.get(), c.len, false, name_);
    return false;
  }
  void flush() override {
    if (owned_ && ::close(fd_) != 0) {
      owned_ = false;
      throw std::runtime_error(fmt::format("{}: {}", name_, errno_text(errno)));
    }
    owned_ = false;
  }

 private:
  int fd_;
  bool owned_;
  std::string name_;
};

int connect_to(const Endpoint& ep, int socktype, const char* option) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(ep.port);
  const int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) throw std::runtime_error(fmt::format("{} {}: {}", option, ep.text, ::gai_strerror(rc)));
  int last_err = 0;
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    last_err = errno;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) throw std::runtime_error(fmt::format("{} {}: cannot connect: {}", option, ep.text, errno_text(last_err)));
  return fd;
}

class TcpSink final : public Sink {
 public:
  TcpSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  ~TcpSink() override { ::close(fd_); }
  bool send(Chunk& c) override {
    write_all(fd_, c.data.get(), c.len, true, name_);
    discard_input(false);
    return false;
  }
  void flush() override {
    if (::shutdown(fd_, SHUT_WR) != 0) throw std::runtime_error(fmt::format("{}: {}", name_, errno_text(errno)));
  }
  // Reads until the peer closes (or 500 ms of silence), so unread replies do not turn our close
  // into a reset that could discard data the peer has not read yet.
  void linger() override { discard_input(true); }

 private:
  // Drops whatever the peer sent (acks); the peer must not stall on a full send buffer.
  void discard_input(bool until_eof) {
    char buf[16384];
    for (;;) {
      if (until_eof) {
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 500) <= 0) return;
      }
      const ssize_t r = ::recv(fd_, buf, sizeof buf, until_eof ? 0 : MSG_DONTWAIT);
      if (r > 0) continue;
      if (r < 0 && errno == EINTR) continue;
      if (r == 0 && !until_eof) throw std::runtime_error(fmt::format("{}: connection closed by peer", name_));
      return;
    }
  }
  int fd_;
  std::string name_;
};

// Packs whole lines into datagrams of at most `payload` bytes (a longer line goes alone) and
// sends them with sendmmsg, 64 per call.
class UdpSink final : public Sink {
 public:
  UdpSink(int fd, std::size_t payload, std::string name, Shared& shared)
      : fd_(fd), payload_(payload), name_(std::move(name)), shared_(shared) {}
  ~UdpSink() override { ::close(fd_); }
  bool send(Chunk& c) override {
    const char* base = c.data.get();
    const std::size_t n = c.len;
    std::size_t pos = 0;
    while (pos < n) {
      unsigned count = 0;
      while (count < kBatch && pos < n) {
        const std::size_t start = pos;
        std::size_t end = pos;
        while (end < n) {
          const void* nl = std::memchr(base + end, '\n', n - end);
          const std::size_t line_end = nl != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nl) - base) + 1 : n;
          if (line_end - start > payload_ && end > start) break;
          end = line_end;
          if (end - start >= payload_) break;
        }
        iov_[count].iov_base = const_cast<char*>(base + start);
        iov_[count].iov_len = end - start;
        msgs_[count] = mmsghdr{};
        msgs_[count].msg_hdr.msg_iov = &iov_[count];
        msgs_[count].msg_hdr.msg_iovlen = 1;
        ++count;
        pos = end;
      }
      send_batch(count);
    }
    return false;
  }

 private:
  static constexpr unsigned kBatch = 64;
  void send_batch(unsigned count) {
    unsigned done = 0;
    while (done < count) {
      const int r = ::sendmmsg(fd_, msgs_.data() + done, count - done, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS || errno == EAGAIN) {
          std::this_thread::sleep_for(std::chrono::microseconds(50));
          continue;
        }
        if (errno == ECONNREFUSED) {
          throw std::runtime_error(fmt::format("{}: nobody is listening (port unreachable)", name_));
        }
        throw std::runtime_error(fmt::format("{}: {}", name_, errno_text(errno)));
      }
      done += static_cast<unsigned>(r);
    }
    shared_.datagrams += count;
  }
  int fd_;
  std::size_t payload_;
  std::string name_;
  Shared& shared_;
  std::array<mmsghdr, kBatch> msgs_{};
  std::array<iovec, kBatch> iov_{};
};

// One PUBLISH per chunk, sequence 1, 2, 3...; up to 16 batches in flight. A chunk is kept until
// its answer arrives: a batch refused with OVERLOADED (nothing applied) is sent again under a
// new sequence once every other answer is in, after a backoff.
class PublishSink final : public Sink {
 public:
  PublishSink(query::Client client, std::uint64_t producer_id, std::string name, Shared& shared)
      : client_(std::move(client)), producer_id_(producer_id), name_(std::move(name)), shared_(shared) {}
  bool send(Chunk& c) override {
    while (inflight_.size() >= kMaxInflightBatches) receive_one();  // refused ones count: they hold chunks
    publish(&c, next_sequence_++);
    ++shared_.batches;
    return true;
  }
  void flush() override {
    while (!inflight_.empty()) receive_one();
  }
  void abandon() override {
    for (const auto& p : inflight_) shared_.free_chunks.push(p.chunk);
    inflight_.clear();
  }

 private:
  struct Pending {
    std::uint32_t request_id;
    std::uint64_t sequence;
    Chunk* chunk;
  };
  static constexpr int kMaxOverloadRounds = 50;  // ~45 s of backoff, then give up

  std::size_t awaiting() const noexcept { return inflight_.size() - overloaded_; }

  // On failure the chunk stays the caller's.
  void publish(Chunk* c, std::uint64_t sequence) {
    try {
      const auto id = client_.publish_send(producer_id_, sequence, std::string_view(c->data.get(), c->len));
      inflight_.push_back(Pending{id, sequence, c});
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("{}: {}", name_, e.what()));
    }
  }

  void receive_one() {
    if (awaiting() > 0) {
      try {
        const auto [id, result] = client_.publish_receive();
        shared_.accepted += result.accepted;
        shared_.rejected += result.rejected;
        if (result.duplicate) ++shared_.duplicate_batches;
        const auto it = std::find_if(inflight_.begin(), inflight_.end(), [id = id](const Pending& p) {
          return p.request_id == id;
        });
        if (it != inflight_.end()) {
          shared_.free_chunks.push(it->chunk);
          inflight_.erase(it);
        }
        overload_rounds_ = 0;
      } catch (const query::ClientError& e) {
        if (e.status() != query::Status::overloaded) throw std::runtime_error(fmt::format("{}: {}", name_, e.what()));
        ++overloaded_;  // which request is unknown: what is left once all answers are in
      }
    }
    if (overloaded_ > 0 && awaiting() == 0) resend_overloaded();
  }

  void resend_overloaded() {
    if (++overload_rounds_ > kMaxOverloadRounds) {
      throw std::runtime_error(fmt::format("{}: server stays OVERLOADED; lower --rate", name_));
    }
    if (!warned_) {
      fmt::print(stderr,
                 "spate-gen: {}: server OVERLOADED; retrying refused batches later, so events arrive out of "
                 "generation order and --expect results may not hold exactly\n",
                 name_);
      warned_ = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 10 << std::min(overload_rounds_, 7))));
    std::vector<Pending> refused;
    refused.swap(inflight_);
    overloaded_ = 0;
    std::sort(refused.begin(), refused.end(), [](const Pending& a, const Pending& b) { return a.sequence < b.sequence; });
    for (std::size_t i = 0; i < refused.size(); ++i) {
      try {
        publish(refused[i].chunk, next_sequence_++);
      } catch (...) {
        for (std::size_t j = i; j < refused.size(); ++j) shared_.free_chunks.push(refused[j].chunk);
        throw;
      }
      ++shared_.overloaded_retries;
    }
  }

  query::Client client_;
  std::uint64_t producer_id_;
  std::string name_;
  Shared& shared_;
  std::uint64_t next_sequence_ = 1;
  std::vector<Pending> inflight_;
  std::size_t overloaded_ = 0;  // answers that were OVERLOADED, for requests still in inflight_
  int overload_rounds_ = 0;
  bool warned_ = false;
};

// Sends every chunk of its queue; after a failure anywhere it only recycles chunks.
void run_sink(Sink& sink, BlockingQueue<Chunk*>& queue, Shared& shared, std::atomic<std::int64_t>& sent_done_ns) {
  auto fail = [&](const std::exception& e) {
    shared.fail(e.what());
    sink.abandon();
  };
  while (auto chunk = queue.pop()) {
    Chunk* c = *chunk;
    bool kept = false;
    if (!shared.failed) {
      try {
        kept = sink.send(*c);
        shared.bytes_sent += c->len;
      } catch (const std::exception& e) {
        fail(e);
      }
    }
    if (!kept) shared.free_chunks.push(c);
  }
  if (shared.failed) return;
  try {
    sink.flush();
    const std::int64_t t = Clock::now().time_since_epoch().count();
    std::int64_t prev = sent_done_ns.load();
    while (prev < t && !sent_done_ns.compare_exchange_weak(prev, t)) {
    }
    sink.linger();
  } catch (const std::exception& e) {
    fail(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Command line.

constexpr const char* kFooter = R"FOOTER(Event lines (one JSON object per line, fields in this order):
  {"id":"e00000000042","ts":1764000000042,"user":"u1234","type":"click","amount":12.34,
   "session":"s3f9a2c","page":"/p/1234/item","ua":"Mozilla/5.0 (X11; Linux)"}
  Event i (0-based, duplicates included) has now = start-ms + floor(i * step-ms); ts is now, or
  now - [1,2000] ms (out of order), or now - [600000,1200000] ms (late, after the first 10000
  events only). ts is epoch ms, or an RFC 3339 string ("2025-11-24T16:00:00.123Z") for
  --rfc3339-share of the events. Users u1..uU are zipf(THETA) distributed (u1 most frequent);
  the first listed type is the most frequent (weights 1, 1/2, 1/3, ...). amount is 0.01..999.99
  with two decimals. A duplicate re-sends one of the last ~1000 events (at most ~1 s older)
  verbatim, same id. Hostile lines (not events) rotate through malformed_json, missing_field,
  wrong_type, bad_timestamp, oversized_line; their ids start with 'h'. Events do not depend on
  --hostile-share: the same seed gives the same events with or without hostile lines.

--expect FILE (NDJSON): a summary line
  {"kind":"summary","events":N,"late":L,"duplicates":D,"good":N-L,"hostile":H,
   "rejects":{"malformed_json":a,"missing_field":b,"wrong_type":c,"bad_timestamp":d,"oversized_line":e}}
  then one line per view, key and window, sorted by view, key (bytewise), window_start:
  {"kind":"window","view":"per_type_10s","key":"click","window_start":S,"window_end":S+10000,
   "count":c,"sum(amount)":s}
  {"kind":"window","view":"per_user_1m","key":"u12","window_start":S,"window_end":S+60000,
   "count":c,"sum(amount)":s,"min(amount)":mn,"max(amount)":mx,"avg(amount)":s/c}
  Late events are excluded, duplicates counted again. Sums add the printed amounts in generation
  order (doubles, printed with 17 significant digits): an engine summing one ordered stream per
  key gets the same bits. --connections > 1 reorders events across connections, so sums may then
  differ in the last bits and events near the lateness bound may arrive late.

On success a JSON summary goes to stderr; errors print one message and exit 1.)FOOTER";

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"spate-gen: deterministic synthetic clickstream generator (NDJSON events)", "spate-gen"};
  app.footer(kFooter);
  app.get_formatter()->column_width(30);
  app.add_option("--events", o.events, "Event lines to generate, duplicates and late ones included")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed; the same options and seed give byte-identical output")->capture_default_str();
  app.add_option("--users", o.users, "Distinct users")->capture_default_str()->check(CLI::Range(1u, 20000000u));
  app.add_option("--zipf", o.zipf, "Zipf exponent of user popularity (0 = uniform)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--types", o.types_text, "Comma-separated event types, most frequent first")->capture_default_str();
  app.add_option("--start-ms", o.start_ms, "Event time of the first event, epoch ms")->capture_default_str();
  app.add_option("--step-ms", o.step_ms, "Event-time advance per event, ms")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--ooo-share", o.ooo_share, "Share of out-of-order events (ts = now - [1,2000] ms)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--late-share", o.late_share, "Share of late events (ts = now - [600000,1200000] ms)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--dup-share", o.dup_share, "Share of events re-sent verbatim with the same id")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--rfc3339-share", o.rfc3339_share, "Share of events with an RFC 3339 string ts")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--hostile-share", o.hostile_share, "Bad lines added per event line (probability)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-line-bytes", o.max_line_bytes, "Engine's line limit; oversized_line lines exceed it")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20));
  auto* out = app.add_option("--out", o.out, "Write to FILE ('-' = stdout); the default target")->capture_default_str();
  auto* tcp = app.add_option("--tcp", o.tcp, "Send over TCP to HOST:PORT");
  auto* udp = app.add_option("--udp", o.udp, "Send UDP datagrams of whole lines to HOST:PORT");
  auto* publish = app.add_option("--publish", o.publish, "PUBLISH batches over the query protocol to HOST:PORT");
  out->excludes(tcp)->excludes(udp)->excludes(publish);
  tcp->excludes(udp)->excludes(publish);
  udp->excludes(publish);
  app.add_option("--connections", o.connections,
                 "TCP connections, one thread each; chunks go round-robin (reorders events across connections)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--udp-payload", o.udp_payload, "Max datagram payload, bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{64}, kUdpMaxPayload));
  app.add_option("--batch", o.batch, "Lines per PUBLISH batch")->capture_default_str()->check(CLI::Range(1u, 10000000u));
  std::uint64_t producer_id = 0;
  auto* producer = app.add_option("--producer-id", producer_id, "PUBLISH producer id (default: the seed)");
  app.add_option("--rate", o.rate, "Events per second limit, 0 = unlimited")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e10));
  app.add_flag("--progress", o.progress, "Print progress to stderr once per second");
  app.add_option("--expect", o.expect, "Write the expected summary and view results (NDJSON) to FILE");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (producer->count() > 0) o.producer_id = producer_id;

  try {
    o.types = split_types(o.types_text);
    if (o.dup_share + o.late_share + o.ooo_share > 1.0) {
      throw std::runtime_error("--dup-share + --late-share + --ooo-share must not exceed 1");
    }
    if (o.start_ms < kMinStartMs) throw std::runtime_error(fmt::format("--start-ms must be at least {}", kMinStartMs));
    if (static_cast<double>(o.start_ms) + static_cast<double>(o.events) * o.step_ms > static_cast<double>(kMaxTsMs)) {
      throw std::runtime_error("--start-ms + --events * --step-ms goes past year 9999");
    }
    if (o.connections > 1 && o.tcp.empty()) throw std::runtime_error("--connections applies to --tcp only");
    if (!o.tcp.empty()) o.endpoint = parse_endpoint(o.tcp, "--tcp");
    if (!o.udp.empty()) o.endpoint = parse_endpoint(o.udp, "--udp");
    if (!o.publish.empty()) o.endpoint = parse_endpoint(o.publish, "--publish");
    if (!o.udp.empty() && o.hostile_share > 0 &&
        Generator::oversized_bytes_max(o.max_line_bytes) > kUdpMaxPayload) {
      throw std::runtime_error(fmt::format(
          "--udp with --hostile-share: oversized_line lines would not fit a datagram ({} bytes max); "
          "pass --max-line-bytes {} or less",
          kUdpMaxPayload, kUdpMaxPayload - kOversizedSlackMin - kOversizedSlackSpan - 1));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "spate-gen: {}\n", e.what());
    return 2;
  }

  std::signal(SIGPIPE, SIG_IGN);
  Shared shared;
  std::vector<std::unique_ptr<Sink>> sinks;
  std::size_t chunk_bytes = std::size_t{1} << 20;
  std::uint64_t chunk_lines = std::numeric_limits<std::uint64_t>::max();
  std::string target;
  try {
    if (!o.tcp.empty()) {
      target = "tcp";
      chunk_bytes = 256 << 10;
      for (unsigned c = 0; c < o.connections; ++c) {
        const int fd = connect_to(*o.endpoint, SOCK_STREAM, "--tcp");
        sinks.push_back(std::make_unique<TcpSink>(fd, "--tcp " + o.tcp));
      }
    } else if (!o.udp.empty()) {
      target = "udp";
      chunk_bytes = 256 << 10;
      const int fd = connect_to(*o.endpoint, SOCK_DGRAM, "--udp");
      const int sndbuf = 4 << 20;
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      sinks.push_back(std::make_unique<UdpSink>(fd, o.udp_payload, "--udp " + o.udp, shared));
    } else if (!o.publish.empty()) {
      target = "publish";
      std::optional<query::Client> connected;
      try {
        connected.emplace(o.endpoint->host, o.endpoint->port);
      } catch (const query::ClientError& e) {
        throw std::runtime_error(fmt::format("--publish {}: {}", o.publish, e.what()));
      }
      query::Client& client = *connected;
      const std::size_t frame = client.max_frame_bytes();
      const std::size_t line_cap = Generator::oversized_bytes_max(o.max_line_bytes) + kMaxEventLineBytes;
      if (frame < 2 * line_cap + 4096) {
        throw std::runtime_error(fmt::format("--publish {}: the server's max frame ({} bytes) is too small for "
                                             "--max-line-bytes {}",
                                             o.publish, frame, o.max_line_bytes));
      }
      chunk_bytes = std::min(frame / 2 - line_cap, std::size_t{4} << 20);
      chunk_lines = o.batch;
      sinks.push_back(std::make_unique<PublishSink>(std::move(client), o.producer_id.value_or(o.seed),
                                                    "--publish " + o.publish, shared));
    } else {
      target = "file";
      if (o.out == "-") {
        sinks.push_back(std::make_unique<FileSink>(1, false, "stdout"));
      } else {
        const int fd = ::open(o.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error(fmt::format("--out {}: {}", o.out, errno_text(errno)));
        sinks.push_back(std::make_unique<FileSink>(fd, true, "--out " + o.out));
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "spate-gen: {}\n", e.what());
    return 1;
  }

  std::unique_ptr<Expect> expect;
  if (!o.expect.empty()) expect = std::make_unique<Expect>(o.users, o.types);
  Generator gen(o, expect.get());

  // A rate limit caps a chunk at 5 ms of events so pacing stays smooth at any rate.
  std::uint64_t chunk_events = std::numeric_limits<std::uint64_t>::max();
  if (o.rate > 0) chunk_events = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(o.rate / 200.0));

  const std::size_t chunk_capacity = chunk_bytes + gen.line_capacity();
  const std::size_t chunk_count =
      sinks.size() * (kQueueDepth + 1) + 2 + (target == "publish" ? kMaxInflightBatches : 0);
  std::vector<std::unique_ptr<Chunk>> chunks;
  for (std::size_t i = 0; i < chunk_count; ++i) {
    auto c = std::make_unique<Chunk>();
    c->data = std::make_unique_for_overwrite<char[]>(chunk_capacity);  // pages are touched only when used
    c->capacity = chunk_capacity;
    shared.free_chunks.push(c.get());
    chunks.push_back(std::move(c));
  }
  std::vector<std::unique_ptr<BlockingQueue<Chunk*>>> queues;
  std::vector<std::thread> threads;
  std::atomic<std::int64_t> sent_done_ns{0};
  for (auto& sink : sinks) {
    queues.push_back(std::make_unique<BlockingQueue<Chunk*>>(kQueueDepth));
    threads.emplace_back(run_sink, std::ref(*sink), std::ref(*queues.back()), std::ref(shared), std::ref(sent_done_ns));
  }

  const auto t0 = Clock::now();
  auto pace_base = t0;
  std::uint64_t pace_events = 0;  // events generated since pace_base
  auto last_progress = t0;
  std::uint64_t last_progress_events = 0;
  std::uint64_t bytes = 0;
  std::uint64_t lines = 0;
  std::size_t next_sink = 0;
  // One thread generates (~12 M events/s into /dev/null on a 2-core EPYC VM) while the output
  // threads write the previous chunks.
  while (!gen.done() && !shared.failed) {
    if (o.rate > 0) {  // token bucket holding at most 100 ms of events
      const auto due = pace_base + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(static_cast<double>(pace_events) / o.rate));
      const auto now = Clock::now();
      if (now < due) {
        std::this_thread::sleep_until(due);
      } else if (now - due > std::chrono::milliseconds(100)) {
        pace_base = now - std::chrono::milliseconds(100);
        pace_events = 0;
      }
    }
    Chunk* c = *shared.free_chunks.pop();
    c->len = 0;
    c->events = 0;
    c->lines = 0;
    char* const base = c->data.get();
    char* p = base;
    while (!gen.done() && static_cast<std::size_t>(p - base) < chunk_bytes && c->lines < chunk_lines &&
           c->events < chunk_events) {
      bool is_event = false;
      p = gen.next_line(p, is_event);
      c->events += is_event;
      ++c->lines;
    }
    c->len = static_cast<std::size_t>(p - base);
    bytes += c->len;
    lines += c->lines;
    pace_events += c->events;
    queues[next_sink]->push(c);
    next_sink = (next_sink + 1) % queues.size();

    if (o.progress) {
      const auto now = Clock::now();
      if (now - last_progress >= std::chrono::seconds(1)) {
        const double dt = std::chrono::duration<double>(now - last_progress).count();
        const std::uint64_t ev = gen.counts().events;
        fmt::print(stderr, "spate-gen: {} events ({:.1f}%), {:.0f} events/s, {:.1f} MB\n", ev,
                   o.events > 0 ? 100.0 * static_cast<double>(ev) / static_cast<double>(o.events) : 100.0,
                   static_cast<double>(ev - last_progress_events) / dt, static_cast<double>(bytes) / 1e6);
        last_progress = now;
        last_progress_events = ev;
      }
    }
  }
  for (auto& q : queues) q->close();
  for (auto& t : threads) t.join();
  if (shared.failed) {
    fmt::print(stderr, "spate-gen: {}\n", shared.error);
    return 1;
  }
  const std::int64_t done_ns = sent_done_ns.load();
  const auto t1 = done_ns != 0 ? Clock::time_point(Clock::duration(done_ns)) : Clock::now();
  const double seconds = std::max(1e-9, std::chrono::duration<double>(t1 - t0).count());

  const Counts& counts = gen.counts();
  if (expect) {
    try {
      expect->write(o.expect, counts);
    } catch (const std::exception& e) {
      fmt::print(stderr, "spate-gen: {}\n", e.what());
      return 1;
    }
  }

  fmt::memory_buffer summary;
  auto it = std::back_inserter(summary);
  fmt::format_to(it,
                 "{{\"target\":\"{}\",\"events\":{},\"lines\":{},\"hostile\":{},\"late\":{},\"duplicates\":{},"
                 "\"bytes\":{},\"seconds\":{:.3f},\"events_per_s\":{:.0f},\"mb_per_s\":{:.1f}",
                 target, counts.events, lines, counts.hostile, counts.late, counts.duplicates, bytes, seconds,
                 static_cast<double>(counts.events) / seconds, static_cast<double>(bytes) / seconds / 1e6);
  if (target == "tcp") fmt::format_to(it, ",\"connections\":{}", o.connections);
  if (target == "udp") fmt::format_to(it, ",\"datagrams\":{}", shared.datagrams.load());
  if (target == "publish") {
    fmt::format_to(it, ",\"batches\":{},\"accepted\":{},\"rejected\":{},\"duplicate_batches\":{},\"overloaded_retries\":{}",
                   shared.batches.load(), shared.accepted.load(), shared.rejected.load(),
                   shared.duplicate_batches.load(), shared.overloaded_retries.load());
  }
  fmt::format_to(it, "}}\n");
  std::fwrite(summary.data(), 1, summary.size(), stderr);
  return 0;
}

}  // namespace
}  // namespace spate::gen

int main(int argc, char** argv) {
  try {
    return spate::gen::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spate-gen: %s\n", e.what());
    return 1;
  }
}
