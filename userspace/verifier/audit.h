// vigil-verifier audit: the fleet database's stored evidence for one node
// verified again offline (no TPM, no node, no network), and whether the node
// was attested throughout a time range (docs/fleet.md "Offline audit").
//
// The replay starts from the node's activation state (its enrolled AK,
// nothing followed yet) and runs every stored evidence up to the end of the
// range through the same decision as the service (attest::VerifyEvidence
// under the given policy), in the order the evidence was stored. Only the
// body as received is believed: the evidence's other columns, its verdict
// and the node's state row are what the audit checks, not what it trusts.
// The state advances where the stored verdict and the re-verification both
// say trusted (the service advanced exactly there, unless the database was
// edited: then the audit says so).
//
// What it cannot check offline: that each nonce was issued by a verifier and
// answered before it expired (nonces are deleted when consumed), so an
// evidence stored as refused for its nonce ("nonce:") or for a stale state
// ("state:") stays refused.
#ifndef VIGIL_USERSPACE_VERIFIER_AUDIT_H_
#define VIGIL_USERSPACE_VERIFIER_AUDIT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/attest/policy.h"
#include "vigil/fleet/store.h"
#include "vigil/status.h"

namespace vigil::verifier {

struct AuditOptions {
  std::string node;
  std::optional<uint64_t> from_unix;   // default: the node's enrolment
  std::optional<uint64_t> to_unix;     // default: the database's now
  std::optional<uint64_t> deadline_s;  // default: the node's, from its state row
};

// Where the node was not attested.
struct AuditFinding {
  enum class Kind {
    kGap,            // no trusted evidence for longer than the deadline
    kUntrusted,      // a refused evidence (the stored verdict and the re-verification agree)
    kContradiction,  // the stored row says what the re-verification does not
    kMissing,        // log records no stored evidence covers (deleted rows)
  };
  Kind kind = Kind::kGap;
  uint64_t from_unix = 0;  // a gap's span; an evidence's receipt time in both
  uint64_t to_unix = 0;
  int64_t evidence_id = 0;  // 0 for a gap
  std::optional<bool> stored_trusted;
  uint64_t from_seq = 0, to_seq = 0;  // kMissing: the log seqs not covered
  std::vector<std::string> reasons;
};

struct AuditReport {
  std::string node;
  uint64_t from_unix = 0, to_unix = 0;
  uint64_t deadline_s = 0;
  std::string deadline_source;  // "option", "node state" or "default"
  uint64_t enrolled_unix = 0;
  std::optional<uint64_t> activated_unix;
  uint64_t replayed = 0;          // evidence re-verified (from activation to `to`)
  uint64_t in_range = 0;          // of them in [from, to]
  uint64_t trusted_in_range = 0;  // trusted by both the row and the re-verification
  uint64_t other_policy = 0;      // in range, decided under another policy version
  std::vector<AuditFinding> findings;
  double seconds = 0;  // the audit's wall time
  bool attested() const { return findings.empty(); }
};

const char* AuditKindName(AuditFinding::Kind kind);

// kNotFound for a node that is not enrolled; kInvalidArgument for from > to.
Result<AuditReport> AuditNode(fleet::Store& store, const attest::Policy& policy,
                              const AuditOptions& options);

std::string AuditJson(const AuditReport& report);
std::string AuditText(const AuditReport& report);

// "1733623200" or ISO-8601 UTC ("2026-12-08T02:00:00Z", the Z optional).
Result<uint64_t> ParseAuditTime(std::string_view text);

// The subcommand: exit 0 attested throughout, 1 not, 3 an error (the database, an unknown
// node); usage errors (2) are the caller's.
int RunAudit(const fleet::ConnectOptions& connect, const attest::Policy& policy,
             const AuditOptions& options, bool json);

}  // namespace vigil::verifier

#endif  // VIGIL_USERSPACE_VERIFIER_AUDIT_H_
