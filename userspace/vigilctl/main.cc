// vigilctl: talk to the vigil module (/dev/vigil) and the TPM.
//
//   vigilctl status [--json]       module version and info (GET_VERSION, GET_INFO)
//   vigilctl log    [--json] [--file F] [--save F]   the module's log records
//   vigilctl replay [--json] [--tcti T] [--pcr config|events|all]
//                   replay the log into pcr_config / pcr_events per bank and
//                   compare with the TPM
//   vigilctl export-cel [--file LOG] [--ima FILE] [--out FILE] [--pcr-events N]
//                   the log (and IMA's) as CEL-JSON (TCG Canonical Event Log)
//   vigilctl verify-chain --events F (--key FILE | --live | --no-key)
//                   [--file LOG] [--start-seq N [--start-head HEX]]
//                   [--allow-unsigned] [--allow-signed] [--no-anchor-check]
//                   verify events saved by `vigild --raw-out` (plus the log's
//                   LOG_EVENT copies) and the log's checkpoints with the
//                   engine vigild runs (vigil::verify::VerifyOffline), against
//                   a trusted key: never the log's own KEY record (one that
//                   differs from the trusted key is tampered)
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
//   verify-chain, the worst outcome found:
//   8 unsigned (0 with --allow-unsigned), 9 loss, 10 tampered, 11 incomplete
//     (events after the last checkpoint, or no checkpoint at all),
//   12 unanchored (chain and signatures hold, the anchor does not),
//   13 signed (chain and signatures hold, the anchor was not checked;
//     0 with --allow-signed)
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
//   vigilctl baseline report [--state-dir D] -o FILE [--nonce HEX] [--dir A]
//                   [--tcti T] [--ima-log F]
//                   a signed baseline report: D/baselines.json measured
//                   ("baseline", anchor=ima) and PCR 10 quoted by the AK in A
//                   (docs/attestation.md, "Signed baseline reports")
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
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

#include "attest_cmd.h"
#include "baseline_cmd.h"
#include "baseline_report_cmd.h"
#include "vigil/cli_parse.h"
#include "vigil/agents.h"
#include "vigil/anchor_check.h"
#include "vigil/attest/cel.h"
#include "vigil/chain.h"
#include "vigil/device.h"
#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/ima.h"
#include "vigil/offline.h"
#include "vigil/records.h"
#include "vigil/replay.h"
#include "vigil/signature.h"
#include "vigil/status.h"
#include "vigil/tpm.h"
#include "vigil/version.h"

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
// verify-chain outcomes (the worst applies: tampered, unanchored, loss,
// unsigned, incomplete, signed).
constexpr int kExitUnsigned = 8;
constexpr int kExitLoss = 9;
constexpr int kExitTampered = 10;
constexpr int kExitIncomplete = 11;
constexpr int kExitUnanchored = 12;
constexpr int kExitSigned = 13;
constexpr uint32_t kMaxPcrIndex = 23;  // PCRs 0..23 of a PC client TPM

// The device path (--device), /dev/vigil unless a test says otherwise.
std::string g_device = VIGIL_DEVICE_PATH;

