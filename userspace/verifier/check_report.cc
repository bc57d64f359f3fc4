#include "check_report.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <vector>

#include "service.h"
#include "vigil/attest/baseline_report.h"
#include "vigil/attest/verifier.h"
#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/read_file.h"

namespace vigil::verifier {
namespace {

constexpr int kExitValid = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;
constexpr int kExitError = 3;

// The AK of an enrolled, activated node (service.h's layout; state.json
// exists only after activation proved the AK is in the EK's TPM).
Result<tpmobj::PublicArea> EnrolledAk(const std::string& dir, const std::string& node) {
  VIGIL_RETURN_IF_ERROR(CheckNodeId(node));
  auto text = ReadFileUpTo(dir + "/nodes/" + node + "/state.json", 16u << 20);
  if (!text.ok()) {
    return Status::Error(ErrorCode::kNotFound, "node " + node +
                                                   " is not enrolled and activated in " + dir +
                                                   " (" + text.status().message() + ")");
  }
  VIGIL_ASSIGN_OR_RETURN(attest::NodeState state, attest::ParseNodeState(*text));
  return state.ak;
}

int Error(const Status& st) {
  std::fprintf(stderr, "vigil-verifier check-report: %s\n", st.ToString().c_str());
  return kExitError;
}

int Usage(const char* why) {
  std::fprintf(stderr, "vigil-verifier check-report: %s\n", why);
  return kExitUsage;
}

}  // namespace

int CheckReport(const CheckReportOptions& o) {
  if (o.node.empty() == o.ak_file.empty()) {
    return Usage("give the node's AK: --node ID (with --state) or --ak FILE, one of them");
  }
  if (!o.node.empty() && o.state_dir.empty()) return Usage("--node needs --state DIR");
  std::optional<std::vector<uint8_t>> nonce;
  if (!o.nonce.empty()) {
    auto bytes = crypto::FromHex(o.nonce);
    if (!bytes.ok() || bytes->empty()) return Usage("--nonce takes hex");
    nonce = std::move(bytes).value();
  }
  Result<tpmobj::PublicArea> ak = Status::Error(ErrorCode::kInternal, "no AK");
  if (!o.node.empty()) {
    ak = EnrolledAk(o.state_dir, o.node);
  } else {
    auto bytes = ReadFileUpTo(o.ak_file, 1u << 20);
    if (!bytes.ok()) return Error(bytes.status());
    ak = attest::ParseAkFile(
        std::span(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
  }
  if (!ak.ok()) return Error(ak.status());
  auto report = ReadFileUpTo(o.report, attest::kMaxBaselineReportBytes);
  if (!report.ok()) return Error(report.status());

  std::optional<std::span<const uint8_t>> expected;
  if (nonce) expected = std::span<const uint8_t>(*nonce);
  attest::BaselineReportCheck c = attest::CheckBaselineReport(*report, *ak, expected);
  // The report's node field is a claim: with --node it must name that node,
  // whose AK was just used.
  if (!o.node.empty() && !c.node.empty() && c.node != o.node) {
    c.reasons.push_back("node: the report names node " + c.node + ", checked with the AK of " +
                        o.node);
    c.valid = false;
  }
  if (o.json) {
    nlohmann::json j = {
        {"valid", c.valid},       {"reasons", c.reasons},
        {"node", c.node},         {"snapshot_sha256", crypto::ToHex(c.snapshot_sha256)},
        {"instance", c.instance}, {"measure_seq", c.measure_seq},
        {"fresh", c.fresh}};
    if (c.ima_entry) j["ima_entry"] = *c.ima_entry;
    if (c.agents) j["agents"] = *c.agents;
    if (c.clock) {
      j["clock"] = {{"clock", c.clock->clock},
                    {"reset_count", c.clock->resetCount},
                    {"restart_count", c.clock->restartCount},
                    {"safe", c.clock->safe == TPM2_YES}};
    }
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (c.valid) {
    std::printf(
        "valid: node %s%s, %zu agents, snapshot sha256 %s, MEASURE seq %llu of instance %s (IMA "
        "entry %zu), %s\n",
        format::EscapeText(c.node).c_str(), o.node.empty() ? " (as the report says)" : "",
        c.agents.value_or(0), crypto::ToHex(c.snapshot_sha256).c_str(),
        static_cast<unsigned long long>(c.measure_seq), c.instance.c_str(), c.ima_entry.value_or(0),
        c.fresh ? "fresh (the verifier's nonce)" : "not shown fresh (no --nonce given)");
  } else {
    std::printf("INVALID: %zu reasons\n", c.reasons.size());
    for (const std::string& why : c.reasons) {
      std::printf("  %s\n", format::EscapeText(why).c_str());
    }
  }
  return c.valid ? kExitValid : kExitInvalid;
}

}  // namespace vigil::verifier
