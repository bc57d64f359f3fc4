// Checkpoint signatures: the module's TPM signs SHA-256(checkpoint record)
// with an ECC P-256 key (ECDSA); verifiers check it with OpenSSL against the
// KEY record's (or GET_INFO's) public point.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_SIGNATURE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_SIGNATURE_H_

#include <cstdint>
#include <span>

#include "vigil.h"
#include "vigil/records.h"
#include "vigil/status.h"

namespace vigil::crypto {

// The public point of the checkpoint key.
struct EcPoint {
  uint8_t x[VIGIL_ECC_COORD_LEN];
  uint8_t y[VIGIL_ECC_COORD_LEN];
};

// OK when `sig` is a good signature over `checkpoint` by `key`: the record
// names the checkpoint's log seq, carries SHA-256 of its bytes, has status
// VIGIL_SIG_OK, and (r, s) verifies. kFailedPrecondition for an unsigned
// checkpoint (status != OK: degraded mode or TPM error), kMismatch for
// anything that does not verify, kInvalidArgument for a point not on P-256.
Status VerifyCheckpointSignature(const EcPoint& key, const records::Record& checkpoint,
                                 const vigil_log_signature& sig);

// A trusted checkpoint key as given to an offline verifier (`--key FILE`):
// either a PEM public key ("-----BEGIN PUBLIC KEY-----", SubjectPublicKeyInfo,
// as `openssl pkey -pubout` or `tpm2_readpublic -f pem` write it), or exactly
// 64 raw bytes x || y (big-endian coordinates, as in the KEY record and
// GET_INFO). The key must be a point on P-256. kInvalidArgument otherwise.
Result<EcPoint> ParsePublicKey(std::span<const uint8_t> bytes);

bool SamePoint(const EcPoint& a, const EcPoint& b);

}  // namespace vigil::crypto

#endif  // VIGIL_USERSPACE_LIB_VIGIL_SIGNATURE_H_
