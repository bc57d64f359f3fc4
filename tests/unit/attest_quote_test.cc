// Quotes made by a real (software) TPM through attest_tpm::Quote, checked
// by the pure attest checks: what passes, and each way a quote, its PCR
// values or its clock can be wrong. Clock events come from real power
// cycles of swtpm (its control channel), not only from edited structures.
#include <gtest/gtest.h>
#include <tss2/tss2_mu.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "attest_test_util.h"
#include "swtpm_fixture.h"
#include "vigil/attest/quote.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/tpm.h"

namespace vigil {
namespace {

using attest::ClockEvent;
using attest::PcrSelection;
using attest::PcrValue;

const std::vector<PcrSelection> kSelection = {{TPM2_ALG_SHA256, {16, 23}}};

std::vector<uint8_t> Nonce(uint8_t seed) {
  std::vector<uint8_t> n(32);
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(seed + i);
  return n;
}

class AttestQuoteTest : public testing::SwtpmFixture {
 protected:
  void SetUp() override {
    SwtpmFixture::SetUp();
    if (HasFatalFailure()) return;
    Connect();
  }

  void Connect() {
    tpm_.reset();
    auto ctx = tpm::EsysContext::Open(tcti());
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    tpm_.emplace(std::move(ctx).value());
    auto ak = testing::CreateTestAk(tpm_->get());
    ASSERT_TRUE(ak.ok()) << ak.status().ToString();
    ak_ = *ak;
    auto pub = testing::ReadAkPublic(tpm_->get(), ak_);
    ASSERT_TRUE(pub.ok()) << pub.status().ToString();
    ak_public_ = *pub;
  }

  // Power cycle, then Startup(`startup`), after Shutdown(`shutdown`) unless
  // it is nullopt (a power loss).
  void PowerCycle(std::optional<TPM2_SU> shutdown, TPM2_SU startup) {
    if (shutdown) {
      ASSERT_EQ(Esys_Shutdown(tpm_->get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, *shutdown),
                TSS2_RC_SUCCESS);
    }
    tpm_.reset();
    Status st = testing::SwtpmPowerCycle(tcti());
    ASSERT_TRUE(st.ok()) << st.ToString();
    auto ctx = tpm::EsysContext::Open(tcti());
    ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
    ASSERT_EQ(Esys_Startup(ctx->get(), startup), TSS2_RC_SUCCESS);
    tpm_.reset();
    Connect();  // transient objects are gone: the same AK again
  }

  attest_tpm::QuoteOut MakeQuote(const std::vector<uint8_t>& nonce,
                                 const std::vector<PcrSelection>& selection = kSelection) {
    auto q = attest_tpm::Quote(*tpm_, ak_, nonce, selection);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? *q : attest_tpm::QuoteOut{};
  }

  attest::QuoteFacts Check(const attest_tpm::QuoteOut& q, const std::vector<uint8_t>& nonce) {
    auto facts = attest::CheckQuote(ak_public_, q.attest, q.signature, nonce);
    EXPECT_TRUE(facts.ok()) << facts.status().ToString();
    return facts.ok() ? *facts : attest::QuoteFacts{};
  }

  void Extend(uint32_t pcr, uint8_t byte) {
    ASSERT_TRUE(tpm_->PcrExtend(pcr, {{TPM2_ALG_SHA256, crypto::Digest(32, byte)}}).ok());
  }

