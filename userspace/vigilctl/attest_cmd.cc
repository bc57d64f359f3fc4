#include "attest_cmd.h"

#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "vigil/attest/channel.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/attest_tpm/enrolment.h"
#include "vigil/attest_tpm/key_certification.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/device.h"
#include "vigil/digest.h"
#include "vigil/ima.h"
#include "vigil/read_file.h"
#include "vigil/records.h"
#include "vigil/tpm.h"
#include "vigil/tpm_object.h"
#include "vigil/unique_fd.h"

namespace vigilctl {
namespace {

using nlohmann::json;
using vigil::ErrorCode;
using vigil::Result;
using vigil::Status;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUntrusted = 14;
constexpr char kNodeFile[] = "node.json";
constexpr size_t kMaxFileBytes = 256u << 20;

Result<std::string> ReadFile(const std::string& path) {
  return vigil::ReadFileUpTo(path, kMaxFileBytes);
}

Status WriteOut(const std::string& out, const std::string& text) {
  if (out.empty() || out == "-") {
    std::fputs(text.c_str(), stdout);
    return std::fflush(stdout) == 0 ? Status::Ok() : Status::FromErrno(errno, "writing stdout");
  }
  std::ofstream f(out, std::ios::trunc);
  if (!f || !(f << text) || !f.flush()) return Status::FromErrno(errno, "writing " + out);
  return Status::Ok();
}

Result<vigil::attest_tpm::EkKind> EkKindOf(const std::string& name) {
  if (name == "ecc") return vigil::attest_tpm::EkKind::kEccP256;
  if (name == "rsa") return vigil::attest_tpm::EkKind::kRsa2048;
  return Status::Error(ErrorCode::kInvalidArgument, "--ek is \"ecc\" or \"rsa\"");
}

Status EnsureDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "creating " + dir);
  }
  return Status::Ok();
}

// The enrolment request; saves the AK and the node id in options.dir.
Result<std::string> EnrolRequest(const AttestOptions& o) {
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::EkKind kind, EkKindOf(o.ek));
  VIGIL_RETURN_IF_ERROR(EnsureDir(o.dir));
  VIGIL_ASSIGN_OR_RETURN(vigil::tpm::EsysContext tpm, vigil::tpm::EsysContext::Open(o.tcti));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::EkInfo ek, vigil::attest_tpm::ReadEk(tpm, kind));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::AkBlobs ak, vigil::attest_tpm::CreateAk(tpm));
  VIGIL_RETURN_IF_ERROR(vigil::attest_tpm::SaveAkBlobs(o.dir, ak));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest::EnrolmentRequest req,
                         vigil::attest_tpm::MakeEnrolmentRequest(ek, ak));
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> name, vigil::tpmobj::Name(ek.pub));
  json node = {{"node", vigil::crypto::ToHex(name)}, {"ek", o.ek}};
  std::ofstream f(o.dir + "/" + kNodeFile, std::ios::trunc);
  if (!f || !(f << node.dump() << "\n") || !f.flush()) {
    return Status::FromErrno(errno, "writing " + o.dir + "/" + kNodeFile);
  }
  return vigil::attest::SerializeEnrolmentRequest(req);
}

Result<std::string> NodeId(const AttestOptions& o) {
  VIGIL_ASSIGN_OR_RETURN(std::string text, ReadFile(o.dir + "/" + kNodeFile));
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("node") || !j["node"].is_string()) {
    return Status::Error(ErrorCode::kMalformed, o.dir + "/" + kNodeFile + ": no node id");
  }
  return j["node"].get<std::string>();
}

