// Structured log lines: logfmt quoting, JSON escaping, level filtering and
// whole lines from concurrent threads.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <simdjson.h>

#include "io/file/log.hpp"

using spate::io::LogField;
using spate::io::LogFormat;
using spate::io::LogLevel;

namespace {

constexpr std::int64_t kTs = 1764000000123;  // 2025-11-24T16:00:00.123Z

std::string line(LogFormat format, LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  std::string out;
  spate::io::format_log_line(out, format, level, kTs, message, std::span<const LogField>(fields.begin(), fields.size()));
  return out;
}

// What is written to fd 2 between construction and finish(), read by a
// thread so that a writer never blocks on a full pipe.
class StderrCapture {
 public:
  StderrCapture() {
    REQUIRE(::pipe(pipe_) == 0);
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(pipe_[1], STDERR_FILENO);
    reader_ = std::thread([this] {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(pipe_[0], buf, sizeof(buf))) > 0) text_.append(buf, static_cast<std::size_t>(n));
    });
  }
  std::string finish() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(pipe_[1]);
    reader_.join();
    ::close(pipe_[0]);
    return text_;
  }

 private:
  int pipe_[2] = {-1, -1};
  int saved_ = -1;
  std::thread reader_;
  std::string text_;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(text.substr(start, nl - start));
  }
  CHECK(start == text.size());  // every line ends in a newline
  return out;
}

}  // namespace

TEST_CASE("log: logfmt leaves plain values bare and quotes and escapes the rest") {
  CHECK(line(LogFormat::logfmt, LogLevel::warn, "segment write failed",
             {{"shard", 1u}, {"error", "No space left on device"}}) ==
        "ts=2025-11-24T16:00:00.123Z level=warn msg=\"segment write failed\" shard=1 error=\"No space left on device\"\n");
  CHECK(line(LogFormat::logfmt, LogLevel::info, "started", {{"path", "/var/lib/spate"}, {"dir", std::string("a\\b")}}) ==
        "ts=2025-11-24T16:00:00.123Z level=info msg=started path=/var/lib/spate dir=a\\b\n");
  CHECK(line(LogFormat::logfmt, LogLevel::error, "x",
             {{"eq", "a=b"}, {"quote", "say \"hi\""}, {"ctl", "a\nb\tc\x01" "d\x7f"}, {"empty", ""},
              {"both", "back\\slash and space"}}) ==
        "ts=2025-11-24T16:00:00.123Z level=error msg=x eq=\"a=b\" quote=\"say \\\"hi\\\"\" "
        "ctl=\"a\\nb\\tc\\u0001d\\u007f\" empty=\"\" both=\"back\\\\slash and space\"\n");
  CHECK(line(LogFormat::logfmt, LogLevel::debug, "numbers",
             {{"neg", -42}, {"big", std::uint64_t{18446744073709551615u}}, {"ratio", 0.25}, {"secs", 3.071},
              {"yes", true}, {"no", false}, {"nan", std::numeric_limits<double>::quiet_NaN()}}) ==
        "ts=2025-11-24T16:00:00.123Z level=debug msg=numbers neg=-42 big=18446744073709551615 ratio=0.25 secs=3.071 "
        "yes=true no=false nan=NaN\n");
}

TEST_CASE("log: JSON lines escape every string and parse back to the same values") {
  const std::string nasty = std::string("quote \" backslash \\ newline \n tab \t bell \x07 nul ") + '\0' + " del \x7f";
  const std::string text = line(LogFormat::json, LogLevel::warn, "say \"hi\"",
                                {{"shard", 3u}, {"neg", -7}, {"ratio", 1.5}, {"ok", true}, {"error", nasty},
                                 {"inf", std::numeric_limits<double>::infinity()}});
  CHECK(text ==
        "{\"ts\":\"2025-11-24T16:00:00.123Z\",\"level\":\"warn\",\"msg\":\"say \\\"hi\\\"\",\"shard\":3,\"neg\":-7,"
        "\"ratio\":1.5,\"ok\":true,\"error\":\"quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007 nul \\u0000 "
        "del \\u007f\",\"inf\":null}\n");
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  REQUIRE(parser.parse(text).get(obj) == simdjson::SUCCESS);
  CHECK(std::string_view(obj["ts"]) == "2025-11-24T16:00:00.123Z");
  CHECK(std::string_view(obj["level"]) == "warn");
  CHECK(std::string_view(obj["msg"]) == "say \"hi\"");
  CHECK(std::uint64_t(obj["shard"]) == 3);
  CHECK(std::int64_t(obj["neg"]) == -7);
  CHECK(double(obj["ratio"]) == 1.5);
  CHECK(bool(obj["ok"]));
  CHECK(std::string_view(obj["error"]) == nasty);
  CHECK(obj["inf"].is_null());
  // Bytes that are not UTF-8 are passed through, inside the quotes.
  CHECK(line(LogFormat::json, LogLevel::info, "m", {{"raw", "\xff\xfe"}}) ==
        "{\"ts\":\"2025-11-24T16:00:00.123Z\",\"level\":\"info\",\"msg\":\"m\",\"raw\":\"\xff\xfe\"}\n");
}

