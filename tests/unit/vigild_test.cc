// vigild's pieces without the kernel: the state directory (atomic writes,
// locking, validation of every saved file) and the pipeline (records in,
// verdict / finding / alert lines out, baselines fed from real record
// layouts).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "config.h"
#include "line_stamp.h"
#include "liveness.h"
#include "vigil/sim/module_sim.h"
#include "pipeline.h"
#include "stages.h"
#include "state.h"
#include "test_records.h"
#include "verification_start.h"
#include "vigil/anchor_check.h"
#include "vigil/digest.h"
#include "vigil/version.h"

namespace vigil {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vigild-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

daemon::VerifierState SampleState() {
  daemon::VerifierState s;
  s.anchor.instance_id.fill(0xab);
  s.anchor.last_seq = 42;
  s.anchor.chain_head.fill(0x11);
  s.anchor.checkpoint_digest.fill(0x22);
  s.anchor.checkpoint_log_seq = 9;
  s.anchor.drops_total = 3;
  s.log_saved_seq = 12;
  s.agent_names = {{1, "web@1"}, {7, "db"}};
  s.saved_at_ns = 1700000000000000000ull;
  crypto::EcPoint key;
  std::memset(key.x, 0x31, sizeof(key.x));
  std::memset(key.y, 0x32, sizeof(key.y));
  s.anchor.key = key;
  return s;
}

TEST(StateDirTest, AtomicWriteReadAndLock) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/state";
  auto state = daemon::StateDir::Open(dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(std::filesystem::status(dir).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);
  auto missing = state->Read("nothing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(state->WriteAtomic("a.json", "one").ok());
  ASSERT_TRUE(state->WriteAtomic("a.json", "two").ok());
  EXPECT_EQ(**state->Read("a.json"), "two");
  EXPECT_FALSE(std::filesystem::exists(dir + "/a.json.tmp"));
  ASSERT_TRUE(state->Append("l", "x").ok());
  ASSERT_TRUE(state->Append("l", "y").ok());
  EXPECT_EQ(**state->Read("l"), "xy");
  // A second vigild on the same directory is refused.
  auto second = daemon::StateDir::Open(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
  auto aside = state->MoveAside("a.json");
  ASSERT_TRUE(aside.ok());
  EXPECT_FALSE(std::filesystem::exists(dir + "/a.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/" + *aside));
}

TEST(StateDirTest, WriteInPiecesReplacesOnlyWhenComplete) {
  TempDir tmp;
  auto state = daemon::StateDir::Open(tmp.path());
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state
                  ->WriteAtomicPieces("b.json",
                                      [](const daemon::StateDir::PieceWriter& write) {
                                        return write("{\"a\":") && write("1}");
                                      })
                  .ok());
  EXPECT_EQ(**state->Read("b.json"), "{\"a\":1}");
  // A producer that gives up (e.g. the store could not be serialized)
  // leaves the previous file as it was.
  vigil::Status st = state->WriteAtomicPieces(
      "b.json", [](const daemon::StateDir::PieceWriter& write) { return write("{") && false; });
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("stopped early"), std::string::npos) << st.ToString();
  EXPECT_EQ(**state->Read("b.json"), "{\"a\":1}");
}

TEST(StateDirTest, NonRegularFileIsAnError) {
  TempDir tmp;
  auto state = daemon::StateDir::Open(tmp.path());
  ASSERT_TRUE(state.ok());
  std::filesystem::create_directory(tmp.path() + "/verifier.json");
  auto r = state->Read("verifier.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a regular file"), std::string::npos);
}

// Every boot starts a saved log: --keep-instance-logs bounds how many stay.
// The running instance's file is kept whatever its age; of the others the
// most recently appended go last; other files are not touched.
TEST(StateDirTest, PruneInstanceLogsKeepsTheCurrentAndTheNewest) {
  TempDir tmp;
  auto state = daemon::StateDir::Open(tmp.path());
  ASSERT_TRUE(state.ok());
  const std::string current = "log-00.bin";
  // log-00 (current) is the oldest file; log-01 .. log-05 get newer.
  for (int i = 0; i <= 5; ++i) {
    const std::string name = "log-0" + std::to_string(i) + ".bin";
    ASSERT_TRUE(state->Append(name, "x").ok());
    const struct timespec times[2] = {{1000 + i, 0}, {1000 + i, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (tmp.path() + "/" + name).c_str(), times, 0), 0);
  }
  ASSERT_TRUE(state->WriteAtomic("verifier.json", "{}").ok());
  ASSERT_TRUE(state->WriteAtomic("log-notes.txt", "not a log").ok());
  std::filesystem::create_directory(tmp.path() + "/log-dir.bin");

  auto none = daemon::PruneInstanceLogs(*state, current, 0);  // 0: keep all
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto removed = daemon::PruneInstanceLogs(*state, current, 3);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, (std::vector<std::string>{"log-03.bin", "log-02.bin", "log-01.bin"}));
  for (const char* kept : {"log-00.bin", "log-05.bin", "log-04.bin", "verifier.json",
                           "log-notes.txt", "log-dir.bin"}) {
    EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/" + kept)) << kept;
  }
  for (const std::string& gone : *removed) {
    EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/" + gone)) << gone;
  }
  // Keeping only the current instance's log removes every other one, and
  // a current log that does not exist yet still counts as kept.
  auto rest = daemon::PruneInstanceLogs(*state, "log-ff.bin", 1);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (std::vector<std::string>{"log-05.bin", "log-04.bin", "log-00.bin"}));
}

// A module that committed nothing yet still checkpoints (heartbeats): an
// anchor on such a checkpoint has last_seq 0 and must load again.
TEST(VerifierStateTest, AnAnchorOnACheckpointWithoutEventsLoads) {
  daemon::VerifierState s = SampleState();
  s.anchor.last_seq = 0;
  auto back = daemon::ParseVerifierState(daemon::SerializeVerifierState(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->anchor.last_seq, 0u);
  EXPECT_EQ(back->anchor.checkpoint_log_seq, 9u);
}

TEST(VerifierStateTest, RoundTrips) {
  const daemon::VerifierState s = SampleState();
  auto back = daemon::ParseVerifierState(daemon::SerializeVerifierState(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->anchor.instance_id, s.anchor.instance_id);
  EXPECT_EQ(back->anchor.last_seq, 42u);
  EXPECT_EQ(back->anchor.chain_head, s.anchor.chain_head);
  EXPECT_EQ(back->anchor.checkpoint_digest, s.anchor.checkpoint_digest);
  EXPECT_EQ(back->anchor.checkpoint_log_seq, 9u);
  EXPECT_EQ(back->anchor.drops_total, 3u);
  EXPECT_EQ(back->log_saved_seq, 12u);
  EXPECT_EQ(back->agent_names, s.agent_names);
  ASSERT_TRUE(back->anchor.key.has_value());
  EXPECT_EQ(std::memcmp(back->anchor.key->x, s.anchor.key->x, 32), 0);
  EXPECT_EQ(std::memcmp(back->anchor.key->y, s.anchor.key->y, 32), 0);
  daemon::VerifierState no_key = s;
  no_key.anchor.key.reset();
  auto back2 = daemon::ParseVerifierState(daemon::SerializeVerifierState(no_key));
  ASSERT_TRUE(back2.ok());
  EXPECT_FALSE(back2->anchor.key.has_value());
}

TEST(VerifierStateTest, BadInputNamesTheMember) {
  const std::string good = daemon::SerializeVerifierState(SampleState());
  struct Case {
    std::function<void(json&)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["format"] = "other"; }, "/format"},
      {[](json& j) { j["version"] = 2; }, "/version"},
      {[](json& j) { j["anchor"]["chain_head"] = "abc"; }, "/anchor/chain_head"},
      {[](json& j) { j["anchor"]["last_seq"] = -1; }, "/anchor/last_seq"},
      {[](json& j) { j["anchor"]["last_seq"] = "42"; }, "/anchor/last_seq"},
      {[](json& j) { j["anchor"].erase("drops_total"); }, "/anchor/drops_total"},
      {[](json& j) { j["anchor"]["checkpoint_log_seq"] = 0; }, "/anchor"},
      {[](json& j) { j["agents"]["x"] = "n"; }, "/agents/x"},
      {[](json& j) { j["agents"]["0"] = "n"; }, "/agents/0"},
      {[](json& j) { j["agents"]["5"] = ""; }, "/agents/5"},
      {[](json& j) { j["agents"]["5"] = std::string(200, 'a'); }, "/agents/5"},
      {[](json& j) { j["surprise"] = 1; }, "/surprise"},
      {[](json& j) { j["instance_id"] = 7; }, "/instance_id"},
      {[](json& j) { j["key"]["x"] = "00"; }, "/key/x"},
      {[](json& j) { j.erase("key"); }, "/key"},
      {[](json& j) { j["key"] = 5; }, "/key"},
  };
  for (const Case& c : cases) {
    json j = json::parse(good);
    c.edit(j);
    auto r = daemon::ParseVerifierState(j.dump());
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
  auto truncated = daemon::ParseVerifierState(good.substr(0, good.size() / 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), ErrorCode::kTruncated);
  auto huge = daemon::ParseVerifierState("{\"format\": 1e999}");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), ErrorCode::kMalformed);
  auto garbage = daemon::ParseVerifierState("}{");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), ErrorCode::kMalformed);
}

