// /dev/vigil: the version / info ioctls and the binary log stream.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_DEVICE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_DEVICE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vigil.h"
#include "vigil/status.h"
#include "vigil/unique_fd.h"

namespace vigil::device {

// VIGIL_IOC_KEY_CREATION: what TPM2_CreatePrimary returned for the module's
// checkpoint key and the key's saved context, each as the TPM marshalled it.
// Nothing here is secret (the context is encrypted by the TPM; the key's
// auth value stays in the module).
struct KeyCreation {
  std::vector<uint8_t> key_public;       // TPM2B_PUBLIC
  std::vector<uint8_t> creation_data;    // TPM2B_CREATION_DATA
  std::vector<uint8_t> creation_hash;    // TPM2B_DIGEST
  std::vector<uint8_t> creation_ticket;  // TPMT_TK_CREATION
  std::vector<uint8_t> context;          // TPMS_CONTEXT (TPM2_ContextSave)
};

// An open /dev/vigil. Move-only. Thread-safety: not thread-safe (the log
// read position is per open file).
class VigilDevice {
 public:
  // kNotFound (errno ENOENT) when the module is not loaded.
  static Result<VigilDevice> Open(const std::string& path = VIGIL_DEVICE_PATH);

  Result<vigil_version> GetVersion();
  Result<vigil_info> GetInfo();
  // VIGIL_IOC_MEASURE: logs `digest` under `name` and extends pcr_config
  // (needs CAP_SYS_ADMIN). Returns the log seq of the MEASURE record.
  Result<uint64_t> Measure(const std::string& name, std::span<const uint8_t> digest);
  // VIGIL_IOC_COMMIT: chains a user event (kind, payload <= 512 bytes) and
  // returns its seq (CAP_SYS_ADMIN).
  Result<uint64_t> Commit(uint32_t kind, std::span<const uint8_t> payload);
  // VIGIL_IOC_PRODUCERS_OPEN: until SealProducers(), BPF programs this
  // process loads may call the module's kfuncs (CAP_SYS_ADMIN).
  Status OpenProducers();
  // VIGIL_IOC_PRODUCERS_SEAL: closes the window; the module measures the
  // programs it allowed. Returns the set's generation, size and digest.
  Result<vigil_producers> SealProducers();
  // VIGIL_IOC_PRODUCERS_ADD (kfunc_guard CALLSITE, kernels without the
  // kfunc filter): registers a program this process loaded in its open
  // window. Returns false when the program calls no vigil kfunc (ENOMSG:
  // nothing recorded), true when it was registered.
  Result<bool> AddProducer(int prog_fd);
  // VIGIL_IOC_SEAL: the final checkpoint; commits are refused afterwards and
  // the module may be unloaded once the log is read up to seal.log_end.
  // A module sealed before answers with the earlier log_end.
  Result<vigil_seal> Seal();
  // VIGIL_IOC_TRIM: drops the module's log records with log seq < before_seq
  // (CAP_SYS_ADMIN); the module then appends a BASE record with the PCR
  // values at the cut. Returns the number of records dropped (0: nothing
  // was older). kUnavailable (errno EAGAIN) while a record it would drop
  // has a PCR extend pending: retry later, it is not an error.
  // kFailedPrecondition (errno ESHUTDOWN) after SEAL; kInvalidArgument
  // beyond the next log seq.
  Result<uint64_t> Trim(uint64_t before_seq);
  // VIGIL_IOC_KEY_CREATION (ABI 2.1, CAP_SYS_ADMIN). kFailedPrecondition
  // when the module has no TPM (ENODEV) or no checkpoint key (ENOKEY), or
  // is older than ABI 2.1 (ENOTTY).
  Result<KeyCreation> GetKeyCreation();
  // Reads every log record available now (non-blocking), from the position
  // of this open file (the oldest held record for a fresh open).
  Result<std::vector<uint8_t>> ReadAvailable();

 private:
  explicit VigilDevice(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// kIncompatible, with a message naming both versions, when the module's ABI
// major differs from the one this program was built for.
Status CheckAbi(const vigil_version& version);

}  // namespace vigil::device

#endif  // VIGIL_USERSPACE_LIB_VIGIL_DEVICE_H_
