#include "pipeline.h"

#include <cstddef>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/version.h"

namespace vigil::daemon {
namespace {

using nlohmann::json;
using baseline::Feature;

constexpr double kNsPerS = 1e9;

}  // namespace

std::string RoleOf(std::string_view agent_name) {
  const size_t at = agent_name.rfind('@');
  if (at == std::string_view::npos || at == 0) return std::string(agent_name);
  return std::string(agent_name.substr(0, at));
}

// One field of a record known to be a T (type and size checked): read in
// place, without copying the whole record as As<T>() does (once per record).
#define VIGIL_FIELD(T, bytes, field)                                            \
  ([&] {                                                                        \
    decltype(T::field) v;                                                       \
    std::memcpy(&v, (bytes).data() + offsetof(T, field), sizeof(v));            \
    return v;                                                                   \
  }())

Features FeaturesOf(const records::Record& rec) {
  Features out;
  const std::span<const uint8_t> b = rec.bytes();
  if (rec.type() == VIGIL_EV_EXIT && b.size() == sizeof(vigil_ev_exit)) {
    const uint64_t lifetime = VIGIL_FIELD(vigil_ev_exit, b, lifetime_ns);
    out.push_back({Feature::kCpuPerExec,
                   static_cast<double>(VIGIL_FIELD(vigil_ev_exit, b, utime_ns) +
                                       VIGIL_FIELD(vigil_ev_exit, b, stime_ns))});
    out.push_back({Feature::kLifetime, static_cast<double>(lifetime)});
    out.push_back(
        {Feature::kMaxRss, static_cast<double>(VIGIL_FIELD(vigil_ev_exit, b, maxrss_kb)) * 1024.0});
    if (lifetime > 0) {
      const double per_s = kNsPerS / static_cast<double>(lifetime);  // one division, two rates
      out.push_back({Feature::kFaultRate, static_cast<double>(VIGIL_FIELD(vigil_ev_exit, b, min_flt) +
                                                              VIGIL_FIELD(vigil_ev_exit, b, maj_flt)) *
                                              per_s});
      out.push_back({Feature::kCtxSwitchRate,
                     static_cast<double>(VIGIL_FIELD(vigil_ev_exit, b, nvcsw) +
                                         VIGIL_FIELD(vigil_ev_exit, b, nivcsw)) *
                         per_s});
    }
  } else if (rec.type() == VIGIL_EV_SAMPLE && b.size() == sizeof(vigil_ev_sample)) {
    const uint64_t interval = VIGIL_FIELD(vigil_ev_sample, b, interval_ns);
    if (interval == 0) return out;
    const double secs = static_cast<double>(interval) / kNsPerS;
    const auto flags = VIGIL_FIELD(vigil_ev_sample, b, flags);
    if (flags & VIGIL_SAMPLE_F_SYSCALLS) {
      out.push_back({Feature::kSyscallRate,
                     static_cast<double>(VIGIL_FIELD(vigil_ev_sample, b, syscalls)) / secs});
    }
    const uint64_t cycles = VIGIL_FIELD(vigil_ev_sample, b, cycles);
    if ((flags & VIGIL_SAMPLE_F_HW) && cycles > 0) {
      out.push_back({Feature::kIpc,
                     static_cast<double>(VIGIL_FIELD(vigil_ev_sample, b, instructions)) /
                         static_cast<double>(cycles)});
    }
  }
  return out;
}

#undef VIGIL_FIELD

Result<std::unique_ptr<Pipeline>> Pipeline::Create(std::ostream& out, metrics::Registry& registry,
                                                   baseline::BaselineStore store,
                                                   std::optional<verify::StreamVerifier> verifier,
                                                   PipelineOptions options) {
  std::unique_ptr<Pipeline> p(
      new Pipeline(out, std::move(store), std::move(verifier), std::move(options)));
  VIGIL_RETURN_IF_ERROR(p->RegisterMetrics(registry));
  if (p->verifier_) {
    p->liveness_.emplace(p->options_.liveness);
    p->liveness_->SetCovered(p->verifier_->anchor().last_seq);
  }
  if (!p->options_.real_clock) {
    p->options_.real_clock = [] {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull +
             static_cast<uint64_t>(ts.tv_nsec);
    };
  }
  return p;
}

Status Pipeline::RegisterMetrics(metrics::Registry& r) {
  VIGIL_ASSIGN_OR_RETURN(m_.records,
                         r.AddCounter("vigil_records_total", "Records received, by type", {"type"}));
  VIGIL_ASSIGN_OR_RETURN(
      m_.unattested,
      r.AddCounter("vigil_unattested_records_total",
                   "Records without the module's commitment (no module, or a refused commit)"));
  VIGIL_ASSIGN_OR_RETURN(m_.decode_errors,
                         r.AddCounter("vigil_decode_errors_total",
                                      "Ring buffer records that could not be decoded"));
  VIGIL_ASSIGN_OR_RETURN(m_.checkpoints,
                         r.AddCounter("vigil_checkpoints_total", "Checkpoint verdicts, by verdict",
                                      {"verdict"}));
  for (size_t i = 0; i < verify::kVerdictCount; ++i) {
    m_.checkpoints->Inc({std::string(verify::VerdictName(static_cast<verify::Verdict>(i)))}, 0);
  }
  VIGIL_ASSIGN_OR_RETURN(
      m_.findings, r.AddCounter("vigil_findings_total",
                                "Verifier findings outside a verdict (late, duplicate, conflict, "
                                "log), by kind",
                                {"kind"}));
  VIGIL_ASSIGN_OR_RETURN(
      m_.alerts,
      r.AddCounter("vigil_alerts_total", "Baseline anomalies reported, by kind", {"kind"}));
  VIGIL_ASSIGN_OR_RETURN(m_.chained,
                         r.AddCounter("vigil_chained_events_total",
                                      "Committed events folded into the recomputed chain"));
  VIGIL_ASSIGN_OR_RETURN(m_.agent_records,
                         r.AddCounter("vigil_agent_records_total", "Records per agent", {"agent"}));
  VIGIL_ASSIGN_OR_RETURN(
      m_.agent_alerts,
      r.AddCounter("vigil_agent_alerts_total", "Baseline anomalies per agent", {"agent"}));
  VIGIL_ASSIGN_OR_RETURN(
      m_.agent_watching,
      r.AddGauge("vigil_agent_watching_features",
                 "Features of an agent past learning (scored against the baseline)", {"agent"}));
  VIGIL_ASSIGN_OR_RETURN(m_.agents, r.AddGauge("vigil_agents", "Agents with a baseline"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.anchored_seq,
      r.AddGauge("vigil_anchored_seq", "Last event seq covered by a decided, trusted checkpoint"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.attested_loss,
      r.AddCounter("vigil_attested_loss_total",
                   "Loss the module attested in the last trusted checkpoint, since it was loaded: "
                   "records the BPF side could not deliver (drops), commits refused on re-entry "
                   "(busy), log records refused at the cap (log_refused)",
                   {"kind"}));
  VIGIL_ASSIGN_OR_RETURN(
      m_.build_info, r.AddGauge("vigil_build_info",
                                "Always 1: the vigild release and the ABI of include/uapi/vigil.h "
                                "it speaks",
                                {"version", "abi"}));
  m_.build_info->Set({std::string(version::Release()),
                      std::to_string(VIGIL_ABI_MAJOR) + "." + std::to_string(VIGIL_ABI_MINOR)},
                     1);
  VIGIL_ASSIGN_OR_RETURN(
      m_.last_verdict,
      r.AddGauge("vigil_last_verdict_timestamp_seconds",
                 "Unix time of the last checkpoint verdict (0: none yet); a value that stops "
                 "moving while records come means verification stalled"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.log_bytes,
      r.AddGauge("vigil_module_log_bytes", "Bytes of records the module's log holds (GET_INFO)"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.log_max_bytes,
      r.AddGauge("vigil_module_log_max_bytes", "The module's log cap, log_max_bytes (GET_INFO)"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.log_fill,
      r.AddGauge("vigil_module_log_fill_ratio",
                 "log_bytes / log_max_bytes: at 1 the module defers checkpoints; vigild trims "
                 "what it saved and decided"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.log_refused,
      r.AddCounter("vigil_module_log_refused_total",
                   "Records the module refused at its log cap since it was loaded (GET_INFO)"));
  VIGIL_ASSIGN_OR_RETURN(m_.log_trimmed,
                         r.AddCounter("vigil_module_log_trimmed_records_total",
                                      "Records of the module's log vigild trimmed (TRIM)"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.instance_changes,
      r.AddCounter("vigil_instance_changes_total",
                   "Starts on another module instance than the saved state's (reboot, reload)"));
  VIGIL_ASSIGN_OR_RETURN(
      m_.stalled,
      r.AddGauge("vigil_stalled", "1 while verification is stalled (see the `stalled` finding)"));
  return Status::Ok();
}

void Pipeline::Emit(std::string& line) { writer_.Write(line); }

Pipeline::Agent* Pipeline::AgentFor(uint32_t agent_id) {
  if (agent_id == last_agent_id_ && last_agent_ != nullptr) return last_agent_;
  auto it = agents_.find(agent_id);
  if (it != agents_.end()) {
    last_agent_id_ = agent_id;
    last_agent_ = &it->second;
    return last_agent_;
  }
  if (agents_.size() >= options_.max_agents) {
    agents_dropped_++;
    return nullptr;
  }
  Agent& a = agents_[agent_id];
  a.name = "agent-" + std::to_string(agent_id);
  a.role = a.name;
  return &a;
}

std::map<uint32_t, std::string> Pipeline::AgentNames() const {
  std::map<uint32_t, std::string> out;
  for (const auto& [id, a] : agents_) {
    if (a.named) out[id] = a.name;
  }
  return out;
}

void Pipeline::SetAgentNames(const std::map<uint32_t, std::string>& names) {
  for (const auto& [id, name] : names) {
    Agent* a = AgentFor(id);
    if (a == nullptr) break;
    Name(*a, name);
  }
}

void Pipeline::NameFrom(const records::Record& rec, Agent& agent) {
  if (auto a = rec.As<vigil_ev_agent>()) {
    const std::string name = records::FieldString(a->name);
    if (!name.empty()) Name(agent, name);
  }
}

void Pipeline::Name(Agent& agent, const std::string& name) {
  agent.name = name;
  agent.role = RoleOf(name);
  agent.named = true;
  agent.baseline.Reset();  // it pointed at the old name's baseline
}

void Pipeline::FlushMetrics() {
  for (size_t t = 0; t < type_counts_.size(); ++t) {
    if (type_counts_[t] == 0) continue;
    m_.records->Inc({std::string(records::TypeName(static_cast<uint16_t>(t)))},
                    static_cast<double>(type_counts_[t]));
    type_counts_[t] = 0;
  }
  if (unattested_count_) {
    m_.unattested->Inc({}, static_cast<double>(unattested_count_));
    unattested_count_ = 0;
  }
  m_.agents->Set({}, static_cast<double>(store_.agent_count()));
  for (auto& [id, a] : agents_) {
    if (a.records == 0) continue;
    m_.agent_records->Inc({a.name}, static_cast<double>(a.records));
    a.records = 0;
  }
  if (verifier_) {
    const verify::VerifierCounters& c = verifier_->counters();
    if (c.chained != last_counters_.chained) {
      m_.chained->Inc({}, static_cast<double>(c.chained - last_counters_.chained));
    }
    last_counters_ = c;
    const verify::Anchor& anchor = verifier_->anchor();
    m_.anchored_seq->Set({}, static_cast<double>(anchor.last_seq));
    m_.attested_loss->Set({"drops"}, static_cast<double>(anchor.drops_total));
    m_.attested_loss->Set({"busy"}, static_cast<double>(anchor.busy_total));
    m_.attested_loss->Set({"log_refused"}, static_cast<double>(anchor.log_refused));
  }
}

void Pipeline::EmitAlert(const baseline::Anomaly& a, const records::Record* from) {
  alerts_++;
  json j = baseline::AnomalyToJson(a);
  j["alert_kind"] = j.value("kind", "");
  j.erase("kind");
  j["type"] = "alert";
  // The record that moved: its seq joins the alert to the checkpoint verdict
  // that covers it (a record later judged tampered gives a distrusted alert).
  if (from != nullptr) {
    j["seq"] = from->seq();
    j["committed"] = from->committed();
  }
  Emit(format::Dump(j));
  m_.alerts->Inc({std::string(baseline::AnomalyKindName(a.kind))});
  m_.agent_alerts->Inc({a.agent});
}

void Pipeline::OnEvent(records::Record&& rec, uint64_t real_ns) {
  if (rec.type() < type_counts_.size()) type_counts_[rec.type()]++;
  if (!rec.committed()) unattested_count_++;
  if (options_.emit_records) {
    try {
      writer_.WriteRecord(rec);
    } catch (const std::exception&) {
      format_errors_++;
    }
  }
  const bool trusted = rec.committed() || !options_.committed_only;
  if (rec.hdr().agent_id != 0 && trusted) {
    if (Agent* agent = AgentFor(rec.hdr().agent_id)) {
      NameFrom(rec, *agent);
      agent->records++;
      Baseline(rec, *agent, real_ns);
      if (rec.committed() && rec.seq() != 0) {
        if (agent->learnt_first == 0 || rec.seq() < agent->learnt_first) {
          agent->learnt_first = rec.seq();
        }
        agent->learnt_last = std::max(agent->learnt_last, rec.seq());
      }
    }
  }
  if (verifier_) {
    verifier_->AddEvent(std::move(rec));
    DrainVerifier();
  }
}

void Pipeline::OnRecoveredEvent(records::Record rec) {
  if (!verifier_) return;
  // Its records were counted before the restart, but the name it gave an
  // agent id may not have been saved yet: keep the name, count nothing.
  if (rec.type() == VIGIL_EV_AGENT && rec.committed() && rec.hdr().agent_id != 0) {
    if (Agent* agent = AgentFor(rec.hdr().agent_id); agent != nullptr && !agent->named) {
      NameFrom(rec, *agent);
    }
  }
  verifier_->AddRecoveredEvent(std::move(rec));
  DrainVerifier();
}

void Pipeline::OnDecodeError(const std::string& why) {
  m_.decode_errors->Inc({});
  Emit(format::Dump(json{{"type", "finding"}, {"kind", "decode"}, {"seq", 0}, {"reason", why}}));
}

void Pipeline::Baseline(const records::Record& rec, Agent& agent, uint64_t real_ns) {
  if (rec.type() == VIGIL_EV_EXEC) {
    // The path straight from the record's bytes: no copy per exec.
    const auto* e = reinterpret_cast<const char*>(rec.bytes().data()) +
                    offsetof(vigil_ev_exec, filename);
    const std::string_view path(e, strnlen(e, VIGIL_PATH_LEN));
    if (auto a = store_.ObserveExecutable(agent.baseline, agent.name, agent.role, path, real_ns)) {
      EmitAlert(*a, &rec);
    }
    return;
  }
  const Features features = FeaturesOf(rec);
  if (features.empty()) return;
  std::array<std::pair<baseline::Feature, double>, 5> values;
  size_t n = 0;
  for (const FeatureValue& f : features) values[n++] = {f.feature, f.value};
  anomalies_.clear();
  store_.ObserveMany(agent.baseline, agent.name, agent.role, std::span(values.data(), n), real_ns,
                     anomalies_);
  for (const baseline::Anomaly& a : anomalies_) EmitAlert(a, &rec);
}

void Pipeline::OnLog(records::Record rec) {
  if (!verifier_) return;
  if (liveness_ && rec.type() == VIGIL_LOG_CHECKPOINT) liveness_->OnCheckpointLogged();
  verifier_->AddLog(std::move(rec));
  DrainVerifier();
}

void Pipeline::OnLogError(const std::string& why) {
  if (!verifier_) return;
  verifier_->LogError(why);
  DrainVerifier();
}

void Pipeline::DrainVerifier() {
  if (!verifier_->has_output()) return;
  for (const verify::CheckpointVerdict& v : verifier_->TakeVerdicts()) {
    if (liveness_) liveness_->OnVerdict(v.last_seq);
    m_.last_verdict->Set({}, static_cast<double>(options_.real_clock() / 1'000'000'000ull));
    std::string line = format::Dump(format::VerdictToJson(v));
    Emit(line);
    if (verdict_sink_) verdict_sink_(line);
    m_.checkpoints->Inc({std::string(verify::VerdictName(v.verdict))});
    TrackLearnt(v);
  }
  for (const verify::Finding& f : verifier_->TakeFindings()) {
    Emit(format::Dump(format::FindingToJson(f)));
    m_.findings->Inc({std::string(verify::FindingKindName(f.kind))});
  }
}

void Pipeline::TrackLearnt(const verify::CheckpointVerdict& v) {
  // A tampered verdict without a bad seq condemns the checkpoint itself (a
  // forged or unlinked one), not events: its range says nothing.
  if (v.verdict == verify::Verdict::kTampered && !v.bad_seq) return;
  const bool condemned = v.verdict == verify::Verdict::kTampered;
  for (auto& [id, a] : agents_) {
    if (a.learnt_first == 0 || a.learnt_first > v.last_seq) continue;
    if (condemned && a.learnt_last >= *v.bad_seq) {
      const uint64_t from = std::max(a.learnt_first, *v.bad_seq);
      const uint64_t to = std::min(a.learnt_last, v.last_seq);
      Emit(format::Dump(json{
          {"type", "finding"},
          {"kind", "baseline_tainted"},
          {"seq", *v.bad_seq},
          {"agent", a.name},
          {"reason", "agent " + a.name + " learnt from committed records in seqs " +
                         std::to_string(from) + ".." + std::to_string(to) +
                         ", which the checkpoint at log seq " + std::to_string(v.log_seq) +
                         " finds tampered: its baseline may hold forged values"}}));
      m_.findings->Inc({"baseline_tainted"});
    }
    if (a.learnt_last <= v.last_seq) {
      a.learnt_first = a.learnt_last = 0;
    } else {
      a.learnt_first = v.last_seq + 1;
    }
  }
}

void Pipeline::EmitFinding(std::string_view kind, uint64_t seq, const std::string& reason,
                           json extra) {
  extra["type"] = "finding";
  extra["kind"] = kind;
  extra["seq"] = seq;
  extra["reason"] = reason;
  Emit(format::Dump(extra));
  m_.findings->Inc({std::string(kind)});
}

void Pipeline::OnModuleInfo(const vigil_info& info) {
  m_.log_bytes->Set({}, static_cast<double>(info.log_bytes));
  m_.log_max_bytes->Set({}, static_cast<double>(info.log_max_bytes));
  if (info.log_max_bytes != 0) {
    m_.log_fill->Set({},
                     static_cast<double>(info.log_bytes) / static_cast<double>(info.log_max_bytes));
  }
  m_.log_refused->Set({}, static_cast<double>(info.log_refused));
  if (liveness_) liveness_->OnModuleInfo(info);
}

void Pipeline::ReportInstanceChange(std::span<const uint8_t> saved_instance,
                                    std::span<const uint8_t> module_instance,
                                    const std::string& detail) {
  const std::string saved = crypto::ToHex(saved_instance);
  const std::string now = crypto::ToHex(module_instance);
  EmitFinding("instance_changed", 0,
              "the saved verifier state belongs to module instance " + saved +
                  ", the loaded module is instance " + now +
                  " (a reboot or reload): verification starts again from the module's log" +
                  (detail.empty() ? "" : "; " + detail),
              json{{"saved_instance", saved}, {"module_instance", now}});
  m_.instance_changes->Inc({});
}

void Pipeline::CountTrimmed(uint64_t records) {
  m_.log_trimmed->Inc({}, static_cast<double>(records));
}

void Pipeline::Tick(uint64_t mono_ns, uint64_t real_ns) {
  TickSteps(mono_ns, real_ns);
  writer_.Flush();  // every line so far to the stream before vigild flushes it
}

void Pipeline::TickSteps(uint64_t mono_ns, uint64_t real_ns) {
  FlushMetrics();
  if (verifier_) {
    verifier_->Tick(mono_ns);
    DrainVerifier();
  }
  if (liveness_) {
    for (const Stall& s : liveness_->Tick(mono_ns)) {
      EmitFinding(
          "stalled", s.seq, s.reason,
          json{{"stall", s.kind == Stall::Kind::kNoVerdict ? "no_verdict" : "no_checkpoint"}});
    }
    m_.stalled->Set({}, liveness_->stalled() ? 1 : 0);
  }
  if (mono_ns < next_pool_ns_) return;
  next_pool_ns_ = mono_ns + options_.pool_interval_ns;
  // EvaluatePools is stateless: alert when an agent becomes a pool outlier
  // on a feature, not again every interval while it stays one.
  std::set<std::pair<std::string, int>> outlying;
  for (const baseline::Anomaly& a : store_.EvaluatePools(real_ns)) {
    const std::pair<std::string, int> key(a.agent, a.feature ? static_cast<int>(*a.feature) : -1);
    if (!pool_outliers_.contains(key)) EmitAlert(a);
    outlying.insert(key);
  }
  pool_outliers_ = std::move(outlying);
  for (const std::string& agent : store_.AgentNames()) {
    double watching = 0;
    for (Feature f : baseline::kAllFeatures) {
      auto s = store_.Summary(agent, f);
      if (s && s->phase == baseline::Phase::kWatching) watching++;
    }
    m_.agent_watching->Set({agent}, watching);
  }
}

void Pipeline::Finish() {
  FlushMetrics();
  if (verifier_) {
    verifier_->Finish();
    DrainVerifier();
  }
  writer_.Flush();
}

}  // namespace vigil::daemon