TEST(OpenEventsTest, RoundTripSkipsCoveredAndRejectsOthers) {
  sim::ModuleSim sim;
  std::vector<records::Record> events;
  for (int i = 0; i < 5; ++i) events.push_back(sim.Commit());
  const std::string bytes = daemon::SerializeOpenEvents(events);
  auto all = daemon::ParseOpenEvents(bytes, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->events.size(), 5u);
  EXPECT_EQ(all->dropped_tail_bytes, 0u);
  auto after = daemon::ParseOpenEvents(bytes, 3);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->events.size(), 2u);
  EXPECT_EQ(after->events.front().seq(), 4u);
  // An append cut short by a crash: the whole records are kept.
  auto cut = daemon::ParseOpenEvents(bytes.substr(0, bytes.size() - 7), 0);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->events.size(), 4u);
  EXPECT_EQ(cut->dropped_tail_bytes, events.back().bytes().size() - 7);
  // Corruption inside is an error.
  std::string corrupt = bytes;
  corrupt[4] = 0x7f;  // the first record's size field
  EXPECT_FALSE(daemon::ParseOpenEvents(corrupt, 0).ok());
  // A log record does not belong there.
  std::string with_log = bytes;
  const auto& key = sim.log().front();
  with_log.append(reinterpret_cast<const char*>(key.bytes().data()), key.bytes().size());
  auto bad = daemon::ParseOpenEvents(with_log, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not a committed event"), std::string::npos);
}

TEST(SavedLogTest, LastSeqAndACutTail) {
  sim::ModuleSim sim;
  sim.Commit();
  sim.Checkpoint();
  std::string bytes;
  for (const auto& r : sim.log()) {
    bytes.append(reinterpret_cast<const char*>(r.bytes().data()), r.bytes().size());
  }
  const std::span<const uint8_t> id(sim.instance());
  auto whole = daemon::ScanSavedLog(bytes, id);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->complete_bytes, bytes.size());
  EXPECT_EQ(whole->records, sim.log().size());
  EXPECT_EQ(whole->last_seq, sim.log().back().seq());
  auto cut = daemon::ScanSavedLog(bytes.substr(0, bytes.size() - 5), id);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(cut->complete_bytes, bytes.size() - sim.log().back().bytes().size());
  EXPECT_EQ(cut->last_seq, sim.log()[sim.log().size() - 2].seq());
  std::string corrupt = bytes;
  corrupt[0] = 0x7f;  // the first record's type
  auto bad = daemon::ScanSavedLog(corrupt, id);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("at byte 0"), std::string::npos);
  auto empty = daemon::ScanSavedLog("", id);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->last_seq, 0u);
  EXPECT_EQ(empty->records, 0u);
}

TEST(SavedLogTest, AFileIsScannedInPiecesAndItsCutTailTruncated) {
  sim::ModuleSim sim;
  for (int i = 0; i < 3; ++i) {
    sim.Commit();
    sim.Checkpoint();
  }
  std::string bytes;
  for (const auto& r : sim.log()) {
    bytes.append(reinterpret_cast<const char*>(r.bytes().data()), r.bytes().size());
  }
  const std::span<const uint8_t> id(sim.instance());
  const std::string cut = bytes.substr(0, bytes.size() - 7);  // an interrupted append
  TempDir tmp;
  auto state = daemon::StateDir::Open(tmp.path());
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state->WriteAtomic("log-x.bin", cut).ok());
  auto expect = daemon::ScanSavedLog(cut, id);
  ASSERT_TRUE(expect.ok());
  // Pieces smaller than a record, and of an odd size, split records anywhere.
  for (size_t piece : {size_t{1}, size_t{13}, size_t{64}, size_t{1} << 20}) {
    auto opened = state->OpenRead("log-x.bin");
    ASSERT_TRUE(opened.ok() && opened->has_value());
    auto got = daemon::ScanSavedLogFile((*opened)->fd.get(), id, piece);
    ASSERT_TRUE(got.ok()) << piece << ": " << got.status().ToString();
    EXPECT_EQ(got->complete_bytes, expect->complete_bytes) << piece;
    EXPECT_EQ(got->last_seq, expect->last_seq) << piece;
    EXPECT_EQ(got->records, expect->records) << piece;
    EXPECT_EQ(got->scanned_bytes, cut.size()) << piece;
  }
  EXPECT_LT(expect->complete_bytes, expect->scanned_bytes);  // the cut tail shows
  ASSERT_TRUE(state->Truncate("log-x.bin", expect->complete_bytes).ok());
  EXPECT_EQ(**state->Read("log-x.bin"), bytes.substr(0, expect->complete_bytes));
  // A bad record in a later piece is reported at its byte offset.
  std::string bad = bytes;
  bad[sim.log()[0].bytes().size()] = 0x7f;  // the second record's type
  ASSERT_TRUE(state->WriteAtomic("log-y.bin", bad).ok());
  auto opened = state->OpenRead("log-y.bin");
  ASSERT_TRUE(opened.ok() && opened->has_value());
  auto refused = daemon::ScanSavedLogFile((*opened)->fd.get(), id, 16);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("at byte " +
                                            std::to_string(sim.log()[0].bytes().size())),
            std::string::npos)
      << refused.status().message();
}

TEST(SavedLogTest, AnotherInstanceOrAnotherOrderIsRefused) {
  sim::ModuleSim sim;
  sim.Commit();
  sim.Checkpoint();
  std::string bytes;
  for (const auto& r : sim.log()) {
    bytes.append(reinterpret_cast<const char*>(r.bytes().data()), r.bytes().size());
  }
  chain::InstanceId other = sim.instance();
  other[0] ^= 1;
  auto foreign = daemon::ScanSavedLog(bytes, other);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("another module instance"), std::string::npos)
      << foreign.status().message();
  // The same records twice: seqs go back, as when two runs appended the
  // same stretch of the log.
  auto twice = daemon::ScanSavedLog(bytes + bytes, std::span<const uint8_t>(sim.instance()));
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("not the module's log order"), std::string::npos)
      << twice.status().message();
  EXPECT_EQ(daemon::LogFileName(std::span<const uint8_t>(sim.instance())),
            "log-" + crypto::ToHex(std::span<const uint8_t>(sim.instance())) + ".bin");
}

TEST(FeaturesTest, ExitAndSampleGiveTheDocumentedFeatures) {
  auto exit = testing::MakeExit(1, 10, 0, 0);
  exit.utime_ns = 3'000'000;
  exit.stime_ns = 1'000'000;
  exit.lifetime_ns = 2'000'000'000;
  exit.maxrss_kb = 2048;
  exit.min_flt = 90;
  exit.maj_flt = 10;
  exit.nvcsw = 30;
  exit.nivcsw = 10;
  auto f = daemon::FeaturesOf(testing::ToRecord(exit));
  std::map<baseline::Feature, double> got;
  for (const auto& v : f) got[v.feature] = v.value;
  EXPECT_EQ(got.size(), 5u);
  EXPECT_DOUBLE_EQ(got[baseline::Feature::kCpuPerExec], 4e6);
  EXPECT_DOUBLE_EQ(got[baseline::Feature::kLifetime], 2e9);
  EXPECT_DOUBLE_EQ(got[baseline::Feature::kMaxRss], 2048.0 * 1024);
  EXPECT_DOUBLE_EQ(got[baseline::Feature::kFaultRate], 50.0);
  EXPECT_DOUBLE_EQ(got[baseline::Feature::kCtxSwitchRate], 20.0);

  auto s = testing::Blank<vigil_ev_sample>(VIGIL_EV_SAMPLE, 2);
  s.interval_ns = 500'000'000;
  s.cycles = 1000;
  s.instructions = 2500;
  s.syscalls = 40;
  EXPECT_TRUE(daemon::FeaturesOf(testing::ToRecord(s)).empty());  // nothing measured
  s.flags = VIGIL_SAMPLE_F_HW | VIGIL_SAMPLE_F_SYSCALLS;
  got.clear();
  for (const auto& v : daemon::FeaturesOf(testing::ToRecord(s))) got[v.feature] = v.value;
  EXPECT_EQ(got.size(), 2u);
  EXPECT_DOUBLE_EQ(got[baseline::Feature::kSyscallRate], 80.0);
  EXPECT_DOUBLE_EQ(got[baseline::Feature::kIpc], 2.5);
}

TEST(FeaturesTest, RoleIsTheNameBeforeTheLastAt) {
  EXPECT_EQ(daemon::RoleOf("checker@3"), "checker");
  EXPECT_EQ(daemon::RoleOf("a@b@c"), "a@b");
  EXPECT_EQ(daemon::RoleOf("solo"), "solo");
  EXPECT_EQ(daemon::RoleOf("@odd"), "@odd");
}

