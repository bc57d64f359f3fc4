#include "vigil/attest/quote.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace vigil::attest {
namespace {

std::string Hex16(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%04x", v);
  return buf;
}

bool ConstantTimeEqual(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The TPML_PCR_SELECTION as banks with their PCRs ascending, empty banks
// dropped. MU has already bounded count and sizeofSelect.
std::vector<PcrSelection> FromTpml(const TPML_PCR_SELECTION& tpml) {
  std::vector<PcrSelection> out;
  for (uint32_t i = 0; i < tpml.count && i < TPM2_NUM_PCR_BANKS; ++i) {
    const TPMS_PCR_SELECTION& sel = tpml.pcrSelections[i];
    PcrSelection bank{sel.hash, {}};
    for (uint32_t byte = 0; byte < sel.sizeofSelect && byte < TPM2_PCR_SELECT_MAX; ++byte) {
      for (uint32_t bit = 0; bit < 8; ++bit) {
        if (sel.pcrSelect[byte] & (1u << bit)) bank.pcrs.push_back(byte * 8 + bit);
      }
    }
    if (!bank.pcrs.empty()) out.push_back(std::move(bank));
  }
  return out;
}

std::string PcrName(uint16_t alg, uint32_t pcr) {
  return crypto::AlgName(alg) + ":" + std::to_string(pcr);
}

}  // namespace

std::string SelectionToString(const std::vector<PcrSelection>& selection) {
  std::string out;
  for (const PcrSelection& bank : selection) {
    if (!out.empty()) out += ' ';
    out += crypto::AlgName(bank.alg) + ":";
    for (size_t i = 0; i < bank.pcrs.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(bank.pcrs[i]);
    }
  }
  return out.empty() ? "(none)" : out;
}

Result<QuoteFacts> CheckQuote(const tpmobj::PublicArea& ak, std::span<const uint8_t> attest,
                              std::span<const uint8_t> signature, std::span<const uint8_t> nonce) {
  if (nonce.empty() || nonce.size() > kMaxNonceBytes) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "nonce must be 1 to 64 bytes, got " + std::to_string(nonce.size()));
  }
  auto sig = tpmobj::ParseSignature(signature);
  if (!sig.ok()) {
    return Status::Error(ErrorCode::kMalformed, "quote signature: " + sig.status().message());
  }
  uint16_t sig_hash = 0;
  switch (sig->sigAlg) {
    case TPM2_ALG_ECDSA:
      sig_hash = sig->signature.ecdsa.hash;
      break;
    case TPM2_ALG_RSASSA:
      sig_hash = sig->signature.rsassa.hash;
      break;
    case TPM2_ALG_RSAPSS:
      sig_hash = sig->signature.rsapss.hash;
      break;
    default:
      return Status::Error(ErrorCode::kUnsupported,
                           "quote signature: scheme " + Hex16(sig->sigAlg) + " is not supported");
  }
  if (sig_hash != TPM2_ALG_SHA256 && sig_hash != TPM2_ALG_SHA384 && sig_hash != TPM2_ALG_SHA512) {
    return Status::Error(ErrorCode::kUnsupported,
                         "quote signature: hash " + crypto::AlgName(sig_hash) +
                             " is not accepted (SHA-256, SHA-384 or SHA-512)");
  }
  // Nothing of the attest is read before the AK vouches for it.
  if (Status st = tpmobj::VerifySignature(ak, attest, *sig); !st.ok()) {
    if (st.code() == ErrorCode::kMismatch) {
      return Status::Error(ErrorCode::kMismatch,
                           "quote signature does not verify with the AK over the attest");
    }
    return Status::Error(st.code(), "quote signature: " + st.message());
  }
  auto parsed = tpmobj::ParseAttest(attest);
  if (!parsed.ok()) {
    return Status::Error(ErrorCode::kMalformed, "quote attest: " + parsed.status().message());
  }
  const TPMS_ATTEST& a = *parsed;
  if (a.magic != TPM2_GENERATED_VALUE) {
    return Status::Error(ErrorCode::kMismatch,
                         "quote attest: magic is not TPM_GENERATED_VALUE (not made by a TPM)");
  }
  if (a.type != TPM2_ST_ATTEST_QUOTE) {
    return Status::Error(ErrorCode::kMismatch, "quote attest: type " + Hex16(a.type) +
                                                   " is not TPM_ST_ATTEST_QUOTE (0x8018)");
  }
  if (!ConstantTimeEqual(std::span(a.extraData.buffer, a.extraData.size), nonce)) {
    return Status::Error(ErrorCode::kMismatch,
                         "quote attest: extraData is not the verifier's nonce (stale or replayed)");
  }
  VIGIL_ASSIGN_OR_RETURN(const size_t digest_size, crypto::DigestSize(sig_hash));
  const TPM2B_DIGEST& pcr_digest = a.attested.quote.pcrDigest;
  if (pcr_digest.size != digest_size) {
    return Status::Error(ErrorCode::kMalformed,
                         "quote attest: pcrDigest has " + std::to_string(pcr_digest.size) +
                             " bytes, the signing hash gives " + std::to_string(digest_size));
  }
  QuoteFacts facts;
  facts.clock = a.clockInfo;
  facts.firmware_version = a.firmwareVersion;
  facts.selection = FromTpml(a.attested.quote.pcrSelect);
  facts.pcr_digest.assign(pcr_digest.buffer, pcr_digest.buffer + pcr_digest.size);
  facts.pcr_digest_alg = sig_hash;
  facts.qualified_signer.assign(a.qualifiedSigner.name,
                                a.qualifiedSigner.name + a.qualifiedSigner.size);
  return facts;
}

