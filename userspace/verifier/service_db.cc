// Service's steps on the fleet database (vigil::fleet::Store): the same
// decisions as on the state directory, with the node's enrolment, state,
// nonces and evidence in PostgreSQL, shared by every verifier process.
#include <openssl/rand.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "service.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/digest.h"

namespace vigil::verifier {
namespace {

constexpr size_t kNonceBytes = 32;
constexpr size_t kMaxOpenNonces = 16;
using fleet::kPendingEnrolmentSeconds;

Result<std::vector<uint8_t>> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  if (RAND_priv_bytes(out.data(), static_cast<int>(n)) != 1) {
    return Status::FromOpenSsl("RAND_priv_bytes");
  }
  return out;
}

std::optional<uint64_t> Deadline(uint64_t from_unix, uint64_t deadline_s) {
  if (deadline_s == 0) return std::nullopt;
  return from_unix + deadline_s;
}

fleet::EvidenceRecord Record(const attest::Evidence& evidence, std::string_view body) {
  fleet::EvidenceRecord r;
  r.node = evidence.node;
  const std::string serialized = body.empty() ? attest::SerializeEvidence(evidence) : "";
  const std::string_view kept = body.empty() ? std::string_view(serialized) : body;
  r.body.assign(kept.begin(), kept.end());
  r.nonce = evidence.nonce;
  r.quote_attest = evidence.quote.attest;
  r.quote_signature = evidence.quote.signature;
  r.log_from_seq = evidence.log.from_seq;
  r.log_records = evidence.log.records;
  r.events = evidence.events;
  return r;
}

// What is kept of evidence that consumed no issued nonce (never issued,
// or answered already): nothing authenticated it, so only the node, the
// body's SHA-256 and (in the verdict) its size and the reasons; anyone can
// post such evidence, and a whole body a row would let them fill the
// database.
Result<fleet::EvidenceRecord> DigestOnly(const fleet::EvidenceRecord& whole) {
  fleet::EvidenceRecord r;
  r.node = whole.node;
  VIGIL_ASSIGN_OR_RETURN(crypto::Sha256Digest digest, crypto::Sha256({whole.body}));
  r.body_sha256.assign(digest.begin(), digest.end());
  return r;
}

std::string WithBodySize(const std::string& result_json, size_t body_bytes) {
  auto j = nlohmann::json::parse(result_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return result_json;
  j["body_bytes"] = body_bytes;
  j["stored"] = "sha256";  // the body was not kept: no issued nonce authenticated it
  return j.dump();
}

class StoreSteps final : public DatabaseSteps {
 public:
  StoreSteps(fleet::Store store, DatabaseOptions options, attest::Policy policy)
      : store_(std::move(store)), db_(std::move(options)), policy_(std::move(policy)) {}
  Status Enrol(const std::string& node, const attest::EnrolmentRequest& req,
               const std::vector<uint8_t>& secret, const EnrolOptions& options) override;
  Status Activate(const std::string& node, std::string_view secret_hex) override;
  Result<std::string> IssueNonce(const std::string& node) override;
  Result<attest::AttestationResult> Verify(const attest::Evidence& evidence,
                                           std::string_view body) override;
  Result<std::vector<std::pair<std::string, uint64_t>>> ActivatedNodes() override {
    return store_.ActivatedNodes();
  }

 private:
  fleet::Store store_;
  DatabaseOptions db_;
  attest::Policy policy_;
};

Status StoreSteps::Enrol(const std::string& node, const attest::EnrolmentRequest& req,
                         const std::vector<uint8_t>& secret, const EnrolOptions& options) {
  VIGIL_ASSIGN_OR_RETURN(std::optional<fleet::NodeRecord> known, store_.GetNode(node));
  if (known && !options.re_enrol) {
    if (known->activated_unix) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "node " + node +
                               " is enrolled already; enrolling it again (a new AK, "
                               "its history restarted) needs the operator's --re-enrol");
    }
    VIGIL_ASSIGN_OR_RETURN(uint64_t now, store_.DatabaseNowUnix());
    if (!known->enrolment.credential_secret.empty() &&
        known->enrolled_unix + kPendingEnrolmentSeconds > now) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "node " + node + " has a pending challenge; it may enrol again " +
                               std::to_string(kPendingEnrolmentSeconds) +
                               " s after it (or the operator with --re-enrol)");
    }
  }
  fleet::NodeEnrolment e;
  e.node = node;
  e.ek_public = tpmobj::MarshalTpm2bPublic(req.ek);
  e.ek_trust = options.ca_files.empty() ? "pinned" : "certificate";
  e.ak_public = tpmobj::MarshalTpm2bPublic(req.ak);
  e.credential_secret = secret;
  e.policy_version = policy_.version;
  // An enrolment never activated whose challenge lapsed is replaced like
  // the directory's enrolment.json (nothing of it was followed yet). The
  // check above only words the common refusals: Store::Enrol decides again
  // under the node's row lock (an activation may be committing meanwhile).
  return store_.Enrol(e, options.re_enrol);
}