std::vector<json> Lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// One pipeline as the tests drive it: JSON lines in `out`, metrics in
// `registry`.
struct PipelineRig {
  explicit PipelineRig(std::optional<verify::StreamVerifier> verifier,
                       daemon::PipelineOptions options = {}, baseline::BaselineConfig config = {}) {
    auto store = baseline::BaselineStore::Create(config);
    if (!store.ok()) throw std::runtime_error(store.status().ToString());
    auto made = daemon::Pipeline::Create(out, registry, std::move(store).value(),
                                         std::move(verifier), options);
    if (!made.ok()) throw std::runtime_error(made.status().ToString());
    p = std::move(made).value();
  }
  // What the pipeline wrote so far (its queued lines included).
  std::string Output() {
    p->FlushLines();
    return out.str();
  }
  metrics::Registry registry;
  std::ostringstream out;
  std::unique_ptr<daemon::Pipeline> p;
};

// Lines are queued in chunks; Tick and Finish hand them all to the stream
// (vigild flushes the stream after each).
TEST(PipelineTest, TickAndFinishHandEveryLineToTheStream) {
  sim::ModuleSim sim;
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}));
  rig.p->OnEvent(sim.Commit(), 1);
  rig.p->Tick(1, 1);
  ASSERT_EQ(Lines(rig.out.str()).size(), 1u) << rig.out.str();
  EXPECT_EQ(Lines(rig.out.str())[0].at("type"), "exec");
  rig.p->OnEvent(sim.Commit(), 2);
  rig.p->Finish();
  EXPECT_EQ(Lines(rig.out.str()).size(), 2u) << rig.out.str();
}

TEST(PipelineTest, VerdictsFindingsAndMetricsFromAVerifiedStream) {
  sim::ModuleSim sim;
  std::vector<std::string> sunk;
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}));
  rig.p->set_verdict_sink([&](const std::string& line) { sunk.push_back(line); });
  std::vector<records::Record> events;
  for (int i = 0; i < 4; ++i) events.push_back(sim.Commit());
  for (const auto& e : events) rig.p->OnEvent(e, 1);
  rig.p->OnEvent(events[1], 2);  // a duplicate
  sim.Checkpoint();
  for (const auto& r : sim.log()) rig.p->OnLog(r);
  auto lines = Lines(rig.Output());
  size_t records = 0, checkpoints = 0, findings = 0, tainted = 0;
  for (const json& j : lines) {
    const std::string type = j.at("type");
    if (type == "exec") records++;
    if (type == "finding" && j.at("kind") == "baseline_tainted") {
      // agent 1 learnt from seqs 1..4 (and the duplicate) before the verdict
      tainted++;
      EXPECT_EQ(j.at("agent"), "agent-1") << j.dump();
      EXPECT_EQ(j.at("seq"), 2) << j.dump();
      EXPECT_NE(j.at("reason").get<std::string>().find("seqs 2..4"), std::string::npos)
          << j.dump();
    } else if (type == "finding") {
      findings++;
      EXPECT_EQ(j.at("kind"), "duplicate");
      EXPECT_EQ(j.at("seq"), 2);
    }
    if (type == "checkpoint") {
      checkpoints++;
      EXPECT_EQ(j.at("verdict"), "tampered");
      EXPECT_EQ(j.at("bad_seq"), 2);
      EXPECT_EQ(j.at("first_seq"), 1);
      EXPECT_EQ(j.at("last_seq"), 4);
    }
  }
  EXPECT_EQ(records, 5u);
  EXPECT_EQ(checkpoints, 1u);
  EXPECT_EQ(findings, 1u);
  EXPECT_EQ(tainted, 1u);
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_EQ(json::parse(sunk[0]).at("verdict"), "tampered");
  rig.p->FlushMetrics();
  const std::string metrics = rig.registry.Render();
  EXPECT_NE(metrics.find("vigil_checkpoints_total{verdict=\"tampered\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vigil_checkpoints_total{verdict=\"verified\"} 0"), std::string::npos);
  EXPECT_NE(metrics.find("vigil_records_total{type=\"exec\"} 5"), std::string::npos);
  EXPECT_NE(metrics.find("vigil_findings_total{kind=\"duplicate\"} 1"), std::string::npos);
}

TEST(PipelineTest, OnlyATamperedRangeTaintsTheBaselinesThatLearntFromIt) {
  sim::ModuleSim sim;
  daemon::PipelineOptions opt;
  opt.emit_records = false;
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}), opt);
  rig.p->SetAgentNames({{1, "web@1"}});
  for (const auto& r : sim.log()) rig.p->OnLog(r);
  for (int i = 0; i < 3; ++i) rig.p->OnEvent(sim.Commit(), 1);  // seqs 1..3
  for (const auto& r : sim.Checkpoint()) rig.p->OnLog(r);  // signed (no anchor check here)
  std::vector<records::Record> next;
  for (int i = 0; i < 3; ++i) next.push_back(sim.Commit());  // seqs 4..6
  for (const auto& e : next) rig.p->OnEvent(e, 2);
  rig.p->OnEvent(next[1], 3);  // seq 5 replayed: learnt twice
  for (const auto& r : sim.Checkpoint()) rig.p->OnLog(r);
  std::vector<std::string> verdicts;
  std::vector<json> tainted;
  for (const json& j : Lines(rig.Output())) {
    if (j.at("type") == "checkpoint") verdicts.push_back(j.at("verdict"));
    if (j.at("type") == "finding" && j.at("kind") == "baseline_tainted") tainted.push_back(j);
  }
  ASSERT_EQ(verdicts, (std::vector<std::string>{"signed", "tampered"})) << rig.Output();
  ASSERT_EQ(tainted.size(), 1u) << rig.Output();
  EXPECT_EQ(tainted[0].at("agent"), "web@1");
  EXPECT_EQ(tainted[0].at("seq"), 5);
  EXPECT_NE(tainted[0].at("reason").get<std::string>().find("seqs 5..6"), std::string::npos)
      << tainted[0].dump();
  rig.p->FlushMetrics();
  EXPECT_NE(rig.registry.Render().find("vigil_findings_total{kind=\"baseline_tainted\"} 1\n"),
            std::string::npos);
}

TEST(PipelineTest, AttestedDropsAreALossVerdictAndAMetric) {
  sim::ModuleSim sim;
  daemon::PipelineOptions opt;
  opt.emit_records = false;
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}), opt);
  for (const auto& r : sim.log()) rig.p->OnLog(r);
  for (int i = 0; i < 3; ++i) rig.p->OnEvent(sim.Commit(), 1);
  sim.AddDrops(7);  // records the BPF side could not deliver
  for (const auto& r : sim.Checkpoint()) rig.p->OnLog(r);
  auto lines = Lines(rig.Output());
  ASSERT_EQ(lines.size(), 1u) << rig.Output();
  EXPECT_EQ(lines[0].at("verdict"), "loss") << lines[0].dump();
  EXPECT_EQ(lines[0].at("new_drops"), 7) << lines[0].dump();
  rig.p->FlushMetrics();
  const std::string metrics = rig.registry.Render();
  EXPECT_NE(metrics.find("vigil_attested_loss_total{kind=\"drops\"} 7\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vigil_checkpoints_total{verdict=\"loss\"} 1\n"), std::string::npos)
      << metrics;
}

