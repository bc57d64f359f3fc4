// The module's checkpoint key certified by an attestation key: what a remote
// verifier checks to know that the key that signs checkpoints is a
// non-duplicable key of the attested TPM, made with vigil.ko's template.
// Pure (vigil_attest): no TPM, no node secret.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_KEY_CERTIFICATION_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_KEY_CERTIFICATION_H_

#include <cstdint>
#include <span>
#include <vector>

#include "vigil/signature.h"
#include "vigil/status.h"
#include "vigil/tpm_object.h"

namespace vigil::attest {

// Evidence produced on the node by attest_tpm::CertifyModuleKey: the key's
// public area and creation data as TPM2_CreatePrimary returned them to the
// module, and TPM2_CertifyCreation's output (signed by the AK). Every field
// holds the TPM's marshalled bytes.
struct KeyCertification {
  std::vector<uint8_t> key_public;     // TPM2B_PUBLIC
  std::vector<uint8_t> creation_data;  // TPM2B_CREATION_DATA
  std::vector<uint8_t> attest;         // TPMS_ATTEST (certifyInfo's contents)
  std::vector<uint8_t> signature;      // TPMT_SIGNATURE
  bool operator==(const KeyCertification&) const = default;
};

// OK when `cert` proves that `module_key` (the point in GET_INFO and the
// KEY record) is the module's checkpoint key on the TPM that holds `ak`:
//  - `ak` is a restricted signing key (it signs only TPM-made structures);
//  - attest is TPM-generated (magic), of type TPM_ST_ATTEST_CREATION, with
//    extraData == `nonce`, and `signature` is the AK's signature over it;
//  - its objectName is Name(key_public) and its creationHash is
//    H_nameAlg(creation_data's contents): the TPM checked its creation
//    ticket for that key and that creation data, i.e. it created the key;
//  - creation_data names the owner hierarchy as the parent (a primary key
//    of the owner hierarchy);
//  - key_public has exactly the module's attributes (fixedTPM, fixedParent,
//    sensitiveDataOrigin, userWithAuth, noDA, sign; not restricted, not
//    decrypt), no policy, ECC P-256 with ECDSA-SHA256, nameAlg SHA-256;
//  - its point equals `module_key`.
// kMismatch for a check that fails, kMalformed for bytes that do not parse,
// kInvalidArgument for an AK that is not a restricted signing key.
Status CheckKeyCertification(const tpmobj::PublicArea& ak, const KeyCertification& cert,
                             const crypto::EcPoint& module_key, std::span<const uint8_t> nonce);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_KEY_CERTIFICATION_H_
