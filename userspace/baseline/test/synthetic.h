// Synthetic agents with known feature distributions, for tests and benches.
#ifndef VIGIL_USERSPACE_BASELINE_TEST_SYNTHETIC_H_
#define VIGIL_USERSPACE_BASELINE_TEST_SYNTHETIC_H_

#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "vigil/baseline/store.h"

namespace vigil::baseline::testing {

// Lognormal features given by median and sigma (of the log); IPC normal.
struct AgentProfile {
  std::string name;
  std::string role = "worker";
  double cpu_median_ns = 2e6;
  double lifetime_median_ns = 5e7;
  double rss_median_bytes = 2e7;
  double fault_rate = 2000;  // per second of lifetime
  double ctx_rate = 500;
  double syscall_rate = 20000;
  double sigma = 0.2;
  double ipc_mean = 1.5;
  double ipc_sd = 0.05;
  bool hardware_counters = true;
};

// Thread-safety: not synchronized (owns its generator).
class AgentSimulator {
 public:
  AgentSimulator(AgentProfile profile, uint64_t seed) : profile_(std::move(profile)), rng_(seed) {}

  AgentProfile& profile() { return profile_; }

  ExitSample Next(uint64_t timestamp_ns) {
    ExitSample s;
    s.agent = profile_.name;
    s.role = profile_.role;
    s.timestamp_ns = timestamp_ns;
    s.cpu_ns = Round(LogNormal(profile_.cpu_median_ns));
    s.lifetime_ns = Round(LogNormal(profile_.lifetime_median_ns));
    s.max_rss_bytes = Round(LogNormal(profile_.rss_median_bytes));
    const double secs = static_cast<double>(s.lifetime_ns) / 1e9;
    s.faults = Round(LogNormal(profile_.fault_rate) * secs);
    s.ctx_switches = Round(LogNormal(profile_.ctx_rate) * secs);
    s.syscalls = Round(LogNormal(profile_.syscall_rate) * secs);
    if (profile_.hardware_counters) {
      const double ipc = std::max(
          0.05, std::normal_distribution<double>(profile_.ipc_mean, profile_.ipc_sd)(rng_));
      s.cycles = 1'000'000'000ull;
      s.instructions = Round(ipc * 1e9);
    }
    return s;
  }

  double LogNormal(double median) { return median * std::exp(profile_.sigma * normal_(rng_)); }

 private:
  static uint64_t Round(double x) { return static_cast<uint64_t>(std::llround(std::max(0.0, x))); }

  AgentProfile profile_;
  std::mt19937_64 rng_;
  std::normal_distribution<double> normal_{0.0, 1.0};
};

}  // namespace vigil::baseline::testing

#endif  // VIGIL_USERSPACE_BASELINE_TEST_SYNTHETIC_H_
