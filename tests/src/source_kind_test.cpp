// Source kinds registered by name: the list, what reads a [[source]]'s
// settings, and kinds started by the engine, counted in their own slots.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include "engine/engine.hpp"
#include "engine/source_kind.hpp"
#include "io/net/tcp_source.hpp"

using namespace spate::engine;

namespace {

SourceConfig source(std::string type, std::vector<Setting> settings, int line = 1) {
  SourceConfig s;
  s.type = std::move(type);
  s.settings = std::move(settings);
  s.line = line;
  return s;
}

std::string joined(const std::vector<ConfigError>& errors) {
  std::string all;
  for (const ConfigError& e : errors) all += std::to_string(e.line) + ": " + e.message + "\n";
  return all;
}

}  // namespace

TEST_CASE("source kinds: one name each, found by it, a slot each; only the configurable ones start") {
  std::set<std::string_view> names;
  const auto kinds = source_kinds();
  REQUIRE(kinds.size() <= kMaxSourceKinds);
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    CHECK(names.insert(kinds[i]->name).second);
    CHECK(find_source_kind(kinds[i]->name) == kinds[i]);
    CHECK(source_kind_id(*kinds[i]) == i);
    const bool configurable = kinds[i]->check != nullptr, starts = kinds[i]->start != nullptr;
    CHECK(configurable == starts);
  }
  CHECK(find_source_kind("kafka") == nullptr);
  const bool publish_configurable = kPublishSource.check != nullptr, replay_configurable = kReplaySource.check != nullptr;
  CHECK_FALSE(publish_configurable);  // made by the engine, named by no [[source]]
  CHECK_FALSE(replay_configurable);
  CHECK(source_kind_names() == "tcp, udp, file, pcap, dpdk");
}

TEST_CASE("source settings: each value checked at its line, unknown keys named with the ones the kind takes") {
  Config config = default_config();
  const SourceConfig s = source("x",
                                {{"name", std::string("a"), 3},
                                 {"count", std::int64_t{70000}, 4},
                                 {"rate", std::int64_t{2}, 5},
                                 {"flag", std::string("yes"), 6},
                                 {"stray", true, 7}},
                                2);
  SourceSettings settings(s, config);
  std::string name;
  std::uint16_t count = 0;
  double rate = 0;
  bool flag = false;
  CHECK(settings.string("name", name));
  CHECK(name == "a");
  CHECK_FALSE(settings.integer("count", count, 0, 65535));
  CHECK(count == 0);
  CHECK(settings.number("rate", rate, 0.5, 4));  // an integer is a number
  CHECK(rate == 2);
  CHECK_FALSE(settings.boolean("flag", flag));
  CHECK_FALSE(settings.string("absent", name));  // absent: false, and no error
  const std::string all = joined(settings.errors());
  CHECK(all == "4: 'count' = 70000 is out of range [0, 65535]\n"
               "6: 'flag' must be true or false, not a string\n"
               "7: unknown key 'stray' in a x [[source]] (it takes 'name', 'count', 'rate', 'flag', 'absent')\n");
}

TEST_CASE("check_sources: the built-in sources pass; each kind refuses what it cannot start") {
  Config config = default_config();
  CHECK(check_sources(config).empty());
  config.sources = {
      source("tcp", {}, 1),
      source("udp", {{"listen", std::string("127.0.0.1:0"), 3}, {"max_idle_ms", std::int64_t{5}, 4}}, 2),
      source("dpdk", {}, 5),
      source("dpdk", {}, 6),
      source("pcap", {{"path", std::string("a.pcap"), 8}, {"speed", 0.0, 9}}, 7),
      source("", {}, 10),
  };
  config.sources[5].type_line = 11;
  const std::string all = joined(check_sources(config));
  CHECK(all == "1: tcp source needs listen = \"HOST:PORT\"\n"
               "4: unknown key 'max_idle_ms' in a udp [[source]] (it takes 'listen')\n"
               "6: one dpdk source at most (the EAL is set up once)\n"
               "9: 'speed' = 0 is out of range [0.001, 1000]\n"
               "11: unknown source type '' (tcp, udp, file, pcap, dpdk)\n");
}

TEST_CASE("sources started by their kinds: a listener's port shared by every shard, events counted in its slot") {
  Config config = default_config();
  char dir[] = "/tmp/spate_source_kind_test_XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  config.data_dir = dir;
  config.shards = 2;
  config.sources = {source("tcp", {{"listen", std::string("127.0.0.1:0"), 0}}),
                    source("udp", {{"listen", std::string("127.0.0.1:0"), 0}})};
  REQUIRE(check_sources(config).empty());
  {
    Engine engine(config);
    engine.start();
    REQUIRE(engine.sources().size() == 2);
    const StartedSource& tcp = engine.sources()[0];
    CHECK(tcp.kind == find_source_kind("tcp"));
    REQUIRE(tcp.port != 0);
    CHECK(tcp.where == "127.0.0.1:" + std::to_string(tcp.port));
    CHECK(engine.sources()[1].port != 0);

    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(tcp.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    const std::string lines =
        "{\"id\":\"a\",\"ts\":1700000000000,\"user\":\"u1\",\"type\":\"t\",\"amount\":1}\n"
        "{\"id\":\"b\",\"ts\":1700000000001,\"user\":\"u2\",\"type\":\"t\",\"amount\":2}\n"
        "not json\n";
    REQUIRE(::write(fd, lines.data(), lines.size()) == static_cast<ssize_t>(lines.size()));
    const auto tcp_id = source_kind_id(*tcp.kind);
    const auto counted = [&] {
      std::uint64_t events = 0, rejected = 0, connections = 0;
      for (std::uint32_t s = 0; s < engine.shard_count(); ++s) {
        events += engine.shard(s).counters().events(tcp_id);
        rejected += engine.shard(s).counters().rejected(tcp_id);
        connections += engine.shard(s).source_totals(tcp_id)[spate::io::TcpFigure::connections];
      }
      return std::tuple{events, rejected, connections};
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (counted() != std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>{2, 1, 1} &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    CHECK(counted() == std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>{2, 1, 1});
    std::uint64_t other = 0;  // no other kind's slot moved
    for (std::uint32_t s = 0; s < engine.shard_count(); ++s) other += engine.shard(s).counters().events() - engine.shard(s).counters().events(tcp_id);
    CHECK(other == 0);
    ::close(fd);
    engine.stop();
  }
  std::filesystem::remove_all(dir);
}
