// vigil-verifier's state directory and the protocol steps on it, shared by
// the command line (one step per invocation, files in and out) and the HTTP
// service (`serve`): enrol -> activate -> (nonce -> evidence)*.
//
//   DIR/nodes/<node>/enrolment.json  the node's EK, AK and, until it is
//                                    activated, the credential secret (0600)
//   DIR/nodes/<node>/state.json      NodeState after activation
//   DIR/nodes/<node>/nonces.json     issued nonces and their expiry (the
//                                    one-shot command line; `serve` holds
//                                    its nonces in memory, NonceStore)
//
// <node> is the hex TPM name of the node's EK. Files are replaced
// atomically (write, fsync, rename). One process at a time per directory
// (an flock on DIR/lock).
//
// Or (OpenDatabase) the same steps on a PostgreSQL database that any number
// of verifier processes share (vigil::fleet::Store, docs/fleet.md): the
// decisions are the same code (attest::VerifyEvidence under the same
// policy); the node's enrolment, state, nonces and every evidence with its
// verdict live in the database, on the database's clock.
#ifndef VIGIL_USERSPACE_VERIFIER_SERVICE_H_
#define VIGIL_USERSPACE_VERIFIER_SERVICE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "state.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/attest/policy.h"
#include "vigil/attest/verifier.h"
#include "vigil/fleet/store.h"
#include "vigil/status.h"
#include "vigil/unique_fd.h"

namespace vigil::verifier {

struct EnrolOptions {
  std::vector<std::string> ca_files;  // EK certificate chain roots/intermediates
  bool pin_ek = false;                // trust the EK as given (no certificate)
  // An enrolled node enrols again only when the operator says so (the
  // command line's --re-enrol; never over HTTP): a new AK resets what the
  // verifier followed for the node.
  bool re_enrol = false;
};

// Where the open nonces live. kFile: nonces.json, written (fsynced) at
// each issue and each use, for `vigil-verifier nonce` and `verify` as
// separate processes. kMemory: in this Service only (`serve`), nothing
// written; a new Service (a restarted verifier) knows no earlier nonce, so
// evidence answering one is refused and the node asks again. A nonce is
// erased when answered either way: a replay is refused in both.
enum class NonceStore { kFile, kMemory };

// The database backend's settings.
struct DatabaseOptions {
  fleet::ConnectOptions connect;
  // This verifier's name in verdicts and leases (1 to 128 bytes).
  std::string name = "vigil-verifier";
  // A trusted verdict moves the node's deadline to when its nonce was
  // issued + deadline_s (0: no deadline); activation to now + deadline_s.
  uint64_t deadline_s = 60;
};

// The steps on the fleet database (service_db.cc, linked only where
// OpenDatabase is used): Service calls them instead of its files.
class DatabaseSteps {
 public:
  virtual ~DatabaseSteps() = default;
  virtual Status Enrol(const std::string& node, const attest::EnrolmentRequest& req,
                       const std::vector<uint8_t>& secret, const EnrolOptions& options) = 0;
  virtual Status Activate(const std::string& node, std::string_view secret_hex) = 0;
  virtual Result<std::string> IssueNonce(const std::string& node) = 0;
  virtual Result<attest::AttestationResult> Verify(const attest::Evidence& evidence,
                                                   std::string_view body) = 0;
  virtual Result<std::vector<std::pair<std::string, uint64_t>>> ActivatedNodes() = 0;
};

// What an evidence proves given its nonce's expiry (nullopt: not issued or
// answered already) at `now`: the one decision both backends make.
attest::AttestationResult DecideEvidence(const attest::Policy& policy,
                                         const attest::NodeState& state,
                                         const attest::Evidence& evidence,
                                         std::optional<uint64_t> nonce_expiry, uint64_t now);
// The reply to a nonce request (Service::IssueNonce).
std::string NonceReplyJson(const std::string& node, const attest::NodeState& state,
                           std::span<const uint8_t> nonce, uint64_t expires);

class Service {
 public:
  static Result<Service> Open(const std::string& dir, attest::Policy policy,
                              NonceStore nonces = NonceStore::kFile);
  // The database backend: connects and migrates the schema. Nonces are in
  // the database (a node may ask one verifier and answer another).
  static Result<Service> OpenDatabase(const DatabaseOptions& options, attest::Policy policy);
  Service(Service&&) noexcept;
  Service& operator=(Service&&) noexcept;
  ~Service();
  bool database() const { return db_ != nullptr; }

