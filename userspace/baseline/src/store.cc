#include "vigil/baseline/store.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace vigil::baseline {

namespace {

constexpr double kMadToSigma = 1.4826;

// Median of v (the lower middle element for an even count, like the sketch).
double MedianOf(std::vector<double>& v) {
  const size_t mid = (v.size() - 1) / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(mid), v.end());
  return v[mid];
}

}  // namespace

std::string_view FeatureName(Feature feature) {
  switch (feature) {
    case Feature::kCpuPerExec:
      return "cpu_per_exec";
    case Feature::kLifetime:
      return "lifetime";
    case Feature::kMaxRss:
      return "max_rss";
    case Feature::kFaultRate:
      return "fault_rate";
    case Feature::kCtxSwitchRate:
      return "ctx_switch_rate";
    case Feature::kSyscallRate:
      return "syscall_rate";
    case Feature::kIpc:
      return "ipc";
  }
  return "unknown";
}

std::optional<Feature> FeatureFromName(std::string_view name) {
  for (Feature f : kAllFeatures) {
    if (FeatureName(f) == name) return f;
  }
  return std::nullopt;
}

std::string_view ScoreDomainName(ScoreDomain domain) {
  return domain == ScoreDomain::kLog ? "log" : "linear";
}

std::string_view PhaseName(Phase phase) {
  return phase == Phase::kWatching ? "watching" : "learning";
}

std::string_view AnomalyKindName(AnomalyKind kind) {
  switch (kind) {
    case AnomalyKind::kOutlier:
      return "outlier";
    case AnomalyKind::kNewExecutable:
      return "new_executable";
    case AnomalyKind::kPoolOutlier:
      return "pool_outlier";
  }
  return "unknown";
}

nlohmann::json AnomalyToJson(const Anomaly& a) {
  nlohmann::json j;
  j["kind"] = AnomalyKindName(a.kind);
  j["agent"] = a.agent;
  j["role"] = a.role;
  j["timestamp_ns"] = a.timestamp_ns;
  if (a.kind == AnomalyKind::kNewExecutable) {
    j["executable"] = a.executable;
    return j;
  }
  if (a.feature) j["feature"] = FeatureName(*a.feature);
  j["value"] = a.value;
  j["score"] = a.score;
  j["threshold"] = a.threshold;
  const BaselineSummary& b = a.baseline;
  j["baseline"] = {{"samples", b.samples}, {"mean", b.mean},
                   {"mad_log", b.mad_log}, {"domain", ScoreDomainName(b.domain)},
                   {"stddev", b.stddev},   {"min", b.min},
                   {"max", b.max},         {"median", b.median},
                   {"mad", b.mad},         {"scale", b.scale},
                   {"p05", b.p05},         {"p95", b.p95},
                   {"ewma", b.ewma}};
  return j;
}

StateStatus BaselineConfig::Validate() const {
  auto bad = [](const char* field, const char* why) {
    return StateStatus(StateCode::kInvalidConfig, field, why);
  };
  if (learn_samples < 1) return bad("learn_samples", "must be >= 1");
  if (!std::isfinite(threshold) || threshold <= 0) {
    return bad("threshold", "must be finite and > 0");
  }
  if (!(sketch_alpha >= DdSketch::kMinAlpha && sketch_alpha <= DdSketch::kMaxAlpha)) {
    return bad("sketch_alpha", "must be in [1e-4, 0.5]");
  }
  if (sketch_max_bins < 16 || sketch_max_bins > 65536) {
    return bad("sketch_max_bins", "must be in [16, 65536]");
  }
  if (!std::isfinite(ewma.half_life) || ewma.half_life <= 0 ||
      (ewma.mode != Ewma::Mode::kSamples && ewma.mode != Ewma::Mode::kTime)) {
    return bad("ewma", "half_life must be finite and > 0, mode known");
  }
  for (ScoreDomain d : score_domain) {
    if (d != ScoreDomain::kLinear && d != ScoreDomain::kLog) {
      return bad("score_domain", "unknown domain");
    }
  }
  if (summary_refresh < 1) return bad("summary_refresh", "must be >= 1");
  for (double m : min_mad) {
    if (!std::isfinite(m) || m <= 0) return bad("min_mad", "must be > 0");
  }
  if (pool_min_agents < 3) return bad("pool_min_agents", "must be >= 3");
  if (!std::isfinite(pool_threshold) || pool_threshold <= 0) {
    return bad("pool_threshold", "must be finite and > 0");
  }
  if (!std::isfinite(pool_min_relative_mad) || pool_min_relative_mad < 0) {
    return bad("pool_min_relative_mad", "must be finite and >= 0");
  }
  if (max_agents < 1) return bad("max_agents", "must be >= 1");
  return StateStatus::Ok();
}

