// vigil-verifier check-report: a signed baseline report checked offline
// (attest::CheckBaselineReport) with the AK the verifier enrolled for the
// node (DIR/nodes/<node>/state.json, written at activation) or an AK file
// (PEM, TPM2B_PUBLIC, or its hex). Reads the state directory only: no lock,
// nothing written.
#ifndef VIGIL_USERSPACE_VERIFIER_CHECK_REPORT_H_
#define VIGIL_USERSPACE_VERIFIER_CHECK_REPORT_H_

#include <string>

namespace vigil::verifier {

struct CheckReportOptions {
  std::string report;     // the report file
  std::string state_dir;  // with `node`: the enrolled AK
  std::string node;       // hex EK name
  std::string ak_file;    // instead of state_dir + node
  std::string nonce;      // hex: the nonce the verifier gave the node
  bool json = false;
};

// Exit codes: 0 valid, 1 invalid (reasons printed), 2 usage (neither or
// both of --node/--ak, --node without --state, a nonce that is not hex),
// 3 error (a file that cannot be read, a node that is not enrolled and
// activated, an AK that does not parse).
int CheckReport(const CheckReportOptions& options);

}  // namespace vigil::verifier

#endif  // VIGIL_USERSPACE_VERIFIER_CHECK_REPORT_H_
