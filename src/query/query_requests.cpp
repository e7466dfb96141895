// The query server's requests: what each one asks of the shards and how
// their answers are merged and encoded. The loop and the connections are in
// query_server.cpp.
#include <algorithm>

#include <fmt/format.h>

#include "io/file/source.hpp"
#include "kernels/hash.hpp"
#include "query/query_server.hpp"
#include "query/stats.hpp"

namespace spate::query {

using engine::QueryTask;

void QueryServer::handle_stats(Connection& c, const FrameHeader& h) {
  std::string out;
  const auto mark = begin_frame(out, Op::stats, Status::ok, h.request_id);
  FieldWriter w(out);
  write_stats(engine_, counters_, w);
  finish_frame(out, mark);
  send(c, out);
}

bool QueryServer::has_capacity(std::uint32_t shard) const noexcept {
  // In-flight tasks per shard never exceed the response ring, so a shard never waits to answer.
  return inflight_per_shard_[shard] < engine_.shard(shard).requests().capacity();
}

bool QueryServer::submit(std::uint32_t shard, QueryTask* task) {
  auto& ring = engine_.shard(shard).requests();
  if (!has_capacity(shard)) return false;
  QueryTask** slot = ring.claim();
  if (slot == nullptr) return false;
  *slot = task;
  ring.publish();
  ++inflight_per_shard_[shard];
  engine_.shard(shard).wake();
  return true;
}

void QueryServer::handle_view(Connection& c, const FrameHeader& h, std::string_view body) {
  std::string_view view_name, key, by = "count";
  bool has_key = false, has_window = false;
  std::int64_t from = INT64_MIN, to = INT64_MAX, window_start = 0;
  std::uint64_t k = 10;
  FieldReader reader(body);
  while (auto f = reader.next()) {
    switch (f->tag) {
      case Tag::view: view_name = f->bytes; break;
      case Tag::key: key = f->bytes; has_key = true; break;
      case Tag::from_ms: from = f->as_i64(); break;
      case Tag::to_ms: to = f->as_i64(); break;
      case Tag::window_start: window_start = f->as_i64(); has_window = true; break;
      case Tag::k: k = f->u; break;
      case Tag::by: by = f->bytes; break;
      default: break;  // unknown fields are skipped
    }
  }
  const auto& config = engine_.config();
  const int view = config.find_view(view_name);
  if (view < 0) {
    reply_error(c, h.op, h.request_id, Status::unknown_view, fmt::format("no view named '{}'", view_name));
    return;
  }
  auto pending = std::make_unique<Pending>();
  pending->fd = c.fd;
  pending->connection_id = c.id;
  pending->request_id = h.request_id;
  pending->op = h.op;
  pending->view = view;
  const std::uint64_t ticket = next_ticket_++;
  if (h.op == Op::view_get) {
    if (!has_key || key.size() > kMaxKeyBytes) {
      reply_error(c, h.op, h.request_id, Status::bad_request,
                  has_key ? fmt::format("KEY longer than {} bytes", kMaxKeyBytes) : std::string("VIEW_GET needs KEY"));
      return;
    }
    auto* task = new QueryTask;
    task->kind = QueryTask::Kind::view_get;
    task->ticket = ticket;
    task->view = view;
    task->key = std::string(key);
    task->hash = kernels::hash_key(key);
    task->from_ms = from;
    task->to_ms = to;
    if (!submit(engine_.owner_of(task->hash), task)) {
      delete task;
      reply_error(c, h.op, h.request_id, Status::overloaded, "shard request queue is full; retry");
      return;
    }
    pending->remaining = 1;
  } else {
    const int agg = config.find_aggregate(view, by);
    if (agg < 0) {
      reply_error(c, h.op, h.request_id, Status::unknown_aggregate,
                  fmt::format("view '{}' has no aggregate '{}'", view_name, by));
      return;
    }
    if (k == 0 || k > kMaxTopK) {
      reply_error(c, h.op, h.request_id, Status::bad_request, fmt::format("K must be in [1, {}]", kMaxTopK));
      return;
    }
    if (!has_window) {
      // The newest window any shard has rows in.
      window_start = INT64_MIN;
      for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
        window_start = std::max(window_start, engine_.shard(s).counters().newest_window[view].load(std::memory_order_relaxed));
      }
    }
    pending->k = static_cast<std::uint32_t>(k);
    pending->by = agg;
    pending->window_start = window_start;
    for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
      auto* task = new QueryTask;
      task->kind = QueryTask::Kind::view_top;
      task->ticket = ticket;
      task->view = view;
      task->window_start = window_start;
      task->k = static_cast<std::uint32_t>(k);
      task->by = agg;
      if (!submit(s, task)) {
        delete task;
        continue;  // the merge then misses this shard; reported below by remaining mismatch
      }
      ++pending->remaining;
    }
    if (pending->remaining == 0) {
      reply_error(c, h.op, h.request_id, Status::overloaded, "every shard request queue is full; retry");
      return;
    }
    // Some shards were not asked: answer OVERLOADED once the others return.
    pending->overloaded = pending->remaining != engine_.shard_count();
  }
  ++c.inflight;
  pending_[ticket] = std::move(pending);
}

