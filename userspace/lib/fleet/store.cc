#include "vigil/fleet/store.h"

#include <algorithm>
#include <cctype>
#include <climits>

#include "vigil/attest/enrolment.h"
#include "vigil/digest.h"
#include "vigil/fleet/migrations.h"

namespace vigil::fleet {
namespace {

// A uint64 the schema keeps in a bigint: larger ones are refused, not wrapped.
Result<Param> U64(uint64_t v, const char* what) {
  if (v > static_cast<uint64_t>(INT64_MAX)) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         std::string(what) + " does not fit a bigint: " + std::to_string(v));
  }
  return Param::Int8(static_cast<int64_t>(v));
}

Result<Param> OptionalTime(const std::optional<uint64_t>& unix_seconds, const char* what) {
  if (!unix_seconds) return Param::Null();
  return U64(*unix_seconds, what);
}

Status CheckOwner(const std::string& owner) {
  if (owner.empty() || owner.size() > kMaxOwnerBytes) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a verifier's name is 1 to " + std::to_string(kMaxOwnerBytes) + " bytes");
  }
  return Status::Ok();
}

// The columns of node_state that queries read, from the state (the JSON
// stays the authority LoadState reads back).
struct StateColumns {
  std::string json;
  std::vector<uint8_t> chain_head;
  std::vector<Param> params;  // $3..$13 of kUpdateState / kInsertState
};

Result<StateColumns> Columns(const attest::NodeState& state,
                             const std::optional<uint64_t>& deadline_unix) {
  StateColumns c;
  c.json = attest::SerializeNodeState(state);
  c.chain_head.assign(state.anchor.chain_head.begin(), state.anchor.chain_head.end());
  VIGIL_ASSIGN_OR_RETURN(Param next_seq, U64(state.next_log_seq, "next_log_seq"));
  VIGIL_ASSIGN_OR_RETURN(Param last_seq, U64(state.anchor.last_seq, "chain last_seq"));
  VIGIL_ASSIGN_OR_RETURN(Param count, U64(state.evidence_count, "evidence_count"));
  VIGIL_ASSIGN_OR_RETURN(Param deadline, OptionalTime(deadline_unix, "deadline"));
  std::optional<uint64_t> attested;
  if (state.last_attested_unix != 0) attested = state.last_attested_unix;
  VIGIL_ASSIGN_OR_RETURN(Param attested_at, OptionalTime(attested, "last_attested"));
  Param clock = Param::Null(), resets = Param::Null(), restarts = Param::Null();
  if (state.clock) {
    VIGIL_ASSIGN_OR_RETURN(clock, U64(state.clock->clock, "TPM clock"));
    resets = Param::Int8(state.clock->resetCount);
    restarts = Param::Int8(state.clock->restartCount);
  }
  c.params = {Param::Text(c.json),
              Param::Bytea(state.instance_id),
              next_seq,
              last_seq,
              Param::Bytea(c.chain_head),
              clock,
              resets,
              restarts,
              count,
              attested_at,
              deadline};
  return c;
}

constexpr char kStateAssignments[] =
    "state_json = $3, instance_id = $4, next_log_seq = $5, chain_last_seq = $6, chain_head = $7,"
    " tpm_clock = $8::int8, tpm_reset_count = $9::int8, tpm_restart_count = $10::int8,"
    " evidence_count = $11, last_attested_at = to_timestamp($12::int8),"
    " deadline = to_timestamp($13::int8), updated_at = now()";

// Records the module key the state follows (first sight per instance).
Status RecordCertifiedKey(Transaction& tx, const std::string& node,
                          const attest::NodeState& state) {
  if (!state.module_key || state.instance_id.empty()) return Status::Ok();
  std::vector<uint8_t> point{0x04};
  point.insert(point.end(), std::begin(state.module_key->x), std::end(state.module_key->x));
  point.insert(point.end(), std::begin(state.module_key->y), std::end(state.module_key->y));
  const Param p[] = {Param::Text(node), Param::Bytea(state.instance_id), Param::Bytea(point)};
  return tx
      .Exec(
          "INSERT INTO certified_keys (node_id, instance_id, module_key) VALUES ($1, $2, $3)"
          " ON CONFLICT (node_id, instance_id) DO NOTHING",
          p)
      .status();
}

