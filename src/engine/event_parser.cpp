// Field extraction with simdjson On-Demand; see event_parser.hpp.
#include "engine/event_parser.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>

#include "kernels/assert.hpp"
#include "kernels/json_atoms.hpp"
#include "kernels/rfc3339.hpp"
#include "kernels/small_bytes.hpp"

namespace spate::engine {

namespace od = simdjson::ondemand;

const char* reject_name(Reject reason) noexcept {
  switch (reason) {
    case Reject::none: return "none";
    case Reject::malformed_json: return "malformed_json";
    case Reject::missing_field: return "missing_field";
    case Reject::wrong_type: return "wrong_type";
    case Reject::bad_timestamp: return "bad_timestamp";
    case Reject::oversized_line: return "oversized_line";
    case Reject::key_too_long: return "key_too_long";
    case Reject::future_timestamp: return "future_timestamp";
    case Reject::before_min_timestamp: return "before_min_timestamp";
  }
  return "unknown";
}

EventParser::EventParser(const Config& config) {
  // Sized once for the longest line: growing later reached simdjson's
  // set_capacity through the shared library's implementation object, which
  // UBSan's vptr check flags (its type info is not ours), and it would
  // allocate on the hot path besides.
  if (parser_.allocate(config.max_line_bytes + simdjson::SIMDJSON_PADDING) != simdjson::SUCCESS) throw std::bad_alloc();
  ts_unit_ = config.ts_unit;
  ts_scale_ = ts_unit_ == Config::TsUnit::s ? 1000.0 : ts_unit_ == Config::TsUnit::us ? 1e-3 : ts_unit_ == Config::TsUnit::ns ? 1e-6 : 1.0;
  if (!config.id_field.empty()) wanted_.push_back({config.id_field, Role::id, 0, true});
  wanted_.push_back({config.ts_field, Role::ts, 0, false});
  for (const auto& f : config.fields) {
    // An integer or boolean field that no aggregate reads is still read (its
    // type checked the same way) into ParsedEvent::columns' spare cell.
    Wanted w{f.name, Role::other, 0, f.type == FieldType::string};
    if (f.type == FieldType::integer || f.type == FieldType::boolean) {
      w.role = f.type == FieldType::integer ? Role::integer : Role::boolean;
      w.index = kMaxColumns;
    }
    for (std::size_t g = 0; g < config.key_groups.size(); ++g) {
      if (config.key_groups[g].field == f.name) {
        w.role = Role::key;
        w.index = static_cast<std::uint8_t>(g);
      }
    }
    for (std::size_t c = 0; c < config.columns.size(); ++c) {
      if (config.columns[c].name == f.name) {
        w.role = f.type == FieldType::integer ? Role::integer : f.type == FieldType::boolean ? Role::boolean : Role::number;
        w.index = static_cast<std::uint8_t>(c);
      }
    }
    wanted_.push_back(std::move(w));
  }
  static_assert(std::endian::native == std::endian::little, "head_mask keeps the low bytes");
  for (Wanted& w : wanted_) {
    // The name and its closing quote, as far as they fit in 8 bytes: one
    // masked compare decides for names under 8 bytes (the default schema's),
    // where a first-byte filter and a byte loop cost 2% of the parse.
    const std::string quoted = w.name + '"';
    const std::size_t m = std::min(quoted.size(), sizeof(w.head));
    std::memcpy(&w.head, quoted.data(), m);
    w.head_mask = m == sizeof(w.head) ? ~0ull : (1ull << (8 * m)) - 1;
  }
  // One bit per wanted field: finalize() allows at most 64 (kMaxSchemaFields + id + ts).
  SPATE_ASSERT(wanted_.size() <= 64, "at most 64 wanted fields");
  required_mask_ = wanted_.size() == 64 ? ~0ull : (1ull << wanted_.size()) - 1;
  default_keys_.resize(wanted_.size());
  default_cells_.resize(wanted_.size(), Cell{0.0});
  const std::size_t first_field = wanted_.size() - config.fields.size();  // after the id and timestamp
  for (std::size_t f = 0; f < config.fields.size(); ++f) {
    const FieldConfig& fc = config.fields[f];
    if (fc.required) continue;
    const std::size_t i = first_field + f;
    optional_mask_ |= 1ull << i;
    default_keys_[i] = fc.default_string;
    if (fc.type == FieldType::number) default_cells_[i].f = fc.default_number;
    else default_cells_[i].i = fc.default_integer;
  }
}

// A value's JSON text: On-Demand's token runs up to the next structural
// character, so whitespace after the value comes with it.
static std::string_view value_text(std::string_view token) noexcept {
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t' || token.back() == '\n' || token.back() == '\r')) {
    token.remove_suffix(1);
  }
  return token;
}

