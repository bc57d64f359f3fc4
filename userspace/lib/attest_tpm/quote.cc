#include "vigil/attest_tpm/quote.h"

#include <tss2/tss2_mu.h>

#include <cstring>
#include <string>

namespace vigil::attest_tpm {
namespace {

Status ValidateSelection(const std::vector<attest::PcrSelection>& selection) {
  if (selection.empty() || selection.size() > TPM2_NUM_PCR_BANKS) {
    return Status::Error(ErrorCode::kInvalidArgument, "a quote needs 1 to 16 banks");
  }
  for (const attest::PcrSelection& bank : selection) {
    if (!crypto::DigestSize(bank.alg).ok()) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "unknown PCR bank " + crypto::AlgName(bank.alg));
    }
    if (bank.pcrs.empty()) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "bank " + crypto::AlgName(bank.alg) + " selects no PCR");
    }
    for (size_t i = 0; i < bank.pcrs.size(); ++i) {
      if (bank.pcrs[i] > attest::kMaxPcr || (i > 0 && bank.pcrs[i] <= bank.pcrs[i - 1])) {
        return Status::Error(ErrorCode::kInvalidArgument,
                             "PCRs must be ascending, unique and at most 23: " +
                                 attest::SelectionToString(selection));
      }
    }
  }
  return Status::Ok();
}

TPML_PCR_SELECTION ToTpml(const std::vector<attest::PcrSelection>& selection) {
  TPML_PCR_SELECTION out{};
  out.count = static_cast<UINT32>(selection.size());
  for (size_t i = 0; i < selection.size(); ++i) {
    out.pcrSelections[i].hash = selection[i].alg;
    out.pcrSelections[i].sizeofSelect = 3;
    for (uint32_t pcr : selection[i].pcrs) {
      out.pcrSelections[i].pcrSelect[pcr / 8] |= static_cast<BYTE>(1u << (pcr % 8));
    }
  }
  return out;
}

bool Selected(const TPMS_PCR_SELECTION& sel, uint32_t pcr) {
  return pcr / 8 < sel.sizeofSelect && (sel.pcrSelect[pcr / 8] & (1u << (pcr % 8))) != 0;
}

}  // namespace

Result<std::vector<attest::PcrValue>> ReadPcrs(tpm::EsysContext& tpm,
                                               const std::vector<attest::PcrSelection>& selection) {
  VIGIL_RETURN_IF_ERROR(ValidateSelection(selection));
  // Values land in their slot in selection order, whatever order the TPM
  // answers in.
  std::vector<attest::PcrValue> values;
  for (const attest::PcrSelection& bank : selection) {
    for (uint32_t pcr : bank.pcrs) values.push_back({bank.alg, pcr, {}});
  }
  TPML_PCR_SELECTION remaining = ToTpml(selection);
  size_t missing = values.size();
  while (missing > 0) {
    UINT32 update_counter = 0;
    TPML_PCR_SELECTION* raw_sel = nullptr;
    TPML_DIGEST* raw_digests = nullptr;
    const TSS2_RC rc = Esys_PCR_Read(tpm.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     &remaining, &update_counter, &raw_sel, &raw_digests);
    tpm::EsysPtr<TPML_PCR_SELECTION> read_sel(raw_sel);
    tpm::EsysPtr<TPML_DIGEST> digests(raw_digests);
    if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_PCR_Read");
    if (digests->count == 0) {
      return Status::Error(ErrorCode::kNotFound,
                           "TPM2_PCR_Read returned nothing for a selection: a bank of " +
                               attest::SelectionToString(selection) + " is not allocated");
    }
    // The digests follow the returned selection: banks in its order, PCRs
    // ascending.
    uint32_t next = 0;
    for (uint32_t b = 0; b < read_sel->count && b < TPM2_NUM_PCR_BANKS; ++b) {
      const TPMS_PCR_SELECTION& sel = read_sel->pcrSelections[b];
      for (uint32_t pcr = 0; pcr <= attest::kMaxPcr; ++pcr) {
        if (!Selected(sel, pcr)) continue;
        if (next >= digests->count) {
          return Status::Error(ErrorCode::kInternal, "TPM2_PCR_Read: fewer digests than selected");
        }
        const TPM2B_DIGEST& d = digests->digests[next++];
        bool placed = false;
        for (attest::PcrValue& v : values) {
          if (v.alg == sel.hash && v.pcr == pcr && v.value.empty()) {
            v.value.assign(d.buffer, d.buffer + d.size);
            placed = true;
            --missing;
            break;
          }
        }
        if (!placed) {
          return Status::Error(ErrorCode::kInternal,
                               "TPM2_PCR_Read answered a PCR that was not asked for");
        }
        for (uint32_t r = 0; r < remaining.count; ++r) {
          if (remaining.pcrSelections[r].hash == sel.hash) {
            remaining.pcrSelections[r].pcrSelect[pcr / 8] &= static_cast<BYTE>(~(1u << (pcr % 8)));
          }
        }
      }
    }
  }
  return values;
}

