// The module's checkpoint key certified by an AK, against swtpm: a key made
// with the module's template (CreatePrimary under the owner hierarchy, a
// secret auth value, its context saved raw with TPM2_ContextSave as the
// module does) is certified through CertifyModuleKey and passes
// CheckKeyCertification; every forgery is refused.
#include "vigil/attest/key_certification.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>

#include <cstring>
#include <optional>
#include <vector>

#include "attest_test_util.h"
#include "swtpm_fixture.h"
#include "vigil/attest_tpm/key_certification.h"
#include "vigil/tpm.h"
#include "vigil/tpm_object.h"

namespace vigil {
namespace {

constexpr TPMA_OBJECT kModuleAttrs = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                     TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT;
constexpr TPMA_OBJECT kAkAttrs = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                 TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;

using testing::Marshal;

std::vector<uint8_t> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  EXPECT_EQ(RAND_bytes(out.data(), static_cast<int>(n)), 1);
  return out;
}

TPM2B_PUBLIC EccSigningTemplate(TPMA_OBJECT attrs) {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& pub = in.publicArea;
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = attrs;
  pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  // Like the module: 32 secret random bytes in unique.x make the key unique.
  const auto unique = RandomBytes(32);
  pub.unique.ecc.x.size = 32;
  std::memcpy(pub.unique.ecc.x.buffer, unique.data(), 32);
  return in;
}

// What the module holds for its key, made by ESAPI here.
struct ModuleLikeKey {
  device::KeyCreation creation;
  crypto::EcPoint point{};
};

class KeyCertificationTest : public testing::SwtpmFixture {
 protected:
  void SetUp() override {
    SwtpmFixture::SetUp();
    auto esys = tpm::EsysContext::Open(tcti());
    ASSERT_TRUE(esys.ok()) << esys.status().ToString();
    esys_.emplace(std::move(esys).value());
    ak_ = MakeAk(&ak_public_);
    nonce_ = RandomBytes(32);
  }
  void TearDown() override {
    esys_.reset();
    SwtpmFixture::TearDown();
  }
  ESYS_CONTEXT* ctx() { return esys_->get(); }

  ESYS_TR MakeAk(tpmobj::PublicArea* pub) {
    TPM2B_PUBLIC in = EccSigningTemplate(kAkAttrs);
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    ESYS_TR ak = ESYS_TR_NONE;
    TPM2B_PUBLIC* out_public = nullptr;
    EXPECT_EQ(Esys_CreatePrimary(ctx(), ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &sensitive, &in, &outside, &pcrs, &ak, &out_public,
                                 nullptr, nullptr, nullptr),
              TSS2_RC_SUCCESS);
    auto parsed = tpmobj::ParseTpm2bPublic(Marshal(*out_public, Tss2_MU_TPM2B_PUBLIC_Marshal));
    Esys_Free(out_public);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    if (parsed.ok()) *pub = std::move(parsed).value();
    return ak;
  }

  // A primary key under `hierarchy` with `attrs` and a random auth value,
  // its context saved raw (TPM2_ContextSave through SAPI, as the module's
  // tpm_buf command) and flushed: only the saved blob is left, as in the
  // module.
  ModuleLikeKey MakePrimary(ESYS_TR hierarchy, TPMA_OBJECT attrs) {
    TPM2B_PUBLIC in = EccSigningTemplate(attrs);
    TPM2B_SENSITIVE_CREATE sensitive{};
    const auto auth = RandomBytes(32);
    sensitive.sensitive.userAuth.size = 32;
    std::memcpy(sensitive.sensitive.userAuth.buffer, auth.data(), 32);
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    ESYS_TR key = ESYS_TR_NONE;
    TPM2B_PUBLIC* out_public = nullptr;
    TPM2B_CREATION_DATA* creation_data = nullptr;
    TPM2B_DIGEST* creation_hash = nullptr;
    TPMT_TK_CREATION* ticket = nullptr;
    ModuleLikeKey out;
    const TSS2_RC rc = Esys_CreatePrimary(ctx(), hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                          ESYS_TR_NONE, &sensitive, &in, &outside, &pcrs, &key,
                                          &out_public, &creation_data, &creation_hash, &ticket);
    EXPECT_EQ(rc, TSS2_RC_SUCCESS);
    if (rc != TSS2_RC_SUCCESS) return out;
    Fill(key, *out_public, *creation_data, *creation_hash, *ticket, &out);
    Esys_Free(out_public);
    Esys_Free(creation_data);
    Esys_Free(creation_hash);
    Esys_Free(ticket);
    return out;
  }

