// The fleet verifier (vigil-verifier --database): verifier::Service on a real
// PostgreSQL 15 (pg_fixture), shared by several verifier instances, deciding
// real evidence: each node is its own swtpm (EK, AK enrolled through the
// service, quotes of PCR 10) with the module's checkpoints signed by a TPM
// key the AK certifies, as in attest_verifier_test.cc. The faults of issue
// #15: the database restarting mid-run, node A's evidence sent as node B's,
// a duplicate, clock skew and an old nonce, a node going offline, a verifier
// killed mid-transaction; and the lease take-over between two verifiers.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "attest_test_util.h"
#include "audit.h"
#include "dispatch.h"
#include "fleet_test_node.h"
#include "fleet_watch.h"
#include "pg_fixture.h"
#include "service.h"
#include "swtpm_fixture.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/attest/policy.h"
#include "vigil/attest/verifier.h"
#include "vigil/attest_tpm/enrolment.h"
#include "vigil/attest_tpm/key_certification.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/digest.h"
#include "vigil/fleet/store.h"
#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "vigil/tpm.h"

namespace vigil {
namespace {

using attest::AttestationResult;
using attest::Evidence;
using fleet::Param;
using fleet::Retry;
using testing::Marshal;
using Clock = std::chrono::steady_clock;

// Expects an untrusted result naming `why` in one of its reasons.
void ExpectRefused(const AttestationResult& r, const std::string& why) {
  EXPECT_FALSE(r.trusted) << why;
  std::string all;
  for (const std::string& reason : r.reasons) all += reason + "\n";
  EXPECT_NE(all.find(why), std::string::npos) << "reasons:\n" << all;
}

class FleetVerifierTest : public testing::PostgresFixture {
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

  verifier::Service Verifier(const std::string& name, uint64_t deadline_s = 60,
                             attest::Policy policy = NodePolicy()) {
    verifier::DatabaseOptions o;
    o.connect = server_.Options();
    o.name = name;
    o.deadline_s = deadline_s;
    auto s = verifier::Service::OpenDatabase(o, std::move(policy));
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
  int64_t EvidenceRows(const std::string& node) {
    return Query("SELECT count(*) FROM evidence WHERE node_id = $1", node);
  }
  int64_t Verdicts(const std::string& node, bool trusted) {
    return Query(trusted ? "SELECT count(*) FROM verdicts WHERE node_id = $1 AND trusted"
                         : "SELECT count(*) FROM verdicts WHERE node_id = $1 AND NOT trusted",
                 node);
  }
  int64_t Version(const std::string& node) {
    return Query("SELECT version FROM node_state WHERE node_id = $1", node);
  }
  int64_t OpenNonces(const std::string& node) {
    return Query("SELECT count(*) FROM nonces WHERE node_id = $1", node);
  }
  // Evidence rows without a verdict, verdicts without evidence, trusted
  // verdicts whose state version is not the node's history: a half-applied
  // AppendEvidence would show here.
  int64_t Orphans(const std::string& node) {
    return Query(
        "SELECT (SELECT count(*) FROM evidence e WHERE e.node_id = $1 AND NOT EXISTS"
        " (SELECT 1 FROM verdicts v WHERE v.evidence_id = e.evidence_id))"
        " + (SELECT count(*) FROM verdicts v WHERE v.node_id = $1 AND v.trusted"
        " AND v.state_version IS NULL)",
        node);
  }
  uint64_t DatabaseNow() {
    auto rows = db_->Exec("SELECT floor(extract(epoch from clock_timestamp()))::int8", {},
                          Retry::kOnceIfIdempotent);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? static_cast<uint64_t>(*rows->Int8(0, 0)) : 0;
  }

  std::optional<fleet::Connection> db_;
};

// Reads what a Monitor printed to `f` so far.
std::string Printed(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fseek(f, 0, SEEK_END);
  return out;
}

size_t CountOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Node asks verifier A, answers verifier B; every evidence is kept with its
// verdict and the state step; a verifier deciding on a state another one
// advanced meanwhile (a stale writer) gets kFailedPrecondition (409), its
// evidence recorded as refused, and the node's retry is trusted.
TEST_F(FleetVerifierTest, TwoVerifiersShareOneNodeAndAStaleWriterIsRefused) {
  verifier::Service a = Verifier("verifier-a");
  verifier::Service b = Verifier("verifier-b");
  SimNode node(0x5a);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(a));
  EXPECT_EQ(Version(node.id()), 1);
  EXPECT_EQ(b.Activate(node.id(), "00").code(), ErrorCode::kFailedPrecondition)
      << "the challenge was answered (at A): none is open at B either";

  // Asked at A, answered at B.
  const Evidence first = node.Next(a);
  auto r = b.Verify(attest::SerializeEvidence(first));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->trusted) << attest::ResultJson(*r);
  EXPECT_EQ(Version(node.id()), 2);
  EXPECT_EQ(EvidenceRows(node.id()), 1);
  EXPECT_EQ(Verdicts(node.id(), true), 1);
  EXPECT_EQ(Query("SELECT count(*) FROM verdicts WHERE node_id = $1 AND verifier = 'verifier-b'"
                  " AND state_version = 2",
                  node.id()),
            1);
  EXPECT_EQ(Query("SELECT count(*) FROM certified_keys WHERE node_id = $1", node.id()), 1)
      << "the module key the state follows";

