// Source kinds, registered by name: each is a file in src/engine/sources/
// and a line in source_registry.cpp. A kind reads its [[source]] table,
// puts its io::Sources on the shards at start, and names its own figures
// in STATS; the shard loop, the engine, STATS and the daemon know no kind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "io/file/file_source.hpp"
#include "io/file/source.hpp"

namespace spate::engine {

class Engine;

// At most this many kinds: a shard's counters keep a slot for each.
inline constexpr std::size_t kMaxSourceKinds = 16;
// The slot index meaning every kind (sums over the slots).
inline constexpr std::size_t kAllSources = kMaxSourceKinds;

// A figure for STATS: its name (after the kind's "NAME."), its value, and
// whether it is a gauge (else a counter).
using StatEmit = std::function<void(std::string_view name, std::uint64_t value, bool gauge)>;

// Reads a [[source]]'s settings for its kind. Each getter checks the value's
// type (and range) and records an error at the key's line; a key no getter
// asked for is unknown to the kind, and errors() says so with the keys it
// does take.
class SourceSettings {
 public:
  SourceSettings(const SourceConfig& source, const Config& config) : source_(source), config_(config) {}

  const SourceConfig& source() const noexcept { return source_; }
  const Config& config() const noexcept { return config_; }

  bool string(std::string_view key, std::string& out);
  bool strings(std::string_view key, std::vector<std::string>& out);
  bool boolean(std::string_view key, bool& out);
  bool number(std::string_view key, double& out, double min, double max);
  bool integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max);
  template <typename Int>
  bool integer(std::string_view key, Int& out, std::int64_t min, std::int64_t max) {
    std::int64_t v = 0;
    if (!integer(key, v, min, max)) return false;
    out = static_cast<Int>(v);
    return true;
  }
  bool endpoint(std::string_view key, Endpoint& out);
  // A string that must be one of `choices`.
  bool choice(std::string_view key, std::string& out, std::initializer_list<std::string_view> choices);
  // An error at the source's line ("file source needs path = ...").
  void error(std::string message);

  // Every error found, the unknown keys' included.
  std::vector<ConfigError> errors() const;

 private:
  const Setting* get(std::string_view key);  // notes the key as one the kind takes
  // The key's value when it is a T; else an error saying it must be `what`.
  template <typename T>
  const T* get_as(std::string_view key, std::string_view what);
  void error_at(const Setting& setting, std::string message);

  const SourceConfig& source_;
  const Config& config_;
  std::vector<std::string_view> taken_;
  std::vector<ConfigError> errors_;
};

// What a configured source leaves beside the io::Sources it put on the
// shards: what they share (a NIC port, a listener's count of connections)
// and the figures of the source as a whole. The engine keeps it until the
// shards are gone.
class SourceGroup {
 public:
  virtual ~SourceGroup() = default;
  // Figures of the whole source, given with shard 0's.
  virtual void stats(const StatEmit& emit) const { (void)emit; }
};

struct SourceKind;

// A configured source once started.
struct StartedSource {
  const SourceKind* kind = nullptr;
  std::string where;                   // for the start line: "127.0.0.1:7072", a path, "port0"
  std::uint16_t port = 0;              // a listener's port, as bound (port 0 picks one)
  std::unique_ptr<SourceGroup> group;  // may be null
};

struct SourceKind {
  std::string_view name;
  // Reads (and so checks) a [[source]] of this kind, and what it names that
  // the start would find wrong (a file that cannot be opened). Null for the
  // kinds the engine makes itself and no [[source]] names (publish, replay).
  void (*check)(SourceSettings& settings) = nullptr;
  // Puts its io::Sources on the shards (Shard::add_source). `index` is its
  // place in config.sources. Throws what stops the start, with the reason.
  StartedSource (*start)(const SourceConfig& source, std::uint32_t index, Engine& engine) = nullptr;
  // The kind's own figures from the totals of one shard's sources of it
  // ("connections" for tcp); null when it has none.
  void (*stats)(const io::SourceTotals& totals, const StatEmit& emit) = nullptr;
};

// Every kind, in slot order (a kind's io::SourceKindId is its place here).
std::span<const SourceKind* const> source_kinds() noexcept;
const SourceKind* find_source_kind(std::string_view name) noexcept;
io::SourceKindId source_kind_id(const SourceKind& kind) noexcept;
// "tcp, udp, ..." (the kinds a [[source]] may name).
std::string source_kind_names();

// The kinds the engine makes sources of itself.
extern const SourceKind kFileSource;     // sources/file.cpp (Engine::add_buffer_input too)
extern const SourceKind kPublishSource;  // publish_source.cpp
extern const SourceKind kReplaySource;   // replay_source.cpp

// Every [[source]] read by its kind, and the alarms' source names; what
// --check-config and the start add to parse_config's checks.
std::vector<ConfigError> check_sources(const Config& config);

// Cuts [0, size) into line-aligned stripes dealt round-robin over the
// shards (sources/file.cpp); next_line_start(from) is the offset just past
// the first newline at or after `from`, or `size`.
std::vector<std::vector<io::FileStripe>> deal_stripes(std::uint64_t size, std::uint32_t shards,
                                                      const std::function<std::uint64_t(std::uint64_t)>& next_line_start);

}  // namespace spate::engine
