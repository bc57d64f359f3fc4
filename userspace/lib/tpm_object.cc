#include "vigil/tpm_object.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

#include <string>
#include <string_view>

#include "vigil/openssl_ptr.h"

namespace vigil::tpmobj {
namespace {

using ossl::BignumPtr;
using ossl::BioPtr;
using ossl::Deleter;
using ossl::EcdsaSigPtr;
using ossl::MdCtxPtr;
using ossl::ParamBldPtr;
using ossl::ParamPtr;
using ossl::PkeyCtxPtr;

void ClearOpenSslErrors() {
  while (ERR_get_error() != 0) {
  }
}

Result<EvpPkeyPtr> FromParams(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return Status::FromOpenSsl("OSSL_PARAM_BLD_to_param");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return Status::FromOpenSsl("EVP_PKEY_fromdata_init");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    Status st = Status::FromOpenSsl("building the public key");
    return Status::Error(ErrorCode::kMalformed, st.message());
  }
  EvpPkeyPtr pkey(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    Status st = Status::FromOpenSsl("public key check");
    return Status::Error(ErrorCode::kMalformed, st.message());
  }
  return pkey;
}

Result<EvpPkeyPtr> EccKey(const TPMT_PUBLIC& pub) {
  const TPMS_ECC_PARMS& parms = pub.parameters.eccDetail;
  const char* group = nullptr;
  size_t coord = 0;
  switch (parms.curveID) {
    case TPM2_ECC_NIST_P256:
      group = "prime256v1";
      coord = 32;
      break;
    case TPM2_ECC_NIST_P384:
      group = "secp384r1";
      coord = 48;
      break;
    default:
      return Status::Error(ErrorCode::kUnsupported,
                           "ECC curve " + std::to_string(parms.curveID) + " (P-256 or P-384 only)");
  }
  const TPMS_ECC_POINT& point = pub.unique.ecc;
  if (point.x.size != coord || point.y.size != coord) {
    return Status::Error(ErrorCode::kMalformed,
                         "ECC point coordinates are not " + std::to_string(coord) + " bytes each");
  }
  std::vector<uint8_t> encoded;
  encoded.reserve(1 + 2 * coord);
  encoded.push_back(0x04);  // uncompressed
  encoded.insert(encoded.end(), point.x.buffer, point.x.buffer + coord);
  encoded.insert(encoded.end(), point.y.buffer, point.y.buffer + coord);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return Status::FromOpenSsl("OSSL_PARAM_BLD_new");
  if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, encoded.data(),
                                       encoded.size()) != 1) {
    return Status::FromOpenSsl("building EC key parameters");
  }
  return FromParams("EC", bld.get());
}

Result<EvpPkeyPtr> RsaKey(const TPMT_PUBLIC& pub) {
  const TPMS_RSA_PARMS& parms = pub.parameters.rsaDetail;
  const TPM2B_PUBLIC_KEY_RSA& modulus = pub.unique.rsa;
  if (parms.keyBits < 2048 || modulus.size * 8u != parms.keyBits) {
    return Status::Error(ErrorCode::kUnsupported,
                         "RSA key of " + std::to_string(parms.keyBits) + " bits with a " +
                             std::to_string(modulus.size) + "-byte modulus (2048+ only)");
  }
  const uint32_t exponent = parms.exponent == 0 ? 65537u : parms.exponent;
  BignumPtr n(BN_bin2bn(modulus.buffer, modulus.size, nullptr));
  BignumPtr e(BN_new());
  if (!n || !e || BN_set_word(e.get(), exponent) != 1) return Status::FromOpenSsl("BIGNUM");
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return Status::FromOpenSsl("OSSL_PARAM_BLD_new");
  if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return Status::FromOpenSsl("building RSA key parameters");
  }
  return FromParams("RSA", bld.get());
}

