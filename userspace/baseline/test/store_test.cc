#include "vigil/baseline/store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "synthetic.h"

namespace vigil::baseline {
namespace {

using testing::AgentProfile;
using testing::AgentSimulator;

constexpr uint64_t kSecond = 1'000'000'000ull;

BaselineStore MakeStore(BaselineConfig config = {}) {
  StateResult<BaselineStore> s = BaselineStore::Create(config);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// Feeds n exits; returns the anomalies per feature name.
std::map<std::string, int> Feed(BaselineStore& store, AgentSimulator& sim, int n, uint64_t& t) {
  std::map<std::string, int> by_feature;
  for (int i = 0; i < n; ++i, t += kSecond / 10) {
    for (const Anomaly& a : store.ObserveExit(sim.Next(t))) {
      EXPECT_EQ(a.kind, AnomalyKind::kOutlier);
      EXPECT_TRUE(a.feature.has_value());
      ++by_feature[std::string(FeatureName(*a.feature))];
    }
  }
  return by_feature;
}

TEST(BaselineConfigTest, RejectsBadValues) {
  BaselineConfig c;
  EXPECT_TRUE(c.Validate().ok());
  c.threshold = 0;
  EXPECT_EQ(BaselineStore::Create(c).status().code(), StateCode::kInvalidConfig);
  c = {};
  c.sketch_alpha = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(c.Validate().code(), StateCode::kInvalidConfig);
  EXPECT_EQ(c.Validate().path(), "sketch_alpha");
  c = {};
  c.learn_samples = 0;
  EXPECT_EQ(c.Validate().code(), StateCode::kInvalidConfig);
  c = {};
  c.min_mad[3] = -1;
  EXPECT_EQ(c.Validate().code(), StateCode::kInvalidConfig);
  c = {};
  c.pool_min_agents = 2;
  EXPECT_EQ(c.Validate().code(), StateCode::kInvalidConfig);
}

TEST(FeatureTest, NamesRoundTrip) {
  for (Feature f : kAllFeatures) EXPECT_EQ(FeatureFromName(FeatureName(f)), f);
  EXPECT_FALSE(FeatureFromName("cpu").has_value());
}

TEST(BaselineStoreTest, AgentRefSkipsTheLookupAndNoticesDroppedAgents) {
  BaselineStore store = MakeStore();
  BaselineStore::AgentRef ref;
  std::vector<Anomaly> out;
  const std::pair<Feature, double> v[] = {{Feature::kLifetime, 5.0}};
  store.ObserveMany(ref, "web-1", "web", v, 1, out);
  store.ObserveMany(ref, "web-1", "web", v, 2, out);
  ASSERT_EQ(store.agent_count(), 1u);
  EXPECT_EQ(store.Summary("web-1", Feature::kLifetime)->samples, 2u);
  // The agent is dropped: the ref must not write into freed state.
  ASSERT_TRUE(store.ResetAgent("web-1"));
  store.ObserveMany(ref, "web-1", "web", v, 3, out);
  EXPECT_EQ(store.Summary("web-1", Feature::kLifetime)->samples, 1u);
  // Replaced wholesale (Restore): the ref follows the new state.
  BaselineStore other = MakeStore();
  const std::string saved = store.Serialize();
  store.ObserveMany(ref, "web-1", "web", v, 4, out);
  ASSERT_TRUE(store.Restore(saved).ok());
  store.ObserveMany(ref, "web-1", "web", v, 5, out);
  EXPECT_EQ(store.Summary("web-1", Feature::kLifetime)->samples, 2u);
  // A ref from one store is not taken for an agent of another.
  other.ObserveMany(ref, "web-1", "web", v, 6, out);
  EXPECT_EQ(other.Summary("web-1", Feature::kLifetime)->samples, 1u);
  EXPECT_EQ(store.Summary("web-1", Feature::kLifetime)->samples, 2u);
  EXPECT_TRUE(out.empty());
}

TEST(BaselineStoreTest, NoAlertsDuringLearningEvenForWildValues) {
  BaselineConfig c;
  c.learn_samples = 50;
  BaselineStore store = MakeStore(c);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> wild(0, 1e12);
  for (int i = 0; i < 49; ++i) {
    EXPECT_FALSE(
        store.Observe("a", "r", Feature::kCpuPerExec, wild(rng), static_cast<uint64_t>(i)));
    EXPECT_EQ(store.Summary("a", Feature::kCpuPerExec)->phase, Phase::kLearning);
  }
  EXPECT_FALSE(store.Observe("a", "r", Feature::kCpuPerExec, 1.0, 49));
  EXPECT_EQ(store.Summary("a", Feature::kCpuPerExec)->phase, Phase::kWatching);
  // Other features of the same agent still learn on their own.
  EXPECT_FALSE(store.Observe("a", "r", Feature::kLifetime, 1e15, 50));
  EXPECT_EQ(store.Summary("a", Feature::kLifetime)->phase, Phase::kLearning);
}

TEST(BaselineStoreTest, LearningNeedsSamplesAndDuration) {
  BaselineConfig c;
  c.learn_samples = 5;
  c.learn_duration_ns = 10 * kSecond;
  BaselineStore store = MakeStore(c);
  for (uint64_t i = 0; i < 10; ++i) {
    EXPECT_FALSE(store.Observe("a", "r", Feature::kIpc, 1.0, 1000 * kSecond + i * kSecond));
    EXPECT_EQ(store.Summary("a", Feature::kIpc)->phase, Phase::kLearning) << i;
  }
  EXPECT_FALSE(store.Observe("a", "r", Feature::kIpc, 1.0, 1010 * kSecond));
  EXPECT_EQ(store.Summary("a", Feature::kIpc)->phase, Phase::kWatching);
}

TEST(BaselineStoreTest, LearnsKnownDistributions) {
  BaselineConfig c;
  c.learn_samples = 200;
  BaselineStore store = MakeStore(c);
  std::mt19937_64 rng(2);
  std::normal_distribution<double> cpu(2e6, 2e5);                // normal
  std::lognormal_distribution<double> life(std::log(5e7), 0.5);  // lognormal
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const uint64_t t = static_cast<uint64_t>(i) * kSecond;
    (void)store.Observe("n", "r", Feature::kCpuPerExec, cpu(rng), t);
    (void)store.Observe("n", "r", Feature::kLifetime, life(rng), t);
  }
  const BaselineSummary s = *store.Summary("n", Feature::kCpuPerExec);
  EXPECT_GT(s.samples, 19900u);  // a few 6-sigma values may be refused
  EXPECT_NEAR(s.mean, 2e6, 0.005 * 2e6);
  EXPECT_NEAR(s.stddev, 2e5, 0.05 * 2e5);
  EXPECT_NEAR(s.median, 2e6, 0.015 * 2e6);  // alpha + sampling
  EXPECT_NEAR(s.p95, 2e6 + 1.6449 * 2e5, 0.015 * 2.33e6);
  EXPECT_NEAR(s.mad, 0.6745 * 2e5, 0.05 * 0.6745 * 2e5);
  EXPECT_NEAR(s.scale, 2e5, 0.05 * 2e5);  // 1.4826 MAD estimates sigma
  EXPECT_NEAR(s.ewma, 2e6, 0.05 * 2e6);

  const BaselineSummary l = *store.Summary("n", Feature::kLifetime);
  EXPECT_NEAR(l.median, 5e7, 0.02 * 5e7);
  EXPECT_NEAR(l.mean, 5e7 * std::exp(0.125), 0.02 * 5e7 * std::exp(0.125));
  EXPECT_NEAR(l.p05, 5e7 * std::exp(-1.6449 * 0.5), 0.03 * 5e7 * std::exp(-0.822));
  EXPECT_NEAR(l.p95, 5e7 * std::exp(1.6449 * 0.5), 0.03 * 5e7 * std::exp(0.822));
}

TEST(BaselineStoreTest, ShiftedAgentAlertsOnTheFeatureThatMoved) {
  BaselineStore store = MakeStore();
  AgentSimulator sim(AgentProfile{.name = "web-1"}, 3);
  uint64_t t = 0;
  // Learning, then a quiet watching period: no alert at all.
  EXPECT_TRUE(Feed(store, sim, 100, t).empty());
  for (Feature f : kAllFeatures) {
    EXPECT_EQ(store.Summary("web-1", f)->phase, Phase::kWatching) << FeatureName(f);
  }
  // Raw-domain robust z on lognormal (sigma 0.2) data: a score of 6 is a
  // 4-sigma event in log space, so rare tail alerts are expected (~2e-5 per
  // value); bound them rather than demand none.
  int tail_alerts = 0;
  for (const auto& [feature, n] : Feed(store, sim, 1000, t)) tail_alerts += n;
  EXPECT_LE(tail_alerts, 5);
  // CPU per exec x3: every record alerts, on cpu_per_exec only.
  sim.profile().cpu_median_ns *= 3;
  std::map<std::string, int> alerts = Feed(store, sim, 200, t);
  EXPECT_EQ(alerts.size(), 1u);
  // 3 m e^(0.2 z) stays below the alert level m (1 + 6 * 1.4826 * MAD/m) =
  // 2.28 m only for z < -1.37: about 91% of the shifted records alert.
  EXPECT_GE(alerts["cpu_per_exec"], 170);
  // The alert carries the score and the baseline it was measured against.
  sim.profile().cpu_median_ns /= 3;
  sim.profile().rss_median_bytes *= 4;
  std::vector<Anomaly> out = store.ObserveExit(sim.Next(t));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].feature, Feature::kMaxRss);
  EXPECT_EQ(out[0].agent, "web-1");
  EXPECT_EQ(out[0].role, "worker");
  EXPECT_GE(out[0].score, store.config().threshold);
  EXPECT_NEAR(out[0].baseline.median, 2e7, 0.05 * 2e7);
  EXPECT_GT(out[0].value, 3 * out[0].baseline.median);
  const nlohmann::json j = AnomalyToJson(out[0]);
  EXPECT_EQ(j["kind"], "outlier");
  EXPECT_EQ(j["feature"], "max_rss");
  EXPECT_EQ(j["agent"], "web-1");
  EXPECT_GT(j["score"].get<double>(), 6.0);
  EXPECT_TRUE(j["baseline"].contains("median"));
}