  // Two nonces for one state: evidence for each, made from the same point.
  node.Work(1);
  const Evidence at_a = node.Next(a);
  const Evidence at_b = node.Next(b);
  // B loads version 2, then waits on its nonce row (locked here) while A
  // decides and commits version 3; then B's decision is on a stale state.
  auto locker = fleet::Connection::Open(server_.Options());
  ASSERT_TRUE(locker.ok());
  auto lock_tx = locker->Begin();
  ASSERT_TRUE(lock_tx.ok());
  {
    const Param p[] = {Param::Text(node.id()), Param::Bytea(at_b.nonce)};
    ASSERT_TRUE(
        lock_tx->Exec("SELECT 1 FROM nonces WHERE node_id = $1 AND nonce = $2 FOR UPDATE", p).ok());
  }
  Result<AttestationResult> stale = Status::Error(ErrorCode::kInternal, "not run");
  std::thread b_thread([&] { stale = b.Verify(attest::SerializeEvidence(at_b)); });
  // Until B waits for the lock (pg_stat_activity).
  for (int i = 0; i < 200; ++i) {
    auto waiting =
        db_->Exec("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'", {});
    if (waiting.ok() && *waiting->Int8(0, 0) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  auto ra = a.Verify(attest::SerializeEvidence(at_a));
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  EXPECT_TRUE(ra->trusted) << attest::ResultJson(*ra);
  EXPECT_EQ(Version(node.id()), 3);
  ASSERT_TRUE(lock_tx->Commit().ok());
  b_thread.join();
  ASSERT_FALSE(stale.ok()) << "B decided on version 2 after A wrote version 3";
  EXPECT_EQ(stale.status().code(), ErrorCode::kFailedPrecondition) << stale.status().ToString();
  EXPECT_EQ(verifier::HttpStatus(stale.status()), 409);
  EXPECT_EQ(Version(node.id()), 3) << "the stale writer advanced nothing";
  EXPECT_EQ(EvidenceRows(node.id()), 3);
  EXPECT_EQ(Verdicts(node.id(), true), 2);
  EXPECT_EQ(Verdicts(node.id(), false), 1) << "the stale decision is kept, refused";
  EXPECT_EQ(OpenNonces(node.id()), 0);
  // The node retries with a new nonce (at B): trusted, from version 3.
  node.Work(1);
  auto retry = b.Verify(attest::SerializeEvidence(node.Next(b)));
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_TRUE(retry->trusted) << attest::ResultJson(*retry);
  EXPECT_EQ(Version(node.id()), 4);
  EXPECT_EQ(Orphans(node.id()), 0);

  // Per verdict: a trusted round through the database (nonce + verify),
  // against the decision alone.
  constexpr int kRounds = 10;
  double db_ms = 0, decide_ms = 0;
  for (int i = 0; i < kRounds; ++i) {
    node.Work(1);
    const Evidence ev = node.Next(a);
    const std::string body = attest::SerializeEvidence(ev);
    auto state = fleet::Store::Open(server_.Options());
    ASSERT_TRUE(state.ok());
    auto loaded = state->LoadState(node.id());
    ASSERT_TRUE(loaded.ok() && *loaded);
    auto t0 = Clock::now();
    const AttestationResult alone = verifier::DecideEvidence(NodePolicy(), (*loaded)->state, ev,
                                                             DatabaseNow() + 60, DatabaseNow());
    auto t1 = Clock::now();
    auto decided = a.Verify(body);
    auto t2 = Clock::now();
    ASSERT_TRUE(decided.ok() && decided->trusted && alone.trusted);
    decide_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
    db_ms += std::chrono::duration<double, std::milli>(t2 - t1).count();
  }
  std::printf(
      "per verdict: %.2f ms through the database (load, nonce, decide, one transaction), "
      "%.2f ms the decision alone (mean of %d)\n",
      db_ms / kRounds, decide_ms / kRounds, kRounds);
  RecordProperty("verdict_ms_database", std::to_string(db_ms / kRounds));
  RecordProperty("verdict_ms_decision", std::to_string(decide_ms / kRounds));
  EXPECT_EQ(Version(node.id()), 4 + kRounds);
}

// The database restarts with a nonce open, and crashes: the nonce and
// everything committed survive, a verification during the outage fails
// with kUnavailable and records nothing, and the same evidence is trusted
// once the server is back (the connection is reopened).
TEST_F(FleetVerifierTest, DatabaseRestartMidRunLosesNothingAndVerificationResumes) {
  verifier::Service v = Verifier("verifier-a");
  SimNode node(0x21);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(v));
  auto first = v.Verify(attest::SerializeEvidence(node.Next(v)));
  ASSERT_TRUE(first.ok() && first->trusted);

  // A nonce issued, then the server restarts (fast stop, start).
  node.Work(1);
  const Evidence pending = node.Next(v);
  ASSERT_TRUE(server_.Restart());
  auto after_restart = v.Verify(attest::SerializeEvidence(pending));
  ASSERT_TRUE(after_restart.ok()) << after_restart.status().ToString();
  EXPECT_TRUE(after_restart->trusted) << attest::ResultJson(*after_restart);

  // A nonce issued, the server crashes (no checkpoint); evidence sent while
  // it is down fails and leaves nothing; after recovery it is trusted.
  node.Work(1);
  const Evidence during = node.Next(v);
  const std::string body = attest::SerializeEvidence(during);
  ASSERT_TRUE(server_.Crash());
  auto down = v.Verify(body);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), ErrorCode::kUnavailable) << down.status().ToString();
  EXPECT_EQ(verifier::HttpStatus(down.status()), 500);
  ASSERT_TRUE(server_.Resume());
  auto resumed = v.Verify(body);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_TRUE(resumed->trusted) << attest::ResultJson(*resumed);

  ASSERT_TRUE(db_->Reconnect().ok());
  EXPECT_EQ(EvidenceRows(node.id()), 3);
  EXPECT_EQ(Verdicts(node.id(), true), 3);
  EXPECT_EQ(Version(node.id()), 4);
  EXPECT_EQ(Orphans(node.id()), 0);
}

// Node A's TPM answers node B's nonce and the evidence names node B: the
// quote is not by B's AK. Refused, recorded under B as refused; neither
// node's state moves, and B's own evidence is trusted after.
TEST_F(FleetVerifierTest, NodeAsEvidenceSubmittedAsNodeBIsRefusedAndRecorded) {
  verifier::Service v = Verifier("verifier-a");
  SimNode a(0x31), b(0x32);
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  ASSERT_TRUE(a.Enrol(v));
  ASSERT_TRUE(b.Enrol(v));
  ASSERT_NE(a.id(), b.id());

  auto issued = v.IssueNonce(b.id());
  ASSERT_TRUE(issued.ok());
  Evidence forged = a.Answer(nlohmann::json::parse(*issued));
  forged.node = b.id();
  auto r = v.Verify(attest::SerializeEvidence(forged));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->trusted) << attest::ResultJson(*r);
  EXPECT_FALSE(r->reasons.empty());
  EXPECT_EQ(EvidenceRows(b.id()), 1);
  EXPECT_EQ(Verdicts(b.id(), false), 1);
  EXPECT_EQ(Verdicts(b.id(), true), 0);
  EXPECT_EQ(Version(b.id()), 1);
  EXPECT_EQ(EvidenceRows(a.id()), 0);
  EXPECT_EQ(Version(a.id()), 1);

  auto honest = v.Verify(attest::SerializeEvidence(b.Next(v)));
  ASSERT_TRUE(honest.ok());
  EXPECT_TRUE(honest->trusted) << attest::ResultJson(*honest);
  EXPECT_EQ(Version(b.id()), 2);
}