StateResult<BaselineStore> BaselineStore::Create(const BaselineConfig& config) {
  StateStatus s = config.Validate();
  if (!s.ok()) return s;
  return BaselineStore(config);
}

BaselineStore::FeatureState BaselineStore::NewFeature() const {
  FeatureState fs;
  fs.ewma = Ewma(config_.ewma);
  fs.sketch = DdSketch(config_.sketch_alpha, config_.sketch_max_bins);
  return fs;
}

BaselineStore::AgentState* BaselineStore::FindOrCreate(std::string_view agent,
                                                       std::string_view role,
                                                       uint64_t timestamp_ns) {
  auto it = agents_.find(agent);
  if (it == agents_.end()) {
    if (agents_.size() >= config_.max_agents) {
      ++rejected_agents_;
      return nullptr;
    }
    AgentState a;
    a.role = std::string(role);
    a.first_ns = a.last_ns = timestamp_ns;
    for (FeatureState& fs : a.features) fs = NewFeature();
    it = agents_.emplace(std::string(agent), std::move(a)).first;
  }
  Touch(it->second, role, timestamp_ns);
  return &it->second;
}

void BaselineStore::Touch(AgentState& a, std::string_view role, uint64_t timestamp_ns) {
  if (a.role != role) a.role = std::string(role);  // moved to another pool
  a.last_ns = std::max(a.last_ns, timestamp_ns);
}

const BaselineStore::AgentState* BaselineStore::Find(std::string_view agent) const {
  auto it = agents_.find(agent);
  return it == agents_.end() ? nullptr : &it->second;
}

bool BaselineStore::LearningDone(uint64_t samples, uint64_t first_ns, uint64_t now) const {
  const uint64_t elapsed = now > first_ns ? now - first_ns : 0;
  return samples >= config_.learn_samples && elapsed >= config_.learn_duration_ns;
}

void BaselineStore::Learn(FeatureState& fs, double value, uint64_t timestamp_ns) const {
  if (fs.stats.count() == 0) fs.first_ns = fs.last_ns = timestamp_ns;
  fs.last_ns = std::max(fs.last_ns, timestamp_ns);
  fs.stats.Add(value);
  fs.ewma.Add(value, timestamp_ns);
  (void)fs.sketch.Add(value);  // value was checked: finite and >= 0
}

void BaselineStore::Refresh(FeatureState& fs, Feature feature) const {
  const size_t fi = FeatureIndex(feature);
  fs.median = fs.sketch.Quantile(0.5).value_or(0.0);
  // The log-domain MAD only where it is scored (half a refresh's cost);
  // summaries compute it when they need it.
  if (config_.score_domain[fi] == ScoreDomain::kLog) {
    const auto mads = fs.sketch.MadAndMadLog(config_.min_mad[fi]);
    fs.mad = mads ? mads->first : 0.0;
    fs.mad_log = mads ? mads->second : 0.0;
  } else {
    fs.mad = fs.sketch.Mad().value_or(0.0);
    fs.mad_log = 0.0;
  }
  fs.since_refresh = 0;
}

double BaselineStore::Score(const FeatureState& fs, Feature feature, double value) const {
  const size_t fi = FeatureIndex(feature);
  if (config_.score_domain[fi] == ScoreDomain::kLog) {
    const double c = config_.min_mad[fi];
    const double scale = kMadToSigma * std::max(fs.mad_log, 2.0 * config_.sketch_alpha);
    if (fs.log_center_of != fs.median) {
      fs.log_center = std::log(fs.median + c);
      fs.log_center_of = fs.median;
    }
    return std::fabs(std::log(value + c) - fs.log_center) / scale;
  }
  return std::fabs(value - fs.median) / Scale(feature, fs.median, fs.mad);
}

double BaselineStore::Scale(Feature feature, double median, double mad) const {
  const double floor_resolution = 2.0 * config_.sketch_alpha * std::fabs(median);
  return kMadToSigma * std::max({mad, floor_resolution, config_.min_mad[FeatureIndex(feature)]});
}

