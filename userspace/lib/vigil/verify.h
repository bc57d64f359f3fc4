// The collector's streaming verifier: events from the ring buffer (any
// order, bounded reordering) and the module's log (in order) in; one verdict
// per checkpoint out. It never calls a checkpoint verified unless it has
// recomputed the chain over every event of the checkpoint's range, checked
// the checkpoint's links and its TPM signature against the trusted key, and
// checked the anchor: the checkpoint on the TPM's PCR replay path
// (anchor=pcr), or in IMA's log replayed to PCR 10 (anchor=ima).
//
// Verdicts, most severe first (a checkpoint gets the first that applies):
//   tampered    a record or the checkpoint itself is not what the module
//               wrote: chain head differs, two different records claim one
//               seq, a record arrived twice, the checkpoint does not link to
//               the one before it (replayed or reordered), comes from another
//               module instance (another boot or load), its signature does
//               not verify, or the log is truncated. `bad_seq` names the
//               first bad event seq when one is known.
//   loss        events of the range never arrived (`missing` ranges), or the
//               module attests drops, busy refusals or refused log records
//               since the previous checkpoint. The chain cannot be recomputed
//               across a gap, so a loss verdict never claims the chain.
//   unsigned    the chain and links verify but the TPM did not sign
//               (degraded mode, TPM error) or the signature record is
//               missing.
//   unanchored  chain and signature verify, but the anchor was checked and
//               does not hold (PCR or IMA replay mismatch): someone extended
//               or reset the anchor; an anchor_broken finding says so once.
//   signed      chain and signature verify; the anchor was not checked (no
//               check configured, e.g. offline, or the TPM or IMA's log
//               could not be read); the reason says why.
//   verified    everything above checks out, the anchor included.
// Events that are not committed (no module, or a refused commit) are counted
// as unattested and never enter a verdict.
//
// Reordering. Events are chained in seq order. A seq that has not arrived is
// waited for while fewer than `reorder_window` later seqs are pending; past
// that it is declared missing (the checkpoint covering it gets "loss"), and
// if it turns up later it is reported as a late finding.
//
// Thread-safety: not thread-safe; one thread feeds a verifier.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_VERIFY_H_
#define VIGIL_USERSPACE_LIB_VIGIL_VERIFY_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil.h"
#include "vigil/chain.h"
#include "vigil/records.h"
#include "vigil/signature.h"
#include "vigil/status.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace vigil::verify {

// kUnanchored: the chain and the TPM signature hold, but the anchor does
// not: the PCR replay of the log does not reach the TPM's value (a junk
// extend, a reset). The events are as the module committed them; what the
// anchor should prove (against root) is gone. Its own word, so that event
// tampering and an attack on the anchor never look the same.
// Declared in counter order (metrics, saved counts); severity is the order
// in the file comment.
enum class Verdict { kVerified, kUnsigned, kLoss, kTampered, kUnanchored, kSigned };
std::string_view VerdictName(Verdict v);
inline constexpr size_t kVerdictCount = 6;

struct SeqRange {
  uint64_t first = 0;
  uint64_t last = 0;
  bool operator==(const SeqRange&) const = default;
};

struct CheckpointVerdict {
  Verdict verdict = Verdict::kTampered;
  std::string reason;            // why; for verified, what was checked
  uint64_t log_seq = 0;          // the checkpoint's log seq
  uint64_t first_seq = 0;        // event range it covers
  uint64_t last_seq = 0;
  uint64_t events = 0;           // events of the range that arrived
  std::optional<uint64_t> bad_seq;  // tampered: first bad event seq, if known
  std::vector<SeqRange> missing;    // loss: seqs that never arrived
  uint64_t new_drops = 0;        // attested since the previous checkpoint
  uint64_t new_busy = 0;
  uint64_t new_log_refused = 0;
  bool chain_checked = false;    // the chain head was recomputed and matched
  bool signature_checked = false;  // an ECDSA signature verified
  bool pcr_checked = false;        // anchor checked: placed on the TPM's PCR replay
                                   // path (pcr_events, or PCR 10 through IMA's log)
};

