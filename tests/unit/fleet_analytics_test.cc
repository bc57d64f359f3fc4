// Fleet analytics (userspace/verifier/fleet_analytics.h) on a real
// PostgreSQL 15 (pg_fixture) with baseline reports quoted by real swtpm AKs
// over an IMA-format log (ImaSim), as baseline_report_test builds them:
// ingest checks each report with the node's enrolled AK and refuses the
// wrong node's, an altered and a replayed one; the per-role pools are
// median/MAD across nodes, so two forging nodes among nine do not move
// them and are flagged naming the feature (IPC only when the nodes had
// hardware counters); the fleet report's ECDSA signature verifies and an
// edited report does not. The last test runs the vigil-verifier commands.
#include "fleet_analytics.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "attest_test_util.h"
#include "pg_fixture.h"
#include "swtpm_fixture.h"
#include "vigil/attest/baseline_report.h"
#include "vigil/attest/verifier.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/baseline/store.h"
#include "vigil/digest.h"
#include "vigil/fleet/store.h"
#include "vigil/openssl_ptr.h"
#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "vigil/tpm.h"

namespace vigil {
namespace {

namespace analytics = verifier::analytics;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// How a node's agents of role "worker" behave (and one "web" agent that
// every node has alike).
struct Behaviour {
  uint64_t cpu_ns = 5'000'000;
  uint64_t syscalls = 1000;
  bool counters = false;
  double ipc = 1.2;
  int jitter = 0;  // per node, so honest nodes are similar, not identical
};

std::string Snapshot(const Behaviour& b) {
  auto store = baseline::BaselineStore::Create(baseline::BaselineConfig{});
  EXPECT_TRUE(store.ok());
  for (int a = 0; a < 3; ++a) {
    for (int i = 0; i < 20; ++i) {
      baseline::ExitSample s;
      const std::string name = "worker" + std::to_string(a);
      s.agent = name;
      s.role = "worker";
      s.timestamp_ns = 1'000'000'000ull * (i + 1);
      s.cpu_ns = b.cpu_ns + 1000 * i + 20'000ull * b.jitter;
      s.lifetime_ns = 100'000'000;
      s.max_rss_bytes = 8u << 20;
      s.faults = 100 + i;
      s.ctx_switches = 10 + i;
      s.syscalls = b.syscalls + i + 5ull * b.jitter;
      if (b.counters) {
        s.cycles = 10'000'000;
        s.instructions = static_cast<uint64_t>(b.ipc * 10'000'000) + 10'000ull * b.jitter + 100 * i;
      }
      store->ObserveExit(s);
    }
  }
  for (int i = 0; i < 10; ++i) {
    baseline::ExitSample s;
    s.agent = "nginx";
    s.role = "web";
    s.timestamp_ns = 1'000'000'000ull * (i + 1);
    s.cpu_ns = 2'000'000 + 1000 * i;
    s.lifetime_ns = 1'000'000'000;
    s.max_rss_bytes = 16u << 20;
    s.faults = 50;
    s.ctx_switches = 40;
    s.syscalls = 500;
    store->ObserveExit(s);
  }
  return store->Serialize();
}

records::Record MeasureRecord(uint64_t seq, std::span<const uint8_t> digest) {
  vigil_log_measure m;
  std::memset(&m, 0, sizeof(m));
  sim::ModuleSim::Header(m.hdr, VIGIL_LOG_MEASURE, sizeof(m), seq);
  m.kind = VIGIL_MEASURE_USER;
  m.pcr = VIGIL_PCR_NONE;
  std::strncpy(m.name, "baseline", sizeof(m.name) - 1);
  std::memcpy(m.digest, digest.data(), sizeof(m.digest));
  return *records::Record::FromStruct(m);
}

struct Node {
  std::string id;
  uint8_t ak = 0;  // the AK's `unique` (CreateTestAk): loaded only to quote
  chain::InstanceId instance{};
};

class FleetAnalyticsTest : public testing::PostgresFixture {
 protected:
  void SetUp() override {
    PostgresFixture::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(swtpm_.Start(swtpm_dir_.path()));
    auto esys = tpm::EsysContext::Open(swtpm_.tcti());
    ASSERT_TRUE(esys.ok()) << esys.status().ToString();
    tpm_.emplace(std::move(esys).value());
    auto store = fleet::Store::Open(server_.Options());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_.emplace(std::move(store).value());
    ima_.BootAggregate();
  }
  void TearDown() override {
    store_.reset();
    tpm_.reset();
    swtpm_.Stop();
    PostgresFixture::TearDown();
  }

