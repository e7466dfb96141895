// A shard's event time (EventTime) and its routing (Router), over a
// ShardMesh with no Engine, threads or sockets: each "shard" here is an
// EventTime and a Router, and the test plays the loop by hand. Checked: the
// stamp rows carry, which channels hold the watermark back (active
// producers, or rings with batches in them), the idle catch-up, the
// watermark never moving back, a checkpoint's round trip; rows by
// destination and key group, batches sealed with the sender's progress,
// a full ring answered by working while waiting, watermark-only batches and
// barriers behind the rows.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/event_time.hpp"
#include "engine/router.hpp"
#include "engine/shard.hpp"
#include "engine/shard_mesh.hpp"
#include "kernels/hash.hpp"

using namespace spate::engine;
namespace kernels = spate::kernels;

namespace {

constexpr std::int64_t kT0 = 1767225600000;  // 2026-01-01, ms
constexpr std::int64_t kNone = EventTime::kNone;

// One row as the router got it, read back from a batch.
struct Row {
  std::uint8_t group;
  std::int64_t ts;
  std::int64_t stamp;
  std::string key;
  double amount;
  bool operator==(const Row&) const = default;
};

std::vector<Row> rows_of(const RouteBatch& b) {
  std::vector<Row> out;
  for (std::uint32_t r = 0; r < b.rows; ++r) {
    out.push_back({b.group[r], b.ts[r], b.wm[r], std::string(b.keys + b.key_off[r], b.key_len[r]), b.columns[0][r].f});
  }
  return out;
}

// What a shard's loop gives its router: local batches applied (recorded
// here), and work while a ring is full (draining the ring, as the
// destination shard would).
struct Host final : Router::Host {
  std::vector<std::vector<Row>> applied;
  SpscRing<RouteBatch>* drain = nullptr;  // the full ring, drained one batch per call
  std::vector<std::vector<Row>> drained;
  int waits = 0;

  void apply_local(const RouteBatch& b) override { applied.push_back(rows_of(b)); }
  bool work_while_waiting() override {
    ++waits;
    if (drain == nullptr || drain->front() == nullptr) return false;
    drained.push_back(rows_of(*drain->front()));
    drain->pop();
    return true;
  }
};

// Shards of a mesh, each an event time and a router; the rings' slots are
// allocated as each consumer would.
struct Shards {
  Config config;
  ShardMesh mesh;
  std::vector<std::unique_ptr<EventTime>> time;
  std::vector<std::unique_ptr<ShardCounters>> counters;
  std::vector<std::unique_ptr<Host>> hosts;
  std::vector<std::unique_ptr<Router>> routers;

  Shards(std::uint32_t n, std::uint32_t batch_rows, std::uint32_t ring_slots)
      : config(make_config(batch_rows, ring_slots)), mesh(n, config.ring_slots) {
    for (std::uint32_t s = 0; s < n; ++s) {
      time.push_back(std::make_unique<EventTime>(s, mesh));
      counters.push_back(std::make_unique<ShardCounters>(config.views.size()));
      hosts.push_back(std::make_unique<Host>());
      routers.push_back(std::make_unique<Router>(s, mesh, config, *time[s], *counters[s], *hosts[s]));
      routers[s]->prepare();
      for (std::uint32_t src = 0; src < n; ++src) {
        if (src != s) {
          mesh.ring(src, s).for_each_slot([&](RouteBatch& b) { b.allocate(config.ring_batch_rows, config.columns.size()); });
        }
      }
    }
  }
  static Config make_config(std::uint32_t batch_rows, std::uint32_t ring_slots) {
    Config c = default_config();
    c.ring_batch_rows = batch_rows;
    c.ring_slots = ring_slots;
    c.ring_flush_us = 0;
    return c;
  }
  // Routes one row from shard `from`, stamped by its input as the parser would.
  void route(std::uint32_t from, std::uint32_t input, std::uint32_t to, std::uint8_t g, std::string_view key,
             std::int64_t ts, double amount) {
    const std::int64_t stamp = time[from]->stamp(input, ts);
    const Cell cell{amount};
    routers[from]->append(to, g, kernels::hash_key(key), ts, stamp, key, &cell);
  }
  // Every batch waiting in the ring src -> dst: (rows, batch watermark, barrier).
  struct Received {
    std::vector<Row> rows;
    std::int64_t watermark;
    std::uint64_t barrier;
  };
  std::vector<Received> receive(std::uint32_t src, std::uint32_t dst) {
    std::vector<Received> out;
    SpscRing<RouteBatch>& ring = mesh.ring(src, dst);
    while (RouteBatch* b = ring.front()) {
      out.push_back({rows_of(*b), b->watermark, b->barrier});
      ring.pop();
    }
    return out;
  }
};

}  // namespace

