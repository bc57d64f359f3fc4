// vigilctl: talk to the vigil module (/dev/vigil) and the TPM.
//
//   vigilctl status [--json]       module version and info (GET_VERSION, GET_INFO)
//   vigilctl log    [--json] [--file F] [--save F]   the module's log records
//   vigilctl replay [--json] [--tcti T] [--pcr config|events|all]
//                   replay the log into pcr_config / pcr_events per bank and
//                   compare with the TPM
//   vigilctl verify-chain --events F [--start-seq N --start-head HEX] [--file LOG]
//                   recompute the hash chain over events saved by
//                   `vigild --raw-out` (plus the log's LOG_EVENT copies) and
//                   compare with the log's checkpoints and the module's chain
//                   head; verify every checkpoint's ECDSA signature. Exit 0
//                   only when the last event is covered by a checkpoint
//                   whose signature verifies (any checkpoint without a key:
//                   degraded mode, reported as UNSIGNED) or by the module's
//                   current chain head
//
// Exit codes (all subcommands):
//   0 success (replay: every compared PCR matches)
//   1 runtime error (ioctl, read, TPM or hashing failure)
//   2 usage error
//   3 vigil module not loaded (/dev/vigil missing)
//   4 incompatible module ABI major version
//   5 replay mismatch (a PCR differs from the replayed log)
//   6 malformed log (a record failed validation) or baseline state (wrong
//     format or version, corrupt or truncated; the JSON pointer is named)
//   7 vigild not running (agent commands: its pinned maps are missing)
//
//   vigilctl agent run --name N -- CMD...   run CMD as agent N (this process
//                   is tracked, then execs CMD: the exec is recorded)
//   vigilctl agent track --pid P --name N   adopt a running process tree
//   vigilctl agent track --cgroup PATH --name N   adopt a cgroup v2 directory
//   vigilctl agent list [--json]            agents, their processes and cgroups
//   vigilctl agent untrack --name N         stop recording agent N
//
//   vigilctl baseline show [--state-dir D] [--agent N] [--role R] [--json]
//                   the per-agent baselines vigild saved in D/baselines.json
//                   (default /var/lib/vigil), with the pooled statistics per role
//   vigilctl baseline export [--state-dir D] [-o FILE]
//                   the validated state, re-serialized, to stdout or FILE
//                   (written atomically, mode 0600); the state file is never
//                   modified. No saved state (missing D or file): exit 1
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "baseline_cmd.h"
#include "vigil/agents.h"
#include "vigil/chain.h"
#include "vigil/device.h"
#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/records.h"
#include "vigil/replay.h"
#include "vigil/signature.h"
#include "vigil/status.h"
#include "vigil/tpm.h"

namespace {

using nlohmann::json;
using vigil::ErrorCode;
using vigil::Result;
using vigil::Status;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoModule = 3;
constexpr int kExitAbi = 4;
constexpr int kExitMismatch = 5;
constexpr int kExitMalformed = 6;
constexpr int kExitNoDaemon = 7;
constexpr uint32_t kMaxPcrIndex = 23;  // PCRs 0..23 of a PC client TPM

// The device path (--device), /dev/vigil unless a test says otherwise.
std::string g_device = VIGIL_DEVICE_PATH;

// Prints the error and maps it to the documented exit code.
int Fail(const Status& st) {
  if (st.code() == ErrorCode::kNotFound && st.origin() == vigil::ErrorOrigin::kErrno &&
      st.origin_code() == ENOENT && st.message().rfind("open " + g_device, 0) == 0) {
    std::cerr << "vigilctl: vigil module not loaded (" << g_device << " missing)\n";
    return kExitNoModule;
  }
  std::cerr << "vigilctl: " << st.ToString() << "\n";
  switch (st.code()) {
    case ErrorCode::kIncompatible:
      return kExitAbi;
    case ErrorCode::kMismatch:
      return kExitMismatch;
    case ErrorCode::kTruncated:
    case ErrorCode::kMalformed:
    case ErrorCode::kUnsupported:
      return kExitMalformed;
    default:
      return kExitError;
  }
}

// Opens the device and refuses an incompatible ABI before anything else.
Result<vigil::device::VigilDevice> OpenChecked(vigil_version* version_out) {
  VIGIL_ASSIGN_OR_RETURN(vigil::device::VigilDevice dev,
                         vigil::device::VigilDevice::Open(g_device));
  VIGIL_ASSIGN_OR_RETURN(vigil_version version, dev.GetVersion());
  VIGIL_RETURN_IF_ERROR(vigil::device::CheckAbi(version));
  if (version_out != nullptr) *version_out = version;
  return dev;
}

Result<std::vector<uint8_t>> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "open " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

Status WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::FromErrno(errno, "create " + path);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) return Status::FromErrno(errno, "write " + path);
  return Status::Ok();
}

// ---- status ---------------------------------------------------------------

