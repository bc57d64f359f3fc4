// vigild: loads vigil's BPF programs and consumes their ring buffer and the
// module's log; verifies every committed record against the module's
// checkpoints (chain, TPM signature, PCR replay) and prints one verdict per
// checkpoint; learns per-agent baselines and prints alerts; serves
// Prometheus metrics on loopback; keeps its state in a directory so a
// restart resumes where it stopped. One JSON object per line on stdout (or
// --output): records, checkpoint verdicts, findings and alerts, told apart
// by "type". A summary with counts goes to stderr at exit.
//
// main() parses the options; Run() is a short sequence of named stages
// (stages.h: outputs, saved state, module side, self-measurement; here: the
// collector, the pipeline, the metrics, the loop and the shutdown).
//
// Exit codes: 0 clean stop (signal or --duration), 1 runtime error (not
// root, no kernel BTF, load/attach failure, corrupt state), 2 usage error.
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
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "config.h"
#include "liveness.h"
#include "pipeline.h"
#include "stages.h"
#include "state.h"
#include "systemd_notify.h"
#include "vigil/baseline/store.h"
#include "vigil/cli_parse.h"
#include "vigil/collector.h"
#include "vigil/metrics.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/verify.h"
#include "vigil/version.h"

namespace {

namespace daemon = vigil::daemon;
using daemon::Say;

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

// Where the collector's records go: counted, journalled (committed ones,
// for open-events.bin), copied to --raw-out, and handed to the pipeline, or
// held until it exists (the old ring buffer of an incompatible pinned
// instance is drained while the collector starts).
// Thread-safety: called on vigild's one thread (inside Collector::Poll).
class EventSink {
 public:
  struct Counts {
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

  EventSink(const daemon::Config& cfg, daemon::Outputs& outputs)
      : journal_enabled_(!cfg.no_state), outputs_(outputs) {}

  void OnRecord(const vigil::Result<vigil::records::Record>& rec) {
    if (!rec.ok()) {
      counts_.decode_errors++;
      if (pipeline_) {
        pipeline_->OnDecodeError(rec.status().ToString());
      } else {
        early_errors_.push_back(rec.status().ToString());
      }
      return;
    }
    counts_.events++;
    if (rec->type() == VIGIL_EV_EXEC) counts_.exec++;
    if (rec->type() == VIGIL_EV_EXIT) counts_.exit++;
    if (rec->type() == VIGIL_EV_FORK) counts_.fork++;
    if (rec->type() == VIGIL_EV_AGENT) counts_.agent++;
    if (rec->type() == VIGIL_EV_SAMPLE) counts_.sample++;
    (rec->committed() ? counts_.committed : counts_.uncommitted)++;
    // Journalled after each poll, so a SIGKILL loses at most one batch.
    if (module_commits_ && rec->committed() && journal_enabled_) {
      journal_.append(reinterpret_cast<const char*>(rec->bytes().data()), rec->bytes().size());
    }
    if (pipeline_) {
      pipeline_->OnEvent(*rec, ClockNs(CLOCK_REALTIME));
    } else {
      early_.push_back(*rec);
    }
    if (!outputs_.out()) g_stop = 1;  // the output is gone: stop, the summary says so
    // With the module, only committed records are in the chain.
    if (outputs_.raw_fd().valid()) {
      if (module_commits_ && !rec->committed()) {
        counts_.raw_skipped++;
      } else if (!WriteAll(outputs_.raw_fd().get(), rec->bytes()).ok()) {
        raw_errors_++;
      }
    }
  }

  void set_module_commits(bool commits) { module_commits_ = commits; }
  // Hands what arrived before it to `pipeline`, then everything after.
  void Attach(daemon::Pipeline& pipeline) {
    for (const std::string& e : early_errors_) pipeline.OnDecodeError(e);
    for (vigil::records::Record& r : early_)
      pipeline.OnEvent(std::move(r), ClockNs(CLOCK_REALTIME));
    early_.clear();
    early_errors_.clear();
    pipeline_ = &pipeline;
  }

  // Committed events since the last append to open-events.bin.
  std::string& journal() { return journal_; }
  const Counts& counts() const { return counts_; }
  uint64_t raw_errors() const { return raw_errors_; }

