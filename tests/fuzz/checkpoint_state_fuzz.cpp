// libFuzzer target: a shard's state as a checkpoint holds it (docs/storage.md,
// "Checkpoints"), the body behind the file's checksum that ViewSet::load
// reads (key tables, views, dedup tables), loaded into a ViewSet of the
// default configuration. A body that passes its checksum can still be
// malformed (a bug, another build): load() must refuse it. What it accepts
// must then serve the daemon without a crash, a leak or UB: every key the
// tables hold collected from each view of its group, VIEW_TOP over every
// view in slices, rows applied on both paths (with dedup), retention swept
// with a growing watermark until no window is left, rows applied again.
//
// Checked besides memory and UB: load() is false only with the reader
// failed; the loaded state saves to the bytes it was loaded from; collected
// rows are their key's and view's, no more than window_count(); VIEW_TOP
// keeps at most k rows, all of the window asked for; retention past every
// window leaves no window and no key; the state reached after all that
// saves to a body that loads again (load accepts what the engine makes).
//
// The input is the body with runs written short: 0xA5 B N0 N1 stands for
// N + 1 copies of byte B (N little-endian; 0xA5 itself is a run of one),
// any other byte for itself. A key table's empty slots are 16 KB and a
// chunk of window records 4096 records (229 KB for per_user_1m): spelled
// out, seeds holding older windows would be hundreds of KB.
//
// Seeds: SPATE_CHECKPOINT_SEEDS=DIR fuzz_checkpoint_state writes the states
// of corpus/checkpoint_state/ (ViewSet::save after rows and retention) to
// DIR and exits.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/key_table.hpp"
#include "engine/route_batch.hpp"
#include "engine/view_set.hpp"
#include "kernels/byte_io.hpp"
#include "kernels/hash.hpp"
#include "kernels/rfc3339.hpp"

namespace {

using namespace spate::engine;
namespace kernels = spate::kernels;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "checkpoint_state invariant: %s\n", what);
  std::abort();
}

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

constexpr unsigned char kRun = 0xA5;
constexpr std::size_t kMaxBody = std::size_t{8} << 20;  // decoded; keeps runs from asking for gigabytes

bool decode(const std::uint8_t* data, std::size_t size, std::string& out) {
  for (std::size_t i = 0; i < size;) {
    if (data[i] != kRun) {
      const std::size_t from = i;
      while (i < size && data[i] != kRun) ++i;
      out.append(reinterpret_cast<const char*>(data) + from, i - from);
    } else {
      if (size - i < 4) return false;
      const std::size_t n = (static_cast<std::size_t>(data[i + 2]) | static_cast<std::size_t>(data[i + 3]) << 8) + 1;
      out.append(n, static_cast<char>(data[i + 1]));
      i += 4;
    }
    if (out.size() > kMaxBody) return false;
  }
  return true;
}

std::string encode(std::string_view body) {
  std::string out;
  for (std::size_t i = 0; i < body.size();) {
    std::size_t n = 1;
    while (i + n < body.size() && body[i + n] == body[i] && n < 65536) ++n;
    if (n < 5 && static_cast<unsigned char>(body[i]) != kRun) {
      out += body[i++];
      continue;
    }
    out += static_cast<char>(kRun);
    out += body[i];
    out += static_cast<char>((n - 1) & 0xff);
    out += static_cast<char>((n - 1) >> 8);
    i += n;
  }
  return out;
}

const Config& config() {
  static const Config c = [] {
    Config d = default_config();
    d.dedup.max_bytes = 1 << 20;  // a body may ask for a table this large
    return d;
  }();
  return c;
}

// A shard's views, with the counters the shard keeps beside them.
struct State {
  std::vector<std::atomic<std::uint64_t>> late = std::vector<std::atomic<std::uint64_t>>(config().views.size());
  std::vector<std::atomic<std::uint64_t>> key_limit = std::vector<std::atomic<std::uint64_t>>(config().views.size());
  std::vector<std::atomic<std::int64_t>> newest = std::vector<std::atomic<std::int64_t>>(config().views.size());
  ViewSet views{config(), 1, late.data(), key_limit.data(), newest.data()};