int CmdStatus(bool as_json) {
  vigil_version version;
  auto dev = OpenChecked(&version);
  if (!dev.ok()) return Fail(dev.status());
  auto info = dev->GetInfo();
  if (!info.ok()) return Fail(info.status());
  if (as_json) {
    json j = vigil::format::VersionToJson(version);
    j["info"] = vigil::format::InfoToJson(*info);
    std::cout << vigil::format::Dump(j, 2) << "\n";
    return kExitOk;
  }
  const json i = vigil::format::InfoToJson(*info);
  std::cout << "vigil module " << vigil::records::FieldString(version.module_version) << " (ABI "
            << version.abi_major << "." << version.abi_minor << ")\n";
  std::cout << "TPM: " << (i["tpm_present"].get<bool>() ? "present" : "absent (degraded mode)")
            << ", checkpoint key: " << (i["tpm_key"].get<bool>() ? "yes" : "no")
            << ", tpm_required: " << (i["tpm_required"].get<bool>() ? "yes" : "no") << "\n";
  std::cout << "PCR banks:";
  for (const auto& b : i["banks"]) std::cout << " " << b.get<std::string>();
  if (i["banks"].empty()) std::cout << " none";
  std::cout << "\n";
  std::cout << "pcr_config=" << info->pcr_config << " pcr_events=" << info->pcr_events
            << " anchor=" << i["anchor"].get<std::string>() << "\n";
  std::cout << "checkpoint every " << info->checkpoint_ms << " ms or " << info->checkpoint_events
            << " events\n";
  std::cout << "instance id: " << i["instance_id"].get<std::string>() << "\n";
  std::cout << "chain: head " << i["chain_head"].get<std::string>() << " next_seq "
            << info->next_seq << " committed " << info->committed << " dropped " << info->dropped
            << " busy " << info->busy << " rejected " << info->rejected << "\n";
  std::cout << "checkpoints: signed " << info->checkpoints_signed << " unsigned "
            << info->checkpoints_unsigned << "\n";
  std::cout << "log: " << info->log_records << " records, " << info->log_bytes << " bytes (max "
            << info->log_max_bytes << "), seq " << info->log_first_seq << ".."
            << (info->log_next_seq == 0 ? 0 : info->log_next_seq - 1) << ", refused "
            << info->log_refused << "\ntpm errors: " << info->tpm_errors << "\n";
  return kExitOk;
}

// ---- seal -----------------------------------------------------------------

// The module's final checkpoint, then the whole log read (and saved): until
// a reader has read past the final records the module refuses rmmod.
int CmdSeal(const std::string& save) {
  auto dev = OpenChecked(nullptr);
  if (!dev.ok()) return Fail(dev.status());
  auto seal = dev->Seal();
  if (!seal.ok()) return Fail(seal.status());
  auto bytes = dev->ReadAvailable();
  if (!bytes.ok()) return Fail(bytes.status());
  if (!save.empty()) {
    if (Status st = WriteFile(save, *bytes); !st.ok()) return Fail(st);
  }
  auto info = dev->GetInfo();
  if (!info.ok()) return Fail(info.status());
  std::cout << "sealed: final checkpoint at log seq " << seal->cp.hdr.seq << " (chain seq "
            << seal->cp.last_seq << "), log read up to " << info->log_next_seq << " of "
            << seal->log_end << (save.empty() ? "" : ", saved to " + save) << "\n";
  if (info->log_next_seq < seal->log_end) {
    return Fail(Status::Error(vigil::ErrorCode::kInternal, "the log was not read to its end"));
  }
  std::cout << "the module can be unloaded now (rmmod vigil)\n";
  return kExitOk;
}

// ---- log ------------------------------------------------------------------

Result<std::vector<uint8_t>> ReadLogBytes(const std::string& file) {
  if (!file.empty()) return ReadFile(file);
  VIGIL_ASSIGN_OR_RETURN(vigil::device::VigilDevice dev, OpenChecked(nullptr));
  return dev.ReadAvailable();
}

int CmdLog(bool as_json, const std::string& file, const std::string& save) {
  auto bytes = ReadLogBytes(file);
  if (!bytes.ok()) return Fail(bytes.status());
  if (!save.empty()) {
    if (Status st = WriteFile(save, *bytes); !st.ok()) return Fail(st);
  }
  auto recs = vigil::records::DecodeStream(*bytes);
  if (!recs.ok()) return Fail(recs.status());
  for (const auto& rec : *recs) {
    if (as_json) {
      std::cout << vigil::format::Dump(vigil::format::RecordToJson(rec)) << "\n";
    } else {
      std::cout << vigil::format::RecordToText(rec) << "\n";
    }
  }
  return kExitOk;
}

// ---- replay ---------------------------------------------------------------

struct PcrCheck {
  std::string which;  // "config" or "events"
  uint32_t pcr = 0;
  uint16_t alg = 0;
  vigil::crypto::Digest replayed;
  vigil::crypto::Digest tpm;
  vigil::replay::PcrComparison cmp;
};

struct ReplayOutcome {
  vigil::replay::LogReplay replay;
  std::vector<PcrCheck> checks;
  bool all_match = false;
  bool any_pending = false;
};