// The same evidence twice (to the same verifier, or to another): the second
// finds its nonce consumed, is refused and recorded; the state advanced once.
TEST_F(FleetVerifierTest, ADuplicateSubmissionIsRefusedAndAdvancesNothingTwice) {
  verifier::Service a = Verifier("verifier-a");
  verifier::Service b = Verifier("verifier-b");
  SimNode node(0x41);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(a));
  const std::string body = attest::SerializeEvidence(node.Next(a));
  auto once = a.Verify(body);
  ASSERT_TRUE(once.ok() && once->trusted);
  for (verifier::Service* v : {&a, &b}) {
    auto again = v->Verify(body);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    ExpectRefused(*again, "already answered");
  }
  EXPECT_EQ(Version(node.id()), 2) << "advanced once";
  EXPECT_EQ(EvidenceRows(node.id()), 3);
  EXPECT_EQ(Verdicts(node.id(), true), 1);
  EXPECT_EQ(Verdicts(node.id(), false), 2);
  EXPECT_EQ(Query("SELECT count(DISTINCT body_sha256) FROM evidence WHERE node_id = $1", node.id()),
            1)
      << "one document, three receipts";
}

// Time in the database backend is the database's: a nonce's expiry and a
// node's deadline are stamped on its clock, whichever verifier issues or
// decides (their own clocks take no part), and leases end on it. A nonce
// stamped by a verifier whose clock is an hour slow is expired everywhere;
// evidence answering a nonce after its TTL is refused as stale, recorded,
// and its nonce gone.
TEST_F(FleetVerifierTest, ClockSkewTimeIsTheDatabasesAndAnOldNonceExpires) {
  attest::Policy short_ttl = NodePolicy();
  short_ttl.nonce_ttl_seconds = 3;
  verifier::Service a = Verifier("verifier-a", /*deadline_s=*/30, short_ttl);
  verifier::Service b = Verifier("verifier-b", /*deadline_s=*/30, short_ttl);
  SimNode node(0x51);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(a));

  // The nonce's expiry is the database's now + TTL.
  auto issued = a.IssueNonce(node.id());
  ASSERT_TRUE(issued.ok());
  const uint64_t now = DatabaseNow();
  const auto n = nlohmann::json::parse(*issued);
  EXPECT_GE(n.at("expires_unix").get<uint64_t>(), now + 3 - 1);
  EXPECT_LE(n.at("expires_unix").get<uint64_t>(), now + 3);
  auto trusted = b.Verify(attest::SerializeEvidence(node.Answer(n)));
  ASSERT_TRUE(trusted.ok() && trusted->trusted);
  // The deadline: when the nonce was issued (database clock) + 30 s.
  const int64_t deadline =
      Query("SELECT floor(extract(epoch from deadline))::int8 FROM node_state WHERE node_id = $1",
            node.id());
  EXPECT_GE(deadline, static_cast<int64_t>(now + 30 - 2));
  EXPECT_LE(deadline, static_cast<int64_t>(now + 30));

  // A verifier with its clock an hour slow writes a nonce through the store
  // on its own clock: it expired an hour ago on the database's.
  {
    auto skewed = fleet::Store::Open(server_.Options());
    ASSERT_TRUE(skewed.ok());
    const uint64_t slow = now - 3600;
    node.Work(1);
    const std::vector<uint8_t> nonce = Random(32);
    ASSERT_TRUE(skewed->IssueNonce(node.id(), nonce, slow, slow + 2, 16).ok());
    auto state = skewed->LoadState(node.id());
    ASSERT_TRUE(state.ok() && *state);
    nlohmann::json reply = nlohmann::json::parse(
        verifier::NonceReplyJson(node.id(), (*state)->state, nonce, slow + 2));
    auto stale = a.Verify(attest::SerializeEvidence(node.Answer(reply)));
    ASSERT_TRUE(stale.ok()) << stale.status().ToString();
    ExpectRefused(*stale, "expired");
  }

  // An honest nonce answered after its TTL.
  node.Work(1);
  const Evidence late = node.Next(a);
  std::this_thread::sleep_for(std::chrono::milliseconds(4100));
  auto expired = b.Verify(attest::SerializeEvidence(late));
  ASSERT_TRUE(expired.ok()) << expired.status().ToString();
  ExpectRefused(*expired, "nonce: expired");
  EXPECT_EQ(OpenNonces(node.id()), 0) << "an answer consumes its nonce either way";
  EXPECT_EQ(Version(node.id()), 2);
  EXPECT_EQ(Verdicts(node.id(), false), 2);

  // Leases end on the database's clock: a 1 s lease is held for ~1 s.
  verifier::FleetWatchOptions wo;
  wo.name = "verifier-a";
  wo.lease = std::chrono::milliseconds(1000);
  wo.interval = std::chrono::milliseconds(200);
  auto wa = verifier::FleetWatch::Open(server_.Options(), wo, nullptr);
  wo.name = "verifier-b";
  auto wb = verifier::FleetWatch::Open(server_.Options(), wo, nullptr);
  ASSERT_TRUE(wa.ok() && wb.ok());
  ASSERT_EQ(wa->Step()->size(), 1u);
  EXPECT_EQ(wb->Step()->size(), 0u) << "held by A";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(wb->Step()->size(), 1u) << "A's lease ended on the database's clock";
}

// A node that stops sending evidence: once its stored deadline passes (the
// database's clock), the verifier holding its lease prints one "overdue"
// line; a verifier started afterwards knows it from the database at its
// first round; trusted evidence (to any verifier) clears it with an
// "attested" line.
TEST_F(FleetVerifierTest, ANodeGoingOfflineIsOverdueAndClearedOnReturn) {
  verifier::Service v = Verifier("verifier-a", /*deadline_s=*/3);
  SimNode node(0x61);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(v));
  auto first = v.Verify(attest::SerializeEvidence(node.Next(v)));
  ASSERT_TRUE(first.ok() && first->trusted);

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::tmpfile(), std::fclose);
  ASSERT_TRUE(out);
  verifier::Monitor monitor(out.get(), 0);
  verifier::FleetWatchOptions wo;
  wo.name = "verifier-a";
  wo.lease = std::chrono::milliseconds(5000);
  wo.interval = std::chrono::milliseconds(500);
  wo.deadline_s = 3;
  auto watch = verifier::FleetWatch::Open(server_.Options(), wo, &monitor);
  ASSERT_TRUE(watch.ok());
  ASSERT_EQ(watch->Step()->size(), 1u);
  EXPECT_EQ(CountOf(Printed(out.get()), "\"overdue\""), 0u) << "attested just now";

  // Offline: nothing for more than the deadline.
  std::this_thread::sleep_for(std::chrono::milliseconds(4100));
  ASSERT_TRUE(watch->Step().ok());
  ASSERT_TRUE(watch->Step().ok());
  std::string printed = Printed(out.get());
  EXPECT_EQ(CountOf(printed, "\"overdue\""), 1u) << "one line per episode:\n" << printed;
  EXPECT_NE(printed.find(node.id()), std::string::npos);

  // The verifier restarts (clean: its leases handed back); the new one
  // knows the node is overdue from the database, at its first round.
  ASSERT_TRUE(watch->ReleaseAll().ok());
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out2(std::tmpfile(), std::fclose);
  verifier::Monitor monitor2(out2.get(), 0);
  wo.name = "verifier-a2";
  auto restarted = verifier::FleetWatch::Open(server_.Options(), wo, &monitor2);
  ASSERT_TRUE(restarted.ok());
  ASSERT_EQ(restarted->Step()->size(), 1u);
  EXPECT_EQ(CountOf(Printed(out2.get()), "\"overdue\""), 1u) << Printed(out2.get());

  // The node is back (its evidence to another verifier instance).
  verifier::Service other = Verifier("verifier-b", /*deadline_s=*/3);
  node.Work(1);
  auto back = other.Verify(attest::SerializeEvidence(node.Next(other)));
  ASSERT_TRUE(back.ok() && back->trusted) << (back.ok() ? attest::ResultJson(*back) : "");
  ASSERT_TRUE(restarted->Step().ok());
  printed = Printed(out2.get());
  EXPECT_EQ(CountOf(printed, "\"attested\""), 1u) << printed;
  ASSERT_TRUE(restarted->Step().ok());
  EXPECT_EQ(CountOf(Printed(out2.get()), "\"overdue\""), 1u) << "cleared, not raised again";
}

