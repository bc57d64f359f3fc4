// TPM access through tpm2-tss ESAPI: RAII for the TCTI and the ESYS context,
// Esys_Free'd outputs, PCR read / extend / reset and the allocated banks.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_TPM_H_
#define VIGIL_USERSPACE_LIB_VIGIL_TPM_H_

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vigil/digest.h"
#include "vigil/status.h"

namespace vigil::tpm {

inline constexpr char kDefaultTcti[] = "device:/dev/tpmrm0";

// Releases ESAPI output buffers.
struct EsysFreeDeleter {
  void operator()(void* p) const { Esys_Free(p); }
};
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFreeDeleter>;

// One ESYS context over its own TCTI. The TCTI is created first and
// finalized after the context (members are destroyed in reverse order).
// Move-only. Thread-safety: not thread-safe (ESAPI contexts are not); use
// one per thread.
class EsysContext {
 public:
  // `tcti_conf` as for tpm2-tools' --tcti: "device:/dev/tpmrm0",
  // "swtpm:host=127.0.0.1,port=2321", ...
  static Result<EsysContext> Open(const std::string& tcti_conf);

  ESYS_CONTEXT* get() const { return esys_.get(); }

  // Hash algorithms of the PCR banks that have at least one PCR allocated.
  Result<std::vector<uint16_t>> AllocatedBanks();
  Result<crypto::Digest> PcrRead(uint16_t alg, uint32_t pcr);
  // Extends `pcr` in every bank listed (alg, digest) with one command.
  Status PcrExtend(uint32_t pcr, const std::vector<std::pair<uint16_t, crypto::Digest>>& digests);
  Status PcrReset(uint32_t pcr);

 private:
  struct TctiDeleter {
    void operator()(TSS2_TCTI_CONTEXT* tcti) const { Tss2_TctiLdr_Finalize(&tcti); }
  };
  struct EsysDeleter {
    void operator()(ESYS_CONTEXT* ctx) const { Esys_Finalize(&ctx); }
  };

  EsysContext(std::unique_ptr<TSS2_TCTI_CONTEXT, TctiDeleter> tcti,
              std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys)
      : tcti_(std::move(tcti)), esys_(std::move(esys)) {}

  std::unique_ptr<TSS2_TCTI_CONTEXT, TctiDeleter> tcti_;
  std::unique_ptr<ESYS_CONTEXT, EsysDeleter> esys_;
};

}  // namespace vigil::tpm

#endif  // VIGIL_USERSPACE_LIB_VIGIL_TPM_H_
