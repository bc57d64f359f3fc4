// Root BPF test on the host kernel (no vigil module): runs vigild, spawns
// known processes and checks their exec and exit events. Fails (does not
// skip) when not run as root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

pid_t Spawn(const std::vector<std::string>& args, const std::string& out = "",
            const std::string& err = "") {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!out.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  if (!err.empty()) {
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, copy[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int WaitStatus(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<json> ParseLines(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    out.push_back(json::parse(line));  // a bad line throws: the test fails
  }
  return out;
}

std::vector<json> EventsFor(const std::vector<json>& events, const std::string& type, pid_t pid) {
  std::vector<json> out;
  for (const auto& e : events) {
    if (e["type"] == type && e["pid"] == pid) out.push_back(e);
  }
  return out;
}

class HostBpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the host BPF test loads BPF programs and must run as root "
                                "(sudo ctest -L host-bpf); refusing to pass without running";
    dir_ = fs::temp_directory_path() / ("vigil-host-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (vigild_ > 0) {
      kill(vigild_, SIGKILL);
      WaitStatus(vigild_);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartVigild(std::vector<std::string> extra = {}) {
    const std::string ready = (dir_ / "ready").string();
    std::vector<std::string> args = {VIGILD_PATH, "--ready-file", ready};
    args.insert(args.end(), extra.begin(), extra.end());
    vigild_ = Spawn(args, out(), err());
    ASSERT_GT(vigild_, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(ready)) {
      int status = 0;
      if (waitpid(vigild_, &status, WNOHANG) == vigild_) {
        vigild_ = -1;
        FAIL() << "vigild exited before attaching: " << ReadAll(err());
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "vigild not ready: " << ReadAll(err());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // SIGTERM, then the JSON lines it printed.
  std::vector<json> StopVigild() {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    kill(vigild_, SIGTERM);
    const int status = WaitStatus(vigild_);
    vigild_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "vigild status " << status << ": " << ReadAll(err());
    EXPECT_NE(ReadAll(err()).find("vigild: summary events="), std::string::npos) << ReadAll(err());
    return ParseLines(out());
  }

  std::string out() const { return (dir_ / "out.json").string(); }
  std::string err() const { return (dir_ / "err.txt").string(); }

  fs::path dir_;
  pid_t vigild_ = -1;
};

void ExpectUncommitted(const json& e) {
  EXPECT_EQ(e["committed"], false) << e.dump();
  EXPECT_EQ(e["no_module"], true) << e.dump();
  EXPECT_EQ(e["seq"], 0) << e.dump();
}

TEST_F(HostBpfTest, SeesExecAndExitOfKnownProcesses) {
  StartVigild();

  // 1. A shell that exits with 7.
  const pid_t sh = Spawn({"/bin/sh", "-c", "exit 7"});
  ASSERT_GT(sh, 0);
  const int sh_status = WaitStatus(sh);
  ASSERT_TRUE(WIFEXITED(sh_status) && WEXITSTATUS(sh_status) == 7);

  // 2. A process killed by SIGKILL.
  const pid_t sleeper = Spawn({"/bin/sleep", "30"});
  ASSERT_GT(sleeper, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(sleeper, SIGKILL);
  const int sleeper_status = WaitStatus(sleeper);
  ASSERT_TRUE(WIFSIGNALED(sleeper_status));

  // 3. /bin/true under a unique path: filename and comm come from it.
  const std::string unique = "vt" + std::to_string(getpid() % 100000) + "true";
  const fs::path link = dir_ / unique;
  fs::create_symlink("/bin/true", link);
  const pid_t tru = Spawn({link.string()});
  ASSERT_GT(tru, 0);
  WaitStatus(tru);

  const std::vector<json> events = StopVigild();
  ASSERT_FALSE(events.empty());

  auto sh_exec = EventsFor(events, "exec", sh);
  ASSERT_EQ(sh_exec.size(), 1u);
  EXPECT_EQ(sh_exec[0]["filename"], "/bin/sh");
  EXPECT_EQ(sh_exec[0]["ppid"], getpid());
  EXPECT_EQ(sh_exec[0]["uid"], 0);
  ExpectUncommitted(sh_exec[0]);
  auto sh_exit = EventsFor(events, "exit", sh);
  ASSERT_EQ(sh_exit.size(), 1u);
  EXPECT_EQ(sh_exit[0]["exit_code"], 7);
  EXPECT_EQ(sh_exit[0]["signal"], 0);
  EXPECT_EQ(sh_exit[0]["comm"], "sh");
  EXPECT_GT(sh_exit[0]["metrics"]["lifetime_ns"].get<uint64_t>(), 0u);
  EXPECT_GT(sh_exit[0]["metrics"]["maxrss_kb"].get<uint64_t>(), 0u);
  ExpectUncommitted(sh_exit[0]);

  auto killed = EventsFor(events, "exit", sleeper);
  ASSERT_EQ(killed.size(), 1u);
  EXPECT_EQ(killed[0]["signal"], SIGKILL);
  EXPECT_EQ(killed[0]["exit_code"], 0);
  EXPECT_EQ(killed[0]["comm"], "sleep");
  EXPECT_GE(killed[0]["metrics"]["lifetime_ns"].get<uint64_t>(), 100'000'000u);

  auto tru_exec = EventsFor(events, "exec", tru);
  ASSERT_EQ(tru_exec.size(), 1u);
  EXPECT_EQ(tru_exec[0]["filename"], link.string());
  EXPECT_EQ(tru_exec[0]["comm"], unique);
  auto tru_exit = EventsFor(events, "exit", tru);
  ASSERT_EQ(tru_exit.size(), 1u);
  EXPECT_EQ(tru_exit[0]["exit_code"], 0);
  EXPECT_EQ(tru_exit[0]["comm"], unique);
  ExpectUncommitted(tru_exit[0]);
}

// A process whose leader leaves first and whose last thread calls
// exit_group(4): exactly one exit event, when the whole process is gone.
TEST_F(HostBpfTest, MultiThreadedProcessExitsOnce) {
  StartVigild();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::vector<pthread_t> threads(4);
    for (size_t i = 0; i < threads.size(); ++i) {
      pthread_create(
          &threads[i], nullptr,
          [](void* arg) -> void* {
            usleep(50000);
            if (arg != nullptr) _exit(4);  // exit_group from a non-leader thread
            pause();
            return nullptr;
          },
          i == 0 ? reinterpret_cast<void*>(1) : nullptr);
    }
    syscall(SYS_exit, 0);  // the leader thread alone
  }
  const int status = WaitStatus(child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 4);

  const std::vector<json> events = StopVigild();
  auto exits = EventsFor(events, "exit", child);
  ASSERT_EQ(exits.size(), 1u) << "one exit event per process, not per thread";
  EXPECT_EQ(exits[0]["exit_code"], 4);
  EXPECT_EQ(exits[0]["signal"], 0);
}

uint64_t SummaryValue(const std::string& summary, const std::string& key) {
  const std::string needle = " " + key + "=";
  const size_t at = summary.find(needle);
  if (at == std::string::npos) return UINT64_MAX;
  return std::stoull(summary.substr(at + needle.size()));
}

// A stopped consumer and a one-page ring buffer: records are lost, and the
// loss is counted and reported rather than silent.
TEST_F(HostBpfTest, FullRingBufferIsCounted) {
  StartVigild({"--ringbuf-bytes", "4096"});
  ASSERT_EQ(kill(vigild_, SIGSTOP), 0);
  for (int i = 0; i < 40; ++i) {
    const pid_t p = Spawn({"/bin/true"});
    ASSERT_GT(p, 0);
    WaitStatus(p);
  }
  ASSERT_EQ(kill(vigild_, SIGCONT), 0);
  const std::vector<json> events = StopVigild();
  const std::string summary = ReadAll(err());
  const uint64_t drops = SummaryValue(summary, "drops");
  ASSERT_NE(drops, UINT64_MAX) << summary;
  EXPECT_GT(drops, 0u) << summary;
  EXPECT_EQ(SummaryValue(summary, "ringbuf_full"), drops) << summary;
  // What fit in the page was still delivered.
  EXPECT_FALSE(events.empty());
  EXPECT_LT(events.size(), 80u) << "a one-page ring cannot hold 80 records";
}

TEST_F(HostBpfTest, DurationStopsCleanly) {
  const auto start = std::chrono::steady_clock::now();
  StartVigild({"--duration", "1"});
  const int status = WaitStatus(vigild_);
  vigild_ = -1;
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadAll(err());
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  EXPECT_NE(ReadAll(err()).find("drops="), std::string::npos) << ReadAll(err());
}

TEST_F(HostBpfTest, RefusesToRunWithoutRoot) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int fd = open(err().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) _exit(101);
    dup2(fd, 2);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
    execl(VIGILD_PATH, VIGILD_PATH, "--duration", "1", static_cast<char*>(nullptr));
    _exit(102);
  }
  const int status = WaitStatus(child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_NE(WEXITSTATUS(status), 102) << "cannot exec " VIGILD_PATH " as nobody";
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(ReadAll(err()).find("must run as root"), std::string::npos) << ReadAll(err());
}

}  // namespace