// The compare-and-set step: the new version, or kFailedPrecondition.
Result<int64_t> UpdateState(Transaction& tx, const std::string& node, int64_t expected_version,
                            const attest::NodeState& state,
                            const std::optional<uint64_t>& deadline_unix) {
  if (state.node != node) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "the state is node " + state.node + "'s, not " + node + "'s");
  }
  VIGIL_ASSIGN_OR_RETURN(StateColumns c, Columns(state, deadline_unix));
  std::vector<Param> params{Param::Text(node), Param::Int8(expected_version)};
  params.insert(params.end(), c.params.begin(), c.params.end());
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      tx.Exec(std::string("UPDATE node_state SET version = version + 1, ") + kStateAssignments +
                  " WHERE node_id = $1 AND version = $2"
                  " RETURNING version",
              params));
  if (rows.size() != 1) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "node " + node + ": the state is no longer version " +
                             std::to_string(expected_version) +
                             " (another verifier advanced it, or it is not activated)");
  }
  VIGIL_RETURN_IF_ERROR(RecordCertifiedKey(tx, node, state));
  return rows.Int8(0, 0);
}

constexpr char kEpoch[] = "floor(extract(epoch from %s))::int8";

std::string Epoch(const std::string& column) {
  std::string out = kEpoch;
  out.replace(out.find("%s"), 2, column);
  return out;
}

}  // namespace

Result<Store> Store::Open(const ConnectOptions& options) {
  VIGIL_ASSIGN_OR_RETURN(Connection connection, Connection::Open(options));
  VIGIL_RETURN_IF_ERROR(Migrate(connection));
  return Store(std::move(connection));
}

Status Store::Enrol(const NodeEnrolment& e, bool re_enrol) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(e.node));
  if (e.ek_trust != "certificate" && e.ek_trust != "pinned") {
    return Status::Error(ErrorCode::kInvalidArgument, "ek_trust is \"certificate\" or \"pinned\"");
  }
  if (e.credential_secret.empty() || e.credential_secret.size() > 64) {
    return Status::Error(ErrorCode::kInvalidArgument, "a credential secret is 1 to 64 bytes");
  }
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection_.Begin());
  const Param node[] = {Param::Text(e.node)};
  // Replaceable is decided here, under the row lock an activation holds
  // until it commits: never on a read taken before the transaction.
  const Param check[] = {Param::Text(e.node), Param::Int8(kPendingEnrolmentSeconds)};
  VIGIL_ASSIGN_OR_RETURN(
      Rows existing,
      tx.Exec("SELECT activated_at IS NULL AND (credential_secret IS NULL OR"
              " enrolled_at + $2::int8 * interval '1 second' <= now())"
              " FROM nodes WHERE node_id = $1 FOR UPDATE",
              check));
  // Only the secret's SHA-256 is kept: reading the column (an audit role, a
  // backup) is not enough to answer the challenge without the TPM.
  VIGIL_ASSIGN_OR_RETURN(crypto::Sha256Digest secret_sha256, crypto::Sha256({e.credential_secret}));
  const std::vector<uint8_t> stored_secret(secret_sha256.begin(), secret_sha256.end());
  const Param row[] = {
      Param::Text(e.node),       Param::Bytea(e.ek_public),     Param::Text(e.ek_trust),
      Param::Bytea(e.ak_public), Param::Bytea(stored_secret), Param::Int8(e.policy_version)};
  if (existing.size() == 0) {
    VIGIL_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO nodes (node_id, ek_public, ek_trust, ak_public, credential_secret,"
                " policy_version) VALUES ($1, $2, $3, $4, $5, $6)",
                row)
            .status());
    return tx.Commit();
  }
  VIGIL_ASSIGN_OR_RETURN(bool replaceable, existing.Bool(0, 0));
  if (!re_enrol && !replaceable) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "node " + e.node +
                             " is enrolled already or has a pending challenge (re-enrolling "
                             "needs the operator)");
  }
  // A new AK restarts what the verifier followed: its state, lease, keys and
  // open nonces go.
  for (const char* sql :
       {"DELETE FROM nonces WHERE node_id = $1", "DELETE FROM node_leases WHERE node_id = $1",
        "DELETE FROM node_state WHERE node_id = $1",
        "DELETE FROM certified_keys WHERE node_id = $1"}) {
    VIGIL_RETURN_IF_ERROR(tx.Exec(sql, node).status());
  }
  VIGIL_RETURN_IF_ERROR(tx.Exec("UPDATE nodes SET ek_public = $2, ek_trust = $3, ak_public = $4,"
                                " credential_secret = $5, policy_version = $6, enrolled_at = now(),"
                                " activated_at = NULL WHERE node_id = $1",
                                row)
                            .status());
  return tx.Commit();
}