TEST(PipelineTest, ShiftedAgentRaisesAnAlertOnTheRightFeature) {
  baseline::BaselineConfig cfg;
  cfg.learn_samples = 50;
  daemon::PipelineOptions opt;
  opt.emit_records = false;
  PipelineRig rig(std::nullopt, opt, cfg);
  auto agent = testing::Blank<vigil_ev_agent>(VIGIL_EV_AGENT, 0);
  agent.hdr.agent_id = 3;
  std::strcpy(agent.name, "crawler@1");
  rig.p->OnEvent(testing::ToRecord(agent), 1);
  // Learning: lifetimes around 100 ms, everything else steady.
  uint64_t seq = 1;
  auto exit_with = [&](uint64_t lifetime_ns, uint64_t cpu_ns) {
    auto x = testing::MakeExit(seq++, 50, 0, 0);
    x.hdr.flags = 0;  // uncommitted (no module), seq kept to find it in the alert
    x.hdr.agent_id = 3;
    x.lifetime_ns = lifetime_ns;
    x.utime_ns = cpu_ns;
    x.maxrss_kb = 4096;
    return testing::ToRecord(x);
  };
  for (int i = 0; i < 60; ++i) {
    rig.p->OnEvent(exit_with(100'000'000 + (i % 7) * 1'000'000, 5'000'000 + (i % 5) * 100'000),
                  100 + i);
  }
  EXPECT_EQ(rig.p->alerts(), 0u) << rig.Output();
  // CPU per exec jumps 20x; lifetime stays.
  rig.p->OnEvent(exit_with(103'000'000, 100'000'000), 1000);
  auto lines = Lines(rig.Output());
  ASSERT_FALSE(lines.empty());
  bool cpu_alert = false;
  for (const json& j : lines) {
    ASSERT_EQ(j.at("type"), "alert") << j.dump();
    EXPECT_EQ(j.at("agent"), "crawler@1");
    EXPECT_EQ(j.at("role"), "crawler");
    EXPECT_EQ(j.at("seq"), 61) << j.dump();  // the record that moved
    EXPECT_EQ(j.at("committed"), false) << j.dump();
    if (j.at("feature") == "cpu_per_exec") cpu_alert = true;
    EXPECT_NE(j.at("feature"), "lifetime");
  }
  EXPECT_TRUE(cpu_alert) << rig.Output();
  rig.p->FlushMetrics();
  EXPECT_NE(rig.registry.Render().find("vigil_agent_alerts_total{agent=\"crawler@1\"}"),
            std::string::npos);
}

TEST(PipelineTest, AnAgentIsOneBaselineAcrossRestartsUnderNewIds) {
  baseline::BaselineConfig cfg;
  cfg.learn_samples = 20;
  daemon::PipelineOptions opt;
  opt.emit_records = false;
  PipelineRig rig(std::nullopt, opt, cfg);
  auto run = [&](uint32_t agent_id, int exits) {
    auto agent = testing::Blank<vigil_ev_agent>(VIGIL_EV_AGENT, 0);
    agent.hdr.agent_id = agent_id;
    std::strcpy(agent.name, "crawler@1");
    rig.p->OnEvent(testing::ToRecord(agent), 1);
    for (int i = 0; i < exits; ++i) {
      auto x = testing::MakeExit(0, 50, 0, 0);
      x.hdr.flags = 0;
      x.hdr.agent_id = agent_id;
      x.lifetime_ns = 100'000'000 + (i % 7) * 1'000'000;
      x.utime_ns = 5'000'000;
      x.maxrss_kb = 4096;
      rig.p->OnEvent(testing::ToRecord(x), 100 + i);
    }
  };
  run(3, 15);  // the agent's first process tree
  run(9, 15);  // restarted: a new agent id, the same name
  EXPECT_EQ(rig.p->store().agent_count(), 1u);
  auto cpu = rig.p->store().Summary("crawler@1", baseline::Feature::kCpuPerExec);
  ASSERT_TRUE(cpu.has_value());
  EXPECT_EQ(cpu->samples, 30u);
  EXPECT_EQ(cpu->phase, baseline::Phase::kWatching);  // 20 samples needed: both runs counted
  rig.p->Tick(1'000'000'000, 200);  // metrics flushed, per-agent gauges set
  const std::string text = rig.registry.Render();
  EXPECT_NE(text.find("vigil_agents 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_agent_records_total{agent=\"crawler@1\"} 32"), std::string::npos)
      << text;
  const std::string watching = "vigil_agent_watching_features{agent=\"crawler@1\"} ";
  const size_t at = text.find(watching);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GE(std::stod(text.substr(at + watching.size())), 1.0) << text;
}

TEST(PipelineTest, ARecoveredAgentRecordNamesTheAgentWithoutCountingIt) {
  sim::ModuleSim sim;
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}));
  auto agent = testing::Blank<vigil_ev_agent>(VIGIL_EV_AGENT, 1);
  agent.hdr.agent_id = 7;
  agent.hdr.flags = VIGIL_REC_F_COMMITTED;
  std::strcpy(agent.name, "bg@1");
  auto uncommitted = agent;
  uncommitted.hdr.agent_id = 8;
  uncommitted.hdr.flags = 0;
  rig.p->OnRecoveredEvent(testing::ToRecord(agent));
  rig.p->OnRecoveredEvent(testing::ToRecord(uncommitted));
  const auto names = rig.p->AgentNames();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names.at(7), "bg@1");
  EXPECT_EQ(rig.p->store().agent_count(), 0u);  // counted before the restart, not again
}

TEST(PipelineTest, WithoutTheModuleNothingIsVerified) {
  PipelineRig rig(std::nullopt);
  auto ev = testing::MakeExec(0, 10, "x", "/bin/x");
  ev.hdr.flags = VIGIL_REC_F_NO_MODULE;
  rig.p->OnEvent(testing::ToRecord(ev), 1);
  rig.p->Finish();
  for (const json& j : Lines(rig.Output())) EXPECT_NE(j.at("type"), "checkpoint");
  EXPECT_NE(rig.registry.Render().find("vigil_unattested_records_total 1"), std::string::npos);
  EXPECT_EQ(rig.p->verifier(), nullptr);
}

TEST(PipelineTest, PoolOutlierIsReportedWhenItStartsNotEveryInterval) {
  baseline::BaselineConfig cfg;
  cfg.learn_samples = 10;
  daemon::PipelineOptions opt;
  opt.emit_records = false;
  opt.pool_interval_ns = 1;
  PipelineRig rig(std::nullopt, opt, cfg);
  rig.p->SetAgentNames({{1, "w@1"}, {2, "w@2"}, {3, "w@3"}, {4, "w@4"}, {5, "w@5"}, {6, "w@6"}});
  uint64_t t = 1;
  for (int i = 0; i < 20; ++i) {
    for (uint32_t id = 1; id <= 6; ++id) {
      auto x = testing::MakeExit(0, 50, 0, 0);
      x.hdr.flags = 0;
      x.hdr.agent_id = id;
      x.lifetime_ns = 100'000'000 + (i % 3) * 1'000'000;
      x.utime_ns = (id == 6 ? 80'000'000 : 5'000'000) + (i % 4) * 100'000;
      x.maxrss_kb = 4096;
      rig.p->OnEvent(testing::ToRecord(x), t++);
    }
  }
  auto pool_alerts = [&]() {
    size_t n = 0;
    for (const json& j : Lines(rig.Output())) {
      if (j.at("type") == "alert" && j.at("alert_kind") == "pool_outlier") {
        EXPECT_EQ(j.at("agent"), "w@6") << j.dump();
        EXPECT_EQ(j.at("feature"), "cpu_per_exec") << j.dump();
        ++n;
      }
    }
    return n;
  };
  rig.p->Tick(10, t);
  EXPECT_EQ(pool_alerts(), 1u) << rig.Output();
  rig.p->Tick(20, t + 1);
  rig.p->Tick(30, t + 2);
  EXPECT_EQ(pool_alerts(), 1u) << rig.Output();
}