  // A node enrolled and activated in the database with a fresh swtpm AK.
  Node AddNode(int i) {
    Node n;
    char id[80];
    std::snprintf(id, sizeof(id), "000b%064x", i);
    n.id = id;
    n.instance.fill(static_cast<uint8_t>(0x40 + i));
    n.ak = static_cast<uint8_t>(i + 1);
    auto pub = AkPublic(n.ak);
    fleet::NodeEnrolment e;
    e.node = n.id;
    e.ek_public = {0x00, 0x01};
    e.ek_trust = "pinned";
    e.ak_public = tpmobj::MarshalTpm2bPublic(pub);
    e.credential_secret.assign(32, 0x11);
    EXPECT_TRUE(store_->Enrol(e, false).ok());
    EXPECT_TRUE(store_->TakeCredentialSecret(n.id).ok());
    attest::NodeState s;
    s.node = n.id;
    s.ak = pub;
    auto now = store_->DatabaseNowUnix();
    EXPECT_TRUE(store_->Activate(n.id, s, *now + 600).ok());
    return n;
  }

  // swtpm holds only 3 transient objects: each AK is loaded (re-created:
  // same template and unique, same key) only while it is used.
  tpmobj::PublicArea AkPublic(uint8_t unique) {
    auto ak = testing::CreateTestAk(tpm_->get(), ESYS_TR_RH_ENDORSEMENT, unique);
    EXPECT_TRUE(ak.ok()) << ak.status().ToString();
    auto pub = testing::ReadAkPublic(tpm_->get(), *ak);
    EXPECT_TRUE(pub.ok());
    Esys_FlushContext(tpm_->get(), *ak);
    return *pub;
  }

  // The node's side: MEASURE of the snapshot into IMA's log (and the
  // swtpm's PCR 10), then a quote by `signer` (default: the node's AK).
  std::string Report(const Node& n, const std::string& snapshot, uint64_t seq,
                     std::vector<uint8_t> nonce = {}, std::optional<uint8_t> signer = {}) {
    if (nonce.empty()) nonce.assign(32, 0x77);
    const crypto::Digest digest = *crypto::Hash(TPM2_ALG_SHA256, AsBytes(snapshot));
    ima_.Record(n.instance, MeasureRecord(seq, digest));
    ima_.File("/usr/bin/later");
    for (; extended_ < ima_.extends.size(); ++extended_) {
      const auto& [alg, value] = ima_.extends[extended_];
      EXPECT_TRUE(tpm_->PcrExtend(10, {{alg, value}}).ok());
    }
    attest::BaselineReport r;
    r.node = n.id;
    r.snapshot.assign(snapshot.begin(), snapshot.end());
    r.snapshot_sha256 = digest;
    r.instance = n.instance;
    r.measure_seq = seq;
    r.nonce = nonce;
    auto qualifying =
        attest::BaselineReportQualifyingData(r.snapshot_sha256, r.instance, r.measure_seq, nonce);
    EXPECT_TRUE(qualifying.ok());
    auto key = testing::CreateTestAk(tpm_->get(), ESYS_TR_RH_ENDORSEMENT, signer.value_or(n.ak));
    EXPECT_TRUE(key.ok());
    auto quote = attest_tpm::Quote(*tpm_, *key, *qualifying, {{TPM2_ALG_SHA256, {10}}});
    EXPECT_TRUE(quote.ok()) << quote.status().ToString();
    r.quote_attest = quote->attest;
    r.quote_signature = quote->signature;
    r.pcr10_sha256 = quote->values.at(0).value;
    r.ima_entries = ima_.log;
    r.ak_public = tpmobj::MarshalTpm2bPublic(*testing::ReadAkPublic(tpm_->get(), *key));
    Esys_FlushContext(tpm_->get(), *key);
    return attest::SerializeBaselineReport(r);
  }

