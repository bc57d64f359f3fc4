// libFuzzer target for the baseline state loader (issue 5 item 6).
// Invariant checked: Parse never crashes or trips a sanitizer, every refusal
// carries a typed code, and whatever it accepts serializes and parses again to
// the same text (an accepted state is a valid state).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vigil/baseline/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vigil::baseline::BaselineConfig;
  using vigil::baseline::BaselineStore;
  using vigil::baseline::StateCode;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  BaselineConfig config;
  config.max_agents = 1000;  // keep single inputs cheap
  auto parsed = BaselineStore::Parse(text, config);
  if (!parsed.ok()) {
    if (parsed.status().code() == StateCode::kOk) std::abort();
    return 0;
  }
  const std::string once = parsed->Serialize();
  auto again = BaselineStore::Parse(once, config);
  if (!again.ok() || again->Serialize() != once) std::abort();
  return 0;
}