// The secret ActivateCredential recovers from the challenge (hex).
Result<std::string> Activate(const AttestOptions& o, std::string_view challenge_json) {
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::EkKind kind, EkKindOf(o.ek));
  const json c = json::parse(challenge_json, nullptr, false);
  if (!c.is_object() || !c.contains("id_object") || !c["id_object"].is_string() ||
      !c.contains("encrypted_secret") || !c["encrypted_secret"].is_string()) {
    return Status::Error(ErrorCode::kMalformed,
                         "challenge: needs \"id_object\" and \"encrypted_secret\" (hex)");
  }
  vigil::attest::Credential credential;
  VIGIL_ASSIGN_OR_RETURN(credential.id_object,
                         vigil::crypto::FromHex(c["id_object"].get<std::string>()));
  VIGIL_ASSIGN_OR_RETURN(credential.encrypted_secret,
                         vigil::crypto::FromHex(c["encrypted_secret"].get<std::string>()));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::AkBlobs blobs, vigil::attest_tpm::LoadAkBlobs(o.dir));
  VIGIL_ASSIGN_OR_RETURN(vigil::tpm::EsysContext tpm, vigil::tpm::EsysContext::Open(o.tcti));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::LoadedObject ak, vigil::attest_tpm::LoadAk(tpm, blobs));
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> secret,
                         vigil::attest_tpm::ActivateCredential(tpm, ak, kind, credential));
  return vigil::crypto::ToHex(secret);
}

