// What vigild does with each record once the collector or /dev/vigil hands
// it over: one JSON line per record, verdict, finding and alert on the
// output stream; the verifier (with the module); per-agent baselines; the
// Prometheus counters. No I/O besides the output stream and the sinks, so it
// runs the same in tests.
#ifndef VIGIL_USERSPACE_VIGILD_PIPELINE_H_
#define VIGIL_USERSPACE_VIGILD_PIPELINE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "line_stamp.h"
#include "liveness.h"
#include "vigil/baseline/store.h"
#include "vigil/metrics.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/verify.h"

namespace vigil::daemon {

// An agent's role, for pooled baselines: its name up to the last '@'
// ("checker@3" -> "checker"); a name without '@' is its own role.
std::string RoleOf(std::string_view agent_name);

struct FeatureValue {
  baseline::Feature feature;
  double value;
};

// The baseline features one record gives. EXIT: cpu_per_exec, lifetime,
// max_rss and the fault and context-switch rates over the lifetime. SAMPLE:
// syscall_rate when syscalls were counted and ipc when hardware counters
// measured (never from injected or absent counters).
// At most five per record: a fixed array, as this runs once per record.
class Features {
 public:
  void push_back(FeatureValue v) { values_[size_++] = v; }
  const FeatureValue* begin() const { return values_.data(); }
  const FeatureValue* end() const { return values_.data() + size_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  std::array<FeatureValue, 5> values_{};
  size_t size_ = 0;
};
Features FeaturesOf(const records::Record& rec);

struct PipelineOptions {
  bool emit_records = true;                      // one JSON line per record
  uint64_t pool_interval_ns = 10'000'000'000;    // how often pools are compared
  // With the module: only committed records name agents and feed baselines
  // (an uncommitted one may be anybody's).
  bool committed_only = false;
  size_t max_agents = 100000;  // agent ids tracked; more are counted, not kept
  // Adds time, host_id and boot_id to every line (vigild always sets it;
  // empty: the lines are printed as built).
  std::optional<LineStamper> stamper;
  // CLOCK_REALTIME in ns for the last-verdict gauge (empty: the system's).
  std::function<uint64_t()> real_clock;
  // With the verifier: `stalled` findings (see LivenessMonitor), judged once
  // OnModuleInfo gave the module's periods.
  LivenessOptions liveness;
};

// Called with each line that must also be kept (verdicts.jsonl).
using LineSink = std::function<void(const std::string& line)>;

// Thread-safety: not thread-safe; vigild's one polling thread drives it.
class Pipeline {
 public:
  // `verifier` is empty without the module: records are then unattested.
  static Result<std::unique_ptr<Pipeline>> Create(std::ostream& out, metrics::Registry& registry,
                                                  baseline::BaselineStore store,
                                                  std::optional<verify::StreamVerifier> verifier,
                                                  PipelineOptions options);

  // A ring buffer record; `real_ns` is CLOCK_REALTIME now (baseline time).
  void OnEvent(records::Record&& rec, uint64_t real_ns);
  void OnEvent(const records::Record& rec, uint64_t real_ns) {
    OnEvent(records::Record(rec), real_ns);
  }
  // An event a previous vigild saved (already printed and learnt from then):
  // only the verifier sees it again.
  void OnRecoveredEvent(records::Record rec);
  void OnDecodeError(const std::string& why);
  // The next record of the module's log.
  void OnLog(records::Record rec);
  void OnLogError(const std::string& why);
  // Both hand every line so far to the output stream (lines are queued in
  // chunks between them; see LineWriter).
  void Tick(uint64_t mono_ns, uint64_t real_ns);
  void Finish();
  // Hands the queued lines to the output stream now.
  void FlushLines() { writer_.Flush(); }
  // GET_INFO, read again every poll: the module's seq and periods for the
  // stall check, its log fill for the metrics.
  void OnModuleInfo(const vigil_info& info);
  // What Collector::Audit() found done to the BPF objects (kind is its
  // AuditKindName): a finding line and a count.
  void OnAudit(std::string_view kind, const std::string& detail) { EmitFinding(kind, 0, detail); }
  // The saved verifier state named another module instance than the
  // loaded one (a reboot or reload; or a state file from elsewhere): an
  // `instance_changed` finding and vigil_instance_changes_total. `detail`
  // says what was dropped.
  void ReportInstanceChange(std::span<const uint8_t> saved_instance,
                            std::span<const uint8_t> module_instance, const std::string& detail);
  // vigild TRIMmed `records` records of the module's log.
  void CountTrimmed(uint64_t records);
  const LivenessMonitor* liveness() const { return liveness_ ? &*liveness_ : nullptr; }

