// vigil-bench-bpf: what tracing costs an agent (host or VM, root).
//
// Runs vigild (agents only, samples every 100 ms) and, in rotating order
// within every round, the same loops as an untracked process, as a tracked
// agent (vigilctl agent track/untrack on itself), as a tracked agent with
// vigild stopped, with no BPF loaded at all (vigild exited), and with only
// an empty tp_btf/sched_switch program attached (the floor: what any BPF
// hook on every context switch costs, before it does anything), side by
// side in one run:
//   exec      fork + exec /bin/true + wait, N times
//   pingpong  Y round trips over two pipes with a child (2 switches each)
// and prints the medians of the per-round ratios. The loops run pinned to
// one CPU (--cpu), vigild wherever the scheduler puts it. Then the hooks' own cost, which the
// ratios cannot resolve on a busy machine: with kernel.bpf_stats_enabled,
// the run time of vigil's BPF programs during each loop, per operation
// and as a share of the operation's time, untracked and tracked. Then the loss accounting
// under overload: a stopped vigild with a 64 KiB ring, a burst of K
// fork+exit children (2 records each): received + counted drops must equal
// the records generated, exactly. Then the records/s a free-running vigild
// takes from the same burst with nothing lost.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>


#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "vigil/cli_parse.h"
#include "vigil/version.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

std::string g_vigild = VIGILD_PATH;
std::string g_vigilctl = VIGILCTL_PATH;
std::string g_pin_dir;
cpu_set_t g_all_cpus;  // the mask before the loops were pinned: vigild's

