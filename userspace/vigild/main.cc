// vigild: loads vigil's BPF programs and consumes their ring buffer and the
// module's log; verifies every committed record against the module's
// checkpoints (chain, TPM signature, PCR replay) and prints one verdict per
// checkpoint; learns per-agent baselines and prints alerts; serves
// Prometheus metrics on loopback; keeps its state in a directory so a
// restart resumes where it stopped. One JSON object per line on stdout (or
// --output): records, checkpoint verdicts, findings and alerts, told apart
// by "type". A summary with counts goes to stderr at exit.
//
// Exit codes: 0 clean stop (signal or --duration), 1 runtime error (not
// root, no kernel BTF, load/attach failure, corrupt state), 2 usage error.
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <set>
#include <string>
#include <type_traits>

#include "liveness.h"
#include "pipeline.h"
#include "state.h"
#include "vigil/agents.h"
#include "vigil/anchor_check.h"
#include "vigil/baseline/store.h"
#include "vigil/collector.h"
#include "vigil/device.h"
#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/metrics.h"
#include "vigil/records.h"
#include "vigil/replay.h"
#include "vigil/signature.h"
#include "vigil/status.h"
#include "vigil/tpm.h"
#include "vigil/unique_fd.h"
#include "vigil/verify.h"
#include "vigil/version.h"

namespace {

using nlohmann::json;
namespace daemon = vigil::daemon;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
// --duration's upper bound (about 115 days); larger values overflow the
// steady_clock deadline.
constexpr double kMaxDurationS = 1e7;
constexpr char kDefaultMetrics[] = "127.0.0.1:9477";

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

uint64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Written only once the programs are attached; renamed into place so a
// reader never sees a partial file.
vigil::Status WriteReadyFile(const std::string& path, bool module, uint16_t metrics_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return vigil::Status::FromErrno(errno, "creating " + tmp);
    out << "pid=" << ::getpid() << " module=" << (module ? 1 : 0)
        << " metrics_port=" << metrics_port << "\n";
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
  std::string output = "-";
  bool no_records = false;
  uint32_t ringbuf_bytes = 0;
  bool no_module = false;
  bool verbose = false;
  bool all_processes = false;
  std::string pin_dir = vigil::agents::kDefaultPinDir;
  uint32_t sample_ms = 0;
  bool syscalls = false;
  std::string hw = "auto";
  std::string state_dir = daemon::kDefaultStateDir;
  bool no_state = false;
  bool reset_state = false;
  double state_interval_s = 1.0;
  double baseline_interval_s = 1.0;
  std::string metrics = kDefaultMetrics;
  std::string tcti = vigil::tpm::kDefaultTcti;
  bool no_pcr_check = false;
  uint32_t reorder_window = 4096;
  double checkpoint_wait_s = 5.0;
  uint64_t learn_samples = 100;
  double threshold = 6.0;
  bool no_measure = false;
  uint32_t stall_periods = 5;
  double trim_fill = 0.5;

  // What MEASURE records as the configuration: every option that changes
  // what vigild verifies, learns, reports or keeps (not the output files).
  std::string Canonical() const {
    return json{{"all_processes", all_processes},
                {"checkpoint_wait_s", checkpoint_wait_s},
                {"hw", hw},
                {"learn_samples", learn_samples},
                {"metrics", metrics},
                {"no_module", no_module},
                {"no_pcr_check", no_pcr_check},
                {"no_state", no_state},
                {"reorder_window", reorder_window},
                {"ringbuf_bytes", ringbuf_bytes},
                {"sample_ms", sample_ms},
                {"state_dir", state_dir},
                {"syscalls", syscalls},
                {"tcti", tcti},
                {"threshold", threshold},
                {"state_interval_s", state_interval_s},
                {"baseline_interval_s", baseline_interval_s},
                {"no_records", no_records},
                {"stall_periods", stall_periods},
                {"trim_fill", trim_fill}}
        .dump();
  }
};

void Say(const std::string& msg) { std::cerr << "vigild: " << msg << "\n"; }

// Loads one state file through `parse`, or explains why vigild stops. With
// --reset-state a bad file is moved aside (named in the message) instead.
// `parse` takes the file's text, or (fd, size) to stream a large one.
template <typename T, typename Parse>
vigil::Result<std::optional<T>> LoadState(daemon::StateDir& dir, const std::string& name,
                                          bool reset, Parse parse) {
  std::optional<vigil::Result<T>> parsed;
  if constexpr (std::is_invocable_v<Parse, int, uint64_t>) {
    auto opened = dir.OpenRead(name);
    if (!opened.ok()) return opened.status();
    if (!opened->has_value()) return std::optional<T>();
    parsed.emplace(parse((*opened)->fd.get(), (*opened)->size));
  } else {
    auto text = dir.Read(name);
    if (!text.ok()) return text.status();
    if (!text->has_value()) return std::optional<T>();
    parsed.emplace(parse(**text));
  }
  if (parsed->ok()) return std::optional<T>(std::move(*parsed).value());
  const std::string where = dir.path() + "/" + name;
  if (!reset) {
    return vigil::Status::Error(parsed->status().code(),
                                "state file " + where + " is unusable: " +
                                    parsed->status().message() +
                                    "; it was left as it is. Fix or remove it, or start with "
                                    "--reset-state to move it aside");
  }
  auto aside = dir.MoveAside(name);
  if (!aside.ok()) return aside.status();
  Say("--reset-state: " + where + " was unusable (" + parsed->status().message() +
      "); moved to " + dir.path() + "/" + *aside);
  return std::optional<T>();
}

vigil::Result<vigil::crypto::Sha256Digest> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return vigil::Status::FromErrno(errno, "open " + path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return vigil::crypto::Sha256(
      {std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size())});
}

