// vigil_fleet against a real PostgreSQL 15 server (pg_fixture): libpq
// wrappers, schema migrations, the store's state, evidence and leases, a
// server restart and a crash mid-run, hostile input.
#include <gtest/gtest.h>
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "pg_fixture.h"
#include "vigil/attest/verifier.h"
#include "vigil/digest.h"
#include "vigil/fleet/migrations.h"
#include "vigil/fleet/pq.h"
#include "vigil/fleet/store.h"
#include "vigil/tpm_object.h"

namespace vigil::fleet {
namespace {

using testing::PostgresFixture;

// An ECC P-256 AK public area (well-formed; these tests store it, nothing
// verifies with it).
tpmobj::PublicArea MakeAk(uint8_t seed) {
  TPMT_PUBLIC pub{};
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                         TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  pub.unique.ecc.x.size = 32;
  pub.unique.ecc.y.size = 32;
  for (int i = 0; i < 32; ++i) {
    pub.unique.ecc.x.buffer[i] = static_cast<uint8_t>(seed + i);
    pub.unique.ecc.y.buffer[i] = static_cast<uint8_t>(seed * 3 + i);
  }
  std::vector<uint8_t> buf(sizeof(TPMT_PUBLIC));
  size_t off = 0;
  EXPECT_EQ(Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf.data(), buf.size(), &off), 0u);
  buf.resize(off);
  auto area = tpmobj::ParseTpmtPublic(buf);
  EXPECT_TRUE(area.ok()) << area.status().ToString();
  return area.ok() ? *area : tpmobj::PublicArea{};
}

std::string NodeId(int i) {
  char buf[80];
  std::snprintf(buf, sizeof(buf), "000b%060x", i);
  return buf;
}

NodeEnrolment Enrolment(const std::string& node) {
  NodeEnrolment e;
  e.node = node;
  e.ek_public = {0x00, 0x03, 0x01, 0x02, 0x03};
  e.ek_trust = "pinned";
  e.ak_public = tpmobj::MarshalTpm2bPublic(MakeAk(7));
  e.credential_secret = std::vector<uint8_t>(32, 0x5a);
  e.policy_version = 3;
  return e;
}

attest::NodeState InitialState(const std::string& node) {
  attest::NodeState s;
  s.node = node;
  s.ak = MakeAk(7);
  return s;
}

// A state one evidence later: a followed instance, a key, a clock.
attest::NodeState Advanced(attest::NodeState s, uint64_t step) {
  s.instance_id.assign(16, static_cast<uint8_t>(0xa0 + step));
  crypto::EcPoint key{};
  for (size_t i = 0; i < sizeof(key.x); ++i) key.x[i] = static_cast<uint8_t>(i + step);
  s.module_key = key;
  s.next_log_seq += 10 * step;
  s.anchor.last_seq += 7 * step;
  s.anchor.chain_head.fill(static_cast<uint8_t>(step));
  TPMS_CLOCK_INFO clock{};
  clock.clock = 1000 * step;
  clock.resetCount = 2;
  clock.restartCount = 1;
  clock.safe = 1;
  s.clock = clock;
  s.evidence_count += step;
  s.last_attested_unix = 1'700'000'000 + step;
  return s;
}

uint64_t NowUnix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class FleetTest : public PostgresFixture {
 protected:
  Store OpenStore() {
    auto store = Store::Open(server_.Options());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return std::move(store).value();
  }
  Connection Connect() {
    auto c = Connection::Open(server_.Options());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  // Enrolled and activated, state version 1.
  void AddNode(Store& store, const std::string& node, std::optional<uint64_t> deadline = {}) {
    ASSERT_TRUE(store.Enrol(Enrolment(node), false).ok());
    auto secret = store.TakeCredentialSecret(node);
    ASSERT_TRUE(secret.ok() && *secret);
    auto v = store.Activate(node, InitialState(node), deadline);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  int64_t Count(Connection& c, const char* sql, const std::string& node) {
    const Param p[] = {Param::Text(node)};
    auto rows = c.Exec(sql, p, Retry::kOnceIfIdempotent);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return -1;
    auto n = rows->Int8(0, 0);
    return n.ok() ? *n : -1;
  }
  static EvidenceRecord Evidence(const std::string& node, size_t body_bytes = 300) {
    EvidenceRecord e;
    e.node = node;
    e.body.resize(body_bytes);
    for (size_t i = 0; i < body_bytes; ++i) e.body[i] = static_cast<uint8_t>(i * 131 + 7);
    e.nonce.assign(32, 0x11);
    e.quote_attest = {0xff, 0x54, 0x43, 0x47, 0x00};
    e.quote_signature = {0x00, 0x18, 0x00};
    e.log_from_seq = 1;
    e.log_records = {0x00, 0x01, 0x00, 0x02};
    e.events = {};
    return e;
  }
  static VerdictRecord Verdict(bool trusted) {
    return VerdictRecord{trusted, trusted ? "{\"trusted\":true}" : "{\"trusted\":false}", 3,
                         "verifier-a"};
  }
};

// --- the fixture ---

TEST(PostgresServerTest, MissingPostgresIsAFailureNotASkip) {
  ::setenv("VIGIL_PG_BINDIR", "/nonexistent/postgresql/bin", 1);
  testing::PostgresServer server;
  const ::testing::AssertionResult started = server.Start();
  ::unsetenv("VIGIL_PG_BINDIR");
  EXPECT_FALSE(started);
  EXPECT_NE(std::string(started.message()).find("install postgresql-15"), std::string::npos)
      << started.message();
}

// --- libpq wrappers ---

TEST_F(FleetTest, TypedGettersAreBoundsAndTypeChecked) {
  Connection c = Connect();
  const uint8_t raw[] = {0x00, 0xff, 0x27, 0x5c};
  const Param p[] = {Param::Int8(-5), Param::Text("'); DROP TABLE x; --"), Param::Bytea(raw),
                     Param::Bool(true), Param::Null()};
  auto rows =
      c.Exec("SELECT $1::int8, $2::text, $3::bytea, $4::bool, $5::int8, 7::int4, -2::int2", p);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1);
  EXPECT_EQ(*rows->Int8(0, 0), -5);
  EXPECT_EQ(*rows->Text(0, 1), "'); DROP TABLE x; --");  // a value, never SQL
  EXPECT_EQ(*rows->Bytea(0, 2), std::vector<uint8_t>(std::begin(raw), std::end(raw)));
  EXPECT_TRUE(*rows->Bool(0, 3));
  EXPECT_EQ(*rows->Int8(0, 5), 7);
  EXPECT_EQ(*rows->Int8(0, 6), -2);
  EXPECT_FALSE(rows->NullableInt8(0, 4)->has_value());
  // NULL, wrong type, out of range: errors, not UB.
  EXPECT_EQ(rows->Int8(0, 4).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rows->Int8(0, 1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rows->Text(0, 0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(rows->Bytea(0, 3).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(rows->Int8(1, 0).ok());
  EXPECT_FALSE(rows->Int8(0, 7).ok());
  EXPECT_FALSE(rows->Int8(-1, 0).ok());
  EXPECT_FALSE(rows->Column("nope").ok());
  // The SQLSTATE is kept.
  auto bad = c.Exec("SELEC 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().origin(), ErrorOrigin::kPostgres);
  EXPECT_EQ(bad.status().sqlstate(), "42601");
  const Param nul[] = {Param::Text(std::string("a\0b", 3))};
  auto with_nul = c.Exec("SELECT $1::text", nul);
  ASSERT_FALSE(with_nul.ok());
  EXPECT_EQ(with_nul.status().sqlstate(), "22021");
  EXPECT_EQ(with_nul.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(FleetTest, TransactionRollsBackUnlessCommitted) {
  Connection c = Connect();
  ASSERT_TRUE(c.Exec("CREATE TABLE t (v bigint)").ok());
  {
    auto tx = c.Begin();
    ASSERT_TRUE(tx.ok());
    const Param p[] = {Param::Int8(1)};
    ASSERT_TRUE(tx->Exec("INSERT INTO t VALUES ($1)", p).ok());
    // A statement outside the transaction while it is open is refused.
    EXPECT_EQ(c.Exec("SELECT 1").status().code(), ErrorCode::kFailedPrecondition);
  }  // destroyed uncommitted: rolled back
  auto n = c.Exec("SELECT count(*) FROM t");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n->Int8(0, 0), 0);
  {
    auto tx = c.Begin();
    ASSERT_TRUE(tx.ok());
    const Param p[] = {Param::Int8(2)};
    ASSERT_TRUE(tx->Exec("INSERT INTO t VALUES ($1)", p).ok());
    // A failed statement poisons the transaction: COMMIT is refused.
    EXPECT_FALSE(tx->Exec("SELECT 1/0").ok());
    EXPECT_EQ(tx->Commit().code(), ErrorCode::kFailedPrecondition);
  }
  n = c.Exec("SELECT count(*) FROM t");
  EXPECT_EQ(*n->Int8(0, 0), 0);
}

// --- migrations ---

TEST_F(FleetTest, MigrationsApplyOnEmptyDatabaseAndAreIdempotent) {
  Connection c = Connect();
  EXPECT_EQ(*SchemaVersion(c), 0);
  ASSERT_TRUE(Migrate(c).ok());
  EXPECT_EQ(*SchemaVersion(c), LatestSchemaVersion());
  ASSERT_TRUE(Migrate(c).ok());
  auto rows = c.Exec("SELECT count(*) FROM schema_migrations");
  EXPECT_EQ(*rows->Int8(0, 0), static_cast<int64_t>(Migrations().size()));
  for (const char* table :
       {"nodes", "certified_keys", "node_state", "evidence", "verdicts", "node_leases"}) {
    const Param p[] = {Param::Text(table)};
    auto exists = c.Exec("SELECT to_regclass($1) IS NOT NULL", p);
    EXPECT_TRUE(*exists->Bool(0, 0)) << table;
  }
}

TEST_F(FleetTest, MigrationsUpgradeAnOlderSchemaInOrder) {
  Connection c = Connect();
  ASSERT_TRUE(Migrate(c, 1).ok());
  EXPECT_EQ(*SchemaVersion(c), 1);
  EXPECT_FALSE(*c.Exec("SELECT to_regclass('nonces') IS NOT NULL")->Bool(0, 0));
  // Data written under v1 stays through the upgrade.
  ASSERT_TRUE(c.Exec("INSERT INTO nodes (node_id, ek_public, ek_trust, ak_public, policy_version)"
                     " VALUES ('00aa00aa', '\\x01', 'pinned', '\\x02', 1)")
                  .ok());
  ASSERT_TRUE(Migrate(c).ok());
  EXPECT_EQ(*SchemaVersion(c), LatestSchemaVersion());
  EXPECT_TRUE(*c.Exec("SELECT to_regclass('nonces') IS NOT NULL")->Bool(0, 0));
  EXPECT_EQ(*c.Exec("SELECT count(*) FROM nodes")->Int8(0, 0), 1);
  // Migrations only go forward.
  ASSERT_TRUE(Migrate(c, 1).ok());
  EXPECT_EQ(*SchemaVersion(c), LatestSchemaVersion());
  EXPECT_EQ(Migrate(c, LatestSchemaVersion() + 1).code(), ErrorCode::kInvalidArgument);
}

TEST_F(FleetTest, ConcurrentMigrationsApplyEachOnce) {
  std::vector<Status> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      auto c = Connection::Open(server_.Options());
      results[i] = c.ok() ? Migrate(*c) : c.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  Connection c = Connect();
  EXPECT_EQ(*c.Exec("SELECT count(*) FROM schema_migrations")->Int8(0, 0),
            static_cast<int64_t>(Migrations().size()));
}

TEST_F(FleetTest, NewerSchemaIsRefused) {
  Connection c = Connect();
  ASSERT_TRUE(Migrate(c).ok());
  const Param p[] = {Param::Int8(LatestSchemaVersion() + 1)};
  ASSERT_TRUE(c.Exec("INSERT INTO schema_migrations (version, name, sha256)"
                     " VALUES ($1, 'from the future', '\\x00')",
                     p)
                  .ok());
  const Status st = Migrate(c);
  EXPECT_EQ(st.code(), ErrorCode::kIncompatible) << st.ToString();
  auto store = Store::Open(server_.Options());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), ErrorCode::kIncompatible);
}

TEST_F(FleetTest, EditedMigrationIsRefused) {
  Connection c = Connect();
  ASSERT_TRUE(Migrate(c).ok());
  ASSERT_TRUE(c.Exec("UPDATE schema_migrations SET sha256 = '\\x01' WHERE version = 1").ok());
  EXPECT_EQ(Migrate(c).code(), ErrorCode::kIncompatible);
}

// --- enrolment and state ---

TEST_F(FleetTest, EnrolmentActivationAndStateRoundTrip) {
  Store store = OpenStore();
  const std::string node = NodeId(1);
  ASSERT_TRUE(store.Enrol(Enrolment(node), false).ok());
  EXPECT_EQ(store.Enrol(Enrolment(node), false).code(), ErrorCode::kFailedPrecondition);
  auto record = store.GetNode(node);
  ASSERT_TRUE(record.ok() && *record);
  EXPECT_EQ((*record)->enrolment.ak_public, Enrolment(node).ak_public);
  EXPECT_FALSE((*record)->activated_unix);
  EXPECT_FALSE(store.LoadState(node)->has_value());
  // One try per challenge.
  auto secret = store.TakeCredentialSecret(node);
  ASSERT_TRUE(secret.ok() && *secret);
  const auto digest = *crypto::Sha256({Enrolment(node).credential_secret});
  EXPECT_EQ(**secret, std::vector<uint8_t>(digest.begin(), digest.end()))
      << "only the secret's SHA-256 is stored";
  EXPECT_FALSE(store.TakeCredentialSecret(node)->has_value());
  EXPECT_EQ(store.TakeCredentialSecret(NodeId(99)).status().code(), ErrorCode::kNotFound);

  ASSERT_EQ(*store.Activate(node, InitialState(node), NowUnix() + 60), 1);
  EXPECT_EQ(store.Activate(node, InitialState(node), {}).status().code(),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(store.Activate(NodeId(98), InitialState(NodeId(98)), {}).status().code(),
            ErrorCode::kNotFound);
  auto loaded = store.LoadState(node);
  ASSERT_TRUE(loaded.ok() && *loaded) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->version, 1);
  EXPECT_EQ(attest::SerializeNodeState((*loaded)->state),
            attest::SerializeNodeState(InitialState(node)));

  const attest::NodeState next = Advanced(InitialState(node), 1);
  auto v2 = store.SaveState(node, 1, next, NowUnix() + 120);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(*v2, 2);
  loaded = store.LoadState(node);
  ASSERT_TRUE(loaded.ok() && *loaded);
  EXPECT_EQ((*loaded)->version, 2);
  EXPECT_EQ(attest::SerializeNodeState((*loaded)->state), attest::SerializeNodeState(next));
  // The query columns follow the state.
  Connection c = Connect();
  const Param p[] = {Param::Text(node)};
  auto cols = c.Exec(
      "SELECT next_log_seq, chain_last_seq, tpm_clock, evidence_count,"
      " floor(extract(epoch from last_attested_at))::int8 FROM node_state"
      " WHERE node_id = $1",
      p);
  ASSERT_TRUE(cols.ok());
  EXPECT_EQ(*cols->Int8(0, 0), static_cast<int64_t>(next.next_log_seq));
  EXPECT_EQ(*cols->Int8(0, 1), static_cast<int64_t>(next.anchor.last_seq));
  EXPECT_EQ(*cols->Int8(0, 2), 1000);
  EXPECT_EQ(*cols->Int8(0, 3), 1);
  EXPECT_EQ(*cols->Int8(0, 4), 1'700'000'001);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM certified_keys WHERE node_id = $1", node), 1);

  // Re-enrolment drops what was followed, keeps the node.
  ASSERT_TRUE(store.Enrol(Enrolment(node), true).ok());
  EXPECT_FALSE(store.LoadState(node)->has_value());
  EXPECT_FALSE((*store.GetNode(node))->activated_unix);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM certified_keys WHERE node_id = $1", node), 0);
}

TEST_F(FleetTest, CompareAndSetRefusesAStaleWriter) {
  Store a = OpenStore();
  Store b = OpenStore();
  const std::string node = NodeId(2);
  AddNode(a, node);
  auto seen_a = a.LoadState(node);
  auto seen_b = b.LoadState(node);
  ASSERT_TRUE(seen_a.ok() && *seen_a && seen_b.ok() && *seen_b);
  ASSERT_EQ((*seen_a)->version, (*seen_b)->version);
  const attest::NodeState from_a = Advanced((*seen_a)->state, 1);
  const attest::NodeState from_b = Advanced((*seen_b)->state, 2);
  ASSERT_TRUE(a.SaveState(node, (*seen_a)->version, from_a, {}).ok());
  const auto stale = b.SaveState(node, (*seen_b)->version, from_b, {});
  EXPECT_EQ(stale.status().code(), ErrorCode::kFailedPrecondition);
  auto now = b.LoadState(node);
  EXPECT_EQ((*now)->version, 2);
  EXPECT_EQ(attest::SerializeNodeState((*now)->state), attest::SerializeNodeState(from_a));
  // A state of another node is refused.
  EXPECT_EQ(a.SaveState(node, 2, InitialState(NodeId(3)), {}).status().code(),
            ErrorCode::kInvalidArgument);
}

// --- evidence ---

TEST_F(FleetTest, EvidenceVerdictAndStateCommitTogether) {
  Store store = OpenStore();
  Connection c = Connect();
  const std::string node = NodeId(4);
  AddNode(store, node);
  const attest::NodeState next = Advanced(InitialState(node), 1);
  auto ok = store.AppendEvidence(Evidence(node), Verdict(true), StateAdvance{1, next, {}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->state_version, 2);
  // An untrusted verdict: evidence and verdict, no state step.
  auto refused = store.AppendEvidence(Evidence(node), Verdict(false), std::nullopt);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->state_version);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM evidence WHERE node_id = $1", node), 2);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM verdicts WHERE node_id = $1", node), 2);

  // The state step fails after the evidence row went in: neither stays.
  auto stale =
      store.AppendEvidence(Evidence(node), Verdict(true), StateAdvance{1, Advanced(next, 2), {}});
  EXPECT_EQ(stale.status().code(), ErrorCode::kFailedPrecondition);
  // The verdict fails after the evidence and the state step: none stays.
  VerdictRecord broken = Verdict(true);
  broken.result_json = std::string("{\"x\":\"\0\"}", 10);
  auto failed =
      store.AppendEvidence(Evidence(node), broken, StateAdvance{2, Advanced(next, 3), {}});
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().sqlstate(), "22021");
  EXPECT_EQ(Count(c, "SELECT count(*) FROM evidence WHERE node_id = $1", node), 2);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM verdicts WHERE node_id = $1", node), 2);
  auto state = store.LoadState(node);
  EXPECT_EQ((*state)->version, 2);
  EXPECT_EQ(attest::SerializeNodeState((*state)->state), attest::SerializeNodeState(next));

  auto stored = store.EvidenceBetween(node, 0, NowUnix() + 10, 100);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[0].evidence.body, Evidence(node).body);
  EXPECT_EQ((*stored)[0].trusted, std::optional<bool>(true));
  EXPECT_EQ((*stored)[1].trusted, std::optional<bool>(false));
}

TEST_F(FleetTest, HostileInputIsRefusedOrStoredIntact) {
  Store store = OpenStore();
  Connection c = Connect();
  for (const std::string& bad :
       {std::string(), std::string("abc"), std::string("../../etc/passwd"), std::string("zzzz"),
        std::string(133, 'a'), std::string("00'; DROP TABLE nodes; --"), std::string("00\0a", 4),
        std::string("0a0a\n")}) {
    EXPECT_EQ(store.Enrol(Enrolment(bad), false).code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(store.LoadState(bad).status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(store.AppendEvidence(Evidence(bad), Verdict(false), {}).status().code(),
              ErrorCode::kInvalidArgument);
  }
  // Past the API, the schema refuses it too.
  const Param p[] = {Param::Text("../x")};
  auto direct = c.Exec(
      "INSERT INTO nodes (node_id, ek_public, ek_trust, ak_public,"
      " policy_version) VALUES ($1, '\\x01', 'pinned', '\\x01', 1)",
      p);
  EXPECT_EQ(direct.status().sqlstate(), "23514");
  EXPECT_EQ(*c.Exec("SELECT count(*) FROM nodes")->Int8(0, 0), 0);

  // The longest id is fine, upper-case hex too.
  const std::string longest(132, 'F');
  AddNode(store, longest);
  EXPECT_TRUE(store.LoadState(longest)->has_value());

  // A 16 MiB body with every byte value: stored and read back intact.
  EvidenceRecord big = Evidence(longest, 16u << 20);
  for (size_t i = 0; i < 256; ++i) big.body[i] = static_cast<uint8_t>(i);
  auto appended = store.AppendEvidence(big, Verdict(false), {});
  ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  auto back = store.EvidenceBetween(longest, 0, NowUnix() + 10, 10);
  ASSERT_TRUE(back.ok() && back->size() == 1);
  EXPECT_TRUE((*back)[0].evidence.body == big.body);
  // Past the bound: refused before it reaches the server.
  EvidenceRecord huge = Evidence(longest, kMaxEvidenceBytes + 1);
  EXPECT_EQ(store.AppendEvidence(huge, Verdict(false), {}).status().code(),
            ErrorCode::kInvalidArgument);
  // A uint64 past bigint is refused, not wrapped.
  attest::NodeState wild = InitialState(longest);
  wild.next_log_seq = UINT64_MAX;
  EXPECT_EQ(store.SaveState(longest, 1, wild, {}).status().code(), ErrorCode::kInvalidArgument);
  // A verifier name out of bounds.
  VerdictRecord nameless = Verdict(false);
  nameless.verifier = "";
  EXPECT_EQ(store.AppendEvidence(Evidence(longest), nameless, {}).status().code(),
            ErrorCode::kInvalidArgument);
}

// --- nonces ---

TEST_F(FleetTest, NoncesAreConsumedOnceAcrossVerifiers) {
  Store a = OpenStore();
  Store b = OpenStore();
  const std::string node = NodeId(60);
  AddNode(a, node);
  const uint64_t now = NowUnix();
  auto nonce = [](uint8_t v) { return std::vector<uint8_t>(32, v); };
  ASSERT_TRUE(a.IssueNonce(node, nonce(1), now, now + 60, 16).ok());
  // Issued by A, answered at B; once only.
  EXPECT_EQ(*b.ConsumeNonce(node, nonce(1)), std::optional<uint64_t>(now + 60));
  EXPECT_FALSE(a.ConsumeNonce(node, nonce(1))->has_value());
  EXPECT_FALSE(a.ConsumeNonce(NodeId(61), nonce(1))->has_value());
  // At most max_open: the oldest gives way.
  for (uint8_t i = 2; i <= 5; ++i) {
    ASSERT_TRUE(a.IssueNonce(node, nonce(i), now, now + 60 + i, 3).ok());
  }
  EXPECT_FALSE(a.ConsumeNonce(node, nonce(2))->has_value());
  EXPECT_TRUE(a.ConsumeNonce(node, nonce(3))->has_value());
  EXPECT_TRUE(a.ConsumeNonce(node, nonce(5))->has_value());
  // Expired ones are dropped at the next issue; an expired one not yet
  // dropped is still returned (with its expiry: the caller decides).
  ASSERT_TRUE(a.IssueNonce(node, nonce(6), now, now - 1, 16).ok());
  ASSERT_TRUE(a.IssueNonce(node, nonce(7), now, now + 60, 16).ok());
  EXPECT_FALSE(a.ConsumeNonce(node, nonce(6))->has_value());
  ASSERT_TRUE(a.IssueNonce(node, nonce(8), now, now - 1, 16).ok());
  EXPECT_EQ(*a.ConsumeNonce(node, nonce(8)), std::optional<uint64_t>(now - 1));
  // Refusals.
  EXPECT_EQ(a.IssueNonce(NodeId(62), nonce(9), now, now + 60, 16).code(), ErrorCode::kNotFound);
  EXPECT_EQ(a.IssueNonce(node, std::vector<uint8_t>(8, 1), now, now + 60, 16).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(a.ConsumeNonce(node, std::vector<uint8_t>(100000, 1))->has_value());
  // Re-enrolment drops the open nonces.
  ASSERT_TRUE(a.IssueNonce(node, nonce(10), now, now + 60, 16).ok());
  ASSERT_TRUE(a.Enrol(Enrolment(node), true).ok());
  EXPECT_FALSE(a.ConsumeNonce(node, nonce(10))->has_value());
}

// --- leases and liveness ---

TEST_F(FleetTest, TwoClaimersNeverGetTheSameNode) {
  Store a = OpenStore();
  Store b = OpenStore();
  for (int i = 0; i < 6; ++i) AddNode(a, NodeId(10 + i));
  // B must not wait on A's locks: a blocked claim fails instead of hanging.
  ASSERT_TRUE(b.connection().Exec("SET statement_timeout = 5000").ok());
  {
    // A claims 3 and has not committed yet; B claims meanwhile.
    auto tx = a.connection().Begin();
    ASSERT_TRUE(tx.ok());
    auto mine = Store::ClaimDueNodes(*tx, "A", std::chrono::seconds(60), 3);
    ASSERT_TRUE(mine.ok()) << mine.status().ToString();
    ASSERT_EQ(mine->size(), 3u);
    auto theirs = b.ClaimDueNodes("B", std::chrono::seconds(60), 10);
    ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
    ASSERT_EQ(theirs->size(), 3u);
    std::set<std::string> all(mine->begin(), mine->end());
    all.insert(theirs->begin(), theirs->end());
    EXPECT_EQ(all.size(), 6u);
    ASSERT_TRUE(tx->Commit().ok());
    // Committed: B renews its own, gets none of A's.
    auto again = b.ClaimDueNodes("B", std::chrono::seconds(60), 10);
    EXPECT_EQ(*again, *theirs);
    auto a_again = a.ClaimDueNodes("A", std::chrono::seconds(60), 10);
    EXPECT_EQ(*a_again, *mine);
    EXPECT_EQ(*a.LeaseOwner((*mine)[0]), std::optional<std::string>("A"));
  }

  // Two threads racing, one node at a time, until none is left.
  for (int i = 0; i < 40; ++i) AddNode(a, NodeId(100 + i));
  std::vector<std::string> got[2];
  std::vector<Status> errors(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto s = Store::Open(server_.Options());
      if (!s.ok()) {
        errors[t] = s.status();
        return;
      }
      // A new owner name per claim: it has no lease to renew, so each
      // claim can only return free nodes.
      for (int round = 0;; ++round) {
        const std::string owner = (t == 0 ? "C" : "D") + std::to_string(round);
        auto claimed = s->ClaimDueNodes(owner, std::chrono::seconds(60), 1);
        if (!claimed.ok()) {
          errors[t] = claimed.status();
          return;
        }
        if (claimed->empty()) return;
        got[t].insert(got[t].end(), claimed->begin(), claimed->end());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : errors) EXPECT_TRUE(s.ok()) << s.ToString();
  std::set<std::string> union_set(got[0].begin(), got[0].end());
  EXPECT_EQ(union_set.size(), got[0].size()) << "C claimed one node twice";
  for (const auto& n : got[1]) EXPECT_TRUE(union_set.insert(n).second) << "claimed twice: " << n;
  EXPECT_EQ(union_set.size(), 40u);
  std::fprintf(stderr, "[lease race] C got %zu, D got %zu\n", got[0].size(), got[1].size());
}

TEST_F(FleetTest, AnExpiredLeaseIsTakenOver) {
  Store a = OpenStore();
  Store b = OpenStore();
  const std::string node = NodeId(20);
  AddNode(a, node);
  // Long enough that B's claim right after cannot miss it on a loaded machine.
  ASSERT_EQ(a.ClaimDueNodes("A", std::chrono::milliseconds(1500), 10)->size(), 1u);
  EXPECT_TRUE(b.ClaimDueNodes("B", std::chrono::seconds(60), 10)->empty());
  EXPECT_EQ(*b.LeaseOwner(node), std::optional<std::string>("A"));
  // A "dies": its lease runs out on the database's clock.
  const auto t0 = std::chrono::steady_clock::now();
  while (b.LeaseOwner(node)->has_value() &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(b.LeaseOwner(node)->has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  ASSERT_EQ(*b.ClaimDueNodes("B", std::chrono::seconds(60), 10), std::vector<std::string>{node});
  EXPECT_EQ(*b.LeaseOwner(node), std::optional<std::string>("B"));
  // A back from the dead neither reclaims it nor releases B's lease.
  EXPECT_TRUE(a.ClaimDueNodes("A", std::chrono::seconds(60), 10)->empty());
  ASSERT_TRUE(a.ReleaseLease("A", node).ok());
  EXPECT_EQ(*b.LeaseOwner(node), std::optional<std::string>("B"));
  ASSERT_TRUE(b.ReleaseLease("B", node).ok());
  EXPECT_FALSE(b.LeaseOwner(node)->has_value());
  EXPECT_EQ(*a.ClaimDueNodes("A", std::chrono::seconds(60), 10), std::vector<std::string>{node});
}

TEST_F(FleetTest, OverdueNodesAndActivatedNodes) {
  Store store = OpenStore();
  const uint64_t now = NowUnix();
  AddNode(store, NodeId(30), now - 100);
  AddNode(store, NodeId(31), now + 100);
  AddNode(store, NodeId(32));  // no deadline yet
  AddNode(store, NodeId(33), now - 50);
  ASSERT_TRUE(store.SaveState(NodeId(33), 1, Advanced(InitialState(NodeId(33)), 1), now - 50).ok());
  auto overdue = store.OverdueNodes(now);
  ASSERT_TRUE(overdue.ok()) << overdue.status().ToString();
  ASSERT_EQ(overdue->size(), 2u);
  EXPECT_EQ((*overdue)[0].node, NodeId(30));
  EXPECT_EQ((*overdue)[0].deadline_unix, now - 100);
  EXPECT_EQ((*overdue)[0].last_attested_unix, 0u);
  EXPECT_EQ((*overdue)[1].node, NodeId(33));
  EXPECT_EQ((*overdue)[1].last_attested_unix, 1'700'000'001u);
  EXPECT_EQ(store.OverdueNodes(now + 200)->size(), 3u);
  // Claims go most urgent first.
  EXPECT_EQ(*store.ClaimDueNodes("A", std::chrono::seconds(60), 1),
            std::vector<std::string>{NodeId(32)});  // NULLS FIRST: never given a deadline
  EXPECT_EQ(*store.ClaimDueNodes("B", std::chrono::seconds(60), 1),
            std::vector<std::string>{NodeId(30)});
  auto activated = store.ActivatedNodes();
  ASSERT_TRUE(activated.ok());
  ASSERT_EQ(activated->size(), 4u);
  EXPECT_EQ((*activated)[3], std::make_pair(NodeId(33), uint64_t{1'700'000'001}));
}

// --- the server restarts ---

TEST_F(FleetTest, ServerRestartMidRunLosesNothingAndReconnects) {
  Store store = OpenStore();
  const std::string node = NodeId(40);
  AddNode(store, node);
  const attest::NodeState s2 = Advanced(InitialState(node), 1);
  ASSERT_TRUE(store.AppendEvidence(Evidence(node), Verdict(true), StateAdvance{1, s2, {}}).ok());

  // A nonce issued before the restart, consumed through a connection that
  // has not noticed it yet.
  Store consumer = OpenStore();
  const std::vector<uint8_t> nonce(32, 0x42);
  ASSERT_TRUE(store.IssueNonce(node, nonce, NowUnix(), NowUnix() + 60, 16).ok());

  // A transaction open across the restart is gone; nothing of it lands.
  Connection c = Connect();
  {
    auto tx = c.Begin();
    ASSERT_TRUE(tx.ok());
    const Param p[] = {Param::Text(node)};
    ASSERT_TRUE(tx->Exec("UPDATE node_state SET evidence_count = 999 WHERE node_id = $1", p).ok());
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(server_.Restart());
    std::fprintf(stderr, "[pg] restart %.3f s\n",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    auto after = tx->Exec("SELECT 1");
    EXPECT_EQ(after.status().code(), ErrorCode::kUnavailable) << after.status().ToString();
    EXPECT_EQ(tx->Commit().code(), ErrorCode::kUnavailable);
  }
  // A DELETE is not sent twice: the first try fails clearly, and since it
  // never reached the server the nonce is still there for the next.
  auto consumed = consumer.ConsumeNonce(node, nonce);
  ASSERT_FALSE(consumed.ok());
  EXPECT_EQ(consumed.status().code(), ErrorCode::kUnavailable) << consumed.status().ToString();
  consumed = consumer.ConsumeNonce(node, nonce);
  ASSERT_TRUE(consumed.ok()) << consumed.status().ToString();
  EXPECT_TRUE(consumed->has_value());
  // The store's next calls reconnect on their own.
  auto loaded = store.LoadState(node);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->version, 2);
  EXPECT_EQ(attest::SerializeNodeState((*loaded)->state), attest::SerializeNodeState(s2));
  const attest::NodeState s3 = Advanced(s2, 2);
  ASSERT_TRUE(store.AppendEvidence(Evidence(node), Verdict(true), StateAdvance{2, s3, {}}).ok());
  ASSERT_TRUE(store.SaveState(node, 3, Advanced(s3, 3), {}).ok());

  // A crash (no checkpoint): committed work survives recovery; while the
  // server is down, calls fail clearly.
  ASSERT_TRUE(server_.Crash());
  auto down = store.LoadState(node);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(down.status().origin(), ErrorOrigin::kPostgres);
  EXPECT_EQ(down.status().sqlstate().substr(0, 2), "08") << down.status().ToString();
  EXPECT_EQ(store.SaveState(node, 4, Advanced(s3, 4), {}).status().code(), ErrorCode::kUnavailable);
  ASSERT_TRUE(server_.Resume());
  loaded = store.LoadState(node);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->version, 4);
  EXPECT_EQ(attest::SerializeNodeState((*loaded)->state),
            attest::SerializeNodeState(Advanced(s3, 3)));
  auto evidence = store.EvidenceBetween(node, 0, NowUnix() + 10, 10);
  ASSERT_TRUE(evidence.ok());
  EXPECT_EQ(evidence->size(), 2u);
}

TEST_F(FleetTest, ABackendKilledMidTransactionCommitsNothing) {
  Store store = OpenStore();
  Connection killer = Connect();
  const std::string node = NodeId(50);
  AddNode(store, node);
  auto tx = store.connection().Begin();
  ASSERT_TRUE(tx.ok());
  const Param p[] = {Param::Text(node)};
  ASSERT_TRUE(tx->Exec("UPDATE node_state SET version = 77 WHERE node_id = $1", p).ok());
  const Param pid[] = {Param::Int8(store.connection().backend_pid())};
  auto killed = killer.Exec("SELECT pg_terminate_backend($1::int4)", pid);
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  EXPECT_FALSE(tx->Exec("SELECT 1").ok());
  EXPECT_FALSE(tx->Commit().ok());
  auto loaded = store.LoadState(node);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->version, 1);
}

}  // namespace
}  // namespace vigil::fleet
