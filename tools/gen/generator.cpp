// The generator model of spate-gen: set-up from the options, and the hostile lines (malformed
// JSON, missing fields, wrong types, bad timestamps, oversized lines).
#include "gen/generator.hpp"

#include <cstring>

namespace spate::gen {

Generator::Generator(const Options& o, Expect* expect)
    : o_(o),
      expect_(expect),
      rng_(o.seed),
      hostile_rng_(o.seed ^ 0x6a09e667f3bcc909ull),  // own stream: events do not depend on hostile share
      users_(zipf_weights(o.users, o.zipf)),
      types_(type_weights(o.types.size())),
      dup_end_(probability53(o.dup_share)),
      late_end_(probability53(o.dup_share + o.late_share)),
      ooo_end_(probability53(o.dup_share + o.late_share + o.ooo_share)),
      rfc_(probability53(o.rfc3339_share)),
      hostile_(probability53(o.hostile_share)),
      base_ms_(o.start_ms) {
  next_id_ = o.first_id;
  dup_lookback_ = kDupLookbackEvents;
  if (o.step_ms > 0) {
    dup_lookback_ = static_cast<std::uint64_t>(
        std::clamp(kDupLookbackMs / o.step_ms, 1.0, static_cast<double>(kDupLookbackEvents)));
  }
}

// Rotates through the reasons; each reason rotates through its variants.
char* Generator::next_hostile(char* p) {
  const std::uint64_t n = counts_.hostile++;
  const auto reason = static_cast<Reason>(n % kReasons);
  const std::uint64_t variant = n / kReasons;
  ++counts_.rejects[n % kReasons];

  Event h = fresh(hostile_rng_, now_of(counts_.events));
  h.id = static_cast<std::int64_t>(n);
  h.rfc = false;
  h.session = session_of(h.user, h.ts);
  std::string& s = scratch_;
  s.clear();
  const std::string_view type = type_name(h.type);

  switch (reason) {
    case Reason::malformed_json: {
      switch (variant % 6) {
        case 0: {  // truncated inside the "user" string: a lazy parser still hits the end
          char buf[kMaxEventLineBytes];
          const std::string_view line(buf, static_cast<std::size_t>(write_event_body(buf, h, type, 'h') - buf));
          s.assign(line.substr(0, line.find("\"user\":\"") + 9));
          break;
        }
        case 1: s = "GET / HTTP/1.1"; break;
        case 2: s = "\x80\xfe\xff garbage \x01\x02\x7f"; break;
        case 3: s = "[1,2]"; break;
        case 4: s = "42"; break;
        default: {  // unquoted key
          char buf[kMaxEventLineBytes];
          const std::string_view line(buf, static_cast<std::size_t>(write_event_body(buf, h, type, 'h') - buf));
          s.assign("{id:");
          s.append(line.substr(6));
          break;
        }
      }
      break;
    }
    case Reason::missing_field:
      append_fields(s, h, type, static_cast<int>(variant % 5), -1);
      break;
    case Reason::wrong_type:
      append_fields(s, h, type, -1, static_cast<int>(variant % 4));
      break;
    case Reason::bad_timestamp:
      append_fields(s, h, type, -1, 4 + static_cast<int>(variant % 2));
      break;
    case Reason::oversized_line: {
      char buf[kMaxEventLineBytes];
      const std::size_t body = static_cast<std::size_t>(write_event_body(buf, h, type, 'h') - buf);
      const std::size_t target =
          o_.max_line_bytes + kOversizedSlackMin + static_cast<std::size_t>(hostile_rng_.below(kOversizedSlackSpan));
      constexpr std::string_view kPadOpen = ",\"pad\":\"";
      const std::size_t fixed = body - 1 + kPadOpen.size() + 2;  // body without '}', pad, "}
      s.assign(buf, body - 1);
      s.append(kPadOpen);
      s.append(target > fixed ? target - fixed : 1, 'x');
      s.append("\"}");
      break;
    }
  }
  std::memcpy(p, s.data(), s.size());
  p += s.size();
  *p++ = '\n';
  return p;
}

}  // namespace spate::gen
