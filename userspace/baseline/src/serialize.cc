// JSON state of a BaselineStore: writer and validating reader.
#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "vigil/baseline/store.h"

namespace vigil::baseline {

namespace {

using nlohmann::json;

constexpr size_t kMaxNameBytes = 4096;
constexpr int kMaxDepth = 16;  // the format nests 6 deep

json SketchToJson(const DdSketch& s) {
  DdSketch::Parts p = s.ToParts();
  return json{{"offset", p.offset}, {"bins", p.bins}, {"zero_count", p.zero_count},
              {"count", p.count},   {"min", p.min},   {"max", p.max}};
}

// Typed access to one JSON object with its JSON-pointer path. The first error
// sticks; later calls return defaults, so callers check status() once per
// object.
// Thread-safety: a short-lived local; not synchronized.
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string path, std::initializer_list<const char*> allowed)
      : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) {
      Fail(StateCode::kWrongType, path_, "expected an object");
      return;
    }
    for (const auto& item : j_.items()) {
      const std::string& key = item.key();
      if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) ==
          allowed.end()) {
        Fail(StateCode::kUnknownField, Child(key), "not defined by this version");
        return;
      }
    }
  }

  const StateStatus& status() const { return status_; }
  bool ok() const { return status_.ok(); }
  std::string Child(std::string_view key) const {
    std::string out = path_ + "/";
    for (char c : key) {  // RFC 6901 escaping
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
    return out;
  }

  const json* Member(const char* key) {
    if (!ok()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end()) {
      Fail(StateCode::kMissingField, Child(key), "required");
      return nullptr;
    }
    return &*it;
  }

  uint64_t U64(const char* key, uint64_t max = std::numeric_limits<uint64_t>::max()) {
    const json* m = Member(key);
    if (m == nullptr) return 0;
    return CheckU64(*m, Child(key), max);
  }

  int64_t I64(const char* key, int64_t min, int64_t max) {
    const json* m = Member(key);
    if (m == nullptr) return 0;
    if (m->is_number_unsigned()) {
      const uint64_t v = m->get<uint64_t>();
      if (v > static_cast<uint64_t>(max)) {
        Fail(StateCode::kOutOfRange, Child(key), "too large");
        return 0;
      }
      return static_cast<int64_t>(v);
    }
    if (!m->is_number_integer()) {
      Fail(StateCode::kWrongType, Child(key), "expected an integer");
      return 0;
    }
    const int64_t v = m->get<int64_t>();
    if (v < min || v > max) {
      Fail(StateCode::kOutOfRange, Child(key), "out of range");
      return 0;
    }
    return v;
  }

  // A finite number (integers are accepted: 0 is written as 0.0 or 0).
  double Finite(const char* key) {
    const json* m = Member(key);
    if (m == nullptr) return 0;
    return CheckFinite(*m, Child(key));
  }

  double NonNegative(const char* key) {
    const double v = Finite(key);
    if (ok() && v < 0) Fail(StateCode::kOutOfRange, Child(key), "must be >= 0");
    return v;
  }

  std::string String(const char* key, size_t max_bytes) {
    const json* m = Member(key);
    if (m == nullptr) return {};
    return CheckString(*m, Child(key), max_bytes);
  }

  template <typename Enum>
  Enum Phase(const char* key) {
    const std::string s = String(key, 16);
    if (!ok()) return Enum::kLearning;
    if (s == "learning") return Enum::kLearning;
    if (s == "watching") return Enum::kWatching;
    Fail(StateCode::kOutOfRange, Child(key), "must be \"learning\" or \"watching\"");
    return Enum::kLearning;
  }

  uint64_t CheckU64(const json& m, const std::string& path, uint64_t max) {
    if (!ok()) return 0;
    if (m.is_number_integer() && !m.is_number_unsigned()) {
      Fail(StateCode::kOutOfRange, path, "must be >= 0");
      return 0;
    }
    if (!m.is_number_unsigned()) {
      Fail(StateCode::kWrongType, path, "expected a non-negative integer");
      return 0;
    }
    const uint64_t v = m.get<uint64_t>();
    if (v > max) {
      Fail(StateCode::kOutOfRange, path, "too large");
      return 0;
    }
    return v;
  }

  double CheckFinite(const json& m, const std::string& path) {
    if (!ok()) return 0;
    if (!m.is_number()) {
      Fail(m.is_null() ? StateCode::kNonFinite : StateCode::kWrongType, path,
           m.is_null() ? "null where a number belongs (NaN or inf written?)" : "expected a number");
      return 0;
    }
    const double v = m.get<double>();
    if (!std::isfinite(v)) {
      Fail(StateCode::kNonFinite, path, "must be finite");
      return 0;
    }
    return v;
  }

  std::string CheckString(const json& m, const std::string& path, size_t max_bytes) {
    if (!ok()) return {};
    if (!m.is_string()) {
      Fail(StateCode::kWrongType, path, "expected a string");
      return {};
    }
    const std::string& s = m.get_ref<const std::string&>();
    if (s.size() > max_bytes) {
      Fail(StateCode::kOutOfRange, path, "string too long");
      return {};
    }
    return s;
  }

  void Fail(StateCode code, std::string path, std::string message) {
    if (ok()) status_ = StateStatus(code, std::move(path), std::move(message));
  }
  void Fail(const StateStatus& s) {
    if (ok() && !s.ok()) status_ = s;
  }

 private:
  const json& j_;
  std::string path_;
  StateStatus status_;
};

}  // namespace

