#include "swtpm_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "vigil/unique_fd.h"

extern char** environ;

namespace vigil::testing {
namespace {

bool PortFree(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

// An ephemeral port P with P+1 also free (swtpm's control channel).
int PickPortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) continue;
    socklen_t len = sizeof(addr);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    const int port = ntohs(addr.sin_port);
    fd.Reset();
    if (port < 65534 && PortFree(port) && PortFree(port + 1)) return port;
  }
  return -1;
}

bool CanConnect(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

// The first executable `name` in PATH (and the usual bin directories).
std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  dirs += ":/usr/bin:/usr/local/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// Runs `args` (args[0] a full path) with stdout and stderr into `log`;
// returns its exit status, or -1 when it could not run.
int RunToLog(std::vector<std::string> args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

::testing::AssertionResult SwtpmProcess::Start(const std::string& state_dir) {
  Stop();
  const std::string swtpm = FindProgram("swtpm");
  if (swtpm.empty()) {
    return ::testing::AssertionFailure()
           << "swtpm not found in PATH: install swtpm (scripts/deps); "
              "this test fails rather than skips without it";
  }
  for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
    const int port = PickPortPair();
    if (port <= 0) return ::testing::AssertionFailure() << "no free TCP port pair";
    const std::string server = "type=tcp,port=" + std::to_string(port) + ",bindaddr=127.0.0.1";
    const std::string ctrl = "type=tcp,port=" + std::to_string(port + 1) + ",bindaddr=127.0.0.1";
    const std::string state = "dir=" + state_dir;
    std::vector<std::string> args = {swtpm,        "socket",  "--tpm2",
                                     "--server",   server,    "--ctrl",
                                     ctrl,         "--flags", "not-need-init,startup-clear",
                                     "--tpmstate", state};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (::posix_spawn(&pid, swtpm.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      return ::testing::AssertionFailure() << "cannot spawn " << swtpm;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool up = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) break;  // exited (port taken?)
      if (CanConnect(port)) {
        up = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (up) {
      pid_ = pid;
      tcti_ = "swtpm:host=127.0.0.1,port=" + std::to_string(port);
    } else {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  if (pid_ <= 0) return ::testing::AssertionFailure() << "swtpm did not start";
  return ::testing::AssertionSuccess();
}

void SwtpmProcess::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  tcti_.clear();
}

::testing::AssertionResult ManufactureTpm(const std::string& dir, ManufacturedTpm* out) {
  const std::string setup = FindProgram("swtpm_setup");
  const std::string localca = FindProgram("swtpm_localca");
  if (setup.empty() || localca.empty()) {
    return ::testing::AssertionFailure()
           << "swtpm_setup / swtpm_localca not found: install swtpm-tools (scripts/deps)";
  }
  const std::string ca_dir = dir + "/ca";
  const std::string certs_dir = dir + "/certs";
  out->state_dir = dir + "/state";
  for (const std::string& d : {ca_dir, certs_dir, out->state_dir}) {
    if (::mkdir(d.c_str(), 0700) != 0) return ::testing::AssertionFailure() << "mkdir " << d;
  }
  // Our own configuration: the CA's key, certificates and serial live in
  // ca_dir (swtpm_localca creates a root and an intermediate there).
  const std::string setup_conf = dir + "/swtpm_setup.conf";
  const std::string localca_conf = dir + "/swtpm-localca.conf";
  const std::string localca_opts = dir + "/swtpm-localca.options";
  if (!WriteText(setup_conf, "create_certs_tool = " + localca + "\ncreate_certs_tool_config = " +
                                 localca_conf + "\ncreate_certs_tool_options = " + localca_opts +
                                 "\nactive_pcr_banks = sha256\n") ||
      !WriteText(localca_conf, "statedir = " + ca_dir + "\nsigningkey = " + ca_dir +
                                   "/signkey.pem\nissuercert = " + ca_dir +
                                   "/issuercert.pem\ncertserial = " + ca_dir + "/certserial\n") ||
      !WriteText(
          localca_opts,
          "--platform-manufacturer vigil\n--platform-version 1.0\n--platform-model test\n")) {
    return ::testing::AssertionFailure() << "cannot write the swtpm_setup configuration";
  }
  const std::string log = dir + "/swtpm_setup.log";
  const int rc = RunToLog({setup, "--tpm2", "--tpmstate", out->state_dir, "--config", setup_conf,
                           "--create-ek-cert", "--create-platform-cert", "--write-ek-cert-files",
                           certs_dir, "--overwrite", "--logfile", log},
                          dir + "/swtpm_setup.out");
  if (rc != 0) {
    return ::testing::AssertionFailure() << "swtpm_setup exited " << rc << ":\n"
                                         << ReadAll(log) << ReadAll(dir + "/swtpm_setup.out");
  }
  out->root_ca_pem = ca_dir + "/swtpm-localca-rootca-cert.pem";
  out->issuer_ca_pem = ca_dir + "/issuercert.pem";
  out->ek_rsa_cert_der = certs_dir + "/ek-rsa2048.crt";
  for (const std::string& f : {out->root_ca_pem, out->issuer_ca_pem, out->ek_rsa_cert_der}) {
    if (::access(f.c_str(), R_OK) != 0) {
      return ::testing::AssertionFailure() << "swtpm_setup did not produce " << f << ":\n"
                                           << ReadAll(log);
    }
  }
  return ::testing::AssertionSuccess();
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/vigil-test-XXXXXX";
  if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

void SwtpmFixture::SetUp() {
  char tmpl[] = "/tmp/vigil-swtpm-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  state_dir_ = tmpl;
  ASSERT_TRUE(swtpm_.Start(state_dir_));
}

void SwtpmFixture::TearDown() {
  swtpm_.Stop();
  if (!state_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(state_dir_, ec);
  }
}

}  // namespace vigil::testing