struct ReplayPlan {
  bool config = true;
  bool events = true;
  uint32_t pcr_config = 16;
  uint32_t pcr_events = 23;
};

// One attempt: PCRs first, then the log. The module appends to the log
// before it extends, so a log read after the PCRs covers every extend the
// PCRs hold (IMA's rule); extra tail records show up as "pending".
Result<ReplayOutcome> ReplayOnce(vigil::tpm::EsysContext& tpm, const ReplayPlan& plan,
                                 const std::string& file, const std::vector<uint16_t>& banks_hint) {
  std::vector<std::pair<std::string, uint32_t>> pcrs;
  if (plan.config) pcrs.emplace_back("config", plan.pcr_config);
  if (plan.events) pcrs.emplace_back("events", plan.pcr_events);

  std::vector<PcrCheck> checks;
  for (uint16_t alg : banks_hint) {
    for (const auto& [which, pcr] : pcrs) {
      PcrCheck c;
      c.which = which;
      c.pcr = pcr;
      c.alg = alg;
      VIGIL_ASSIGN_OR_RETURN(c.tpm, tpm.PcrRead(alg, pcr));
      checks.push_back(std::move(c));
    }
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadLogBytes(file));
  VIGIL_ASSIGN_OR_RETURN(std::vector<vigil::records::Record> log,
                         vigil::records::DecodeStream(bytes));
  ReplayOutcome out;
  VIGIL_ASSIGN_OR_RETURN(out.replay, vigil::replay::ReplayLog(log));
  if (out.replay.config_pcr && plan.config && *out.replay.config_pcr != plan.pcr_config) {
    return Status::Error(ErrorCode::kMismatch,
                         "the log extends PCR " + std::to_string(*out.replay.config_pcr) +
                             " but pcr_config is " + std::to_string(plan.pcr_config));
  }
  out.all_match = true;
  for (PcrCheck& c : checks) {
    const vigil::replay::BankReplay* bank = nullptr;
    for (const auto& b : out.replay.banks) {
      if (b.alg == c.alg) bank = &b;
    }
    if (bank == nullptr) {
      return Status::Error(ErrorCode::kMismatch, "the TPM has bank " +
                                                     vigil::crypto::AlgName(c.alg) +
                                                     " but the log's BASE record does not");
    }
    const auto& history = c.which == "config" ? bank->config_history : bank->events_history;
    c.replayed = history.back();
    c.cmp = vigil::replay::ComparePcr(history, c.tpm);
    out.all_match = out.all_match && c.cmp.match == vigil::replay::PcrMatch::kMatch;
    out.any_pending = out.any_pending || c.cmp.match == vigil::replay::PcrMatch::kPendingTail;
  }
  out.checks = std::move(checks);
  return out;
}

int CmdReplay(bool as_json, const std::string& tcti, const std::string& which,
              const std::string& file, std::optional<uint32_t> pcr_config,
              std::optional<uint32_t> pcr_events) {
  ReplayPlan plan;
  plan.config = which == "config" || which == "all";
  plan.events = which == "events" || which == "all";
  bool ima_anchor = false;
  if (file.empty()) {
    auto dev = OpenChecked(nullptr);
    if (!dev.ok()) return Fail(dev.status());
    auto info = dev->GetInfo();
    if (!info.ok()) return Fail(info.status());
    if ((info->tpm_flags & VIGIL_TPM_PRESENT) == 0) {
      std::cerr << "vigilctl: the module found no TPM: nothing was extended, nothing to replay\n";
      return kExitError;
    }
    plan.pcr_config = info->pcr_config;
    plan.pcr_events = info->pcr_events;
    ima_anchor = info->anchor == VIGIL_ANCHOR_IMA;
  }
  if (pcr_config) plan.pcr_config = *pcr_config;
  if (pcr_events) plan.pcr_events = *pcr_events;
  if (ima_anchor && plan.events) {
    std::cerr << "vigilctl: anchor=ima: checkpoints go to IMA's PCR, pcr_events is not compared\n";
    plan.events = false;
  }

  auto tpm = vigil::tpm::EsysContext::Open(tcti);
  if (!tpm.ok()) return Fail(tpm.status());
  auto banks = tpm->AllocatedBanks();
  if (!banks.ok()) return Fail(banks.status());

  Result<ReplayOutcome> outcome = Status::Error(ErrorCode::kInternal, "not run");
  // A checkpoint can land between the PCR read and the log read; retry a few
  // times before calling a pending tail a failure.
  for (int attempt = 0; attempt < 5; ++attempt) {
    outcome = ReplayOnce(*tpm, plan, file, *banks);
    if (!outcome.ok() || outcome->all_match || !outcome->any_pending) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!outcome.ok()) return Fail(outcome.status());
  if (outcome->checks.empty()) {
    std::cerr << "vigilctl: nothing was compared (no PCR selected"
              << (ima_anchor ? ": anchor=ima leaves only pcr_config" : "")
              << " or the TPM has no PCR bank): replay did NOT verify anything\n";
    return kExitError;
  }

  if (as_json) {
    json checks = json::array();
    for (const PcrCheck& c : outcome->checks) {
      checks.push_back(json{{"pcr_kind", c.which},
                            {"pcr", c.pcr},
                            {"alg", vigil::crypto::AlgName(c.alg)},
                            {"replayed", vigil::crypto::ToHex(c.replayed)},
                            {"tpm", vigil::crypto::ToHex(c.tpm)},
                            {"result", vigil::replay::PcrMatchName(c.cmp.match)},
                            {"pending", c.cmp.pending}});
    }
    std::cout << vigil::format::Dump(json{{"ok", outcome->all_match},
                      {"base_seq", outcome->replay.base_seq},
                      {"config_extends", outcome->replay.config_extends},
                      {"events_extends", outcome->replay.events_extends},
                      {"checks", checks}},
                     2)
              << "\n";
  } else {
    std::cout << "replay from BASE log seq " << outcome->replay.base_seq << ": "
              << outcome->replay.config_extends << " config extends, "
              << outcome->replay.events_extends << " events extends\n";
    for (const PcrCheck& c : outcome->checks) {
      std::cout << vigil::crypto::AlgName(c.alg) << " pcr_" << c.which << "[" << c.pcr << "]\n"
                << "  replayed " << vigil::crypto::ToHex(c.replayed) << "\n"
                << "  tpm      " << vigil::crypto::ToHex(c.tpm) << "\n"
                << "  " << vigil::replay::PcrMatchName(c.cmp.match);
      if (c.cmp.match == vigil::replay::PcrMatch::kPendingTail) {
        std::cout << " (" << c.cmp.pending << " logged records not yet extended)";
      }
      std::cout << "\n";
    }
    std::cout << (outcome->all_match ? "all PCRs match the log\n" : "PCRs DO NOT match the log\n");
  }
  return outcome->all_match ? kExitOk : kExitMismatch;
}

