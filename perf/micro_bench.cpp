// Microbenchmarks of the engine's hot loops, one family per layer: event
// parsing (beside raw simdjson On-Demand), line splitting, key hashing, the shard-to-shard
// ring and the tumbling-window update. Each checks its output before timing.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <simdjson.h>

#include "io/file/cpu_affinity.hpp"
#include "kernels/find_byte.hpp"
#include "kernels/hash.hpp"
#include "config/config.hpp"
#include "engine/event_parser.hpp"
#include "engine/key_table.hpp"
#include "engine/route_batch.hpp"
#include "engine/spsc_ring.hpp"
#include "engine/tumbling_window.hpp"

namespace {

namespace od = simdjson::ondemand;
using spate::engine::Config;
using spate::engine::DedupRole;
using spate::engine::EventParser;
using spate::engine::kDefaultBatchRows;
constexpr std::uint32_t kBatchRows = kDefaultBatchRows;
using spate::engine::KeyTable;
using spate::engine::kPadding;
using spate::engine::ParsedEvent;
using spate::engine::Reject;
using spate::engine::RouteBatch;
using spate::engine::SpscRing;
using spate::engine::TumblingView;
using spate::kernels::hash_key;
using spate::kernels::shard_of;

// A failed check means the figures would measure nothing real: stop loudly.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "spate-micro-bench: check failed: %s\n", what);
    std::exit(1);
  }
}

// splitmix64: deterministic, so every run times the same input.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
};

// Zipf-distributed ids in [0, n), 0 the most frequent, as spate-gen draws users.
class Zipf {
 public:
  Zipf(std::uint32_t n, double theta) : cdf_(n) {
    double total = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      total += 1.0 / std::pow(static_cast<double>(i + 1), theta);
      cdf_[i] = total;
    }
    for (double& c : cdf_) c /= total;
  }
  std::uint32_t operator()(Rng& rng) const noexcept {
    const double u = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<std::uint32_t>(std::min<std::ptrdiff_t>(it - cdf_.begin(), std::ssize(cdf_) - 1));
  }

 private:
  std::vector<double> cdf_;
};

// "u<n>", as spate-gen names users.
std::string user_key(std::uint32_t n) {
  char buf[16];
  const int len = std::snprintf(buf, sizeof(buf), "u%u", n);
  return std::string(buf, static_cast<std::size_t>(len));
}

// ---------------------------------------------------------------- corpus

// NDJSON lines of spate-gen's shape in one buffer with kPadding readable
// bytes after the last line, plus where each line starts and ends.
struct Corpus {
  std::string buf;
  struct Line {
    std::uint32_t off;
    std::uint32_t len;
  };
  std::vector<Line> lines;
  std::size_t bytes = 0;  // line bytes with their newlines, padding excluded
  const char* end() const noexcept { return buf.data() + buf.size(); }
};

constexpr std::size_t kCorpusLines = 10000;

std::string generated_lines() {
  static const char* const kTypes[] = {"click", "view", "purchase", "cart", "search"};
  static const char* const kPages[] = {"item", "cart", "list", "search"};
  static const char* const kAgents[] = {"Mozilla/5.0 (X11; Linux)", "Mozilla/5.0 (Windows NT 10.0)",
                                        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)"};
  const Zipf users(10000, 1.1);
  const Zipf types(5, 1.0);
  Rng rng{42};
  std::string out;
  char line[512];
  for (std::size_t i = 0; i < kCorpusLines; ++i) {
    const std::uint64_t cents = 1 + rng.below(99999);
    const int n = std::snprintf(
        line, sizeof(line),
        "{\"id\":\"e%011zu\",\"ts\":%llu,\"user\":\"u%u\",\"type\":\"%s\",\"amount\":%llu.%02llu,"
        "\"session\":\"s%06llx\",\"page\":\"/p/%llu/%s\",\"ua\":\"%s\"}\n",
        i, static_cast<unsigned long long>(1764000000000ull + i), users(rng) + 1, kTypes[types(rng)],
        static_cast<unsigned long long>(cents / 100), static_cast<unsigned long long>(cents % 100),
        static_cast<unsigned long long>(rng.below(0x1000000)), static_cast<unsigned long long>(rng.below(10000)),
        kPages[rng.below(4)], kAgents[rng.below(3)]);
    out.append(line, static_cast<std::size_t>(n));
  }
  return out;
}