// Something wrong that is not tied to one checkpoint's verdict (e.g. a
// record arriving after its checkpoint was decided, a log decode error).
struct Finding {
  // kProducerSilent: a producer ran less often than its tracepoint fired
  // (the module's own count) between two trusted checkpoints, or a
  // continuously running one did not run at all: detached, replaced or
  // switched off. kProducerDuplicated: it ran more often than its
  // tracepoint fired (attached twice). kProducersChanged: a producer window
  // was opened or sealed, or programs run unmeasured. kProducersResealed:
  // the same producer set was sealed again (a collector restart) and
  // nothing else was: every window in between sealed, each with that set;
  // the liveness counts go on across it, so a gap still shows. kRefused: the module
  // refused commits or programs (foreign producers, bad records, sealed).
  // kTpm: the module counted failed TPM operations. kDevAnchor: the
  // checkpoints are anchored in a resettable PCR (development only).
  // kAnchorBroken: the PCR replay stopped matching the TPM (once per
  // episode); the verdicts go on over the chain and the signatures.
  // kKeyMismatch: a KEY record in the log names another key than the
  // trusted one (the next checkpoint is tampered too).
  enum class Kind {
    kLateRecord,
    kDuplicate,
    kConflict,
    kLog,
    kUnanchored,
    kProducerSilent,
    kProducersChanged,
    kRefused,
    kProducerDuplicated,
    kTpm,
    kDevAnchor,
    kKeyMismatch,
    kAnchorBroken,
    kAnchorUnchecked,
    kProducersResealed,
  };
  Kind kind = Kind::kLog;
  uint64_t seq = 0;  // event seq or log seq, depending on kind
  std::string reason;
};
std::string_view FindingKindName(Finding::Kind k);

// Where verification starts: the chain value after `last_seq`, the digest of
// the checkpoint that ended there (zeros at seq 0) and that checkpoint's log
// seq (0 when none), and the module's checkpoint key from a trusted source
// (GET_INFO on the node, `--key`, an enrolment): never from the log being
// verified. No key means the trusted source says the module has none
// (degraded mode: every checkpoint is at best unsigned). A KEY record in the
// log that differs from it is a `key_mismatch` finding and makes the next
// checkpoint tampered, so a forged key cannot sign forged checkpoints.
struct Anchor {
  chain::InstanceId instance_id{};
  uint64_t last_seq = 0;
  crypto::Sha256Digest chain_head{};
  crypto::Sha256Digest checkpoint_digest{};
  uint64_t checkpoint_log_seq = 0;
  // Loss counters the anchor checkpoint carried (new_* are deltas from them).
  uint64_t drops_total = 0;
  uint64_t busy_total = 0;
  uint64_t log_refused = 0;
  std::optional<crypto::EcPoint> key;
  // The anchor checkpoint itself, when the caller kept it: its liveness
  // counters start the comparison with the next checkpoint (a verifier
  // that starts from the anchor, like a remote verifier on each evidence,
  // would otherwise see a producer silenced since then only from the second
  // checkpoint on). Set by the verifier whenever it moves the anchor.
  std::optional<vigil_log_checkpoint> liveness;
  // The liveness count at `liveness` (firings minus runs per role) and the
  // roles seen running, so a verifier started from the anchor goes on
  // counting (misses spread over many evidences add up).
  std::array<int64_t, VIGIL_PROD_SLOTS> liveness_deficit{};
  std::optional<uint32_t> liveness_roles;
};

// Confirms that `log` (the log records fed from the newest BASE's cut on,
// up to and including the checkpoint being decided; no BASE among them after
// a restart on a trimmed log) is on the TPM's PCR path. OK:
// confirmed; kMismatch / kMalformed: the TPM holds another value or the log
// does not replay (tampered); anything else (kFailedPrecondition: the TPM has
// not caught up; kUnavailable: it cannot be read): not checked.
using PcrCheck = std::function<Status(const std::vector<records::Record>& log)>;

