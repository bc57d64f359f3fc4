// Enrolment of a node with a remote verifier, the node's side (ESAPI): the
// endorsement key (EK) and its certificate, the attestation key (AK) with
// its creation certified by itself, and TPM2_ActivateCredential of the
// verifier's credential. The verifier's checks are in vigil/attest/enrolment.h.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_ENROLMENT_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_ENROLMENT_H_

#include <tss2/tss2_esys.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/attest/enrolment.h"
#include "vigil/status.h"
#include "vigil/tpm.h"
#include "vigil/tpm_object.h"

namespace vigil::attest_tpm {

// The TCG EK Credential Profile 2.0 default (low range) EK templates:
// RSA 2048 (template L-1, certificate at NV 0x01c00002) and ECC NIST P-256
// (template L-2, certificate at NV 0x01c0000a). Both: fixedTPM, fixedParent,
// sensitiveDataOrigin, adminWithPolicy, restricted, decrypt; AES-128-CFB;
// authPolicy = PolicySecret(TPM_RH_ENDORSEMENT); zero-filled unique.
enum class EkKind { kRsa2048, kEccP256 };

inline constexpr uint32_t kEkCertNvRsa2048 = 0x01c00002;
inline constexpr uint32_t kEkCertNvEccP256 = 0x01c0000a;

struct EkInfo {
  tpmobj::PublicArea pub;
  std::vector<uint8_t> cert_der;  // the NV index's content; empty when absent
};

// Creates the EK of `kind` from its template (TPM2_CreatePrimary on the
// endorsement hierarchy, empty endorsement auth; deterministic, so the same
// key every time), returns its public area, flushes it, and reads its
// certificate from NV when the index exists (in chunks of
// TPM_PT_NV_BUFFER_MAX). The cert bytes are returned as stored (not parsed:
// the verifier judges them).
Result<EkInfo> ReadEk(tpm::EsysContext& tpm, EkKind kind);

// An AK as the TPM returned it, every field marshalled:
//   public_area        TPM2B_PUBLIC
//   private_area       TPM2B_PRIVATE (wrapped by the SRK: useless off this TPM)
//   creation_data      TPMS_CREATION_DATA (without a size)
//   creation_attest    TPMS_ATTEST of TPM2_CertifyCreation (without a size)
//   creation_signature TPMT_SIGNATURE over creation_attest, by the AK
struct AkBlobs {
  std::vector<uint8_t> public_area;
  std::vector<uint8_t> private_area;
  std::vector<uint8_t> creation_data;
  std::vector<uint8_t> creation_attest;
  std::vector<uint8_t> creation_signature;
};

// Creates an AK: a restricted ECC P-256 ECDSA-SHA256 signing key (fixedTPM,
// fixedParent, sensitiveDataOrigin, userWithAuth, noDA; empty auth) under
// a storage primary with the SRK template in the ENDORSEMENT hierarchy
// (created transiently and flushed, never persisted: quotes of keys in other
// hierarchies carry obfuscated reset/restart counts), loads it and has it certify its
// own creation (TPM2_CertifyCreation, signHandle = objectHandle = AK, no
// qualifying data). Every transient handle is flushed before returning.
Result<AkBlobs> CreateAk(tpm::EsysContext& tpm);

// The enrolment request a node sends: EK, certificate, AK and its creation.
Result<attest::EnrolmentRequest> MakeEnrolmentRequest(const EkInfo& ek, const AkBlobs& ak);

// Saves the blobs as `dir`/ak.json (mode 0600, written to a temporary file
// and renamed), hex fields named as in AkBlobs plus "version": 1.
Status SaveAkBlobs(const std::string& dir, const AkBlobs& blobs);
// Reads `dir`/ak.json back. kNotFound when absent; kMalformed (naming the
// field) for anything but exactly the saved form with well-formed
// structures.
Result<AkBlobs> LoadAkBlobs(const std::string& dir);

// A loaded transient object, flushed (Esys_FlushContext) on destruction.
// Holds the ESYS context's pointer: must not outlive its EsysContext.
// Move-only. Thread-safety: like its EsysContext (not thread-safe).
class LoadedObject {
 public:
  LoadedObject() = default;
  LoadedObject(ESYS_CONTEXT* ctx, ESYS_TR handle) : ctx_(ctx), handle_(handle) {}
  ~LoadedObject() { Reset(); }
  LoadedObject(LoadedObject&& other) noexcept : ctx_(other.ctx_), handle_(other.handle_) {
    other.handle_ = ESYS_TR_NONE;
  }
  LoadedObject& operator=(LoadedObject&& other) noexcept {
    if (this != &other) {
      Reset();
      ctx_ = other.ctx_;
      handle_ = other.handle_;
      other.handle_ = ESYS_TR_NONE;
    }
    return *this;
  }
  LoadedObject(const LoadedObject&) = delete;
  LoadedObject& operator=(const LoadedObject&) = delete;

  ESYS_TR handle() const { return handle_; }
  // Flushes now (errors ignored: the handle is gone either way).
  void Reset() {
    if (ctx_ != nullptr && handle_ != ESYS_TR_NONE) Esys_FlushContext(ctx_, handle_);
    handle_ = ESYS_TR_NONE;
  }

 private:
  ESYS_CONTEXT* ctx_ = nullptr;
  ESYS_TR handle_ = ESYS_TR_NONE;
};

// Loads the AK under its transient parent (flushed right after). Fails on a TPM
// other than the one that created it (the private area is wrapped by that
// TPM's SRK).
Result<LoadedObject> LoadAk(tpm::EsysContext& tpm, const AkBlobs& blobs);

// TPM2_ActivateCredential: recreates the EK of `kind`, satisfies its policy
// with a policy session (PolicySecret(TPM_RH_ENDORSEMENT), empty endorsement
// auth), and asks the TPM for the credential's secret for the loaded `ak`.
// The TPM returns it only when the credential was made for THIS TPM's EK
// and the loaded object's name is the name it was made for; otherwise an
// error (kMismatch for the TPM's integrity/value refusals, else the TSS2
// code). The EK and the session are flushed on every path.
// Note: the secret crosses the TPM bus in the clear (no encrypted session).
Result<std::vector<uint8_t>> ActivateCredential(tpm::EsysContext& tpm, const LoadedObject& ak,
                                                EkKind kind, const attest::Credential& credential);

}  // namespace vigil::attest_tpm

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_TPM_ENROLMENT_H_
