#include "swtpm_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "vigil/unique_fd.h"

namespace vigil::fleetsim {
namespace {

bool CanConnect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

}  // namespace

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

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) start after its ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoul(field);
    if (i == 15) stime = std::stoul(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

SwtpmProcess::SwtpmProcess(SwtpmProcess&& other) noexcept
    : pid_(other.pid_), socket_(std::move(other.socket_)) {
  other.pid_ = -1;
}

SwtpmProcess& SwtpmProcess::operator=(SwtpmProcess&& other) noexcept {
  if (this != &other) {
    Stop();
    pid_ = other.pid_;
    socket_ = std::move(other.socket_);
    other.pid_ = -1;
  }
  return *this;
}

Result<SwtpmProcess> SwtpmProcess::Spawn(const std::string& swtpm, const std::string& dir) {
  const std::string state = dir + "/state";
  if (::mkdir(state.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + state);
  }
  SwtpmProcess p;
  p.socket_ = dir + "/tpm.sock";
  if (p.socket_.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::Error(ErrorCode::kInvalidArgument, "socket path too long: " + p.socket_);
  }
  std::vector<std::string> args = {
      swtpm,
      "socket",
      "--tpm2",
      "--server",
      "type=unixio,path=" + p.socket_,
      "--ctrl",
      "type=unixio,path=" + p.socket_ + ".ctrl",  // where tcti-swtpm looks
      "--flags",
      "not-need-init,startup-clear",
      "--tpmstate",
      "dir=" + state,
      "--log",
      "file=" + dir + "/swtpm.log"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork (swtpm)");
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  p.pid_ = pid;
  return p;
}

Status SwtpmProcess::WaitReady(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Error(ErrorCode::kUnavailable,
                           "swtpm exited (status " + std::to_string(status) + ") before " +
                               socket_ + " was up; see swtpm.log beside it");
    }
    if (CanConnect(socket_)) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Error(ErrorCode::kUnavailable, "swtpm did not open " + socket_ + " in " +
                                                    std::to_string(timeout_ms) + " ms");
}

void SwtpmProcess::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  // swtpm ends on SIGTERM at once; a stuck one is killed after 2 s.
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

double SwtpmProcess::CpuSeconds() const { return pid_ > 0 ? ProcessCpuSeconds(pid_) : 0; }

}  // namespace vigil::fleetsim