  std::string save() const {
    std::string body;
    kernels::ByteWriter out(body);
    views.save(out);
    return body;
  }
};

// The keys a test knows of, per key group (a set: a body may hold a key twice).
using Keys = std::vector<std::set<std::string>>;

struct Row {
  std::uint8_t group;
  std::string key;
  std::string id;  // the event id's JSON text
  std::int64_t ts;
  Cell amount;  // the one number column
};

// The rows as one batch (each judged against wm), as a shard applies
// another shard's batch; then the last row again on the per-row path.
void apply(State& s, const std::vector<Row>& rows, std::int64_t wm) {
  RouteBatch b(kDefaultBatchRows, kMaxColumns);
  for (const Row& r : rows) {
    if (!b.has_room(r.key.size())) break;
    // As another shard sends them: the event's first row decides, the next of the same id follows.
    const DedupRole role = r.group == 0 ? DedupRole::primary : DedupRole::follower;
    b.append(r.group, kernels::hash_key(r.key), r.ts, wm, r.key, role, kernels::fingerprint(r.id), &r.amount,
             config().columns.size());
  }
  std::vector<std::uint32_t> ids(std::max<std::uint32_t>(b.rows, 1));
  std::vector<std::int64_t> wms(std::max<std::uint32_t>(b.rows, 1), wm);
  s.views.apply<false>(b, ids.data(), wms.data());
  if (rows.empty()) return;
  const Row& r = rows.back();
  if (s.views.has_row_path(r.group)) {
    if (!s.views.is_duplicate(kernels::fingerprint(r.id), r.ts, wm, true)) {
      s.views.apply_row(r.group, kernels::hash_key(r.key), r.key, r.ts, &r.amount, wm);
    }
  }
}

std::int64_t clamp_ts(std::int64_t ts) { return std::clamp(ts, kernels::kRfc3339MinMs, kernels::kRfc3339MaxMs); }

// Rows for a few known keys of each group and two new ones, around ts,
// some of them out of order and some ids twice.
std::vector<Row> rows_around(Keys& keys, std::int64_t ts, int round) {
  std::vector<Row> rows;
  int n = 0;
  for (std::size_t g = 0; g < keys.size(); ++g) {
    std::vector<std::string> some;
    for (const std::string& k : keys[g]) {
      if (some.size() == 3) break;
      some.push_back(k);
    }
    some.push_back("n");
    some.push_back("a-new-key-longer-than-its-slot-" + std::to_string(round));
    for (const std::string& key : some) {
      for (const std::int64_t at : {ts, ts - 61000, ts + 11000}) {
        rows.push_back({static_cast<std::uint8_t>(g), key, "\"e" + std::to_string(round * 1000 + n / 2) + "\"",
                        clamp_ts(at), n * 1.5 - 3});
        ++n;
      }
      keys[g].insert(key);
    }
  }
  return rows;
}

