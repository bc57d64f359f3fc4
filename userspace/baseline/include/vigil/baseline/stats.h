// Streaming moments: Welford mean/variance (mergeable with Chan et al.'s
// pairwise update) and an exponentially weighted mean/variance whose half-life
// is counted in samples or in nanoseconds.
#ifndef VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STATS_H_
#define VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STATS_H_

#include <cstdint>

#include "vigil/baseline/state_status.h"

namespace vigil::baseline {

// Count, mean, sum of squared deviations (M2), min and max of a stream.
// Add is Welford's update; Merge is Chan, Golub and LeVeque's pairwise
// combination, so stats of disjoint streams merge to the stats of their union
// (up to rounding). Only finite values should be added; the store checks.
// Thread-safety: a value type; not synchronized.
class RunningStats {
 public:
  // The serialized form; FromParts validates it.
  struct Parts {
    uint64_t count = 0;
    double mean = 0;
    double m2 = 0;
    double min = 0;
    double max = 0;
  };

  RunningStats() = default;

  void Add(double x);
  void Merge(const RunningStats& other);

  uint64_t count() const { return count_; }
  double mean() const { return count_ == 0 ? 0.0 : mean_; }
  // Unbiased sample variance (n - 1); 0 with fewer than two samples.
  double variance() const;
  double population_variance() const;
  double stddev() const;
  double min() const { return min_; }
  double max() const { return max_; }

  Parts ToParts() const { return {count_, mean_, m2_, min_, max_}; }
  // Checks: all finite; count 0 => everything 0; m2 >= 0 (0 with one
  // sample); min <= max; min <= mean <= max up to rounding. `path` prefixes
  // the error location.
  static StateResult<RunningStats> FromParts(const Parts& parts, const std::string& path);

 private:
  uint64_t count_ = 0;
  double mean_ = 0;
  double m2_ = 0;
  double min_ = 0;
  double max_ = 0;
};

// An exponentially weighted mean and variance. Each sample enters with weight
// 1 and all earlier weight decays by 2^(-d/h): d = 1 per sample in kSamples
// mode, d = elapsed nanoseconds in kTime mode (samples with equal timestamps
// then weigh the same, and time going backwards counts as no time). The mean
// is the weighted mean (so there is no start-up bias toward 0) and the
// variance uses West's weighted incremental update.
// Thread-safety: a value type; not synchronized.
class Ewma {
 public:
  enum class Mode : uint8_t { kSamples = 0, kTime = 1 };
  struct Params {
    Mode mode = Mode::kSamples;
    double half_life = 32;  // samples, or nanoseconds in kTime mode; > 0
  };
  struct Parts {
    double weight = 0;  // total decayed weight, 0 when empty
    double mean = 0;
    double s = 0;  // weighted sum of squared deviations
    uint64_t last_ns = 0;
  };

  Ewma() : Ewma(Params{}) {}
  explicit Ewma(Params params);

  void Add(double x, uint64_t timestamp_ns);

  bool empty() const { return weight_ == 0; }
  double mean() const { return mean_; }
  double variance() const { return weight_ > 0 ? s_ / weight_ : 0.0; }
  // Total weight: the effective number of samples the mean reflects.
  double weight() const { return weight_; }
  const Params& params() const { return params_; }

  Parts ToParts() const { return {weight_, mean_, s_, last_ns_}; }
  // Checks: finite; weight in [0, max_weight] (the sample count); weight 0
  // => mean and s 0; s >= 0.
  static StateResult<Ewma> FromParts(Params params, const Parts& parts, double max_weight,
                                     const std::string& path);

 private:
  Params params_;
  double sample_decay_;  // 2^(-1/h): the decay per sample in kSamples mode
  double weight_ = 0;
  double mean_ = 0;
  double s_ = 0;
  uint64_t last_ns_ = 0;
};

}  // namespace vigil::baseline

#endif  // VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STATS_H_
