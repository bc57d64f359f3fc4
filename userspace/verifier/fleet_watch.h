// The liveness watch of `vigil-verifier serve --database`: which nodes this
// verifier looks after (row leases in the fleet database, shared with the
// other verifiers) and which of them are overdue (their deadline, stored
// per node, has passed on the database's clock).
//
// Each round (Step): a heartbeat (fleet::Store::Heartbeat: the verifiers
// alive), then claim or renew leases up to a fair share, activated nodes /
// verifiers alive (fleet::Store::ClaimDueNodes: this verifier's first, then
// free or expired ones), then list the overdue nodes
// (Store::OverdueNodes) and print, for the nodes held, one "overdue" line
// per episode and an "attested" line when the node is back in time. A
// verifier that dies stops renewing; another one's next round takes its
// nodes once their leases end: within lease + interval. A verifier that
// starts knows the overdue nodes from the database at its first round
// (restart cost: two queries, no log read).
#ifndef VIGIL_USERSPACE_VERIFIER_FLEET_WATCH_H_
#define VIGIL_USERSPACE_VERIFIER_FLEET_WATCH_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dispatch.h"
#include "vigil/fleet/store.h"
#include "vigil/status.h"

namespace vigil::verifier {

struct FleetWatchOptions {
  std::string name;  // the lease owner: this verifier's --name
  std::chrono::milliseconds lease{15000};
  std::chrono::milliseconds interval{5000};  // between rounds; less than lease
  uint64_t deadline_s = 60;                  // for the lines (the deadlines are stored)
  int limit = 100000;                        // nodes one verifier holds at most
};

// Thread-safety: not thread-safe (one thread runs it; its own connection).
class FleetWatch {
 public:
  static Result<FleetWatch> Open(const fleet::ConnectOptions& connect, FleetWatchOptions options,
                                 Monitor* monitor);

  // One round; returns the nodes held after it.
  Result<std::vector<std::string>> Step();
  // Rounds every interval until `stop` (a failed round is reported on
  // stderr and tried again at the next).
  void Run(const std::atomic<bool>& stop);
  // Hands every held lease back (a clean shutdown): the others take the
  // nodes at their next round, not after the lease.
  Status ReleaseAll();
  const std::set<std::string>& held() const { return held_; }

 private:
  FleetWatch(fleet::Store store, FleetWatchOptions options, Monitor* monitor)
      : store_(std::move(store)), options_(std::move(options)), monitor_(monitor) {}
  fleet::Store store_;
  FleetWatchOptions options_;
  Monitor* monitor_;
  std::set<std::string> held_;
  std::map<std::string, uint64_t> overdue_;  // node -> last trusted (unix), alerted
};

}  // namespace vigil::verifier

#endif  // VIGIL_USERSPACE_VERIFIER_FLEET_WATCH_H_
