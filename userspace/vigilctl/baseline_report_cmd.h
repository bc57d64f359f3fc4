// vigilctl baseline report: a signed baseline report (docs/attestation.md,
// "Signed baseline reports"; format in vigil/attest/baseline_report.h).
//
// Takes vigild's saved baseline state (STATE_DIR/baselines.json, the bytes
// verbatim), checks that it parses, hashes it (SHA-256), MEASUREs the
// digest under the name "baseline" (the module, loaded with anchor=ima,
// measures that record through IMA into PCR 10), waits until IMA's log
// holds it, quotes PCR 10 with the AK of `vigilctl attest enrol-request`
// (qualifying data bound to the digest, the MEASURE record and the nonce),
// reads IMA's log, checks the report as a verifier would (with the local
// AK) and writes it.
#ifndef VIGIL_USERSPACE_VIGILCTL_BASELINE_REPORT_CMD_H_
#define VIGIL_USERSPACE_VIGILCTL_BASELINE_REPORT_CMD_H_

#include <string>

namespace vigilctl {

struct BaselineReportOptions {
  std::string out;                            // -o FILE (required)
  std::string nonce;                          // hex; empty: 32 random bytes (bound, not fresh)
  std::string dir = "/var/lib/vigil/attest";  // the AK and node id
  std::string tcti = "device:/dev/tpmrm0";
  std::string device;  // /dev/vigil when empty
  std::string ima_log = "/sys/kernel/security/ima/binary_runtime_measurements";
};

// Exit codes: 0 written, 1 error (no state, no module, anchor not ima, no
// AK, TPM or IMA failure, or the report failed its own check), 6 the state
// is not a baseline state.
int CmdBaselineReport(const std::string& state_dir, const BaselineReportOptions& options);

}  // namespace vigilctl

#endif  // VIGIL_USERSPACE_VIGILCTL_BASELINE_REPORT_CMD_H_