Result<std::optional<NodeRecord>> Store::GetNode(const std::string& node) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  const Param p[] = {Param::Text(node)};
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      connection_.Exec("SELECT node_id, ek_public, ek_trust, ak_public, credential_secret,"
                       " policy_version, " +
                           Epoch("enrolled_at") + ", " + Epoch("activated_at") +
                           " FROM nodes WHERE node_id = $1",
                       p, Retry::kOnceIfIdempotent));
  if (rows.size() == 0) return std::optional<NodeRecord>();
  NodeRecord r;
  VIGIL_ASSIGN_OR_RETURN(r.enrolment.node, rows.Text(0, 0));
  VIGIL_ASSIGN_OR_RETURN(r.enrolment.ek_public, rows.Bytea(0, 1));
  VIGIL_ASSIGN_OR_RETURN(r.enrolment.ek_trust, rows.Text(0, 2));
  VIGIL_ASSIGN_OR_RETURN(r.enrolment.ak_public, rows.Bytea(0, 3));
  VIGIL_ASSIGN_OR_RETURN(auto secret, rows.NullableBytea(0, 4));
  if (secret) r.enrolment.credential_secret = std::move(*secret);
  VIGIL_ASSIGN_OR_RETURN(r.enrolment.policy_version, rows.Int8(0, 5));
  VIGIL_ASSIGN_OR_RETURN(int64_t enrolled, rows.Int8(0, 6));
  r.enrolled_unix = static_cast<uint64_t>(enrolled);
  VIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> activated, rows.NullableInt8(0, 7));
  if (activated) r.activated_unix = static_cast<uint64_t>(*activated);
  return std::optional<NodeRecord>(std::move(r));
}

Result<std::optional<std::vector<uint8_t>>> Store::TakeCredentialSecret(const std::string& node) {
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection_.Begin());
  VIGIL_ASSIGN_OR_RETURN(std::optional<TakenChallenge> taken, TakeCredentialSecret(tx, node));
  VIGIL_RETURN_IF_ERROR(tx.Commit());
  if (!taken) return std::optional<std::vector<uint8_t>>();
  return std::optional<std::vector<uint8_t>>(std::move(taken->credential_secret));
}

Result<std::optional<Store::TakenChallenge>> Store::TakeCredentialSecret(Transaction& tx,
                                                                        const std::string& node) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  const Param p[] = {Param::Text(node)};
  // The old value, read under the row lock the UPDATE takes: of two
  // concurrent takers one gets the secret, the other NULL.
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      tx.Exec("SELECT credential_secret, ak_public FROM nodes WHERE node_id = $1 FOR UPDATE", p));
  if (rows.size() == 0) {
    return Status::Error(ErrorCode::kNotFound, "node " + node + " is not enrolled");
  }
  VIGIL_ASSIGN_OR_RETURN(auto secret, rows.NullableBytea(0, 0));
  VIGIL_RETURN_IF_ERROR(
      tx.Exec("UPDATE nodes SET credential_secret = NULL WHERE node_id = $1", p).status());
  if (!secret) return std::optional<TakenChallenge>();
  TakenChallenge taken;
  taken.credential_secret = std::move(*secret);
  VIGIL_ASSIGN_OR_RETURN(taken.ak_public, rows.Bytea(0, 1));
  return std::optional<TakenChallenge>(std::move(taken));
}

Result<int64_t> Store::Activate(const std::string& node, const attest::NodeState& initial,
                                std::optional<uint64_t> deadline_unix) {
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection_.Begin());
  VIGIL_ASSIGN_OR_RETURN(int64_t version, Activate(tx, node, initial, deadline_unix));
  VIGIL_RETURN_IF_ERROR(tx.Commit());
  return version;
}

