#include "vigil/attest/verifier.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "vigil/attest/evidence.h"
#include "vigil/attest/key_certification.h"
#include "vigil/attest/quote.h"
#include "vigil/chain.h"
#include "vigil/digest.h"
#include "vigil/ima.h"
#include "vigil/records.h"
#include "vigil/replay.h"

namespace vigil::attest {
namespace {

using nlohmann::json;

constexpr uint32_t kNodeStateVersion = 1;
constexpr uint32_t kDevPcrConfig = 16;
constexpr uint32_t kDevPcrEvents = 23;
constexpr uint64_t kFirstLogSeq = 1;  // the module's log starts at seq 1

// The registers a quote must cover for the policy's anchor, SHA-256 bank.
std::vector<PcrSelection> ExpectedSelection(const Policy& policy) {
  if (policy.anchor == VIGIL_ANCHOR_IMA) return {PcrSelection{TPM2_ALG_SHA256, {ima::kImaPcr}}};
  return {PcrSelection{TPM2_ALG_SHA256, {kDevPcrConfig, kDevPcrEvents}}};
}

std::optional<crypto::Digest> QuotedValue(const std::vector<PcrValue>& values, uint16_t alg,
                                          uint32_t pcr) {
  for (const PcrValue& v : values) {
    if (v.alg == alg && v.pcr == pcr) return v.value;
  }
  return std::nullopt;
}

// What the log's MEASURE records say about the module, checked against the
// policy's allow-lists. Returns the reasons it does not hold.
std::vector<std::string> CheckMeasurements(const Policy& policy,
                                           const std::vector<records::Record>& log) {
  std::vector<std::string> reasons;
  for (const records::Record& rec : log) {
    if (rec.type() != VIGIL_LOG_MEASURE) continue;
    auto m = rec.As<vigil_log_measure>();
    if (!m) {
      reasons.push_back("log seq " + std::to_string(rec.seq()) + ": a malformed MEASURE record");
      continue;
    }
    const std::string digest = crypto::ToHex(std::span<const uint8_t>(m->digest, 32));
    const std::string where = "log seq " + std::to_string(rec.seq()) + ": ";
    switch (m->kind) {
      case VIGIL_MEASURE_MODULE:
        if (!policy.module_digests.contains(digest)) {
          reasons.push_back(where + "module identity " + digest + " is not allowed by policy");
        }
        break;
      case VIGIL_MEASURE_PARAMS:
        if (!policy.params_digests.contains(digest)) {
          reasons.push_back(where + "module parameters " + digest + " are not allowed by policy");
        }
        break;
      case VIGIL_MEASURE_PRODUCERS:
        if (!policy.producer_set_digests.contains(digest)) {
          reasons.push_back(where + "producer set " + digest + " is not allowed by policy");
        }
        break;
      default:
        break;  // user measurements, single producers, windows: recorded, not ruled on
    }
  }
  return reasons;
}

// Findings that break trust whatever the verdicts say.
bool FindingForbidden(const Policy& policy, const verify::Finding& f) {
  using K = verify::Finding::Kind;
  switch (f.kind) {
    case K::kDevAnchor:
      return !policy.allow_dev_anchor;
    case K::kLateRecord:
    case K::kAnchorUnchecked:
    // The same set again, liveness counted across it; each sealed set is
    // held against the policy in CheckProducersAndIdentity.
    case K::kProducersResealed:
      return false;
    default:
      return true;
  }
}

// A new instance's identity and every checkpoint's producer set. The
// module measures MODULE and PARAMS at load, before any checkpoint; a
// checkpoint names the sealed producer set it ran with (0: none). A log
// without them, or whose newest checkpoint has no sealed set (nothing
// observes the node), is not trusted.
std::vector<std::string> CheckProducersAndIdentity(const Policy& policy,
                                                   const std::vector<records::Record>& log,
                                                   bool new_instance) {
  std::vector<std::string> reasons;
  bool module = false, params = false, any_checkpoint = false;
  std::optional<vigil_log_checkpoint> last;
  for (const records::Record& rec : log) {
    if (auto m = rec.As<vigil_log_measure>()) {
      if (!any_checkpoint && m->kind == VIGIL_MEASURE_MODULE) module = true;
      if (!any_checkpoint && m->kind == VIGIL_MEASURE_PARAMS) params = true;
      // Every set ever sealed, not only the ones a checkpoint names: a set
      // sealed and replaced between two checkpoints could have committed.
      if (m->kind == VIGIL_MEASURE_PRODUCERS) {
        const std::string digest =
            crypto::ToHex(std::span<const uint8_t>(m->digest, VIGIL_DIGEST_LEN));
        if (!policy.producer_set_digests.contains(digest)) {
          reasons.push_back("log seq " + std::to_string(rec.seq()) + ": sealed producer set " +
                            digest + " is not allowed by policy");
        }
      }
      continue;
    }
    auto cp = rec.As<vigil_log_checkpoint>();
    if (!cp) continue;
    any_checkpoint = true;
    last = *cp;
    if (cp->producers_gen == 0) continue;
    const std::string digest =
        crypto::ToHex(std::span<const uint8_t>(cp->producers_digest, VIGIL_DIGEST_LEN));
    if (!policy.producer_set_digests.contains(digest)) {
      reasons.push_back("checkpoint log seq " + std::to_string(rec.seq()) + ": producer set " +
                        digest + " is not allowed by policy");
    }
  }
  if (new_instance && (!module || !params)) {
    reasons.push_back(
        "module: the new instance's log does not measure its identity and "
        "parameters before its first checkpoint");
  }
  if (last && last->producers_gen == 0) {
    reasons.push_back("producers: no sealed producer set at the newest checkpoint (log seq " +
                      std::to_string(last->hdr.seq) + "): nothing observes the node");
  }
  return reasons;
}

// The module instances of the boot's IMA list in the order of their first
// entry, `order` (from the stored point) extended with the module's
// entries at indices [from, prefix).
void UpdateInstances(std::vector<ImaPoint::Instance>& order,
                     const std::vector<ima::VigilEntry>& entries, size_t from, size_t prefix) {
  for (const ima::VigilEntry& e : entries) {
    if (e.index < from || e.index >= prefix) continue;
    // Only what PCR 10 holds: an entry logged for another PCR extends
    // nothing the quote covers (root can add one to the list it sends).
    if (e.pcr != ima::kImaPcr) continue;
    auto it = std::find_if(order.begin(), order.end(),
                           [&](const ImaPoint::Instance& o) { return o.instance == e.instance; });
    if (it == order.end()) {
      order.push_back(ImaPoint::Instance{e.instance, e.index, 0, false});
      it = order.end() - 1;
    }
    if (e.kind == "checkpoint" && e.seq >= it->last_checkpoint) {
      it->last_checkpoint = e.seq;
      vigil_log_checkpoint cp{};
      it->sealed = e.record.size() == sizeof(cp) &&
                   (std::memcpy(&cp, e.record.data(), sizeof(cp)), true) &&
                   cp.reason == VIGIL_CP_UNLOAD;
    }
  }
}

// Where the evidence's instance stands among the module instances in the
// quoted IMA prefix (`order`). Root can extend PCR 10 itself (locality 0),
// so entries can be ADDED to what IMA's list replays to, never removed: the
// instances the real module wrote are all there, in order. So:
//   - the segment must reach the newest checkpoint of its instance that the
//     quote covers (no withholding a tail);
//   - a new instance must be the first of the boot, or (allow_reload) come
//     after instances that all ended with their final, sealed checkpoint;
//   - the followed instance, if in this boot's list, must have ended so,
//     and its history verified up to that final checkpoint.
Status CheckInstanceOrder(const Policy& policy, const NodeState& state, const Evidence& ev,
                          const std::vector<ImaPoint::Instance>& order,
                          const std::vector<records::Record>& segment) {
  const std::string me = crypto::ToHex(std::span<const uint8_t>(ev.module.instance.data(), 4));
  const auto mine = std::find_if(order.begin(), order.end(),
                                 [&](const ImaPoint::Instance& o) { return o.instance == me; });
  if (mine == order.end()) {
    return Status::Error(ErrorCode::kMismatch,
                         "ima: the quoted IMA log holds no entry of instance " + me);
  }
  uint64_t segment_last_checkpoint = 0;
  for (const records::Record& r : segment) {
    if (r.type() == VIGIL_LOG_CHECKPOINT) segment_last_checkpoint = r.seq();
  }
  if (mine->last_checkpoint > segment_last_checkpoint) {
    return Status::Error(ErrorCode::kMismatch, "ima: the quoted IMA log holds checkpoint log seq " +
                                                   std::to_string(mine->last_checkpoint) +
                                                   " of the instance, past the segment's last (" +
                                                   std::to_string(segment_last_checkpoint) +
                                                   "): history withheld");
  }
  if (ev.log.from_seq != kFirstLogSeq) return Status::Ok();
  for (auto it = order.begin(); it != mine; ++it) {
    if (!policy.allow_reload) {
      return Status::Error(ErrorCode::kMismatch,
                           "module: instance " + me + " is not the first of this boot (" +
                               it->instance + " came before; policy allows one per boot)");
    }
    if (!it->sealed) {
      return Status::Error(ErrorCode::kMismatch,
                           "module: instance " + me + " follows instance " + it->instance +
                               ", which did not end with its final, sealed checkpoint");
    }
  }
  if (!state.instance_id.empty()) {
    const std::string followed =
        crypto::ToHex(std::span<const uint8_t>(state.instance_id.data(), 4));
    const auto f = std::find_if(order.begin(), order.end(), [&](const ImaPoint::Instance& o) {
      return o.instance == followed;
    });
    // The followed instance is not in this boot's list: the node rebooted.
    // What it logged after the last verified checkpoint went with its
    // memory, unless that checkpoint was its final one (a clean shutdown:
    // seal, push, power off). Root could otherwise act and reboot.
    if (f == order.end() && !policy.allow_unclean_reboot &&
        !(state.anchor.liveness && state.anchor.liveness->reason == VIGIL_CP_UNLOAD)) {
      return Status::Error(
          ErrorCode::kMismatch,
          "module: a new boot, and the followed instance " + followed +
              " was not verified up to its final, sealed checkpoint (verified up to log seq " +
              std::to_string(state.next_log_seq - 1) +
              "): what it logged after that was never read (allow_unclean_reboot accepts it)");
    }
    if (f != order.end() && f > mine) {
      return Status::Error(
          ErrorCode::kMismatch,
          "module: instance " + me + " is older than the followed instance " + followed);
    }
    // Leaving the followed instance within this boot: everything it logged
    // up to its final checkpoint must have been verified. Otherwise root
    // stops the collector, acts, unloads and loads again, and what the old
    // instance saw last (a silenced producer, the act itself) is never read.
    // Nor can an instance be skipped: the new one must come right after
    // the followed one (root loading, using and sealing an instance that
    // never sends evidence, then loading the next).
    if (f != order.end() && f < mine && f + 1 != mine) {
      return Status::Error(ErrorCode::kMismatch, "module: instance " + (f + 1)->instance +
                                                     " came between the followed instance " +
                                                     followed + " and " + me +
                                                     ": its history was never verified");
    }
    if (f != order.end() && f < mine && f->last_checkpoint >= state.next_log_seq) {
      return Status::Error(
          ErrorCode::kMismatch,
          "module: the followed instance " + followed + " ended (its last checkpoint is log seq " +
              std::to_string(f->last_checkpoint) + ") after the last verified point (log seq " +
              std::to_string(state.next_log_seq - 1) + "): its tail was never verified");
    }
  }
  return Status::Ok();
}

// vigild as IMA measured it: the digests of every file measurement
// (ima-ng, ima-sig) of a path named vigild among the entries at indices
// [from, prefix) of `ima_bytes`, whose first entry has index `base`.
Status CollectVigild(std::span<const uint8_t> ima_bytes, size_t base, size_t from, size_t prefix,
                     std::set<std::string>* digests) {
  VIGIL_ASSIGN_OR_RETURN(std::vector<ima::Entry> entries, ima::ParseBinaryLog(ima_bytes));
  for (size_t i = 0; i < entries.size(); ++i) {
    if (base + i < from || base + i >= prefix) continue;
    const ima::Entry& e = entries[i];
    if (e.violation || (e.template_name != "ima-ng" && e.template_name != "ima-sig")) continue;
    // Template data: u32 length + bytes per field (native order): d-ng
    // ("alg:\0" + digest), n-ng (path + \0), ...
    std::vector<std::span<const uint8_t>> fields;
    std::span<const uint8_t> rest(e.template_data);
    while (rest.size() >= 4 && fields.size() < 2) {
      uint32_t len = 0;
      std::memcpy(&len, rest.data(), 4);
      if (len > rest.size() - 4) break;
      fields.push_back(rest.subspan(4, len));
      rest = rest.subspan(4 + len);
    }
    if (fields.size() < 2) continue;
    std::string path(fields[1].begin(), fields[1].end());
    if (!path.empty() && path.back() == '\0') path.pop_back();
    const size_t slash = path.rfind('/');
    if ((slash == std::string::npos ? path : path.substr(slash + 1)) != "vigild") continue;
    const auto colon = std::find(fields[0].begin(), fields[0].end(), static_cast<uint8_t>(':'));
    if (colon == fields[0].end() || colon + 2 > fields[0].end()) continue;
    digests->insert(crypto::ToHex(std::span<const uint8_t>(colon + 2, fields[0].end())));
    if (digests->size() > kMaxCollectorDigests) {
      return Status::Error(ErrorCode::kMismatch, "collector: IMA measured vigild with more than " +
                                                     std::to_string(kMaxCollectorDigests) +
                                                     " different digests in this boot");
    }
  }
  return Status::Ok();
}

// The collector: when the policy lists digests, IMA measured vigild within
// the quoted list, every time with an allowed digest.
Status CheckCollector(const Policy& policy, const std::set<std::string>& digests) {
  if (policy.collector_digests.empty()) return Status::Ok();
  for (const std::string& d : digests) {
    if (!policy.collector_digests.contains(d)) {
      return Status::Error(ErrorCode::kMismatch, "collector: IMA measured vigild with digest " + d +
                                                     ", which the policy does not allow");
    }
  }
  if (digests.empty()) {
    return Status::Error(ErrorCode::kMismatch,
                         "collector: IMA measured no vigild within the quoted log (the policy "
                         "lists collector digests; IMA needs a rule that measures executables)");
  }
  return Status::Ok();
}

json AnchorJson(const verify::Anchor& a) {
  return {{"last_seq", a.last_seq},
          {"chain_head", crypto::ToHex(a.chain_head)},
          {"checkpoint_digest", crypto::ToHex(a.checkpoint_digest)},
          {"checkpoint_log_seq", a.checkpoint_log_seq},
          {"drops_total", a.drops_total},
          {"busy_total", a.busy_total},
          {"log_refused", a.log_refused}};
}

Status Bad(const std::string& where, const std::string& why) {
  return Status::Error(ErrorCode::kMalformed, "node state: " + where + " " + why);
}

Result<uint64_t> U64(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_unsigned()) return Bad(key, "must be an integer >= 0");
  return j[key].get<uint64_t>();
}

template <size_t N>
Status HexInto(const json& j, const char* key, std::array<uint8_t, N>& out) {
  if (!j.contains(key) || !j[key].is_string()) return Bad(key, "must be a hex string");
  auto bytes = crypto::FromHex(j[key].get<std::string>());
  if (!bytes.ok() || bytes->size() != N) return Bad(key, "must be " + std::to_string(N) + " bytes");
  std::memcpy(out.data(), bytes->data(), N);
  return Status::Ok();
}

json ImaPointJson(const ImaPoint& p) {
  json pcr10 = json::object();
  for (const auto& [alg, value] : p.pcr10) pcr10[crypto::AlgName(alg)] = crypto::ToHex(value);
  json instances = json::array();
  for (const ImaPoint::Instance& i : p.instances) {
    instances.push_back({{"instance", i.instance},
                         {"first_entry", i.first_entry},
                         {"last_checkpoint", i.last_checkpoint},
                         {"sealed", i.sealed}});
  }
  json pending = json::array();
  for (const ima::VigilEntry& e : p.pending) {
    pending.push_back({{"index", e.index},
                       {"instance", e.instance},
                       {"kind", e.kind},
                       {"seq", e.seq},
                       {"pcr", e.pcr},
                       {"record", crypto::ToHex(e.record)}});
  }
  return {{"reset_count", p.reset_count},
          {"restart_count", p.restart_count},
          {"entries", p.entries},
          {"pcr10", pcr10},
          {"instances", instances},
          {"pending", pending},
          {"collector_digests", p.collector_digests}};
}

uint16_t BankByName(const std::string& name) {
  for (uint16_t alg :
       {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512, TPM2_ALG_SM3_256}) {
    if (crypto::AlgName(alg) == name) return alg;
  }
  return 0;
}

bool IsInstanceName(const std::string& s) {
  return s.size() == 8 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

Result<ImaPoint> ParseImaPoint(const json& j) {
  if (!j.is_object()) return Bad("ima", "must be an object or null");
  ImaPoint p;
  VIGIL_ASSIGN_OR_RETURN(uint64_t reset, U64(j, "reset_count"));
  if (reset > UINT32_MAX) return Bad("ima.reset_count", "out of range");
  p.reset_count = static_cast<uint32_t>(reset);
  VIGIL_ASSIGN_OR_RETURN(uint64_t restart, U64(j, "restart_count"));
  if (restart > UINT32_MAX) return Bad("ima.restart_count", "out of range");
  p.restart_count = static_cast<uint32_t>(restart);
  VIGIL_ASSIGN_OR_RETURN(p.entries, U64(j, "entries"));
  if (!j.contains("pcr10") || !j["pcr10"].is_object() || j["pcr10"].empty()) {
    return Bad("ima.pcr10", "must be an object of bank values");
  }
  for (const auto& [name, value] : j["pcr10"].items()) {
    const uint16_t alg = BankByName(name);
    auto size = crypto::DigestSize(alg);
    if (alg == 0 || !size.ok() || !value.is_string()) return Bad("ima.pcr10", "bad bank " + name);
    auto bytes = crypto::FromHex(value.get<std::string>());
    if (!bytes.ok() || bytes->size() != *size) return Bad("ima.pcr10", "bad value for " + name);
    p.pcr10[alg] = std::move(bytes).value();
  }
  if (!j.contains("instances") || !j["instances"].is_array() ||
      j["instances"].size() > kMaxImaInstances) {
    return Bad("ima.instances", "must be an array");
  }
  for (const json& i : j["instances"]) {
    ImaPoint::Instance in;
    if (!i.is_object() || !i.contains("instance") || !i["instance"].is_string() ||
        !IsInstanceName(i["instance"].get<std::string>()) || !i.contains("sealed") ||
        !i["sealed"].is_boolean()) {
      return Bad("ima.instances", "malformed");
    }
    in.instance = i["instance"].get<std::string>();
    VIGIL_ASSIGN_OR_RETURN(in.first_entry, U64(i, "first_entry"));
    VIGIL_ASSIGN_OR_RETURN(in.last_checkpoint, U64(i, "last_checkpoint"));
    in.sealed = i["sealed"].get<bool>();
    if (in.first_entry >= p.entries) return Bad("ima.instances", "past the point");
    p.instances.push_back(std::move(in));
  }
  if (!j.contains("pending") || !j["pending"].is_array() || j["pending"].size() > kMaxImaPending) {
    return Bad("ima.pending", "must be an array");
  }
  for (const json& e : j["pending"]) {
    ima::VigilEntry v;
    if (!e.is_object() || !e.contains("instance") || !e["instance"].is_string() ||
        !IsInstanceName(e["instance"].get<std::string>()) || !e.contains("kind") ||
        !e["kind"].is_string() || !e.contains("record") || !e["record"].is_string()) {
      return Bad("ima.pending", "malformed");
    }
    v.instance = e["instance"].get<std::string>();
    v.kind = e["kind"].get<std::string>();
    VIGIL_ASSIGN_OR_RETURN(v.seq, U64(e, "seq"));
    VIGIL_ASSIGN_OR_RETURN(uint64_t pcr, U64(e, "pcr"));
    VIGIL_ASSIGN_OR_RETURN(uint64_t index, U64(e, "index"));
    if (pcr >= 24 || index >= p.entries) return Bad("ima.pending", "pcr or index out of range");
    v.pcr = static_cast<uint32_t>(pcr);
    v.index = static_cast<size_t>(index);
    VIGIL_ASSIGN_OR_RETURN(v.record, crypto::FromHex(e["record"].get<std::string>()));
    p.pending.push_back(std::move(v));
  }
  if (!j.contains("collector_digests") || !j["collector_digests"].is_array() ||
      j["collector_digests"].size() > kMaxCollectorDigests) {
    return Bad("ima.collector_digests", "must be an array");
  }
  for (const json& d : j["collector_digests"]) {
    if (!d.is_string()) return Bad("ima.collector_digests", "must hold strings");
    p.collector_digests.insert(d.get<std::string>());
  }
  return p;
}

}  // namespace

std::string SerializeNodeState(const NodeState& s) {
  json j = {
      {"version", kNodeStateVersion},
      {"node", s.node},
      {"ak_public", crypto::ToHex(tpmobj::MarshalTpm2bPublic(s.ak))},
      {"instance_id", crypto::ToHex(s.instance_id)},
      {"module_key", s.module_key
                         ? json{{"x", crypto::ToHex(std::span<const uint8_t>(s.module_key->x, 32))},
                                {"y", crypto::ToHex(std::span<const uint8_t>(s.module_key->y, 32))}}
                         : json(nullptr)},
      {"anchor", AnchorJson(s.anchor)},
      {"liveness", s.anchor.liveness ? json(crypto::ToHex(std::span<const uint8_t>(
                                           reinterpret_cast<const uint8_t*>(&*s.anchor.liveness),
                                           sizeof(vigil_log_checkpoint))))
                                     : json(nullptr)},
      {"liveness_deficit", s.anchor.liveness_deficit},
      {"liveness_roles", s.anchor.liveness_roles ? json(*s.anchor.liveness_roles) : json(nullptr)},
      {"next_log_seq", s.next_log_seq},
      {"ima", s.ima ? ImaPointJson(*s.ima) : json(nullptr)},
      {"clock", s.clock ? json{{"clock", s.clock->clock},
                               {"reset_count", s.clock->resetCount},
                               {"restart_count", s.clock->restartCount},
                               {"safe", s.clock->safe != 0}}
                        : json(nullptr)},
      {"evidence_count", s.evidence_count},
      {"last_attested_unix", s.last_attested_unix},
  };
  return j.dump(2) + "\n";
}

Result<NodeState> ParseNodeState(std::string_view text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad("", "is not a JSON object");
  if (!j.contains("version") || j["version"] != kNodeStateVersion) {
    return Status::Error(ErrorCode::kUnsupported, "node state: unknown version");
  }
  NodeState s;
  if (!j.contains("node") || !j["node"].is_string()) return Bad("node", "must be a string");
  s.node = j["node"].get<std::string>();
  if (!j.contains("ak_public") || !j["ak_public"].is_string()) return Bad("ak_public", "missing");
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> ak,
                         crypto::FromHex(j["ak_public"].get<std::string>()));
  VIGIL_ASSIGN_OR_RETURN(s.ak, tpmobj::ParseTpm2bPublic(ak));
  if (!j.contains("instance_id") || !j["instance_id"].is_string()) {
    return Bad("instance_id", "must be a hex string");
  }
  VIGIL_ASSIGN_OR_RETURN(s.instance_id, crypto::FromHex(j["instance_id"].get<std::string>()));
  if (!s.instance_id.empty() && s.instance_id.size() != s.anchor.instance_id.size()) {
    return Bad("instance_id", "has the wrong length");
  }
  if (!s.instance_id.empty()) {
    std::memcpy(s.anchor.instance_id.data(), s.instance_id.data(), s.instance_id.size());
  }
  if (j.contains("module_key") && !j["module_key"].is_null()) {
    std::array<uint8_t, 32> x{}, y{};
    VIGIL_RETURN_IF_ERROR(HexInto(j["module_key"], "x", x));
    VIGIL_RETURN_IF_ERROR(HexInto(j["module_key"], "y", y));
    crypto::EcPoint p;
    std::memcpy(p.x, x.data(), 32);
    std::memcpy(p.y, y.data(), 32);
    s.module_key = p;
    s.anchor.key = p;
  }
  if (!j.contains("anchor") || !j["anchor"].is_object()) return Bad("anchor", "must be an object");
  const json& a = j["anchor"];
  VIGIL_ASSIGN_OR_RETURN(s.anchor.last_seq, U64(a, "last_seq"));
  VIGIL_RETURN_IF_ERROR(HexInto(a, "chain_head", s.anchor.chain_head));
  VIGIL_RETURN_IF_ERROR(HexInto(a, "checkpoint_digest", s.anchor.checkpoint_digest));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.checkpoint_log_seq, U64(a, "checkpoint_log_seq"));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.drops_total, U64(a, "drops_total"));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.busy_total, U64(a, "busy_total"));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.log_refused, U64(a, "log_refused"));
  if (j.contains("liveness") && !j["liveness"].is_null()) {
    if (!j["liveness"].is_string()) return Bad("liveness", "must be a hex string or null");
    auto bytes = crypto::FromHex(j["liveness"].get<std::string>());
    if (!bytes.ok() || bytes->size() != sizeof(vigil_log_checkpoint)) {
      return Bad("liveness", "must be one checkpoint record");
    }
    vigil_log_checkpoint cp{};
    std::memcpy(&cp, bytes->data(), sizeof(cp));
    if (cp.hdr.type != VIGIL_LOG_CHECKPOINT) return Bad("liveness", "is not a checkpoint record");
    s.anchor.liveness = cp;
  }
  // Absent in states written before the count was kept: it starts at 0.
  if (j.contains("liveness_deficit")) {
    const json& d = j["liveness_deficit"];
    if (!d.is_array() || d.size() != s.anchor.liveness_deficit.size()) {
      return Bad("liveness_deficit", "must be an array of " +
                                         std::to_string(s.anchor.liveness_deficit.size()) +
                                         " integers");
    }
    for (size_t i = 0; i < d.size(); ++i) {
      // Firings minus runs: far below 2^53 on any real node.
      if (!d[i].is_number_integer() || d[i].get<int64_t>() > (int64_t{1} << 53) ||
          d[i].get<int64_t>() < -(int64_t{1} << 53)) {
        return Bad("liveness_deficit", "must hold integers within +-2^53");
      }
      s.anchor.liveness_deficit[i] = d[i].get<int64_t>();
    }
  }
  if (j.contains("liveness_roles") && !j["liveness_roles"].is_null()) {
    const json& r = j["liveness_roles"];
    if (!r.is_number_unsigned() || r.get<uint64_t>() > 0xffffffffu) {
      return Bad("liveness_roles", "must be a 32-bit unsigned integer or null");
    }
    s.anchor.liveness_roles = r.get<uint32_t>();
  }
  VIGIL_ASSIGN_OR_RETURN(s.next_log_seq, U64(j, "next_log_seq"));
  // Absent in states written before incremental IMA: the next evidence
  // then starts at entry 0.
  if (j.contains("ima") && !j["ima"].is_null()) {
    VIGIL_ASSIGN_OR_RETURN(s.ima, ParseImaPoint(j["ima"]));
  }
  if (j.contains("clock") && !j["clock"].is_null()) {
    const json& c = j["clock"];
    TPMS_CLOCK_INFO clock{};
    VIGIL_ASSIGN_OR_RETURN(clock.clock, U64(c, "clock"));
    VIGIL_ASSIGN_OR_RETURN(uint64_t reset, U64(c, "reset_count"));
    VIGIL_ASSIGN_OR_RETURN(uint64_t restart, U64(c, "restart_count"));
    if (reset > UINT32_MAX || restart > UINT32_MAX) return Bad("clock", "counts out of range");
    clock.resetCount = static_cast<uint32_t>(reset);
    clock.restartCount = static_cast<uint32_t>(restart);
    if (!c.contains("safe") || !c["safe"].is_boolean()) return Bad("clock.safe", "must be a bool");
    clock.safe = c["safe"].get<bool>() ? 1 : 0;
    s.clock = clock;
  }
  VIGIL_ASSIGN_OR_RETURN(s.evidence_count, U64(j, "evidence_count"));
  VIGIL_ASSIGN_OR_RETURN(s.last_attested_unix, U64(j, "last_attested_unix"));
  return s;
}

