#include "vigil/tpm.h"

#include <cstring>
#include <string>

namespace vigil::tpm {
namespace {

constexpr uint32_t kMaxPcr = 23;

Status CheckPcr(uint32_t pcr) {
  if (pcr > kMaxPcr) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "PCR index " + std::to_string(pcr) + " is out of range");
  }
  return Status::Ok();
}

}  // namespace

Result<EsysContext> EsysContext::Open(const std::string& tcti_conf) {
  TSS2_TCTI_CONTEXT* raw_tcti = nullptr;
  TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti_conf.c_str(), &raw_tcti);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::FromTss2(rc, "cannot open TCTI \"" + tcti_conf + "\"");
  }
  std::unique_ptr<TSS2_TCTI_CONTEXT, TctiDeleter> tcti(raw_tcti);
  ESYS_CONTEXT* raw_esys = nullptr;
  rc = Esys_Initialize(&raw_esys, tcti.get(), nullptr);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::FromTss2(rc, "Esys_Initialize over \"" + tcti_conf + "\"");
  }
  std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys(raw_esys);
  return EsysContext(std::move(tcti), std::move(esys));
}

Result<std::vector<uint16_t>> EsysContext::AllocatedBanks() {
  TPMI_YES_NO more = TPM2_NO;
  TPMS_CAPABILITY_DATA* raw_cap = nullptr;
  TSS2_RC rc = Esys_GetCapability(esys_.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  TPM2_CAP_PCRS, 0, 1, &more, &raw_cap);
  EsysPtr<TPMS_CAPABILITY_DATA> cap(raw_cap);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_GetCapability(PCRS)");
  std::vector<uint16_t> banks;
  const TPML_PCR_SELECTION& sel = cap->data.assignedPCR;
  for (UINT32 i = 0; i < sel.count && i < TPM2_NUM_PCR_BANKS; ++i) {
    const TPMS_PCR_SELECTION& s = sel.pcrSelections[i];
    bool any = false;
    for (UINT8 b = 0; b < s.sizeofSelect && b < sizeof(s.pcrSelect); ++b) {
      any = any || s.pcrSelect[b] != 0;
    }
    if (any) banks.push_back(s.hash);
  }
  return banks;
}

Result<crypto::Digest> EsysContext::PcrRead(uint16_t alg, uint32_t pcr) {
  VIGIL_RETURN_IF_ERROR(CheckPcr(pcr));
  TPML_PCR_SELECTION in{};
  in.count = 1;
  in.pcrSelections[0].hash = alg;
  in.pcrSelections[0].sizeofSelect = 3;
  in.pcrSelections[0].pcrSelect[pcr / 8] = static_cast<BYTE>(1u << (pcr % 8));

  UINT32 update_counter = 0;
  TPML_PCR_SELECTION* raw_out_sel = nullptr;
  TPML_DIGEST* raw_values = nullptr;
  TSS2_RC rc = Esys_PCR_Read(esys_.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &in,
                             &update_counter, &raw_out_sel, &raw_values);
  EsysPtr<TPML_PCR_SELECTION> out_sel(raw_out_sel);
  EsysPtr<TPML_DIGEST> values(raw_values);
  const std::string what =
      "TPM2_PCR_Read(" + crypto::AlgName(alg) + ":" + std::to_string(pcr) + ")";
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, what);
  if (values->count != 1) {
    // The TPM leaves unallocated (bank, PCR) pairs out of the answer.
    return Status::Error(ErrorCode::kNotFound, what + ": bank not allocated");
  }
  const TPM2B_DIGEST& d = values->digests[0];
  return crypto::Digest(d.buffer, d.buffer + d.size);
}

Status EsysContext::PcrExtend(uint32_t pcr,
                              const std::vector<std::pair<uint16_t, crypto::Digest>>& digests) {
  VIGIL_RETURN_IF_ERROR(CheckPcr(pcr));
  if (digests.empty() || digests.size() > TPM2_NUM_PCR_BANKS) {
    return Status::Error(ErrorCode::kInvalidArgument, "PcrExtend needs 1..16 digests");
  }
  TPML_DIGEST_VALUES values{};
  values.count = static_cast<UINT32>(digests.size());
  for (size_t i = 0; i < digests.size(); ++i) {
    const auto& [alg, digest] = digests[i];
    VIGIL_ASSIGN_OR_RETURN(size_t size, crypto::DigestSize(alg));
    if (digest.size() != size || size > sizeof(values.digests[i].digest)) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           crypto::AlgName(alg) + " digest has the wrong size");
    }
    values.digests[i].hashAlg = alg;
    std::memcpy(&values.digests[i].digest, digest.data(), size);
  }
  TSS2_RC rc = Esys_PCR_Extend(esys_.get(), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, &values);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::FromTss2(rc, "TPM2_PCR_Extend(" + std::to_string(pcr) + ")");
  }
  return Status::Ok();
}

Status EsysContext::PcrReset(uint32_t pcr) {
  VIGIL_RETURN_IF_ERROR(CheckPcr(pcr));
  TSS2_RC rc =
      Esys_PCR_Reset(esys_.get(), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::FromTss2(rc, "TPM2_PCR_Reset(" + std::to_string(pcr) + ")");
  }
  return Status::Ok();
}

}  // namespace vigil::tpm