// ---- verify-chain ---------------------------------------------------------

int CmdVerifyChain(bool as_json, const std::string& events_file, const std::string& log_file,
                   std::optional<uint64_t> start_seq, const std::string& start_head_hex) {
  auto event_bytes = ReadFile(events_file);
  if (!event_bytes.ok()) return Fail(event_bytes.status());
  auto events = vigil::records::DecodeStream(*event_bytes);
  if (!events.ok()) return Fail(events.status());
  auto log_bytes = ReadLogBytes(log_file);
  if (!log_bytes.ok()) return Fail(log_bytes.status());
  auto log = vigil::records::DecodeStream(*log_bytes);
  if (!log.ok()) return Fail(log.status());

  std::optional<vigil_info> info;
  if (log_file.empty()) {
    auto dev = OpenChecked(nullptr);
    if (!dev.ok()) return Fail(dev.status());
    auto i = dev->GetInfo();
    if (!i.ok()) return Fail(i.status());
    info = *i;
  }

  vigil::crypto::Sha256Digest start_head{};
  uint64_t seq0 = start_seq.value_or(0);
  if (!start_head_hex.empty()) {
    auto bytes = vigil::crypto::FromHex(start_head_hex);
    if (!bytes.ok() || bytes->size() != start_head.size()) {
      std::cerr << "vigilctl: --start-head needs 64 hex digits\n";
      return kExitUsage;
    }
    std::copy(bytes->begin(), bytes->end(), start_head.begin());
  } else if (seq0 == 0) {
    // From the beginning: chain_0 of the instance (GET_INFO or a checkpoint).
    vigil::chain::InstanceId id{};
    bool have_id = false;
    if (info) {
      std::copy(std::begin(info->instance_id), std::end(info->instance_id), id.begin());
      have_id = true;
    }
    for (const auto& rec : *log) {
      if (auto cp = rec.As<vigil_log_checkpoint>(); cp && !have_id) {
        std::copy(std::begin(cp->instance_id), std::end(cp->instance_id), id.begin());
        have_id = true;
      }
    }
    if (!have_id) {
      std::cerr << "vigilctl: no instance id (no module and no checkpoint in the log)\n";
      return kExitError;
    }
    auto c0 = vigil::chain::InitialChain(id);
    if (!c0.ok()) return Fail(c0.status());
    start_head = *c0;
  } else {
    std::cerr << "vigilctl: --start-seq needs --start-head\n";
    return kExitUsage;
  }

  // User events committed through the ioctl reach readers as LOG_EVENT
  // copies; they belong to the same chain as the ring buffer's events.
  std::vector<vigil::records::Record> all_events = std::move(events).value();
  size_t log_copies = 0;
  for (const auto& rec : *log) {
    if (rec.type() != VIGIL_LOG_EVENT) continue;
    auto ev = vigil::records::EventFromLogCopy(rec);
    if (!ev.ok()) return Fail(ev.status());
    if (ev->seq() <= seq0) continue;
    all_events.push_back(std::move(ev).value());
    log_copies++;
  }

  // The checkpoint key: the log's KEY record and GET_INFO's must agree.
  auto is_zero = [](const uint8_t* p, size_t n) {
    return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
  };
  std::optional<vigil::crypto::EcPoint> log_key;
  for (const auto& rec : *log) {
    if (auto k = rec.As<vigil_log_key>();
        k && !(is_zero(k->x, sizeof(k->x)) && is_zero(k->y, sizeof(k->y)))) {
      vigil::crypto::EcPoint p;
      std::copy(std::begin(k->x), std::end(k->x), p.x);
      std::copy(std::begin(k->y), std::end(k->y), p.y);
      if (log_key && (std::memcmp(log_key->x, p.x, sizeof(p.x)) != 0 ||
                      std::memcmp(log_key->y, p.y, sizeof(p.y)) != 0)) {
        return Fail(Status::Error(ErrorCode::kMismatch, "the log holds two different KEY records"));
      }
      log_key = p;
    }
  }
  std::optional<vigil::crypto::EcPoint> info_key;
  if (info && (info->tpm_flags & VIGIL_TPM_KEY) != 0) {
    vigil::crypto::EcPoint p;
    std::copy(std::begin(info->key_x), std::end(info->key_x), p.x);
    std::copy(std::begin(info->key_y), std::end(info->key_y), p.y);
    info_key = p;
  }
  if (log_key && info_key &&
      (std::memcmp(log_key->x, info_key->x, sizeof(info_key->x)) != 0 ||
       std::memcmp(log_key->y, info_key->y, sizeof(info_key->y)) != 0)) {
    return Fail(Status::Error(ErrorCode::kMismatch,
                              "the log's KEY record differs from the module's key (GET_INFO)"));
  }
  const std::optional<vigil::crypto::EcPoint> key = info_key ? info_key : log_key;

  // Checkpoint structure (instance id, prev_digest links, first_seq
  // continuity, monotonic loss counters). From seq 0 the full check
  // (chain heads too) runs when the events reach the last checkpoint.
  {
    vigil::chain::InstanceId id{};
    bool have_id = false;
    if (info) {
      std::copy(std::begin(info->instance_id), std::end(info->instance_id), id.begin());
      have_id = true;
    }
    uint64_t last_cp_seq = 0;
    for (const auto& rec : *log) {
      if (auto cp = rec.As<vigil_log_checkpoint>()) {
        if (!have_id) {
          std::copy(std::begin(cp->instance_id), std::end(cp->instance_id), id.begin());
          have_id = true;
        }
        last_cp_seq = std::max<uint64_t>(last_cp_seq, cp->last_seq);
      }
    }
    if (have_id) {
      auto links = vigil::chain::VerifyCheckpointLinks(id, *log);
      if (!links.ok()) return Fail(links.status());
      uint64_t max_event_seq = 0;
      for (const auto& ev : all_events) max_event_seq = std::max(max_event_seq, ev.seq());
      if (seq0 == 0 && last_cp_seq <= max_event_seq) {
        auto full = vigil::chain::VerifyCheckpoints(id, *log, all_events);
        if (!full.ok()) return Fail(full.status());
      }
    }
  }

  // Signatures. With a key, only checkpoints whose VIGIL_SIG_OK signature
  // verifies are anchors; without one (degraded mode) checkpoints are
  // unsigned and only show the chain is consistent.
  size_t sig_verified = 0;
  size_t sig_unsigned = 0;
  size_t sig_pending = 0;
  std::vector<uint64_t> signed_cps;  // log seqs of checkpoints with a verified signature
  for (const auto& rec : *log) {
    if (rec.type() != VIGIL_LOG_CHECKPOINT) continue;
    std::optional<vigil_log_signature> sig;
    for (const auto& other : *log) {
      auto s = other.As<vigil_log_signature>();
      if (s && s->checkpoint_seq == rec.seq()) sig = s;
    }
    if (!sig) {
      sig_pending++;  // the signature follows its checkpoint in the log
      continue;
    }
    if (sig->status != VIGIL_SIG_OK || !key) {
      sig_unsigned++;
      continue;
    }
    Status st = vigil::crypto::VerifyCheckpointSignature(*key, rec, *sig);
    if (!st.ok()) return Fail(st);
    sig_verified++;
    signed_cps.push_back(rec.seq());
  }
  auto is_anchor = [&](const vigil::records::Record& cp) {
    if (!key) return true;  // degraded: consistency only, reported as unsigned
    return std::find(signed_cps.begin(), signed_cps.end(), cp.seq()) != signed_cps.end();
  };

  auto range = vigil::chain::VerifyEventRange(start_head, seq0, all_events, *log, is_anchor);
  if (!range.ok()) return Fail(range.status());

  const std::string signatures =
      key ? std::to_string(sig_verified) + " verified, " + std::to_string(sig_unsigned) +
                " unsigned, " + std::to_string(sig_pending) + " pending"
          : std::to_string(sig_verified + sig_unsigned + sig_pending) +
                " unsigned (no checkpoint key: degraded mode, nothing is signed)";

  // The module's live head is a further comparison point when it has not
  // committed anything since the last saved event.
  std::string module_head = "not compared";
  bool module_match = false;
  if (info) {
    if (info->next_seq == range->last_seq + 1) {
      module_match =
          std::equal(range->head.begin(), range->head.end(), std::begin(info->chain_head));
      module_head = module_match ? "match" : "MISMATCH";
    } else {
      module_head = "not compared (module at seq " + std::to_string(info->next_seq - 1) + ")";
    }
  }
  const bool mismatch = module_head == "MISMATCH";
  // Every event must be covered: the last one by an anchor checkpoint
  // (signed when there is a key) or by the module's current head.
  const bool covered =
      module_match || (range->events > 0 && range->anchored_last_seq == range->last_seq);
  const bool ok = !mismatch && covered;
  const std::string anchors_desc =
      std::to_string(range->anchors_checked) + (key ? " signed" : " unsigned");
  if (as_json) {
    std::cout << vigil::format::Dump(json{{"ok", ok},
                                          {"first_seq", range->first_seq},
                                          {"last_seq", range->last_seq},
                                          {"events", range->events},
                                          {"log_event_copies", log_copies},
                                          {"head", vigil::crypto::ToHex(range->head)},
                                          {"checkpoints_checked", range->checkpoints_checked},
                                          {"anchors_checked", range->anchors_checked},
                                          {"anchored_last_seq", range->anchored_last_seq},
                                          {"signed", key.has_value()},
                                          {"module_head", module_head},
                                          {"signatures_verified", sig_verified},
                                          {"signatures_unsigned", sig_unsigned},
                                          {"signatures_pending", sig_pending}},
                                     2)
              << "\n";
  } else {
    std::cout << "events seq " << range->first_seq << ".." << range->last_seq << " ("
              << range->events << " events, " << log_copies
              << " from LOG_EVENT copies) continue the chain from seq " << seq0 << "\n"
              << "chain head " << vigil::crypto::ToHex(range->head) << "\n"
              << "checkpoints compared: " << range->checkpoints_checked << " (" << anchors_desc
              << " anchors, last at seq " << range->anchored_last_seq << ")\n"
              << "module head: " << module_head << "\n"
              << "checkpoint signatures: " << signatures << "\n";
  }
  if (mismatch) {
    std::cerr << "vigilctl: the module's chain head differs from the recomputed chain\n";
    return kExitMismatch;
  }
  if (!covered) {
    std::cerr << "vigilctl: NOT verified: events after seq " << range->anchored_last_seq
              << " (up to " << range->last_seq << ") are covered by no "
              << (key ? "signed " : "") << "checkpoint and the module head "
              << (info ? "moved on" : "was not read (--file)")
              << "; wait for a checkpoint or force one, then verify again\n";
    return kExitError;
  }
  if (!key) {
    std::cerr << "vigilctl: the chain is consistent, but UNSIGNED: no checkpoint key (degraded "
                 "mode), so nothing here is verified against a TPM\n";
  }
  return kExitOk;
}