Result<QuoteOut> Quote(tpm::EsysContext& tpm, ESYS_TR ak, std::span<const uint8_t> nonce,
                       const std::vector<attest::PcrSelection>& selection, int attempts) {
  VIGIL_RETURN_IF_ERROR(ValidateSelection(selection));
  if (nonce.empty() || nonce.size() > attest::kMaxNonceBytes) {
    return Status::Error(ErrorCode::kInvalidArgument, "nonce must be 1 to 64 bytes");
  }
  TPM2B_DATA qualifying{};
  qualifying.size = static_cast<UINT16>(nonce.size());
  std::memcpy(qualifying.buffer, nonce.data(), nonce.size());
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme
  const TPML_PCR_SELECTION tpml = ToTpml(selection);

  for (int attempt = 0; attempt < attempts; ++attempt) {
    VIGIL_ASSIGN_OR_RETURN(std::vector<attest::PcrValue> before, ReadPcrs(tpm, selection));
    TPM2B_ATTEST* raw_quoted = nullptr;
    TPMT_SIGNATURE* raw_sig = nullptr;
    const TSS2_RC rc = Esys_Quote(tpm.get(), ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                  &qualifying, &scheme, &tpml, &raw_quoted, &raw_sig);
    tpm::EsysPtr<TPM2B_ATTEST> quoted(raw_quoted);
    tpm::EsysPtr<TPMT_SIGNATURE> sig(raw_sig);
    if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_Quote");
    VIGIL_ASSIGN_OR_RETURN(std::vector<attest::PcrValue> after, ReadPcrs(tpm, selection));
    if (before != after) continue;  // a PCR moved around the quote

    QuoteOut out;
    out.attest.assign(quoted->attestationData, quoted->attestationData + quoted->size);
    out.signature.resize(sizeof(TPMT_SIGNATURE));
    size_t offset = 0;
    const TSS2_RC mrc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig.get(), out.signature.data(),
                                                       out.signature.size(), &offset);
    if (mrc != TSS2_RC_SUCCESS) return Status::FromTss2(mrc, "marshalling TPMT_SIGNATURE");
    out.signature.resize(offset);

    // Same values before and after can still miss a PCR that moved and was
    // reset back (PCR 16, 23): the quoted digest decides.
    auto attest = tpmobj::ParseAttest(out.attest);
    if (!attest.ok()) return attest.status();
    std::vector<crypto::Digest> ordered;
    for (const attest::PcrValue& v : after) ordered.push_back(v.value);
    const TPM2B_DIGEST& quoted_digest = attest->attested.quote.pcrDigest;
    uint16_t hash = TPM2_ALG_NULL;
    if (sig->sigAlg == TPM2_ALG_ECDSA) hash = sig->signature.ecdsa.hash;
    if (sig->sigAlg == TPM2_ALG_RSASSA) hash = sig->signature.rsassa.hash;
    if (sig->sigAlg == TPM2_ALG_RSAPSS) hash = sig->signature.rsapss.hash;
    auto digest = tpmobj::PcrCompositeDigest(hash, ordered);
    if (!digest.ok()) return digest.status();
    if (digest->size() != quoted_digest.size ||
        std::memcmp(digest->data(), quoted_digest.buffer, quoted_digest.size) != 0) {
      continue;
    }
    out.values = std::move(after);
    return out;
  }
  return Status::Error(ErrorCode::kUnavailable,
                       "the PCRs of " + attest::SelectionToString(selection) +
                           " kept changing over " + std::to_string(attempts) + " quotes");
}

}  // namespace vigil::attest_tpm