Status FeedSegment(verify::StreamVerifier& verifier, std::span<const uint8_t> event_bytes,
                   const std::vector<records::Record>& log) {
  // One record at a time when the events come in seq order (as vigild
  // writes them): a segment is never held decoded as a whole.
  bool sorted = true;
  uint64_t prev = 0;
  for (size_t off = 0; off < event_bytes.size();) {
    auto rec = records::Record::Decode(event_bytes.subspan(off));
    if (!rec.ok()) return rec.status();
    sorted = sorted && rec->seq() >= prev;
    prev = rec->seq();
    off += rec->bytes().size();
  }
  std::vector<records::Record> sorted_events;
  if (!sorted) {
    VIGIL_ASSIGN_OR_RETURN(sorted_events, records::DecodeStream(event_bytes));
    std::stable_sort(
        sorted_events.begin(), sorted_events.end(),
        [](const records::Record& a, const records::Record& b) { return a.seq() < b.seq(); });
  }
  size_t next = 0;  // in sorted_events, or a byte offset in event_bytes
  const auto feed_up_to = [&](uint64_t last) {
    if (!sorted) {
      while (next < sorted_events.size() && sorted_events[next].seq() <= last) {
        verifier.AddEvent(std::move(sorted_events[next++]));
      }
      return;
    }
    while (next < event_bytes.size()) {
      auto rec = records::Record::Decode(event_bytes.subspan(next));  // decoded once above
      if (!rec.ok() || rec->seq() > last) return;
      next += rec->bytes().size();
      verifier.AddEvent(std::move(rec).value());
    }
  };
  for (const records::Record& r : log) {
    if (r.type() == VIGIL_LOG_CHECKPOINT) {
      if (auto cp = r.As<vigil_log_checkpoint>()) feed_up_to(cp->last_seq);
    }
    verifier.AddLog(r);
  }
  feed_up_to(UINT64_MAX);
  verifier.Finish();
  return Status::Ok();
}