// Agent commands: they edit the maps vigild pinned.
int FailAgent(const Status& st) {
  if (st.code() == ErrorCode::kNotFound && st.message().rfind("vigild is not running", 0) == 0) {
    std::cerr << "vigilctl: " << st.message() << "\n";
    return kExitNoDaemon;
  }
  return Fail(st);
}

int CmdAgentRun(const std::string& pin_dir, const std::string& name,
                std::vector<std::string> cmd) {
  if (cmd.empty()) {
    std::cerr << "vigilctl: agent run needs a command after --\n";
    return kExitUsage;
  }
  auto reg = vigil::agents::Registry::Open(pin_dir);
  if (!reg.ok()) return FailAgent(reg.status());
  const uint32_t pid = static_cast<uint32_t>(::getpid());
  auto id = reg->Register(name, VIGIL_AGENT_BY_PID, pid, 0);
  if (!id.ok()) return FailAgent(id.status());
  if (Status st = reg->TrackPid(*id, pid); !st.ok()) return FailAgent(st);
  std::vector<char*> argv;
  for (auto& a : cmd) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  const int err = errno;
  std::cerr << "vigilctl: cannot run " << cmd[0] << ": " << std::strerror(err) << "\n";
  return err == ENOENT ? 127 : 126;  // like a shell
}

