// The event hash chain and checkpoint rules of docs/kernel-module.md, as a
// verifier recomputes them from committed records:
//   chain_0 = SHA-256("vigil-chain-v1" || instance_id)
//   chain_n = SHA-256(chain_{n-1} || record[0 .. hdr.size))   (hdr.seq == n)
//   checkpoint digest = SHA-256(whole checkpoint record); prev_digest links them.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_CHAIN_H_
#define VIGIL_USERSPACE_LIB_VIGIL_CHAIN_H_

#include <array>
#include <cstdint>
#include <functional>
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

struct CheckpointSummary {
  size_t checkpoints = 0;
  uint64_t last_seq = 0;       // last event seq covered by a checkpoint
  Sha256Digest last_digest{};  // digest of the last checkpoint
};

// Verifies the checkpoints found in `log` (in log order) against the events:
// instance id, prev_digest links (zeros before the first), seq ranges that
// continue each other, loss counters that never decrease, and each
// chain_head equal to the recomputed chain
// after last_seq. `events` must hold every committed event up to the last
// checkpoint's last_seq (any order).
Result<CheckpointSummary> VerifyCheckpoints(const InstanceId& instance_id,
                                            const std::vector<records::Record>& log,
                                            std::vector<records::Record> events);

struct RangeSummary {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  size_t events = 0;
  Sha256Digest head{};             // chain value after last_seq
  // Log checkpoints ending inside the window (start_seq, last_seq] whose
  // chain_head was compared. A checkpoint ending exactly at start_seq is
  // compared too (a mismatch fails) but only confirms the starting state, so
  // it is not counted.
  size_t checkpoints_checked = 0;
  // Of those, the ones `is_anchor` accepted (all of them without a filter),
  // and the last event seq such an anchor covers (0: none).
  size_t anchors_checked = 0;
  uint64_t anchored_last_seq = 0;
};

// Verifies a window of events against a known chain state, e.g. the module's
// chain_head and next_seq - 1 read before a collector attached: the events
// (any order) must continue at start_seq + 1 without gaps, and every
// CHECKPOINT in `log` that ends inside the window (or exactly at start_seq)
// must carry the chain value recomputed at its last_seq.
// `is_anchor` (optional) says which checkpoint records count as anchors,
// e.g. only those with a verified signature.
Result<RangeSummary> VerifyEventRange(
    const Sha256Digest& start_head, uint64_t start_seq, std::vector<records::Record> events,
    const std::vector<records::Record>& log,
    const std::function<bool(const records::Record&)>& is_anchor = nullptr);

// The checkpoints' own structure, without the events: instance id, each
// prev_digest equal to the digest of the checkpoint before it (zeros before
// a checkpoint starting at seq 1), first_seq continuing the previous
// last_seq, loss counters that never decrease. For a window that does not
// start at seq 0 (VerifyCheckpoints needs every event from seq 1). The
// first checkpoint of a trimmed log is taken as found.
Result<CheckpointSummary> VerifyCheckpointLinks(const InstanceId& instance_id,
                                                const std::vector<records::Record>& log);

}  // namespace vigil::chain

#endif  // VIGIL_USERSPACE_LIB_VIGIL_CHAIN_H_