BaselineSummary BaselineStore::Summarize(const FeatureState& fs, Feature feature) const {
  BaselineSummary s;
  s.phase = fs.phase;
  s.samples = fs.stats.count();
  s.mean = fs.stats.mean();
  s.stddev = fs.stats.stddev();
  s.min = fs.stats.min();
  s.max = fs.stats.max();
  const size_t fi = FeatureIndex(feature);
  if (fs.phase == Phase::kWatching) {
    s.median = fs.median;
    s.mad = fs.mad;
    s.mad_log = config_.score_domain[fi] == ScoreDomain::kLog
                    ? fs.mad_log
                    : fs.sketch.MadLog(config_.min_mad[fi]).value_or(0.0);
  } else {
    s.median = fs.sketch.Quantile(0.5).value_or(0.0);
    s.mad = fs.sketch.Mad().value_or(0.0);
    s.mad_log = fs.sketch.MadLog(config_.min_mad[fi]).value_or(0.0);
  }
  s.domain = config_.score_domain[fi];
  s.scale = s.domain == ScoreDomain::kLog
                ? kMadToSigma * std::max(s.mad_log, 2.0 * config_.sketch_alpha)
                : Scale(feature, s.median, s.mad);
  s.p05 = fs.sketch.Quantile(0.05).value_or(0.0);
  s.p95 = fs.sketch.Quantile(0.95).value_or(0.0);
  s.ewma = fs.ewma.mean();
  return s;
}

std::optional<Anomaly> BaselineStore::Observe(std::string_view agent, std::string_view role,
                                              Feature feature, double value,
                                              uint64_t timestamp_ns) {
  if (!std::isfinite(value) || value < 0 || FeatureIndex(feature) >= kFeatureCount) {
    ++rejected_values_;
    return std::nullopt;
  }
  AgentState* a = FindOrCreate(agent, role, timestamp_ns);
  if (a == nullptr) return std::nullopt;
  return ObserveIn(*a, agent, feature, value, timestamp_ns);
}

void BaselineStore::ObserveMany(std::string_view agent, std::string_view role,
                                std::span<const std::pair<Feature, double>> values,
                                uint64_t timestamp_ns, std::vector<Anomaly>& out) {
  AgentRef ref;
  ObserveMany(ref, agent, role, values, timestamp_ns, out);
}

uint64_t BaselineStore::NextGeneration() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

BaselineStore::AgentState* BaselineStore::Resolve(AgentRef& ref, std::string_view agent,
                                                  std::string_view role, uint64_t timestamp_ns) {
  if (ref.state_ == nullptr || ref.generation_ != generation_) {
    ref.state_ = FindOrCreate(agent, role, timestamp_ns);
    ref.generation_ = generation_;
    return ref.state_;
  }
  Touch(*ref.state_, role, timestamp_ns);
  return ref.state_;
}

void BaselineStore::ObserveMany(AgentRef& ref, std::string_view agent, std::string_view role,
                                std::span<const std::pair<Feature, double>> values,
                                uint64_t timestamp_ns, std::vector<Anomaly>& out) {
  AgentState* a = nullptr;
  for (const auto& [feature, value] : values) {
    if (!std::isfinite(value) || value < 0 || FeatureIndex(feature) >= kFeatureCount) {
      ++rejected_values_;
      continue;
    }
    if (a == nullptr) a = Resolve(ref, agent, role, timestamp_ns);
    if (a == nullptr) return;
    if (auto anomaly = ObserveIn(*a, agent, feature, value, timestamp_ns)) {
      out.push_back(std::move(*anomaly));
    }
  }
}

std::optional<Anomaly> BaselineStore::ObserveIn(AgentState& agent_state, std::string_view agent,
                                                Feature feature, double value,
                                                uint64_t timestamp_ns) {
  AgentState* a = &agent_state;
  FeatureState& fs = a->features[FeatureIndex(feature)];
  if (fs.phase == Phase::kLearning) {
    Learn(fs, value, timestamp_ns);
    if (LearningDone(fs.stats.count(), fs.first_ns, timestamp_ns)) {
      fs.phase = Phase::kWatching;
      Refresh(fs, feature);
    }
    return std::nullopt;
  }
  const double score = Score(fs, feature, value);
  if (score >= config_.threshold) {
    ++fs.anomalies;
    ++a->anomalies;
    Anomaly out;
    out.kind = AnomalyKind::kOutlier;
    out.agent = std::string(agent);
    out.role = a->role;
    out.feature = feature;
    out.value = value;
    out.score = score;
    out.threshold = config_.threshold;
    out.timestamp_ns = timestamp_ns;
    out.baseline = Summarize(fs, feature);
    return out;
  }
  if (config_.adapt_while_watching) {
    Learn(fs, value, timestamp_ns);
    // A refresh costs a few microseconds (two bisections over the bins); new
    // samples move the median by about since_refresh / count of the spread.
    const uint64_t interval = std::min<uint64_t>(
        std::max<uint64_t>(config_.summary_refresh, fs.stats.count() / 16), UINT32_MAX);
    if (++fs.since_refresh >= interval) Refresh(fs, feature);
  }
  return std::nullopt;
}

