// Field extraction and the classification of bad lines.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "engine/event_parser.hpp"

using namespace spate::engine;

namespace {

// Parses `line` from a padded copy, as the shard does from its buffers.
Reject parse(EventParser& p, const std::string& line, ParsedEvent& ev) {
  std::string buf = line;
  buf.resize(line.size() + kPadding, '\0');
  return p.parse(buf.data(), line.size(), buf.size(), ev);
}

}  // namespace

TEST_CASE("event parser: the default schema's fields land in their columns, in any order") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  REQUIRE(parse(p, R"({"id":"e1","ts":1764000000123,"user":"u42","type":"click","amount":12.5,"extra":{"a":[1,2]}})", ev) ==
          Reject::none);
  CHECK(ev.ts_ms == 1764000000123);
  CHECK(ev.keys[0] == "u42");  // key group 0 = user
  CHECK(ev.keys[1] == "click");
  CHECK(ev.columns[0].f == 12.5);

  REQUIRE(parse(p, R"({"amount":3,"type":"view","user":"u\"q","ts":"2025-11-24T16:00:00.123Z","id":7})", ev) == Reject::none);
  CHECK(ev.ts_ms == 1764000000123);
  CHECK(ev.keys[0] == "u\"q");  // escapes are decoded
  CHECK(ev.columns[0].f == 3.0);
}

TEST_CASE("event parser: names of 7, 8 and more bytes match exactly, not by their first bytes") {
  const auto r = parse_config(R"toml(
[schema]
id = "event_id"
timestamp = "time_utc"
fields = { "country" = "string", "price_usd_cents" = "number" }
[[view]]
name = "by_country"
key = "country"
size_ms = 5000
aggregates = ["sum(price_usd_cents)"]
)toml",
                              "t.toml");
  REQUIRE(r.ok());
  EventParser p(r.config);
  ParsedEvent ev;
  REQUIRE(parse(p, R"({"event_id":"a","time_utc":7,"country":"nl","price_usd_cents":250})", ev) == Reject::none);
  CHECK(ev.ts_ms == 7);
  CHECK(ev.keys[0] == "nl");
  CHECK(ev.columns[0].f == 250.0);
  // Names that share the first 8 bytes, or are a prefix, are other fields.
  CHECK(parse(p, R"({"event_id":"a","time_utc":7,"country":"nl","price_usd_centsX":250})", ev) == Reject::missing_field);
  CHECK(parse(p, R"({"event_id":"a","time_utc":7,"country":"nl","price_usd_cent":250})", ev) == Reject::missing_field);
  CHECK(parse(p, R"({"event_id":"a","time_utc":7,"countr":"nl","price_usd_cents":250})", ev) == Reject::missing_field);
  CHECK(parse(p, R"({"event_idx":"a","time_utc":7,"country":"nl","price_usd_cents":250})", ev) == Reject::missing_field);
  CHECK(parse(p, R"({"event_id":"a","time_utc":7,"country":"nl","price_usd_cents":250,"countryside":1})", ev) ==
        Reject::none);
}

TEST_CASE("event parser: a repeated field name counts once, the first time") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  REQUIRE(parse(p, R"({"user":"a","id":"e1","ts":5,"user":"b","type":"t","amount":1,"amount":"x","user":"c"})", ev) ==
          Reject::none);
  CHECK(ev.keys[0] == "a");
  CHECK(ev.columns[0].f == 1.0);
  // Fields after the wanted ones are still walked over: a line cut off
  // there is malformed, not accepted.
  CHECK(parse(p, R"({"id":"e1","ts":5,"user":"a","type":"t","amount":1,"user":"c")", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":5,"user":"a","type":"t","amount":1,"page":{"p":[1,)", ev) == Reject::malformed_json);
}