Result<int64_t> Store::Activate(Transaction& tx, const std::string& node,
                                const attest::NodeState& initial,
                                std::optional<uint64_t> deadline_unix) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  if (initial.node != node) {
    return Status::Error(ErrorCode::kInvalidArgument, "the state is another node's");
  }
  VIGIL_ASSIGN_OR_RETURN(StateColumns c, Columns(initial, deadline_unix));
  const Param p[] = {Param::Text(node)};
  VIGIL_ASSIGN_OR_RETURN(Rows marked,
                         tx.Exec("UPDATE nodes SET activated_at = now()"
                                 " WHERE node_id = $1 AND activated_at IS NULL RETURNING 1",
                                 p));
  if (marked.size() != 1) {
    VIGIL_ASSIGN_OR_RETURN(Rows known, tx.Exec("SELECT 1 FROM nodes WHERE node_id = $1", p));
    return Status::Error(
        known.size() ? ErrorCode::kFailedPrecondition : ErrorCode::kNotFound,
        "node " + node + (known.size() ? " is activated already" : " is not enrolled"));
  }
  std::vector<Param> params{Param::Text(node), Param::Int8(1)};
  params.insert(params.end(), c.params.begin(), c.params.end());
  VIGIL_RETURN_IF_ERROR(
      tx.Exec("INSERT INTO node_state (node_id, version, state_json, instance_id, next_log_seq,"
              " chain_last_seq, chain_head, tpm_clock, tpm_reset_count, tpm_restart_count,"
              " evidence_count, last_attested_at, deadline) VALUES ($1, $2, $3, $4, $5, $6, $7,"
              " $8::int8, $9::int8, $10::int8, $11, to_timestamp($12::int8),"
              " to_timestamp($13::int8))",
              params)
          .status());
  VIGIL_RETURN_IF_ERROR(tx.Exec("INSERT INTO node_leases (node_id) VALUES ($1)", p).status());
  VIGIL_RETURN_IF_ERROR(RecordCertifiedKey(tx, node, initial));
  return int64_t{1};
}

Result<std::optional<StoredState>> Store::LoadState(const std::string& node) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  const Param p[] = {Param::Text(node)};
  VIGIL_ASSIGN_OR_RETURN(Rows rows,
                         connection_.Exec("SELECT state_json, version, " + Epoch("deadline") +
                                              " FROM node_state WHERE node_id = $1",
                                          p, Retry::kOnceIfIdempotent));
  if (rows.size() == 0) return std::optional<StoredState>();
  StoredState s;
  VIGIL_ASSIGN_OR_RETURN(std::string json, rows.Text(0, 0));
  auto parsed = attest::ParseNodeState(json);
  if (!parsed.ok()) {
    return Status::Error(parsed.status().code(),
                         "node " + node + ": stored state: " + parsed.status().message());
  }
  s.state = std::move(parsed).value();
  if (s.state.node != node) {
    return Status::Error(ErrorCode::kMalformed,
                         "node " + node + ": stored state is another node's");
  }
  VIGIL_ASSIGN_OR_RETURN(s.version, rows.Int8(0, 1));
  VIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> deadline, rows.NullableInt8(0, 2));
  if (deadline) s.deadline_unix = static_cast<uint64_t>(*deadline);
  return std::optional<StoredState>(std::move(s));
}

Result<int64_t> Store::SaveState(const std::string& node, int64_t expected_version,
                                 const attest::NodeState& state,
                                 std::optional<uint64_t> deadline_unix) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection_.Begin());
  VIGIL_ASSIGN_OR_RETURN(int64_t version,
                         UpdateState(tx, node, expected_version, state, deadline_unix));
  VIGIL_RETURN_IF_ERROR(tx.Commit());
  return version;
}

Result<AppendOutcome> Store::AppendEvidence(const EvidenceRecord& e, const VerdictRecord& verdict,
                                            const std::optional<StateAdvance>& advance) {
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection_.Begin());
  VIGIL_ASSIGN_OR_RETURN(AppendOutcome out, AppendEvidence(tx, e, verdict, advance));
  VIGIL_RETURN_IF_ERROR(tx.Commit());
  return out;
}

