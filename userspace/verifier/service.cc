#include "service.h"

#include <dirent.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>

#include "state.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/digest.h"

namespace vigil::verifier {
namespace {

using nlohmann::json;

constexpr char kEnrolmentFile[] = "enrolment.json";
constexpr char kStateFile[] = "state.json";
constexpr char kNoncesFile[] = "nonces.json";
constexpr size_t kNonceBytes = 32;
constexpr size_t kSecretBytes = 32;
constexpr size_t kMaxOpenNonces = 16;
constexpr uint64_t kPendingEnrolmentSeconds = 300;

uint64_t NowUnix() { return static_cast<uint64_t>(::time(nullptr)); }

Result<std::vector<uint8_t>> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  if (RAND_priv_bytes(out.data(), static_cast<int>(n)) != 1) {
    return Status::FromOpenSsl("RAND_priv_bytes");
  }
  return out;
}

Result<json> ReadJson(const daemon::StateDir& dir, const char* name) {
  VIGIL_ASSIGN_OR_RETURN(std::optional<std::string> text, dir.Read(name));
  if (!text) return Status::Error(ErrorCode::kNotFound, dir.path() + "/" + name + ": missing");
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Error(ErrorCode::kMalformed, dir.path() + "/" + name + ": not a JSON object");
  }
  return j;
}

// What identifies one version of a state file: rename gives each write a
// new inode; the times catch a reused one.
std::optional<std::array<int64_t, 6>> FileIdentity(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return std::array<int64_t, 6>{static_cast<int64_t>(st.st_ino),
                                static_cast<int64_t>(st.st_size),
                                st.st_mtim.tv_sec,
                                st.st_mtim.tv_nsec,
                                st.st_ctim.tv_sec,
                                st.st_ctim.tv_nsec};
}

}  // namespace

Service::Service() = default;
Service::Service(Service&&) noexcept = default;
Service& Service::operator=(Service&&) noexcept = default;
Service::~Service() = default;

Result<Service> Service::Open(const std::string& dir, attest::Policy policy, NonceStore nonces) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "creating " + dir);
  }
  const std::string nodes = dir + "/nodes";
  if (::mkdir(nodes.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "creating " + nodes);
  }
  Service s;
  s.dir_ = dir;
  s.policy_ = std::move(policy);
  s.nonce_store_ = nonces;
  return s;
}

std::string Service::NodeDir(const std::string& node) const { return dir_ + "/nodes/" + node; }

