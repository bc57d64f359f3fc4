// A simulated attesting node for the fleet verifier tests: its own swtpm
// (EK, AK enrolled through a verifier::Service), the module's checkpoints
// signed by a TPM key the AK certifies, IMA extending PCR 10. Shared by
// fleet_verifier_test.cc and fleet_security_test.cc (one translation unit
// each: the definitions are in an unnamed namespace).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "attest_test_util.h"
#include "dispatch.h"
#include "fleet_watch.h"
#include "pg_fixture.h"
#include "service.h"
#include "swtpm_fixture.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/attest/policy.h"
#include "vigil/attest/verifier.h"
#include "vigil/attest_tpm/enrolment.h"
#include "vigil/attest_tpm/key_certification.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/digest.h"
#include "vigil/fleet/store.h"
#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "vigil/tpm.h"

namespace vigil {
namespace {

using attest::AttestationResult;
using attest::Evidence;
using fleet::Param;
using fleet::Retry;
using testing::Marshal;
using Clock = std::chrono::steady_clock;

constexpr TPMA_OBJECT kModuleAttrs = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                     TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT;

std::vector<uint8_t> Random(size_t n) {
  std::vector<uint8_t> out(n);
  EXPECT_EQ(RAND_bytes(out.data(), static_cast<int>(n)), 1);
  return out;
}

std::vector<uint8_t> Concat(const std::vector<records::Record>& recs) {
  std::vector<uint8_t> out;
  for (const records::Record& r : recs) out.insert(out.end(), r.bytes().begin(), r.bytes().end());
  return out;
}

records::Record Measure(uint64_t log_seq, uint32_t kind, uint8_t fill) {
  vigil_log_measure m;
  std::memset(&m, 0, sizeof(m));
  sim::ModuleSim::Header(m.hdr, VIGIL_LOG_MEASURE, sizeof(m), log_seq);
  m.kind = kind;
  m.pcr = 10;
  std::strncpy(m.name, kind == VIGIL_MEASURE_MODULE ? "vigil.ko" : "params", sizeof(m.name) - 1);
  std::memset(m.digest, fill, sizeof(m.digest));
  return *records::Record::FromStruct(m);
}

// The policy the simulated nodes meet (the module's measured digests, and
// vigild's as ImaSim measures it: SHA-256 of its path).
attest::Policy NodePolicy() {
  attest::Policy p;
  p.anchor = VIGIL_ANCHOR_IMA;
  p.module_digests = {std::string(64, '1')};
  p.params_digests = {std::string(64, '2')};
  p.producer_set_digests = {std::string(64, '3')};
  const std::string vigild = "/usr/sbin/vigild";
  p.collector_digests = {crypto::ToHex(*crypto::Hash(
      TPM2_ALG_SHA256,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(vigild.data()), vigild.size())))};
  return p;
}

// One node: its own swtpm, the module (ModuleSim) signing checkpoints with
// a TPM key, IMA (ImaSim) extending PCR 10 on the TPM, an AK enrolled with
// a verifier. Evidence is what `vigilctl attest evidence` would send.
class SimNode {
 public:
  explicit SimNode(uint8_t seed) : sim_(seed) {}
  ~SimNode() {
    ak_object_.reset();
    tpm_.reset();
  }

  ::testing::AssertionResult Start() {
    auto started = swtpm_.Start(dir_.path());
    if (!started) return started;
    auto esys = tpm::EsysContext::Open(swtpm_.tcti());
    if (!esys.ok()) return ::testing::AssertionFailure() << esys.status().ToString();
    tpm_.emplace(std::move(esys).value());
    MakeModuleKey();
    sim_.set_anchor(VIGIL_ANCHOR_IMA);
    sim_.UseExternalKey(key_point_, [this](const crypto::Sha256Digest& d, uint8_t* r, uint8_t* s) {
      return TpmSign(d, r, s);
    });
    sim_.LogRecord(Measure(sim_.NextLogSeq(), VIGIL_MEASURE_MODULE, 0x11));
    sim_.LogRecord(Measure(sim_.NextLogSeq(), VIGIL_MEASURE_PARAMS, 0x22));
    sim_.SealProducers(0x33);
    ima_.BootAggregate();
    ima_.File("/usr/sbin/vigild");
    Work(2);
    return ::testing::AssertionSuccess();
  }

  // A request to a verifier (HTTP or in process): status and body.
  using Transport =
      std::function<std::pair<int, std::string>(const std::string& op, const std::string& body)>;