struct VerifierOptions {
  size_t reorder_window = 4096;  // pending seqs before a gap is declared
  // A checkpoint whose events or signature have not all arrived this long
  // after it was logged is decided with what is there (0: only at Finish or
  // by the window).
  uint64_t checkpoint_wait_ns = 5'000'000'000;
  // Events kept per open checkpoint interval (to resolve two records that
  // claim one seq, and for a restart); beyond it the interval is still
  // chained but a conflict can no longer be resolved.
  size_t max_interval_records = 1 << 18;
  // Different records kept per seq; more claims are counted and dropped.
  size_t max_claims_per_seq = 4;
  // Events at or before this seq were committed before this collector
  // started (a fresh start anchored on the log's last checkpoint): counted,
  // not reported as late.
  uint64_t started_after_seq = 0;
  // The anchor checks, by the checkpoint's anchor: pcr_check for
  // anchor=pcr, ima_check for anchor=ima (same contract: the log prefix
  // replays into IMA's log and PCR 10). Empty: that anchor is not checked,
  // and a checkpoint that verifies otherwise is "signed", not "verified".
  PcrCheck pcr_check;
  PcrCheck ima_check;
  // The module's anchor (enum vigil_anchor) from a trusted source (GET_INFO
  // on the node). Set: the check is chosen by it, not by the checkpoint
  // being verified, and a checkpoint that names another anchor is tampered.
  std::optional<uint32_t> module_anchor;
  // The anchor is a chain value the caller trusts inside a checkpoint
  // interval, not a checkpoint (an offline check from the module's chain
  // head read before a collector attached): the first checkpoint that covers
  // anchor.last_seq + 1 is accepted without its prev_digest link and its
  // loss-counter deltas, which the anchor cannot know; its chain head is
  // still recomputed over the events after the anchor, and its signature
  // checked. Checkpoints ending before the anchor must be skipped by the
  // anchor's checkpoint_log_seq.
  bool open_first_link = false;
};

struct VerifierCounters {
  uint64_t events = 0;       // committed events received
  uint64_t unattested = 0;   // events without the committed flag
  uint64_t chained = 0;      // events folded into the recomputed chain
  uint64_t log_records = 0;
  uint64_t late = 0;
  uint64_t before_start = 0;  // events at or before started_after_seq
  uint64_t duplicates = 0;
  uint64_t conflicts = 0;
  uint64_t far_ahead = 0;    // seqs implausibly far ahead of the chain, dropped
  uint64_t recovered = 0;    // events re-fed after a restart
  uint64_t redelivered = 0;  // identical copies of recovered events, dropped
  uint64_t key_mismatches = 0;  // KEY records naming another key than the trusted one
  std::array<uint64_t, kVerdictCount> verdicts{};
};

class StreamVerifier {
 public:
  StreamVerifier(const Anchor& anchor, VerifierOptions options);

  // A ring buffer record (or a user event from a LOG_EVENT copy). Taken by
  // rvalue so a record is copied once, into the interval, not per call.
  void AddEvent(records::Record&& event);
  void AddEvent(const records::Record& event) { AddEvent(records::Record(event)); }
  // An event a previous collector saved before it stopped (restart). The
  // ring buffer may deliver it once more (the record being handled when the
  // collector was killed): one identical copy arriving through AddEvent is
  // then dropped silently; a different one is still a conflict, and a second
  // recovered copy is still a duplicate.
  void AddRecoveredEvent(records::Record event);
  // The next log record, in log order. KEY records are compared with the
  // trusted key (never adopted), CHECKPOINT and SIGNATURE records make
  // verdicts, LOG_EVENT copies feed AddEvent.
  void AddLog(records::Record log_record);
  // The log stream could not be decoded at this point (e.g. it ends inside
  // a record): every checkpoint still waiting is tampered, with `why`.
  void LogError(const std::string& why);
  // Decides checkpoints whose wait expired (`now_ns` is CLOCK_MONOTONIC).
  void Tick(uint64_t now_ns);
  // End of input: decides every checkpoint still waiting.
  void Finish();

