#include "vigil/baseline/ddsketch.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <span>
#include <utility>

namespace vigil::baseline {

DdSketch::DdSketch(double alpha, uint32_t max_bins)
    : alpha_(std::clamp(alpha, kMinAlpha, kMaxAlpha)),
      gamma_((1 + alpha_) / (1 - alpha_)),
      inv_log_gamma_(1.0 / std::log(gamma_)),
      max_bins_(std::max<uint32_t>(max_bins, 1)) {}

int32_t DdSketch::Key(double x) const {
  return static_cast<int32_t>(std::ceil(std::log(x) * inv_log_gamma_));
}

double DdSketch::Value(int32_t key) const {
  return 2.0 * std::exp(static_cast<double>(key) / inv_log_gamma_) / (gamma_ + 1.0);
}

void DdSketch::Halve() {
  count_ = 0;
  for (uint32_t& c : bins_) {
    c = c / 2 + (c % 2);  // ceil: a non-empty bin stays non-empty
    count_ += c;
  }
  zero_count_ = zero_count_ / 2 + (zero_count_ % 2);
  count_ += zero_count_;
}

namespace {
constexpr uint64_t kMaxBin = std::numeric_limits<uint32_t>::max();
}  // namespace

bool DdSketch::Add(double x, uint32_t weight) {
  if (!(x >= 0) || !std::isfinite(x)) return false;
  if (weight == 0) return true;
  if (count_ == 0) {
    min_ = max_ = x;
  } else {
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
  }
  if (x < kMinIndexable) {
    zero_count_ += weight;
    count_ += weight;
    return true;
  }
  AddKey(Key(x), weight);
  return true;
}

void DdSketch::AddKey(int32_t k, uint32_t weight) {
  const size_t size = bins_.size();
  if (bins_.empty()) {
    offset_ = k;
    bins_.reserve(1);
    bins_.assign(1, 0);
  } else if (k < offset_) {
    const size_t want = size + static_cast<size_t>(offset_ - k);
    const size_t new_size = std::min<size_t>(want, max_bins_);
    const size_t grow = new_size - size;
    if (grow > 0) {
      std::vector<uint32_t> grown;
      grown.reserve(new_size);
      grown.assign(grow, 0);
      grown.insert(grown.end(), bins_.begin(), bins_.end());
      bins_ = std::move(grown);
      offset_ -= static_cast<int32_t>(grow);
    }
    k = std::max(k, offset_);  // collapsed into the lowest bin when full
  } else if (static_cast<int64_t>(k) >= offset_ + static_cast<int64_t>(size)) {
    const size_t want = static_cast<size_t>(k - offset_) + 1;
    if (want > max_bins_) {
      // Collapse the lowest bins so that the top bin becomes k.
      const size_t drop = want - max_bins_;
      uint64_t sum = 0;
      const size_t merged = std::min(drop + 1, size);
      for (size_t i = 0; i < merged; ++i) sum += bins_[i];
      while (sum > kMaxBin) {
        Halve();
        sum = 0;
        for (size_t i = 0; i < merged; ++i) sum += bins_[i];
      }
      std::vector<uint32_t> kept;
      kept.reserve(max_bins_);
      kept.push_back(static_cast<uint32_t>(sum));
      if (merged < size) {
        kept.insert(kept.end(), bins_.begin() + static_cast<ptrdiff_t>(merged), bins_.end());
      }
      offset_ = k - static_cast<int32_t>(max_bins_) + 1;
      kept.resize(max_bins_, 0);
      bins_ = std::move(kept);
    } else {
      std::vector<uint32_t> grown;
      grown.reserve(want);
      grown.assign(bins_.begin(), bins_.end());
      grown.resize(want, 0);
      bins_ = std::move(grown);
    }
  }
  uint32_t& bin = bins_[static_cast<size_t>(k - offset_)];
  while (static_cast<uint64_t>(bin) + weight > kMaxBin) Halve();
  bin += weight;
  count_ += weight;
}

bool DdSketch::Merge(const DdSketch& other) {
  if (other.alpha_ != alpha_ || other.max_bins_ != max_bins_) return false;
  if (other.count_ == 0) return true;
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  // Walk from the top so that collapsing (if any) keeps the upper bins.
  for (size_t i = other.bins_.size(); i-- > 0;) {
    if (other.bins_[i] == 0) continue;
    AddKey(other.offset_ + static_cast<int32_t>(i), other.bins_[i]);
  }
  zero_count_ += other.zero_count_;
  count_ += other.zero_count_;
  return true;
}

std::optional<double> DdSketch::Quantile(double q) const {
  if (count_ == 0 || !(q >= 0 && q <= 1)) return std::nullopt;
  // The extremes are known exactly (also when the lowest bins collapsed).
  if (q == 0) return min_;
  if (q == 1) return max_;
  const double rank = q * static_cast<double>(count_ - 1);
  if (static_cast<double>(zero_count_) > rank) return min_;
  uint64_t cum = zero_count_;
  for (size_t i = 0; i < bins_.size(); ++i) {
    cum += bins_[i];
    if (static_cast<double>(cum) > rank) {
      return std::clamp(Value(offset_ + static_cast<int32_t>(i)), min_, max_);
    }
  }
  return max_;
}

std::optional<double> DdSketch::Mad() const {
  if (count_ == 0) return std::nullopt;
  return MadImpl(false, 0.0);
}

std::optional<double> DdSketch::MadLog(double shift) const {
  if (count_ == 0 || !(shift > 0) || !std::isfinite(shift)) return std::nullopt;
  return MadImpl(true, shift);
}

struct DdSketch::Prefix {
  double median;
  // Prefix sums so that the interpolated rank is O(1) per evaluation.
  std::span<const uint64_t> below;
};

// The prefix sums live in a per-thread scratch vector: a refresh runs every
// few dozen samples and need not allocate each time.
DdSketch::Prefix DdSketch::MakePrefix() const {
  thread_local std::vector<uint64_t> scratch;
  scratch.resize(bins_.size() + 1);
  scratch[0] = zero_count_;
  for (size_t i = 0; i < bins_.size(); ++i) scratch[i + 1] = scratch[i] + bins_[i];
  return Prefix{*Quantile(0.5), scratch};
}

std::optional<std::pair<double, double>> DdSketch::MadAndMadLog(double shift) const {
  if (count_ == 0 || !(shift > 0) || !std::isfinite(shift)) return std::nullopt;
  const Prefix prefix = MakePrefix();
  return std::pair(MadWith(prefix, false, 0.0), MadWith(prefix, true, shift));
}

double DdSketch::MadImpl(bool log_domain, double shift) const {
  return MadWith(MakePrefix(), log_domain, shift);
}

double DdSketch::MadWith(const Prefix& prefix, bool log_domain, double shift) const {
  const double median = prefix.median;
  const std::span<const uint64_t> below = prefix.below;
  // Estimated number of values <= x: zeros sit at min, each bin's mass is
  // spread evenly over its range (gamma^(k-1), gamma^k] clipped to [min, max].
  auto rank = [&](double x) -> double {
    if (x < min_) return 0;
    if (x >= max_) return static_cast<double>(count_);
    if (x < kMinIndexable || bins_.empty()) return static_cast<double>(zero_count_);
    const int64_t k = Key(x);
    if (k < offset_) return static_cast<double>(zero_count_);
    const size_t i = static_cast<size_t>(k - offset_);
    if (i >= bins_.size()) return static_cast<double>(count_);
    const double edge_hi = std::exp(static_cast<double>(k) / inv_log_gamma_);
    // The bottom bin starts at min (it also holds collapsed lower bins).
    const double lo = (i == 0 && zero_count_ == 0) ? min_ : std::max(edge_hi / gamma_, min_);
    const double hi = std::min(edge_hi, max_);
    const double frac = hi > lo ? std::clamp((x - lo) / (hi - lo), 0.0, 1.0) : 1.0;
    return static_cast<double>(below[i]) + frac * static_cast<double>(bins_[i]);
  };
  // Values within deviation d of the median: [median - d, median + d], or in
  // the log domain [(median + c) e^-d - c, (median + c) e^d - c].
  const double center = median + shift;
  auto within = [&](double d) {
    if (log_domain) return rank(center * std::exp(d) - shift) - rank(center * std::exp(-d) - shift);
    return rank(median + d) - rank(median - d);
  };
  const double half = 0.5 * static_cast<double>(count_);
  double lo = 0;
  double hi = log_domain
                  ? std::max(std::log((max_ + shift) / center), std::log(center / (min_ + shift)))
                  : std::max(max_ - median, median - min_);
  // The quartiles usually bracket the MAD far tighter than the range (half
  // the values lie between them); kept only if it holds under this rank.
  const double q1 = *Quantile(0.25);
  const double q3 = *Quantile(0.75);
  const double quartiles = log_domain ? std::max(std::log((q3 + shift) / center),
                                                 std::log(center / (q1 + shift)))
                                      : std::max(q3 - median, median - q1);
  if (quartiles > 0 && quartiles < hi && within(quartiles) >= half) hi = quartiles;
  // 1e-3 of the MAD itself: a tenth of the sketch's own relative error
  // (alpha), and a refresh runs every few dozen samples or more.
  for (int iter = 0; iter < 64 && hi - lo > 1e-3 * hi; ++iter) {
    const double mid = 0.5 * (lo + hi);
    if (within(mid) >= half) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return hi;
}

DdSketch::Parts DdSketch::ToParts() const {
  Parts p;
  p.offset = offset_;
  p.bins = bins_;
  p.zero_count = zero_count_;
  p.count = count_;
  p.min = min_;
  p.max = max_;
  return p;
}

StateResult<DdSketch> DdSketch::FromParts(double alpha, uint32_t max_bins, Parts p,
                                          const std::string& path) {
  DdSketch s(alpha, max_bins);
  if (s.alpha_ != alpha || s.max_bins_ != max_bins) {
    return StateStatus(StateCode::kOutOfRange, path, "sketch alpha or max_bins out of range");
  }
  if (!std::isfinite(p.min) || !std::isfinite(p.max)) {
    return StateStatus(StateCode::kNonFinite, path, "min and max must be finite");
  }
  if (p.min < 0 || p.min > p.max) {
    return StateStatus(StateCode::kOutOfRange, path, "need 0 <= min <= max");
  }
  if (p.bins.size() > max_bins) {
    return StateStatus(StateCode::kOutOfRange, path + "/bins", "more bins than max_bins");
  }
  uint64_t sum = p.zero_count;
  for (uint32_t c : p.bins) {
    if (sum + c < sum) {
      return StateStatus(StateCode::kOutOfRange, path + "/bins", "bin counts overflow");
    }
    sum += c;
  }
  if (sum != p.count) {
    return StateStatus(StateCode::kInconsistent, path + "/count",
                       "count differs from zero_count + sum of bins");
  }
  if (p.count == 0) {
    if (p.min != 0 || p.max != 0) {
      return StateStatus(StateCode::kInconsistent, path, "an empty sketch must have min = max = 0");
    }
    s.offset_ = 0;
    return s;
  }
  if ((p.zero_count > 0) != (p.min < kMinIndexable)) {
    return StateStatus(StateCode::kInconsistent, path + "/min", "min disagrees with zero_count");
  }
  if (p.bins.empty()) {
    if (p.max >= kMinIndexable) {
      return StateStatus(StateCode::kInconsistent, path + "/max",
                         "max is above the zero bucket but there are no bins");
    }
  } else {
    if (p.bins.front() == 0 || p.bins.back() == 0) {
      return StateStatus(StateCode::kInconsistent, path + "/bins",
                         "first and last bins must be non-zero");
    }
    const int64_t lowest = s.Key(kMinIndexable);
    const int64_t highest = s.Key(DBL_MAX);
    const int64_t top = static_cast<int64_t>(p.offset) + static_cast<int64_t>(p.bins.size()) - 1;
    if (p.offset < lowest || top > highest) {
      return StateStatus(StateCode::kOutOfRange, path + "/offset",
                         "bin keys outside the representable range");
    }
    if (p.max < kMinIndexable || s.Key(p.max) != top) {
      return StateStatus(StateCode::kInconsistent, path + "/max", "max is not in the top bin");
    }
    if (p.zero_count == 0 && s.Key(p.min) > p.offset) {
      return StateStatus(StateCode::kInconsistent, path + "/min", "min is above the bottom bin");
    }
  }
  s.offset_ = p.offset;
  s.bins_ = std::move(p.bins);
  s.bins_.shrink_to_fit();
  s.zero_count_ = p.zero_count;
  s.count_ = p.count;
  s.min_ = p.min;
  s.max_ = p.max;
  return s;
}

}  // namespace vigil::baseline
