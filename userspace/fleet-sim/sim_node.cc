#include "sim_node.h"

#include <httplib.h>
#include <openssl/rand.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "vigil/attest/evidence.h"
#include "vigil/attest_tpm/key_certification.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/digest.h"
#include "vigil/ima.h"

namespace vigil::fleetsim {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The module's key attributes (kmod/tpm.c): a P-256 signing primary of the
// owner hierarchy that only its auth value (the module's secret) unlocks.
constexpr TPMA_OBJECT kModuleAttrs = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                     TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT;

template <typename T>
Result<std::vector<uint8_t>> Marshal(const T& value,
                                     TSS2_RC (*marshal)(const T*, uint8_t*, size_t, size_t*)) {
  std::vector<uint8_t> out(sizeof(T) + 16);
  size_t offset = 0;
  if (TSS2_RC rc = marshal(&value, out.data(), out.size(), &offset); rc != TSS2_RC_SUCCESS) {
    return Status::FromTss2(rc, "marshalling a TPM structure");
  }
  out.resize(offset);
  return out;
}

Result<std::vector<uint8_t>> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) return Status::FromOpenSsl("RAND_bytes");
  return out;
}

std::vector<uint8_t> Concat(const std::vector<records::Record>& recs) {
  std::vector<uint8_t> out;
  for (const records::Record& r : recs) out.insert(out.end(), r.bytes().begin(), r.bytes().end());
  return out;
}

Result<json> ParseAnswer(const std::string& what, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Error(ErrorCode::kMalformed, what + ": the verifier's answer is not JSON");
  }
  return j;
}

}  // namespace

std::string PolicyJson() {
  const std::string path = kCollectorPath;
  const crypto::Digest vigild = *crypto::Hash(
      TPM2_ALG_SHA256,
      {std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(path.data()), path.size())});
  json p = {{"version", 1},
            {"anchor", "ima"},
            {"allow_dev_anchor", false},
            {"module_digests", {std::string(64, '1')}},
            {"params_digests", {std::string(64, '2')}},
            {"producer_set_digests", {std::string(64, '3')}},
            // sim::ImaSim measures a file's digest as SHA-256 of its path.
            {"collector_digests", {crypto::ToHex(vigild)}},
            {"max_loss", 0},
            {"allow_unsigned", false},
            {"allow_reload", false},
            {"allow_unclean_reboot", false},
            {"nonce_ttl_seconds", 60}};
  return p.dump(2) + "\n";
}

SimNode::SimNode(int index, tpm::EsysContext tpm, const NodeOptions& options)
    : index_(index),
      tpm_(std::move(tpm)),
      options_(options),
      http_(std::make_unique<httplib::Client>(options.host, options.port)),
      module_(static_cast<uint8_t>(0x10 + index % 0xe0)) {
  http_->set_connection_timeout(10);
  http_->set_read_timeout(options.http_timeout_s);
  http_->set_write_timeout(options.http_timeout_s);
}

SimNode::~SimNode() {
  ak_.Reset();
  if (key_ != ESYS_TR_NONE) Esys_FlushContext(tpm_.get(), key_);
}

Result<std::unique_ptr<SimNode>> SimNode::Open(int index, const std::string& tcti,
                                               const NodeOptions& options) {
  VIGIL_ASSIGN_OR_RETURN(tpm::EsysContext tpm, tpm::EsysContext::Open(tcti));
  return std::unique_ptr<SimNode>(new SimNode(index, std::move(tpm), options));
}

Result<std::string> SimNode::Post(const std::string& op, const std::string& body,
                                  const std::string& content_type) {
  const std::string path = "/v1/" + op;
  auto res = http_->Post(path, body, content_type);
  if (!res) {
    return Status::Error(ErrorCode::kUnavailable,
                         "POST " + path + ": " + httplib::to_string(res.error()));
  }
  if (res->status != 200) {
    std::string why = res->body;
    json j = json::parse(res->body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) why = j["error"];
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::Error(res->status == 404 ? ErrorCode::kNotFound : ErrorCode::kFailedPrecondition,
                         "POST " + path + ": HTTP " + std::to_string(res->status) + ": " + why);
  }
  return res->body;
}

