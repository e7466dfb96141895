// STATS: every counter and gauge (stats.hpp), answered at once.
#include "query/query_op.hpp"
#include "query/stats.hpp"

namespace spate::query {

extern const QueryOp kStatsOp;
const QueryOp kStatsOp{
    Op::stats,
    [](QueryServer& server, Connection& c, const FrameHeader& h, std::string_view) {
      std::string out;
      const auto mark = begin_frame(out, Op::stats, Status::ok, h.request_id);
      FieldWriter w(out);
      write_stats(server.engine(), server.counters(), w);
      finish_frame(out, mark);
      server.send(c, out);
    },
    nullptr,
    nullptr,
};

}  // namespace spate::query