// simdjson 3.0 misreads some numbers of more than 19 significant digits
// (0.95000000000000000000 reads as 0.0277: simdjson issue #2093, fixed in
// 3.6.3; Debian 12 ships 3.0.1). A number token that long is read again,
// exactly, with from_chars; shorter ones cannot hit the bug.
static double exact_double(std::string_view token, double fast) noexcept {
  const std::string_view text = value_text(token);
  double d;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  return ec == std::errc() && p == text.data() + text.size() ? d : fast;
}

// On-Demand skips what it is not asked to read without checking it; the
// functions below check it, so that a line is accepted only when every byte
// of it is JSON. They are inlined into parse() like field_value: a call that
// takes the On-Demand value lets its address escape, and the parser then
// keeps its iterator in memory for every field.
//
// A skipped value is skipped leniently, and what follows it is not checked
// ("a":"b":1 reads as one member). So after such a value the next byte (past
// whitespace) must end the member: a comma or the event's closing brace.
[[gnu::always_inline]] inline bool EventParser::ends_member(const char* after) const noexcept {
  while (after < line_end_ && (*after == ' ' || *after == '\t' || *after == '\n' || *after == '\r')) ++after;
  return after < line_end_ && (*after == ',' || *after == '}');
}

// A value from its first byte, nested or not, and what follows it.
bool EventParser::member_is_json(const char* value) const noexcept {
  const char* end = kernels::skip_json_value(value, line_end_);
  return end != nullptr && ends_member(end);
}

[[gnu::always_inline]] inline Reject EventParser::check_value(od::value& value, od::json_type type) noexcept {
  const std::string_view token = value.raw_json_token();  // up to the next structural character
  switch (type) {
    case od::json_type::string:  // its escapes were checked with the line's
      return ends_member(token.data() + token.size()) ? Reject::none : Reject::malformed_json;
    case od::json_type::number:
    case od::json_type::boolean:
    case od::json_type::null:
      return kernels::valid_json_scalar(token) && ends_member(token.data() + token.size()) ? Reject::none
                                                                                           : Reject::malformed_json;
    // A nested value (rare) is checked from its first byte by a plain
    // function: On-Demand then skips it. Reading it through the value
    // instead (inline, or a call taking the value) kept the parser's
    // state in memory for every field: the parse ran 1.5x slower.
    case od::json_type::object:
    case od::json_type::array:
      return member_is_json(token.data()) ? Reject::none : Reject::malformed_json;
  }
  return Reject::malformed_json;
}

[[gnu::always_inline]] inline Reject EventParser::check_value(od::value& value) noexcept {
  od::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return Reject::malformed_json;
  return check_value(value, type);
}

[[gnu::always_inline]] inline bool EventParser::skip_field(od::field& field) noexcept {
  od::value value = field.value();
  return check_value(value) == Reject::none;
}