int CmdAgentTrack(const std::string& pin_dir, const std::string& name, std::optional<uint32_t> pid,
                  const std::string& cgroup) {
  if (pid.has_value() == !cgroup.empty()) {
    std::cerr << "vigilctl: agent track needs exactly one of --pid and --cgroup\n";
    return kExitUsage;
  }
  if (pid) {
    uint64_t pid_max = 4194304;  // PID_MAX_LIMIT, when /proc does not say
    if (std::ifstream in("/proc/sys/kernel/pid_max"); in) in >> pid_max;
    if (*pid < 1 || *pid >= pid_max) {  // pids are below pid_max
      std::cerr << "vigilctl: --pid must be between 1 and " << pid_max - 1 << " (pid_max "
                << pid_max << "), got "
                << *pid << "\n";
      return kExitUsage;
    }
  }
  auto reg = vigil::agents::Registry::Open(pin_dir);
  if (!reg.ok()) return FailAgent(reg.status());
  if (pid) {
    if (::kill(static_cast<pid_t>(*pid), 0) != 0 && errno == ESRCH) {
      std::cerr << "vigilctl: no process " << *pid << "\n";
      return kExitError;
    }
    auto id = reg->Register(name, VIGIL_AGENT_BY_PID, *pid, 0);
    if (!id.ok()) return FailAgent(id.status());
    if (Status st = reg->TrackPid(*id, *pid); !st.ok()) return FailAgent(st);
    std::cout << "agent " << name << " (id " << *id << ") tracks pid " << *pid << "\n";
    return kExitOk;
  }
  auto cg = vigil::agents::CgroupId(cgroup);
  if (!cg.ok()) return FailAgent(cg.status());
  auto id = reg->Register(name, VIGIL_AGENT_BY_CGROUP, 0, *cg);
  if (!id.ok()) return FailAgent(id.status());
  if (Status st = reg->TrackCgroup(*id, *cg); !st.ok()) return FailAgent(st);
  std::cout << "agent " << name << " (id " << *id << ") tracks cgroup " << cgroup << " (id " << *cg
            << ")\n";
  return kExitOk;
}