// ---- time, host and boot identity on every JSON line ----------------------

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(LineStampTest, Rfc3339IsUtcWithNanoseconds) {
  EXPECT_EQ(daemon::Rfc3339Utc(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(daemon::Rfc3339Utc(1700000000000000001ull), "2023-11-14T22:13:20.000000001Z");
  EXPECT_EQ(daemon::Rfc3339Utc(1709251199999999999ull), "2024-02-29T23:59:59.999999999Z");
}

TEST(LineStampTest, IdentityIsReadAndValidated) {
  TempDir dir;
  const std::string machine = dir.path() + "/machine-id";
  const std::string boot = dir.path() + "/boot_id";
  WriteText(machine, "0123456789ABCDEF0123456789abcdef\n");
  WriteText(boot, "d3b07384-d113-4ec6-a7a9-0a9fa8f7ab9e\n");
  daemon::HostIdentity id = daemon::ReadHostIdentity(machine, boot);
  EXPECT_EQ(id.host_id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(id.boot_id, "d3b07384-d113-4ec6-a7a9-0a9fa8f7ab9e");
  EXPECT_TRUE(id.problems.empty());

  // Missing files and wrong content: absent, with a reason, never a crash.
  daemon::HostIdentity missing =
      daemon::ReadHostIdentity(dir.path() + "/nope", dir.path() + "/nope2");
  EXPECT_FALSE(missing.host_id);
  EXPECT_FALSE(missing.boot_id);
  EXPECT_EQ(missing.problems.size(), 2u);
  WriteText(machine, "uninitialized\n");
  WriteText(boot, "\x1b[2Jd3b07384-d113-4ec6-a7a9-0a9fa8f7ab\n");
  daemon::HostIdentity bad = daemon::ReadHostIdentity(machine, boot);
  EXPECT_FALSE(bad.host_id);
  EXPECT_FALSE(bad.boot_id);
  EXPECT_EQ(bad.problems.size(), 2u);
  WriteText(machine, "");
  EXPECT_FALSE(daemon::ReadHostIdentity(machine, boot).host_id);
}

TEST(LineStampTest, StampSplicesValidJson) {
  daemon::HostIdentity id;
  id.host_id = "0123456789abcdef0123456789abcdef";
  uint64_t now = 1700000000123456789ull;
  daemon::LineStamper stamper(id, [&] { return now; });
  std::string line = R"({"type":"exec","seq":1})";
  stamper.Stamp(line);
  const json j = json::parse(line);
  EXPECT_EQ(j.at("type"), "exec");
  EXPECT_EQ(j.at("time"), "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(j.at("host_id"), "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(j.at("boot_id").is_null());
  std::string empty = "{}";
  now += 2'000'000'000;  // a later second: the cached prefix moves on
  stamper.Stamp(empty);
  EXPECT_EQ(json::parse(empty).at("time"), "2023-11-14T22:13:22.123456789Z");
  std::string not_object = "[1,2]";
  stamper.Stamp(not_object);
  EXPECT_EQ(not_object, "[1,2]");
}

TEST(PipelineTest, EveryLineCarriesTimeHostAndBoot) {
  sim::ModuleSim sim;
  daemon::HostIdentity id;
  id.host_id = "00000000000000000000000000000001";
  id.boot_id = "d3b07384-d113-4ec6-a7a9-0a9fa8f7ab9e";
  daemon::PipelineOptions opt;
  opt.stamper.emplace(id, [] { return uint64_t{1700000000000000000ull}; });
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}), opt);
  std::vector<std::string> sunk;
  rig.p->set_verdict_sink([&](const std::string& line) { sunk.push_back(line); });
  for (int i = 0; i < 3; ++i) rig.p->OnEvent(sim.Commit(), 1);
  sim.Checkpoint();
  for (const auto& r : sim.log()) rig.p->OnLog(r);
  rig.p->OnDecodeError("bad record");
  const auto lines = Lines(rig.Output());
  ASSERT_GE(lines.size(), 5u);  // 3 records, a verdict, a finding
  for (const json& j : lines) {
    EXPECT_EQ(j.at("time"), "2023-11-14T22:13:20.000000000Z") << j.dump();
    EXPECT_EQ(j.at("host_id"), "00000000000000000000000000000001") << j.dump();
    EXPECT_EQ(j.at("boot_id"), "d3b07384-d113-4ec6-a7a9-0a9fa8f7ab9e") << j.dump();
  }
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_EQ(json::parse(sunk[0]).at("host_id"), "00000000000000000000000000000001");
}

// --- Liveness: TRIM, stalls, instance changes, the saved anchor ----------

vigil_info Info(uint64_t log_bytes, uint64_t log_max_bytes = 65536) {
  vigil_info info;
  std::memset(&info, 0, sizeof(info));
  info.checkpoint_ms = 1000;
  info.heartbeat_ms = 10000;
  info.log_bytes = log_bytes;
  info.log_max_bytes = log_max_bytes;
  info.log_first_seq = 1;
  info.log_next_seq = 500;
  return info;
}

TEST(LogTrimmerTest, CutsAtTheSavedAnchorNeverPastTheSavedLog) {
  // Nothing decided and saved: nothing may go.
  EXPECT_EQ(daemon::TrimBefore(0, 100, 1), std::nullopt);
  // The anchor's checkpoint stays (the cut is its log seq).
  EXPECT_EQ(daemon::TrimBefore(40, 100, 1), std::optional<uint64_t>(40));
  // Never a record not yet fsynced to the saved log.
  EXPECT_EQ(daemon::TrimBefore(40, 20, 1), std::optional<uint64_t>(21));
  // Nothing older than what the module holds: no TRIM (it would write a BASE).
  EXPECT_EQ(daemon::TrimBefore(40, 100, 40), std::nullopt);
}

TEST(LogTrimmerTest, TrimsWhenFullEnoughAndHandlesEagainAndSeal) {
  std::vector<uint64_t> calls;
  Result<uint64_t> answer = uint64_t{7};
  daemon::LogTrimmer trimmer(
      [&](uint64_t before) {
        calls.push_back(before);
        return answer;
      },
      daemon::TrimOptions{0.5});
  using Kind = daemon::LogTrimmer::Outcome::Kind;
  // Below half full: not due, no ioctl.
  EXPECT_FALSE(trimmer.Due(Info(30000)));
  EXPECT_EQ(trimmer.MaybeTrim(Info(30000), 40, 100).kind, Kind::kNothing);
  EXPECT_TRUE(calls.empty());
  // Half full: trimmed up to the saved anchor's checkpoint.
  auto o = trimmer.MaybeTrim(Info(40000), 40, 100);
  EXPECT_EQ(o.kind, Kind::kTrimmed);
  EXPECT_EQ(o.before_seq, 40u);
  EXPECT_EQ(o.trimmed, 7u);
  EXPECT_EQ(calls, std::vector<uint64_t>{40});
  // A refusal at the cap makes it due even when the log looks emptier.
  vigil_info refused = Info(1000);
  refused.log_refused = 3;
  EXPECT_TRUE(trimmer.Due(refused));
  // EAGAIN (an extend pending): retry later, not an error.
  answer = Status::Error(ErrorCode::kUnavailable, "pending");
  EXPECT_EQ(trimmer.MaybeTrim(Info(60000), 41, 100).kind, Kind::kRetryLater);
  // ESHUTDOWN: sealed, never again.
  answer = Status::Error(ErrorCode::kFailedPrecondition, "sealed");
  EXPECT_EQ(trimmer.MaybeTrim(Info(60000), 42, 100).kind, Kind::kSealed);
  EXPECT_TRUE(trimmer.sealed());
  EXPECT_FALSE(trimmer.Due(Info(60000)));
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_EQ(trimmer.trims(), 1u);
  EXPECT_EQ(trimmer.records_trimmed(), 7u);
}

TEST(LivenessTest, SeqMovingWithoutVerdictsIsOneStalledFinding) {
  daemon::LivenessMonitor m(daemon::LivenessOptions{5, 3'000'000'000});
  vigil_info info = Info(100);
  info.next_seq = 11;  // seqs 1..10 committed
  m.OnModuleInfo(info);
  m.SetCovered(10);
  constexpr uint64_t kS = 1'000'000'000;
  EXPECT_TRUE(m.Tick(1 * kS).empty());
  // The window: max(5 periods of 1 s, --checkpoint-wait 3 s + 1 period).
  EXPECT_EQ(m.verdict_window_ns(), 5 * kS);
  info.next_seq = 20;  // the module moves on ...
  m.OnModuleInfo(info);
  for (uint64_t t = 2; t <= 6; ++t) {
    m.OnCheckpointLogged();  // ... and checkpoints come, but no verdict
    EXPECT_TRUE(m.Tick(t * kS).empty()) << t;
  }
  m.OnCheckpointLogged();
  auto stalls = m.Tick(7 * kS);
  ASSERT_EQ(stalls.size(), 1u);
  EXPECT_EQ(stalls[0].kind, daemon::Stall::Kind::kNoVerdict);
  EXPECT_EQ(stalls[0].seq, 19u);
  EXPECT_NE(stalls[0].reason.find("no verdict came for 5.0 s"), std::string::npos)
      << stalls[0].reason;
  EXPECT_TRUE(m.stalled());
  m.OnCheckpointLogged();
  EXPECT_TRUE(m.Tick(8 * kS).empty());  // once per stall
  m.OnVerdict(19);
  m.OnCheckpointLogged();
  EXPECT_TRUE(m.Tick(9 * kS).empty());
  EXPECT_FALSE(m.stalled());
}

TEST(LivenessTest, VerdictsEveryPeriodAndIdleHeartbeatsAreNotStalls) {
  daemon::LivenessMonitor m(daemon::LivenessOptions{});
  constexpr uint64_t kS = 1'000'000'000;
  vigil_info info = Info(100);
  for (uint64_t t = 1; t <= 60; ++t) {
    info.next_seq = 10 * t;  // busy: the seq moves every second
    m.OnModuleInfo(info);
    m.OnCheckpointLogged();
    m.OnVerdict(10 * t - 5);  // each verdict a little behind the module
    EXPECT_TRUE(m.Tick(t * kS).empty()) << t;
  }
  // Idle: nothing committed; the timer checkpoint after the last commits,
  // then a heartbeat checkpoint every 10 s.
  for (uint64_t t = 61; t <= 120; ++t) {
    if (t == 61 || t % 10 == 0) {
      m.OnCheckpointLogged();
      m.OnVerdict(599);
    }
    EXPECT_TRUE(m.Tick(t * kS).empty()) << t;
  }
}

TEST(LivenessTest, NoCheckpointForThreeHeartbeatsIsAStall) {
  daemon::LivenessMonitor m(daemon::LivenessOptions{});
  constexpr uint64_t kS = 1'000'000'000;
  vigil_info info = Info(65000);
  info.log_refused = 12;
  m.OnModuleInfo(info);
  m.OnCheckpointLogged();
  EXPECT_TRUE(m.Tick(1 * kS).empty());
  EXPECT_TRUE(m.Tick(30 * kS).empty());
  auto stalls = m.Tick(31 * kS);
  ASSERT_EQ(stalls.size(), 1u);
  EXPECT_EQ(stalls[0].kind, daemon::Stall::Kind::kNoCheckpoint);
  EXPECT_NE(stalls[0].reason.find("65000 of 65536 bytes, 12 records refused"), std::string::npos)
      << stalls[0].reason;
  // A sealed module takes no more checkpoints: not a stall.
  daemon::LivenessMonitor sealed(daemon::LivenessOptions{});
  info.tpm_flags = VIGIL_TPM_SEALED;
  sealed.OnModuleInfo(info);
  EXPECT_TRUE(sealed.Tick(1 * kS).empty());
  EXPECT_TRUE(sealed.Tick(100 * kS).empty());
}

// A module whose log is full defers every checkpoint: records keep coming,
// verdicts stop. The pipeline says so (a finding line, a gauge) instead of
// going silent.
TEST(PipelineTest, AFullLogStallsVerificationVisibly) {
  sim::ModuleSim sim;
  daemon::PipelineOptions opt;
  opt.emit_records = false;
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}), opt);
  for (const auto& r : sim.log()) rig.p->OnLog(r);
  constexpr uint64_t kS = 1'000'000'000;
  vigil_info info = Info(65536 - 1296);
  info.log_refused = 4;
  for (uint64_t t = 1; t <= 40; ++t) {
    rig.p->OnEvent(sim.Commit(), t * kS);  // no checkpoint fits any more
    info.next_seq = t + 1;
    rig.p->OnModuleInfo(info);
    rig.p->Tick(t * kS, t * kS);
  }
  std::vector<json> stalls;
  for (const json& j : Lines(rig.Output())) {
    if (j.at("type") == "finding" && j.at("kind") == "stalled") stalls.push_back(j);
  }
  ASSERT_EQ(stalls.size(), 2u) << rig.Output();
  EXPECT_EQ(stalls[0].at("stall"), "no_verdict");
  EXPECT_EQ(stalls[1].at("stall"), "no_checkpoint");
  EXPECT_NE(stalls[0].at("reason").get<std::string>().find("4 records refused"), std::string::npos);
  const std::string metrics = rig.registry.Render();
  EXPECT_NE(metrics.find("vigil_stalled 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vigil_findings_total{kind=\"stalled\"} 2\n"), std::string::npos);
  EXPECT_NE(metrics.find("vigil_module_log_refused_total 4\n"), std::string::npos);
}