TEST_CASE("event time: a row's stamp is its input's watermark before it, and never decreases") {
  ShardMesh mesh(1, 2);
  EventTime time(0, mesh);
  const std::uint32_t a = time.open_input();
  const std::uint32_t b = time.open_input();
  CHECK(mesh.active(0));
  CHECK(time.stamp(a, kT0 + 500) == INT64_MIN);  // b has delivered nothing: no claim yet
  CHECK(time.stamp(b, kT0 + 100) == INT64_MIN);
  CHECK(time.stamp(a, kT0 + 900) == kT0 + 100);  // the minimum over a and b before this event
  CHECK(time.stamp(b, kT0 + 50) == kT0 + 100);   // b went back in time: the stamp does not
  CHECK(time.stamp(b, kT0 + 700) == kT0 + 100);
  CHECK(time.stamp(a, kT0 + 950) == kT0 + 700);
  CHECK(time.progress() == kT0 + 700);  // what rows not parsed yet may claim
  // One shard: no channel holds it back; the watermark follows its own
  // inputs, bounded by its rows not applied yet.
  CHECK(time.channels_min_cached() == kNone);
  time.tick(0, 2000, kT0 + 300, false);
  CHECK(time.watermark() == kT0 + 300);
  time.tick(1, 2000, kNone, false);
  CHECK(time.watermark() == kT0 + 700);
  time.tick(2, 2000, kT0 + 10, false);  // pending rows older than the watermark: it stays
  CHECK(time.watermark() == kT0 + 700);
  CHECK(time.advance(kNone) == kT0 + 700);
}

TEST_CASE("event time: an active producer's channel holds the consumer back; an idle one with an empty ring does not") {
  ShardMesh mesh(3, 4);
  EventTime t0(0, mesh), t1(1, mesh), t2(2, mesh);
  CHECK(t0.channels_min_cached() == kNone);  // nobody active
  const std::uint32_t in1 = t1.open_input();
  CHECK(mesh.active(1));
  // Shard 1 is active and has said nothing: shard 0 may not advance at all.
  CHECK(t0.channels_min_cached() == INT64_MIN);
  t0.advance_channel(1, kT0 + 1000);
  t0.recompute_channels();
  CHECK(t0.channels_min_cached() == kT0 + 1000);
  t0.advance_channel(1, kT0 + 400);  // a channel never goes back
  CHECK(t0.channel(1) == kT0 + 1000);
  // Shard 2 turns active too: the minimum of the two.
  t2.open_input();
  t0.advance_channel(2, kT0 + 600);
  CHECK(t0.channels_min_cached() == kT0 + 600);
  CHECK(t0.channels_min(2) == kT0 + 1000);  // leaving shard 2 out
  // Shard 1's input goes silent past the idle timeout: it turns inactive,
  // and shard 0 sees it through the activity epoch without asking.
  t1.stamp(in1, kT0 + 1000);
  t1.tick(0, 2000, kNone, false);
  t1.tick(2500, 2000, kNone, false);
  CHECK_FALSE(mesh.active(1));
  CHECK(t0.channels_min_cached() == kT0 + 600);
  // An inactive producer with a batch in its ring still holds the consumer back.
  t0.advance_channel(2, kT0 + 2000);
  t2.close_input(0);
  t2.tick(0, 2000, kNone, false);
  CHECK_FALSE(mesh.active(2));
  CHECK(t0.channels_min_cached() == kNone);
  mesh.ring(1, 0).for_each_slot([](RouteBatch& b) { b.allocate(4, 1); });
  mesh.ring(1, 0).claim()->clear();
  mesh.ring(1, 0).publish();
  t0.recompute_channels();
  CHECK(t0.channels_min_cached() == kT0 + 1000);
}