std::string BaselineStore::Serialize() const {
  std::string out;
  (void)SerializeTo([&out](std::string_view piece) {
    out += piece;
    return true;
  });
  return out;
}

bool BaselineStore::SerializeTo(const std::function<bool(std::string_view)>& sink,
                                size_t piece_bytes) const {
  // Written agent by agent (one agent's DOM at a time) with the format tag
  // and version first, so the text starts with what identifies it.
  std::string out = "{\"format\":";
  out += json(kStateFormat).dump();
  out += ",\"version\":" + std::to_string(kStateVersion);
  out += ",\"sketch\":";
  out += json{{"alpha", config_.sketch_alpha}, {"max_bins", config_.sketch_max_bins}}.dump();
  out += ",\"rejected_values\":" + std::to_string(rejected_values_);
  out += ",\"rejected_agents\":" + std::to_string(rejected_agents_);
  out += ",\"agents\":[";
  bool first = true;
  for (const std::string& name : AgentNames()) {
    const AgentState& a = agents_.at(name);
    json features = json::object();
    for (Feature f : kAllFeatures) {
      const FeatureState& fs = a.features[FeatureIndex(f)];
      if (fs.stats.count() == 0) continue;
      const RunningStats::Parts w = fs.stats.ToParts();
      const Ewma::Parts e = fs.ewma.ToParts();
      features[std::string(FeatureName(f))] = json{
          {"phase", PhaseName(fs.phase)},
          {"first_ns", fs.first_ns},
          {"last_ns", fs.last_ns},
          {"anomalies", fs.anomalies},
          {"since_refresh", fs.since_refresh},
          {"median", fs.median},
          {"mad", fs.mad},
          {"mad_log", fs.mad_log},
          {"welford",
           {{"count", w.count}, {"mean", w.mean}, {"m2", w.m2}, {"min", w.min}, {"max", w.max}}},
          {"ewma", {{"weight", e.weight}, {"mean", e.mean}, {"s", e.s}, {"last_ns", e.last_ns}}},
          {"sketch", SketchToJson(fs.sketch)}};
    }
    if (!first) out += ',';
    first = false;
    out += json{{"name", name},
                {"role", a.role},
                {"first_ns", a.first_ns},
                {"last_ns", a.last_ns},
                {"anomalies", a.anomalies},
                {"exe_phase", PhaseName(a.exe_phase)},
                {"exe_observations", a.exe_observations},
                {"executables", a.executables},
                {"features", std::move(features)}}
               .dump();
    if (out.size() >= piece_bytes) {
      if (!sink(out)) return false;
      out.clear();
    }
  }
  out += "]}";
  return sink(out);
}