// Evidence for a nonce: see the header and docs/attestation.md.
Result<vigil::attest::Evidence> BuildEvidence(const AttestOptions& o) {
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> nonce, vigil::crypto::FromHex(o.nonce));
  if (nonce.empty()) return Status::Error(ErrorCode::kInvalidArgument, "--nonce is required");
  vigil::attest::Evidence ev;
  VIGIL_ASSIGN_OR_RETURN(ev.node, NodeId(o));
  ev.nonce = nonce;

  VIGIL_ASSIGN_OR_RETURN(vigil::device::VigilDevice dev,
                         o.device.empty() ? vigil::device::VigilDevice::Open()
                                          : vigil::device::VigilDevice::Open(o.device));
  VIGIL_ASSIGN_OR_RETURN(vigil_info info, dev.GetInfo());
  std::memcpy(ev.module.instance.data(), info.instance_id, ev.module.instance.size());
  ev.module.tpm_flags = info.tpm_flags;
  ev.module.pcr_config = info.pcr_config;
  ev.module.pcr_events = info.pcr_events;
  for (uint32_t i = 0; i < info.nr_banks && i < VIGIL_MAX_BANKS; ++i) {
    ev.module.banks.push_back(info.bank_alg[i]);
  }
  ev.anchor = info.anchor == VIGIL_ANCHOR_IMA ? vigil::attest::AnchorKind::kIma
                                              : vigil::attest::AnchorKind::kPcr;
  // Another instance than the verifier follows (a reboot, a reload, or the
  // first evidence): start over at its first record.
  const std::string instance_hex = vigil::crypto::ToHex(ev.module.instance);
  const bool same_instance = o.instance == instance_hex;
  const uint64_t from_seq = same_instance ? o.from_seq : 1;
  const uint64_t events_after = same_instance ? o.events_after : 0;

  // 1. The quote first: everything read after it (IMA's list, the module's
  // log, vigild's events) can only be ahead of what it covers, and the
  // segment is cut at the newest checkpoint the quote covers.
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::AkBlobs blobs, vigil::attest_tpm::LoadAkBlobs(o.dir));
  VIGIL_ASSIGN_OR_RETURN(vigil::tpm::EsysContext tpm, vigil::tpm::EsysContext::Open(o.tcti));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::LoadedObject ak, vigil::attest_tpm::LoadAk(tpm, blobs));
  std::vector<vigil::attest::PcrSelection> selection;
  if (info.anchor == VIGIL_ANCHOR_IMA) {
    selection.push_back({TPM2_ALG_SHA256, {vigil::ima::kImaPcr}});
  } else {
    selection.push_back({TPM2_ALG_SHA256, {info.pcr_config, info.pcr_events}});
  }
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::QuoteOut quote,
                         vigil::attest_tpm::Quote(tpm, ak.handle(), nonce, selection));
  ev.quote.attest = std::move(quote.attest);
  ev.quote.signature = std::move(quote.signature);
  ev.pcrs = std::move(quote.values);

  // 2. anchor=ima: IMA's list, and the newest checkpoint of this instance
  // within the part of it that replays to the quoted PCR 10.
  std::optional<uint64_t> quoted_checkpoint;
  if (info.anchor == VIGIL_ANCHOR_IMA) {
    VIGIL_ASSIGN_OR_RETURN(std::string ima, ReadFile(o.ima_log));
    const std::span<const uint8_t> ima_bytes(reinterpret_cast<const uint8_t*>(ima.data()),
                                             ima.size());
    // Only the entries after the verifier's point, if it is of this boot
    // (the quote's resetCount and restartCount); the whole list otherwise.
    VIGIL_ASSIGN_OR_RETURN(TPMS_ATTEST quoted, vigil::tpmobj::ParseAttest(ev.quote.attest));
    const bool same_boot = o.ima_reset_count && *o.ima_reset_count == quoted.clockInfo.resetCount &&
                           o.ima_restart_count.value_or(0) == quoted.clockInfo.restartCount;
    const uint64_t ima_from = same_boot ? o.ima_from_entry : 0;
    auto offset = vigil::ima::EntryOffset(ima_bytes, ima_from);
    if (!offset.ok()) {
      return Status::Error(ErrorCode::kMismatch,
                           "IMA's list cannot start at the verifier's entry " +
                               std::to_string(ima_from) + ": " + offset.status().message());
    }
    ev.ima = vigil::attest::Evidence::Ima{
        ima_from,
        std::vector<uint8_t>(ima_bytes.begin() + static_cast<ptrdiff_t>(*offset), ima_bytes.end())};
    VIGIL_ASSIGN_OR_RETURN(vigil::ima::ImaLog replay,
                           vigil::ima::ImaLog::Create({TPM2_ALG_SHA256}));
    VIGIL_RETURN_IF_ERROR(replay.Append(ima_bytes));
    std::map<uint16_t, vigil::crypto::Digest> pcr10;
    for (const vigil::attest::PcrValue& v : ev.pcrs) {
      if (v.alg == TPM2_ALG_SHA256 && v.pcr == vigil::ima::kImaPcr) pcr10[v.alg] = v.value;
    }
    VIGIL_ASSIGN_OR_RETURN(size_t prefix, replay.MatchPcr10(pcr10));
    const std::string me =
        vigil::crypto::ToHex(std::span<const uint8_t>(ev.module.instance.data(), 4));
    for (const vigil::ima::VigilEntry& e : replay.vigil_entries()) {
      if (e.index < prefix && e.instance == me && e.kind == "checkpoint") {
        quoted_checkpoint = std::max(quoted_checkpoint.value_or(0), e.seq);
      }
    }
    if (!quoted_checkpoint || *quoted_checkpoint < from_seq) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "no checkpoint since log seq " + std::to_string(from_seq) +
                               " in the quoted IMA log yet: try again after the next checkpoint");
    }
  }

  // 3. The module's log from its oldest held record, and vigild's events,
  // read until the quoted checkpoint's SIGNATURE and all its events are
  // there (the module signs a checkpoint after logging it; vigild writes
  // events as it takes them): at most five seconds.
  std::vector<vigil::records::Record> log;
  std::vector<vigil::records::Record> saved_events;
  size_t first = 0, end = 0;
  uint64_t last_event = 0;
  for (int attempt = 0;; ++attempt) {
    VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> raw, dev.ReadAvailable());
    VIGIL_ASSIGN_OR_RETURN(std::vector<vigil::records::Record> more,
                           vigil::records::DecodeStream(raw));
    for (vigil::records::Record& r : more) log.push_back(std::move(r));
    if (log.empty() || log.front().seq() > from_seq) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "the module no longer holds log seq " + std::to_string(from_seq) +
                               " (trimmed before the verifier saw it): re-enrol the instance");
    }
    uint64_t saved_up_to = UINT64_MAX;
    if (!o.events.empty()) {
      VIGIL_ASSIGN_OR_RETURN(std::string saved, ReadFile(o.events));
      // A record vigild is writing right now may be cut short: whole ones only.
      const auto prefix = vigil::records::DecodeStreamPrefix(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(saved.data()), saved.size()));
      if (!prefix.stopped.ok() && prefix.stopped.code() != ErrorCode::kTruncated) {
        return prefix.stopped;
      }
      saved_events = prefix.records;
      saved_up_to = 0;
      for (const vigil::records::Record& e : saved_events) {
        saved_up_to = std::max(saved_up_to, e.seq());
      }
    }
    // Events the module's log carries itself (COMMIT ioctl copies) are
    // the verifier's from the segment, not from vigild.
    if (saved_up_to != UINT64_MAX) {
      for (const vigil::records::Record& r : log) {
        if (r.type() != VIGIL_LOG_EVENT) continue;
        if (auto e = vigil::records::EventFromLogCopy(r); e.ok()) {
          saved_up_to = std::max(saved_up_to, e->seq());
        }
      }
    }
    // Cut after the SIGNATURE of the quoted checkpoint (anchor=ima), or of
    // the newest checkpoint whose events are all written (anchor=pcr).
    first = 0;
    end = 0;
    last_event = 0;
    bool waiting = false;
    for (size_t i = 0; i < log.size(); ++i) {
      if (log[i].seq() < from_seq) first = i + 1;
      if (log[i].seq() < from_seq || log[i].type() != VIGIL_LOG_SIGNATURE) continue;
      auto sig = log[i].As<vigil_log_signature>();
      if (!sig) continue;
      if (quoted_checkpoint && sig->checkpoint_seq > *quoted_checkpoint) break;
      uint64_t cp_last = 0;
      for (size_t k = i; k-- > 0;) {
        if (log[k].seq() != sig->checkpoint_seq) continue;
        if (auto cp = log[k].As<vigil_log_checkpoint>()) cp_last = cp->last_seq;
        break;
      }
      if (cp_last > saved_up_to) {
        waiting = true;  // vigild has not written its events yet
        break;
      }
      last_event = std::max(last_event, cp_last);
      end = i + 1;
      if (quoted_checkpoint && sig->checkpoint_seq == *quoted_checkpoint) break;
    }
    const bool complete =
        quoted_checkpoint ? end > first && log[end - 1].As<vigil_log_signature>()->checkpoint_seq ==
                                               *quoted_checkpoint
                          : end > first && !waiting;
    if (complete) break;
    if (attempt >= 50) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "no signed checkpoint with all its events since log seq " +
                               std::to_string(from_seq) + " yet: try again later");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ev.log.from_seq = from_seq;
  ev.events_after = events_after;
  for (size_t i = 0; i < end; ++i) {
    std::span<const uint8_t> bytes = log[i].bytes();
    std::vector<uint8_t>& to = i < first ? ev.log.replay_prefix : ev.log.records;
    to.insert(to.end(), bytes.begin(), bytes.end());
  }
  // Events vigild saved in (events_after, last_event].
  for (const vigil::records::Record& e : saved_events) {
    if (e.seq() <= events_after || e.seq() > last_event) continue;
    ev.events.insert(ev.events.end(), e.bytes().begin(), e.bytes().end());
  }

  // 4. A new instance: the AK certifies its checkpoint key, same nonce.
  if (from_seq == 1) {
    VIGIL_ASSIGN_OR_RETURN(vigil::device::KeyCreation creation, dev.GetKeyCreation());
    VIGIL_ASSIGN_OR_RETURN(ev.key_certification,
                           vigil::attest_tpm::CertifyModuleKey(tpm, ak.handle(), creation, nonce));
  }
  return ev;
}

