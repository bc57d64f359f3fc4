#include "fleet_watch.h"

#include <algorithm>
#include <cstdio>
#include <thread>

namespace vigil::verifier {

Result<FleetWatch> FleetWatch::Open(const fleet::ConnectOptions& connect, FleetWatchOptions options,
                                    Monitor* monitor) {
  if (options.lease.count() <= 0 || options.interval.count() <= 0 ||
      options.interval >= options.lease) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a lease and a claim interval are positive, the interval shorter");
  }
  VIGIL_ASSIGN_OR_RETURN(fleet::Store store, fleet::Store::Open(connect));
  return FleetWatch(std::move(store), std::move(options), monitor);
}

Result<std::vector<std::string>> FleetWatch::Step() {
  // A fair share: the activated nodes over the verifiers alive (rounded
  // up). Own leases are renewed first; beyond the share they lapse and
  // the others take them (a verifier that joins gets its share within a
  // lease).
  VIGIL_ASSIGN_OR_RETURN(fleet::FleetShare share, store_.Heartbeat(options_.name, options_.lease));
  const int64_t fair = (share.nodes + share.verifiers - 1) / share.verifiers;
  const int limit = static_cast<int>(std::clamp<int64_t>(fair, 1, options_.limit));
  VIGIL_ASSIGN_OR_RETURN(std::vector<std::string> claimed,
                         store_.ClaimDueNodes(options_.name, options_.lease, limit));
  held_ = std::set<std::string>(claimed.begin(), claimed.end());
  VIGIL_ASSIGN_OR_RETURN(uint64_t now, store_.DatabaseNowUnix());
  VIGIL_ASSIGN_OR_RETURN(std::vector<fleet::NodeDeadline> overdue, store_.OverdueNodes(now));
  std::set<std::string> still;
  for (const fleet::NodeDeadline& d : overdue) {
    if (!held_.count(d.node)) continue;
    still.insert(d.node);
    if (overdue_.count(d.node)) continue;
    // Never attested: overdue since its activation (deadline less the period).
    const uint64_t last = d.last_attested_unix != 0 ? d.last_attested_unix
                          : d.deadline_unix > options_.deadline_s
                              ? d.deadline_unix - options_.deadline_s
                              : 0;
    overdue_[d.node] = last;
    if (monitor_) monitor_->Overdue(d.node, last, options_.deadline_s, now);
  }
  for (auto it = overdue_.begin(); it != overdue_.end();) {
    if (still.count(it->first)) {
      ++it;
      continue;
    }
    // Held and no longer overdue: trusted evidence came (to any verifier).
    // Not held: another verifier watches it now.
    if (held_.count(it->first) && monitor_) {
      monitor_->Attested(it->first, now > it->second ? now - it->second : 0, now);
    }
    it = overdue_.erase(it);
  }
  return claimed;
}

void FleetWatch::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    if (auto st = Step(); !st.ok()) {
      std::fprintf(stderr, "vigil-verifier: liveness round: %s\n", st.status().ToString().c_str());
    }
    const auto until = std::chrono::steady_clock::now() + options_.interval;
    while (!stop.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

Status FleetWatch::ReleaseAll() {
  Status first = Status::Ok();
  for (const std::string& node : held_) {
    Status st = store_.ReleaseLease(options_.name, node);
    if (!st.ok() && first.ok()) first = st;
  }
  held_.clear();
  if (Status st = store_.Leave(options_.name); !st.ok() && first.ok()) first = st;
  return first;
}

}  // namespace vigil::verifier
