// Fleet analytics (issue #15, docs/fleet.md "Fleet analytics"): the fleet
// verifier ingests nodes' signed baseline reports (checked like
// check-report, with the AK the database holds for the node), keeps per
// agent role and feature each node's statistic, pools them per role across
// the nodes (median and MAD of the nodes' values: robust to a minority of
// Byzantine nodes that forge their statistics), flags the nodes far from
// the pool as byzantine_outlier alerts, and signs the fleet report with the
// verifier's ECDSA P-256 key.
//
// Thread-safety: free functions; a Store is not thread-safe (one per thread).
#ifndef VIGIL_USERSPACE_VERIFIER_FLEET_ANALYTICS_H_
#define VIGIL_USERSPACE_VERIFIER_FLEET_ANALYTICS_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/fleet/store.h"
#include "vigil/status.h"

namespace vigil::verifier::analytics {

// One node's statistic of one feature for one agent role: the median of all
// samples of the role's agents on that node (the merged DDSketch of the
// node's baseline, vigil/baseline/store.h Pool()).
struct RoleFeatureStat {
  std::string role;
  std::string feature;  // baseline::FeatureName: cpu_per_exec, ..., ipc
  uint64_t agents = 0;
  uint64_t samples = 0;
  double median = 0;
};

// Per role and feature with samples, in role then feature order. "ipc" is
// there only when the node had hardware counters (absent is not zero).
Result<std::vector<RoleFeatureStat>> RoleFeatureStats(std::string_view snapshot);

struct IngestOutcome {
  int64_t report_id = 0;
  std::string node;
  bool fresh = false;  // checked against a nonce the verifier issued
  std::vector<RoleFeatureStat> stats;
};

// Checks `report_json` as check-report does (attest::CheckBaselineReport)
// with the AK the database enrolled for `node` (activated nodes only), and
// stores it with its statistics, in one transaction. Refused, storing
// nothing: an unknown or not activated node (kNotFound); a report that
// does not check, or names another node (kMismatch, every reason in the
// message); with `nonce`, one the database did not issue to the node, or
// consumed, or expired (kMismatch; it is consumed either way, like an
// evidence's); a MEASURE seq of the instance not newer than one stored
// already, i.e. a replayed or older report (kFailedPrecondition).
Result<IngestOutcome> IngestBaselineReport(fleet::Store& store, const std::string& node,
                                           std::string_view report_json,
                                           std::optional<std::span<const uint8_t>> nonce);

// One node's latest stored statistic (the input of the pooling).
struct NodeStat {
  std::string node;
  int64_t report_id = 0;
  RoleFeatureStat stat;
};
// Of each node, the statistics of its latest stored report.
Result<std::vector<NodeStat>> LatestNodeStats(fleet::Store& store);

struct AnalysisOptions {
  double threshold = 5.0;          // robust z at which a node is an outlier
  size_t min_nodes = 3;            // nodes a pool needs before it flags anyone
  double min_relative_mad = 0.05;  // MAD floor as a fraction of |median|
};

// A role's feature pooled over the nodes that report it.
struct Pool {
  std::string role;
  std::string feature;
  size_t nodes = 0;
  double median = 0;  // of the nodes' medians
  double mad = 0;     // median absolute deviation of the nodes' medians from `median`
  double scale = 0;   // 1.4826 * max(mad, min_relative_mad * |median|, the feature's floor)
};

struct Alert {
  std::string kind = "byzantine_outlier";
  std::string node;
  std::string role;
  std::string feature;
  double value = 0;
  double fleet_median = 0;
  double fleet_mad = 0;
  double score = 0;  // |value - fleet_median| / scale
};

struct FleetAnalysis {
  uint64_t generated_unix = 0;
  AnalysisOptions options;
  size_t nodes = 0;
  std::vector<Pool> pools;    // role, then feature order
  std::vector<Alert> alerts;  // pool order, then node
};

// Pure: pools `stats` and scores every node against its pool.
FleetAnalysis Analyse(std::span<const NodeStat> stats, const AnalysisOptions& options,
                      uint64_t generated_unix);

// The report object ("format": "vigil-fleet-report", "version": 1).
nlohmann::json FleetReportJson(const FleetAnalysis& analysis);

// The signed envelope: {"format": "vigil-fleet-report-signed", "version": 1,
// "report": {...}, "signature": {"alg": "ecdsa-p256-sha256", "key_sha256":
// hex SHA-256 of the public key's DER SubjectPublicKeyInfo, "value": base64
// DER ECDSA signature}}, signed over "vigil-fleet-report-v1" NUL ||
// report.dump() (nlohmann's compact dump: sorted keys, round-trip numbers,
// the same text after a parse). The key: a PEM private key on P-256.
Result<std::string> SignFleetReport(const nlohmann::json& report, std::string_view private_key_pem);
// OK with the report when `envelope` is such a document whose signature
// verifies with `public_key_pem` (PEM SubjectPublicKeyInfo on P-256, or a
// private key PEM: its public half); kMismatch when it does not verify or
// names another key; kMalformed for anything not an envelope.
Result<nlohmann::json> VerifyFleetReport(std::string_view envelope,
                                         std::string_view public_key_pem);

// vigil-verifier's subcommands submit-report, fleet-report and
// verify-fleet-report: Add registers them, Run runs the one parsed (nullopt:
// none of them was).
struct Commands {
  CLI::App* submit = nullptr;
  CLI::App* report = nullptr;
  CLI::App* verify = nullptr;
  std::string node, report_file, nonce;
  bool json = false;
  std::string output, signing_key, pubkey;
  AnalysisOptions options;
};
void AddCommands(CLI::App& app, Commands& commands);
std::optional<int> RunCommand(const Commands& commands, const std::string& database);

}  // namespace vigil::verifier::analytics

#endif  // VIGIL_USERSPACE_VERIFIER_FLEET_ANALYTICS_H_