// Prints the error and maps it to the documented exit code.
int Fail(const Status& st) {
  if (st.code() == ErrorCode::kNotFound && st.origin() == vigil::ErrorOrigin::kErrno &&
      st.origin_code() == ENOENT && st.message().rfind("open " + g_device, 0) == 0) {
    std::cerr << "vigilctl: vigil module not loaded (" << vigil::format::EscapeText(g_device)
              << " missing)\n";
    return kExitNoModule;
  }
  // Messages can quote file or kernel data (a path, a record field).
  std::cerr << "vigilctl: " << vigil::format::EscapeText(st.ToString()) << "\n";
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
  std::cout << "vigil module "
            << vigil::format::EscapeText(vigil::records::FieldString(version.module_version))
            << " (ABI " << version.abi_major << "." << version.abi_minor << ")\n";
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

// ---- export-cel -----------------------------------------------------------

struct ExportCelArgs {
  std::string file;      // saved binary log; empty: /dev/vigil
  std::string ima_file;  // IMA's binary_runtime_measurements; empty: none (or live)
  std::string out;       // empty: stdout
  std::optional<uint32_t> pcr_events;
};

// The log (and IMA's) as CEL-JSON (vigil::attest::ExportCel). Live, the log
// is read after GET_INFO and IMA's log after the module's, so IMA holds every
// anchored record the exported log does.
int CmdExportCel(const ExportCelArgs& args) {
  std::vector<uint8_t> log_bytes;
  std::string ima_path = args.ima_file;
  vigil::attest::CelOptions opts;
  opts.pcr_events = args.pcr_events;
  if (args.file.empty()) {
    auto dev = OpenChecked(nullptr);
    if (!dev.ok()) return Fail(dev.status());
    auto info = dev->GetInfo();
    if (!info.ok()) return Fail(info.status());
    if ((info->tpm_flags & VIGIL_TPM_PRESENT) == 0) {
      std::cerr << "vigilctl: the module found no TPM: nothing was extended, nothing to export\n";
      return kExitError;
    }
    if (!opts.pcr_events) opts.pcr_events = info->pcr_events;
    if (ima_path.empty() && info->anchor == VIGIL_ANCHOR_IMA) ima_path = vigil::ima::kBinaryLogPath;
    auto bytes = dev->ReadAvailable();
    if (!bytes.ok()) return Fail(bytes.status());
    log_bytes = std::move(*bytes);
  } else {
    auto bytes = ReadFile(args.file);
    if (!bytes.ok()) return Fail(bytes.status());
    log_bytes = std::move(*bytes);
  }
  auto log = vigil::records::DecodeStream(log_bytes);
  if (!log.ok()) {
    return Fail(Status::Error(log.status().code(), "the log: " + log.status().message()));
  }
  std::vector<uint8_t> ima_bytes;
  if (!ima_path.empty()) {
    auto bytes = ReadFile(ima_path);
    if (!bytes.ok()) return Fail(bytes.status());
    ima_bytes = std::move(*bytes);
    opts.ima_log = std::span<const uint8_t>(ima_bytes);
  }
  auto cel = vigil::attest::ExportCel(*log, opts);
  if (!cel.ok()) return Fail(cel.status());
  const std::string text = vigil::attest::CelToJsonText(*cel);
  if (args.out.empty()) {
    std::cout << text;
  } else if (Status st = WriteFile(args.out, std::vector<uint8_t>(text.begin(), text.end()));
             !st.ok()) {
    return Fail(st);
  }
  std::string banks;
  for (uint16_t alg : cel->banks) banks += (banks.empty() ? "" : ",") + vigil::crypto::AlgName(alg);
  std::cerr << "vigilctl: exported " << cel->events.size() << " CEL records (banks " << banks
            << "): " << cel->config_extends << " vigil records extended into PCR "
            << cel->pcr_config;
  if (!cel->anchor_ima) {
    std::cerr << ", " << cel->events_extends << " into PCR " << cel->pcr_events;
  }
  if (opts.ima_log) std::cerr << ", " << cel->ima_entries << " IMA entries";
  std::cerr << "\n";
  if (cel->anchor_ima && !opts.ima_log) {
    std::cerr << "vigilctl: anchor=ima: the checkpoints are in IMA's log (PCR 10); pass --ima "
                 "to export it\n";
  }
  if (cel->nonzero_start) {
    std::cerr << "vigilctl: a vigil PCR did not start from zero: replay from the start values "
                 "of the 'base' records (content.pcr_start)\n";
  }
  return kExitOk;
}

// ---- verify-chain ---------------------------------------------------------

struct VerifyChainArgs {
  bool json = false;
  std::string events_file;
  std::string log_file;  // empty: the module's log from the device
  std::string key_file;  // trusted key: PEM public key or 64 raw bytes x || y
  bool live = false;     // trusted key and instance id: the module's GET_INFO
  bool no_key = false;   // the user states the module has no key (degraded)
  std::optional<uint64_t> start_seq;
  std::string start_head;  // hex
  bool allow_unsigned = false;
  bool allow_signed = false;
  bool no_anchor_check = false;
  std::string tcti = vigil::tpm::kDefaultTcti;
};

int ExitFor(vigil::verify::Outcome o) {
  switch (o) {
    case vigil::verify::Outcome::kVerified:
      return kExitOk;
    case vigil::verify::Outcome::kSigned:
      return kExitSigned;
    case vigil::verify::Outcome::kIncomplete:
      return kExitIncomplete;
    case vigil::verify::Outcome::kUnsigned:
      return kExitUnsigned;
    case vigil::verify::Outcome::kLoss:
      return kExitLoss;
    case vigil::verify::Outcome::kUnanchored:
      return kExitUnanchored;
    case vigil::verify::Outcome::kTampered:
      return kExitTampered;
  }
  return kExitTampered;
}

// Offline verification through the same engine vigild runs
// (vigil::verify::VerifyOffline over the StreamVerifier). The key comes from
// the user (--key), the live module (--live) or the user's statement that
// there is none (--no-key); never from the log being verified.
int CmdVerifyChain(const VerifyChainArgs& args) {
  const int sources = (args.key_file.empty() ? 0 : 1) + (args.live ? 1 : 0) + (args.no_key ? 1 : 0);
  if (sources != 1) {
    std::cerr << "vigilctl: verify-chain needs exactly one trusted key source: --key FILE (a PEM "
                 "public key or the 64 raw bytes x||y of the module's checkpoint key), --live "
                 "(the loaded module's GET_INFO) or --no-key (the module has no TPM key); the "
                 "log's own KEY record is never trusted\n";
    return kExitUsage;
  }
  vigil::verify::OfflineOptions opt;
  opt.accept_unsigned = args.allow_unsigned;
  opt.accept_signed = args.allow_signed;
  std::string key_source;
  if (!args.start_head.empty()) {
    auto bytes = vigil::crypto::FromHex(args.start_head);
    vigil::crypto::Sha256Digest head{};
    if (!bytes.ok() || bytes->size() != head.size()) {
      std::cerr << "vigilctl: --start-head needs 64 hex digits\n";
      return kExitUsage;
    }
    std::copy(bytes->begin(), bytes->end(), head.begin());
    opt.start_head = head;
  }
  if (opt.start_head && !args.start_seq) {
    std::cerr << "vigilctl: --start-head needs --start-seq\n";
    return kExitUsage;
  }
  opt.start_seq = args.start_seq.value_or(0);

  if (!args.key_file.empty()) {
    auto bytes = ReadFile(args.key_file);
    if (!bytes.ok()) return Fail(bytes.status());
    auto key = vigil::crypto::ParsePublicKey(*bytes);
    if (!key.ok()) {
      std::cerr << "vigilctl: --key " << vigil::format::EscapeText(args.key_file) << ": "
                << vigil::format::EscapeText(key.status().message()) << "\n";
      return kExitUsage;
    }
    opt.key = *key;
    key_source = "--key " + args.key_file;
  } else if (args.no_key) {
    key_source = "none (--no-key: the module has no TPM key; checkpoints are at best unsigned)";
  }
  std::optional<vigil_info> live_info;
  if (args.live) {
    auto dev = OpenChecked(nullptr);
    if (!dev.ok()) return Fail(dev.status());
    auto info = dev->GetInfo();
    if (!info.ok()) return Fail(info.status());
    live_info = *info;
    vigil::chain::InstanceId id;
    std::copy(std::begin(info->instance_id), std::end(info->instance_id), id.begin());
    opt.instance_id = id;
    // On the node the anchor can be checked too, as vigild does it.
    opt.module_anchor = info->anchor;
    if ((info->tpm_flags & VIGIL_TPM_PRESENT) != 0 && !args.no_anchor_check) {
      if (info->anchor == VIGIL_ANCHOR_IMA) {
        opt.ima_check = vigil::anchor::Shared(
            std::make_shared<vigil::anchor::ImaAnchorCheck>(args.tcti, *info));
      } else {
        opt.pcr_check = vigil::anchor::Shared(std::make_shared<vigil::anchor::PcrChecker>(
            vigil::anchor::TpmPcrSource(args.tcti), *info));
      }
    }
    if ((info->tpm_flags & VIGIL_TPM_KEY) != 0) {
      vigil::crypto::EcPoint key;
      std::copy(std::begin(info->key_x), std::end(info->key_x), key.x);
      std::copy(std::begin(info->key_y), std::end(info->key_y), key.y);
      opt.key = key;
      key_source = "the module's GET_INFO";
    } else {
      key_source =
          "the module's GET_INFO: no key (degraded mode; checkpoints are at best unsigned)";
    }
  }

  auto event_bytes = ReadFile(args.events_file);
  if (!event_bytes.ok()) return Fail(event_bytes.status());
  auto events = vigil::records::DecodeStream(*event_bytes);
  if (!events.ok()) return Fail(events.status());
  auto log_bytes = ReadLogBytes(args.log_file);
  if (!log_bytes.ok()) return Fail(log_bytes.status());
  // A log that stops decoding part way is judged up to there and tampered
  // from there, as vigild judges its stream.
  vigil::records::StreamPrefix log = vigil::records::DecodeStreamPrefix(*log_bytes);

  auto report =
      vigil::verify::VerifyOffline(opt, std::move(events).value(), log.records, log.stopped);
  if (!report.ok()) return Fail(report.status());

  // On the node, the module's current chain head (GET_INFO, read before the
  // log) is one more comparison point when nothing was committed since the
  // last saved event: a mismatch is tampering, a match vouches for the
  // events after the last checkpoint (the kernel's own chain, unsigned).
  std::string module_head = "not compared (--live not given)";
  if (live_info) {
    const uint64_t module_seq = live_info->next_seq == 0 ? 0 : live_info->next_seq - 1;
    if (!report->tip_seq) {
      module_head = "not compared (the recomputed chain has a gap)";
    } else if (module_seq != *report->tip_seq) {
      module_head = "not compared (module at seq " + std::to_string(module_seq) +
                    ", events end at seq " + std::to_string(*report->tip_seq) + ")";
    } else if (std::equal(report->tip_head->begin(), report->tip_head->end(),
                          std::begin(live_info->chain_head))) {
      module_head = "match";
      if (report->outcome == vigil::verify::Outcome::kIncomplete && !report->verdicts.empty()) {
        const bool signed_only = std::any_of(
            report->verdicts.begin(), report->verdicts.end(),
            [](const auto& v) { return v.verdict == vigil::verify::Verdict::kSigned; });
        report->outcome = signed_only && !args.allow_signed ? vigil::verify::Outcome::kSigned
                                                            : vigil::verify::Outcome::kVerified;
        report->summary += "; the module's current chain head matches the events after it";
      }
    } else {
      module_head = "MISMATCH";
      report->outcome = vigil::verify::Outcome::kTampered;
      report->summary =
          "the module's current chain head differs from the chain recomputed up "
          "to seq " +
          std::to_string(module_seq);
    }
  }
  int rc = ExitFor(report->outcome);
  const std::string outcome(vigil::verify::OutcomeName(report->outcome));

  if (args.json) {
    json verdicts = json::array();
    for (const auto& v : report->verdicts) verdicts.push_back(vigil::format::VerdictToJson(v));
    json findings = json::array();
    for (const auto& f : report->findings) findings.push_back(vigil::format::FindingToJson(f));
    const vigil::verify::Anchor& a = report->start;
    json start{
        {"seq", a.last_seq},
        {"chain_head", vigil::crypto::ToHex(a.chain_head)},
        {"checkpoint_log_seq", a.checkpoint_log_seq},
        {"instance_id", vigil::crypto::ToHex(a.instance_id)},
        {"verdict", report->start_verdict
                        ? json(std::string(vigil::verify::VerdictName(*report->start_verdict)))
                        : json(nullptr)}};
    std::cout << vigil::format::Dump(json{{"ok", rc == kExitOk},
                                          {"outcome", outcome},
                                          {"exit_code", rc},
                                          {"summary", report->summary},
                                          {"key_source", key_source},
                                          {"allow_unsigned", args.allow_unsigned},
                                          {"allow_signed", args.allow_signed},
                                          {"start", start},
                                          {"events", report->events},
                                          {"log_event_copies", report->log_event_copies},
                                          {"last_event_seq", report->last_event_seq},
                                          {"covered_seq", report->covered_seq},
                                          {"module_head", module_head},
                                          {"checkpoints", verdicts},
                                          {"findings", findings}},
                                     2)
              << "\n";
    return rc;
  }
  using vigil::format::EscapeText;
  std::cout << "trusted key: " << EscapeText(key_source) << "\n";
  if (report->start_verdict) {
    std::cout << "start: checkpoint at log seq " << report->start.checkpoint_log_seq
              << " ending at seq " << report->start.last_seq << " ("
              << vigil::verify::VerdictName(*report->start_verdict) << ")\n";
  } else if (report->start_inside_interval) {
    std::cout << "start: seq " << report->start.last_seq
              << " with the given chain head (inside a checkpoint interval: the next "
                 "checkpoint's link is not checked)\n";
  } else {
    std::cout << "start: seq 0 of instance " << vigil::crypto::ToHex(report->start.instance_id)
              << "\n";
  }
  std::cout << "events: " << report->events << " after the start (" << report->log_event_copies
            << " from LOG_EVENT copies), up to seq " << report->last_event_seq << "\n";
  std::array<size_t, vigil::verify::kVerdictCount> counts{};
  for (const auto& v : report->verdicts) {
    counts[static_cast<size_t>(v.verdict)]++;
    // A rejected checkpoint covers no events (its claimed range is in the reason).
    std::cout << "checkpoint log seq " << v.log_seq
              << (v.last_seq < v.first_seq
                      ? " covers no seqs"
                      : " seqs " + std::to_string(v.first_seq) + ".." + std::to_string(v.last_seq))
              << ": " << vigil::verify::VerdictName(v.verdict) << ": " << EscapeText(v.reason)
              << "\n";
  }
  for (const auto& f : report->findings) {
    std::cout << "finding " << vigil::verify::FindingKindName(f.kind) << " at seq " << f.seq << ": "
              << EscapeText(f.reason) << "\n";
  }
  size_t signatures = 0;
  for (const auto& v : report->verdicts) signatures += v.signature_checked ? 1 : 0;
  std::cout << "checkpoints compared: " << report->verdicts.size();
  for (size_t i = 0; i < counts.size(); ++i) {
    // unanchored (the last) only when there is one: the line keeps its shape.
    const auto verdict = static_cast<vigil::verify::Verdict>(i);
    if ((verdict == vigil::verify::Verdict::kUnanchored ||
         verdict == vigil::verify::Verdict::kSigned) &&
        counts[i] == 0) {
      continue;
    }
    std::cout << (i == 0 ? " (" : ", ") << counts[i] << " "
              << vigil::verify::VerdictName(verdict);
  }
  std::cout << ")\n";
  std::cout << "checkpoint signatures: " << signatures << " verified, "
            << report->verdicts.size() - signatures << " unsigned or bad\n";
  std::cout << "module head: " << module_head << "\n";
  std::cout << "result: " << outcome << ": " << EscapeText(report->summary) << "\n";
  if (rc != kExitOk) {
    std::cerr << "vigilctl: NOT verified (" << outcome << ", exit " << rc << ")"
              << (report->outcome == vigil::verify::Outcome::kUnsigned
                      ? ": pass --allow-unsigned to accept unsigned checkpoints"
                  : report->outcome == vigil::verify::Outcome::kSigned
                      ? ": the anchor was not checked (it needs the node's TPM: --live on the "
                        "node, or a quote); pass --allow-signed to accept chain and signature "
                        "alone"
                      : "")
              << "\n";
  }
  return rc;
}

// Agent commands: they edit the maps vigild pinned.
int FailAgent(const Status& st) {
  if (st.code() == ErrorCode::kNotFound && st.message().rfind("vigild is not running", 0) == 0) {
    std::cerr << "vigilctl: " << vigil::format::EscapeText(st.message()) << "\n";
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
  std::cerr << "vigilctl: cannot run " << vigil::format::EscapeText(cmd[0]) << ": "
            << std::strerror(err) << "\n";
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
    std::cout << "agent " << vigil::format::EscapeText(name) << " (id " << *id << ") tracks pid "
              << *pid << "\n";
    return kExitOk;
  }
  auto cg = vigil::agents::CgroupId(cgroup);
  if (!cg.ok()) return FailAgent(cg.status());
  auto id = reg->Register(name, VIGIL_AGENT_BY_CGROUP, 0, *cg);
  if (!id.ok()) return FailAgent(id.status());
  if (Status st = reg->TrackCgroup(*id, *cg); !st.ok()) return FailAgent(st);
  std::cout << "agent " << vigil::format::EscapeText(name) << " (id " << *id << ") tracks cgroup "
            << vigil::format::EscapeText(cgroup) << " (id " << *cg << ")\n";
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
      std::cout << a.id << "\t" << vigil::format::EscapeText(a.name) << "\t" << how
                << "\tprocesses=" << a.pids.size();
      for (uint32_t p : a.pids) std::cout << " " << p;
      for (uint64_t c : a.cgroup_ids) std::cout << " cgroup:" << c;
      std::cout << "\n";
    }
  }
  return kExitOk;
}

