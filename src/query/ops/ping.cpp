// PING: answered at once, echoing PAYLOAD if the request has one.
#include "query/query_op.hpp"

namespace spate::query {

extern const QueryOp kPingOp;
const QueryOp kPingOp{
    Op::ping,
    [](QueryServer& server, Connection& c, const FrameHeader& h, std::string_view body) {
      std::string out;
      const auto mark = begin_frame(out, Op::ping, Status::ok, h.request_id);
      FieldReader reader(body);
      while (auto f = reader.next()) {
        if (f->tag == Tag::payload) FieldWriter(out).bytes(Tag::payload, f->bytes);
      }
      finish_frame(out, mark);
      server.send(c, out);
    },
    nullptr,
    nullptr,
};

}  // namespace spate::query
