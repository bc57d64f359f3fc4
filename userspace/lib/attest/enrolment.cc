#include "vigil/attest/enrolment.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "vigil/digest.h"
#include "vigil/openssl_ptr.h"

namespace vigil::attest {
namespace {

using ossl::Deleter;
using ossl::PkeyCtxPtr;
using ossl::BioPtr;
using CipherPtr = std::unique_ptr<EVP_CIPHER, Deleter<EVP_CIPHER_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, Deleter<EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Deleter<EVP_KDF_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;

using Bytes = std::vector<uint8_t>;

void ClearOpenSslErrors() {
  while (ERR_get_error() != 0) {
  }
}

using tpmobj::EvpDigestName;
using tpmobj::UnmarshalExactly;

Status Mismatch(std::string what) { return Status::Error(ErrorCode::kMismatch, std::move(what)); }

bool IsStrongHash(uint16_t alg) {
  return alg == TPM2_ALG_SHA256 || alg == TPM2_ALG_SHA384 || alg == TPM2_ALG_SHA512;
}

// The signing scheme a public area names (ECC or RSA), NULL otherwise.
TPMT_SIG_SCHEME KeySigScheme(const TPMT_PUBLIC& pub) {
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;
  if (pub.type == TPM2_ALG_ECC) {
    scheme.scheme = pub.parameters.eccDetail.scheme.scheme;
    scheme.details.any.hashAlg = pub.parameters.eccDetail.scheme.details.anySig.hashAlg;
  } else if (pub.type == TPM2_ALG_RSA) {
    scheme.scheme = pub.parameters.rsaDetail.scheme.scheme;
    scheme.details.any.hashAlg = pub.parameters.rsaDetail.scheme.details.anySig.hashAlg;
  }
  return scheme;
}

// TPM 2.0 Part 1 KDFa (SP 800-108 counter mode with HMAC_hashAlg):
// HMAC(key, [i]_32 || label || 0x00 || context || [bits]_32). OpenSSL's KBKDF
// adds the 0x00 separator and [L]_32 itself; `label` is given without NUL.
Result<Bytes> KdfA(uint16_t hash_alg, std::span<const uint8_t> key, std::string_view label,
                   std::span<const uint8_t> context, size_t out_bytes) {
  const char* digest = EvpDigestName(hash_alg);
  if (digest == nullptr) {
    return Status::Error(ErrorCode::kUnsupported, "KDFa hash " + crypto::AlgName(hash_alg));
  }
  KdfPtr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_KBKDF, nullptr));
  if (!kdf) return Status::FromOpenSsl("EVP_KDF_fetch KBKDF");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return Status::FromOpenSsl("EVP_KDF_CTX_new");
  std::string label_copy(label);
  Bytes key_copy(key.begin(), key.end());
  Bytes context_copy(context.begin(), context.end());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, const_cast<char*>("counter"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, const_cast<char*>("HMAC"), 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key_copy.data(), key_copy.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label_copy.data(), label_copy.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, context_copy.data(),
                                        context_copy.size()),
      OSSL_PARAM_construct_end()};
  Bytes out(out_bytes);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return Status::FromOpenSsl("KDFa");
  }
  return out;
}

// TPM 2.0 Part 1 KDFe (SP 800-56C single-step with hashAlg):
// H([i]_32 || Z || use || party_u || party_v); `use` includes its NUL.
Result<Bytes> KdfE(uint16_t hash_alg, std::span<const uint8_t> z, std::span<const uint8_t> use,
                   std::span<const uint8_t> party_u, std::span<const uint8_t> party_v,
                   size_t out_bytes) {
  const char* digest = EvpDigestName(hash_alg);
  if (digest == nullptr) {
    return Status::Error(ErrorCode::kUnsupported, "KDFe hash " + crypto::AlgName(hash_alg));
  }
  KdfPtr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_SSKDF, nullptr));
  if (!kdf) return Status::FromOpenSsl("EVP_KDF_fetch SSKDF");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return Status::FromOpenSsl("EVP_KDF_CTX_new");
  Bytes secret(z.begin(), z.end());
  Bytes fixed_info(use.begin(), use.end());
  fixed_info.insert(fixed_info.end(), party_u.begin(), party_u.end());
  fixed_info.insert(fixed_info.end(), party_v.begin(), party_v.end());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret.data(), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, fixed_info.data(), fixed_info.size()),
      OSSL_PARAM_construct_end()};
  Bytes out(out_bytes);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return Status::FromOpenSsl("KDFe");
  }
  OPENSSL_cleanse(secret.data(), secret.size());
  return out;
}