// A node's directory exists only once it enrolled: every other request for
// an unknown id is refused before anything is created.
Result<daemon::StateDir> Service::OpenKnownNode(const std::string& node) const {
  VIGIL_RETURN_IF_ERROR(CheckNodeId(node));
  struct stat st {};
  if (::stat(NodeDir(node).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::Error(ErrorCode::kNotFound, "node " + node + " is not enrolled");
  }
  return daemon::StateDir::Open(NodeDir(node));
}

Result<std::string> Service::Enrol(std::string_view request_json, const EnrolOptions& options) {
  VIGIL_ASSIGN_OR_RETURN(attest::EnrolmentRequest req, attest::ParseEnrolmentRequest(request_json));
  if (options.ca_files.empty() && !options.pin_ek) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "enrolment needs the EK certificate's CA (--ca) or an explicit --pin-ek");
  }
  if (!options.ca_files.empty()) {
    if (req.ek_certificate_der.empty()) {
      return Status::Error(ErrorCode::kMismatch,
                           "the node sent no EK certificate, and a CA was required");
    }
    VIGIL_RETURN_IF_ERROR(
        attest::VerifyEkCertificate(req.ek_certificate_der, options.ca_files, req.ek));
  }
  VIGIL_RETURN_IF_ERROR(attest::CheckAkPublic(req.ak));
  VIGIL_RETURN_IF_ERROR(attest::CheckAkCreation(req.ak, req.ak_creation_data,
                                                req.ak_creation_attest, req.ak_creation_signature));
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> ek_name, tpmobj::Name(req.ek));
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> ak_name, tpmobj::Name(req.ak));
  const std::string node = crypto::ToHex(ek_name);
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> secret, RandomBytes(kSecretBytes));
  VIGIL_ASSIGN_OR_RETURN(attest::Credential credential,
                         attest::MakeCredential(req.ek, ak_name, secret));
  json challenge = {{"version", 1},
                    {"node", node},
                    {"id_object", crypto::ToHex(credential.id_object)},
                    {"encrypted_secret", crypto::ToHex(credential.encrypted_secret)}};
  if (db_) {
    VIGIL_RETURN_IF_ERROR(db_->Enrol(node, req, secret, options));
    return challenge.dump() + "\n";
  }

  VIGIL_ASSIGN_OR_RETURN(daemon::StateDir nd, daemon::StateDir::Open(NodeDir(node)));
  VIGIL_ASSIGN_OR_RETURN(std::optional<std::string> enrolled, nd.Read(kStateFile));
  if (enrolled && !options.re_enrol) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "node " + node +
                             " is enrolled already; enrolling it again (a new AK, "
                             "its history restarted) needs the operator's --re-enrol");
  }
  // A pending challenge is the node's for a while: a stranger who knows the
  // node's public EK cannot replace it with an AK of its own meanwhile.
  if (auto pending = ReadJson(nd, kEnrolmentFile);
      pending.ok() && pending->contains("secret") && pending->contains("enrolled_unix") &&
      (*pending)["enrolled_unix"].is_number_unsigned() && !options.re_enrol &&
      (*pending)["enrolled_unix"].get<uint64_t>() + kPendingEnrolmentSeconds > NowUnix()) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "node " + node + " has a pending challenge; it may enrol again " +
                             std::to_string(kPendingEnrolmentSeconds) +
                             " s after it (or the operator with --re-enrol)");
  }
  json enrolment = {
      {"version", 1},
      {"node", node},
      {"ek_public", crypto::ToHex(tpmobj::MarshalTpm2bPublic(req.ek))},
      {"ak_public", crypto::ToHex(tpmobj::MarshalTpm2bPublic(req.ak))},
      {"ek_trust", options.ca_files.empty() ? "pinned" : "certificate"},
      {"secret", crypto::ToHex(secret)},
      {"enrolled_unix", NowUnix()},
  };
  VIGIL_RETURN_IF_ERROR(nd.WriteAtomic(kEnrolmentFile, enrolment.dump(2) + "\n"));
  return challenge.dump() + "\n";
}

Status Service::Activate(const std::string& node, std::string_view secret_hex) {
  if (db_) return db_->Activate(node, secret_hex);
  VIGIL_ASSIGN_OR_RETURN(daemon::StateDir nd, OpenKnownNode(node));
  VIGIL_ASSIGN_OR_RETURN(json enrolment, ReadJson(nd, kEnrolmentFile));
  if (!enrolment.contains("secret") || !enrolment["secret"].is_string()) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "node " + node + " has no open credential challenge (enrol first)");
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> expected,
                         crypto::FromHex(enrolment["secret"].get<std::string>()));
  auto got = crypto::FromHex(secret_hex);
  // One try per challenge: a wrong answer ends it (no guessing).
  enrolment.erase("secret");
  VIGIL_RETURN_IF_ERROR(nd.WriteAtomic(kEnrolmentFile, enrolment.dump(2) + "\n"));
  if (!got.ok() || !attest::SecretsEqual(*got, expected)) {
    return Status::Error(ErrorCode::kMismatch,
                         "the credential was not activated: the AK is not in the TPM of that EK "
                         "(enrol again)");
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> ak,
                         crypto::FromHex(enrolment["ak_public"].get<std::string>()));
  attest::NodeState state;
  state.node = node;
  VIGIL_ASSIGN_OR_RETURN(state.ak, tpmobj::ParseTpm2bPublic(ak));
  return nd.WriteAtomic(kStateFile, attest::SerializeNodeState(state));
}