Result<AppendOutcome> Store::AppendEvidence(Transaction& tx, const EvidenceRecord& e,
                                            const VerdictRecord& verdict,
                                            const std::optional<StateAdvance>& advance) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(e.node));
  const size_t total = e.body.size() + e.nonce.size() + e.quote_attest.size() +
                       e.quote_signature.size() + e.log_records.size() + e.events.size();
  if (total > kMaxEvidenceBytes) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "evidence of " + std::to_string(total) + " bytes, more than the " +
                             std::to_string(kMaxEvidenceBytes) + " a row takes");
  }
  if (verdict.result_json.size() > kMaxResultJsonBytes) {
    return Status::Error(ErrorCode::kInvalidArgument, "verdict detail too large");
  }
  VIGIL_RETURN_IF_ERROR(CheckOwner(verdict.verifier));
  VIGIL_ASSIGN_OR_RETURN(Param from_seq, U64(e.log_from_seq, "log from_seq"));
  std::vector<uint8_t> body_sha256 = e.body_sha256;
  if (body_sha256.empty()) {
    VIGIL_ASSIGN_OR_RETURN(crypto::Sha256Digest digest, crypto::Sha256({e.body}));
    body_sha256.assign(digest.begin(), digest.end());
  } else if (body_sha256.size() != 32 || !e.body.empty()) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a digest-only evidence record has a 32-byte SHA-256 and no body");
  }
  const Param ev[] = {Param::Text(e.node),
                      Param::Bytea(e.body),
                      Param::Bytea(body_sha256),
                      Param::Bytea(e.nonce),
                      Param::Bytea(e.quote_attest),
                      Param::Bytea(e.quote_signature),
                      from_seq,
                      Param::Bytea(e.log_records),
                      Param::Bytea(e.events)};
  VIGIL_ASSIGN_OR_RETURN(
      Rows inserted,
      tx.Exec("INSERT INTO evidence (node_id, body, body_sha256, nonce, quote_attest,"
              " quote_signature, log_from_seq, log_records, events)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING evidence_id",
              ev));
  AppendOutcome out;
  VIGIL_ASSIGN_OR_RETURN(out.evidence_id, inserted.Int8(0, 0));
  if (advance) {
    VIGIL_ASSIGN_OR_RETURN(int64_t version, UpdateState(tx, e.node, advance->expected_version,
                                                        advance->next, advance->deadline_unix));
    out.state_version = version;
  }
  const Param v[] = {Param::Int8(out.evidence_id),
                     Param::Text(e.node),
                     Param::Bool(verdict.trusted),
                     Param::Text(verdict.result_json),
                     Param::Int8(verdict.policy_version),
                     Param::Text(verdict.verifier),
                     out.state_version ? Param::Int8(*out.state_version) : Param::Null()};
  VIGIL_RETURN_IF_ERROR(
      tx.Exec("INSERT INTO verdicts (evidence_id, node_id, trusted, result_json, policy_version,"
              " verifier, state_version) VALUES ($1, $2, $3, $4, $5, $6, $7::int8)",
              v)
          .status());
  return out;
}

Result<std::vector<StoredEvidence>> Store::EvidenceBetween(const std::string& node,
                                                           uint64_t from_unix, uint64_t to_unix,
                                                           int limit) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  VIGIL_ASSIGN_OR_RETURN(Param from, U64(from_unix, "from"));
  VIGIL_ASSIGN_OR_RETURN(Param to, U64(to_unix, "to"));
  const Param p[] = {Param::Text(node), from, to, Param::Int8(std::max(limit, 0))};
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      connection_.Exec("SELECT e.evidence_id, e.body, e.nonce, e.quote_attest, e.quote_signature,"
                       " e.log_from_seq, e.log_records, e.events, " +
                           Epoch("e.received_at") +
                           ", v.trusted FROM evidence e LEFT JOIN verdicts v USING (evidence_id)"
                           " WHERE e.node_id = $1 AND e.received_at >= to_timestamp($2)"
                           " AND e.received_at < to_timestamp($3) + interval '1 second'"
                           " ORDER BY e.received_at, e.evidence_id LIMIT $4",
                       p, Retry::kOnceIfIdempotent));
  std::vector<StoredEvidence> out;
  for (int i = 0; i < rows.size(); ++i) {
    StoredEvidence s;
    s.evidence.node = node;
    VIGIL_ASSIGN_OR_RETURN(s.evidence_id, rows.Int8(i, 0));
    VIGIL_ASSIGN_OR_RETURN(s.evidence.body, rows.Bytea(i, 1));
    VIGIL_ASSIGN_OR_RETURN(s.evidence.nonce, rows.Bytea(i, 2));
    VIGIL_ASSIGN_OR_RETURN(s.evidence.quote_attest, rows.Bytea(i, 3));
    VIGIL_ASSIGN_OR_RETURN(s.evidence.quote_signature, rows.Bytea(i, 4));
    VIGIL_ASSIGN_OR_RETURN(int64_t from_seq, rows.Int8(i, 5));
    s.evidence.log_from_seq = static_cast<uint64_t>(from_seq);
    VIGIL_ASSIGN_OR_RETURN(s.evidence.log_records, rows.Bytea(i, 6));
    VIGIL_ASSIGN_OR_RETURN(s.evidence.events, rows.Bytea(i, 7));
    VIGIL_ASSIGN_OR_RETURN(int64_t received, rows.Int8(i, 8));
    s.received_unix = static_cast<uint64_t>(received);
    VIGIL_ASSIGN_OR_RETURN(bool no_verdict, rows.IsNull(i, 9));
    if (!no_verdict) {
      VIGIL_ASSIGN_OR_RETURN(bool trusted, rows.Bool(i, 9));
      s.trusted = trusted;
    }
    out.push_back(std::move(s));
  }
  return out;
}

