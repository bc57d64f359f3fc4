// vigild's liveness policy, without I/O so tests reach all of it:
//  - LogTrimmer: when and how far vigild TRIMs the module's log. Without
//    it the module's log fills up (16 MiB by default), every checkpoint is
//    deferred and verification stops.
//  - LivenessMonitor: a `stalled` finding when the module's seq moves on but
//    no verdict comes, or when no checkpoint comes at all.
//  - CheckSavedAnchor: a saved anchor (verifier.json) must be a checkpoint
//    the module really wrote, found in its log or in the saved log.
#ifndef VIGIL_USERSPACE_VIGILD_LIVENESS_H_
#define VIGIL_USERSPACE_VIGILD_LIVENESS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/verify.h"

namespace vigil::daemon {

// The log seq to TRIM before, or nullopt when nothing may be dropped:
// records before the checkpoint of the anchor saved in verifier.json (a
// decided checkpoint, which the module's log keeps, so a restart finds it
// and replay stays possible: the module writes a BASE at the cut) and never
// a record past `durable_log_seq` (the last one fsynced to the saved log).
// nullopt as well when the cut would drop nothing (at or below
// `module_first_seq`, the oldest record the module holds).
std::optional<uint64_t> TrimBefore(uint64_t saved_anchor_log_seq, uint64_t durable_log_seq,
                                   uint64_t module_first_seq);

struct TrimOptions {
  // Trim once the module's log holds this fraction of log_max_bytes (or
  // refused a record). Every TRIM writes a 1152-byte BASE record into the
  // log (and so into the saved log): trimming at every save would cost more
  // than the checkpoints themselves.
  double fill_fraction = 0.5;
};

// Thread-safety: not thread-safe; vigild's polling thread drives it.
class LogTrimmer {
 public:
  // VIGIL_IOC_TRIM (device::VigilDevice::Trim): records dropped, or
  // kUnavailable (EAGAIN: retry later), kFailedPrecondition (ESHUTDOWN:
  // sealed), anything else an error.
  using TrimFn = std::function<Result<uint64_t>(uint64_t before_seq)>;

  LogTrimmer(TrimFn trim, TrimOptions options) : trim_(std::move(trim)), options_(options) {}

  // Whether the module's log (GET_INFO) is full enough to trim: log_bytes
  // at or above the fill fraction of log_max_bytes, or a record refused at
  // the cap since the last trim. Never after the module was sealed.
  bool Due(const vigil_info& info) const;

  struct Outcome {
    enum class Kind {
      kNothing,     // not due, or nothing may be dropped
      kTrimmed,     // `trimmed` records before `before_seq` dropped
      kRetryLater,  // EAGAIN: an extend is pending
      kSealed,      // ESHUTDOWN: the module takes no more TRIMs
      kError,       // `why`
    };
    Kind kind = Kind::kNothing;
    uint64_t before_seq = 0;
    uint64_t trimmed = 0;
    std::string why;
  };
  // TRIMs before TrimBefore(...) when Due(info). `saved_anchor_log_seq` and
  // `durable_log_seq` must describe what is on disk, not in memory.
  Outcome MaybeTrim(const vigil_info& info, uint64_t saved_anchor_log_seq,
                    uint64_t durable_log_seq);

  bool sealed() const { return sealed_; }
  uint64_t trims() const { return trims_; }
  uint64_t records_trimmed() const { return records_trimmed_; }

 private:
  TrimFn trim_;
  TrimOptions options_;
  bool sealed_ = false;
  uint64_t refused_at_last_trim_ = 0;
  uint64_t trims_ = 0;
  uint64_t records_trimmed_ = 0;
};

struct LivenessOptions {
  // Checkpoint periods without a verdict, while the module's seq has moved
  // past what the verdicts cover, before a `stalled` finding.
  uint32_t stall_periods = 5;
  // vigild's --checkpoint-wait: a verdict may legitimately wait this long
  // for missing events, so the window is never shorter than it plus one
  // period.
  uint64_t checkpoint_wait_ns = 5'000'000'000;
};

struct Stall {
  enum class Kind {
    kNoVerdict,     // the seq moved on, no verdict for the window
    kNoCheckpoint,  // no CHECKPOINT record for 3 x heartbeat_ms
  };
  Kind kind = Kind::kNoVerdict;
  uint64_t seq = 0;  // the highest committed seq known
  std::string reason;
};

// Thread-safety: not thread-safe. Observations carry no time; the next
// Tick stamps them (vigild ticks after every poll, about 10 times a second).
class LivenessMonitor {
 public:
  explicit LivenessMonitor(LivenessOptions options) : options_(options) {}