  Result<analytics::IngestOutcome> Ingest(const Node& n, const std::string& report,
                                          std::optional<std::vector<uint8_t>> nonce = {}) {
    std::optional<std::span<const uint8_t>> expected;
    if (nonce) expected = std::span<const uint8_t>(*nonce);
    return analytics::IngestBaselineReport(*store_, n.id, report, expected);
  }

  int64_t StoredReports() {
    auto rows = store_->connection().Exec("SELECT count(*) FROM baseline_reports");
    EXPECT_TRUE(rows.ok());
    return *rows->Int8(0, 0);
  }

  analytics::FleetAnalysis Analyse(const analytics::AnalysisOptions& o = {}) {
    auto stats = analytics::LatestNodeStats(*store_);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    return analytics::Analyse(*stats, o, 1000);
  }

  static const analytics::Pool* FindPool(const analytics::FleetAnalysis& a, const std::string& role,
                                         const std::string& feature) {
    for (const analytics::Pool& p : a.pools) {
      if (p.role == role && p.feature == feature) return &p;
    }
    return nullptr;
  }

  testing::TempDir swtpm_dir_;
  testing::SwtpmProcess swtpm_;
  std::optional<tpm::EsysContext> tpm_;
  std::optional<fleet::Store> store_;
  sim::ImaSim ima_;
  size_t extended_ = 0;
};

// 7 honest nodes and 2 that forge their "worker" statistics: CPU per exec
// x40 and IPC 3.6 instead of 1.2. The pools stay at the honest values, the
// two are flagged naming the features, no honest node is.
TEST_F(FleetAnalyticsTest, TwoForgingNodesOfNineAreFlaggedAndCannotDragThePool) {
  std::vector<Node> nodes;
  double ingest_ms = 0;
  size_t report_bytes = 0;
  for (int i = 0; i < 9; ++i) {
    Node n = AddNode(i);
    Behaviour b;
    b.counters = true;
    b.jitter = i;
    if (i >= 7) {
      b.cpu_ns = 200'000'000;
      b.ipc = 3.6;
    }
    const std::string report = Report(n, Snapshot(b), 5);
    const auto t0 = std::chrono::steady_clock::now();
    auto stored = Ingest(n, report);
    ingest_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    report_bytes += report.size();
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    EXPECT_FALSE(stored->fresh);
    nodes.push_back(n);
  }
  EXPECT_EQ(StoredReports(), 9);
  const auto t0 = std::chrono::steady_clock::now();
  const analytics::FleetAnalysis a = Analyse();
  std::printf(
      "[figures] ingest (check + store) %.1f ms per report (mean of 9, %zu bytes mean); "
      "pooling %zu pools of 9 nodes %.1f ms\n",
      ingest_ms / 9, report_bytes / 9, a.pools.size(),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_EQ(a.nodes, 9u);
  const analytics::Pool* cpu = FindPool(a, "worker", "cpu_per_exec");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->nodes, 9u);
  // Honest medians: 5.0095 ms + 20 us * jitter (0..6), within the sketch's 1%.
  EXPECT_GT(cpu->median, 4.9e6);
  EXPECT_LT(cpu->median, 5.2e6);
  const analytics::Pool* ipc = FindPool(a, "worker", "ipc");
  ASSERT_NE(ipc, nullptr);
  EXPECT_NEAR(ipc->median, 1.2, 0.05);
  std::vector<std::string> flagged;
  for (const analytics::Alert& x : a.alerts) {
    EXPECT_EQ(x.kind, "byzantine_outlier");
    EXPECT_EQ(x.role, "worker");
    EXPECT_TRUE(x.node == nodes[7].id || x.node == nodes[8].id) << x.node << " " << x.feature;
    EXPECT_GE(x.score, 5.0);
    flagged.push_back(x.node + " " + x.feature);
    if (x.feature == "cpu_per_exec") {
      EXPECT_GT(x.value, 1.9e8);
      EXPECT_EQ(x.fleet_median, cpu->median);
    }
    if (x.feature == "ipc") {
      EXPECT_NEAR(x.value, 3.6, 0.1);
    }
  }
  std::sort(flagged.begin(), flagged.end());
  // CPU and IPC of both forgers; their syscall rate is honest.
  EXPECT_EQ(flagged,
            (std::vector<std::string>{nodes[7].id + " cpu_per_exec", nodes[7].id + " ipc",
                                      nodes[8].id + " cpu_per_exec", nodes[8].id + " ipc"}));
  // The "web" role is alike on every node: pooled, nobody flagged.
  const analytics::Pool* web = FindPool(a, "web", "syscall_rate");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->nodes, 9u);
  for (const analytics::Alert& x : a.alerts) EXPECT_NE(x.role, "web");
}

// The breakdown point, on the pooling alone: of 9 nodes, 4 forgers (fewer
// than half) leave the median among the honest values and are all flagged;
// 5 (a majority) take the pool over.
TEST_F(FleetAnalyticsTest, MedianBreaksDownOnlyWithAMajorityOfForgers) {
  auto fleet = [](int forgers) {
    std::vector<analytics::NodeStat> stats;
    for (int i = 0; i < 9; ++i) {
      analytics::NodeStat s;
      s.node = "000b" + std::to_string(i);
      s.stat = {"worker", "cpu_per_exec", 3, 60,
                i < 9 - forgers ? 5.0e6 + 1e4 * i : 1.0e9 + 1e6 * i};
      stats.push_back(s);
    }
    return analytics::Analyse(stats, {}, 0);
  };
  const analytics::FleetAnalysis four = fleet(4);
  ASSERT_EQ(four.pools.size(), 1u);
  EXPECT_LT(four.pools[0].median, 5.1e6);
  EXPECT_EQ(four.alerts.size(), 4u);
  for (const analytics::Alert& x : four.alerts) EXPECT_GT(x.value, 1e9);
  const analytics::FleetAnalysis five = fleet(5);
  EXPECT_GT(five.pools[0].median, 1e9);
}

TEST_F(FleetAnalyticsTest, IpcIsAFeatureOnlyWhenTheNodesHadHardwareCounters) {
  for (int i = 0; i < 4; ++i) {
    Node n = AddNode(i);
    Behaviour b;
    b.jitter = i;
    if (i == 3) b.syscalls = 100'000;  // an outlier without counters
    ASSERT_TRUE(Ingest(n, Report(n, Snapshot(b), 5)).ok());
  }
  const analytics::FleetAnalysis a = Analyse();
  EXPECT_EQ(FindPool(a, "worker", "ipc"), nullptr);
  ASSERT_NE(FindPool(a, "worker", "syscall_rate"), nullptr);
  ASSERT_EQ(a.alerts.size(), 1u);
  EXPECT_EQ(a.alerts[0].feature, "syscall_rate");
  for (const analytics::Pool& p : a.pools) EXPECT_NE(p.feature, "ipc");
  const nlohmann::json j = analytics::FleetReportJson(a);
  EXPECT_EQ(j.dump().find("\"ipc\""), std::string::npos);
}

TEST_F(FleetAnalyticsTest, IngestRefusesAnotherNodesAkAnAlteredAndAReplayedReport) {
  Node a = AddNode(1);
  Node b = AddNode(2);
  const std::string snapshot = Snapshot({});
  // Quoted by b's AK, submitted as a's.
  auto other_ak = Ingest(a, Report(a, snapshot, 3, {}, b.ak));
  ASSERT_FALSE(other_ak.ok());
  EXPECT_EQ(other_ak.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(other_ak.status().message().find("quote"), std::string::npos)
      << other_ak.status().message();
  // a's honest report submitted as b's: b's AK does not verify it.
  const std::string honest = Report(a, snapshot, 4);
  auto as_b = Ingest(b, honest);
  ASSERT_FALSE(as_b.ok());
  EXPECT_EQ(as_b.status().code(), ErrorCode::kMismatch);
  // Altered: another snapshot with its digest recomputed.
  auto parsed = attest::ParseBaselineReport(honest);
  ASSERT_TRUE(parsed.ok());
  Behaviour forged;
  forged.cpu_ns = 1'000'000'000;
  const std::string other = Snapshot(forged);
  parsed->snapshot.assign(other.begin(), other.end());
  parsed->snapshot_sha256 = *crypto::Hash(TPM2_ALG_SHA256, AsBytes(other));
  auto altered = Ingest(a, attest::SerializeBaselineReport(*parsed));
  ASSERT_FALSE(altered.ok());
  EXPECT_EQ(altered.status().code(), ErrorCode::kMismatch);
  EXPECT_EQ(StoredReports(), 0);

  ASSERT_TRUE(Ingest(a, honest).ok());
  auto replayed = Ingest(a, honest);
  ASSERT_FALSE(replayed.ok());
  EXPECT_EQ(replayed.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(replayed.status().message().find("replayed"), std::string::npos);
  EXPECT_EQ(StoredReports(), 1);

  // With the database's nonce: fresh, once.
  std::vector<uint8_t> nonce(32);
  ASSERT_EQ(RAND_bytes(nonce.data(), 32), 1);
  auto now = store_->DatabaseNowUnix();
  ASSERT_TRUE(store_->IssueNonce(a.id, nonce, *now, *now + 60, 8).ok());
  const std::string fresh_report = Report(a, snapshot, 6, nonce);
  auto fresh = Ingest(a, fresh_report, nonce);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_TRUE(fresh->fresh);
  auto again = Ingest(a, Report(a, snapshot, 7, nonce), nonce);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(again.status().message().find("nonce"), std::string::npos);
  // An unknown node.
  Node ghost;
  ghost.id = "000bffff";
  EXPECT_EQ(Ingest(ghost, honest).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(StoredReports(), 2);
}

std::string NewP256KeyPem(bool private_part) {
  ossl::PkeyPtr key(EVP_EC_gen("P-256"));
  EXPECT_NE(key, nullptr);
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (private_part) {
    EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr),
              1);
  } else {
    EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), key.get()), 1);
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string PublicHalf(const std::string& private_pem) {
  ossl::BioPtr in(BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())));
  ossl::PkeyPtr key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  EXPECT_NE(key, nullptr);
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), key.get()), 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

