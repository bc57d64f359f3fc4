#include "vigil/baseline/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "vigil/baseline/state_status.h"

namespace vigil::baseline {
namespace {

TEST(RunningStatsTest, EmptyIsZero) {
  RunningStats s;
  EXPECT_EQ(s.count(), 0u);
  EXPECT_EQ(s.mean(), 0.0);
  EXPECT_EQ(s.variance(), 0.0);
}

TEST(RunningStatsTest, MatchesTwoPassOnLargeOffsetData) {
  // A large offset is where the naive sum-of-squares formula fails.
  std::mt19937_64 rng(1);
  std::normal_distribution<double> d(1e9, 10.0);
  std::vector<double> xs(100000);
  RunningStats s;
  for (double& x : xs) {
    x = d(rng);
    s.Add(x);
  }
  double mean = 0;
  for (double x : xs) mean += x;
  mean /= static_cast<double>(xs.size());
  double ss = 0;
  for (double x : xs) ss += (x - mean) * (x - mean);
  const double var = ss / static_cast<double>(xs.size() - 1);
  EXPECT_NEAR(s.mean(), mean, 1e-3);  // 1e-12 relative
  EXPECT_NEAR(s.variance(), var, var * 1e-6);
  EXPECT_NEAR(s.stddev(), 10.0, 0.1);  // and it is the right distribution
}

TEST(RunningStatsTest, LearnsNormalMeanAndVariance) {
  std::mt19937_64 rng(2);
  std::normal_distribution<double> d(100.0, 15.0);
  RunningStats s;
  const int n = 100000;
  for (int i = 0; i < n; ++i) s.Add(d(rng));
  // 4 standard errors: mean SE = 15/sqrt(n); variance SE ~ 225*sqrt(2/n).
  EXPECT_NEAR(s.mean(), 100.0, 4 * 15.0 / std::sqrt(n));
  EXPECT_NEAR(s.variance(), 225.0, 4 * 225.0 * std::sqrt(2.0 / n));
}

TEST(RunningStatsTest, ChanMergeEqualsSinglePass) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> d(5.0, 1.0);
  RunningStats all, parts[4];
  for (int i = 0; i < 40000; ++i) {
    const double x = d(rng);
    all.Add(x);
    parts[i % 7 % 4].Add(x);  // uneven split
  }
  RunningStats merged;
  merged.Merge(RunningStats());  // empty into empty
  for (const RunningStats& p : parts) merged.Merge(p);
  merged.Merge(RunningStats());  // empty into full
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_NEAR(merged.mean(), all.mean(), std::fabs(all.mean()) * 1e-12);
  EXPECT_NEAR(merged.variance(), all.variance(), all.variance() * 1e-10);
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
}

TEST(RunningStatsTest, FromPartsRoundTripsAndRejectsBadParts) {
  RunningStats s;
  for (double x : {1.0, 2.0, 4.0}) s.Add(x);
  auto back = RunningStats::FromParts(s.ToParts(), "/w");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->mean(), s.mean());
  EXPECT_EQ(back->variance(), s.variance());

  auto expect_code = [](RunningStats::Parts p, StateCode code) {
    auto r = RunningStats::FromParts(p, "/w");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  };
  RunningStats::Parts p = s.ToParts();
  p.mean = std::numeric_limits<double>::quiet_NaN();
  expect_code(p, StateCode::kNonFinite);
  p = s.ToParts();
  p.m2 = -1;
  expect_code(p, StateCode::kOutOfRange);
  p = s.ToParts();
  p.min = 5;
  expect_code(p, StateCode::kInconsistent);
  p = s.ToParts();
  p.mean = 10;
  expect_code(p, StateCode::kInconsistent);
  p = s.ToParts();
  p.m2 = 1e6;  // more spread than [1, 4] allows
  expect_code(p, StateCode::kInconsistent);
  expect_code({0, 1.0, 0, 0, 0}, StateCode::kInconsistent);
  expect_code({1, 1.0, 0.5, 1.0, 1.0}, StateCode::kInconsistent);
}

