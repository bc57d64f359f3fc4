// Root BPF test on the host kernel: a Collector with a pin directory keeps
// recording when its process is SIGKILLed, and the next Collector on the
// same directory adopts that instance (ring buffer, agents, links) instead
// of losing it. Uses the library directly; a forked child plays the killed
// vigild. Fails (does not skip) when not run as root.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vigil/agents.h"
#include "vigil/collector.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using vigil::bpf::Collector;
using vigil::bpf::CollectorOptions;

struct Seen {
  std::string type;  // "exec", "exit", "fork", ...
  uint32_t pid = 0;
  uint32_t agent = 0;
  std::string filename;  // exec only
};

// Records as the handler saw them (shared with the collector's callback).
struct Sink {
  std::vector<Seen> seen;
  Collector::Handler Handler() {
    return [this](const vigil::Result<vigil::records::Record>& r) {
      if (!r.ok()) return;
      Seen s;
      s.type = std::string(vigil::records::TypeName(r->type()));
      s.agent = r->hdr().agent_id;
      if (auto e = r->As<vigil_ev_exec>()) {
        s.pid = e->pid;
        s.filename = vigil::records::FieldString(e->filename);
      } else if (auto x = r->As<vigil_ev_exit>()) {
        s.pid = x->pid;
      }
      seen.push_back(std::move(s));
    };
  }
  bool HasExec(const std::string& path) const {
    for (const Seen& s : seen) {
      if (s.type == "exec" && s.filename == path) return true;
    }
    return false;
  }
  const Seen* Exit(uint32_t pid) const {
    for (const Seen& s : seen) {
      if (s.type == "exit" && s.pid == pid) return &s;
    }
    return nullptr;
  }
};

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  return out;
}

// Removes every pin under dir (links first: that detaches leaked programs).
void RemovePins(const std::string& dir) {
  for (const char* sub : {"/links", "/maps", ""}) {
    const std::string d = dir + sub;
    for (const std::string& name : Entries(d)) ::unlink((d + "/" + name).c_str());
    ::rmdir(d.c_str());
  }
}

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  return posix_spawn(&pid, copy[0].c_str(), nullptr, nullptr, argv.data(), environ) == 0 ? pid
                                                                                          : -1;
}

int WaitStatus(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

class AdoptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the adoption test loads BPF programs and must run as root";
    static std::atomic<int> n{0};
    tag_ = std::to_string(getpid()) + "-" + std::to_string(n++);
    pin_dir_ = "/sys/fs/bpf/vigil-adopt-" + tag_;
    dir_ = fs::temp_directory_path() / ("vigil-adopt-" + tag_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    KillChild();
    RemovePins(pin_dir_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  CollectorOptions Options(uint32_t ringbuf_bytes = 1u << 22) const {
    CollectorOptions o;
    o.all_processes = true;
    o.allow_module = false;
    o.pin_dir = pin_dir_;
    o.ringbuf_bytes = ringbuf_bytes;
    o.wakeup_bytes = 1;
    o.hw = CollectorOptions::Hw::kOff;
    return o;
  }

  // A child process starts a Collector (never polling: its records stay in
  // the ring), says so through a pipe, then waits to be killed.
  void StartChildCollector(const CollectorOptions& options) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    child_ = fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      ::close(fds[0]);
      auto c = Collector::Start(options, [](const vigil::Result<vigil::records::Record>&) {});
      const std::string msg = c.ok() ? "ok" : c.status().ToString();
      (void)!::write(fds[1], msg.data(), msg.size());
      ::close(fds[1]);
      for (;;) ::pause();
    }
    ::close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) {
      msg.append(buf, static_cast<size_t>(n));
      if (msg == "ok") break;
    }
    ::close(fds[0]);
    ASSERT_EQ(msg, "ok") << "the child's collector did not start";
  }

  void KillChild() {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      WaitStatus(child_);
      child_ = -1;
    }
  }

  // Runs a uniquely named copy of /bin/true; returns its path and pid.
  std::pair<std::string, pid_t> RunMarker(const std::string& name) {
    const std::string path = (dir_ / ("vigil-marker-" + name + "-" + tag_)).string();
    fs::copy_file("/bin/true", path, fs::copy_options::overwrite_existing);
    ::chmod(path.c_str(), 0755);
    const pid_t pid = Spawn({path});
    EXPECT_GT(pid, 0);
    WaitStatus(pid);
    return {path, pid};
  }

  // Polls until pred() holds or 5 s pass.
  template <typename Pred>
  bool PollUntil(Collector& c, Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      EXPECT_TRUE(c.Poll(50).ok());
    }
    return true;
  }

  std::string tag_;
  std::string pin_dir_;
  fs::path dir_;
  pid_t child_ = -1;
};

