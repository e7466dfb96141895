// What every view shares: merging rows and keeping the top ones; see view.hpp.
#include "engine/view.hpp"

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

namespace spate::engine {

void keep_top(std::vector<ViewRow>& rows, std::uint32_t k, int by) {
  const auto b = static_cast<std::size_t>(by);
  std::sort(rows.begin(), rows.end(), [b](const ViewRow& x, const ViewRow& y) {
    const double vx = x.value(b).as_double();
    const double vy = y.value(b).as_double();
    if (vx != vy) return vx > vy;
    return x.key < y.key;
  });
  if (rows.size() > k) rows.resize(k);
}

void merge_rows(std::vector<ViewRow>& rows) {
  std::vector<ViewRow> merged;
  merged.reserve(rows.size());  // never reallocated: the map's keys view its rows' keys
  std::map<std::pair<std::string_view, std::int64_t>, std::size_t> index;  // key and window -> merged row
  for (ViewRow& row : rows) {
    const auto it = index.find({row.key, row.window_start});
    if (it == index.end()) {
      merged.push_back(std::move(row));
      index.emplace(std::pair<std::string_view, std::int64_t>{merged.back().key, merged.back().window_start},
                    merged.size() - 1);
      continue;
    }
    ViewRow& into = merged[it->second];
    for (std::size_t a = 0; a < into.aggs.size(); ++a) into.aggs[a].merge(row.aggs[a]);
    into.closed = into.closed && row.closed;
  }
  rows.swap(merged);
}

}  // namespace spate::engine