TEST_CASE("event time: with every input idle, the watermark catches up to the most advanced shard, not past pending rows") {
  ShardMesh mesh(2, 4);
  EventTime t0(0, mesh), t1(1, mesh);
  const std::uint32_t in = t0.open_input();
  t0.stamp(in, kT0 + 5000);
  mesh.publish_reach(1, kT0 + 9000);
  t0.tick(0, 2000, kNone, false);
  CHECK(t0.watermark() == kT0 + 5000);  // active: its own input bounds it
  t0.tick(3000, 2000, kT0 + 7000, false);  // idle now; its rows at 7000 are not applied yet
  CHECK_FALSE(mesh.active(0));
  CHECK(t0.watermark() == kT0 + 7000);
  t0.tick(3001, 2000, kNone, false);
  CHECK(t0.watermark() == kT0 + 9000);  // as far as the other shard saw
  CHECK(mesh.max_reach() == kT0 + 9000);
  // And so do the stamps: the next event, on a new input, is judged against it.
  CHECK(t0.stamp(t0.open_input(), kT0 + 8000) == kT0 + 9000);
  // A stall (the loop read nothing) restarts the inputs' silence instead of idling them.
  EventTime t(1, mesh);
  const std::uint32_t i = t.open_input();
  t.stamp(i, kT0);
  t.tick(0, 100, kNone, false);
  t.tick(500, 100, kNone, true);
  CHECK(t.input_active(i));
  t.tick(700, 100, kNone, false);
  CHECK_FALSE(t.input_active(i));
}

TEST_CASE("event time: a stamp is bounded by the other active shards' progress, and a replay keeps the logged one") {
  ShardMesh mesh(2, 4);
  EventTime t0(0, mesh), t1(1, mesh);
  const std::uint32_t a = t0.open_input();
  const std::uint32_t b = t1.open_input();
  t0.stamp(a, kT0 + 1000);
  t1.stamp(b, kT0 + 400);
  t1.stamp(b, kT0 + 500);
  t1.exchange();
  t0.exchange();
  // Shard 0's input is at 1000, shard 1's at 500: the watermark is 500.
  CHECK(t0.stamp(a, kT0 + 1100) == kT0 + 500);
  CHECK(t0.progress() == kT0 + 500);  // what shard 0 claims to the shards it feeds
  t1.stamp(b, kT0 + 2000);
  t1.exchange();
  t0.exchange();
  CHECK(t0.stamp(a, kT0 + 1200) == kT0 + 1100);  // its own input bounds it now
  // Shard 1 goes idle: it holds nothing back, and its stamp follows shard 0's inputs.
  t0.exchange();
  t1.tick(0, 100, kNone, false);
  t1.tick(200, 100, kNone, false);
  CHECK_FALSE(mesh.active(1));
  t0.exchange();
  CHECK(t0.stamp(a, kT0 + 1300) == kT0 + 1200);
  t0.exchange();
  t1.tick(300, 100, kNone, false);
  CHECK(t1.stamp(b, kT0 + 600) == kT0 + 1300);  // back from its silence: judged where time went meanwhile
  // A replayed event carries its logged stamp, whatever the inputs say, and
  // moves the stamp later events start from.
  EventTime r(0, mesh);
  const std::uint32_t in = r.open_input();
  CHECK(r.replayed(in, kT0 + 5000, kT0 + 100) == kT0 + 100);
  CHECK(r.replayed(in, kT0 + 4000, kT0 + 3000) == kT0 + 3000);
  CHECK(r.progress() >= kT0 + 3000);
}