// SPATE_PERF_NDJSON=FILE times the first lines of FILE (up to 64 MiB) instead.
const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus k;
    if (const char* path = std::getenv("SPATE_PERF_NDJSON")) {
      std::ifstream in(path, std::ios::binary);
      require(in.good(), "SPATE_PERF_NDJSON names a readable file");
      k.buf.resize(64u << 20);
      in.read(k.buf.data(), static_cast<std::streamsize>(k.buf.size()));
      k.buf.resize(static_cast<std::size_t>(in.gcount()));
      k.buf.resize(k.buf.rfind('\n') + 1);  // whole lines only
    } else {
      k.buf = generated_lines();
    }
    k.bytes = k.buf.size();
    for (std::size_t p = 0; p < k.bytes;) {
      const std::size_t nl = k.buf.find('\n', p);
      if (nl > p) k.lines.push_back({static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(nl - p)});
      p = nl + 1;
    }
    k.buf.append(kPadding, ' ');
    require(!k.lines.empty(), "the corpus holds lines");
    return k;
  }();
  return c;
}

// ---------------------------------------------------------------- parse

struct ParseSums {
  std::uint64_t events = 0;
  std::uint64_t errors = 0;
  std::int64_t ts = 0;
  double amount = 0;
  std::uint64_t string_bytes = 0;  // user and type lengths
  bool operator==(const ParseSums&) const = default;
};

ParseSums parse_with_event_parser(EventParser& parser, const Corpus& c) {
  ParseSums s;
  for (const Corpus::Line& l : c.lines) {
    const char* line = c.buf.data() + l.off;
    ParsedEvent ev;
    if (parser.parse(line, l.len, static_cast<std::size_t>(c.end() - line), ev) != Reject::none) {
      ++s.errors;
      continue;
    }
    ++s.events;
    s.ts += ev.ts_ms;
    s.amount += ev.columns[0].f;
    s.string_bytes += ev.keys[0].size() + ev.keys[1].size();
  }
  return s;
}

// The baseline: the same five fields straight from simdjson, in document
// order (find_field never looks back), with no schema, routing or checks.
ParseSums parse_with_simdjson(od::parser& parser, const Corpus& c) {
  ParseSums s;
  for (const Corpus::Line& l : c.lines) {
    const char* line = c.buf.data() + l.off;
    od::document doc;
    std::string_view id, user, type;
    std::int64_t ts;
    double amount;
    if (parser.iterate(line, l.len, static_cast<std::size_t>(c.end() - line)).get(doc) != simdjson::SUCCESS ||
        doc.find_field("id").get_string().get(id) != simdjson::SUCCESS ||
        doc.find_field("ts").get_int64().get(ts) != simdjson::SUCCESS ||
        doc.find_field("user").get_string().get(user) != simdjson::SUCCESS ||
        doc.find_field("type").get_string().get(type) != simdjson::SUCCESS ||
        doc.find_field("amount").get_double().get(amount) != simdjson::SUCCESS) {
      ++s.errors;
      continue;
    }
    ++s.events;
    s.ts += ts;
    s.amount += amount;
    s.string_bytes += user.size() + type.size();
  }
  return s;
}