// "IDENTITY" with its terminating NUL, as TPM2_MakeCredential uses it.
constexpr uint8_t kIdentityLabel[] = {'I', 'D', 'E', 'N', 'T', 'I', 'T', 'Y', 0};

struct Seed {
  Bytes seed;
  Bytes encrypted;  // the content of TPM2B_ENCRYPTED_SECRET
};

// RSA: a random seed of digest-size bytes, RSA-OAEP(nameAlg, "IDENTITY\0").
Result<Seed> RsaSeed(const tpmobj::PublicArea& ek, EVP_PKEY* key, size_t seed_size) {
  const char* digest = EvpDigestName(ek.pub.nameAlg);
  Seed out;
  out.seed.resize(seed_size);
  if (RAND_bytes(out.seed.data(), static_cast<int>(seed_size)) != 1) {
    return Status::FromOpenSsl("RAND_bytes");
  }
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), digest, nullptr) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), digest, nullptr) != 1) {
    return Status::FromOpenSsl("RSA-OAEP setup");
  }
  void* label = OPENSSL_memdup(kIdentityLabel, sizeof(kIdentityLabel));
  if (label == nullptr) return Status::FromOpenSsl("OPENSSL_memdup");
  if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, sizeof(kIdentityLabel)) != 1) {
    OPENSSL_free(label);
    return Status::FromOpenSsl("RSA-OAEP label");
  }
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, out.seed.data(), out.seed.size()) != 1) {
    return Status::FromOpenSsl("RSA-OAEP size");
  }
  out.encrypted.resize(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.encrypted.data(), &len, out.seed.data(), out.seed.size()) !=
      1) {
    return Status::FromOpenSsl("RSA-OAEP encrypt");
  }
  out.encrypted.resize(len);
  return out;
}

// ECC: an ephemeral key on the EK's curve; Z = x(d_e * Q_ek); seed =
// KDFe(nameAlg, Z, "IDENTITY\0", x_e, x_ek); the secret is the ephemeral
// public point as TPMS_ECC_POINT.
Result<Seed> EccSeed(const tpmobj::PublicArea& ek, EVP_PKEY* key, size_t seed_size) {
  PkeyCtxPtr gen(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!gen || EVP_PKEY_keygen_init(gen.get()) != 1 || EVP_PKEY_keygen(gen.get(), &raw) != 1) {
    return Status::FromOpenSsl("ephemeral ECC key");
  }
  tpmobj::EvpPkeyPtr ephemeral(raw);
  PkeyCtxPtr derive(EVP_PKEY_CTX_new_from_pkey(nullptr, ephemeral.get(), nullptr));
  size_t z_len = 0;
  if (!derive || EVP_PKEY_derive_init(derive.get()) != 1 ||
      EVP_PKEY_derive_set_peer(derive.get(), key) != 1 ||
      EVP_PKEY_derive(derive.get(), nullptr, &z_len) != 1) {
    return Status::FromOpenSsl("ECDH setup");
  }
  Bytes z(z_len);
  if (EVP_PKEY_derive(derive.get(), z.data(), &z_len) != 1) return Status::FromOpenSsl("ECDH");
  z.resize(z_len);
  size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(ephemeral.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr,
                                      0, &point_len) != 1) {
    return Status::FromOpenSsl("ephemeral public key size");
  }
  Bytes point(point_len);
  if (EVP_PKEY_get_octet_string_param(ephemeral.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                      point.data(), point.size(), &point_len) != 1 ||
      point_len != point.size() || point_len < 3 || point[0] != 0x04 || point_len % 2 != 1) {
    return Status::FromOpenSsl("ephemeral public key (uncompressed point expected)");
  }
  const size_t coord = (point_len - 1) / 2;
  TPMS_ECC_POINT tpm_point{};
  if (coord > sizeof(tpm_point.x.buffer)) {
    return Status::Error(ErrorCode::kInternal, "ephemeral point too large");
  }
  tpm_point.x.size = static_cast<UINT16>(coord);
  std::memcpy(tpm_point.x.buffer, point.data() + 1, coord);
  tpm_point.y.size = static_cast<UINT16>(coord);
  std::memcpy(tpm_point.y.buffer, point.data() + 1 + coord, coord);

  const TPM2B_ECC_PARAMETER& ek_x = ek.pub.unique.ecc.x;
  Seed out;
  VIGIL_ASSIGN_OR_RETURN(out.seed,
                         KdfE(ek.pub.nameAlg, z, kIdentityLabel,
                              std::span<const uint8_t>(tpm_point.x.buffer, tpm_point.x.size),
                              std::span<const uint8_t>(ek_x.buffer, ek_x.size), seed_size));
  OPENSSL_cleanse(z.data(), z.size());
  VIGIL_ASSIGN_OR_RETURN(
      out.encrypted, tpmobj::Marshal(tpm_point, Tss2_MU_TPMS_ECC_POINT_Marshal, "TPMS_ECC_POINT"));
  return out;
}

