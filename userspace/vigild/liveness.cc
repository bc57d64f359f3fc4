#include "liveness.h"

#include <algorithm>
#include <cstring>

#include "vigil/chain.h"
#include "vigil/digest.h"

namespace vigil::daemon {
namespace {

constexpr uint64_t kNsPerMs = 1'000'000;

std::string Str(uint64_t v) { return std::to_string(v); }

std::string Seconds(uint64_t ns) {
  const uint64_t tenths = ns / 100'000'000;
  return Str(tenths / 10) + "." + Str(tenths % 10) + " s";
}

std::string LogFill(uint64_t bytes, uint64_t max, uint64_t refused) {
  if (max == 0) return "log fill unknown";
  return "the module's log holds " + Str(bytes) + " of " + Str(max) + " bytes, " + Str(refused) +
         " records refused at the cap";
}

}  // namespace

std::optional<uint64_t> TrimBefore(uint64_t saved_anchor_log_seq, uint64_t durable_log_seq,
                                   uint64_t module_first_seq) {
  if (saved_anchor_log_seq == 0) return std::nullopt;  // nothing decided and saved yet
  // The anchor's checkpoint itself stays (a restart validates the anchor
  // against it and AnchorFromLog finds it); so does everything not yet
  // fsynced to the saved log.
  const uint64_t before = std::min(saved_anchor_log_seq, durable_log_seq + 1);
  if (before <= module_first_seq) return std::nullopt;
  return before;
}

bool LogTrimmer::Due(const vigil_info& info) const {
  if (sealed_ || (info.tpm_flags & VIGIL_TPM_SEALED) != 0 || info.log_max_bytes == 0) {
    return false;
  }
  if (info.log_refused > refused_at_last_trim_) return true;
  return static_cast<double>(info.log_bytes) >=
         options_.fill_fraction * static_cast<double>(info.log_max_bytes);
}

LogTrimmer::Outcome LogTrimmer::MaybeTrim(const vigil_info& info, uint64_t saved_anchor_log_seq,
                                          uint64_t durable_log_seq) {
  Outcome out;
  if (!Due(info)) return out;
  const std::optional<uint64_t> before =
      TrimBefore(saved_anchor_log_seq, durable_log_seq, info.log_first_seq);
  if (!before) return out;
  out.before_seq = *before;
  Result<uint64_t> trimmed = trim_(*before);
  if (trimmed.ok()) {
    out.kind = Outcome::Kind::kTrimmed;
    out.trimmed = *trimmed;
    trims_++;
    records_trimmed_ += *trimmed;
    refused_at_last_trim_ = info.log_refused;
    return out;
  }
  out.why = trimmed.status().ToString();
  switch (trimmed.status().code()) {
    case ErrorCode::kUnavailable:
      out.kind = Outcome::Kind::kRetryLater;
      break;
    case ErrorCode::kFailedPrecondition:
      out.kind = Outcome::Kind::kSealed;
      sealed_ = true;
      break;
    default:
      out.kind = Outcome::Kind::kError;
      break;
  }
  return out;
}

void LivenessMonitor::OnModuleInfo(const vigil_info& info) {
  have_info_ = true;
  heartbeat_ns_ = static_cast<uint64_t>(info.heartbeat_ms) * kNsPerMs;
  const uint64_t timer_ns = static_cast<uint64_t>(info.checkpoint_ms) * kNsPerMs;
  period_ns_ = timer_ns == 0        ? heartbeat_ns_
               : heartbeat_ns_ == 0 ? timer_ns
                                    : std::min(timer_ns, heartbeat_ns_);
  sealed_ = (info.tpm_flags & VIGIL_TPM_SEALED) != 0;
  log_bytes_ = info.log_bytes;
  log_max_bytes_ = info.log_max_bytes;
  log_refused_ = info.log_refused;
  if (info.next_seq > 0) OnSeq(info.next_seq - 1);
}

void LivenessMonitor::OnSeq(uint64_t seq) { max_seq_ = std::max(max_seq_, seq); }

void LivenessMonitor::OnVerdict(uint64_t last_seq) {
  verdict_seen_ = true;
  covered_seq_ = std::max(covered_seq_, last_seq);
}

uint64_t LivenessMonitor::verdict_window_ns() const {
  return std::max<uint64_t>(options_.stall_periods * period_ns_,
                            options_.checkpoint_wait_ns + period_ns_);
}

std::vector<Stall> LivenessMonitor::Tick(uint64_t now) {
  std::vector<Stall> out;
  if (!start_ns_) {
    start_ns_ = now;
    last_checkpoint_ns_ = now;
  }
  if (std::exchange(checkpoint_seen_, false)) last_checkpoint_ns_ = now;
  // A verdict restarts the clock: what is still ahead of it is judged from now.
  if (std::exchange(verdict_seen_, false)) behind_since_ns_.reset();
  if (max_seq_ > covered_seq_) {
    if (!behind_since_ns_) behind_since_ns_ = now;
  } else {
    behind_since_ns_.reset();
  }
  if (!have_info_ || period_ns_ == 0) return out;

  const bool no_verdict = behind_since_ns_ && now - *behind_since_ns_ >= verdict_window_ns();
  if (no_verdict && !stalled_verdict_) {
    out.push_back(
        Stall{Stall::Kind::kNoVerdict, max_seq_,
              "the module's seq reached " + Str(max_seq_) + " but no verdict came for " +
                  Seconds(now - *behind_since_ns_) + " (" + Str(options_.stall_periods) +
                  " checkpoint periods of " + Str(period_ns_ / kNsPerMs) +
                  " ms, at least --checkpoint-wait plus one): verdicts cover seqs up to " +
                  Str(covered_seq_) + "; " + LogFill(log_bytes_, log_max_bytes_, log_refused_)});
  }
  stalled_verdict_ = no_verdict;

  // A sealed module takes no checkpoint after its final one.
  const bool no_checkpoint =
      !sealed_ && heartbeat_ns_ != 0 && now - last_checkpoint_ns_ >= checkpoint_window_ns();
  if (no_checkpoint && !stalled_checkpoint_) {
    out.push_back(Stall{Stall::Kind::kNoCheckpoint, max_seq_,
                        "no checkpoint was read from the module's log for " +
                            Seconds(now - last_checkpoint_ns_) +
                            ", while the module takes one at least every heartbeat_ms (" +
                            Str(heartbeat_ns_ / kNsPerMs) +
                            " ms): checkpoints are deferred or "
                            "the log is not read; " +
                            LogFill(log_bytes_, log_max_bytes_, log_refused_)});
  }
  stalled_checkpoint_ = no_checkpoint;
  return out;
}

Status CheckSavedAnchor(const verify::Anchor& saved, const vigil_info& info,
                        const std::vector<records::Record>& module_log,
                        const SavedLogLookup& saved_log) {
  const std::string what = "the saved anchor (verifier.json: seq " + Str(saved.last_seq) +
                           ", checkpoint at log seq " + Str(saved.checkpoint_log_seq) + ")";
  auto mismatch = [&](const std::string& why) {
    return Status::Error(ErrorCode::kMismatch,
                         std::string(kAnchorMismatch) + ": " + what + " " + why);
  };
  if (std::memcmp(saved.instance_id.data(), info.instance_id, VIGIL_ID_LEN) != 0) {
    return mismatch("belongs to another module instance");
  }
  if (saved.checkpoint_log_seq == 0) {
    // Before the first checkpoint: only the instance's chain_0 is trusted.
    auto chain0 = chain::InitialChain(saved.instance_id);
    if (saved.last_seq != 0 || !chain0.ok() || saved.chain_head != *chain0 ||
        saved.checkpoint_digest != crypto::Sha256Digest{} || saved.drops_total != 0 ||
        saved.busy_total != 0 || saved.log_refused != 0) {
      return mismatch("names no checkpoint but is not the instance's start (seq 0, chain_0)");
    }
    return Status::Ok();
  }
  if (saved.checkpoint_log_seq >= info.log_next_seq) {
    return mismatch("is beyond the module's log, whose next log seq is " + Str(info.log_next_seq));
  }
  std::optional<records::Record> rec;
  for (const records::Record& r : module_log) {
    if (r.seq() == saved.checkpoint_log_seq) {
      rec = r;
      break;
    }
  }
  std::string where = "the module's log";
  if (!rec && saved_log) {
    VIGIL_ASSIGN_OR_RETURN(rec, saved_log(saved.checkpoint_log_seq));
    where = "the saved log";
  }
  if (!rec) {
    return Status::Error(ErrorCode::kNotFound,
                         std::string(kAnchorUnverifiable) + ": " + what +
                             " names a record that is in neither the module's log (oldest log "
                             "seq " +
                             Str(info.log_first_seq) + ") nor the saved log");
  }
  auto cp = rec->As<vigil_log_checkpoint>();
  if (!cp) {
    return mismatch("names log seq " + Str(rec->seq()) + ", which is a " +
                    std::string(records::TypeName(rec->type())) + " record in " + where +
                    ", not a checkpoint");
  }
  if (std::memcmp(cp->instance_id, info.instance_id, VIGIL_ID_LEN) != 0) {
    return mismatch("names a checkpoint of another module instance in " + where);
  }
  auto digest = crypto::Sha256({rec->bytes()});
  if (!digest.ok()) return digest.status();
  if (*digest != saved.checkpoint_digest) {
    return mismatch("has another checkpoint digest than the record in " + where);
  }
  if (cp->last_seq != saved.last_seq) {
    return mismatch("says seq " + Str(saved.last_seq) + ", the checkpoint in " + where +
                    " ends at seq " + Str(cp->last_seq));
  }
  if (std::memcmp(cp->chain_head, saved.chain_head.data(), VIGIL_DIGEST_LEN) != 0) {
    return mismatch("has another chain head than the checkpoint in " + where);
  }
  if (cp->drops_total != saved.drops_total || cp->busy_total != saved.busy_total ||
      cp->log_refused != saved.log_refused) {
    return mismatch("has other loss counters than the checkpoint in " + where);
  }
  return Status::Ok();
}

}  // namespace vigil::daemon