StateStatus BaselineStore::ParseFeature(const json& j, const std::string& path,
                                        const BaselineConfig& config, FeatureState& fs) {
  ObjectReader r(j, path,
                 {"phase", "first_ns", "last_ns", "anomalies", "since_refresh", "median", "mad",
                  "mad_log", "welford", "ewma", "sketch"});
  fs.phase = r.Phase<Phase>("phase");
  fs.first_ns = r.U64("first_ns");
  fs.last_ns = r.U64("last_ns");
  fs.anomalies = r.U64("anomalies");
  fs.since_refresh =
      static_cast<uint32_t>(r.U64("since_refresh", std::numeric_limits<uint32_t>::max()));
  fs.median = r.NonNegative("median");
  fs.mad = r.NonNegative("mad");
  fs.mad_log = r.NonNegative("mad_log");
  if (!r.ok()) return r.status();
  if (fs.first_ns > fs.last_ns) {
    return StateStatus(StateCode::kInconsistent, r.Child("first_ns"), "first_ns > last_ns");
  }

  const std::string wpath = r.Child("welford");
  const json* welford_json = r.Member("welford");
  if (welford_json == nullptr) return r.status();
  ObjectReader w(*welford_json, wpath, {"count", "mean", "m2", "min", "max"});
  RunningStats::Parts wp;
  wp.count = w.U64("count");
  wp.mean = w.Finite("mean");
  wp.m2 = w.Finite("m2");
  wp.min = w.Finite("min");
  wp.max = w.Finite("max");
  if (!w.ok()) return w.status();
  StateResult<RunningStats> stats = RunningStats::FromParts(wp, wpath);
  if (!stats.ok()) return stats.status();
  fs.stats = std::move(stats).value();

  const std::string spath = r.Child("sketch");
  const json* sketch_json = r.Member("sketch");
  if (sketch_json == nullptr) return r.status();
  ObjectReader s(*sketch_json, spath, {"offset", "bins", "zero_count", "count", "min", "max"});
  DdSketch::Parts sp;
  sp.offset = static_cast<int32_t>(
      s.I64("offset", std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
  if (const json* bins = s.Member("bins")) {
    if (!bins->is_array()) {
      s.Fail(StateCode::kWrongType, s.Child("bins"), "expected an array");
    } else if (bins->size() > config.sketch_max_bins) {
      s.Fail(StateCode::kOutOfRange, s.Child("bins"), "more bins than max_bins");
    } else {
      sp.bins.reserve(bins->size());
      for (size_t i = 0; i < bins->size() && s.ok(); ++i) {
        sp.bins.push_back(
            static_cast<uint32_t>(s.CheckU64((*bins)[i], s.Child("bins") + "/" + std::to_string(i),
                                             std::numeric_limits<uint32_t>::max())));
      }
    }
  }
  sp.zero_count = s.U64("zero_count");
  sp.count = s.U64("count");
  sp.min = s.Finite("min");
  sp.max = s.Finite("max");
  if (!s.ok()) return s.status();
  StateResult<DdSketch> sketch =
      DdSketch::FromParts(config.sketch_alpha, config.sketch_max_bins, std::move(sp), spath);
  if (!sketch.ok()) return sketch.status();
  fs.sketch = std::move(sketch).value();

  const std::string epath = r.Child("ewma");
  const json* ewma_json = r.Member("ewma");
  if (ewma_json == nullptr) return r.status();
  ObjectReader e(*ewma_json, epath, {"weight", "mean", "s", "last_ns"});
  Ewma::Parts ep;
  ep.weight = e.Finite("weight");
  ep.mean = e.Finite("mean");
  ep.s = e.Finite("s");
  ep.last_ns = e.U64("last_ns");
  if (!e.ok()) return e.status();
  StateResult<Ewma> ewma =
      Ewma::FromParts(config.ewma, ep, static_cast<double>(fs.stats.count()), epath);
  if (!ewma.ok()) return ewma.status();
  fs.ewma = std::move(ewma).value();

  // Cross-checks between the parts.
  const uint64_t n = fs.stats.count();
  if (n == 0) {
    return StateStatus(StateCode::kInconsistent, path, "a feature without samples must be omitted");
  }
  if (fs.sketch.count() != n) {
    return StateStatus(StateCode::kInconsistent, spath + "/count",
                       "sketch count differs from welford count");
  }
  if (fs.sketch.min() != fs.stats.min() || fs.sketch.max() != fs.stats.max()) {
    return StateStatus(StateCode::kInconsistent, spath,
                       "sketch min/max differ from welford min/max");
  }
  if (fs.since_refresh > n) {
    return StateStatus(StateCode::kInconsistent, r.Child("since_refresh"),
                       "larger than the sample count");
  }
  if (fs.phase == Phase::kLearning) {
    if (fs.median != 0 || fs.mad != 0 || fs.mad_log != 0 || fs.since_refresh != 0) {
      return StateStatus(StateCode::kInconsistent, path,
                         "a learning feature has no median, mad or refresh count");
    }
  } else {
    if (fs.median < fs.stats.min() || fs.median > fs.stats.max()) {
      return StateStatus(StateCode::kInconsistent, r.Child("median"), "median outside [min, max]");
    }
    if (fs.mad > fs.stats.max() - fs.stats.min()) {
      return StateStatus(StateCode::kInconsistent, r.Child("mad"), "mad larger than max - min");
    }
    // ln((max + c) / (min + c)) <= ln(max / min) for any shift c > 0.
    if (fs.stats.min() > 0 && fs.mad_log > std::log(fs.stats.max() / fs.stats.min()) + 1e-12) {
      return StateStatus(StateCode::kInconsistent, r.Child("mad_log"),
                         "mad_log larger than ln(max / min)");
    }
  }
  return StateStatus::Ok();
}

StateStatus BaselineStore::ParseAgent(const json& j, const std::string& path,
                                      const BaselineConfig& config, std::string& name,
                                      AgentState& a) {
  ObjectReader r(j, path,
                 {"name", "role", "first_ns", "last_ns", "anomalies", "exe_phase",
                  "exe_observations", "executables", "features"});
  name = r.String("name", kMaxNameBytes);
  a.role = r.String("role", kMaxNameBytes);
  a.first_ns = r.U64("first_ns");
  a.last_ns = r.U64("last_ns");
  a.anomalies = r.U64("anomalies");
  a.exe_phase = r.Phase<Phase>("exe_phase");
  a.exe_observations = r.U64("exe_observations");
  if (!r.ok()) return r.status();
  if (name.empty()) {
    return StateStatus(StateCode::kOutOfRange, r.Child("name"), "must not be empty");
  }
  if (a.first_ns > a.last_ns) {
    return StateStatus(StateCode::kInconsistent, r.Child("first_ns"), "first_ns > last_ns");
  }
  const json* exes = r.Member("executables");
  if (exes == nullptr) return r.status();
  const std::string xpath = r.Child("executables");
  if (!exes->is_array()) {
    return StateStatus(StateCode::kWrongType, xpath, "expected an array");
  }
  if (exes->size() > config.max_executables_per_agent) {
    return StateStatus(StateCode::kOutOfRange, xpath,
                       "more executables than max_executables_per_agent");
  }
  if (exes->size() > a.exe_observations) {
    return StateStatus(StateCode::kInconsistent, xpath, "more executables than exe_observations");
  }
  if (a.exe_phase == Phase::kWatching && a.exe_observations == 0) {
    return StateStatus(StateCode::kInconsistent, r.Child("exe_phase"),
                       "watching without any observation");
  }
  a.executables.reserve(exes->size());
  for (size_t i = 0; i < exes->size(); ++i) {
    const std::string ipath = xpath + "/" + std::to_string(i);
    std::string exe = r.CheckString((*exes)[i], ipath, kMaxNameBytes);
    if (!r.ok()) return r.status();
    if (!a.executables.empty() && exe <= a.executables.back()) {
      return StateStatus(
          exe == a.executables.back() ? StateCode::kDuplicate : StateCode::kInconsistent, ipath,
          "executables must be sorted and unique");
    }
    a.executables.push_back(std::move(exe));
  }
  const json* features = r.Member("features");
  if (features == nullptr) return r.status();
  const std::string fpath = r.Child("features");
  if (!features->is_object()) {
    return StateStatus(StateCode::kWrongType, fpath, "expected an object");
  }
  for (FeatureState& fs : a.features) {
    fs.ewma = Ewma(config.ewma);
    fs.sketch = DdSketch(config.sketch_alpha, config.sketch_max_bins);
  }
  for (const auto& item : features->items()) {
    ObjectReader keys(*features, fpath, {});  // only for Child() escaping
    const std::string path_f = keys.Child(item.key());
    std::optional<Feature> f = FeatureFromName(item.key());
    if (!f) {
      return StateStatus(StateCode::kUnknownField, path_f, "unknown feature");
    }
    StateStatus s = ParseFeature(item.value(), path_f, config, a.features[FeatureIndex(*f)]);
    if (!s.ok()) return s;
  }
  return StateStatus::Ok();
}

struct BaselineStore::ParseInput {
  std::function<json(const json::parser_callback_t&)> parse;
  uint64_t size;  // bytes: a parse error at or past it means the text was cut short
};

StateResult<BaselineStore> BaselineStore::Parse(std::string_view text,
                                                const BaselineConfig& config) {
  return ParseWith({[text](const json::parser_callback_t& callback) {
                      return json::parse(text.begin(), text.end(), callback);
                    },
                    text.size()},
                   config);
}

StateResult<BaselineStore> BaselineStore::ParseFile(std::FILE* file, uint64_t size,
                                                    const BaselineConfig& config) {
  return ParseWith(
      {[file](const json::parser_callback_t& callback) { return json::parse(file, callback); },
       size},
      config);
}

StateResult<BaselineStore> BaselineStore::ParseWith(const ParseInput& input,
                                                    const BaselineConfig& config) {
  StateStatus cs = config.Validate();
  if (!cs.ok()) return cs;
  BaselineStore store(config);
  // Agents are validated and moved into `store` as the parser finishes each
  // one, and dropped from the DOM, so the peak memory is the store plus one
  // agent's DOM rather than the whole document's. Their errors are kept
  // aside: a wrong format or version found later takes precedence.
  StateStatus agent_error;
  size_t agent_index = 0;
  int agents_arrays = 0;
  bool in_agents = false;
  bool too_deep = false;
  std::string top_key;
  auto on_agent_error = [&](StateStatus s) {
    if (agent_error.ok()) agent_error = std::move(s);
  };
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) too_deep = true;
    if (too_deep) return false;
    using E = json::parse_event_t;
    if (depth == 1) {
      if (event == E::key) {
        top_key = parsed.is_string() ? parsed.get<std::string>() : "";
      } else if (event == E::array_start && top_key == "agents") {
        in_agents = true;
        ++agents_arrays;
      } else if (event == E::array_end) {
        in_agents = false;
      }
      return true;
    }
    if (!in_agents || depth != 2) return true;
    // An element of /agents is complete.
    if (event == E::object_end || event == E::value || event == E::array_end) {
      const std::string path = "/agents/" + std::to_string(agent_index++);
      if (!agent_error.ok()) return false;
      if (agent_index > config.max_agents) {
        on_agent_error(
            StateStatus(StateCode::kOutOfRange, "/agents", "more agents than max_agents"));
        return false;
      }
      if (event != E::object_end) {
        on_agent_error(StateStatus(StateCode::kWrongType, path, "expected an object"));
        return false;
      }
      std::string name;
      AgentState a;
      StateStatus st = ParseAgent(parsed, path, config, name, a);
      if (!st.ok()) {
        on_agent_error(std::move(st));
      } else if (!store.agents_.emplace(std::move(name), std::move(a)).second) {
        on_agent_error(StateStatus(StateCode::kDuplicate, path + "/name", "agent appears twice"));
      }
      return false;  // not kept in the DOM
    }
    return true;
  };
  json doc;
  try {
    doc = input.parse(callback);
  } catch (const json::parse_error& e) {
    // nlohmann reports the byte where parsing stopped; at the end of the
    // input that means the document was cut short.
    const bool at_end = e.byte >= input.size;
    return StateStatus(at_end ? StateCode::kTruncated : StateCode::kSyntax, "", e.what());
  } catch (const json::out_of_range& e) {
    // 406: a number literal beyond double ("1e999"), i.e. infinity.
    return StateStatus(StateCode::kNonFinite, "", e.what());
  } catch (const json::exception& e) {
    return StateStatus(StateCode::kSyntax, "", e.what());
  }
  if (too_deep) {
    return StateStatus(StateCode::kOutOfRange, "", "nesting deeper than the format");
  }
  if (!doc.is_object()) {
    return StateStatus(StateCode::kWrongFormat, "", "the state is not a JSON object");
  }
  // Format and version first, so a foreign document gets the right error.
  auto format = doc.find("format");
  if (format == doc.end() || !format->is_string() ||
      format->get_ref<const std::string&>() != kStateFormat) {
    return StateStatus(StateCode::kWrongFormat, "/format",
                       "expected \"" + std::string(kStateFormat) + "\"");
  }
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer()) {
    return StateStatus(StateCode::kWrongType, "/version", "expected an integer");
  }
  if (!version->is_number_unsigned() ||
      version->get<uint64_t>() != static_cast<uint64_t>(kStateVersion)) {
    return StateStatus(StateCode::kUnsupportedVersion, "/version",
                       "this build reads version " + std::to_string(kStateVersion) +
                           ", the state has " + version->dump());
  }
  ObjectReader r(doc, "",
                 {"format", "version", "sketch", "rejected_values", "rejected_agents", "agents"});
  store.rejected_values_ = r.U64("rejected_values");
  store.rejected_agents_ = r.U64("rejected_agents");
  const json* sketch = r.Member("sketch");
  if (!r.ok()) return r.status();
  ObjectReader s(*sketch, "/sketch", {"alpha", "max_bins"});
  const double alpha = s.Finite("alpha");
  const uint64_t max_bins = s.U64("max_bins");
  if (!s.ok()) return s.status();
  if (alpha != config.sketch_alpha || max_bins != config.sketch_max_bins) {
    return StateStatus(StateCode::kConfigMismatch, "/sketch",
                       "state made with alpha " + std::to_string(alpha) + ", max_bins " +
                           std::to_string(max_bins) + "; configured alpha " +
                           std::to_string(config.sketch_alpha) + ", max_bins " +
                           std::to_string(config.sketch_max_bins));
  }
  const json* agents = r.Member("agents");
  if (!r.ok()) return r.status();
  if (!agents->is_array()) {
    return StateStatus(StateCode::kWrongType, "/agents", "expected an array");
  }
  if (agents_arrays != 1) {
    return StateStatus(StateCode::kDuplicate, "/agents", "\"agents\" appears twice");
  }
  if (!agent_error.ok()) return agent_error;
  // A state saved while a feature was scored in the linear domain has no
  // log-domain MAD for it; one configured for the log domain now needs it.
  for (auto& [name, a] : store.agents_) {
    for (Feature f : kAllFeatures) {
      const size_t fi = FeatureIndex(f);
      FeatureState& fs = a.features[fi];
      if (fs.phase == Phase::kWatching && config.score_domain[fi] == ScoreDomain::kLog &&
          fs.mad_log == 0) {
        fs.mad_log = fs.sketch.MadLog(config.min_mad[fi]).value_or(0.0);
      }
    }
  }
  return store;
}

StateStatus BaselineStore::Restore(std::string_view json_text) {
  StateResult<BaselineStore> parsed = Parse(json_text, config_);
  if (!parsed.ok()) return parsed.status();
  *this = std::move(parsed).value();
  generation_ = NextGeneration();
  return StateStatus::Ok();
}

}  // namespace vigil::baseline