// The EK properties MakeCredential relies on: a restricted decryption key
// with an AES-CFB symmetric and a nameAlg this knows.
Status CheckEkForCredential(const tpmobj::PublicArea& ek) {
  const TPMA_OBJECT attrs = ek.pub.objectAttributes;
  if ((attrs & TPMA_OBJECT_RESTRICTED) == 0 || (attrs & TPMA_OBJECT_DECRYPT) == 0) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "EK is not a restricted decryption key (restricted, decrypt)");
  }
  if (!IsStrongHash(ek.pub.nameAlg)) {
    return Status::Error(ErrorCode::kUnsupported, "EK nameAlg " + crypto::AlgName(ek.pub.nameAlg));
  }
  const TPMT_SYM_DEF_OBJECT* sym = nullptr;
  if (ek.pub.type == TPM2_ALG_RSA) {
    sym = &ek.pub.parameters.rsaDetail.symmetric;
  } else if (ek.pub.type == TPM2_ALG_ECC) {
    sym = &ek.pub.parameters.eccDetail.symmetric;
  } else {
    return Status::Error(ErrorCode::kUnsupported, "EK type " + crypto::AlgName(ek.pub.type));
  }
  if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
      (sym->keyBits.aes != 128 && sym->keyBits.aes != 192 && sym->keyBits.aes != 256)) {
    return Status::Error(ErrorCode::kUnsupported, "EK symmetric is not AES-{128,192,256}-CFB");
  }
  return Status::Ok();
}

Result<Bytes> AesCfbEncrypt(uint16_t key_bits, std::span<const uint8_t> key,
                            std::span<const uint8_t> plain) {
  const std::string name = "AES-" + std::to_string(key_bits) + "-CFB";
  CipherPtr cipher(EVP_CIPHER_fetch(nullptr, name.c_str(), nullptr));
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  const uint8_t iv[16] = {};  // Part 1: the IV of credential protection is zero
  if (!cipher || !ctx ||
      EVP_EncryptInit_ex2(ctx.get(), cipher.get(), key.data(), iv, nullptr) != 1) {
    return Status::FromOpenSsl(name + " init");
  }
  Bytes out(plain.size() + 16);
  int len = 0;
  int final_len = 0;
  if (EVP_EncryptUpdate(ctx.get(), out.data(), &len, plain.data(),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &final_len) != 1) {
    return Status::FromOpenSsl(name);
  }
  out.resize(static_cast<size_t>(len + final_len));
  return out;
}

