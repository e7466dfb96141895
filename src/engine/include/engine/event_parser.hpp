// Extracts the configured fields of one NDJSON line with simdjson On-Demand,
// straight from the receive buffer (no copy), and classifies bad lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "kernels/small_bytes.hpp"
#include "config/config.hpp"
#include "engine/cell.hpp"

namespace spate::engine {

// Why a line was rejected; counted per source in STATS as errors.<name>.
enum class Reject : std::uint8_t {
  none = 0,
  malformed_json,
  missing_field,
  wrong_type,
  bad_timestamp,
  oversized_line,
  key_too_long,
  future_timestamp,  // further ahead of the wall clock than max_future_ms (judged by the shard)
  before_min_timestamp,  // dated before min_timestamp (judged by the shard)
};
inline constexpr std::size_t kRejectReasons = 9;
const char* reject_name(Reject reason) noexcept;

// Input buffers must have this many readable bytes past the data they hold.
inline constexpr std::size_t kPadding = simdjson::SIMDJSON_PADDING;

// Every field is valid until the next parse() (the views point into the line).
struct ParsedEvent {
  std::int64_t ts_ms = 0;
  std::string_view keys[kMaxKeyGroups];  // by key group, unescaped
  // By Config::columns, as the column's type says; one spare cell past them
  // that integer and boolean fields no aggregate reads are parsed into.
  Cell columns[kMaxColumns + 1] = {};
  // Every schema field, as the JSON text of its value in the line (a string
  // with its quotes and escapes): exact, for what stores events whole (the
  // durable log). In EventParser::field_name order: the id (when the schema
  // has one), the timestamp, then [schema].fields in the file's order. Only
  // those EventParser::capture_fields() asks for: all, at most 7% of the parse in
  // BM_ParseEventParser. Left uninitialized otherwise, so that an event on
  // the stack costs no more (1 KiB of string_views zeroed per line cost 5%).
  struct Text {
    const char* data;
    std::size_t size;
    std::string_view view() const noexcept { return {data, size}; }
  };
  Text fields[kMaxSchemaFields + 3];  // one slot past the schema for what the log adds (the raw line)
  // Optional fields (bits in field_name order) the event lacked or held
  // null in: they have their defaults in keys and columns, and no text.
  std::uint64_t missing = 0;
};

class EventParser {
 public:
  explicit EventParser(const Config& config);

  // Parses one line (no trailing newline). `capacity` is the number of bytes
  // readable from `line`, at least len + kPadding. escapes = false promises
  // the line holds no backslash (the caller scanned for it), which spares
  // the check of its escapes.
  Reject parse(const char* line, std::size_t len, std::size_t capacity, ParsedEvent& out, bool escapes = true) noexcept;

  // Which of ParsedEvent::fields parse() fills: every one (the log keeps
  // them), or the first (dedup reads the id); none until something needs them.
  void capture_fields(bool on) noexcept { capture_mask_ |= on ? ~std::uint64_t{0} : 0; }
  void capture_first_field() noexcept { capture_mask_ |= 1; }
  // The schema's fields in ParsedEvent::fields order.
  std::size_t field_count() const noexcept { return wanted_.size(); }
  // After parse() returned missing_field or wrong_type: the fields (bits in
  // field_name order) that were absent or of the wrong type.
  std::uint64_t absent_fields() const noexcept { return absent_; }
  std::string_view field_name(std::size_t i) const noexcept { return wanted_[i].name; }

 private:
  // number, integer, boolean: a column (or the spare cell), of that type.
  enum class Role : std::uint8_t { id, ts, key, number, integer, boolean, other };
  struct Wanted {
    std::string name;
    Role role;
    std::uint8_t index;  // key group or column
    bool is_string;      // declared type (string or number), for the other fields
    std::uint64_t head = 0;       // the name's first bytes with its closing quote
    std::uint64_t head_mask = 0;  // the bytes of head that count
  };
  // Whether the field name at raw (whose first 8 bytes are head) is w's.
  // A name of 8 bytes or more is compared further only within the line: a
  // name can be longer than the padding past it.
  bool matches(const Wanted& w, const char* raw, std::uint64_t head) const noexcept {
    if (((head ^ w.head) & w.head_mask) != 0) return false;
    return w.name.size() < sizeof(head) ||
           (w.name.size() < static_cast<std::size_t>(line_end_ - raw) && raw[w.name.size()] == '"' &&
            kernels::equal_bytes(raw, w.name.data(), w.name.size()));
  }
  Reject field_value(const Wanted& w, simdjson::ondemand::value& value, ParsedEvent& out) noexcept;
  // Strict JSON for what On-Demand skips unchecked: a value nothing reads
  // (nested ones too), and a field whose name matches nothing.
  Reject check_value(simdjson::ondemand::value& value) noexcept;
  Reject check_value(simdjson::ondemand::value& value, simdjson::ondemand::json_type type) noexcept;
  bool skip_field(simdjson::ondemand::field& field) noexcept;  // checks the value of a field nothing reads
  bool ends_member(const char* after) const noexcept;
  bool member_is_json(const char* value) const noexcept;

  simdjson::ondemand::parser parser_;
  std::vector<Wanted> wanted_;
  std::uint64_t required_mask_ = 0;  // every wanted field: seen all, the rest of the line is only walked
  std::uint64_t optional_mask_ = 0;  // of those, the ones an event may lack
  // By wanted field: what an optional field's key or column holds when absent.
  std::vector<std::string> default_keys_;
  std::vector<Cell> default_cells_;
  Reject absent_optional(std::uint64_t missing, ParsedEvent& out) noexcept;
  std::uint64_t absent_ = 0;
  const char* line_end_ = nullptr;  // of the line being parsed
  std::uint64_t capture_mask_ = 0;  // by wanted field
  Config::TsUnit ts_unit_ = Config::TsUnit::ms;  // of numeric timestamps
  double ts_scale_ = 1;                          // milliseconds per unit
  std::int64_t to_ms(std::int64_t v) const noexcept;
};

}  // namespace spate::engine
