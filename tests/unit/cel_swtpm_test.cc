// CEL-JSON against a real TPM (swtpm): a module log and an IMA log are
// extended into PCRs 16, 23 and 10 of swtpm as vigil.ko and IMA extend them,
// `vigilctl export-cel` writes the CEL, and the independent replayer
// tests/interop/cel_replay.py must reproduce the PCR values the TPM holds,
// in every bank, and fail on a tampered CEL.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cel_fixtures.h"
#include "swtpm_fixture.h"
#include "vigil/tpm.h"

namespace vigil {
namespace {

using nlohmann::json;
using testing::ImaLogBuilder;
using testing::ModuleLogBuilder;

std::string TempFile(const std::string& content) {
  char path[] = "/tmp/vigil-cel-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

struct ShellResult {
  int code = -1;
  std::string out;
  std::string err;
};

ShellResult Shell(const std::string& cmd) {
  ShellResult r;
  const std::string err_path = TempFile("");
  FILE* p = ::popen((cmd + " 2>" + err_path).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(err_path);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  std::remove(err_path.c_str());
  return r;
}

class CelSwtpmTest : public testing::SwtpmFixture {
 protected:
  void ExtendAll(tpm::EsysContext& tpm, const std::vector<testing::PcrExtend>& extends) {
    for (const auto& e : extends) ASSERT_TRUE(tpm.PcrExtend(e.pcr, e.digests).ok());
  }
  // --expect arguments with what the TPM holds now.
  std::string ExpectArgs(tpm::EsysContext& tpm, const std::vector<uint32_t>& pcrs) {
    std::string args;
    for (uint32_t pcr : pcrs) {
      for (uint16_t alg : banks_) {
        auto v = tpm.PcrRead(alg, pcr);
        EXPECT_TRUE(v.ok());
        tpm_values_[pcr][alg] = *v;
        args += " --expect " + std::to_string(pcr) + ":" + crypto::AlgName(alg) + "=" +
                crypto::ToHex(*v);
      }
    }
    return args;
  }
  ShellResult Replay(const std::string& cel, const std::string& args) {
    return Shell(std::string(VIGIL_PYTHON3) + " " + CEL_REPLAY_PY + args + " " + cel);
  }
  int ReplayDoc(const json& doc, const std::string& args) {
    const std::string p = TempFile(doc.dump());
    const int code = Replay(p, args).code;
    std::remove(p.c_str());
    return code;
  }

  std::vector<uint16_t> banks_;
  std::map<uint32_t, std::map<uint16_t, crypto::Digest>> tpm_values_;
};

TEST_F(CelSwtpmTest, ReplayerReproducesTheTpmAndRejectsTampering) {
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status().ToString();
  auto banks = tpm->AllocatedBanks();
  ASSERT_TRUE(banks.ok());
  banks_ = *banks;
  ASSERT_GE(banks_.size(), 2u);

  // A previous load left PCRs 16 and 23 non-zero: the BASE records them.
  std::vector<std::pair<uint16_t, crypto::Digest>> junk;
  for (uint16_t alg : banks_) junk.emplace_back(alg, crypto::Digest(testing::MdSize(alg), 0xab));
  ASSERT_TRUE(tpm->PcrExtend(16, junk).ok());
  ASSERT_TRUE(tpm->PcrExtend(23, junk).ok());
  ASSERT_TRUE(tpm->PcrExtend(23, junk).ok());
  std::vector<crypto::Digest> config_start, events_start;
  for (uint16_t alg : banks_) {
    config_start.push_back(*tpm->PcrRead(alg, 16));
    events_start.push_back(*tpm->PcrRead(alg, 23));
  }

  ModuleLogBuilder log(banks_, config_start, events_start, /*anchor_ima=*/false);
  log.Checkpoint(5);
  log.Measure(VIGIL_MEASURE_USER, "config /etc/agent.conf");
  log.Checkpoint(3);
  log.Checkpoint(0);
  ExtendAll(*tpm, log.extends());

  // IMA's log: boot aggregate, files, a violation, a legacy entry and
  // vigil-like ima-buf entries, extended into PCR 10 as IMA does.
  ImaLogBuilder ima(banks_);
  ima.Entry("ima-ng", {ImaLogBuilder::DigestField(std::vector<uint8_t>(32, 0x11)),
                       ImaLogBuilder::NameField("boot_aggregate")});
  ima.File("/usr/sbin/vigild");
  for (const auto& r : log.Anchored()) ima.Record(r);
  ima.Entry("ima-ng",
            {ImaLogBuilder::DigestField(std::vector<uint8_t>(1, 0)),
             ImaLogBuilder::NameField("/tmp/racy")},
            10, /*violation=*/true);
  ima.Legacy("/sbin/init");
  ima.File("/usr/bin/vigilctl");
  ExtendAll(*tpm, ima.extends());

  const std::string log_path = TempFile(std::string(log.bytes().begin(), log.bytes().end()));
  const std::string ima_path = TempFile(std::string(ima.log().begin(), ima.log().end()));
  const std::string cel_path = TempFile("");
  ShellResult ex = Shell(std::string(VIGILCTL_PATH) + " export-cel --file " + log_path + " --ima " +
                         ima_path + " --out " + cel_path);
  ASSERT_EQ(ex.code, 0) << ex.err;
  EXPECT_NE(ex.err.find("did not start from zero"), std::string::npos) << ex.err;

  const std::string expect = ExpectArgs(*tpm, {10, 16, 23});
  ShellResult r = Replay(cel_path, expect);
  EXPECT_EQ(r.code, 0) << r.err;
  // Every value it prints is the TPM's.
  size_t lines = 0;
  for (const auto& [pcr, values] : tpm_values_) {
    for (const auto& [alg, v] : values) {
      EXPECT_NE(r.out.find("pcr " + std::to_string(pcr) + " " + crypto::AlgName(alg) + " " +
                           crypto::ToHex(v) + "\n"),
                std::string::npos)
          << "PCR " << pcr << " " << crypto::AlgName(alg) << ":\n"
          << r.out;
      ++lines;
    }
  }
  EXPECT_EQ(lines, 3 * banks_.size());
  EXPECT_NE(r.err.find("1 IMA violations"), std::string::npos) << r.err;

  std::ifstream in(cel_path);
  const json doc = json::parse(in);
  auto find = [&](const std::string& type, uint32_t pcr) {
    for (size_t i = 0; i < doc.size(); ++i) {
      if (doc[i]["content_type"] == type && doc[i]["pcr"] == pcr && !doc[i]["digests"].empty()) {
        return i;
      }
    }
    ADD_FAILURE() << "no " << type << " record for PCR " << pcr;
    return size_t{0};
  };
  const size_t vigil_cp = find("vigil", 23);
  const size_t ima_rec = find("ima_template", 10);

  // A digest flipped: the content no longer hashes to it.
  for (size_t i : {vigil_cp, ima_rec}) {
    json t = doc;
    std::string d = t[i]["digests"][1]["digest"];
    d[0] = d[0] == 'a' ? 'b' : 'a';
    t[i]["digests"][1]["digest"] = d;
    EXPECT_EQ(ReplayDoc(t, expect), 3) << "flipped digest in recnum " << i;
  }
  // An event dropped: the recnums have a gap ...
  json dropped = doc;
  dropped.erase(vigil_cp);
  EXPECT_EQ(ReplayDoc(dropped, expect), 3);
  // ... and renumbered, the PCRs no longer match the TPM.
  for (size_t i = 0; i < dropped.size(); ++i) dropped[i]["recnum"] = i;
  EXPECT_EQ(ReplayDoc(dropped, expect), 1);
  json dropped_ima = doc;
  dropped_ima.erase(ima_rec);
  for (size_t i = 0; i < dropped_ima.size(); ++i) dropped_ima[i]["recnum"] = i;
  EXPECT_EQ(ReplayDoc(dropped_ima, expect), 1);
  // A record rewritten with digests to match (consistent, but not what the
  // TPM saw): only the PCR comparison catches it.
  json forged = doc;
  auto bytes = *crypto::FromHex(forged[vigil_cp]["content"]["record"].get<std::string>());
  bytes[40] ^= 0x01;  // first_seq of the checkpoint
  forged[vigil_cp]["content"]["record"] = crypto::ToHex(bytes);
  for (auto& d : forged[vigil_cp]["digests"]) {
    const uint16_t alg = d["hashAlg"] == "sha1"     ? VIGIL_ALG_SHA1
                         : d["hashAlg"] == "sha256" ? VIGIL_ALG_SHA256
                         : d["hashAlg"] == "sha384" ? VIGIL_ALG_SHA384
                                                    : VIGIL_ALG_SHA512;
    d["digest"] = crypto::ToHex(*crypto::Hash(alg, bytes));
  }
  EXPECT_EQ(ReplayDoc(forged, expect), 1);
  // The same export against a TPM that moved on without a record.
  ASSERT_TRUE(tpm->PcrExtend(10, junk).ok());
  EXPECT_EQ(Replay(cel_path, ExpectArgs(*tpm, {10})).code, 1);

  for (const auto& p : {log_path, ima_path, cel_path}) std::remove(p.c_str());
}

// anchor=ima: the checkpoints are IMA entries; PCR 16 and PCR 10 replay,
// PCR 23 is not in the export. A PCR file in tpm2_pcrread's format works
// as the expected values too.
TEST_F(CelSwtpmTest, AnchorImaReplaysPcr16AndPcr10) {
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status().ToString();
  banks_ = *tpm->AllocatedBanks();
  std::vector<crypto::Digest> zero;
  for (uint16_t alg : banks_) zero.emplace_back(testing::MdSize(alg), 0);
  ModuleLogBuilder log(banks_, zero, zero, /*anchor_ima=*/true);
  log.Checkpoint(2);
  log.Checkpoint(1);
  ExtendAll(*tpm, log.extends());
  ImaLogBuilder ima(banks_);
  ima.Entry("ima-ng", {ImaLogBuilder::DigestField(std::vector<uint8_t>(32, 0x22)),
                       ImaLogBuilder::NameField("boot_aggregate")});
  for (const auto& r : log.Anchored()) ima.Record(r);
  ExtendAll(*tpm, ima.extends());

  const std::string log_path = TempFile(std::string(log.bytes().begin(), log.bytes().end()));
  const std::string ima_path = TempFile(std::string(ima.log().begin(), ima.log().end()));
  const std::string cel_path = TempFile("");
  ShellResult ex = Shell(std::string(VIGILCTL_PATH) + " export-cel --file " + log_path + " --ima " +
                         ima_path + " -o " + cel_path);
  ASSERT_EQ(ex.code, 0) << ex.err;
  // Without --ima the export says where the checkpoints are.
  ShellResult no_ima = Shell(std::string(VIGILCTL_PATH) + " export-cel --file " + log_path);
  EXPECT_EQ(no_ima.code, 0);
  EXPECT_NE(no_ima.err.find("pass --ima"), std::string::npos) << no_ima.err;

  std::string pcrread;
  for (uint16_t alg : banks_) {
    pcrread += "  " + crypto::AlgName(alg) + ":\n";
    for (uint32_t pcr : {10u, 16u}) {
      pcrread +=
          "    " + std::to_string(pcr) + ": 0x" + crypto::ToHex(*tpm->PcrRead(alg, pcr)) + "\n";
    }
  }
  const std::string pcr_file = TempFile(pcrread);
  ShellResult r = Replay(cel_path, " --pcrread " + pcr_file);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("pcr 23 "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(std::to_string(2 * banks_.size()) + " of " +
                       std::to_string(2 * banks_.size()) + " expected PCR values match"),
            std::string::npos)
      << r.err;
  for (const auto& p : {log_path, ima_path, cel_path, pcr_file}) std::remove(p.c_str());
}

}  // namespace
}  // namespace vigil