// Where verification starts when there is no usable saved anchor: the last
// checkpoint in the log (events before it were not seen by this vigild), or
// seq 0 when the module has made none.
vigil::verify::Anchor AnchorFromLog(const vigil_info& info,
                                    const std::vector<vigil::records::Record>& log) {
  vigil::verify::Anchor a;
  std::memcpy(a.instance_id.data(), info.instance_id, VIGIL_ID_LEN);
  auto init = vigil::chain::InitialChain(a.instance_id);
  if (init.ok()) a.chain_head = *init;
  for (const vigil::records::Record& r : log) {
    auto cp = r.As<vigil_log_checkpoint>();
    if (!cp || std::memcmp(cp->instance_id, info.instance_id, VIGIL_ID_LEN) != 0) continue;
    a.last_seq = cp->last_seq;
    std::memcpy(a.chain_head.data(), cp->chain_head, VIGIL_DIGEST_LEN);
    auto d = vigil::crypto::Sha256({r.bytes()});
    if (d.ok()) a.checkpoint_digest = *d;
    a.checkpoint_log_seq = r.seq();
    a.drops_total = cp->drops_total;
    a.busy_total = cp->busy_total;
    a.log_refused = cp->log_refused;
  }
  return a;
}

// The TPM side of the verifier's PCR check. The TPM may already hold extends
// the verifier has not read yet, so this keeps its own reader on the
// module's log (its own file position, records since the newest BASE),
// replays it and places every bank's PCRs; read again and retried when a
// checkpoint lands between the log read and the PCR read.
int Run(const Config& cfg) {
  if (::geteuid() != 0) {
    Say("must run as root (loading BPF programs needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)");
    return kExitError;
  }
  if (::access(vigil::bpf::kVmlinuxBtfPath, R_OK) != 0) {
    Say(std::string(vigil::bpf::kVmlinuxBtfPath) +
        " is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y for CO-RE programs");
    return kExitError;
  }
  vigil::bpf::SetLibbpfVerbosity(cfg.verbose);

  // Outputs.
  std::ofstream out_file;
  if (cfg.output != "-") {
    out_file.open(cfg.output, std::ios::app);
    if (!out_file) {
      Say(vigil::Status::FromErrno(errno, "open --output " + cfg.output).ToString());
      return kExitError;
    }
  }
  std::ostream& out = cfg.output == "-" ? std::cout : out_file;
  // Every JSON line names the host, the boot and the time it was written.
  const daemon::HostIdentity identity = daemon::ReadHostIdentity();
  for (const std::string& problem : identity.problems) {
    Say(problem + ": the JSON lines carry null there");
  }
  daemon::LineStamper stamper(identity);
  vigil::UniqueFd raw_fd;
  if (!cfg.raw_out.empty()) {
    raw_fd.Reset(::open(cfg.raw_out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!raw_fd.valid()) {
      Say(vigil::Status::FromErrno(errno, "open " + cfg.raw_out).ToString());
      return kExitError;
    }
  }

  // Saved state: loaded whole or not at all; a bad file stops vigild.
  vigil::baseline::BaselineConfig bcfg;
  bcfg.learn_samples = cfg.learn_samples;
  bcfg.threshold = cfg.threshold;
  auto fresh_store = vigil::baseline::BaselineStore::Create(bcfg);
  if (!fresh_store.ok()) {
    Say("baseline settings: " + fresh_store.status().ToString());
    return kExitUsage;
  }
  std::optional<daemon::StateDir> state;
  std::optional<vigil::baseline::BaselineStore> store;
  std::optional<daemon::VerifierState> saved;
  std::vector<vigil::records::Record> saved_open;
  if (!cfg.no_state) {
    auto dir = daemon::StateDir::Open(cfg.state_dir);
    if (!dir.ok()) {
      Say(dir.status().ToString());
      return kExitError;
    }
    state.emplace(std::move(dir).value());
    auto b = LoadState<vigil::baseline::BaselineStore>(
        *state, daemon::kBaselinesFile, cfg.reset_state,
        [&](int fd, uint64_t size) -> vigil::Result<vigil::baseline::BaselineStore> {
          // fclose closes a duplicate; the state directory closes its own.
          const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
          std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(
              dup < 0 ? nullptr : ::fdopen(dup, "r"), &std::fclose);
          if (!file) {
            const int err = errno;
            if (dup >= 0) ::close(dup);
            return vigil::Status::FromErrno(err, "reading " + std::string(daemon::kBaselinesFile));
          }
          auto parsed = vigil::baseline::BaselineStore::ParseFile(file.get(), size, bcfg);
          if (parsed.ok()) return std::move(parsed).value();
          return vigil::Status::Error(vigil::ErrorCode::kMalformed,
                                      parsed.status().ToString());
        });
    if (!b.ok()) {
      Say(b.status().message());
      return kExitError;
    }
    if (b->has_value()) store.emplace(std::move(**b));
    auto v = LoadState<daemon::VerifierState>(*state, daemon::kVerifierFile, cfg.reset_state,
                                              daemon::ParseVerifierState);
    if (!v.ok()) {
      Say(v.status().message());
      return kExitError;
    }
    saved = std::move(v).value();
    if (saved) {
      auto o = LoadState<daemon::OpenEvents>(
          *state, daemon::kOpenEventsFile, cfg.reset_state, [&](const std::string& bytes) {
            return daemon::ParseOpenEvents(bytes, saved->anchor.last_seq);
          });
      if (!o.ok()) {
        Say(o.status().message());
        return kExitError;
      }
      if (o->has_value()) {
        saved_open = std::move((*o)->events);
        if ((*o)->dropped_tail_bytes != 0) {
          Say(std::string(daemon::kOpenEventsFile) + ": dropped a record cut short at the end (" +
              std::to_string((*o)->dropped_tail_bytes) +
              " bytes, an interrupted append); its seq will show as missing if nothing else "
              "delivers it");
        }
      }
    }
    Say("state in " + cfg.state_dir + ": " +
        (store ? std::to_string(store->agent_count()) + " agent baselines loaded"
               : std::string("no saved baselines")) +
        (saved ? ", verifier anchor at seq " + std::to_string(saved->anchor.last_seq) +
                     " with " + std::to_string(saved_open.size()) + " open events"
               : std::string(", no saved verifier state")));
  }
  if (!store) store.emplace(std::move(fresh_store).value());

  // The BPF side. Records wait in the ring buffer until the first Poll, so
  // the pipeline can be built after the programs are attached.
  EventCounts counts;
  uint64_t raw_errors = 0;
  bool module_commits = false;
  daemon::Pipeline* pipeline = nullptr;
  // Records the collector hands over before the pipeline exists (the old
  // ring buffer of an incompatible pinned instance is drained in Start()).
  std::vector<vigil::records::Record> early;
  std::vector<std::string> early_errors;
  std::string journal;  // committed events since the last append to open-events.bin
  auto handler = [&](const vigil::Result<vigil::records::Record>& rec) {
    if (!rec.ok()) {
      counts.decode_errors++;
      if (pipeline) {
        pipeline->OnDecodeError(rec.status().ToString());
      } else {
        early_errors.push_back(rec.status().ToString());
      }
      return;
    }
    counts.events++;
    if (rec->type() == VIGIL_EV_EXEC) counts.exec++;
    if (rec->type() == VIGIL_EV_EXIT) counts.exit++;
    if (rec->type() == VIGIL_EV_FORK) counts.fork++;
    if (rec->type() == VIGIL_EV_AGENT) counts.agent++;
    if (rec->type() == VIGIL_EV_SAMPLE) counts.sample++;
    (rec->committed() ? counts.committed : counts.uncommitted)++;
    // Journalled after each poll, so a SIGKILL loses at most one batch.
    if (module_commits && rec->committed() && !cfg.no_state) {
      journal.append(reinterpret_cast<const char*>(rec->bytes().data()), rec->bytes().size());
    }
    if (pipeline) {
      pipeline->OnEvent(*rec, ClockNs(CLOCK_REALTIME));
    } else {
      early.push_back(*rec);
    }
    if (!out) g_stop = 1;  // the output is gone: stop, the summary says so
    // With the module, only committed records are in the chain.
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
    Say(collector.status().ToString());
    return kExitError;
  }
  const vigil::bpf::ModuleKfuncs module = (*collector)->module();
  module_commits = module.commit;
  if (const vigil::bpf::AdoptStatus& adopt = (*collector)->adopted(); !adopt.detail.empty()) {
    Say(adopt.detail);
  }
  Say(std::string("attached; vigil module ") +
      (module.commit ? "present: events are committed and verified"
                     : "absent: events are not committed, so they are unattested (never "
                       "verified)"));
  Say("recording " +
      std::string(cfg.all_processes ? "every process (--all-processes)"
                                    : "tracked agents only (vigilctl agent ...)") +
      "; agent maps pinned under " + (cfg.pin_dir.empty() ? "(none)" : cfg.pin_dir));
  if (cfg.sample_ms != 0) {
    const vigil::bpf::HwStatus& hw = (*collector)->hw();
    Say("samples every >= " + std::to_string(cfg.sample_ms) + " ms per agent; syscalls " +
        (cfg.syscalls ? "counted" : "not counted (--syscalls)") + "; hardware counters: " +
        (hw.measured   ? "cycles and instructions measured"
         : hw.injected ? "INJECTED synthetic values (--hw inject-test), not measurements"
                       : hw.why_not));
  }

  // The module side: anchor, verifier, self-measurement.
  uint64_t log_saved_seq = 0;    // last log seq queued for log_file
  uint64_t durable_log_seq = 0;  // last log seq fsynced to log_file
  std::string log_file;
  struct InstanceChange {
    vigil::chain::InstanceId saved{};
    std::string detail;
  };
  std::optional<InstanceChange> instance_change;
  std::optional<vigil::device::VigilDevice> device;
  std::optional<vigil::verify::StreamVerifier> verifier;
  std::vector<vigil::records::Record> initial_log;
  std::optional<vigil_info> info;
  if (module.commit) {
    auto dev = vigil::device::VigilDevice::Open();
    if (!dev.ok()) {
      Say("the module's kfuncs are there but " + dev.status().ToString());
      return kExitError;
    }
    auto version = dev->GetVersion();
    if (!version.ok()) {
      Say(version.status().ToString());
      return kExitError;
    }
    if (vigil::Status st = vigil::device::CheckAbi(*version); !st.ok()) {
      Say(st.ToString());
      return kExitError;
    }
    auto got = dev->GetInfo();
    if (!got.ok()) {
      Say(got.status().ToString());
      return kExitError;
    }
    info = *got;
    auto bytes = dev->ReadAvailable();
    if (!bytes.ok()) {
      Say(bytes.status().ToString());
      return kExitError;
    }
    auto log = vigil::records::DecodeStream(*bytes);
    if (!log.ok()) {
      Say("the module's log does not decode: " + log.status().ToString());
      return kExitError;
    }
    initial_log = std::move(log).value();
    vigil::verify::Anchor anchor;
    bool same_instance = saved && std::memcmp(saved->anchor.instance_id.data(), info->instance_id,
                                              VIGIL_ID_LEN) == 0;
    // The module's log as read, one file per module instance. The file, not
    // verifier.json, says how far it goes: it may be ahead (appended, then
    // killed before the save), end in a record cut short, or be gone. The
    // scan also keeps the saved anchor's checkpoint, which the module's log
    // may no longer hold.
    std::optional<vigil::records::Record> saved_anchor_record;
    if (state) {
      log_file = daemon::LogFileName(std::span<const uint8_t>(info->instance_id));
      const uint64_t expected = same_instance ? saved->log_saved_seq : 0;
      const uint64_t keep = same_instance ? saved->anchor.checkpoint_log_seq : 0;
      auto scan =
          LoadState<daemon::SavedLog>(*state, log_file, cfg.reset_state, [&](int fd, uint64_t) {
            return daemon::ScanSavedLogFile(fd, std::span<const uint8_t>(info->instance_id),
                                            1 << 20, keep);
          });
      if (!scan.ok()) {
        Say(scan.status().message());
        return kExitError;
      }
      if (*scan && (*scan)->complete_bytes != (*scan)->scanned_bytes) {
        Say(log_file + ": dropped a record cut short at the end (" +
            std::to_string((*scan)->scanned_bytes - (*scan)->complete_bytes) +
            " bytes, an interrupted append); it is read again from the module");
        if (vigil::Status st = state->Truncate(log_file, (*scan)->complete_bytes); !st.ok()) {
          Say(st.ToString());
          return kExitError;
        }
      }
      log_saved_seq = *scan ? (*scan)->last_seq : 0;
      if (*scan) saved_anchor_record = (*scan)->kept;
      if (log_saved_seq < expected) {
        Say(log_file + " ends at log seq " + std::to_string(log_saved_seq) +
            " but verifier.json says " + std::to_string(expected) +
            " was saved: the rest is written again from the module's log (records the module "
            "trimmed since are not in it)");
      }
    }
    durable_log_seq = log_saved_seq;
    // The saved anchor must be a checkpoint the module wrote (in its log, or
    // in the saved log when trimmed): an edited verifier.json could
    // otherwise skip checkpoints silently.
    if (same_instance) {
      vigil::Status st = daemon::CheckSavedAnchor(
          saved->anchor, *info, initial_log,
          [&](uint64_t) -> vigil::Result<std::optional<vigil::records::Record>> {
            return saved_anchor_record;
          });
      if (!st.ok() && !cfg.reset_state) {
        Say(st.message() + ". Refusing to verify from it: fix or remove " + cfg.state_dir + "/" +
            daemon::kVerifierFile + ", or start with --reset-state to move it aside");
        return kExitError;
      }
      if (!st.ok()) {
        std::string moved;
        for (const char* name : {daemon::kVerifierFile, daemon::kOpenEventsFile}) {
          auto aside = state->MoveAside(name);
          if (aside.ok()) moved += std::string(moved.empty() ? "" : ", ") + name + " to " + *aside;
        }
        Say("--reset-state: " + st.message() + "; moved " + (moved.empty() ? "nothing" : moved) +
            " in " + cfg.state_dir + ", dropped " + std::to_string(saved_open.size()) +
            " saved open events; verification starts from the module's log");
        saved.reset();
        saved_open.clear();
        same_instance = false;
      }
    }
    uint64_t started_after_seq = 0;
    if (same_instance) {
      anchor = saved->anchor;
      Say("resuming verification after seq " + std::to_string(anchor.last_seq) +
          " (checkpoint at log seq " + std::to_string(anchor.checkpoint_log_seq) +
          ", checked against the " +
          (std::any_of(initial_log.begin(), initial_log.end(),
                       [&](const vigil::records::Record& r) {
                         return r.seq() == anchor.checkpoint_log_seq;
                       })
               ? "module's"
               : "saved") +
          " log)");
    } else {
      if (saved) {
        instance_change.emplace();
        instance_change->saved = saved->anchor.instance_id;
        Say("the saved verifier state belongs to another module instance (reboot or reload): "
            "verification starts again from the module's log; baselines are kept");
        if (!saved_open.empty()) {
          // Their checkpoints, if the old instance made any, are gone with it.
          instance_change->detail =
              std::to_string(saved_open.size()) + " events of the old instance after its seq " +
              std::to_string(saved->anchor.last_seq) +
              " were never decided and cannot be now (no verdict covers them)";
          Say(instance_change->detail);
        }
        saved_open.clear();
        saved->log_saved_seq = 0;
        saved->agent_names.clear();
      }
      anchor = AnchorFromLog(*info, initial_log);
      started_after_seq = anchor.last_seq;
      Say("verification starts after seq " + std::to_string(anchor.last_seq) +
          (anchor.checkpoint_log_seq ? " (the last checkpoint in the log)" : " (no checkpoint yet)"));
    }
    // The key the module reports (GET_INFO) is the only trusted one: not
    // the saved state's (a file root can edit) and never a KEY record in
    // the log being verified. A module without a key signs nothing.
    std::optional<vigil::crypto::EcPoint> module_key;
    if ((info->tpm_flags & VIGIL_TPM_KEY) != 0) {
      vigil::crypto::EcPoint key;
      std::memcpy(key.x, info->key_x, sizeof(key.x));
      std::memcpy(key.y, info->key_y, sizeof(key.y));
      module_key = key;
    }
    if (anchor.key.has_value() != module_key.has_value() ||
        (anchor.key && !vigil::crypto::SamePoint(*anchor.key, *module_key))) {
      if (same_instance) {
        Say("the module's key differs from the saved one for this instance: using the module's");
      }
    }
    anchor.key = module_key;
    vigil::verify::VerifierOptions vopt;
    vopt.started_after_seq = started_after_seq;
    vopt.reorder_window = cfg.reorder_window;
    vopt.checkpoint_wait_ns = static_cast<uint64_t>(cfg.checkpoint_wait_s * 1e9);
    const bool tpm = (info->tpm_flags & VIGIL_TPM_PRESENT) != 0;
    if (tpm && !cfg.no_pcr_check) {
      if (info->anchor == VIGIL_ANCHOR_IMA) {
        vopt.ima_check =
            vigil::anchor::Shared(std::make_shared<vigil::anchor::ImaAnchorCheck>(cfg.tcti, *info));
      } else {
        vopt.pcr_check =
            vigil::anchor::Shared(std::make_shared<vigil::anchor::PcrAnchorCheck>(cfg.tcti, *info));
      }
    }
    const std::string checked = info->anchor == VIGIL_ANCHOR_IMA
                                    ? "IMA's log replayed to PCR 10 of the TPM at " + cfg.tcti
                                    : "PCR replay against the TPM at " + cfg.tcti;
    Say(std::string("anchor check: ") +
        (cfg.no_pcr_check ? "off (--no-pcr-check): verdicts are at best \"signed\""
         : tpm            ? checked
                          : "none (the module runs without a TPM)"));
    verifier.emplace(anchor, std::move(vopt));
    device.emplace(std::move(dev).value());
  }

  // The collector measures itself into pcr_config before it reports
  // anything (the first line of output comes from the pipeline below).
  if (device && !cfg.no_measure) {
    auto exe = HashFile("/proc/self/exe");
    const std::string canonical = cfg.Canonical();
    auto conf = vigil::crypto::Sha256(
        {std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(canonical.data()),
                                  canonical.size())});
    if (!exe.ok() || !conf.ok()) {
      Say("cannot hash the binary or the configuration: " +
          (exe.ok() ? conf.status() : exe.status()).ToString());
      return kExitError;
    }
    for (const auto& [name, digest] :
         {std::pair<std::string, vigil::crypto::Sha256Digest>{"vigild", *exe},
          {"vigild-config", *conf}}) {
      auto log_seq = device->Measure(name, digest);
      if (!log_seq.ok()) {
        Say("MEASURE " + name + ": " + log_seq.status().ToString());
        return kExitError;
      }
      std::string line = vigil::format::Dump(json{{"type", "measure"},
                                                  {"name", name},
                                                  {"digest", vigil::crypto::ToHex(digest)},
                                                  {"log_seq", *log_seq}});
      stamper.Stamp(line);
      out << line << '\n';
    }
    Say("measured the binary and configuration " + canonical + " into pcr_config");
  }

  vigil::metrics::Registry registry;
  daemon::PipelineOptions popt;
  popt.emit_records = !cfg.no_records;
  popt.committed_only = module.commit;
  popt.stamper = stamper;
  popt.liveness.stall_periods = cfg.stall_periods;
  popt.liveness.checkpoint_wait_ns = static_cast<uint64_t>(cfg.checkpoint_wait_s * 1e9);
  auto made = daemon::Pipeline::Create(out, registry, std::move(*store), std::move(verifier), popt);
  if (!made.ok()) {
    Say(made.status().ToString());
    return kExitError;
  }
  std::unique_ptr<daemon::Pipeline> pipe = std::move(made).value();
  if (saved) pipe->SetAgentNames(saved->agent_names);
  if (instance_change && info) {
    pipe->ReportInstanceChange(instance_change->saved,
                               std::span<const uint8_t>(info->instance_id, VIGIL_ID_LEN),
                               instance_change->detail);
  }
  if (info) pipe->OnModuleInfo(*info);
  std::string pending_log_bytes;  // for log_file, written at the next save
  if (state) {
    pipe->set_verdict_sink([&](const std::string& line) {
      if (vigil::Status st = state->Append(daemon::kVerdictsFile, line + "\n"); !st.ok()) {
        Say(st.ToString());
      }
    });
  }
  auto feed_log = [&](std::vector<vigil::records::Record>& records) {
    for (vigil::records::Record& r : records) {
      if (!log_file.empty() && r.seq() > log_saved_seq) {
        pending_log_bytes.append(reinterpret_cast<const char*>(r.bytes().data()),
                                 r.bytes().size());
        log_saved_seq = r.seq();
      }
      pipe->OnLog(std::move(r));
    }
  };
  // Events first (saved ones, then what the ring buffer holds now), then
  // the log: a log read at start can hold many user-event copies and
  // checkpoints whose events are still waiting in the ring buffer.
  for (vigil::records::Record& r : saved_open) pipe->OnRecoveredEvent(std::move(r));
  for (const std::string& e : early_errors) pipe->OnDecodeError(e);
  for (vigil::records::Record& r : early) pipe->OnEvent(std::move(r), ClockNs(CLOCK_REALTIME));
  early.clear();
  pipeline = pipe.get();
  if (vigil::Status st = (*collector)->Poll(0); !st.ok()) {
    Say(st.ToString());
    return kExitError;
  }
  feed_log(initial_log);

  auto counters_family = registry.AddCounter(
      "vigil_bpf_drops_total", "Records the BPF programs could not deliver, by type", {"type"});
  auto errors_family = registry.AddCounter("vigil_bpf_errors_total",
                                           "Failures inside the BPF programs, by kind", {"kind"});
  auto mirror_counters = [&]() {
    auto c = (*collector)->ReadCounters();
    if (!c.ok() || !counters_family.ok() || !errors_family.ok()) return;
    for (unsigned t = 1; t < c->drops.size(); ++t) {
      (*counters_family)->Set({std::string(vigil::records::TypeName(static_cast<uint16_t>(t)))},
                              static_cast<double>(c->drops[t]));
    }
    for (unsigned i = 0; i < c->errors.size(); ++i) {
      (*errors_family)->Set({vigil::bpf::BpfErrorName(i)}, static_cast<double>(c->errors[i]));
    }
  };

  std::unique_ptr<vigil::metrics::Server> metrics_server;
  if (!cfg.metrics.empty()) {
    auto server = vigil::metrics::Server::Start(cfg.metrics, registry);
    if (!server.ok()) {
      Say("--metrics: " + server.status().ToString());
      return kExitError;
    }
    metrics_server = std::move(server).value();
    Say("Prometheus metrics on http://" + cfg.metrics.substr(0, cfg.metrics.rfind(':')) + ":" +
        std::to_string(metrics_server->port()) + "/metrics");
  }

  uint64_t saved_anchor_log_seq = 0;  // the anchor verifier.json holds on disk
  bool baselines_due = true;  // at the first save, then every --baseline-interval
  uint64_t last_baselines_save_ns = 0;  // how long the last one took
  auto save_state = [&]() -> vigil::Status {
    if (!state) return vigil::Status::Ok();
    if (!pending_log_bytes.empty()) {
      VIGIL_RETURN_IF_ERROR(state->Append(log_file, pending_log_bytes));  // fdatasync
      pending_log_bytes.clear();
    }
    durable_log_seq = log_saved_seq;
    // A failure here does not keep the verifier's state from being saved.
    vigil::Status baselines_saved = vigil::Status::Ok();
    if (baselines_due) {
      baselines_due = false;  // after a failure, tried again at the next interval
      // In pieces: with 10k agents the text is tens of MB.
      const uint64_t started = ClockNs(CLOCK_MONOTONIC);
      baselines_saved = state->WriteAtomicPieces(
          daemon::kBaselinesFile, [&](const daemon::StateDir::PieceWriter& write) {
            return pipe->store().SerializeTo(write);
          });
      last_baselines_save_ns = ClockNs(CLOCK_MONOTONIC) - started;
    }
    if (vigil::verify::StreamVerifier* v = pipe->verifier()) {
      journal.clear();  // the snapshot below holds every open event
      daemon::VerifierState vs;
      vs.anchor = v->anchor();
      vs.log_saved_seq = log_saved_seq;
      vs.agent_names = pipe->AgentNames();
      vs.saved_at_ns = ClockNs(CLOCK_REALTIME);
      VIGIL_RETURN_IF_ERROR(
          state->WriteAtomic(daemon::kVerifierFile, daemon::SerializeVerifierState(vs)));
      VIGIL_RETURN_IF_ERROR(state->WriteAtomic(daemon::kOpenEventsFile,
                                               daemon::SerializeOpenEvents(v->OpenEvents())));
      // Only now may TRIM drop what comes before this anchor's checkpoint.
      saved_anchor_log_seq = vs.anchor.checkpoint_log_seq;
    }
    return baselines_saved;
  };

  if (!cfg.ready_file.empty()) {
    if (vigil::Status st = WriteReadyFile(cfg.ready_file, module.commit,
                                          metrics_server ? metrics_server->port() : 0);
        !st.ok()) {
      Say(st.ToString());
      return kExitError;
    }
  }

  // At once, so the files on disk describe this run (e.g. no open events of
  // another module instance left for a journal append to extend).
  if (vigil::Status st = save_state(); !st.ok()) {
    Say("saving state: " + st.ToString());
    return kExitError;
  }
  int rc = kExitOk;
  auto read_log = [&]() {
    if (!device) return;
    auto bytes = device->ReadAvailable();
    if (!bytes.ok()) {
      pipe->OnLogError(bytes.status().ToString());
      return;
    }
    if (bytes->empty()) return;
    // What decodes before a bad record is still the module's log: judged
    // first, then the error marks whatever is still undecided.
    vigil::records::StreamPrefix prefix = vigil::records::DecodeStreamPrefix(*bytes);
    feed_log(prefix.records);
    if (!prefix.stopped.ok()) {
      pipe->OnLogError("the module's log stream does not decode " + prefix.stopped.message());
    }
  };
  // GET_INFO after every poll: the module's seq and log fill for the stall
  // check and the metrics, and the TRIM that keeps its log from filling up.
  // Without state nothing is saved, so nothing may be trimmed.
  daemon::TrimOptions topt;
  topt.fill_fraction = cfg.trim_fill;
  daemon::LogTrimmer trimmer([&](uint64_t before) { return device->Trim(before); }, topt);
  uint64_t next_trim_try_ns = 0;
  bool info_error_said = false;
  auto poll_module = [&](uint64_t now) {
    auto got = device->GetInfo();
    if (!got.ok()) {
      if (!std::exchange(info_error_said, true)) Say(got.status().ToString());
      return;
    }
    pipe->OnModuleInfo(*got);
    if (!state || cfg.trim_fill >= 1.0 || now < next_trim_try_ns || !trimmer.Due(*got)) return;
    vigil::verify::StreamVerifier* v = pipe->verifier();
    if (v == nullptr) return;
    // Save first when that lets the cut move: the cut never passes what is
    // on disk (the log records and the anchor in verifier.json).
    if (daemon::TrimBefore(v->anchor().checkpoint_log_seq, log_saved_seq, got->log_first_seq)
            .value_or(0) >
        daemon::TrimBefore(saved_anchor_log_seq, durable_log_seq, got->log_first_seq).value_or(0)) {
      if (vigil::Status st = save_state(); !st.ok()) {
        Say("saving state before TRIM: " + st.ToString());
        next_trim_try_ns = now + 1'000'000'000;
        return;
      }
    }
    const daemon::LogTrimmer::Outcome o =
        trimmer.MaybeTrim(*got, saved_anchor_log_seq, durable_log_seq);
    using Kind = daemon::LogTrimmer::Outcome::Kind;
    switch (o.kind) {
      case Kind::kTrimmed:
        pipe->CountTrimmed(o.trimmed);
        if (cfg.verbose) {
          Say("trimmed " + std::to_string(o.trimmed) +
              " records of the module's log before log seq " + std::to_string(o.before_seq));
        }
        break;
      case Kind::kRetryLater:
        next_trim_try_ns = now + 200'000'000;
        break;
      case Kind::kSealed:
        Say("the module is sealed: no more TRIMs (" + o.why + ")");
        break;
      case Kind::kError:
        Say("TRIM: " + o.why);
        next_trim_try_ns = now + 5'000'000'000ull;
        break;
      case Kind::kNothing:
        // Due but nothing saved and decided to drop yet: the stall check
        // reports it if verification cannot go on.
        next_trim_try_ns = now + 1'000'000'000;
        break;
    }
  };
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(cfg.duration_s));
  const uint64_t save_every_ns = static_cast<uint64_t>(cfg.state_interval_s * 1e9);
  uint64_t next_save_ns = ClockNs(CLOCK_MONOTONIC) + save_every_ns;
  const uint64_t baselines_every_ns = static_cast<uint64_t>(cfg.baseline_interval_s * 1e9);
  uint64_t next_baselines_ns = ClockNs(CLOCK_MONOTONIC) + baselines_every_ns;
  // Once a second: what root did to our BPF objects (foreign programs on
  // our maps, a second link, the activation flag, removed pins), reported
  // once each while it holds.
  uint64_t next_audit_ns = 0;
  std::set<std::string> audit_open;
  auto audit = [&](uint64_t now) {
    if (now < next_audit_ns) return;
    next_audit_ns = now + 1'000'000'000;
    std::set<std::string> still;
    for (const vigil::bpf::AuditFinding& f : (*collector)->Audit()) {
      const std::string kind(vigil::bpf::AuditKindName(f.kind));
      const std::string key = kind + "\n" + f.detail;
      still.insert(key);
      if (audit_open.count(key) == 0) pipe->OnAudit(kind, f.detail);
    }
    audit_open = std::move(still);
  };
  while (!g_stop) {
    if (cfg.duration_s > 0 && std::chrono::steady_clock::now() >= deadline) break;
    if (vigil::Status st = (*collector)->Poll(100); !st.ok()) {
      Say(st.ToString());
      rc = kExitError;
      break;
    }
    // At once: what follows (the log, PCR reads from the TPM) can take a
    // while, and a SIGKILL then must not lose what was just consumed.
    if (state && !journal.empty()) {
      if (vigil::Status st = state->Append(daemon::kOpenEventsFile, journal, false); !st.ok()) {
        Say("journal: " + st.ToString());
      }
      journal.clear();
    }
    read_log();
    const uint64_t now = ClockNs(CLOCK_MONOTONIC);
    if (device) poll_module(now);
    audit(now);
    pipe->Tick(now, ClockNs(CLOCK_REALTIME));
    mirror_counters();
    out.flush();
    if (!out) g_stop = 1;
    if (now >= next_baselines_ns) {
      baselines_due = true;
      // Saving is at most 2% of the time, however large the store grows.
      next_baselines_ns = now + std::max(baselines_every_ns, 50 * last_baselines_save_ns);
    }
    if (now >= next_save_ns || baselines_due) {
      next_save_ns = now + save_every_ns;
      if (vigil::Status st = save_state(); !st.ok()) Say("saving state: " + st.ToString());
    }
  }
  // Detach first so nothing is submitted after the drain, then drain, then
  // read the counters: every committed record reaches the output.
  (*collector)->Detach();
  if (vigil::Status st = (*collector)->Drain(); !st.ok()) {
    Say(st.ToString());
    rc = kExitError;
  }
  read_log();
  pipe->Tick(ClockNs(CLOCK_MONOTONIC), ClockNs(CLOCK_REALTIME));
  // With a state directory, undecided checkpoints wait for the next start;
  // without one they are decided now, missing events counting as loss.
  if (!state) pipe->Finish();
  mirror_counters();
  baselines_due = true;
  if (vigil::Status st = save_state(); !st.ok()) {
    Say("saving state: " + st.ToString());
    rc = kExitError;
  }
  out.flush();

  auto counters = (*collector)->ReadCounters();
  std::cerr << "vigild: summary events=" << counts.events << " exec=" << counts.exec
            << " exit=" << counts.exit << " fork=" << counts.fork << " agent=" << counts.agent
            << " sample=" << counts.sample << " committed=" << counts.committed
            << " uncommitted=" << counts.uncommitted << " decode_errors=" << counts.decode_errors
            << " format_errors=" << pipe->format_errors();
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
  std::cerr << " module=" << (module.commit ? 1 : 0);
  if (const vigil::verify::StreamVerifier* v = pipe->verifier()) {
    const auto& c = v->counters();
    for (size_t i = 0; i < vigil::verify::kVerdictCount; ++i) {
      std::cerr << " " << vigil::verify::VerdictName(static_cast<vigil::verify::Verdict>(i))
                << "=" << c.verdicts[i];
    }
    std::cerr << " chained=" << c.chained << " late=" << c.late
              << " duplicates=" << c.duplicates << " conflicts=" << c.conflicts;
  } else {
    std::cerr << " unattested=" << counts.events;
  }
  std::cerr << " alerts=" << pipe->alerts() << "\n";
  if (!out) {
    Say("writing to " + std::string(cfg.output == "-" ? "stdout" : cfg.output) + " failed");
    rc = kExitError;
  }
  if (!cfg.ready_file.empty()) ::unlink(cfg.ready_file.c_str());
  if (raw_errors != 0) {
    Say(std::to_string(raw_errors) + " events could not be written to " + cfg.raw_out);
    rc = kExitError;
  }
  return rc;
}