// (1) Records produced before the kill (never consumed) and while no
// collector ran reach the next collector, and the old links are replaced.
TEST_F(AdoptTest, SurvivesSigkillAndDeliversRecordsFromTheGap) {
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(Options()));
  ASSERT_FALSE(Entries(pin_dir_ + "/links").empty()) << "the links are pinned";
  const auto [before_path, before_pid] = RunMarker("before");
  KillChild();
  // No collector process now: the pinned programs keep recording.
  const auto [gap_path, gap_pid] = RunMarker("gap");

  Sink sink;
  auto c = Collector::Start(Options(), sink.Handler());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const vigil::bpf::AdoptStatus& a = (*c)->adopted();
  std::printf("adoption: %s (switch %llu us)\n", a.detail.c_str(),
              static_cast<unsigned long long>(a.switch_ns / 1000));
  EXPECT_TRUE(a.adopted);
  EXPECT_TRUE(a.ringbuf_reused);
  EXPECT_FALSE(a.drained_old);
  EXPECT_EQ(a.maps_replaced, 0u);
  EXPECT_GE(a.links_replaced, 3u);  // exec, exit, fork
  EXPECT_EQ(a.generation, 2u);
  EXPECT_NE(a.detail.find("ring buffer kept"), std::string::npos) << a.detail;
  EXPECT_TRUE(PollUntil(**c, [&] {
    return sink.HasExec(before_path) && sink.Exit(before_pid) && sink.HasExec(gap_path) &&
           sink.Exit(gap_pid);
  })) << "records of the killed collector's instance are missing";
  // No duplicates: one exec and one exit each.
  for (const auto& [path, pid] : {std::pair{before_path, before_pid}, {gap_path, gap_pid}}) {
    int execs = 0, exits = 0;
    for (const Seen& s : sink.seen) {
      execs += s.type == "exec" && s.filename == path;
      exits += s.type == "exit" && s.pid == static_cast<uint32_t>(pid);
    }
    EXPECT_EQ(execs, 1) << path;
    EXPECT_EQ(exits, 1) << path;
  }
  // The new programs record too.
  const auto [after_path, after_pid] = RunMarker("after");
  EXPECT_TRUE(PollUntil(**c, [&] { return sink.HasExec(after_path) && sink.Exit(after_pid); }));
  // Only the new instance's links are pinned.
  const std::vector<std::string> links = Entries(pin_dir_ + "/links");
  EXPECT_EQ(links.size(), 3u) << "exec, exit, fork (samples off)";
}

// (2) A tracked agent added before the kill is still tracked afterwards,
// and its records carry its id.
TEST_F(AdoptTest, TrackedAgentSurvivesAdoption) {
  CollectorOptions o = Options();
  o.all_processes = false;
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(o));
  const pid_t sleeper = Spawn({"/bin/sleep", "30"});
  ASSERT_GT(sleeper, 0);
  uint32_t id = 0;
  {
    auto reg = vigil::agents::Registry::Open(pin_dir_);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    auto got = reg->Register("adopt-agent", VIGIL_AGENT_BY_PID, static_cast<uint32_t>(sleeper), 0);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    id = *got;
    ASSERT_TRUE(reg->TrackPid(id, static_cast<uint32_t>(sleeper)).ok());
  }
  KillChild();

  Sink sink;
  auto c = Collector::Start(o, sink.Handler());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE((*c)->adopted().adopted);
  auto reg = vigil::agents::Registry::Open(pin_dir_);
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  auto list = reg->List();
  ASSERT_TRUE(list.ok());
  bool found = false;
  for (const auto& agent : *list) {
    if (agent.name != "adopt-agent") continue;
    found = true;
    EXPECT_EQ(agent.id, id);
    EXPECT_EQ(agent.pids, std::vector<uint32_t>{static_cast<uint32_t>(sleeper)});
  }
  EXPECT_TRUE(found) << "the agent was lost";
  ::kill(sleeper, SIGKILL);
  WaitStatus(sleeper);
  EXPECT_TRUE(PollUntil(**c, [&] { return sink.Exit(static_cast<uint32_t>(sleeper)) != nullptr; }));
  if (const Seen* e = sink.Exit(static_cast<uint32_t>(sleeper)); e != nullptr) {
    EXPECT_EQ(e->agent, id);
  }
}