std::vector<Anomaly> BaselineStore::ObserveExit(const ExitSample& s) {
  std::vector<Anomaly> out;
  auto observe = [&](Feature f, double v) {
    if (std::optional<Anomaly> a = Observe(s.agent, s.role, f, v, s.timestamp_ns)) {
      out.push_back(std::move(*a));
    }
  };
  observe(Feature::kCpuPerExec, static_cast<double>(s.cpu_ns));
  observe(Feature::kLifetime, static_cast<double>(s.lifetime_ns));
  observe(Feature::kMaxRss, static_cast<double>(s.max_rss_bytes));
  if (s.lifetime_ns > 0) {
    const double seconds = static_cast<double>(s.lifetime_ns) / 1e9;
    observe(Feature::kFaultRate, static_cast<double>(s.faults) / seconds);
    observe(Feature::kCtxSwitchRate, static_cast<double>(s.ctx_switches) / seconds);
    observe(Feature::kSyscallRate, static_cast<double>(s.syscalls) / seconds);
  }
  if (s.cycles && s.instructions && *s.cycles > 0) {
    observe(Feature::kIpc, static_cast<double>(*s.instructions) / static_cast<double>(*s.cycles));
  }
  return out;
}

std::optional<Anomaly> BaselineStore::ObserveExecutable(std::string_view agent,
                                                        std::string_view role,
                                                        std::string_view executable,
                                                        uint64_t timestamp_ns) {
  AgentRef ref;
  return ObserveExecutable(ref, agent, role, executable, timestamp_ns);
}

std::optional<Anomaly> BaselineStore::ObserveExecutable(AgentRef& ref, std::string_view agent,
                                                        std::string_view role,
                                                        std::string_view executable,
                                                        uint64_t timestamp_ns) {
  AgentState* a = Resolve(ref, agent, role, timestamp_ns);
  if (a == nullptr) return std::nullopt;
  ++a->exe_observations;
  auto it = std::lower_bound(a->executables.begin(), a->executables.end(), executable);
  const bool known = it != a->executables.end() && *it == executable;
  const bool room = a->executables.size() < config_.max_executables_per_agent;
  if (!known && room) a->executables.insert(it, std::string(executable));
  if (a->exe_phase == Phase::kLearning) {
    if (LearningDone(a->exe_observations, a->first_ns, timestamp_ns)) {
      a->exe_phase = Phase::kWatching;
    }
    return std::nullopt;
  }
  if (known) return std::nullopt;
  ++a->anomalies;
  Anomaly out;
  out.kind = AnomalyKind::kNewExecutable;
  out.agent = std::string(agent);
  out.role = a->role;
  out.executable = std::string(executable);
  out.timestamp_ns = timestamp_ns;
  out.baseline.phase = Phase::kWatching;
  out.baseline.samples = a->executables.size();
  return out;
}

std::vector<Anomaly> BaselineStore::EvaluatePools(uint64_t timestamp_ns) const {
  // role -> agents, in name order so the output is deterministic.
  std::map<std::string_view, std::vector<std::pair<std::string_view, const AgentState*>>> roles;
  for (const auto& [name, a] : agents_) roles[a.role].emplace_back(name, &a);
  std::vector<Anomaly> out;
  std::vector<double> medians;
  std::vector<double> deviations;
  for (auto& [role, members] : roles) {
    if (members.size() < config_.pool_min_agents) continue;
    std::sort(members.begin(), members.end());
    for (Feature f : kAllFeatures) {
      const size_t fi = FeatureIndex(f);
      medians.clear();
      for (const auto& [name, a] : members) {
        if (a->features[fi].phase == Phase::kWatching) {
          medians.push_back(a->features[fi].median);
        }
      }
      if (medians.size() < config_.pool_min_agents) continue;
      std::vector<double> work = medians;
      const double pool_median = MedianOf(work);
      deviations.clear();
      for (double m : medians) deviations.push_back(std::fabs(m - pool_median));
      const double pool_mad = MedianOf(deviations);
      const double scale =
          kMadToSigma * std::max({pool_mad, config_.pool_min_relative_mad * std::fabs(pool_median),
                                  config_.min_mad[fi]});
      for (const auto& [name, a] : members) {
        const FeatureState& fs = a->features[fi];
        if (fs.phase != Phase::kWatching) continue;
        const double score = std::fabs(fs.median - pool_median) / scale;
        if (score < config_.pool_threshold) continue;
        Anomaly an;
        an.kind = AnomalyKind::kPoolOutlier;
        an.agent = std::string(name);
        an.role = std::string(role);
        an.feature = f;
        an.value = fs.median;
        an.score = score;
        an.threshold = config_.pool_threshold;
        an.timestamp_ns = timestamp_ns;
        an.baseline.phase = Phase::kWatching;
        an.baseline.samples = medians.size();
        an.baseline.median = pool_median;
        an.baseline.mad = pool_mad;
        an.baseline.scale = scale;
        out.push_back(std::move(an));
      }
    }
  }
  return out;
}

