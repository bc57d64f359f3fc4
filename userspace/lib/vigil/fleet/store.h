// The fleet verifier's per-node state and durable evidence in PostgreSQL
// (issue #15): what vigil-verifier keeps today in DIR/nodes/<node>/ files,
// shared by any number of verifier processes on one database.
//
// Each call is one transaction. Correctness between verifiers rests on the
// state's version column (compare-and-set: two verifiers never both advance
// one node); leases only share the work (a verifier that lost its lease and
// still writes is refused by the version, not by the lease).
// Times in and out are unix seconds; lease times are the database's clock,
// so the verifiers' clocks need not agree.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_FLEET_STORE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_FLEET_STORE_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vigil/attest/verifier.h"
#include "vigil/fleet/pq.h"
#include "vigil/status.h"

namespace vigil::fleet {

// Bounds on what one row takes (larger is kInvalidArgument, not stored).
inline constexpr size_t kMaxEvidenceBytes = 64u << 20;   // one evidence document
inline constexpr size_t kMaxResultJsonBytes = 4u << 20;  // one verdict's detail
inline constexpr size_t kMaxOwnerBytes = 128;            // a verifier's name
// A pending challenge is the node's for this long: an enrol without the
// operator's re_enrol cannot replace it before.
inline constexpr uint64_t kPendingEnrolmentSeconds = 300;

// What Enrol records: the checked EK and AK and the open credential
// challenge (the secret the node must return).
struct NodeEnrolment {
  std::string node;                        // hex TPM name of the EK
  std::vector<uint8_t> ek_public;          // TPM2B_PUBLIC
  std::string ek_trust;                    // "certificate" or "pinned"
  std::vector<uint8_t> ak_public;          // TPM2B_PUBLIC
  // 1 to 64 bytes; Store::Enrol keeps only its SHA-256 (what GetNode and
  // TakeCredentialSecret return).
  std::vector<uint8_t> credential_secret;
  int64_t policy_version = 0;
};

struct NodeRecord {
  NodeEnrolment enrolment;  // credential_secret: its SHA-256, empty once taken
  uint64_t enrolled_unix = 0;
  std::optional<uint64_t> activated_unix;
};

// A node's state as stored, with the version a SaveState must name.
struct StoredState {
  attest::NodeState state;
  int64_t version = 0;
  std::optional<uint64_t> deadline_unix;  // when the node must be attested again
};

// One evidence as received and what it carried (the body is the authority:
// an audit parses it again; the rest is for queries).
struct EvidenceRecord {
  std::string node;
  std::vector<uint8_t> body;  // the document as received (JSON or CBOR)
  std::vector<uint8_t> nonce;
  std::vector<uint8_t> quote_attest;
  std::vector<uint8_t> quote_signature;
  uint64_t log_from_seq = 0;
  std::vector<uint8_t> log_records;
  std::vector<uint8_t> events;
  // A digest-only record (evidence that consumed no issued nonce, so
  // nothing authenticated it): the body and the rest empty, this the
  // SHA-256 of the body as received (32 bytes). Empty otherwise: the
  // store hashes `body`.
  std::vector<uint8_t> body_sha256;
};

struct VerdictRecord {
  bool trusted = false;
  std::string result_json;  // attest::ResultJson
  int64_t policy_version = 0;
  std::string verifier;  // which verifier process decided
};

// The state step a trusted verdict makes.
struct StateAdvance {
  int64_t expected_version = 0;  // StoredState::version it was decided on
  attest::NodeState next;
  std::optional<uint64_t> deadline_unix;
};

struct AppendOutcome {
  int64_t evidence_id = 0;
  std::optional<int64_t> state_version;  // the new version, when the state advanced
};

struct StoredEvidence {
  int64_t evidence_id = 0;
  EvidenceRecord evidence;
  uint64_t received_unix = 0;
  std::optional<bool> trusted;  // its verdict, if one was recorded
};

// What a fair share of the nodes is for one verifier.
struct FleetShare {
  int64_t verifiers = 0;  // alive, the caller included
  int64_t nodes = 0;      // activated
};

struct NodeDeadline {
  std::string node;
  uint64_t last_attested_unix = 0;  // 0: never
  uint64_t deadline_unix = 0;
};

// The store on one connection. Thread-safety: not thread-safe (one Store per
// thread; the database serializes what must be).
class Store {
 public:
  // Connects and migrates (Migrate) the schema.
  static Result<Store> Open(const ConnectOptions& options);

  // --- enrolment ---
  // Records a new node, or replaces its EK, AK and challenge and drops its
  // state, lease and certified keys (a new AK restarts what the verifier
  // followed; evidence and verdicts are kept). Without the operator's
  // `re_enrol` an existing node is replaced only when it was never activated
  // and its challenge was taken or lapsed (kPendingEnrolmentSeconds by the
  // database clock), decided under the node's row lock: an enrol racing an
  // activation cannot erase the activated node. kFailedPrecondition else.
  Status Enrol(const NodeEnrolment& enrolment, bool re_enrol);
  Result<std::optional<NodeRecord>> GetNode(const std::string& node);
  // Takes the open challenge's secret out (one try per challenge: a second
  // call gets nullopt), atomically even between verifiers.
  Result<std::optional<std::vector<uint8_t>>> TakeCredentialSecret(const std::string& node);
  // The same inside the caller's transaction, with the node's row locked
  // (FOR UPDATE) and its AK: taking the secret and activating in one
  // transaction leaves no gap for a re-enrol between them.
  struct TakenChallenge {
    std::vector<uint8_t> credential_secret;
    std::vector<uint8_t> ak_public;
  };
  static Result<std::optional<TakenChallenge>> TakeCredentialSecret(Transaction& tx,
                                                                    const std::string& node);
  // Marks the node activated and stores its first state (version 1) and an
  // unowned lease. kFailedPrecondition when it was activated already.
  static Result<int64_t> Activate(Transaction& tx, const std::string& node,
                                  const attest::NodeState& initial,
                                  std::optional<uint64_t> deadline_unix);
  Result<int64_t> Activate(const std::string& node, const attest::NodeState& initial,
                           std::optional<uint64_t> deadline_unix);

