// BaselineStore: per-agent behavioral baselines, anomaly scores, pooled
// statistics per role, and the JSON state that survives restarts.
//
// Model. An agent is identified by name (stable across process restarts) and
// belongs to a role. For each (agent, feature) the store keeps Welford
// moments, an EWMA and a DDSketch (see ddsketch.h for its error bound).
//
// Learning, then watching. A (agent, feature) learns until it has
// learn_samples samples AND learn_duration_ns have passed since its first one
// (set either to 0 to use the other alone; learn_samples is at least 1). While
// learning nothing is scored. Then each value x gets the robust z score
//     score = |x - median| / (1.4826 * MAD')
//     MAD'  = max(MAD, 2 * alpha * median, min_mad[feature])
// where median and MAD come from the sketch (MAD from its interpolated CDF,
// error <= alpha * (3 median + 2 MAD), see ddsketch.h), so the MAD is
// floored at the sketch's resolution and at a per-feature absolute floor (a
// constant feature would otherwise make every tiny change infinite).
// 1.4826 * MAD estimates the standard deviation of normal data, so the score
// reads like a z score. That is the default (ScoreDomain::kLinear); per
// feature, the same robust z can be computed on ln(x + c) instead
// (ScoreDomain::kLog, see below), which suits right-skewed features.
// score >= threshold gives an Anomaly naming the feature. Values below the
// threshold keep refining the baseline when adapt_while_watching is set (the
// median and MADs are recomputed after max(summary_refresh, samples / 16)
// new samples, i.e. when the new ones could have moved them); anomalous
// values never enter it, so a lasting shift keeps alerting until the
// operator calls ResetAgent.
//
// Executables. The set of executables per agent is learnt the same way
// (learn_samples observations and learn_duration_ns); afterwards a path not
// in the set gives one kNewExecutable anomaly and joins the set (at most
// max_executables_per_agent paths are kept; beyond that every unknown path
// alerts).
//
// Pools (the "Byzantine" test). EvaluatePools compares, for each role and
// feature, every watching agent's median with the median of all those
// agents' medians: score = |m_agent - median(m)| / (1.4826 * MAD'(m)) with
// MAD' floored at pool_min_relative_mad * median(m) and min_mad[feature]. It
// needs pool_min_agents watching agents; the median/MAD of medians tolerates
// fewer than half of the agents misbehaving. Pool() gives the merged Welford
// and sketch of all samples of a role (merge is exact for the sketch).
//
// Inputs that cannot be a feature value (NaN, infinite, negative) are dropped
// and counted in rejected_values(); agents beyond max_agents are dropped and
// counted in rejected_agents().
//
// State. Serialize() writes the whole store as JSON
//   {"format": "vigil-baseline-state", "version": 1, ...}
// and Parse() reads it back, checking types, ranges, counts, finiteness and
// the sketch invariants, returning a StateStatus naming the first bad member
// as a JSON pointer. Restore() applies a parsed state all or nothing.
#ifndef VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STORE_H_
#define VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STORE_H_

#include <array>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vigil/baseline/ddsketch.h"
#include "vigil/baseline/feature.h"
#include "vigil/baseline/state_status.h"
#include "vigil/baseline/stats.h"

