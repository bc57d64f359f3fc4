// SPDX-License-Identifier: GPL-2.0
// The baseline configuration state_loader_fuzz parses with; the seed
// generator checks its states against the same one.
#ifndef VIGIL_TESTS_FUZZ_BASELINE_FUZZ_CONFIG_H_
#define VIGIL_TESTS_FUZZ_BASELINE_FUZZ_CONFIG_H_

#include "vigil/baseline/store.h"

namespace vigil::fuzz {

inline baseline::BaselineConfig BaselineFuzzConfig() {
  baseline::BaselineConfig config;
  config.max_agents = 1000;  // keep single inputs cheap
  config.learn_samples = 4;  // so small stores reach the watching phase
  return config;
}

}  // namespace vigil::fuzz

#endif  // VIGIL_TESTS_FUZZ_BASELINE_FUZZ_CONFIG_H_