  std::optional<tpm::EsysContext> tpm_;
  ESYS_TR ak_ = ESYS_TR_NONE;
  tpmobj::PublicArea ak_public_;
};

TEST_F(AttestQuoteTest, GoodQuotePassesEveryCheck) {
  Extend(16, 0x16);
  const auto nonce = Nonce(1);
  const auto q = MakeQuote(nonce);
  ASSERT_EQ(q.values.size(), 2u);
  EXPECT_EQ(q.values[0].pcr, 16u);
  EXPECT_EQ(q.values[1].pcr, 23u);
  EXPECT_NE(q.values[0].value, crypto::Digest(32, 0));  // extended
  const attest::QuoteFacts facts = Check(q, nonce);
  EXPECT_EQ(facts.selection, kSelection);
  EXPECT_EQ(facts.pcr_digest_alg, TPM2_ALG_SHA256);
  EXPECT_EQ(facts.clock.safe, TPM2_YES);
  // The qualified name: nameAlg (SHA-256) || digest.
  EXPECT_EQ(facts.qualified_signer.size(), 34u);
  Status st = attest::CheckPcrs(facts, kSelection, q.values);
  EXPECT_TRUE(st.ok()) << st.ToString();
  auto clock = attest::CheckClock(nullptr, facts.clock);
  ASSERT_TRUE(clock.ok());
  EXPECT_EQ(clock->event, ClockEvent::kFirst);
}

TEST_F(AttestQuoteTest, PcrDigestUsesTheSigningHashAcrossBanks) {
  // A SHA-1 bank quoted by an ECDSA-SHA256 AK: the 20-byte values are
  // hashed with SHA-256 (the signing scheme's hash), which CheckPcrs uses.
  const std::vector<PcrSelection> both = {{TPM2_ALG_SHA1, {16}}, {TPM2_ALG_SHA256, {16, 23}}};
  const auto nonce = Nonce(2);
  const auto q = MakeQuote(nonce, both);
  ASSERT_EQ(q.values.size(), 3u);
  EXPECT_EQ(q.values[0].value.size(), 20u);
  const attest::QuoteFacts facts = Check(q, nonce);
  EXPECT_EQ(facts.pcr_digest.size(), 32u);
  Status st = attest::CheckPcrs(facts, both, q.values);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::vector<crypto::Digest> ordered;
  for (const PcrValue& v : q.values) ordered.push_back(v.value);
  EXPECT_EQ(*tpmobj::PcrCompositeDigest(TPM2_ALG_SHA256, ordered), facts.pcr_digest);
  EXPECT_NE(*tpmobj::PcrCompositeDigest(TPM2_ALG_SHA1, ordered), facts.pcr_digest);
}

TEST_F(AttestQuoteTest, WrongNonceIsRefused) {
  const auto q = MakeQuote(Nonce(3));
  auto facts = attest::CheckQuote(ak_public_, q.attest, q.signature, Nonce(4));
  ASSERT_FALSE(facts.ok());
  EXPECT_EQ(facts.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(facts.status().message().find("nonce"), std::string::npos) << facts.status().message();
  // A prefix of the nonce is not the nonce either.
  const std::vector<uint8_t> full = Nonce(3);
  auto prefix = attest::CheckQuote(ak_public_, q.attest, q.signature, std::span(full).first(16));
  EXPECT_EQ(prefix.status().code(), ErrorCode::kMismatch);
  EXPECT_EQ(attest::CheckQuote(ak_public_, q.attest, q.signature, {}).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(AttestQuoteTest, QuoteOfAnotherAkIsRefused) {
  auto other = testing::CreateTestAk(tpm_->get(), ESYS_TR_RH_ENDORSEMENT, 7);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  const auto nonce = Nonce(5);
  auto q = attest_tpm::Quote(*tpm_, *other, nonce, kSelection);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto facts = attest::CheckQuote(ak_public_, q->attest, q->signature, nonce);
  ASSERT_FALSE(facts.ok());
  EXPECT_EQ(facts.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(facts.status().message().find("signature does not verify"), std::string::npos);
  // The other AK's own public area accepts it.
  auto other_pub = testing::ReadAkPublic(tpm_->get(), *other);
  ASSERT_TRUE(other_pub.ok());
  EXPECT_TRUE(attest::CheckQuote(*other_pub, q->attest, q->signature, nonce).ok());
}

TEST_F(AttestQuoteTest, FlippedSignatureOrAttestByteIsRefused) {
  const auto nonce = Nonce(6);
  const auto q = MakeQuote(nonce);
  // Every byte of r and s (after sigAlg, hash and the size of r).
  for (size_t i = 6; i < q.signature.size(); ++i) {
    if (i == 6 + 32 || i == 6 + 33) continue;  // size of s
    auto sig = q.signature;
    sig[i] ^= 0x01;
    auto facts = attest::CheckQuote(ak_public_, q.attest, sig, nonce);
    ASSERT_FALSE(facts.ok()) << "signature byte " << i;
    EXPECT_EQ(facts.status().code(), ErrorCode::kMismatch) << i << facts.status().ToString();
  }
  for (size_t i = 0; i < q.attest.size(); ++i) {
    auto attest = q.attest;
    attest[i] ^= 0x80;
    auto facts = attest::CheckQuote(ak_public_, attest, q.signature, nonce);
    ASSERT_FALSE(facts.ok()) << "attest byte " << i;
  }
  // Trailing bytes are refused even though the signature covers them.
  auto longer = q.attest;
  longer.push_back(0);
  EXPECT_FALSE(attest::CheckQuote(ak_public_, longer, q.signature, nonce).ok());
  // A truncated signature does not unmarshal.
  auto short_sig = q.signature;
  short_sig.pop_back();
  EXPECT_EQ(attest::CheckQuote(ak_public_, q.attest, short_sig, nonce).status().code(),
            ErrorCode::kMalformed);
}

TEST_F(AttestQuoteTest, CertifyOutputSignedByTheAkIsNotAQuote) {
  const auto nonce = Nonce(8);
  TPM2B_DATA qualifying{};
  qualifying.size = static_cast<UINT16>(nonce.size());
  std::memcpy(qualifying.buffer, nonce.data(), nonce.size());
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;
  TPM2B_ATTEST* raw_attest = nullptr;
  TPMT_SIGNATURE* raw_sig = nullptr;
  ASSERT_EQ(Esys_Certify(tpm_->get(), ak_, ak_, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                         &qualifying, &scheme, &raw_attest, &raw_sig),
            TSS2_RC_SUCCESS);
  tpm::EsysPtr<TPM2B_ATTEST> attest(raw_attest);
  tpm::EsysPtr<TPMT_SIGNATURE> sig(raw_sig);
  std::vector<uint8_t> sig_bytes(sizeof(TPMT_SIGNATURE));
  size_t off = 0;
  ASSERT_EQ(Tss2_MU_TPMT_SIGNATURE_Marshal(sig.get(), sig_bytes.data(), sig_bytes.size(), &off),
            TSS2_RC_SUCCESS);
  sig_bytes.resize(off);
  const std::vector<uint8_t> attest_bytes(attest->attestationData,
                                          attest->attestationData + attest->size);
  auto facts = attest::CheckQuote(ak_public_, attest_bytes, sig_bytes, nonce);
  ASSERT_FALSE(facts.ok());
  EXPECT_EQ(facts.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(facts.status().message().find("TPM_ST_ATTEST_QUOTE"), std::string::npos)
      << facts.status().message();
}

TEST_F(AttestQuoteTest, ChangedPcrValueDoesNotMatchTheDigest) {
  const auto nonce = Nonce(9);
  const auto q = MakeQuote(nonce);
  const attest::QuoteFacts facts = Check(q, nonce);
  auto values = q.values;
  values[1].value[31] ^= 1;
  Status st = attest::CheckPcrs(facts, kSelection, values);
  EXPECT_EQ(st.code(), ErrorCode::kMismatch);
  EXPECT_NE(st.message().find("pcrDigest"), std::string::npos) << st.message();
  // The PCR really moving after the quote: the new value does not match.
  Extend(23, 0x23);
  auto now = attest_tpm::ReadPcrs(*tpm_, kSelection);
  ASSERT_TRUE(now.ok());
  EXPECT_NE(*now, q.values);
  EXPECT_EQ(attest::CheckPcrs(facts, kSelection, *now).code(), ErrorCode::kMismatch);
  // Values in another order are the same values: accepted.
  auto swapped = q.values;
  std::swap(swapped[0], swapped[1]);
  EXPECT_TRUE(attest::CheckPcrs(facts, kSelection, swapped).ok());
}

TEST_F(AttestQuoteTest, SelectionMustBeExactlyTheExpectedOne) {
  const auto nonce = Nonce(10);
  const auto q = MakeQuote(nonce);
  const attest::QuoteFacts facts = Check(q, nonce);
  // The verifier asked for less: the quote has an extra PCR.
  Status extra = attest::CheckPcrs(facts, {{TPM2_ALG_SHA256, {16}}}, {q.values[0]});
  EXPECT_EQ(extra.code(), ErrorCode::kMismatch);
  EXPECT_NE(extra.message().find("sha256:23"), std::string::npos) << extra.message();
  // The verifier asked for more: the quote misses one.
  Status missing = attest::CheckPcrs(facts, {{TPM2_ALG_SHA256, {10, 16, 23}}}, q.values);
  EXPECT_EQ(missing.code(), ErrorCode::kMismatch);
  EXPECT_NE(missing.message().find("sha256:10"), std::string::npos) << missing.message();
  // Another bank.
  EXPECT_EQ(attest::CheckPcrs(facts, {{TPM2_ALG_SHA1, {16, 23}}}, q.values).code(),
            ErrorCode::kMismatch);
  // A value too many, twice, or missing.
  auto more = q.values;
  more.push_back({TPM2_ALG_SHA256, 10, crypto::Digest(32, 0)});
  EXPECT_EQ(attest::CheckPcrs(facts, kSelection, more).code(), ErrorCode::kMismatch);
  auto twice = q.values;
  twice.push_back(q.values[0]);
  EXPECT_EQ(attest::CheckPcrs(facts, kSelection, twice).code(), ErrorCode::kMalformed);
  EXPECT_EQ(attest::CheckPcrs(facts, kSelection, {q.values[0]}).code(), ErrorCode::kMismatch);
  // A bad expectation is the caller's error.
  EXPECT_EQ(attest::CheckPcrs(facts, {{TPM2_ALG_SHA256, {23, 16}}}, q.values).code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(AttestQuoteTest, ClockRulesOnRealAndEditedClocks) {
  const auto nonce = Nonce(11);
  const attest::QuoteFacts first = Check(MakeQuote(nonce), nonce);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const attest::QuoteFacts second = Check(MakeQuote(Nonce(12)), Nonce(12));
  auto running = attest::CheckClock(&first.clock, second.clock);
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_EQ(running->event, ClockEvent::kRunning);
  EXPECT_GE(running->clock_advance_ms, 10u);

  // The same quote again (a replay) and the older one after the newer.
  EXPECT_EQ(attest::CheckClock(&second.clock, second.clock).status().code(), ErrorCode::kMismatch);
  auto back = attest::CheckClock(&second.clock, first.clock);
  EXPECT_EQ(back.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(back.status().message().find("must increase"), std::string::npos);

  TPMS_CLOCK_INFO unsafe = second.clock;
  unsafe.safe = TPM2_NO;
  auto s = attest::CheckClock(&first.clock, unsafe);
  EXPECT_EQ(s.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(s.status().message().find("safe"), std::string::npos);
  EXPECT_FALSE(attest::CheckClock(nullptr, unsafe).ok());

  TPMS_CLOCK_INFO prev_reset = first.clock;
  prev_reset.resetCount = second.clock.resetCount + 1;
  auto r = attest::CheckClock(&prev_reset, second.clock);
  EXPECT_EQ(r.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(r.status().message().find("resetCount"), std::string::npos);

  TPMS_CLOCK_INFO prev_restart = first.clock;
  prev_restart.restartCount = second.clock.restartCount + 1;
  auto rs = attest::CheckClock(&prev_restart, second.clock);
  EXPECT_EQ(rs.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(rs.status().message().find("restartCount"), std::string::npos);
}

TEST_F(AttestQuoteTest, TpmResetIsReportedAndResetsThePcrs) {
  Extend(16, 0x16);
  const attest::QuoteFacts before = Check(MakeQuote(Nonce(13)), Nonce(13));
  // Orderly Shutdown(CLEAR) then Startup(CLEAR): TPM Reset.
  PowerCycle(TPM2_SU_CLEAR, TPM2_SU_CLEAR);
  if (HasFatalFailure()) return;
  const auto q = MakeQuote(Nonce(14));
  const attest::QuoteFacts after = Check(q, Nonce(14));
  EXPECT_EQ(after.clock.resetCount, before.clock.resetCount + 1);
  EXPECT_EQ(after.clock.restartCount, 0u);
  EXPECT_EQ(q.values[0].value, crypto::Digest(32, 0));  // PCR 16 reset
  auto report = attest::CheckClock(&before.clock, after.clock);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->event, ClockEvent::kReset);
  // A reset never goes back.
  EXPECT_FALSE(attest::CheckClock(&after.clock, before.clock).ok());
}

TEST_F(AttestQuoteTest, PowerLossWithoutShutdownClearsSafe) {
  const attest::QuoteFacts before = Check(MakeQuote(Nonce(21)), Nonce(21));
  // No TPM2_Shutdown: the TPM cannot know that Clock was saved, so it may
  // already have reported a larger value: safe is NO (until Clock is next
  // written to NV), and CheckClock refuses to order the quote.
  PowerCycle(std::nullopt, TPM2_SU_CLEAR);
  if (HasFatalFailure()) return;
  const attest::QuoteFacts after = Check(MakeQuote(Nonce(22)), Nonce(22));
  EXPECT_EQ(after.clock.resetCount, before.clock.resetCount + 1);
  EXPECT_EQ(after.clock.safe, TPM2_NO);
  auto report = attest::CheckClock(&before.clock, after.clock);
  EXPECT_EQ(report.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(report.status().message().find("safe"), std::string::npos);
}

TEST_F(AttestQuoteTest, TpmRestartAndResumeAreReported) {
  Extend(16, 0x16);
  const auto q0 = MakeQuote(Nonce(15));
  const attest::QuoteFacts before = Check(q0, Nonce(15));
  // Shutdown(STATE) then Startup(CLEAR): TPM Restart (PCRs reset).
  PowerCycle(TPM2_SU_STATE, TPM2_SU_CLEAR);
  if (HasFatalFailure()) return;
  const auto q1 = MakeQuote(Nonce(16));
  const attest::QuoteFacts restarted = Check(q1, Nonce(16));
  EXPECT_EQ(restarted.clock.resetCount, before.clock.resetCount);
  EXPECT_EQ(restarted.clock.restartCount, before.clock.restartCount + 1);
  auto report = attest::CheckClock(&before.clock, restarted.clock);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->event, ClockEvent::kRestart);
  EXPECT_EQ(q1.values[0].value, crypto::Digest(32, 0));

  // Shutdown(STATE) then Startup(STATE): TPM Resume. PCRs 0..15 are kept;
  // 16..23 (pcr_events' default 23, the development anchor 16) are reset:
  // their PC Client attributes do not save them (seen here on libtpms).
  const std::vector<PcrSelection> with10 = {{TPM2_ALG_SHA256, {10, 16, 23}}};
  ASSERT_TRUE(tpm_->PcrExtend(10, {{TPM2_ALG_SHA256, crypto::Digest(32, 0x10)}}).ok());
  Extend(16, 0x17);
  Extend(23, 0x18);
  const auto q2 = MakeQuote(Nonce(17), with10);
  const attest::QuoteFacts extended = Check(q2, Nonce(17));
  PowerCycle(TPM2_SU_STATE, TPM2_SU_STATE);
  if (HasFatalFailure()) return;
  const auto q3 = MakeQuote(Nonce(18), with10);
  const attest::QuoteFacts resumed = Check(q3, Nonce(18));
  auto resume = attest::CheckClock(&extended.clock, resumed.clock);
  ASSERT_TRUE(resume.ok()) << resume.status().ToString();
  EXPECT_EQ(resume->event, ClockEvent::kRestart);
  EXPECT_EQ(resumed.clock.restartCount, extended.clock.restartCount + 1);
  ASSERT_EQ(q3.values.size(), 3u);
  EXPECT_EQ(q3.values[0].value, q2.values[0].value);  // PCR 10 kept
  EXPECT_NE(q2.values[0].value, crypto::Digest(32, 0));
  EXPECT_EQ(q3.values[1].value, crypto::Digest(32, 0));  // PCR 16 reset
  EXPECT_EQ(q3.values[2].value, crypto::Digest(32, 0));  // PCR 23 reset
}

TEST_F(AttestQuoteTest, OwnerHierarchyKeysGetObfuscatedCounters) {
  // Why the AK belongs in the endorsement hierarchy: a key elsewhere sees
  // resetCount and restartCount with a per-key value added.
  auto owner = testing::CreateTestAk(tpm_->get(), ESYS_TR_RH_OWNER);
  ASSERT_TRUE(owner.ok());
  auto owner_pub = testing::ReadAkPublic(tpm_->get(), *owner);
  ASSERT_TRUE(owner_pub.ok());
  const auto nonce = Nonce(19);
  auto q = attest_tpm::Quote(*tpm_, *owner, nonce, kSelection);
  ASSERT_TRUE(q.ok());
  auto facts = attest::CheckQuote(*owner_pub, q->attest, q->signature, nonce);
  ASSERT_TRUE(facts.ok());
  const attest::QuoteFacts endorsement = Check(MakeQuote(nonce), nonce);
  EXPECT_NE(facts->clock.resetCount, endorsement.clock.resetCount);
  EXPECT_EQ(facts->clock.clock / 1000, endorsement.clock.clock / 1000);
}

TEST_F(AttestQuoteTest, QuoteRefusesBadArguments) {
  EXPECT_EQ(attest_tpm::Quote(*tpm_, ak_, {}, kSelection).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(attest_tpm::Quote(*tpm_, ak_, Nonce(1), {{TPM2_ALG_SHA256, {24}}}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(attest_tpm::Quote(*tpm_, ak_, Nonce(1), {{TPM2_ALG_SHA256, {}}}).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(attest_tpm::Quote(*tpm_, ak_, std::vector<uint8_t>(65, 1), kSelection).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(AttestQuoteTest, ReadPcrsSpansSeveralResponses) {
  // 24 PCRs in two banks: more than the 8 digests one TPM2_PCR_Read returns.
  PcrSelection all256{TPM2_ALG_SHA256, {}};
  PcrSelection all1{TPM2_ALG_SHA1, {}};
  for (uint32_t i = 0; i < 24; ++i) {
    all256.pcrs.push_back(i);
    all1.pcrs.push_back(i);
  }
  Extend(16, 0x42);
  auto values = attest_tpm::ReadPcrs(*tpm_, {all1, all256});
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  ASSERT_EQ(values->size(), 48u);
  for (size_t i = 0; i < 48; ++i) {
    EXPECT_EQ((*values)[i].alg, i < 24 ? TPM2_ALG_SHA1 : TPM2_ALG_SHA256);
    EXPECT_EQ((*values)[i].pcr, i % 24);
    EXPECT_EQ((*values)[i].value.size(), i < 24 ? 20u : 32u);
  }
  EXPECT_EQ((*values)[24 + 16].value, *tpm_->PcrRead(TPM2_ALG_SHA256, 16));
  const auto nonce = Nonce(20);
  auto q = attest_tpm::Quote(*tpm_, ak_, nonce, {all1, all256});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto facts = attest::CheckQuote(ak_public_, q->attest, q->signature, nonce);
  ASSERT_TRUE(facts.ok());
  EXPECT_TRUE(attest::CheckPcrs(*facts, {all1, all256}, q->values).ok());
}

}  // namespace
}  // namespace vigil