Result<std::optional<attest::NodeState>> Service::LoadState(const daemon::StateDir& nd,
                                                            const std::string& node) {
  const std::string path = NodeDir(node) + "/" + kStateFile;
  const auto identity = FileIdentity(path);
  if (identity) {
    const auto it = parsed_states_.find(node);
    if (it != parsed_states_.end() && it->second.file == *identity) {
      return std::optional<attest::NodeState>(it->second.state);
    }
  }
  parsed_states_.erase(node);
  VIGIL_ASSIGN_OR_RETURN(std::optional<std::string> text, nd.Read(kStateFile));
  if (!text) return std::optional<attest::NodeState>();
  VIGIL_ASSIGN_OR_RETURN(attest::NodeState state, attest::ParseNodeState(*text));
  // Read after the identity: if the file was replaced in between, the
  // next call sees another identity and reads it again.
  if (identity) parsed_states_[node] = ParsedState{*identity, state};
  return std::optional<attest::NodeState>(std::move(state));
}

Status Service::SaveState(daemon::StateDir& nd, const std::string& node,
                          const attest::NodeState& state) {
  parsed_states_.erase(node);
  VIGIL_RETURN_IF_ERROR(nd.WriteAtomic(kStateFile, attest::SerializeNodeState(state),
                                       daemon::StateDir::Sync::kNeverTorn));
  // Still under nd's lock: the file just written is this state.
  if (const auto identity = FileIdentity(NodeDir(node) + "/" + kStateFile)) {
    parsed_states_[node] = ParsedState{*identity, state};
  }
  return Status::Ok();
}

Service::OpenNonces Service::LoadNonces(const daemon::StateDir& nd, const std::string& node) const {
  if (nonce_store_ == NonceStore::kMemory) {
    const auto it = memory_nonces_.find(node);
    return it == memory_nonces_.end() ? OpenNonces{} : it->second;
  }
  // A missing or unreadable file: no open nonce (evidence is refused, the
  // node asks again).
  OpenNonces out;
  if (auto old = ReadJson(nd, kNoncesFile); old.ok()) {
    for (const auto& [nonce, expiry] : old->items()) {
      if (expiry.is_number_unsigned()) out[nonce] = expiry.get<uint64_t>();
    }
  }
  return out;
}

Status Service::SaveNonces(daemon::StateDir& nd, const std::string& node, OpenNonces nonces) {
  if (nonce_store_ == NonceStore::kMemory) {
    if (nonces.empty()) {
      memory_nonces_.erase(node);
    } else {
      memory_nonces_[node] = std::move(nonces);
    }
    return Status::Ok();
  }
  json j = json::object();
  for (const auto& [nonce, expiry] : nonces) j[nonce] = expiry;
  return nd.WriteAtomic(kNoncesFile, j.dump() + "\n");
}

Result<std::string> Service::IssueNonce(const std::string& node) {
  if (db_) return db_->IssueNonce(node);
  VIGIL_ASSIGN_OR_RETURN(daemon::StateDir nd, OpenKnownNode(node));
  VIGIL_ASSIGN_OR_RETURN(std::optional<attest::NodeState> loaded, LoadState(nd, node));
  if (!loaded) {
    return Status::Error(ErrorCode::kNotFound, "node " + node + " is not enrolled and activated");
  }
  const attest::NodeState& state = *loaded;
  const uint64_t now = NowUnix();
  OpenNonces kept;
  for (const auto& [nonce, expiry] : LoadNonces(nd, node)) {
    if (expiry > now) kept[nonce] = expiry;
  }
  // Anyone may ask for a node's nonce (the id is no secret): the oldest
  // open nonce gives way, so asking cannot lock the node out.
  while (kept.size() >= kMaxOpenNonces) {
    auto oldest = kept.begin();
    for (auto it = kept.begin(); it != kept.end(); ++it) {
      if (it->second < oldest->second) oldest = it;
    }
    kept.erase(oldest);
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> nonce, RandomBytes(kNonceBytes));
  const uint64_t expires = now + policy_.nonce_ttl_seconds;
  kept[crypto::ToHex(nonce)] = expires;
  VIGIL_RETURN_IF_ERROR(SaveNonces(nd, node, std::move(kept)));
  return NonceReplyJson(node, state, nonce, expires);
}