// Like EventParser's walk: every field visited, the wanted ones decoded,
// trailing content checked. The gap to the ordered baseline is the cost of
// reading the fields after "amount"; the gap to EventParser is its own.
ParseSums parse_with_simdjson_all_fields(od::parser& parser, const Corpus& c) {
  ParseSums s;
  for (const Corpus::Line& l : c.lines) {
    const char* line = c.buf.data() + l.off;
    od::document doc;
    od::object obj;
    if (parser.iterate(line, l.len, static_cast<std::size_t>(c.end() - line)).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(obj) != simdjson::SUCCESS) {
      ++s.errors;
      continue;
    }
    std::int64_t ts = 0;
    double amount = 0;
    std::uint64_t strings = 0;
    int seen = 0;
    bool bad = false;
    for (auto field_result : obj) {
      od::field field;
      if (std::move(field_result).get(field) != simdjson::SUCCESS) {
        bad = true;
        break;
      }
      const od::raw_json_string key = field.key();
      std::string_view sv;
      if (key.unsafe_is_equal("ts")) {
        bad |= field.value().get_int64().get(ts) != simdjson::SUCCESS;
        ++seen;
      } else if (key.unsafe_is_equal("amount")) {
        bad |= field.value().get_double().get(amount) != simdjson::SUCCESS;
        ++seen;
      } else if (key.unsafe_is_equal("user") || key.unsafe_is_equal("type")) {
        bad |= field.value().get_string().get(sv) != simdjson::SUCCESS;
        strings += sv.size();
        ++seen;
      } else if (key.unsafe_is_equal("id")) {
        bad |= field.value().get_string().get(sv) != simdjson::SUCCESS;
        ++seen;
      }
    }
    const char* trailing = nullptr;
    if (bad || seen != 5 || doc.current_location().get(trailing) == simdjson::SUCCESS) {
      ++s.errors;
      continue;
    }
    ++s.events;
    s.ts += ts;
    s.amount += amount;
    s.string_bytes += strings;
  }
  return s;
}

// Every parser must find every line good and agree on every sum (the same
// additions in the same order, so the doubles agree bit for bit).
const ParseSums& expected_parse_sums() {
  static const ParseSums expected = [] {
    const Corpus& c = corpus();
    od::parser raw;
    const ParseSums s = parse_with_simdjson(raw, c);
    require(s.events == c.lines.size() && s.errors == 0, "raw simdjson parses every corpus line");
    require(s.ts != 0 && s.amount > 0 && s.string_bytes > 0, "the parsed fields are not empty");
    return s;
  }();
  return expected;
}

void set_parse_counters(benchmark::State& state) {
  const Corpus& c = corpus();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * c.lines.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.bytes));
}

void BM_ParseEventParser(benchmark::State& state) {
  const Corpus& c = corpus();
  const Config config = spate::engine::default_config();
  EventParser parser(config);
  require(parse_with_event_parser(parser, c) == expected_parse_sums(), "EventParser agrees with raw simdjson");
  for (auto _ : state) {
    ParseSums s = parse_with_event_parser(parser, c);
    benchmark::DoNotOptimize(s);
  }
  set_parse_counters(state);
}
BENCHMARK(BM_ParseEventParser);

void BM_ParseRawSimdjson(benchmark::State& state) {
  const Corpus& c = corpus();
  od::parser parser;
  require(parse_with_simdjson(parser, c) == expected_parse_sums(), "raw simdjson is deterministic");
  for (auto _ : state) {
    ParseSums s = parse_with_simdjson(parser, c);
    benchmark::DoNotOptimize(s);
  }
  set_parse_counters(state);
}
BENCHMARK(BM_ParseRawSimdjson);

void BM_ParseRawSimdjsonAllFields(benchmark::State& state) {
  const Corpus& c = corpus();
  od::parser parser;
  require(parse_with_simdjson_all_fields(parser, c) == expected_parse_sums(), "the all-fields walk agrees");
  for (auto _ : state) {
    ParseSums s = parse_with_simdjson_all_fields(parser, c);
    benchmark::DoNotOptimize(s);
  }
  set_parse_counters(state);
}
BENCHMARK(BM_ParseRawSimdjsonAllFields);

// ---------------------------------------------------------------- line split