// The evidence as JSON (`attest evidence`: a file for humans and tests).
Result<std::string> Evidence(const AttestOptions& o) {
  VIGIL_ASSIGN_OR_RETURN(vigil::attest::Evidence ev, BuildEvidence(o));
  return vigil::attest::SerializeEvidence(ev);
}

// The answer of a verifier: the JSON object of a 200, else an error that
// says which request failed and why.
Result<json> Answer(std::string_view op, int status, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (status != 200) {
    const std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                                ? j["error"].get<std::string>()
                                : body.substr(0, 200);
    return Status::Error(status == 404 ? ErrorCode::kNotFound : ErrorCode::kFailedPrecondition,
                         std::string(op) + ": " + std::to_string(status) + ": " + why);
  }
  if (!j.is_object()) return Status::Error(ErrorCode::kMalformed, std::string(op) + ": not JSON");
  return j;
}

// Where requests go: HTTP (http://HOST:PORT), or a virtio-serial port
// (serial:NAME for the port QEMU named NAME, serial:/dev/vportNpM), the
// channel of vigil/attest/channel.h.
class VerifierLink {
 public:
  virtual ~VerifierLink() = default;
  // `body`: JSON, or CBOR evidence (`cbor`; the channel carries bytes).
  virtual Result<json> Call(std::string_view op, const std::string& body, bool cbor = false) = 0;
};

