#include "vigil/baseline/ddsketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vigil::baseline {
namespace {

constexpr size_t kSamples = 200000;

struct Dist {
  std::string name;
  std::function<double(std::mt19937_64&)> draw;
};

std::vector<Dist> Distributions() {
  return {
      {"normal",
       [](std::mt19937_64& r) {
         return std::max(0.0, std::normal_distribution<double>(1000, 100)(r));
       }},
      {"lognormal_wide",
       [](std::mt19937_64& r) { return std::lognormal_distribution<double>(0.0, 2.0)(r); }},
      {"exponential",
       [](std::mt19937_64& r) { return std::exponential_distribution<double>(1e-3)(r); }},
      {"uniform",
       [](std::mt19937_64& r) { return std::uniform_real_distribution<double>(0, 1e6)(r); }},
      {"pareto",
       [](std::mt19937_64& r) {  // heavy tail, alpha = 1.2
         const double u = std::uniform_real_distribution<double>(0, 1)(r);
         return 10.0 / std::pow(1.0 - u, 1.0 / 1.2);
       }},
      {"with_zeros",
       [](std::mt19937_64& r) {  // 30% exact zeros
         const double u = std::uniform_real_distribution<double>(0, 1)(r);
         return u < 0.3 ? 0.0 : std::lognormal_distribution<double>(3, 1)(r);
       }},
  };
}

// The stated bound: |Quantile(q) - x_(floor(q (n-1)))| <= alpha * x_(...).
void ExpectWithinBound(const DdSketch& s, std::vector<double> sorted, const std::string& what) {
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(s.count(), sorted.size());
  const double n1 = static_cast<double>(sorted.size() - 1);
  double worst = 0;
  for (int i = 0; i <= 1000; ++i) {
    const double q = i / 1000.0;
    const double exact = sorted[static_cast<size_t>(std::floor(q * n1))];
    const std::optional<double> got = s.Quantile(q);
    ASSERT_TRUE(got.has_value());
    const double err = std::fabs(*got - exact);
    const double bound =
        exact < DdSketch::kMinIndexable ? DdSketch::kMinIndexable : s.alpha() * exact * (1 + 1e-12);
    EXPECT_LE(err, bound) << what << " q=" << q << " exact=" << exact << " got=" << *got;
    if (exact > 0) worst = std::max(worst, err / exact);
  }
  EXPECT_LE(worst, s.alpha() * (1 + 1e-12)) << what;
}

class SketchBoundTest : public ::testing::TestWithParam<double> {};

TEST_P(SketchBoundTest, MeetsRelativeErrorBoundOnEveryDistribution) {
  const double alpha = GetParam();
  std::mt19937_64 rng(42);
  for (const Dist& d : Distributions()) {
    DdSketch s(alpha);
    std::vector<double> xs(kSamples);
    for (double& x : xs) {
      x = d.draw(rng);
      ASSERT_TRUE(s.Add(x));
    }
    ExpectWithinBound(s, xs, d.name);
  }
}

TEST_P(SketchBoundTest, MeetsBoundAfterMergingDifferentStreams) {
  const double alpha = GetParam();
  std::mt19937_64 rng(7);
  DdSketch merged(alpha);
  std::vector<double> all;
  for (const Dist& d : Distributions()) {
    DdSketch part(alpha);
    for (size_t i = 0; i < kSamples / 4; ++i) {
      const double x = d.draw(rng);
      all.push_back(x);
      ASSERT_TRUE(part.Add(x));
    }
    ASSERT_TRUE(merged.Merge(part));
  }
  ExpectWithinBound(merged, all, "merged mixture");
}

INSTANTIATE_TEST_SUITE_P(Alphas, SketchBoundTest, ::testing::Values(0.01, 0.05));

TEST(DdSketchTest, MergeEqualsSketchOfUnion) {
  std::mt19937_64 rng(9);
  std::lognormal_distribution<double> d(2.0, 1.5);
  DdSketch a, b, whole;
  for (int i = 0; i < 50000; ++i) {
    const double x = d(rng);
    ASSERT_TRUE((i % 3 ? a : b).Add(x));
    ASSERT_TRUE(whole.Add(x));
  }
  ASSERT_TRUE(a.Merge(b));
  const DdSketch::Parts pa = a.ToParts(), pw = whole.ToParts();
  EXPECT_EQ(pa.offset, pw.offset);
  EXPECT_EQ(pa.bins, pw.bins);
  EXPECT_EQ(pa.count, pw.count);
  EXPECT_EQ(pa.min, pw.min);
  EXPECT_EQ(pa.max, pw.max);
}

TEST(DdSketchTest, MergeRefusesOtherParameters) {
  DdSketch a(0.01), b(0.02);
  ASSERT_TRUE(a.Add(1.0));
  ASSERT_TRUE(b.Add(2.0));
  EXPECT_FALSE(a.Merge(b));
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.max(), 1.0);
}