TEST(PipelineTest, LogFillLastVerdictTimeAndBuildInfoAreMetrics) {
  sim::ModuleSim sim;
  daemon::PipelineOptions opt;
  opt.emit_records = false;
  opt.real_clock = [] { return uint64_t{1'765'000'000'123'456'789}; };
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}), opt);
  std::string metrics = rig.registry.Render();
  EXPECT_NE(metrics.find("vigil_last_verdict_timestamp_seconds 0\n"), std::string::npos) << metrics;
  const std::string build = "vigil_build_info{version=\"" + std::string(version::Release()) +
                            "\",abi=\"" + std::to_string(VIGIL_ABI_MAJOR) + "." +
                            std::to_string(VIGIL_ABI_MINOR) + "\"} 1\n";
  EXPECT_NE(metrics.find(build), std::string::npos) << metrics;
  rig.p->OnModuleInfo(Info(16384, 65536));
  for (const auto& r : sim.log()) rig.p->OnLog(r);
  rig.p->OnEvent(sim.Commit(), 1);
  for (const auto& r : sim.Checkpoint()) rig.p->OnLog(r);
  rig.p->CountTrimmed(12);
  metrics = rig.registry.Render();
  EXPECT_NE(metrics.find("vigil_last_verdict_timestamp_seconds 1765000000\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("vigil_module_log_bytes 16384\n"), std::string::npos);
  EXPECT_NE(metrics.find("vigil_module_log_max_bytes 65536\n"), std::string::npos);
  EXPECT_NE(metrics.find("vigil_module_log_fill_ratio 0.25\n"), std::string::npos);
  EXPECT_NE(metrics.find("vigil_module_log_trimmed_records_total 12\n"), std::string::npos);
}

TEST(PipelineTest, AnInstanceChangeIsAFindingAndACounter) {
  sim::ModuleSim sim;
  PipelineRig rig(verify::StreamVerifier(sim.StartAnchor(), {}));
  chain::InstanceId old_id;
  old_id.fill(0x11);
  rig.p->ReportInstanceChange(old_id, sim.instance(), "3 events were never decided");
  auto lines = Lines(rig.Output());
  ASSERT_EQ(lines.size(), 1u) << rig.Output();
  EXPECT_EQ(lines[0].at("type"), "finding");
  EXPECT_EQ(lines[0].at("kind"), "instance_changed");
  EXPECT_EQ(lines[0].at("saved_instance"), std::string(32, '1'));
  EXPECT_EQ(lines[0].at("module_instance"), crypto::ToHex(sim.instance()));
  EXPECT_NE(lines[0].at("reason").get<std::string>().find("3 events were never decided"),
            std::string::npos);
  const std::string metrics = rig.registry.Render();
  EXPECT_NE(metrics.find("vigil_instance_changes_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("vigil_findings_total{kind=\"instance_changed\"} 1\n"), std::string::npos);
}

// The saved anchor a verifier resumes from, and the module's info and log.
struct AnchorCase {
  sim::ModuleSim sim;
  verify::Anchor anchor;
  vigil_info info;
  AnchorCase() {
    verify::StreamVerifier v(sim.StartAnchor(), {});
    for (const auto& r : sim.log()) v.AddLog(r);
    for (int round = 0; round < 3; ++round) {
      v.AddEvent(sim.Commit());
      for (const auto& r : sim.Checkpoint()) v.AddLog(r);
    }
    anchor = v.anchor();
    std::memset(&info, 0, sizeof(info));
    std::memcpy(info.instance_id, sim.instance().data(), VIGIL_ID_LEN);
    info.log_first_seq = 1;
    info.log_next_seq = sim.log().back().seq() + 1;
  }
  Status Check(const verify::Anchor& a, const std::vector<records::Record>& log,
               std::optional<records::Record> saved = std::nullopt) {
    return daemon::CheckSavedAnchor(
        a, info, log,
        [saved](uint64_t) -> Result<std::optional<records::Record>> { return saved; });
  }
};

TEST(SavedAnchorTest, TheModulesCheckpointConfirmsIt) {
  AnchorCase c;
  ASSERT_EQ(c.anchor.last_seq, 3u);
  EXPECT_TRUE(c.Check(c.anchor, c.sim.log()).ok());
  // Trimmed from the module's log: the saved log has it.
  const records::Record cp = c.sim.log()[c.sim.log().size() - 2];
  ASSERT_EQ(cp.seq(), c.anchor.checkpoint_log_seq);
  EXPECT_TRUE(c.Check(c.anchor, {}, cp).ok());
  // The start of an instance (no checkpoint yet) is its chain_0.
  EXPECT_TRUE(c.Check(c.sim.StartAnchor(), c.sim.log()).ok());
}

// The attack of issue 10: a raised checkpoint_log_seq made every later
// checkpoint "historic" (no verdict, no finding). Each edit is refused by name.
TEST(SavedAnchorTest, AnEditedAnchorIsRefusedByName) {
  AnchorCase c;
  struct Edit {
    std::string what;
    std::function<void(verify::Anchor&)> edit;
    std::string expect;
  };
  const std::vector<Edit> edits = {
      {"raised log seq", [](verify::Anchor& a) { a.checkpoint_log_seq += 1; }, "not a checkpoint"},
      {"other checkpoint", [](verify::Anchor& a) { a.checkpoint_log_seq -= 2; },
       "another checkpoint digest"},
      {"far ahead", [](verify::Anchor& a) { a.checkpoint_log_seq += 1000; },
       "beyond the module's log"},
      {"seq", [](verify::Anchor& a) { a.last_seq += 5; }, "ends at seq 3"},
      {"head", [](verify::Anchor& a) { a.chain_head[0] ^= 1; }, "another chain head"},
      {"counters", [](verify::Anchor& a) { a.drops_total = 9; }, "other loss counters"},
      {"instance", [](verify::Anchor& a) { a.instance_id[0] ^= 1; }, "another module instance"},
      {"zeroed",
       [](verify::Anchor& a) {
         a.checkpoint_log_seq = 0;
         a.last_seq = 0;
       },
       "names no checkpoint"},
  };
  for (const Edit& e : edits) {
    verify::Anchor a = c.anchor;
    e.edit(a);
    Status st = c.Check(a, c.sim.log());
    ASSERT_FALSE(st.ok()) << e.what;
    EXPECT_EQ(st.code(), ErrorCode::kMismatch) << e.what;
    EXPECT_EQ(st.message().rfind("anchor_mismatch: ", 0), 0u) << st.message();
    EXPECT_NE(st.message().find(e.expect), std::string::npos) << e.what << ": " << st.message();
  }
  // In neither log: unverifiable, also refused.
  Status gone = c.Check(c.anchor, {});
  EXPECT_EQ(gone.code(), ErrorCode::kNotFound);
  EXPECT_EQ(gone.message().rfind("anchor_unverifiable: ", 0), 0u) << gone.message();
}

TEST(SavedLogTest, TheScanKeepsTheRecordAskedFor) {
  sim::ModuleSim sim;
  for (int i = 0; i < 3; ++i) {
    sim.Commit();
    sim.Checkpoint();
  }
  std::string bytes;
  for (const auto& r : sim.log()) {
    bytes.append(reinterpret_cast<const char*>(r.bytes().data()), r.bytes().size());
  }
  auto scan = daemon::ScanSavedLog(bytes, std::span<const uint8_t>(sim.instance()), 4);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_TRUE(scan->kept.has_value());
  EXPECT_EQ(scan->kept->seq(), 4u);
  EXPECT_TRUE(std::ranges::equal(scan->kept->bytes(), sim.log()[3].bytes()));
  auto none = daemon::ScanSavedLog(bytes, std::span<const uint8_t>(sim.instance()), 99);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->kept.has_value());
}

// ---- Where verification starts, and with which key (verification_start.h) ----

// A module with a key, three checkpoints in its log, and the info it reports.
struct StartCase {
  sim::ModuleSim sim;
  vigil_info info;
  StartCase() {
    for (int round = 0; round < 3; ++round) {
      sim.Commit();
      sim.Checkpoint();
    }
    std::memset(&info, 0, sizeof(info));
    std::memcpy(info.instance_id, sim.instance().data(), VIGIL_ID_LEN);
    info.tpm_flags = VIGIL_TPM_PRESENT | VIGIL_TPM_KEY;
    std::memcpy(info.key_x, sim.key().x, sizeof(info.key_x));
    std::memcpy(info.key_y, sim.key().y, sizeof(info.key_y));
  }
  // The state a vigild saved after verifying the whole log.
  daemon::VerifierState Saved() {
    daemon::VerifierState s;
    s.anchor = daemon::AnchorFromLog(info, sim.log());
    s.anchor.key = sim.key();
    return s;
  }
  // The log seq of the last checkpoint (the one before its SIGNATURE).
  uint64_t LastCheckpointLogSeq() const { return sim.log()[sim.log().size() - 2].seq(); }
};

TEST(ChooseStartTest, WithoutSavedStateItStartsAtTheLastCheckpointInTheLog) {
  StartCase c;
  daemon::StartPlan plan = daemon::ChooseStart(c.info, c.sim.log(), nullptr, 0);
  EXPECT_FALSE(plan.resumed);
  EXPECT_FALSE(plan.instance_change.has_value());
  EXPECT_EQ(plan.anchor.last_seq, 3u);
  EXPECT_EQ(plan.started_after_seq, 3u);
  EXPECT_EQ(plan.anchor.checkpoint_log_seq, c.LastCheckpointLogSeq());
  EXPECT_EQ(plan.anchor.chain_head, c.sim.head());
  auto digest = crypto::Sha256({c.sim.log()[c.sim.log().size() - 2].bytes()});
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(plan.anchor.checkpoint_digest, *digest);
  ASSERT_TRUE(plan.anchor.key.has_value());
  EXPECT_TRUE(crypto::SamePoint(*plan.anchor.key, c.sim.key()));
  EXPECT_EQ(plan.messages, std::vector<std::string>{
                               "verification starts after seq 3 (the last checkpoint in the log)"});

  // No checkpoint yet: the instance's chain_0 at seq 0.
  daemon::StartPlan empty = daemon::ChooseStart(c.info, {}, nullptr, 0);
  EXPECT_EQ(empty.anchor.last_seq, 0u);
  EXPECT_EQ(empty.anchor.checkpoint_log_seq, 0u);
  EXPECT_EQ(empty.anchor.chain_head, c.sim.StartAnchor().chain_head);
  EXPECT_EQ(empty.messages,
            std::vector<std::string>{"verification starts after seq 0 (no checkpoint yet)"});
}

TEST(ChooseStartTest, CheckpointsOfAnotherInstanceDoNotPlaceTheStart) {
  StartCase c;
  sim::ModuleSim other(0x77);
  other.Commit();
  std::vector<records::Record> log = other.log();
  for (const auto& r : other.Checkpoint()) log.push_back(r);
  verify::Anchor a = daemon::AnchorFromLog(c.info, log);
  EXPECT_EQ(a.last_seq, 0u);
  EXPECT_EQ(a.checkpoint_log_seq, 0u);
  EXPECT_EQ(a.chain_head, c.sim.StartAnchor().chain_head);
}

TEST(ChooseStartTest, TheSavedAnchorOfTheSameInstanceIsResumed) {
  StartCase c;
  daemon::VerifierState saved = c.Saved();
  daemon::StartPlan plan = daemon::ChooseStart(c.info, c.sim.log(), &saved, 2);
  EXPECT_TRUE(plan.resumed);
  EXPECT_EQ(plan.started_after_seq, 0u);
  EXPECT_EQ(plan.anchor.checkpoint_log_seq, saved.anchor.checkpoint_log_seq);
  const std::string at = std::to_string(c.LastCheckpointLogSeq());
  EXPECT_EQ(plan.messages, std::vector<std::string>{"resuming verification after seq 3 "
                                                    "(checkpoint at log seq " +
                                                    at + ", checked against the module's log)"});
  // Trimmed from the module's log: it was checked against the saved one.
  plan = daemon::ChooseStart(c.info, {}, &saved, 0);
  EXPECT_EQ(plan.messages, std::vector<std::string>{"resuming verification after seq 3 "
                                                    "(checkpoint at log seq " +
                                                    at + ", checked against the saved log)"});
}

// A key is never taken from the data it verifies, nor from a file root can
// edit: the saved anchor's key and the log's KEY record lose to GET_INFO.
TEST(ChooseStartTest, TheKeyIsAlwaysTheModules) {
  StartCase c;
  daemon::VerifierState saved = c.Saved();
  crypto::EcPoint planted;
  std::memset(planted.x, 0x41, sizeof(planted.x));
  std::memset(planted.y, 0x42, sizeof(planted.y));
  saved.anchor.key = planted;
  daemon::StartPlan plan = daemon::ChooseStart(c.info, c.sim.log(), &saved, 0);
  ASSERT_TRUE(plan.anchor.key.has_value());
  EXPECT_TRUE(crypto::SamePoint(*plan.anchor.key, c.sim.key()));
  ASSERT_EQ(plan.messages.size(), 2u);
  EXPECT_EQ(plan.messages[1],
            "the module's key differs from the saved one for this instance: using the module's");

  // A module without a key: no key at all, although the saved state and the
  // log's KEY record name one.
  vigil_info keyless = c.info;
  keyless.tpm_flags = VIGIL_TPM_PRESENT;
  EXPECT_FALSE(daemon::ModuleKey(keyless).has_value());
  plan = daemon::ChooseStart(keyless, c.sim.log(), &saved, 0);
  EXPECT_FALSE(plan.anchor.key.has_value());
  plan = daemon::ChooseStart(keyless, c.sim.log(), nullptr, 0);
  EXPECT_FALSE(plan.anchor.key.has_value());
  // Starting fresh is not "differs from the saved one".
  EXPECT_EQ(plan.messages.size(), 1u);
}

TEST(ChooseStartTest, AnotherInstancesStateIsAnInstanceChange) {
  StartCase c;
  daemon::VerifierState saved = c.Saved();
  saved.anchor.instance_id.fill(0x01);
  EXPECT_FALSE(daemon::SameInstance(&saved, c.info));
  EXPECT_FALSE(daemon::SameInstance(nullptr, c.info));
  daemon::StartPlan plan = daemon::ChooseStart(c.info, c.sim.log(), &saved, 5);
  EXPECT_FALSE(plan.resumed);
  EXPECT_EQ(plan.started_after_seq, 3u);
  ASSERT_TRUE(plan.instance_change.has_value());
  EXPECT_EQ(plan.instance_change->saved, saved.anchor.instance_id);
  EXPECT_EQ(plan.instance_change->detail,
            "5 events of the old instance after its seq 3 were never decided and cannot be now "
            "(no verdict covers them)");
  ASSERT_EQ(plan.messages.size(), 3u);
  EXPECT_NE(plan.messages[0].find("belongs to another module instance"), std::string::npos);
  EXPECT_EQ(plan.messages[1], plan.instance_change->detail);
  EXPECT_EQ(plan.messages[2], "verification starts after seq 3 (the last checkpoint in the log)");
  // Without open events there is nothing undecided to name.
  plan = daemon::ChooseStart(c.info, c.sim.log(), &saved, 0);
  ASSERT_TRUE(plan.instance_change.has_value());
  EXPECT_EQ(plan.instance_change->detail, "");
  EXPECT_EQ(plan.messages.size(), 2u);
}

// ---- The PCR check's TPM side (PcrChecker) ------------------------------------

// The module's log handed out in the pieces given, and a TPM holding the
// replay of `tpm_log` (pcr_config 11 as the simulator's KEY names, events 12).
class FakePcrSource final : public anchor::PcrSource {
 public:
  FakePcrSource(std::vector<std::vector<records::Record>> pieces,
                const std::vector<records::Record>& tpm_log)
      : pieces_(std::move(pieces)) {
    auto r = replay::ReplayLog(tpm_log);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) banks_ = r->banks;
  }
  Status OpenTpm() override { return open_; }
  Result<std::vector<uint8_t>> ReadLog() override {
    ++reads_;
    if (!read_error_.ok()) return read_error_;
    std::vector<uint8_t> bytes;
    if (next_ < pieces_.size()) {
      for (const records::Record& r : pieces_[next_]) {
        bytes.insert(bytes.end(), r.bytes().begin(), r.bytes().end());
      }
      ++next_;
    }
    if (garbage_) bytes.assign(5, 0xff);
    return bytes;
  }
  Result<crypto::Digest> ReadPcr(uint16_t alg, uint32_t pcr) override {
    if (wrong_values_) return crypto::Digest(32, 9);
    for (const auto& b : banks_) {
      if (b.alg == alg) return pcr == 11 ? b.config() : b.events();
    }
    return Status::Error(ErrorCode::kUnavailable, "no bank");
  }

  Status open_;
  Status read_error_;
  bool garbage_ = false;
  bool wrong_values_ = false;
  int reads_ = 0;

 private:
  std::vector<std::vector<records::Record>> pieces_;
  size_t next_ = 0;
  std::vector<replay::BankReplay> banks_;
};