// A verifier process (forked, its own connection) is SIGKILLed inside its
// transaction, after it consumed the nonce and inserted the evidence, while
// it waits to write the state. The server rolls it all back: no evidence,
// no verdict, no state step, the nonce still open. The other verifier then
// decides the same evidence (trusted), and takes over the dead one's
// liveness leases within lease + claim interval.
TEST_F(FleetVerifierTest, AVerifierKilledMidTransactionLeavesNothingAndIsTakenOver) {
  verifier::Service survivor = Verifier("verifier-b");
  SimNode node(0x71);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(survivor));
  const std::string body = attest::SerializeEvidence(node.Next(survivor));

  // The node's state row locked here: the victim's UPDATE waits on it.
  auto locker = fleet::Connection::Open(server_.Options());
  ASSERT_TRUE(locker.ok());
  auto lock_tx = locker->Begin();
  ASSERT_TRUE(lock_tx.ok());
  {
    const Param p[] = {Param::Text(node.id())};
    ASSERT_TRUE(lock_tx->Exec("SELECT 1 FROM node_state WHERE node_id = $1 FOR UPDATE", p).ok());
  }
  std::fflush(nullptr);
  const pid_t victim = ::fork();
  ASSERT_GE(victim, 0);
  if (victim == 0) {
    verifier::DatabaseOptions o;
    o.connect = server_.Options();
    o.connect.application_name = "victim";
    o.name = "verifier-a";
    auto v = verifier::Service::OpenDatabase(o, NodePolicy());
    if (v.ok()) (void)v->Verify(body);
    ::_exit(0);
  }
  // Until the victim waits on the lock, inside its transaction.
  bool waiting = false;
  for (int i = 0; i < 400 && !waiting; ++i) {
    auto rows = db_->Exec(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'"
        " AND wait_event_type = 'Lock' AND state = 'active'",
        {});
    waiting = rows.ok() && *rows->Int8(0, 0) == 1;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(waiting) << "the victim never reached its state step";
  // Its evidence row exists inside its transaction (not visible here), and
  // its nonce is deleted there.
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(victim, &wstatus, 0), victim);
  EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
  ASSERT_TRUE(lock_tx->Rollback().ok());
  // The server ends the victim's session when it sees the socket close.
  for (int i = 0; i < 200; ++i) {
    auto rows =
        db_->Exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'", {});
    if (rows.ok() && *rows->Int8(0, 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(EvidenceRows(node.id()), 0);
  EXPECT_EQ(Query("SELECT count(*) FROM verdicts WHERE node_id = $1", node.id()), 0);
  EXPECT_EQ(Version(node.id()), 1);
  EXPECT_EQ(OpenNonces(node.id()), 1) << "the consumption was rolled back with the rest";

  auto decided = survivor.Verify(body);
  ASSERT_TRUE(decided.ok()) << decided.status().ToString();
  EXPECT_TRUE(decided->trusted) << attest::ResultJson(*decided);
  EXPECT_EQ(Version(node.id()), 2);
  EXPECT_EQ(EvidenceRows(node.id()), 1);
  EXPECT_EQ(Orphans(node.id()), 0);

  // Liveness: a verifier process holds the node's lease (rounds every
  // 250 ms, a 1.5 s lease), is SIGKILLed; the survivor's rounds take the
  // node over within lease + interval.
  verifier::FleetWatchOptions wo;
  wo.lease = std::chrono::milliseconds(1500);
  wo.interval = std::chrono::milliseconds(250);
  std::fflush(nullptr);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    wo.name = "verifier-a";
    auto w = verifier::FleetWatch::Open(server_.Options(), wo, nullptr);
    std::atomic<bool> never{false};
    if (w.ok()) w->Run(never);
    ::_exit(1);
  }
  auto store = fleet::Store::Open(server_.Options());
  ASSERT_TRUE(store.ok());
  bool held = false;
  for (int i = 0; i < 200 && !held; ++i) {
    auto owner = store->LeaseOwner(node.id());
    held = owner.ok() && *owner == std::optional<std::string>("verifier-a");
    if (!held) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(held);
  wo.name = "verifier-b";
  auto watch = verifier::FleetWatch::Open(server_.Options(), wo, nullptr);
  ASSERT_TRUE(watch.ok());
  EXPECT_EQ(watch->Step()->size(), 0u) << "held by the other verifier";
  ASSERT_EQ(::kill(holder, SIGKILL), 0);
  const auto killed = Clock::now();
  ASSERT_EQ(::waitpid(holder, &wstatus, 0), holder);
  double took_s = -1;
  while (Clock::now() - killed < std::chrono::seconds(10)) {
    auto got = watch->Step();
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (got->size() == 1) {
      took_s = std::chrono::duration<double>(Clock::now() - killed).count();
      break;
    }
    std::this_thread::sleep_for(wo.interval);
  }
  std::printf("take-over after SIGKILL: %.2f s (lease %.2f s + interval %.2f s)\n", took_s, 1.5,
              0.25);
  RecordProperty("takeover_s", std::to_string(took_s));
  ASSERT_GT(took_s, 0) << "never taken over";
  // lease + interval, and a little for the round itself on a loaded machine.
  EXPECT_LE(took_s, 1.5 + 0.25 + 0.5) << "lease + interval";
  auto owner = store->LeaseOwner(node.id());
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, std::optional<std::string>("verifier-b"));
  // A clean shutdown hands the lease back at once.
  ASSERT_TRUE(watch->ReleaseAll().ok());
  wo.name = "verifier-c";
  auto next = verifier::FleetWatch::Open(server_.Options(), wo, nullptr);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->Step()->size(), 1u) << "released: taken at the next round";
}