namespace vigil::baseline {

inline constexpr std::string_view kStateFormat = "vigil-baseline-state";
inline constexpr int kStateVersion = 1;

// Absolute MAD floors, in each feature's unit (feature.h): 0.1 ms of CPU,
// 1 ms of lifetime, 64 KiB of RSS, 1 event/s for rates, 0.01 IPC.
inline constexpr std::array<double, kFeatureCount> kDefaultMinMad = {1e5, 1e6, 65536.0, 1.0,
                                                                     1.0, 1.0, 0.01};

// Where the robust z is computed. kLinear is the score above. kLog scores
// y = ln(x + c) with c = min_mad[feature]: score = |y - ln(median + c)| /
// (1.4826 * max(MAD_y, 2 alpha)), MAD_y from DdSketch::MadLog (error about
// 3 alpha). For multiplicative, right-skewed features (CPU time, lifetime,
// RSS) kLog is symmetric in ratios (x3 and /3 score the same) and has far
// fewer tail alerts: on lognormal data with sigma s, a linear score of 6 is
// only a ~4-sigma event, a log score of 6 is a 6-sigma one. A changed c takes
// effect at the next summary refresh.
enum class ScoreDomain : uint8_t { kLinear = 0, kLog = 1 };
std::string_view ScoreDomainName(ScoreDomain domain);

struct BaselineConfig {
  uint64_t learn_samples = 100;  // >= 1
  uint64_t learn_duration_ns = 0;
  double threshold = 6.0;  // robust z; > 0
  double sketch_alpha = DdSketch::kDefaultAlpha;
  uint32_t sketch_max_bins = DdSketch::kDefaultMaxBins;  // 16 .. 65536
  Ewma::Params ewma;
  uint32_t summary_refresh = 64;  // >= 1; see "Learning, then watching"
  bool adapt_while_watching = true;
  std::array<double, kFeatureCount> min_mad = kDefaultMinMad;  // > 0
  std::array<ScoreDomain, kFeatureCount> score_domain = {
      ScoreDomain::kLinear, ScoreDomain::kLinear, ScoreDomain::kLinear, ScoreDomain::kLinear,
      ScoreDomain::kLinear, ScoreDomain::kLinear, ScoreDomain::kLinear};
  uint32_t pool_min_agents = 5;         // >= 3
  double pool_threshold = 5.0;          // > 0
  double pool_min_relative_mad = 0.05;  // >= 0
  uint32_t max_executables_per_agent = 1024;
  uint32_t max_agents = 100000;

  // kInvalidConfig naming the field, or OK.
  StateStatus Validate() const;
};

enum class Phase : uint8_t { kLearning = 0, kWatching = 1 };
std::string_view PhaseName(Phase phase);

enum class AnomalyKind : uint8_t {
  kOutlier = 0,        // a value far from the agent's own baseline
  kNewExecutable = 1,  // an executable the agent never ran while learning
  kPoolOutlier = 2,    // an agent far from the other agents of its role
};
std::string_view AnomalyKindName(AnomalyKind kind);

// A baseline as seen from outside: an agent's feature or a pool.
struct BaselineSummary {
  Phase phase = Phase::kLearning;
  uint64_t samples = 0;  // for a pool: agents compared
  double mean = 0;
  double stddev = 0;
  double min = 0;
  double max = 0;
  double median = 0;
  double mad = 0;
  double mad_log = 0;  // MAD of ln(x + min_mad) (see ScoreDomain)
  ScoreDomain domain = ScoreDomain::kLinear;
  double scale = 0;  // 1.4826 * MAD' in `domain` (the score's denominator)
  double p05 = 0;
  double p95 = 0;
  double ewma = 0;
};

struct Anomaly {
  AnomalyKind kind = AnomalyKind::kOutlier;
  std::string agent;
  std::string role;
  std::optional<Feature> feature;  // absent for kNewExecutable
  std::string executable;          // kNewExecutable only
  double value = 0;                // kPoolOutlier: the agent's median
  double score = 0;
  double threshold = 0;
  uint64_t timestamp_ns = 0;
  BaselineSummary baseline;  // the agent's (kOutlier) or the pool's
};

// {"kind":"outlier","agent":..,"role":..,"feature":..,"value":..,...}
nlohmann::json AnomalyToJson(const Anomaly& anomaly);

// What the BPF exit record carries; ObserveExit derives the features.
struct ExitSample {
  std::string_view agent;
  std::string_view role;
  uint64_t timestamp_ns = 0;
  uint64_t cpu_ns = 0;
  uint64_t lifetime_ns = 0;
  uint64_t max_rss_bytes = 0;
  uint64_t faults = 0;
  uint64_t ctx_switches = 0;
  uint64_t syscalls = 0;
  std::optional<uint64_t> cycles;        // absent without hardware counters
  std::optional<uint64_t> instructions;  // absent without hardware counters
};

// Bookkeeping of an agent or of one of its features (for `vigilctl baseline
// show`): timestamps as passed to Observe*, anomalies reported so far.
struct Activity {
  uint64_t first_ns = 0;      // first sample (agent: first observation of any kind)
  uint64_t last_ns = 0;       // latest sample (agent: latest observation)
  uint64_t anomalies = 0;     // feature: its outliers; agent: outliers + new executables
  uint64_t observations = 0;  // feature: samples; agent: executions observed
};

struct PoolSummary {
  std::string role;
  Feature feature = Feature::kCpuPerExec;
  uint32_t agents = 0;           // agents with samples of the feature
  uint32_t watching_agents = 0;  // the ones that take part in the outlier test
  double median_of_medians = 0;
  double mad_of_medians = 0;
  RunningStats stats;  // all samples of all agents, merged (Chan)
  DdSketch sketch;     // all samples of all agents, merged
};

// Thread-safety: not synchronized. Const methods may run concurrently with
// each other; anything else needs external locking (vigild owns one store
// per aggregation thread).
class BaselineStore {
 private:
  struct AgentState;

