// vigild: loads vigil's BPF programs, pins the agent maps (for `vigilctl
// agent`), prints one JSON line per event on stdout and a summary with
// counts (drops included) on stderr at exit. Records tracked agents only,
// or every process with --all-processes.
//
// Exit codes: 0 clean stop (signal or --duration), 1 runtime error
// (not root, no kernel BTF, load/attach failure), 2 usage error.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include "vigil/agents.h"
#include "vigil/collector.h"
#include "vigil/format.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/unique_fd.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
// --duration's upper bound (about 115 days); larger values overflow the
// steady_clock deadline.
constexpr double kMaxDurationS = 1e7;

volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

// Without SA_RESTART so the ring buffer wait returns at once.
void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed stdout is reported as a write error, not a silent death.
  signal(SIGPIPE, SIG_IGN);
}

// Written only once the programs are attached; renamed into place so a
// reader never sees a partial file.
vigil::Status WriteReadyFile(const std::string& path, bool module) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return vigil::Status::FromErrno(errno, "creating " + tmp);
    out << "pid=" << ::getpid() << " module=" << (module ? 1 : 0) << "\n";
    if (!out.flush()) return vigil::Status::FromErrno(errno, "writing " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return vigil::Status::FromErrno(errno, "renaming " + tmp);
  }
  return vigil::Status::Ok();
}

struct EventCounts {
  uint64_t events = 0;
  uint64_t exec = 0;
  uint64_t exit = 0;
  uint64_t fork = 0;
  uint64_t agent = 0;
  uint64_t sample = 0;
  uint64_t committed = 0;
  uint64_t uncommitted = 0;
  uint64_t decode_errors = 0;
  uint64_t format_errors = 0;
  uint64_t raw_skipped = 0;  // uncommitted records kept out of --raw-out
};

// Appends every event's exact bytes (for chain verification by vigilctl).
vigil::Status WriteAll(int fd, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return vigil::Status::FromErrno(errno, "writing the raw event file");
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return vigil::Status::Ok();
}

struct Config {
  double duration_s = 0;
  std::string ready_file;
  std::string raw_out;
  uint32_t ringbuf_bytes = 0;
  bool no_module = false;
  bool verbose = false;
  bool all_processes = false;
  std::string pin_dir = vigil::agents::kDefaultPinDir;
  uint32_t sample_ms = 0;
  bool syscalls = false;
  std::string hw = "auto";
};

