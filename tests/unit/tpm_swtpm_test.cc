// ESAPI PCR read / extend against a real (software) TPM, and replay of a log
// whose records were extended into it, through the library and vigilctl.
#include "vigil/tpm.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "swtpm_fixture.h"
#include "test_records.h"
#include "vigil/digest.h"
#include "vigil/replay.h"

namespace vigil {
namespace {

constexpr uint32_t kPcrConfig = 16;

class TpmTest : public testing::SwtpmFixture {};

TEST_F(TpmTest, ReadsBanksAndExtendsLikeTheSpec) {
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status().ToString();
  auto banks = tpm->AllocatedBanks();
  ASSERT_TRUE(banks.ok()) << banks.status().ToString();
  ASSERT_NE(std::find(banks->begin(), banks->end(), VIGIL_ALG_SHA256), banks->end());

  ASSERT_TRUE(tpm->PcrReset(23).ok());
  auto zero = tpm->PcrRead(VIGIL_ALG_SHA256, 23);
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ(*zero, crypto::Digest(32, 0));

  const std::string word = "vigil";
  auto m = crypto::Hash(
      VIGIL_ALG_SHA256,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(word.data()), word.size()));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(tpm->PcrExtend(23, {{VIGIL_ALG_SHA256, *m}}).ok());
  auto after = tpm->PcrRead(VIGIL_ALG_SHA256, 23);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(crypto::ToHex(*after),
            "da3978f42fc2753127622ec26a09ba8418d1f5696d77205ba0414384953c03d7");
}

TEST_F(TpmTest, RejectsBadArguments) {
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok());
  EXPECT_EQ(tpm->PcrRead(VIGIL_ALG_SHA256, 24).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tpm->PcrExtend(16, {{VIGIL_ALG_SHA256, crypto::Digest(20, 0)}}).code(),
            ErrorCode::kInvalidArgument);
  // PCR 17 cannot be extended from locality 0: a TSS2 error with its origin.
  Status st = tpm->PcrExtend(17, {{VIGIL_ALG_SHA256, crypto::Digest(32, 1)}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.origin(), ErrorOrigin::kTss2);
}

TEST(TpmOpen, UnreachableTpmIsATss2Error) {
  auto tpm = tpm::EsysContext::Open("swtpm:host=127.0.0.1,port=1");
  ASSERT_FALSE(tpm.ok());
  EXPECT_EQ(tpm.status().origin(), ErrorOrigin::kTss2);
}

// Writes a log whose MEASURE records are extended into the TPM the way the
// module does it, then replays it.
class TpmReplayTest : public testing::SwtpmFixture {
 protected:
  void BuildLogAndExtend(int measures) {
    auto tpm = tpm::EsysContext::Open(tcti());
    ASSERT_TRUE(tpm.ok()) << tpm.status().ToString();
    auto banks = tpm->AllocatedBanks();
    ASSERT_TRUE(banks.ok());
    banks_ = *banks;
    ASSERT_TRUE(tpm->PcrReset(kPcrConfig).ok());
    // Something before the BASE: the BASE records the value it left.
    std::vector<std::pair<uint16_t, crypto::Digest>> pre;
    for (uint16_t alg : banks_)
      pre.emplace_back(alg, crypto::Digest(*crypto::DigestSize(alg), 0xab));
    ASSERT_TRUE(tpm->PcrExtend(kPcrConfig, pre).ok());

    auto base = testing::Blank<vigil_log_base>(VIGIL_LOG_BASE, 1);
    base.first_kept_seq = 1;
    base.nr_banks = static_cast<uint16_t>(banks_.size());
    for (size_t i = 0; i < banks_.size(); ++i) {
      base.bank[i].alg = banks_[i];
      auto v = tpm->PcrRead(banks_[i], kPcrConfig);
      ASSERT_TRUE(v.ok());
      std::copy(v->begin(), v->end(), base.bank[i].config);
      auto e = tpm->PcrRead(banks_[i], 23);
      ASSERT_TRUE(e.ok());
      std::copy(e->begin(), e->end(), base.bank[i].events);
    }
    testing::Append(log_bytes_, base);
    for (int i = 0; i < measures; ++i) {
      auto m = testing::MakeMeasure(2 + i, kPcrConfig, ("item-" + std::to_string(i)).c_str());
      testing::Append(log_bytes_, m);
      std::vector<std::pair<uint16_t, crypto::Digest>> digests;
      for (uint16_t alg : banks_) {
        auto h = crypto::Hash(
            alg, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&m), sizeof(m)));
        ASSERT_TRUE(h.ok());
        digests.emplace_back(alg, *h);
      }
      ASSERT_TRUE(tpm->PcrExtend(kPcrConfig, digests).ok());
    }
  }

  std::string WriteLog() {
    char path[] = "/tmp/vigil-log-XXXXXX";
    int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(log_bytes_.data()),
               static_cast<std::streamsize>(log_bytes_.size()));
    return path;
  }

  int RunVigilctl(const std::string& args) {
    const std::string cmd = std::string(VIGILCTL_PATH) + " " + args + " >/dev/null 2>&1";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::vector<uint16_t> banks_;
  std::vector<uint8_t> log_bytes_;
};

TEST_F(TpmReplayTest, LibraryReplayMatchesEveryBank) {
  BuildLogAndExtend(3);
  auto log = records::DecodeStream(log_bytes_);
  ASSERT_TRUE(log.ok());
  auto replayed = replay::ReplayLog(*log);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok());
  ASSERT_EQ(replayed->banks.size(), banks_.size());
  for (const auto& bank : replayed->banks) {
    auto actual = tpm->PcrRead(bank.alg, kPcrConfig);
    ASSERT_TRUE(actual.ok());
    EXPECT_EQ(replay::ComparePcr(bank.config_history, *actual).match, replay::PcrMatch::kMatch)
        << crypto::AlgName(bank.alg);
  }
}

TEST_F(TpmReplayTest, VigilctlReplayExitCodes) {
  BuildLogAndExtend(2);
  const std::string path = WriteLog();
  const std::string args = "replay --pcr config --tcti " + tcti() + " --file " + path;
  EXPECT_EQ(RunVigilctl(args), 0) << "replay of a faithful log must match";

  // The TPM moves without a log record: a verifier must say mismatch (5).
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok());
  std::vector<std::pair<uint16_t, crypto::Digest>> rogue;
  for (uint16_t alg : banks_)
    rogue.emplace_back(alg, crypto::Digest(*crypto::DigestSize(alg), 0x66));
  ASSERT_TRUE(tpm->PcrExtend(kPcrConfig, rogue).ok());
  EXPECT_EQ(RunVigilctl(args), 5);

  // A truncated log file is malformed (6).
  ::truncate(path.c_str(), static_cast<off_t>(log_bytes_.size() - 3));
  EXPECT_EQ(RunVigilctl(args), 6);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace vigil
