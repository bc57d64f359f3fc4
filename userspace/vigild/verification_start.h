// vigild's verification policy at start, without the daemon around it so
// tests reach all of it:
//  - ChooseStart: where verification starts (the saved anchor of the same
//    module instance, else the last checkpoint in the module's log) and which
//    key it trusts (the module's, from GET_INFO, never the saved state's or a
//    KEY record in the log being verified);
//  - PcrChecker: the TPM side of the verifier's PCR check, over a PcrSource
//    (the TPM and the module's log in vigild, a fake in tests).
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

// What the PCR check reads. Errors from OpenTpm and ReadLog mean "not
// checked" (kUnavailable), never a verdict on the TPM's values.
// Thread-safety: one caller at a time.
class PcrSource {
 public:
  virtual ~PcrSource() = default;
  // Called before every check; Ok once the TPM can be read.
  virtual Status OpenTpm() = 0;
  // The module's log records written since the last call (from the start at
  // the first), as raw bytes.
  virtual Result<std::vector<uint8_t>> ReadLog() = 0;
  virtual Result<crypto::Digest> ReadPcr(uint16_t alg, uint32_t pcr) = 0;
};

// The TPM through tpm2-tss (`tcti`) and the module's log through its own
// /dev/vigil reader (its own file position); both opened at first use.
std::unique_ptr<PcrSource> TpmPcrSource(std::string tcti);

// The TPM side of the verifier's PCR check. The TPM may already hold extends
// the verifier has not read yet, so this keeps its own view of the module's
// log (records since the newest BASE's cut), replays it and places every
// bank's PCRs; read again and retried (three tries in all) when a checkpoint
// lands between the log read and the PCR read.
// Thread-safety: one caller at a time (the verifier's).
class PcrChecker {
 public:
  PcrChecker(std::unique_ptr<PcrSource> source, const vigil_info& info)
      : source_(std::move(source)), info_(info) {}

  // As replay::CheckPcrPath; kUnavailable when the TPM or the log cannot be read.
  Status Check(const std::vector<records::Record>& verified);

 private:
  Status ReadMore();

  std::unique_ptr<PcrSource> source_;
  vigil_info info_;
  std::vector<records::Record> current_;  // the replay view of the module's log
};

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_VERIFICATION_START_H_
