// Strict checks (RFC 8259) of the JSON that an On-Demand parse skips without
// reading: the body of a string, a number, true, false or null, and a whole
// nested value. Stage 1 of simdjson has already checked UTF-8 and the
// placement of quotes.
#pragma once

#include <cstddef>
#include <string_view>

namespace spate::kernels {

// Every backslash in [p, end) starts a valid escape. Run over a whole line
// that stage 1 accepted (no control character inside a string, quotes
// paired), this is what is left to check of all its strings at once: read
// from the left, each backslash begins an escape that is consumed whole,
// and a backslash outside a string is refused by the grammar anyway.
bool valid_json_escapes(const char* p, const char* end) noexcept;

// The body of a string from just after its opening quote: true when every
// escape is one of \" \\ \/ \b \f \n \r \t \uXXXX and no byte is below 0x20,
// up to the closing quote. `end` bounds the scan (a string that reaches it
// is invalid). Sets *close to the closing quote.
bool valid_json_string_body(const char* p, const char* end, const char** close) noexcept;

// One scalar token as On-Demand hands it over (trailing whitespace
// allowed): a number in JSON's grammar, true, false or null.
bool valid_json_scalar(std::string_view token) noexcept;

// One complete value of any nesting from p (after whitespace), checked
// without recursion: any depth costs a byte per level on the heap, never
// the thread's stack. Returns the byte after the value, nullptr when it is
// not valid JSON (or reaches end unfinished).
const char* skip_json_value(const char* p, const char* end) noexcept;

}  // namespace spate::kernels
