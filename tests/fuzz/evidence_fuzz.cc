// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: the remote attestation evidence (format v1) as
// vigil::attest::ParseEvidence reads it, JSON or CBOR (the first byte
// tells; the seeds have both). Invariants beyond "no crash, leak or UB": a
// refusal is kMalformed or kUnsupported; an accepted evidence serializes
// to a text that parses back to the same evidence, and that text is a
// fixed point (one evidence, one canonical text); the same for its CBOR,
// which parses to the same evidence as its JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vigil/attest/evidence.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = vigil::attest::ParseEvidence(text);
  if (!parsed.ok()) {
    const vigil::ErrorCode code = parsed.status().code();
    if (code != vigil::ErrorCode::kMalformed && code != vigil::ErrorCode::kUnsupported) {
      std::abort();
    }
    return 0;
  }
  const std::string canonical = vigil::attest::SerializeEvidence(*parsed);
  auto again = vigil::attest::ParseEvidence(canonical);
  if (!again.ok() || !(*again == *parsed)) std::abort();
  if (vigil::attest::SerializeEvidence(*again) != canonical) std::abort();
  const std::string cbor = vigil::attest::SerializeEvidenceCbor(*parsed);
  if (!vigil::attest::LooksLikeCbor(cbor) ||
      vigil::attest::LooksLikeCbor(canonical))
    std::abort();
  auto from_cbor = vigil::attest::ParseEvidence(cbor);
  if (!from_cbor.ok() || !(*from_cbor == *parsed))
    std::abort();
  if (vigil::attest::SerializeEvidenceCbor(*from_cbor) != cbor)
    std::abort();
  return 0;
}
