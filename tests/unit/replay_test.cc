// Replay of pcr_config / pcr_events from a synthetic log, checked against an
// independent model of the extend rule (one-shot EVP_Digest).
#include "vigil/replay.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <vector>

#include "test_records.h"

namespace vigil {
namespace {

const EVP_MD* Md(uint16_t alg) { return alg == VIGIL_ALG_SHA1 ? EVP_sha1() : EVP_sha256(); }

crypto::Digest RefHash(uint16_t alg, const uint8_t* p, size_t n) {
  crypto::Digest out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(p, n, out.data(), &len, Md(alg), nullptr), 1);
  out.resize(len);
  return out;
}

// pcr = H(pcr || H(record))
template <typename T>
void RefExtend(uint16_t alg, crypto::Digest& pcr, const T& rec) {
  crypto::Digest m = RefHash(alg, reinterpret_cast<const uint8_t*>(&rec), sizeof(T));
  crypto::Digest buf = pcr;
  buf.insert(buf.end(), m.begin(), m.end());
  pcr = RefHash(alg, buf.data(), buf.size());
}

vigil_log_base MakeBase(uint64_t log_seq, uint8_t fill) {
  auto b = testing::Blank<vigil_log_base>(VIGIL_LOG_BASE, log_seq);
  b.first_kept_seq = log_seq;  // the BASE written at load; tests of trims override
  b.nr_banks = 2;
  b.bank[0].alg = VIGIL_ALG_SHA1;
  b.bank[1].alg = VIGIL_ALG_SHA256;
  std::memset(b.bank[0].config, fill, 20);
  std::memset(b.bank[1].config, fill, 32);
  std::memset(b.bank[0].events, fill + 1, 20);
  std::memset(b.bank[1].events, fill + 1, 32);
  return b;
}

vigil_log_key MakeKey(uint64_t log_seq, uint32_t pcr) {
  auto k = testing::Blank<vigil_log_key>(VIGIL_LOG_KEY, log_seq);
  k.pcr = pcr;
  k.curve = 3;
  k.sig_alg = 0x18;
  k.x[0] = 0x42;
  return k;
}

vigil_log_checkpoint MakeCp(uint64_t log_seq, uint32_t anchor) {
  auto c = testing::Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, log_seq);
  c.first_seq = 1;
  c.last_seq = log_seq;
  c.anchor = anchor;
  c.chain_head[0] = static_cast<uint8_t>(log_seq);
  return c;
}

vigil_log_signature MakeSig(uint64_t log_seq) {
  auto s = testing::Blank<vigil_log_signature>(VIGIL_LOG_SIGNATURE, log_seq);
  s.status = VIGIL_SIG_OK;
  return s;
}

TEST(Replay, FollowsTheHashingRulesPerBank) {
  const auto base = MakeBase(1, 0);
  const auto m1 = testing::MakeMeasure(2, 16, "vigil.ko");
  const auto m2 = testing::MakeMeasure(3, 16, "params");
  const auto key = MakeKey(4, 16);
  const auto cp = MakeCp(5, VIGIL_ANCHOR_PCR);
  const auto sig = MakeSig(6);
  const auto m3 = testing::MakeMeasure(7, 16, "policy");
  std::vector<records::Record> log = {testing::ToRecord(base), testing::ToRecord(m1),
                                      testing::ToRecord(m2),   testing::ToRecord(key),
                                      testing::ToRecord(cp),   testing::ToRecord(sig),
                                      testing::ToRecord(m3)};
  auto r = replay::ReplayLog(log);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->base_seq, 1u);
  EXPECT_EQ(r->config_extends, 4u);
  EXPECT_EQ(r->events_extends, 1u);
  ASSERT_TRUE(r->config_pcr.has_value());
  EXPECT_EQ(*r->config_pcr, 16u);
  ASSERT_EQ(r->banks.size(), 2u);
  for (const auto& bank : r->banks) {
    const size_t n = bank.alg == VIGIL_ALG_SHA1 ? 20 : 32;
    crypto::Digest config(n, 0), events(n, 1);
    RefExtend(bank.alg, config, m1);
    RefExtend(bank.alg, config, m2);
    RefExtend(bank.alg, config, key);
    RefExtend(bank.alg, events, cp);
    RefExtend(bank.alg, config, m3);
    EXPECT_EQ(bank.config(), config) << crypto::AlgName(bank.alg);
    EXPECT_EQ(bank.events(), events) << crypto::AlgName(bank.alg);
    EXPECT_EQ(bank.config_history.size(), 5u);
    EXPECT_EQ(bank.events_history.size(), 2u);
  }
}

