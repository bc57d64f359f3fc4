// Public areas, names and signatures made by a real (software) TPM, checked
// by the pure tpm_object code; and what it refuses.
#include "vigil/tpm_object.h"

#include <gtest/gtest.h>
#include <tss2/tss2_mu.h>

#include <cstring>
#include <vector>

#include "swtpm_fixture.h"
#include "vigil/tpm.h"

namespace vigil {
namespace {

class TpmObjectTest : public testing::SwtpmFixture {
 protected:
  // A primary signing key (ECC P-256 ECDSA-SHA256, or RSA-2048 with
  // `rsa_scheme`) under the owner hierarchy; returns its ESYS handle.
  ESYS_TR CreateSigningKey(ESYS_CONTEXT* ctx, bool rsa, uint16_t rsa_scheme = TPM2_ALG_RSASSA) {
    TPM2B_PUBLIC in_public{};
    TPMT_PUBLIC& pub = in_public.publicArea;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                           TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                           TPMA_OBJECT_SIGN_ENCRYPT;
    if (rsa) {
      pub.type = TPM2_ALG_RSA;
      pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
      pub.parameters.rsaDetail.scheme.scheme = rsa_scheme;
      pub.parameters.rsaDetail.scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
      pub.parameters.rsaDetail.keyBits = 2048;
    } else {
      pub.type = TPM2_ALG_ECC;
      pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
      pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
      pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
      pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
      pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    }
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION pcrs{};
    ESYS_TR handle = ESYS_TR_NONE;
    TSS2_RC rc = Esys_CreatePrimary(ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &sensitive, &in_public, &outside, &pcrs, &handle,
                                    nullptr, nullptr, nullptr, nullptr);
    EXPECT_EQ(rc, TSS2_RC_SUCCESS);
    return handle;
  }

  std::vector<uint8_t> ReadPublicBytes(ESYS_CONTEXT* ctx, ESYS_TR key, std::vector<uint8_t>* name) {
    TPM2B_PUBLIC* pub = nullptr;
    TPM2B_NAME* tpm_name = nullptr;
    EXPECT_EQ(Esys_ReadPublic(ctx, key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, &tpm_name,
                              nullptr),
              TSS2_RC_SUCCESS);
    std::vector<uint8_t> bytes(sizeof(TPM2B_PUBLIC));
    size_t off = 0;
    EXPECT_EQ(Tss2_MU_TPM2B_PUBLIC_Marshal(pub, bytes.data(), bytes.size(), &off), TSS2_RC_SUCCESS);
    bytes.resize(off);
    name->assign(tpm_name->name, tpm_name->name + tpm_name->size);
    Esys_Free(pub);
    Esys_Free(tpm_name);
    return bytes;
  }

  TPMT_SIGNATURE Sign(ESYS_CONTEXT* ctx, ESYS_TR key, const std::vector<uint8_t>& message) {
    auto digest = crypto::Hash(TPM2_ALG_SHA256, message);
    EXPECT_TRUE(digest.ok());
    TPM2B_DIGEST d{};
    d.size = static_cast<UINT16>(digest->size());
    std::memcpy(d.buffer, digest->data(), digest->size());
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_NULL;  // the key's own
    TPMT_TK_HASHCHECK ticket{};
    ticket.tag = TPM2_ST_HASHCHECK;
    ticket.hierarchy = TPM2_RH_NULL;
    TPMT_SIGNATURE* sig = nullptr;
    EXPECT_EQ(Esys_Sign(ctx, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d, &scheme,
                        &ticket, &sig),
              TSS2_RC_SUCCESS);
    TPMT_SIGNATURE out = *sig;
    Esys_Free(sig);
    return out;
  }
};

TEST_F(TpmObjectTest, EcdsaAndRsaSignaturesOfTheTpmVerifyAndNamesMatch) {
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok()) << tpm.status().ToString();
  const std::vector<uint8_t> message = {'q', 'u', 'o', 't', 'e', 'd'};
  struct Case {
    bool rsa;
    uint16_t scheme;
  };
  for (const Case c :
       {Case{false, TPM2_ALG_ECDSA}, Case{true, TPM2_ALG_RSASSA}, Case{true, TPM2_ALG_RSAPSS}}) {
    SCOPED_TRACE(c.scheme);
    ESYS_TR key = CreateSigningKey(tpm->get(), c.rsa, c.scheme);
    std::vector<uint8_t> tpm_name;
    auto area = tpmobj::ParseTpm2bPublic(ReadPublicBytes(tpm->get(), key, &tpm_name));
    ASSERT_TRUE(area.ok()) << area.status().ToString();
    auto name = tpmobj::Name(*area);
    ASSERT_TRUE(name.ok());
    EXPECT_EQ(*name, tpm_name);
    EXPECT_EQ(tpmobj::MarshalTpm2bPublic(*area).size(), area->marshalled.size() + 2);

    TPMT_SIGNATURE sig = Sign(tpm->get(), key, message);
    EXPECT_EQ(sig.sigAlg, c.scheme);
    // The marshalled form round-trips through ParseSignature.
    std::vector<uint8_t> sig_bytes(sizeof(TPMT_SIGNATURE));
    size_t off = 0;
    ASSERT_EQ(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, sig_bytes.data(), sig_bytes.size(), &off),
              TSS2_RC_SUCCESS);
    sig_bytes.resize(off);
    auto parsed = tpmobj::ParseSignature(sig_bytes);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    Status ok = tpmobj::VerifySignature(*area, message, *parsed);
    EXPECT_TRUE(ok.ok()) << ok.ToString();

