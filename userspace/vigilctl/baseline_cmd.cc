// vigilctl baseline show | export (see baseline_cmd.h).
//
// The state is loaded only through vigil::baseline's public API:
// BaselineStore::Parse (the validating loader) with a reader's config, then
// the store's const accessors. The reader's config takes the sketch
// parameters from the state itself (vigilctl does not know vigild's
// configuration) and lifts the per-agent limits, so that any state vigild
// could have written is accepted; vigild's scoring settings (threshold,
// min_mad, score domains) are not in the state and are not shown.
#include "baseline_cmd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vigil/baseline/feature.h"
#include "vigil/baseline/state_status.h"
#include "vigil/baseline/store.h"
#include "vigil/format.h"

namespace vigilctl {
namespace {

namespace bl = vigil::baseline;
using nlohmann::json;

// As in main.cc.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitMalformed = 6;

constexpr int kShowFormatVersion = 1;

std::string StatePath(const std::string& dir) {
  if (!dir.empty() && dir.back() == '/') return dir + kBaselineFileName;
  return dir + "/" + kBaselineFileName;
}

// A loaded, validated state, or the exit code after the message was printed.
struct Loaded {
  std::string path;
  std::string text;
  std::optional<bl::BaselineStore> store;
  int exit_code = kExitOk;
};

int ErrorLine(int code, const std::string& message) {
  // Messages quote the state file (names, JSON pointers): escaped.
  std::cerr << "vigilctl: " << vigil::format::EscapeText(message) << "\n";
  return code;
}

// Reads the state file without modifying it. Missing directory or file:
// "no baselines yet"; anything else that stops the read is an error.
int ReadState(const std::string& dir, const std::string& path, std::string& text) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      return ErrorLine(kExitError, "no baselines yet: vigild has not saved state in " + dir);
    }
    return ErrorLine(kExitError, "cannot read state directory " + dir + ": " + std::strerror(err));
  }
  if (!S_ISDIR(st.st_mode)) {
    return ErrorLine(kExitError, "state directory " + dir + " is not a directory");
  }
  // O_NONBLOCK: a FIFO in the file's place must not hang the command.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return ErrorLine(kExitError, "no baselines yet: vigild has not saved state in " + dir);
    }
    return ErrorLine(kExitError, "cannot read " + path + ": " + std::strerror(err));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  if (::fstat(fd, &st) != 0) {
    return ErrorLine(kExitError, "cannot read " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return ErrorLine(kExitError, "cannot read " + path + ": not a regular file");
  }
  text.clear();
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrorLine(kExitError, "cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return kExitOk;
}

// The state's /sketch member, read without building the agents' DOM (they are
// skipped by the callback). nullopt when the text is not JSON or has none.
std::optional<json> PeekSketch(const std::string& text) {
  auto keep = [](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      return parsed.is_string() && parsed.get_ref<const std::string&>() == "sketch";
    }
    return true;
  };
  json doc = json::parse(text, keep, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  auto it = doc.find("sketch");
  if (it == doc.end()) return std::nullopt;
  return *it;
}

// Parses and validates the state. The message names the JSON pointer of the
// first bad member.
int LoadState(const std::string& dir, Loaded& out) {
  out.path = StatePath(dir);
  if (int rc = ReadState(dir, out.path, out.text); rc != kExitOk) return rc;

  bl::BaselineConfig config;
  config.max_agents = std::numeric_limits<uint32_t>::max();
  config.max_executables_per_agent = std::numeric_limits<uint32_t>::max();
  // The state's own sketch parameters when they are valid ones; otherwise
  // Parse reports the document (format and version checks come first).
  std::optional<bl::StateStatus> bad_sketch;
  if (std::optional<json> sketch = PeekSketch(out.text); sketch && sketch->is_object()) {
    auto alpha = sketch->find("alpha");
    if (alpha != sketch->end() && alpha->is_number()) {
      const double a = alpha->get<double>();
      if (a >= bl::DdSketch::kMinAlpha && a <= bl::DdSketch::kMaxAlpha) {
        config.sketch_alpha = a;
      } else {
        bad_sketch = bl::StateStatus(bl::StateCode::kOutOfRange, "/sketch/alpha",
                                     "must be in [1e-4, 0.5]");
      }
    }
    auto bins = sketch->find("max_bins");
    if (bins != sketch->end() && bins->is_number_unsigned()) {
      const uint64_t b = bins->get<uint64_t>();
      if (b >= 16 && b <= 65536) {
        config.sketch_max_bins = static_cast<uint32_t>(b);
      } else if (!bad_sketch) {
        bad_sketch = bl::StateStatus(bl::StateCode::kOutOfRange, "/sketch/max_bins",
                                     "must be in [16, 65536]");
      }
    }
  }
  bl::StateResult<bl::BaselineStore> parsed = bl::BaselineStore::Parse(out.text, config);
  if (!parsed.ok()) {
    bl::StateStatus st = parsed.status();
    if (st.code() == bl::StateCode::kConfigMismatch && bad_sketch) st = *bad_sketch;
    std::string pointer = st.path().empty() ? "/" : st.path();
    return ErrorLine(kExitMalformed, "malformed baseline state " + out.path + ": " +
                                         std::string(bl::StateCodeName(st.code())) + " at " +
                                         pointer + ": " + st.message());
  }
  out.store.emplace(std::move(parsed).value());
  return kExitOk;
}

// ---- units ----------------------------------------------------------------

struct Unit {
  const char* raw;    // the unit of the stored values (feature.h)
  const char* shown;  // the unit of the human output
  double factor;      // shown = raw * factor
  int precision;
};

Unit UnitOf(bl::Feature f) {
  switch (f) {
    case bl::Feature::kCpuPerExec:
    case bl::Feature::kLifetime:
      return {"ns", "ms", 1e-6, 3};
    case bl::Feature::kMaxRss:
      return {"bytes", "MiB", 1.0 / (1024.0 * 1024.0), 2};
    case bl::Feature::kFaultRate:
    case bl::Feature::kCtxSwitchRate:
    case bl::Feature::kSyscallRate:
      return {"per_second", "/s", 1.0, 1};
    case bl::Feature::kIpc:
      return {"instructions_per_cycle", "instr/cycle", 1.0, 3};
  }
  return {"", "", 1.0, 3};
}

std::string Shown(bl::Feature f, double raw) {
  const Unit u = UnitOf(f);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", u.precision, raw * u.factor);
  return buf;
}

std::string Shown(bl::Feature f, std::optional<double> raw) {
  return raw ? Shown(f, *raw) : "-";
}

// CLOCK_REALTIME ns as "2026-11-24T10:49:16Z" (UTC).
std::string TimeString(uint64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1'000'000'000ull);
  struct tm tm {};
  if (::gmtime_r(&secs, &tm) == nullptr) return std::to_string(ns);
  char buf[32];
  if (std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return std::to_string(ns);
  return buf;
}

// ---- gathering --------------------------------------------------------------

struct FeatureRow {
  bl::Feature feature;
  bl::BaselineSummary summary;
  bl::Activity activity;
  std::optional<double> p99;
};

struct AgentView {
  std::string name;
  std::string role;
  bl::Phase phase = bl::Phase::kLearning;
  bl::Activity activity;
  bl::Phase exe_phase = bl::Phase::kLearning;
  size_t executables = 0;
  std::vector<FeatureRow> features;
};

AgentView Gather(const bl::BaselineStore& store, const std::string& name) {
  AgentView v;
  v.name = name;
  v.role = store.AgentRole(name).value_or("");
  v.activity = store.AgentActivity(name).value_or(bl::Activity{});
  v.exe_phase = store.ExecutablesPhase(name).value_or(bl::Phase::kLearning);
  v.executables = store.Executables(name).size();
  bool learning = false;
  for (bl::Feature f : bl::kAllFeatures) {
    std::optional<bl::BaselineSummary> s = store.Summary(name, f);
    if (!s) continue;
    FeatureRow row{f, *s, store.FeatureActivity(name, f).value_or(bl::Activity{}),
                   store.Quantile(name, f, 0.99)};
    learning = learning || s->phase == bl::Phase::kLearning;
    v.features.push_back(std::move(row));
  }
  // Watching once every sampled feature is, and the executable set too when
  // executions were observed.
  if (v.activity.observations > 0 && v.exe_phase == bl::Phase::kLearning) learning = true;
  if (v.features.empty() && v.activity.observations == 0) learning = true;
  v.phase = learning ? bl::Phase::kLearning : bl::Phase::kWatching;
  return v;
}

// ---- JSON -----------------------------------------------------------------

json FeatureJson(const FeatureRow& r) {
  const bl::BaselineSummary& s = r.summary;
  return json{{"unit", UnitOf(r.feature).raw},
              {"phase", bl::PhaseName(s.phase)},
              {"samples", s.samples},
              {"median", s.median},
              {"mad", s.mad},
              {"p95", s.p95},
              {"p99", r.p99 ? json(*r.p99) : json(nullptr)},
              {"mean", s.mean},
              {"stddev", s.stddev},
              {"min", s.min},
              {"max", s.max},
              {"ewma", s.ewma},
              {"anomalies", r.activity.anomalies},
              {"first_ns", r.activity.first_ns},
              {"last_ns", r.activity.last_ns},
              {"last_update", TimeString(r.activity.last_ns)}};
}

json AgentJson(const AgentView& v) {
  json features = json::object();
  for (const FeatureRow& r : v.features) {
    features[std::string(bl::FeatureName(r.feature))] = FeatureJson(r);
  }
  return json{{"name", v.name},
              {"role", v.role},
              {"phase", bl::PhaseName(v.phase)},
              {"anomalies", v.activity.anomalies},
              {"first_ns", v.activity.first_ns},
              {"last_ns", v.activity.last_ns},
              {"last_update", TimeString(v.activity.last_ns)},
              {"executables",
               {{"phase", bl::PhaseName(v.exe_phase)},
                {"count", v.executables},
                {"observations", v.activity.observations}}},
              {"features", std::move(features)}};
}

json PoolJson(const bl::PoolSummary& p) {
  return json{{"unit", UnitOf(p.feature).raw},
              {"agents", p.agents},
              {"watching_agents", p.watching_agents},
              {"median_of_medians", p.median_of_medians},
              {"mad_of_medians", p.mad_of_medians},
              {"samples", p.stats.count()},
              {"mean", p.stats.mean()},
              {"stddev", p.stats.stddev()},
              {"min", p.stats.min()},
              {"max", p.stats.max()},
              {"median", p.sketch.Quantile(0.5) ? json(*p.sketch.Quantile(0.5)) : json(nullptr)},
              {"p95", p.sketch.Quantile(0.95) ? json(*p.sketch.Quantile(0.95)) : json(nullptr)},
              {"p99", p.sketch.Quantile(0.99) ? json(*p.sketch.Quantile(0.99)) : json(nullptr)}};
}

// ---- human table ----------------------------------------------------------

// Left-aligned text columns up to `left_columns`, right-aligned numbers after.
void PrintTable(const std::vector<std::vector<std::string>>& rows, size_t left_columns,
                const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(width[i] - row[i].size(), ' ');
      if (i > 0) line += "  ";
      line += i < left_columns ? row[i] + pad : pad + row[i];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

void PrintAgent(const AgentView& v) {
  std::cout << "agent " << vigil::format::EscapeText(v.name) << "  role "
            << vigil::format::EscapeText(v.role) << "  " << bl::PhaseName(v.phase) << "  anomalies "
            << v.activity.anomalies << "  executables " << v.executables << " ("
            << bl::PhaseName(v.exe_phase) << ", " << v.activity.observations
            << " execs)  last update " << TimeString(v.activity.last_ns) << "\n";
  if (v.features.empty()) {
    std::cout << "  no feature samples yet\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {{"feature", "unit", "phase", "samples", "median",
                                                 "MAD", "p95", "p99", "mean", "stddev", "EWMA",
                                                 "anomalies", "last update"}};
  for (const FeatureRow& r : v.features) {
    const bl::BaselineSummary& s = r.summary;
    rows.push_back({std::string(bl::FeatureName(r.feature)), UnitOf(r.feature).shown,
                    std::string(bl::PhaseName(s.phase)), std::to_string(s.samples),
                    Shown(r.feature, s.median), Shown(r.feature, s.mad), Shown(r.feature, s.p95),
                    Shown(r.feature, r.p99), Shown(r.feature, s.mean), Shown(r.feature, s.stddev),
                    Shown(r.feature, s.ewma), std::to_string(r.activity.anomalies),
                    TimeString(r.activity.last_ns)});
  }
  PrintTable(rows, 3, "  ");
}

void PrintPools(const std::string& role, const std::vector<bl::PoolSummary>& pools,
                size_t agents) {
  std::cout << "pool " << vigil::format::EscapeText(role) << "  " << agents
            << (agents == 1 ? " agent" : " agents")
            << " (all samples merged; medians of the agents' medians)\n";
  if (pools.empty()) {
    std::cout << "  no feature samples yet\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {{"feature", "unit", "agents", "watching",
                                                 "samples", "median", "p95", "p99", "mean",
                                                 "stddev", "median of medians", "MAD of medians"}};
  for (const bl::PoolSummary& p : pools) {
    rows.push_back({std::string(bl::FeatureName(p.feature)), UnitOf(p.feature).shown,
                    std::to_string(p.agents), std::to_string(p.watching_agents),
                    std::to_string(p.stats.count()), Shown(p.feature, p.sketch.Quantile(0.5)),
                    Shown(p.feature, p.sketch.Quantile(0.95)),
                    Shown(p.feature, p.sketch.Quantile(0.99)), Shown(p.feature, p.stats.mean()),
                    Shown(p.feature, p.stats.stddev()),
                    p.watching_agents > 0 ? Shown(p.feature, p.median_of_medians) : "-",
                    p.watching_agents > 0 ? Shown(p.feature, p.mad_of_medians) : "-"});
  }
  PrintTable(rows, 2, "  ");
}

std::string Quoted(const std::string& s) { return vigil::format::Dump(json(s)); }

}  // namespace

