// vigild's verification policy at start, without the daemon around it so
// tests reach all of it:
//  - ChooseStart: where verification starts (the saved anchor of the same
//    module instance, else the last checkpoint in the module's log) and which
//    key it trusts (the module's, from GET_INFO, never the saved state's or a
//    KEY record in the log being verified);
// (The TPM side of the anchor checks is vigil::anchor, shared with vigilctl.)
#ifndef VIGIL_USERSPACE_VIGILD_VERIFICATION_START_H_
#define VIGIL_USERSPACE_VIGILD_VERIFICATION_START_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "state.h"
#include "vigil.h"
#include "vigil/chain.h"
#include "vigil/records.h"
#include "vigil/replay.h"
#include "vigil/signature.h"
#include "vigil/status.h"
#include "vigil/verify.h"

namespace vigil::daemon {

// Where verification starts when there is no usable saved anchor: the last
// checkpoint of this instance in `log` (events before it were not seen by
// this vigild), or seq 0 (the instance's chain_0) when the module has made
// none. No key: ChooseStart sets it.
verify::Anchor AnchorFromLog(const vigil_info& info, const std::vector<records::Record>& log);

// The key the module reports (GET_INFO): the only trusted one. nullopt when
// the module has no key (it signs nothing).
std::optional<crypto::EcPoint> ModuleKey(const vigil_info& info);

// Whether `saved` is the verifier state of the module instance `info` names.
bool SameInstance(const VerifierState* saved, const vigil_info& info);

// The saved state of another module instance (a reboot or reload): reported
// as an `instance_changed` finding.
struct InstanceChange {
  chain::InstanceId saved{};
  std::string detail;  // the saved open events that can no longer be decided; may be empty
};

struct StartPlan {
  verify::Anchor anchor;           // key set from ModuleKey
  uint64_t started_after_seq = 0;  // the verifier's option: 0 when resuming
  bool resumed = false;            // from the saved anchor
  std::optional<InstanceChange> instance_change;
  std::vector<std::string> messages;  // for stderr, in order
};

// Where the verifier starts. `saved` is the saved verifier state still in use
// (after CheckSavedAnchor and any --reset-state), nullptr when there is none;
// when it is the same instance its anchor was checked. `saved_open_events`:
// how many open events it came with (dropped when it is another instance's).
StartPlan ChooseStart(const vigil_info& info, const std::vector<records::Record>& module_log,
                      const VerifierState* saved, size_t saved_open_events);

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_VERIFICATION_START_H_