// (3) A clean stop leaves nothing pinned (and no program attached).
TEST_F(AdoptTest, CleanStopLeavesNothingPinned) {
  {
    Sink sink;
    auto c = Collector::Start(Options(), sink.Handler());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_FALSE((*c)->adopted().adopted);
    EXPECT_EQ((*c)->adopted().generation, 1u);
    EXPECT_TRUE(fs::exists(pin_dir_ + "/" VIGIL_PIN_AGENTS)) << "vigilctl's path is unchanged";
    EXPECT_TRUE(fs::exists(pin_dir_ + "/maps/vigil_events"));
    EXPECT_TRUE(fs::exists(pin_dir_ + "/maps/vigil_meta"));
    EXPECT_EQ(Entries(pin_dir_ + "/links").size(), 3u);
  }
  EXPECT_TRUE(Entries(pin_dir_).empty()) << "left behind: " << [&] {
    std::string s;
    for (const auto& e : Entries(pin_dir_)) s += e + " ";
    return s;
  }();
  // The next start is a fresh one.
  Sink sink;
  auto c = Collector::Start(Options(), sink.Handler());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE((*c)->adopted().adopted);
  EXPECT_EQ((*c)->adopted().generation, 1u);
}

// (4) Another ring buffer size: the old ring cannot be reused, so its
// records are drained through the handler during Start, then a fresh one.
TEST_F(AdoptTest, IncompatibleRingBufferIsDrainedThenFresh) {
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(Options(1u << 20)));
  const auto [before_path, before_pid] = RunMarker("before");
  KillChild();
  const auto [gap_path, gap_pid] = RunMarker("gap");

  Sink sink;
  auto c = Collector::Start(Options(1u << 21), sink.Handler());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const vigil::bpf::AdoptStatus& a = (*c)->adopted();
  std::printf("adoption: %s\n", a.detail.c_str());
  EXPECT_TRUE(a.adopted);
  EXPECT_FALSE(a.ringbuf_reused);
  EXPECT_TRUE(a.drained_old);
  EXPECT_GE(a.drained_records, 4u);
  EXPECT_GE(a.maps_replaced, 1u);
  EXPECT_NE(a.detail.find("drained"), std::string::npos) << a.detail;
  // Already delivered, before any Poll.
  EXPECT_TRUE(sink.HasExec(before_path));
  EXPECT_TRUE(sink.Exit(before_pid));
  EXPECT_TRUE(sink.HasExec(gap_path));
  EXPECT_TRUE(sink.Exit(gap_pid));
  const size_t drained = sink.seen.size();
  // The fresh ring buffer works, and the old one is gone.
  const auto [after_path, after_pid] = RunMarker("after");
  EXPECT_TRUE(PollUntil(**c, [&] { return sink.HasExec(after_path) && sink.Exit(after_pid); }));
  for (size_t i = drained; i < sink.seen.size(); ++i) {
    EXPECT_NE(sink.seen[i].filename, gap_path) << "an old record came twice";
  }
  EXPECT_EQ(Entries(pin_dir_ + "/links").size(), 3u);
}

// (5) A second collector on a live one's pin directory is refused and
// leaves the first one's pins alone.
TEST_F(AdoptTest, SecondLiveCollectorIsRefused) {
  Sink sink;
  auto first = Collector::Start(Options(), sink.Handler());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const size_t links = Entries(pin_dir_ + "/links").size();
  Sink sink2;
  auto second = Collector::Start(Options(), sink2.Handler());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), vigil::ErrorCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("another vigild is running"), std::string::npos)
      << second.status().ToString();
  EXPECT_EQ(Entries(pin_dir_ + "/links").size(), links);
  EXPECT_TRUE(vigil::agents::Registry::Open(pin_dir_).ok());
  const auto [path, pid] = RunMarker("first");
  EXPECT_TRUE(PollUntil(**first, [&] { return sink.HasExec(path); }));
  EXPECT_TRUE(sink2.seen.empty());
}

