// vigild's configuration: every option main() parses, with its default.
#ifndef VIGIL_USERSPACE_VIGILD_CONFIG_H_
#define VIGIL_USERSPACE_VIGILD_CONFIG_H_

#include <cstdint>
#include <string>

#include "state.h"
#include "vigil/agents.h"
#include "vigil/tpm.h"

namespace vigil::daemon {

inline constexpr char kDefaultMetrics[] = "127.0.0.1:9477";

// Thread-safety: a value; read-only once vigild runs.
struct Config {
  double duration_s = 0;
  std::string ready_file;
  std::string raw_out;
  std::string output = "-";
  bool no_records = false;
  uint32_t ringbuf_bytes = 0;
  bool no_module = false;
  bool verbose = false;
  bool all_processes = false;
  std::string pin_dir = agents::kDefaultPinDir;
  uint32_t sample_ms = 0;
  bool syscalls = false;
  std::string hw = "auto";
  std::string state_dir = kDefaultStateDir;
  bool no_state = false;
  bool reset_state = false;
  double state_interval_s = 1.0;
  // Saved logs of module instances (log-<instance>.bin, one per load or
  // boot) kept in the state directory, the running one included; 0: all.
  uint32_t keep_instance_logs = 8;
  double baseline_interval_s = 1.0;
  std::string metrics = kDefaultMetrics;
  std::string tcti = tpm::kDefaultTcti;
  bool no_pcr_check = false;
  uint32_t reorder_window = 4096;
  double checkpoint_wait_s = 5.0;
  uint64_t learn_samples = 100;
  double threshold = 6.0;
  bool no_measure = false;
  uint32_t stall_periods = 5;
  double trim_fill = 0.5;

  // What MEASURE records as the configuration: every option that changes
  // what vigild verifies, learns, reports or keeps (not the output files).
  std::string Canonical() const;
};

// One line on stderr, prefixed "vigild: ".
void Say(const std::string& msg);

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_CONFIG_H_