Status Store::IssueNonce(const std::string& node, std::span<const uint8_t> nonce, uint64_t now_unix,
                         uint64_t expires_unix, size_t max_open) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  if (nonce.size() < 16 || nonce.size() > 64 || max_open == 0 || max_open > 1024) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a nonce is 16 to 64 bytes, and 1 to 1024 may be open");
  }
  VIGIL_ASSIGN_OR_RETURN(Param now, U64(now_unix, "now"));
  VIGIL_ASSIGN_OR_RETURN(Param expires, U64(expires_unix, "nonce expiry"));
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection_.Begin());
  const Param p[] = {Param::Text(node)};
  // The node's state row serializes issuers for one node (the count below).
  VIGIL_ASSIGN_OR_RETURN(Rows known,
                         tx.Exec("SELECT 1 FROM node_state WHERE node_id = $1 FOR UPDATE", p));
  if (known.size() != 1) {
    return Status::Error(ErrorCode::kNotFound, "node " + node + " is not enrolled and activated");
  }
  // Nonce rows an evidence transaction holds (consuming them, then waiting
  // for the state row this transaction holds) are skipped, not waited for:
  // waiting would deadlock (40P01). They are gone when it commits; if it
  // rolls back, one more than max_open stays open until the next request.
  const Param expired[] = {Param::Text(node), now};
  VIGIL_RETURN_IF_ERROR(
      tx.Exec("DELETE FROM nonces WHERE node_id = $1 AND nonce IN ("
              " SELECT nonce FROM nonces WHERE node_id = $1 AND expires_at <= to_timestamp($2)"
              " FOR UPDATE SKIP LOCKED)",
              expired)
          .status());
  const Param keep[] = {Param::Text(node), Param::Int8(static_cast<int64_t>(max_open) - 1)};
  VIGIL_RETURN_IF_ERROR(tx.Exec("DELETE FROM nonces WHERE node_id = $1 AND nonce IN ("
                                " SELECT nonce FROM nonces WHERE node_id = $1 AND nonce NOT IN ("
                                " SELECT nonce FROM nonces WHERE node_id = $1"
                                " ORDER BY expires_at DESC, issued_at DESC LIMIT $2)"
                                " FOR UPDATE SKIP LOCKED)",
                                keep)
                            .status());
  const Param row[] = {Param::Text(node), Param::Bytea(nonce), expires};
  VIGIL_RETURN_IF_ERROR(
      tx.Exec("INSERT INTO nonces (node_id, nonce, expires_at) VALUES ($1, $2, to_timestamp($3))",
              row)
          .status());
  return tx.Commit();
}

Result<std::optional<uint64_t>> Store::ConsumeNonce(Transaction& tx, const std::string& node,
                                                    std::span<const uint8_t> nonce) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  if (nonce.size() > 64) return std::optional<uint64_t>();  // never issued
  const Param p[] = {Param::Text(node), Param::Bytea(nonce)};
  VIGIL_ASSIGN_OR_RETURN(Rows rows,
                         tx.Exec("DELETE FROM nonces WHERE node_id = $1 AND nonce = $2 RETURNING " +
                                     Epoch("expires_at"),
                                 p));
  if (rows.size() == 0) return std::optional<uint64_t>();
  VIGIL_ASSIGN_OR_RETURN(int64_t expiry, rows.Int8(0, 0));
  return std::optional<uint64_t>(static_cast<uint64_t>(expiry));
}

