// vigilctl baseline show | export against a real state written by
// vigil::baseline::BaselineStore: output fields against the store, filters,
// export round trips, and the documented errors and exit codes. The state
// file must be byte-for-byte unchanged after every command.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "vigil/baseline/feature.h"
#include "vigil/baseline/store.h"

namespace {

namespace bl = vigil::baseline;
using nlohmann::json;

const std::string kCtl = VIGILCTL_PATH;
constexpr uint64_t kT0 = 1'790'000'000'000'000'000ull;  // 2026-09-21, CLOCK_REALTIME ns
constexpr uint64_t kSecond = 1'000'000'000ull;

struct CmdResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command line; stderr goes to a temp file read back.
CmdResult Exec(const std::string& cmd) {
  char tmpl[] = "/tmp/vigil-bl-err-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  ::close(fd);
  CmdResult r;
  FILE* p = ::popen((cmd + " 2>" + tmpl).c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = ReadAll(tmpl);
  std::remove(tmpl);
  return r;
}

// Deterministic exit samples around a per-agent scale.
bl::ExitSample Sample(const std::string& agent, const std::string& role, uint64_t t, int i,
                      double scale) {
  const double wobble = 1.0 + 0.05 * std::sin(i * 0.7) + 0.02 * ((i * 37) % 11) / 11.0;
  bl::ExitSample s;
  s.agent = agent;
  s.role = role;
  s.timestamp_ns = t;
  s.cpu_ns = static_cast<uint64_t>(2'000'000 * scale * wobble);         // ~2 ms
  s.lifetime_ns = static_cast<uint64_t>(50'000'000 * scale * wobble);   // ~50 ms
  s.max_rss_bytes = static_cast<uint64_t>(8.0 * 1048576 * scale * wobble);  // ~8 MiB
  s.faults = static_cast<uint64_t>(100 * wobble);
  s.ctx_switches = static_cast<uint64_t>(20 * wobble);
  s.syscalls = static_cast<uint64_t>(500 * wobble);
  s.cycles = 1'000'000;
  s.instructions = static_cast<uint64_t>(1'500'000 * wobble);
  return s;
}

class BaselineCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-bl-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    state_ = dir_ + "/baselines.json";
    config_.learn_samples = 20;
    auto created = bl::BaselineStore::Create(config_);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    store_.emplace(std::move(created).value());
    bl::BaselineStore& s = *store_;
    // Role web: three agents, watching (40 exits each), one of them with an
    // outlier and a new executable after learning.
    uint64_t t = kT0;
    for (int i = 0; i < 40; ++i) {
      for (const char* name : {"web-1", "web-2", "web-3"}) {
        t += kSecond;
        (void)s.ObserveExit(Sample(name, "web", t, i, name[4] == '2' ? 1.2 : 1.0));
        (void)s.ObserveExecutable(name, "web", i % 2 == 0 ? "/usr/sbin/nginx" : "/bin/sh", t);
      }
    }
    t += kSecond;
    bl::ExitSample wild = Sample("web-1", "web", t, 3, 40.0);  // far off: outliers
    EXPECT_FALSE(s.ObserveExit(wild).empty());
    EXPECT_TRUE(s.ObserveExecutable("web-1", "web", "/tmp/evil", t).has_value());
    // Role db: one agent still learning, no IPC (no hardware counters).
    for (int i = 0; i < 5; ++i) {
      t += kSecond;
      bl::ExitSample x = Sample("db-1", "db", t, i, 3.0);
      x.cycles.reset();
      x.instructions.reset();
      (void)s.ObserveExit(x);
      (void)s.ObserveExecutable("db-1", "db", "/usr/bin/postgres", t);
    }
    text_ = s.Serialize();
    WriteAll(state_, text_);
  }

  void TearDown() override {
    EXPECT_EQ(ReadAll(state_), text_) << "the state file changed";
    std::string cmd = "rm -rf " + ShellQuote(dir_);
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }

