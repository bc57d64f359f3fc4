// Enrolment against real software TPMs: the EK (and a certificate chain
// made by swtpm_setup's local CA), an AK checked as go-attestation checks
// it, a credential made in software and activated by the TPM, and the
// attacks each check is there to stop.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "attest_test_util.h"
#include "swtpm_fixture.h"
#include "vigil/attest/quote.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest_tpm/enrolment.h"
#include "vigil/digest.h"
#include "vigil/tpm.h"
#include "vigil/tpm_object.h"

namespace vigil {
namespace {

using attest_tpm::AkBlobs;
using attest_tpm::EkKind;
using Bytes = std::vector<uint8_t>;

Bytes RandomSecret() {
  Bytes secret(attest::kCredentialSecretSize);
  EXPECT_EQ(RAND_bytes(secret.data(), static_cast<int>(secret.size())), 1);
  return secret;
}

Bytes ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out << text;
}

tpmobj::PublicArea AkPublic(const AkBlobs& blobs) {
  auto pub = tpmobj::ParseTpm2bPublic(blobs.public_area);
  EXPECT_TRUE(pub.ok()) << pub.status().ToString();
  return pub.ok() ? *pub : tpmobj::PublicArea{};
}

Bytes NameOf(const tpmobj::PublicArea& area) {
  auto name = tpmobj::Name(area);
  EXPECT_TRUE(name.ok()) << name.status().ToString();
  return name.ok() ? *name : Bytes{};
}

Status CheckCreation(const AkBlobs& blobs) {
  auto sig = tpmobj::ParseSignature(blobs.creation_signature);
  if (!sig.ok()) return sig.status();
  return attest::CheckAkCreation(AkPublic(blobs), blobs.creation_data, blobs.creation_attest, *sig);
}

// Expects an error of `code` whose message contains `needle`.
#define EXPECT_REFUSED(expr, expected_code, needle)                             \
  do {                                                                          \
    const ::vigil::Status st_ = (expr);                                         \
    EXPECT_EQ(st_.code(), (expected_code)) << st_.ToString();                   \
    EXPECT_NE(st_.message().find(needle), std::string::npos) << st_.ToString(); \
  } while (0)

class EnrolmentTest : public testing::SwtpmFixture {
 protected:
  tpm::EsysContext Open(const std::string& tcti) {
    auto ctx = tpm::EsysContext::Open(tcti);
    EXPECT_TRUE(ctx.ok()) << ctx.status().ToString();
    return std::move(ctx).value();
  }

  // Full enrolment on one TPM: the verifier's checks pass and the TPM
  // returns the secret of a credential made in software for its EK.
  void RoundTrip(tpm::EsysContext& tpm, EkKind kind) {
    auto ek = attest_tpm::ReadEk(tpm, kind);
    ASSERT_TRUE(ek.ok()) << ek.status().ToString();
    EXPECT_EQ(ek->pub.pub.type, kind == EkKind::kRsa2048 ? TPM2_ALG_RSA : TPM2_ALG_ECC);
    using Clock = std::chrono::steady_clock;
    auto ms_since = [](Clock::time_point t0) {
      return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    };
    auto t0 = Clock::now();
    auto blobs = attest_tpm::CreateAk(tpm);
    const double create_ms = ms_since(t0);
    ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
    const tpmobj::PublicArea ak = AkPublic(*blobs);
    ASSERT_TRUE(attest::CheckAkPublic(ak).ok()) << attest::CheckAkPublic(ak).ToString();
    ASSERT_TRUE(CheckCreation(*blobs).ok()) << CheckCreation(*blobs).ToString();

    const Bytes secret = RandomSecret();
    t0 = Clock::now();
    auto cred = attest::MakeCredential(ek->pub, NameOf(ak), secret);
    const double make_ms = ms_since(t0);
    ASSERT_TRUE(cred.ok()) << cred.status().ToString();
    auto loaded = attest_tpm::LoadAk(tpm, *blobs);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    t0 = Clock::now();
    auto returned = attest_tpm::ActivateCredential(tpm, *loaded, kind, *cred);
    const double activate_ms = ms_since(t0);
    ASSERT_TRUE(returned.ok()) << returned.status().ToString();
    std::printf(
        "enrolment (%s EK): CreateAk %.2f ms, MakeCredential %.2f ms, "
        "ActivateCredential %.2f ms\n",
        kind == EkKind::kRsa2048 ? "RSA" : "ECC", create_ms, make_ms, activate_ms);
    EXPECT_EQ(*returned, secret);
    EXPECT_TRUE(attest::SecretsEqual(*returned, secret));
  }