TEST(BaselineStoreTest, LogDomainIsSymmetricAndQuietOnSkewedData) {
  BaselineConfig log_config;
  log_config.score_domain.fill(ScoreDomain::kLog);
  BaselineStore log_store = MakeStore(log_config);
  BaselineStore lin_store = MakeStore();
  AgentSimulator a(AgentProfile{.name = "db-1"}, 21);
  AgentSimulator b(AgentProfile{.name = "db-1"}, 21);  // the same stream
  uint64_t ta = 0, tb = 0;
  std::map<std::string, int> quiet_log = Feed(log_store, a, 1100, ta);
  std::map<std::string, int> quiet_lin = Feed(lin_store, b, 1100, tb);
  int lin_tail = 0;
  for (const auto& [f, n] : quiet_lin) lin_tail += n;
  EXPECT_TRUE(quiet_log.empty());  // a log score of 6 is a 6-sigma event
  EXPECT_LE(lin_tail, 5);
  const BaselineSummary s = *log_store.Summary("db-1", Feature::kLifetime);
  EXPECT_EQ(s.domain, ScoreDomain::kLog);
  EXPECT_NEAR(s.mad_log, 0.2 * 0.6745, 0.02);

  // CPU / 4: the log score sees it (ln 4 / 0.2 = 6.9 sigma), the linear one
  // hardly can (the drop is 0.75 m against a scale of 0.21 m: 3.5).
  a.profile().cpu_median_ns /= 4;
  b.profile().cpu_median_ns /= 4;
  std::map<std::string, int> drop_log = Feed(log_store, a, 200, ta);
  std::map<std::string, int> drop_lin = Feed(lin_store, b, 200, tb);
  EXPECT_EQ(drop_log.size(), 1u);
  EXPECT_GE(drop_log["cpu_per_exec"], 100);
  EXPECT_LE(drop_lin["cpu_per_exec"], 5);
  // CPU x 4: both see it.
  a.profile().cpu_median_ns *= 16;
  b.profile().cpu_median_ns *= 16;
  EXPECT_GE(Feed(log_store, a, 100, ta)["cpu_per_exec"], 50);
  EXPECT_GE(Feed(lin_store, b, 100, tb)["cpu_per_exec"], 95);
}