TEST_CASE("event parser: each kind of bad line gets its own reason") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  const std::string good_tail = R"("type":"t","amount":1})";
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":"u",)", ev) == Reject::malformed_json);
  CHECK(parse(p, R"(not json at all)", ev) == Reject::malformed_json);
  CHECK(parse(p, R"([1,2,3])", ev) == Reject::malformed_json);
  CHECK(parse(p, R"(42)", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":"u","type":"t","amount":1} {"x":1})", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":"u","type":"t","amount":1} trailing)", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":1,)" + good_tail, ev) == Reject::missing_field);
  CHECK(parse(p, R"({"ts":1,"user":"u",)" + good_tail, ev) == Reject::missing_field);
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":"u","type":"t","amount":"12.5"})", ev) == Reject::wrong_type);
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":123,)" + good_tail, ev) == Reject::wrong_type);
  CHECK(parse(p, R"({"id":"e1","ts":true,"user":"u",)" + good_tail, ev) == Reject::wrong_type);
  CHECK(parse(p, R"({"id":[1],"ts":1,"user":"u",)" + good_tail, ev) == Reject::wrong_type);
  CHECK(parse(p, R"({"id":"e1","ts":"not-a-date","user":"u",)" + good_tail, ev) == Reject::bad_timestamp);
  CHECK(parse(p, R"({"id":"e1","ts":"2025-13-45T99:00:00Z","user":"u",)" + good_tail, ev) == Reject::bad_timestamp);
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":")" + std::string(kMaxKeyBytes + 1, 'k') + "\"," + good_tail, ev) ==
        Reject::key_too_long);
  // A good line after bad ones still parses: the parser keeps no state from failures.
  CHECK(parse(p, R"({"id":"e1","ts":5,"user":"u",)" + good_tail, ev) == Reject::none);
  CHECK(ev.ts_ms == 5);
}

TEST_CASE("event parser: a schema at every limit (62 fields, 16 number columns, 8 view keys) parses exactly") {
  // 8 string keys k0..k7, 16 numbers n0..n15, 38 more string fields s0..s37.
  std::string fields, views, line = R"({"id":"e","ts":5)";
  for (int i = 0; i < 8; ++i) {
    fields += "k" + std::to_string(i) + " = \"string\", ";
    line += ",\"k" + std::to_string(i) + "\":\"key" + std::to_string(i) + "\"";
  }
  for (int i = 0; i < 16; ++i) {
    fields += "n" + std::to_string(i) + " = \"number\", ";
    line += ",\"n" + std::to_string(i) + "\":" + std::to_string(i * 10);
  }
  for (int i = 0; i < 38; ++i) {
    fields += "s" + std::to_string(i) + " = \"string\"" + (i + 1 < 38 ? ", " : "");
    line += ",\"s" + std::to_string(i) + "\":\"x\"";
  }
  line += "}";
  for (int i = 0; i < 8; ++i) {
    views += "[[view]]\nname = \"v" + std::to_string(i) + "\"\nkey = \"k" + std::to_string(i) + "\"\nsize_ms = 60000\naggregates = [";
    for (int c = 0; c < 16; ++c) views += std::string(c == 0 ? "" : ", ") + "\"sum(n" + std::to_string(c) + ")\"";
    views += "]\n";
  }
  const auto r = parse_config("[schema]\nfields = { " + fields + " }\n" + views, "t.toml");
  REQUIRE(r.ok());
  REQUIRE(r.config.columns.size() == 16);
  REQUIRE(r.config.key_groups.size() == 8);
  EventParser p(r.config);
  ParsedEvent ev;
  REQUIRE(parse(p, line, ev) == Reject::none);
  CHECK(ev.ts_ms == 5);
  for (int i = 0; i < 8; ++i) CHECK(ev.keys[i] == "key" + std::to_string(i));
  for (int c = 0; c < 16; ++c) CHECK(ev.columns[c].f == c * 10.0);
  // The last declared field is as required as the first (a 32-bit mask lost it).
  const std::string without_last = line.substr(0, line.rfind(",\"s37\"")) + "}";
  CHECK(parse(p, without_last, ev) == Reject::missing_field);
}