TEST_F(FleetAnalyticsTest, SignedFleetReportVerifiesAndAnEditedOneDoesNot) {
  for (int i = 0; i < 4; ++i) {
    Node n = AddNode(i);
    Behaviour b;
    b.jitter = i;
    if (i == 3) b.cpu_ns = 90'000'000;
    ASSERT_TRUE(Ingest(n, Report(n, Snapshot(b), 2)).ok());
  }
  const nlohmann::json report = analytics::FleetReportJson(Analyse());
  ASSERT_EQ(report["alerts"].size(), 1u);
  const std::string key = NewP256KeyPem(true);
  auto signed_text = analytics::SignFleetReport(report, key);
  ASSERT_TRUE(signed_text.ok()) << signed_text.status().ToString();
  auto back = analytics::VerifyFleetReport(*signed_text, PublicHalf(key));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, report);
  // An edited report: the alert's node changed.
  nlohmann::json edited = nlohmann::json::parse(*signed_text);
  edited["report"]["alerts"][0]["node"] = "000b0000";
  auto refused = analytics::VerifyFleetReport(edited.dump(), PublicHalf(key));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kMismatch);
  // The alert removed.
  edited = nlohmann::json::parse(*signed_text);
  edited["report"]["alerts"] = nlohmann::json::array();
  EXPECT_EQ(analytics::VerifyFleetReport(edited.dump(), PublicHalf(key)).status().code(),
            ErrorCode::kMismatch);
  // Another verifier's key.
  EXPECT_EQ(analytics::VerifyFleetReport(*signed_text, NewP256KeyPem(false)).status().code(),
            ErrorCode::kMismatch);
  // Re-signed by another key but claiming the first: the key id differs.
  auto other = analytics::SignFleetReport(report, NewP256KeyPem(true));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(analytics::VerifyFleetReport(*other, PublicHalf(key)).status().code(),
            ErrorCode::kMismatch);
  EXPECT_EQ(analytics::VerifyFleetReport("{\"format\":1}", PublicHalf(key)).status().code(),
            ErrorCode::kMalformed);
  // Not P-256.
  ossl::PkeyPtr rsa(EVP_RSA_gen(2048));
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), rsa.get(), nullptr, nullptr, 0, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  EXPECT_EQ(analytics::SignFleetReport(report, std::string(data, static_cast<size_t>(len)))
                .status()
                .code(),
            ErrorCode::kUnsupported);
}

