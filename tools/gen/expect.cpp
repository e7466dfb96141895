// The expected-results oracle of spate-gen: window rows found off the hot path, and the
// NDJSON writer (summary line, then views sorted by name, rows by key and window).
#include "gen/expect.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace spate::gen {

std::uint32_t WindowAgg::new_row(std::uint32_t key, std::int64_t window) {
  const auto row = static_cast<std::uint32_t>(rows_.size());
  rows_.push_back(Row{key, window});
  older_.push_back(recent_[key].newest_row);
  recent_[key].newest_row = row;
  return row;
}

std::uint32_t WindowAgg::find_or_new_row(std::uint32_t key, std::int64_t window) {
  for (std::uint32_t r = recent_[key].newest_row; r != kNone; r = older_[r]) {
    if (rows_[r].window_start == window) return r;
  }
  return new_row(key, window);
}

namespace {

struct Output {
  explicit Output(std::FILE* file) : f(file) {}
  std::FILE* f;
  fmt::memory_buffer buf;
  bool failed = false;
  void flush() {
    if (std::fwrite(buf.data(), 1, buf.size(), f) != buf.size()) failed = true;
    buf.clear();
  }
};

template <typename KeyName>
void write_view(Output& out, std::string_view view, const WindowAgg& agg, KeyName key_name, bool min_max_avg) {
  // Rank the keys present by name once, then sort rows by (rank, window_start) with integer compares.
  const auto& rows = agg.rows();
  std::vector<std::string> names(agg.keys());
  std::vector<std::uint32_t> by_name;
  for (const auto& r : rows) {
    if (names[r.key].empty()) {
      names[r.key] = key_name(r.key);
      by_name.push_back(r.key);
    }
  }
  std::sort(by_name.begin(), by_name.end(), [&](std::uint32_t a, std::uint32_t b) { return names[a] < names[b]; });
  std::vector<std::uint32_t> rank(names.size());
  for (std::uint32_t r = 0; r < by_name.size(); ++r) rank[by_name[r]] = r;
  std::vector<std::pair<std::uint64_t, std::int64_t>> order(rows.size());  // (rank << 32 | row, window)
  for (std::uint32_t i = 0; i < rows.size(); ++i) {
    order[i] = {(static_cast<std::uint64_t>(rank[rows[i].key]) << 32) | i, rows[i].window_start};
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if ((a.first >> 32) != (b.first >> 32)) return (a.first >> 32) < (b.first >> 32);
    return a.second < b.second;
  });
  auto it = fmt::appender(out.buf);
  for (const auto& o : order) {
    const auto& r = rows[static_cast<std::uint32_t>(o.first)];
    fmt::format_to(it,
                   "{{\"kind\":\"window\",\"view\":\"{}\",\"key\":\"{}\",\"window_start\":{},\"window_end\":{},"
                   "\"count\":{},\"sum(amount)\":{:.17g}",
                   view, names[r.key], r.window_start, r.window_start + agg.width_ms(), r.count, r.sum);
    if (min_max_avg) {
      fmt::format_to(it, ",\"min(amount)\":{:.17g},\"max(amount)\":{:.17g},\"avg(amount)\":{:.17g}", r.min, r.max,
                     r.sum / static_cast<double>(r.count));
    }
    fmt::format_to(it, "}}\n");
    if (out.buf.size() >= (std::size_t{1} << 20)) out.flush();
  }
}

}  // namespace

Expect::Expect(std::uint32_t users, const std::vector<std::string>& types)
    : types_(types), per_user_(60000, users + 1), per_type_(10000, types.size()), amounts_(kMaxAmountCents + 1) {
  // The amount the engine reads is strtod of the printed text; use exactly that value.
  for (std::uint32_t c = 1; c <= kMaxAmountCents; ++c) amounts_[c] = printed_amount(c);
}

void Expect::write(const std::string& path, const Counts& counts) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error(fmt::format("--expect {}: {}", path, std::strerror(errno)));
  Output out{f};
  auto it = fmt::appender(out.buf);
  fmt::format_to(it,
                 "{{\"kind\":\"summary\",\"events\":{},\"late\":{},\"duplicates\":{},\"good\":{},\"hostile\":{},"
                 "\"rejects\":{{",
                 counts.events, counts.late, counts.duplicates, counts.events - counts.late, counts.hostile);
  for (std::size_t r = 0; r < kReasons; ++r) {
    fmt::format_to(it, "{}\"{}\":{}", r == 0 ? "" : ",", kReasonNames[r], counts.rejects[r]);
  }
  fmt::format_to(it, "}}}}\n");
  // Views sorted by name, rows by key (bytewise) then window_start.
  write_view(out, "per_type_10s", per_type_, [&](std::uint32_t k) { return types_[k]; }, false);
  write_view(out, "per_user_1m", per_user_, [](std::uint32_t k) { return fmt::format("u{}", k); }, true);
  out.flush();
  if (std::fclose(f) != 0 || out.failed) throw std::runtime_error(fmt::format("--expect {}: write failed", path));
}

}  // namespace spate::gen