// An unused TCP port on loopback (bound, then closed).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// One `vigil-verifier --database ... serve` process, its stdout in a file.
struct ServeProcess {
  pid_t pid = -1;
  int port = 0;
  std::string name, out;
  ~ServeProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  std::pair<int, std::string> Post(const std::string& op, const std::string& body) const {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(10, 0);
    auto res = client.Post("/v1/" + op, body, "application/json");
    if (!res) return {-1, "no answer"};
    return {res->status, res->body};
  }
};

::testing::AssertionResult StartServe(ServeProcess* p, const std::string& name,
                                      const std::string& conninfo, const std::string& policy,
                                      const std::string& dir) {
  p->name = name;
  p->port = FreePort();
  p->out = dir + "/" + name + ".out";
  const std::string listen = "127.0.0.1:" + std::to_string(p->port);
  std::fflush(nullptr);
  p->pid = ::fork();
  if (p->pid < 0) return ::testing::AssertionFailure() << "fork";
  if (p->pid == 0) {
    const int fd = ::open(p->out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::dup2(fd, 1) < 0) ::_exit(127);
    ::execl(VIGIL_VERIFIER_PATH, VIGIL_VERIFIER_PATH, "--database", conninfo.c_str(), "--name",
            name.c_str(), "--policy", policy.c_str(), "serve", "--listen", listen.c_str(),
            "--pin-ek", "--deadline", "3", "--lease", "1.5", "--claim-interval", "0.25",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (p->Post("nonce", "{}").first == 400) return ::testing::AssertionSuccess();
    int status = 0;
    if (::waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = -1;
      return ::testing::AssertionFailure() << name << " exited: " << status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return ::testing::AssertionFailure() << name << " did not answer on " << listen;
}

// The program itself: two `serve --database` processes on one database. A
// node enrols at one and sends its evidence to the other; the verifier
// holding its lease is SIGKILLed and the other takes the node over within
// lease + interval, reports it overdue when it goes quiet and attested when
// it is back; SIGTERM ends the survivor cleanly, its lease handed back.
TEST_F(FleetVerifierTest, TwoServeProcessesShareTheFleetAndTakeOverAKilledOne) {
  testing::TempDir dir;
  const std::string policy = dir.path() + "/policy.json";
  {
    std::ofstream f(policy);
    f << attest::SerializePolicy(NodePolicy());
  }
  const fleet::ConnectOptions o = server_.Options();
  const std::string conninfo = "host=" + o.host + " port=" + std::to_string(o.port) +
                               " dbname=" + o.dbname + " user=" + o.user;
  ServeProcess v1, v2;
  ASSERT_TRUE(StartServe(&v1, "serve-1", conninfo, policy, dir.path()));
  ASSERT_TRUE(StartServe(&v2, "serve-2", conninfo, policy, dir.path()));
  const auto via = [](const ServeProcess& p) {
    return [&p](const std::string& op, const std::string& body) { return p.Post(op, body); };
  };

  SimNode node(0x81);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.EnrolWith(via(v1)));
  const Evidence ev = node.NextWith(via(v1));
  const auto [status, result] = v2.Post("evidence", attest::SerializeEvidence(ev));
  ASSERT_EQ(status, 200) << result;
  EXPECT_TRUE(nlohmann::json::parse(result).at("trusted").get<bool>()) << result;
  EXPECT_NE(ReadAll(v2.out).find("\"event\":\"verdict\""), std::string::npos);
  const auto [again, replay] = v1.Post("evidence", attest::SerializeEvidence(ev));
  ASSERT_EQ(again, 200);
  EXPECT_FALSE(nlohmann::json::parse(replay).at("trusted").get<bool>()) << "a replay";

  // The one-step commands on the same database: a nonce, then the evidence
  // for it decided by `verify` (exit 0: trusted).
  {
    const std::string nonce_cmd = std::string(VIGIL_VERIFIER_PATH) + " --database '" + conninfo +
                                  "' --name one-shot --policy " + policy + " nonce --node " +
                                  node.id();
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> pipe(::popen(nonce_cmd.c_str(), "r"), ::pclose);
    ASSERT_TRUE(pipe);
    std::string reply;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), pipe.get())) > 0;) reply.append(buf, n);
    ASSERT_EQ(::pclose(pipe.release()), 0) << reply;
    node.Work(1);
    const std::string ev_file = dir.path() + "/evidence.json";
    {
      std::ofstream f(ev_file);
      f << attest::SerializeEvidence(node.Answer(nlohmann::json::parse(reply)));
    }
    const std::string verify_cmd = std::string(VIGIL_VERIFIER_PATH) + " --database '" + conninfo +
                                   "' --name one-shot --policy " + policy +
                                   " verify --deadline 3 --evidence " + ev_file + " >/dev/null";
    EXPECT_EQ(std::system(verify_cmd.c_str()), 0) << verify_cmd;
    EXPECT_EQ(std::system((verify_cmd + " 2>/dev/null").c_str()) >> 8, 1)
        << "the same evidence again: untrusted (exit 1), its nonce spent";
  }

  // Who holds the node.
  auto store = fleet::Store::Open(server_.Options());
  ASSERT_TRUE(store.ok());
  std::optional<std::string> holder;
  for (int i = 0; i < 200 && !holder; ++i) {
    auto owner = store->LeaseOwner(node.id());
    if (owner.ok()) holder = *owner;
    if (!holder) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(holder.has_value());
  ServeProcess& dead = *holder == v1.name ? v1 : v2;
  ServeProcess& survivor = *holder == v1.name ? v2 : v1;
  ASSERT_EQ(::kill(dead.pid, SIGKILL), 0);
  const auto killed = Clock::now();
  ::waitpid(dead.pid, nullptr, 0);
  dead.pid = -1;
  double took_s = -1;
  while (Clock::now() - killed < std::chrono::seconds(10)) {
    auto owner = store->LeaseOwner(node.id());
    if (owner.ok() && *owner == std::optional<std::string>(survivor.name)) {
      took_s = std::chrono::duration<double>(Clock::now() - killed).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf(
      "vigil-verifier serve: take-over after SIGKILL %.2f s (--lease 1.5 "
      "--claim-interval 0.25)\n",
      took_s);
  RecordProperty("serve_takeover_s", std::to_string(took_s));
  ASSERT_GT(took_s, 0) << "never taken over";
  EXPECT_LE(took_s, 1.5 + 0.25 + 0.5) << "lease + interval";

  // Quiet past its deadline (3 s after the nonce): the survivor reports it.
  bool overdue = false;
  for (int i = 0; i < 100 && !overdue; ++i) {
    overdue = ReadAll(survivor.out).find("\"event\":\"overdue\"") != std::string::npos;
    if (!overdue) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(overdue) << ReadAll(survivor.out);
  node.Work(1);
  const auto [back, back_result] =
      survivor.Post("evidence", attest::SerializeEvidence(node.NextWith(via(survivor))));
  ASSERT_EQ(back, 200) << back_result;
  EXPECT_TRUE(nlohmann::json::parse(back_result).at("trusted").get<bool>()) << back_result;
  bool attested = false;
  for (int i = 0; i < 40 && !attested; ++i) {
    attested = ReadAll(survivor.out).find("\"event\":\"attested\"") != std::string::npos;
    if (!attested) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(attested) << ReadAll(survivor.out);

  // SIGTERM: a clean stop, the lease handed back at once.
  ASSERT_EQ(::kill(survivor.pid, SIGTERM), 0);
  int wstatus = -1;
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(survivor.pid, &wstatus, WNOHANG) == survivor.pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(WIFEXITED(wstatus)) << "still running 5 s after SIGTERM";
  survivor.pid = -1;
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  auto owner = store->LeaseOwner(node.id());
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, std::nullopt) << "released on a clean stop, not left to expire";
}

// Two verifiers split the nodes: each claims activated nodes / verifiers
// alive (rounded up), its own first. The first takes all; when a second
// joins, the first renews only its share, the rest lapse and the second
// takes them; when one leaves, the other takes everything back.
TEST_F(FleetVerifierTest, VerifiersAliveShareTheNodesFairly) {
  verifier::Service v = Verifier("verifier-a");
  SimNode real(0x91);
  ASSERT_TRUE(real.Start());
  ASSERT_TRUE(real.Enrol(v));
  // Five more nodes with the real node's keys (leases do not look at them).
  auto store = fleet::Store::Open(server_.Options());
  ASSERT_TRUE(store.ok());
  auto record = store->GetNode(real.id());
  ASSERT_TRUE(record.ok() && *record);
  for (int i = 0; i < 5; ++i) {
    fleet::NodeEnrolment e = (*record)->enrolment;
    char id[16];
    std::snprintf(id, sizeof(id), "00ff%04x", i);
    e.node = id;
    e.credential_secret.assign(32, 0x11);
    ASSERT_TRUE(store->Enrol(e, false).ok());
    ASSERT_TRUE(store->TakeCredentialSecret(e.node).ok());
    attest::NodeState s;
    s.node = e.node;
    s.ak = *tpmobj::ParseTpm2bPublic(e.ak_public);
    ASSERT_TRUE(store->Activate(e.node, s, DatabaseNow() + 600).ok());
  }
  verifier::FleetWatchOptions wo;
  wo.lease = std::chrono::milliseconds(1000);
  wo.interval = std::chrono::milliseconds(200);
  wo.name = "verifier-a";
  auto wa = verifier::FleetWatch::Open(server_.Options(), wo, nullptr);
  wo.name = "verifier-b";
  auto wb = verifier::FleetWatch::Open(server_.Options(), wo, nullptr);
  ASSERT_TRUE(wa.ok() && wb.ok());
  EXPECT_EQ(wa->Step()->size(), 6u) << "alone: all of them";
  EXPECT_EQ(wb->Step()->size(), 0u) << "all held";
  EXPECT_EQ(wa->Step()->size(), 3u) << "two alive: its share, its own renewed";
  // Both run their rounds; A's other leases lapse and B takes them.
  for (auto until = Clock::now() + std::chrono::milliseconds(1500); Clock::now() < until;) {
    ASSERT_TRUE(wa->Step().ok());
    ASSERT_TRUE(wb->Step().ok());
    std::this_thread::sleep_for(wo.interval);
  }
  EXPECT_EQ(wa->held().size(), 3u);
  EXPECT_EQ(wb->held().size(), 3u);
  std::set<std::string> all(wa->held().begin(), wa->held().end());
  all.insert(wb->held().begin(), wb->held().end());
  EXPECT_EQ(all.size(), 6u) << "disjoint, and every node held";
  ASSERT_TRUE(wb->ReleaseAll().ok());  // B stops cleanly
  EXPECT_EQ(wa->Step()->size(), 6u) << "alone again: all of them at once";
}

// --- Offline audit (vigil-verifier audit) and the HTTP listen backlog ---

// The node's stored evidence: id and receipt time (unix s), oldest first.
std::vector<std::pair<int64_t, uint64_t>> StoredEvidenceTimes(fleet::Connection& db,
                                                              const std::string& node) {
  const Param p[] = {Param::Text(node)};
  auto rows = db.Exec(
      "SELECT evidence_id, floor(extract(epoch from received_at))::int8 FROM evidence"
      " WHERE node_id = $1 ORDER BY evidence_id",
      p, Retry::kOnceIfIdempotent);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  std::vector<std::pair<int64_t, uint64_t>> out;
  for (int i = 0; rows.ok() && i < rows->size(); ++i) {
    out.emplace_back(*rows->Int8(i, 0), static_cast<uint64_t>(*rows->Int8(i, 1)));
  }
  return out;
}

std::string FindingsText(const verifier::AuditReport& r) { return verifier::AuditText(r); }

// The findings of one kind.
std::vector<verifier::AuditFinding> Findings(const verifier::AuditReport& r,
                                             verifier::AuditFinding::Kind kind) {
  std::vector<verifier::AuditFinding> out;
  for (const auto& f : r.findings) {
    if (f.kind == kind) out.push_back(f);
  }
  return out;
}

class FleetAuditTest : public FleetVerifierTest {
 protected:
  verifier::AuditReport Audit(const std::string& node, std::optional<uint64_t> from = {},
                              std::optional<uint64_t> to = {}) {
    auto store = fleet::Store::Open(server_.Options());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    verifier::AuditOptions o;
    o.node = node;
    o.from_unix = from;
    o.to_unix = to;
    auto report = verifier::AuditNode(*store, NodePolicy(), o);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : verifier::AuditReport();
  }
  // One trusted round: more work, a nonce, the evidence.
  void Round(verifier::Service& v, SimNode& node) {
    node.Work(1);
    auto r = v.Verify(attest::SerializeEvidence(node.Next(v)));
    ASSERT_TRUE(r.ok() && r->trusted) << (r.ok() ? attest::ResultJson(*r) : r.status().ToString());
  }
  std::string ConnInfo() {
    const fleet::ConnectOptions o = server_.Options();
    return "host=" + o.host + " port=" + std::to_string(o.port) + " dbname=" + o.dbname +
           " user=" + o.user;
  }
};

// The program: a node attested throughout is exit 0 (and --json says so);
// an unknown node is exit 2 with a clear error; a bad time is a usage error.
TEST_F(FleetAuditTest, AttestedThroughoutIsExitZeroAndAnUnknownNodeIsAnError) {
  verifier::Service v = Verifier("verifier-a");
  SimNode node(0xa1);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(v));
  for (int i = 0; i < 3; ++i) Round(v, node);

  const verifier::AuditReport r = Audit(node.id());
  EXPECT_TRUE(r.attested()) << FindingsText(r);
  EXPECT_EQ(r.in_range, 3u);
  EXPECT_EQ(r.trusted_in_range, 3u);
  EXPECT_EQ(r.deadline_s, 60u);
  EXPECT_EQ(r.deadline_source, "node state");

  testing::TempDir dir;
  const std::string policy = dir.path() + "/policy.json";
  {
    std::ofstream f(policy);
    f << attest::SerializePolicy(NodePolicy());
  }
  const std::string base = std::string(VIGIL_VERIFIER_PATH) + " --database '" + ConnInfo() +
                           "' --policy " + policy + " audit ";
  const std::string out = dir.path() + "/out", err = dir.path() + "/err";
  const auto run = [&](const std::string& args) {
    const int st = std::system((base + args + " >" + out + " 2>" + err).c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(run("--node " + node.id() + " --json"), 0) << ReadAll(err);
  const auto j = nlohmann::json::parse(ReadAll(out));
  EXPECT_TRUE(j.at("attested").get<bool>());
  EXPECT_EQ(j.at("evidence").at("in_range").get<int>(), 3);
  EXPECT_EQ(j.at("replay_from"), "activation");
  EXPECT_EQ(run("--node " + node.id()), 0);
  EXPECT_NE(ReadAll(out).find("ATTESTED throughout"), std::string::npos) << ReadAll(out);

  EXPECT_EQ(run("--node 000b0c0d"), 3);  // an error, not a usage error
  EXPECT_NE(ReadAll(err).find("node 000b0c0d is not enrolled"), std::string::npos) << ReadAll(err);
  EXPECT_EQ(run("--node " + node.id() + " --from yesterday"), 2);
  EXPECT_NE(ReadAll(err).find("ISO-8601"), std::string::npos) << ReadAll(err);
  EXPECT_EQ(run("--node " + node.id() + " --from 2030-01-01T00:00:00Z --to 2029-01-01T00:00:00Z"),
            2);
  EXPECT_NE(ReadAll(err).find("is after --to"), std::string::npos) << ReadAll(err);

  auto store = fleet::Store::Open(server_.Options());
  ASSERT_TRUE(store.ok());
  verifier::AuditOptions unknown;
  unknown.node = "000b0c0d";
  EXPECT_EQ(verifier::AuditNode(*store, NodePolicy(), unknown).status().code(),
            ErrorCode::kNotFound);
}

// Offline for longer than its deadline: the gap is named with the times of
// the trusted evidence on either side; a range after it (or before it) is
// attested; a range that runs past the last evidence has a gap to its end.
TEST_F(FleetAuditTest, AnOfflineNodesGapIsNamedWithItsTimesAndRangesAreRespected) {
  verifier::Service v = Verifier("verifier-a", /*deadline_s=*/2);
  SimNode node(0xa2);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(v));
  Round(v, node);
  Round(v, node);
  std::this_thread::sleep_for(std::chrono::milliseconds(4200));  // offline
  Round(v, node);
  Round(v, node);
  const auto times = StoredEvidenceTimes(*db_, node.id());
  ASSERT_EQ(times.size(), 4u);
  const uint64_t t2 = times[1].second, t3 = times[2].second, t4 = times[3].second;
  ASSERT_GT(t3, t2 + 2);

  verifier::AuditReport all = Audit(node.id(), std::nullopt, t4);
  EXPECT_FALSE(all.attested());
  EXPECT_EQ(all.deadline_s, 2u) << "the node's deadline, from its state row";
  auto gaps = Findings(all, verifier::AuditFinding::Kind::kGap);
  ASSERT_EQ(gaps.size(), 1u) << FindingsText(all);
  EXPECT_EQ(gaps[0].from_unix, t2);
  EXPECT_EQ(gaps[0].to_unix, t3);
  EXPECT_EQ(all.findings.size(), 1u) << FindingsText(all);
  EXPECT_NE(FindingsText(all).find("gap "), std::string::npos);

  // Before the gap, and after it: attested.
  verifier::AuditReport before = Audit(node.id(), times[0].second, t2);
  EXPECT_TRUE(before.attested()) << FindingsText(before);
  EXPECT_EQ(before.in_range, 2u);
  verifier::AuditReport after = Audit(node.id(), t3, t4);
  EXPECT_TRUE(after.attested()) << FindingsText(after);
  EXPECT_EQ(after.in_range, 2u) << "the evidence before the range is replayed, not counted";
  EXPECT_EQ(after.replayed, 4u);

  // Past the last evidence: a gap from it to the end of the range.
  verifier::AuditReport later = Audit(node.id(), t3, t4 + 10);
  gaps = Findings(later, verifier::AuditFinding::Kind::kGap);
  ASSERT_EQ(gaps.size(), 1u) << FindingsText(later);
  EXPECT_EQ(gaps[0].from_unix, t4);
  EXPECT_EQ(gaps[0].to_unix, t4 + 10);
}

// An untrusted evidence in the range is named with its reasons; then an
// attacker with the database: a verdict flipped to trusted, a stored body
// edited (and its digest with it), an evidence row deleted. Each is a
// contradiction (or a missing log range) the audit names.
TEST_F(FleetAuditTest, UntrustedEvidenceAndATamperedDatabaseAreReported) {
  verifier::Service v = Verifier("verifier-a");
  SimNode node(0xa3);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(v));
  Round(v, node);
  node.Work(1);
  Evidence forged = node.Next(v);
  ASSERT_FALSE(forged.quote.signature.empty());
  forged.quote.signature.back() ^= 1;
  auto refused = v.Verify(attest::SerializeEvidence(forged));
  ASSERT_TRUE(refused.ok() && !refused->trusted);
  for (int i = 0; i < 4; ++i) Round(v, node);
  auto times = StoredEvidenceTimes(*db_, node.id());
  ASSERT_EQ(times.size(), 6u);
  const int64_t forged_id = times[1].first;

  verifier::AuditReport r = Audit(node.id());
  EXPECT_FALSE(r.attested());
  auto untrusted = Findings(r, verifier::AuditFinding::Kind::kUntrusted);
  ASSERT_EQ(untrusted.size(), 1u) << FindingsText(r);
  EXPECT_EQ(untrusted[0].evidence_id, forged_id);
  EXPECT_EQ(untrusted[0].from_unix, times[1].second);
  ASSERT_FALSE(untrusted[0].reasons.empty());
  EXPECT_NE(untrusted[0].reasons[0].find("quote"), std::string::npos) << FindingsText(r);
  EXPECT_EQ(r.findings.size(), 1u) << FindingsText(r);

  // The attacker flips the refused verdict to trusted.
  {
    const Param p[] = {Param::Int8(forged_id)};
    ASSERT_TRUE(db_->Exec("UPDATE verdicts SET trusted = true WHERE evidence_id = $1", p).ok());
  }
  r = Audit(node.id());
  auto contradictions = Findings(r, verifier::AuditFinding::Kind::kContradiction);
  ASSERT_EQ(contradictions.size(), 1u) << FindingsText(r);
  EXPECT_EQ(contradictions[0].evidence_id, forged_id);
  EXPECT_EQ(contradictions[0].stored_trusted, std::optional<bool>(true));
  EXPECT_NE(FindingsText(r).find("stored trusted"), std::string::npos) << FindingsText(r);
  EXPECT_TRUE(Findings(r, verifier::AuditFinding::Kind::kUntrusted).empty());

  // The attacker edits the last trusted evidence's body (one event's byte)
  // and its digest, so the row is self-consistent.
  const int64_t edited_id = times[5].first;
  {
    const Param p[] = {Param::Int8(edited_id)};
    auto rows = db_->Exec("SELECT body FROM evidence WHERE evidence_id = $1", p);
    ASSERT_TRUE(rows.ok() && rows->size() == 1);
    const std::vector<uint8_t> body = *rows->Bytea(0, 0);
    auto ev = attest::ParseEvidence(
        std::string_view(reinterpret_cast<const char*>(body.data()), body.size()));
    ASSERT_TRUE(ev.ok());
    ASSERT_FALSE(ev->events.empty());
    ev->events[ev->events.size() - 1] ^= 0x01;
    const std::string edited = attest::SerializeEvidence(*ev);
    const std::vector<uint8_t> edited_bytes(edited.begin(), edited.end());
    const crypto::Sha256Digest d = *crypto::Sha256({edited_bytes});
    const Param u[] = {Param::Int8(edited_id), Param::Bytea(edited_bytes),
                       Param::Bytea(std::vector<uint8_t>(d.begin(), d.end())),
                       Param::Bytea(ev->events)};
    ASSERT_TRUE(db_->Exec("UPDATE evidence SET body = $2, body_sha256 = $3, events = $4"
                          " WHERE evidence_id = $1",
                          u)
                    .ok());
  }
  r = Audit(node.id());
  contradictions = Findings(r, verifier::AuditFinding::Kind::kContradiction);
  ASSERT_EQ(contradictions.size(), 2u) << FindingsText(r);
  EXPECT_EQ(contradictions[1].evidence_id, edited_id);
  EXPECT_NE(FindingsText(r).find("re-verification:"), std::string::npos) << FindingsText(r);

  // The attacker deletes a trusted evidence from the middle: the log range
  // it covered is missing before the next one.
  {
    const Param p[] = {Param::Int8(times[3].first)};
    ASSERT_TRUE(db_->Exec("DELETE FROM evidence WHERE evidence_id = $1", p).ok());
  }
  r = Audit(node.id());
  auto missing = Findings(r, verifier::AuditFinding::Kind::kMissing);
  ASSERT_EQ(missing.size(), 1u) << FindingsText(r);
  EXPECT_EQ(missing[0].evidence_id, times[4].first);
  EXPECT_GT(missing[0].to_seq, missing[0].from_seq);
  EXPECT_NE(FindingsText(r).find("missing: evidence"), std::string::npos) << FindingsText(r);
  std::printf("%s", FindingsText(r).c_str());  // what an operator reads (docs/fleet.md)
}

// Many rounds: the audit reads the evidence a page (256) at a time, and
// the replay crosses pages with its state; prints the audit's time per
// stored evidence (docs/fleet.md).
TEST_F(FleetAuditTest, ThreeHundredRoundsAuditAcrossPagesAndItsTimePerEvidence) {
  verifier::Service v = Verifier("verifier-a");
  SimNode node(0xa4);
  ASSERT_TRUE(node.Start());
  ASSERT_TRUE(node.Enrol(v));
  constexpr int kRounds = 300;
  for (int i = 0; i < kRounds; ++i) {
    Round(v, node);
    if (HasFatalFailure()) return;
  }
  const verifier::AuditReport r = Audit(node.id());
  EXPECT_TRUE(r.attested()) << FindingsText(r);
  EXPECT_EQ(r.replayed, static_cast<uint64_t>(kRounds));
  EXPECT_EQ(r.trusted_in_range, static_cast<uint64_t>(kRounds));
  std::printf("[audit] %d evidence re-verified in %.3f s: %.3f ms per evidence\n", kRounds,
              r.seconds, r.seconds * 1000 / kRounds);
}

// The HTTP listen backlog: 200 clients connect at once while `serve` is
// stopped (SIGSTOP: nothing accepted), as under a fleet's burst while the
// accept thread is busy. cpp-httplib's own backlog of 5 completed about 6
// of them and dropped the others' SYNs; the raised backlog queues them all.
TEST_F(FleetVerifierTest, ServeQueuesABurstOf200Connections) {
  testing::TempDir dir;
  const std::string policy = dir.path() + "/policy.json";
  {
    std::ofstream f(policy);
    f << attest::SerializePolicy(NodePolicy());
  }
  const fleet::ConnectOptions o = server_.Options();
  const std::string conninfo = "host=" + o.host + " port=" + std::to_string(o.port) +
                               " dbname=" + o.dbname + " user=" + o.user;
  ServeProcess serve;
  ASSERT_TRUE(StartServe(&serve, "serve-burst", conninfo, policy, dir.path()));
  ASSERT_EQ(::kill(serve.pid, SIGSTOP), 0);
  constexpr int kClients = 200;
  std::vector<UniqueFd> fds;
  std::vector<pollfd> polls;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(serve.port));
  for (int i = 0; i < kClients; ++i) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(fd.valid());
    const int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
    polls.push_back({fd.get(), POLLOUT, 0});
    fds.push_back(std::move(fd));
  }
  // A handshake the kernel completed shows as writable; a dropped SYN is
  // retried after 1 s, so 500 ms tells the queued from the dropped.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_GE(::poll(polls.data(), polls.size(), 0), 0);
  int connected = 0, refused = 0;
  for (const pollfd& p : polls) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if ((p.revents & POLLOUT) && err == 0) ++connected;
    if (err == ECONNREFUSED || err == ECONNRESET) ++refused;
  }
  ASSERT_EQ(::kill(serve.pid, SIGCONT), 0);
  EXPECT_EQ(connected, kClients) << "queued while the verifier accepted nothing";
  EXPECT_EQ(refused, 0);
  fds.clear();
  EXPECT_EQ(serve.Post("nonce", "{}").first, 400) << "serving again after the burst";
}

}  // namespace
}  // namespace vigil
