// The anchor checks a node-side verifier runs (vigild, `vigilctl
// verify-chain --live`), as VerifierOptions::pcr_check / ima_check:
//   PcrAnchorCheck  anchor=pcr: the module's log replays to pcr_config and
//                   pcr_events as the TPM holds them (vigil::replay).
//   ImaAnchorCheck  anchor=ima: IMA's binary log replays to PCR 10 and holds
//                   the module's anchored records (vigil::ima).
// Each reads the TPM (ESAPI, `tcti`) and keeps its own /dev/vigil reader
// (the PCR check needs the records the verifier's caller has not passed yet,
// up to the newest BASE). Errors that say nothing about the TPM's values
// (device, TPM or file unreadable) are kUnavailable: "not checked".
//
// Thread-safety: not thread-safe; each instance belongs to one verifier.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ANCHOR_CHECK_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ANCHOR_CHECK_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/device.h"
#include "vigil/ima.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/tpm.h"
#include "vigil/verify.h"

namespace vigil::anchor {

class PcrAnchorCheck {
 public:
  PcrAnchorCheck(std::string tcti, const vigil_info& info) : tcti_(std::move(tcti)), info_(info) {}
  Status operator()(const std::vector<records::Record>& verified);

 private:
  Status ReadMore();

  std::string tcti_;
  vigil_info info_;
  std::optional<tpm::EsysContext> esys_;
  std::optional<device::VigilDevice> device_;
  std::vector<records::Record> current_;
};

class ImaAnchorCheck {
 public:
  ImaAnchorCheck(std::string tcti, const vigil_info& info,
                 std::string log_path = ima::kBinaryLogPath)
      : tcti_(std::move(tcti)), info_(info), log_path_(std::move(log_path)) {}
  ~ImaAnchorCheck();
  ImaAnchorCheck(const ImaAnchorCheck&) = delete;
  ImaAnchorCheck& operator=(const ImaAnchorCheck&) = delete;

  Status operator()(const std::vector<records::Record>& verified);

 private:
  Status Once(const std::vector<records::Record>& verified);

  std::string tcti_;
  vigil_info info_;
  std::string log_path_;
  int fd_ = -1;  // kept open: IMA's seq_file then continues where it stopped
  std::optional<tpm::EsysContext> esys_;
  std::optional<ima::ImaLog> log_;
};

// Wraps a check object for VerifierOptions (std::function needs a copyable
// target; the ESYS context is not).
template <typename Check>
verify::PcrCheck Shared(std::shared_ptr<Check> check) {
  return [check](const std::vector<records::Record>& log) { return (*check)(log); };
}

}  // namespace vigil::anchor

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ANCHOR_CHECK_H_
