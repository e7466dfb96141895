// The query server's requests in flight: shard tasks handed out and their
// answers taken back, to the operation each belongs to (query_op.hpp), and
// the aggregate alarms' own VIEW_GETs. The loop and the connections are in
// query_server.cpp.
#include <algorithm>

#include "kernels/hash.hpp"
#include "query/query_op.hpp"
#include "query/query_server.hpp"

namespace spate::query {

using engine::QueryTask;

namespace {

// An aggregate alarm's VIEW_GET: the server's own request, no client.
struct AlarmSample final : ViewRowsPending {
  std::size_t alarm = 0;
  std::uint64_t generation = 0;  // the alarms' definitions it was asked under
};

const QueryOp kAlarmSampleOp{
    Op::view_get,
    nullptr,  // never a client's request
    view_rows_answered,
    [](QueryServer& server, Pending& pending, Connection*) {
      auto& p = static_cast<AlarmSample&>(pending);
      engine::merge_rows(p.rows);
      server.alarm_sampled(p.alarm, p.generation, p.rows);
    },
};

}  // namespace

bool QueryServer::has_capacity(std::uint32_t shard) const noexcept {
  // In-flight tasks per shard never exceed the response ring, so a shard never waits to answer.
  return inflight_per_shard_[shard] < engine_.shard(shard).requests().capacity();
}

bool QueryServer::submit(std::uint32_t shard, std::unique_ptr<QueryTask>& task) {
  auto& ring = engine_.shard(shard).requests();
  if (!has_capacity(shard)) return false;
  QueryTask** slot = ring.claim();
  if (slot == nullptr) return false;
  *slot = task.release();
  ring.publish();
  ++inflight_per_shard_[shard];
  engine_.shard(shard).wake();
  return true;
}

void QueryServer::add_pending(Connection& c, std::uint64_t ticket, std::unique_ptr<Pending> pending) {
  ++c.inflight;
  pending_[ticket] = std::move(pending);
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
      if (p.handler->answered(*this, it->first, p, std::move(task))) {
        finish(p);
        pending_.erase(it);
      }
    }
  }
}

void QueryServer::check_unsettled() {
  auto done = [&](std::uint64_t ticket) {
    auto it = pending_.find(ticket);
    if (it == pending_.end()) return true;
    if (!it->second->handler->settled(*it->second)) return false;
    finish(*it->second);
    pending_.erase(it);
    return true;
  };
  unsettled_.erase(std::remove_if(unsettled_.begin(), unsettled_.end(), done), unsettled_.end());
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
    auto task = std::make_unique<KeyWindowsTask>();
    const std::uint64_t ticket = next_ticket_++;
    task->ticket = ticket;
    task->view = def.view_index;
    task->key = def.key;
    task->hash = kernels::hash_key(def.key);
    task->from_ms = alarms_.windows_from(a);
    if (!submit(engine_.owner_of(task->hash), task)) continue;  // the shard is busy: next second
    auto pending = std::make_unique<AlarmSample>();
    pending->op = Op::view_get;
    pending->handler = &kAlarmSampleOp;
    pending->view = def.view_index;
    pending->remaining = 1;
    pending->alarm = a;
    pending->generation = alarms_.generation();
    pending_.emplace(ticket, std::move(pending));
    alarm_asked_[a] = 1;
  }
}

void QueryServer::alarm_sampled(std::size_t alarm, std::uint64_t generation, const std::vector<engine::ViewRow>& rows) {
  if (generation == alarms_.generation()) alarm_asked_[alarm] = 0;
  alarms_.aggregate_rows(alarm, generation, rows);
}

void QueryServer::finish(Pending& p) {
  const auto it = connections_.find(p.fd);
  Connection* c = it != connections_.end() && it->second->id == p.connection_id ? it->second.get() : nullptr;
  if (c != nullptr) --c->inflight;
  p.handler->finish(*this, p, c);  // c: nullptr when the client went away
}

}  // namespace spate::query