TEST_CASE("event time: a checkpoint keeps the watermark, the stamp and the channels, and refuses impossible times") {
  ShardMesh mesh(2, 4);
  EventTime a(0, mesh);
  const std::uint32_t in = a.open_input();
  a.stamp(in, kT0 + 10);
  a.stamp(in, kT0 + 20);
  a.advance_channel(1, kT0 + 15);
  a.advance(kT0 + 12);
  std::string bytes;
  kernels::ByteWriter out(bytes);
  a.save(out);

  EventTime b(0, mesh);
  kernels::ByteReader in_ok(bytes);
  REQUIRE(b.load(in_ok));
  CHECK(b.watermark() == kT0 + 12);
  CHECK(b.channel(1) == kT0 + 15);
  const std::uint32_t again = b.open_input();
  CHECK(b.stamp(again, kT0 + 1) == kT0 + 10);  // the stamp goes on from where it was

  // A watermark past what the parser accepts is a malformed body.
  std::string bad_bytes;
  kernels::ByteWriter bad(bad_bytes);
  bad.put<std::int64_t>(INT64_MAX - 1);
  bad.put<std::int64_t>(INT64_MIN);
  bad.put_vector(std::vector<std::int64_t>{INT64_MIN, INT64_MIN});
  kernels::ByteReader in_bad(bad_bytes);
  EventTime c(0, mesh);
  CHECK_FALSE(c.load(in_bad));
  // So is a channel list for another number of shards.
  std::string other_bytes;
  kernels::ByteWriter other(other_bytes);
  other.put<std::int64_t>(kT0);
  other.put<std::int64_t>(kT0);
  other.put_vector(std::vector<std::int64_t>{kT0, kT0, kT0});
  kernels::ByteReader in_other(other_bytes);
  CHECK_FALSE(c.load(in_other));
}

TEST_CASE("router: own rows go to a local batch per key group, applied when full or flushed") {
  Shards s(1, 3, 2);
  const std::uint32_t in = s.time[0]->open_input();
  s.route(0, in, 0, 0, "u1", kT0 + 1, 1.0);
  s.route(0, in, 0, 1, "click", kT0 + 2, 2.0);
  s.route(0, in, 0, 0, "u2", kT0 + 3, 3.0);
  s.route(0, in, 0, 0, "u3", kT0 + 4, 4.0);
  CHECK(s.hosts[0]->applied.empty());
  // Group 1's row waits; the watermark must not pass its stamp meanwhile.
  CHECK(s.routers[0]->pending_min(0) == kT0 + 1);
  CHECK(s.routers[0]->pending_min() == INT64_MIN);  // group 0's first row came before any claim
  s.route(0, in, 0, 0, "u4", kT0 + 5, 5.0);  // group 0's batch was full: applied, u4 starts the next
  REQUIRE(s.hosts[0]->applied.size() == 1);
  CHECK(s.hosts[0]->applied[0] == std::vector<Row>{{0, kT0 + 1, INT64_MIN, "u1", 1.0},
                                                   {0, kT0 + 3, kT0 + 2, "u2", 3.0},
                                                   {0, kT0 + 4, kT0 + 3, "u3", 4.0}});
  s.routers[0]->flush_all();
  REQUIRE(s.hosts[0]->applied.size() == 3);
  CHECK(s.hosts[0]->applied[1] == std::vector<Row>{{0, kT0 + 5, kT0 + 4, "u4", 5.0}});
  CHECK(s.hosts[0]->applied[2] == std::vector<Row>{{1, kT0 + 2, kT0 + 1, "click", 2.0}});
  CHECK(s.routers[0]->pending_min() == kNone);
  s.routers[0]->flush_all();  // nothing left: nothing applied
  CHECK(s.hosts[0]->applied.size() == 3);
}