// Splits the corpus into lines with each find_byte variant this CPU has
// (variant 0 = libc memchr, the baseline it replaced).
void BM_SplitLines(benchmark::State& state) {
  static const char* const kNames[] = {"memchr", "scalar", "avx2", "avx512"};
  const std::string_view name = kNames[state.range(0)];
  const Corpus& c = corpus();
  const std::string saved{spate::kernels::find_byte_variant()};
  if (name != "memchr" && !spate::kernels::use_find_byte_variant(name)) {
    state.SkipWithError("this CPU lacks the variant");
    return;
  }
  const char* end = c.buf.data() + c.bytes;
  auto split = [&] {
    std::size_t lines = 0, sum = 0;
    for (const char* p = c.buf.data(); p < end;) {
      const char* nl = name == "memchr" ? static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))
                                        : spate::kernels::find_byte(p, end, '\n');
      if (nl == nullptr) nl = end;
      sum += static_cast<std::size_t>(nl - p);
      if (nl > p) ++lines;
      p = nl + 1;
    }
    return std::pair{lines, sum};
  };
  const auto [lines, sum] = split();
  require(lines == c.lines.size(), "every line is found");
  std::size_t expected_sum = 0;
  for (const auto& l : c.lines) expected_sum += l.len;
  require(sum == expected_sum, "the lines have their lengths");
  for (auto _ : state) benchmark::DoNotOptimize(split());
  state.SetLabel(std::string(name));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * c.lines.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.bytes));
  spate::kernels::use_find_byte_variant(saved);
}
BENCHMARK(BM_SplitLines)->ArgName("variant")->DenseRange(0, 3);

// ---------------------------------------------------------------- hash

constexpr std::size_t kHashKeys = 4096;

// kHashKeys keys of `len` printable bytes, back to back.
std::string hash_keys(std::size_t len) {
  Rng rng{len};
  std::string keys(kHashKeys * len, '\0');
  for (char& ch : keys) ch = static_cast<char>('!' + rng.below(94));
  return keys;
}

void BM_HashKeyAndShard(benchmark::State& state) {
  const auto len = static_cast<std::size_t>(state.range(0));
  const auto shards = static_cast<std::uint32_t>(state.range(1));
  const std::string keys = hash_keys(len);
  // Check: the kernel is xxh3, and shard_of spreads keys evenly (a binomial
  // count over 4096 keys stays within 6% of uniform for these shard counts).
  std::vector<std::uint32_t> per_shard(shards);
  for (std::size_t i = 0; i < kHashKeys; ++i) {
    const char* k = keys.data() + i * len;
    const std::uint64_t h = hash_key(k, len);
    require(h == XXH3_64bits(k, len), "hash_key is xxh3");
    const std::uint32_t s = shard_of(h, shards);
    require(s < shards, "shard_of stays in range");
    ++per_shard[s];
  }
  for (const std::uint32_t n : per_shard) {
    require(std::abs(static_cast<double>(n) * shards / kHashKeys - 1.0) < 0.06, "shard_of is near uniform");
  }
  for (auto _ : state) {
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < kHashKeys; ++i) {
      const std::uint64_t h = hash_key(keys.data() + i * len, len);
      acc += h ^ shard_of(h, shards);
    }
    benchmark::DoNotOptimize(acc);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kHashKeys));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kHashKeys * len));
}
BENCHMARK(BM_HashKeyAndShard)->ArgNames({"key_bytes", "shards"})->ArgsProduct({{4, 8, 16, 32, 64}, {2}});

// ---------------------------------------------------------------- spsc ring

// A full batch as a shard routes it: 512 rows with 5-byte keys, one column.
struct BatchSource {
  std::vector<std::string> keys;
  std::vector<std::uint64_t> hashes;
  BatchSource() {
    for (std::uint32_t i = 0; i < kBatchRows; ++i) {
      keys.push_back(user_key(1000 + i));
      hashes.push_back(hash_key(keys.back()));
    }
  }
  void fill(RouteBatch& b, std::int64_t ts0) const noexcept {
    b.clear();
    for (std::uint32_t r = 0; r < kBatchRows; ++r) {
      const spate::engine::Cell amount{r * 0.25};
      b.append(0, hashes[r], ts0 + r, INT64_MIN, keys[r], DedupRole::none, {}, &amount, 1);
    }
    b.watermark = ts0;
  }
  // What the consumer reads back from one batch.
  static std::uint64_t digest(const RouteBatch& b) noexcept {
    std::uint64_t d = 0;
    for (std::uint32_t r = 0; r < b.rows; ++r) d += b.hash[r] + static_cast<std::uint64_t>(b.ts[r]) + b.key_len[r];
    return d;
  }
};