 private:
  const bool journal_enabled_;
  daemon::Outputs& outputs_;
  bool module_commits_ = false;
  daemon::Pipeline* pipeline_ = nullptr;
  std::vector<vigil::records::Record> early_;
  std::vector<std::string> early_errors_;
  std::string journal_;
  Counts counts_;
  uint64_t raw_errors_ = 0;
};

// vigild from start to stop: each stage one method, run in order by Run().
// Thread-safety: one thread (the metrics server reads the registry on its own).
class Daemon {
 public:
  explicit Daemon(const daemon::Config& cfg) : cfg_(cfg) {}

  int Run() {
    if (!CheckPrerequisites()) return kExitError;
    vigil::bpf::SetLibbpfVerbosity(cfg_.verbose);
    if (int rc = OpenOutputsAndState(); rc != kExitOk) return rc;
    if (!StartCollector() || !ConnectModule() || !MeasureSelf() || !BuildPipeline() ||
        !StartMetrics() || !WriteReady() || !SaveAtStart()) {
      return kExitError;
    }
    notifier_.Ready(StatusLine());
    Loop();
    notifier_.Stopping();
    Shutdown();
    return rc_;
  }

 private:
  bool CheckPrerequisites() const;
  int OpenOutputsAndState();
  bool StartCollector();
  bool ConnectModule();
  bool MeasureSelf();
  bool BuildPipeline();
  bool StartMetrics();
  bool WriteReady();
  bool SaveAtStart();
  void Loop();
  void Shutdown();
  // One line for `systemctl status`: what vigild records and decides.
  std::string StatusLine();

  // The loop's steps.
  vigil::Status SaveState();
  void FeedLog(std::vector<vigil::records::Record>& records);
  void ReadLog();
  void PollModule(uint64_t now);
  void Audit(uint64_t now);
  void MirrorCounters();

  const daemon::Config& cfg_;
  std::optional<daemon::Outputs> outputs_;
  std::optional<daemon::SavedState> saved_;
  std::optional<EventSink> sink_;
  std::unique_ptr<vigil::bpf::Collector> collector_;
  vigil::bpf::ModuleKfuncs module_{};
  std::optional<daemon::ModuleSide> module_side_;
  vigil::metrics::Registry registry_;
  std::unique_ptr<daemon::Pipeline> pipe_;
  vigil::metrics::Counter* bpf_drops_ = nullptr;
  vigil::metrics::Counter* bpf_errors_ = nullptr;
  std::unique_ptr<vigil::metrics::Server> metrics_server_;
  daemon::SystemdNotifier notifier_;

