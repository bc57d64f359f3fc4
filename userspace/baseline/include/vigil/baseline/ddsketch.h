// DDSketch (Masson, Rim and Lee, VLDB 2019): a mergeable quantile sketch with
// relative-value accuracy, for non-negative values.
//
// Error bound. With relative accuracy alpha (gamma = (1+alpha)/(1-alpha)),
// value x > kMinIndexable goes to bin k = ceil(log_gamma(x)), which covers
// (gamma^(k-1), gamma^k] and is represented by 2 gamma^k / (gamma + 1). For a
// stream of n values with sorted order x_(0) <= ... <= x_(n-1), Quantile(q)
// returns v with
//     |v - x_(j)| <= alpha * x_(j),   j = floor(q * (n - 1)),
// provided x_(j) is not in a collapsed bin (below) and x_(j) >= kMinIndexable
// (smaller values, including 0, are counted exactly in a zero bucket and
// reported as 0, an absolute error < kMinIndexable). The bound holds for any
// distribution and is preserved by Merge: merging adds bin counts, so the
// merged sketch is the sketch of the union. The result is also clamped to the
// exact [min, max].
//
// Memory. One uint32 count per bin between the lowest and highest occupied
// bins; at most max_bins bins. A stream spanning a ratio R of values uses
// about ln(R) / (2 alpha) bins (alpha = 0.01: ~115 bins per factor 10).
// When the span would exceed max_bins, the lowest bins are collapsed into
// the lowest kept bin ("collapsing lowest dense store"): upper quantiles keep
// the bound, the lowest ones lose it. With the default 2048 bins and
// alpha = 0.01 that needs a span of about e^41, which real features never
// reach. A bin that would overflow uint32 halves every count (a documented
// forgetting step after 4e9 samples in one bin).
//
// MAD. Mad() is the median absolute deviation around m' = Quantile(0.5):
// the d where the interpolated CDF (each bin's count spread evenly over its
// range) puts half of the values within [m' - d, m' + d], found by bisection.
// Each value is moved by at most one bin width (<= 2 alpha x) and m' by at
// most alpha m, so with m the true median and MAD the true MAD the result is
// within
//     alpha * (3 m + 2 MAD)
// of MAD, for any distribution. In practice (MAD >> alpha m) it is within a
// few percent (tested). Callers floor the MAD at the sketch resolution,
// 2 alpha m, for that reason.
#ifndef VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_DDSKETCH_H_
#define VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_DDSKETCH_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "vigil/baseline/state_status.h"

namespace vigil::baseline {

// Thread-safety: a value type; not synchronized.
class DdSketch {
 public:
  static constexpr double kMinIndexable = 1e-9;
  static constexpr double kDefaultAlpha = 0.01;
  static constexpr uint32_t kDefaultMaxBins = 2048;
  static constexpr double kMinAlpha = 1e-4;
  static constexpr double kMaxAlpha = 0.5;

  // The serialized form; FromParts validates it.
  struct Parts {
    int32_t offset = 0;          // key of bins[0]
    std::vector<uint32_t> bins;  // first and last non-zero when non-empty
    uint64_t zero_count = 0;
    uint64_t count = 0;
    double min = 0;
    double max = 0;
  };

  // alpha in [kMinAlpha, kMaxAlpha], max_bins >= 1 (callers validate; out of
  // range values are clamped).
  explicit DdSketch(double alpha = kDefaultAlpha, uint32_t max_bins = kDefaultMaxBins);

  // Adds x with a weight. Returns false, changing nothing, if x is negative,
  // NaN or infinite.
  [[nodiscard]] bool Add(double x, uint32_t weight = 1);
  // Adds other's counts. Returns false, changing nothing, if alpha or
  // max_bins differ.
  [[nodiscard]] bool Merge(const DdSketch& other);

  // q in [0, 1]; nullopt when empty or q out of range.
  std::optional<double> Quantile(double q) const;
  // Median absolute deviation around Quantile(0.5); nullopt when empty.
  std::optional<double> Mad() const;
  // The MAD of ln(x + shift) around ln(Quantile(0.5) + shift), shift > 0: the
  // same search in the log domain, where the sketch's bins have constant
  // width ln(gamma) ~ 2 alpha, so the result is within about 3 alpha of the
  // true value (absolute, in log units). nullopt when empty or shift <= 0.
  std::optional<double> MadLog(double shift) const;
  // Mad() and MadLog(shift) together, for the price of about one.
  std::optional<std::pair<double, double>> MadAndMadLog(double shift) const;

  uint64_t count() const { return count_; }
  uint64_t zero_count() const { return zero_count_; }
  double min() const { return min_; }
  double max() const { return max_; }
  double alpha() const { return alpha_; }
  uint32_t max_bins() const { return max_bins_; }
  size_t bin_count() const { return bins_.size(); }
  // Heap bytes held by the bins (for memory accounting).
  size_t heap_bytes() const { return bins_.capacity() * sizeof(uint32_t); }

  // Bin key of x > 0 (exposed for tests and validation).
  int32_t Key(double x) const;
  // Representative value of bin `key`.
  double Value(int32_t key) const;

  Parts ToParts() const;
  // Checks: bins.size() <= max_bins; first/last bin non-zero; keys within the
  // range of representable doubles; sum(bins) + zero_count == count without
  // overflow; count 0 <=> no bins, zero_count 0, min = max = 0; min, max
  // finite, 0 <= min <= max; max in the top bin (or < kMinIndexable when only
  // the zero bucket is used); min in or below the bottom bin; zero_count > 0
  // <=> min < kMinIndexable.
  static StateResult<DdSketch> FromParts(double alpha, uint32_t max_bins, Parts parts,
                                         const std::string& path);

 private:
  void Halve();
  // Both MADs from one pass (the median and the prefix sums are shared).
  double MadImpl(bool log_domain, double shift) const;
  struct Prefix;
  Prefix MakePrefix() const;  // count_ > 0
  double MadWith(const Prefix& prefix, bool log_domain, double shift) const;
  // Adds weight to bin k, growing or collapsing the bin range as needed.
  void AddKey(int32_t k, uint32_t weight);

  double alpha_;
  double gamma_;
  double inv_log_gamma_;
  uint32_t max_bins_;
  int32_t offset_ = 0;
  std::vector<uint32_t> bins_;
  uint64_t zero_count_ = 0;
  uint64_t count_ = 0;
  double min_ = 0;
  double max_ = 0;
};

}  // namespace vigil::baseline

#endif  // VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_DDSKETCH_H_