TEST_CASE("event parser: a line is accepted only if every byte is JSON, read or not") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  const std::string head = R"({"id":"e1","ts":1764000000123,"user":"u42","type":"click","amount":12.5)";
  // Each of these is invalid in a part the schema does not read (a field
  // it does not know, a nested value, a key), or in a read field whose type
  // is wrong as well.
  const char* bad_tails[] = {
      R"(,"x":tru})", R"(,"x":nul})", R"(,"x":falsey})", R"(,"x":01})", R"(,"x":1.})", R"(,"x":-})",
      R"(,"x":.5})", R"(,"x":1e})", R"(,"x":1e+})", R"(,"x":+1})", R"(,"x":0x10})", R"(,"x":NaN})",
      R"(,"x":Infinity})", R"(,"x":"a\qb"})", R"(,"x":"\u12G4"})", R"(,"x":"\u12"})",
      "\x2c\"x\":\"a\tb\"}", "\x2c\"x\":\"a\x01\"}", R"(,"x":[1,]})", R"(,"x":[1 2]})", R"(,"x":[,1]})",
      R"(,"x":{"a":1,}})", R"(,"x":{"a" 1}})", R"(,"x":{"a":}})", R"(,"x":{1:2}})", R"(,"x":{"a":[tru]}})",
      R"(,"x":[{"b":01}]})", R"(,"x\q":1})", R"(,"x":1 2})", R"(,"x":"a" "b"})", R"(,"x":'a'})",
      R"(,"x":1,})", R"(,,"x":1})", R"(,"x"})", R"(})" "x", R"(} {})",
  };
  for (const char* tail : bad_tails) {
    CAPTURE(tail);
    CHECK(parse(p, head + tail, ev) == Reject::malformed_json);
  }
  // Unread values of the wrong type and bad JSON: malformed wins.
  CHECK(parse(p, R"({"id":tru,"ts":1764000000123,"user":"u42","type":"click","amount":12.5})", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":1764000000123,"user":[01],"type":"click","amount":12.5})", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":1764000000123,"user":"u42","type":"click","amount":"\x"})", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":nul,"user":"u42","type":"click","amount":12.5})", ev) == Reject::malformed_json);
  // ...and valid JSON of the wrong type stays wrong_type.
  CHECK(parse(p, R"({"id":"e1","ts":1764000000123,"user":[1],"type":"click","amount":12.5})", ev) == Reject::wrong_type);
  CHECK(parse(p, R"({"id":null,"ts":1764000000123,"user":"u42","type":"click","amount":12.5})", ev) == Reject::wrong_type);
  // A repeated name counts once, but its repeat must be JSON too.
  CHECK(parse(p, head + R"(,"user":tru})", ev) == Reject::malformed_json);

  // Odd but valid: every atom, escapes, nesting, whitespace everywhere.
  const char* good_tails[] = {
      R"(,"x":true,"y":false,"z":null})", R"(,"x":-0,"y":0.5e-7,"z":1E+30,"w":-12.25e3})",
      R"(,"x":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"})", R"(,"x":[],"y":{},"z":[[[]]],"w":{"a":{"b":[1,{"c":null}]}}})",
      " , \"x\" : [ 1 , \"a\" , { \"k\" : false } ] , \"\\u0041\" : 1 \t}", R"(,"é€😀":"ünïcödé"})",
  };
  for (const char* tail : good_tails) {
    CAPTURE(tail);
    CHECK(parse(p, head + tail, ev) == Reject::none);
  }
}

TEST_CASE("event parser: any nesting a line can hold is checked without running out of stack") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  const std::string head = R"({"id":"e1","ts":1764000000123,"user":"u42","type":"click","amount":12.5,"x":)";
  CHECK(parse(p, head + std::string(100, '[') + std::string(100, ']') + "}", ev) == Reject::none);
  CHECK(parse(p, head + std::string(60000, '[') + std::string(60000, ']') + "}", ev) == Reject::none);
  CHECK(parse(p, head + std::string(60000, '[') + "01" + std::string(60000, ']') + "}", ev) == Reject::malformed_json);
  CHECK(parse(p, head + std::string(60000, '[') + std::string(59999, ']') + "}", ev) == Reject::malformed_json);
}

TEST_CASE("event parser: escapes are checked in every string of the line, keys and read values too") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  CHECK(parse(p, R"({"id":"e\\q","ts":1,"user":"u\\1","type":"click","amount":1,"x\\y":"\\\""})", ev) == Reject::none);
  CHECK(ev.keys[0] == "u\\1");
  CHECK(parse(p, R"({"id":"e\q","ts":1,"user":"u1","type":"click","amount":1})", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e","ts":1,"user":"u\q","type":"click","amount":1})", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e","ts":1,"user":"u","type":"click","amount":1,"k\q":1})", ev) == Reject::malformed_json);
}