  std::string pending_log_bytes_;        // for the saved log file, written at the next save
  uint64_t log_saved_seq_ = 0;           // last log seq queued for the saved log file
  uint64_t durable_log_seq_ = 0;         // last log seq fsynced to it
  uint64_t saved_anchor_log_seq_ = 0;    // the anchor verifier.json holds on disk
  bool baselines_due_ = true;            // at the first save, then every --baseline-interval
  uint64_t last_baselines_save_ns_ = 0;  // how long the last one took
  std::optional<daemon::LogTrimmer> trimmer_;
  uint64_t next_trim_try_ns_ = 0;
  bool info_error_said_ = false;
  uint64_t next_audit_ns_ = 0;
  std::set<std::string> audit_open_;  // audit findings still holding, reported once each
  int rc_ = kExitOk;
};

bool Daemon::CheckPrerequisites() const {
  if (::geteuid() != 0) {
    Say("must run as root (loading BPF programs needs CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)");
    return false;
  }
  if (::access(vigil::bpf::kVmlinuxBtfPath, R_OK) != 0) {
    Say(std::string(vigil::bpf::kVmlinuxBtfPath) +
        " is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y for CO-RE programs");
    return false;
  }
  return true;
}

// Outputs, then the saved state: loaded whole or not at all; a bad file stops vigild.
int Daemon::OpenOutputsAndState() {
  auto outputs = daemon::Outputs::Open(cfg_);
  if (!outputs.ok()) {
    Say(outputs.status().message());
    return kExitError;
  }
  outputs_.emplace(std::move(outputs).value());
  vigil::baseline::BaselineConfig bcfg;
  bcfg.learn_samples = cfg_.learn_samples;
  bcfg.threshold = cfg_.threshold;
  auto fresh_store = vigil::baseline::BaselineStore::Create(bcfg);
  if (!fresh_store.ok()) {
    Say("baseline settings: " + fresh_store.status().ToString());
    return kExitUsage;
  }
  auto saved = daemon::SavedState::Load(cfg_, std::move(fresh_store).value());
  if (!saved.ok()) {
    Say(saved.status().message());
    return kExitError;
  }
  saved_.emplace(std::move(saved).value());
  return kExitOk;
}

// The BPF side. Records wait in the ring buffer until the first Poll, so
// the pipeline can be built after the programs are attached.
bool Daemon::StartCollector() {
  sink_.emplace(cfg_, *outputs_);
  vigil::bpf::CollectorOptions options;
  options.ringbuf_bytes = cfg_.ringbuf_bytes;
  options.allow_module = !cfg_.no_module;
  options.all_processes = cfg_.all_processes;
  options.pin_dir = cfg_.pin_dir;
  options.sample_ms = cfg_.sample_ms;
  options.syscalls = cfg_.syscalls;
  options.hw = cfg_.hw == "off"           ? vigil::bpf::CollectorOptions::Hw::kOff
               : cfg_.hw == "inject-test" ? vigil::bpf::CollectorOptions::Hw::kInject
                                          : vigil::bpf::CollectorOptions::Hw::kAuto;
  EventSink* sink = &*sink_;
  auto collector = vigil::bpf::Collector::Start(
      options, [sink](const vigil::Result<vigil::records::Record>& rec) { sink->OnRecord(rec); });
  if (!collector.ok()) {
    Say(collector.status().ToString());
    return false;
  }
  collector_ = std::move(collector).value();
  module_ = collector_->module();
  sink_->set_module_commits(module_.commit);
  if (const vigil::bpf::AdoptStatus& adopt = collector_->adopted(); !adopt.detail.empty()) {
    Say(adopt.detail);
  }
  Say(std::string("attached; vigil module ") +
      (module_.commit ? "present: events are committed and verified"
                      : "absent: events are not committed, so they are unattested (never "
                        "verified)"));
  Say("recording " +
      std::string(cfg_.all_processes ? "every process (--all-processes)"
                                     : "tracked agents only (vigilctl agent ...)") +
      "; agent maps pinned under " + (cfg_.pin_dir.empty() ? "(none)" : cfg_.pin_dir));
  if (cfg_.sample_ms != 0) {
    const vigil::bpf::HwStatus& hw = collector_->hw();
    Say("samples every >= " + std::to_string(cfg_.sample_ms) + " ms per agent; syscalls " +
        (cfg_.syscalls ? "counted" : "not counted (--syscalls)") + "; hardware counters: " +
        (hw.measured   ? "cycles and instructions measured"
         : hw.injected ? "INJECTED synthetic values (--hw inject-test), not measurements"
                       : hw.why_not));
  }
  return true;
}

// The module side: anchor, key, verifier (stages.h). Without the module's
// kfuncs there is nothing to verify.
bool Daemon::ConnectModule() {
  if (!module_.commit) return true;
  auto side = daemon::ModuleSide::Connect(cfg_, *saved_);
  if (!side.ok()) {
    Say(side.status().message());
    return false;
  }
  module_side_.emplace(std::move(side).value());
  log_saved_seq_ = module_side_->log_saved_seq;
  durable_log_seq_ = log_saved_seq_;
  return true;
}

// The collector measures itself into pcr_config before it reports
// anything (the first line of output comes from the pipeline below).
bool Daemon::MeasureSelf() {
  if (!module_side_ || cfg_.no_measure) return true;
  if (vigil::Status st = daemon::MeasureSelf(cfg_, module_side_->device, *outputs_); !st.ok()) {
    Say(st.message());
    return false;
  }
  return true;
}

bool Daemon::BuildPipeline() {
  daemon::PipelineOptions popt;
  popt.emit_records = !cfg_.no_records;
  popt.committed_only = module_.commit;
  popt.stamper = outputs_->stamper();
  popt.liveness.stall_periods = cfg_.stall_periods;
  popt.liveness.checkpoint_wait_ns = static_cast<uint64_t>(cfg_.checkpoint_wait_s * 1e9);
  std::optional<vigil::verify::StreamVerifier> verifier;
  if (module_side_) verifier = std::move(module_side_->verifier);
  auto made = daemon::Pipeline::Create(outputs_->out(), registry_, std::move(*saved_->store),
                                       std::move(verifier), popt);
  if (!made.ok()) {
    Say(made.status().ToString());
    return false;
  }
  pipe_ = std::move(made).value();
  if (saved_->verifier) pipe_->SetAgentNames(saved_->verifier->agent_names);
  if (module_side_ && module_side_->instance_change) {
    pipe_->ReportInstanceChange(
        module_side_->instance_change->saved,
        std::span<const uint8_t>(module_side_->info.instance_id, VIGIL_ID_LEN),
        module_side_->instance_change->detail);
  }
  if (module_side_) pipe_->OnModuleInfo(module_side_->info);
  if (saved_->dir) {
    pipe_->set_verdict_sink([this](const std::string& line) {
      if (vigil::Status st = saved_->dir->Append(daemon::kVerdictsFile, line + "\n"); !st.ok()) {
        Say(st.ToString());
      }
    });
  }
  // Events first (saved ones, then what the ring buffer holds now), then
  // the log: a log read at start can hold many user-event copies and
  // checkpoints whose events are still waiting in the ring buffer.
  for (vigil::records::Record& r : saved_->open_events) pipe_->OnRecoveredEvent(std::move(r));
  saved_->open_events.clear();
  sink_->Attach(*pipe_);
  if (vigil::Status st = collector_->Poll(0); !st.ok()) {
    Say(st.ToString());
    return false;
  }
  if (module_side_) FeedLog(module_side_->initial_log);
  return true;
}

// The BPF counters as metrics, and the HTTP endpoint (--metrics).
bool Daemon::StartMetrics() {
  auto drops = registry_.AddCounter(
      "vigil_bpf_drops_total", "Records the BPF programs could not deliver, by type", {"type"});
  auto errors = registry_.AddCounter("vigil_bpf_errors_total",
                                     "Failures inside the BPF programs, by kind", {"kind"});
  if (drops.ok()) bpf_drops_ = *drops;
  if (errors.ok()) bpf_errors_ = *errors;
  if (cfg_.metrics.empty()) return true;
  auto server = vigil::metrics::Server::Start(cfg_.metrics, registry_);
  if (!server.ok()) {
    Say("--metrics: " + server.status().ToString());
    return false;
  }
  metrics_server_ = std::move(server).value();
  Say("Prometheus metrics on http://" + cfg_.metrics.substr(0, cfg_.metrics.rfind(':')) + ":" +
      std::to_string(metrics_server_->port()) + "/metrics");
  return true;
}

bool Daemon::WriteReady() {
  if (cfg_.ready_file.empty()) return true;
  if (vigil::Status st = WriteReadyFile(cfg_.ready_file, module_.commit,
                                        metrics_server_ ? metrics_server_->port() : 0);
      !st.ok()) {
    Say(st.ToString());
    return false;
  }
  return true;
}

// At once, so the files on disk describe this run (e.g. no open events of
// another module instance left for a journal append to extend).
bool Daemon::SaveAtStart() {
  if (vigil::Status st = SaveState(); !st.ok()) {
    Say("saving state: " + st.ToString());
    return false;
  }
  // GET_INFO after every poll: the module's seq and log fill for the stall
  // check and the metrics, and the TRIM that keeps its log from filling up.
  daemon::TrimOptions topt;
  topt.fill_fraction = cfg_.trim_fill;
  trimmer_.emplace([this](uint64_t before) { return module_side_->device.Trim(before); }, topt);
  return true;
}

vigil::Status Daemon::SaveState() {
  if (!saved_->dir) return vigil::Status::Ok();
  daemon::StateDir& state = *saved_->dir;
  if (!pending_log_bytes_.empty()) {
    const std::string& log_file = module_side_->log_file;
    VIGIL_RETURN_IF_ERROR(state.Append(log_file, pending_log_bytes_));  // fdatasync
    pending_log_bytes_.clear();
  }
  durable_log_seq_ = log_saved_seq_;
  // A failure here does not keep the verifier's state from being saved.
  vigil::Status baselines_saved = vigil::Status::Ok();
  if (baselines_due_) {
    baselines_due_ = false;  // after a failure, tried again at the next interval
    // In pieces: with 10k agents the text is tens of MB.
    const uint64_t started = ClockNs(CLOCK_MONOTONIC);
    baselines_saved = state.WriteAtomicPieces(daemon::kBaselinesFile,
                                              [&](const daemon::StateDir::PieceWriter& write) {
                                                return pipe_->store().SerializeTo(write);
                                              });
    last_baselines_save_ns_ = ClockNs(CLOCK_MONOTONIC) - started;
  }
  if (vigil::verify::StreamVerifier* v = pipe_->verifier()) {
    sink_->journal().clear();  // the snapshot below holds every open event
    daemon::VerifierState vs;
    vs.anchor = v->anchor();
    vs.log_saved_seq = log_saved_seq_;
    vs.agent_names = pipe_->AgentNames();
    vs.saved_at_ns = ClockNs(CLOCK_REALTIME);
    VIGIL_RETURN_IF_ERROR(
        state.WriteAtomic(daemon::kVerifierFile, daemon::SerializeVerifierState(vs)));
    VIGIL_RETURN_IF_ERROR(
        state.WriteAtomic(daemon::kOpenEventsFile, daemon::SerializeOpenEvents(v->OpenEvents())));
    // Only now may TRIM drop what comes before this anchor's checkpoint.
    saved_anchor_log_seq_ = vs.anchor.checkpoint_log_seq;
  }
  return baselines_saved;
}

void Daemon::FeedLog(std::vector<vigil::records::Record>& records) {
  const bool keep = module_side_ && !module_side_->log_file.empty();
  for (vigil::records::Record& r : records) {
    if (keep && r.seq() > log_saved_seq_) {
      pending_log_bytes_.append(reinterpret_cast<const char*>(r.bytes().data()), r.bytes().size());
      log_saved_seq_ = r.seq();
    }
    pipe_->OnLog(std::move(r));
  }
}

void Daemon::ReadLog() {
  if (!module_side_) return;
  auto bytes = module_side_->device.ReadAvailable();
  if (!bytes.ok()) {
    pipe_->OnLogError(bytes.status().ToString());
    return;
  }
  if (bytes->empty()) return;
  // What decodes before a bad record is still the module's log: judged
  // first, then the error marks whatever is still undecided.
  vigil::records::StreamPrefix prefix = vigil::records::DecodeStreamPrefix(*bytes);
  FeedLog(prefix.records);
  if (!prefix.stopped.ok()) {
    pipe_->OnLogError("the module's log stream does not decode " + prefix.stopped.message());
  }
}

// Without state nothing is saved, so nothing may be trimmed.
void Daemon::PollModule(uint64_t now) {
  auto got = module_side_->device.GetInfo();
  if (!got.ok()) {
    if (!std::exchange(info_error_said_, true)) Say(got.status().ToString());
    return;
  }
  pipe_->OnModuleInfo(*got);
  if (!saved_->dir || cfg_.trim_fill >= 1.0 || now < next_trim_try_ns_ || !trimmer_->Due(*got)) {
    return;
  }
  vigil::verify::StreamVerifier* v = pipe_->verifier();
  if (v == nullptr) return;
  // Save first when that lets the cut move: the cut never passes what is
  // on disk (the log records and the anchor in verifier.json).
  if (daemon::TrimBefore(v->anchor().checkpoint_log_seq, log_saved_seq_, got->log_first_seq)
          .value_or(0) >
      daemon::TrimBefore(saved_anchor_log_seq_, durable_log_seq_, got->log_first_seq).value_or(0)) {
    if (vigil::Status st = SaveState(); !st.ok()) {
      Say("saving state before TRIM: " + st.ToString());
      next_trim_try_ns_ = now + 1'000'000'000;
      return;
    }
  }
  const daemon::LogTrimmer::Outcome o =
      trimmer_->MaybeTrim(*got, saved_anchor_log_seq_, durable_log_seq_);
  using Kind = daemon::LogTrimmer::Outcome::Kind;
  switch (o.kind) {
    case Kind::kTrimmed:
      pipe_->CountTrimmed(o.trimmed);
      if (cfg_.verbose) {
        Say("trimmed " + std::to_string(o.trimmed) +
            " records of the module's log before log seq " + std::to_string(o.before_seq));
      }
      break;
    case Kind::kRetryLater:
      next_trim_try_ns_ = now + 200'000'000;
      break;
    case Kind::kSealed:
      Say("the module is sealed: no more TRIMs (" + o.why + ")");
      break;
    case Kind::kError:
      Say("TRIM: " + o.why);
      next_trim_try_ns_ = now + 5'000'000'000ull;
      break;
    case Kind::kNothing:
      // Due but nothing saved and decided to drop yet: the stall check
      // reports it if verification cannot go on.
      next_trim_try_ns_ = now + 1'000'000'000;
      break;
  }
}

// Once a second: what root did to our BPF objects (foreign programs on
// our maps, a second link, the activation flag, removed pins), reported
// once each while it holds.
void Daemon::Audit(uint64_t now) {
  if (now < next_audit_ns_) return;
  next_audit_ns_ = now + 1'000'000'000;
  std::set<std::string> still;
  for (const vigil::bpf::AuditFinding& f : collector_->Audit()) {
    const std::string kind(vigil::bpf::AuditKindName(f.kind));
    const std::string key = kind + "\n" + f.detail;
    still.insert(key);
    if (audit_open_.count(key) == 0) pipe_->OnAudit(kind, f.detail);
  }
  audit_open_ = std::move(still);
}

void Daemon::MirrorCounters() {
  auto c = collector_->ReadCounters();
  if (!c.ok() || bpf_drops_ == nullptr || bpf_errors_ == nullptr) return;
  for (unsigned t = 1; t < c->drops.size(); ++t) {
    bpf_drops_->Set({std::string(vigil::records::TypeName(static_cast<uint16_t>(t)))},
                    static_cast<double>(c->drops[t]));
  }
  for (unsigned i = 0; i < c->errors.size(); ++i) {
    bpf_errors_->Set({vigil::bpf::BpfErrorName(i)}, static_cast<double>(c->errors[i]));
  }
}

void Daemon::Loop() {
  std::ostream& out = outputs_->out();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(cfg_.duration_s));
  const uint64_t save_every_ns = static_cast<uint64_t>(cfg_.state_interval_s * 1e9);
  uint64_t next_save_ns = ClockNs(CLOCK_MONOTONIC) + save_every_ns;
  const uint64_t baselines_every_ns = static_cast<uint64_t>(cfg_.baseline_interval_s * 1e9);
  uint64_t next_baselines_ns = ClockNs(CLOCK_MONOTONIC) + baselines_every_ns;
  uint64_t next_status_ns = 0;
  while (!g_stop) {
    if (cfg_.duration_s > 0 && std::chrono::steady_clock::now() >= deadline) break;
    if (vigil::Status st = collector_->Poll(100); !st.ok()) {
      Say(st.ToString());
      rc_ = kExitError;
      break;
    }
    // At once: what follows (the log, PCR reads from the TPM) can take a
    // while, and a SIGKILL then must not lose what was just consumed.
    std::string& journal = sink_->journal();
    if (saved_->dir && !journal.empty()) {
      if (vigil::Status st = saved_->dir->Append(daemon::kOpenEventsFile, journal, false);
          !st.ok()) {
        Say("journal: " + st.ToString());
      }
      journal.clear();
    }
    ReadLog();
    const uint64_t now = ClockNs(CLOCK_MONOTONIC);
    if (module_side_) PollModule(now);
    Audit(now);
    pipe_->Tick(now, ClockNs(CLOCK_REALTIME));
    MirrorCounters();
    out.flush();
    if (!out) g_stop = 1;
    notifier_.Tick(now);
    if (now >= next_status_ns) {
      next_status_ns = now + 2'000'000'000ull;
      notifier_.Status(StatusLine());
    }
    if (now >= next_baselines_ns) {
      baselines_due_ = true;
      // Saving is at most 2% of the time, however large the store grows.
      next_baselines_ns = now + std::max(baselines_every_ns, 50 * last_baselines_save_ns_);
    }
    if (now >= next_save_ns || baselines_due_) {
      next_save_ns = now + save_every_ns;
      if (vigil::Status st = SaveState(); !st.ok()) Say("saving state: " + st.ToString());
    }
  }
}

std::string Daemon::StatusLine() {
  const EventSink::Counts& counts = sink_->counts();
  std::string line = "events " + std::to_string(counts.events);
  const vigil::verify::StreamVerifier* v = pipe_->verifier();
  if (v == nullptr) return line + ", not attested (no module)";
  const auto& c = v->counters();
  uint64_t other = 0;
  for (size_t i = 0; i < vigil::verify::kVerdictCount; ++i) {
    if (static_cast<vigil::verify::Verdict>(i) != vigil::verify::Verdict::kVerified) {
      other += c.verdicts[i];
    }
  }
  line += "; checkpoints verified " +
          std::to_string(c.verdicts[static_cast<size_t>(vigil::verify::Verdict::kVerified)]) +
          ", other " + std::to_string(other) + "; alerts " + std::to_string(pipe_->alerts());
  return line;
}

void Daemon::Shutdown() {
  std::ostream& out = outputs_->out();
  // Detach first so nothing is submitted after the drain, then drain, then
  // read the counters: every committed record reaches the output.
  collector_->Detach();
  if (vigil::Status st = collector_->Drain(); !st.ok()) {
    Say(st.ToString());
    rc_ = kExitError;
  }
  ReadLog();
  pipe_->Tick(ClockNs(CLOCK_MONOTONIC), ClockNs(CLOCK_REALTIME));
  // With a state directory, undecided checkpoints wait for the next start;
  // without one they are decided now, missing events counting as loss.
  if (!saved_->dir) pipe_->Finish();
  MirrorCounters();
  baselines_due_ = true;
  if (vigil::Status st = SaveState(); !st.ok()) {
    Say("saving state: " + st.ToString());
    rc_ = kExitError;
  }
  out.flush();

  const EventSink::Counts& counts = sink_->counts();
  auto counters = collector_->ReadCounters();
  std::cerr << "vigild: summary events=" << counts.events << " exec=" << counts.exec
            << " exit=" << counts.exit << " fork=" << counts.fork << " agent=" << counts.agent
            << " sample=" << counts.sample << " committed=" << counts.committed
            << " uncommitted=" << counts.uncommitted << " decode_errors=" << counts.decode_errors
            << " format_errors=" << pipe_->format_errors();
  if (outputs_->raw_fd().valid())
    std::cerr << " raw_out_skipped_uncommitted=" << counts.raw_skipped;
  if (counters.ok()) {
    std::cerr << " drops=" << counters->TotalDrops();
    for (unsigned i = 0; i < counters->errors.size(); ++i) {
      std::cerr << " " << vigil::bpf::BpfErrorName(i) << "=" << counters->errors[i];
    }
  } else {
    std::cerr << " drops=unknown (" << counters.status().ToString() << ")";
    rc_ = kExitError;
  }
  std::cerr << " module=" << (module_.commit ? 1 : 0);
  if (const vigil::verify::StreamVerifier* v = pipe_->verifier()) {
    const auto& c = v->counters();
    for (size_t i = 0; i < vigil::verify::kVerdictCount; ++i) {
      std::cerr << " " << vigil::verify::VerdictName(static_cast<vigil::verify::Verdict>(i)) << "="
                << c.verdicts[i];
    }
    std::cerr << " chained=" << c.chained << " late=" << c.late << " duplicates=" << c.duplicates
              << " conflicts=" << c.conflicts;
  } else {
    std::cerr << " unattested=" << counts.events;
  }
  std::cerr << " alerts=" << pipe_->alerts() << "\n";
  if (!out) {
    Say("writing to " + outputs_->name() + " failed");
    rc_ = kExitError;
  }
  if (!cfg_.ready_file.empty()) ::unlink(cfg_.ready_file.c_str());
  if (sink_->raw_errors() != 0) {
    Say(std::to_string(sink_->raw_errors()) + " events could not be written to " + cfg_.raw_out);
    rc_ = kExitError;
  }
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
  daemon::Config cfg;
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
  app.add_option("--keep-instance-logs", cfg.keep_instance_logs,
                 "Saved logs of module instances (one per boot or load) kept in the state "
                 "directory, the running one included; older ones are removed at start (0: "
                 "keep all)")
      ->check(CLI::Range(0u, 100000u))
      ->capture_default_str();
  app.add_option("--baseline-interval", cfg.baseline_interval_s,
                 "Save the baselines every SECONDS, or 50 times as long as the last save took "
                 "if that is longer (a large store), and at exit")
      ->check(Seconds("--baseline-interval", 0.1, 86400))
      ->capture_default_str();
  app.add_option("--metrics", cfg.metrics,
                 "Serve Prometheus metrics on this loopback HOST:PORT (empty: off)")
      ->capture_default_str();
  app.add_option("--tcti", cfg.tcti,
                 "TPM for the anchor check: the PCR replay, or PCR 10 with anchor=ima "
                 "(tpm2-tools syntax)")
      ->capture_default_str();
  app.add_flag("--no-pcr-check", cfg.no_pcr_check,
               "Do not check the anchor (PCR path, or IMA's log and PCR 10): verdicts are at "
               "best \"signed\"");
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
  if (auto exit_code = vigil::cli::Parse(app, argc, argv)) return *exit_code;
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
    return Daemon(cfg).Run();
  } catch (const std::exception& e) {
    std::cerr << "vigild: " << e.what() << "\n";
    return kExitError;
  }
}
