// vigil-workload: known work for the accuracy tests, run as an agent.
//
//   vigil-workload --burn-ms N --touch-mib M --forks K --pingpong Y
//                  --io-bytes Z --exit X | --signal S  --truth FILE
//   vigil-workload --thread-pingpong Y --phases P
//   vigil-workload --cross-cpu Y --settle-ms W --truth FILE
//
// Does each piece in that order, then writes its own ground truth (getrusage
// of itself and of its reaped children, /proc/self/io) as one JSON line to
// FILE and exits with X or kills itself with S.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>


#include "vigil/cli_parse.h"
#include "vigil/version.h"

namespace {

uint64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

void Burn(uint64_t ms) {
  const uint64_t until = ThreadCpuNs() + ms * 1'000'000;
  volatile uint64_t x = 0;
  while (ThreadCpuNs() < until) {
    for (int i = 0; i < 10000; ++i) x = x + static_cast<uint64_t>(i);
  }
}

void Touch(uint64_t mib) {
  if (mib == 0) return;
  const size_t len = mib << 20;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::exit(90);
  for (size_t off = 0; off < len; off += 4096) static_cast<volatile char*>(p)[off] = 1;
  munmap(p, len);
}

void Forks(int k) {
  for (int i = 0; i < k; ++i) {
    const pid_t c = fork();
    if (c < 0) std::exit(91);
    if (c == 0) _exit(0);
    int st = 0;
    waitpid(c, &st, 0);
  }
}

// Y round trips between this process and a child: each side blocks in
// read() every time, so each does ~Y voluntary context switches.
void PingPong(int y) {
  if (y == 0) return;
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) std::exit(92);
  const pid_t c = fork();
  if (c < 0) std::exit(93);
  char ch = 0;
  if (c == 0) {
    for (int i = 0; i < y; ++i) {
      if (read(a[0], &ch, 1) != 1 || write(b[1], &ch, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  for (int i = 0; i < y; ++i) {
    if (write(a[1], &ch, 1) != 1 || read(b[0], &ch, 1) != 1) std::exit(94);
  }
  int st = 0;
  waitpid(c, &st, 0);
  close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

// P phases of Y round trips between two threads that both exist before the
// first phase: each phase starts when a byte arrives on stdin and ends with
// a byte on stdout. So a test can change how the process is tracked between
// phases while no new task appears (a new task would not test what the
// BPF side remembers about existing ones).
int ThreadPingPong(int y, int phases) {
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) return 92;
  const int total = y * phases;
  std::thread peer([&] {
    char ch = 0;
    for (int i = 0; i < total; ++i) {
      if (read(a[0], &ch, 1) != 1 || write(b[1], &ch, 1) != 1) std::exit(1);
    }
  });
  char ch = 0;
  for (int p = 0; p < phases; ++p) {
    if (read(0, &ch, 1) != 1) std::exit(93);
    for (int i = 0; i < y; ++i) {
      if (write(a[1], &ch, 1) != 1 || read(b[0], &ch, 1) != 1) std::exit(94);
    }
    if (write(1, &ch, 1) != 1) std::exit(95);
  }
  peer.join();
  return 0;
}

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;  // 0: the calling thread
}

// One agent on two CPUs: a thread on CPU 1 blocks Y times (1 us sleeps,
// one voluntary switch each) and ends; then this thread, on CPU 0, sleeps
// W ms and blocks three more times, so the sample those switch-outs emit
// comes from CPU 0 after CPU 1 stopped running the agent.
void CrossCpu(int y, uint64_t settle_ms) {
  if (y == 0) return;
  if (!PinTo(0)) std::exit(88);
  std::thread t([y] {
    if (!PinTo(1)) std::exit(89);
    const timespec us{0, 1000};
    for (int i = 0; i < y; ++i) nanosleep(&us, nullptr);
  });
  t.join();
  const timespec settle{static_cast<time_t>(settle_ms / 1000),
                        static_cast<long>(settle_ms % 1000) * 1'000'000};
  nanosleep(&settle, nullptr);
  const timespec ms{0, 1'000'000};
  for (int i = 0; i < 3; ++i) nanosleep(&ms, nullptr);
}

void Io(uint64_t bytes) {
  if (bytes == 0) return;
  char path[] = "/tmp/vigil-workload-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) std::exit(95);
  unlink(path);
  std::vector<char> buf(65536, 'x');
  for (uint64_t done = 0; done < bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - done));
    if (write(fd, buf.data(), n) != static_cast<ssize_t>(n)) std::exit(96);
    done += n;
  }
  lseek(fd, 0, SEEK_SET);
  for (uint64_t done = 0; done < bytes;) {
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n <= 0) std::exit(97);
    done += static_cast<uint64_t>(n);
  }
  close(fd);
}