// Collects every known key of every view; VIEW_TOP over each view for its
// newest window and a few windows seen. Returns the rows collected;
// `starts` gets window starts seen.
std::uint64_t query(State& s, const Keys& keys, std::int64_t wm, std::vector<std::int64_t>& starts) {
  const Config& c = config();
  std::uint64_t collected = 0;
  std::vector<ViewRow> rows;
  for (std::size_t v = 0; v < c.views.size(); ++v) {
    const ViewConfig& view = c.views[v];
    std::vector<std::int64_t> tops{s.newest[v].load()};
    for (const std::string& key : keys[static_cast<std::size_t>(view.key_group)]) {
      rows.clear();
      s.views.collect(static_cast<int>(v), kernels::hash_key(key), key, INT64_MIN, INT64_MAX, wm, rows);
      collected += rows.size();
      for (const ViewRow& r : rows) {
        require(r.key == key && r.window_end - r.window_start == view.window_ms, "a collected row of another key or view");
        require(r.aggs.size() == view.aggregates.size() && r.aggs[0].count >= 1, "a collected row without its aggregates");
      }
      if (rows.empty()) continue;
      if (tops.size() < 4) tops.push_back(rows.back().window_start);
      if (starts.size() < 64) starts.push_back(rows.front().window_start);
      const std::int64_t from = rows.back().window_start;
      rows.clear();
      s.views.collect(static_cast<int>(v), kernels::hash_key(key), key, from, from + 1, wm, rows);
      require(!rows.empty(), "a window collected whole is not collected by a range inside it");
    }
    for (const std::int64_t ws : tops) {
      for (int by = 0; by < static_cast<int>(view.aggregates.size()); ++by) {
        for (const std::uint32_t k : {3u, 20u}) {
          rows.clear();
          std::uint32_t begin = 0;
          do {
            begin = s.views.top_slice(static_cast<int>(v), ws, k, by, wm, begin, 7, rows);
          } while (begin != 0);
          require(rows.size() <= k, "VIEW_TOP kept more than k rows");
          for (const ViewRow& r : rows) require(r.window_start == ws, "VIEW_TOP row of another window");
        }
      }
    }
  }
  (void)s.views.window_count();
  (void)s.views.memory_bytes();
  (void)s.views.dedup_totals(INT64_MIN);
  return collected;
}

// Retention at wm until every group was swept from its first key; ids
// bounds the key ids of any group.
void sweep(State& s, std::int64_t wm, std::size_t ids) {
  constexpr std::uint32_t kBudget = 16;
  const std::size_t steps = (config().key_groups.size() + 1) * (ids / kBudget + 2);
  for (std::size_t i = 0; i < steps; ++i) s.views.retention_step(wm, config().window_retention_ms, kBudget, true);
  s.views.expire_ids(wm);
}

void exercise(const std::string& body, std::size_t consumed, State& s) {
  const Config& c = config();
  require(s.save() == std::string_view(body).substr(0, consumed), "the loaded state saves to other bytes");
  // The keys, from the tables as loaded (the ViewSet does not show its own).
  Keys keys(c.key_groups.size());
  std::size_t ids = 0;
  kernels::ByteReader again(body);
  for (std::size_t g = 0; g < keys.size(); ++g) {
    KeyTable table;
    require(table.load(again), "a key table loads once, not twice");
    for (std::uint32_t id = 0; id < table.id_limit(); ++id) {
      if (table.alive(id)) keys[g].insert(std::string(table.key(id)));
    }
    ids = std::max<std::size_t>(ids, table.id_limit());
  }
  std::vector<std::int64_t> starts;
  const std::uint64_t collected = query(s, keys, INT64_MIN, starts);
  require(collected <= s.views.window_count(), "more windows collected than counted");
  std::sort(starts.begin(), starts.end());
  const std::int64_t newest = starts.empty() ? 1700000000000 : starts.back();

  const std::uint64_t before = s.views.window_count();
  apply(s, rows_around(keys, newest, 1), starts.empty() ? INT64_MIN : starts.front());
  require(s.views.window_count() >= before, "applying rows lost windows");
  ids += 32;
  query(s, keys, newest, starts);

  // Retention with the watermark growing to past every window.
  std::int64_t max_window = 0;
  for (const ViewConfig& v : c.views) max_window = std::max(max_window, v.window_ms);
  const std::int64_t end = kernels::kRfc3339MaxMs + c.window_retention_ms + c.allowed_lateness_ms + max_window + 1;
  std::vector<std::int64_t> wms;
  if (!starts.empty()) wms = {starts.front(), starts[starts.size() / 2], starts.back() + max_window};
  wms.push_back(kernels::kRfc3339MaxMs);
  std::sort(wms.begin(), wms.end());
  wms.push_back(end);
  for (const std::int64_t wm : wms) {
    sweep(s, wm, ids);
    query(s, keys, wm, starts);
  }
  require(s.views.window_count() == 0, "windows left after retention past all of them");
  require(s.views.key_count() == 0, "keys left after retention past all their windows");

  // Inserts after all that, then the state must load again as it saves.
  apply(s, rows_around(keys, 1700000000000, 2), INT64_MIN);
  query(s, keys, INT64_MIN, starts);
  const std::string saved = s.save();
  State reloaded;
  kernels::ByteReader in(saved);
  require(reloaded.views.load(in) && in.remaining() == 0, "a state the engine reached does not load");
  require(reloaded.save() == saved, "a reloaded state saves to other bytes");
}