int CmdAgentList(const std::string& pin_dir, bool json_out) {
  auto reg = vigil::agents::Registry::Open(pin_dir);
  if (!reg.ok()) return FailAgent(reg.status());
  auto agents = reg->List();
  if (!agents.ok()) return FailAgent(agents.status());
  for (const auto& a : *agents) {
    const char* how = a.how == VIGIL_AGENT_BY_CGROUP ? "cgroup" : "pid";
    if (json_out) {
      std::cout << vigil::format::Dump(json{{"id", a.id},         {"name", a.name}, {"how", how},
                        {"pid", a.pid},       {"uid", a.uid},   {"cgroup_id", a.cgroup_id},
                        {"pids", a.pids},     {"cgroup_ids", a.cgroup_ids}})
                << "\n";
    } else {
      std::cout << a.id << "\t" << a.name << "\t" << how << "\tprocesses=" << a.pids.size();
      for (uint32_t p : a.pids) std::cout << " " << p;
      for (uint64_t c : a.cgroup_ids) std::cout << " cgroup:" << c;
      std::cout << "\n";
    }
  }
  return kExitOk;
}

int CmdAgentUntrack(const std::string& pin_dir, const std::string& name) {
  auto reg = vigil::agents::Registry::Open(pin_dir);
  if (!reg.ok()) return FailAgent(reg.status());
  if (Status st = reg->Untrack(name); !st.ok()) return FailAgent(st);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vigilctl: inspect the vigil module, its log and the TPM.\n\n"
      "Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 vigil module not loaded "
      "(/dev/vigil missing), 4 incompatible module ABI, 5 replay mismatch, 6 malformed log or "
      "baseline state, "
      "7 vigild not running (agent commands)."};
  app.require_subcommand(1);
  app.add_option("--device", g_device, "The vigil device")->capture_default_str();

  bool json_out = false;
  auto* status = app.add_subcommand("status", "Show the module's version, TPM, banks and counters");
  status->add_flag("--json", json_out, "Machine-readable output");

  std::string log_file;
  std::string log_save;
  auto* log = app.add_subcommand("log", "Print the module's log records");
  log->add_flag("--json", json_out, "One JSON object per record");
  log->add_option("--file", log_file, "Read a saved binary log instead of /dev/vigil");
  log->add_option("--save", log_save, "Also write the raw binary log to this file");

  std::string seal_save;
  auto* seal = app.add_subcommand(
      "seal", "Write the module's final checkpoint and read the log to its end, so the module "
              "can be unloaded (commits are refused afterwards)");
  seal->add_option("--save", seal_save, "Write the whole binary log, final records included");

  std::string tcti = vigil::tpm::kDefaultTcti;
  std::string which = "all";
  std::string replay_file;
  std::optional<uint32_t> pcr_config;
  std::optional<uint32_t> pcr_events;
  auto* replay = app.add_subcommand(
      "replay", "Replay the log into pcr_config/pcr_events per bank and compare with the TPM");
  replay->add_flag("--json", json_out, "Machine-readable output");
  replay->add_option("--tcti", tcti, "TPM access (tpm2-tss TCTI)")->capture_default_str();
  replay->add_option("--pcr", which, "Which PCRs to compare")
      ->check(CLI::IsMember({"config", "events", "all"}))
      ->capture_default_str();
  replay->add_option("--file", replay_file, "Replay a saved binary log instead of /dev/vigil");
  replay->add_option("--pcr-config", pcr_config,
                     "pcr_config index (default: from the module, or 16)")
      ->check(CLI::Range(0u, kMaxPcrIndex));
  replay->add_option("--pcr-events", pcr_events,
                     "pcr_events index (default: from the module, or 23)")
      ->check(CLI::Range(0u, kMaxPcrIndex));

  std::string chain_events;
  std::string chain_log;
  std::optional<uint64_t> chain_start_seq;
  std::string chain_start_head;
  auto* verify_chain = app.add_subcommand(
      "verify-chain",
      "Recompute the hash chain over events saved by `vigild --raw-out` and compare it with "
      "the log's checkpoints and the module's chain head");
  verify_chain->add_flag("--json", json_out, "Machine-readable output");
  verify_chain->add_option("--events", chain_events, "Raw events file from vigild --raw-out")
      ->required();
  verify_chain->add_option("--file", chain_log, "Read a saved binary log instead of /dev/vigil");
  verify_chain->add_option("--start-seq", chain_start_seq,
                           "Seq of the last event before the file's first (default 0)");
  verify_chain->add_option("--start-head", chain_start_head,
                           "Chain value after --start-seq, 64 hex digits (e.g. chain_head "
                           "from `vigilctl status --json` before vigild started)");

  std::string pin_dir = vigil::agents::kDefaultPinDir;
  std::string agent_name;
  std::optional<uint32_t> agent_pid;
  std::string agent_cgroup;
  std::vector<std::string> agent_cmd;
  auto* agent = app.add_subcommand("agent", "Tracked agents (needs a running vigild)");
  agent->require_subcommand(1);
  agent->fallthrough();  // --pin-dir also after run|track|list|untrack
  agent->add_option("--pin-dir", pin_dir, "Where vigild pinned its agent maps")
      ->capture_default_str();
  auto* agent_run = agent->add_subcommand("run", "Run a command as agent NAME");
  agent_run->add_option("--name", agent_name, "Agent name")->required();
  agent_run->add_option("cmd", agent_cmd, "Command and arguments (after --)")->required();
  auto* agent_track = agent->add_subcommand("track", "Adopt a running process or a cgroup");
  agent_track->add_option("--name", agent_name, "Agent name")->required();
  agent_track->add_option("--pid", agent_pid, "Process (with its future children)");
  agent_track->add_option("--cgroup", agent_cgroup, "cgroup v2 directory");
  auto* agent_list = agent->add_subcommand("list", "List agents and their processes");
  agent_list->add_flag("--json", json_out, "One JSON object per agent");
  auto* agent_untrack = agent->add_subcommand("untrack", "Stop recording an agent");
  agent_untrack->add_option("--name", agent_name, "Agent name")->required();

  vigilctl::BaselineShowOptions baseline_show;
  std::string baseline_out;
  auto* baseline = app.add_subcommand(
      "baseline", "Per-agent behavioral baselines saved by vigild (read-only)");
  baseline->require_subcommand(1);
  baseline->fallthrough();  // --state-dir also after show|export
  baseline->add_option("--state-dir", baseline_show.state_dir,
                       "vigild's state directory (holds baselines.json)")
      ->capture_default_str();
  auto* baseline_show_cmd = baseline->add_subcommand(
      "show", "Per agent: phase, samples, median, MAD, p95/p99, mean/stddev, EWMA, anomalies; "
              "pooled statistics per role");
  baseline_show_cmd->add_option("--agent", baseline_show.agent, "Only this agent");
  baseline_show_cmd->add_option("--role", baseline_show.role, "Only the agents of this role");
  baseline_show_cmd->add_flag("--json", baseline_show.json, "One JSON document");
  auto* baseline_export = baseline->add_subcommand(
      "export", "Validate the state and write it re-serialized (canonical JSON)");
  baseline_export->add_option("-o,--output", baseline_out,
                              "Write to this file (atomically, mode 0600) instead of stdout");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  try {
    if (*status) return CmdStatus(json_out);
    if (*log) return CmdLog(json_out, log_file, log_save);
    if (*seal) return CmdSeal(seal_save);
    if (*replay) return CmdReplay(json_out, tcti, which, replay_file, pcr_config, pcr_events);
    if (*agent_run) return CmdAgentRun(pin_dir, agent_name, agent_cmd);
    if (*agent_track) return CmdAgentTrack(pin_dir, agent_name, agent_pid, agent_cgroup);
    if (*agent_list) return CmdAgentList(pin_dir, json_out);
    if (*agent_untrack) return CmdAgentUntrack(pin_dir, agent_name);
    if (*baseline_show_cmd) return vigilctl::CmdBaselineShow(baseline_show);
    if (*baseline_export) {
      return vigilctl::CmdBaselineExport(baseline_show.state_dir, baseline_out);
    }
    if (*verify_chain) {
      return CmdVerifyChain(json_out, chain_events, chain_log, chain_start_seq, chain_start_head);
    }
  } catch (const std::exception& e) {
    std::cerr << "vigilctl: " << e.what() << "\n";
    return kExitError;
  }
  return kExitUsage;
}