Result<uint64_t> Store::DatabaseNowUnix() {
  VIGIL_ASSIGN_OR_RETURN(Rows rows, connection_.Exec("SELECT " + Epoch("clock_timestamp()"), {},
                                                     Retry::kOnceIfIdempotent));
  VIGIL_ASSIGN_OR_RETURN(int64_t now, rows.Int8(0, 0));
  return static_cast<uint64_t>(now);
}

Result<uint64_t> Store::DatabaseNowUnix(Transaction& tx) {
  VIGIL_ASSIGN_OR_RETURN(Rows rows, tx.Exec("SELECT " + Epoch("clock_timestamp()")));
  VIGIL_ASSIGN_OR_RETURN(int64_t now, rows.Int8(0, 0));
  return static_cast<uint64_t>(now);
}

Result<std::optional<uint64_t>> Store::ConsumeNonce(const std::string& node,
                                                    std::span<const uint8_t> nonce) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  if (nonce.size() > 64) return std::optional<uint64_t>();  // never issued
  const Param p[] = {Param::Text(node), Param::Bytea(nonce)};
  // Not retried: a DELETE whose answer was lost may have consumed it.
  VIGIL_ASSIGN_OR_RETURN(Rows rows,
                         connection_.Exec("DELETE FROM nonces WHERE node_id = $1 AND nonce = $2"
                                          " RETURNING " +
                                              Epoch("expires_at"),
                                          p));
  if (rows.size() == 0) return std::optional<uint64_t>();
  VIGIL_ASSIGN_OR_RETURN(int64_t expiry, rows.Int8(0, 0));
  return std::optional<uint64_t>(static_cast<uint64_t>(expiry));
}

Result<std::vector<std::string>> Store::ClaimDueNodes(const std::string& owner,
                                                      std::chrono::milliseconds lease, int limit) {
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection_.Begin());
  VIGIL_ASSIGN_OR_RETURN(std::vector<std::string> nodes, ClaimDueNodes(tx, owner, lease, limit));
  VIGIL_RETURN_IF_ERROR(tx.Commit());
  return nodes;
}

Result<std::vector<std::string>> Store::ClaimDueNodes(Transaction& tx, const std::string& owner,
                                                      std::chrono::milliseconds lease, int limit) {
  VIGIL_RETURN_IF_ERROR(CheckOwner(owner));
  if (lease.count() <= 0 || limit <= 0) {
    return Status::Error(ErrorCode::kInvalidArgument, "a lease and a limit are positive");
  }
  const Param p[] = {Param::Text(owner), Param::Int8(lease.count()), Param::Int8(limit)};
  // One statement: a row another claimer has locked is skipped, not waited
  // for; a row it claimed and committed meanwhile is re-checked against the
  // WHERE (READ COMMITTED) and no longer free.
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      tx.Exec("WITH due AS ("
              " SELECT l.node_id FROM node_leases l JOIN node_state s ON s.node_id = l.node_id"
              " WHERE l.owner IS NULL OR l.lease_until <= clock_timestamp() OR l.owner = $1"
              " ORDER BY (l.owner IS NOT DISTINCT FROM $1) DESC, s.deadline ASC NULLS FIRST,"
              " l.node_id LIMIT $3"
              " FOR UPDATE OF l SKIP LOCKED)"
              " UPDATE node_leases l SET owner = $1,"
              " lease_until = clock_timestamp() + make_interval(secs => $2::float8 / 1000)"
              " FROM due WHERE l.node_id = due.node_id RETURNING l.node_id",
              p));
  std::vector<std::string> out;
  for (int i = 0; i < rows.size(); ++i) {
    VIGIL_ASSIGN_OR_RETURN(std::string node, rows.Text(i, 0));
    out.push_back(std::move(node));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<FleetShare> Store::Heartbeat(const std::string& owner, std::chrono::milliseconds ttl) {
  VIGIL_RETURN_IF_ERROR(CheckOwner(owner));
  if (ttl.count() <= 0) return Status::Error(ErrorCode::kInvalidArgument, "a ttl is positive");
  const Param p[] = {Param::Text(owner), Param::Int8(ttl.count())};
  // Upsert, then count (a separate statement: it sees the row just written).
  VIGIL_RETURN_IF_ERROR(
      connection_
          .Exec("INSERT INTO verifiers (name, alive_until) VALUES ($1,"
                " clock_timestamp() + make_interval(secs => $2::float8 / 1000))"
                " ON CONFLICT (name) DO UPDATE SET alive_until = EXCLUDED.alive_until",
                p, Retry::kOnceIfIdempotent)
          .status());
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      connection_.Exec(
          "SELECT (SELECT count(*) FROM verifiers WHERE alive_until > clock_timestamp()),"
          " (SELECT count(*) FROM node_state)",
          {}, Retry::kOnceIfIdempotent));
  FleetShare share;
  VIGIL_ASSIGN_OR_RETURN(share.verifiers, rows.Int8(0, 0));
  VIGIL_ASSIGN_OR_RETURN(share.nodes, rows.Int8(0, 1));
  share.verifiers = std::max<int64_t>(share.verifiers, 1);
  return share;
}