  // A key made by the TPM with `attributes` (ECC P-256, ECDSA-SHA256), as
  // a child of a transient storage primary: its public area.
  tpmobj::PublicArea TpmKey(tpm::EsysContext& tpm, TPMA_OBJECT attributes) {
    TPM2B_PUBLIC parent_in{};
    TPMT_PUBLIC& parent = parent_in.publicArea;
    parent.type = TPM2_ALG_ECC;
    parent.nameAlg = TPM2_ALG_SHA256;
    parent.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                              TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                              TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    parent.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    parent.parameters.eccDetail.symmetric.keyBits.aes = 128;
    parent.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    parent.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    parent.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    parent.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    ESYS_TR parent_handle = ESYS_TR_NONE;
    TSS2_RC rc = Esys_CreatePrimary(tpm.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &sensitive, &parent_in, &outside, &pcrs,
                                    &parent_handle, nullptr, nullptr, nullptr, nullptr);
    EXPECT_EQ(rc, TSS2_RC_SUCCESS) << Status::FromTss2(rc, "CreatePrimary").ToString();
    attest_tpm::LoadedObject parent_object(tpm.get(), parent_handle);

    TPM2B_PUBLIC in{};
    TPMT_PUBLIC& pub = in.publicArea;
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.objectAttributes = attributes;
    pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    TPM2B_PRIVATE* priv = nullptr;
    TPM2B_PUBLIC* out = nullptr;
    rc =
        Esys_Create(tpm.get(), parent_object.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                    &sensitive, &in, &outside, &pcrs, &priv, &out, nullptr, nullptr, nullptr);
    EXPECT_EQ(rc, TSS2_RC_SUCCESS) << Status::FromTss2(rc, "Create").ToString();
    tpm::EsysPtr<TPM2B_PRIVATE> owned_priv(priv);
    tpm::EsysPtr<TPM2B_PUBLIC> owned(out);
    if (rc != TSS2_RC_SUCCESS) return tpmobj::PublicArea{};
    Bytes bytes(sizeof(TPM2B_PUBLIC));
    size_t off = 0;
    EXPECT_EQ(Tss2_MU_TPM2B_PUBLIC_Marshal(out, bytes.data(), bytes.size(), &off), TSS2_RC_SUCCESS);
    bytes.resize(off);
    auto area = tpmobj::ParseTpm2bPublic(bytes);
    EXPECT_TRUE(area.ok());
    return area.ok() ? *area : tpmobj::PublicArea{};
  }
};

constexpr TPMA_OBJECT kAkAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

TEST_F(EnrolmentTest, RoundTripWithRsaEk) {
  auto tpm = Open(tcti());
  RoundTrip(tpm, EkKind::kRsa2048);
}

TEST_F(EnrolmentTest, RoundTripWithEccEk) {
  auto tpm = Open(tcti());
  RoundTrip(tpm, EkKind::kEccP256);
}

// The AK lives in the endorsement hierarchy: a quote by a key of another
// hierarchy obfuscates resetCount and restartCount with a per-key value, and
// the verifier's clock checks need the TPM's own counters. After two power
// cycles the quote must say what TPM2_ReadClock says.
TEST_F(EnrolmentTest, AkQuotesCarryTheTpmsOwnResetAndRestartCounts) {
  tpm::EsysContext tpm = Open(tcti());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(testing::SwtpmPowerCycle(tcti()).ok());
    ASSERT_EQ(Esys_Startup(tpm.get(), TPM2_SU_CLEAR), TSS2_RC_SUCCESS);
  }
  auto blobs = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  auto ak = attest_tpm::LoadAk(tpm, *blobs);
  ASSERT_TRUE(ak.ok()) << ak.status().ToString();
  const Bytes nonce = RandomSecret();
  auto quote = attest_tpm::Quote(tpm, ak->handle(), nonce, {{TPM2_ALG_SHA256, {16}}});
  ASSERT_TRUE(quote.ok()) << quote.status().ToString();
  auto facts = attest::CheckQuote(AkPublic(*blobs), quote->attest, quote->signature, nonce);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  TPMS_TIME_INFO* now = nullptr;
  ASSERT_EQ(Esys_ReadClock(tpm.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &now),
            TSS2_RC_SUCCESS);
  EXPECT_EQ(facts->clock.resetCount, now->clockInfo.resetCount);
  EXPECT_EQ(facts->clock.restartCount, now->clockInfo.restartCount);
  EXPECT_GE(now->clockInfo.resetCount, 2u) << "two power cycles at least";
  Esys_Free(now);
}

TEST_F(EnrolmentTest, EkIsTheTemplateKeyEveryTimeAndHasNoCertOnAFreshTpm) {
  auto tpm = Open(tcti());
  for (EkKind kind : {EkKind::kRsa2048, EkKind::kEccP256}) {
    auto a = attest_tpm::ReadEk(tpm, kind);
    auto b = attest_tpm::ReadEk(tpm, kind);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->pub.marshalled, b->pub.marshalled);
    EXPECT_TRUE(a->cert_der.empty());
    const TPMA_OBJECT attrs = a->pub.pub.objectAttributes;
    EXPECT_NE(attrs & TPMA_OBJECT_RESTRICTED, 0u);
    EXPECT_NE(attrs & TPMA_OBJECT_DECRYPT, 0u);
    EXPECT_NE(attrs & TPMA_OBJECT_ADMINWITHPOLICY, 0u);
    EXPECT_EQ(a->pub.pub.authPolicy.size, 32);
  }
  // No transient object is left behind by ReadEk / CreateAk.
  auto blobs = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(blobs.ok());
  TPMS_CAPABILITY_DATA* raw = nullptr;
  ASSERT_EQ(Esys_GetCapability(tpm.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               TPM2_CAP_HANDLES, TPM2_TRANSIENT_FIRST, 16, nullptr, &raw),
            TSS2_RC_SUCCESS);
  tpm::EsysPtr<TPMS_CAPABILITY_DATA> caps(raw);
  EXPECT_EQ(caps->data.handles.count, 0u);
}