// Processes exec'ing and exiting all through the adoption: with the
// generation flip no hook is ever unobserved, so none is missing.
TEST_F(AdoptTest, NoRecordLostWhileSwitchingUnderLoad) {
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(Options()));
  KillChild();
  // The load is generated from this process, so its children's SIGCHLD
  // comes here: glibc's posix_spawn blocks every signal in the spawning
  // thread, so the kernel queues SIGCHLD (default: ignored) and wakes the
  // loading thread instead, and the verifier gives up with EAGAIN whenever
  // a signal is pending (kernel/bpf/verifier.c, do_check). vigild's load
  // comes from other processes; block SIGCHLD here for the same footing.
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &chld, &old), 0);
  struct RestoreMask {
    sigset_t mask;
    ~RestoreMask() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{old};
  const std::string path = (dir_ / ("vigil-marker-load-" + tag_)).string();
  fs::copy_file("/bin/true", path);
  ::chmod(path.c_str(), 0755);
  std::atomic<bool> stop{false};
  std::vector<pid_t> pids;
  std::thread load([&] {
    while (!stop.load()) {
      const pid_t p = Spawn({path});
      if (p > 0) {
        WaitStatus(p);
        pids.push_back(p);
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Sink sink;
  auto c = Collector::Start(Options(), sink.Handler());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  load.join();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE((*c)->adopted().gapless) << (*c)->adopted().detail;
  ASSERT_GT(pids.size(), 10u);
  std::map<uint32_t, std::pair<int, int>> counts;  // pid -> execs, exits
  EXPECT_TRUE(PollUntil(**c, [&] {
    counts.clear();
    for (const Seen& s : sink.seen) {
      if (s.type == "exec" && s.filename == path) counts[s.pid].first++;
      if (s.type == "exit") counts[s.pid].second++;
    }
    for (pid_t p : pids) {
      auto it = counts.find(static_cast<uint32_t>(p));
      if (it == counts.end() || it->second.first == 0 || it->second.second == 0) return false;
    }
    return true;
  })) << "a record of the " << pids.size() << " processes is missing";
  int dups = 0;
  for (pid_t p : pids) {
    const auto& [execs, exits] = counts[static_cast<uint32_t>(p)];
    dups += (execs - 1) + (exits > 1 ? exits - 1 : 0);
  }
  std::printf("%zu processes across the switch (%s): %d duplicate records\n", pids.size(),
              (*c)->adopted().detail.c_str(), dups);
  // Only an exec racing the single flag store can be seen by both.
  EXPECT_LE(dups, 1);
}

// An old instance whose .bss the new programs cannot share (here: its pin
// replaced by a map of another shape): hook-by-hook switch, old link first,
// so no duplicates; the gap is measured. The ring buffer is still kept.
TEST_F(AdoptTest, WithoutTheSharedFlagSwitchesHookByHook) {
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(Options()));
  KillChild();
  const std::string bss = pin_dir_ + "/maps/bss";
  ASSERT_EQ(::unlink(bss.c_str()), 0) << "the .bss is pinned";
  {
    const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "other", 4, 16, 1, nullptr);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(bpf_obj_pin(fd, bss.c_str()), 0);
    ::close(fd);
  }
  const auto [gap_path, gap_pid] = RunMarker("gap");
  Sink sink;
  auto c = Collector::Start(Options(), sink.Handler());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const vigil::bpf::AdoptStatus& a = (*c)->adopted();
  std::printf("adoption: %s\n", a.detail.c_str());
  EXPECT_TRUE(a.adopted);
  EXPECT_TRUE(a.ringbuf_reused);
  EXPECT_FALSE(a.gapless);
  EXPECT_EQ(a.maps_replaced, 1u);
  EXPECT_EQ(a.links_replaced, 3u);
  EXPECT_GT(a.max_hook_gap_ns, 0u);
  EXPECT_NE(a.detail.find("longest hook gap"), std::string::npos) << a.detail;
  EXPECT_TRUE(PollUntil(**c, [&] { return sink.HasExec(gap_path) && sink.Exit(gap_pid); }));
  const auto [after_path, after_pid] = RunMarker("after");
  EXPECT_TRUE(PollUntil(**c, [&] { return sink.HasExec(after_path) && sink.Exit(after_pid); }));
  EXPECT_EQ(Entries(pin_dir_ + "/links").size(), 3u);
}

// Killed again after adopting: each restart takes over the last instance.
TEST_F(AdoptTest, AdoptsRepeatedly) {
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(Options()));
  const auto [first_path, first_pid] = RunMarker("first");
  KillChild();
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(Options()));  // adopts, never polls
  const auto [second_path, second_pid] = RunMarker("second");
  KillChild();
  const auto [gap_path, gap_pid] = RunMarker("gap");
  Sink sink;
  auto c = Collector::Start(Options(), sink.Handler());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE((*c)->adopted().adopted);
  EXPECT_TRUE((*c)->adopted().gapless);
  EXPECT_EQ((*c)->adopted().generation, 3u);
  EXPECT_TRUE(PollUntil(**c, [&] {
    return sink.HasExec(first_path) && sink.HasExec(second_path) && sink.HasExec(gap_path) &&
           sink.Exit(gap_pid);
  }));
  EXPECT_EQ(Entries(pin_dir_ + "/links").size(), 3u);
}

// A child killed while it holds the lock in another process too.
TEST_F(AdoptTest, LiveChildCollectorBlocksAdoption) {
  ASSERT_NO_FATAL_FAILURE(StartChildCollector(Options()));
  Sink sink;
  auto c = Collector::Start(Options(), sink.Handler());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), vigil::ErrorCode::kFailedPrecondition);
  KillChild();
  auto again = Collector::Start(Options(), sink.Handler());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*again)->adopted().adopted);
}

}  // namespace
