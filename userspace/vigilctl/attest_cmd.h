// vigilctl attest: the node's side of remote attestation (docs/attestation.md).
//
//   attest enrol-request  read the EK (and its certificate), create the AK,
//                         write the enrolment request for vigil-verifier
//   attest activate       answer the verifier's credential challenge
//   attest evidence       quote + log segment + events (+ IMA's log, + the
//                         checkpoint key's certification for a new instance)
//                         for a nonce the verifier issued
//   attest push           all of it against a verifier over HTTP: enrol and
//                         activate if needed, then nonce -> evidence -> result
//
// The AK's blobs and the node's id live in --dir (default
// /var/lib/vigil/attest, 0700). The AK is never persisted in the TPM.
#ifndef VIGIL_USERSPACE_VIGILCTL_ATTEST_CMD_H_
#define VIGIL_USERSPACE_VIGILCTL_ATTEST_CMD_H_

#include <cstdint>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace vigilctl {

inline constexpr const char* kDefaultAttestDir = "/var/lib/vigil/attest";

struct AttestOptions {
  std::string dir = kDefaultAttestDir;
  std::string tcti = "device:/dev/tpmrm0";
  std::string device;         // /dev/vigil
  std::string ek = "ecc";     // "ecc" (P-256) or "rsa" (2048)
  std::string out;            // file, or stdout when empty
  std::string challenge;      // activate: the verifier's challenge file
  std::string nonce;          // evidence: hex
  uint64_t from_seq = 1;      // evidence: first log seq
  uint64_t events_after = 0;  // evidence: events with a greater seq
  std::string instance;       // evidence: the instance the verifier follows (hex)
  std::string events;         // vigild --raw-out file
  std::string ima_log = "/sys/kernel/security/ima/binary_runtime_measurements";
  uint64_t ima_from_entry = 0;              // evidence: the verifier's IMA point
  std::optional<uint32_t> ima_reset_count;  // evidence: the boot of that point
  std::optional<uint32_t> ima_restart_count;  // evidence: and its restartCount
  std::string verifier;     // push: http://HOST:PORT
  unsigned count = 1;       // push: rounds (0: forever)
  unsigned interval_s = 5;  // push: seconds between rounds
};

// Adds the "attest" subcommand and its children to `app`; `Run` executes
// whichever was parsed. Exit codes: 0 ok (push: every result trusted),
// 1 error, 2 usage, 14 push: a result was untrusted.
CLI::App* AddAttestCommands(CLI::App& app, AttestOptions& options);
int RunAttest(CLI::App& attest, const AttestOptions& options);

}  // namespace vigilctl

#endif  // VIGIL_USERSPACE_VIGILCTL_ATTEST_CMD_H_
