// The fleet verifier's security regressions (an attacker review of
// vigil-verifier --database): each test is a reviewer's demonstration turned
// round to assert the secure outcome, on a real PostgreSQL 15 and a swtpm
// per node. Each failed on the code before its fix (see the commit that
// added it).
#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "fleet_test_node.h"
#include "pg_fixture.h"
#include "service.h"
#include "vigil/digest.h"
#include "vigil/fleet/store.h"

namespace vigil {
namespace {

class FleetSecurityTest : public testing::PostgresFixture {
 protected:
  void SetUp() override {
    PostgresFixture::SetUp();
    if (HasFatalFailure()) return;
    auto c = fleet::Connection::Open(server_.Options());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    db_.emplace(std::move(c).value());
  }
  void TearDown() override {
    db_.reset();
    PostgresFixture::TearDown();
  }

  verifier::Service Verifier(const std::string& name) {
    verifier::DatabaseOptions o;
    o.connect = server_.Options();
    o.name = name;
    o.deadline_s = 60;
    auto s = verifier::Service::OpenDatabase(o, NodePolicy());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }

  // One integer a query about `node` returns.
  int64_t Query(const char* sql, const std::string& node) {
    const Param p[] = {Param::Text(node)};
    auto rows = db_->Exec(sql, p, Retry::kOnceIfIdempotent);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok() || rows->size() != 1) return -1;
    auto n = rows->Int8(0, 0);
    return n.ok() ? *n : -1;
  }

  // An enrol/activate transport to `svc` (EK pinned).
  static std::pair<int, std::string> EnrolAt(verifier::Service& svc, const std::string& body) {
    verifier::EnrolOptions options;
    options.pin_ek = true;
    auto challenge = svc.Enrol(body, options);
    return challenge.ok() ? std::make_pair(200, *challenge)
                          : std::make_pair(400, challenge.status().ToString());
  }

  std::optional<fleet::Connection> db_;
};

// F1: an enrol overlapping a node's activation must not erase the activated
// node (no --re-enrol). The overlap is forced with a table lock holding the
// node's activation at its node_leases INSERT while a stranger re-sends the
// node's (public) enrolment request to another verifier.
TEST_F(FleetSecurityTest, EnrolRacingActivationLeavesTheActivatedNode) {
  verifier::Service a = Verifier("verifier-a");
  verifier::Service b = Verifier("verifier-b");
  SimNode node(0x77);
  ASSERT_TRUE(node.Start());
  std::string request;
  Status activated = Status::Error(ErrorCode::kInternal, "not run");
  Result<std::string> stranger = Status::Error(ErrorCode::kInternal, "not run");
  auto enrolled = node.EnrolWith([&](const std::string& op, const std::string& body) {
    if (op == "enrol") {
      request = body;
      return EnrolAt(a, body);
    }
    const auto j = nlohmann::json::parse(body);
    const std::string id = j.at("node");
    EXPECT_TRUE(db_->Exec("BEGIN").ok());
    EXPECT_TRUE(db_->Exec("LOCK TABLE node_leases IN SHARE MODE").ok());
    std::thread victim([&] { activated = a.Activate(id, j.at("secret").get<std::string>()); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::thread attacker([&] {
      verifier::EnrolOptions options;
      options.pin_ek = true;  // no --re-enrol
      stranger = b.Enrol(request, options);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE(db_->Exec("ROLLBACK").ok());
    victim.join();
    attacker.join();
    return std::make_pair(activated.ok() ? 200 : 400, activated.ToString());
  });
  EXPECT_TRUE(enrolled);
  EXPECT_EQ(stranger.status().code(), ErrorCode::kFailedPrecondition)
      << "the stranger's enrol was taken: " << stranger.status().ToString();
  EXPECT_EQ(Query("SELECT count(*) FROM node_state WHERE node_id = $1", node.id()), 1)
      << "the activated node's state was wiped without --re-enrol";
  EXPECT_EQ(Query("SELECT count(*) FROM nodes WHERE node_id = $1 AND activated_at IS NOT NULL",
                  node.id()),
            1);
  auto n = a.IssueNonce(node.id());
  EXPECT_TRUE(n.ok()) << "the node can still attest: " << n.status().ToString();
  if (n.ok()) {
    auto r = a.Verify(attest::SerializeEvidence(node.Answer(nlohmann::json::parse(*n))));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->trusted);
  }
}

// F2: the column a read-only audit role may read holds no usable secret:
// what nodes.credential_secret holds, sent as the answer, does not activate
// the node (and the column is not the TPM's secret).
TEST_F(FleetSecurityTest, CredentialColumnDoesNotActivateWithoutTheTpm) {
  verifier::Service a = Verifier("verifier-a");
  SimNode node(0x7a);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(db_->Exec("CREATE ROLE audit NOLOGIN").ok());
  ASSERT_TRUE(
      db_->Exec("GRANT SELECT ON nodes, node_state, evidence, verdicts, node_leases TO audit")
          .ok());
  std::string stored_hex;
  auto enrolled = node.EnrolWith([&](const std::string& op, const std::string& body) {
    if (op == "enrol") return EnrolAt(a, body);
    const auto j = nlohmann::json::parse(body);
    const std::string id = j.at("node");
    const Param p[] = {Param::Text(id)};
    EXPECT_TRUE(db_->Exec("SET ROLE audit").ok());
    auto rows = db_->Exec("SELECT credential_secret FROM nodes WHERE node_id = $1", p);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_TRUE(db_->Exec("RESET ROLE").ok());
    if (!rows.ok()) return std::make_pair(500, rows.status().ToString());
    stored_hex = crypto::ToHex(*rows->Bytea(0, 0));
    EXPECT_NE(stored_hex, j.at("secret").get<std::string>()) << "the secret is stored in clear";
    Status st = a.Activate(id, stored_hex);  // the TPM's answer is ignored
    return std::make_pair(st.ok() ? 200 : 400, st.ToString());
  });
  EXPECT_FALSE(enrolled) << "activated with what the audit role read";
  EXPECT_FALSE(stored_hex.empty());
  EXPECT_EQ(Query("SELECT count(*) FROM node_state WHERE node_id = $1", node.id()), 0);
}

}  // namespace
}  // namespace vigil