TEST_CASE("router: rows to another shard leave in ring batches sealed with the sender's progress") {
  Shards s(2, 2, 4);
  const std::uint32_t in = s.time[0]->open_input();
  s.route(0, in, 1, 0, "a", kT0 + 10, 1.0);
  s.route(0, in, 1, 0, "b", kT0 + 20, 2.0);
  CHECK(s.receive(0, 1).empty());  // not published until full or flushed
  s.routers[0]->flush(1);
  std::vector<Shards::Received> got = s.receive(0, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].rows == std::vector<Row>{{0, kT0 + 10, INT64_MIN, "a", 1.0}, {0, kT0 + 20, kT0 + 10, "b", 2.0}});
  CHECK(got[0].watermark == kT0 + 20);  // the sender's inputs had come that far
  // A full batch leaves when the next row needs room.
  s.route(0, in, 1, 1, "c", kT0 + 30, 3.0);
  s.route(0, in, 1, 1, "d", kT0 + 40, 4.0);
  CHECK(s.receive(0, 1).empty());
  s.route(0, in, 1, 0, "e", kT0 + 50, 5.0);
  got = s.receive(0, 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].rows == std::vector<Row>{{1, kT0 + 30, kT0 + 20, "c", 3.0}, {1, kT0 + 40, kT0 + 30, "d", 4.0}});
  CHECK(got[0].watermark == kT0 + 50);  // the progress as it left: e, read before the claim, counts
  CHECK(s.counters[0]->routed_out.load() == 4);
  CHECK(s.hosts[0]->applied.empty());
}

TEST_CASE("router: a full ring is waited out by working, and nothing is lost or reordered") {
  Shards s(2, 1, 2);  // one row a batch, two batches a ring
  s.hosts[0]->drain = &s.mesh.ring(0, 1);
  const std::uint32_t in = s.time[0]->open_input();
  for (int i = 0; i < 6; ++i) s.route(0, in, 1, 0, "k" + std::to_string(i), kT0 + i, i);
  s.routers[0]->flush_all();
  CHECK(s.hosts[0]->waits > 0);
  CHECK(s.counters[0]->ring_full_waits.load() > 0);
  std::vector<std::string> keys;
  for (const auto& batch : s.hosts[0]->drained) {
    for (const Row& r : batch) keys.push_back(r.key);
  }
  for (const auto& got : s.receive(0, 1)) {
    for (const Row& r : got.rows) keys.push_back(r.key);
  }
  CHECK(keys == std::vector<std::string>{"k0", "k1", "k2", "k3", "k4", "k5"});
}

TEST_CASE("router: watermark-only batches tell idle destinations how far the inputs came, once per advance") {
  Shards s(3, 8, 4);
  s.routers[0]->send_watermarks();
  CHECK(s.receive(0, 1).empty());  // no active input: nothing to claim
  const std::uint32_t in = s.time[0]->open_input();
  s.time[0]->stamp(in, kT0 + 100);
  s.routers[0]->send_watermarks();
  for (std::uint32_t dst : {1u, 2u}) {
    const auto got = s.receive(0, dst);
    REQUIRE(got.size() == 1);
    CHECK(got[0].rows.empty());
    CHECK(got[0].watermark == kT0 + 100);
  }
  s.routers[0]->send_watermarks();  // no progress since: nothing sent
  CHECK(s.receive(0, 1).empty());
  // A batch open to shard 2 carries the progress itself when it leaves.
  s.route(0, in, 2, 0, "x", kT0 + 200, 1.0);
  s.routers[0]->send_watermarks();
  CHECK(s.receive(0, 1).size() == 1);
  CHECK(s.receive(0, 2).empty());
}

TEST_CASE("router: a barrier follows every row routed before it; local rows are applied first") {
  Shards s(2, 8, 4);
  const std::uint32_t in = s.time[0]->open_input();
  s.route(0, in, 1, 0, "far", kT0 + 1, 1.0);
  s.route(0, in, 0, 0, "near", kT0 + 2, 2.0);
  s.routers[0]->send_barriers(7);
  REQUIRE(s.hosts[0]->applied.size() == 1);
  CHECK(s.hosts[0]->applied[0][0].key == "near");
  const auto got = s.receive(0, 1);
  REQUIRE(got.size() == 2);
  CHECK(got[0].rows.size() == 1);
  CHECK(got[0].barrier == 0);
  CHECK(got[1].rows.empty());
  CHECK(got[1].barrier == 7);
}
