// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: signed baseline reports (format v1) as
// vigil::attest::ParseBaselineReport and CheckBaselineReport read them.
// Invariants beyond "no crash, leak or UB": a refusal to parse is kMalformed
// or kUnsupported; an accepted report serializes to a text that parses back
// to the same report and is a fixed point; the checker never accepts a
// report (the AK below is a P-256 point whose private key was discarded, so
// no input carries its signature) and always gives a reason.
#include <tss2/tss2_mu.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "vigil/attest/baseline_report.h"
#include "vigil/digest.h"

namespace {

const vigil::tpmobj::PublicArea &Ak() {
  static const vigil::tpmobj::PublicArea ak = [] {
    TPMT_PUBLIC pub{};
    pub.type = TPM2_ALG_ECC;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
                           TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                           TPMA_OBJECT_SENSITIVEDATAORIGIN |
                           TPMA_OBJECT_USERWITHAUTH;
    pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    const auto x = vigil::crypto::FromHex(
        "703d2f365ff395092682e6c018713d86bca91bca8981ebddc400c79fd4a37558");
    const auto y = vigil::crypto::FromHex(
        "d2a0d9cfa646126198120a3539139dab72ba89a292b63d4af1616ba049035440");
    if (!x.ok() || !y.ok())
      std::abort();
    pub.unique.ecc.x.size = 32;
    pub.unique.ecc.y.size = 32;
    std::copy(x->begin(), x->end(), pub.unique.ecc.x.buffer);
    std::copy(y->begin(), y->end(), pub.unique.ecc.y.buffer);
    auto marshalled =
        vigil::tpmobj::Marshal(pub, Tss2_MU_TPMT_PUBLIC_Marshal, "TPMT_PUBLIC");
    if (!marshalled.ok())
      std::abort();
    auto area = vigil::tpmobj::ParseTpmtPublic(*marshalled);
    if (!area.ok())
      std::abort();
    return *area;
  }();
  return ak;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string_view text(reinterpret_cast<const char *>(data), size);
  auto parsed = vigil::attest::ParseBaselineReport(text);
  if (!parsed.ok()) {
    const vigil::ErrorCode code = parsed.status().code();
    if (code != vigil::ErrorCode::kMalformed &&
        code != vigil::ErrorCode::kUnsupported) {
      std::abort();
    }
  } else {
    const std::string canonical =
        vigil::attest::SerializeBaselineReport(*parsed);
    auto again = vigil::attest::ParseBaselineReport(canonical);
    if (!again.ok() || !(*again == *parsed))
      std::abort();
    if (vigil::attest::SerializeBaselineReport(*again) != canonical)
      std::abort();
  }
  const vigil::attest::BaselineReportCheck check =
      vigil::attest::CheckBaselineReport(text, Ak(), std::nullopt);
  if (check.valid || check.reasons.empty())
    std::abort();
  return 0;
}
