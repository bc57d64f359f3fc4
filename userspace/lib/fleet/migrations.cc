#include "vigil/fleet/migrations.h"

#include <array>
#include <string>

#include "vigil/digest.h"

namespace vigil::fleet {
namespace {

// v1: what issue #15 lists. Timestamps are the database's (timestamptz);
// node ids follow vigil::attest::CheckNodeId (the hex TPM name of the EK).
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE nodes (
  node_id           text PRIMARY KEY CHECK (node_id ~ '^[0-9a-fA-F]{4,132}$'),
  ek_public         bytea NOT NULL CHECK (length(ek_public) BETWEEN 1 AND 4096),
  ek_trust          text NOT NULL CHECK (ek_trust IN ('certificate', 'pinned')),
  ak_public         bytea NOT NULL CHECK (length(ak_public) BETWEEN 1 AND 4096),
  credential_secret bytea CHECK (length(credential_secret) BETWEEN 1 AND 64),
  policy_version    bigint NOT NULL,
  enrolled_at       timestamptz NOT NULL DEFAULT now(),
  activated_at      timestamptz
);

CREATE TABLE certified_keys (
  node_id       text NOT NULL REFERENCES nodes ON DELETE CASCADE,
  instance_id   bytea NOT NULL,
  module_key    bytea NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, instance_id)
);

CREATE TABLE node_state (
  node_id           text PRIMARY KEY REFERENCES nodes ON DELETE CASCADE,
  version           bigint NOT NULL CHECK (version > 0),
  state_json        text NOT NULL,
  instance_id       bytea NOT NULL,
  next_log_seq      bigint NOT NULL,
  chain_last_seq    bigint NOT NULL,
  chain_head        bytea NOT NULL,
  tpm_clock         bigint,
  tpm_reset_count   bigint,
  tpm_restart_count bigint,
  evidence_count    bigint NOT NULL,
  last_attested_at  timestamptz,
  deadline          timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX node_state_deadline_idx ON node_state (deadline);

CREATE TABLE evidence (
  evidence_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  node_id         text NOT NULL REFERENCES nodes ON DELETE CASCADE,
  received_at     timestamptz NOT NULL DEFAULT now(),
  body            bytea NOT NULL,
  body_sha256     bytea NOT NULL CHECK (length(body_sha256) = 32),
  nonce           bytea NOT NULL,
  quote_attest    bytea NOT NULL,
  quote_signature bytea NOT NULL,
  log_from_seq    bigint NOT NULL,
  log_records     bytea NOT NULL,
  events          bytea NOT NULL
);
CREATE INDEX evidence_node_received_idx ON evidence (node_id, received_at);
CREATE INDEX evidence_node_sha256_idx ON evidence (node_id, body_sha256);

CREATE TABLE verdicts (
  evidence_id    bigint PRIMARY KEY REFERENCES evidence ON DELETE CASCADE,
  node_id        text NOT NULL REFERENCES nodes ON DELETE CASCADE,
  trusted        boolean NOT NULL,
  result_json    text NOT NULL,
  policy_version bigint NOT NULL,
  verifier       text NOT NULL CHECK (length(verifier) BETWEEN 1 AND 128),
  state_version  bigint,
  decided_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX verdicts_node_decided_idx ON verdicts (node_id, decided_at);

CREATE TABLE node_leases (
  node_id     text PRIMARY KEY REFERENCES nodes ON DELETE CASCADE,
  owner       text CHECK (length(owner) BETWEEN 1 AND 128),
  lease_until timestamptz,
  CHECK ((owner IS NULL) = (lease_until IS NULL))
);
CREATE INDEX node_leases_until_idx ON node_leases (lease_until);
)sql";

// v2: the open nonces, shared by the verifiers (a node may ask one verifier
// for a nonce and answer another; consuming is a DELETE, so once only).
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE nonces (
  node_id    text NOT NULL REFERENCES nodes ON DELETE CASCADE,
  nonce      bytea NOT NULL CHECK (length(nonce) BETWEEN 16 AND 64),
  expires_at timestamptz NOT NULL,
  issued_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, nonce)
);
CREATE INDEX nonces_expires_idx ON nonces (expires_at);
)sql";

// v3: the verifiers alive (a heartbeat each lease round), so that each
// claims a fair share of the nodes, not all of them.
constexpr char kSchemaV3[] = R"sql(
CREATE TABLE verifiers (
  name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
  alive_until timestamptz NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now()
);
)sql";