// A certificate larger than the TPM's NV buffer (swtpm: 1024 bytes; an
// index may hold 2048) is read in chunks and comes back whole.
TEST_F(EnrolmentTest, EkCertificateLargerThanTheNvBufferIsReadWhole) {
  auto tpm = Open(tcti());
  constexpr uint16_t kSize = 2000;
  TPM2B_NV_PUBLIC nv_public{};
  nv_public.nvPublic.nvIndex = attest_tpm::kEkCertNvEccP256;
  nv_public.nvPublic.nameAlg = TPM2_ALG_SHA256;
  nv_public.nvPublic.attributes =
      TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA;
  nv_public.nvPublic.dataSize = kSize;
  TPM2B_AUTH auth{};
  ESYS_TR nv = ESYS_TR_NONE;
  ASSERT_EQ(Esys_NV_DefineSpace(tpm.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                ESYS_TR_NONE, &auth, &nv_public, &nv),
            TSS2_RC_SUCCESS);
  Bytes content(kSize);
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<uint8_t>(i * 7 + 3);
  for (uint16_t at = 0; at < kSize; at += 512) {
    TPM2B_MAX_NV_BUFFER chunk{};
    chunk.size = static_cast<UINT16>(std::min<size_t>(512, kSize - at));
    std::memcpy(chunk.buffer, content.data() + at, chunk.size);
    ASSERT_EQ(
        Esys_NV_Write(tpm.get(), nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &chunk, at),
        TSS2_RC_SUCCESS);
  }
  auto ek = attest_tpm::ReadEk(tpm, EkKind::kEccP256);
  ASSERT_TRUE(ek.ok()) << ek.status().ToString();
  EXPECT_EQ(ek->cert_der, content);
  // The RSA index is still absent: an empty certificate, not an error.
  auto rsa = attest_tpm::ReadEk(tpm, EkKind::kRsa2048);
  ASSERT_TRUE(rsa.ok());
  EXPECT_TRUE(rsa->cert_der.empty());
}

TEST_F(EnrolmentTest, EnrolmentRequestRoundTripsAndStillChecks) {
  auto tpm = Open(tcti());
  auto ek = attest_tpm::ReadEk(tpm, EkKind::kRsa2048);
  auto blobs = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(ek.ok() && blobs.ok());
  auto request = attest_tpm::MakeEnrolmentRequest(*ek, *blobs);
  ASSERT_TRUE(request.ok()) << request.status().ToString();
  request->ek_certificate_der = {0x30, 0x00};  // carried as given, judged later
  const std::string json = attest::SerializeEnrolmentRequest(*request);
  auto parsed = attest::ParseEnrolmentRequest(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(attest::SerializeEnrolmentRequest(*parsed), json);
  EXPECT_EQ(parsed->ek.marshalled, ek->pub.marshalled);
  EXPECT_EQ(parsed->ek_certificate_der, (Bytes{0x30, 0x00}));
  EXPECT_TRUE(attest::CheckAkPublic(parsed->ak).ok());
  EXPECT_TRUE(attest::CheckAkCreation(parsed->ak, parsed->ak_creation_data,
                                      parsed->ak_creation_attest, parsed->ak_creation_signature)
                  .ok());

  // Without a certificate the field is absent, and parses back empty.
  request->ek_certificate_der.clear();
  const std::string no_cert = attest::SerializeEnrolmentRequest(*request);
  EXPECT_EQ(no_cert.find("ek_certificate"), std::string::npos);
  auto parsed_no_cert = attest::ParseEnrolmentRequest(no_cert);
  ASSERT_TRUE(parsed_no_cert.ok()) << parsed_no_cert.status().ToString();
  EXPECT_TRUE(parsed_no_cert->ek_certificate_der.empty());

  // Strictness: each refusal is kMalformed and names the field.
  auto refused = [&](const std::string& text, const std::string& field) {
    auto r = attest::ParseEnrolmentRequest(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), ErrorCode::kMalformed) << r.status().ToString();
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().ToString();
  };
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string text = json;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    return text;
  };
  refused(replaced("\"version\":1", "\"version\":2"), "version");
  refused(replaced("\"version\":1", "\"version\":1.0"), "version");
  refused(replaced("\"version\":1", "\"version\":\"1\""), "version");
  refused(replaced("\"ak_public\"", "\"ak_publik\""), "ak_publik");  // unknown, and ...
  refused(replaced("\"ak_creation_data\":\"", "\"ak_creation_data\":\"zz"), "ak_creation_data");
  refused(replaced("\"ak_creation_attest\":\"", "\"ak_creation_attest\":\"0"),
          "ak_creation_attest");
  refused(replaced("\"ek_public\":\"", "\"ek_public\":\"00"), "ek_public");
  refused(replaced("\"ak_creation_signature\":\"", "\"x\":1,\"ak_creation_signature\":\""), "x");
  refused(replaced("\"ek_certificate\":\"3000\"", "\"ek_certificate\":\"\""), "ek_certificate");
  refused(replaced("\"version\":1", "\"version\":1,\"version\":1"), "version");  // duplicate
  refused("[1]", "(request)");
  refused("{", "(request)");
  nlohmann::json doc = nlohmann::json::parse(json);
  doc.erase("ak_public");
  refused(doc.dump(), "ak_public");
  doc = nlohmann::json::parse(json);
  doc.erase("version");
  refused(doc.dump(), "version");
  doc = nlohmann::json::parse(json);
  doc["ak_creation_signature"] = "";
  refused(doc.dump(), "ak_creation_signature");
  doc = nlohmann::json::parse(json);
  doc["ak_creation_signature"] = 5;
  refused(doc.dump(), "ak_creation_signature");
  // A structure with a byte too many is refused, not silently cut.
  doc = nlohmann::json::parse(json);
  doc["ak_creation_attest"] = doc["ak_creation_attest"].get<std::string>() + "00";
  refused(doc.dump(), "ak_creation_attest");
}