TEST(EwmaTest, ConstantInputGivesConstantMean) {
  Ewma e(Ewma::Params{Ewma::Mode::kSamples, 8});
  EXPECT_TRUE(e.empty());
  for (int i = 0; i < 100; ++i) e.Add(42.0, static_cast<uint64_t>(i));
  EXPECT_DOUBLE_EQ(e.mean(), 42.0);
  EXPECT_NEAR(e.variance(), 0.0, 1e-9);
}

TEST(EwmaTest, SampleHalfLifeMovesHalfwayAfterHalfLifeSamples) {
  const double h = 16;
  Ewma e(Ewma::Params{Ewma::Mode::kSamples, h});
  for (int i = 0; i < 5000; ++i) e.Add(0.0, 0);
  for (int i = 0; i < 16; ++i) e.Add(1.0, 0);
  EXPECT_NEAR(e.mean(), 0.5, 1e-6);
  EXPECT_NEAR(e.weight(), 1.0 / (1.0 - std::exp2(-1.0 / h)), 1e-6);
}

TEST(EwmaTest, TimeHalfLifeMovesHalfwayAfterHalfLifeNanoseconds) {
  const uint64_t step = 10'000'000;  // 10 ms between samples
  const double h = 1e9;              // 1 s half-life
  Ewma e(Ewma::Params{Ewma::Mode::kTime, h});
  uint64_t t = 0;
  for (int i = 0; i < 20000; ++i, t += step) e.Add(0.0, t);
  for (int i = 0; i < 100; ++i, t += step) e.Add(1.0, t);  // 1 s of ones
  EXPECT_NEAR(e.mean(), 0.5, 0.01);
  // Simultaneous samples count equally; time going backwards decays nothing.
  Ewma burst(Ewma::Params{Ewma::Mode::kTime, h});
  burst.Add(1.0, 100);
  burst.Add(3.0, 100);
  burst.Add(5.0, 50);
  EXPECT_DOUBLE_EQ(burst.mean(), 3.0);
  EXPECT_DOUBLE_EQ(burst.weight(), 3.0);
}

TEST(EwmaTest, VarianceTracksNormalData) {
  std::mt19937_64 rng(4);
  std::normal_distribution<double> d(10.0, 2.0);
  Ewma e(Ewma::Params{Ewma::Mode::kSamples, 2000});
  for (int i = 0; i < 50000; ++i) e.Add(d(rng), 0);
  EXPECT_NEAR(e.mean(), 10.0, 0.2);
  EXPECT_NEAR(e.variance(), 4.0, 0.4);
}

TEST(EwmaTest, FromPartsRejectsBadParts) {
  Ewma::Params params;
  EXPECT_EQ(Ewma::FromParts(params, {5.0, 1.0, 0.0, 0}, 4.0, "/e").status().code(),
            StateCode::kOutOfRange);
  EXPECT_EQ(Ewma::FromParts(params, {0.0, 1.0, 0.0, 0}, 4.0, "/e").status().code(),
            StateCode::kInconsistent);
  EXPECT_EQ(Ewma::FromParts(params, {1.0, 1.0, -1.0, 0}, 4.0, "/e").status().code(),
            StateCode::kOutOfRange);
  EXPECT_EQ(
      Ewma::FromParts(params, {1.0, std::numeric_limits<double>::infinity(), 0.0, 0}, 4.0, "/e")
          .status()
          .code(),
      StateCode::kNonFinite);
  EXPECT_TRUE(Ewma::FromParts(params, {2.0, 1.0, 0.5, 7}, 4.0, "/e").ok());
}

// value() on an error aborts with the message in every build type (it was
// an assert, compiled out in the shipped RelWithDebInfo build: UB).
TEST(StateResultDeathTest, ValueOnAnErrorAbortsWithTheMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  StateResult<int> r(StateStatus(StateCode::kOutOfRange, "/agents/0", "must be >= 0"));
  EXPECT_DEATH((void)r.value(), "value\\(\\) called on an error: out of range at /agents/0: must be >= 0");
  const StateResult<std::string> c(StateStatus(StateCode::kSyntax, "", "not JSON"));
  EXPECT_DEATH((void)c->size(), "not JSON");
  EXPECT_DEATH((void)std::move(r).value(), "must be >= 0");
}

}  // namespace
}  // namespace vigil::baseline
