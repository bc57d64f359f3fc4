// TPM 2.0 structures a verifier receives from a node, checked without a TPM:
// public areas (and their names), signatures and attestation structures.
// Unmarshalling is tpm2-tss MU; the cryptography is OpenSSL. Pure: part of
// vigil_verify, so a remote verifier holds no TPM and no node secret.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_TPM_OBJECT_H_
#define VIGIL_USERSPACE_LIB_VIGIL_TPM_OBJECT_H_

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/digest.h"
#include "vigil/status.h"

namespace vigil::tpmobj {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// A TPMT_PUBLIC, unmarshalled, with the exact bytes it came from (its name
// is a digest of those bytes, so they are kept rather than re-marshalled).
struct PublicArea {
  TPMT_PUBLIC pub{};
  std::vector<uint8_t> marshalled;  // TPMT_PUBLIC, no TPM2B size prefix
};

// `bytes` holds exactly one TPMT_PUBLIC (ParseTpmtPublic) or one
// TPM2B_PUBLIC (ParseTpm2bPublic, as TPM2_ReadPublic and tpm2-tools' .pub
// files give it). Trailing bytes, a size that disagrees with the content or
// an unknown algorithm are kMalformed.
Result<PublicArea> ParseTpmtPublic(std::span<const uint8_t> bytes);
Result<PublicArea> ParseTpm2bPublic(std::span<const uint8_t> bytes);
std::vector<uint8_t> MarshalTpm2bPublic(const PublicArea& area);

// The TPM name: nameAlg (big-endian u16) || H_nameAlg(TPMT_PUBLIC).
Result<std::vector<uint8_t>> Name(const PublicArea& area);

// The OpenSSL public key of an ECC (P-256, P-384) or RSA (2048+) area.
Result<EvpPkeyPtr> ToEvpPkey(const PublicArea& area);
// The area's key as SubjectPublicKeyInfo PEM (what tpm2_checkquote -u reads).
Result<std::string> ToPem(const PublicArea& area);

// TPMT_SIGNATURE and TPMS_ATTEST from their marshalled bytes (exactly one).
Result<TPMT_SIGNATURE> ParseSignature(std::span<const uint8_t> bytes);
Result<TPMS_ATTEST> ParseAttest(std::span<const uint8_t> bytes);

// OK when `sig` (ECDSA, RSASSA or RSAPSS, with the hash it names) is a good
// signature by `key` over `message` (the bytes the TPM hashed: for a quote,
// the marshalled TPMS_ATTEST). kMismatch when it does not verify,
// kUnsupported for a scheme or hash this does not handle, kInvalidArgument
// when the scheme does not fit the key type.
Status VerifySignature(const PublicArea& key, std::span<const uint8_t> message,
                       const TPMT_SIGNATURE& sig);

// The PCR digest a quote carries: H_alg(value of every selected PCR, in
// selection order: banks as listed, PCRs ascending within a bank).
// `values` holds them in that same order.
Result<crypto::Digest> PcrCompositeDigest(uint16_t hash_alg,
                                          std::span<const crypto::Digest> values);

// Exactly one T in `bytes`, with its tss2-mu Unmarshal function: empty
// input, a failed unmarshal or trailing bytes are kMalformed naming `what`.
template <typename T, typename Fn>
Result<T> UnmarshalExactly(std::span<const uint8_t> bytes, Fn unmarshal, std::string_view what) {
  T out{};
  if (bytes.empty()) return Status::Error(ErrorCode::kMalformed, std::string(what) + ": empty");
  size_t offset = 0;
  const TSS2_RC rc = unmarshal(bytes.data(), bytes.size(), &offset, &out);
  if (rc != TSS2_RC_SUCCESS) {
    Status st = Status::FromTss2(rc, "unmarshalling " + std::string(what));
    return Status::Error(ErrorCode::kMalformed, st.message());
  }
  if (offset != bytes.size()) {
    return Status::Error(ErrorCode::kMalformed, std::string(what) + ": " +
                                                    std::to_string(bytes.size() - offset) +
                                                    " trailing bytes");
  }
  return out;
}

// `value` marshalled with its tss2-mu Marshal function.
template <typename T, typename Fn>
Result<std::vector<uint8_t>> Marshal(const T& value, Fn marshal, std::string_view what) {
  std::vector<uint8_t> out(sizeof(T) + 16);
  size_t offset = 0;
  const TSS2_RC rc = marshal(&value, out.data(), out.size(), &offset);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "marshalling " + std::string(what));
  out.resize(offset);
  return out;
}

// OpenSSL's digest name for a TPM hash algorithm (SHA-1/256/384/512), or
// nullptr.
const char* EvpDigestName(uint16_t alg);

}  // namespace vigil::tpmobj

#endif  // VIGIL_USERSPACE_LIB_VIGIL_TPM_OBJECT_H_