  // Enrolment (EK pinned) and credential activation through `svc`.
  ::testing::AssertionResult Enrol(verifier::Service& svc) {
    return EnrolWith([&](const std::string& op, const std::string& body) {
      if (op == "enrol") {
        verifier::EnrolOptions options;
        options.pin_ek = true;
        auto challenge = svc.Enrol(body, options);
        return challenge.ok() ? std::make_pair(200, *challenge)
                              : std::make_pair(400, challenge.status().ToString());
      }
      const auto j = nlohmann::json::parse(body);
      Status st = svc.Activate(j.at("node"), j.at("secret").get<std::string>());
      return std::make_pair(st.ok() ? 200 : 400, st.ToString());
    });
  }
  ::testing::AssertionResult EnrolWith(const Transport& post) {
    auto ek = attest_tpm::ReadEk(*tpm_, attest_tpm::EkKind::kEccP256);
    if (!ek.ok()) return ::testing::AssertionFailure() << ek.status().ToString();
    auto blobs = attest_tpm::CreateAk(*tpm_);
    if (!blobs.ok()) return ::testing::AssertionFailure() << blobs.status().ToString();
    auto request = attest_tpm::MakeEnrolmentRequest(*ek, *blobs);
    if (!request.ok()) return ::testing::AssertionFailure() << request.status().ToString();
    const auto [enrolled, challenge] = post("enrol", attest::SerializeEnrolmentRequest(*request));
    if (enrolled != 200) return ::testing::AssertionFailure() << "enrol: " << challenge;
    const auto c = nlohmann::json::parse(challenge);
    id_ = c.at("node");
    attest::Credential cred{*crypto::FromHex(c.at("id_object").get<std::string>()),
                            *crypto::FromHex(c.at("encrypted_secret").get<std::string>())};
    auto ak = attest_tpm::LoadAk(*tpm_, *blobs);
    if (!ak.ok()) return ::testing::AssertionFailure() << ak.status().ToString();
    auto secret = attest_tpm::ActivateCredential(*tpm_, *ak, attest_tpm::EkKind::kEccP256, cred);
    if (!secret.ok()) return ::testing::AssertionFailure() << secret.status().ToString();
    const nlohmann::json answer = {{"node", id_}, {"secret", crypto::ToHex(*secret)}};
    const auto [activated, why] = post("activate", answer.dump());
    if (activated != 200) return ::testing::AssertionFailure() << "activate: " << why;
    ak_ = ak->handle();
    ak_object_.emplace(std::move(ak).value());  // loaded while the node lives
    return ::testing::AssertionSuccess();
  }

  // Asks `svc` for a nonce and makes the evidence answering it.
  Evidence Next(verifier::Service& svc) {
    auto issued = svc.IssueNonce(id_);
    EXPECT_TRUE(issued.ok()) << issued.status().ToString();
    if (!issued.ok()) return Evidence();
    return Answer(nlohmann::json::parse(*issued));
  }
  Evidence NextWith(const Transport& post) {
    const auto [status, reply] = post("nonce", nlohmann::json{{"node", id_}}.dump());
    EXPECT_EQ(status, 200) << reply;
    if (status != 200) return Evidence();
    return Answer(nlohmann::json::parse(reply));
  }
  // The evidence for a nonce reply (any node's: `Answer` of another node's
  // reply is this node's TPM answering that node's nonce).
  Evidence Answer(const nlohmann::json& n) {
    next_log_seq_ = n.at("from_seq");
    events_after_ = n.at("events_after");
    ima_from_ = n.at("ima_reset_count").is_null() ? 0 : n.at("ima_from_entry").get<size_t>();
    return Make(*crypto::FromHex(n.at("nonce").get<std::string>()));
  }

  // `checkpoints` more checkpoints of 3 events each, logged to IMA and PCR 10.
  void Work(int checkpoints) {
    for (int c = 0; c < checkpoints; ++c) {
      for (int i = 0; i < 3; ++i) events_.push_back(sim_.Commit());
      sim_.Checkpoint();
    }
    ima_.Module(sim_, ima_done_);
    ima_done_ = sim_.log().size();
    for (; tpm_extends_ < ima_.extends.size(); ++tpm_extends_) {
      const auto& [alg, m] = ima_.extends[tpm_extends_];
      ASSERT_TRUE(tpm_->PcrExtend(10, {{alg, m}}).ok());
    }
  }

  const std::string& id() const { return id_; }

 private:
  Evidence Make(const std::vector<uint8_t>& nonce) {
    Evidence ev;
    ev.node = id_;
    ev.nonce = nonce;
    ev.anchor = attest::AnchorKind::kIma;
    std::memcpy(ev.module.instance.data(), sim_.instance().data(), ev.module.instance.size());
    ev.log.from_seq = next_log_seq_;
    std::vector<records::Record> seg;
    for (const records::Record& r : sim_.log()) {
      if (r.seq() >= next_log_seq_) seg.push_back(r);
    }
    ev.log.records = Concat(seg);
    ev.events_after = events_after_;
    std::vector<records::Record> evs;
    for (const records::Record& e : events_) {
      if (e.seq() > events_after_) evs.push_back(e);
    }
    ev.events = Concat(evs);
    auto offset = ima::EntryOffset(ima_.log, ima_from_);
    EXPECT_TRUE(offset.ok()) << offset.status().ToString();
    ev.ima = Evidence::Ima{
        ima_from_,
        std::vector<uint8_t>(ima_.log.begin() + static_cast<ptrdiff_t>(offset.ok() ? *offset : 0),
                             ima_.log.end())};
    if (next_log_seq_ == 1) {
      auto cert = attest_tpm::CertifyModuleKey(*tpm_, ak_, creation_, nonce);
      EXPECT_TRUE(cert.ok()) << cert.status().ToString();
      if (cert.ok()) ev.key_certification = *cert;
    }
    auto quote = attest_tpm::Quote(*tpm_, ak_, nonce, {{TPM2_ALG_SHA256, {10}}});
    EXPECT_TRUE(quote.ok()) << quote.status().ToString();
    if (quote.ok()) {
      ev.quote.attest = quote->attest;
      ev.quote.signature = quote->signature;
      ev.pcrs = quote->values;
    }
    return ev;
  }

