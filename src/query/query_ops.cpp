// The list of query operations; see query_op.hpp. Adding one is adding its
// file under ops/ and its line below.
#include "query/query_op.hpp"

namespace spate::query {

extern const QueryOp kPingOp;     // ops/ping.cpp
extern const QueryOp kStatsOp;    // ops/stats.cpp
extern const QueryOp kViewGetOp;  // ops/view_get.cpp
extern const QueryOp kViewTopOp;  // ops/view_top.cpp
extern const QueryOp kPublishOp;  // ops/publish.cpp

namespace {
const QueryOp* const kOps[] = {&kPingOp, &kStatsOp, &kViewGetOp, &kViewTopOp, &kPublishOp};
}  // namespace

const QueryOp* find_query_op(Op code) noexcept {
  for (const QueryOp* op : kOps) {
    if (op->code == code) return op;
  }
  return nullptr;
}

}  // namespace spate::query