Result<Bytes> Hmac(uint16_t hash_alg, std::span<const uint8_t> key,
                   std::initializer_list<std::span<const uint8_t>> parts) {
  Bytes message;
  for (auto part : parts) message.insert(message.end(), part.begin(), part.end());
  Bytes out(EVP_MAX_MD_SIZE);
  size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, EvpDigestName(hash_alg), nullptr, key.data(), key.size(),
                message.data(), message.size(), out.data(), out.size(), &len) == nullptr) {
    return Status::FromOpenSsl("HMAC");
  }
  out.resize(len);
  return out;
}

Status CheckName(std::span<const uint8_t> name) {
  if (name.size() < 2) return Status::Error(ErrorCode::kInvalidArgument, "AK name too short");
  const uint16_t alg = static_cast<uint16_t>((name[0] << 8) | name[1]);
  auto size = crypto::DigestSize(alg);
  if (!size.ok() || *size + 2 != name.size()) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "AK name is not nameAlg || digest (" + std::to_string(name.size()) +
                             " bytes, alg " + crypto::AlgName(alg) + ")");
  }
  return Status::Ok();
}

}  // namespace

Status CheckAkPublic(const tpmobj::PublicArea& ak) {
  const TPMT_PUBLIC& pub = ak.pub;
  const TPMA_OBJECT attrs = pub.objectAttributes;
  struct Required {
    TPMA_OBJECT bit;
    bool set;
    const char* name;
  };
  static constexpr Required kRequired[] = {
      {TPMA_OBJECT_RESTRICTED, true, "restricted"},
      {TPMA_OBJECT_SIGN_ENCRYPT, true, "sign"},
      {TPMA_OBJECT_DECRYPT, false, "decrypt"},
      {TPMA_OBJECT_FIXEDTPM, true, "fixedTPM"},
      {TPMA_OBJECT_FIXEDPARENT, true, "fixedParent"},
      {TPMA_OBJECT_SENSITIVEDATAORIGIN, true, "sensitiveDataOrigin"},
  };
  for (const Required& r : kRequired) {
    if (((attrs & r.bit) != 0) != r.set) {
      return Mismatch(std::string("AK attribute ") + r.name + " must be " +
                      (r.set ? "set" : "clear"));
    }
  }
  if (!IsStrongHash(pub.nameAlg)) {
    return Mismatch("AK nameAlg " + crypto::AlgName(pub.nameAlg) + " (SHA-256 or stronger)");
  }
  if (pub.type == TPM2_ALG_ECC) {
    const uint16_t curve = pub.parameters.eccDetail.curveID;
    if (curve != TPM2_ECC_NIST_P256 && curve != TPM2_ECC_NIST_P384 && curve != TPM2_ECC_NIST_P521) {
      return Mismatch("AK ECC curve " + std::to_string(curve) + " (NIST P-256 or stronger)");
    }
  } else if (pub.type == TPM2_ALG_RSA) {
    if (pub.parameters.rsaDetail.keyBits < 2048) {
      return Mismatch("AK RSA keyBits " + std::to_string(pub.parameters.rsaDetail.keyBits) +
                      " (2048 or more)");
    }
  } else {
    return Status::Error(ErrorCode::kUnsupported, "AK type " + crypto::AlgName(pub.type));
  }
  const TPMT_SIG_SCHEME scheme = KeySigScheme(pub);
  const bool scheme_ok = pub.type == TPM2_ALG_ECC ? scheme.scheme == TPM2_ALG_ECDSA
                                                  : (scheme.scheme == TPM2_ALG_RSASSA ||
                                                     scheme.scheme == TPM2_ALG_RSAPSS);
  if (!scheme_ok) {
    return Mismatch("AK signing scheme " + crypto::AlgName(scheme.scheme) +
                    " (ECDSA, RSASSA or RSAPSS)");
  }
  if (!IsStrongHash(scheme.details.any.hashAlg)) {
    return Mismatch("AK signing scheme hash " + crypto::AlgName(scheme.details.any.hashAlg) +
                    " (SHA-256 or stronger)");
  }
  auto key = tpmobj::ToEvpPkey(ak);
  if (!key.ok()) return key.status();
  return Status::Ok();
}