  ESYS_CONTEXT* ctx() { return tpm_->get(); }

  void MakeModuleKey() {
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
    const auto unique = Random(32);
    p.unique.ecc.x.size = 32;
    std::memcpy(p.unique.ecc.x.buffer, unique.data(), 32);
    TPM2B_SENSITIVE_CREATE sensitive{};
    key_auth_.size = 32;
    const auto auth = Random(32);
    std::memcpy(key_auth_.buffer, auth.data(), 32);
    sensitive.sensitive.userAuth = key_auth_;
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    TPM2B_PUBLIC* out_public = nullptr;
    TPM2B_CREATION_DATA* data = nullptr;
    TPM2B_DIGEST* hash = nullptr;
    TPMT_TK_CREATION* ticket = nullptr;
    ASSERT_EQ(Esys_CreatePrimary(ctx(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &sensitive, &in, &outside, &pcrs, &key_, &out_public,
                                 &data, &hash, &ticket),
              TSS2_RC_SUCCESS);
    ASSERT_EQ(Esys_TR_SetAuth(ctx(), key_, &key_auth_), TSS2_RC_SUCCESS);
    creation_.key_public = Marshal(*out_public, Tss2_MU_TPM2B_PUBLIC_Marshal);
    creation_.creation_data = Marshal(*data, Tss2_MU_TPM2B_CREATION_DATA_Marshal);
    creation_.creation_hash = Marshal(*hash, Tss2_MU_TPM2B_DIGEST_Marshal);
    creation_.creation_ticket = Marshal(*ticket, Tss2_MU_TPMT_TK_CREATION_Marshal);
    std::memcpy(key_point_.x, out_public->publicArea.unique.ecc.x.buffer, 32);
    std::memcpy(key_point_.y, out_public->publicArea.unique.ecc.y.buffer, 32);
    Esys_Free(out_public);
    Esys_Free(data);
    Esys_Free(hash);
    Esys_Free(ticket);
    TPM2_HANDLE handle = 0;
    ASSERT_EQ(Esys_TR_GetTpmHandle(ctx(), key_, &handle), TSS2_RC_SUCCESS);
    TSS2_SYS_CONTEXT* sys = nullptr;
    ASSERT_EQ(Esys_GetSysContext(ctx(), &sys), TSS2_RC_SUCCESS);
    TPMS_CONTEXT saved{};
    ASSERT_EQ(Tss2_Sys_ContextSave(sys, handle, &saved), TSS2_RC_SUCCESS);
    creation_.context = Marshal(saved, Tss2_MU_TPMS_CONTEXT_Marshal);
  }

  bool TpmSign(const crypto::Sha256Digest& digest, uint8_t* r, uint8_t* s) {
    TPM2B_DIGEST d{};
    d.size = 32;
    std::memcpy(d.buffer, digest.data(), 32);
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_NULL;
    TPMT_TK_HASHCHECK check{};
    check.tag = TPM2_ST_HASHCHECK;
    check.hierarchy = TPM2_RH_NULL;
    TPMT_SIGNATURE* sig = nullptr;
    if (Esys_Sign(ctx(), key_, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme, &check,
                  &sig) != TSS2_RC_SUCCESS) {
      return false;
    }
    const TPMS_SIGNATURE_ECC& e = sig->signature.ecdsa;
    std::memset(r, 0, 32);
    std::memset(s, 0, 32);
    std::memcpy(r + 32 - e.signatureR.size, e.signatureR.buffer, e.signatureR.size);
    std::memcpy(s + 32 - e.signatureS.size, e.signatureS.buffer, e.signatureS.size);
    Esys_Free(sig);
    return true;
  }

  testing::TempDir dir_;
  testing::SwtpmProcess swtpm_;
  std::optional<tpm::EsysContext> tpm_;
  std::string id_;
  std::optional<attest_tpm::LoadedObject> ak_object_;
  ESYS_TR ak_ = ESYS_TR_NONE;
  ESYS_TR key_ = ESYS_TR_NONE;
  TPM2B_AUTH key_auth_{};
  crypto::EcPoint key_point_{};
  device::KeyCreation creation_;
  sim::ModuleSim sim_;
  sim::ImaSim ima_;
  size_t ima_done_ = 0;
  size_t tpm_extends_ = 0;
  std::vector<records::Record> events_;
  uint64_t next_log_seq_ = 1;
  uint64_t events_after_ = 0;
  size_t ima_from_ = 0;
};

}  // namespace
}  // namespace vigil