TEST(BaselineStoreTest, AnomaliesDoNotEnterTheBaseline) {
  BaselineConfig c;
  c.learn_samples = 20;
  BaselineStore store = MakeStore(c);
  for (int i = 0; i < 20; ++i) {
    (void)store.Observe("a", "r", Feature::kIpc, 1.0 + 0.01 * (i % 5), 0);
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(store.Observe("a", "r", Feature::kIpc, 5.0, 0).has_value());
  }
  EXPECT_EQ(store.Summary("a", Feature::kIpc)->samples, 20u);
  // ResetAgent starts learning again: the new level becomes normal.
  EXPECT_TRUE(store.ResetAgent("a"));
  EXPECT_FALSE(store.ResetAgent("a"));
  for (int i = 0; i < 40; ++i) {
    EXPECT_FALSE(store.Observe("a", "r", Feature::kIpc, 5.0, 0).has_value());
  }
}

TEST(BaselineStoreTest, IpcAbsentIsNotZero) {
  BaselineStore store = MakeStore();
  AgentSimulator sim(AgentProfile{.name = "nohw", .hardware_counters = false}, 4);
  uint64_t t = 0;
  EXPECT_TRUE(Feed(store, sim, 300, t).empty());
  EXPECT_FALSE(store.Summary("nohw", Feature::kIpc).has_value());
  EXPECT_TRUE(store.Summary("nohw", Feature::kCpuPerExec).has_value());
  // Zero cycles is "no counter" too, and lifetime 0 gives no rates.
  ExitSample s = sim.Next(t);
  s.cycles = 0;
  s.instructions = 5;
  s.lifetime_ns = 0;
  const uint64_t before = store.Summary("nohw", Feature::kFaultRate)->samples;
  (void)store.ObserveExit(s);
  EXPECT_FALSE(store.Summary("nohw", Feature::kIpc).has_value());
  EXPECT_EQ(store.Summary("nohw", Feature::kFaultRate)->samples, before);
}

