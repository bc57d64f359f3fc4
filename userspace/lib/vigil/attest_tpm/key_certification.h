// Node side of the checkpoint key's certification: load the module's saved
// key context through the resource manager and have the AK certify the
// key's creation (TPM2_CertifyCreation). Needs no secret of the module.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_KEY_CERTIFICATION_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_KEY_CERTIFICATION_H_

#include <tss2/tss2_esys.h>

#include <cstdint>
#include <span>

#include "vigil/attest/key_certification.h"
#include "vigil/device.h"
#include "vigil/status.h"
#include "vigil/tpm.h"

namespace vigil::attest_tpm {

// Loads `creation.context` (a raw TPMS_CONTEXT from TPM2_ContextSave, which
// Esys_ContextLoad cannot take: it expects ESAPI's own metadata wrapped
// around the TPM's blob, so the load goes through the SAPI context under
// `esys`), runs TPM2_CertifyCreation(signHandle = `ak`, objectHandle = the
// loaded key, qualifyingData = `nonce`, the creation hash and ticket, the
// AK's own scheme) with an empty password for the AK, and flushes the
// loaded key on every path. The object needs no authorisation for
// CertifyCreation; `ak` must be usable with an empty password session.
// Result: the module key's public area and creation data from `creation`,
// and the TPM's TPMS_ATTEST and TPMT_SIGNATURE, for
// attest::CheckKeyCertification.
Result<attest::KeyCertification> CertifyModuleKey(tpm::EsysContext& esys, ESYS_TR ak,
                                                  const device::KeyCreation& creation,
                                                  std::span<const uint8_t> nonce);

}  // namespace vigil::attest_tpm

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_KEY_CERTIFICATION_H_