struct PcrCase {
  sim::ModuleSim sim{0x5a, true, /*base=*/true};
  vigil_info info;
  std::vector<records::Record> first;  // up to the first checkpoint's signature
  std::vector<records::Record> rest;   // a second checkpoint
  PcrCase() {
    sim.Commit();
    sim.Checkpoint();
    first = sim.log();
    sim.Commit();
    sim.Checkpoint();
    rest.assign(sim.log().begin() + static_cast<ptrdiff_t>(first.size()), sim.log().end());
    std::memset(&info, 0, sizeof(info));
    info.pcr_config = 11;
    info.pcr_events = 12;
  }
};

TEST(PcrCheckerTest, ConfirmsTheVerifiedLogAndReadsAgainWhenTheTpmIsAhead) {
  PcrCase c;
  // The TPM already holds the second checkpoint when the log read has only
  // the first: read again, then placed.
  auto source = std::make_unique<FakePcrSource>(
      std::vector<std::vector<records::Record>>{c.first, c.rest}, c.sim.log());
  FakePcrSource* fake = source.get();
  anchor::PcrChecker checker(std::move(source), c.info);
  Status st = checker.Check(c.first);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(fake->reads_, 2);
  // Later checks go on from what was read (nothing new here).
  st = checker.Check(c.sim.log());
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(fake->reads_, 3);
}