 public:
  static StateResult<BaselineStore> Create(const BaselineConfig& config);

  // A caller's handle on one agent's state, so observing the same agent
  // record after record skips the lookup by name. Reset() it when the name
  // it was used with changes; the store itself notices when it dropped or
  // replaced agents since (ResetAgent, Restore) and looks the name up again.
  class AgentRef {
   public:
    void Reset() { state_ = nullptr; }

   private:
    friend class BaselineStore;
    AgentState* state_ = nullptr;
    uint64_t generation_ = 0;
  };

  BaselineStore(BaselineStore&&) = default;
  BaselineStore& operator=(BaselineStore&&) = default;
  // Move-only: a store with 10k agents is tens of MB; copy through
  // Serialize/Parse if a snapshot is really wanted.
  BaselineStore(const BaselineStore&) = delete;
  BaselineStore& operator=(const BaselineStore&) = delete;

  // One value of one feature. Learns, or scores and returns an anomaly.
  std::optional<Anomaly> Observe(std::string_view agent, std::string_view role, Feature feature,
                                 double value, uint64_t timestamp_ns);
  // Several features of one record for one agent: the same as calling
  // Observe for each, with one agent lookup. Anomalies are appended to `out`.
  void ObserveMany(std::string_view agent, std::string_view role,
                   std::span<const std::pair<Feature, double>> values, uint64_t timestamp_ns,
                   std::vector<Anomaly>& out);
  // The same through `ref`, which must have been used with this agent name
  // only (or be new).
  void ObserveMany(AgentRef& ref, std::string_view agent, std::string_view role,
                   std::span<const std::pair<Feature, double>> values, uint64_t timestamp_ns,
                   std::vector<Anomaly>& out);
  // All features of one exit record: rates are per second of lifetime and
  // skipped when the lifetime is 0; IPC only when both counters are present
  // and cycles > 0.
  std::vector<Anomaly> ObserveExit(const ExitSample& sample);
  // One exec of `executable` by `agent`.
  std::optional<Anomaly> ObserveExecutable(std::string_view agent, std::string_view role,
                                           std::string_view executable, uint64_t timestamp_ns);
  // The same through `ref` (see ObserveMany).
  std::optional<Anomaly> ObserveExecutable(AgentRef& ref, std::string_view agent,
                                           std::string_view role, std::string_view executable,
                                           uint64_t timestamp_ns);

  // Current pool outliers (stateless: call it periodically).
  std::vector<Anomaly> EvaluatePools(uint64_t timestamp_ns) const;
  std::optional<PoolSummary> Pool(std::string_view role, Feature feature) const;

  // Inspection, for `vigilctl baseline show`.
  std::optional<BaselineSummary> Summary(std::string_view agent, Feature feature) const;
  std::vector<std::string> AgentNames() const;  // sorted
  std::optional<std::string> AgentRole(std::string_view agent) const;
  std::vector<std::string> Executables(std::string_view agent) const;
  std::optional<Phase> ExecutablesPhase(std::string_view agent) const;
  // nullopt for an unknown agent, or a feature without samples.
  std::optional<Activity> AgentActivity(std::string_view agent) const;
  std::optional<Activity> FeatureActivity(std::string_view agent, Feature feature) const;
  // Quantile q in [0, 1] of an agent's feature from its sketch (error bound
  // in ddsketch.h); nullopt for an unknown agent, no samples or q out of range.
  std::optional<double> Quantile(std::string_view agent, Feature feature, double q) const;

  // Forgets an agent (it learns again from its next sample).
  bool ResetAgent(std::string_view agent);