TEST(BaselineStoreTest, RejectsValuesThatCannotBeFeatures) {
  BaselineStore store = MakeStore();
  EXPECT_FALSE(store.Observe("a", "r", Feature::kIpc, std::numeric_limits<double>::quiet_NaN(), 0));
  EXPECT_FALSE(store.Observe("a", "r", Feature::kIpc, -1.0, 0));
  EXPECT_FALSE(store.Observe("a", "r", Feature::kIpc, std::numeric_limits<double>::infinity(), 0));
  EXPECT_EQ(store.rejected_values(), 3u);
  EXPECT_EQ(store.agent_count(), 0u);
}

TEST(BaselineStoreTest, BoundsTheNumberOfAgents) {
  BaselineConfig c;
  c.max_agents = 2;
  BaselineStore store = MakeStore(c);
  (void)store.Observe("a", "r", Feature::kIpc, 1.0, 0);
  (void)store.Observe("b", "r", Feature::kIpc, 1.0, 0);
  (void)store.Observe("c", "r", Feature::kIpc, 1.0, 0);
  (void)store.ObserveExecutable("d", "r", "/bin/true", 0);
  EXPECT_EQ(store.agent_count(), 2u);
  EXPECT_EQ(store.rejected_agents(), 2u);
  EXPECT_EQ(store.AgentNames(), (std::vector<std::string>{"a", "b"}));
}

TEST(BaselineStoreTest, NewExecutableAlertsOnce) {
  BaselineConfig c;
  c.learn_samples = 10;
  BaselineStore store = MakeStore(c);
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(store.ObserveExecutable("a", "r", i % 2 ? "/usr/bin/b" : "/usr/bin/a",
                                         static_cast<uint64_t>(i)));
  }
  EXPECT_EQ(store.ExecutablesPhase("a"), Phase::kWatching);
  EXPECT_FALSE(store.ObserveExecutable("a", "r", "/usr/bin/a", 20));
  std::optional<Anomaly> a = store.ObserveExecutable("a", "r", "/tmp/.x/miner", 21);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->kind, AnomalyKind::kNewExecutable);
  EXPECT_EQ(a->executable, "/tmp/.x/miner");
  EXPECT_FALSE(a->feature.has_value());
  EXPECT_EQ(AnomalyToJson(*a)["kind"], "new_executable");
  EXPECT_FALSE(store.ObserveExecutable("a", "r", "/tmp/.x/miner", 22));
  EXPECT_EQ(store.Executables("a"),
            (std::vector<std::string>{"/tmp/.x/miner", "/usr/bin/a", "/usr/bin/b"}));
  // Another agent's set is its own.
  EXPECT_FALSE(store.ObserveExecutable("b", "r", "/tmp/.x/miner", 23));
}