std::optional<PoolSummary> BaselineStore::Pool(std::string_view role, Feature feature) const {
  PoolSummary p;
  p.role = std::string(role);
  p.feature = feature;
  p.sketch = DdSketch(config_.sketch_alpha, config_.sketch_max_bins);
  std::vector<double> medians;
  const size_t fi = FeatureIndex(feature);
  for (const auto& [name, a] : agents_) {
    if (a.role != role) continue;
    const FeatureState& fs = a.features[fi];
    if (fs.stats.count() == 0) continue;
    ++p.agents;
    p.stats.Merge(fs.stats);
    if (!p.sketch.Merge(fs.sketch)) return std::nullopt;  // cannot happen
    if (fs.phase == Phase::kWatching) medians.push_back(fs.median);
  }
  if (p.agents == 0) return std::nullopt;
  p.watching_agents = static_cast<uint32_t>(medians.size());
  if (!medians.empty()) {
    std::vector<double> work = medians;
    p.median_of_medians = MedianOf(work);
    for (double& m : medians) m = std::fabs(m - p.median_of_medians);
    p.mad_of_medians = MedianOf(medians);
  }
  return p;
}

std::optional<BaselineSummary> BaselineStore::Summary(std::string_view agent,
                                                      Feature feature) const {
  const AgentState* a = Find(agent);
  if (a == nullptr) return std::nullopt;
  const FeatureState& fs = a->features[FeatureIndex(feature)];
  if (fs.stats.count() == 0) return std::nullopt;
  return Summarize(fs, feature);
}

std::vector<std::string> BaselineStore::AgentNames() const {
  std::vector<std::string> names;
  names.reserve(agents_.size());
  for (const auto& [name, a] : agents_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::string> BaselineStore::AgentRole(std::string_view agent) const {
  const AgentState* a = Find(agent);
  if (a == nullptr) return std::nullopt;
  return a->role;
}

std::vector<std::string> BaselineStore::Executables(std::string_view agent) const {
  const AgentState* a = Find(agent);
  if (a == nullptr) return {};
  return a->executables;
}

std::optional<Phase> BaselineStore::ExecutablesPhase(std::string_view agent) const {
  const AgentState* a = Find(agent);
  if (a == nullptr) return std::nullopt;
  return a->exe_phase;
}

std::optional<Activity> BaselineStore::AgentActivity(std::string_view agent) const {
  const AgentState* a = Find(agent);
  if (a == nullptr) return std::nullopt;
  return Activity{a->first_ns, a->last_ns, a->anomalies, a->exe_observations};
}

std::optional<Activity> BaselineStore::FeatureActivity(std::string_view agent,
                                                       Feature feature) const {
  const AgentState* a = Find(agent);
  if (a == nullptr || FeatureIndex(feature) >= kFeatureCount) return std::nullopt;
  const FeatureState& fs = a->features[FeatureIndex(feature)];
  if (fs.stats.count() == 0) return std::nullopt;
  return Activity{fs.first_ns, fs.last_ns, fs.anomalies, fs.stats.count()};
}

std::optional<double> BaselineStore::Quantile(std::string_view agent, Feature feature,
                                              double q) const {
  const AgentState* a = Find(agent);
  if (a == nullptr || FeatureIndex(feature) >= kFeatureCount) return std::nullopt;
  return a->features[FeatureIndex(feature)].sketch.Quantile(q);
}

bool BaselineStore::ResetAgent(std::string_view agent) {
  auto it = agents_.find(agent);
  if (it == agents_.end()) return false;
  agents_.erase(it);
  generation_ = NextGeneration();
  return true;
}

}  // namespace vigil::baseline