  // --- state ---
  // nullopt: enrolled, not activated (or unknown: GetNode tells).
  Result<std::optional<StoredState>> LoadState(const std::string& node);
  // Compare-and-set: writes only if the stored version is still
  // `expected_version`; returns the new version. kFailedPrecondition (a
  // stale writer) when another write came first.
  Result<int64_t> SaveState(const std::string& node, int64_t expected_version,
                            const attest::NodeState& state, std::optional<uint64_t> deadline_unix);

  // --- evidence ---
  // The evidence, its verdict and (when `advance` is given) the state step
  // in one transaction: all of them or none. A stale `advance` is
  // kFailedPrecondition and records nothing.
  Result<AppendOutcome> AppendEvidence(const EvidenceRecord& evidence, const VerdictRecord& verdict,
                                       const std::optional<StateAdvance>& advance);
  // The same inside the caller's transaction (with ConsumeNonce(tx, ...):
  // the nonce, the evidence, its verdict and the state step commit together
  // or not at all). A stale `advance` is kFailedPrecondition; the evidence
  // row it inserted goes only when the caller rolls back.
  static Result<AppendOutcome> AppendEvidence(Transaction& tx, const EvidenceRecord& evidence,
                                              const VerdictRecord& verdict,
                                              const std::optional<StateAdvance>& advance);
  // The node's evidence received in [from_unix, to_unix], oldest first.
  Result<std::vector<StoredEvidence>> EvidenceBetween(const std::string& node, uint64_t from_unix,
                                                      uint64_t to_unix, int limit);

  // --- nonces ---
  // Records a nonce issued for the node, valid until `expires_unix`. Drops
  // the node's nonces expired at `now_unix`, and the oldest beyond
  // `max_open` - 1 (asking cannot lock a node out: the oldest gives way).
  // kNotFound unless the node is activated.
  Status IssueNonce(const std::string& node, std::span<const uint8_t> nonce, uint64_t now_unix,
                    uint64_t expires_unix, size_t max_open);
  // Takes the nonce out, whatever its expiry (an answer consumes it either
  // way), and returns its expiry; nullopt when it was never issued or is
  // consumed already. Of two verifiers consuming one nonce, one gets it.
  Result<std::optional<uint64_t>> ConsumeNonce(const std::string& node,
                                               std::span<const uint8_t> nonce);
  // The same inside the caller's transaction: a rollback gives the nonce
  // back (the node may send the same evidence again).
  static Result<std::optional<uint64_t>> ConsumeNonce(Transaction& tx, const std::string& node,
                                                      std::span<const uint8_t> nonce);

  // --- time ---
  // The database's clock (unix seconds): one clock for every verifier, so
  // nonce expiry, deadlines and leases do not depend on theirs agreeing.
  Result<uint64_t> DatabaseNowUnix();
  static Result<uint64_t> DatabaseNowUnix(Transaction& tx);

  // --- leases and liveness ---
  // Claims up to `limit` activated nodes whose lease is free, expired or
  // already `owner`'s (renewed), its own first (a claimer renews before it
  // takes more; one whose limit fell lets the rest lapse), then the most
  // urgent deadline first, until the
  // database's now + `lease`. Rows another claimer holds are skipped (FOR
  // UPDATE SKIP LOCKED), so concurrent claimers never get the same node.
  Result<std::vector<std::string>> ClaimDueNodes(const std::string& owner,
                                                 std::chrono::milliseconds lease, int limit);
  // The same inside the caller's transaction: the claimed rows stay locked
  // (skipped by other claimers) until it ends.
  static Result<std::vector<std::string>> ClaimDueNodes(Transaction& tx, const std::string& owner,
                                                        std::chrono::milliseconds lease, int limit);
  // Says `owner` is alive until the database's now + `ttl` (a lease round
  // calls it), and counts the verifiers alive and the activated nodes.
  Result<FleetShare> Heartbeat(const std::string& owner, std::chrono::milliseconds ttl);
  // `owner` stops (a clean shutdown): no longer counted.
  Status Leave(const std::string& owner);
  // Gives up `owner`'s lease on `node` (no-op when it is not owner's).
  Status ReleaseLease(const std::string& owner, const std::string& node);
  // Who holds the node's lease now (nullopt: nobody, or it expired).
  Result<std::optional<std::string>> LeaseOwner(const std::string& node);
  // Activated nodes whose deadline is before `now_unix`, most overdue first.
  Result<std::vector<NodeDeadline>> OverdueNodes(uint64_t now_unix);
  // Activated nodes and when each was last attested (0: never): the file
  // Service's ActivatedNodes.
  Result<std::vector<std::pair<std::string, uint64_t>>> ActivatedNodes();

  Connection& connection() { return connection_; }

 private:
  explicit Store(Connection connection) : connection_(std::move(connection)) {}
  Connection connection_;
};

}  // namespace vigil::fleet

#endif  // VIGIL_USERSPACE_LIB_VIGIL_FLEET_STORE_H_