int CmdBaselineShow(const BaselineShowOptions& options) {
  Loaded loaded;
  if (int rc = LoadState(options.state_dir, loaded); rc != kExitOk) return rc;
  const bl::BaselineStore& store = *loaded.store;

  // role -> agents (sorted by name: AgentNames() is).
  std::map<std::string, std::vector<std::string>> roles;
  for (const std::string& name : store.AgentNames()) {
    roles[store.AgentRole(name).value_or("")].push_back(name);
  }
  const size_t role_count = roles.size();
  if (!options.agent.empty()) {
    std::optional<std::string> role = store.AgentRole(options.agent);
    if (!role || (!options.role.empty() && *role != options.role)) {
      return ErrorLine(kExitError,
                       "no baseline for agent " + Quoted(options.agent) +
                           (options.role.empty() ? "" : " in role " + Quoted(options.role)) +
                           " in " + loaded.path +
                           " (`vigilctl baseline show` lists the agents)");
    }
    roles = {{*role, {options.agent}}};
  } else if (!options.role.empty()) {
    auto it = roles.find(options.role);
    if (it == roles.end()) {
      return ErrorLine(kExitError, "no baseline for role " + Quoted(options.role) + " in " +
                                       loaded.path + " (`vigilctl baseline show` lists the roles)");
    }
    roles = {{it->first, it->second}};
  }

  if (options.json) {
    json agents = json::array();
    json pools = json::array();
    for (const auto& [role, names] : roles) {
      for (const std::string& name : names) agents.push_back(AgentJson(Gather(store, name)));
      json features = json::object();
      for (bl::Feature f : bl::kAllFeatures) {
        if (std::optional<bl::PoolSummary> p = store.Pool(role, f)) {
          features[std::string(bl::FeatureName(f))] = PoolJson(*p);
        }
      }
      // The whole role, also when --agent selects one of its agents.
      json members = json::array();
      for (const std::string& name : store.AgentNames()) {
        if (store.AgentRole(name) == role) members.push_back(name);
      }
      pools.push_back(json{{"role", role}, {"agents", members}, {"features", features}});
    }
    json doc{{"format", "vigil-baseline-show"},
             {"version", kShowFormatVersion},
             {"state", loaded.path},
             {"sketch",
              {{"alpha", store.config().sketch_alpha},
               {"max_bins", store.config().sketch_max_bins}}},
             {"agent_count", store.agent_count()},
             {"rejected_values", store.rejected_values()},
             {"rejected_agents", store.rejected_agents()},
             {"agents", std::move(agents)},
             {"pools", std::move(pools)}};
    std::cout << vigil::format::Dump(doc, 2) << "\n";
  } else {
    std::cout << "baselines in " << vigil::format::EscapeText(loaded.path) << ": "
              << store.agent_count() << (store.agent_count() == 1 ? " agent" : " agents") << " in "
              << role_count << (role_count == 1 ? " role" : " roles") << "; rejected "
              << store.rejected_values() << " values, " << store.rejected_agents() << " agents\n";
    if (roles.empty()) std::cout << "no agents yet\n";
    for (const auto& [role, names] : roles) {
      std::cout << "\n== role " << vigil::format::EscapeText(role) << " ==\n";
      for (const std::string& name : names) {
        PrintAgent(Gather(store, name));
        std::cout << "\n";
      }
      std::vector<bl::PoolSummary> pools;
      for (bl::Feature f : bl::kAllFeatures) {
        if (std::optional<bl::PoolSummary> p = store.Pool(role, f)) pools.push_back(*p);
      }
      size_t members = 0;
      for (const std::string& name : store.AgentNames()) {
        if (store.AgentRole(name) == role) ++members;
      }
      PrintPools(role, pools, members);
    }
  }
  std::cout.flush();
  if (!std::cout) return ErrorLine(kExitError, "writing to stdout failed");
  return kExitOk;
}