TEST_F(EnrolmentTest, AkBlobsSaveAndLoad) {
  auto tpm = Open(tcti());
  auto blobs = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(blobs.ok());
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  EXPECT_EQ(attest_tpm::LoadAkBlobs(dir.path()).status().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(attest_tpm::SaveAkBlobs(dir.path(), *blobs).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/ak.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = attest_tpm::LoadAkBlobs(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->public_area, blobs->public_area);
  EXPECT_EQ(loaded->private_area, blobs->private_area);
  EXPECT_EQ(loaded->creation_data, blobs->creation_data);
  EXPECT_EQ(loaded->creation_attest, blobs->creation_attest);
  EXPECT_EQ(loaded->creation_signature, blobs->creation_signature);
  // The loaded blobs load into the TPM.
  EXPECT_TRUE(attest_tpm::LoadAk(tpm, *loaded).ok());

  const std::string path = dir.path() + "/ak.json";
  const Bytes good = ReadFile(path);
  const std::string good_text(good.begin(), good.end());
  auto refused = [&](const std::string& text, const std::string& needle) {
    WriteFile(path, text);
    auto r = attest_tpm::LoadAkBlobs(dir.path());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kMalformed) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  };
  refused("garbage", "JSON");
  refused("", "JSON");
  nlohmann::json doc = nlohmann::json::parse(good_text);
  std::string priv = doc["private_area"];
  doc["private_area"] = priv.substr(0, priv.size() - 2);  // one byte short
  refused(doc.dump(), "private_area");
  doc = nlohmann::json::parse(good_text);
  doc["public_area"] = "0g";
  refused(doc.dump(), "public_area");
  doc = nlohmann::json::parse(good_text);
  doc["extra"] = 1;
  refused(doc.dump(), "extra");
}

// --- Attacks on the AK checks -------------------------------------------

TEST_F(EnrolmentTest, PlainSigningKeyIsNotAnAk) {
  auto tpm = Open(tcti());
  const tpmobj::PublicArea plain =
      TpmKey(tpm, kAkAttributes & ~static_cast<TPMA_OBJECT>(TPMA_OBJECT_RESTRICTED));
  EXPECT_REFUSED(attest::CheckAkPublic(plain), ErrorCode::kMismatch, "restricted");
}

TEST_F(EnrolmentTest, KeyWithoutFixedTpmIsNotAnAk) {
  auto tpm = Open(tcti());
  // A duplicable key (fixedTPM and fixedParent clear: the TPM allows
  // fixedTPM clear under a fixedTPM parent only so): it may be moved to
  // another TPM, where its signatures prove nothing about this one.
  const tpmobj::PublicArea movable =
      TpmKey(tpm, kAkAttributes &
                      ~static_cast<TPMA_OBJECT>(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT));
  ASSERT_EQ(movable.pub.objectAttributes & TPMA_OBJECT_FIXEDTPM, 0u);
  EXPECT_REFUSED(attest::CheckAkPublic(movable), ErrorCode::kMismatch, "fixedTPM");
}

TEST_F(EnrolmentTest, DecryptingOrImportedOrWeakKeysAreNotAks) {
  auto tpm = Open(tcti());
  auto blobs = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(blobs.ok());
  const tpmobj::PublicArea good = AkPublic(*blobs);
  auto altered = [&](auto change) {
    tpmobj::PublicArea a = good;
    change(a.pub);
    return a;
  };
  EXPECT_REFUSED(attest::CheckAkPublic(
                     altered([](TPMT_PUBLIC& p) { p.objectAttributes |= TPMA_OBJECT_DECRYPT; })),
                 ErrorCode::kMismatch, "decrypt");
  EXPECT_REFUSED(attest::CheckAkPublic(altered([](TPMT_PUBLIC& p) {
                   p.objectAttributes &= ~static_cast<TPMA_OBJECT>(TPMA_OBJECT_FIXEDPARENT);
                 })),
                 ErrorCode::kMismatch, "fixedParent");
  EXPECT_REFUSED(attest::CheckAkPublic(altered([](TPMT_PUBLIC& p) {
                   p.objectAttributes &= ~static_cast<TPMA_OBJECT>(TPMA_OBJECT_SENSITIVEDATAORIGIN);
                 })),
                 ErrorCode::kMismatch, "sensitiveDataOrigin");
  EXPECT_REFUSED(attest::CheckAkPublic(altered([](TPMT_PUBLIC& p) {
                   p.objectAttributes &= ~static_cast<TPMA_OBJECT>(TPMA_OBJECT_SIGN_ENCRYPT);
                 })),
                 ErrorCode::kMismatch, "sign");
  EXPECT_REFUSED(attest::CheckAkPublic(altered([](TPMT_PUBLIC& p) {
                   p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA1;
                 })),
                 ErrorCode::kMismatch, "hash");
  EXPECT_REFUSED(attest::CheckAkPublic(altered(
                     [](TPMT_PUBLIC& p) { p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL; })),
                 ErrorCode::kMismatch, "scheme");
  EXPECT_REFUSED(attest::CheckAkPublic(altered(
                     [](TPMT_PUBLIC& p) { p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P192; })),
                 ErrorCode::kMismatch, "curve");
}

TEST_F(EnrolmentTest, CreationAttestForAnotherObjectIsRefused) {
  auto tpm = Open(tcti());
  auto ak = attest_tpm::CreateAk(tpm);
  auto other = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(ak.ok() && other.ok());
  // TPM2_CertifyCreation by the AK of ANOTHER object (a primary key made
  // here): a genuine, AK-signed creation attest, but not of the AK.
  auto loaded = attest_tpm::LoadAk(tpm, *ak);
  ASSERT_TRUE(loaded.ok());
  TPM2B_PUBLIC in{};
  in.publicArea.type = TPM2_ALG_ECC;
  in.publicArea.nameAlg = TPM2_ALG_SHA256;
  in.publicArea.objectAttributes = kAkAttributes;
  in.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  in.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  in.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  in.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  in.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  ESYS_TR other_handle = ESYS_TR_NONE;
  TPM2B_CREATION_DATA* raw_data = nullptr;
  TPM2B_DIGEST* raw_hash = nullptr;
  TPMT_TK_CREATION* raw_ticket = nullptr;
  ASSERT_EQ(Esys_CreatePrimary(tpm.get(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &sensitive, &in, &outside, &pcrs, &other_handle,
                               nullptr, &raw_data, &raw_hash, &raw_ticket),
            TSS2_RC_SUCCESS);
  attest_tpm::LoadedObject other_object(tpm.get(), other_handle);
  tpm::EsysPtr<TPM2B_CREATION_DATA> other_data(raw_data);
  tpm::EsysPtr<TPM2B_DIGEST> other_hash(raw_hash);
  tpm::EsysPtr<TPMT_TK_CREATION> other_ticket(raw_ticket);
  TPM2B_DATA qualifying{};
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;
  TPM2B_ATTEST* raw_attest = nullptr;
  TPMT_SIGNATURE* raw_sig = nullptr;
  ASSERT_EQ(
      Esys_CertifyCreation(tpm.get(), loaded->handle(), other_object.handle(), ESYS_TR_PASSWORD,
                           ESYS_TR_NONE, ESYS_TR_NONE, &qualifying, other_hash.get(), &scheme,
                           other_ticket.get(), &raw_attest, &raw_sig),
      TSS2_RC_SUCCESS);
  tpm::EsysPtr<TPM2B_ATTEST> attest(raw_attest);
  tpm::EsysPtr<TPMT_SIGNATURE> sig(raw_sig);
  const Bytes attest_bytes(attest->attestationData, attest->attestationData + attest->size);
  Bytes data_bytes(sizeof(TPMS_CREATION_DATA));
  size_t off = 0;
  ASSERT_EQ(Tss2_MU_TPMS_CREATION_DATA_Marshal(&other_data->creationData, data_bytes.data(),
                                               data_bytes.size(), &off),
            TSS2_RC_SUCCESS);
  data_bytes.resize(off);
  EXPECT_REFUSED(attest::CheckAkCreation(AkPublic(*ak), data_bytes, attest_bytes, *sig),
                 ErrorCode::kMismatch, "objectName");
  // With the AK's own creation data the creation hash does not match either;
  // objectName is what is reported first.
  EXPECT_REFUSED(attest::CheckAkCreation(AkPublic(*ak), ak->creation_data, attest_bytes, *sig),
                 ErrorCode::kMismatch, "objectName");

  // Another AK's own creation attest presented for this AK: its signature
  // is by the other key.
  AkBlobs swapped = *ak;
  swapped.creation_attest = other->creation_attest;
  swapped.creation_signature = other->creation_signature;
  EXPECT_REFUSED(CheckCreation(swapped), ErrorCode::kMismatch, "signature");
}

TEST_F(EnrolmentTest, FlippedCreationSignatureIsRefused) {
  auto tpm = Open(tcti());
  auto ak = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(ak.ok());
  auto sig = tpmobj::ParseSignature(ak->creation_signature);
  ASSERT_TRUE(sig.ok());
  TPMT_SIGNATURE flipped = *sig;
  flipped.signature.ecdsa.signatureR.buffer[5] ^= 0x01;
  EXPECT_REFUSED(
      attest::CheckAkCreation(AkPublic(*ak), ak->creation_data, ak->creation_attest, flipped),
      ErrorCode::kMismatch, "signature");
  // The attest itself changed by one byte: the signature no longer covers it.
  Bytes attest = ak->creation_attest;
  attest.back() ^= 0x01;
  EXPECT_REFUSED(attest::CheckAkCreation(AkPublic(*ak), ak->creation_data, attest, *sig),
                 ErrorCode::kMismatch, "signature");
}

TEST_F(EnrolmentTest, CreationDataThatIsNotTheCertifiedOneIsRefused) {
  auto tpm = Open(tcti());
  auto ak = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(ak.ok());
  TPMS_CREATION_DATA data{};
  size_t off = 0;
  ASSERT_EQ(Tss2_MU_TPMS_CREATION_DATA_Unmarshal(ak->creation_data.data(), ak->creation_data.size(),
                                                 &off, &data),
            TSS2_RC_SUCCESS);
  data.locality ^= 0x01;
  Bytes changed(sizeof(data));
  off = 0;
  ASSERT_EQ(Tss2_MU_TPMS_CREATION_DATA_Marshal(&data, changed.data(), changed.size(), &off),
            TSS2_RC_SUCCESS);
  changed.resize(off);
  auto sig = tpmobj::ParseSignature(ak->creation_signature);
  ASSERT_TRUE(sig.ok());
  EXPECT_REFUSED(attest::CheckAkCreation(AkPublic(*ak), changed, ak->creation_attest, *sig),
                 ErrorCode::kMismatch, "creationHash");
  Bytes trailing = ak->creation_data;
  trailing.push_back(0);
  EXPECT_EQ(attest::CheckAkCreation(AkPublic(*ak), trailing, ak->creation_attest, *sig).code(),
            ErrorCode::kMalformed);
}

// --- Attacks on the credential --------------------------------------------

TEST_F(EnrolmentTest, AkFromAnotherTpmCannotActivate) {
  testing::TempDir dir_b;
  testing::SwtpmProcess tpm_b_process;
  ASSERT_TRUE(tpm_b_process.Start(dir_b.path()));
  auto tpm_a = Open(tcti());
  auto tpm_b = Open(tpm_b_process.tcti());
  for (EkKind kind : {EkKind::kRsa2048, EkKind::kEccP256}) {
    auto ek_a = attest_tpm::ReadEk(tpm_a, kind);
    auto ak_b = attest_tpm::CreateAk(tpm_b);
    ASSERT_TRUE(ek_a.ok() && ak_b.ok());
    // The AK itself is a fine AK: only activation tells which TPM holds it.
    EXPECT_TRUE(attest::CheckAkPublic(AkPublic(*ak_b)).ok());
    EXPECT_TRUE(CheckCreation(*ak_b).ok());
    const Bytes secret = RandomSecret();
    auto cred = attest::MakeCredential(ek_a->pub, NameOf(AkPublic(*ak_b)), secret);
    ASSERT_TRUE(cred.ok());
    // TPM B holds the AK but not EK A: it cannot recover the seed.
    auto loaded_b = attest_tpm::LoadAk(tpm_b, *ak_b);
    ASSERT_TRUE(loaded_b.ok());
    auto on_b = attest_tpm::ActivateCredential(tpm_b, *loaded_b, kind, *cred);
    ASSERT_FALSE(on_b.ok()) << "TPM B returned the secret of a credential for EK A";
    if (kind == EkKind::kEccP256) {
      // The seed from ECDH with B's EK is another seed: integrity HMAC fails.
      EXPECT_EQ(on_b.status().code(), ErrorCode::kMismatch) << on_b.status().ToString();
    } else {
      // RSA-OAEP with B's EK does not decrypt. A hardware TPM says
      // TPM_RC_VALUE (kMismatch); libtpms 0.9 maps OpenSSL's decryption
      // failure to TPM_RC_FAILURE, for this command only.
      EXPECT_NE(on_b.status().message().find("TPM2_ActivateCredential"), std::string::npos)
          << on_b.status().ToString();
    }
    // TPM A holds EK A but cannot even load B's AK (wrapped by B's SRK).
    EXPECT_FALSE(attest_tpm::LoadAk(tpm_a, *ak_b).ok());
  }
}

TEST_F(EnrolmentTest, CredentialForAnotherAkDoesNotActivate) {
  auto tpm = Open(tcti());
  auto ek = attest_tpm::ReadEk(tpm, EkKind::kRsa2048);
  auto ak = attest_tpm::CreateAk(tpm);
  auto other = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(ek.ok() && ak.ok() && other.ok());
  auto cred = attest::MakeCredential(ek->pub, NameOf(AkPublic(*other)), RandomSecret());
  ASSERT_TRUE(cred.ok());
  auto loaded = attest_tpm::LoadAk(tpm, *ak);
  ASSERT_TRUE(loaded.ok());
  auto r = attest_tpm::ActivateCredential(tpm, *loaded, EkKind::kRsa2048, *cred);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kMismatch) << r.status().ToString();
  // A tampered credential blob fails the integrity HMAC the same way.
  auto good = attest::MakeCredential(ek->pub, NameOf(AkPublic(*ak)), RandomSecret());
  ASSERT_TRUE(good.ok());
  attest::Credential tampered = *good;
  tampered.id_object.back() ^= 0x01;
  auto t = attest_tpm::ActivateCredential(tpm, *loaded, EkKind::kRsa2048, tampered);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), ErrorCode::kMismatch) << t.status().ToString();
  // And the untampered one still works on the same loaded AK (no session or
  // EK was left behind by the failures).
  EXPECT_TRUE(attest_tpm::ActivateCredential(tpm, *loaded, EkKind::kRsa2048, *good).ok());
}