// One thread: fill the ring to capacity, then drain it. Stable on a loaded
// two-core machine; measures the copy into and out of the slots.
void BM_SpscRingSingleThread(benchmark::State& state) {
  const BatchSource source;
  SpscRing<RouteBatch> ring(static_cast<std::size_t>(state.range(0)));
  ring.for_each_slot([](RouteBatch& b) { b.allocate(kBatchRows, spate::engine::kMaxColumns); });
  std::uint64_t produced = 0, consumed = 0;
  auto round = [&](std::int64_t ts0) {
    for (std::int64_t t = ts0; RouteBatch* b = ring.claim(); t += kBatchRows) {
      source.fill(*b, t);
      produced += BatchSource::digest(*b);
      ring.publish();
    }
    while (const RouteBatch* b = ring.front()) {
      consumed += BatchSource::digest(*b);
      ring.pop();
    }
  };
  round(0);
  require(produced == consumed && produced != 0 && ring.popped() == ring.capacity(), "the ring passes every batch");
  for (auto _ : state) round(static_cast<std::int64_t>(state.iterations()));
  require(produced == consumed, "the ring passes every batch");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ring.capacity() * kBatchRows));
  state.counters["batches_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * ring.capacity()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SpscRingSingleThread)->ArgName("slots")->Arg(8)->Arg(32);

// Two threads pinned to two CPUs, as between shards: this thread produces,
// another consumes. Real time, since the consumer's work happens off the
// timed thread; on a two-core machine shared with other work the spread
// between runs is wide.
void BM_SpscRingTwoThreads(benchmark::State& state) {
  const std::vector<int> cpus = spate::io::allowed_cpus();
  if (cpus.size() < 2) {
    state.SkipWithError("needs two CPUs in the affinity mask");
    for (auto _ : state) {
    }
    return;
  }
  cpu_set_t saved;
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  spate::io::pin_current_thread(cpus[0]);
  const BatchSource source;
  SpscRing<RouteBatch> ring(static_cast<std::size_t>(state.range(0)));
  ring.for_each_slot([](RouteBatch& b) { b.allocate(kBatchRows, spate::engine::kMaxColumns); });
  std::atomic<bool> done{false};
  std::uint64_t consumed = 0;
  std::thread consumer([&] {
    spate::io::pin_current_thread(cpus[1]);
    while (true) {
      if (const RouteBatch* b = ring.front()) {
        consumed += BatchSource::digest(*b);
        ring.pop();
      } else if (done.load(std::memory_order_acquire)) {
        if (ring.front() == nullptr) return;
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::uint64_t produced = 0, batches = 0;
  for (auto _ : state) {
    RouteBatch* b;
    while ((b = ring.claim()) == nullptr) std::this_thread::yield();
    source.fill(*b, static_cast<std::int64_t>(batches) * kBatchRows);
    produced += BatchSource::digest(*b);
    ring.publish();
    ++batches;
  }
  done.store(true, std::memory_order_release);
  consumer.join();
  pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
  require(produced == consumed && ring.popped() == batches, "the consumer saw every batch");
  state.SetItemsProcessed(static_cast<std::int64_t>(batches * kBatchRows));
  state.counters["batches_per_s"] = benchmark::Counter(static_cast<double>(batches), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SpscRingTwoThreads)->ArgName("slots")->Arg(8)->Arg(32)->UseRealTime();

// ---------------------------------------------------------------- window update

constexpr std::size_t kWindowBatches = 64;  // 32768 rows, all inside one 1-minute window

// Batches of user rows with zipf(1.1) key ids over `keys` keys, ts 1 ms apart.
struct WindowInput {
  std::vector<std::unique_ptr<RouteBatch>> batches;
  std::vector<std::vector<std::uint32_t>> ids;  // key id of each row, per batch
  std::int64_t first_ts = 1764000000000;        // a window boundary for 1 minute

  explicit WindowInput(std::uint32_t keys) {
    const Zipf zipf(keys, 1.1);
    Rng rng{keys};
    std::int64_t ts = first_ts;
    for (std::size_t i = 0; i < kWindowBatches; ++i) {
      auto b = std::make_unique<RouteBatch>(kBatchRows, spate::engine::kMaxColumns);
      std::vector<std::uint32_t> row_ids;
      for (std::uint32_t r = 0; r < kBatchRows; ++r) {
        const std::uint32_t id = zipf(rng);
        const std::string key = user_key(id + 1);
        const spate::engine::Cell amount{static_cast<double>(1 + rng.below(99999)) / 100.0};
        b->append(0, hash_key(key), ts++, INT64_MIN, key, DedupRole::none, {}, &amount, 1);
        row_ids.push_back(id);
      }
      batches.push_back(std::move(b));
      ids.push_back(std::move(row_ids));
    }
  }
  std::size_t rows() const noexcept { return kWindowBatches * kBatchRows; }

  // Count and sum of key id 0 over `passes` passes, added in the same order
  // as the view adds them.
  std::pair<double, double> reference(int passes) const {
    double count = 0, sum = 0;
    for (int p = 0; p < passes; ++p) {
      for (std::size_t i = 0; i < kWindowBatches; ++i) {
        for (std::uint32_t r = 0; r < kBatchRows; ++r) {
          if (ids[i][r] != 0) continue;
          ++count;
          sum += batches[i]->columns[0][r].f;
        }
      }
    }
    return {count, sum};
  }
};

// After one pass: key 0's only window holds exactly its rows.
void check_key0(const TumblingView& view, const WindowInput& in) {
  std::vector<spate::engine::ViewRow> rows;
  view.collect(0, "u1", INT64_MIN, INT64_MAX, INT64_MIN, rows);
  const auto [count, sum] = in.reference(1);
  require(rows.size() == 1 && count > 0, "the top key has exactly one window");
  require(rows[0].value(0).as_double() == count && rows[0].value(1).as_double() == sum, "count and sum(amount) of the top key are exact");
}

// TumblingView::add alone (key ids given), per_user_1m: count, sum, min, max, avg.
void BM_WindowAdd(benchmark::State& state) {
  const Config config = spate::engine::default_config();
  const WindowInput in(static_cast<std::uint32_t>(state.range(0)));
  TumblingView view(config.views[0], config.allowed_lateness_ms);
  auto pass = [&] {
    std::uint64_t added = 0;
    for (std::size_t i = 0; i < kWindowBatches; ++i) {
      const RouteBatch& b = *in.batches[i];
      const std::uint32_t* ids = in.ids[i].data();
      for (std::uint32_t r = 0; r < b.rows; ++r) added += view.add(ids[r], b, r, in.first_ts) ? 1 : 0;
    }
    return added;
  };
  require(pass() == in.rows(), "no row is late");
  check_key0(view, in);
  for (auto _ : state) benchmark::DoNotOptimize(pass());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * in.rows()));
}
BENCHMARK(BM_WindowAdd)->ArgName("keys")->Arg(1000)->Arg(100000);

// What Shard::apply does per user row: intern the key, then add to its window.
void BM_WindowInternAndAdd(benchmark::State& state) {
  const Config config = spate::engine::default_config();
  const auto nkeys = static_cast<std::uint32_t>(state.range(0));
  const WindowInput in(nkeys);
  TumblingView view(config.views[0], config.allowed_lateness_ms);
  KeyTable keys;
  // Intern in id order first so the table's ids match the batches' ids.
  for (std::uint32_t id = 0; id < nkeys; ++id) {
    const std::string key = user_key(id + 1);
    require(keys.intern(hash_key(key), key) == id, "ids are dense in insertion order");
  }
  auto pass = [&] {
    std::uint64_t added = 0;
    for (std::size_t i = 0; i < kWindowBatches; ++i) {
      const RouteBatch& b = *in.batches[i];
      for (std::uint32_t r = 0; r < b.rows; ++r) {
        const std::uint32_t id = keys.intern(b.hash[r], b.key(r));
        added += view.add(id, b, r, in.first_ts) ? 1 : 0;
      }
    }
    return added;
  };
  require(pass() == in.rows(), "no row is late");
  require(keys.size() == nkeys, "no key was interned twice");
  check_key0(view, in);
  for (auto _ : state) benchmark::DoNotOptimize(pass());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * in.rows()));
}
BENCHMARK(BM_WindowInternAndAdd)->ArgName("keys")->Arg(1000)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