TEST_CASE("event parser: event time is held to what RFC 3339 can write, and fractions floor") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  const auto with_ts = [&](const std::string& ts) {
    return parse(p, R"({"id":"e","ts":)" + ts + R"(,"user":"u","type":"t","amount":1})", ev);
  };
  CHECK(with_ts("253402300799999") == Reject::none);  // 9999-12-31T23:59:59.999Z
  CHECK(with_ts("253402300800000") == Reject::bad_timestamp);
  CHECK(with_ts("-62167219200000") == Reject::none);  // 0000-01-01T00:00:00Z
  CHECK(ev.ts_ms == -62167219200000);
  CHECK(with_ts("-62167219200001") == Reject::bad_timestamp);
  CHECK(with_ts("9223372036854775807") == Reject::bad_timestamp);
  CHECK(with_ts("-9223372036854775808") == Reject::bad_timestamp);
  CHECK(with_ts("18446744073709551615") == Reject::bad_timestamp);
  CHECK(with_ts("1e300") == Reject::bad_timestamp);
  CHECK(with_ts("-1e300") == Reject::bad_timestamp);
  CHECK(with_ts("2.534023007999995e14") == Reject::none);
  CHECK(with_ts("-0.5") == Reject::none);
  CHECK(ev.ts_ms == -1);  // floors, before 1970 too
  CHECK(with_ts("1000.9") == Reject::none);
  CHECK(ev.ts_ms == 1000);
  CHECK(with_ts(R"("0000-01-01T00:00:00+01:00")") == Reject::bad_timestamp);  // an offset past the first day
  CHECK(with_ts(R"("9999-12-31T23:59:59.999-01:00")") == Reject::bad_timestamp);
  CHECK(with_ts(R"("9999-12-31T23:59:59.999Z")") == Reject::none);
  CHECK(ev.ts_ms == 253402300799999);
}

TEST_CASE("event parser: lines the fuzzer found, each refused or read exactly") {
  const Config config = default_config();
  EventParser p(config);
  ParsedEvent ev;
  // A string followed by a colon where a comma belongs, as the last wanted field and unread.
  CHECK(parse(p, R"({"ts":1,"user":"u","type":"c","amount":1,"id":"e1":]})", ev) == Reject::malformed_json);
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":"u","type":"c","amount":1,"x":"b":1}})", ev) == Reject::malformed_json);
  // A repeated name whose repeat is not JSON.
  CHECK(parse(p, R"({"id":"e1","id":!,"ts":1,"user":"u","type":"t","amount":1})", ev) == Reject::malformed_json);
  // A number and a string run together where a key's string belongs.
  CHECK(parse(p, R"({"id":"e1","ts":1,"user":5"u42","type":"c","amount":1})", ev) == Reject::malformed_json);
  // A long fraction reads as the double nearest it.
  REQUIRE(parse(p, R"({"id":"e1","ts":1,"user":"u","type":"t","amount":0.95000000000000000000})", ev) == Reject::none);
  CHECK(ev.columns[0].f == 0.95);
}

TEST_CASE("event parser: a long field name is compared only within the line") {
  // A key sharing the first 8 bytes of a 100-byte wanted name, in a line
  // shorter than the name: nothing past the line (and its padding) is read.
  // (Under AddressSanitizer, scripts/sanitize.sh, this read past the buffer.)
  const auto r = parse_config(R"toml(
[schema]
fields = { user = "string", amount = "number", )toml" + std::string(100, 'n') + R"toml( = "string" }
[[view]]
name = "v"
key = "user"
size_ms = 60000
aggregates = ["count"]
)toml",
                              "t.toml");
  REQUIRE(r.ok());
  EventParser p(r.config);
  ParsedEvent ev;
  const std::string line = "{\"" + std::string(12, 'n') + "\":1}";
  auto exact = std::make_unique<char[]>(line.size() + kPadding);  // no byte beyond what the parser is promised
  std::memcpy(exact.get(), line.data(), line.size());
  std::memset(exact.get() + line.size(), 0, kPadding);
  CHECK(p.parse(exact.get(), line.size(), line.size() + kPadding, ev) == Reject::missing_field);
}

TEST_CASE("event parser: every schema field comes out as its exact JSON text") {
  const auto r = parse_config(R"toml(
[schema]
fields = { user = "string", type = "string", amount = "number", page = "string", score = "number" }
[[view]]
name = "v"
key = "user"
size_ms = 60000
aggregates = ["count", "sum(amount)"]
)toml",
                              "t.toml");
  REQUIRE(r.ok());
  EventParser p(r.config);
  p.capture_fields(true);
  ParsedEvent ev;
  // The texts point into the line: it must outlive them (parse() above copies it).
  std::string line =
      R"({"score": 1.50e2 ,"page":"/a\"b","id":"e\u00e9","ts":"2025-11-24T16:00:00.123Z","user":"u1","type":"t","amount":-0.0,"extra":[1]})";
  const std::size_t len = line.size();
  line.resize(len + kPadding, '\0');
  REQUIRE(p.parse(line.data(), len, line.size(), ev) == Reject::none);
  std::map<std::string, std::string> text;
  for (std::size_t i = 0; i < p.field_count(); ++i) text[std::string(p.field_name(i))] = std::string(ev.fields[i].view());
  CHECK(p.field_count() == 7);
  CHECK(text["id"] == R"("e\u00e9")");
  CHECK(text["ts"] == R"("2025-11-24T16:00:00.123Z")");
  CHECK(text["user"] == R"("u1")");
  CHECK(text["type"] == R"("t")");
  CHECK(text["amount"] == "-0.0");
  CHECK(text["page"] == R"("/a\"b")");
  CHECK(text["score"] == "1.50e2");
  CHECK(ev.keys[0] == "u1");  // the typed views of the same fields
  CHECK(ev.columns[0].f == 0.0);
}

