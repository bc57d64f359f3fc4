// Signed baseline reports (vigil/attest/baseline_report.h) against swtpm:
// a real quote of PCR 10 by an AK, over an IMA-format log (ImaSim, the
// bytes IMA writes) whose extends are replayed on the swtpm, with the
// module's MEASURE record of a real BaselineStore snapshot in it. Each
// tampering of the report, or an honest report of the wrong thing, must be
// refused with its own reason.
#include "vigil/attest/baseline_report.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "attest_test_util.h"
#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "swtpm_fixture.h"
#include "vigil/attest/evidence.h"
#include "vigil/attest/verifier.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/baseline/store.h"
#include "vigil/digest.h"
#include "vigil/tpm.h"

namespace vigil {
namespace {

using attest::BaselineReport;
using attest::BaselineReportCheck;

std::vector<uint8_t> Random(size_t n) {
  std::vector<uint8_t> out(n);
  EXPECT_EQ(RAND_bytes(out.data(), static_cast<int>(n)), 1);
  return out;
}

// A snapshot as vigild saves it: a store that learnt a few exits.
std::string Snapshot(int agents = 3) {
  auto store = baseline::BaselineStore::Create(baseline::BaselineConfig{});
  EXPECT_TRUE(store.ok());
  for (int a = 0; a < agents; ++a) {
    const std::string name = "agent" + std::to_string(a);
    for (int i = 0; i < 20; ++i) {
      baseline::ExitSample s;
      s.agent = name;
      s.role = "worker";
      s.timestamp_ns = 1'000'000'000ull * (i + 1);
      s.cpu_ns = 5'000'000 + 1000 * i;
      s.lifetime_ns = 50'000'000 + 10'000 * i;
      s.max_rss_bytes = 8u << 20;
      s.faults = 100 + i;
      s.ctx_switches = 10 + i;
      s.syscalls = 1000 + i;
      store->ObserveExit(s);
    }
  }
  return store->Serialize();
}

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

records::Record MeasureRecord(uint64_t seq, const std::string& name, uint32_t kind,
                              std::span<const uint8_t> digest) {
  vigil_log_measure m;
  std::memset(&m, 0, sizeof(m));
  sim::ModuleSim::Header(m.hdr, VIGIL_LOG_MEASURE, sizeof(m), seq);
  m.kind = kind;
  m.pcr = VIGIL_PCR_NONE;
  std::strncpy(m.name, name.c_str(), sizeof(m.name) - 1);
  std::memcpy(m.digest, digest.data(), sizeof(m.digest));
  return *records::Record::FromStruct(m);
}

// What the node measured, as the test builds it.
struct Measured {
  std::string name = "baseline";
  uint32_t kind = VIGIL_MEASURE_USER;
  std::optional<crypto::Digest> digest;  // default: SHA-256 of the snapshot
  bool in_ima = true;                    // the MEASURE entry reaches IMA's log
  std::vector<records::Record> after;    // module records measured after it
};

class BaselineReportTest : public testing::SwtpmFixture {
 protected:
  void SetUp() override {
    SwtpmFixture::SetUp();
    auto esys = tpm::EsysContext::Open(tcti());
    ASSERT_TRUE(esys.ok()) << esys.status().ToString();
    tpm_.emplace(std::move(esys).value());
    auto ak = testing::CreateTestAk(tpm_->get());
    ASSERT_TRUE(ak.ok()) << ak.status().ToString();
    ak_ = *ak;
    auto pub = testing::ReadAkPublic(tpm_->get(), ak_);
    ASSERT_TRUE(pub.ok());
    ak_pub_ = *pub;
    snapshot_ = Snapshot();
    instance_.fill(0x5a);
    ima_.BootAggregate();
    ima_.File("/usr/sbin/vigild");
  }
  void TearDown() override {
    tpm_.reset();
    SwtpmFixture::TearDown();
  }