// A key in SOFTWARE that claims every AK attribute and "certifies" its own
// creation passes both pure AK checks: they prove nothing until credential
// activation shows the key is in the EK's TPM. Loaded into the real TPM as a
// public-only object (TPM2_LoadExternal, the only way in for a key the TPM
// did not make without changing its attributes and so its name), it cannot
// be authorized for TPM2_ActivateCredential.
TEST_F(EnrolmentTest, SoftwareKeyClaimingToBeAnAkPassesPureChecksButCannotActivate) {
  EVP_PKEY* raw_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(raw_key, nullptr);
  tpmobj::EvpPkeyPtr key(raw_key);
  uint8_t point[65];
  size_t point_len = 0;
  ASSERT_EQ(EVP_PKEY_get_octet_string_param(key.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                            sizeof(point), &point_len),
            1);
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& pub = in.publicArea;
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = kAkAttributes;
  pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  pub.unique.ecc.x.size = 32;
  std::memcpy(pub.unique.ecc.x.buffer, point + 1, 32);
  pub.unique.ecc.y.size = 32;
  std::memcpy(pub.unique.ecc.y.buffer, point + 33, 32);
  Bytes pub_bytes(sizeof(TPM2B_PUBLIC));
  size_t off = 0;
  ASSERT_EQ(Tss2_MU_TPM2B_PUBLIC_Marshal(&in, pub_bytes.data(), pub_bytes.size(), &off),
            TSS2_RC_SUCCESS);
  pub_bytes.resize(off);
  auto soft = tpmobj::ParseTpm2bPublic(pub_bytes);
  ASSERT_TRUE(soft.ok());

  // A forged creation attest with TPM_GENERATED_VALUE, signed in software.
  TPMS_CREATION_DATA creation{};
  creation.parentNameAlg = TPM2_ALG_SHA256;
  Bytes creation_bytes(sizeof(creation));
  off = 0;
  ASSERT_EQ(Tss2_MU_TPMS_CREATION_DATA_Marshal(&creation, creation_bytes.data(),
                                               creation_bytes.size(), &off),
            TSS2_RC_SUCCESS);
  creation_bytes.resize(off);
  TPMS_ATTEST forged{};
  forged.magic = TPM2_GENERATED_VALUE;
  forged.type = TPM2_ST_ATTEST_CREATION;
  const Bytes name = NameOf(*soft);
  forged.attested.creation.objectName.size = static_cast<UINT16>(name.size());
  std::memcpy(forged.attested.creation.objectName.name, name.data(), name.size());
  auto hash = crypto::Hash(TPM2_ALG_SHA256, creation_bytes);
  ASSERT_TRUE(hash.ok());
  forged.attested.creation.creationHash.size = static_cast<UINT16>(hash->size());
  std::memcpy(forged.attested.creation.creationHash.buffer, hash->data(), hash->size());
  Bytes attest_bytes(sizeof(forged));
  off = 0;
  ASSERT_EQ(Tss2_MU_TPMS_ATTEST_Marshal(&forged, attest_bytes.data(), attest_bytes.size(), &off),
            TSS2_RC_SUCCESS);
  attest_bytes.resize(off);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ASSERT_NE(md, nullptr);
  size_t der_len = 128;
  uint8_t der[128];
  ASSERT_EQ(EVP_DigestSignInit_ex(md, nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr), 1);
  ASSERT_EQ(EVP_DigestSign(md, der, &der_len, attest_bytes.data(), attest_bytes.size()), 1);
  EVP_MD_CTX_free(md);
  const uint8_t* p = der;
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  ASSERT_NE(ecdsa, nullptr);
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_ECDSA;
  sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
  sig.signature.ecdsa.signatureR.size = 32;
  sig.signature.ecdsa.signatureS.size = 32;
  ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), sig.signature.ecdsa.signatureR.buffer, 32), 32);
  ASSERT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), sig.signature.ecdsa.signatureS.buffer, 32), 32);
  ECDSA_SIG_free(ecdsa);

  EXPECT_TRUE(attest::CheckAkPublic(*soft).ok());
  Status forged_ok = attest::CheckAkCreation(*soft, creation_bytes, attest_bytes, sig);
  EXPECT_TRUE(forged_ok.ok()) << forged_ok.ToString();

  auto tpm = Open(tcti());
  auto ek = attest_tpm::ReadEk(tpm, EkKind::kRsa2048);
  ASSERT_TRUE(ek.ok());
  const Bytes secret = RandomSecret();
  auto cred = attest::MakeCredential(ek->pub, name, secret);
  ASSERT_TRUE(cred.ok());
  ESYS_TR handle = ESYS_TR_NONE;
  const TSS2_RC rc = Esys_LoadExternal(tpm.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nullptr,
                                       &in, ESYS_TR_RH_OWNER, &handle);
  ASSERT_EQ(rc, TSS2_RC_SUCCESS) << Status::FromTss2(rc, "LoadExternal").ToString();
  attest_tpm::LoadedObject external(tpm.get(), handle);
  auto r = attest_tpm::ActivateCredential(tpm, external, EkKind::kRsa2048, *cred);
  ASSERT_FALSE(r.ok()) << "a public-only software key activated a credential";
  // ActivateCredential needs the ADMIN role of activateHandle: no authValue
  // and no policy for a public-only object.
  EXPECT_EQ(r.status().origin_code(), TPM2_RC_AUTH_UNAVAILABLE) << r.status().ToString();
}

