#include "vigil/baseline/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace vigil::baseline {

std::string_view StateCodeName(StateCode code) {
  switch (code) {
    case StateCode::kOk:
      return "ok";
    case StateCode::kSyntax:
      return "syntax error";
    case StateCode::kTruncated:
      return "truncated";
    case StateCode::kWrongFormat:
      return "wrong format";
    case StateCode::kUnsupportedVersion:
      return "unsupported version";
    case StateCode::kMissingField:
      return "missing field";
    case StateCode::kUnknownField:
      return "unknown field";
    case StateCode::kWrongType:
      return "wrong type";
    case StateCode::kNonFinite:
      return "non-finite number";
    case StateCode::kOutOfRange:
      return "out of range";
    case StateCode::kInconsistent:
      return "inconsistent";
    case StateCode::kDuplicate:
      return "duplicate";
    case StateCode::kConfigMismatch:
      return "config mismatch";
    case StateCode::kInvalidConfig:
      return "invalid config";
  }
  return "unknown";
}

std::string StateStatus::ToString() const {
  if (ok()) return "ok";
  std::string out(StateCodeName(code_));
  out += " at ";
  out += path_.empty() ? "/" : path_;
  out += ": ";
  out += message_;
  return out;
}

void DieOnErrorValue(const StateStatus& status) {
  std::fprintf(stderr, "vigil: StateResult::value() called on an error: %s\n",
               status.ToString().c_str());
  std::fflush(stderr);
  std::abort();
}

void RunningStats::Add(double x) {
  if (count_ == 0) {
    min_ = max_ = x;
  } else {
    min_ = std::min(min_, x);
    max_ = std::max(max_, x);
  }
  ++count_;
  const double delta = x - mean_;
  mean_ += delta / static_cast<double>(count_);
  m2_ += delta * (x - mean_);
}

void RunningStats::Merge(const RunningStats& other) {
  if (other.count_ == 0) return;
  if (count_ == 0) {
    *this = other;
    return;
  }
  const double na = static_cast<double>(count_);
  const double nb = static_cast<double>(other.count_);
  const double n = na + nb;
  const double delta = other.mean_ - mean_;
  mean_ += delta * (nb / n);
  m2_ += other.m2_ + delta * delta * (na * nb / n);
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double RunningStats::variance() const {
  return count_ < 2 ? 0.0 : m2_ / static_cast<double>(count_ - 1);
}

double RunningStats::population_variance() const {
  return count_ == 0 ? 0.0 : m2_ / static_cast<double>(count_);
}

double RunningStats::stddev() const { return std::sqrt(variance()); }

StateResult<RunningStats> RunningStats::FromParts(const Parts& p, const std::string& path) {
  for (double v : {p.mean, p.m2, p.min, p.max}) {
    if (!std::isfinite(v)) {
      return StateStatus(StateCode::kNonFinite, path, "welford values must be finite");
    }
  }
  if (p.count == 0 && (p.mean != 0 || p.m2 != 0 || p.min != 0 || p.max != 0)) {
    return StateStatus(StateCode::kInconsistent, path, "empty welford stats must be all zero");
  }
  if (p.m2 < 0) {
    return StateStatus(StateCode::kOutOfRange, path + "/m2", "must be >= 0");
  }
  if (p.count == 1 && p.m2 != 0) {
    return StateStatus(StateCode::kInconsistent, path + "/m2", "must be 0 with a single sample");
  }
  if (p.min > p.max) {
    return StateStatus(StateCode::kInconsistent, path, "min > max");
  }
  const double tol = 1e-9 * std::max({1.0, std::fabs(p.min), std::fabs(p.max)});
  if (p.mean < p.min - tol || p.mean > p.max + tol) {
    return StateStatus(StateCode::kInconsistent, path + "/mean", "mean outside [min, max]");
  }
  if (p.count >= 2) {
    // The variance of values within [min, max] is at most (max-min)^2 / 4.
    const double span = p.max - p.min;
    const double bound = span * span / 4.0 * static_cast<double>(p.count);
    if (p.m2 > bound * (1 + 1e-9) + tol) {
      return StateStatus(StateCode::kInconsistent, path + "/m2",
                         "m2 larger than [min, max] allows");
    }
  }
  RunningStats s;
  s.count_ = p.count;
  s.mean_ = p.mean;
  s.m2_ = p.m2;
  s.min_ = p.min;
  s.max_ = p.max;
  return s;
}

Ewma::Ewma(Params params)
    : params_(params), sample_decay_(std::exp2(-1.0 / params.half_life)) {}

void Ewma::Add(double x, uint64_t timestamp_ns) {
  if (weight_ > 0) {
    double decay = sample_decay_;  // computed once: Add runs per observation
    if (params_.mode == Mode::kTime) {
      const double elapsed =
          timestamp_ns > last_ns_ ? static_cast<double>(timestamp_ns - last_ns_) : 0.0;
      decay = std::exp2(-elapsed / params_.half_life);
    }
    weight_ *= decay;
    s_ *= decay;
  }
  if (timestamp_ns > last_ns_ || weight_ == 0) last_ns_ = timestamp_ns;
  weight_ += 1.0;
  const double delta = x - mean_;
  mean_ += delta / weight_;
  s_ += delta * (x - mean_);
  if (s_ < 0) s_ = 0;
}

StateResult<Ewma> Ewma::FromParts(Params params, const Parts& p, double max_weight,
                                  const std::string& path) {
  for (double v : {p.weight, p.mean, p.s}) {
    if (!std::isfinite(v)) {
      return StateStatus(StateCode::kNonFinite, path, "ewma values must be finite");
    }
  }
  if (p.weight < 0 || p.weight > max_weight * (1 + 1e-9)) {
    return StateStatus(StateCode::kOutOfRange, path + "/weight", "must be in [0, sample count]");
  }
  if (p.weight == 0 && (p.mean != 0 || p.s != 0)) {
    return StateStatus(StateCode::kInconsistent, path, "empty ewma must have mean and s 0");
  }
  if (p.s < 0) {
    return StateStatus(StateCode::kOutOfRange, path + "/s", "must be >= 0");
  }
  Ewma e(params);
  e.weight_ = p.weight;
  e.mean_ = p.mean;
  e.s_ = p.s;
  e.last_ns_ = p.last_ns;
  return e;
}

}  // namespace vigil::baseline
