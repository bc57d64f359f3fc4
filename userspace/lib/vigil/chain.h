// The event hash chain of docs/kernel-module.md, as a verifier recomputes it
// from committed records:
//   chain_0 = SHA-256("vigil-chain-v1" || instance_id)
//   chain_n = SHA-256(chain_{n-1} || record[0 .. hdr.size))   (hdr.seq == n)
//   checkpoint digest = SHA-256(whole checkpoint record); prev_digest links them.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_CHAIN_H_
#define VIGIL_USERSPACE_LIB_VIGIL_CHAIN_H_

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "vigil/digest.h"
#include "vigil/records.h"
#include "vigil/status.h"

namespace vigil::chain {

inline constexpr std::string_view kChainLabel = "vigil-chain-v1";
using InstanceId = std::array<uint8_t, VIGIL_ID_LEN>;
using crypto::Sha256Digest;

Result<Sha256Digest> InitialChain(const InstanceId& instance_id);

// Folds committed events into the chain one at a time, in seq order.
// Thread-safety: not thread-safe; use one per verifying thread.
class ChainVerifier {
 public:
  // At seq 0 with chain_0 of the instance.
  static Result<ChainVerifier> Start(const InstanceId& instance_id);
  // From a known head (e.g. a verified checkpoint) after `last_seq`.
  static ChainVerifier Resume(const Sha256Digest& head, uint64_t last_seq) {
    return ChainVerifier(head, last_seq);
  }

  // The event must be committed, carry seq == last_seq() + 1 and be an
  // event type; otherwise nothing changes and the error says why.
  Status Append(const records::Record& event);

  uint64_t last_seq() const { return last_seq_; }
  const Sha256Digest& head() const { return head_; }

 private:
  ChainVerifier(const Sha256Digest& head, uint64_t last_seq) : head_(head), last_seq_(last_seq) {}

  Sha256Digest head_;
  uint64_t last_seq_;
};

struct ChainSummary {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  size_t events = 0;
  Sha256Digest head{};
};

// Recomputes the chain from events received in any order (the ring buffer
// does not preserve commit order across CPUs): sorts by seq, then requires
// seq 1, 2, ... without gaps or duplicates.
Result<ChainSummary> RecomputeChain(const InstanceId& instance_id,
                                    std::vector<records::Record> events);

// Checkpoint policy (links, loss counters, signatures, verdicts) lives in
// one place, the streaming verifier (vigil/verify.h), which vigild runs and
// offline tools reach through vigil/offline.h: no second set of rules here.

}  // namespace vigil::chain

#endif  // VIGIL_USERSPACE_LIB_VIGIL_CHAIN_H_