Status SimNode::Enrol() {
  VIGIL_ASSIGN_OR_RETURN(attest_tpm::EkInfo ek,
                         attest_tpm::ReadEk(tpm_, attest_tpm::EkKind::kEccP256));
  VIGIL_ASSIGN_OR_RETURN(attest_tpm::AkBlobs blobs, attest_tpm::CreateAk(tpm_));
  VIGIL_ASSIGN_OR_RETURN(attest::EnrolmentRequest request,
                         attest_tpm::MakeEnrolmentRequest(ek, blobs));
  VIGIL_ASSIGN_OR_RETURN(
      std::string challenge_text,
      Post("enrol", attest::SerializeEnrolmentRequest(request), "application/json"));
  VIGIL_ASSIGN_OR_RETURN(json challenge, ParseAnswer("enrol", challenge_text));
  if (!challenge.contains("node") || !challenge.contains("id_object") ||
      !challenge.contains("encrypted_secret")) {
    return Status::Error(ErrorCode::kMalformed, "enrol: the challenge lacks a field");
  }
  node_id_ = challenge["node"].get<std::string>();
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> id_object,
                         crypto::FromHex(challenge["id_object"].get<std::string>()));
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> encrypted,
                         crypto::FromHex(challenge["encrypted_secret"].get<std::string>()));
  VIGIL_ASSIGN_OR_RETURN(ak_, attest_tpm::LoadAk(tpm_, blobs));
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> secret,
                         attest_tpm::ActivateCredential(tpm_, ak_, attest_tpm::EkKind::kEccP256,
                                                        attest::Credential{id_object, encrypted}));
  const json activate = {{"node", node_id_}, {"secret", crypto::ToHex(secret)}};
  VIGIL_RETURN_IF_ERROR(Post("activate", activate.dump(), "application/json").status());

  // The module loads: its key, identity, parameters and producer set, each
  // measured into PCR 10 through IMA (anchor=ima), after IMA's boot
  // aggregate and its measurement of vigild.
  VIGIL_RETURN_IF_ERROR(MakeModuleKey());
  module_.set_anchor(VIGIL_ANCHOR_IMA);
  module_.UseExternalKey(key_point_, [this](const crypto::Sha256Digest& d, uint8_t* r, uint8_t* s) {
    return TpmSign(d, r, s);
  });
  module_.LogRecord(module_.MeasureRecord(VIGIL_MEASURE_MODULE, "vigil.ko", kModuleFill));
  module_.LogRecord(module_.MeasureRecord(VIGIL_MEASURE_PARAMS, "params", kParamsFill));
  module_.SealProducers(kProducersFill);
  ima_.BootAggregate();
  ima_.File(kCollectorPath);
  ima_.Module(module_, ima_logged_);
  ima_logged_ = module_.log().size();
  return ExtendNewImaEntries();
}

Status SimNode::MakeModuleKey() {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& p = in.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = kModuleAttrs;
  p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> unique, RandomBytes(32));
  p.unique.ecc.x.size = 32;
  std::memcpy(p.unique.ecc.x.buffer, unique.data(), 32);
  TPM2B_SENSITIVE_CREATE sensitive{};
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> auth, RandomBytes(32));
  key_auth_.size = 32;
  std::memcpy(key_auth_.buffer, auth.data(), 32);
  sensitive.sensitive.userAuth = key_auth_;
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  TPM2B_PUBLIC* out_public = nullptr;
  TPM2B_CREATION_DATA* data = nullptr;
  TPM2B_DIGEST* hash = nullptr;
  TPMT_TK_CREATION* ticket = nullptr;
  TSS2_RC rc = Esys_CreatePrimary(tpm_.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                  ESYS_TR_NONE, &sensitive, &in, &outside, &pcrs, &key_,
                                  &out_public, &data, &hash, &ticket);
  tpm::EsysPtr<TPM2B_PUBLIC> out_public_owner(out_public);
  tpm::EsysPtr<TPM2B_CREATION_DATA> data_owner(data);
  tpm::EsysPtr<TPM2B_DIGEST> hash_owner(hash);
  tpm::EsysPtr<TPMT_TK_CREATION> ticket_owner(ticket);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_CreatePrimary (module key)");
  rc = Esys_TR_SetAuth(tpm_.get(), key_, &key_auth_);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "Esys_TR_SetAuth (module key)");
  VIGIL_ASSIGN_OR_RETURN(creation_.key_public, Marshal(*out_public, Tss2_MU_TPM2B_PUBLIC_Marshal));
  VIGIL_ASSIGN_OR_RETURN(creation_.creation_data,
                         Marshal(*data, Tss2_MU_TPM2B_CREATION_DATA_Marshal));
  VIGIL_ASSIGN_OR_RETURN(creation_.creation_hash, Marshal(*hash, Tss2_MU_TPM2B_DIGEST_Marshal));
  VIGIL_ASSIGN_OR_RETURN(creation_.creation_ticket,
                         Marshal(*ticket, Tss2_MU_TPMT_TK_CREATION_Marshal));
  std::memcpy(key_point_.x, out_public->publicArea.unique.ecc.x.buffer, 32);
  std::memcpy(key_point_.y, out_public->publicArea.unique.ecc.y.buffer, 32);
  // The raw saved context, as VIGIL_IOC_KEY_CREATION hands it out.
  TPM2_HANDLE handle = 0;
  rc = Esys_TR_GetTpmHandle(tpm_.get(), key_, &handle);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "Esys_TR_GetTpmHandle");
  TSS2_SYS_CONTEXT* sys = nullptr;
  rc = Esys_GetSysContext(tpm_.get(), &sys);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "Esys_GetSysContext");
  TPMS_CONTEXT saved{};
  rc = Tss2_Sys_ContextSave(sys, handle, &saved);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_ContextSave (module key)");
  VIGIL_ASSIGN_OR_RETURN(creation_.context, Marshal(saved, Tss2_MU_TPMS_CONTEXT_Marshal));
  return Status::Ok();
}