TEST_F(EnrolmentTest, MakeCredentialRefusesBadInputs) {
  auto tpm = Open(tcti());
  auto ek = attest_tpm::ReadEk(tpm, EkKind::kRsa2048);
  auto ak = attest_tpm::CreateAk(tpm);
  ASSERT_TRUE(ek.ok() && ak.ok());
  const Bytes name = NameOf(AkPublic(*ak));
  EXPECT_EQ(attest::MakeCredential(ek->pub, name, {}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(attest::MakeCredential(ek->pub, name, Bytes(33, 1)).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(attest::MakeCredential(ek->pub, Bytes(name.begin(), name.end() - 1), RandomSecret())
                .status()
                .code(),
            ErrorCode::kInvalidArgument);
  // The AK is no decryption key: no credential for it as an "EK".
  EXPECT_EQ(attest::MakeCredential(AkPublic(*ak), name, RandomSecret()).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(EnrolmentSecrets, CompareInConstantTimeAndSizes) {
  const Bytes a(32, 7);
  Bytes b = a;
  EXPECT_TRUE(attest::SecretsEqual(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(attest::SecretsEqual(a, b));
  EXPECT_FALSE(attest::SecretsEqual(a, Bytes(31, 7)));
  EXPECT_FALSE(attest::SecretsEqual(a, {}));
}

// --- EK certificates made by swtpm_setup's local CA --------------------------

class EkCertificateTest : public EnrolmentTest {};

TEST_F(EkCertificateTest, ChainFromSwtpmLocalCa) {
  testing::TempDir dir;
  testing::ManufacturedTpm made;
  ASSERT_TRUE(testing::ManufactureTpm(dir.path(), &made));
  testing::SwtpmProcess swtpm;
  ASSERT_TRUE(swtpm.Start(made.state_dir));
  auto tpm = Open(swtpm.tcti());

  auto ek = attest_tpm::ReadEk(tpm, EkKind::kRsa2048);
  ASSERT_TRUE(ek.ok()) << ek.status().ToString();
  ASSERT_FALSE(ek->cert_der.empty());
  EXPECT_EQ(ek->cert_der, ReadFile(made.ek_rsa_cert_der));  // as swtpm_setup wrote it
  const std::vector<std::string> cas = {made.root_ca_pem, made.issuer_ca_pem};
  Status ok = attest::VerifyEkCertificate(ek->cert_der, cas, ek->pub);
  EXPECT_TRUE(ok.ok()) << ok.ToString();

  // The whole enrolment works on the manufactured TPM too.
  RoundTrip(tpm, EkKind::kRsa2048);
  // swtpm 0.7 certifies a P-384 EK (high range), not the P-256 one.
  auto ecc = attest_tpm::ReadEk(tpm, EkKind::kEccP256);
  ASSERT_TRUE(ecc.ok());
  EXPECT_TRUE(ecc->cert_der.empty());

  // Only the root: the intermediate is missing, no chain.
  EXPECT_REFUSED(attest::VerifyEkCertificate(ek->cert_der, {made.root_ca_pem}, ek->pub),
                 ErrorCode::kMismatch, "chain");
  // Only the intermediate: it is not self-signed, so not a trust anchor.
  EXPECT_REFUSED(attest::VerifyEkCertificate(ek->cert_der, {made.issuer_ca_pem}, ek->pub),
                 ErrorCode::kMismatch, "chain");

  // Another CA (another "manufacturer"): refused.
  testing::TempDir other_dir;
  testing::ManufacturedTpm other;
  ASSERT_TRUE(testing::ManufactureTpm(other_dir.path(), &other));
  EXPECT_REFUSED(
      attest::VerifyEkCertificate(ek->cert_der, {other.root_ca_pem, other.issuer_ca_pem}, ek->pub),
      ErrorCode::kMismatch, "chain");
  // A valid certificate, but for another TPM's EK.
  const Bytes other_cert = ReadFile(other.ek_rsa_cert_der);
  EXPECT_TRUE(attest::VerifyEkCertificate(other_cert, {other.root_ca_pem, other.issuer_ca_pem},
                                          [&] {
                                            testing::SwtpmProcess p;
                                            EXPECT_TRUE(p.Start(other.state_dir));
                                            auto t = Open(p.tcti());
                                            auto e = attest_tpm::ReadEk(t, EkKind::kRsa2048);
                                            EXPECT_TRUE(e.ok());
                                            return e->pub;
                                          }())
                  .ok());
  EXPECT_REFUSED(
      attest::VerifyEkCertificate(other_cert, {other.root_ca_pem, other.issuer_ca_pem}, ek->pub),
      ErrorCode::kMismatch, "another key");
  // This TPM's certificate presented with the fresh fixture TPM's EK.
  auto fixture_tpm = Open(tcti());
  auto fresh = attest_tpm::ReadEk(fixture_tpm, EkKind::kRsa2048);
  ASSERT_TRUE(fresh.ok());
  EXPECT_REFUSED(attest::VerifyEkCertificate(ek->cert_der, cas, fresh->pub), ErrorCode::kMismatch,
                 "another key");

  // Flipped bytes: in the signature (last byte) the chain fails; in the
  // outer header the DER does not parse.
  Bytes flipped = ek->cert_der;
  flipped.back() ^= 0x01;
  EXPECT_REFUSED(attest::VerifyEkCertificate(flipped, cas, ek->pub), ErrorCode::kMismatch, "chain");
  Bytes broken = ek->cert_der;
  broken[1] ^= 0x40;
  EXPECT_EQ(attest::VerifyEkCertificate(broken, cas, ek->pub).code(), ErrorCode::kMalformed);
  Bytes trailing = ek->cert_der;
  trailing.push_back(0);
  EXPECT_REFUSED(attest::VerifyEkCertificate(trailing, cas, ek->pub), ErrorCode::kMalformed,
                 "trailing");
  EXPECT_EQ(attest::VerifyEkCertificate(Bytes(ek->cert_der.begin(), ek->cert_der.end() - 10), cas,
                                        ek->pub)
                .code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(attest::VerifyEkCertificate(Bytes{1, 2, 3}, cas, ek->pub).code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(attest::VerifyEkCertificate({}, cas, ek->pub).code(), ErrorCode::kMalformed);
  EXPECT_EQ(
      attest::VerifyEkCertificate(ek->cert_der, {dir.path() + "/no-such.pem"}, ek->pub).code(),
      ErrorCode::kNotFound);
  WriteFile(dir.path() + "/empty.pem", "not a certificate\n");
  EXPECT_EQ(attest::VerifyEkCertificate(ek->cert_der, {dir.path() + "/empty.pem"}, ek->pub).code(),
            ErrorCode::kMalformed);
}

}  // namespace
}  // namespace vigil