AttestationResult VerifyEvidence(const Policy& policy, const NodeState& state, const Evidence& ev,
                                 std::span<const uint8_t> nonce, uint64_t now_unix) {
  AttestationResult out;
  out.next = state;
  const auto refuse = [&](std::string why) {
    out.reasons.push_back(std::move(why));
    return out;
  };

  // 1. Freshness: the nonce this verifier issued, compared in constant time.
  if (ev.nonce.size() != nonce.size() || nonce.empty() ||
      CRYPTO_memcmp(ev.nonce.data(), nonce.data(), nonce.size()) != 0) {
    return refuse("nonce: the evidence does not answer the nonce this verifier issued");
  }
  if (ev.node != state.node) return refuse("node: evidence names node " + ev.node.substr(0, 80));

  // 2. The quote, signed by the enrolled AK over our nonce, and its clock.
  auto facts = CheckQuote(state.ak, ev.quote.attest, ev.quote.signature, nonce);
  if (!facts.ok()) return refuse("quote: " + facts.status().message());
  auto clock = CheckClock(state.clock ? &*state.clock : nullptr, facts->clock);
  if (!clock.ok()) return refuse("clock: " + clock.status().message());
  out.tpm_reset = clock->event == ClockEvent::kReset;

  // 3. The anchor registers, exactly, and their values.
  const std::vector<PcrSelection> expected = ExpectedSelection(policy);
  if (Status st = CheckPcrs(*facts, expected, ev.pcrs); !st.ok()) {
    return refuse("pcrs: " + st.message());
  }

  // 4. The log segment: decoded, and starting exactly where we stopped.
  auto log = records::DecodeStream(ev.log.records);
  if (!log.ok()) return refuse("log: " + log.status().message());
  // The events are checked here record by record and decoded again as the
  // replay takes them (FeedSegment), never held decoded as a whole.
  size_t event_count = 0;
  uint64_t last_event_seq = 0;
  uint64_t first_event_seq = UINT64_MAX;
  for (size_t off = 0; off < ev.events.size(); ++event_count) {
    auto rec = records::Record::Decode(std::span<const uint8_t>(ev.events).subspan(off));
    if (!rec.ok()) {
      return refuse("events: at offset " + std::to_string(off) + ": " + rec.status().message());
    }
    last_event_seq = std::max(last_event_seq, rec->seq());
    first_event_seq = std::min(first_event_seq, rec->seq());
    off += rec->bytes().size();
  }
  if (log->empty()) return refuse("log: the segment is empty");
  // A new instance (reboot, reload) may start over at seq 1 at any time.
  const uint64_t expected_from =
      ev.log.from_seq == kFirstLogSeq ? kFirstLogSeq : state.next_log_seq;
  if (ev.log.from_seq != expected_from || log->front().seq() != ev.log.from_seq) {
    return refuse("log: the segment starts at log seq " + std::to_string(log->front().seq()) +
                  " (from_seq " + std::to_string(ev.log.from_seq) + "); this verifier expects " +
                  std::to_string(state.next_log_seq) + " (an overlap or a gap)");
  }
  if (log->back().type() != VIGIL_LOG_SIGNATURE) {
    return refuse("log: the segment must end with a checkpoint's SIGNATURE record (it ends with " +
                  std::string(records::TypeName(log->back().type())) + ")");
  }
  for (size_t i = 1; i < log->size(); ++i) {
    if ((*log)[i].seq() != (*log)[i - 1].seq() + 1) {
      return refuse("log: seq " + std::to_string((*log)[i].seq()) + " follows " +
                    std::to_string((*log)[i - 1].seq()) + " (records missing or reordered)");
    }
  }

  // A new module instance (first evidence, reboot, reload) starts at log
  // seq 1 with its KEY record; its key must come with the AK's
  // certification. Otherwise the followed instance goes on.
  NodeState& next = out.next;
  const bool new_instance = ev.log.from_seq == kFirstLogSeq;
  const bool same_as_followed = !state.instance_id.empty() &&
                                std::equal(state.instance_id.begin(), state.instance_id.end(),
                                           ev.module.instance.begin(), ev.module.instance.end());
  if (new_instance && same_as_followed) {
    // Starting the followed instance over would rewind what was verified
    // and hide everything after its first checkpoints.
    return refuse("log: the followed module instance cannot start over at seq 1 (a rewind)");
  }
  if (!new_instance && !same_as_followed) {
    return refuse(
        "module: the evidence names another instance than the one followed; a new "
        "instance starts at log seq 1");
  }
  const uint64_t expected_events_after = new_instance ? 0 : state.anchor.last_seq;
  if (ev.events_after != expected_events_after) {
    return refuse("events: the segment's events start after seq " +
                  std::to_string(ev.events_after) + "; this verifier expects " +
                  std::to_string(expected_events_after));
  }
  if (event_count > 0 && first_event_seq <= expected_events_after) {
    return refuse("events: seq " + std::to_string(first_event_seq) +
                  " was decided already (events outside the segment)");
  }
  if (new_instance) {
    std::optional<crypto::EcPoint> key;
    for (const records::Record& rec : *log) {
      if (rec.type() != VIGIL_LOG_KEY) continue;
      auto k = rec.As<vigil_log_key>();
      if (!k) return refuse("log: a malformed KEY record");
      crypto::EcPoint p;
      std::memcpy(p.x, k->x, 32);
      std::memcpy(p.y, k->y, 32);
      key = p;
      break;
    }
    if (!key) return refuse("module: the new instance's log has no KEY record (no TPM key)");
    if (!ev.key_certification) {
      return refuse("module: a new instance's key comes without the AK's certification");
    }
    if (Status st = CheckKeyCertification(state.ak, *ev.key_certification, *key, nonce); !st.ok()) {
      return refuse("module key: " + st.message());
    }
    next.instance_id.assign(ev.module.instance.begin(), ev.module.instance.end());
    next.anchor = verify::Anchor{};
    static_assert(sizeof(ev.module.instance) == sizeof(next.anchor.instance_id));
    std::memcpy(next.anchor.instance_id.data(), ev.module.instance.data(),
                next.anchor.instance_id.size());
    auto head = chain::InitialChain(next.anchor.instance_id);
    if (!head.ok()) return refuse("chain: " + head.status().message());
    next.anchor.chain_head = *head;
    next.anchor.key = *key;
    next.module_key = *key;
  } else if (next.instance_id.empty() || !next.module_key) {
    return refuse("log: this node has no verified instance yet; send its log from seq 0");
  }

  // 5. Replay with the pure engine; the anchor checked against the quote.
  verify::VerifierOptions options;
  options.module_anchor = policy.anchor;
  options.checkpoint_wait_ns = 0;
  std::map<uint16_t, crypto::Digest> pcr10;
  std::optional<ima::ImaLog> ima_log;
  size_t ima_prefix = 0;
  std::optional<ImaPoint> next_ima;
  if (policy.anchor == VIGIL_ANCHOR_IMA) {
    if (!ev.ima) return refuse("ima: anchor=ima evidence without IMA's log");
    // Where the entries must start: the verified point of this boot (the
    // quote's resetCount), or entry 0 in a new boot. Version 1 evidence
    // carries the whole list, which must then pass through the point.
    const ImaPoint* point = state.ima && state.ima->reset_count == facts->clock.resetCount &&
                                    state.ima->restart_count == facts->clock.restartCount
                                ? &*state.ima
                                : nullptr;
    const uint64_t expected_entry = point ? point->entries : 0;
    const bool whole_list = ev.version == 1;
    if (ev.ima->from_entry != (whole_list ? 0 : expected_entry)) {
      return refuse("ima: the entries start at IMA entry " + std::to_string(ev.ima->from_entry) +
                    "; this verifier expects " + std::to_string(whole_list ? 0 : expected_entry) +
                    " (an overlap or a gap)");
    }
    const bool resume = point && !whole_list;
    auto created = resume ? ima::ImaLog::Resume(point->pcr10, point->entries)
                          : ima::ImaLog::Create({TPM2_ALG_SHA256});
    if (!created.ok()) return refuse("ima: " + created.status().message());
    ima_log.emplace(std::move(created).value());
    if (resume) {
      if (Status st = ima_log->AddEarlierVigilEntries(point->pending); !st.ok()) {
        return refuse("ima: " + st.message());
      }
    }
    if (Status st = ima_log->Append(ev.ima->entries); !st.ok()) {
      return refuse("ima: " + st.message());
    }
    if (ima_log->partial()) return refuse("ima: the log ends inside an entry");
    if (point && whole_list) {
      for (const auto& [alg, value] : point->pcr10) {
        if (ima_log->ValueAfter(alg, point->entries) != value) {
          return refuse("ima: the whole list does not replay to the verified point (entry " +
                        std::to_string(point->entries) + ")");
        }
      }
    }
    pcr10[TPM2_ALG_SHA256] = *QuotedValue(ev.pcrs, TPM2_ALG_SHA256, ima::kImaPcr);
    auto prefix = ima_log->MatchPcr10(pcr10);
    if (!prefix.ok())
      return refuse("ima: IMA's log does not replay to the quoted PCR 10: " +
                    prefix.status().message());
    ima_prefix = *prefix;
    if (ima_prefix < expected_entry) {
      return refuse("ima: the quoted PCR 10 is that of entry " + std::to_string(ima_prefix) +
                    ", before the verified point (entry " + std::to_string(expected_entry) + ")");
    }
    // The followed instance's entries past the point name seqs after the
    // verified ones: a second entry for a decided seq is a conflict.
    if (point && same_as_followed) {
      const std::string followed =
          crypto::ToHex(std::span<const uint8_t>(state.instance_id.data(), 4));
      for (const ima::VigilEntry& e : ima_log->vigil_entries()) {
        if (e.index >= expected_entry && e.index < ima_prefix && e.instance == followed &&
            e.seq < state.next_log_seq) {
          return refuse("ima: IMA's entry " + std::to_string(e.index) +
                        " is a second entry for the followed instance's verified log seq " +
                        std::to_string(e.seq));
        }
      }
    }
    next_ima.emplace();
    next_ima->reset_count = facts->clock.resetCount;
    next_ima->restart_count = facts->clock.restartCount;
    next_ima->entries = ima_prefix;
    for (const auto& [alg, value] : pcr10) next_ima->pcr10[alg] = value;
    if (point) {
      next_ima->instances = point->instances;
      next_ima->collector_digests = point->collector_digests;
    }
    UpdateInstances(next_ima->instances, ima_log->vigil_entries(), expected_entry, ima_prefix);
    if (next_ima->instances.size() > kMaxImaInstances) {
      return refuse("ima: more than " + std::to_string(kMaxImaInstances) +
                    " module instances in this boot's IMA list");
    }
    if (Status st = CheckInstanceOrder(policy, state, ev, next_ima->instances, *log); !st.ok()) {
      return refuse(st.message());
    }
    if (Status st = CollectVigild(ev.ima->entries, ev.ima->from_entry, expected_entry, ima_prefix,
                                  &next_ima->collector_digests);
        !st.ok()) {
      return refuse(st.message());
    }
    if (Status st = CheckCollector(policy, next_ima->collector_digests); !st.ok()) {
      return refuse(st.message());
    }
    const std::array<uint8_t, 16> instance = next.anchor.instance_id;
    options.ima_check = [&, instance](const std::vector<records::Record>& verified) {
      Status st = ima_log->CheckModuleRecords(verified, instance, ima_prefix);
      // The instance has entries in the boot's list (CheckInstanceOrder):
      // none among those kept means they were covered already.
      if (st.code() == ErrorCode::kUnavailable) {
        return Status::Error(ErrorCode::kMismatch, st.message());
      }
      return st;
    };
  } else {
    // Development anchor: the quoted 16/23 must lie on the replay path of
    // the module's log since its newest BASE (the evidence's replay prefix
    // plus the segment).
    std::vector<records::Record> view;
    auto prefix = records::DecodeStream(ev.log.replay_prefix);
    if (!prefix.ok()) return refuse("log: replay prefix: " + prefix.status().message());
    for (records::Record& r : *prefix) replay::AppendToReplayView(view, std::move(r));
    for (const records::Record& r : *log) replay::AppendToReplayView(view, r);
    const std::vector<PcrValue> quoted = ev.pcrs;
    options.pcr_check = [view, quoted](const std::vector<records::Record>& verified) {
      return replay::CheckPcrPath(verified, view, kDevPcrConfig, kDevPcrEvents,
                                  [&quoted](uint16_t alg, uint32_t pcr) -> Result<crypto::Digest> {
                                    auto v = QuotedValue(quoted, alg, pcr);
                                    if (!v)
                                      return Status::Error(ErrorCode::kUnavailable,
                                                           "PCR not quoted");
                                    return *v;
                                  });
    };
  }

  verify::StreamVerifier verifier(next.anchor, std::move(options));
  if (Status st = FeedSegment(verifier, ev.events, *log); !st.ok()) {
    return refuse("events: " + st.message());
  }
  out.verdicts = verifier.TakeVerdicts();
  out.findings = verifier.TakeFindings();
  out.records = log->size();
  out.events = event_count;

  // 6. Policy.
  for (std::string& why : CheckMeasurements(policy, *log)) out.reasons.push_back(std::move(why));
  for (std::string& why : CheckProducersAndIdentity(policy, *log, new_instance)) {
    out.reasons.push_back(std::move(why));
  }
  const uint64_t decided_up_to = verifier.anchor().last_seq;
  if (last_event_seq > decided_up_to) {
    out.reasons.push_back("events: seq " + std::to_string(last_event_seq) +
                          " is past the segment's last checkpoint (events outside the segment)");
  }
  uint64_t lost = 0;
  for (const verify::CheckpointVerdict& v : out.verdicts) {
    const std::string where = "checkpoint log seq " + std::to_string(v.log_seq) + ": ";
    switch (v.verdict) {
      case verify::Verdict::kVerified:
        break;
      case verify::Verdict::kLoss:
        for (const verify::SeqRange& r : v.missing) lost += r.last - r.first + 1;
        lost += v.new_drops + v.new_busy + v.new_log_refused;
        break;
      case verify::Verdict::kUnsigned:
        if (!policy.allow_unsigned) out.reasons.push_back(where + "unsigned: " + v.reason);
        break;
      default:
        out.reasons.push_back(where + std::string(verify::VerdictName(v.verdict)) + ": " +
                              v.reason);
    }
  }
  if (lost > policy.max_loss) {
    out.reasons.push_back("loss: " + std::to_string(lost) + " events lost, policy allows " +
                          std::to_string(policy.max_loss));
  }
  for (const verify::Finding& f : out.findings) {
    if (FindingForbidden(policy, f)) {
      out.reasons.push_back("finding " + std::string(verify::FindingKindName(f.kind)) + ": " +
                            f.reason);
    }
  }
  if (out.verdicts.empty()) {
    out.reasons.push_back("log: the segment decides no checkpoint");
  }
  if (!out.reasons.empty()) return out;

  // Trusted: the state moves to the last decided checkpoint, and the next
  // segment starts after this one (which ends with that checkpoint's
  // signature, checked above).
  next.anchor = verifier.anchor();
  next.next_log_seq = log->back().seq() + 1;
  if (next_ima) {
    // Keep the module's entries no verified segment covers yet: the
    // followed instance's past its next seq, and newer instances' (a
    // reload may follow them). Older instances can never be followed.
    const std::string followed =
        crypto::ToHex(std::span<const uint8_t>(next.instance_id.data(), 4));
    uint64_t followed_first = 0;
    for (const ImaPoint::Instance& i : next_ima->instances) {
      if (i.instance == followed) followed_first = i.first_entry;
    }
    for (const ima::VigilEntry& e : ima_log->vigil_entries()) {
      if (e.index >= ima_prefix) continue;
      const bool keep = e.instance == followed ? e.seq >= next.next_log_seq : [&] {
        for (const ImaPoint::Instance& i : next_ima->instances) {
          if (i.instance == e.instance) return i.first_entry > followed_first;
        }
        return false;
      }();
      if (keep) next_ima->pending.push_back(e);
    }
    if (next_ima->pending.size() > kMaxImaPending) {
      out.reasons.push_back("ima: more than " + std::to_string(kMaxImaPending) +
                            " module entries in IMA's list that no segment covers yet");
      out.next = state;
      return out;
    }
    next.ima = std::move(next_ima);
  }
  next.clock = facts->clock;
  next.evidence_count = state.evidence_count + 1;
  next.last_attested_unix = now_unix;
  out.trusted = true;
  return out;
}

std::string ResultJson(const AttestationResult& r) {
  json verdicts = json::array();
  for (const verify::CheckpointVerdict& v : r.verdicts) {
    verdicts.push_back({{"log_seq", v.log_seq},
                        {"verdict", verify::VerdictName(v.verdict)},
                        {"first_seq", v.first_seq},
                        {"last_seq", v.last_seq},
                        {"reason", v.reason}});
  }
  json findings = json::array();
  for (const verify::Finding& f : r.findings) {
    findings.push_back(
        {{"kind", verify::FindingKindName(f.kind)}, {"seq", f.seq}, {"reason", f.reason}});
  }
  json j = {{"trusted", r.trusted},     {"reasons", r.reasons},
            {"verdicts", verdicts},     {"findings", findings},
            {"records", r.records},     {"events", r.events},
            {"tpm_reset", r.tpm_reset}, {"next_log_seq", r.next.next_log_seq}};
  return j.dump() + "\n";
}

}  // namespace vigil::attest