std::string Resolve(const std::string& built, const char* name) {
  if (access(built.c_str(), X_OK) == 0) return built;
  return std::string("/usr/bin/") + name;  // in the VM
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, copy[0].c_str(), &fa, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

int Wait(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t Summary(const std::string& text, const std::string& key) {
  const size_t at = text.find(" " + key + "=");
  if (at == std::string::npos) return UINT64_MAX;
  return std::strtoull(text.c_str() + at + key.size() + 2, nullptr, 10);
}

struct Vigild {
  pid_t pid = -1;
  std::string err;
  std::string out = "/dev/null";
  bool Start(std::vector<std::string> extra) {
    const std::string ready = "/tmp/vigil-bench-ready";
    err = "/tmp/vigil-bench-vigild.err";
    unlink(ready.c_str());
    std::vector<std::string> args = {g_vigild,  "--ready-file", ready,     "--pin-dir",
                                     g_pin_dir, "--no-state",   "--metrics", ""};
    args.insert(args.end(), extra.begin(), extra.end());
    pid = Spawn(args, out, err);
    // The daemon runs wherever the scheduler puts it, as it would on a node.
    if (pid > 0) sched_setaffinity(pid, sizeof(g_all_cpus), &g_all_cpus);
    for (int i = 0; i < 600 && access(ready.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (access(ready.c_str(), F_OK) != 0) {
      std::fprintf(stderr, "vigild did not start: %s\n", ReadAll(err).c_str());
      return false;
    }
    return true;
  }
  std::string Stop() {
    kill(pid, SIGTERM);
    Wait(pid);
    pid = -1;
    return ReadAll(err);
  }
};

// An empty tp_btf/sched_switch program ("return 0"), attached for as long
// as the object lives: the floor under vigil's sched_switch hook (the
// tracepoint's call into BPF and the program's entry and exit, no work).
class EmptySwitchHook {
 public:
  EmptySwitchHook() {
    const int btf_id = libbpf_find_vmlinux_btf_id("sched_switch", BPF_TRACE_RAW_TP);
    if (btf_id < 0) {
      error_ = "no BTF for sched_switch: " + std::string(std::strerror(-btf_id));
      return;
    }
    const struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
                .attach_btf_id = static_cast<__u32>(btf_id));
    prog_fd_ = bpf_prog_load(BPF_PROG_TYPE_TRACING, "bench_empty_sw", "GPL", insns, 2, &opts);
    if (prog_fd_ < 0) {
      error_ = "load: " + std::string(std::strerror(errno));
      return;
    }
  }
  EmptySwitchHook(const EmptySwitchHook&) = delete;
  EmptySwitchHook& operator=(const EmptySwitchHook&) = delete;
  ~EmptySwitchHook() {
    Detach();
    if (prog_fd_ >= 0) close(prog_fd_);
  }
  bool Attach() {
    if (prog_fd_ < 0) return false;
    link_fd_ = bpf_raw_tracepoint_open(nullptr, prog_fd_);
    if (link_fd_ < 0) error_ = "attach: " + std::string(std::strerror(errno));
    return link_fd_ >= 0;
  }
  void Detach() {
    if (link_fd_ >= 0) close(link_fd_);
    link_fd_ = -1;
  }
  int prog_fd() const { return prog_fd_; }
  const std::string& error() const { return error_; }

 private:
  int prog_fd_ = -1;
  int link_fd_ = -1;
  std::string error_;
};

bool Ctl(std::vector<std::string> args) {
  std::vector<std::string> full = {g_vigilctl, "agent", "--pin-dir", g_pin_dir};
  full.insert(full.end(), args.begin(), args.end());
  const int st = Wait(Spawn(full, "/dev/null", "/tmp/vigil-bench-ctl.err"));
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

double ExecLoop(int n) {
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    const pid_t c = fork();
    if (c == 0) {
      execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(127);
    }
    Wait(c);
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double PingPong(int y) {
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) std::exit(1);
  const auto t0 = Clock::now();
  const pid_t c = fork();
  char ch = 0;
  if (c == 0) {
    for (int i = 0; i < y; ++i) {
      if (read(a[0], &ch, 1) != 1 || write(b[1], &ch, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  for (int i = 0; i < y; ++i) {
    if (write(a[1], &ch, 1) != 1 || read(b[0], &ch, 1) != 1) std::exit(1);
  }
  Wait(c);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  close(a[0]), close(a[1]), close(b[0]), close(b[1]);
  return s;
}

double ForkBurst(int k) {
  const auto t0 = Clock::now();
  for (int i = 0; i < k; ++i) {
    const pid_t c = fork();
    if (c == 0) _exit(0);
    Wait(c);
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Run time and run count of every loaded vigil_* BPF program (bpftool;
// counted only while kernel.bpf_stats_enabled is 1).
struct ProgStats {
  uint64_t ns = 0;
  uint64_t runs = 0;
};
std::map<std::string, ProgStats> BpfStats() {
  std::map<std::string, ProgStats> out;
  FILE* p = popen("bpftool -j prog show 2>/dev/null", "r");
  if (!p) return out;
  std::string text;
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) text.append(buf, n);
  pclose(p);
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return out;
  for (const auto& prog : j) {
    const std::string name = prog.value("name", "");
    if (name.rfind("vigil_", 0) != 0) continue;
    ProgStats& s = out[name];
    s.ns += prog.value("run_time_ns", uint64_t{0});
    s.runs += prog.value("run_cnt", uint64_t{0});
  }
  return out;
}

// Run time and run count of one program (kernel.bpf_stats_enabled).
ProgStats ProgStatsOf(int prog_fd) {
  struct bpf_prog_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return {};
  return {info.run_time_ns, info.run_cnt};
}

// BPF time spent between two snapshots, per program and in total.
struct HookCost {
  uint64_t ns = 0;
  std::string detail;
};
HookCost Between(const std::map<std::string, ProgStats>& a,
                 const std::map<std::string, ProgStats>& b, double per) {
  HookCost c;
  for (const auto& [name, after] : b) {
    auto it = a.find(name);
    const uint64_t ns = after.ns - (it == a.end() ? 0 : it->second.ns);
    const uint64_t runs = after.runs - (it == a.end() ? 0 : it->second.runs);
    if (runs == 0) continue;
    c.ns += ns;
    char line[160];
    std::snprintf(line, sizeof(line), "%s%s %.2f runs x %.0f ns", c.detail.empty() ? "" : ", ",
                  name.c_str(), static_cast<double>(runs) / per,
                  static_cast<double>(ns) / static_cast<double>(runs));
    c.detail += line;
  }
  return c;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median and quartiles of per-round ratios: each round's modes ran minutes
// apart at most, so a paired ratio cancels drift that a ratio of medians
// keeps.
struct Spread {
  double median, q1, q3;
};
Spread Paired(const std::vector<double>& num, const std::vector<double>& den) {
  std::vector<double> r;
  for (size_t i = 0; i < num.size() && i < den.size(); ++i) r.push_back(num[i] / den[i]);
  std::sort(r.begin(), r.end());
  return {r[r.size() / 2], r[r.size() / 4], r[(3 * r.size()) / 4]};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 9, execs = 300, pingpong = 20000, burst = 5000, cpu = 0;
  CLI::App app{"vigil-bench-bpf: what vigil's BPF producers cost, measured side by side in one run"};
  app.set_version_flag("--version", vigil::version::VersionText("vigil-bench-bpf"));
  app.add_option("--rounds", rounds, "Rotating rounds of the five modes")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--execs", execs, "fork+exec+wait iterations per loop")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--pingpong", pingpong, "Pipe round trips per loop")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--burst", burst, "fork+exit children for loss and rate")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--cpu", cpu,
                 "CPU the loops run on, -1 for any: both ends of the ping-pong on one CPU make "
                 "every trip two context switches, and no run depends on where the scheduler "
                 "put it")
      ->capture_default_str()
      ->check(CLI::Range(-1, 4095));
  if (auto exit_code = vigil::cli::Parse(app, argc, argv)) return *exit_code;
  if (geteuid() != 0) {
    std::fprintf(stderr, "vigil-bench-bpf: must run as root (it runs vigild)\n");
    return 1;
  }
  sched_getaffinity(0, sizeof(g_all_cpus), &g_all_cpus);
  if (cpu >= 0) {
    // Children (the loops' forks, vigild, vigilctl) inherit the mask; vigild
    // is moved off it below.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      std::fprintf(stderr, "vigil-bench-bpf: cannot pin to CPU %d: %s\n", cpu, std::strerror(errno));
      return 2;
    }
  }
  g_vigild = Resolve(g_vigild, "vigild");
  g_vigilctl = Resolve(g_vigilctl, "vigilctl");
  g_pin_dir = "/sys/fs/bpf/vigil-bench-" + std::to_string(getpid());
  const std::string self = std::to_string(getpid());
  int rc = 0;

  // 1. Overhead, traced vs untraced vs nothing loaded, side by side: in
  // every round each mode runs once, in rotating order. [0] untracked,
  // [1] tracked, [2] tracked with vigild stopped (the BPF programs' own
  // cost, without the consumer competing for the CPUs), [3] no BPF loaded
  // at all (vigild exited; started again for the next mode), [4] only an
  // empty sched_switch program (vigild exited). [0]/[3] is what every
  // process pays while vigild runs (hooks that find no agent); [4]/[3] is
  // the part of it no sched_switch hook can avoid.
  // A 16 MiB ring holds every record of a round even with vigild stopped.
  const std::vector<std::string> vigild_args = {"--sample-ms", "100", "--ringbuf-bytes",
                                                "16777216"};
  Vigild vd;
  uint64_t vd_events = 0, vd_samples = 0, vd_drops = 0;
  const auto stop = [&] {
    const std::string s = vd.Stop();
    const auto add = [&](uint64_t& sum, const char* key) {
      const uint64_t v = Summary(s, key);
      if (v != UINT64_MAX) sum += v;
    };
    add(vd_events, "events");
    add(vd_samples, "sample");
    add(vd_drops, "drops");
  };
  EmptySwitchHook floor;
  if (floor.prog_fd() < 0) {
    std::fprintf(stderr, "vigil-bench-bpf: empty sched_switch program: %s\n",
                 floor.error().c_str());
    return 1;
  }
  std::vector<double> ex[5], pp[5];
  for (int r = 0; r < rounds; ++r) {
    for (int j = 0; j < 5; ++j) {
      const int mode = (r + j) % 5;  // rotate which goes first
      if (mode >= 3) {
        if (vd.pid > 0) stop();
        if (mode == 4 && !floor.Attach()) {
          std::fprintf(stderr, "vigil-bench-bpf: empty sched_switch program: %s\n",
                       floor.error().c_str());
          return 1;
        }
      } else {
        if (vd.pid < 0 && !vd.Start(vigild_args)) return 1;
        if (mode != 0) {
          if (!Ctl({"track", "--pid", self, "--name", "bench"})) return 1;
        } else {
          Ctl({"untrack", "--name", "bench"});
        }
      }
      if (mode == 2) kill(vd.pid, SIGSTOP);
      ex[mode].push_back(ExecLoop(execs));
      pp[mode].push_back(PingPong(pingpong));
      if (mode == 2) kill(vd.pid, SIGCONT);
      if (mode == 4) floor.Detach();
    }
  }
  if (vd.pid > 0) {
    Ctl({"untrack", "--name", "bench"});
    stop();
  }
  const double ex0 = Median(ex[0]), ex1 = Median(ex[1]), ex2 = Median(ex[2]), exn = Median(ex[3]);
  const double pp0 = Median(pp[0]), pp1 = Median(pp[1]), pp2 = Median(pp[2]), ppn = Median(pp[3]);
  std::printf("overhead (%d rotating rounds, loops on %s; vigild --sample-ms 100; ratios are "
              "medians of per-round ratios [quartiles])\n",
              rounds, cpu >= 0 ? ("CPU " + std::to_string(cpu)).c_str() : "any CPU");
  const auto ratio = [](const Spread& s) {
    char b[64];
    std::snprintf(b, sizeof(b), "%.3f [%.3f-%.3f]", s.median, s.q1, s.q3);
    return std::string(b);
  };
  std::printf("  exec loop, %d x fork+exec+wait: untraced %.1f us/iter; traced %.1f (ratio %s); "
              "traced, consumer stopped %.1f (ratio %s)\n",
              execs, ex0 / execs * 1e6, ex1 / execs * 1e6, ratio(Paired(ex[1], ex[0])).c_str(),
              ex2 / execs * 1e6, ratio(Paired(ex[2], ex[0])).c_str());
  std::printf("  pipe ping-pong, %d round trips: untraced %.2f us/trip; traced %.2f (ratio %s); "
              "traced, consumer stopped %.2f (ratio %s)\n",
              pingpong, pp0 / pingpong * 1e6, pp1 / pingpong * 1e6,
              ratio(Paired(pp[1], pp[0])).c_str(), pp2 / pingpong * 1e6,
              ratio(Paired(pp[2], pp[0])).c_str());
  std::printf("  untracked process while vigild runs vs no BPF loaded (goal <= 1.03): exec %s "
              "(%.1f vs %.1f us/iter), ping-pong %s (%.2f vs %.2f us/trip)\n",
              ratio(Paired(ex[0], ex[3])).c_str(), ex0 / execs * 1e6, exn / execs * 1e6,
              ratio(Paired(pp[0], pp[3])).c_str(), pp0 / pingpong * 1e6, ppn / pingpong * 1e6);
  std::printf("  tracked agent vs no BPF loaded (goal <= 1.05): exec %s, ping-pong %s\n",
              ratio(Paired(ex[1], ex[3])).c_str(), ratio(Paired(pp[1], pp[3])).c_str());
  std::printf("  floor: an empty sched_switch program vs no BPF loaded: exec %s, ping-pong %s\n",
              ratio(Paired(ex[4], ex[3])).c_str(), ratio(Paired(pp[4], pp[3])).c_str());
  std::printf("  above the floor: untracked vs empty program: exec %s, ping-pong %s; tracked vs "
              "empty program: exec %s, ping-pong %s\n",
              ratio(Paired(ex[0], ex[4])).c_str(), ratio(Paired(pp[0], pp[4])).c_str(),
              ratio(Paired(ex[1], ex[4])).c_str(), ratio(Paired(pp[1], pp[4])).c_str());
  std::printf("  vigild (all instances): events=%llu samples=%llu drops=%llu\n",
              static_cast<unsigned long long>(vd_events),
              static_cast<unsigned long long>(vd_samples),
              static_cast<unsigned long long>(vd_drops));

  // 1b. The hooks' own cost, from the kernel's BPF run-time statistics:
  // immune to the neighbours that move the ratios above by several percent.
  {
    const std::string knob = "/proc/sys/kernel/bpf_stats_enabled";
    const std::string old_knob = ReadAll(knob);
    std::ofstream(knob) << "1\n";
    if (!vd.Start(vigild_args)) return 1;
    std::printf("hook cost (kernel.bpf_stats_enabled: BPF run time of vigil's programs during "
                "the loop, per operation; vigild --sample-ms 100)\n");
    for (const bool tracked : {false, true}) {
      if (tracked && !Ctl({"track", "--pid", self, "--name", "bench"})) return 1;
      auto s0 = BpfStats();
      const double tp = PingPong(pingpong);
      auto s1 = BpfStats();
      const double te = ExecLoop(execs);
      auto s2 = BpfStats();
      if (tracked) Ctl({"untrack", "--name", "bench"});
      const HookCost cp = Between(s0, s1, pingpong), ce = Between(s1, s2, execs);
      const double trip_ns = tp / pingpong * 1e9, iter_ns = te / execs * 1e9;
      std::printf("  %s ping-pong: %.0f ns of BPF per %.0f ns trip = %.2f%% (%s)\n",
                  tracked ? "tracked  " : "untracked", cp.ns / static_cast<double>(pingpong),
                  trip_ns, 100.0 * cp.ns / pingpong / trip_ns, cp.detail.c_str());
      std::printf("  %s exec loop: %.0f ns of BPF per %.0f ns iteration = %.2f%% (%s)\n",
                  tracked ? "tracked  " : "untracked", ce.ns / static_cast<double>(execs),
                  iter_ns, 100.0 * ce.ns / execs / iter_ns, ce.detail.c_str());
    }
    stop();
    // The same statistics for the empty program: their own clock reads
    // around every run are in every figure above.
    if (floor.Attach()) {
      const ProgStats f0 = ProgStatsOf(floor.prog_fd());
      const double tp = PingPong(pingpong);
      const ProgStats f1 = ProgStatsOf(floor.prog_fd());
      floor.Detach();
      const uint64_t runs = f1.runs - f0.runs, ns = f1.ns - f0.ns;
      std::printf("  empty sched_switch program (floor): ping-pong %.2f runs x %.0f ns per %.0f ns "
                  "trip = %.2f%%\n",
                  static_cast<double>(runs) / pingpong,
                  runs ? static_cast<double>(ns) / static_cast<double>(runs) : 0.0,
                  tp / pingpong * 1e9, 100.0 * static_cast<double>(ns) / (tp * 1e9));
    }
    std::ofstream(knob) << (old_knob.empty() ? "0\n" : old_knob);
  }

  // 2. Exact loss under overload: a stopped consumer and a 64 KiB ring.
  if (!vd.Start({"--ringbuf-bytes", "65536"})) return 1;
  kill(vd.pid, SIGSTOP);
  if (!Ctl({"track", "--pid", self, "--name", "overload"})) return 1;
  ForkBurst(burst);
  Ctl({"untrack", "--name", "overload"});
  kill(vd.pid, SIGCONT);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string s2 = vd.Stop();
  const uint64_t got = Summary(s2, "events"), drops = Summary(s2, "drops");
  // fork + exit per child, one registration, and the fork + exec of the
  // `vigilctl agent untrack` this process spawns while still tracked (it
  // untracks itself before it exits, so no exit record).
  const uint64_t expected = 2ULL * burst + 1 + 2;
  std::printf(
      "loss accounting: %d children -> %llu records generated; received %llu + counted "
      "drops %llu = %llu: %s\n",
      burst, static_cast<unsigned long long>(expected), static_cast<unsigned long long>(got),
      static_cast<unsigned long long>(drops), static_cast<unsigned long long>(got + drops),
      got + drops == expected && drops > 0 ? "EXACT" : "MISMATCH");
  if (got + drops != expected || drops == 0) rc = 1;

  // 3. Throughput: a free-running vigild (JSON to /dev/null), 4 MiB ring.
  if (!vd.Start({"--ringbuf-bytes", "4194304"})) return 1;
  if (!Ctl({"track", "--pid", self, "--name", "rate"})) return 1;
  const double t = ForkBurst(burst);
  Ctl({"untrack", "--name", "rate"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::string s3 = vd.Stop();
  std::printf(
      "records/s: %d fork+exit children in %.3f s = %.0f records/s produced; vigild "
      "received %llu, drops %llu\n",
      burst, t, (2.0 * burst + 3) / t, static_cast<unsigned long long>(Summary(s3, "events")),
      static_cast<unsigned long long>(Summary(s3, "drops")));

  // 4. The consumer's ceiling: records queued while vigild is stopped, then
  // timed from SIGCONT until its output holds all of them (JSON to a file).
  vd.out = "/tmp/vigil-bench-drain.json";
  if (!vd.Start({"--ringbuf-bytes", "16777216"})) return 1;
  kill(vd.pid, SIGSTOP);
  if (!Ctl({"track", "--pid", self, "--name", "drain"})) return 1;
  ForkBurst(burst);
  Ctl({"untrack", "--name", "drain"});
  const auto t0 = Clock::now();
  kill(vd.pid, SIGCONT);
  size_t lines = 0;
  while (Clock::now() - t0 < std::chrono::seconds(30)) {
    const std::string text = ReadAll(vd.out);
    lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    if (lines >= expected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double drain = std::chrono::duration<double>(Clock::now() - t0).count();
  const std::string s4 = vd.Stop();
  std::printf("consumer ceiling: %zu queued records decoded and printed as JSON in %.3f s = "
              "%.0f records/s (drops %llu)\n",
              lines, drain, static_cast<double>(lines) / drain,
              static_cast<unsigned long long>(Summary(s4, "drops")));
  unlink(vd.out.c_str());
  rmdir(g_pin_dir.c_str());
  return rc;
}
