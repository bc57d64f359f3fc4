// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: the streaming verifier (vigil::verify::StreamVerifier)
// driven by a small program (verifier_program.h): options, then events and
// log records in any order, clock ticks, log errors, Finish and takes of
// its output. The seeds are honest and tampered streams of a software module
// (userspace/lib/vigil/sim/module_sim.h) with real chains and ECDSA signatures, so the
// fuzzer starts from verified, unsigned, loss and tampered verdicts.
// Invariants beyond "no crash, leak or UB" (checked by the interpreter):
//   - a verified verdict has chain_checked and signature_checked, no missing
//     events, no bad seq and no attested loss; pcr_checked needs both a
//     verified signature and a PCR check; chain_checked never spans a gap
//   - counters.verdicts sums to the number of verdicts taken
//   - every verdict's range has first_seq <= last_seq + 1, its missing
//     ranges lie inside it, in order, and it holds at most that many events
//   - OpenEvents returns committed events after the anchor, in seq order,
//     each byte for byte a record that was fed (the interval's arena)
//   - the anchor never moves backwards; output is empty after a take
#include <cstddef>
#include <cstdint>
#include <span>

#include "verifier_program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vigil::fuzz::ProgramRunner runner;
  (void)runner.Run(std::span<const uint8_t>(data, size));
  return 0;
}
