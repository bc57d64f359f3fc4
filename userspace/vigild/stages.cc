#include "stages.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

#include "liveness.h"
#include "vigil/anchor_check.h"
#include "vigil/digest.h"
#include "vigil/format.h"

namespace vigil::daemon {

namespace {

// A Status that stops vigild: `line` is all that is said.
Status Stop(const Status& why, const std::string& line) { return Status::Error(why.code(), line); }

// Loads one state file through `parse`, or explains why vigild stops. With
// --reset-state a bad file is moved aside (named in the message) instead.
// `parse` takes the file's text, or (fd, size) to stream a large one.
template <typename T, typename Parse>
Result<std::optional<T>> LoadState(StateDir& dir, const std::string& name, bool reset,
                                   Parse parse) {
  std::optional<Result<T>> parsed;
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
    return Status::Error(parsed->status().code(),
                         "state file " + where + " is unusable: " + parsed->status().message() +
                             "; it was left as it is. Fix or remove it, or start with "
                             "--reset-state to move it aside");
  }
  auto aside = dir.MoveAside(name);
  if (!aside.ok()) return aside.status();
  Say("--reset-state: " + where + " was unusable (" + parsed->status().message() + "); moved to " +
      dir.path() + "/" + *aside);
  return std::optional<T>();
}

Result<crypto::Sha256Digest> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "open " + path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return crypto::Sha256(
      {std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size())});
}

}  // namespace

// ---- Outputs ---------------------------------------------------------------

Outputs::Outputs(std::unique_ptr<std::ofstream> file, std::string name, LineStamper stamper,
                 UniqueFd raw_fd)
    : file_(std::move(file)),
      stdout_(&std::cout),
      name_(std::move(name)),
      stamper_(std::move(stamper)),
      raw_fd_(std::move(raw_fd)) {}