  // The node's side: MEASURE (into IMA's log and the swtpm's PCR 10, as
  // the module does with anchor=ima), a later unrelated measurement, then
  // the quote with the report's qualifying data, signed by `signer`.
  BaselineReport Make(const std::vector<uint8_t>& nonce, const Measured& m = {},
                      std::optional<ESYS_TR> signer = std::nullopt) {
    const crypto::Digest digest = *crypto::Hash(TPM2_ALG_SHA256, AsBytes(snapshot_));
    if (m.in_ima) {
      ima_.Record(instance_, MeasureRecord(kSeq, m.name, m.kind, m.digest.value_or(digest)));
    }
    for (const records::Record& rec : m.after) ima_.Record(instance_, rec);
    ima_.File("/usr/bin/later");
    for (; extended_ < ima_.extends.size(); ++extended_) {
      const auto& [alg, value] = ima_.extends[extended_];
      EXPECT_TRUE(tpm_->PcrExtend(10, {{alg, value}}).ok());
    }
    BaselineReport r;
    r.node = "00aa11bb";
    r.snapshot.assign(snapshot_.begin(), snapshot_.end());
    r.snapshot_sha256 = digest;
    r.instance = instance_;
    r.measure_seq = kSeq;
    r.nonce = nonce;
    auto qualifying =
        attest::BaselineReportQualifyingData(r.snapshot_sha256, r.instance, r.measure_seq, nonce);
    EXPECT_TRUE(qualifying.ok());
    const ESYS_TR key = signer.value_or(ak_);
    auto quote = attest_tpm::Quote(*tpm_, key, *qualifying, {{TPM2_ALG_SHA256, {10}}});
    EXPECT_TRUE(quote.ok()) << quote.status().ToString();
    if (quote.ok()) {
      r.quote_attest = quote->attest;
      r.quote_signature = quote->signature;
      r.pcr10_sha256 = quote->values.at(0).value;
    }
    r.ima_entries = ima_.log;
    auto pub = testing::ReadAkPublic(tpm_->get(), key);
    EXPECT_TRUE(pub.ok());
    r.ak_public = tpmobj::MarshalTpm2bPublic(*pub);
    return r;
  }

  BaselineReportCheck Check(const std::string& json,
                            std::optional<std::vector<uint8_t>> expected = std::nullopt) {
    std::optional<std::span<const uint8_t>> nonce;
    if (expected) nonce = std::span<const uint8_t>(*expected);
    return attest::CheckBaselineReport(json, ak_pub_, nonce);
  }
  BaselineReportCheck Check(const BaselineReport& r,
                            std::optional<std::vector<uint8_t>> expected = std::nullopt) {
    return Check(attest::SerializeBaselineReport(r), expected);
  }

  static std::string Reasons(const BaselineReportCheck& c) {
    std::string all;
    for (const std::string& why : c.reasons) all += why + "\n";
    return all;
  }
  // Refused, naming `why` in one of its reasons.
  static void ExpectRefused(const BaselineReportCheck& c, const std::string& why) {
    EXPECT_FALSE(c.valid) << why;
    EXPECT_NE(Reasons(c).find(why), std::string::npos) << "reasons:\n" << Reasons(c);
  }

