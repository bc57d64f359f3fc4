// The remote verifier's decision on one piece of evidence, pure: no TPM, no
// device, no socket. What it holds at the start is the node's enrolment (the
// EK from a certificate chain or pinned, the AK checked and activated), its
// policy, and the node's state from the last verified evidence; everything
// else comes from the evidence and is checked before it is believed:
//
//   1. the nonce is the one this verifier issued for this node (the caller
//      keeps issued nonces and their expiry);
//   2. the quote: TPM-generated, a quote, over that nonce, signed by the
//      enrolled AK (CheckQuote); its clock after the last one (CheckClock);
//   3. the quoted registers are exactly the policy anchor's (PCR 10 for
//      anchor=ima; 16 and 23 for anchor=pcr, development only) and the PCR
//      values given hash to the quoted digest;
//   4. the module's checkpoint key: certified by the AK as a TPM key of the
//      module's template (CheckKeyCertification), and the key of the KEY
//      record the anchor holds;
//   5. the log segment starts exactly where the last verified one ended
//      (`from_seq`; an overlap or a gap is refused whatever the node says)
//      and is replayed with the pure engine (verify::StreamVerifier): chain
//      recomputed over the events, every checkpoint's signature checked with
//      the certified key, and the anchor check run against the QUOTED values
//      (IMA's log replayed to PCR 10, or the PCR path replayed to 16/23);
//   6. policy: module identity, parameters and producer set measured in the
//      log are allowed ones; no finding that policy forbids; loss within
//      max_loss.
// Any step that fails, or anything unexpected, makes the result untrusted
// with its reasons (fail closed). The state advances only on a trusted
// result, so a refused evidence can be retried from the same point.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_VERIFIER_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_VERIFIER_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/attest/policy.h"
#include "vigil/ima.h"
#include "vigil/signature.h"
#include "vigil/status.h"
#include "vigil/tpm_object.h"
#include "vigil/verify.h"

namespace vigil::attest {

struct Evidence;

// IMA's list as verified so far in the node's current boot (anchor=ima):
// where the next evidence's IMA entries must start and what the entries
// before that point said, so that an evidence costs its new entries only.
// IMA's list starts over at a reboot: a TPM Reset (the quote's resetCount
// moves), or a TPM Restart (restartCount moves: a boot after a suspend
// that did not resume; a resume from S3 moves it too, and then costs one
// replay of the whole list); the point then starts again at entry 0.
struct ImaPoint {
  // One module instance in the list, in the order of its first entry.
  struct Instance {
    std::string instance;          // 8 hex digits, as IMA's entry names it
    uint64_t first_entry = 0;      // index of its first entry
    uint64_t last_checkpoint = 0;  // its newest checkpoint's log seq
    bool sealed = false;           // that checkpoint is the final, sealed one
    bool operator==(const Instance&) const = default;
  };
  uint32_t reset_count = 0;                  // the TPM's resetCount of the boot (from the quote)
  uint32_t restart_count = 0;                // and its restartCount
  uint64_t entries = 0;                      // entries verified: the next evidence's ima.from_entry
  std::map<uint16_t, crypto::Digest> pcr10;  // PCR 10 after them, per replayed bank
  std::vector<Instance> instances;
  // The module's entries before the point that no verified segment covered
  // yet (the followed instance's past its next log seq; newer instances').
  std::vector<ima::VigilEntry> pending;
  // vigild's digests IMA measured before the point (hex), checked against
  // the policy at every evidence.
  std::set<std::string> collector_digests;
};

// Bounds on what the state keeps (an IMA list that needs more is refused:
// only root extends PCR 10 with that many module-like entries).
inline constexpr size_t kMaxImaInstances = 256;
inline constexpr size_t kMaxImaPending = 4096;
inline constexpr size_t kMaxCollectorDigests = 64;

// What the verifier keeps per node between evidence (persisted as JSON).
struct NodeState {
  std::string node;       // the node's id (hex EK name)
  tpmobj::PublicArea ak;  // the enrolled, activated AK
  // The module instance being followed, its certified key and where its
  // verified history ends. Empty instance: nothing verified yet.
  std::vector<uint8_t> instance_id;
  std::optional<crypto::EcPoint> module_key;
  verify::Anchor anchor;
  uint64_t next_log_seq = 1;  // the next evidence's log.from_seq
  std::optional<ImaPoint> ima;  // anchor=ima: the verified part of IMA's list
  std::optional<TPMS_CLOCK_INFO> clock;
  uint64_t evidence_count = 0;
  uint64_t last_attested_unix = 0;  // last trusted result
};

Result<NodeState> ParseNodeState(std::string_view json);
std::string SerializeNodeState(const NodeState& state);

struct AttestationResult {
  bool trusted = false;
  std::vector<std::string> reasons;  // why not trusted (empty when trusted)
  std::vector<verify::CheckpointVerdict> verdicts;
  std::vector<verify::Finding> findings;
  uint64_t records = 0;    // log records replayed
  uint64_t events = 0;     // events replayed
  bool tpm_reset = false;  // resetCount moved (reboot)
  NodeState next;          // the state to keep when trusted
};

// Decides `evidence` for the node in `state` under `policy`, against the
// nonce the verifier issued. `now_unix` stamps the state.
AttestationResult VerifyEvidence(const Policy& policy, const NodeState& state,
                                 const Evidence& evidence, std::span<const uint8_t> nonce,
                                 uint64_t now_unix);

// Feeds a segment to `verifier` and finishes it, as VerifyEvidence does:
// the events (raw records, concatenated) in seq order, each checkpoint's
// events before it, so the engine holds one checkpoint interval at a time;
// events already in seq order (what vigild writes) are decoded one at a
// time as they are fed, others sorted first (stable: two claims for one
// seq keep their order). kMalformed/kTruncated if an event does not decode.
Status FeedSegment(verify::StreamVerifier& verifier, std::span<const uint8_t> event_bytes,
                   const std::vector<records::Record>& log);

// The result as JSON (the service's response and the CLI's --json output).
std::string ResultJson(const AttestationResult& result);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_VERIFIER_H_