bool SimNode::TpmSign(const crypto::Sha256Digest& digest, uint8_t* r, uint8_t* s) {
  TPM2B_DIGEST d{};
  d.size = 32;
  std::memcpy(d.buffer, digest.data(), 32);
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;
  TPMT_TK_HASHCHECK check{};
  check.tag = TPM2_ST_HASHCHECK;
  check.hierarchy = TPM2_RH_NULL;
  TPMT_SIGNATURE* raw = nullptr;
  if (Esys_Sign(tpm_.get(), key_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &check,
                &raw) != TSS2_RC_SUCCESS) {
    return false;
  }
  tpm::EsysPtr<TPMT_SIGNATURE> sig(raw);
  const TPMS_SIGNATURE_ECC& e = sig->signature.ecdsa;
  if (e.signatureR.size > 32 || e.signatureS.size > 32) return false;
  std::memset(r, 0, 32);
  std::memset(s, 0, 32);
  std::memcpy(r + 32 - e.signatureR.size, e.signatureR.buffer, e.signatureR.size);
  std::memcpy(s + 32 - e.signatureS.size, e.signatureS.buffer, e.signatureS.size);
  return true;
}

Status SimNode::ExtendNewImaEntries() {
  // ImaSim extends SHA-1 then SHA-256 for each entry: one TPM2_PCR_Extend
  // per entry with both banks, as IMA does.
  while (pcr_extended_ < ima_.extends.size()) {
    std::vector<std::pair<uint16_t, crypto::Digest>> digests;
    digests.push_back(ima_.extends[pcr_extended_++]);
    if (pcr_extended_ < ima_.extends.size() &&
        ima_.extends[pcr_extended_].first != digests.front().first) {
      digests.push_back(ima_.extends[pcr_extended_++]);
    }
    VIGIL_RETURN_IF_ERROR(tpm_.PcrExtend(10, digests));
  }
  return Status::Ok();
}

