// Replays the module's log into the values pcr_config and pcr_events must
// hold, per bank, following docs/kernel-module.md: start from the newest BASE
// record's values, which are the PCRs at its cut, and fold every record with
// seq >= its first_kept_seq (wherever it sits relative to the BASE): MEASURE
// and KEY records (pcr != VIGIL_PCR_NONE) extend pcr_config and CHECKPOINT
// records with anchor=pcr extend pcr_events, each with H_bank(whole record)
// in every bank the BASE lists. Log seqs from first_kept_seq on must be
// contiguous.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_REPLAY_H_
#define VIGIL_USERSPACE_LIB_VIGIL_REPLAY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vigil/digest.h"
#include "vigil/records.h"
#include "vigil/status.h"

namespace vigil::replay {

// The running values of one bank: [0] is the BASE value, then one entry
// after each extend, so a PCR read that raced a log append can be placed.
struct BankReplay {
  uint16_t alg = 0;
  std::vector<crypto::Digest> config_history;
  std::vector<crypto::Digest> events_history;

  const crypto::Digest& config() const { return config_history.back(); }
  const crypto::Digest& events() const { return events_history.back(); }
};

struct LogReplay {
  uint64_t base_seq = 0;               // log seq of the BASE replay started from
  size_t config_extends = 0;           // records folded into pcr_config
  size_t events_extends = 0;           // records folded into pcr_events
  std::optional<uint32_t> config_pcr;  // PCR index the MEASURE/KEY records name
  std::vector<BankReplay> banks;
  // The log seq of each extend, in order: history[i + 1] of every bank
  // follows the record with log seq *_seqs[i].
  std::vector<uint64_t> config_seqs;
  std::vector<uint64_t> events_seqs;
};

// Fails with kNotFound when there is no BASE record or the log starts after
// its first_kept_seq, kUnsupported for a bank algorithm OpenSSL cannot
// compute, kMalformed for inconsistent records or missing seqs.
Result<LogReplay> ReplayLog(const std::vector<records::Record>& log);

enum class PcrMatch {
  kMatch,        // the TPM holds the fully replayed value
  kPendingTail,  // the TPM holds an earlier value: the last records are
                 // logged but not yet extended (the log is written first)
  kMismatch,     // the TPM value is not on the replayed path at all
};

struct PcrComparison {
  PcrMatch match = PcrMatch::kMismatch;
  size_t pending = 0;  // with kPendingTail: extends not yet in the TPM
};

// Places `actual` on the replay path `history`.
PcrComparison ComparePcr(const std::vector<crypto::Digest>& history, const crypto::Digest& actual);

std::string PcrMatchName(PcrMatch m);

// Reads one PCR of one bank (e.g. through tpm::EsysContext::PcrRead).
using PcrReader = std::function<Result<crypto::Digest>(uint16_t alg, uint32_t pcr)>;

// Adds `rec`, the next record of the module's log, to `view`, the records a
// replay needs: a BASE record makes every record before its cut
// (first_kept_seq) unnecessary, so those are dropped; the records between the
// cut and the BASE itself (a TRIM writes its BASE last) are kept.
void AppendToReplayView(std::vector<records::Record>& view, records::Record rec);

// Whether the TPM confirms `verified`, the log records a verifier has
// consumed up to the one it decides (its last; earlier ones may be missing,
// and no BASE is needed: after a restart a verifier may hold only records
// past a cut): `current` is the log as the module holds it now (read after
// `verified`, so it may be longer), and in every bank pcr_events and
// pcr_config must hold a value on current's replay path at or beyond the
// last extend at or before verified's last log seq (any value on the path
// when current no longer holds that record). kMismatch when a PCR holds
// another value or when `current` disagrees with `verified`;
// kFailedPrecondition when the TPM has not caught up with `verified` yet (an
// extend pending or failed); kMalformed when `current` does not replay; read
// errors as the reader gives them. A TPM ahead of `current` is kMismatch
// too: read the log again and retry.
Status CheckPcrPath(const std::vector<records::Record>& verified,
                    const std::vector<records::Record>& current, uint32_t pcr_config,
                    uint32_t pcr_events, const PcrReader& read_pcr);

}  // namespace vigil::replay

#endif  // VIGIL_USERSPACE_LIB_VIGIL_REPLAY_H_