  void set_verdict_sink(LineSink sink) { verdict_sink_ = std::move(sink); }
  baseline::BaselineStore& store() { return store_; }
  verify::StreamVerifier* verifier() { return verifier_ ? &*verifier_ : nullptr; }
  // Names learnt from AGENT records (agent ids are per module load).
  std::map<uint32_t, std::string> AgentNames() const;
  void SetAgentNames(const std::map<uint32_t, std::string>& names);
  // Moves the counts kept per record into the metrics registry (done by Tick
  // and Finish; a registry update per record would cost a lock each).
  void FlushMetrics();
  uint64_t alerts() const { return alerts_; }
  uint64_t format_errors() const { return format_errors_; }
  uint64_t agents_dropped() const { return agents_dropped_; }

 private:
  Pipeline(std::ostream& out, baseline::BaselineStore store,
           std::optional<verify::StreamVerifier> verifier, PipelineOptions options)
      : writer_(out, std::exchange(options.stamper, std::nullopt)),
        store_(std::move(store)),
        verifier_(std::move(verifier)),
        options_(std::move(options)) {}
  struct Agent {
    std::string name;
    std::string role;
    bool named = false;       // from an AGENT record, not a placeholder
    uint64_t records = 0;     // not yet in the registry
    baseline::BaselineStore::AgentRef baseline;  // for `name`
    // Committed records learnt from whose checkpoint is not decided yet
    // (seq bounds, 0: none): a tampered verdict over them taints the baseline.
    uint64_t learnt_first = 0;
    uint64_t learnt_last = 0;
  };
  Agent* AgentFor(uint32_t agent_id);  // nullptr past max_agents
  static void Name(Agent& agent, const std::string& name);
  // The name an AGENT record gives (no-op for other records or an empty name).
  static void NameFrom(const records::Record& rec, Agent& agent);
  Status RegisterMetrics(metrics::Registry& registry);
  // Stamps `line` in place (so a sink gets the same text) and prints it.
  void Emit(std::string& line);
  void Emit(std::string&& line) { Emit(line); }
  // `from`: the record that raised it (none for pool comparisons).
  void EmitAlert(const baseline::Anomaly& a, const records::Record* from = nullptr);
  void Baseline(const records::Record& rec, Agent& agent, uint64_t real_ns);
  void DrainVerifier();
  void TickSteps(uint64_t mono_ns, uint64_t real_ns);
  // A finding vigild makes itself (not the verifier): a line and a count.
  void EmitFinding(std::string_view kind, uint64_t seq, const std::string& reason,
                   nlohmann::json extra = nlohmann::json::object());
  // After a verdict: reports the agents whose baselines learnt from records
  // a tampered checkpoint condemns, and forgets the decided seqs.
  void TrackLearnt(const verify::CheckpointVerdict& v);

  LineWriter writer_;  // holds the stamper
  baseline::BaselineStore store_;
  std::optional<verify::StreamVerifier> verifier_;
  PipelineOptions options_;
  LineSink verdict_sink_;
  std::unordered_map<uint32_t, Agent> agents_;  // never erased: pointers stay valid
  // The agent of the previous record: records come in bursts per agent.
  uint32_t last_agent_id_ = 0;
  Agent* last_agent_ = nullptr;
  std::array<uint64_t, VIGIL_EV_NR_TYPES> type_counts_{};  // not yet in the registry
  uint64_t unattested_count_ = 0;
  std::vector<baseline::Anomaly> anomalies_;  // reused per record
  uint64_t next_pool_ns_ = 0;
  std::set<std::pair<std::string, int>> pool_outliers_;  // (agent, feature) outlying now
  uint64_t alerts_ = 0;
  uint64_t format_errors_ = 0;
  uint64_t agents_dropped_ = 0;
  verify::VerifierCounters last_counters_;
  std::optional<LivenessMonitor> liveness_;  // with the verifier

  struct Metrics {
    metrics::Counter* records = nullptr;      // {type}
    metrics::Counter* unattested = nullptr;
    metrics::Counter* decode_errors = nullptr;
    metrics::Counter* checkpoints = nullptr;  // {verdict}
    metrics::Counter* findings = nullptr;     // {kind}
    metrics::Counter* alerts = nullptr;       // {kind}
    metrics::Counter* chained = nullptr;
    metrics::Counter* agent_records = nullptr;  // {agent}
    metrics::Counter* agent_alerts = nullptr;   // {agent}
    metrics::Gauge* agent_watching = nullptr;   // {agent}
    metrics::Gauge* agents = nullptr;
    metrics::Gauge* anchored_seq = nullptr;
    metrics::Counter* attested_loss = nullptr;  // {kind}
    metrics::Gauge* build_info = nullptr;       // {version, abi}
    metrics::Gauge* last_verdict = nullptr;
    metrics::Gauge* log_bytes = nullptr;
    metrics::Gauge* log_max_bytes = nullptr;
    metrics::Gauge* log_fill = nullptr;
    metrics::Counter* log_refused = nullptr;
    metrics::Counter* log_trimmed = nullptr;
    metrics::Counter* instance_changes = nullptr;
    metrics::Gauge* stalled = nullptr;
  } m_;
};

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_PIPELINE_H_
