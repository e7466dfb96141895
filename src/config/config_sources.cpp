// [[source]] tables: TCP and UDP listeners, files, captures, a DPDK port.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config_checker.hpp"

namespace spate::engine {
namespace detail {

void parse_sources(const toml::node& node, Checker& check, Config& config) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) {
    check.error(node, "'source' must be an array of tables ([[source]])");
    return;
  }
  for (const toml::node& item : *arr) {
    const toml::table* t = item.as_table();
    if (t == nullptr) {
      check.error(item, "each [[source]] must be a table");
      continue;
    }
    check.known_keys(*t, "[[source]]",
                     {"type", "listen", "path", "max_connections", "max_idle_ms", "pace", "speed", "port",
                      "verify_checksums", "eal_args", "dpdk_port", "rx_descriptors", "mbufs"});
    SourceConfig source;
    source.line = static_cast<int>(item.source().begin.line);
    std::string type;
    if (!check.string(*t, "type", type)) {
      check.error(item, "[[source]] needs type = \"tcp\" | \"udp\" | \"file\" | \"pcap\" | \"dpdk\"");
      continue;
    }
    if (type == "tcp" || type == "udp") {
      source.kind = type == "tcp" ? SourceKind::tcp : SourceKind::udp;
      if (type == "tcp") {
        check.integer(*t, "max_connections", source.max_connections, 1, 1000000);
        check.integer(*t, "max_idle_ms", source.max_idle_ms, 0, std::int64_t{7} * 86400000);
      } else if (t->get("max_connections") != nullptr || t->get("max_idle_ms") != nullptr) {
        check.error(item, "max_connections and max_idle_ms are for tcp sources");
      }
      if (!check.endpoint(*t, "listen", source.listen) && t->get("listen") == nullptr) {
        check.error(item, fmt::format("{} source needs listen = \"HOST:PORT\"", type));
        continue;
      }
    } else if (type == "file") {
      source.kind = SourceKind::file;
      if (!check.string(*t, "path", source.path) || source.path.empty()) {
        check.error(item, "file source needs path = \"FILE\" (\"-\" for stdin)");
        continue;
      }
    } else if (type == "pcap") {
      source.kind = SourceKind::pcap;
      if (!check.string(*t, "path", source.path) || source.path.empty()) {
        check.error(item, "pcap source needs path = \"FILE\" (a pcap or pcapng capture)");
        continue;
      }
      std::string pace = "fast";
      check.choice(*t, "pace", pace, {"fast", "recorded"});
      source.recorded_pace = pace == "recorded";
      if (const toml::node* speed = t->get("speed")) {
        const auto v = speed->value<double>();
        if (!v || !(*v >= 0.001 && *v <= 1000)) check.error(*speed, "speed must be a number from 0.001 to 1000");
        else source.speed = *v;
      }
      check.integer(*t, "port", source.port, 0, 65535);
      check.boolean(*t, "verify_checksums", source.verify_checksums);
    } else if (type == "dpdk") {
      source.kind = SourceKind::dpdk;
      if (const toml::node* args = t->get("eal_args")) {
        const toml::array* a = args->as_array();
        if (a == nullptr) check.error(*args, "eal_args must be an array of strings");
        for (std::size_t i = 0; a != nullptr && i < a->size(); ++i) {
          if (const auto s = a->get(i)->value<std::string>()) source.eal_args.push_back(*s);
          else check.error(*a->get(i), "eal_args must be an array of strings");
        }
      }
      check.integer(*t, "dpdk_port", source.dpdk_port, 0, 65535);
      check.integer(*t, "port", source.port, 0, 65535);
      check.integer(*t, "rx_descriptors", source.rx_descriptors, 64, 32768);
      check.integer(*t, "mbufs", source.mbufs, 0, 16777216);
      check.boolean(*t, "verify_checksums", source.verify_checksums);
      for (const SourceConfig& other : config.sources) {
        if (other.kind == SourceKind::dpdk) check.error(item, "one dpdk source at most (the EAL is set up once)");
      }
    } else {
      check.error(*t->get("type"), fmt::format("unknown source type '{}' (tcp, udp, file, pcap, dpdk)", type));
      continue;
    }
    if (source.kind != SourceKind::pcap) {
      for (const char* key : {"pace", "speed"}) {
        if (const toml::node* n = t->get(key)) check.error(*n, fmt::format("{} is for pcap sources", key));
      }
    }
    if (source.kind != SourceKind::pcap && source.kind != SourceKind::dpdk) {
      for (const char* key : {"port", "verify_checksums"}) {
        if (const toml::node* n = t->get(key)) check.error(*n, fmt::format("{} is for pcap and dpdk sources", key));
      }
    }
    if (source.kind != SourceKind::dpdk) {
      for (const char* key : {"eal_args", "dpdk_port", "rx_descriptors", "mbufs"}) {
        if (const toml::node* n = t->get(key)) check.error(*n, fmt::format("{} is for dpdk sources", key));
      }
    }
    config.sources.push_back(std::move(source));
  }
}

}  // namespace detail

using detail::quoted;

std::vector<ConfigError> check_file_sources(const Config& config) {
  std::vector<ConfigError> errors;
  for (const SourceConfig& s : config.sources) {
    if (s.kind != SourceKind::file || s.path == "-") continue;
    struct stat st {};
    const int fd = ::open(s.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      errors.push_back({s.line, fmt::format("file source {}: cannot be read: {}", quoted(s.path), std::strerror(errno))});
      continue;
    }
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      errors.push_back({s.line, fmt::format("file source {}: is a directory", quoted(s.path))});
    }
    ::close(fd);
  }
  return errors;
}

}  // namespace spate::engine