std::string ProcIo() {
  std::ifstream in("/proc/self/io");
  std::string key, out;
  uint64_t v = 0;
  while (in >> key >> v) {
    key.pop_back();  // ':'
    out += ",\"" + key + "\":" + std::to_string(v);
  }
  return out;
}

uint64_t Ns(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1'000'000'000 +
         static_cast<uint64_t>(tv.tv_usec) * 1000;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t burn = 0, touch = 0, io = 0;
  int forks = 0, pingpong = 0, code = 0, sig = 0, thread_pingpong = 0, phases = 1, cross_cpu = 0;
  uint64_t settle_ms = 0;
  std::string truth;
  CLI::App app{"vigil-workload: known work for the accuracy tests, with its own ground truth"};
  app.set_version_flag("--version", vigil::version::VersionText("vigil-workload"));
  const auto non_negative = CLI::NonNegativeNumber;
  app.add_option("--burn-ms", burn, "CPU to burn, in ms")->check(non_negative);
  app.add_option("--touch-mib", touch, "Memory to touch, in MiB")->check(non_negative);
  app.add_option("--forks", forks, "Children to fork, exec and reap")->check(non_negative);
  app.add_option("--pingpong", pingpong, "Pipe round trips with a child")->check(non_negative);
  app.add_option("--io-bytes", io, "Bytes to write and read back")->check(non_negative);
  app.add_option("--exit", code, "Exit code")->check(CLI::Range(0, 255));
  app.add_option("--signal", sig, "Kill itself with this signal instead")->check(CLI::Range(0, 64));
  app.add_option("--truth", truth, "Where the ground-truth JSON line goes");
  app.add_option("--thread-pingpong", thread_pingpong, "Two-thread ping-pong round trips (only)")
      ->check(non_negative);
  app.add_option("--phases", phases, "Phases of the thread ping-pong")->check(CLI::PositiveNumber);
  app.add_option("--cross-cpu", cross_cpu, "Round trips with a child on the other CPU")
      ->check(non_negative);
  app.add_option("--settle-ms", settle_ms, "Pause before the cross-CPU trips")->check(non_negative);
  if (auto exit_code = vigil::cli::Parse(app, argc, argv)) return *exit_code;
  if (thread_pingpong > 0) return ThreadPingPong(thread_pingpong, phases);
  Burn(burn);
  Touch(touch);
  Forks(forks);
  PingPong(pingpong);
  CrossCpu(cross_cpu, settle_ms);
  Io(io);
  if (!truth.empty()) {
    rusage self{}, kids{};
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    char line[1024];
    std::snprintf(line, sizeof(line),
                  "{\"pid\":%d,\"utime_ns\":%llu,\"stime_ns\":%llu,\"maxrss_kb\":%ld,"
                  "\"min_flt\":%ld,\"maj_flt\":%ld,\"nvcsw\":%ld,\"nivcsw\":%ld,"
                  "\"children_utime_ns\":%llu,\"children_stime_ns\":%llu",
                  getpid(), static_cast<unsigned long long>(Ns(self.ru_utime)),
                  static_cast<unsigned long long>(Ns(self.ru_stime)), self.ru_maxrss,
                  self.ru_minflt, self.ru_majflt, self.ru_nvcsw, self.ru_nivcsw,
                  static_cast<unsigned long long>(Ns(kids.ru_utime)),
                  static_cast<unsigned long long>(Ns(kids.ru_stime)));
    const std::string out = std::string(line) + ProcIo() + "}\n";
    const int fd = open(truth.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return 98;
    close(fd);
  }
  if (sig != 0) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  return code;
}