TEST(Replay, StartsFromTheNewestBaseAtItsCut) {
  // After a TRIM at seq 3: records 3 and 4 were kept, the BASE written last
  // (seq 5) holds the PCRs as they were after seq 2, then record 6 follows.
  auto base = MakeBase(5, 0x55);
  base.first_kept_seq = 3;
  const auto kept1 = testing::MakeMeasure(3, 16, "kept-1");
  const auto kept2 = MakeCp(4, VIGIL_ANCHOR_PCR);
  const auto after = testing::MakeMeasure(6, 16, "after-trim");
  std::vector<records::Record> log = {testing::ToRecord(kept1), testing::ToRecord(kept2),
                                      testing::ToRecord(base), testing::ToRecord(after)};
  auto r = replay::ReplayLog(log);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->base_seq, 5u);
  EXPECT_EQ(r->config_extends, 2u);
  EXPECT_EQ(r->events_extends, 1u);
  crypto::Digest config(32, 0x55), events(32, 0x56);
  RefExtend(VIGIL_ALG_SHA256, config, kept1);
  RefExtend(VIGIL_ALG_SHA256, config, after);
  RefExtend(VIGIL_ALG_SHA256, events, kept2);
  EXPECT_EQ(r->banks[1].config(), config);
  EXPECT_EQ(r->banks[1].events(), events);
}

TEST(Replay, IgnoresRecordsBeforeTheCutAndOlderBases) {
  auto old_base = MakeBase(1, 0);
  old_base.first_kept_seq = 1;
  const auto trimmed = testing::MakeMeasure(2, 16, "before-cut");
  auto new_base = MakeBase(3, 0x11);
  new_base.first_kept_seq = 3;
  auto r = replay::ReplayLog(
      {testing::ToRecord(old_base), testing::ToRecord(trimmed), testing::ToRecord(new_base)});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config_extends, 0u);
  EXPECT_EQ(r->banks[0].config(), crypto::Digest(20, 0x11));
}