std::string NonceReplyJson(const std::string& node, const attest::NodeState& state,
                           std::span<const uint8_t> nonce, uint64_t expires) {
  // Where the node's next segment starts: the log at from_seq and the
  // events after events_after, of `instance` (empty: nothing verified yet;
  // another instance on the node means it starts over at log seq 1).
  json out = {{"node", node},
              {"nonce", crypto::ToHex(nonce)},
              {"instance", crypto::ToHex(state.instance_id)},
              {"from_seq", state.next_log_seq},
              {"events_after", state.anchor.last_seq},
              // anchor=ima: IMA's entries from ima_from_entry on, if the
              // node's boot is still the one of ima_reset_count and
              // ima_restart_count (the TPM's counts in its quote);
              // otherwise from entry 0.
              {"ima_from_entry", state.ima ? state.ima->entries : 0},
              {"ima_reset_count", state.ima ? json(state.ima->reset_count) : json(nullptr)},
              {"ima_restart_count", state.ima ? json(state.ima->restart_count) : json(nullptr)},
              {"expires_unix", expires}};
  return out.dump() + "\n";
}

Result<attest::AttestationResult> Service::Verify(std::string_view evidence_json) {
  VIGIL_ASSIGN_OR_RETURN(attest::Evidence evidence, attest::ParseEvidence(evidence_json));
  return Verify(evidence, evidence_json);
}

attest::AttestationResult DecideEvidence(const attest::Policy& policy,
                                         const attest::NodeState& state,
                                         const attest::Evidence& evidence,
                                         std::optional<uint64_t> nonce_expiry, uint64_t now) {
  attest::AttestationResult result;
  if (!nonce_expiry) {
    result.next = state;
    result.reasons.push_back("nonce: not issued by this verifier, or already answered (replay)");
    return result;
  }
  const uint64_t expiry = *nonce_expiry;
  if (expiry <= now) {
    result.next = state;
    result.reasons.push_back("nonce: expired (stale evidence)");
    return result;
  }
  // When the nonce was issued (its expiry less the TTL; at most now): what
  // the evidence shows is no older than that.
  const uint64_t issued_at =
      std::min(now, expiry > policy.nonce_ttl_seconds ? expiry - policy.nonce_ttl_seconds : 0);
  return attest::VerifyEvidence(policy, state, evidence, evidence.nonce, issued_at);
}

Result<attest::AttestationResult> Service::Verify(const attest::Evidence& evidence,
                                                  std::string_view body) {
  if (db_) return db_->Verify(evidence, body);
  VIGIL_ASSIGN_OR_RETURN(daemon::StateDir nd, OpenKnownNode(evidence.node));
  VIGIL_ASSIGN_OR_RETURN(std::optional<attest::NodeState> loaded, LoadState(nd, evidence.node));
  if (!loaded) {
    return Status::Error(ErrorCode::kNotFound,
                         "node " + evidence.node + " is not enrolled and activated");
  }
  attest::NodeState& state = *loaded;
  // The nonce must be one we issued, unexpired; it is consumed either way,
  // so the same evidence (or a replay of it) is never decided twice.
  OpenNonces nonces = LoadNonces(nd, evidence.node);
  const std::string nonce_hex = crypto::ToHex(evidence.nonce);
  const auto it = nonces.find(nonce_hex);
  const bool issued = it != nonces.end();
  const uint64_t expiry = issued ? it->second : 0;
  if (issued) {
    nonces.erase(it);
    VIGIL_RETURN_IF_ERROR(SaveNonces(nd, evidence.node, std::move(nonces)));
  }
  attest::AttestationResult result = DecideEvidence(
      policy_, state, evidence, issued ? std::optional<uint64_t>(expiry) : std::nullopt, NowUnix());
  // Never torn, not necessarily durable: a crash may lose this round (the
  // state before it is whole, and the node must cover the round again from
  // there; its nonce is gone either way). docs/attestation.md.
  if (result.trusted) VIGIL_RETURN_IF_ERROR(SaveState(nd, evidence.node, result.next));
  return result;
}