// ECDSA (r, s) as the DER SEQUENCE OpenSSL verifies.
Result<std::vector<uint8_t>> EcdsaDer(const TPMS_SIGNATURE_ECC& ecc) {
  BignumPtr r(BN_bin2bn(ecc.signatureR.buffer, ecc.signatureR.size, nullptr));
  BignumPtr s(BN_bin2bn(ecc.signatureS.buffer, ecc.signatureS.size, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig) return Status::FromOpenSsl("ECDSA_SIG_new");
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
    return Status::FromOpenSsl("ECDSA_SIG_set0");
  r.release();  // owned by sig now
  s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return Status::FromOpenSsl("i2d_ECDSA_SIG");
  std::vector<uint8_t> der(static_cast<size_t>(len));
  uint8_t* out = der.data();
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

// The key of the last signature checked, per thread: a verifier checks
// one AK's quotes (and one module key's certifications) over and over, and
// building and checking the key (parameters, fromdata, the on-curve check)
// cost as much as the verification itself. Keyed by the exact public area
// bytes; only a key that passed those checks is kept. thread_local: an
// EVP_PKEY is used by one thread at a time.
struct KeyCache {
  std::vector<uint8_t> area;
  EvpPkeyPtr pkey;
};
thread_local KeyCache key_cache;

Result<EVP_PKEY*> CachedKey(const PublicArea& key) {
  if (!key_cache.pkey || key_cache.area != key.marshalled) {
    key_cache.pkey.reset();
    VIGIL_ASSIGN_OR_RETURN(EvpPkeyPtr pkey, ToEvpPkey(key));
    key_cache.area = key.marshalled;
    key_cache.pkey = std::move(pkey);
  }
  return key_cache.pkey.get();
}

}  // namespace

const char* EvpDigestName(uint16_t alg) {
  switch (alg) {
    case TPM2_ALG_SHA1:
      return "SHA1";
    case TPM2_ALG_SHA256:
      return "SHA256";
    case TPM2_ALG_SHA384:
      return "SHA384";
    case TPM2_ALG_SHA512:
      return "SHA512";
    default:
      return nullptr;
  }
}

Result<PublicArea> ParseTpmtPublic(std::span<const uint8_t> bytes) {
  PublicArea area;
  VIGIL_ASSIGN_OR_RETURN(
      area.pub, UnmarshalExactly<TPMT_PUBLIC>(bytes, Tss2_MU_TPMT_PUBLIC_Unmarshal, "TPMT_PUBLIC"));
  area.marshalled.assign(bytes.begin(), bytes.end());
  return area;
}

Result<PublicArea> ParseTpm2bPublic(std::span<const uint8_t> bytes) {
  if (bytes.size() < 2) return Status::Error(ErrorCode::kMalformed, "TPM2B_PUBLIC: no size");
  const size_t size = (static_cast<size_t>(bytes[0]) << 8) | bytes[1];
  if (size != bytes.size() - 2) {
    return Status::Error(ErrorCode::kMalformed, "TPM2B_PUBLIC: size " + std::to_string(size) +
                                                    " for " + std::to_string(bytes.size() - 2) +
                                                    " bytes");
  }
  return ParseTpmtPublic(bytes.subspan(2));
}

std::vector<uint8_t> MarshalTpm2bPublic(const PublicArea& area) {
  std::vector<uint8_t> out;
  out.reserve(2 + area.marshalled.size());
  out.push_back(static_cast<uint8_t>(area.marshalled.size() >> 8));
  out.push_back(static_cast<uint8_t>(area.marshalled.size()));
  out.insert(out.end(), area.marshalled.begin(), area.marshalled.end());
  return out;
}

Result<std::vector<uint8_t>> Name(const PublicArea& area) {
  const uint16_t alg = area.pub.nameAlg;
  VIGIL_ASSIGN_OR_RETURN(crypto::Digest digest, crypto::Hash(alg, area.marshalled));
  std::vector<uint8_t> name;
  name.reserve(2 + digest.size());
  name.push_back(static_cast<uint8_t>(alg >> 8));
  name.push_back(static_cast<uint8_t>(alg));
  name.insert(name.end(), digest.begin(), digest.end());
  return name;
}

Result<EvpPkeyPtr> ToEvpPkey(const PublicArea& area) {
  switch (area.pub.type) {
    case TPM2_ALG_ECC:
      return EccKey(area.pub);
    case TPM2_ALG_RSA:
      return RsaKey(area.pub);
    default:
      return Status::Error(ErrorCode::kUnsupported,
                           "key type " + std::to_string(area.pub.type) + " (ECC or RSA only)");
  }
}

Result<std::string> ToPem(const PublicArea& area) {
  VIGIL_ASSIGN_OR_RETURN(EvpPkeyPtr pkey, ToEvpPkey(area));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) {
    return Status::FromOpenSsl("PEM_write_bio_PUBKEY");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<TPMT_SIGNATURE> ParseSignature(std::span<const uint8_t> bytes) {
  return UnmarshalExactly<TPMT_SIGNATURE>(bytes, Tss2_MU_TPMT_SIGNATURE_Unmarshal,
                                          "TPMT_SIGNATURE");
}

Result<TPMS_ATTEST> ParseAttest(std::span<const uint8_t> bytes) {
  return UnmarshalExactly<TPMS_ATTEST>(bytes, Tss2_MU_TPMS_ATTEST_Unmarshal, "TPMS_ATTEST");
}

Status VerifySignature(const PublicArea& key, std::span<const uint8_t> message,
                       const TPMT_SIGNATURE& sig) {
  uint16_t hash_alg = 0;
  std::vector<uint8_t> sig_bytes;
  int padding = 0;
  switch (sig.sigAlg) {
    case TPM2_ALG_ECDSA: {
      if (key.pub.type != TPM2_ALG_ECC) {
        return Status::Error(ErrorCode::kInvalidArgument, "an ECDSA signature for a non-ECC key");
      }
      hash_alg = sig.signature.ecdsa.hash;
      VIGIL_ASSIGN_OR_RETURN(sig_bytes, EcdsaDer(sig.signature.ecdsa));
      break;
    }
    case TPM2_ALG_RSASSA:
    case TPM2_ALG_RSAPSS: {
      if (key.pub.type != TPM2_ALG_RSA) {
        return Status::Error(ErrorCode::kInvalidArgument, "an RSA signature for a non-RSA key");
      }
      const TPMS_SIGNATURE_RSA& rsa =
          sig.sigAlg == TPM2_ALG_RSASSA ? sig.signature.rsassa : sig.signature.rsapss;
      hash_alg = rsa.hash;
      sig_bytes.assign(rsa.sig.buffer, rsa.sig.buffer + rsa.sig.size);
      padding = sig.sigAlg == TPM2_ALG_RSASSA ? RSA_PKCS1_PADDING : RSA_PKCS1_PSS_PADDING;
      break;
    }
    default:
      return Status::Error(
          ErrorCode::kUnsupported,
          "signature scheme " + std::to_string(sig.sigAlg) + " (ECDSA, RSASSA, RSAPSS only)");
  }
  const char* md_name = EvpDigestName(hash_alg);
  if (md_name == nullptr) {
    return Status::Error(ErrorCode::kUnsupported, "signature hash " + crypto::AlgName(hash_alg));
  }
  VIGIL_ASSIGN_OR_RETURN(EVP_PKEY * pkey_raw, CachedKey(key));
  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  if (!md || EVP_DigestVerifyInit_ex(md.get(), &pctx, md_name, nullptr, nullptr, pkey_raw,
                                     nullptr) != 1) {
    return Status::FromOpenSsl("EVP_DigestVerifyInit_ex");
  }
  if (padding != 0) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, padding) != 1) {
      return Status::FromOpenSsl("EVP_PKEY_CTX_set_rsa_padding");
    }
    // A TPM's PSS salt is as long as the hash, or the largest that fits;
    // "auto" accepts either when verifying.
    if (padding == RSA_PKCS1_PSS_PADDING &&
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1) {
      return Status::FromOpenSsl("EVP_PKEY_CTX_set_rsa_pss_saltlen");
    }
  }
  const int ok = EVP_DigestVerify(md.get(), sig_bytes.data(), sig_bytes.size(), message.data(),
                                  message.size());
  if (ok != 1) {
    ClearOpenSslErrors();
    return Status::Error(ErrorCode::kMismatch, "signature does not verify");
  }
  return Status::Ok();
}

Result<crypto::Digest> PcrCompositeDigest(uint16_t hash_alg,
                                          std::span<const crypto::Digest> values) {
  std::vector<uint8_t> concatenated;
  for (const crypto::Digest& value : values) {
    concatenated.insert(concatenated.end(), value.begin(), value.end());
  }
  return crypto::Hash(hash_alg, concatenated);
}

}  // namespace vigil::tpmobj