TEST(BaselineStoreTest, ExecutableSetIsBounded) {
  BaselineConfig c;
  c.learn_samples = 1;
  c.max_executables_per_agent = 2;
  BaselineStore store = MakeStore(c);
  (void)store.ObserveExecutable("a", "r", "/1", 0);
  EXPECT_TRUE(store.ObserveExecutable("a", "r", "/2", 1).has_value());
  EXPECT_TRUE(store.ObserveExecutable("a", "r", "/3", 2).has_value());
  EXPECT_TRUE(store.ObserveExecutable("a", "r", "/3", 3).has_value());  // no room
  EXPECT_EQ(store.Executables("a").size(), 2u);
}

TEST(BaselineStoreTest, PoolFlagsTheAgentUnlikeItsPeers) {
  BaselineStore store = MakeStore();
  std::vector<AgentSimulator> sims;
  for (int i = 0; i < 8; ++i) {
    sims.emplace_back(AgentProfile{.name = "web-" + std::to_string(i), .role = "web"}, 100 + i);
  }
  // web-5 has always used 3x the syscalls: it never alerts against itself.
  sims[5].profile().syscall_rate *= 3;
  for (int i = 0; i < 3; ++i) {  // a small role: not enough peers to judge
    sims.emplace_back(
        AgentProfile{
            .name = "db-" + std::to_string(i), .role = "db", .cpu_median_ns = i * 1e7 + 1e6},
        200 + i);
  }
  uint64_t t = 0;
  EXPECT_TRUE(store.EvaluatePools(t).empty());
  int tail_alerts = 0;
  for (int round = 0; round < 300; ++round) {
    for (AgentSimulator& sim : sims) {
      tail_alerts += static_cast<int>(store.ObserveExit(sim.Next(t)).size());
      t += kSecond / 100;
    }
  }
  EXPECT_LE(tail_alerts, 10);  // 11 agents x 300 exits x 7 features
  std::vector<Anomaly> pool = store.EvaluatePools(t);
  ASSERT_EQ(pool.size(), 1u);
  EXPECT_EQ(pool[0].kind, AnomalyKind::kPoolOutlier);
  EXPECT_EQ(pool[0].agent, "web-5");
  EXPECT_EQ(pool[0].role, "web");
  EXPECT_EQ(pool[0].feature, Feature::kSyscallRate);
  EXPECT_EQ(pool[0].baseline.samples, 8u);
  EXPECT_NEAR(pool[0].baseline.median, 20000, 0.05 * 20000);
  EXPECT_NEAR(pool[0].value, 60000, 0.05 * 60000);
  EXPECT_EQ(AnomalyToJson(pool[0])["kind"], "pool_outlier");

  // Pooled statistics: merged Welford and sketch over every sample of a role.
  std::optional<PoolSummary> p = store.Pool("web", Feature::kCpuPerExec);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->agents, 8u);
  EXPECT_EQ(p->watching_agents, 8u);
  EXPECT_EQ(p->stats.count(), 8u * 300u);
  EXPECT_EQ(p->sketch.count(), p->stats.count());
  EXPECT_NEAR(*p->sketch.Quantile(0.5), 2e6, 0.03 * 2e6);
  EXPECT_NEAR(p->median_of_medians, 2e6, 0.03 * 2e6);
  EXPECT_FALSE(store.Pool("nobody", Feature::kCpuPerExec).has_value());
}

