#include "config.h"

#include <iostream>
#include <nlohmann/json.hpp>

namespace vigil::daemon {

std::string Config::Canonical() const {
  return nlohmann::json{{"all_processes", all_processes},
                        {"checkpoint_wait_s", checkpoint_wait_s},
                        {"hw", hw},
                        {"learn_samples", learn_samples},
                        {"metrics", metrics},
                        {"no_module", no_module},
                        {"no_pcr_check", no_pcr_check},
                        {"no_state", no_state},
                        {"reorder_window", reorder_window},
                        {"ringbuf_bytes", ringbuf_bytes},
                        {"sample_ms", sample_ms},
                        {"state_dir", state_dir},
                        {"syscalls", syscalls},
                        {"tcti", tcti},
                        {"threshold", threshold},
                        {"state_interval_s", state_interval_s},
                        {"baseline_interval_s", baseline_interval_s},
                        {"no_records", no_records},
                        {"stall_periods", stall_periods},
                        {"trim_fill", trim_fill}}
      .dump();
}

void Say(const std::string& msg) { std::cerr << "vigild: " << msg << "\n"; }

}  // namespace vigil::daemon
