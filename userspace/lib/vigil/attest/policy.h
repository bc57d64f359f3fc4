// The remote verifier's policy: what a node must show to be trusted. A
// versioned JSON file, parsed strictly (an unknown key is an error, so a
// misspelt rule never silently means "no rule").
//
//   {
//     "version": 1,
//     "anchor": "ima",                 // "ima" (PCR 10 through IMA's log) or
//                                      // "pcr" (PCRs 16/23: resettable, development)
//     "allow_dev_anchor": false,       // must be true for "pcr"
//     "module_digests": ["<sha256>"],  // MEASURE MODULE (vigil.ko's identity) allowed
//     "params_digests": ["<sha256>"],  // MEASURE PARAMS (module parameters) allowed
//     "producer_set_digests": ["<sha256>"],  // MEASURE PRODUCERS (sealed sets) allowed
//     "collector_digests": ["<sha256>"],     // optional: IMA file digests of vigild
//     "max_loss": 0,                   // events a node may lose per evidence
//     "allow_unsigned": false,         // accept checkpoints the TPM did not sign
//     "allow_reload": false,           // a second module instance in one boot
//                                      // (after the first one's final, sealed
//                                      // checkpoint); off: one instance per boot
//     "allow_unclean_reboot": false,   // a new boot although the followed instance
//                                      // was not verified up to its final, sealed
//                                      // checkpoint (its tail is lost); off: untrusted
//     "nonce_ttl_seconds": 60          // how long an issued nonce is good for
//   }
//
// The three digest lists are required and must not be empty: a verifier
// that trusts any module identity attests nothing. Digests are lower- or
// upper-case hex SHA-256 (64 digits).
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_POLICY_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_POLICY_H_

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "vigil.h"
#include "vigil/status.h"

namespace vigil::attest {

inline constexpr uint32_t kPolicyVersion = 1;

struct Policy {
  uint32_t version = kPolicyVersion;
  uint32_t anchor = VIGIL_ANCHOR_IMA;  // enum vigil_anchor
  bool allow_dev_anchor = false;
  std::set<std::string> module_digests;  // lower-case hex
  std::set<std::string> params_digests;
  std::set<std::string> producer_set_digests;
  std::set<std::string> collector_digests;  // empty: not checked
  uint64_t max_loss = 0;
  bool allow_unsigned = false;
  bool allow_reload = false;
  bool allow_unclean_reboot = false;
  uint32_t nonce_ttl_seconds = 60;
};

// kMalformed naming the key for a bad or missing field, kUnsupported for
// another version.
Result<Policy> ParsePolicy(std::string_view json);
std::string SerializePolicy(const Policy& policy);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_POLICY_H_
