// The engine in process: file ingest split across shards, routing by key to
// the owning shard, and queries answered through the real server and client.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "engine/engine.hpp"
#include "client/client.hpp"
#include "query/query_server.hpp"

using namespace spate::engine;

namespace {

std::string temp_path(const char* name) {
  return std::string(P_tmpdir) + "/spate_shard_test_" + std::to_string(::getpid()) + "_" + name;
}

void wait_until(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(done());
}

// The engine and query server over one input, started and run until every
// line is applied; stopped on destruction.
Config with_file_source(Config config, const std::string& path) {
  SourceConfig file;
  file.type = "file";
  file.set("path", path);
  config.sources = {file};
  return config;
}

QueryConfig loopback_any_port() {
  QueryConfig q;
  q.listen = {"127.0.0.1", 0};
  return q;
}

// Each pipeline keeps its segments in a directory of its own, removed after.
Config in_fresh_data_dir(Config config) {
  char dir[] = "/tmp/spate_shard_test_XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  config.data_dir = dir;
  return config;
}

struct Pipeline {
  Engine engine;
  spate::query::QueryServer server;

  // Input from a file.
  Pipeline(Config config, const std::string& path)
      : engine(with_file_source(in_fresh_data_dir(std::move(config)), path)), server(engine, loopback_any_port()) {
    run();
  }
  // Input from a caller's buffer, which holds kPadding bytes past `ndjson`.
  Pipeline(Config config, std::string_view ndjson)
      : engine((config.sources.clear(), in_fresh_data_dir(std::move(config)))), server(engine, loopback_any_port()) {
    engine.add_buffer_input(ndjson);
    run();
  }
  ~Pipeline() {
    server.stop();
    engine.stop();
    std::filesystem::remove_all(engine.config().data_dir);
  }

 private:
  void run() {
    engine.start();
    server.start();
    wait_until([&] { return engine.files_done() && engine.quiescent(); });
  }
};

}  // namespace

TEST_CASE("engine: three shards split an input, route rows to key owners and answer exact aggregates") {
  std::string text;
  std::map<std::string, std::pair<std::uint64_t, double>> expected;  // per user, window 0
  for (int i = 0; i < 30000; ++i) {
    const std::string user = "u" + std::to_string(i % 101);
    const int amount = i % 13;
    text += R"({"id":"e)" + std::to_string(i) + R"(","ts":)" + std::to_string(i % 50000) + R"(,"user":")" + user +
            R"(","type":"t)" + std::to_string(i % 3) + R"(","amount":)" + std::to_string(amount) + "}\n";
    if (i % 1000 == 999) text += "{broken\n";
    auto& e = expected[user];
    e.first += 1;
    e.second += amount;
  }
  text.pop_back();  // the last line has no newline
  Config config = default_config();
  config.shards = 3;
  std::unique_ptr<Pipeline> pipeline;
  std::string path;
  std::string buffer;
  SUBCASE("from a file") {
    path = temp_path("events.ndjson");
    std::ofstream(path) << text;
    pipeline = std::make_unique<Pipeline>(config, path);
  }
  SUBCASE("from a buffer, parsed in place") {
    buffer = text + std::string(kPadding, '\0');
    pipeline = std::make_unique<Pipeline>(config, std::string_view(buffer.data(), text.size()));
  }
  Pipeline& p = *pipeline;
  Engine& engine = p.engine;

  std::uint64_t events = 0, malformed = 0, routed_out = 0, routed_in = 0;
  const spate::io::SourceKindId file = source_kind_id(kFileSource);
  for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
    const auto& c = engine.shard(s).counters();
    events += c.events_in[file].load();
    malformed += c.errors[file][static_cast<int>(Reject::malformed_json)].load();
    routed_out += c.routed_out.load();
    routed_in += c.routed_in.load();
    CHECK(c.events_in[file].load() > 0);  // every shard read part of the file
  }
  CHECK(events == 30000);
  CHECK(malformed == 30);
  CHECK(routed_out == routed_in);
  CHECK(routed_out > 0);

  spate::query::Client client("127.0.0.1", p.server.port());
  for (const auto& [user, agg] : expected) {
    const auto rows = client.view_get("per_user_1m", user);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].window_start == 0);
    CHECK(rows[0].get("count") == static_cast<double>(agg.first));
    CHECK(rows[0].get("sum(amount)") == agg.second);
  }
  const auto top = client.view_top("per_type_10s", 0, 3, "count");
  REQUIRE(top.size() == 3);
  CHECK(top[0].get("count").value() + top[1].get("count").value() + top[2].get("count").value() == 10000);  // i < 10000 is window 0
  pipeline.reset();
  if (!path.empty()) std::remove(path.c_str());
}

TEST_CASE("engine: keys whose windows passed retention are forgotten, so memory follows live keys") {
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    text += R"({"id":"a)" + std::to_string(i) + R"(","ts":)" + std::to_string(i) + R"(,"user":"old)" + std::to_string(i) +
            R"(","type":"t","amount":1})" + "\n";
  }
  text += R"({"id":"b","ts":600000,"user":"new","type":"t","amount":2})";
  const std::string buffer = text + std::string(kPadding, '\0');
  Config config = default_config();
  config.shards = 1;
  config.window_retention_ms = 0;
  Pipeline p(config, std::string_view(buffer.data(), text.size()));
  Engine& engine = p.engine;
  // Retention runs once a second: the 1000 old users go, "new" and type "t" stay.
  wait_until([&] { return engine.shard(0).counters().keys.load() == 2; });
  spate::query::Client client("127.0.0.1", p.server.port());
  CHECK(client.view_get("per_user_1m", "old7").empty());
  const auto rows = client.view_get("per_user_1m", "new");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].get("sum(amount)") == 2.0);
}

TEST_CASE("engine: three shards whose every ring is full still apply every row (no deadlock)") {
  // Two slots per ring and keys spread over every shard: each shard soon
  // waits on a full ring to a shard that waits on a full ring to it. A
  // shard waiting for room keeps applying what others send it, so all go on.
  std::string text;
  constexpr int kEvents = 200000;
  for (int i = 0; i < kEvents; ++i) {
    text += R"({"id":"e)" + std::to_string(i) + R"(","ts":)" + std::to_string(i) + R"(,"user":"u)" +
            std::to_string(i % 5003) + R"(","type":"t)" + std::to_string(i % 7) + R"(","amount":1})" + "\n";
  }
  const std::string buffer = text + std::string(kPadding, '\0');
  Config config = default_config();
  config.shards = 3;
  config.ring_slots = 2;
  Pipeline p(config, std::string_view(buffer.data(), text.size()));
  std::uint64_t events = 0, applied = 0, routed = 0, waits = 0;
  for (std::uint32_t s = 0; s < p.engine.shard_count(); ++s) {
    waits += p.engine.shard(s).counters().ring_full_waits.load();
    events += p.engine.shard(s).counters().events();
    applied += p.engine.shard(s).counters().rows_handled.load();
    routed += p.engine.shard(s).counters().routed_in.load();
  }
  CHECK(events == kEvents);
  CHECK(applied == 2 * kEvents);
  CHECK(routed > kEvents);  // most rows crossed a ring
  CHECK(waits > 0);         // and rings were full on the way
}
