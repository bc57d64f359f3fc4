// The anchor checks a node-side verifier runs (vigild, `vigilctl
// verify-chain --live`), as VerifierOptions::pcr_check / ima_check:
//   PcrChecker      anchor=pcr: the module's log replays to pcr_config and
//                   pcr_events as the TPM holds them (vigil::replay).
//   ImaAnchorCheck  anchor=ima: IMA's binary log replays to PCR 10 and holds
//                   the module's anchored records (vigil::ima).
// Each reads the TPM (ESAPI, `tcti`); the PCR check also keeps its own
// /dev/vigil reader (it needs the records the verifier's caller has not
// passed yet, up to the newest BASE). Errors that say nothing about the TPM's values
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

// What the PCR check reads. Errors from OpenTpm and ReadLog mean "not
// checked" (kUnavailable), never a verdict on the TPM's values.
// Thread-safety: one caller at a time.
class PcrSource {
 public:
  virtual ~PcrSource() = default;
  // Called before every check; Ok once the TPM can be read.
  virtual Status OpenTpm() = 0;
  // The module's log records written since the last call (from the start at
  // the first), as raw bytes.
  virtual Result<std::vector<uint8_t>> ReadLog() = 0;
  virtual Result<crypto::Digest> ReadPcr(uint16_t alg, uint32_t pcr) = 0;
};

// The TPM through tpm2-tss (`tcti`) and the module's log through its own
// /dev/vigil reader (its own file position); both opened at first use.
std::unique_ptr<PcrSource> TpmPcrSource(std::string tcti);

// anchor=pcr. The TPM may already hold extends the verifier has not read
// yet, so this keeps its own view of the module's log (records since the
// newest BASE's cut), replays it and places every bank's PCRs; read again
// and retried (three tries in all) when a checkpoint lands between the log
// read and the PCR read.
class PcrChecker {
 public:
  PcrChecker(std::unique_ptr<PcrSource> source, const vigil_info& info)
      : source_(std::move(source)), info_(info) {}

  // As replay::CheckPcrPath; kUnavailable when the TPM or the log cannot be read.
  Status Check(const std::vector<records::Record>& verified);
  Status operator()(const std::vector<records::Record>& verified) { return Check(verified); }

 private:
  Status ReadMore();

  std::unique_ptr<PcrSource> source_;
  vigil_info info_;
  std::vector<records::Record> current_;  // the replay view of the module's log
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
