// vigilctl and vigild command lines: documented exit codes and messages for
// the cases that need no module, TPM or root.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test_records.h"
#include "vigil/chain.h"
#include "vigil/digest.h"

namespace vigil {
namespace {

struct CmdResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

CmdResult Exec(const std::string& cmd) {
  CmdResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kCtl = VIGILCTL_PATH;
const std::string kD = VIGILD_PATH;

class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes) {
    char tmpl[] = "/tmp/vigil-cli-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
    std::ofstream(path_, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Vigilctl, ModuleNotLoadedIsExitThreeWithAPlainMessage) {
  CmdResult r = Exec(kCtl + " --device /nonexistent/vigil status");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("vigil module not loaded (/nonexistent/vigil missing)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(Exec(kCtl + " --device /nonexistent/vigil log").code, 3);
}

TEST(Vigilctl, WrongDeviceIsAnErrorNotAModuleAnswer) {
  CmdResult chr = Exec(kCtl + " --device /dev/null status");
  EXPECT_EQ(chr.code, 1) << chr.output;
  EXPECT_NE(chr.output.find("does not answer vigil's ioctls"), std::string::npos) << chr.output;
  TempFile regular({1, 2, 3});
  CmdResult reg = Exec(kCtl + " --device " + regular.path() + " status");
  EXPECT_EQ(reg.code, 1) << reg.output;
  EXPECT_NE(reg.output.find("not a character device"), std::string::npos) << reg.output;
}

TEST(Vigilctl, UsageErrorsAreExitTwo) {
  EXPECT_EQ(Exec(kCtl).code, 2);
  EXPECT_EQ(Exec(kCtl + " frobnicate").code, 2);
  EXPECT_EQ(Exec(kCtl + " replay --pcr nonsense").code, 2);
  EXPECT_EQ(Exec(kCtl + " verify-chain").code, 2) << "--events is required";
}

TEST(Vigilctl, HelpDocumentsSubcommandsAndExitCodes) {
  CmdResult top = Exec(kCtl + " --help");
  EXPECT_EQ(top.code, 0);
  for (const char* word :
       {"status", "log", "replay", "verify-chain", "Exit codes", "3 vigil module not loaded"}) {
    EXPECT_NE(top.output.find(word), std::string::npos) << word << "\n" << top.output;
  }
  for (const char* sub : {"status", "log", "replay", "verify-chain"}) {
    CmdResult r = Exec(kCtl + " " + sub + " --help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.output.find("--json"), std::string::npos) << sub << "\n" << r.output;
  }
}

TEST(Vigilctl, LogFilePrintsTextAndJson) {
  std::vector<uint8_t> bytes;
  testing::Append(bytes, testing::MakeMeasure(1, 16, "vigil.ko"));
  testing::Append(bytes, testing::MakeExec(2, 77, "sh", "/bin/sh"));
  TempFile log(bytes);
  CmdResult text = Exec(kCtl + " log --file " + log.path());
  ASSERT_EQ(text.code, 0) << text.output;
  EXPECT_NE(text.output.find("measure"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("name=vigil.ko"), std::string::npos) << text.output;
  CmdResult js = Exec(kCtl + " log --json --file " + log.path());
  ASSERT_EQ(js.code, 0) << js.output;
  std::istringstream lines(js.output);
  std::string line;
  std::vector<nlohmann::json> parsed;
  while (std::getline(lines, line)) parsed.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0]["type"], "measure");
  EXPECT_EQ(parsed[1]["type"], "exec");
  EXPECT_EQ(parsed[1]["pid"], 77);
}

TEST(Vigilctl, MalformedLogFileIsExitSix) {
  std::vector<uint8_t> bytes;
  testing::Append(bytes, testing::MakeExec(1, 1, "a", "/a"));
  bytes.resize(bytes.size() - 1);
  TempFile log(bytes);
  CmdResult r = Exec(kCtl + " log --file " + log.path());
  EXPECT_EQ(r.code, 6) << r.output;
  EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;
}

TEST(Vigild, HelpAndUsage) {
  CmdResult help = Exec(kD + " --help");
  EXPECT_EQ(help.code, 0);
  for (const char* word : {"--duration", "--ready-file", "--raw-out", "Exit codes"}) {
    EXPECT_NE(help.output.find(word), std::string::npos) << word;
  }
  EXPECT_EQ(Exec(kD + " --bogus").code, 2);
  EXPECT_EQ(Exec(kD + " --duration -1").code, 2);
  for (const char* word : {"--all-processes", "--sample-ms", "--syscalls", "--hw", "--pin-dir"}) {
    EXPECT_NE(help.output.find(word), std::string::npos) << word;
  }
  EXPECT_EQ(Exec(kD + " --hw sometimes").code, 2);
}

TEST(Vigilctl, AgentUsageErrors) {
  EXPECT_EQ(Exec(kCtl + " agent").code, 2) << "a subcommand is required";
  EXPECT_EQ(Exec(kCtl + " agent run --name x").code, 2) << "a command is required";
  CmdResult both = Exec(kCtl + " agent track --name x");
  EXPECT_EQ(both.code, 2) << both.output;
  EXPECT_NE(both.output.find("exactly one of --pid and --cgroup"), std::string::npos);
}

TEST(Vigilctl, AgentWithoutVigildIsExitSeven) {
  CmdResult r = Exec(kCtl + " agent list --pin-dir /nonexistent/vigil");
  EXPECT_EQ(r.code, 7) << r.output;
  EXPECT_NE(r.output.find("vigild is not running"), std::string::npos) << r.output;
}

// ---- verify-chain over synthetic events and logs (no module: --file) ----

chain::InstanceId TestId() {
  chain::InstanceId id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(0x40 + i);
  return id;
}

// Commits exec events with the library's chain rules and writes checkpoints.
class Chain {
 public:
  Chain() : v_(chain::ChainVerifier::Start(TestId()).value()) {}
  void Events(int n, std::vector<uint8_t>& out) {
    for (int i = 0; i < n; ++i) {
      auto e = testing::MakeExec(v_.last_seq() + 1, 100 + i, "job", "/bin/job");
      e.hdr.flags |= VIGIL_REC_F_COMMITTED;
      testing::Append(out, e);
      EXPECT_TRUE(v_.Append(testing::ToRecord(e)).ok());
    }
  }
  vigil_log_checkpoint Checkpoint(uint64_t log_seq) {
    auto cp = testing::Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, log_seq);
    cp.first_seq = last_cp_ + 1;
    cp.last_seq = v_.last_seq();
    cp.reason = VIGIL_CP_TIMER;
    cp.anchor = VIGIL_ANCHOR_PCR;
    std::memcpy(cp.chain_head, v_.head().data(), 32);
    std::memcpy(cp.prev_digest, prev_.data(), 32);
    const auto id = TestId();
    std::memcpy(cp.instance_id, id.data(), id.size());
    prev_ = crypto::Sha256({testing::ToRecord(cp).bytes()}).value();
    last_cp_ = cp.last_seq;
    return cp;
  }
  std::string HeadHex() const { return crypto::ToHex(v_.head()); }
  uint64_t seq() const { return v_.last_seq(); }

 private:
  chain::ChainVerifier v_;
  crypto::Sha256Digest prev_{};
  uint64_t last_cp_ = 0;
};

vigil_log_signature Unsigned(uint64_t log_seq, uint64_t cp_seq, uint32_t status) {
  auto sig = testing::Blank<vigil_log_signature>(VIGIL_LOG_SIGNATURE, log_seq);
  sig.checkpoint_seq = cp_seq;
  sig.status = status;
  return sig;
}

TEST(VerifyChain, UnsignedCheckpointIsNoAnchorWhenTheKeyIsKnown) {
  Chain c;
  std::vector<uint8_t> events, log;
  c.Events(3, events);
  auto key = testing::Blank<vigil_log_key>(VIGIL_LOG_KEY, 1);
  key.pcr = 16;
  key.x[0] = 1;
  key.y[0] = 2;
  testing::Append(log, key);
  testing::Append(log, c.Checkpoint(2));
  testing::Append(log, Unsigned(3, 2, VIGIL_SIG_TPM_ERROR));
  TempFile ev(events), lg(log);
  CmdResult r = Exec(kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("NOT verified"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("0 verified, 1 unsigned"), std::string::npos) << r.output;
}

TEST(VerifyChain, DegradedModeSaysUnsignedNeverVerified) {
  Chain c;
  std::vector<uint8_t> events, log;
  c.Events(3, events);
  testing::Append(log, c.Checkpoint(1));
  testing::Append(log, Unsigned(2, 1, VIGIL_SIG_NO_TPM));
  TempFile ev(events), lg(log);
  CmdResult r = Exec(kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("checkpoint signatures: 1 unsigned (no checkpoint key"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("UNSIGNED"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(" verified,"), std::string::npos) << r.output;
}

TEST(VerifyChain, CheckpointAtTheStartSeqDoesNotVerifyLaterEvents) {
  Chain c;
  std::vector<uint8_t> before, window, log;
  c.Events(3, before);
  testing::Append(log, c.Checkpoint(1));
  testing::Append(log, Unsigned(2, 1, VIGIL_SIG_NO_TPM));
  const std::string head = c.HeadHex();
  c.Events(2, window);  // seq 4, 5: no checkpoint covers them
  TempFile ev(window), lg(log);
  CmdResult r = Exec(kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path() +
                     " --start-seq 3 --start-head " + head);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("checkpoints compared: 0 "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("NOT verified: events after seq 0 (up to 5)"), std::string::npos)
      << r.output;
}

TEST(VerifyChain, BrokenCheckpointLinkFails) {
  Chain c;
  std::vector<uint8_t> events, log;
  c.Events(2, events);
  testing::Append(log, c.Checkpoint(1));
  c.Events(2, events);
  auto cp2 = c.Checkpoint(2);
  cp2.prev_digest[0] ^= 1;
  testing::Append(log, cp2);
  TempFile ev(events), lg(log);
  CmdResult r = Exec(kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path());
  EXPECT_EQ(r.code, 5) << r.output;
  EXPECT_NE(r.output.find("prev_digest"), std::string::npos) << r.output;
}

TEST(VerifyChain, BrokenFirstSeqContinuityFails) {
  Chain c;
  std::vector<uint8_t> before, window, log;
  c.Events(2, before);
  testing::Append(log, c.Checkpoint(1));
  const std::string head = c.HeadHex();
  c.Events(2, window);
  auto cp2 = c.Checkpoint(2);
  cp2.first_seq = 4;  // should be 3; the window check alone would not see it
  testing::Append(log, cp2);
  TempFile ev(window), lg(log);
  CmdResult r = Exec(kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path() +
                     " --start-seq 2 --start-head " + head);
  EXPECT_EQ(r.code, 5) << r.output;
  EXPECT_NE(r.output.find("first_seq"), std::string::npos) << r.output;
}

TEST(Vigilctl, NonUtf8CommIsPrintedNotAnError) {
  std::vector<uint8_t> bytes;
  testing::Append(bytes, testing::MakeExec(1, 77, "\xff\xfe\x80", "/tmp/\xc3\x28"));
  TempFile log(bytes);
  CmdResult js = Exec(kCtl + " log --json --file " + log.path());
  ASSERT_EQ(js.code, 0) << js.output;
  auto j = nlohmann::json::parse(js.output);
  EXPECT_EQ(j["type"], "exec");
  EXPECT_EQ(j["comm"], "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") << "U+FFFD per invalid byte";
}

TEST(Vigild, NumericOptionRanges) {
  for (const char* bad : {"--duration 1e8", "--duration nan", "--ringbuf-bytes 3000",
                          "--ringbuf-bytes 1024", "--ringbuf-bytes 0", "--ringbuf-bytes x"}) {
    CmdResult r = Exec(kD + " " + bad);
    EXPECT_EQ(r.code, 2) << bad << "\n" << r.output;
  }
  CmdResult msg = Exec(kD + " --ringbuf-bytes 3000");
  EXPECT_NE(msg.output.find("power of two"), std::string::npos) << msg.output;
}

TEST(Vigild, VerifierStateAndMetricsOptions) {
  CmdResult help = Exec(kD + " --help");
  for (const char* word : {"--state-dir", "--reset-state", "--no-state", "--metrics", "--tcti",
                           "--reorder-window", "--checkpoint-wait", "--output", "--no-records",
                           "--config", "--baseline-interval", "/var/lib/vigil", "127.0.0.1:9477"}) {
    EXPECT_NE(help.output.find(word), std::string::npos) << word;
  }
  for (const char* bad :
       {"--reorder-window 0", "--reorder-window x", "--checkpoint-wait 0", "--state-interval 0",
        "--state-interval 1e9", "--baseline-interval 0", "--baseline-interval never",
        "--learn-samples 0", "--threshold 0", "--no-state --reset-state",
        "--config /nonexistent/vigild.toml"}) {
    CmdResult r = Exec(kD + " " + bad);
    EXPECT_EQ(r.code, 2) << bad << "\n" << r.output;
  }
  // The endpoint is unauthenticated: loopback only, said before anything loads.
  for (const char* addr : {"0.0.0.0:9477", "192.0.2.1:80", "example.com:1", "127.0.0.1:99999"}) {
    CmdResult r = Exec(kD + " --metrics " + addr);
    EXPECT_EQ(r.code, 2) << addr << "\n" << r.output;
    EXPECT_NE(r.output.find("--metrics"), std::string::npos) << r.output;
  }
  CmdResult r = Exec(kD + " --metrics 0.0.0.0:9477");
  EXPECT_NE(r.output.find("loopback"), std::string::npos) << r.output;
}

TEST(Vigilctl, PidAndPcrRanges) {
  for (const char* bad : {"agent track --name x --pid 0", "agent track --name x --pid 4294967295",
                          "replay --pcr-config 24", "replay --pcr-events 99"}) {
    CmdResult r = Exec(kCtl + " " + bad);
    EXPECT_EQ(r.code, 2) << bad << "\n" << r.output;
  }
  CmdResult pid = Exec(kCtl + " agent track --name x --pid 0");
  EXPECT_NE(pid.output.find("pid_max"), std::string::npos) << pid.output;
}

}  // namespace
}  // namespace vigil
