#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "synthetic.h"
#include "vigil/baseline/store.h"

namespace vigil::baseline {
namespace {

using nlohmann::json;
using testing::AgentProfile;
using testing::AgentSimulator;

// A store with watching and learning agents, executables, pools and an agent
// without hardware counters.
BaselineStore Populated() {
  BaselineConfig c;
  c.learn_samples = 50;
  BaselineStore store = BaselineStore::Create(c).value();
  std::vector<AgentSimulator> sims;
  for (int i = 0; i < 6; ++i) {
    sims.emplace_back(
        AgentProfile{
            .name = "web-" + std::to_string(i), .role = "web", .hardware_counters = i != 2},
        10 + i);
  }
  uint64_t t = 1'700'000'000'000'000'000ull;
  for (int round = 0; round < 120; ++round) {
    for (AgentSimulator& sim : sims) {
      (void)store.ObserveExit(sim.Next(t));
      (void)store.ObserveExecutable(sim.profile().name, sim.profile().role,
                                    round % 3 ? "/usr/bin/app" : "/bin/sh", t);
      t += 1'000'000;
    }
  }
  AgentSimulator young(AgentProfile{.name = "new/agent~1", .role = "batch"}, 99);
  for (int i = 0; i < 10; ++i) (void)store.ObserveExit(young.Next(t + i));
  (void)store.Observe("zero", "batch", Feature::kFaultRate, 0.0, t);
  (void)store.Observe("x", "r", Feature::kIpc, -1.0, t);  // a rejected value
  return store;
}

BaselineConfig Config50() {
  BaselineConfig c;
  c.learn_samples = 50;
  return c;
}

json Doc(const BaselineStore& s) { return json::parse(s.Serialize()); }

StateStatus ParseStatus(const std::string& text) {
  StateResult<BaselineStore> r = BaselineStore::Parse(text, Config50());
  if (r.ok()) return StateStatus::Ok();
  return r.status();
}

StateStatus ParseDoc(const json& doc) { return ParseStatus(doc.dump()); }

TEST(SerializeTest, InPiecesGivesTheSameTextAndStopsWhenAsked) {
  BaselineStore store = Populated();
  ASSERT_GE(store.agent_count(), 2u);
  std::vector<std::string> pieces;
  ASSERT_TRUE(store.SerializeTo(
      [&](std::string_view piece) {
        pieces.emplace_back(piece);
        return true;
      },
      1));
  EXPECT_EQ(pieces.size(), store.agent_count() + 1);  // one per agent, then the tail
  std::string joined;
  for (const std::string& p : pieces) joined += p;
  EXPECT_EQ(joined, store.Serialize());
  int calls = 0;
  EXPECT_FALSE(store.SerializeTo(
      [&](std::string_view) {
        ++calls;
        return false;
      },
      1));
  EXPECT_EQ(calls, 1);
}

TEST(SerializeTest, RoundTripIsExact) {
  BaselineStore store = Populated();
  const std::string text = store.Serialize();
  StateResult<BaselineStore> back = BaselineStore::Parse(text, store.config());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Serialize(), text);
  EXPECT_EQ(back->AgentNames(), store.AgentNames());
  EXPECT_EQ(back->rejected_values(), 1u);
  EXPECT_EQ(back->Executables("web-1"), store.Executables("web-1"));
  for (const std::string& name : store.AgentNames()) {
    for (Feature f : kAllFeatures) {
      std::optional<BaselineSummary> a = store.Summary(name, f);
      std::optional<BaselineSummary> b = back->Summary(name, f);
      ASSERT_EQ(a.has_value(), b.has_value()) << name << " " << FeatureName(f);
      if (!a) continue;
      EXPECT_EQ(a->phase, b->phase);
      EXPECT_EQ(a->samples, b->samples);
      EXPECT_EQ(a->mean, b->mean);
      EXPECT_EQ(a->stddev, b->stddev);
      EXPECT_EQ(a->median, b->median);
      EXPECT_EQ(a->mad, b->mad);
      EXPECT_EQ(a->p95, b->p95);
      EXPECT_EQ(a->ewma, b->ewma);
    }
  }
  EXPECT_FALSE(back->Summary("web-2", Feature::kIpc).has_value());
  // Both continue identically (a restart changes nothing).
  AgentSimulator s1(AgentProfile{.name = "web-1", .role = "web"}, 5);
  AgentSimulator s2(AgentProfile{.name = "web-1", .role = "web"}, 5);
  s1.profile().cpu_median_ns *= 4;
  s2.profile().cpu_median_ns *= 4;
  for (int i = 0; i < 50; ++i) {
    const uint64_t t = 1'800'000'000'000'000'000ull + static_cast<uint64_t>(i);
    std::vector<Anomaly> x = store.ObserveExit(s1.Next(t));
    std::vector<Anomaly> y = back->ObserveExit(s2.Next(t));
    ASSERT_EQ(x.size(), y.size());
    for (size_t k = 0; k < x.size(); ++k) {
      EXPECT_EQ(AnomalyToJson(x[k]), AnomalyToJson(y[k]));
    }
  }
  EXPECT_EQ(back->Serialize(), store.Serialize());
}

TEST(SerializeTest, EmptyStoreRoundTrips) {
  BaselineStore store = BaselineStore::Create({}).value();
  const json doc = Doc(store);
  EXPECT_EQ(doc["format"], "vigil-baseline-state");
  EXPECT_EQ(doc["version"], 1);
  StateResult<BaselineStore> back = BaselineStore::Parse(store.Serialize(), {});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->agent_count(), 0u);
}