Result<std::vector<std::pair<std::string, uint64_t>>> Service::ActivatedNodes() const {
  if (db_) return db_->ActivatedNodes();
  std::vector<std::pair<std::string, uint64_t>> out;
  const std::string nodes = dir_ + "/nodes";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(nodes.c_str()), ::closedir);
  if (!d) return Status::FromErrno(errno, "reading " + nodes);
  while (const dirent* e = ::readdir(d.get())) {
    const std::string node = e->d_name;
    if (!CheckNodeId(node).ok()) continue;
    auto nd = OpenKnownNode(node);
    if (!nd.ok()) continue;
    auto text = nd->Read(kStateFile);
    if (!text.ok() || !*text) continue;  // enrolled, not activated
    auto state = attest::ParseNodeState(**text);
    if (!state.ok()) {
      return Status::Error(state.status().code(),
                           node + "/" + kStateFile + ": " + state.status().message());
    }
    out.emplace_back(node, state->last_attested_unix);
  }
  return out;
}

namespace {
constexpr char kChannelsFile[] = "channels.json";

Status NoChannelsInDatabase() {
  return Status::Error(ErrorCode::kUnsupported,
                       "serial channels are bound in the state directory (--state), not with "
                       "--database");
}
}  // namespace

Result<std::optional<std::string>> Service::ChannelNode(const std::string& channel) const {
  if (db_) return NoChannelsInDatabase();
  VIGIL_ASSIGN_OR_RETURN(daemon::StateDir top, daemon::StateDir::Open(dir_));
  VIGIL_ASSIGN_OR_RETURN(std::optional<std::string> text, top.Read(kChannelsFile));
  if (!text) return std::optional<std::string>();
  const json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) {
    return Status::Error(ErrorCode::kMalformed, dir_ + "/" + kChannelsFile + ": not a JSON object");
  }
  const auto it = j.find(channel);
  if (it == j.end()) return std::optional<std::string>();
  if (!it->is_string() || !CheckNodeId(it->get<std::string>()).ok()) {
    return Status::Error(ErrorCode::kMalformed,
                         dir_ + "/" + kChannelsFile + ": " + channel + ": not a node id");
  }
  return std::optional<std::string>(it->get<std::string>());
}

Status Service::BindChannel(const std::string& channel, const std::string& node) {
  if (db_) return NoChannelsInDatabase();
  VIGIL_RETURN_IF_ERROR(CheckNodeId(node));
  VIGIL_ASSIGN_OR_RETURN(daemon::StateDir top, daemon::StateDir::Open(dir_));
  json j = json::object();
  if (auto text = top.Read(kChannelsFile); text.ok() && *text) {
    j = json::parse(**text, nullptr, false);
    if (!j.is_object()) {
      return Status::Error(ErrorCode::kMalformed,
                           dir_ + "/" + kChannelsFile + ": not a JSON object");
    }
  }
  // One channel per node: a second guest cannot take a node's nonces.
  for (const auto& [other, bound] : j.items()) {
    if (other != channel && bound.is_string() && bound.get<std::string>() == node) {
      return Status::Error(ErrorCode::kPermissionDenied,
                           "node " + node + " speaks through channel " + other);
    }
  }
  j[channel] = node;
  return top.WriteAtomic(kChannelsFile, j.dump(2) + "\n");
}

Status Service::CheckChannel(const std::string& channel, const std::string& node,
                             bool* bind) const {
  *bind = false;
  if (channel.empty()) return Status::Ok();
  if (db_) return NoChannelsInDatabase();
  VIGIL_ASSIGN_OR_RETURN(daemon::StateDir top, daemon::StateDir::Open(dir_));
  VIGIL_ASSIGN_OR_RETURN(std::optional<std::string> text, top.Read(kChannelsFile));
  const json j = text ? json::parse(*text, nullptr, false) : json::object();
  if (!j.is_object()) {
    return Status::Error(ErrorCode::kMalformed, dir_ + "/" + kChannelsFile + ": not a JSON object");
  }
  for (const auto& [name, bound] : j.items()) {
    if (!bound.is_string()) continue;
    const std::string b = bound.get<std::string>();
    if (name == channel && b != node) {
      return Status::Error(ErrorCode::kPermissionDenied,
                           "this channel speaks for node " + b + " only");
    }
    if (name != channel && b == node) {
      return Status::Error(ErrorCode::kPermissionDenied,
                           "node " + node + " speaks through another channel");
    }
  }
  *bind = !j.contains(channel);
  return Status::Ok();
}

}  // namespace vigil::verifier