class HttpLink : public VerifierLink {
 public:
  explicit HttpLink(const std::string& url) : client_(url) {
    client_.set_connection_timeout(5);
    client_.set_read_timeout(60);
  }
  Result<json> Call(std::string_view op, const std::string& body, bool cbor) override {
    const std::string path = "/v1/" + std::string(op);
    auto res = client_.Post(path, body, cbor ? "application/cbor" : "application/json");
    if (!res) {
      return Status::Error(ErrorCode::kUnavailable,
                           "POST " + path + ": " + httplib::to_string(res.error()));
    }
    return Answer("POST " + path, res->status, res->body);
  }

 private:
  httplib::Client client_;
};

class SerialLink : public VerifierLink {
 public:
  explicit SerialLink(vigil::UniqueFd fd, std::string path)
      : fd_(std::move(fd)), path_(std::move(path)), stream_(fd_.get(), /*eof_is_idle=*/true) {}
  Result<json> Call(std::string_view op, const std::string& body, bool) override {
    // Evidence is decided while we wait: give the verifier time.
    auto frame = stream_.Call(op, body, std::chrono::seconds(120));
    if (!frame.ok()) {
      return Status::Error(frame.status().code(),
                           path_ + ": " + std::string(op) + ": " + frame.status().message());
    }
    int status = 0;
    const std::string& verb = frame->verb;
    auto [ptr, ec] = std::from_chars(verb.data(), verb.data() + verb.size(), status);
    if (ec != std::errc() || ptr != verb.data() + verb.size()) {
      return Status::Error(ErrorCode::kMalformed, path_ + ": an answer with status " + verb);
    }
    return Answer(path_ + " " + std::string(op), status, frame->body);
  }

 private:
  vigil::UniqueFd fd_;
  std::string path_;
  vigil::attest::channel::Stream stream_;
};

// serial:NAME -> /dev/vportNpM whose /sys/class/virtio-ports/*/name is NAME.
Result<std::string> SerialPortPath(const std::string& name) {
  if (!name.empty() && name.front() == '/') return name;
  const std::string base = "/sys/class/virtio-ports";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(base.c_str()), ::closedir);
  if (!d) return Status::FromErrno(errno, "reading " + base + " (no virtio-serial ports?)");
  while (const dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(base + "/" + e->d_name + "/name");
    std::string port;
    if (f && std::getline(f, port) && port == name) return "/dev/" + std::string(e->d_name);
  }
  return Status::Error(ErrorCode::kNotFound, "no virtio-serial port named " + name + " in " + base);
}

Result<std::unique_ptr<VerifierLink>> OpenLink(const std::string& spec) {
  if (spec.rfind("http://", 0) == 0) return std::unique_ptr<VerifierLink>(new HttpLink(spec));
  if (spec.rfind("serial:", 0) == 0) {
    VIGIL_ASSIGN_OR_RETURN(std::string path, SerialPortPath(spec.substr(7)));
    vigil::UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return Status::FromErrno(errno, "opening " + path);
    return std::unique_ptr<VerifierLink>(new SerialLink(std::move(fd), path));
  }
  return Status::Error(ErrorCode::kInvalidArgument,
                       "--verifier is http://HOST:PORT or serial:NAME|serial:/dev/vportNpM (got " +
                           spec.substr(0, 80) + ")");
}