TEST(SerializeTest, TruncatedInputIsTruncated) {
  const std::string text = Populated().Serialize();
  for (size_t cut : {size_t{0}, size_t{1}, text.size() / 3, text.size() / 2, text.size() - 1}) {
    StateStatus s = ParseStatus(text.substr(0, cut));
    EXPECT_EQ(s.code(), StateCode::kTruncated) << cut << ": " << s.ToString();
  }
  // Every prefix fails cleanly (sampled to keep the test fast).
  for (size_t cut = 0; cut < text.size(); cut += 1 + text.size() / 100) {
    EXPECT_FALSE(ParseStatus(text.substr(0, cut)).ok()) << cut;
  }
}

TEST(SerializeTest, SyntaxAndFormatErrors) {
  EXPECT_EQ(ParseStatus("}{").code(), StateCode::kSyntax);
  EXPECT_EQ(ParseStatus("{\"format\": NaN}").code(), StateCode::kSyntax);
  EXPECT_EQ(ParseStatus("[]").code(), StateCode::kWrongFormat);
  EXPECT_EQ(ParseStatus("{}").code(), StateCode::kWrongFormat);
  // A number beyond double is refused by the JSON parser itself (it would
  // be infinity).
  std::string big = Populated().Serialize();
  const size_t at = big.find("\"mean\":") + 7;
  big.insert(at, "1e999");
  big.erase(at + 5, big.find_first_of(",}", at + 5) - (at + 5));
  EXPECT_EQ(ParseStatus(big).code(), StateCode::kNonFinite) << big.substr(at - 10, 30);
  json doc = Doc(Populated());
  doc["format"] = "vigil-log";
  EXPECT_EQ(ParseDoc(doc).code(), StateCode::kWrongFormat);
  std::string deep(100000, '[');
  EXPECT_FALSE(ParseStatus(deep + std::string(100000, ']')).ok());
}

TEST(SerializeTest, WrongVersion) {
  json doc = Doc(Populated());
  doc["version"] = 2;
  StateStatus s = ParseDoc(doc);
  EXPECT_EQ(s.code(), StateCode::kUnsupportedVersion);
  EXPECT_EQ(s.path(), "/version");
  EXPECT_NE(s.message().find("version 1"), std::string::npos) << s.message();
  doc["version"] = 0;
  EXPECT_EQ(ParseDoc(doc).code(), StateCode::kUnsupportedVersion);
  doc["version"] = -1;
  EXPECT_EQ(ParseDoc(doc).code(), StateCode::kUnsupportedVersion);
  doc["version"] = "1";
  EXPECT_EQ(ParseDoc(doc).code(), StateCode::kWrongType);
  doc.erase("version");
  EXPECT_EQ(ParseDoc(doc).code(), StateCode::kWrongType);
  // A newer version may lay agents out differently: its version error wins
  // over what the agents look like to this build.
  doc["version"] = 2;
  doc["agents"][0]["features"] = "v2 layout";
  EXPECT_EQ(ParseDoc(doc).code(), StateCode::kUnsupportedVersion);
}

