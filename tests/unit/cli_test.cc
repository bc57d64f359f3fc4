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

}  // namespace
}  // namespace vigil