Status Store::Leave(const std::string& owner) {
  VIGIL_RETURN_IF_ERROR(CheckOwner(owner));
  const Param p[] = {Param::Text(owner)};
  return connection_.Exec("DELETE FROM verifiers WHERE name = $1", p, Retry::kOnceIfIdempotent)
      .status();
}

Status Store::ReleaseLease(const std::string& owner, const std::string& node) {
  VIGIL_RETURN_IF_ERROR(CheckOwner(owner));
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  const Param p[] = {Param::Text(node), Param::Text(owner)};
  return connection_
      .Exec(
          "UPDATE node_leases SET owner = NULL, lease_until = NULL"
          " WHERE node_id = $1 AND owner = $2",
          p, Retry::kOnceIfIdempotent)
      .status();
}

Result<std::optional<std::string>> Store::LeaseOwner(const std::string& node) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  const Param p[] = {Param::Text(node)};
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows, connection_.Exec("SELECT owner FROM node_leases WHERE node_id = $1"
                                  " AND owner IS NOT NULL AND lease_until > clock_timestamp()",
                                  p, Retry::kOnceIfIdempotent));
  if (rows.size() == 0) return std::optional<std::string>();
  VIGIL_ASSIGN_OR_RETURN(std::string owner, rows.Text(0, 0));
  return std::optional<std::string>(std::move(owner));
}

Result<std::vector<NodeDeadline>> Store::OverdueNodes(uint64_t now_unix) {
  VIGIL_ASSIGN_OR_RETURN(Param now, U64(now_unix, "now"));
  const Param p[] = {now};
  VIGIL_ASSIGN_OR_RETURN(Rows rows,
                         connection_.Exec("SELECT node_id, coalesce(" + Epoch("last_attested_at") +
                                              ", 0), " + Epoch("deadline") +
                                              " FROM node_state WHERE deadline < to_timestamp($1)"
                                              " ORDER BY deadline, node_id",
                                          p, Retry::kOnceIfIdempotent));
  std::vector<NodeDeadline> out;
  for (int i = 0; i < rows.size(); ++i) {
    NodeDeadline d;
    VIGIL_ASSIGN_OR_RETURN(d.node, rows.Text(i, 0));
    VIGIL_ASSIGN_OR_RETURN(int64_t attested, rows.Int8(i, 1));
    VIGIL_ASSIGN_OR_RETURN(int64_t deadline, rows.Int8(i, 2));
    d.last_attested_unix = static_cast<uint64_t>(attested);
    d.deadline_unix = static_cast<uint64_t>(deadline);
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<std::pair<std::string, uint64_t>>> Store::ActivatedNodes() {
  VIGIL_ASSIGN_OR_RETURN(Rows rows,
                         connection_.Exec("SELECT node_id, coalesce(" + Epoch("last_attested_at") +
                                              ", 0) FROM node_state ORDER BY node_id",
                                          {}, Retry::kOnceIfIdempotent));
  std::vector<std::pair<std::string, uint64_t>> out;
  for (int i = 0; i < rows.size(); ++i) {
    VIGIL_ASSIGN_OR_RETURN(std::string node, rows.Text(i, 0));
    VIGIL_ASSIGN_OR_RETURN(int64_t attested, rows.Int8(i, 1));
    out.emplace_back(std::move(node), static_cast<uint64_t>(attested));
  }
  return out;
}

}  // namespace vigil::fleet