TEST(SerializeTest, FormatTagComesFirstAndAgentsOnlyOnce) {
  const std::string text = Populated().Serialize();
  EXPECT_EQ(text.rfind("{\"format\":\"vigil-baseline-state\",\"version\":1,", 0), 0u);
  std::string twice = text;
  twice.insert(twice.size() - 1, ",\"agents\":[]");
  StateStatus s = ParseStatus(twice);
  EXPECT_EQ(s.code(), StateCode::kDuplicate) << s.ToString();
}

struct Corruption {
  std::string pointer;  // JSON pointer into the document
  json value;           // replacement (discarded => erase)
  StateCode code;
};

void PrintTo(const Corruption& c, std::ostream* os) {
  *os << c.pointer << " = " << (c.value.is_discarded() ? "(erased)" : c.value.dump()) << " -> "
      << StateCodeName(c.code);
}

class CorruptionTest : public ::testing::TestWithParam<Corruption> {};

TEST_P(CorruptionTest, NamesTheErrorAndKeepsTheOldStore) {
  const Corruption& c = GetParam();
  BaselineStore source = Populated();
  json doc = Doc(source);
  // Agents are in name order: "new/agent~1", "web-0", "web-1", ...
  ASSERT_EQ(doc["agents"][2]["name"], "web-1");
  const json::json_pointer ptr(c.pointer);
  if (c.value.is_discarded()) {
    doc[ptr.parent_pointer()].erase(ptr.back());
  } else {
    doc[ptr] = c.value;
  }
  StateResult<BaselineStore> r = BaselineStore::Parse(doc.dump(), source.config());
  ASSERT_FALSE(r.ok()) << c.pointer;
  EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
  EXPECT_FALSE(r.status().message().empty());
  // The error names the member or the object holding it (for an array
  // element: the object holding the array).
  std::string holder = c.pointer.substr(0, c.pointer.rfind('/'));
  if (std::isdigit(static_cast<unsigned char>(c.pointer.back()))) {
    holder = holder.substr(0, holder.rfind('/'));
  }
  EXPECT_EQ(r.status().path().rfind(holder, 0), 0u) << r.status().path() << " vs " << c.pointer;

  // Restore into a store that holds other state: all or nothing.
  BaselineConfig config = source.config();
  BaselineStore live = BaselineStore::Create(config).value();
  AgentSimulator sim(AgentProfile{.name = "live"}, 1);
  for (int i = 0; i < 80; ++i) (void)live.ObserveExit(sim.Next(static_cast<uint64_t>(i)));
  const std::string before = live.Serialize();
  StateStatus st = live.Restore(doc.dump());
  EXPECT_EQ(st.code(), c.code);
  EXPECT_EQ(live.Serialize(), before);
}

const char kF[] = "/agents/2/features/cpu_per_exec";