int Shell(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good());
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(FleetAnalyticsTest, VerifierCommandsSubmitReportSignAndVerify) {
  testing::TempDir dir;
  const fleet::ConnectOptions o = server_.Options();
  const std::string db = "'host=" + o.host + " port=" + std::to_string(o.port) +
                         " dbname=" + o.dbname + " user=" + o.user + "'";
  const std::string bin = VIGIL_VERIFIER_PATH;
  std::vector<Node> nodes;
  for (int i = 0; i < 5; ++i) {
    Node n = AddNode(i);
    Behaviour b;
    b.jitter = i;
    if (i == 4) b.syscalls = 50'000;
    const std::string path = dir.path() + "/r" + std::to_string(i) + ".json";
    WriteFile(path, Report(n, Snapshot(b), 8));
    EXPECT_EQ(Shell(bin + " --database " + db + " submit-report --node " + n.id + " --report " +
                    path + " > " + dir.path() + "/out"),
              0)
        << ReadAll(dir.path() + "/out");
    EXPECT_NE(ReadAll(dir.path() + "/out").find("stored: node " + n.id), std::string::npos);
    nodes.push_back(n);
  }
  // Replayed: refused (exit 1); the wrong node: refused (exit 1).
  EXPECT_EQ(Shell(bin + " --database " + db + " submit-report --node " + nodes[0].id +
                  " --report " + dir.path() + "/r0.json 2>/dev/null"),
            1);
  EXPECT_EQ(Shell(bin + " --database " + db + " submit-report --node " + nodes[1].id +
                  " --report " + dir.path() + "/r2.json 2>/dev/null"),
            1);
  // Without --database: usage.
  EXPECT_EQ(Shell(bin + " fleet-report 2>/dev/null"), 2);
  WriteFile(dir.path() + "/key.pem", NewP256KeyPem(true));
  WriteFile(dir.path() + "/key.pub", PublicHalf(ReadAll(dir.path() + "/key.pem")));
  EXPECT_EQ(Shell(bin + " --database " + db + " fleet-report -o " + dir.path() +
                  "/fleet.json 2>/dev/null"),
            2);  // -o needs --signing-key
  ASSERT_EQ(Shell(bin + " --database " + db + " fleet-report --signing-key " + dir.path() +
                  "/key.pem -o " + dir.path() + "/fleet.json > " + dir.path() + "/text"),
            0);
  const std::string text = ReadAll(dir.path() + "/text");
  std::printf("%s", text.c_str());  // the figures in docs/fleet.md
  EXPECT_NE(text.find("fleet: 5 nodes"), std::string::npos) << text;
  EXPECT_NE(text.find("ALERT byzantine_outlier: node " + nodes[4].id +
                      " role worker feature syscall_rate"),
            std::string::npos)
      << text;
  EXPECT_EQ(Shell(bin + " verify-fleet-report --report " + dir.path() + "/fleet.json --pubkey " +
                  dir.path() + "/key.pub > /dev/null"),
            0);
  std::string signed_text = ReadAll(dir.path() + "/fleet.json");
  const size_t at = signed_text.find(nodes[4].id);
  ASSERT_NE(at, std::string::npos);
  signed_text.replace(at, nodes[4].id.size(), nodes[0].id);
  WriteFile(dir.path() + "/edited.json", signed_text);
  EXPECT_EQ(Shell(bin + " verify-fleet-report --report " + dir.path() + "/edited.json --pubkey " +
                  dir.path() + "/key.pub > /dev/null"),
            1);
}

}  // namespace
}  // namespace vigil