  // Verdicts and findings made since the last call, in order.
  std::vector<CheckpointVerdict> TakeVerdicts();
  std::vector<Finding> TakeFindings();
  bool has_output() const { return !verdicts_.empty() || !findings_.empty(); }

  const VerifierCounters& counters() const { return counters_; }
  // The state a restart can resume from: the last decided checkpoint whose
  // chain head is trusted, and the key.
  const Anchor& anchor() const { return anchor_; }
  // Committed events after the anchor that a restart must re-feed (their
  // checkpoint has not been decided yet), in seq order, including second
  // claimants and duplicate copies (so the evidence survives a restart).
  std::vector<records::Record> OpenEvents() const;
  bool has_key() const { return key_.has_value(); }
  // The recomputed chain's tip: every seq up to `seq` chained without a gap
  // from the anchor (nullopt after a gap or an untrusted value).
  struct Tip {
    uint64_t seq;
    crypto::Sha256Digest head;
  };
  std::optional<Tip> tip() const {
    if (!chain_valid_) return std::nullopt;
    return Tip{chained_seq_, head_};
  }

 private:
  struct Chained {
    uint64_t seq;
    bool valid;                      // head_after is a real chain value
    bool kept;                       // its bytes are in arena_
    uint32_t size;
    uint64_t offset;                 // of its bytes, counted like arena_base_
    crypto::Sha256Digest head_after;
  };
  enum class Sig { kPending, kOk, kUnsigned, kBad };
  struct PendingCheckpoint {
    records::Record rec;
    vigil_log_checkpoint cp;
    crypto::Sha256Digest digest;
    std::optional<vigil_log_signature> sig;
    uint64_t logged_at_ns;               // 0 until the first Tick after it
    std::string structural_error;        // instance, replay: tampered at once
    Sig sig_state = Sig::kPending;
    std::string sig_why;
  };
  struct Conflict {
    uint64_t seq;
    std::vector<records::Record> others;  // claimants not chained
  };

  crypto::Sha256Digest Step(const crypto::Sha256Digest& head, std::span<const uint8_t> rec);
  std::span<const uint8_t> Bytes(const Chained& c) const;
  void AddEventImpl(records::Record&& event, bool absorb_recovered);
  void Advance();
  void ChainOne(const records::Record& rec);
  void TryDecide(bool force);
  void CheckSignature(PendingCheckpoint& p);
  void DeclareMissingUpTo(uint64_t last);
  void ConsumeUpTo(uint64_t last);
  CheckpointVerdict Decide(PendingCheckpoint& p);
  CheckpointVerdict Reject(const PendingCheckpoint& p, std::string why);
  void CloseInterval(uint64_t last);
  void Resync(const crypto::Sha256Digest& head, uint64_t at_seq);
  void AddFinding(Finding::Kind kind, uint64_t seq, std::string reason);
  // The PCR check over the log records fed up to `upto_log_seq` (the
  // checkpoint being decided).
  Status RunAnchorCheck(const PcrCheck& check, uint64_t upto_log_seq);
  void PullFarAhead();
  void CheckLiveness(const vigil_log_checkpoint& cp);

  struct MdCtxFree {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, MdCtxFree> md_ctx_;
  Anchor anchor_;
  VerifierOptions options_;
  VerifierCounters counters_;
  std::optional<crypto::EcPoint> key_;
  std::optional<uint64_t> next_log_seq_;
  // Set by a foreign KEY record: the reason the next checkpoint is tampered.
  std::string key_conflict_;

