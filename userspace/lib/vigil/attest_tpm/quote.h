// The node side of a quote: TPM2_Quote over a PCR selection with the
// verifier's nonce, and the PCR values that go with it.
//
// Thread-safety: like the EsysContext passed in (one thread per context).
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_QUOTE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_QUOTE_H_

#include <tss2/tss2_esys.h>

#include <cstdint>
#include <span>
#include <vector>

#include "vigil/attest/quote.h"
#include "vigil/status.h"
#include "vigil/tpm.h"

namespace vigil::attest_tpm {

struct QuoteOut {
  std::vector<uint8_t> attest;     // marshalled TPMS_ATTEST (the TPM2B_ATTEST's contents)
  std::vector<uint8_t> signature;  // marshalled TPMT_SIGNATURE
  // One value per selected PCR, in selection order (banks as given, PCRs
  // ascending), read so that they hash to the quote's pcrDigest.
  std::vector<attest::PcrValue> values;
};

inline constexpr int kQuoteAttempts = 5;

// TPM2_Quote with the AK `ak` (loaded, empty auth; the key's own signing
// scheme: inScheme TPM_ALG_NULL) over `selection` with `nonce` as
// qualifyingData, and the selected PCRs read before and after it. A PCR can
// be extended between the commands (the module's checkpoints, IMA): when
// the two reads differ, or the values read do not hash to the quoted
// pcrDigest, the quote is taken again, up to `attempts` times; then
// kUnavailable ("PCRs kept changing"). `selection`: known banks, PCRs
// ascending, unique, at most 23 (kInvalidArgument otherwise); `nonce` 1..64
// bytes. A bank the TPM has not allocated is kNotFound.
// The AK should live in the endorsement hierarchy: for other hierarchies the
// TPM obfuscates resetCount/restartCount (see attest::QuoteFacts).
Result<QuoteOut> Quote(tpm::EsysContext& tpm, ESYS_TR ak, std::span<const uint8_t> nonce,
                       const std::vector<attest::PcrSelection>& selection,
                       int attempts = kQuoteAttempts);

// The selected PCRs with TPM2_PCR_Read (as many commands as the TPM needs:
// it returns at most 8 digests per response), in selection order.
Result<std::vector<attest::PcrValue>> ReadPcrs(tpm::EsysContext& tpm,
                                               const std::vector<attest::PcrSelection>& selection);

}  // namespace vigil::attest_tpm

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_QUOTE_H_
