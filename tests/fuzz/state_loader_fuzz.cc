// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: the baseline state loader (vigild reads it back at
// start). Invariants beyond "no crash, leak or UB": every refusal carries a
// typed code; whatever Parse accepts serializes and parses again to the same
// text (an accepted state is a valid state); Restore agrees with Parse and is
// all or nothing (a refused state leaves the live store as it was); ParseFile
// (the same text streamed from a FILE, as vigild loads it) agrees with Parse.
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "baseline_fuzz_config.h"
#include "vigil/baseline/store.h"

namespace {

using vigil::baseline::BaselineConfig;
using vigil::baseline::BaselineStore;
using vigil::baseline::StateCode;

// A store holding some state of its own, to see Restore replace or keep it.
BaselineStore LiveStore(const BaselineConfig& config) {
  auto store = BaselineStore::Create(config);
  if (!store.ok()) std::abort();
  for (uint64_t i = 0; i < 6; ++i) {
    vigil::baseline::ExitSample sample;
    sample.agent = "live";
    sample.role = "web";
    sample.timestamp_ns = 1000 * (i + 1);
    sample.cpu_ns = 2'000'000 + 1000 * i;
    sample.lifetime_ns = 50'000'000;
    sample.max_rss_bytes = 8 << 20;
    sample.faults = 100 + i;
    (void)store->ObserveExit(sample);
  }
  (void)store->ObserveExecutable("live", "web", "/usr/bin/live", 1000);
  return std::move(store).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const BaselineConfig config = vigil::fuzz::BaselineFuzzConfig();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  static const std::string live_before = LiveStore(config).Serialize();  // deterministic

  auto parsed = BaselineStore::Parse(text, config);
  // fmemopen cannot open an empty buffer for reading on every libc.
  if (size > 0) {
    std::FILE* file = ::fmemopen(const_cast<uint8_t*>(data), size, "r");
    if (file == nullptr) std::abort();
    auto streamed = BaselineStore::ParseFile(file, size, config);
    std::fclose(file);
    if (streamed.ok() != parsed.ok()) std::abort();
    if (!parsed.ok() && streamed.status().code() != parsed.status().code()) std::abort();
    if (parsed.ok() && streamed->Serialize() != parsed->Serialize()) std::abort();
  }
  BaselineStore live = LiveStore(config);
  const vigil::baseline::StateStatus restored = live.Restore(text);

  if (!parsed.ok()) {
    if (parsed.status().code() == StateCode::kOk) std::abort();
    if (restored.ok() || restored.code() != parsed.status().code()) std::abort();
    if (live.Serialize() != live_before) std::abort();
    return 0;
  }
  const std::string once = parsed->Serialize();
  auto again = BaselineStore::Parse(once, config);
  if (!again.ok() || again->Serialize() != once) std::abort();
  if (!restored.ok() || live.Serialize() != once) std::abort();
  return 0;
}