Status CheckAkCreation(const tpmobj::PublicArea& ak, std::span<const uint8_t> creation_data,
                       std::span<const uint8_t> attest, const TPMT_SIGNATURE& sig) {
  // Structure first: creation data that does not parse is refused even if
  // its hash happened to match.
  VIGIL_RETURN_IF_ERROR(UnmarshalExactly<TPMS_CREATION_DATA>(creation_data,
                                                             Tss2_MU_TPMS_CREATION_DATA_Unmarshal,
                                                             "TPMS_CREATION_DATA")
                            .status());
  VIGIL_ASSIGN_OR_RETURN(TPMS_ATTEST parsed, tpmobj::ParseAttest(attest));

  // The signature: by the AK, with the AK's own scheme and hash (a
  // restricted key signs with no other).
  const TPMT_SIG_SCHEME scheme = KeySigScheme(ak.pub);
  if (sig.sigAlg != scheme.scheme || sig.signature.any.hashAlg != scheme.details.any.hashAlg) {
    return Mismatch("creation signature: scheme " + crypto::AlgName(sig.sigAlg) + "/" +
                    crypto::AlgName(sig.signature.any.hashAlg) + " is not the AK's " +
                    crypto::AlgName(scheme.scheme) + "/" +
                    crypto::AlgName(scheme.details.any.hashAlg));
  }
  Status verified = tpmobj::VerifySignature(ak, attest, sig);
  if (!verified.ok()) {
    return Status::Error(
        verified.code() == ErrorCode::kMismatch ? ErrorCode::kMismatch : verified.code(),
        "creation signature: " + verified.message());
  }
  if (parsed.magic != TPM2_GENERATED_VALUE) {
    return Mismatch("creation attest magic is not TPM_GENERATED_VALUE (not made by a TPM)");
  }
  if (parsed.type != TPM2_ST_ATTEST_CREATION) {
    return Mismatch("creation attest type is not TPM_ST_ATTEST_CREATION");
  }
  VIGIL_ASSIGN_OR_RETURN(Bytes name, tpmobj::Name(ak));
  const TPM2B_NAME& object_name = parsed.attested.creation.objectName;
  if (object_name.size != name.size() ||
      std::memcmp(object_name.name, name.data(), name.size()) != 0) {
    return Mismatch("creation attest objectName is not the AK's name");
  }
  VIGIL_ASSIGN_OR_RETURN(crypto::Digest creation_hash, crypto::Hash(ak.pub.nameAlg, creation_data));
  const TPM2B_DIGEST& certified = parsed.attested.creation.creationHash;
  if (certified.size != creation_hash.size() ||
      std::memcmp(certified.buffer, creation_hash.data(), creation_hash.size()) != 0) {
    return Mismatch("creation attest creationHash is not H(creation data)");
  }
  return Status::Ok();
}