// Untracking is itself behaviour: with the module loaded it is committed
// into the chain first (a user event of kind VIGIL_USER_KIND_UNTRACK), and
// nothing is untracked when that fails.
int CmdAgentUntrack(const std::string& pin_dir, const std::string& name) {
  auto reg = vigil::agents::Registry::Open(pin_dir);
  if (!reg.ok()) return FailAgent(reg.status());
  auto dev = vigil::device::VigilDevice::Open(g_device);
  if (dev.ok()) {
    const std::string what = "untrack " + name;
    auto seq = dev->Commit(VIGIL_USER_KIND_UNTRACK,
                           std::span<const uint8_t>(
                               reinterpret_cast<const uint8_t*>(what.data()),
                               std::min<size_t>(what.size(), VIGIL_USER_PAYLOAD_MAX)));
    if (!seq.ok()) return Fail(seq.status());
    std::cout << "untracking committed at seq " << *seq << "\n";
  } else if (dev.status().code() != vigil::ErrorCode::kNotFound) {
    return Fail(dev.status());
  }
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
      "7 vigild not running (agent commands); verify-chain: 8 unsigned, 9 loss, 10 tampered, "
      "11 incomplete, 12 unanchored (see verify-chain --help)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", vigil::version::VersionText("vigilctl"),
                       "Print the version, the ABI version and build information, then exit");
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

  ExportCelArgs cel_args;
  auto* export_cel = app.add_subcommand(
      "export-cel",
      "Write the log as a TCG Canonical Event Log in JSON (CEL-JSON): one record per PCR extend "
      "with its digest in every bank, so generic tools replay the anchor PCRs. vigil's records "
      "have content_type \"vigil\" (the whole record in hex); each vigil PCR opens with a "
      "\"base\" record that extends nothing and gives the PCR's start value "
      "(content.pcr_start). With --ima, IMA's binary log follows, every entry with content_type "
      "\"ima_template\" (anchor=ima: the checkpoints are IMA entries in PCR 10). Without --file "
      "the log comes from the module, and with anchor=ima IMA's log from securityfs.\n\nExit "
      "codes: 0 written, 1 runtime error, 5 the log contradicts itself or --pcr-events, 6 "
      "malformed or truncated log or IMA log");
  export_cel->add_option("--file", cel_args.file, "Read a saved binary log instead of /dev/vigil");
  export_cel->add_option("--ima", cel_args.ima_file,
                         "IMA's binary log (binary_runtime_measurements) to export too");
  export_cel->add_option("--out,-o", cel_args.out, "Write the CEL-JSON here instead of stdout");
  export_cel
      ->add_option("--pcr-events", cel_args.pcr_events,
                   "pcr_events index (default: from the module or the log's parameters record, "
                   "else 23)")
      ->check(CLI::Range(0u, kMaxPcrIndex));

  VerifyChainArgs chain_args;
  auto* verify_chain = app.add_subcommand(
      "verify-chain",
      "Verify saved events (`vigild --raw-out`) and the module's log with vigild's verification "
      "engine, against a trusted checkpoint key (--key, --live or --no-key; never the log's own "
      "KEY record).\n\nExit codes: 0 every checkpoint verified and every event covered, 8 "
      "unsigned (a checkpoint is not signed; 0 with --allow-unsigned), 9 loss (events or "
      "checkpoints missing, or drops attested), 10 tampered (a chain, link or signature does not "
      "verify, a KEY record differs from the trusted key, a record is forged or replayed, or the "
      "log is damaged), 12 unanchored (chain and signatures hold, the anchor's replay does not "
      "reach the TPM), 11 incomplete (events after the last checkpoint, or no checkpoint), 13 "
      "signed (chain and signatures hold, the anchor was not checked: always without --live, "
      "which checks the PCR path or IMA's log and PCR 10 on the node; 0 with --allow-signed), 2 "
      "usage error (also: no trusted key source). The worst applies: 10, then 12, then 9, then 8, "
      "then 11, then 13");
  verify_chain->add_flag("--json", chain_args.json, "Machine-readable output");
  verify_chain
      ->add_option("--events", chain_args.events_file, "Raw events file from vigild --raw-out")
      ->required();
  verify_chain->add_option("--file", chain_args.log_file,
                           "Read a saved binary log instead of /dev/vigil");
  auto* key_opt = verify_chain->add_option(
      "--key", chain_args.key_file,
      "Trusted checkpoint key: a PEM public key (-----BEGIN PUBLIC KEY-----) or exactly 64 raw "
      "bytes x||y (e.g. key_x and key_y of GET_INFO, or from enrolment)");
  auto* live_opt = verify_chain->add_flag(
      "--live", chain_args.live,
      "Take the trusted key and instance id from the loaded module (GET_INFO on /dev/vigil)");
  auto* no_key_opt = verify_chain->add_flag(
      "--no-key", chain_args.no_key,
      "The module has no TPM key (degraded mode): checkpoints are at best unsigned and a KEY "
      "record in the log is tampered");
  key_opt->excludes(live_opt)->excludes(no_key_opt);
  live_opt->excludes(no_key_opt);
  verify_chain->add_flag("--allow-unsigned", chain_args.allow_unsigned,
                         "Accept unsigned checkpoints (exit 0 instead of 8)");
  verify_chain->add_flag("--allow-signed", chain_args.allow_signed,
                         "Accept checkpoints whose anchor was not checked (exit 0 instead of 13)");
  verify_chain->add_flag("--no-anchor-check", chain_args.no_anchor_check,
                         "With --live: do not check the anchor (PCRs, IMA's log) on the TPM");
  verify_chain->add_option("--tcti", chain_args.tcti, "With --live: TPM access (tpm2-tss TCTI)")
      ->capture_default_str();
  verify_chain->add_option("--start-seq", chain_args.start_seq,
                           "Start after this event seq (the events file starts after it): at "
                           "the log's checkpoint that ends there (its signature is checked), or "
                           "inside an interval from --start-head");
  verify_chain->add_option("--start-head", chain_args.start_head,
                           "With --start-seq: the chain value there, 64 hex digits (e.g. "
                           "chain_head from `vigilctl status --json` before vigild started); "
                           "trusted like the key, and checked by the next checkpoint");

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

  vigilctl::AttestOptions attest_options;
  attest_options.device = g_device;
  CLI::App* attest = vigilctl::AddAttestCommands(app, attest_options);

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
  vigilctl::BaselineReportOptions report_options;
  auto* baseline_report = baseline->add_subcommand(
      "report", "Signed baseline report: MEASURE the state's digest, quote PCR 10 (anchor=ima)");
  baseline_report->add_option("-o,--output", report_options.out, "The report file")->required();
  baseline_report->add_option("--nonce", report_options.nonce,
                              "The verifier's nonce (hex); default: random (not fresh)");
  baseline_report->add_option("--dir", report_options.dir, "The AK (vigilctl attest)")
      ->capture_default_str();
  baseline_report->add_option("--tcti", report_options.tcti, "TPM (tpm2-tss TCTI)")
      ->capture_default_str();
  baseline_report->add_option("--ima-log", report_options.ima_log, "IMA's binary log")
      ->capture_default_str();

  if (auto exit_code = vigil::cli::Parse(app, argc, argv)) return *exit_code;
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
    if (*baseline_report) {
      report_options.device = g_device;
      return vigilctl::CmdBaselineReport(baseline_show.state_dir, report_options);
    }
    if (*verify_chain) return CmdVerifyChain(chain_args);
    if (*export_cel) return CmdExportCel(cel_args);
    if (*attest) return vigilctl::RunAttest(*attest, attest_options);
  } catch (const std::exception& e) {
    std::cerr << "vigilctl: " << vigil::format::EscapeText(e.what()) << "\n";
    return kExitError;
  }
  return kExitUsage;
}