TEST_CASE("event parser: integer fields are exact int64s, boolean fields true or false; other JSON is wrong_type") {
  const auto r = parse_config(R"toml(
[schema]
fields = { device = "string", bytes = "integer", ok = "boolean", seq = "integer", retried = "boolean" }
[[view]]
name = "per_device"
key = "device"
size_ms = 60000
aggregates = ["sum(bytes)", "avg(ok)"]
)toml",
                              "typed.toml");
  REQUIRE(r.ok());
  REQUIRE(r.config.columns.size() == 2);
  CHECK(r.config.columns[0].type == FieldType::integer);
  CHECK(r.config.columns[1].type == FieldType::boolean);
  EventParser p(r.config);
  ParsedEvent ev;
  const auto line = [](std::string_view bytes, std::string_view ok, std::string_view seq = "1",
                       std::string_view retried = "false") {
    return fmt::format(R"({{"id":"e","ts":1,"device":"d","bytes":{},"ok":{},"seq":{},"retried":{}}})", bytes, ok, seq,
                       retried);
  };
  // 2^53 + 1: a double would round it.
  REQUIRE(parse(p, line("9007199254740993", "true"), ev) == Reject::none);
  CHECK(ev.columns[0].i == 9007199254740993);
  CHECK(ev.columns[1].i == 1);
  REQUIRE(parse(p, line("-9223372036854775808", "false"), ev) == Reject::none);
  CHECK(ev.columns[0].i == INT64_MIN);
  CHECK(ev.columns[1].i == 0);
  REQUIRE(parse(p, line("9223372036854775807", "true"), ev) == Reject::none);
  CHECK(ev.columns[0].i == INT64_MAX);
  // Numbers that are not int64 integers, and other JSON, in an aggregated
  // field and in one that feeds nothing (seq, retried).
  for (const std::string_view bad : {"1.5", "1e3", "1.0", "9223372036854775808", "-9223372036854775809", "\"3\"", "true", "null"}) {
    CAPTURE(bad);
    CHECK(parse(p, line(bad, "true"), ev) == Reject::wrong_type);
    CHECK(parse(p, line("1", "true", bad), ev) == Reject::wrong_type);
  }
  for (const std::string_view bad : {"1", "0", "\"true\"", "null"}) {
    CAPTURE(bad);
    CHECK(parse(p, line("1", bad), ev) == Reject::wrong_type);
    CHECK(parse(p, line("1", "true", "1", bad), ev) == Reject::wrong_type);
  }
  // Not JSON at all stays malformed.
  CHECK(parse(p, line("01", "true"), ev) == Reject::malformed_json);
  CHECK(parse(p, line("1", "tru"), ev) == Reject::malformed_json);
  CHECK(parse(p, line("1", "true", "-"), ev) == Reject::malformed_json);
}

