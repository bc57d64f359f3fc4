// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: the enrolment request a node sends to the verifier
// (vigil::attest::ParseEnrolmentRequest) and the checks the verifier runs on
// what it accepts. Invariants beyond "no crash, leak or UB": every refusal
// is kMalformed (the parser's only code) with a message; whatever Parse
// accepts serializes and parses again to the same text; the verifier's AK
// checks and the EK certificate's DER parsing run on every accepted request
// (hostile but well-formed structures) and, without a CA, never accept.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vigil/attest/enrolment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = vigil::attest::ParseEnrolmentRequest(text);
  if (!parsed.ok()) {
    if (parsed.status().code() != vigil::ErrorCode::kMalformed) std::abort();
    if (parsed.status().message().empty()) std::abort();
    return 0;
  }
  const std::string once = vigil::attest::SerializeEnrolmentRequest(*parsed);
  auto again = vigil::attest::ParseEnrolmentRequest(once);
  if (!again.ok() || vigil::attest::SerializeEnrolmentRequest(*again) != once) std::abort();

  // The verifier's checks on hostile but well-formed structures.
  (void)vigil::attest::CheckAkPublic(parsed->ak);
  (void)vigil::attest::CheckAkCreation(parsed->ak, parsed->ak_creation_data,
                                       parsed->ak_creation_attest, parsed->ak_creation_signature);
  if (!parsed->ek_certificate_der.empty()) {
    // No CA: only the DER is parsed, then the call refuses.
    const vigil::Status st =
        vigil::attest::VerifyEkCertificate(parsed->ek_certificate_der, {}, parsed->ek);
    if (st.ok()) std::abort();
  }
  return 0;
}