Result<RoundResult> SimNode::Round(bool tamper) {
  RoundResult out;
  out.tampered = tamper;
  const auto start = Clock::now();

  // The node's work since the last round: events committed by the
  // producers, a checkpoint signed by the TPM, its records through IMA.
  module_.Alive(VIGIL_PROD_EXEC, static_cast<uint64_t>(options_.events_per_round));
  for (int i = 0; i < options_.events_per_round; ++i) {
    events_.push_back(module_.Commit(static_cast<uint32_t>(1000 + index_)));
  }
  auto tpm_start = Clock::now();
  try {
    module_.Checkpoint();
  } catch (const std::exception& e) {
    return Status::Error(ErrorCode::kUnavailable, std::string("checkpoint: ") + e.what());
  }
  ima_.Module(module_, ima_logged_);
  ima_logged_ = module_.log().size();
  VIGIL_RETURN_IF_ERROR(ExtendNewImaEntries());
  out.tpm_ms += MsSince(tpm_start);

  // Nonce: where the verifier wants the segment to start.
  const auto nonce_start = Clock::now();
  const json ask = {{"node", node_id_}};
  VIGIL_ASSIGN_OR_RETURN(std::string nonce_text, Post("nonce", ask.dump(), "application/json"));
  out.nonce_ms = MsSince(nonce_start);
  VIGIL_ASSIGN_OR_RETURN(json n, ParseAnswer("nonce", nonce_text));
  uint64_t from_seq = 0, events_after = 0, ima_from = 0;
  std::vector<uint8_t> nonce;
  try {
    VIGIL_ASSIGN_OR_RETURN(nonce, crypto::FromHex(n.at("nonce").get<std::string>()));
    from_seq = n.at("from_seq").get<uint64_t>();
    events_after = n.at("events_after").get<uint64_t>();
    // The simulated node never reboots: the verifier's IMA point holds
    // whenever it has one.
    if (!n.at("ima_reset_count").is_null()) ima_from = n.at("ima_from_entry").get<uint64_t>();
  } catch (const json::exception& e) {
    return Status::Error(ErrorCode::kMalformed, std::string("nonce answer: ") + e.what());
  }

  // Evidence for it.
  attest::Evidence ev;
  ev.node = node_id_;
  ev.nonce = nonce;
  ev.anchor = attest::AnchorKind::kIma;
  std::memcpy(ev.module.instance.data(), module_.instance().data(), ev.module.instance.size());
  ev.log.from_seq = from_seq;
  std::vector<records::Record> segment;
  for (const records::Record& r : module_.log()) {
    if (r.seq() >= from_seq) segment.push_back(r);
  }
  ev.log.records = Concat(segment);
  ev.events_after = events_after;
  // What the verifier has decided is gone from the node's buffer.
  std::erase_if(events_, [&](const records::Record& e) { return e.seq() <= events_after; });
  std::vector<records::Record> events = events_;
  if (tamper && !events.empty()) {
    // Root rewrites an event the module committed and the TPM already
    // signed a checkpoint over.
    vigil_ev_exec forged = *events.back().As<vigil_ev_exec>();
    forged.pid ^= 0x4000;
    events.back() = *records::Record::FromStruct(forged);
  }
  ev.events = Concat(events);
  VIGIL_ASSIGN_OR_RETURN(size_t offset, ima::EntryOffset(ima_.log, ima_from));
  ev.ima = attest::Evidence::Ima{
      ima_from,
      std::vector<uint8_t>(ima_.log.begin() + static_cast<ptrdiff_t>(offset), ima_.log.end())};
  tpm_start = Clock::now();
  if (from_seq == 1) {
    VIGIL_ASSIGN_OR_RETURN(ev.key_certification,
                           attest_tpm::CertifyModuleKey(tpm_, ak_.handle(), creation_, nonce));
  }
  VIGIL_ASSIGN_OR_RETURN(attest_tpm::QuoteOut quote,
                         attest_tpm::Quote(tpm_, ak_.handle(), nonce, {{TPM2_ALG_SHA256, {10}}}));
  out.tpm_ms += MsSince(tpm_start);
  ev.quote.attest = std::move(quote.attest);
  ev.quote.signature = std::move(quote.signature);
  ev.pcrs = std::move(quote.values);

  // Push it (CBOR, as vigilctl attest push does) and take the verdict.
  const std::string body = attest::SerializeEvidenceCbor(ev);
  const auto verify_start = Clock::now();
  VIGIL_ASSIGN_OR_RETURN(std::string verdict_text, Post("evidence", body, "application/cbor"));
  out.verify_ms = MsSince(verify_start);
  VIGIL_ASSIGN_OR_RETURN(json verdict, ParseAnswer("evidence", verdict_text));
  if (!verdict.contains("trusted") || !verdict["trusted"].is_boolean()) {
    return Status::Error(ErrorCode::kMalformed, "evidence: the answer has no verdict");
  }
  out.decided = true;
  out.trusted = verdict["trusted"].get<bool>();
  if (!out.trusted && verdict.contains("reasons") && verdict["reasons"].is_array() &&
      !verdict["reasons"].empty() && verdict["reasons"][0].is_string()) {
    out.reason = verdict["reasons"][0].get<std::string>();
  }
  out.round_ms = MsSince(start);
  return out;
}

}  // namespace vigil::fleetsim