// v4: fleet analytics. Each checked signed baseline report of a node (the
// report as received, its MEASURE record and nonce), and per agent role and
// feature the node's statistic derived from its snapshot: the median of all
// the role's samples on that node, with how many agents and samples. One
// row per (node, instance, MEASURE seq): a report is stored once, and an
// older MEASURE of an instance is refused as a replay by the ingest.
constexpr char kSchemaV4[] = R"sql(
CREATE TABLE baseline_reports (
  report_id       bigserial PRIMARY KEY,
  node_id         text NOT NULL REFERENCES nodes ON DELETE CASCADE,
  instance        bytea NOT NULL CHECK (length(instance) = 16),
  measure_seq     bigint NOT NULL CHECK (measure_seq >= 1),
  snapshot_sha256 bytea NOT NULL CHECK (length(snapshot_sha256) = 32),
  nonce           bytea NOT NULL,
  fresh           boolean NOT NULL,
  body            bytea NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (node_id, instance, measure_seq)
);
CREATE INDEX baseline_reports_node_idx ON baseline_reports (node_id, report_id);
CREATE TABLE baseline_role_features (
  report_id bigint NOT NULL REFERENCES baseline_reports ON DELETE CASCADE,
  role      text NOT NULL,
  feature   text NOT NULL,
  agents    bigint NOT NULL CHECK (agents >= 1),
  samples   bigint NOT NULL CHECK (samples >= 1),
  median    float8 NOT NULL,
  PRIMARY KEY (report_id, role, feature)
);
)sql";

constexpr std::array<Migration, 4> kMigrations = {{
    {1, "nodes, certified keys, node state, evidence, verdicts, leases", kSchemaV1},
    {2, "open nonces", kSchemaV2},
    {3, "verifiers alive", kSchemaV3},
    {4, "baseline reports and per-role feature statistics (fleet analytics)", kSchemaV4},
}};

constexpr char kCreateMigrationsTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version bigint PRIMARY KEY, name text NOT NULL, sha256 bytea NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

Result<std::vector<uint8_t>> TextDigest(const char* sql) {
  const std::string_view text(sql);
  VIGIL_ASSIGN_OR_RETURN(crypto::Sha256Digest d,
                         crypto::Sha256({std::span<const uint8_t>(
                             reinterpret_cast<const uint8_t*>(text.data()), text.size())}));
  return std::vector<uint8_t>(d.begin(), d.end());
}

// Applies `m` unless it is applied already; refuses a newer database.
Status ApplyOne(Connection& connection, const Migration& m) {
  VIGIL_ASSIGN_OR_RETURN(Transaction tx, connection.Begin());
  const Param key[] = {Param::Int8(kMigrationLockKey)};
  VIGIL_RETURN_IF_ERROR(tx.Exec("SELECT pg_advisory_xact_lock($1)", key).status());
  VIGIL_RETURN_IF_ERROR(tx.Exec(kCreateMigrationsTable).status());
  VIGIL_ASSIGN_OR_RETURN(Rows applied,
                         tx.Exec("SELECT version, sha256 FROM schema_migrations ORDER BY version"));
  bool done = false;
  for (int i = 0; i < applied.size(); ++i) {
    VIGIL_ASSIGN_OR_RETURN(int64_t version, applied.Int8(i, 0));
    if (version > LatestSchemaVersion()) {
      return Status::Error(ErrorCode::kIncompatible,
                           "the database's schema is version " + std::to_string(version) +
                               ", newer than this binary knows (" +
                               std::to_string(LatestSchemaVersion()) + "): upgrade vigil");
    }
    if (version != m.version) continue;
    VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> recorded, applied.Bytea(i, 1));
    VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> ours, TextDigest(m.sql));
    if (recorded != ours) {
      return Status::Error(ErrorCode::kIncompatible,
                           "schema migration " + std::to_string(m.version) +
                               " was applied with other text than this binary's");
    }
    done = true;
  }
  if (!done) {
    VIGIL_RETURN_IF_ERROR(RunScript(tx, m.sql));
    VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> digest, TextDigest(m.sql));
    const Param row[] = {Param::Int8(m.version), Param::Text(m.name), Param::Bytea(digest)};
    VIGIL_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)", row)
            .status());
  }
  return tx.Commit();
}

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

int64_t LatestSchemaVersion() { return kMigrations.back().version; }

Status Migrate(Connection& connection, int64_t target) {
  if (target < 0 || target > LatestSchemaVersion()) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "no schema version " + std::to_string(target));
  }
  for (const Migration& m : kMigrations) {
    if (m.version > target) break;
    VIGIL_RETURN_IF_ERROR(ApplyOne(connection, m));
  }
  return Status::Ok();
}

Result<int64_t> SchemaVersion(Connection& connection) {
  VIGIL_ASSIGN_OR_RETURN(Rows rows,
                         connection.Exec("SELECT to_regclass('schema_migrations') IS NOT NULL", {},
                                         Retry::kOnceIfIdempotent));
  VIGIL_ASSIGN_OR_RETURN(bool exists, rows.Bool(0, 0));
  if (!exists) return int64_t{0};
  VIGIL_ASSIGN_OR_RETURN(Rows v, connection.Exec("SELECT max(version) FROM schema_migrations", {},
                                                 Retry::kOnceIfIdempotent));
  VIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> max, v.NullableInt8(0, 0));
  return max.value_or(0);
}

}  // namespace vigil::fleet