Result<Credential> MakeCredential(const tpmobj::PublicArea& ek, std::span<const uint8_t> ak_name,
                                  std::span<const uint8_t> secret) {
  VIGIL_RETURN_IF_ERROR(CheckEkForCredential(ek));
  VIGIL_RETURN_IF_ERROR(CheckName(ak_name));
  VIGIL_ASSIGN_OR_RETURN(size_t digest_size, crypto::DigestSize(ek.pub.nameAlg));
  if (secret.empty() || secret.size() > digest_size) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "credential secret of " + std::to_string(secret.size()) + " bytes (1 to " +
                             std::to_string(digest_size) + ")");
  }
  VIGIL_ASSIGN_OR_RETURN(tpmobj::EvpPkeyPtr key, tpmobj::ToEvpPkey(ek));
  ClearOpenSslErrors();

  Seed seed;
  if (ek.pub.type == TPM2_ALG_RSA) {
    VIGIL_ASSIGN_OR_RETURN(seed, RsaSeed(ek, key.get(), digest_size));
  } else {
    VIGIL_ASSIGN_OR_RETURN(seed, EccSeed(ek, key.get(), digest_size));
  }

  const TPMT_SYM_DEF_OBJECT& sym = ek.pub.type == TPM2_ALG_RSA
                                       ? ek.pub.parameters.rsaDetail.symmetric
                                       : ek.pub.parameters.eccDetail.symmetric;
  const uint16_t key_bits = sym.keyBits.aes;
  VIGIL_ASSIGN_OR_RETURN(Bytes sym_key,
                         KdfA(ek.pub.nameAlg, seed.seed, "STORAGE", ak_name, key_bits / 8));
  VIGIL_ASSIGN_OR_RETURN(Bytes hmac_key,
                         KdfA(ek.pub.nameAlg, seed.seed, "INTEGRITY", {}, digest_size));
  OPENSSL_cleanse(seed.seed.data(), seed.seed.size());

  // encIdentity = CFB(symKey, IV 0, TPM2B_DIGEST(secret)).
  Bytes plain;
  plain.push_back(static_cast<uint8_t>(secret.size() >> 8));
  plain.push_back(static_cast<uint8_t>(secret.size()));
  plain.insert(plain.end(), secret.begin(), secret.end());
  VIGIL_ASSIGN_OR_RETURN(Bytes enc_identity, AesCfbEncrypt(key_bits, sym_key, plain));
  OPENSSL_cleanse(plain.data(), plain.size());
  OPENSSL_cleanse(sym_key.data(), sym_key.size());
  VIGIL_ASSIGN_OR_RETURN(Bytes outer_hmac, Hmac(ek.pub.nameAlg, hmac_key, {enc_identity, ak_name}));
  OPENSSL_cleanse(hmac_key.data(), hmac_key.size());

  // TPM2B_ID_OBJECT: credential = TPM2B_DIGEST(integrityHMAC) || encIdentity.
  TPM2B_ID_OBJECT id{};
  const size_t id_size = 2 + outer_hmac.size() + enc_identity.size();
  if (id_size > sizeof(id.credential)) {
    return Status::Error(ErrorCode::kInternal, "credential too large for TPM2B_ID_OBJECT");
  }
  id.size = static_cast<UINT16>(id_size);
  id.credential[0] = static_cast<uint8_t>(outer_hmac.size() >> 8);
  id.credential[1] = static_cast<uint8_t>(outer_hmac.size());
  std::memcpy(id.credential + 2, outer_hmac.data(), outer_hmac.size());
  std::memcpy(id.credential + 2 + outer_hmac.size(), enc_identity.data(), enc_identity.size());

  TPM2B_ENCRYPTED_SECRET enc_secret{};
  if (seed.encrypted.size() > sizeof(enc_secret.secret)) {
    return Status::Error(ErrorCode::kInternal, "encrypted seed too large");
  }
  enc_secret.size = static_cast<UINT16>(seed.encrypted.size());
  std::memcpy(enc_secret.secret, seed.encrypted.data(), seed.encrypted.size());

  Credential out;
  VIGIL_ASSIGN_OR_RETURN(out.id_object,
                         tpmobj::Marshal(id, Tss2_MU_TPM2B_ID_OBJECT_Marshal, "TPM2B_ID_OBJECT"));
  VIGIL_ASSIGN_OR_RETURN(
      out.encrypted_secret,
      tpmobj::Marshal(enc_secret, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal, "TPM2B_ENCRYPTED_SECRET"));
  return out;
}