// A CLI11 validator for a number of seconds in [lo, hi].
CLI::Validator Seconds(const std::string& flag, double lo, double hi) {
  return CLI::Validator(
      [flag, lo, hi](std::string& value) -> std::string {
        double d = 0;
        try {
          size_t used = 0;
          d = std::stod(value, &used);
          if (used != value.size()) throw std::invalid_argument(value);
        } catch (const std::exception&) {
          return flag + " must be a number of seconds, got " + value;
        }
        // !(a <= b) also rejects NaN.
        if (!(d >= lo && d <= hi)) {
          std::ostringstream msg;
          msg << flag << " must be between " << lo << " and " << hi << " seconds, got " << value;
          return msg.str();
        }
        return {};
      },
      "SECONDS");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vigild: collect agent events from the kernel through BPF, verify them against the vigil "
      "module's TPM-signed checkpoints, learn per-agent baselines, and print one JSON object "
      "per line (\"type\": a record type, \"checkpoint\", \"finding\", \"alert\" or "
      "\"measure\").\n\nExit codes: 0 clean stop, 1 runtime error, 2 usage error."};
  app.set_version_flag("--version", vigil::version::VersionText("vigild"),
                       "Print the version, the ABI version and build information, then exit");
  app.set_config("--config", "", "Read options from an INI/TOML file (same names as the flags)");
  Config cfg;
  app.add_option("--duration", cfg.duration_s,
                 "Stop after SECONDS, at most 1e7 (default: run until SIGINT/SIGTERM)")
      ->check(Seconds("--duration", 0, kMaxDurationS));
  app.add_option("--ready-file", cfg.ready_file,
                 "Write PATH once the programs are attached (for tests and supervisors)");
  app.add_option("-o,--output", cfg.output, "Append the JSON lines to FILE ('-': stdout)")
      ->capture_default_str();
  app.add_flag("--no-records", cfg.no_records,
               "Print verdicts, findings and alerts only, not one line per record");
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
  app.add_flag("--no-module", cfg.no_module,
               "Do not call the vigil module even if it is loaded (records are unattested)");
  app.add_flag("--all-processes", cfg.all_processes,
               "Record every process (agent_id 0 when untracked), not only tracked agents");
  app.add_option("--pin-dir", cfg.pin_dir,
                 "Pin the programs and maps here (bpffs), so a restarted vigild takes them over "
                 "and `vigilctl agent` finds the agent maps; empty: do not pin")
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
  app.add_option("--state-dir", cfg.state_dir,
                 "Keep baselines, the verifier's position and the verified log here")
      ->capture_default_str();
  app.add_flag("--no-state", cfg.no_state,
               "Keep nothing across restarts (undecided checkpoints are decided at exit)");
  app.add_flag("--reset-state", cfg.reset_state,
               "Move unusable state files aside (named in the log) instead of refusing to start");
  app.add_option("--state-interval", cfg.state_interval_s,
                 "Save the verifier's state (anchor, open events, log) every SECONDS")
      ->check(Seconds("--state-interval", 0.1, 3600))
      ->capture_default_str();
  app.add_option("--baseline-interval", cfg.baseline_interval_s,
                 "Save the baselines every SECONDS, or 50 times as long as the last save took "
                 "if that is longer (a large store), and at exit")
      ->check(Seconds("--baseline-interval", 0.1, 86400))
      ->capture_default_str();
  app.add_option("--metrics", cfg.metrics,
                 "Serve Prometheus metrics on this loopback HOST:PORT (empty: off)")
      ->capture_default_str();
  app.add_option("--tcti", cfg.tcti, "TPM for the PCR replay check (tpm2-tools syntax)")
      ->capture_default_str();
  app.add_flag("--no-pcr-check", cfg.no_pcr_check,
               "Do not place checkpoints on the TPM's PCR path (verdicts say so)");
  app.add_option("--reorder-window", cfg.reorder_window,
                 "Records that may overtake a missing one before it is declared lost")
      ->check(CLI::Range(1u, 1u << 24))
      ->capture_default_str();
  app.add_option("--checkpoint-wait", cfg.checkpoint_wait_s,
                 "Decide a checkpoint whose events are still missing after SECONDS (as loss)")
      ->check(Seconds("--checkpoint-wait", 0.1, 3600))
      ->capture_default_str();
  app.add_option("--learn-samples", cfg.learn_samples,
                 "Samples per agent and feature before scoring starts")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--threshold", cfg.threshold, "Robust z score that raises an alert")
      ->check(CLI::Range(0.5, 1000.0))
      ->capture_default_str();
  app.add_option("--stall-periods", cfg.stall_periods,
                 "Report a `stalled` finding when the module's seq moved on but no verdict came "
                 "for this many checkpoint periods (at least --checkpoint-wait plus one period)")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option("--trim-fill", cfg.trim_fill,
                 "TRIM the module's log once it is this full (fraction of log_max_bytes), up to "
                 "the last decided checkpoint that is saved; 1 turns trimming off")
      ->check(CLI::Range(0.05, 1.0))
      ->capture_default_str();
  app.add_flag("--no-measure", cfg.no_measure,
               "Do not MEASURE vigild's binary and configuration into pcr_config");
  app.add_flag("-v,--verbose", cfg.verbose, "Show libbpf debug output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (!cfg.metrics.empty()) {
    if (vigil::Status st = vigil::metrics::CheckListenAddress(cfg.metrics); !st.ok()) {
      std::cerr << "--metrics: " << st.message() << "\n";
      return kExitUsage;
    }
  }
  if (cfg.no_state && cfg.reset_state) {
    std::cerr << "--reset-state needs a state directory (not --no-state)\n";
    return kExitUsage;
  }
  InstallSignalHandlers();
  try {
    return Run(cfg);
  } catch (const std::exception& e) {
    std::cerr << "vigild: " << e.what() << "\n";
    return kExitError;
  }
}