  static constexpr uint64_t kSeq = 9;
  std::optional<tpm::EsysContext> tpm_;
  ESYS_TR ak_ = ESYS_TR_NONE;
  tpmobj::PublicArea ak_pub_;
  std::string snapshot_;
  chain::InstanceId instance_{};
  sim::ImaSim ima_;
  size_t extended_ = 0;
};

TEST_F(BaselineReportTest, HonestReportIsValidWithTheVerifiersNonce) {
  const auto nonce = Random(32);
  const BaselineReport r = Make(nonce);
  const std::string json = attest::SerializeBaselineReport(r);
  auto back = attest::ParseBaselineReport(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);

  const BaselineReportCheck c = Check(json, nonce);
  EXPECT_TRUE(c.valid) << Reasons(c);
  EXPECT_TRUE(c.fresh);
  EXPECT_EQ(c.agents, 3u);
  EXPECT_EQ(c.ima_entry, 2u);  // boot_aggregate, vigild, then the MEASURE
  EXPECT_EQ(c.measure_seq, kSeq);
  ASSERT_TRUE(c.clock.has_value());
  EXPECT_EQ(c.clock->safe, TPM2_YES);
  // Without a verifier's nonce it is still bound, but not fresh.
  const BaselineReportCheck unfresh = Check(json);
  EXPECT_TRUE(unfresh.valid) << Reasons(unfresh);
  EXPECT_FALSE(unfresh.fresh);
}

TEST_F(BaselineReportTest, AkGivenAsPemOrHexChecksTheSameReport) {
  const auto nonce = Random(16);
  const std::string json = attest::SerializeBaselineReport(Make(nonce));
  auto pem = tpmobj::ToPem(ak_pub_);
  ASSERT_TRUE(pem.ok());
  auto from_pem = attest::ParseAkFile(AsBytes(*pem));
  ASSERT_TRUE(from_pem.ok()) << from_pem.status().ToString();
  // The PEM carries the key, not the TPM attributes: the same key.
  BaselineReportCheck c = attest::CheckBaselineReport(json, *from_pem, nonce);
  EXPECT_TRUE(c.valid) << Reasons(c);
  const std::string hex = crypto::ToHex(tpmobj::MarshalTpm2bPublic(ak_pub_)) + "\n";
  auto from_hex = attest::ParseAkFile(AsBytes(hex));
  ASSERT_TRUE(from_hex.ok()) << from_hex.status().ToString();
  c = attest::CheckBaselineReport(json, *from_hex, nonce);
  EXPECT_TRUE(c.valid) << Reasons(c);
  const std::vector<uint8_t> bin = tpmobj::MarshalTpm2bPublic(ak_pub_);
  auto from_bin = attest::ParseAkFile(bin);
  ASSERT_TRUE(from_bin.ok());
  EXPECT_TRUE(attest::CheckBaselineReport(json, *from_bin, nonce).valid);
  EXPECT_FALSE(attest::ParseAkFile(AsBytes(std::string("garbage"))).ok());
}

TEST_F(BaselineReportTest, EditedSnapshotIsRefused) {
  const auto nonce = Random(32);
  BaselineReport r = Make(nonce);
  // One digit of a statistic changed: still a baseline state.
  std::string text(r.snapshot.begin(), r.snapshot.end());
  const size_t at = text.find_first_of("123456789", text.find("\"agents\""));
  ASSERT_NE(at, std::string::npos);
  text[at] = text[at] == '9' ? '8' : static_cast<char>(text[at] + 1);
  ASSERT_TRUE(attest::ParseBaselineSnapshot(text).ok());
  r.snapshot.assign(text.begin(), text.end());
  const BaselineReportCheck c = Check(r, nonce);
  ExpectRefused(c, "snapshot: its SHA-256 is");
  EXPECT_EQ(Reasons(c).find("quote:"), std::string::npos) << "only the snapshot is wrong";
}

TEST_F(BaselineReportTest, EditedDigestIsRefused) {
  const auto nonce = Random(32);
  BaselineReport r = Make(nonce);
  // The snapshot replaced and its digest recomputed: the quote and the
  // MEASURE entry still name the old digest.
  const std::string other = Snapshot(4);
  r.snapshot.assign(other.begin(), other.end());
  r.snapshot_sha256 = *crypto::Hash(TPM2_ALG_SHA256, AsBytes(other));
  const BaselineReportCheck c = Check(r, nonce);
  ExpectRefused(c, "quote: extraData is not this report's qualifying data");
  EXPECT_EQ(Reasons(c).find("snapshot:"), std::string::npos) << Reasons(c);
  // Only the digest field edited.
  BaselineReport d = Make(Random(8));
  d.snapshot_sha256[0] ^= 1;
  const BaselineReportCheck cd = Check(d);
  ExpectRefused(cd, "quote: extraData is not this report's qualifying data");
  ExpectRefused(cd, "snapshot: its SHA-256 is");
}

TEST_F(BaselineReportTest, MeasureEntryMissingIsRefused) {
  const auto nonce = Random(32);
  Measured m;
  m.in_ima = false;  // never measured: the quote is real, the log honest
  const BaselineReportCheck c = Check(Make(nonce, m), nonce);
  ExpectRefused(c, "measure: IMA's log holds no entry vigil-5a5a5a5a-measure-9");
}

TEST_F(BaselineReportTest, MeasureEntryRenamedIsRefused) {
  const auto nonce = Random(32);
  Measured m;
  m.name = "baseline2";
  ExpectRefused(Check(Make(nonce, m), nonce), "is named 'baseline2', not \"baseline\"");
}

TEST_F(BaselineReportTest, MeasureOfAnotherKindIsRefused) {
  Measured params;
  params.kind = VIGIL_MEASURE_PARAMS;
  ExpectRefused(Check(Make(Random(8), params)), "of kind 2, not a MEASURE ioctl's");
}

TEST_F(BaselineReportTest, MeasureOfAnotherDigestIsRefused) {
  Measured m;
  m.digest = crypto::Digest(32, 0xee);
  ExpectRefused(Check(Make(Random(8), m)), "not the report's snapshot_sha256");
}

TEST_F(BaselineReportTest, SupersededReportIsRefused) {
  // A second "baseline" MEASURE (another digest, a later seq) before the
  // quote: the report is no longer the instance's newest baseline.
  Measured m;
  m.after.push_back(
      MeasureRecord(kSeq + 3, "baseline", VIGIL_MEASURE_USER, crypto::Digest(32, 0x77)));
  ExpectRefused(Check(Make(Random(8), m)),
                "measure: superseded: a later \"baseline\" MEASURE (seq 12");
}

TEST_F(BaselineReportTest, LaterMeasureOfAnotherNameDoesNotSupersede) {
  Measured m;
  m.after.push_back(
      MeasureRecord(kSeq + 3, "config", VIGIL_MEASURE_USER, crypto::Digest(32, 0x77)));
  const BaselineReportCheck c = Check(Make(Random(8), m));
  EXPECT_TRUE(c.valid) << Reasons(c);
}

TEST_F(BaselineReportTest, EditedImaEntryIsRefused) {
  const auto nonce = Random(32);
  BaselineReport r = Make(nonce);
  // The MEASURE record's digest inside IMA's log (the ima-buf entry's
  // buffer): the entry no longer hashes to what PCR 10 was extended with.
  auto& log = r.ima_entries;
  const auto at =
      std::search(log.begin(), log.end(), r.snapshot_sha256.begin(), r.snapshot_sha256.end());
  ASSERT_NE(at, log.end());
  *at ^= 0x01;
  ExpectRefused(Check(r, nonce), "ima: ");
}

TEST_F(BaselineReportTest, DroppedImaEntryIsRefused) {
  const auto nonce = Random(32);
  BaselineReport r = Make(nonce);
  // The log without the MEASURE entry (rebuilt without it): the
  // remaining entries no longer replay to the quoted PCR 10.
  sim::ImaSim without;
  without.BootAggregate();
  without.File("/usr/sbin/vigild");
  without.File("/usr/bin/later");
  r.ima_entries = without.log;
  ExpectRefused(Check(r, nonce), "ima: IMA's log does not replay to the quoted PCR 10");
  // And cut short inside an entry.
  BaselineReport cut = Make(Random(8));
  cut.ima_entries.resize(cut.ima_entries.size() - 5);
  ExpectRefused(Check(cut), "ima: IMA's log:");
}

TEST_F(BaselineReportTest, QuoteByAnotherAkIsRefused) {
  const auto nonce = Random(32);
  // The attacker's own restricted key on the same TPM, named in the report.
  auto other = testing::CreateTestAk(tpm_->get(), ESYS_TR_RH_ENDORSEMENT, 7);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  const BaselineReportCheck c = Check(Make(nonce, {}, *other), nonce);
  ExpectRefused(c, "ak: the report's ak_public is not the AK trusted");
  ExpectRefused(c, "quote: quote signature does not verify");
}

TEST_F(BaselineReportTest, NonceMismatchIsRefused) {
  const auto nonce = Random(32);
  BaselineReport r = Make(nonce);
  // The verifier asked with another nonce: a stale report.
  ExpectRefused(Check(r, Random(32)), "nonce: the report's nonce");
  // The nonce field changed to the verifier's: the quote does not bind it.
  const auto verifier = Random(32);
  r.nonce = verifier;
  const BaselineReportCheck c = Check(r, verifier);
  ExpectRefused(c, "quote: extraData is not this report's qualifying data");
  EXPECT_EQ(Reasons(c).find("nonce:"), std::string::npos);
}

TEST_F(BaselineReportTest, PcrValueMismatchIsRefused) {
  BaselineReport r = Make(Random(32));
  r.pcr10_sha256[5] ^= 0x40;
  ExpectRefused(Check(r), "pcrs: ");
}

TEST_F(BaselineReportTest, SnapshotThatIsNoBaselineStateIsRefused) {
  // Measured and quoted honestly, but not a state vigild could write.
  snapshot_ = R"({"format":"something else"})";
  ExpectRefused(Check(Make(Random(8))), "snapshot: not a baseline state");
}

TEST_F(BaselineReportTest, MalformedReportsAreRefused) {
  const std::string json = attest::SerializeBaselineReport(Make(Random(8)));
  for (size_t cut : {size_t{0}, size_t{1}, json.size() / 3, json.size() - 3}) {
    const BaselineReportCheck c = Check(json.substr(0, cut));
    ExpectRefused(c, "report: ");
    EXPECT_EQ(c.reasons.size(), 1u);
  }
  ExpectRefused(Check(std::string("\x00\xff garbage", 10)), "report: ");
  ExpectRefused(Check(std::string("[]")), "report: baseline report: (top)");
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = json;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  };
  ExpectRefused(Check(edit("\"version\":1", "\"version\":2")), "version 2 is not supported");
  ExpectRefused(Check(edit("\"format\":\"vigil-baseline-report\"", "\"format\":\"x\"")),
                "report: baseline report: format");
  ExpectRefused(Check(edit("\"version\":1", "\"version\":1,\"version\":1")), "appears twice");
  ExpectRefused(Check(edit("\"version\":1", "\"version\":1,\"extra\":0")), "unknown field");
  ExpectRefused(Check(edit("\"name\":\"baseline\"", "\"name\":\"other\"")), "measure.name");
  ExpectRefused(Check(edit("\"pcr\":10", "\"pcr\":16")), "pcrs[0].pcr");
  ExpectRefused(Check(edit("\"snapshot\":\"", "\"snapshot\":\"!")), "snapshot");
}

struct ShellResult {
  int code = -1;
  std::string out;
};

ShellResult Shell(const std::string& cmd) {
  ShellResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// vigil-verifier check-report: the AK from the verifier's state (an
// activated node) or from a file; exit 0 valid, 1 invalid, 2 usage, 3 error.
TEST_F(BaselineReportTest, VerifierCommandChecksAReport) {
  testing::TempDir dir;
  const auto nonce = Random(32);
  const BaselineReport r = Make(nonce);
  const std::string report = dir.path() + "/report.json";
  WriteFile(report, attest::SerializeBaselineReport(r));
  BaselineReport edited = r;
  edited.snapshot.back() = ' ';  // the text after the JSON: same state, other bytes
  const std::string bad = dir.path() + "/edited.json";
  WriteFile(bad, attest::SerializeBaselineReport(edited));
  // The verifier's state after activation (service.h's layout).
  attest::NodeState state;
  state.node = r.node;
  state.ak = ak_pub_;
  const std::string node_dir = dir.path() + "/state/nodes/" + r.node;
  ASSERT_EQ(::mkdir((dir.path() + "/state").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dir.path() + "/state/nodes").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(node_dir.c_str(), 0700), 0);
  WriteFile(node_dir + "/state.json", attest::SerializeNodeState(state));
  const std::string pem = dir.path() + "/ak.pem";
  WriteFile(pem, *tpmobj::ToPem(ak_pub_));

  const std::string v = std::string(VIGIL_VERIFIER_PATH) + " check-report ";
  const std::string by_node = " --state " + dir.path() + "/state --node " + r.node;
  ShellResult ok = Shell(v + "--report " + report + by_node + " --nonce " + crypto::ToHex(nonce));
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(ok.out.rfind("valid: node 00aa11bb, 3 agents", 0), 0u) << ok.out;
  EXPECT_NE(ok.out.find("fresh (the verifier's nonce)"), std::string::npos) << ok.out;
  ShellResult pem_ok = Shell(v + "--report " + report + " --ak " + pem + " --json");
  EXPECT_EQ(pem_ok.code, 0) << pem_ok.out;
  EXPECT_NE(pem_ok.out.find("\"valid\":true"), std::string::npos) << pem_ok.out;

  ShellResult refused = Shell(v + "--report " + bad + by_node);
  EXPECT_EQ(refused.code, 1) << refused.out;
  EXPECT_NE(refused.out.find("snapshot: its SHA-256 is"), std::string::npos) << refused.out;
  ShellResult stale = Shell(v + "--report " + report + by_node + " --nonce 00ff");
  EXPECT_EQ(stale.code, 1) << stale.out;
  EXPECT_NE(stale.out.find("nonce: the report's nonce"), std::string::npos) << stale.out;

  // Checked with node 00aa11bb's AK, but claiming another node.
  BaselineReport renamed = r;
  renamed.node = "00aa11cc";
  const std::string other_node = dir.path() + "/other-node.json";
  WriteFile(other_node, attest::SerializeBaselineReport(renamed));
  ShellResult misnamed = Shell(v + "--report " + other_node + by_node);
  EXPECT_EQ(misnamed.code, 1) << misnamed.out;
  EXPECT_NE(misnamed.out.find("node: the report names node 00aa11cc"), std::string::npos)
      << misnamed.out;

  EXPECT_EQ(Shell(v + "--report " + report).code, 2);                        // no AK given
  EXPECT_EQ(Shell(v + "--report " + report + " --node " + r.node).code, 2);  // no --state
  EXPECT_EQ(Shell(v + "--report " + report + by_node + " --ak " + pem).code, 2);
  ShellResult unknown =
      Shell(v + "--report " + report + " --state " + dir.path() + "/state --node 00aa11cc");
  EXPECT_EQ(unknown.code, 3) << unknown.out;
  EXPECT_NE(unknown.out.find("not enrolled and activated"), std::string::npos) << unknown.out;
  EXPECT_EQ(Shell(v + "--report " + dir.path() + "/missing.json" + by_node).code, 3);
}

}  // namespace
}  // namespace vigil