  // GET_INFO: the periods (checkpoint_ms, heartbeat_ms), the module's seq
  // (next_seq - 1), whether it is sealed (no checkpoint after the final
  // one), and its log fill for the finding's reason. Nothing is judged
  // before the first call.
  void OnModuleInfo(const vigil_info& info);
  // A committed seq seen on a record.
  void OnSeq(uint64_t seq);
  // A CHECKPOINT record was read from the module's log.
  void OnCheckpointLogged() { checkpoint_seen_ = true; }
  // A verdict was made over seqs up to `last_seq`.
  void OnVerdict(uint64_t last_seq);
  // Verdicts already cover seqs up to `seq` (the verifier's start).
  void SetCovered(uint64_t seq) { covered_seq_ = std::max(covered_seq_, seq); }

  // The stalls that start now (each reported once until it ends).
  std::vector<Stall> Tick(uint64_t mono_ns);
  bool stalled() const { return stalled_verdict_ || stalled_checkpoint_; }

  // The checkpoint period (min(checkpoint_ms, heartbeat_ms), or
  // heartbeat_ms without a timer) and the resulting windows, in ns; 0 before
  // OnModuleInfo.
  uint64_t period_ns() const { return period_ns_; }
  uint64_t verdict_window_ns() const;
  uint64_t checkpoint_window_ns() const { return 3 * heartbeat_ns_; }

 private:
  LivenessOptions options_;
  bool have_info_ = false;
  uint64_t period_ns_ = 0;
  uint64_t heartbeat_ns_ = 0;
  bool sealed_ = false;
  uint64_t log_bytes_ = 0, log_max_bytes_ = 0, log_refused_ = 0;

  uint64_t max_seq_ = 0;      // highest committed seq known
  uint64_t covered_seq_ = 0;  // highest seq a verdict covered
  bool verdict_seen_ = false;
  bool checkpoint_seen_ = false;
  std::optional<uint64_t> start_ns_;
  std::optional<uint64_t> behind_since_ns_;  // max_seq_ > covered_seq_ since
  uint64_t last_checkpoint_ns_ = 0;
  bool stalled_verdict_ = false;
  bool stalled_checkpoint_ = false;
};

// The error names CheckSavedAnchor's messages start with.
inline constexpr std::string_view kAnchorMismatch = "anchor_mismatch";
inline constexpr std::string_view kAnchorUnverifiable = "anchor_unverifiable";

// Looks a log seq up in the saved log (nullopt: not there).
using SavedLogLookup = std::function<Result<std::optional<records::Record>>(uint64_t log_seq)>;

// Whether `saved` (verifier.json's anchor for the module instance `info`
// names) is a checkpoint the module wrote: the record at its
// checkpoint_log_seq, in `module_log` (as read now) or else through
// `saved_log`, must be a CHECKPOINT of this instance whose SHA-256, last_seq,
// chain head and loss counters are the anchor's; an anchor at seq 0 must be
// the instance's chain_0. Otherwise verification would start from a point
// nobody signed (e.g. a raised checkpoint_log_seq makes every later
// checkpoint "historic": no verdict, no finding). kMismatch
// ("anchor_mismatch: ...") when it differs, kNotFound
// ("anchor_unverifiable: ...") when the record is in neither log.
Status CheckSavedAnchor(const verify::Anchor& saved, const vigil_info& info,
                        const std::vector<records::Record>& module_log,
                        const SavedLogLookup& saved_log);

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_LIVENESS_H_