TEST(BaselineStoreTest, PoolToleratesFewerThanHalfBadAgents) {
  BaselineStore store = MakeStore();
  uint64_t t = 0;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(1.0, 0.02);
  for (int round = 0; round < 120; ++round, ++t) {
    for (int i = 0; i < 7; ++i) {
      const double level = i < 3 ? 5.0 : 1.0;  // 3 of 7 Byzantine
      (void)store.Observe("n" + std::to_string(i), "r", Feature::kIpc, level * noise(rng), t);
    }
  }
  std::vector<Anomaly> pool = store.EvaluatePools(t);
  ASSERT_EQ(pool.size(), 3u);
  for (const Anomaly& a : pool) EXPECT_LT(a.agent, "n3");
}

TEST(BaselineStoreTest, ActivityAndQuantileAccessors) {
  BaselineConfig config;
  config.learn_samples = 100;  // 1..100 are learnt, the 101st value is scored
  BaselineStore store = MakeStore(config);
  EXPECT_FALSE(store.AgentActivity("a").has_value());
  EXPECT_FALSE(store.FeatureActivity("a", Feature::kIpc).has_value());
  EXPECT_FALSE(store.Quantile("a", Feature::kIpc, 0.5).has_value());
  for (int i = 1; i <= 100; ++i) {
    (void)store.Observe("a", "r", Feature::kIpc, static_cast<double>(i), 100 + i);
  }
  (void)store.ObserveExecutable("a", "r", "/bin/a", 50);
  (void)store.Observe("a", "r", Feature::kIpc, 1e6, 300);  // an outlier, not learnt
  std::optional<Activity> f = store.FeatureActivity("a", Feature::kIpc);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->first_ns, 101u);
  EXPECT_EQ(f->last_ns, 200u);
  EXPECT_EQ(f->anomalies, 1u);
  EXPECT_EQ(f->observations, 100u);
  std::optional<Activity> a = store.AgentActivity("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first_ns, 101u);
  EXPECT_EQ(a->last_ns, 300u);
  EXPECT_EQ(a->anomalies, 1u);
  EXPECT_EQ(a->observations, 1u);
  EXPECT_FALSE(store.FeatureActivity("a", Feature::kLifetime).has_value());
  std::optional<double> p99 = store.Quantile("a", Feature::kIpc, 0.99);
  ASSERT_TRUE(p99.has_value());
  EXPECT_NEAR(*p99, 99.0, 99.0 * config.sketch_alpha);
  EXPECT_FALSE(store.Quantile("a", Feature::kIpc, 1.5).has_value());
  EXPECT_FALSE(store.Quantile("a", Feature::kLifetime, 0.5).has_value());
  // The same after a round trip through the state.
  StateResult<BaselineStore> copy = BaselineStore::Parse(store.Serialize(), config);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->FeatureActivity("a", Feature::kIpc)->anomalies, 1u);
  EXPECT_EQ(copy->AgentActivity("a")->last_ns, 300u);
  EXPECT_EQ(copy->Quantile("a", Feature::kIpc, 0.99), p99);
}

TEST(BaselineStoreTest, ObserveManyEqualsObservePerFeature) {
  BaselineConfig config;
  config.learn_samples = 20;
  BaselineStore one = MakeStore(config);
  BaselineStore many = MakeStore(config);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> cpu(5e6, 2e5), rss(4e6, 1e5);
  std::vector<Anomaly> from_many;
  size_t from_one = 0;
  for (int i = 0; i < 200; ++i) {
    const uint64_t t = static_cast<uint64_t>(i) * kSecond;
    // A shift at the end, and a rejected value in the middle of a batch.
    const double c = i < 190 ? cpu(rng) : 5e7;
    const std::pair<Feature, double> values[] = {
        {Feature::kCpuPerExec, c}, {Feature::kIpc, -1.0}, {Feature::kMaxRss, rss(rng)}};
    for (const auto& [f, v] : values) {
      if (one.Observe("w@1", "w", f, v, t)) ++from_one;
    }
    many.ObserveMany("w@1", "w", values, t, from_many);
  }
  EXPECT_GT(from_one, 0u);
  EXPECT_EQ(from_many.size(), from_one);
  EXPECT_EQ(one.rejected_values(), many.rejected_values());
  EXPECT_EQ(one.Serialize(), many.Serialize());
}

}  // namespace
}  // namespace vigil::baseline