Result<Outputs> Outputs::Open(const Config& cfg) {
  std::unique_ptr<std::ofstream> file;
  if (cfg.output != "-") {
    file = std::make_unique<std::ofstream>(cfg.output, std::ios::app);
    if (!*file) {
      const Status st = Status::FromErrno(errno, "open --output " + cfg.output);
      return Stop(st, st.ToString());
    }
  }
  // Every JSON line names the host, the boot and the time it was written.
  const HostIdentity identity = ReadHostIdentity();
  for (const std::string& problem : identity.problems) {
    Say(problem + ": the JSON lines carry null there");
  }
  UniqueFd raw_fd;
  if (!cfg.raw_out.empty()) {
    raw_fd.Reset(::open(cfg.raw_out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!raw_fd.valid()) {
      const Status st = Status::FromErrno(errno, "open " + cfg.raw_out);
      return Stop(st, st.ToString());
    }
  }
  return Outputs(std::move(file), cfg.output == "-" ? "stdout" : cfg.output, LineStamper(identity),
                 std::move(raw_fd));
}

// ---- SavedState ------------------------------------------------------------

Result<SavedState> SavedState::Load(const Config& cfg, baseline::BaselineStore fresh) {
  SavedState s;
  if (cfg.no_state) {
    s.store.emplace(std::move(fresh));
    return s;
  }
  auto dir = StateDir::Open(cfg.state_dir);
  if (!dir.ok()) return Stop(dir.status(), dir.status().ToString());
  s.dir.emplace(std::move(dir).value());
  const baseline::BaselineConfig bcfg = fresh.config();
  auto b = LoadState<baseline::BaselineStore>(
      *s.dir, kBaselinesFile, cfg.reset_state,
      [&](int fd, uint64_t size) -> Result<baseline::BaselineStore> {
        // fclose closes a duplicate; the state directory closes its own.
        const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(dup < 0 ? nullptr : ::fdopen(dup, "r"),
                                                             &std::fclose);
        if (!file) {
          const int err = errno;
          if (dup >= 0) ::close(dup);
          return Status::FromErrno(err, "reading " + std::string(kBaselinesFile));
        }
        auto parsed = baseline::BaselineStore::ParseFile(file.get(), size, bcfg);
        if (parsed.ok()) return std::move(parsed).value();
        return Status::Error(ErrorCode::kMalformed, parsed.status().ToString());
      });
  if (!b.ok()) return b.status();
  if (b->has_value()) s.store.emplace(std::move(**b));
  auto v = LoadState<VerifierState>(*s.dir, kVerifierFile, cfg.reset_state, ParseVerifierState);
  if (!v.ok()) return v.status();
  s.verifier = std::move(v).value();
  if (s.verifier) {
    const uint64_t anchor_seq = s.verifier->anchor.last_seq;
    auto o = LoadState<OpenEvents>(
        *s.dir, kOpenEventsFile, cfg.reset_state,
        [&](const std::string& bytes) { return ParseOpenEvents(bytes, anchor_seq); });
    if (!o.ok()) return o.status();
    if (o->has_value()) {
      s.open_events = std::move((*o)->events);
      if ((*o)->dropped_tail_bytes != 0) {
        Say(std::string(kOpenEventsFile) + ": dropped a record cut short at the end (" +
            std::to_string((*o)->dropped_tail_bytes) +
            " bytes, an interrupted append); its seq will show as missing if nothing else "
            "delivers it");
      }
    }
  }
  Say("state in " + cfg.state_dir + ": " +
      (s.store ? std::to_string(s.store->agent_count()) + " agent baselines loaded"
               : std::string("no saved baselines")) +
      (s.verifier ? ", verifier anchor at seq " + std::to_string(s.verifier->anchor.last_seq) +
                        " with " + std::to_string(s.open_events.size()) + " open events"
                  : std::string(", no saved verifier state")));
  if (!s.store) s.store.emplace(std::move(fresh));
  return s;
}

// ---- ModuleSide ------------------------------------------------------------

Result<ModuleSide> ModuleSide::Connect(const Config& cfg, SavedState& saved) {
  auto dev = device::VigilDevice::Open();
  if (!dev.ok()) {
    return Stop(dev.status(), "the module's kfuncs are there but " + dev.status().ToString());
  }
  auto version = dev->GetVersion();
  if (!version.ok()) return Stop(version.status(), version.status().ToString());
  if (Status st = device::CheckAbi(*version); !st.ok()) return Stop(st, st.ToString());
  auto got = dev->GetInfo();
  if (!got.ok()) return Stop(got.status(), got.status().ToString());
  const vigil_info info = *got;
  auto bytes = dev->ReadAvailable();
  if (!bytes.ok()) return Stop(bytes.status(), bytes.status().ToString());
  auto log = records::DecodeStream(*bytes);
  if (!log.ok()) {
    return Stop(log.status(), "the module's log does not decode: " + log.status().ToString());
  }
  ModuleSide m{
      std::move(dev).value(), info, std::move(log).value(), std::nullopt, std::nullopt, {}, 0};
  bool same_instance = SameInstance(saved.verifier ? &*saved.verifier : nullptr, info);
  // The module's log as read, one file per module instance. The file, not
  // verifier.json, says how far it goes: it may be ahead (appended, then
  // killed before the save), end in a record cut short, or be gone. The
  // scan also keeps the saved anchor's checkpoint, which the module's log
  // may no longer hold.
  std::optional<records::Record> saved_anchor_record;
  if (saved.dir) {
    StateDir& state = *saved.dir;
    m.log_file = LogFileName(std::span<const uint8_t>(info.instance_id));
    const uint64_t expected = same_instance ? saved.verifier->log_saved_seq : 0;
    const uint64_t keep = same_instance ? saved.verifier->anchor.checkpoint_log_seq : 0;
    auto scan = LoadState<SavedLog>(state, m.log_file, cfg.reset_state, [&](int fd, uint64_t) {
      return ScanSavedLogFile(fd, std::span<const uint8_t>(info.instance_id), 1 << 20, keep);
    });
    if (!scan.ok()) return scan.status();
    if (*scan && (*scan)->complete_bytes != (*scan)->scanned_bytes) {
      Say(m.log_file + ": dropped a record cut short at the end (" +
          std::to_string((*scan)->scanned_bytes - (*scan)->complete_bytes) +
          " bytes, an interrupted append); it is read again from the module");
      if (Status st = state.Truncate(m.log_file, (*scan)->complete_bytes); !st.ok()) {
        return Stop(st, st.ToString());
      }
    }
    m.log_saved_seq = *scan ? (*scan)->last_seq : 0;
    // Each boot or module load starts a file; without a bound they pile up.
    auto pruned = PruneInstanceLogs(state, m.log_file, cfg.keep_instance_logs);
    if (!pruned.ok()) {
      Say("keeping old instances' logs: " + pruned.status().ToString());
    } else if (!pruned->empty()) {
      std::string names;
      for (const std::string& n : *pruned) names += (names.empty() ? "" : ", ") + n;
      Say("removed the saved logs of " + std::to_string(pruned->size()) +
          " older module instances (--keep-instance-logs " +
          std::to_string(cfg.keep_instance_logs) + "): " + names);
    }
    if (*scan) saved_anchor_record = (*scan)->kept;
    if (m.log_saved_seq < expected) {
      Say(m.log_file + " ends at log seq " + std::to_string(m.log_saved_seq) +
          " but verifier.json says " + std::to_string(expected) +
          " was saved: the rest is written again from the module's log (records the module "
          "trimmed since are not in it)");
    }
  }
  // The saved anchor must be a checkpoint the module wrote (in its log, or
  // in the saved log when trimmed): an edited verifier.json could
  // otherwise skip checkpoints silently.
  if (same_instance) {
    Status st = CheckSavedAnchor(
        saved.verifier->anchor, info, m.initial_log,
        [&](uint64_t) -> Result<std::optional<records::Record>> { return saved_anchor_record; });
    if (!st.ok() && !cfg.reset_state) {
      return Stop(st, st.message() + ". Refusing to verify from it: fix or remove " +
                          cfg.state_dir + "/" + kVerifierFile +
                          ", or start with --reset-state to move it aside");
    }
    if (!st.ok()) {
      std::string moved;
      for (const char* name : {kVerifierFile, kOpenEventsFile}) {
        auto aside = saved.dir->MoveAside(name);
        if (aside.ok()) moved += std::string(moved.empty() ? "" : ", ") + name + " to " + *aside;
      }
      Say("--reset-state: " + st.message() + "; moved " + (moved.empty() ? "nothing" : moved) +
          " in " + cfg.state_dir + ", dropped " + std::to_string(saved.open_events.size()) +
          " saved open events; verification starts from the module's log");
      saved.verifier.reset();
      saved.open_events.clear();
      same_instance = false;
    }
  }
  StartPlan plan = ChooseStart(info, m.initial_log, saved.verifier ? &*saved.verifier : nullptr,
                               saved.open_events.size());
  for (const std::string& line : plan.messages) Say(line);
  if (!plan.resumed && saved.verifier) {
    // Another instance's: its open events and names mean nothing here.
    saved.open_events.clear();
    saved.verifier->log_saved_seq = 0;
    saved.verifier->agent_names.clear();
  }
  m.instance_change = std::move(plan.instance_change);

  verify::VerifierOptions vopt;
  vopt.started_after_seq = plan.started_after_seq;
  vopt.reorder_window = cfg.reorder_window;
  vopt.checkpoint_wait_ns = static_cast<uint64_t>(cfg.checkpoint_wait_s * 1e9);
  const bool tpm = (info.tpm_flags & VIGIL_TPM_PRESENT) != 0;
  vopt.module_anchor = info.anchor;
  if (tpm && !cfg.no_pcr_check) {
    if (info.anchor == VIGIL_ANCHOR_IMA) {
      vopt.ima_check = anchor::Shared(std::make_shared<anchor::ImaAnchorCheck>(cfg.tcti, info));
    } else {
      vopt.pcr_check = anchor::Shared(
          std::make_shared<anchor::PcrChecker>(anchor::TpmPcrSource(cfg.tcti), info));
    }
  }
  const std::string checked = info.anchor == VIGIL_ANCHOR_IMA
                                  ? "IMA's log replayed to PCR 10 of the TPM at " + cfg.tcti
                                  : "PCR replay against the TPM at " + cfg.tcti;
  Say(std::string("anchor check: ") +
      (cfg.no_pcr_check ? "off (--no-pcr-check): verdicts are at best \"signed\""
       : tpm            ? checked
                        : "none (the module runs without a TPM)"));
  m.verifier.emplace(plan.anchor, std::move(vopt));
  return m;
}

// ---- Self-measurement ------------------------------------------------------

Status MeasureSelf(const Config& cfg, device::VigilDevice& device, Outputs& outputs) {
  auto exe = HashFile("/proc/self/exe");
  const std::string canonical = cfg.Canonical();
  auto conf = crypto::Sha256({std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(canonical.data()), canonical.size())});
  if (!exe.ok() || !conf.ok()) {
    const Status& why = exe.ok() ? conf.status() : exe.status();
    return Stop(why, "cannot hash the binary or the configuration: " + why.ToString());
  }
  for (const auto& [name, digest] :
       {std::pair<std::string, crypto::Sha256Digest>{"vigild", *exe}, {"vigild-config", *conf}}) {
    auto log_seq = device.Measure(name, digest);
    if (!log_seq.ok()) {
      return Stop(log_seq.status(), "MEASURE " + name + ": " + log_seq.status().ToString());
    }
    std::string line = format::Dump(nlohmann::json{{"type", "measure"},
                                                   {"name", name},
                                                   {"digest", crypto::ToHex(digest)},
                                                   {"log_seq", *log_seq}});
    outputs.stamper().Stamp(line);
    outputs.out() << line << '\n';
  }
  Say("measured the binary and configuration " + canonical + " into pcr_config");
  return Status::Ok();
}

}  // namespace vigil::daemon