void QueryServer::handle_publish(Connection& c, const FrameHeader& h, std::string_view body) {
  std::uint64_t producer = 0, sequence = 0;
  std::string_view payload;
  bool has_payload = false;
  FieldReader reader(body);
  while (auto f = reader.next()) {
    switch (f->tag) {
      case Tag::producer_id: producer = f->u; break;
      case Tag::sequence: sequence = f->u; break;
      case Tag::payload: payload = f->bytes; has_payload = true; break;
      default: break;
    }
  }
  if (!has_payload) {
    reply_error(c, h.op, h.request_id, Status::bad_request, "PUBLISH needs PAYLOAD");
    return;
  }
  // One producer's batches always go to the same shard, so they are applied
  // in the order they were sent (like a Kafka partition); producers spread.
  const std::uint32_t shard = engine_.owner_of(kernels::hash_key(reinterpret_cast<const char*>(&producer), sizeof(producer)));
  if (dedup_.duplicate(producer, sequence, io::monotonic_ms())) {
    std::string out;
    const auto mark = begin_frame(out, Op::publish, Status::ok, h.request_id);
    FieldWriter w(out);
    w.u64(Tag::accepted, 0);
    w.u64(Tag::rejected, 0);
    w.u64(Tag::duplicate, 1);
    finish_frame(out, mark);
    send(c, out);
    return;
  }
  if (!has_capacity(shard)) {
    // Backpressure: leave the frame unread and stop reading this
    // connection until the shard catches up (resume_reading retries).
    c.stalled = true;
    return;
  }
  dedup_.record(producer, sequence, shard, io::monotonic_ms());
  auto* task = new QueryTask;
  task->kind = QueryTask::Kind::publish;
  task->ticket = next_ticket_++;
  task->payload.resize(payload.size() + engine::kPadding);
  std::copy(payload.begin(), payload.end(), task->payload.begin());
  task->payload_len = payload.size();
  task->producer = producer;
  task->sequence = sequence;
  submit(shard, task);  // has_capacity said it fits
  auto pending = std::make_unique<Pending>();
  pending->fd = c.fd;
  pending->connection_id = c.id;
  pending->request_id = h.request_id;
  pending->op = Op::publish;
  pending->remaining = 1;
  ++c.inflight;
  pending_[task->ticket] = std::move(pending);
}

void QueryServer::collect_responses() {
  for (std::uint32_t s = 0; s < engine_.shard_count(); ++s) {
    auto& ring = engine_.shard(s).responses();
    while (QueryTask** slot = ring.front()) {
      std::unique_ptr<QueryTask> task(*slot);
      ring.pop();
      --inflight_per_shard_[s];
      auto it = pending_.find(task->ticket);
      if (it == pending_.end()) continue;
      Pending& p = *it->second;
      if (task->kind == QueryTask::Kind::publish) {
        p.publish = std::move(task);
        waiting_publishes_.push_back(it->first);
        continue;
      }
      std::move(task->rows.begin(), task->rows.end(), std::back_inserter(p.rows));
      if (--p.remaining == 0) {
        finish(p);
        pending_.erase(it);
      }
    }
  }
}

void QueryServer::check_publishes() {
  auto done = [&](std::uint64_t ticket) {
    auto it = pending_.find(ticket);
    if (it == pending_.end()) return true;
    for (const auto& [ring, target] : it->second->publish->waits) {
      if (ring->popped() < target) return false;
    }
    finish(*it->second);
    pending_.erase(it);
    return true;
  };
  waiting_publishes_.erase(std::remove_if(waiting_publishes_.begin(), waiting_publishes_.end(), done),
                           waiting_publishes_.end());
}

void QueryServer::reload_alarms(std::vector<engine::AlarmConfig> alarms) {
  std::lock_guard lock(reload_mu_);
  reload_ = std::move(alarms);
}