TEST(DdSketchTest, RejectsNegativeAndNonFinite) {
  DdSketch s;
  EXPECT_FALSE(s.Add(-1.0));
  EXPECT_FALSE(s.Add(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(s.Add(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(s.count(), 0u);
  EXPECT_FALSE(s.Quantile(0.5).has_value());
  EXPECT_FALSE(s.Mad().has_value());
  ASSERT_TRUE(s.Add(3.0));
  EXPECT_FALSE(s.Quantile(-0.1).has_value());
  EXPECT_FALSE(s.Quantile(1.1).has_value());
  EXPECT_EQ(*s.Quantile(0.5), 3.0);  // clamped to [min, max]
}

TEST(DdSketchTest, ZerosAreCountedExactly) {
  DdSketch s;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.Add(0.0));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.Add(100.0));
  EXPECT_EQ(s.zero_count(), 10u);
  EXPECT_EQ(*s.Quantile(0.0), 0.0);
  EXPECT_EQ(*s.Quantile(0.45), 0.0);
  EXPECT_NEAR(*s.Quantile(0.55), 100.0, 1.0);
}

TEST(DdSketchTest, CollapsingKeepsUpperQuantilesAndBoundsBins) {
  DdSketch s(0.01, 16);
  std::vector<double> xs;
  for (int i = 0; i < 20000; ++i) {
    const double x = std::exp(i * 1e-3);  // spans e^20: far more than 16 bins
    xs.push_back(x);
    ASSERT_TRUE(s.Add(x));
  }
  EXPECT_LE(s.bin_count(), 16u);
  EXPECT_EQ(s.count(), xs.size());
  // The top 16 bins are intact: q = 0.999 lies in them.
  const double exact = xs[static_cast<size_t>(0.999 * (xs.size() - 1))];
  EXPECT_LE(std::fabs(*s.Quantile(0.999) - exact), 0.01 * exact);
  EXPECT_EQ(*s.Quantile(0.0), xs.front());  // min is exact
}

TEST(DdSketchTest, MadWithinStatedBound) {
  std::mt19937_64 rng(11);
  for (int which = 0; which < 3; ++which) {
    DdSketch s;
    std::vector<double> xs;
    for (int i = 0; i < 100000; ++i) {
      double x = 0;
      if (which == 0) x = std::normal_distribution<double>(2e6, 2e5)(rng);
      if (which == 1) x = std::lognormal_distribution<double>(17.7, 0.5)(rng);
      if (which == 2) x = std::normal_distribution<double>(100, 1)(rng);
      x = std::max(0.0, x);
      xs.push_back(x);
      ASSERT_TRUE(s.Add(x));
    }
    std::sort(xs.begin(), xs.end());
    const size_t mid = (xs.size() - 1) / 2;
    const double median = xs[mid];
    std::vector<double> dev;
    for (double x : xs) dev.push_back(std::fabs(x - median));
    std::nth_element(dev.begin(), dev.begin() + static_cast<ptrdiff_t>(mid), dev.end());
    const double mad = dev[mid];
    const double got = *s.Mad();
    EXPECT_LE(std::fabs(got - mad), 0.01 * (3 * median + 2 * mad)) << which;
    if (which < 2) {
      // In practice far tighter than the bound when MAD >> alpha * median.
      EXPECT_NEAR(got, mad, 0.03 * mad) << which;
    }
  }
}

TEST(DdSketchTest, MadLogWithinThreeAlpha) {
  std::mt19937_64 rng(13);
  for (int which = 0; which < 3; ++which) {
    const double c = which == 2 ? 1.0 : 1e5;
    DdSketch s;
    std::vector<double> ys;
    for (int i = 0; i < 100000; ++i) {
      double x = 0;
      if (which == 0) x = std::lognormal_distribution<double>(14.5, 0.2)(rng);
      if (which == 1) x = std::max(0.0, std::normal_distribution<double>(2e6, 2e5)(rng));
      if (which == 2) x = std::exponential_distribution<double>(0.5)(rng);  // near 0
      ASSERT_TRUE(s.Add(x));
      ys.push_back(std::log(x + c));
    }
    std::sort(ys.begin(), ys.end());
    const size_t mid = (ys.size() - 1) / 2;
    const double median = ys[mid];
    for (double& y : ys) y = std::fabs(y - median);
    std::nth_element(ys.begin(), ys.begin() + static_cast<ptrdiff_t>(mid), ys.end());
    const double got = *s.MadLog(c);
    EXPECT_LE(std::fabs(got - ys[mid]), 3 * s.alpha()) << which;
    if (which == 0) {
      EXPECT_NEAR(got, 0.2 * 0.6745, 0.01);  // sigma * Phi^-1(3/4)
    }
  }
  DdSketch empty;
  EXPECT_FALSE(empty.MadLog(1.0).has_value());
  ASSERT_TRUE(empty.Add(1.0));
  EXPECT_FALSE(empty.MadLog(0.0).has_value());
}

TEST(DdSketchTest, SmallSpreadUsesFewBins) {
  // Memory for a typical per-agent feature: lognormal, sigma 0.25.
  std::mt19937_64 rng(12);
  std::lognormal_distribution<double> d(14.0, 0.25);
  DdSketch s;
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(s.Add(d(rng)));
  EXPECT_LT(s.bin_count(), 120u);
}

TEST(DdSketchTest, FromPartsRoundTripsAndChecksInvariants) {
  DdSketch s;
  for (double x : {0.0, 1.0, 2.0, 50.0}) ASSERT_TRUE(s.Add(x));
  auto back = DdSketch::FromParts(s.alpha(), s.max_bins(), s.ToParts(), "/s");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToParts().bins, s.ToParts().bins);

  auto code = [&](DdSketch::Parts p) {
    return DdSketch::FromParts(s.alpha(), s.max_bins(), std::move(p), "/s").status().code();
  };
  DdSketch::Parts p = s.ToParts();
  p.count += 1;
  EXPECT_EQ(code(p), StateCode::kInconsistent);
  p = s.ToParts();
  p.bins.back() = 0;
  p.count -= 1;
  EXPECT_EQ(code(p), StateCode::kInconsistent);
  p = s.ToParts();
  p.max = 1e6;  // not in the top bin
  EXPECT_EQ(code(p), StateCode::kInconsistent);
  p = s.ToParts();
  p.min = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(code(p), StateCode::kNonFinite);
  p = s.ToParts();
  p.zero_count = 0;
  p.count -= 1;
  EXPECT_EQ(code(p), StateCode::kInconsistent);  // min 0 needs the zero bucket
  p = s.ToParts();
  p.bins.assign(s.max_bins() + 1, 1);
  EXPECT_EQ(code(p), StateCode::kOutOfRange);
  p = s.ToParts();
  p.offset = std::numeric_limits<int32_t>::max() - 1;
  EXPECT_EQ(code(p), StateCode::kOutOfRange);
  p = s.ToParts();
  p.bins[0] = std::numeric_limits<uint32_t>::max();
  p.zero_count = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(code(p), StateCode::kOutOfRange);  // the sum overflows
  EXPECT_EQ(DdSketch::FromParts(0.9, 2048, s.ToParts(), "/s").status().code(),
            StateCode::kOutOfRange);
}

}  // namespace
TEST(DdSketchTest, MadAndMadLogTogetherEqualEachAlone) {
  DdSketch sketch;
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> dist(3.0, 0.7);
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(sketch.Add(dist(rng)));
  const auto both = sketch.MadAndMadLog(2.0);
  ASSERT_TRUE(both.has_value());
  EXPECT_DOUBLE_EQ(both->first, *sketch.Mad());
  EXPECT_DOUBLE_EQ(both->second, *sketch.MadLog(2.0));
  EXPECT_FALSE(DdSketch().MadAndMadLog(2.0).has_value());
  EXPECT_FALSE(sketch.MadAndMadLog(0.0).has_value());
}

}  // namespace vigil::baseline