  // A child key with the module's attributes under a storage primary of
  // the owner hierarchy: not a primary key.
  ModuleLikeKey MakeChild() {
    TPM2B_PUBLIC parent_in{};
    TPMT_PUBLIC& pp = parent_in.publicArea;
    pp.type = TPM2_ALG_ECC;
    pp.nameAlg = TPM2_ALG_SHA256;
    pp.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                          TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    pp.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    pp.parameters.eccDetail.symmetric.keyBits.aes = 128;
    pp.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    pp.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    pp.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pp.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    ESYS_TR parent = ESYS_TR_NONE;
    EXPECT_EQ(Esys_CreatePrimary(ctx(), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &sensitive, &parent_in, &outside, &pcrs, &parent,
                                 nullptr, nullptr, nullptr, nullptr),
              TSS2_RC_SUCCESS);
    TPM2B_PUBLIC in = EccSigningTemplate(kModuleAttrs);
    TPM2B_PRIVATE* priv = nullptr;
    TPM2B_PUBLIC* out_public = nullptr;
    TPM2B_CREATION_DATA* creation_data = nullptr;
    TPM2B_DIGEST* creation_hash = nullptr;
    TPMT_TK_CREATION* ticket = nullptr;
    ModuleLikeKey out;
    EXPECT_EQ(
        Esys_Create(ctx(), parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &in,
                    &outside, &pcrs, &priv, &out_public, &creation_data, &creation_hash, &ticket),
        TSS2_RC_SUCCESS);
    ESYS_TR key = ESYS_TR_NONE;
    EXPECT_EQ(Esys_Load(ctx(), parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv,
                        out_public, &key),
              TSS2_RC_SUCCESS);
    Fill(key, *out_public, *creation_data, *creation_hash, *ticket, &out);
    EXPECT_EQ(Esys_FlushContext(ctx(), parent), TSS2_RC_SUCCESS);
    Esys_Free(priv);
    Esys_Free(out_public);
    Esys_Free(creation_data);
    Esys_Free(creation_hash);
    Esys_Free(ticket);
    return out;
  }

  void Fill(ESYS_TR key, const TPM2B_PUBLIC& pub, const TPM2B_CREATION_DATA& data,
            const TPM2B_DIGEST& hash, const TPMT_TK_CREATION& ticket, ModuleLikeKey* out) {
    out->creation.key_public = Marshal(pub, Tss2_MU_TPM2B_PUBLIC_Marshal);
    out->creation.creation_data = Marshal(data, Tss2_MU_TPM2B_CREATION_DATA_Marshal);
    out->creation.creation_hash = Marshal(hash, Tss2_MU_TPM2B_DIGEST_Marshal);
    out->creation.creation_ticket = Marshal(ticket, Tss2_MU_TPMT_TK_CREATION_Marshal);
    const TPMS_ECC_POINT& p = pub.publicArea.unique.ecc;
    EXPECT_EQ(p.x.size, 32);
    EXPECT_EQ(p.y.size, 32);
    std::memcpy(out->point.x, p.x.buffer, 32);
    std::memcpy(out->point.y, p.y.buffer, 32);
    TPM2_HANDLE handle = 0;
    ASSERT_EQ(Esys_TR_GetTpmHandle(ctx(), key, &handle), TSS2_RC_SUCCESS);
    TSS2_SYS_CONTEXT* sys = nullptr;
    ASSERT_EQ(Esys_GetSysContext(ctx(), &sys), TSS2_RC_SUCCESS);
    TPMS_CONTEXT saved{};
    ASSERT_EQ(Tss2_Sys_ContextSave(sys, handle, &saved), TSS2_RC_SUCCESS);
    out->creation.context = Marshal(saved, Tss2_MU_TPMS_CONTEXT_Marshal);
    ASSERT_EQ(Esys_FlushContext(ctx(), key), TSS2_RC_SUCCESS);
  }