// ---------------------------------------------------------------- seeds

constexpr std::int64_t kT0 = 1700000000000;  // 2023-11-14

std::vector<Row> user_rows(const std::vector<std::string>& users, std::int64_t t, int first_id) {
  std::vector<Row> rows;
  int id = first_id;
  for (const std::string& u : users) {
    const std::string type = u.size() % 2 == 0 ? "click" : "view";
    rows.push_back({0, u, "\"" + std::to_string(id) + "\"", t, 2.5 * id});
    rows.push_back({1, type, "\"" + std::to_string(id) + "\"", t, 2.5 * id});
    ++id;
  }
  return rows;
}

void write_seed(const char* dir, const char* name, const State& s) {
  const std::string body = s.save();
  const std::string encoded = encode(body);
  std::string decoded;
  require(decode(reinterpret_cast<const std::uint8_t*>(encoded.data()), encoded.size(), decoded) && decoded == body,
          "a seed does not decode to its body");
  State check;
  kernels::ByteReader in(body);
  require(check.views.load(in) && in.remaining() == 0, "a seed does not load");
  std::ofstream(std::string(dir) + "/" + name, std::ios::binary) << encoded;
  std::printf("%s: %zu bytes, body %zu\n", name, encoded.size(), body.size());
}

void write_seeds(const char* dir) {
  {
    State s;
    write_seed(dir, "empty", s);
  }
  {
    State s;
    apply(s, user_rows({"u1", "u22", "u3"}, kT0 + 1500, 1), kT0);
    apply(s, user_rows({"u1"}, kT0 + 2500, 1), kT0);  // the same event again: a duplicate
    write_seed(dir, "few_keys", s);
  }
  {
    State s;  // older windows: records in a chunk, chains, an out-of-order row, a late one
    int id = 1;
    for (const std::int64_t t : {kT0, kT0 + 60000, kT0 + 130000, kT0 + 30000, kT0 + 200000}) {
      apply(s, user_rows({"alice", "bob", "carol"}, t, id), kT0 + 20000);
      id += 10;
    }
    apply(s, user_rows({"bob"}, kT0, 100), kT0 + 200000);  // late for every view
    write_seed(dir, "older_windows", s);
  }
  {
    State s;  // retention: a dropped chunk, erased long keys and their free ids, reused ones
    const std::vector<std::string> old_users{"a-user-with-a-long-name-1", "a-user-with-a-long-name-2", "short"};
    int id = 1;
    for (const std::int64_t t : {kT0, kT0 + 60000, kT0 + 5000}) {
      apply(s, user_rows(old_users, t, id), kT0);
      id += 10;
    }
    const std::int64_t t1 = kT0 + 3 * 3600000;
    apply(s, user_rows({"late-comer-with-a-long-name", "x"}, t1, 100), kT0);
    const std::int64_t wm = t1;
    for (int i = 0; i < 8; ++i) s.views.retention_step(wm, config().window_retention_ms, 1024, true);
    s.views.expire_ids(wm);
    apply(s, user_rows({"x", "y"}, t1 + 60000, 200), wm);
    apply(s, user_rows({"x"}, t1 + 10000, 300), wm);
    write_seed(dir, "after_retention", s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("SPATE_CHECKPOINT_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string body;
  if (!decode(data, size, body)) return 0;
  State s;
  kernels::ByteReader in(body);
  if (!s.views.load(in)) {
    require(!in.ok(), "load() refused the state with the reader still good");
    return 0;
  }
  require(in.ok(), "load() accepted the state with the reader failed");
  exercise(body, body.size() - in.remaining(), s);
  return 0;
}