int Push(const AttestOptions& o) {
  const auto fail = [](const Status& st) {
    std::fprintf(stderr, "vigilctl attest push: %s\n", st.ToString().c_str());
    return kExitError;
  };
  auto link = OpenLink(o.verifier);
  if (!link.ok()) return fail(link.status());
  VerifierLink& verifier = **link;
  auto node = NodeId(o);
  bool enrolled = node.ok();
  if (enrolled) {
    // Enrolled here; the verifier may still not know us (a new verifier).
    auto probe = verifier.Call("nonce", json{{"node", *node}}.dump());
    if (!probe.ok() && probe.status().code() == ErrorCode::kNotFound) enrolled = false;
  }
  if (!enrolled) {
    auto request = EnrolRequest(o);
    if (!request.ok()) return fail(request.status());
    auto challenge = verifier.Call("enrol", *request);
    if (!challenge.ok()) return fail(challenge.status());
    auto secret = Activate(o, challenge->dump());
    if (!secret.ok()) return fail(secret.status());
    node = NodeId(o);
    if (!node.ok()) return fail(node.status());
    auto activated = verifier.Call("activate", json{{"node", *node}, {"secret", *secret}}.dump());
    if (!activated.ok()) return fail(activated.status());
    std::printf("enrolled as node %s\n", node->c_str());
    std::fflush(stdout);
  }
  // Forever (--count 0), a round that fails is said and the next one tried:
  // the module unloaded, vigild gone or the verifier away are states the
  // verifier's deadline reports, not reasons for the node to stop.
  const bool forever = o.count == 0;
  const auto round_failed = [&](unsigned round, const Status& st) {
    std::printf("round %u: failed: %s\n", round + 1, st.message().c_str());
    std::fflush(stdout);
  };
  int rc = kExitOk;
  for (unsigned round = 0; forever || round < o.count; ++round) {
    if (round > 0) std::this_thread::sleep_for(std::chrono::seconds(o.interval_s));
    auto issued = verifier.Call("nonce", json{{"node", *node}}.dump());
    if (!issued.ok()) {
      if (!forever) return fail(issued.status());
      round_failed(round, issued.status());
      continue;
    }
    AttestOptions e = o;
    try {
      e.nonce = issued->at("nonce").get<std::string>();
      e.from_seq = issued->at("from_seq").get<uint64_t>();
      e.events_after = issued->at("events_after").get<uint64_t>();
      e.instance = issued->at("instance").get<std::string>();
      e.ima_from_entry = issued->value("ima_from_entry", uint64_t{0});
      if (issued->contains("ima_reset_count") && !issued->at("ima_reset_count").is_null()) {
        e.ima_reset_count = issued->at("ima_reset_count").get<uint32_t>();
        e.ima_restart_count = issued->value("ima_restart_count", uint32_t{0});
      }
    } catch (const json::exception&) {
      return fail(Status::Error(ErrorCode::kMalformed, "the verifier's nonce answer is malformed"));
    }
    // CBOR: no base64 to write here or to scan at the verifier.
    auto evidence = BuildEvidence(e);
    if (!evidence.ok()) {
      // Nothing new to attest yet is not an error of the round.
      if (evidence.status().code() == ErrorCode::kFailedPrecondition) {
        std::printf("round %u: %s\n", round + 1, evidence.status().message().c_str());
        std::fflush(stdout);
        continue;
      }
      if (!forever) return fail(evidence.status());
      round_failed(round, evidence.status());
      continue;
    }
    auto result =
        verifier.Call("evidence", vigil::attest::SerializeEvidenceCbor(*evidence), /*cbor=*/true);
    if (!result.ok()) {
      if (!forever) return fail(result.status());
      round_failed(round, result.status());
      continue;
    }
    const bool trusted = result->value("trusted", false);
    std::printf("round %u: %s\n", round + 1, result->dump().c_str());
    std::fflush(stdout);
    if (!trusted) rc = kExitUntrusted;
  }
  return rc;
}

}  // namespace