TEST_CASE("log: a string value past the limit is cut and marked, in both formats") {
  const std::string long_value(spate::io::kLogMaxValueBytes + 10, 'a');
  const std::string kept(spate::io::kLogMaxValueBytes, 'a');
  CHECK(line(LogFormat::logfmt, LogLevel::info, "m", {{"v", long_value}}) ==
        "ts=2025-11-24T16:00:00.123Z level=info msg=m v=\"" + kept + "...\"\n");
  CHECK(line(LogFormat::json, LogLevel::info, "m", {{"v", long_value}}) ==
        "{\"ts\":\"2025-11-24T16:00:00.123Z\",\"level\":\"info\",\"msg\":\"m\",\"v\":\"" + kept + "...\"}\n");
}

TEST_CASE("log: level and format names parse, and anything else is refused") {
  LogLevel level = LogLevel::info;
  CHECK(spate::io::parse_log_level("debug", level));
  CHECK(level == LogLevel::debug);
  CHECK(spate::io::parse_log_level("error", level));
  CHECK(level == LogLevel::error);
  CHECK_FALSE(spate::io::parse_log_level("WARN", level));
  CHECK_FALSE(spate::io::parse_log_level("warning", level));
  CHECK(level == LogLevel::error);
  LogFormat format = LogFormat::logfmt;
  CHECK(spate::io::parse_log_format("json", format));
  CHECK(format == LogFormat::json);
  CHECK_FALSE(spate::io::parse_log_format("text", format));
  CHECK(format == LogFormat::json);
  CHECK(std::string_view(spate::io::log_level_name(LogLevel::warn)) == "warn");
  CHECK(std::string_view(spate::io::log_format_name(LogFormat::logfmt)) == "logfmt");
}

TEST_CASE("log: lines below the set level are not written or counted") {
  std::uint64_t before[spate::io::kLogLevels];
  for (std::size_t l = 0; l < spate::io::kLogLevels; ++l) before[l] = spate::io::log_lines(static_cast<LogLevel>(l));
  spate::io::set_log_level(LogLevel::warn);
  spate::io::set_log_format(LogFormat::json);
  StderrCapture capture;
  spate::io::log_debug("not this");
  spate::io::log_info("nor this", {{"shard", 0}});
  spate::io::log_warn("this", {{"shard", 1}});
  spate::io::log_error("and this", {{"error", "boom"}});
  spate::io::log(LogLevel::info, "not this either");
  const std::vector<std::string> lines = split_lines(capture.finish());
  spate::io::set_log_level(LogLevel::info);
  spate::io::set_log_format(LogFormat::logfmt);
  REQUIRE(lines.size() == 2);
  simdjson::dom::parser parser;
  simdjson::dom::object first, second;
  REQUIRE(parser.parse(lines[0]).get(first) == simdjson::SUCCESS);
  CHECK(std::string_view(first["level"]) == "warn");
  CHECK(std::string_view(first["msg"]) == "this");
  CHECK(std::int64_t(first["shard"]) == 1);
  REQUIRE(parser.parse(lines[1]).get(second) == simdjson::SUCCESS);
  CHECK(std::string_view(second["level"]) == "error");
  CHECK(std::string_view(second["error"]) == "boom");
  CHECK(spate::io::log_lines(LogLevel::debug) == before[0]);
  CHECK(spate::io::log_lines(LogLevel::info) == before[1]);
  CHECK(spate::io::log_lines(LogLevel::warn) == before[2] + 1);
  CHECK(spate::io::log_lines(LogLevel::error) == before[3] + 1);
}

TEST_CASE("log: lines of concurrent threads come out whole, each exactly once") {
  constexpr int kThreads = 4, kLines = 500;
  const std::uint64_t before = spate::io::log_lines(LogLevel::info);
  StderrCapture capture;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      const std::string pad(100, static_cast<char>('a' + t));  // lines of 200 bytes: a torn one would show
      for (int i = 0; i < kLines; ++i) spate::io::log_info("line", {{"thread", t}, {"i", i}, {"pad", pad}});
    });
  }
  for (auto& th : threads) th.join();
  const std::vector<std::string> lines = split_lines(capture.finish());
  CHECK(lines.size() == kThreads * kLines);
  CHECK(spate::io::log_lines(LogLevel::info) == before + kThreads * kLines);
  std::set<std::pair<int, int>> seen;
  for (const std::string& l : lines) {
    int t = -1, i = -1;
    char pad[128] = {};
    REQUIRE(std::sscanf(l.c_str(), "ts=%*s level=info msg=line thread=%d i=%d pad=%127s", &t, &i, pad) == 3);
    CHECK(std::string(pad) == std::string(100, static_cast<char>('a' + t)));
    seen.insert({t, i});
  }
  CHECK(seen.size() == static_cast<std::size_t>(kThreads * kLines));
}