INSTANTIATE_TEST_SUITE_P(
    Cases, CorruptionTest,
    ::testing::Values(
        // JSON has no NaN or inf: nlohmann writes them as null.
        Corruption{std::string(kF) + "/welford/mean", std::numeric_limits<double>::quiet_NaN(),
                   StateCode::kNonFinite},
        Corruption{std::string(kF) + "/sketch/max", std::numeric_limits<double>::infinity(),
                   StateCode::kNonFinite},
        Corruption{std::string(kF) + "/ewma/mean", nullptr, StateCode::kNonFinite},
        Corruption{std::string(kF) + "/welford/m2", -1.0, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/welford/count", -5, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/welford/count", "many", StateCode::kWrongType},
        Corruption{std::string(kF) + "/welford/count", 1.5, StateCode::kWrongType},
        Corruption{std::string(kF) + "/welford/count", 7, StateCode::kInconsistent},
        Corruption{std::string(kF) + "/sketch/count", 7, StateCode::kInconsistent},
        Corruption{std::string(kF) + "/sketch/bins/0", 0, StateCode::kInconsistent},
        Corruption{std::string(kF) + "/sketch/bins/1", 99999, StateCode::kInconsistent},
        Corruption{std::string(kF) + "/sketch/bins/1", 5e9, StateCode::kWrongType},
        Corruption{std::string(kF) + "/sketch/bins/1", 4294967296ull, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/sketch/offset", 2147483648ull, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/sketch/offset", 0, StateCode::kInconsistent},
        Corruption{std::string(kF) + "/sketch/min", -3.0, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/sketch/bins", json::array(), StateCode::kInconsistent},
        Corruption{std::string(kF) + "/sketch/bins", "xx", StateCode::kWrongType},
        Corruption{std::string(kF) + "/ewma/weight", 1e12, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/median", 1e15, StateCode::kInconsistent},
        Corruption{std::string(kF) + "/mad", -0.5, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/mad_log", -0.5, StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/mad_log", 50.0, StateCode::kInconsistent},
        Corruption{std::string(kF) + "/phase", "sleeping", StateCode::kOutOfRange},
        Corruption{std::string(kF) + "/first_ns", 18446744073709551615ull,
                   StateCode::kInconsistent},
        Corruption{std::string(kF) + "/bogus", 1, StateCode::kUnknownField},
        Corruption{std::string(kF) + "/sketch", json(json::value_t::discarded),
                   StateCode::kMissingField},
        Corruption{"/agents/2/features/cpu_per_cycle", json::object(), StateCode::kUnknownField},
        Corruption{"/agents/2/name", "web-0", StateCode::kDuplicate},
        Corruption{"/agents/2/name", "", StateCode::kOutOfRange},
        Corruption{"/agents/2/name", 17, StateCode::kWrongType},
        Corruption{"/agents/2/executables/0", "/zzz", StateCode::kInconsistent},
        Corruption{"/agents/2/executables/1", "/bin/sh", StateCode::kDuplicate},
        Corruption{"/agents/2/exe_observations", 1, StateCode::kInconsistent},
        Corruption{"/agents/2/role", json(json::value_t::discarded), StateCode::kMissingField},
        Corruption{"/agents/2", json::array(), StateCode::kWrongType},
        Corruption{"/agents", json::object(), StateCode::kWrongType},
        Corruption{"/sketch/alpha", 0.02, StateCode::kConfigMismatch},
        Corruption{"/sketch/max_bins", 100, StateCode::kConfigMismatch},
        Corruption{"/rejected_values", -1, StateCode::kOutOfRange},
        Corruption{"/extra", true, StateCode::kUnknownField}),
    [](const ::testing::TestParamInfo<Corruption>& info) {
      // "agents_2_features_cpu_per_exec_welford_mean_7": pointer and index.
      std::string name;
      for (char ch : info.param.pointer.substr(1)) {
        name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      }
      return name + "_" + std::to_string(info.index);
    });

TEST(SerializeTest, RestoreReplacesOnSuccess) {
  BaselineStore source = Populated();
  BaselineStore live = BaselineStore::Create(source.config()).value();
  (void)live.Observe("other", "r", Feature::kIpc, 1.0, 0);
  StateStatus s = live.Restore(source.Serialize());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(live.Serialize(), source.Serialize());
  EXPECT_FALSE(live.AgentRole("other").has_value());
}

TEST(SerializeTest, RandomMutationsNeverCrash) {
  const std::string text = Populated().Serialize();
  std::mt19937_64 rng(77);
  std::uniform_int_distribution<size_t> pos(0, text.size() - 1);
  const std::string alphabet = "0123456789-+.eE\"{}[],:nulltruefalse ~/";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  int accepted = 0;
  for (int i = 0; i < 150; ++i) {
    std::string m = text;
    for (int k = 0; k < 1 + i % 4; ++k) m[pos(rng)] = alphabet[pick(rng)];
    StateResult<BaselineStore> r = BaselineStore::Parse(m, Config50());
    if (!r.ok()) {
      EXPECT_NE(r.status().code(), StateCode::kOk);
      continue;
    }
    // Whatever is accepted is a valid store: it serializes and reloads.
    ++accepted;
    StateResult<BaselineStore> again = BaselineStore::Parse(r->Serialize(), Config50());
    EXPECT_TRUE(again.ok()) << again.status().ToString();
  }
  EXPECT_LT(accepted, 150);
}

}  // namespace
}  // namespace vigil::baseline