int Run(const Config& cfg) {
  const double duration_s = cfg.duration_s;
  const std::string& ready_file = cfg.ready_file;
  const std::string& raw_out = cfg.raw_out;
  const bool verbose = cfg.verbose;
  if (::geteuid() != 0) {
    std::cerr << "vigild: must run as root (loading BPF programs needs CAP_BPF, "
                 "CAP_PERFMON and CAP_SYS_ADMIN)\n";
    return kExitError;
  }
  if (::access(vigil::bpf::kVmlinuxBtfPath, R_OK) != 0) {
    std::cerr << "vigild: " << vigil::bpf::kVmlinuxBtfPath
              << " is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y for CO-RE programs\n";
    return kExitError;
  }
  vigil::bpf::SetLibbpfVerbosity(verbose);

  vigil::UniqueFd raw_fd;
  if (!raw_out.empty()) {
    raw_fd.Reset(::open(raw_out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!raw_fd.valid()) {
      std::cerr << "vigild: " << vigil::Status::FromErrno(errno, "open " + raw_out).ToString()
                << "\n";
      return kExitError;
    }
  }
  uint64_t raw_errors = 0;

  EventCounts counts;
  // Set once the collector says whether the module commits records.
  bool module_commits = false;
  // Runs inside libbpf's ring buffer callback: it must not throw (the
  // collector also catches, as a last resort).
  auto handler = [&counts, &raw_fd, &raw_errors,
                  &module_commits](const vigil::Result<vigil::records::Record>& rec) {
    if (!rec.ok()) {
      counts.decode_errors++;
      std::cerr << "vigild: bad ring buffer record: " << rec.status().ToString() << "\n";
      return;
    }
    counts.events++;
    if (rec->type() == VIGIL_EV_EXEC) counts.exec++;
    if (rec->type() == VIGIL_EV_EXIT) counts.exit++;
    if (rec->type() == VIGIL_EV_FORK) counts.fork++;
    if (rec->type() == VIGIL_EV_AGENT) counts.agent++;
    if (rec->type() == VIGIL_EV_SAMPLE) counts.sample++;
    (rec->committed() ? counts.committed : counts.uncommitted)++;
    // Flushed once per poll, not per record: a write() per record costs
    // the traced workload CPU time on small machines.
    try {
      std::cout << vigil::format::Dump(vigil::format::RecordToJson(*rec)) << '\n';
    } catch (const std::exception& e) {
      counts.format_errors++;
      std::cerr << "vigild: cannot format record seq " << rec->seq() << ": " << e.what() << "\n";
    }
    if (!std::cout) g_stop = 1;  // stdout is gone: stop, the summary says so
    // With the module, only committed records are in the chain: an
    // uncommitted one (vigil_commit failed: counted by the module as busy or
    // rejected) would break `vigilctl verify-chain`.
    if (raw_fd.valid()) {
      if (module_commits && !rec->committed()) {
        counts.raw_skipped++;
      } else if (!WriteAll(raw_fd.get(), rec->bytes()).ok()) {
        raw_errors++;
      }
    }
  };

  vigil::bpf::CollectorOptions options;
  options.ringbuf_bytes = cfg.ringbuf_bytes;
  options.allow_module = !cfg.no_module;
  options.all_processes = cfg.all_processes;
  options.pin_dir = cfg.pin_dir;
  options.sample_ms = cfg.sample_ms;
  options.syscalls = cfg.syscalls;
  options.hw = cfg.hw == "off"             ? vigil::bpf::CollectorOptions::Hw::kOff
               : cfg.hw == "inject-test" ? vigil::bpf::CollectorOptions::Hw::kInject
                                         : vigil::bpf::CollectorOptions::Hw::kAuto;
  auto collector = vigil::bpf::Collector::Start(options, handler);
  if (!collector.ok()) {
    std::cerr << "vigild: " << collector.status().ToString() << "\n";
    return kExitError;
  }
  const vigil::bpf::ModuleKfuncs module = (*collector)->module();
  module_commits = module.commit;
  std::cerr << "vigild: attached; vigil module "
            << (module.commit ? "present: events are committed"
                              : "absent: events are not committed (flag no_module)")
            << "\n";
  std::cerr << "vigild: recording "
            << (cfg.all_processes ? "every process (--all-processes)"
                                  : "tracked agents only (vigilctl agent ...)")
            << "; agent maps pinned under " << (cfg.pin_dir.empty() ? "(none)" : cfg.pin_dir)
            << "\n";
  if (cfg.sample_ms != 0) {
    const vigil::bpf::HwStatus& hw = (*collector)->hw();
    std::cerr << "vigild: samples every >= " << cfg.sample_ms << " ms per agent; syscalls "
              << (cfg.syscalls ? "counted" : "not counted (--syscalls)") << "; hardware counters: "
              << (hw.measured   ? "cycles and instructions measured"
                  : hw.injected ? "INJECTED synthetic values (--hw inject-test), not measurements"
                                : hw.why_not)
              << "\n";
  }
  if (!ready_file.empty()) {
    if (vigil::Status st = WriteReadyFile(ready_file, module.commit); !st.ok()) {
      std::cerr << "vigild: " << st.ToString() << "\n";
      return kExitError;
    }
  }

  int rc = kExitOk;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(duration_s));
  while (!g_stop) {
    if (duration_s > 0 && std::chrono::steady_clock::now() >= deadline) break;
    if (vigil::Status st = (*collector)->Poll(100); !st.ok()) {
      std::cerr << "vigild: " << st.ToString() << "\n";
      rc = kExitError;
      break;
    }
    std::cout.flush();
    if (!std::cout) g_stop = 1;
  }
  // Detach first so nothing is submitted after the drain, then drain, then
  // read the counters: every committed record reaches stdout and --raw-out.
  (*collector)->Detach();
  if (vigil::Status st = (*collector)->Drain(); !st.ok()) {
    std::cerr << "vigild: " << st.ToString() << "\n";
    rc = kExitError;
  }
  std::cout.flush();

  auto counters = (*collector)->ReadCounters();
  std::cerr << "vigild: summary events=" << counts.events << " exec=" << counts.exec
 << " exit=" << counts.exit << " fork=" << counts.fork
            << " agent=" << counts.agent << " sample=" << counts.sample << " committed=" << counts.committed
            << " uncommitted=" << counts.uncommitted << " decode_errors=" << counts.decode_errors
            << " format_errors=" << counts.format_errors;
  if (raw_fd.valid()) std::cerr << " raw_out_skipped_uncommitted=" << counts.raw_skipped;
  if (counters.ok()) {
    std::cerr << " drops=" << counters->TotalDrops();
    for (unsigned i = 0; i < counters->errors.size(); ++i) {
      std::cerr << " " << vigil::bpf::BpfErrorName(i) << "=" << counters->errors[i];
    }
  } else {
    std::cerr << " drops=unknown (" << counters.status().ToString() << ")";
    rc = kExitError;
  }
  std::cerr << " module=" << (module.commit ? 1 : 0) << "\n";
  if (!std::cout) {
    std::cerr << "vigild: writing events to stdout failed\n";
    rc = kExitError;
  }
  if (!ready_file.empty()) ::unlink(ready_file.c_str());
  if (raw_errors != 0) {
    std::cerr << "vigild: " << raw_errors << " events could not be written to " << raw_out << "\n";
    rc = kExitError;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vigild: collect agent events (exec/exit/fork/samples) from the kernel through BPF "
      "and print one JSON object per line.\n\nExit codes: 0 clean stop, 1 runtime error, 2 usage error."};
  Config cfg;
  app.add_option("--duration", cfg.duration_s,
                 "Stop after SECONDS, at most 1e7 (default: run until SIGINT/SIGTERM)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            double d = 0;
            try {
              size_t used = 0;
              d = std::stod(value, &used);
              if (used != value.size()) throw std::invalid_argument(value);
            } catch (const std::exception&) {
              return "--duration must be a number of seconds, got " + value;
            }
            // !(a <= b) also rejects NaN.
            if (!(d >= 0 && d <= kMaxDurationS)) {
              return "--duration must be between 0 and 1e7 seconds, got " + value;
            }
            return {};
          },
          "SECONDS"));
  app.add_option("--ready-file", cfg.ready_file,
                 "Write PATH once the programs are attached (for tests and supervisors)");
  app.add_option("--raw-out", cfg.raw_out,
                 "Also append each event's exact bytes to PATH (for vigilctl verify-chain); with "
                 "the module, only committed events");
  app.add_option("--ringbuf-bytes", cfg.ringbuf_bytes,
                 "Ring buffer size, a power of two >= the page size (default 256 KiB)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            const long page = ::sysconf(_SC_PAGESIZE);
            uint64_t n = 0;
            try {
              size_t used = 0;
              n = std::stoull(value, &used, 0);
              if (used != value.size()) throw std::invalid_argument(value);
            } catch (const std::exception&) {
              return "--ringbuf-bytes must be a number, got " + value;
            }
            if (n == 0 || (n & (n - 1)) != 0 || n < static_cast<uint64_t>(page) ||
                n > (1ull << 31)) {
              return "--ringbuf-bytes must be a power of two between the page size (" +
                     std::to_string(page) + ") and 2 GiB, got " + value;
            }
            return {};
          },
          "POW2"));
  app.add_flag("--no-module", cfg.no_module, "Do not call the vigil module even if it is loaded");
  app.add_flag("--all-processes", cfg.all_processes,
               "Record every process (agent_id 0 when untracked), not only tracked agents");
  app.add_option("--pin-dir", cfg.pin_dir,
                 "Pin the agent maps here for `vigilctl agent` (bpffs; empty: do not pin)")
      ->capture_default_str();
  app.add_option("--sample-ms", cfg.sample_ms,
                 "Emit per-agent samples from the scheduler at most every MS (0: no samples)")
      ->capture_default_str();
  app.add_flag("--syscalls", cfg.syscalls,
               "Count tracked agents' system calls in samples (a hook on every syscall "
               "of every process: off by default)");
  app.add_option("--hw", cfg.hw,
                 "Hardware counters in samples: auto (when the machine has a PMU), off, or "
                 "inject-test (synthetic values for tests, never measurements)")
      ->check(CLI::IsMember({"auto", "off", "inject-test"}))
      ->capture_default_str();
  app.add_flag("-v,--verbose", cfg.verbose, "Show libbpf debug output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  InstallSignalHandlers();
  try {
    return Run(cfg);
  } catch (const std::exception& e) {
    std::cerr << "vigild: " << e.what() << "\n";
    return kExitError;
  }
}
