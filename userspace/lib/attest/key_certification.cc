#include "vigil/attest/key_certification.h"

#include <tss2/tss2_mu.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <string>

#include "vigil/digest.h"

namespace vigil::attest {

namespace {

// The checkpoint key's template in kmod/tpm.c (VIGIL_TPM2_KEY_ATTRS).
constexpr TPMA_OBJECT kModuleKeyAttributes =
    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT;

Status Mismatch(const std::string& what) {
  return Status::Error(ErrorCode::kMismatch, "key certification: " + what);
}

bool SameBytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// A big-endian coordinate of up to 32 bytes equals the 32-byte `want`
// (a TPM may drop leading zero bytes).
bool SameCoordinate(const TPM2B_ECC_PARAMETER& got, const uint8_t (&want)[VIGIL_ECC_COORD_LEN]) {
  if (got.size > VIGIL_ECC_COORD_LEN) return false;
  std::array<uint8_t, VIGIL_ECC_COORD_LEN> padded{};
  std::memcpy(padded.data() + (VIGIL_ECC_COORD_LEN - got.size), got.buffer, got.size);
  return std::memcmp(padded.data(), want, VIGIL_ECC_COORD_LEN) == 0;
}

// TPM2B_CREATION_DATA: exactly one, its size prefix matching its body.
Result<TPMS_CREATION_DATA> ParseCreationData(std::span<const uint8_t> bytes) {
  if (bytes.size() < 2 || ((static_cast<size_t>(bytes[0]) << 8) | bytes[1]) != bytes.size() - 2) {
    return Status::Error(ErrorCode::kMalformed, "TPM2B_CREATION_DATA: size prefix disagrees with " +
                                                    std::to_string(bytes.size()) + " bytes");
  }
  TPM2B_CREATION_DATA data{};
  size_t offset = 0;
  const TSS2_RC rc =
      Tss2_MU_TPM2B_CREATION_DATA_Unmarshal(bytes.data(), bytes.size(), &offset, &data);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::Error(ErrorCode::kMalformed,
                         Status::FromTss2(rc, "unmarshal TPM2B_CREATION_DATA").message());
  }
  if (offset != bytes.size()) {
    return Status::Error(ErrorCode::kMalformed, "TPM2B_CREATION_DATA: trailing bytes");
  }
  return data.creationData;
}

// A TPM name that is a permanent handle: the 4 big-endian bytes of TPM_RH_OWNER.
bool IsOwnerHierarchy(const TPM2B_NAME& name) {
  const uint8_t owner[4] = {0x40, 0x00, 0x00, 0x01};
  return name.size == sizeof(owner) && std::memcmp(name.name, owner, sizeof(owner)) == 0;
}

Status CheckModuleTemplate(const TPMT_PUBLIC& pub) {
  if (pub.type != TPM2_ALG_ECC) return Mismatch("the certified key is not an ECC key");
  if (pub.nameAlg != TPM2_ALG_SHA256) return Mismatch("the certified key's nameAlg is not SHA-256");
  if (pub.objectAttributes != kModuleKeyAttributes) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "0x%08x, the module's are 0x%08x", pub.objectAttributes,
                  kModuleKeyAttributes);
    return Mismatch(std::string("the certified key's attributes are ") + buf +
                    " (fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|sign)");
  }
  if (pub.authPolicy.size != 0) return Mismatch("the certified key has an authorisation policy");
  const TPMS_ECC_PARMS& ecc = pub.parameters.eccDetail;
  if (ecc.symmetric.algorithm != TPM2_ALG_NULL || ecc.kdf.scheme != TPM2_ALG_NULL) {
    return Mismatch("the certified key has a symmetric algorithm or a KDF");
  }
  if (ecc.scheme.scheme != TPM2_ALG_ECDSA || ecc.scheme.details.ecdsa.hashAlg != TPM2_ALG_SHA256) {
    return Mismatch("the certified key's scheme is not ECDSA-SHA256");
  }
  if (ecc.curveID != TPM2_ECC_NIST_P256) return Mismatch("the certified key is not on P-256");
  return Status::Ok();
}

}  // namespace

Status CheckKeyCertification(const tpmobj::PublicArea& ak, const KeyCertification& cert,
                             const crypto::EcPoint& module_key, std::span<const uint8_t> nonce) {
  // An unrestricted key signs any digest, so a TPMS_ATTEST it signed proves
  // nothing about what the TPM did.
  const TPMA_OBJECT ak_attrs = ak.pub.objectAttributes;
  if (!(ak_attrs & TPMA_OBJECT_RESTRICTED) || !(ak_attrs & TPMA_OBJECT_SIGN_ENCRYPT) ||
      (ak_attrs & TPMA_OBJECT_DECRYPT)) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "key certification: the AK is not a restricted signing key");
  }

  VIGIL_ASSIGN_OR_RETURN(const tpmobj::PublicArea key, tpmobj::ParseTpm2bPublic(cert.key_public));
  VIGIL_ASSIGN_OR_RETURN(const TPMS_CREATION_DATA creation, ParseCreationData(cert.creation_data));
  VIGIL_ASSIGN_OR_RETURN(const TPMS_ATTEST attest, tpmobj::ParseAttest(cert.attest));
  VIGIL_ASSIGN_OR_RETURN(const TPMT_SIGNATURE sig, tpmobj::ParseSignature(cert.signature));

  if (Status s = tpmobj::VerifySignature(ak, cert.attest, sig); !s.ok()) {
    return Status::Error(s.code(), "key certification: not signed by the AK: " + s.message());
  }
  if (attest.magic != TPM2_GENERATED_VALUE) return Mismatch("attest is not TPM-generated (magic)");
  if (attest.type != TPM2_ST_ATTEST_CREATION) {
    return Mismatch("attest is not a CertifyCreation (type " + std::to_string(attest.type) + ")");
  }
  if (!SameBytes({attest.extraData.buffer, attest.extraData.size}, nonce)) {
    return Mismatch("attest carries another nonce (extraData)");
  }

  // The TPM checked the creation ticket against this name and this hash:
  // it created this public area with this creation data.
  VIGIL_ASSIGN_OR_RETURN(const std::vector<uint8_t> name, tpmobj::Name(key));
  const TPMS_CREATION_INFO& info = attest.attested.creation;
  if (!SameBytes({info.objectName.name, info.objectName.size}, name)) {
    return Mismatch("attest certifies another object than key_public (objectName)");
  }
  const std::span<const uint8_t> creation_body(cert.creation_data.data() + 2,
                                               cert.creation_data.size() - 2);
  VIGIL_ASSIGN_OR_RETURN(const crypto::Digest creation_hash,
                         crypto::Hash(key.pub.nameAlg, creation_body));
  if (!SameBytes({info.creationHash.buffer, info.creationHash.size}, creation_hash)) {
    return Mismatch("creation_data is not the certified key's (creationHash)");
  }
  if (!IsOwnerHierarchy(creation.parentName) || !IsOwnerHierarchy(creation.parentQualifiedName)) {
    return Mismatch("the certified key is not a primary key of the owner hierarchy (parentName)");
  }

  VIGIL_RETURN_IF_ERROR(CheckModuleTemplate(key.pub));
  const TPMS_ECC_POINT& point = key.pub.unique.ecc;
  if (!SameCoordinate(point.x, module_key.x) || !SameCoordinate(point.y, module_key.y)) {
    return Mismatch("the certified key is not the module's checkpoint key (another point)");
  }
  return Status::Ok();
}

}  // namespace vigil::attest