  // Checks an enrolment request (EK certificate or pin, AK) and returns the
  // credential challenge (JSON) the node must activate.
  Result<std::string> Enrol(std::string_view request_json, const EnrolOptions& options);
  // The node's answer: the secret it recovered with ActivateCredential.
  Status Activate(const std::string& node, std::string_view secret_hex);
  // A fresh nonce for the node and where its next segment must start:
  // {"node", "nonce", "instance", "from_seq", "events_after",
  // "ima_from_entry", "ima_reset_count", "ima_restart_count",
  // "expires_unix"}.
  Result<std::string> IssueNonce(const std::string& node);
  // Decides evidence (JSON or CBOR, attest::ParseEvidence); the nonce it answers is consumed either
  // way. A trusted result's next.last_attested_unix is when the nonce was issued (the evidence
  // shows the node no later than that), not when it was decided: holding evidence back does not
  // stretch a deadline.
  //
  // With the database: the nonce's consumption, the evidence as received,
  // its verdict and (trusted) the state step commit in one transaction, so
  // a lost connection or a killed verifier leaves none of them (the nonce
  // stays open: the node may send the same evidence again). When another
  // verifier advanced the node's state meanwhile, the evidence is recorded
  // with an untrusted verdict, its nonce consumed, and the answer is
  // kFailedPrecondition (HTTP 409): the node asks a new nonce.
  Result<attest::AttestationResult> Verify(std::string_view evidence_json);
  // The same, parsed already; `body` is the document as received (kept with
  // the database; empty: the evidence serialized again).
  Result<attest::AttestationResult> Verify(const attest::Evidence& evidence,
                                           std::string_view body = {});
  // The node a serial channel is bound to (DIR/channels.json), if any, and
  // the binding itself: a channel speaks for one node, from its first
  // enrolment or nonce on, across restarts of the verifier, and a node
  // speaks through one channel (kPermissionDenied for a second).
  Result<std::optional<std::string>> ChannelNode(const std::string& channel) const;
  Status BindChannel(const std::string& channel, const std::string& node);
  // kPermissionDenied unless `channel` may speak for `node`: it is bound to
  // it, or it is unbound and the node is bound to no other channel. Sets
  // *bind when the channel is still unbound. Empty channel (HTTP): ok.
  Status CheckChannel(const std::string& channel, const std::string& node, bool* bind) const;
  // Activated nodes and when each was last attested (0: never), for the
  // liveness watch of `serve`.
  Result<std::vector<std::pair<std::string, uint64_t>>> ActivatedNodes() const;

 private:
  Service();
  std::string NodeDir(const std::string& node) const;
  Result<daemon::StateDir> OpenKnownNode(const std::string& node) const;
  // The node's state.json, parsed; nullopt before activation. Parsed once
  // per version of the file: a copy is kept with the file's identity
  // (inode, size, change times), used while the file is the same one.
  // Called with `nd` held (its flock: no other process writes meanwhile).
  Result<std::optional<attest::NodeState>> LoadState(const daemon::StateDir& nd,
                                                     const std::string& node);
  // Never torn, not necessarily durable (StateDir::Sync::kNeverTorn).
  Status SaveState(daemon::StateDir& nd, const std::string& node, const attest::NodeState& state);
  using OpenNonces = std::map<std::string, uint64_t>;  // hex nonce -> expiry (unix)
  OpenNonces LoadNonces(const daemon::StateDir& nd, const std::string& node) const;
  Status SaveNonces(daemon::StateDir& nd, const std::string& node, OpenNonces nonces);

  std::string dir_;
  attest::Policy policy_;
  UniqueFd lock_;
  NonceStore nonce_store_ = NonceStore::kFile;
  std::map<std::string, OpenNonces> memory_nonces_;  // kMemory: node -> its open nonces
  struct ParsedState {
    std::array<int64_t, 6> file{};  // ino, size, mtime s/ns, ctime s/ns
    attest::NodeState state;
  };
  std::map<std::string, ParsedState> parsed_states_;  // node -> its state.json, parsed
  // The database backend (null: the directory).
  std::unique_ptr<DatabaseSteps> db_;
};

// The node id rule (vigil/attest/enrolment.h), shared with the fleet store.
using attest::CheckNodeId;

}  // namespace vigil::verifier

#endif  // VIGIL_USERSPACE_VERIFIER_SERVICE_H_