void QueryServer::evaluate_alarms(std::int64_t now_ms) {
  {
    std::lock_guard lock(reload_mu_);
    if (reload_) {
      alarms_.configure(std::move(*reload_));
      reload_.reset();
      alarm_asked_.assign(alarms_.size(), 0);
    }
  }
  for (const std::size_t a : alarms_.evaluate(now_ms)) {
    if (alarm_asked_[a] != 0) continue;  // the last answer is still out
    const engine::AlarmConfig& def = alarms_.definition(a);
    auto* task = new QueryTask;
    task->kind = QueryTask::Kind::view_get;
    task->ticket = next_ticket_++;
    task->view = def.view_index;
    task->key = def.key;
    task->hash = kernels::hash_key(def.key);
    task->from_ms = alarms_.windows_from(a);
    if (!submit(engine_.owner_of(task->hash), task)) {  // the shard is busy: next second
      delete task;
      continue;
    }
    auto pending = std::make_unique<Pending>();
    pending->op = Op::view_get;
    pending->view = def.view_index;
    pending->remaining = 1;
    pending->alarm = static_cast<int>(a);
    pending->alarm_generation = alarms_.generation();
    pending_.emplace(task->ticket, std::move(pending));
    alarm_asked_[a] = 1;
  }
}

void QueryServer::finish(Pending& p) {
  if (p.alarm >= 0) {  // an aggregate alarm's sample, no client
    engine::merge_rows(p.rows);
    if (p.alarm_generation == alarms_.generation()) alarm_asked_[static_cast<std::size_t>(p.alarm)] = 0;
    alarms_.aggregate_rows(static_cast<std::size_t>(p.alarm), p.alarm_generation, p.rows);
    return;
  }
  // A batch not taken must be applied when it is resent.
  const auto refusal = p.op == Op::publish ? p.publish->refusal : engine::QueryTask::Refusal::none;
  if (refusal != engine::QueryTask::Refusal::none) dedup_.unrecord(p.publish->producer, p.publish->sequence);
  const auto it = connections_.find(p.fd);
  if (it == connections_.end() || it->second->id != p.connection_id) return;  // the client went away
  Connection* c = it->second.get();
  --c->inflight;
  const auto& config = engine_.config();
  std::string out;
  if (refusal == engine::QueryTask::Refusal::storage_failed) {
    reply_error(*c, p.op, p.request_id, Status::storage_failed,
                "the shard's log could not write this batch (see the daemon's log and storage.write_errors); "
                "it may be lost: retry");
    return;
  }
  if (refusal == engine::QueryTask::Refusal::disk_full) {
    reply_error(*c, p.op, p.request_id, Status::disk_full,
                "the data directory's disk is above its high-water mark (storage.disk_full); nothing was taken: "
                "retry once it is below the low-water mark");
    return;
  }
  if (p.op == Op::publish) {
    const auto mark = begin_frame(out, Op::publish, Status::ok, p.request_id);
    FieldWriter w(out);
    w.u64(Tag::accepted, p.publish->accepted);
    w.u64(Tag::rejected, p.publish->rejected);
    w.u64(Tag::duplicate, 0);
    w.bytes(Tag::durability, p.publish->durability);
    finish_frame(out, mark);
  } else if (p.overloaded) {
    reply_error(*c, p.op, p.request_id, Status::overloaded, "a shard request queue is full; retry");
    return;
  } else {
    const auto& view = config.views[static_cast<std::size_t>(p.view)];
    // Each shard's part of a window merged (a key's rows live on one shard
    // today, so parts meet only when state is spread wider), then for
    // VIEW_TOP each shard's best merged into the best k.
    engine::merge_rows(p.rows);
    if (p.op == Op::view_top) engine::keep_top(p.rows, p.k, p.by);
    const auto mark = begin_frame(out, p.op, Status::ok, p.request_id);
    FieldWriter w(out);
    if (p.op == Op::view_top && p.window_start != INT64_MIN) w.i64(Tag::window_start, p.window_start);
    std::size_t n = 0;
    for (const auto& row : p.rows) {
      // Stay within the frame limit with room for one more row and the flag.
      if (n++ == kMaxRowsPerResponse || out.size() - mark > kDefaultMaxFrameBytes - (64u << 10)) {
        w.u64(Tag::truncated, 1);
        break;
      }
      const auto rm = w.begin_nested(Tag::row);
      w.bytes(Tag::key, row.key);
      w.i64(Tag::window_start, row.window_start);
      w.i64(Tag::window_end, row.window_end);
      w.u64(Tag::closed, row.closed ? 1 : 0);
      for (std::size_t a = 0; a < view.aggregates.size(); ++a) {
        const auto am = w.begin_nested(Tag::agg);
        w.bytes(Tag::name, view.aggregates[a].label);
        const engine::AggValue value = row.value(a);
        if (value.integral) {
          w.u64(Tag::value_u64, value.u);
        } else {
          w.f64(Tag::value_f64, value.d);
        }
        w.end_nested(am);
      }
      w.end_nested(rm);
    }
    finish_frame(out, mark);
  }
  send(*c, out);
}

}  // namespace spate::query