    std::vector<uint8_t> other = message;
    other[0] ^= 1;
    EXPECT_EQ(tpmobj::VerifySignature(*area, other, *parsed).code(), ErrorCode::kMismatch);
    auto pem = tpmobj::ToPem(*area);
    ASSERT_TRUE(pem.ok());
    EXPECT_NE(pem->find("BEGIN PUBLIC KEY"), std::string::npos);
    Esys_FlushContext(tpm->get(), key);
  }
}

TEST_F(TpmObjectTest, RefusesMalformedAndMismatchedInput) {
  auto tpm = tpm::EsysContext::Open(tcti());
  ASSERT_TRUE(tpm.ok());
  ESYS_TR ecc = CreateSigningKey(tpm->get(), false);
  std::vector<uint8_t> name;
  std::vector<uint8_t> bytes = ReadPublicBytes(tpm->get(), ecc, &name);

  // Truncated, trailing bytes, a size prefix that lies.
  EXPECT_EQ(tpmobj::ParseTpm2bPublic(std::span(bytes).first(bytes.size() - 1)).status().code(),
            ErrorCode::kMalformed);
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(tpmobj::ParseTpm2bPublic(longer).status().code(), ErrorCode::kMalformed);
  EXPECT_EQ(tpmobj::ParseTpm2bPublic(std::span(bytes).first(1)).status().code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(tpmobj::ParseSignature({}).status().code(), ErrorCode::kMalformed);
  EXPECT_EQ(tpmobj::ParseAttest(bytes).status().code(), ErrorCode::kMalformed);

  // A point moved off the curve is refused, not used.
  auto area = tpmobj::ParseTpm2bPublic(bytes);
  ASSERT_TRUE(area.ok());
  tpmobj::PublicArea off_curve = *area;
  off_curve.pub.unique.ecc.y.buffer[5] ^= 0x40;
  EXPECT_FALSE(tpmobj::ToEvpPkey(off_curve).ok());

  // An ECDSA signature against an RSA key is an argument error, not a pass.
  TPMT_SIGNATURE sig = Sign(tpm->get(), ecc, {1, 2, 3});
  ESYS_TR rsa = CreateSigningKey(tpm->get(), true);
  auto rsa_area = tpmobj::ParseTpm2bPublic(ReadPublicBytes(tpm->get(), rsa, &name));
  ASSERT_TRUE(rsa_area.ok());
  EXPECT_EQ(tpmobj::VerifySignature(*rsa_area, std::vector<uint8_t>{1, 2, 3}, sig).code(),
            ErrorCode::kInvalidArgument);
  // The key that made it does.
  EXPECT_TRUE(tpmobj::VerifySignature(*area, std::vector<uint8_t>{1, 2, 3}, sig).ok());
  TPMT_SIGNATURE unknown = sig;
  unknown.sigAlg = TPM2_ALG_SM2;
  EXPECT_EQ(tpmobj::VerifySignature(*area, std::vector<uint8_t>{1, 2, 3}, unknown).code(),
            ErrorCode::kUnsupported);
}

TEST(TpmObjectPcrDigest, IsTheHashOfTheConcatenatedValues) {
  const crypto::Digest a(32, 0x11), b(32, 0x22);
  auto digest = tpmobj::PcrCompositeDigest(TPM2_ALG_SHA256, std::vector<crypto::Digest>{a, b});
  ASSERT_TRUE(digest.ok());
  std::vector<uint8_t> both(a);
  both.insert(both.end(), b.begin(), b.end());
  EXPECT_EQ(*digest, *crypto::Hash(TPM2_ALG_SHA256, both));
}

}  // namespace
}  // namespace vigil
