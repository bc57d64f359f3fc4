// Interop: a quote made by attest_tpm::Quote on swtpm is what tpm2-tools'
// tpm2_checkquote accepts, and one flipped byte in the attest, the
// signature or a PCR value makes it refuse (non-zero exit). tpm2_checkquote
// runs as a subprocess; without it the test fails.
//
// Files (tpm2-tools 5.x): -u the AK as SubjectPublicKeyInfo PEM
// (tpmobj::ToPem), -m the marshalled TPMS_ATTEST, -s the marshalled
// TPMT_SIGNATURE ("tss" format), -f the PCR values concatenated in
// selection order with -l naming the selection ("sha256:16,23"; without -l
// the file would be tpm2-tools' in-memory TPML_PCR_SELECTION + TPML_DIGEST
// dump), -q the nonce in hex, -g the hash of the signature.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "attest_test_util.h"
#include "swtpm_fixture.h"
#include "vigil/attest/quote.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/tpm.h"

extern char** environ;

namespace vigil {
namespace {

namespace fs = std::filesystem;

class CheckquoteInteropTest : public testing::SwtpmFixture {
 protected:
  void SetUp() override {
    SwtpmFixture::SetUp();
    if (HasFatalFailure()) return;
    char tmpl[] = "/tmp/vigil-checkquote-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
    SwtpmFixture::TearDown();
  }

  std::string Write(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << path;
    return path;
  }

  // Runs tpm2_checkquote on the given pieces; returns its exit status
  // (-1 when it could not run) and keeps its output for messages.
  int Checkquote(const std::string& pem, const std::vector<uint8_t>& attest,
                 const std::vector<uint8_t>& signature, const std::vector<attest::PcrValue>& values,
                 const std::string& pcr_list, const std::vector<uint8_t>& nonce) {
    const std::string pub_path = (dir_ / "ak.pem").string();
    std::ofstream(pub_path) << pem;
    std::vector<uint8_t> pcr_bytes;
    for (const attest::PcrValue& v : values) {
      pcr_bytes.insert(pcr_bytes.end(), v.value.begin(), v.value.end());
    }
    std::vector<std::string> args = {"tpm2_checkquote",
                                     "-u",
                                     pub_path,
                                     "-m",
                                     Write("quote.msg", attest),
                                     "-s",
                                     Write("quote.sig", signature),
                                     "-f",
                                     Write("quote.pcrs", pcr_bytes),
                                     "-l",
                                     pcr_list,
                                     "-g",
                                     "sha256",
                                     "-q",
                                     crypto::ToHex(nonce)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = (dir_ / "checkquote.log").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, "tpm2_checkquote", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "cannot run tpm2_checkquote (install tpm2-tools, scripts/deps): "
                    << std::strerror(rc);
      return -1;
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    output_ = text.str();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  fs::path dir_;
  std::string output_;
};

TEST_F(CheckquoteInteropTest, AcceptsOurQuoteAndRefusesEveryFlippedPart) {
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status().ToString();
  ASSERT_TRUE(tpm->PcrExtend(16, {{TPM2_ALG_SHA256, crypto::Digest(32, 0x5a)}}).ok());
  auto ak = testing::CreateTestAk(tpm->get());
  ASSERT_TRUE(ak.ok()) << ak.status().ToString();
  auto ak_public = testing::ReadAkPublic(tpm->get(), *ak);
  ASSERT_TRUE(ak_public.ok());
  auto pem = tpmobj::ToPem(*ak_public);
  ASSERT_TRUE(pem.ok());

  const std::vector<attest::PcrSelection> selection = {{TPM2_ALG_SHA256, {16, 23}}};
  const std::vector<uint8_t> nonce = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04};
  auto q = attest_tpm::Quote(*tpm, *ak, nonce, selection);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  // Our own checks agree first.
  auto facts = attest::CheckQuote(*ak_public, q->attest, q->signature, nonce);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  ASSERT_TRUE(attest::CheckPcrs(*facts, selection, q->values).ok());

  EXPECT_EQ(Checkquote(*pem, q->attest, q->signature, q->values, "sha256:16,23", nonce), 0)
      << output_;
  // It read our values: it prints them, PCR 16 (extended above) among them.
  std::string pcr16 = crypto::ToHex(q->values[0].value);
  for (char& c : pcr16) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_NE(output_.find(pcr16), std::string::npos) << output_;

  // One flipped byte in the attest (in the PCR digest, which is also under
  // the signature), in the signature's r, and in a PCR value.
  auto attest = q->attest;
  attest[attest.size() - 1] ^= 0x01;
  EXPECT_NE(Checkquote(*pem, attest, q->signature, q->values, "sha256:16,23", nonce), 0)
      << "flipped attest accepted: " << output_;
  auto signature = q->signature;
  signature[10] ^= 0x01;
  EXPECT_NE(Checkquote(*pem, q->attest, signature, q->values, "sha256:16,23", nonce), 0)
      << "flipped signature accepted: " << output_;
  auto values = q->values;
  values[0].value[0] ^= 0x01;
  EXPECT_NE(Checkquote(*pem, q->attest, q->signature, values, "sha256:16,23", nonce), 0)
      << "flipped PCR value accepted: " << output_;
  // And another nonce.
  auto other_nonce = nonce;
  other_nonce[0] ^= 0x01;
  EXPECT_NE(Checkquote(*pem, q->attest, q->signature, q->values, "sha256:16,23", other_nonce), 0)
      << "other nonce accepted: " << output_;
  // The unchanged inputs still pass (the refusals were the flips).
  EXPECT_EQ(Checkquote(*pem, q->attest, q->signature, q->values, "sha256:16,23", nonce), 0)
      << output_;
}

}  // namespace
}  // namespace vigil