bool SecretsEqual(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// Every certificate of one PEM file into `store`; at least one.
Status LoadCaFile(X509_STORE* store, const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ClearOpenSslErrors();
    return Status::Error(ErrorCode::kNotFound, "CA file " + path + " cannot be opened");
  }
  int count = 0;
  for (;;) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    if (X509_STORE_add_cert(store, cert.get()) != 1) {
      return Status::FromOpenSsl("adding a CA certificate from " + path);
    }
    ++count;
  }
  // The loop ends with PEM_R_NO_START_LINE at the end of the file; any
  // other error is a broken PEM block.
  const unsigned long err = ERR_peek_last_error();
  if (err != 0 &&
      !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)) {
    Status st = Status::FromOpenSsl("reading CA file " + path);
    return Status::Error(ErrorCode::kMalformed, st.message());
  }
  ClearOpenSslErrors();
  if (count == 0) {
    return Status::Error(ErrorCode::kMalformed, "CA file " + path + " holds no PEM certificate");
  }
  return Status::Ok();
}

}  // namespace

Status VerifyEkCertificate(std::span<const uint8_t> cert_der,
                           const std::vector<std::string>& ca_pem_paths,
                           const tpmobj::PublicArea& ek) {
  ClearOpenSslErrors();
  if (cert_der.empty()) return Status::Error(ErrorCode::kMalformed, "EK certificate: empty");
  const unsigned char* p = cert_der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(cert_der.size())));
  if (!cert) {
    Status st = Status::FromOpenSsl("EK certificate DER");
    return Status::Error(ErrorCode::kMalformed, st.message());
  }
  if (p != cert_der.data() + cert_der.size()) {
    return Status::Error(
        ErrorCode::kMalformed,
        "EK certificate: " + std::to_string(cert_der.data() + cert_der.size() - p) +
            " trailing bytes after the DER certificate");
  }
  if (ca_pem_paths.empty()) {
    return Status::Error(ErrorCode::kInvalidArgument, "no CA certificate given");
  }
  X509StorePtr store(X509_STORE_new());
  if (!store) return Status::FromOpenSsl("X509_STORE_new");
  for (const std::string& path : ca_pem_paths) VIGIL_RETURN_IF_ERROR(LoadCaFile(store.get(), path));

  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return Status::FromOpenSsl("X509_STORE_CTX_init");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ClearOpenSslErrors();
    return Mismatch(std::string("EK certificate does not chain to a given CA: ") +
                    X509_verify_cert_error_string(err));
  }
  VIGIL_ASSIGN_OR_RETURN(tpmobj::EvpPkeyPtr ek_key, tpmobj::ToEvpPkey(ek));
  EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
  if (cert_key == nullptr || EVP_PKEY_eq(cert_key, ek_key.get()) != 1) {
    ClearOpenSslErrors();
    return Mismatch("EK certificate is for another key than the EK");
  }
  return Status::Ok();
}

namespace {

using nlohmann::json;

constexpr size_t kMaxRequestBytes = 1 << 20;
constexpr int kRequestVersion = 1;

Status Malformed(std::string_view field, std::string_view why) {
  return Status::Error(ErrorCode::kMalformed,
                       "enrolment request: " + std::string(field) + ": " + std::string(why));
}

Result<Bytes> HexField(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return Malformed(field, "missing");
  if (!it->is_string()) return Malformed(field, "not a string");
  const std::string& text = it->get_ref<const std::string&>();
  if (text.empty()) return Malformed(field, "empty");
  auto bytes = crypto::FromHex(text);
  if (!bytes.ok()) return Malformed(field, "not hex of even length");
  return std::move(bytes).value();
}

// Re-labels a structure error with the field it came from.
template <typename T>
Result<T> InField(Result<T> result, const char* field) {
  if (!result.ok()) return Malformed(field, result.status().message());
  return result;
}

}  // namespace