  // Transient objects loaded in the TPM now.
  uint32_t TransientCount() {
    TPMS_CAPABILITY_DATA* data = nullptr;
    TPMI_YES_NO more = TPM2_NO;
    EXPECT_EQ(Esys_GetCapability(ctx(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                 TPM2_TRANSIENT_FIRST, 32, &more, &data),
              TSS2_RC_SUCCESS);
    const uint32_t n = data ? data->data.handles.count : 0;
    Esys_Free(data);
    return n;
  }

  attest::KeyCertification Certify(ESYS_TR ak, const ModuleLikeKey& key) {
    auto cert = attest_tpm::CertifyModuleKey(*esys_, ak, key.creation, nonce_);
    EXPECT_TRUE(cert.ok()) << cert.status().ToString();
    return cert.ok() ? std::move(cert).value() : attest::KeyCertification{};
  }

  std::optional<tpm::EsysContext> esys_;
  ESYS_TR ak_ = ESYS_TR_NONE;
  tpmobj::PublicArea ak_public_;
  std::vector<uint8_t> nonce_;
};

TEST_F(KeyCertificationTest, ModuleKeyCertifiedByTheAkPasses) {
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  const uint32_t loaded = TransientCount();
  const attest::KeyCertification cert = Certify(ak_, key);
  // The loaded key was flushed; only the AK is left.
  EXPECT_EQ(TransientCount(), loaded);
  EXPECT_EQ(loaded, 1u);
  const Status s = attest::CheckKeyCertification(ak_public_, cert, key.point, nonce_);
  EXPECT_TRUE(s.ok()) << s.ToString();
  // The evidence is the key's own creation record.
  EXPECT_EQ(cert.key_public, key.creation.key_public);
  EXPECT_EQ(cert.creation_data, key.creation.creation_data);
}

TEST_F(KeyCertificationTest, CertifiesTheSameContextAgain) {
  // The module keeps one saved context; it loads any number of times.
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  for (int i = 0; i < 3; ++i) {
    const attest::KeyCertification cert = Certify(ak_, key);
    EXPECT_TRUE(attest::CheckKeyCertification(ak_public_, cert, key.point, nonce_).ok());
  }
  EXPECT_EQ(TransientCount(), 1u);
}

TEST_F(KeyCertificationTest, AnotherKeysPointIsRefused) {
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  const ModuleLikeKey other = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  const attest::KeyCertification cert = Certify(ak_, key);
  const Status s = attest::CheckKeyCertification(ak_public_, cert, other.point, nonce_);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("another point"), std::string::npos) << s.ToString();
}

TEST_F(KeyCertificationTest, DuplicableKeyIsRefused) {
  // Not fixedTPM, not fixedParent: a key that could leave the TPM.
  const ModuleLikeKey key = MakePrimary(
      ESYS_TR_RH_OWNER, kModuleAttrs & ~(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT));
  ASSERT_FALSE(key.creation.context.empty());
  const attest::KeyCertification cert = Certify(ak_, key);
  const Status s = attest::CheckKeyCertification(ak_public_, cert, key.point, nonce_);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("attributes"), std::string::npos) << s.ToString();
}

TEST_F(KeyCertificationTest, KeyWithOtherAttributesIsRefused) {
  // Same but without noDA: not the module's template.
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs & ~TPMA_OBJECT_NODA);
  const attest::KeyCertification cert = Certify(ak_, key);
  const Status s = attest::CheckKeyCertification(ak_public_, cert, key.point, nonce_);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("attributes"), std::string::npos) << s.ToString();
}

TEST_F(KeyCertificationTest, KeyOfAnotherHierarchyOrParentIsRefused) {
  const ModuleLikeKey endorsement = MakePrimary(ESYS_TR_RH_ENDORSEMENT, kModuleAttrs);
  Status s = attest::CheckKeyCertification(ak_public_, Certify(ak_, endorsement), endorsement.point,
                                           nonce_);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("owner hierarchy"), std::string::npos) << s.ToString();

  const ModuleLikeKey child = MakeChild();
  s = attest::CheckKeyCertification(ak_public_, Certify(ak_, child), child.point, nonce_);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("owner hierarchy"), std::string::npos) << s.ToString();
}

TEST_F(KeyCertificationTest, CreationDataOfAnotherKeyIsRefused) {
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  const ModuleLikeKey other = MakePrimary(ESYS_TR_RH_ENDORSEMENT, kModuleAttrs);
  attest::KeyCertification cert = Certify(ak_, key);
  cert.creation_data = other.creation.creation_data;
  const Status s = attest::CheckKeyCertification(ak_public_, cert, key.point, nonce_);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("creationHash"), std::string::npos) << s.ToString();

  // Another key's public area with this certification: another name.
  cert = Certify(ak_, key);
  cert.key_public = other.creation.key_public;
  EXPECT_EQ(attest::CheckKeyCertification(ak_public_, cert, other.point, nonce_).code(),
            ErrorCode::kMismatch);
}