Status StoreSteps::Activate(const std::string& node, std::string_view secret_hex) {
  VIGIL_RETURN_IF_ERROR(CheckNodeId(node));
  // Taking the secret, reading the AK and activating are one transaction
  // under the node's row lock, so no enrol can replace the node between
  // them. One try per challenge, atomically between verifiers: a wrong
  // answer ends it (no guessing), so its transaction commits the take.
  VIGIL_ASSIGN_OR_RETURN(fleet::Transaction tx, store_.connection().Begin());
  VIGIL_ASSIGN_OR_RETURN(std::optional<fleet::Store::TakenChallenge> taken,
                         fleet::Store::TakeCredentialSecret(tx, node));
  if (!taken) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "node " + node + " has no open credential challenge (enrol first)");
  }
  // The store keeps the secret's SHA-256: the answer's hash is compared
  // (constant time). A challenge stored in clear before this never matches:
  // the node enrols again (fail closed).
  auto got = crypto::FromHex(secret_hex);
  std::optional<crypto::Sha256Digest> got_sha256;
  if (got.ok()) {
    VIGIL_ASSIGN_OR_RETURN(got_sha256, crypto::Sha256({*got}));
  }
  if (!got_sha256 || !attest::SecretsEqual(*got_sha256, taken->credential_secret)) {
    VIGIL_RETURN_IF_ERROR(tx.Commit());
    return Status::Error(ErrorCode::kMismatch,
                         "the credential was not activated: the AK is not in the TPM of that EK "
                         "(enrol again)");
  }
  attest::NodeState state;
  state.node = node;
  VIGIL_ASSIGN_OR_RETURN(state.ak, tpmobj::ParseTpm2bPublic(taken->ak_public));
  VIGIL_ASSIGN_OR_RETURN(uint64_t now, fleet::Store::DatabaseNowUnix(tx));
  VIGIL_RETURN_IF_ERROR(
      fleet::Store::Activate(tx, node, state, Deadline(now, db_.deadline_s)).status());
  return tx.Commit();
}

Result<std::string> StoreSteps::IssueNonce(const std::string& node) {
  VIGIL_RETURN_IF_ERROR(CheckNodeId(node));
  VIGIL_ASSIGN_OR_RETURN(std::optional<fleet::StoredState> loaded, store_.LoadState(node));
  if (!loaded) {
    return Status::Error(ErrorCode::kNotFound, "node " + node + " is not enrolled and activated");
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> nonce, RandomBytes(kNonceBytes));
  VIGIL_ASSIGN_OR_RETURN(uint64_t now, store_.DatabaseNowUnix());
  const uint64_t expires = now + policy_.nonce_ttl_seconds;
  VIGIL_RETURN_IF_ERROR(store_.IssueNonce(node, nonce, now, expires, kMaxOpenNonces));
  return NonceReplyJson(node, loaded->state, nonce, expires);
}

