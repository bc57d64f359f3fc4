#include "vigil/attest_tpm/key_certification.h"

#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>

#include <cstring>
#include <string>
#include <vector>

namespace vigil::attest_tpm {

namespace {

using tpmobj::UnmarshalExactly;

// Flushes the loaded key when it goes out of scope: through ESAPI once it
// has an ESYS_TR (that also frees the TR), through SAPI before.
class LoadedKey {
 public:
  LoadedKey(ESYS_CONTEXT* esys, TSS2_SYS_CONTEXT* sys, TPM2_HANDLE handle)
      : esys_(esys), sys_(sys), handle_(handle) {}
  LoadedKey(const LoadedKey&) = delete;
  LoadedKey& operator=(const LoadedKey&) = delete;
  ~LoadedKey() {
    if (tr_ != ESYS_TR_NONE) {
      Esys_FlushContext(esys_, tr_);
    } else {
      Tss2_Sys_FlushContext(sys_, handle_);
    }
  }
  void set_tr(ESYS_TR tr) { tr_ = tr; }
  ESYS_TR tr() const { return tr_; }

 private:
  ESYS_CONTEXT* esys_;
  TSS2_SYS_CONTEXT* sys_;
  TPM2_HANDLE handle_;
  ESYS_TR tr_ = ESYS_TR_NONE;
};

}  // namespace

Result<attest::KeyCertification> CertifyModuleKey(tpm::EsysContext& esys, ESYS_TR ak,
                                                  const device::KeyCreation& creation,
                                                  std::span<const uint8_t> nonce) {
  VIGIL_ASSIGN_OR_RETURN(const TPMS_CONTEXT context,
                         UnmarshalExactly<TPMS_CONTEXT>(
                             creation.context, Tss2_MU_TPMS_CONTEXT_Unmarshal, "TPMS_CONTEXT"));
  VIGIL_ASSIGN_OR_RETURN(
      const TPM2B_DIGEST creation_hash,
      UnmarshalExactly<TPM2B_DIGEST>(creation.creation_hash, Tss2_MU_TPM2B_DIGEST_Unmarshal,
                                     "creationHash"));
  VIGIL_ASSIGN_OR_RETURN(
      const TPMT_TK_CREATION ticket,
      UnmarshalExactly<TPMT_TK_CREATION>(creation.creation_ticket,
                                         Tss2_MU_TPMT_TK_CREATION_Unmarshal, "creationTicket"));
  TPM2B_DATA qualifying{};
  if (nonce.size() > sizeof(qualifying.buffer)) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "nonce of " + std::to_string(nonce.size()) + " bytes: at most " +
                             std::to_string(sizeof(qualifying.buffer)));
  }
  qualifying.size = static_cast<UINT16>(nonce.size());
  if (!nonce.empty()) std::memcpy(qualifying.buffer, nonce.data(), nonce.size());

  TSS2_SYS_CONTEXT* sys = nullptr;
  TSS2_RC rc = Esys_GetSysContext(esys.get(), &sys);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "Esys_GetSysContext");
  TPM2_HANDLE handle = 0;
  rc = Tss2_Sys_ContextLoad(sys, &context, &handle);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::FromTss2(rc, "TPM2_ContextLoad of the module's checkpoint key");
  }
  LoadedKey key(esys.get(), sys, handle);
  ESYS_TR tr = ESYS_TR_NONE;
  // Reads the public area back (TPM2_ReadPublic): ESAPI then knows the
  // object's name, which it needs for the command's cpHash.
  rc = Esys_TR_FromTPMPublic(esys.get(), handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "Esys_TR_FromTPMPublic of the loaded key");
  key.set_tr(tr);

  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own scheme
  TPM2B_ATTEST* info_raw = nullptr;
  TPMT_SIGNATURE* sig_raw = nullptr;
  rc = Esys_CertifyCreation(esys.get(), ak, key.tr(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                            &qualifying, &creation_hash, &scheme, &ticket, &info_raw, &sig_raw);
  tpm::EsysPtr<TPM2B_ATTEST> info(info_raw);
  tpm::EsysPtr<TPMT_SIGNATURE> sig(sig_raw);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_CertifyCreation");

  attest::KeyCertification out;
  out.key_public = creation.key_public;
  out.creation_data = creation.creation_data;
  out.attest.assign(info->attestationData, info->attestationData + info->size);
  out.signature.resize(sizeof(TPMT_SIGNATURE));
  size_t offset = 0;
  rc = Tss2_MU_TPMT_SIGNATURE_Marshal(sig.get(), out.signature.data(), out.signature.size(),
                                      &offset);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "marshal TPMT_SIGNATURE");
  out.signature.resize(offset);
  return out;
}

}  // namespace vigil::attest_tpm
