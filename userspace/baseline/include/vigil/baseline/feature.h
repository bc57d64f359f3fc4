// The behavioral features a baseline is learned for, and their units.
#ifndef VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_FEATURE_H_
#define VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_FEATURE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vigil::baseline {

// Append-only: the names are part of the serialized state.
enum class Feature : uint8_t {
  kCpuPerExec = 0,     // "cpu_per_exec": user+system CPU of one exec, ns
  kLifetime = 1,       // "lifetime": exec to exit, ns
  kMaxRss = 2,         // "max_rss": peak resident set, bytes
  kFaultRate = 3,      // "fault_rate": page faults per second of lifetime
  kCtxSwitchRate = 4,  // "ctx_switch_rate": context switches per second
  kSyscallRate = 5,    // "syscall_rate": system calls per second
  kIpc = 6,            // "ipc": instructions per cycle; only observed when
                       // hardware counters exist (absent is not zero)
};

inline constexpr size_t kFeatureCount = 7;

inline constexpr std::array<Feature, kFeatureCount> kAllFeatures = {
    Feature::kCpuPerExec,    Feature::kLifetime,    Feature::kMaxRss, Feature::kFaultRate,
    Feature::kCtxSwitchRate, Feature::kSyscallRate, Feature::kIpc};

// "cpu_per_exec", "lifetime", ...
std::string_view FeatureName(Feature feature);
std::optional<Feature> FeatureFromName(std::string_view name);

inline constexpr size_t FeatureIndex(Feature feature) { return static_cast<size_t>(feature); }

}  // namespace vigil::baseline

#endif  // VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_FEATURE_H_