// An integer timestamp in the schema's unit, in milliseconds (floored);
// INT64_MIN, which no range holds, for one past what milliseconds can say.
std::int64_t EventParser::to_ms(std::int64_t v) const noexcept {
  const auto floor_div = [](std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
  switch (ts_unit_) {
    case Config::TsUnit::s: return v < INT64_MIN / 1000 || v > INT64_MAX / 1000 ? INT64_MIN : v * 1000;
    case Config::TsUnit::ms: return v;
    case Config::TsUnit::us: return floor_div(v, 1000);
    case Config::TsUnit::ns: return floor_div(v, 1000000);
  }
  return v;
}

// Inlined into parse(): passing the value object to an out-of-line function
// cost a store-forwarding stall per field, half of parse()'s time in a profile.
// Typed fields try their getter first and look at the type only when it
// fails: asking for the type of every field cost 1.6% of the parse's
// instructions.
[[gnu::always_inline]] inline Reject EventParser::field_value(const Wanted& w, od::value& value, ParsedEvent& out) noexcept {
  // A failed getter: the value has another type, or is not valid JSON.
  // (parse() then checks that a value of the wrong type is JSON at all.)
  const auto failed = [](simdjson::error_code e) {
    return e == simdjson::INCORRECT_TYPE ? Reject::wrong_type : Reject::malformed_json;
  };
  switch (w.role) {
    case Role::ts: {
      // Times RFC 3339 cannot write are refused, whichever way they come.
      std::int64_t ms;
      if (value.get_int64().get(ms) == simdjson::SUCCESS) {
        if (ts_unit_ != Config::TsUnit::ms) [[unlikely]] ms = to_ms(ms);
        if (ms < kernels::kRfc3339MinMs || ms > kernels::kRfc3339MaxMs) return Reject::bad_timestamp;
        out.ts_ms = ms;
        return Reject::none;
      }
      od::json_type type;
      if (value.type().get(type) != simdjson::SUCCESS) return Reject::malformed_json;
      if (type == od::json_type::number) {
        const std::string_view token = value.raw_json_token();
        double d;
        if (value.get_double().get(d) != simdjson::SUCCESS) return Reject::malformed_json;
        if (token.size() > 19) d = exact_double(token, d);
        d *= ts_scale_;
        if (!(d >= static_cast<double>(kernels::kRfc3339MinMs) && d < static_cast<double>(kernels::kRfc3339MaxMs) + 1)) {
          return Reject::bad_timestamp;
        }
        out.ts_ms = static_cast<std::int64_t>(std::floor(d));  // a fraction floors, before 1970 too
        return Reject::none;
      }
      if (type != od::json_type::string) return Reject::wrong_type;
      std::string_view s;
      if (value.get_string().get(s) != simdjson::SUCCESS) return Reject::malformed_json;
      const auto parsed = kernels::parse_rfc3339_ms(s);
      // An offset can carry the first or last day past the range.
      if (!parsed || *parsed < kernels::kRfc3339MinMs || *parsed > kernels::kRfc3339MaxMs) return Reject::bad_timestamp;
      out.ts_ms = *parsed;
      return Reject::none;
    }
    case Role::key: {
      std::string_view s;
      if (const auto e = value.get_string().get(s); e != simdjson::SUCCESS) return failed(e);
      if (s.size() > kMaxKeyBytes) return Reject::key_too_long;
      out.keys[w.index] = s;
      return Reject::none;
    }
    case Role::number: {
      const std::string_view token = value.raw_json_token();
      double d;
      if (const auto e = value.get_double().get(d); e != simdjson::SUCCESS) return failed(e);
      if (token.size() > 19) [[unlikely]] d = exact_double(token, d);
      out.columns[w.index].f = d;
      return Reject::none;
    }
    // An integer: a JSON number without fraction or exponent within int64
    // (simdjson calls 1.5, 1e3 and 2^63 another type); a boolean: 1 or 0.
    case Role::integer:
      if (const auto e = value.get_int64().get(out.columns[w.index].i); e != simdjson::SUCCESS) return failed(e);
      return Reject::none;
    case Role::boolean: {
      bool b;
      if (const auto e = value.get_bool().get(b); e != simdjson::SUCCESS) return failed(e);
      out.columns[w.index].i = b;
      return Reject::none;
    }
    case Role::id:
    case Role::other: {
      od::json_type type;
      if (value.type().get(type) != simdjson::SUCCESS) return Reject::malformed_json;
      const bool typed = w.role == Role::id
                             ? type == od::json_type::string || type == od::json_type::number
                             : w.is_string ? type == od::json_type::string : type == od::json_type::number;
      if (!typed) return Reject::wrong_type;
      return check_value(value, type);
    }
  }
  return Reject::none;
}

Reject EventParser::parse(const char* line, std::size_t len, std::size_t capacity, ParsedEvent& out,
                          bool escapes) noexcept {
  line_end_ = line + len;
  // Stage 1 refuses control characters in strings and unpaired quotes;
  // what is left to check of every string (read or not, keys too) is its
  // escapes: one pass over the line's backslashes, and most lines have none.
  // (Checking each string on its own ran the parse 1.6x slower on lines
  // with an escape, 3x on all lines before the pass skipped lines without.)
  if (escapes && !kernels::valid_json_escapes(line, line_end_)) return Reject::malformed_json;
  od::document doc;
  if (parser_.iterate(line, len, capacity).get(doc) != simdjson::SUCCESS) return Reject::malformed_json;
  od::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return Reject::malformed_json;
  // Loop invariants in locals: stores into `out` could alias the members.
  const Wanted* const wanted = wanted_.data();
  const std::size_t n = wanted_.size();
  const std::uint64_t all = required_mask_;
  std::uint64_t seen = 0;
  std::size_t next = 0;  // the wanted field expected next
  Reject first_error = Reject::none;
  std::uint64_t wrong = 0;  // fields of the wrong type
  std::uint64_t nulls = 0;  // optional fields holding null
  for (auto field_result : obj) {
    od::field field;
    if (std::move(field_result).get(field) != simdjson::SUCCESS) return Reject::malformed_json;
    // Once every wanted field is seen the rest are only walked over, for
    // the structure check below.
    const char* raw = reinterpret_cast<const char*>(field.key().raw());
    if (seen == all) {
      if (!skip_field(field)) return Reject::malformed_json;
      continue;
    }
    std::uint64_t head;
    std::memcpy(&head, raw, sizeof(head));
    // Fields in the usual order match the expected one at the first try;
    // otherwise a scan of the few wanted names (cheaper than hashing).
    std::size_t i = next;
    if (!matches(wanted[i], raw, head)) {
      i = 0;
      while (i < n && !matches(wanted[i], raw, head)) ++i;
      if (i == n) {
        if (!skip_field(field)) return Reject::malformed_json;
        continue;
      }
    }
    const std::uint64_t bit = 1ull << i;
    if ((seen & bit) != 0) {  // a repeated name: the first one counts; the repeat must be JSON
      if (!skip_field(field)) return Reject::malformed_json;
      continue;
    }
    seen |= bit;
    next = i + 1 == n ? 0 : i + 1;
    od::value value = field.value();
    if ((capture_mask_ & bit) != 0) {
      const std::string_view text = value_text(value.raw_json_token());
      out.fields[i] = {text.data(), text.size()};
    }
    const Reject r = field_value(wanted[i], value, out);
    if (r != Reject::none) [[unlikely]] {
      if (r == Reject::malformed_json) return r;
      // A value of the wrong type is that only when it is JSON at all: a
      // plain call from its first byte (the getter that failed left the
      // value where it was), so the hot path keeps the value in registers.
      if (r == Reject::wrong_type) {
        const char* token = value.raw_json_token().data();
        if (!member_is_json(token)) return Reject::malformed_json;
        if (*token == 'n' && (optional_mask_ & bit) != 0) {  // JSON's null in an optional field: as if absent
          nulls |= bit;
          continue;
        }
      }
      if (first_error == Reject::none) first_error = r;
      if (r == Reject::wrong_type) wrong |= bit;
    }
  }
  // Anything after the object (a second value, garbage) makes the line malformed.
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) return Reject::malformed_json;
  if (first_error != Reject::none || seen != all || nulls != 0) [[unlikely]] {
    const std::uint64_t missing = (all & ~seen) | nulls;
    if (first_error == Reject::none && (missing & ~optional_mask_) == 0) return absent_optional(missing, out);
    absent_ = (missing & ~optional_mask_) | wrong;
    return first_error != Reject::none ? first_error : Reject::missing_field;
  }
  out.missing = 0;
  return Reject::none;
}

// Every field the event lacked is optional: each takes its default.
Reject EventParser::absent_optional(std::uint64_t missing, ParsedEvent& out) noexcept {
  out.missing = missing;
  for (std::uint64_t bits = missing; bits != 0; bits &= bits - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(bits));
    const Wanted& w = wanted_[i];
    if (w.role == Role::key) out.keys[w.index] = default_keys_[i];
    else if (w.role == Role::number || w.role == Role::integer || w.role == Role::boolean) out.columns[w.index] = default_cells_[i];
    out.fields[i] = {nullptr, 0};
  }
  return Reject::none;
}

}  // namespace spate::engine