CLI::App* AddAttestCommands(CLI::App& app, AttestOptions& o) {
  auto* attest = app.add_subcommand("attest", "Remote attestation: the node's side");
  attest->require_subcommand(1);
  attest->add_option("--dir", o.dir, "The AK and node id (0700)")->capture_default_str();
  attest->add_option("--tcti", o.tcti, "TPM (tpm2-tss TCTI)")->capture_default_str();
  attest->add_option("--ek", o.ek, "EK type: ecc or rsa")->capture_default_str();
  auto* req = attest->add_subcommand("enrol-request", "Create the AK; print the enrolment request");
  req->add_option("-o,--out", o.out, "Write to FILE instead of stdout");
  auto* act = attest->add_subcommand("activate", "Answer the verifier's credential challenge");
  act->add_option("--challenge", o.challenge, "The challenge (vigil-verifier enrol)")->required();
  auto* evi = attest->add_subcommand("evidence", "Evidence for a nonce the verifier issued");
  evi->add_option("--nonce", o.nonce, "The nonce (hex)")->required();
  evi->add_option("--from-seq", o.from_seq, "First log seq the verifier wants")
      ->capture_default_str();
  evi->add_option("--events-after", o.events_after, "Events with a greater seq")
      ->capture_default_str();
  evi->add_option("--instance", o.instance, "Instance the verifier follows (hex)");
  evi->add_option("--events", o.events, "vigild's --raw-out file (the events)");
  evi->add_option("--ima-log", o.ima_log, "IMA's binary log")->capture_default_str();
  evi->add_option("--ima-from-entry", o.ima_from_entry, "First IMA entry the verifier wants")
      ->capture_default_str();
  evi->add_option("--ima-reset-count", o.ima_reset_count,
                  "The TPM resetCount (boot) of the verifier's IMA point");
  evi->add_option("--ima-restart-count", o.ima_restart_count,
                  "The TPM restartCount of the verifier's IMA point");
  evi->add_option("-o,--out", o.out, "Write to FILE instead of stdout");
  auto* push = attest->add_subcommand("push", "Enrol if needed, then send evidence to a verifier");
  push->add_option("--verifier", o.verifier,
                   "http://HOST:PORT, or serial:NAME (a virtio-serial port QEMU named NAME) or "
                   "serial:/dev/vportNpM, of vigil-verifier serve")
      ->required();
  push->add_option("--events", o.events, "vigild's --raw-out file (the events)");
  push->add_option("--ima-log", o.ima_log, "IMA's binary log")->capture_default_str();
  push->add_option("--count", o.count,
                   "Rounds (0: forever; a failed round is then said, not fatal)")
      ->capture_default_str();
  push->add_option("--interval", o.interval_s, "Seconds between rounds")->capture_default_str();
  return attest;
}

int RunAttest(CLI::App& attest, const AttestOptions& o) {
  const auto done = [](const Result<std::string>& r, const std::string& out) {
    if (!r.ok()) {
      std::fprintf(stderr, "vigilctl attest: %s\n", r.status().ToString().c_str());
      return kExitError;
    }
    Status st = WriteOut(out, *r);
    if (!st.ok()) {
      std::fprintf(stderr, "vigilctl attest: %s\n", st.ToString().c_str());
      return kExitError;
    }
    return kExitOk;
  };
  if (attest.got_subcommand("enrol-request")) return done(EnrolRequest(o), o.out);
  if (attest.got_subcommand("activate")) {
    auto challenge = ReadFile(o.challenge);
    if (!challenge.ok()) return done(challenge.status(), "");
    auto secret = Activate(o, *challenge);
    return done(secret.ok() ? Result<std::string>(*secret + "\n") : secret, "");
  }
  if (attest.got_subcommand("evidence")) return done(Evidence(o), o.out);
  if (attest.got_subcommand("push")) return Push(o);
  return kExitUsage;
}

}  // namespace vigilctl