TEST(Replay, MissingKeptRecordsAreReported) {
  auto base = MakeBase(5, 0);
  base.first_kept_seq = 3;
  // The log read starts at 4: record 3 is missing.
  auto r = replay::ReplayLog(
      {testing::ToRecord(testing::MakeMeasure(4, 16, "x")), testing::ToRecord(base)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  // Record 3 missing after an older record kept before the cut: the first
  // record at the cut is not the log's first record.
  auto after_old = replay::ReplayLog({testing::ToRecord(testing::MakeMeasure(2, 16, "old")),
                                      testing::ToRecord(testing::MakeMeasure(4, 16, "x")),
                                      testing::ToRecord(base)});
  ASSERT_FALSE(after_old.ok());
  EXPECT_EQ(after_old.status().code(), ErrorCode::kNotFound);
  // A hole in the middle.
  auto base1 = MakeBase(1, 0);
  base1.first_kept_seq = 1;
  auto hole = replay::ReplayLog({testing::ToRecord(base1),
                                 testing::ToRecord(testing::MakeMeasure(2, 16, "a")),
                                 testing::ToRecord(testing::MakeMeasure(4, 16, "b"))});
  ASSERT_FALSE(hole.ok());
  EXPECT_EQ(hole.status().code(), ErrorCode::kMalformed);
}

TEST(Replay, UnextendedRecordsAreSkipped) {
  const auto base = MakeBase(1, 0);
  const auto no_tpm = testing::MakeMeasure(2, VIGIL_PCR_NONE, "not-extended");
  const auto ima_cp = MakeCp(3, VIGIL_ANCHOR_IMA);
  std::vector<records::Record> log = {testing::ToRecord(base), testing::ToRecord(no_tpm),
                                      testing::ToRecord(ima_cp), testing::ToRecord(MakeSig(4))};
  auto r = replay::ReplayLog(log);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->config_extends, 0u);
  EXPECT_EQ(r->events_extends, 0u);
  EXPECT_EQ(r->banks[0].config(), crypto::Digest(20, 0));
}

TEST(Replay, TamperedRecordChangesTheResult) {
  const auto base = MakeBase(1, 0);
  auto m = testing::MakeMeasure(2, 16, "policy");
  auto good = replay::ReplayLog({testing::ToRecord(base), testing::ToRecord(m)});
  m.digest[5] ^= 1;
  auto bad = replay::ReplayLog({testing::ToRecord(base), testing::ToRecord(m)});
  ASSERT_TRUE(good.ok() && bad.ok());
  EXPECT_NE(good->banks[1].config(), bad->banks[1].config());
}

TEST(Replay, NoBaseIsNotFound) {
  auto r = replay::ReplayLog({testing::ToRecord(testing::MakeMeasure(1, 16, "x"))});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

TEST(Replay, InconsistentPcrIsMalformed) {
  auto r = replay::ReplayLog({testing::ToRecord(MakeBase(1, 0)),
                              testing::ToRecord(testing::MakeMeasure(2, 16, "a")),
                              testing::ToRecord(testing::MakeMeasure(3, 17, "b"))});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kMalformed);
}

TEST(Replay, BadBankCountIsMalformed) {
  auto base = MakeBase(1, 0);
  base.nr_banks = VIGIL_MAX_BANKS + 1;
  auto r = replay::ReplayLog({testing::ToRecord(base)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kMalformed);
}

TEST(Replay, UnsupportedBankIsReported) {
  auto base = MakeBase(1, 0);
  base.bank[1].alg = VIGIL_ALG_SM3_256;
  auto r = replay::ReplayLog({testing::ToRecord(base)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnsupported);
}

TEST(Replay, ComparePlacesTheTpmValue) {
  std::vector<crypto::Digest> history = {crypto::Digest(32, 0), crypto::Digest(32, 1),
                                         crypto::Digest(32, 2)};
  auto exact = replay::ComparePcr(history, crypto::Digest(32, 2));
  EXPECT_EQ(exact.match, replay::PcrMatch::kMatch);
  auto behind = replay::ComparePcr(history, crypto::Digest(32, 0));
  EXPECT_EQ(behind.match, replay::PcrMatch::kPendingTail);
  EXPECT_EQ(behind.pending, 2u);
  auto off = replay::ComparePcr(history, crypto::Digest(32, 9));
  EXPECT_EQ(off.match, replay::PcrMatch::kMismatch);
  EXPECT_EQ(replay::ComparePcr({}, crypto::Digest(32, 0)).match, replay::PcrMatch::kMismatch);
}


// CheckPcrPath: a fake TPM holding the replayed values of `tpm_log`.
class PcrPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_ = {testing::ToRecord(MakeBase(1, 0)), testing::ToRecord(MakeKey(2, 16)),
            testing::ToRecord(MakeCp(3, VIGIL_ANCHOR_PCR)), testing::ToRecord(MakeSig(4)),
            testing::ToRecord(MakeCp(5, VIGIL_ANCHOR_PCR)), testing::ToRecord(MakeSig(6))};
  }
  replay::PcrReader TpmAt(const std::vector<records::Record>& tpm_log) {
    auto r = replay::ReplayLog(tpm_log);
    EXPECT_TRUE(r.ok());
    auto banks = r->banks;
    return [banks](uint16_t alg, uint32_t pcr) -> Result<crypto::Digest> {
      for (const auto& b : banks) {
        if (b.alg == alg) return pcr == 16 ? b.config() : b.events();
      }
      return Status::Error(ErrorCode::kUnavailable, "no bank");
    };
  }
  std::vector<records::Record> log_;
};

TEST_F(PcrPathTest, TpmAtOrBeyondTheVerifiedLogConfirmsIt) {
  std::vector<records::Record> verified(log_.begin(), log_.begin() + 4);
  EXPECT_TRUE(replay::CheckPcrPath(verified, log_, 16, 17, TpmAt(log_)).ok());
  EXPECT_TRUE(replay::CheckPcrPath(verified, log_, 16, 17, TpmAt(verified)).ok());
}

TEST_F(PcrPathTest, TpmBehindTheVerifiedLogIsNotYetChecked) {
  std::vector<records::Record> early(log_.begin(), log_.begin() + 2);
  Status st = replay::CheckPcrPath(log_, log_, 16, 17, TpmAt(early));
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("behind"), std::string::npos) << st.message();
}

TEST_F(PcrPathTest, RemovedCheckpointIsAMismatch) {
  // The reader's copy lacks the second checkpoint; the TPM extended it.
  std::vector<records::Record> shown = {log_[0], log_[1], log_[2], log_[3]};
  Status st = replay::CheckPcrPath(shown, shown, 16, 17, TpmAt(log_));
  EXPECT_EQ(st.code(), ErrorCode::kMismatch) << st.ToString();
}

TEST_F(PcrPathTest, EditedRecordIsAMismatch) {
  auto cp = MakeCp(3, VIGIL_ANCHOR_PCR);
  cp.chain_head[5] ^= 1;
  std::vector<records::Record> edited = log_;
  edited[2] = testing::ToRecord(cp);
  EXPECT_EQ(replay::CheckPcrPath(edited, log_, 16, 17, TpmAt(log_)).code(),
            ErrorCode::kMismatch);
}

TEST_F(PcrPathTest, ReadErrorsPassThrough) {
  auto broken = [](uint16_t, uint32_t) -> Result<crypto::Digest> {
    return Status::Error(ErrorCode::kUnavailable, "TPM gone");
  };
  EXPECT_EQ(replay::CheckPcrPath(log_, log_, 16, 17, broken).code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace vigil