Result<attest::AttestationResult> StoreSteps::Verify(const attest::Evidence& evidence,
                                                     std::string_view body) {
  const std::string& node = evidence.node;
  VIGIL_RETURN_IF_ERROR(CheckNodeId(node));
  VIGIL_ASSIGN_OR_RETURN(std::optional<fleet::StoredState> loaded, store_.LoadState(node));
  if (!loaded) {
    return Status::Error(ErrorCode::kNotFound, "node " + node + " is not enrolled and activated");
  }
  const fleet::EvidenceRecord record = Record(evidence, body);
  fleet::VerdictRecord verdict;
  verdict.policy_version = policy_.version;
  verdict.verifier = db_.name;

  attest::AttestationResult result;
  {
    // Nonce, evidence, verdict and state step: one transaction. The nonce's
    // row is deleted first, so a second verifier answering the same nonce
    // waits for this one and then finds it gone.
    VIGIL_ASSIGN_OR_RETURN(fleet::Transaction tx, store_.connection().Begin());
    VIGIL_ASSIGN_OR_RETURN(uint64_t now, fleet::Store::DatabaseNowUnix(tx));
    VIGIL_ASSIGN_OR_RETURN(std::optional<uint64_t> expiry,
                           fleet::Store::ConsumeNonce(tx, node, evidence.nonce));
    result = DecideEvidence(policy_, loaded->state, evidence, expiry, now);
    verdict.trusted = result.trusted;
    verdict.result_json = attest::ResultJson(result);
    fleet::EvidenceRecord kept = record;
    if (!expiry) {  // no issued nonce taken: never trusted, kept as a digest
      VIGIL_ASSIGN_OR_RETURN(kept, DigestOnly(record));
      verdict.result_json = WithBodySize(verdict.result_json, record.body.size());
    }
    std::optional<fleet::StateAdvance> advance;
    if (result.trusted) {
      advance = fleet::StateAdvance{loaded->version, result.next,
                                    Deadline(result.next.last_attested_unix, db_.deadline_s)};
    }
    auto appended = fleet::Store::AppendEvidence(tx, kept, verdict, advance);
    if (appended.ok()) {
      VIGIL_RETURN_IF_ERROR(tx.Commit());
      return result;
    }
    if (appended.status().code() != ErrorCode::kFailedPrecondition || !advance) {
      return appended.status();  // rolled back: the nonce stays open
    }
  }
  // Another verifier advanced the node after we loaded it: what this
  // evidence shows may be right, but it was decided on an old state. It is
  // kept, refused, its nonce spent; the node asks again.
  const std::string why = "state: another verifier advanced node " + node + " since version " +
                          std::to_string(loaded->version) + " (a stale decision); ask a new nonce";
  attest::AttestationResult stale;
  stale.next = loaded->state;
  stale.reasons.push_back(why);
  verdict.trusted = false;
  verdict.result_json = attest::ResultJson(stale);
  VIGIL_ASSIGN_OR_RETURN(fleet::Transaction tx, store_.connection().Begin());
  VIGIL_RETURN_IF_ERROR(fleet::Store::ConsumeNonce(tx, node, evidence.nonce).status());
  VIGIL_RETURN_IF_ERROR(fleet::Store::AppendEvidence(tx, record, verdict, std::nullopt).status());
  VIGIL_RETURN_IF_ERROR(tx.Commit());
  return Status::Error(ErrorCode::kFailedPrecondition, why);
}

}  // namespace

Result<Service> Service::OpenDatabase(const DatabaseOptions& options, attest::Policy policy) {
  if (options.name.empty() || options.name.size() > fleet::kMaxOwnerBytes) {
    return Status::Error(
        ErrorCode::kInvalidArgument,
        "a verifier's name is 1 to " + std::to_string(fleet::kMaxOwnerBytes) + " bytes");
  }
  VIGIL_ASSIGN_OR_RETURN(fleet::Store store, fleet::Store::Open(options.connect));
  Service s;
  s.policy_ = policy;
  s.db_ = std::make_unique<StoreSteps>(std::move(store), options, std::move(policy));
  return s;
}

}  // namespace vigil::verifier
