// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: IMA's binary runtime measurement list as vigil::ima
// parses and replays it (anchor=ima). Invariants beyond "no crash, leak or
// UB": feeding the bytes whole or in pieces gives the same entries, vigil
// entries and status; a refusal carries an error code; matching PCR 10 and
// checking the module's records against the entries' own records never
// throws, and a match is never past the last entry.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <span>
#include <vector>

#include "vigil/ima.h"
#include "vigil/records.h"

namespace {

constexpr uint16_t kSha1 = 0x0004;
constexpr uint16_t kSha256 = 0x000B;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t piece = 1 + data[0] % 64;
  const std::span<const uint8_t> log(data + 1, size - 1);

  auto whole = vigil::ima::ImaLog::Create({kSha1, kSha256});
  auto pieces = vigil::ima::ImaLog::Create({kSha1, kSha256});
  if (!whole.ok() || !pieces.ok()) std::abort();
  const vigil::Status a = whole->Append(log);
  vigil::Status b;
  for (size_t at = 0; at < log.size() && b.ok(); at += piece) {
    b = pieces->Append(log.subspan(at, std::min(piece, log.size() - at)));
  }
  if (a.ok() != b.ok() || a.code() != b.code()) std::abort();
  if (!a.ok()) {
    if (a.code() == vigil::ErrorCode::kOk) std::abort();
    return 0;
  }
  if (whole->entries() != pieces->entries() ||
      whole->vigil_entries().size() != pieces->vigil_entries().size() ||
      whole->partial() != pieces->partial()) {
    std::abort();
  }

  std::map<uint16_t, vigil::crypto::Digest> zero{{kSha1, vigil::crypto::Digest(20, 0)},
                                                {kSha256, vigil::crypto::Digest(32, 0)}};
  auto prefix = whole->MatchPcr10(zero);
  if (prefix.ok() && *prefix > whole->entries()) std::abort();
  if (!prefix.ok() && prefix.status().code() != vigil::ErrorCode::kMismatch) std::abort();

  // The entries' own records as the "verified log": decoding may refuse.
  std::vector<vigil::records::Record> records;
  for (const vigil::ima::VigilEntry& e : whole->vigil_entries()) {
    auto r = vigil::records::Record::Decode(e.record);
    if (r.ok()) records.push_back(std::move(r).value());
  }
  const std::vector<uint8_t> instance(16, 0x5a);
  const vigil::Status st =
      whole->CheckModuleRecords(records, instance, prefix.ok() ? *prefix : whole->entries());
  if (!st.ok() && st.code() == vigil::ErrorCode::kOk) std::abort();
  return 0;
}