Status CheckPcrs(const QuoteFacts& quote, const std::vector<PcrSelection>& expected,
                 const std::vector<PcrValue>& values) {
  std::vector<PcrSelection> want;
  for (const PcrSelection& bank : expected) {
    if (!crypto::DigestSize(bank.alg).ok()) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "expected selection: unknown bank " + crypto::AlgName(bank.alg));
    }
    for (size_t i = 0; i < bank.pcrs.size(); ++i) {
      if (bank.pcrs[i] > kMaxPcr || (i > 0 && bank.pcrs[i] <= bank.pcrs[i - 1])) {
        return Status::Error(ErrorCode::kInvalidArgument,
                             "expected selection: PCRs must be ascending, unique and at most 23 (" +
                                 SelectionToString(expected) + ")");
      }
    }
    if (!bank.pcrs.empty()) want.push_back(bank);
  }
  // Exact match, bank by bank: say what is extra or missing.
  const std::vector<PcrSelection>& got = quote.selection;
  for (size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
    if (i >= want.size()) {
      return Status::Error(ErrorCode::kMismatch, "quote selects " +
                                                     PcrName(got[i].alg, got[i].pcrs.front()) +
                                                     " which the verifier did not ask for");
    }
    if (i >= got.size() || got[i].alg != want[i].alg) {
      return Status::Error(ErrorCode::kMismatch, "quote does not select " +
                                                     PcrName(want[i].alg, want[i].pcrs.front()) +
                                                     " (quoted " + SelectionToString(got) + ")");
    }
    for (uint32_t pcr : got[i].pcrs) {
      if (!std::binary_search(want[i].pcrs.begin(), want[i].pcrs.end(), pcr)) {
        return Status::Error(ErrorCode::kMismatch, "quote selects " + PcrName(got[i].alg, pcr) +
                                                       " which the verifier did not ask for");
      }
    }
    for (uint32_t pcr : want[i].pcrs) {
      if (!std::binary_search(got[i].pcrs.begin(), got[i].pcrs.end(), pcr)) {
        return Status::Error(ErrorCode::kMismatch,
                             "quote does not select " + PcrName(want[i].alg, pcr));
      }
    }
  }
  // One value per selected PCR, in selection order.
  std::vector<crypto::Digest> ordered;
  size_t used = 0;
  for (const PcrSelection& bank : want) {
    VIGIL_ASSIGN_OR_RETURN(const size_t size, crypto::DigestSize(bank.alg));
    for (uint32_t pcr : bank.pcrs) {
      const PcrValue* found = nullptr;
      for (const PcrValue& v : values) {
        if (v.alg != bank.alg || v.pcr != pcr) continue;
        if (found) {
          return Status::Error(ErrorCode::kMalformed, "two values for " + PcrName(bank.alg, pcr));
        }
        found = &v;
      }
      if (!found) {
        return Status::Error(ErrorCode::kMismatch, "no value for " + PcrName(bank.alg, pcr));
      }
      if (found->value.size() != size) {
        return Status::Error(ErrorCode::kMalformed, "value for " + PcrName(bank.alg, pcr) +
                                                        " has " +
                                                        std::to_string(found->value.size()) +
                                                        " bytes, not " + std::to_string(size));
      }
      ordered.push_back(found->value);
      ++used;
    }
  }
  if (used != values.size()) {
    for (const PcrValue& v : values) {
      bool selected = false;
      for (const PcrSelection& bank : want) {
        selected |=
            bank.alg == v.alg && std::binary_search(bank.pcrs.begin(), bank.pcrs.end(), v.pcr);
      }
      if (!selected) {
        return Status::Error(ErrorCode::kMismatch, "value for " + PcrName(v.alg, v.pcr) +
                                                       " which the quote does not cover");
      }
    }
  }
  VIGIL_ASSIGN_OR_RETURN(const crypto::Digest digest,
                         tpmobj::PcrCompositeDigest(quote.pcr_digest_alg, ordered));
  if (!ConstantTimeEqual(digest, quote.pcr_digest)) {
    return Status::Error(ErrorCode::kMismatch, "PCR values do not hash to the quoted pcrDigest (" +
                                                   SelectionToString(want) + ")");
  }
  return Status::Ok();
}

