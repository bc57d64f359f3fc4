// One simulated vigil node: its own swtpm (EK, AK, the module's checkpoint
// key, PCR 10), the module's commit and checkpoint rules (vigil/sim), IMA's
// log of the module's records, and the push protocol of vigilctl attest
// over HTTP: enrol, activate, then per round: events, a TPM-signed
// checkpoint, a nonce, evidence (CBOR), the verdict.
#ifndef VIGIL_USERSPACE_FLEET_SIM_SIM_NODE_H_
#define VIGIL_USERSPACE_FLEET_SIM_SIM_NODE_H_

#include <tss2/tss2_esys.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/attest_tpm/enrolment.h"
#include "vigil/device.h"
#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "vigil/status.h"
#include "vigil/tpm.h"

namespace httplib {
class Client;
}

namespace vigil::fleetsim {

// The digests a simulated node's module measures (MODULE, PARAMS, the
// producer set: 32 bytes of 0x11, 0x22, 0x33) and the path of the vigild
// it measures with IMA: the policy of WritePolicy allows exactly these.
inline constexpr uint8_t kModuleFill = 0x11;
inline constexpr uint8_t kParamsFill = 0x22;
inline constexpr uint8_t kProducersFill = 0x33;
inline constexpr const char* kCollectorPath = "/usr/sbin/vigild";

// The verifier policy (docs/attestation.md, version 1) under which honest
// simulated nodes are trusted: anchor ima, the digests above.
std::string PolicyJson();

struct NodeOptions {
  std::string host = "127.0.0.1";
  int port = 8790;
  int events_per_round = 3;
  int http_timeout_s = 60;
};

// What one round took and what the verifier said.
struct RoundResult {
  bool decided = false;  // the verifier answered the evidence with a verdict
  bool trusted = false;
  bool tampered = false;  // this round's evidence was forged on purpose
  std::string reason;     // the first reason when untrusted
  double tpm_ms = 0;      // TPM2_Sign, PCR extends, quote (and key certification)
  double nonce_ms = 0;    // POST /v1/nonce
  double verify_ms = 0;   // POST /v1/evidence: request sent to verdict received
  double round_ms = 0;    // the whole round
};

// Thread-safety: not thread-safe; one thread drives a node (its ESYS
// context is bound to it).
class SimNode {
 public:
  ~SimNode();
  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  // Opens the TPM behind `tcti`. `index` varies the module instance id.
  static Result<std::unique_ptr<SimNode>> Open(int index, const std::string& tcti,
                                               const NodeOptions& options);

  // Enrolment (EK, AK, credential activation; the verifier must run with
  // --pin-ek: swtpm without swtpm_setup has no EK certificate), then the
  // module's load: its checkpoint key, MEASURE records, the producer seal,
  // IMA's boot aggregate and vigild, all extended into PCR 10.
  Status Enrol();

  // One round. `tamper`: an event of the segment is changed after the
  // checkpoint over it was signed (root rewriting history): the verifier
  // must refuse it. A transport or TPM failure is an error; a verdict,
  // trusted or not, is a result.
  Result<RoundResult> Round(bool tamper);

  const std::string& node_id() const { return node_id_; }

 private:
  SimNode(int index, tpm::EsysContext tpm, const NodeOptions& options);
  Result<std::string> Post(const std::string& op, const std::string& body,
                           const std::string& content_type);
  Status MakeModuleKey();
  Status ExtendNewImaEntries();
  bool TpmSign(const crypto::Sha256Digest& digest, uint8_t* r, uint8_t* s);

  int index_;
  tpm::EsysContext tpm_;
  NodeOptions options_;
  std::unique_ptr<httplib::Client> http_;
  std::string node_id_;
  attest_tpm::LoadedObject ak_;
  ESYS_TR key_ = ESYS_TR_NONE;
  TPM2B_AUTH key_auth_{};
  crypto::EcPoint key_point_{};
  device::KeyCreation creation_;
  sim::ModuleSim module_;
  sim::ImaSim ima_;
  size_t ima_logged_ = 0;                // module log records already in IMA's log
  size_t pcr_extended_ = 0;              // ImaSim extends already on the TPM
  std::vector<records::Record> events_;  // committed, not yet verified
};

}  // namespace vigil::fleetsim

#endif  // VIGIL_USERSPACE_FLEET_SIM_SIM_NODE_H_
