// Offline verification of a saved log and saved events (`vigilctl
// verify-chain`, and any tool that verifies off the node): the same
// StreamVerifier vigild runs, fed in one pass, so the two cannot disagree.
// Pure: no TPM, device, socket or BPF; the caller reads the files and the
// trusted key.
//
// The key is an input from a trusted source (GET_INFO on the node, a key
// file, an enrolment), never read from the log being verified; the
// verifier compares the log's KEY records with it (a different one is
// tampered).
#ifndef VIGIL_USERSPACE_LIB_VIGIL_OFFLINE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_OFFLINE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/chain.h"
#include "vigil/records.h"
#include "vigil/signature.h"
#include "vigil/status.h"
#include "vigil/verify.h"

namespace vigil::verify {

// The outcome of one offline verification, from best to worst. Callers map
// it to exit codes; Worse() orders it.
enum class Outcome {
  kVerified,    // every checkpoint verified and every event covered by one
  kSigned,      // as verified, but the anchor of some checkpoint was not
                // checked (offline without the TPM, or it was unreadable)
  kIncomplete,  // nothing wrong, but events after the last checkpoint (or no
                // checkpoint at all): nothing vouches for them yet
  kUnsigned,    // at least one checkpoint (or the start) is unsigned
  kLoss,        // at least one checkpoint is loss
  kUnanchored,  // chain and signatures hold, the PCR anchor does not
  kTampered,    // at least one checkpoint is tampered, a KEY record differs
                // from the trusted key, or a record was forged or replayed
};
std::string_view OutcomeName(Outcome o);
Outcome Worse(Outcome a, Outcome b);

struct OfflineOptions {
  // The trusted key; nullopt: the trusted source says the module has no key
  // (degraded mode): checkpoints are then at best unsigned.
  std::optional<crypto::EcPoint> key;
  // GET_INFO's instance id on the node; otherwise the first checkpoint's
  // (it is signed with the checkpoint, so the key vouches for it).
  std::optional<chain::InstanceId> instance_id;
  // 0: from the start of the chain. Otherwise verification starts at the
  // log's checkpoint that ends at this event seq (its signature is checked
  // with the trusted key, and its chain head must equal `start_head` when
  // given): events up to it are not judged. When no checkpoint ends there,
  // `start_head` is required and trusted as the chain value at start_seq
  // (e.g. the module's chain head read before a collector attached): the
  // checkpoint covering start_seq + 1 is then checked without its link
  // (VerifierOptions::open_first_link).
  uint64_t start_seq = 0;
  std::optional<crypto::Sha256Digest> start_head;
  // The user accepts unsigned checkpoints (degraded mode, TPM errors): they
  // no longer make the outcome unsigned (their verdicts still say so).
  bool accept_unsigned = false;
  // The user accepts checkpoints whose anchor was not checked ("signed").
  bool accept_signed = false;
  // Anchor checks (VerifierOptions): set on the node (vigilctl --live) to
  // check the PCR path or IMA's log; empty offline.
  PcrCheck pcr_check;
  PcrCheck ima_check;
  // The module's anchor from a trusted source (VerifierOptions).
  std::optional<uint32_t> module_anchor;
};

struct OfflineReport {
  Outcome outcome = Outcome::kTampered;
  std::string summary;  // one line: why this outcome
  Anchor start;         // where verification started
  std::vector<CheckpointVerdict> verdicts;
  std::vector<Finding> findings;
  VerifierCounters counters;
  uint64_t events = 0;  // committed events after the start (file + LOG_EVENT copies)
  uint64_t log_event_copies = 0;
  uint64_t last_event_seq = 0;           // highest committed event seq seen (0: none)
  uint64_t covered_seq = 0;              // last seq of the last decided checkpoint
  std::optional<Verdict> start_verdict;  // the start checkpoint's signature (start_seq > 0)
  bool start_inside_interval = false;    // started from start_head, not a checkpoint
  // The recomputed chain after the last event, when it has no gap (to
  // compare with a live module's head).
  std::optional<uint64_t> tip_seq;
  std::optional<crypto::Sha256Digest> tip_head;
};

// `events`: committed events as vigild --raw-out saved them (any order).
// `log`: the log as read or saved, decoded up to `log_error` (a stream that
// does not decode to its end is tampered from that point, as in vigild).
// Errors (not verdicts): no checkpoint ends at start_seq, no instance id.
Result<OfflineReport> VerifyOffline(const OfflineOptions& options,
                                    std::vector<records::Record> events,
                                    const std::vector<records::Record>& log,
                                    const Status& log_error = Status::Ok());

}  // namespace vigil::verify

#endif  // VIGIL_USERSPACE_LIB_VIGIL_OFFLINE_H_