TEST_F(KeyCertificationTest, TicketOfAnotherKeyIsRefusedByTheTpm) {
  // The TPM checks the creation ticket against the loaded object: a key's
  // context with another key's creation hash and ticket is not certified.
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  ModuleLikeKey mixed = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  mixed.creation.context = key.creation.context;
  auto cert = attest_tpm::CertifyModuleKey(*esys_, ak_, mixed.creation, nonce_);
  EXPECT_FALSE(cert.ok());
  EXPECT_EQ(TransientCount(), 1u);  // flushed on the error path too
}

TEST_F(KeyCertificationTest, WrongNonceIsRefused) {
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  const attest::KeyCertification cert = Certify(ak_, key);
  std::vector<uint8_t> other_nonce = nonce_;
  other_nonce[0] ^= 1;
  const Status s = attest::CheckKeyCertification(ak_public_, cert, key.point, other_nonce);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("nonce"), std::string::npos) << s.ToString();
}

TEST_F(KeyCertificationTest, SignatureByAnotherAkIsRefused) {
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  tpmobj::PublicArea other_ak_public;
  const ESYS_TR other_ak = MakeAk(&other_ak_public);
  const attest::KeyCertification cert = Certify(other_ak, key);
  EXPECT_TRUE(attest::CheckKeyCertification(other_ak_public, cert, key.point, nonce_).ok());
  const Status s = attest::CheckKeyCertification(ak_public_, cert, key.point, nonce_);
  EXPECT_EQ(s.code(), ErrorCode::kMismatch);
  EXPECT_NE(s.message().find("not signed by the AK"), std::string::npos) << s.ToString();
}

TEST_F(KeyCertificationTest, UnrestrictedSignerIsNotAnAk) {
  // A plain signing key would sign any bytes that start with the magic.
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  const attest::KeyCertification cert = Certify(ak_, key);
  auto not_ak = tpmobj::ParseTpm2bPublic(key.creation.key_public);
  ASSERT_TRUE(not_ak.ok());
  EXPECT_EQ(attest::CheckKeyCertification(*not_ak, cert, key.point, nonce_).code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(KeyCertificationTest, FlippedBytesAreRefused) {
  const ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  const attest::KeyCertification good = Certify(ak_, key);
  ASSERT_TRUE(attest::CheckKeyCertification(ak_public_, good, key.point, nonce_).ok());
  std::vector<uint8_t> attest::KeyCertification::*fields[] = {
      &attest::KeyCertification::key_public, &attest::KeyCertification::creation_data,
      &attest::KeyCertification::attest, &attest::KeyCertification::signature};
  int refused = 0, tried = 0;
  for (auto field : fields) {
    const size_t n = (good.*field).size();
    for (size_t i = 0; i < n; ++i) {
      for (uint8_t bit : {0x01, 0x80}) {
        attest::KeyCertification bad = good;
        (bad.*field)[i] ^= bit;
        ++tried;
        if (!attest::CheckKeyCertification(ak_public_, bad, key.point, nonce_).ok()) ++refused;
      }
    }
  }
  EXPECT_GT(tried, 400);
  EXPECT_EQ(refused, tried);
  // Truncated and extended inputs.
  for (auto field : fields) {
    attest::KeyCertification bad = good;
    (bad.*field).pop_back();
    EXPECT_FALSE(attest::CheckKeyCertification(ak_public_, bad, key.point, nonce_).ok());
    bad = good;
    (bad.*field).push_back(0);
    EXPECT_FALSE(attest::CheckKeyCertification(ak_public_, bad, key.point, nonce_).ok());
    bad = good;
    (bad.*field).clear();
    EXPECT_FALSE(attest::CheckKeyCertification(ak_public_, bad, key.point, nonce_).ok());
  }
}

TEST_F(KeyCertificationTest, BadContextBlobFailsWithoutLeaking) {
  ModuleLikeKey key = MakePrimary(ESYS_TR_RH_OWNER, kModuleAttrs);
  key.creation.context[key.creation.context.size() - 5] ^= 1;  // inside the TPM's integrity
  EXPECT_FALSE(attest_tpm::CertifyModuleKey(*esys_, ak_, key.creation, nonce_).ok());
  key.creation.context.resize(10);
  EXPECT_EQ(attest_tpm::CertifyModuleKey(*esys_, ak_, key.creation, nonce_).status().code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(TransientCount(), 1u);
}

}  // namespace
}  // namespace vigil
