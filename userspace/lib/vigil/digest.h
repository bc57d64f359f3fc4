// Hashing by TPM algorithm id through OpenSSL EVP, and the PCR extend rule.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_DIGEST_H_
#define VIGIL_USERSPACE_LIB_VIGIL_DIGEST_H_

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/status.h"

namespace vigil::crypto {

using Digest = std::vector<uint8_t>;
using Sha256Digest = std::array<uint8_t, 32>;

// "sha1", "sha256", "sha384", "sha512", "sm3_256"; "alg-0x...." otherwise.
std::string AlgName(uint16_t tpm_alg);
// Digest size in bytes for the TPM algorithm, or kUnsupported.
Result<size_t> DigestSize(uint16_t tpm_alg);
// H_alg(part_0 || part_1 || ...).
Result<Digest> Hash(uint16_t tpm_alg, std::initializer_list<std::span<const uint8_t>> parts);
inline Result<Digest> Hash(uint16_t tpm_alg, std::span<const uint8_t> data) {
  return Hash(tpm_alg, {data});
}
// SHA-256 for the chain rules; SHA-256 cannot be unsupported, so a failure
// here is an OpenSSL error.
Result<Sha256Digest> Sha256(std::initializer_list<std::span<const uint8_t>> parts);
// TPM2_PCR_Extend: new = H(old || measurement). `old` must be digest-sized.
Result<Digest> Extend(uint16_t tpm_alg, std::span<const uint8_t> old_value,
                      std::span<const uint8_t> measurement);

std::string ToHex(std::span<const uint8_t> bytes);
// Lower- or upper-case hex, even length; kInvalidArgument otherwise.
Result<std::vector<uint8_t>> FromHex(std::string_view hex);

}  // namespace vigil::crypto

#endif  // VIGIL_USERSPACE_LIB_VIGIL_DIGEST_H_