namespace {

int WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// temp file next to `out`, fsync, rename over it, fsync the directory.
int WriteAtomically(const std::string& out, const std::string& data, const std::string& state) {
  struct stat st {};
  if (::lstat(out.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      return ErrorLine(kExitError, "refusing to overwrite " + out + ": not a regular file");
    }
    struct stat sst {};
    if (::stat(state.c_str(), &sst) == 0 && sst.st_dev == st.st_dev && sst.st_ino == st.st_ino) {
      return ErrorLine(kExitError, "refusing to overwrite " + out + ": it is the state file");
    }
  } else if (errno != ENOENT) {
    return ErrorLine(kExitError, "cannot write " + out + ": " + std::strerror(errno));
  }
  std::string tmp = out + ".XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) {
    return ErrorLine(kExitError, "cannot create a temporary file next to " + out + ": " +
                                     std::strerror(errno));
  }
  auto fail = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrorLine(kExitError, std::string(what) + " " + out + ": " + std::strerror(err));
  };
  if (::fchmod(fd, 0600) != 0) return fail("cannot write", errno);
  if (int err = WriteAll(fd, data); err != 0) return fail("cannot write", err);
  if (::fsync(fd) != 0) return fail("cannot sync", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrorLine(kExitError, "cannot write " + out + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), out.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrorLine(kExitError, "cannot rename into " + out + ": " + std::strerror(err));
  }
  const int dfd = ::open(DirOf(out).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);  // best effort: the file itself is complete
    ::close(dfd);
  }
  return kExitOk;
}

}  // namespace

int CmdBaselineExport(const std::string& state_dir, const std::string& out) {
  Loaded loaded;
  if (int rc = LoadState(state_dir, loaded); rc != kExitOk) return rc;
  // Exactly Serialize() output, as vigild writes it (no trailing newline).
  const std::string canonical = loaded.store->Serialize();
  if (out.empty() || out == "-") {
    std::cout << canonical;
    std::cout.flush();
    if (!std::cout) return ErrorLine(kExitError, "writing to stdout failed");
    return kExitOk;
  }
  return WriteAtomically(out, canonical, loaded.path);
}

}  // namespace vigilctl