  size_t agent_count() const { return agents_.size(); }
  uint64_t rejected_values() const { return rejected_values_; }
  uint64_t rejected_agents() const { return rejected_agents_; }
  const BaselineConfig& config() const { return config_; }

  // The whole store as JSON (deterministic: agents sorted by name).
  std::string Serialize() const;
  // The same text handed to `sink` in pieces of about `piece_bytes`, so a
  // large store is written without a copy of the whole text in memory.
  // Stops early, returning false, when `sink` returns false.
  bool SerializeTo(const std::function<bool(std::string_view)>& sink,
                   size_t piece_bytes = 256 * 1024) const;
  // A store from Serialize() output, using `config` for everything not in
  // the state; the state's sketch parameters must equal the config's.
  static StateResult<BaselineStore> Parse(std::string_view json, const BaselineConfig& config);
  // The same from a file of `size` bytes, read as it is parsed: the peak
  // memory is the store plus one agent's DOM, never the whole text.
  static StateResult<BaselineStore> ParseFile(std::FILE* file, uint64_t size,
                                              const BaselineConfig& config);
  // Replaces this store's contents with the parsed state, or changes nothing
  // and returns why not.
  StateStatus Restore(std::string_view json);

 private:
  struct FeatureState {
    Phase phase = Phase::kLearning;
    uint32_t since_refresh = 0;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
    uint64_t anomalies = 0;
    double median = 0;  // cached from the sketch while watching
    // log(median + c) for log-domain scores, and the median it was taken
    // for: one log per observation instead of two (not serialized).
    mutable double log_center = 0;
    mutable double log_center_of = -1;
    double mad = 0;
    double mad_log = 0;  // refreshed only when the feature is scored in the log domain
    RunningStats stats;
    Ewma ewma;
    DdSketch sketch;
  };
  struct AgentState {
    std::string role;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
    uint64_t anomalies = 0;
    Phase exe_phase = Phase::kLearning;
    uint64_t exe_observations = 0;
    std::vector<std::string> executables;  // sorted, unique
    std::array<FeatureState, kFeatureCount> features;
  };
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using AgentMap = std::unordered_map<std::string, AgentState, NameHash, std::equal_to<>>;

  explicit BaselineStore(const BaselineConfig& config) : config_(config) {}

  AgentState* FindOrCreate(std::string_view agent, std::string_view role, uint64_t timestamp_ns);
  // An agent seen again: its role as given now, its last time.
  static void Touch(AgentState& agent, std::string_view role, uint64_t timestamp_ns);
  // The agent `ref` points at, or FindOrCreate when the ref is new or stale.
  AgentState* Resolve(AgentRef& ref, std::string_view agent, std::string_view role,
                      uint64_t timestamp_ns);
  static uint64_t NextGeneration();
  std::optional<Anomaly> ObserveIn(AgentState& a, std::string_view agent, Feature feature,
                                   double value, uint64_t timestamp_ns);
  const AgentState* Find(std::string_view agent) const;
  FeatureState NewFeature() const;
  void Learn(FeatureState& fs, double value, uint64_t timestamp_ns) const;
  void Refresh(FeatureState& fs, Feature feature) const;
  double Score(const FeatureState& fs, Feature feature, double value) const;
  bool LearningDone(uint64_t samples, uint64_t first_ns, uint64_t now) const;
  double Scale(Feature feature, double median, double mad) const;
  BaselineSummary Summarize(const FeatureState& fs, Feature feature) const;

  struct ParseInput;  // serialize.cc: the text or the file, and its size
  static StateResult<BaselineStore> ParseWith(const ParseInput& input,
                                              const BaselineConfig& config);
  static StateStatus ParseFeature(const nlohmann::json& j, const std::string& path,
                                  const BaselineConfig& config, FeatureState& out);
  static StateStatus ParseAgent(const nlohmann::json& j, const std::string& path,
                                const BaselineConfig& config, std::string& name, AgentState& out);

  BaselineConfig config_;
  AgentMap agents_;
  // Changes whenever agents are dropped or replaced: AgentRefs taken before
  // are stale. Unique across stores, so a ref cannot pass in another store.
  uint64_t generation_ = NextGeneration();
  uint64_t rejected_values_ = 0;
  uint64_t rejected_agents_ = 0;
};

}  // namespace vigil::baseline

#endif  // VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STORE_H_