std::string SerializeEnrolmentRequest(const EnrolmentRequest& request) {
  json out = json::object();
  out["version"] = kRequestVersion;
  out["ek_public"] = crypto::ToHex(tpmobj::MarshalTpm2bPublic(request.ek));
  if (!request.ek_certificate_der.empty()) {
    out["ek_certificate"] = crypto::ToHex(request.ek_certificate_der);
  }
  out["ak_public"] = crypto::ToHex(tpmobj::MarshalTpm2bPublic(request.ak));
  out["ak_creation_data"] = crypto::ToHex(request.ak_creation_data);
  out["ak_creation_attest"] = crypto::ToHex(request.ak_creation_attest);
  auto sig = tpmobj::Marshal(request.ak_creation_signature, Tss2_MU_TPMT_SIGNATURE_Marshal,
                            "TPMT_SIGNATURE");
  // A signature that does not marshal (a bad sigAlg) is sent empty; the
  // verifier refuses it.
  out["ak_creation_signature"] = sig.ok() ? crypto::ToHex(*sig) : std::string();
  return out.dump();
}

Result<EnrolmentRequest> ParseEnrolmentRequest(std::string_view text) {
  if (text.size() > kMaxRequestBytes) {
    return Malformed("(request)", "larger than " + std::to_string(kMaxRequestBytes) + " bytes");
  }
  // Duplicate keys: nlohmann keeps the last; another parser might keep the
  // first. Refuse them so every reader sees the same request.
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  json::parser_callback_t on_event = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json doc = json::parse(text.begin(), text.end(), on_event, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Malformed("(request)", "not valid JSON");
  if (!doc.is_object()) return Malformed("(request)", "not a JSON object");
  if (!duplicate.empty()) return Malformed(duplicate, "duplicate key");

  static const std::set<std::string> kKnown = {
      "version",          "ek_public",          "ek_certificate",       "ak_public",
      "ak_creation_data", "ak_creation_attest", "ak_creation_signature"};
  for (const auto& item : doc.items()) {
    if (kKnown.count(item.key()) == 0) return Malformed(item.key(), "unknown field");
  }
  auto version = doc.find("version");
  if (version == doc.end()) return Malformed("version", "missing");
  if (!version->is_number_integer() || *version != kRequestVersion) {
    return Malformed("version", "unknown version " + version->dump() + " (this reads 1)");
  }

  EnrolmentRequest request;
  VIGIL_ASSIGN_OR_RETURN(Bytes ek_public, HexField(doc, "ek_public"));
  VIGIL_ASSIGN_OR_RETURN(request.ek, InField(tpmobj::ParseTpm2bPublic(ek_public), "ek_public"));
  if (doc.contains("ek_certificate")) {
    VIGIL_ASSIGN_OR_RETURN(request.ek_certificate_der, HexField(doc, "ek_certificate"));
  }
  VIGIL_ASSIGN_OR_RETURN(Bytes ak_public, HexField(doc, "ak_public"));
  VIGIL_ASSIGN_OR_RETURN(request.ak, InField(tpmobj::ParseTpm2bPublic(ak_public), "ak_public"));
  VIGIL_ASSIGN_OR_RETURN(request.ak_creation_data, HexField(doc, "ak_creation_data"));
  VIGIL_RETURN_IF_ERROR(InField(UnmarshalExactly<TPMS_CREATION_DATA>(
                                    request.ak_creation_data, Tss2_MU_TPMS_CREATION_DATA_Unmarshal,
                                    "TPMS_CREATION_DATA"),
                                "ak_creation_data")
                            .status());
  VIGIL_ASSIGN_OR_RETURN(request.ak_creation_attest, HexField(doc, "ak_creation_attest"));
  VIGIL_RETURN_IF_ERROR(
      InField(tpmobj::ParseAttest(request.ak_creation_attest), "ak_creation_attest").status());
  VIGIL_ASSIGN_OR_RETURN(Bytes sig, HexField(doc, "ak_creation_signature"));
  VIGIL_ASSIGN_OR_RETURN(request.ak_creation_signature,
                         InField(tpmobj::ParseSignature(sig), "ak_creation_signature"));
  return request;
}

Status CheckNodeId(const std::string& node) {
  if (node.size() < 4 || node.size() > 132 ||
      !std::all_of(node.begin(), node.end(), [](unsigned char c) { return std::isxdigit(c); })) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a node id is the hex TPM name of its EK (4 to 132 hex digits)");
  }
  return Status::Ok();
}

}  // namespace vigil::attest