  CmdResult Ctl(const std::string& args) {
    return Exec(kCtl + " baseline " + args);
  }
  std::string DirArg() const { return " --state-dir " + ShellQuote(dir_); }

  // Replaces the state with `bad` (kept as text_ so TearDown checks it stays).
  void Corrupt(const std::string& bad) {
    text_ = bad;
    WriteAll(state_, text_);
  }

  // The line of `out` that starts (after spaces) with `prefix` under the
  // block that starts with `block`.
  static std::string LineAfter(const std::string& out, const std::string& block,
                               const std::string& prefix) {
    const size_t b = out.find(block);
    if (b == std::string::npos) return "";
    std::istringstream in(out.substr(b));
    std::string line;
    while (std::getline(in, line)) {
      const size_t start = line.find_first_not_of(' ');
      if (start != std::string::npos && line.compare(start, prefix.size(), prefix) == 0) {
        return line;
      }
    }
    return "";
  }

  std::string dir_;
  std::string state_;
  std::string text_;
  bl::BaselineConfig config_;
  std::optional<bl::BaselineStore> store_;
};

std::string Fixed(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", precision, v);
  return buf;
}

TEST_F(BaselineCliTest, HelpListsTheSubcommands) {
  CmdResult r = Ctl("--help");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("show"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("export"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--state-dir"), std::string::npos) << r.out;
  CmdResult top = Exec(kCtl + " --help");
  EXPECT_NE(top.out.find("baseline"), std::string::npos) << top.out;
  CmdResult none = Ctl("");
  EXPECT_EQ(none.code, 2) << none.out << none.err;
  EXPECT_EQ(Ctl("show --bogus" + DirArg()).code, 2);
}

TEST_F(BaselineCliTest, ShowHumanIsAnAlignedTableInOperatorUnits) {
  CmdResult r = Ctl("show" + DirArg());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("4 agents in 2 roles; rejected 0 values, 0 agents"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("== role db =="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== role web =="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("agent web-1  role web  watching  anomalies "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("agent db-1  role db  learning"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pool web  3 agents"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pool db  1 agent "), std::string::npos) << r.out;

  const bl::BaselineStore& s = *store_;
  auto cpu = s.Summary("web-2", bl::Feature::kCpuPerExec);
  ASSERT_TRUE(cpu.has_value());
  const std::string line = LineAfter(r.out, "agent web-2", "cpu_per_exec");
  ASSERT_FALSE(line.empty()) << r.out;
  EXPECT_NE(line.find(" ms "), std::string::npos) << line;
  EXPECT_NE(line.find(" watching "), std::string::npos) << line;
  EXPECT_NE(line.find(" " + Fixed(cpu->median * 1e-6, 3) + " "), std::string::npos) << line;
  EXPECT_NE(line.find(" " + Fixed(cpu->mad * 1e-6, 3) + " "), std::string::npos) << line;
  EXPECT_NE(line.find(" " + std::to_string(cpu->samples) + " "), std::string::npos) << line;
  auto rss = s.Summary("web-2", bl::Feature::kMaxRss);
  const std::string rss_line = LineAfter(r.out, "agent web-2", "max_rss");
  EXPECT_NE(rss_line.find(" MiB "), std::string::npos) << rss_line;
  EXPECT_NE(rss_line.find(" " + Fixed(rss->median / 1048576.0, 2) + " "), std::string::npos)
      << rss_line;
  EXPECT_NE(LineAfter(r.out, "agent web-2", "fault_rate").find(" /s "), std::string::npos);
  // db-1 has no IPC samples: no ipc row in its table.
  const std::string db = r.out.substr(r.out.find("agent db-1"));
  EXPECT_EQ(db.substr(0, db.find("pool db")).find("ipc"), std::string::npos) << db;

  // Aligned: the header's columns line up with the rows' right edges.
  const std::string header = LineAfter(r.out, "agent web-2", "feature");
  ASSERT_FALSE(header.empty());
  EXPECT_EQ(header.find("samples") + std::string("samples").size(),
            line.find(" " + std::to_string(cpu->samples) + " ") + 1 +
                std::to_string(cpu->samples).size())
      << header << "\n"
      << line;
}

TEST_F(BaselineCliTest, ShowJsonMatchesTheStore) {
  CmdResult r = Ctl("show --json" + DirArg());
  ASSERT_EQ(r.code, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["format"], "vigil-baseline-show");
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["state"], state_);
  EXPECT_EQ(doc["agent_count"], 4);
  const bl::BaselineStore& s = *store_;
  ASSERT_EQ(doc["agents"].size(), 4u);
  std::vector<std::string> names;
  for (const json& a : doc["agents"]) names.push_back(a["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"db-1", "web-1", "web-2", "web-3"}));  // by role
  for (const json& a : doc["agents"]) {
    const std::string name = a["name"];
    SCOPED_TRACE(name);
    EXPECT_EQ(a["role"], *s.AgentRole(name));
    EXPECT_EQ(a["phase"], name == "db-1" ? "learning" : "watching");
    auto act = s.AgentActivity(name);
    ASSERT_TRUE(act.has_value());
    EXPECT_EQ(a["anomalies"], act->anomalies);
    EXPECT_EQ(a["last_ns"], act->last_ns);
    EXPECT_EQ(a["first_ns"], act->first_ns);
    EXPECT_EQ(a["executables"]["count"], s.Executables(name).size());
    EXPECT_EQ(a["executables"]["phase"], bl::PhaseName(*s.ExecutablesPhase(name)));
    EXPECT_EQ(a["executables"]["observations"], act->observations);
    size_t features = 0;
    for (bl::Feature f : bl::kAllFeatures) {
      auto sum = s.Summary(name, f);
      const std::string fname(bl::FeatureName(f));
      if (!sum) {
        EXPECT_FALSE(a["features"].contains(fname));
        continue;
      }
      SCOPED_TRACE(fname);
      ++features;
      const json& j = a["features"][fname];
      EXPECT_EQ(j["phase"], bl::PhaseName(sum->phase));
      EXPECT_EQ(j["samples"], sum->samples);
      EXPECT_DOUBLE_EQ(j["median"].get<double>(), sum->median);
      EXPECT_DOUBLE_EQ(j["mad"].get<double>(), sum->mad);
      EXPECT_DOUBLE_EQ(j["p95"].get<double>(), sum->p95);
      EXPECT_DOUBLE_EQ(j["p99"].get<double>(), *s.Quantile(name, f, 0.99));
      EXPECT_DOUBLE_EQ(j["mean"].get<double>(), sum->mean);
      EXPECT_DOUBLE_EQ(j["stddev"].get<double>(), sum->stddev);
      EXPECT_DOUBLE_EQ(j["ewma"].get<double>(), sum->ewma);
      EXPECT_DOUBLE_EQ(j["min"].get<double>(), sum->min);
      EXPECT_DOUBLE_EQ(j["max"].get<double>(), sum->max);
      auto fa = s.FeatureActivity(name, f);
      EXPECT_EQ(j["anomalies"], fa->anomalies);
      EXPECT_EQ(j["last_ns"], fa->last_ns);
      EXPECT_EQ(j["last_update"].get<std::string>().substr(0, 11), "2026-09-21T");
    }
    EXPECT_EQ(a["features"].size(), features);
    EXPECT_EQ(features, name == "db-1" ? 6u : 7u);
  }
  // web-1's outliers and new executable are counted.
  EXPECT_GE(doc["agents"][1]["anomalies"].get<uint64_t>(), 2u);
  EXPECT_EQ(doc["agents"][1]["features"]["cpu_per_exec"]["unit"], "ns");
  EXPECT_EQ(doc["agents"][1]["features"]["max_rss"]["unit"], "bytes");
  EXPECT_EQ(doc["agents"][1]["features"]["fault_rate"]["unit"], "per_second");

  ASSERT_EQ(doc["pools"].size(), 2u);
  for (const json& p : doc["pools"]) {
    const std::string role = p["role"];
    SCOPED_TRACE(role);
    EXPECT_EQ(p["agents"].size(), role == "web" ? 3u : 1u);
    for (bl::Feature f : bl::kAllFeatures) {
      auto pool = s.Pool(role, f);
      const std::string fname(bl::FeatureName(f));
      if (!pool) {
        EXPECT_FALSE(p["features"].contains(fname));
        continue;
      }
      const json& j = p["features"][fname];
      EXPECT_EQ(j["agents"], pool->agents);
      EXPECT_EQ(j["watching_agents"], pool->watching_agents);
      EXPECT_EQ(j["samples"], pool->stats.count());
      EXPECT_DOUBLE_EQ(j["mean"].get<double>(), pool->stats.mean());
      EXPECT_DOUBLE_EQ(j["median_of_medians"].get<double>(), pool->median_of_medians);
      EXPECT_DOUBLE_EQ(j["mad_of_medians"].get<double>(), pool->mad_of_medians);
      EXPECT_DOUBLE_EQ(j["p99"].get<double>(), *pool->sketch.Quantile(0.99));
    }
  }
}

TEST_F(BaselineCliTest, AgentAndRoleFilters) {
  CmdResult r = Ctl("show --json --agent web-2" + DirArg());
  ASSERT_EQ(r.code, 0) << r.err;
  json doc = json::parse(r.out);
  ASSERT_EQ(doc["agents"].size(), 1u);
  EXPECT_EQ(doc["agents"][0]["name"], "web-2");
  ASSERT_EQ(doc["pools"].size(), 1u);
  EXPECT_EQ(doc["pools"][0]["role"], "web");
  EXPECT_EQ(doc["pools"][0]["agents"].size(), 3u);  // the whole pool

  CmdResult human = Ctl("show --agent db-1" + DirArg());
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_NE(human.out.find("agent db-1"), std::string::npos);
  EXPECT_EQ(human.out.find("agent web-"), std::string::npos) << human.out;

  // --state-dir also before the subcommand.
  CmdResult role = Exec(kCtl + " baseline" + DirArg() + " show --json --role db");
  ASSERT_EQ(role.code, 0) << role.err;
  json rdoc = json::parse(role.out);
  ASSERT_EQ(rdoc["agents"].size(), 1u);
  EXPECT_EQ(rdoc["agents"][0]["name"], "db-1");

  CmdResult mismatch = Ctl("show --agent db-1 --role web" + DirArg());
  EXPECT_EQ(mismatch.code, 1) << mismatch.out;
}

TEST_F(BaselineCliTest, UnknownAgentOrRoleIsExitOneWithTheListHint) {
  CmdResult r = Ctl("show --agent nope" + DirArg());
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find("no baseline for agent \"nope\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("`vigilctl baseline show` lists the agents"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  CmdResult role = Ctl("show --role nope" + DirArg());
  EXPECT_EQ(role.code, 1);
  EXPECT_NE(role.err.find("no baseline for role \"nope\""), std::string::npos) << role.err;
}

TEST_F(BaselineCliTest, ExportToStdoutIsTheCanonicalState) {
  CmdResult r = Ctl("export" + DirArg());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, store_->Serialize());
  auto parsed = bl::BaselineStore::Parse(r.out, config_);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->AgentNames(), store_->AgentNames());

  // Non-canonical input (pretty-printed, same content) comes out canonical.
  Corrupt(json::parse(text_).dump(4));
  CmdResult pretty = Ctl("export" + DirArg());
  ASSERT_EQ(pretty.code, 0) << pretty.err;
  EXPECT_EQ(pretty.out, store_->Serialize());
}

TEST_F(BaselineCliTest, ExportToAFileIsAtomicPrivateAndRoundTrips) {
  const std::string out = dir_ + "/export.json";
  WriteAll(out, "old content");
  ::chmod(out.c_str(), 0644);
  CmdResult r = Ctl("export -o " + ShellQuote(out) + DirArg());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  const std::string written = ReadAll(out);
  EXPECT_EQ(written, store_->Serialize());
  auto parsed = bl::BaselineStore::Parse(written, config_);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->Serialize(), written);
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // No temporary file is left behind.
  DIR* d = ::opendir(dir_.c_str());
  ASSERT_NE(d, nullptr);
  int entries = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++entries;
  }
  ::closedir(d);
  EXPECT_EQ(entries, 2);  // baselines.json, export.json
}

TEST_F(BaselineCliTest, ExportRefusesNonRegularFilesAndTheStateFile) {
  const std::string sub = dir_ + "/a-directory";
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  CmdResult r = Ctl("export -o " + ShellQuote(sub) + DirArg());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("refusing to overwrite"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
  struct stat st {};
  EXPECT_EQ(::stat(sub.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));

  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink("/dev/null", link.c_str()), 0);
  CmdResult l = Ctl("export -o " + ShellQuote(link) + DirArg());
  EXPECT_EQ(l.code, 1);
  EXPECT_NE(l.err.find("not a regular file"), std::string::npos) << l.err;

  CmdResult self = Ctl("export -o " + ShellQuote(state_) + DirArg());
  EXPECT_EQ(self.code, 1);
  EXPECT_NE(self.err.find("it is the state file"), std::string::npos) << self.err;

  CmdResult nodir = Ctl("export -o " + ShellQuote(dir_ + "/no/such/dir/x.json") + DirArg());
  EXPECT_EQ(nodir.code, 1) << nodir.err;
}

TEST_F(BaselineCliTest, MissingStateIsExitOneNoBaselinesYet) {
  const std::string missing = dir_ + "/nonexistent";
  for (const char* cmd : {"show", "show --json", "export"}) {
    CmdResult r = Ctl(std::string(cmd) + " --state-dir " + ShellQuote(missing));
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(r.err, "vigilctl: no baselines yet: vigild has not saved state in " + missing + "\n");
  }
  // The directory exists, the file does not.
  const std::string empty = dir_ + "/empty";
  ASSERT_EQ(::mkdir(empty.c_str(), 0700), 0);
  CmdResult r = Ctl("show --state-dir " + ShellQuote(empty));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "vigilctl: no baselines yet: vigild has not saved state in " + empty + "\n");
}

TEST_F(BaselineCliTest, UnreadableStateIsExitOne) {
  // A directory in the file's place.
  const std::string other = dir_ + "/other";
  ASSERT_EQ(::mkdir(other.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((other + "/baselines.json").c_str(), 0700), 0);
  CmdResult d = Ctl("show --state-dir " + ShellQuote(other));
  EXPECT_EQ(d.code, 1);
  EXPECT_NE(d.err.find("cannot read"), std::string::npos) << d.err;

  // Permission: as root only through another user.
  ASSERT_EQ(::chmod(state_.c_str(), 0600), 0);
  std::string prefix;
  if (::geteuid() == 0) {
    if (std::system("command -v setpriv >/dev/null 2>&1") != 0) GTEST_SKIP() << "no setpriv";
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    if (Exec(prefix + kCtl + " --help").code != 0) {
      GTEST_SKIP() << "vigilctl is not runnable as uid 65534";
    }
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // searchable, the file is 0600 root
  } else {
    ASSERT_EQ(::chmod(state_.c_str(), 0), 0);
  }
  CmdResult r = Exec(prefix + kCtl + " baseline show" + DirArg());
  ::chmod(state_.c_str(), 0600);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("cannot read " + state_ + ": Permission denied"), std::string::npos)
      << r.err;
}

TEST_F(BaselineCliTest, TruncatedStateIsExitSix) {
  Corrupt(text_.substr(0, text_.size() / 2));
  for (const char* cmd : {"show", "show --json", "export"}) {
    CmdResult r = Ctl(std::string(cmd) + DirArg());
    EXPECT_EQ(r.code, 6) << cmd << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find("vigilctl: malformed baseline state " + state_ + ": truncated at /"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  Corrupt("");
  EXPECT_EQ(Ctl("show" + DirArg()).code, 6);
}

TEST_F(BaselineCliTest, CorruptJsonIsExitSix) {
  std::string bad = text_;
  bad[bad.find("\"agents\":[") + 10] = '#';
  Corrupt(bad);
  CmdResult r = Ctl("show" + DirArg());
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("malformed baseline state"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("syntax"), std::string::npos) << r.err;
}

TEST_F(BaselineCliTest, WrongFormatOrVersionIsExitSixNamingTheMember) {
  std::string v2 = text_;
  v2.replace(v2.find("\"version\":1"), 11, "\"version\":2");
  Corrupt(v2);
  CmdResult r = Ctl("show" + DirArg());
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("unsupported version at /version: this build reads version 1"),
            std::string::npos)
      << r.err;
  CmdResult e = Ctl("export" + DirArg());
  EXPECT_EQ(e.code, 6) << e.err;
  EXPECT_TRUE(e.out.empty());

  Corrupt(R"({"format":"something-else","version":1,"agents":[]})");
  CmdResult f = Ctl("show --json" + DirArg());
  EXPECT_EQ(f.code, 6) << f.err;
  EXPECT_NE(f.err.find(" at /format: "), std::string::npos) << f.err;
}

TEST_F(BaselineCliTest, ABadMemberIsNamedByItsJsonPointer) {
  json doc = json::parse(text_);
  doc["agents"][2]["features"]["cpu_per_exec"]["welford"]["m2"] = -1.0;
  Corrupt(doc.dump());
  CmdResult r = Ctl("show" + DirArg());
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.err.find("/agents/2/features/cpu_per_exec/welford/m2"), std::string::npos) << r.err;

  json doc2 = json::parse(text_);
  doc2["sketch"]["max_bins"] = 3;
  Corrupt(doc2.dump());
  CmdResult s = Ctl("export" + DirArg());
  EXPECT_EQ(s.code, 6) << s.err;
  EXPECT_NE(s.err.find("/sketch/max_bins"), std::string::npos) << s.err;
}

TEST_F(BaselineCliTest, NonDefaultSketchParametersAreRead) {
  bl::BaselineConfig config;
  config.sketch_alpha = 0.02;
  config.sketch_max_bins = 512;
  auto created = bl::BaselineStore::Create(config);
  ASSERT_TRUE(created.ok());
  bl::BaselineStore s = std::move(created).value();
  for (int i = 0; i < 10; ++i) {
    (void)s.ObserveExit(Sample("solo", "r", kT0 + i * kSecond, i, 1.0));
  }
  Corrupt(s.Serialize());
  CmdResult r = Ctl("show --json" + DirArg());
  ASSERT_EQ(r.code, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["sketch"]["alpha"], 0.02);
  EXPECT_EQ(doc["sketch"]["max_bins"], 512);
  EXPECT_DOUBLE_EQ(doc["agents"][0]["features"]["lifetime"]["p99"].get<double>(),
                   *s.Quantile("solo", bl::Feature::kLifetime, 0.99));
  CmdResult e = Ctl("export" + DirArg());
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, text_);
}

TEST_F(BaselineCliTest, EmptyStoreShowsNoAgents) {
  auto created = bl::BaselineStore::Create(config_);
  ASSERT_TRUE(created.ok());
  Corrupt(created->Serialize());
  CmdResult r = Ctl("show" + DirArg());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no agents yet"), std::string::npos) << r.out;
  CmdResult j = Ctl("show --json" + DirArg());
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_TRUE(json::parse(j.out)["agents"].empty());
}

}  // namespace
