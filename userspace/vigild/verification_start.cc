#include "verification_start.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "vigil/digest.h"

namespace vigil::daemon {

verify::Anchor AnchorFromLog(const vigil_info& info, const std::vector<records::Record>& log) {
  verify::Anchor a;
  std::memcpy(a.instance_id.data(), info.instance_id, VIGIL_ID_LEN);
  auto init = chain::InitialChain(a.instance_id);
  if (init.ok()) a.chain_head = *init;
  for (const records::Record& r : log) {
    auto cp = r.As<vigil_log_checkpoint>();
    if (!cp || std::memcmp(cp->instance_id, info.instance_id, VIGIL_ID_LEN) != 0) continue;
    a.last_seq = cp->last_seq;
    std::memcpy(a.chain_head.data(), cp->chain_head, VIGIL_DIGEST_LEN);
    auto d = crypto::Sha256({r.bytes()});
    if (d.ok()) a.checkpoint_digest = *d;
    a.checkpoint_log_seq = r.seq();
    a.drops_total = cp->drops_total;
    a.busy_total = cp->busy_total;
    a.log_refused = cp->log_refused;
  }
  return a;
}

std::optional<crypto::EcPoint> ModuleKey(const vigil_info& info) {
  if ((info.tpm_flags & VIGIL_TPM_KEY) == 0) return std::nullopt;
  crypto::EcPoint key;
  std::memcpy(key.x, info.key_x, sizeof(key.x));
  std::memcpy(key.y, info.key_y, sizeof(key.y));
  return key;
}

bool SameInstance(const VerifierState* saved, const vigil_info& info) {
  return saved != nullptr &&
         std::memcmp(saved->anchor.instance_id.data(), info.instance_id, VIGIL_ID_LEN) == 0;
}

StartPlan ChooseStart(const vigil_info& info, const std::vector<records::Record>& module_log,
                      const VerifierState* saved, size_t saved_open_events) {
  StartPlan plan;
  plan.resumed = SameInstance(saved, info);
  if (plan.resumed) {
    plan.anchor = saved->anchor;
    const uint64_t at = plan.anchor.checkpoint_log_seq;
    const bool in_module_log = std::any_of(module_log.begin(), module_log.end(),
                                           [&](const records::Record& r) { return r.seq() == at; });
    plan.messages.push_back("resuming verification after seq " +
                            std::to_string(plan.anchor.last_seq) + " (checkpoint at log seq " +
                            std::to_string(at) + ", checked against the " +
                            (in_module_log ? "module's" : "saved") + " log)");
  } else {
    if (saved != nullptr) {
      plan.instance_change.emplace();
      plan.instance_change->saved = saved->anchor.instance_id;
      plan.messages.push_back(
          "the saved verifier state belongs to another module instance (reboot or reload): "
          "verification starts again from the module's log; baselines are kept");
      if (saved_open_events != 0) {
        // Their checkpoints, if the old instance made any, are gone with it.
        plan.instance_change->detail =
            std::to_string(saved_open_events) + " events of the old instance after its seq " +
            std::to_string(saved->anchor.last_seq) +
            " were never decided and cannot be now (no verdict covers them)";
        plan.messages.push_back(plan.instance_change->detail);
      }
    }
    plan.anchor = AnchorFromLog(info, module_log);
    plan.started_after_seq = plan.anchor.last_seq;
    plan.messages.push_back("verification starts after seq " +
                            std::to_string(plan.anchor.last_seq) +
                            (plan.anchor.checkpoint_log_seq ? " (the last checkpoint in the log)"
                                                            : " (no checkpoint yet)"));
  }
  // The saved state is a file root can edit, and a KEY record in the log is
  // part of what is being verified: neither may choose the key.
  const std::optional<crypto::EcPoint> module_key = ModuleKey(info);
  const bool differs = plan.anchor.key.has_value() != module_key.has_value() ||
                       (plan.anchor.key && !crypto::SamePoint(*plan.anchor.key, *module_key));
  if (differs && plan.resumed) {
    plan.messages.push_back(
        "the module's key differs from the saved one for this instance: using the module's");
  }
  plan.anchor.key = module_key;
  return plan;
}

}  // namespace vigil::daemon