TEST(PcrCheckerTest, AnotherValueIsAMismatchAfterThreeReads) {
  PcrCase c;
  auto source = std::make_unique<FakePcrSource>(
      std::vector<std::vector<records::Record>>{c.sim.log()}, c.sim.log());
  FakePcrSource* fake = source.get();
  fake->wrong_values_ = true;
  anchor::PcrChecker checker(std::move(source), c.info);
  EXPECT_EQ(checker.Check(c.sim.log()).code(), ErrorCode::kMismatch);
  EXPECT_EQ(fake->reads_, 3);
}

// What cannot be read is "not checked" (kUnavailable), never a mismatch.
TEST(PcrCheckerTest, AnUnreadableTpmOrLogIsNotChecked) {
  PcrCase c;
  {
    auto source = std::make_unique<FakePcrSource>(
        std::vector<std::vector<records::Record>>{c.sim.log()}, c.sim.log());
    source->open_ = Status::Error(ErrorCode::kUnavailable, "TPM device:/nowhere: gone");
    FakePcrSource* fake = source.get();
    anchor::PcrChecker checker(std::move(source), c.info);
    Status st = checker.Check(c.sim.log());
    EXPECT_EQ(st.code(), ErrorCode::kUnavailable);
    EXPECT_EQ(st.message(), "TPM device:/nowhere: gone");
    EXPECT_EQ(fake->reads_, 0);
  }
  {
    auto source = std::make_unique<FakePcrSource>(
        std::vector<std::vector<records::Record>>{c.sim.log()}, c.sim.log());
    source->read_error_ = Status::Error(ErrorCode::kNotFound, "no /dev/vigil");
    anchor::PcrChecker checker(std::move(source), c.info);
    Status st = checker.Check(c.sim.log());
    EXPECT_EQ(st.code(), ErrorCode::kUnavailable);
    EXPECT_EQ(st.message(), "reading the module's log for the PCR check: no /dev/vigil");
  }
  {
    auto source = std::make_unique<FakePcrSource>(
        std::vector<std::vector<records::Record>>{c.sim.log()}, c.sim.log());
    source->garbage_ = true;
    anchor::PcrChecker checker(std::move(source), c.info);
    Status st = checker.Check(c.sim.log());
    EXPECT_EQ(st.code(), ErrorCode::kUnavailable);
    EXPECT_TRUE(st.message().starts_with("reading the module's log for the PCR check: "))
        << st.message();
  }
}

// ---- Configuration ------------------------------------------------------------

// MEASURE hashes this text: a change to it changes every node's pcr_config.
TEST(ConfigTest, CanonicalTextOfTheDefaultsIsStable) {
  daemon::Config cfg;
  EXPECT_EQ(cfg.Canonical(),
            "{\"all_processes\":false,\"baseline_interval_s\":1.0,\"checkpoint_wait_s\":5.0,"
            "\"hw\":\"auto\",\"learn_samples\":100,\"metrics\":\"127.0.0.1:9477\","
            "\"no_module\":false,\"no_pcr_check\":false,\"no_records\":false,\"no_state\":false,"
            "\"reorder_window\":4096,\"ringbuf_bytes\":0,\"sample_ms\":0,\"stall_periods\":5,"
            "\"state_dir\":\"/var/lib/vigil\",\"state_interval_s\":1.0,\"syscalls\":false,"
            "\"tcti\":\"device:/dev/tpmrm0\",\"threshold\":6.0,\"trim_fill\":0.5}");
}

// ---- Start-up stages (stages.h) -----------------------------------------------

baseline::BaselineStore FreshStore() {
  auto store = baseline::BaselineStore::Create(baseline::BaselineConfig{});
  EXPECT_TRUE(store.ok());
  return std::move(store).value();
}

TEST(StagesTest, SavedStateLoadsWhatWasSavedOrNothing) {
  TempDir tmp;
  daemon::Config cfg;
  cfg.state_dir = tmp.path() + "/state";
  {
    auto empty = daemon::SavedState::Load(cfg, FreshStore());
    ASSERT_TRUE(empty.ok()) << empty.status().ToString();
    EXPECT_TRUE(empty->dir.has_value());
    ASSERT_TRUE(empty->store.has_value());
    EXPECT_EQ(empty->store->agent_count(), 0u);
    EXPECT_FALSE(empty->verifier.has_value());
    ASSERT_TRUE(
        empty->dir
            ->WriteAtomic(daemon::kVerifierFile, daemon::SerializeVerifierState(SampleState()))
            .ok());
  }  // the directory's lock goes with it
  auto loaded = daemon::SavedState::Load(cfg, FreshStore());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->verifier.has_value());
  EXPECT_EQ(loaded->verifier->anchor.last_seq, 42u);
  EXPECT_TRUE(loaded->open_events.empty());

  // --no-state: no directory, a fresh store.
  cfg.no_state = true;
  auto none = daemon::SavedState::Load(cfg, FreshStore());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->dir.has_value());
  EXPECT_TRUE(none->store.has_value());
}

TEST(StagesTest, AnUnusableStateFileStopsOrWithResetIsMovedAside) {
  TempDir tmp;
  daemon::Config cfg;
  cfg.state_dir = tmp.path();
  { std::ofstream(tmp.path() + "/" + daemon::kVerifierFile) << "{\"version\": 99"; }
  auto refused = daemon::SavedState::Load(cfg, FreshStore());
  ASSERT_FALSE(refused.ok());
  const std::string& why = refused.status().message();
  EXPECT_TRUE(why.starts_with("state file " + tmp.path() + "/verifier.json is unusable: ")) << why;
  EXPECT_NE(why.find("--reset-state"), std::string::npos) << why;
  EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/verifier.json"));

  cfg.reset_state = true;
  auto reset = daemon::SavedState::Load(cfg, FreshStore());
  ASSERT_TRUE(reset.ok()) << reset.status().ToString();
  EXPECT_FALSE(reset->verifier.has_value());
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/verifier.json"));
}

TEST(StagesTest, OutputsAppendToTheFileAndSayWhyTheyCannotOpen) {
  TempDir tmp;
  daemon::Config cfg;
  cfg.output = tmp.path() + "/out.jsonl";
  cfg.raw_out = tmp.path() + "/raw.bin";
  { std::ofstream(cfg.output) << "kept\n"; }
  {
    auto outputs = daemon::Outputs::Open(cfg);
    ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
    EXPECT_EQ(outputs->name(), cfg.output);
    EXPECT_TRUE(outputs->raw_fd().valid());
    outputs->out() << "added\n";
  }
  std::ifstream in(cfg.output);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "kept\nadded\n");
  EXPECT_EQ(std::filesystem::status(cfg.raw_out).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  cfg.output = tmp.path() + "/no/such/dir/out.jsonl";
  auto bad = daemon::Outputs::Open(cfg);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("open --output " + cfg.output), std::string::npos)
      << bad.status().message();

  daemon::Config to_stdout;
  auto std_out = daemon::Outputs::Open(to_stdout);
  ASSERT_TRUE(std_out.ok());
  EXPECT_EQ(std_out->name(), "stdout");
  EXPECT_EQ(&std_out->out(), &std::cout);
  EXPECT_FALSE(std_out->raw_fd().valid());
}

}  // namespace
}  // namespace vigil