  // Event side.
  uint64_t decided_last_;             // last seq of the last decided checkpoint
  crypto::Sha256Digest interval_head_;  // chain value at decided_last_
  bool interval_head_valid_ = true;
  uint64_t chained_seq_;              // every seq <= this has been placed
  crypto::Sha256Digest head_;         // valid when chain_valid_
  bool chain_valid_ = true;
  uint64_t max_seen_seq_ = 0;         // highest committed seq received
  // seqs (decided_last_, chained_seq_]; a vector, not a deque: a deque
  // allocated a block every nine records, and decisions erase a prefix
  // once per checkpoint (what stays behind is the few records after it).
  std::vector<Chained> interval_;
  // The interval's record bytes back to back (for conflicts, resync and a
  // restart): one buffer instead of a heap block per record.
  std::vector<uint8_t> arena_;
  uint64_t arena_base_ = 0;           // offset of arena_[0] since the start
  std::map<uint64_t, std::vector<records::Record>> pending_;  // seq > chained_seq_
  std::map<uint64_t, records::Record> far_ahead_;  // seq way past chained_seq_
  std::vector<SeqRange> missing_;     // declared missing, seq > decided_last_
  std::vector<Conflict> conflicts_;   // seq > decided_last_
  std::vector<records::Record> duplicate_copies_;  // seq > decided_last_
  std::set<uint64_t> recovered_;      // seqs fed by AddRecoveredEvent, not yet seen again
  bool interval_overflow_ = false;

  // Log side. Links are checked against the last accepted checkpoint.
  // From the newest BASE's cut on, for the PCR check (replay::AppendToReplayView).
  std::vector<records::Record> log_;
  std::deque<PendingCheckpoint> checkpoints_;
  crypto::Sha256Digest link_digest_;  // digest of the last accepted checkpoint
  uint64_t link_last_seq_;
  uint64_t link_drops_, link_busy_, link_refused_;
  bool link_open_ = false;  // options_.open_first_link until a checkpoint is accepted

  uint64_t now_ns_ = 0;
  std::optional<uint64_t> pcr_checked_upto_;  // log seq pcr_status_ was made for
  Status pcr_status_;

  std::vector<CheckpointVerdict> verdicts_;
  std::vector<Finding> findings_;
  std::optional<vigil_log_checkpoint> last_live_;  // last decided, not rejected
  uint32_t active_roles_ = 0;  // bit per role seen running in this producer set
  bool anchor_broken_ = false;  // an anchor_broken finding is out for this episode
  bool anchor_unchecked_ = false;  // an anchor_unchecked finding is out for this episode
  // Per role, firings minus runs since the producer set became active: a
  // firing in flight at one checkpoint is a run at the next, so this stays
  // near 0 for an attached producer, and real misses add up however they
  // are spread over checkpoints.
  std::array<int64_t, VIGIL_PROD_SLOTS> deficit_{};
  // The WINDOW and PRODUCERS measurements logged since the last decided
  // checkpoint: a producer set change is a reseal only if they show it.
  struct ProducerMeasure {
    uint64_t log_seq;
    uint32_t kind;  // VIGIL_MEASURE_WINDOW or VIGIL_MEASURE_PRODUCERS
    std::array<uint8_t, VIGIL_DIGEST_LEN> digest;
  };
  std::deque<ProducerMeasure> producer_measures_;
  // Checkpoints met with a producer window open (or its seal being
  // measured) since set_base_, and the first one's log seq.
  static constexpr uint32_t kMaxWindowOpenCheckpoints = 5;
  uint32_t window_open_checkpoints_ = 0;
  uint64_t window_open_at_ = 0;
  std::optional<uint64_t> measures_dropped_from_;  // log seq of the first not kept
  // The last checkpoint whose producer set was judged: windows are judged
  // against it when they are sealed.
  std::optional<vigil_log_checkpoint> set_base_;
  enum class SetChange { kSame, kPending, kResealed, kChanged };
  SetChange JudgeSetChange(const vigil_log_checkpoint& base, const vigil_log_checkpoint& cp,
                           std::string& why) const;
  void NewSetBase(const vigil_log_checkpoint& cp);
};

}  // namespace vigil::verify

#endif  // VIGIL_USERSPACE_LIB_VIGIL_VERIFY_H_