TEST_CASE("event parser: numeric timestamps in the schema's unit, floored to milliseconds; strings as they say") {
  const auto parsed_ts = [](std::string_view unit, std::string_view ts) {
    const auto r = parse_config(fmt::format("[schema]\ntimestamp_unit = \"{}\"\n", unit), "unit.toml");
    REQUIRE(r.ok());
    EventParser p(r.config);
    ParsedEvent ev;
    const Reject why =
        parse(p, fmt::format(R"({{"id":"e","ts":{},"user":"u","type":"t","amount":1}})", ts), ev);
    return why == Reject::none ? ev.ts_ms : -static_cast<std::int64_t>(why) - 1000000;
  };
  const std::int64_t bad = -static_cast<std::int64_t>(Reject::bad_timestamp) - 1000000;
  CHECK(parsed_ts("s", "1764000000") == 1764000000000);
  CHECK(parsed_ts("s", "1764000000.25") == 1764000000250);
  CHECK(parsed_ts("s", "-1") == -1000);
  CHECK(parsed_ts("s", "1764000000000") == bad);  // milliseconds read as seconds: past year 9999
  CHECK(parsed_ts("s", "9223372036854775807") == bad);
  CHECK(parsed_ts("ms", "1764000000123") == 1764000000123);
  CHECK(parsed_ts("us", "1764000000123999") == 1764000000123);
  CHECK(parsed_ts("us", "-1") == -1);  // floored, before 1970 too
  CHECK(parsed_ts("ns", "1764000000123999999") == 1764000000123);
  CHECK(parsed_ts("ns", "-1000001") == -2);
  CHECK(parsed_ts("us", "1764000000123999.5") == 1764000000123);
  CHECK(parsed_ts("s", "\"2025-11-24T16:00:00.5Z\"") == 1764000000500);  // a string is what it says
  const auto wrong = parse_config("[schema]\ntimestamp_unit = \"sec\"\n", "unit.toml");
  REQUIRE(wrong.errors.size() == 1);
  CHECK(wrong.errors[0].line == 2);
  const auto floor = parse_config("min_timestamp = \"yesterday\"\n", "floor.toml");
  REQUIRE(floor.errors.size() == 1);
  CHECK(floor.errors[0].message.find("min_timestamp must be") != std::string::npos);
  CHECK(parse_config("min_timestamp = \"2000-01-01T00:00:00Z\"\n", "floor.toml").config.min_timestamp_ms == 946684800000);
  CHECK(parse_config("min_timestamp = 946684800000\n", "floor.toml").config.min_timestamp_ms == 946684800000);
}

TEST_CASE("event parser: an optional field an event lacks or holds null in takes its default; another type is still wrong") {
  const auto r = parse_config(R"toml(
[schema]
fields = { user = "string", region = { type = "string", required = false, default = "unknown" }, bytes = { type = "integer", required = false, default = -1 }, note = { type = "string", required = false } }
[[view]]
name = "per_region"
key = "region"
size_ms = 60000
aggregates = ["sum(bytes)"]
)toml",
                              "optional.toml");
  REQUIRE(r.ok());
  EventParser p(r.config);
  p.capture_fields(true);
  ParsedEvent ev;
  REQUIRE(parse(p, R"({"id":"e","ts":1,"user":"u","region":"eu","bytes":5,"note":"n"})", ev) == Reject::none);
  CHECK(ev.keys[0] == "eu");
  CHECK(ev.columns[0].i == 5);
  CHECK(ev.missing == 0);
  REQUIRE(parse(p, R"({"id":"e","ts":1,"user":"u"})", ev) == Reject::none);
  CHECK(ev.keys[0] == "unknown");
  CHECK(ev.columns[0].i == -1);
  CHECK(ev.missing == 0b11100);  // bytes, note and region: the fields in name order after the id and the time
  REQUIRE(parse(p, R"({"id":"e","ts":1,"user":"u","region":null,"bytes":7,"note":null})", ev) == Reject::none);
  CHECK(ev.keys[0] == "unknown");
  CHECK(ev.columns[0].i == 7);
  CHECK(ev.missing == 0b11000);  // note and region
  CHECK(parse(p, R"({"id":"e","ts":1,"user":"u","region":7})", ev) == Reject::wrong_type);
  CHECK(parse(p, R"({"id":"e","ts":1,"region":"eu"})", ev) == Reject::missing_field);  // user is required
  CHECK(parse(p, R"({"id":"e","ts":1,"user":null})", ev) == Reject::wrong_type);       // and not nullable

  // A field a view reads needs a default; a default needs required = false and the field's type.
  const auto bad = parse_config(R"toml(
[schema]
fields = { user = "string", region = { type = "string", required = false }, n = { type = "integer", default = 1 }, m = { type = "number", required = false, default = "x" } }
[[view]]
name = "per_region"
key = "region"
size_ms = 60000
aggregates = ["count"]
)toml",
                                "optional.toml");
  std::string all;
  for (const auto& e : bad.errors) all += e.message + "\n";
  CHECK(all.find("field 'region' is optional and view 'per_region' reads it: give it a default") != std::string::npos);
  CHECK(all.find("field 'n' has a default but is required") != std::string::npos);
  CHECK(all.find("field 'm': the default must be a number") != std::string::npos);
}