std::string_view ClockEventName(ClockEvent event) {
  switch (event) {
    case ClockEvent::kFirst:
      return "first";
    case ClockEvent::kRunning:
      return "running";
    case ClockEvent::kRestart:
      return "restart";
    case ClockEvent::kReset:
      return "reset";
  }
  return "unknown";
}

Result<ClockReport> CheckClock(const TPMS_CLOCK_INFO* previous, const TPMS_CLOCK_INFO& now) {
  if (now.safe != TPM2_YES) {
    return Status::Error(ErrorCode::kMismatch,
                         "clock: safe is cleared (the TPM may have reported a larger clock "
                         "before, e.g. after a power loss), so its clock cannot order quotes");
  }
  if (previous == nullptr) return ClockReport{ClockEvent::kFirst, 0};
  if (now.resetCount < previous->resetCount) {
    return Status::Error(ErrorCode::kMismatch, "clock: resetCount went from " +
                                                   std::to_string(previous->resetCount) +
                                                   " down to " + std::to_string(now.resetCount) +
                                                   " (TPM2_Clear, or a quote from another TPM)");
  }
  if (now.clock < previous->clock ||
      (now.resetCount == previous->resetCount && now.clock == previous->clock)) {
    return Status::Error(ErrorCode::kMismatch,
                         "clock: went from " + std::to_string(previous->clock) + " ms to " +
                             std::to_string(now.clock) +
                             " ms, it must increase (an older or replayed quote)");
  }
  const uint64_t advance = now.clock - previous->clock;
  if (now.resetCount > previous->resetCount) return ClockReport{ClockEvent::kReset, advance};
  if (now.restartCount < previous->restartCount) {
    return Status::Error(ErrorCode::kMismatch, "clock: restartCount went from " +
                                                   std::to_string(previous->restartCount) +
                                                   " down to " + std::to_string(now.restartCount) +
                                                   " with the same resetCount");
  }
  if (now.restartCount > previous->restartCount) return ClockReport{ClockEvent::kRestart, advance};
  return ClockReport{ClockEvent::kRunning, advance};
}

}  // namespace vigil::attest
