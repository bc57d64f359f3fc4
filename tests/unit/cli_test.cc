// vigilctl and vigild command lines: documented exit codes and messages for
// the cases that need no module, TPM or root.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "vigil/sim/module_sim.h"
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

// --version: the release, the ABI this build speaks (include/uapi/vigil.h)
// and how it was built, exit 0, on both programs.
TEST(Version, BothProgramsPrintVersionAbiAndBuild) {
  const std::string abi =
      "ABI " + std::to_string(VIGIL_ABI_MAJOR) + "." + std::to_string(VIGIL_ABI_MINOR);
  for (const auto& [program, path] :
       {std::pair<std::string, std::string>{"vigilctl", kCtl}, {"vigild", kD}}) {
    CmdResult r = Exec(path + " --version");
    EXPECT_EQ(r.code, 0) << program << "\n" << r.output;
    EXPECT_EQ(r.output.rfind(program + " " VIGIL_TEST_VERSION "\n", 0), 0u) << r.output;
    EXPECT_NE(r.output.find(abi + " (include/uapi/vigil.h)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("build: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("OpenSSL"), std::string::npos) << r.output;
    CmdResult help = Exec(path + " --help");
    EXPECT_NE(help.output.find("--version"), std::string::npos) << program;
  }
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
//
// ModuleSim commits and signs the way vigil.ko does, with a real P-256 key;
// the files are what `vigild --raw-out` and the saved log hold.

std::vector<uint8_t> Bytes(const std::vector<records::Record>& recs) {
  std::vector<uint8_t> out;
  for (const auto& r : recs) out.insert(out.end(), r.bytes().begin(), r.bytes().end());
  return out;
}

std::vector<uint8_t> RawKey(const crypto::EcPoint& p) {
  std::vector<uint8_t> out(p.x, p.x + 32);
  out.insert(out.end(), p.y, p.y + 32);
  return out;
}

std::vector<uint8_t> PemKey(const sim::ModuleSim& sim) {
  const std::string pem = sim.PublicPem();
  return std::vector<uint8_t>(pem.begin(), pem.end());
}

// `checkpoints` checkpoints of `per` events each, signed with `status`.
struct SimRun {
  explicit SimRun(int checkpoints = 2, int per = 3, uint32_t status = VIGIL_SIG_OK,
                  uint8_t instance = 0x5a, bool tpm = true)
      : sim(instance, tpm) {
    for (int c = 0; c < checkpoints; ++c) {
      for (int i = 0; i < per; ++i) events.push_back(sim.Commit());
      sim.Checkpoint(status);
    }
  }
  CmdResult Verify(const std::string& key_args, const std::vector<records::Record>& log) const {
    return VerifyWith(key_args, events, log);
  }
  CmdResult Verify(const std::string& key_args) const { return Verify(key_args, sim.log()); }
  static CmdResult VerifyWith(const std::string& key_args,
                              const std::vector<records::Record>& events,
                              const std::vector<records::Record>& log) {
    TempFile ev(Bytes(events)), lg(Bytes(log));
    return Exec(kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path() + " " +
                key_args);
  }

  sim::ModuleSim sim;
  std::vector<records::Record> events;
};

// Offline there is no TPM to check the anchor against: chain and signature
// verified is "signed" (exit 13), and --allow-signed accepts it.
TEST(VerifyChain, HonestLogVerifiesAgainstTheTrustedKeyRawOrPem) {
  SimRun run;
  TempFile raw(RawKey(run.sim.key())), pem(PemKey(run.sim));
  for (const TempFile* key : {&raw, &pem}) {
    CmdResult r = run.Verify("--key " + key->path());
    EXPECT_EQ(r.code, 13) << r.output;
    EXPECT_NE(r.output.find(", 2 signed)"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("result: signed: checkpoint at log seq"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("anchor not checked"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--allow-signed"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(": verified:"), std::string::npos) << r.output;
    CmdResult ok = run.Verify("--allow-signed --key " + key->path());
    EXPECT_EQ(ok.code, 0) << ok.output;
    EXPECT_NE(ok.output.find("result: verified: 2 checkpoints hold"), std::string::npos)
        << ok.output;
    EXPECT_NE(ok.output.find("2 signed: chain and signature verified, the anchor not checked"),
              std::string::npos)
        << ok.output;
  }
  TempFile js_key(RawKey(run.sim.key()));
  CmdResult js = run.Verify("--json --key " + js_key.path());
  ASSERT_EQ(js.code, 13) << js.output;
  auto j = nlohmann::json::parse(js.output);
  EXPECT_EQ(j["outcome"], "signed");
  EXPECT_EQ(j["exit_code"], 13);
  ASSERT_EQ(j["checkpoints"].size(), 2u);
  EXPECT_EQ(j["checkpoints"][0]["verdict"], "signed");
  EXPECT_EQ(j["checkpoints"][1]["signature_checked"], true);
  EXPECT_EQ(j["checkpoints"][1]["pcr_checked"], false);
}

// The forgery: a software key, a made-up instance id, the forger's
// own KEY record, no BASE. It printed "1 verified" and exited 0 because the
// key came from the log itself.
TEST(VerifyChain, LogForgedWithASoftwareKeyIsTamperedAgainstTheTrustedKey) {
  sim::ModuleSim module;  // the node's real key
  SimRun forged(/*checkpoints=*/1, /*per=*/3, VIGIL_SIG_OK, /*instance=*/0x13);
  TempFile key(RawKey(module.key()));
  CmdResult r = forged.Verify("--key " + key.path());
  EXPECT_EQ(r.code, 10) << r.output;
  EXPECT_NE(r.output.find("result: tampered"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("key_mismatch"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(": verified:"), std::string::npos) << r.output;
}

// A genuine log with one more KEY record (another key) spliced in: the KEY
// record differs from --key, so the log is not the module's.
TEST(VerifyChain, KeyRecordThatDiffersFromTheTrustedKeyIsTampered) {
  SimRun run(/*checkpoints=*/1);
  sim::ModuleSim other(0x5a);
  // The foreign KEY takes the next log seq, then the module goes on: more
  // events and a genuine, correctly signed checkpoint.
  auto foreign = *other.log()[0].As<vigil_log_key>();
  foreign.hdr.seq = run.sim.NextLogSeq();
  std::vector<records::Record> log = run.sim.log();
  log.push_back(testing::ToRecord(foreign));
  for (int i = 0; i < 2; ++i) run.events.push_back(run.sim.Commit());
  for (const auto& rec : run.sim.Checkpoint()) log.push_back(rec);
  TempFile key(RawKey(run.sim.key()));
  CmdResult r = run.Verify("--key " + key.path(), log);
  EXPECT_EQ(r.code, 10) << r.output;
  EXPECT_NE(r.output.find("finding key_mismatch at seq 4"), std::string::npos) << r.output;
  EXPECT_NE(
      r.output.find("checkpoint log seq 5 covers no seqs: tampered: the log's KEY record at log "
                    "seq 4 names another key than the trusted one"),
      std::string::npos)
      << r.output;
}

TEST(VerifyChain, GenuineLogAgainstAnotherKeyIsTampered) {
  SimRun run(/*checkpoints=*/1);
  sim::ModuleSim other;
  TempFile key(RawKey(other.key()));
  CmdResult r = run.Verify("--key " + key.path());
  EXPECT_EQ(r.code, 10) << r.output;
  EXPECT_NE(r.output.find("tampered"), std::string::npos) << r.output;
}

TEST(VerifyChain, UnsignedLogIsExitEightAndZeroOnlyWithAllowUnsigned) {
  // The module has a key but could not sign (TPM error).
  SimRun run(/*checkpoints=*/2, /*per=*/3, VIGIL_SIG_TPM_ERROR);
  TempFile key(RawKey(run.sim.key()));
  CmdResult r = run.Verify("--key " + key.path());
  EXPECT_EQ(r.code, 8) << r.output;
  EXPECT_NE(r.output.find("result: unsigned"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--allow-unsigned"), std::string::npos) << r.output;
  CmdResult ok = run.Verify("--allow-unsigned --key " + key.path());
  EXPECT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("2 unsigned"), std::string::npos) << ok.output;
}

TEST(VerifyChain, DegradedModeIsUnsignedWithNoKeyAndTamperedAgainstAKey) {
  SimRun run(/*checkpoints=*/1, /*per=*/3, VIGIL_SIG_NO_TPM, 0x5a, /*tpm=*/false);
  CmdResult r = run.Verify("--no-key");
  EXPECT_EQ(r.code, 8) << r.output;
  EXPECT_EQ(run.Verify("--no-key --allow-unsigned").code, 0);
  // "No TPM" from a module whose key the user trusts is made up.
  sim::ModuleSim module;
  TempFile key(RawKey(module.key()));
  CmdResult k = run.Verify("--allow-unsigned --key " + key.path());
  EXPECT_EQ(k.code, 10) << k.output;
}

// A signed log whose KEY record would have been adopted: with --no-key it is
// a KEY record the trusted statement does not allow.
TEST(VerifyChain, NoKeyStatementRefusesAKeyRecordInTheLog) {
  SimRun run(/*checkpoints=*/1);
  CmdResult r = run.Verify("--no-key --allow-unsigned");
  EXPECT_EQ(r.code, 10) << r.output;
  EXPECT_NE(r.output.find("trusted source says the module has none"), std::string::npos)
      << r.output;
}

TEST(VerifyChain, NoTrustedKeyIsAUsageErrorNeverTheLogsKey) {
  SimRun run(/*checkpoints=*/1);
  CmdResult r = run.Verify("");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("needs exactly one trusted key source"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("never trusted"), std::string::npos) << r.output;
  TempFile key(RawKey(run.sim.key()));
  EXPECT_EQ(run.Verify("--no-key --key " + key.path()).code, 2);
  TempFile bad({1, 2, 3});
  CmdResult b = run.Verify("--key " + bad.path());
  EXPECT_EQ(b.code, 2) << b.output;
  EXPECT_NE(b.output.find("PEM public key or exactly 64 raw bytes"), std::string::npos) << b.output;
  std::vector<uint8_t> off_curve(64, 0x01);
  TempFile off(off_curve);
  EXPECT_EQ(run.Verify("--key " + off.path()).code, 2);
}

TEST(VerifyChain, MissingEventsAreLossAndTamperingWinsOverLoss) {
  SimRun run(/*checkpoints=*/2);
  TempFile key(RawKey(run.sim.key()));
  std::vector<records::Record> lossy = run.events;
  lossy.erase(lossy.begin() + 1);  // seq 2 never arrived
  CmdResult loss = SimRun::VerifyWith("--key " + key.path(), lossy, run.sim.log());
  EXPECT_EQ(loss.code, 9) << loss.output;
  EXPECT_NE(loss.output.find("never arrived"), std::string::npos) << loss.output;
  // And a modified event in the second checkpoint: tampered wins.
  std::vector<uint8_t> b(lossy.back().bytes().begin(), lossy.back().bytes().end());
  b[offsetof(vigil_ev_exec, pid)] ^= 1;
  lossy.back() = *records::Record::Decode(b);
  CmdResult t = SimRun::VerifyWith("--key " + key.path(), lossy, run.sim.log());
  EXPECT_EQ(t.code, 10) << t.output;
  EXPECT_NE(t.output.find("checkpoints compared: 2 (0 verified, 0 unsigned, 1 loss, 1 tampered)"),
            std::string::npos)
      << t.output;
}

TEST(VerifyChain, EventsAfterTheLastCheckpointAreIncomplete) {
  SimRun run(/*checkpoints=*/1);
  run.events.push_back(run.sim.Commit());  // no checkpoint covers seq 4 yet
  TempFile key(RawKey(run.sim.key()));
  CmdResult r = run.Verify("--key " + key.path());
  EXPECT_EQ(r.code, 11) << r.output;
  EXPECT_NE(r.output.find("events after seq 3 (up to 4) are covered by no checkpoint"),
            std::string::npos)
      << r.output;
}

TEST(VerifyChain, StartSeqStartsAtASignedCheckpoint) {
  SimRun run(/*checkpoints=*/2);
  TempFile key(RawKey(run.sim.key()));
  const std::vector<records::Record> window(run.events.begin() + 3, run.events.end());
  TempFile ev(Bytes(window)), lg(Bytes(run.sim.log()));
  const std::string base = kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path() +
                           " --key " + key.path();
  CmdResult r = Exec(base + " --start-seq 3 --allow-signed");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("start: checkpoint at log seq 2 ending at seq 3 (verified)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("1 checkpoints hold"), std::string::npos) << r.output;
  // A start head that is not the checkpoint's: tampered.
  CmdResult head = Exec(base + " --start-seq 3 --start-head " + std::string(64, '0'));
  EXPECT_EQ(head.code, 10) << head.output;
  // No checkpoint ends at seq 2 and no chain value is given.
  CmdResult none = Exec(base + " --start-seq 2");
  EXPECT_EQ(none.code, 1) << none.output;
  EXPECT_NE(none.output.find("no checkpoint of this instance in the log ends at seq 2"),
            std::string::npos)
      << none.output;
}

// The VM tests' case: the module's chain head read before vigild attached,
// inside a checkpoint interval. The checkpoint covering the next seq is
// checked over the events after the start (not its link, which the start
// cannot know); a wrong head is tampered.
TEST(VerifyChain, StartInsideAnIntervalFromATrustedChainHead) {
  sim::ModuleSim sim;
  std::vector<records::Record> events;
  for (int i = 0; i < 2; ++i) events.push_back(sim.Commit());
  const std::string head = crypto::ToHex(sim.head());  // read at seq 2
  std::vector<records::Record> window;
  for (int i = 0; i < 3; ++i) window.push_back(sim.Commit());
  sim.Checkpoint();  // covers 1..5
  for (int i = 0; i < 2; ++i) window.push_back(sim.Commit());
  sim.Checkpoint();  // covers 6..7
  TempFile key(RawKey(sim.key()));
  CmdResult r = SimRun::VerifyWith(
      "--allow-signed --key " + key.path() + " --start-seq 2 --start-head " + head, window,
      sim.log());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("start: seq 2 with the given chain head"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checkpoint signatures: 2 verified, 0 unsigned or bad"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("its link and loss counters were not checked"), std::string::npos)
      << r.output;
  std::string wrong = head;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  CmdResult bad = SimRun::VerifyWith("--key " + key.path() + " --start-seq 2 --start-head " + wrong,
                                     window, sim.log());
  EXPECT_EQ(bad.code, 10) << bad.output;
  // A forged event after the start is still caught by the first checkpoint.
  std::vector<uint8_t> b(window[0].bytes().begin(), window[0].bytes().end());
  b[offsetof(vigil_ev_exec, pid)] ^= 1;
  window[0] = *records::Record::Decode(b);
  CmdResult forged = SimRun::VerifyWith(
      "--key " + key.path() + " --start-seq 2 --start-head " + head, window, sim.log());
  EXPECT_EQ(forged.code, 10) << forged.output;
}

TEST(VerifyChain, BrokenCheckpointLinkIsTampered) {
  SimRun run(/*checkpoints=*/2);
  std::vector<records::Record> log = run.sim.log();
  // The second checkpoint (log seq 4) with a flipped prev_digest, re-signed
  // with the module's key: only the link is wrong.
  auto cp = *log[3].As<vigil_log_checkpoint>();
  cp.prev_digest[0] ^= 1;
  log[3] = testing::ToRecord(cp);
  auto sig = run.sim.Sign(log[3]);
  sig.hdr.seq = log[4].seq();
  log[4] = testing::ToRecord(sig);
  TempFile key(RawKey(run.sim.key()));
  CmdResult r = run.Verify("--key " + key.path(), log);
  EXPECT_EQ(r.code, 10) << r.output;
  EXPECT_NE(r.output.find("prev_digest"), std::string::npos) << r.output;
}

TEST(VerifyChain, TruncatedLogIsTampered) {
  SimRun run(/*checkpoints=*/1);
  std::vector<uint8_t> log = Bytes(run.sim.log());
  // Cut inside the signature record: the checkpoint waits for it in vain.
  log.resize(log.size() - 10);
  TempFile ev(Bytes(run.events)), lg(log), key(RawKey(run.sim.key()));
  CmdResult r = Exec(kCtl + " verify-chain --events " + ev.path() + " --file " + lg.path() +
                     " --key " + key.path());
  EXPECT_EQ(r.code, 10) << r.output;
}

// Kernel- and file-supplied strings reach a terminal escaped: an ESC
// sequence in comm or filename cannot clear the screen, retitle the
// window or fake a line.
TEST(Vigilctl, LogEscapesControlCharactersFromRecords) {
  std::vector<uint8_t> bytes;
  testing::Append(bytes,
                  testing::MakeExec(1, 77, "\x1b]0;pwned\x07", "/bin/\x1b[2J\r\nok\x7f\xc3\xa9"));
  auto m = testing::MakeMeasure(2, 16, "x\x1b[31mred\\");
  testing::Append(bytes, m);
  TempFile log(bytes);
  CmdResult r = Exec(kCtl + " log --file " + log.path());
  ASSERT_EQ(r.code, 0) << r.output;
  for (char c : r.output) {
    const auto b = static_cast<unsigned char>(c);
    EXPECT_TRUE(b == '\n' || (b >= 0x20 && b < 0x7f)) << "raw byte " << int{b} << "\n" << r.output;
  }
  EXPECT_NE(r.output.find("comm=\\x1b]0;pwned\\x07"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("filename=/bin/\\x1b[2J\\x0d\\x0aok\\x7f\\xc3\\xa9"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("name=x\\x1b[31mred\\\\"), std::string::npos) << r.output;
  // JSON keeps the bytes, escaped the JSON way.
  CmdResult js = Exec(kCtl + " log --json --file " + log.path());
  ASSERT_EQ(js.code, 0) << js.output;
  EXPECT_EQ(js.output.find('\x1b'), std::string::npos) << js.output;
  std::istringstream lines(js.output);
  std::string first;
  std::getline(lines, first);
  EXPECT_EQ(nlohmann::json::parse(first)["comm"], "\x1b]0;pwned\x07");
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
