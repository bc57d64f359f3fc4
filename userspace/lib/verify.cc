#include "vigil/verify.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "vigil/digest.h"
#include "vigil/replay.h"

namespace vigil::verify {
namespace {

std::string Str(uint64_t v) { return std::to_string(v); }

std::string RangesStr(const std::vector<SeqRange>& ranges) {
  std::string out;
  for (const SeqRange& r : ranges) {
    if (!out.empty()) out += ",";
    out += r.first == r.last ? Str(r.first) : Str(r.first) + "-" + Str(r.last);
  }
  return out;
}

bool SameBytes(const records::Record& a, const records::Record& b) {
  return std::ranges::equal(a.bytes(), b.bytes());
}

// Ranges of `missing` that fall in [first, last], clipped.
std::vector<SeqRange> Clip(const std::vector<SeqRange>& missing, uint64_t first, uint64_t last) {
  std::vector<SeqRange> out;
  for (const SeqRange& r : missing) {
    if (r.last < first || r.first > last) continue;
    out.push_back({std::max(r.first, first), std::min(r.last, last)});
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& s : parts) out += (out.empty() ? "" : "; ") + s;
  return out;
}

// How far ahead of the chain a seq may be and still be waited for: a
// legitimate record is at most the records in flight ahead; one further out
// is held aside (bounded) so it cannot force gaps.
uint64_t FarAheadDistance(size_t window) { return 4 * static_cast<uint64_t>(window) + 64; }

}  // namespace

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kVerified:
      return "verified";
    case Verdict::kUnsigned:
      return "unsigned";
    case Verdict::kLoss:
      return "loss";
    case Verdict::kTampered:
      return "tampered";
    case Verdict::kUnanchored:
      return "unanchored";
    case Verdict::kSigned:
      return "signed";
  }
  return "unknown";
}

std::string_view FindingKindName(Finding::Kind k) {
  switch (k) {
    case Finding::Kind::kLateRecord:
      return "late_record";
    case Finding::Kind::kDuplicate:
      return "duplicate";
    case Finding::Kind::kConflict:
      return "conflict";
    case Finding::Kind::kLog:
      return "log";
    case Finding::Kind::kUnanchored:
      return "unanchored";
    case Finding::Kind::kProducerSilent:
      return "producer_silent";
    case Finding::Kind::kProducersChanged:
      return "producers_changed";
    case Finding::Kind::kRefused:
      return "refused";
    case Finding::Kind::kProducerDuplicated:
      return "producer_duplicated";
    case Finding::Kind::kTpm:
      return "tpm";
    case Finding::Kind::kDevAnchor:
      return "dev_anchor";
    case Finding::Kind::kKeyMismatch:
      return "key_mismatch";
    case Finding::Kind::kAnchorBroken:
      return "anchor_broken";
    case Finding::Kind::kAnchorUnchecked:
      return "anchor_unchecked";
    case Finding::Kind::kProducersResealed:
      return "producers_resealed";
  }
  return "unknown";
}

StreamVerifier::StreamVerifier(const Anchor& anchor, VerifierOptions options)
    : anchor_(anchor),
      options_(std::move(options)),
      key_(anchor.key),
      decided_last_(anchor.last_seq),
      interval_head_(anchor.chain_head),
      chained_seq_(anchor.last_seq),
      head_(anchor.chain_head),
      max_seen_seq_(anchor.last_seq),
      link_digest_(anchor.checkpoint_digest),
      link_last_seq_(anchor.last_seq),
      link_drops_(anchor.drops_total),
      link_busy_(anchor.busy_total),
      link_refused_(anchor.log_refused) {
  if (anchor.liveness) {
    last_live_ = anchor.liveness;
    set_base_ = anchor.liveness;
    deficit_ = anchor.liveness_deficit;
    if (anchor.liveness_roles) {
      active_roles_ = *anchor.liveness_roles;
    } else {
      // As for a first checkpoint: what ran up to the anchor is what runs.
      for (unsigned role = 1; role <= VIGIL_PROD_ROLE_MAX; ++role) {
        if (anchor.liveness->alive[role] != 0) active_roles_ |= 1u << role;
      }
    }
  }
  link_open_ = options_.open_first_link;
  if (options_.reorder_window == 0) options_.reorder_window = 1;
  if (options_.max_claims_per_seq < 2) options_.max_claims_per_seq = 2;
  // Fetched once: an implicit fetch per record takes OpenSSL's provider
  // locks. Re-initialising with a NULL type reuses the context's digest.
  md_ctx_.reset(EVP_MD_CTX_new());
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md_ctx_ && sha256 && EVP_DigestInit_ex2(md_ctx_.get(), sha256, nullptr) != 1) {
    md_ctx_.reset();
  }
  EVP_MD_free(sha256);  // the context keeps its own reference
}

void StreamVerifier::MdCtxFree::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

// Chain step with one reused context (a fresh EVP_MD_CTX per record costs
// more than hashing a small record). SHA-256 over memory cannot fail short
// of OpenSSL breaking, in which case the head becomes all zeros and no
// checkpoint will match it.
crypto::Sha256Digest StreamVerifier::Step(const crypto::Sha256Digest& head,
                                          std::span<const uint8_t> rec) {
  crypto::Sha256Digest out{};
  unsigned int len = 0;
  if (!md_ctx_ || EVP_DigestInit_ex(md_ctx_.get(), nullptr, nullptr) != 1 ||
      EVP_DigestUpdate(md_ctx_.get(), head.data(), head.size()) != 1 ||
      EVP_DigestUpdate(md_ctx_.get(), rec.data(), rec.size()) != 1 ||
      EVP_DigestFinal_ex(md_ctx_.get(), out.data(), &len) != 1) {
    return crypto::Sha256Digest{};
  }
  return out;
}

std::span<const uint8_t> StreamVerifier::Bytes(const Chained& c) const {
  return {arena_.data() + (c.offset - arena_base_), c.size};
}

void StreamVerifier::AddFinding(Finding::Kind kind, uint64_t seq, std::string reason) {
  findings_.push_back(Finding{kind, seq, std::move(reason)});
}

void StreamVerifier::AddEvent(records::Record&& event) { AddEventImpl(std::move(event), true); }

void StreamVerifier::AddRecoveredEvent(records::Record event) {
  if (!event.committed() || event.seq() <= decided_last_) return;
  counters_.recovered++;
  // Only a copy from the ring buffer is absorbed as a redelivery: a second
  // recovered copy is evidence (a duplicate the previous collector saw).
  recovered_.insert(event.seq());
  AddEventImpl(std::move(event), false);
}

void StreamVerifier::AddEventImpl(records::Record&& event, bool absorb_recovered) {
  if (!event.committed()) {
    counters_.unattested++;
    return;
  }
  counters_.events++;
  const uint64_t seq = event.seq();
  if (!records::IsEvent(event.type()) || seq == 0) {
    counters_.conflicts++;
    AddFinding(Finding::Kind::kConflict, seq,
               "a committed " + std::string(records::TypeName(event.type())) +
                   " record with seq " + Str(seq) + " cannot come from the module");
    return;
  }
  if (seq <= decided_last_) {
    if (seq <= options_.started_after_seq) {
      counters_.before_start++;
      return;
    }
    counters_.late++;
    AddFinding(Finding::Kind::kLateRecord, seq,
               "record seq " + Str(seq) +
                   " arrived after its checkpoint was decided (beyond the reorder window, or "
                   "replayed)");
    return;
  }
  auto note_duplicate = [&](records::Record copy) {
    if (absorb_recovered && recovered_.erase(seq) != 0) {
      counters_.redelivered++;
      return;
    }
    counters_.duplicates++;
    if (duplicate_copies_.size() < options_.reorder_window) {
      duplicate_copies_.push_back(std::move(copy));
    }
    AddFinding(Finding::Kind::kDuplicate, seq, "record seq " + Str(seq) + " arrived twice");
  };
  auto note_conflict = [&](std::vector<records::Record>& others, records::Record claim) {
    counters_.conflicts++;
    AddFinding(Finding::Kind::kConflict, seq,
               "two different records claim seq " + Str(seq) + ": one is forged");
    if (others.size() + 1 < options_.max_claims_per_seq) others.push_back(std::move(claim));
  };
  if (seq <= chained_seq_) {
    auto it = std::lower_bound(interval_.begin(), interval_.end(), seq,
                               [](const Chained& c, uint64_t s) { return c.seq < s; });
    if (it == interval_.end() || it->seq != seq) {
      counters_.late++;
      AddFinding(Finding::Kind::kLateRecord, seq,
                 "record seq " + Str(seq) +
                     " arrived after it was declared missing (beyond the reorder window)");
      return;
    }
    bool identical = false;
    if (it->kept) {
      identical = std::ranges::equal(Bytes(*it), event.bytes());
    } else if (it->valid) {
      // Not kept: compare through the chain value before it.
      const crypto::Sha256Digest& before =
          it == interval_.begin() ? interval_head_ : std::prev(it)->head_after;
      identical = Step(before, event.bytes()) == it->head_after;
    }
    if (identical) {
      note_duplicate(std::move(event));
      return;
    }
    auto c = std::find_if(conflicts_.begin(), conflicts_.end(),
                          [seq](const Conflict& x) { return x.seq == seq; });
    if (c == conflicts_.end()) {
      conflicts_.push_back(Conflict{seq, {}});
      c = std::prev(conflicts_.end());
    }
    for (const records::Record& r : c->others) {
      if (SameBytes(r, event)) {
        note_duplicate(std::move(event));
        return;
      }
    }
    note_conflict(c->others, std::move(event));
    return;
  }
  max_seen_seq_ = std::max(max_seen_seq_, seq);
  if (seq == chained_seq_ + 1 && pending_.empty()) {
    // In order, nothing waiting: the common case skips the reorder map.
    ChainOne(event);
    PullFarAhead();
    TryDecide(false);
    return;
  }
  if (seq > chained_seq_ + FarAheadDistance(options_.reorder_window)) {
    auto [it, added] = far_ahead_.try_emplace(seq, event);
    if (!added) {
      if (SameBytes(it->second, event)) {
        note_duplicate(std::move(event));
      } else {
        counters_.conflicts++;
        AddFinding(Finding::Kind::kConflict, seq,
                   "two different records claim seq " + Str(seq) + ": one is forged");
      }
    } else if (far_ahead_.size() > options_.reorder_window) {
      // Bounded: drop the farthest. A flood of made-up seqs cannot force
      // gaps or grow memory.
      far_ahead_.erase(std::prev(far_ahead_.end()));
      counters_.far_ahead++;
      if (counters_.far_ahead == 1 || counters_.far_ahead % 1024 == 0) {
        AddFinding(Finding::Kind::kConflict, seq,
                   "committed records claim seqs far beyond the chain (" +
                       Str(counters_.far_ahead) + " dropped so far): forged");
      }
    }
    return;
  }
  std::vector<records::Record>& claims = pending_[seq];
  for (const records::Record& r : claims) {
    if (SameBytes(r, event)) {
      note_duplicate(std::move(event));
      return;
    }
  }
  if (!claims.empty()) {
    note_conflict(claims, std::move(event));
  } else {
    claims.push_back(std::move(event));
  }
  Advance();
  TryDecide(false);
}

void StreamVerifier::ChainOne(const records::Record& rec) {
  const std::span<const uint8_t> bytes = rec.bytes();
  const bool keep = interval_.size() < options_.max_interval_records;
  // Built in place: one 56-byte entry per record, not a copy of one.
  Chained& c = interval_.emplace_back();
  c.seq = rec.seq();
  c.valid = chain_valid_;
  c.kept = keep;
  c.size = static_cast<uint32_t>(bytes.size());
  c.offset = 0;
  if (chain_valid_) {
    head_ = Step(head_, bytes);
    c.head_after = head_;
    counters_.chained++;
  } else {
    c.head_after = {};
  }
  if (keep) {
    c.offset = arena_base_ + arena_.size();
    arena_.insert(arena_.end(), bytes.begin(), bytes.end());
  } else {
    interval_overflow_ = true;
  }
  chained_seq_ = c.seq;
}

// Records held aside as implausibly far ahead come back once the chain is
// near them.
void StreamVerifier::PullFarAhead() {
  if (far_ahead_.empty()) return;
  const uint64_t near = chained_seq_ + FarAheadDistance(options_.reorder_window);
  while (!far_ahead_.empty() && far_ahead_.begin()->first <= near) {
    auto node = far_ahead_.extract(far_ahead_.begin());
    if (node.key() > chained_seq_) pending_[node.key()].push_back(std::move(node.mapped()));
  }
  Advance();
}

void StreamVerifier::DeclareMissingUpTo(uint64_t last) {
  if (last <= chained_seq_) return;
  const SeqRange range{chained_seq_ + 1, last};
  if (!missing_.empty() && missing_.back().last + 1 == range.first) {
    missing_.back().last = range.last;
  } else {
    missing_.push_back(range);
  }
  chained_seq_ = last;
  chain_valid_ = false;
}

void StreamVerifier::Advance() {
  while (!pending_.empty()) {
    auto it = pending_.begin();
    if (it->first <= chained_seq_) {  // placed meanwhile (declared missing)
      for (records::Record& r : it->second) {
        counters_.late++;
        AddFinding(Finding::Kind::kLateRecord, r.seq(),
                   "record seq " + Str(r.seq()) + " arrived after it was declared missing");
      }
      pending_.erase(it);
      continue;
    }
    if (it->first == chained_seq_ + 1) {
      std::vector<records::Record> claims = std::move(it->second);
      const uint64_t seq = it->first;
      pending_.erase(it);
      if (claims.size() > 1) {
        conflicts_.push_back(Conflict{seq, {}});
        for (size_t i = 1; i < claims.size(); ++i) {
          conflicts_.back().others.push_back(std::move(claims[i]));
        }
      }
      ChainOne(claims[0]);
      continue;
    }
    if (pending_.size() > options_.reorder_window) {
      DeclareMissingUpTo(it->first - 1);
      continue;
    }
    break;
  }
}

// Places every seq up to `last`: what has not arrived is missing.
void StreamVerifier::ConsumeUpTo(uint64_t last) {
  PullFarAhead();
  while (chained_seq_ < last) {
    if (!pending_.empty() && pending_.begin()->first == chained_seq_ + 1) {
      Advance();
    } else if (!pending_.empty() && pending_.begin()->first <= last) {
      DeclareMissingUpTo(pending_.begin()->first - 1);
    } else {
      DeclareMissingUpTo(last);
    }
  }
  PullFarAhead();
}

void StreamVerifier::AddLog(records::Record rec) {
  counters_.log_records++;
  const uint64_t log_seq = rec.seq();
  const bool regressed = next_log_seq_ && log_seq < *next_log_seq_;
  if (regressed) {
    AddFinding(Finding::Kind::kLog, log_seq,
               "log seq " + Str(log_seq) + " after " + Str(*next_log_seq_ - 1) +
                   ": a log record was replayed or reordered");
  } else {
    if (next_log_seq_ && log_seq > *next_log_seq_ && rec.type() != VIGIL_LOG_BASE) {
      AddFinding(Finding::Kind::kLog, log_seq,
                 "log seqs " + Str(*next_log_seq_) + ".." + Str(log_seq - 1) +
                     " are missing from the log stream");
    }
    next_log_seq_ = log_seq + 1;
    if (options_.pcr_check || options_.ima_check) {
      // The replay starts at the newest BASE's cut: nothing before it is
      // needed. (Not the BASE itself: after a TRIM the records between the
      // cut and the BASE still replay.)
      replay::AppendToReplayView(log_, rec);
    }
  }
  const bool historic =
      !regressed && anchor_.checkpoint_log_seq != 0 && log_seq <= anchor_.checkpoint_log_seq;

  switch (rec.type()) {
    case VIGIL_LOG_KEY: {
      // The key is never learnt from the log (it is the data being
      // verified): it comes with the anchor from a trusted source. A KEY
      // record naming another key, or any key when the trusted source says
      // the module has none, is not the module's: the log is tampered.
      auto k = rec.As<vigil_log_key>();
      if (!k || regressed || k->pcr == VIGIL_PCR_NONE) break;
      crypto::EcPoint point;
      std::memcpy(point.x, k->x, sizeof(point.x));
      std::memcpy(point.y, k->y, sizeof(point.y));
      if (key_ && crypto::SamePoint(*key_, point)) break;
      counters_.key_mismatches++;
      key_conflict_ = "the log's KEY record at log seq " + Str(log_seq) +
                      (key_ ? " names another key than the trusted one"
                            : " names a key, but the trusted source says the module has none");
      AddFinding(Finding::Kind::kKeyMismatch, log_seq,
                 key_conflict_ + ": it signs nothing here (forged log)");
      break;
    }
    case VIGIL_LOG_EVENT: {
      auto ev = records::EventFromLogCopy(rec);
      if (!ev.ok()) {
        AddFinding(Finding::Kind::kLog, log_seq,
                   "log event copy at log seq " + Str(log_seq) + ": " + ev.status().message());
      } else if (!historic && !regressed) {
        AddEvent(std::move(ev).value());
      }
      break;
    }
    case VIGIL_LOG_CHECKPOINT: {
      if (historic) break;
      auto cp = rec.As<vigil_log_checkpoint>();
      if (!cp) break;  // Decode validated the size; unreachable
      auto digest = crypto::Sha256({rec.bytes()});
      PendingCheckpoint p{.rec = rec,
                          .cp = *cp,
                          .digest = digest.ok() ? *digest : crypto::Sha256Digest{},
                          .sig = std::nullopt,
                          .logged_at_ns = 0,
                          .structural_error = {},
                          .sig_state = Sig::kPending,
                          .sig_why = {}};
      std::string& err = p.structural_error;
      if (std::memcmp(cp->instance_id, anchor_.instance_id.data(), VIGIL_ID_LEN) != 0) {
        err = "checkpoint of another module instance (another boot or load): instance " +
              crypto::ToHex(std::span<const uint8_t>(cp->instance_id, VIGIL_ID_LEN)) +
              ", expected " + crypto::ToHex(anchor_.instance_id);
      } else if (regressed) {
        err = "checkpoint at log seq " + Str(log_seq) + " was replayed (log seq goes back)";
      } else if (cp->last_seq + 1 < cp->first_seq) {
        err = "checkpoint range " + Str(cp->first_seq) + ".." + Str(cp->last_seq) +
              " runs backwards";
      } else if (!key_conflict_.empty()) {
        // The first checkpoint after a foreign KEY record carries the
        // verdict on it (a finding alone could go unnoticed).
        err = std::exchange(key_conflict_, {});
      }
      checkpoints_.push_back(std::move(p));
      break;
    }
    case VIGIL_LOG_SIGNATURE: {
      auto sig = rec.As<vigil_log_signature>();
      if (!sig || historic || regressed) break;
      auto it = std::find_if(checkpoints_.begin(), checkpoints_.end(),
                             [&](const PendingCheckpoint& p) {
                               return p.rec.seq() == sig->checkpoint_seq;
                             });
      if (it == checkpoints_.end()) {
        if (sig->checkpoint_seq > anchor_.checkpoint_log_seq) {
          AddFinding(Finding::Kind::kLog, log_seq,
                     "signature record at log seq " + Str(log_seq) +
                         " names checkpoint log seq " + Str(sig->checkpoint_seq) +
                         ", which is not waiting for one");
        }
      } else if (it->sig) {
        if (it->structural_error.empty()) it->structural_error = "two signature records";
      } else {
        it->sig = *sig;
      }
      break;
    }
    case VIGIL_LOG_MEASURE: {
      auto m = rec.As<vigil_log_measure>();
      if (!m || historic || regressed) break;
      if (m->kind != VIGIL_MEASURE_WINDOW && m->kind != VIGIL_MEASURE_PRODUCERS) break;
      // A log of nothing but windows is no reseal; bounded either way.
      constexpr size_t kMaxProducerMeasures = 256;
      if (producer_measures_.size() == kMaxProducerMeasures) {
        if (!measures_dropped_from_) measures_dropped_from_ = log_seq;
        break;
      }
      ProducerMeasure pm{.log_seq = log_seq, .kind = m->kind, .digest = {}};
      std::memcpy(pm.digest.data(), m->digest, VIGIL_DIGEST_LEN);
      producer_measures_.push_back(pm);
      break;
    }
    default:
      break;
  }
  TryDecide(false);
}

void StreamVerifier::LogError(const std::string& why) {
  // Whatever was waiting may be missing records of its own; what comes
  // after the error is judged on its own.
  for (PendingCheckpoint& p : checkpoints_) {
    if (p.structural_error.empty()) p.structural_error = "log: " + why;
  }
  AddFinding(Finding::Kind::kLog, next_log_seq_.value_or(0), why);
  TryDecide(false);
}

void StreamVerifier::Tick(uint64_t now_ns) {
  now_ns_ = now_ns;
  for (PendingCheckpoint& p : checkpoints_) {
    if (p.logged_at_ns == 0) p.logged_at_ns = now_ns;
  }
  TryDecide(false);
}

void StreamVerifier::Finish() {
  TryDecide(true);
  // The stream ends inside a window (or a seal being measured): nothing
  // says what it allowed.
  if (window_open_checkpoints_ != 0 && window_open_checkpoints_ < kMaxWindowOpenCheckpoints) {
    AddFinding(Finding::Kind::kProducersChanged, window_open_at_,
               "a producer registration window is open at the newest checkpoint (open since "
               "checkpoint log seq " +
                   Str(window_open_at_) + "): what it allowed is not known yet");
    window_open_checkpoints_ = 0;
    window_open_at_ = 0;
  }
}

void StreamVerifier::CheckSignature(PendingCheckpoint& p) {
  if (!p.sig) {
    p.sig_state = Sig::kUnsigned;
    p.sig_why = "no signature record was logged for this checkpoint";
    return;
  }
  if (p.sig->status != VIGIL_SIG_OK) {
    if (p.sig->status == VIGIL_SIG_NO_TPM && key_) {
      // A module with a key has a TPM: "no TPM" is made up.
      p.sig_state = Sig::kBad;
      p.sig_why = "claims no TPM although the module's key is known";
      return;
    }
    p.sig_state = Sig::kUnsigned;
    p.sig_why = "the module could not sign (status " + Str(p.sig->status) + ", error " +
                std::to_string(p.sig->error) + ")";
    return;
  }
  if (!key_) {
    p.sig_state = Sig::kUnsigned;
    p.sig_why =
        "signed, but no trusted key was given (GET_INFO, --key or enrolment; the log's own KEY "
        "record is never used)";
    return;
  }
  Status st = crypto::VerifyCheckpointSignature(*key_, p.rec, *p.sig);
  if (st.ok()) {
    p.sig_state = Sig::kOk;
  } else {
    p.sig_state = Sig::kBad;
    p.sig_why = "signature does not verify against the module's key: " + st.message();
  }
}

void StreamVerifier::TryDecide(bool force) {
  while (!checkpoints_.empty()) {
    PendingCheckpoint& p = checkpoints_.front();
    const bool expired = options_.checkpoint_wait_ns != 0 && p.logged_at_ns != 0 &&
                         now_ns_ >= p.logged_at_ns + options_.checkpoint_wait_ns;
    CheckpointVerdict v;
    if (!p.structural_error.empty()) {
      v = Reject(p, p.structural_error);
    } else {
      if (p.sig && p.sig_state == Sig::kPending) CheckSignature(p);
      if (!p.sig && !force && !expired) break;  // the module logs it right after
      if (p.sig_state == Sig::kPending) CheckSignature(p);
      // A bad signature is decided without touching the events: a forged
      // checkpoint cannot move the bookkeeping.
      if (p.sig_state == Sig::kBad) {
        v = Reject(p, p.sig_why);
      } else if (p.cp.first_seq <= link_last_seq_ &&
                 !(link_open_ && p.cp.last_seq >= link_last_seq_)) {
        v = Reject(p, "checkpoint starts at seq " + Str(p.cp.first_seq) + ", already covered up to " +
                          Str(link_last_seq_) + ": replayed or reordered");
      } else {
        const bool plausible =
            p.sig_state == Sig::kOk || p.cp.last_seq <= max_seen_seq_ + options_.reorder_window;
        if (!plausible && !force && !expired) break;
        if (!plausible) {
          v = Reject(p, "unsigned checkpoint covers seqs up to " + Str(p.cp.last_seq) +
                            ", far beyond any record received");
        } else {
          if (!force && !expired && chained_seq_ < p.cp.last_seq) break;  // events to come
          ConsumeUpTo(p.cp.last_seq);
          v = Decide(p);
          CheckLiveness(p.cp);
        }
      }
    }
    counters_.verdicts[static_cast<size_t>(v.verdict)]++;
    verdicts_.push_back(std::move(v));
    checkpoints_.pop_front();
  }
}

namespace {
std::string_view RoleName(unsigned role) {
  switch (role) {
    case VIGIL_PROD_EXEC:
      return "exec";
    case VIGIL_PROD_EXIT:
      return "exit";
    case VIGIL_PROD_FORK:
      return "fork";
    case VIGIL_PROD_SWITCH:
      return "sched_switch";
    case VIGIL_PROD_SYSCALL:
      return "sys_enter";
    default:
      return "unknown";
  }
}
}  // namespace

// Signed silence: the counters come from the module, inside a checkpoint
// whose chain and link were just checked, so user space cannot fake them.
// alive[] says how often each vigil program ran, hits[] how often its
// tracepoint fired (the module's own probes; sys_enter is not watched).
void StreamVerifier::CheckLiveness(const vigil_log_checkpoint& cp) {
  const uint64_t at = cp.hdr.seq;
  const bool same_instance =
      last_live_ &&
      std::memcmp(last_live_->instance_id, cp.instance_id, sizeof(cp.instance_id)) == 0;
  // A window open at a checkpoint (a collector loading its programs takes
  // seconds under emulation), or its seal still being measured: what it
  // allowed is known at the seal, so the producer set is judged at the next
  // checkpoint where the window is sealed, against the checkpoint before the
  // window (set_base_). The liveness counts go on at every checkpoint. A
  // window kept open is a change.
  if (!same_instance && window_open_checkpoints_ != 0) {
    AddFinding(Finding::Kind::kProducersChanged, window_open_at_,
               "the instance's last checkpoints had a producer window open (since log seq " +
                   Str(window_open_at_) + "), never sealed before another instance");
    window_open_checkpoints_ = 0;
    window_open_at_ = 0;
  }
  if (cp.cp_flags & VIGIL_CP_F_UNMEASURED) {
    AddFinding(Finding::Kind::kProducersChanged, at,
               "programs that may commit were allowed without being measured");
  }
  if (!same_instance) {
    if (cp.cp_flags & VIGIL_CP_F_WINDOW_OPEN) {
      AddFinding(Finding::Kind::kProducersChanged, at,
                 "a producer registration window is open: programs loaded now may commit");
    }
    // The first checkpoint seen: what has run so far is what runs.
    active_roles_ = 0;
    deficit_.fill(0);
    for (unsigned role = 1; role <= VIGIL_PROD_ROLE_MAX; ++role) {
      if (cp.alive[role] != 0) active_roles_ |= 1u << role;
    }
    if (cp.cp_flags & VIGIL_CP_F_DEV_ANCHOR) {
      AddFinding(Finding::Kind::kDevAnchor, at,
                 "checkpoints are anchored in a resettable PCR (16/23): root can reset and "
                 "replay it; development only");
    }
    last_live_ = cp;
    NewSetBase(cp);
    return;
  }
  const vigil_log_checkpoint prev = *last_live_;
  bool counting = cp.producers_gen != 0;
  const vigil_log_checkpoint& base = set_base_ ? *set_base_ : prev;
  std::string why;
  const SetChange change = JudgeSetChange(base, cp, why);
  switch (change) {
    case SetChange::kSame:
      NewSetBase(cp);
      break;
    case SetChange::kPending:
      if (window_open_at_ == 0) window_open_at_ = at;
      if (++window_open_checkpoints_ == kMaxWindowOpenCheckpoints) {
        AddFinding(Finding::Kind::kProducersChanged, at,
                   "a producer registration window is open since checkpoint log seq " +
                       Str(window_open_at_) + " (" + Str(kMaxWindowOpenCheckpoints) +
                       " checkpoints): programs loaded now may commit");
      }
      break;
    case SetChange::kResealed:
      // A collector restart: the same programs again, nothing else allowed
      // in between. Counting goes on, so a detach before the restart is a
      // miss like any other.
      AddFinding(Finding::Kind::kProducersResealed, at,
                 "the same producer set was sealed again: generation " +
                     Str(base.producers_gen) + " -> " + Str(cp.producers_gen) + " (" + why + ")");
      NewSetBase(cp);
      break;
    case SetChange::kChanged:
      AddFinding(Finding::Kind::kProducersChanged, at,
                 "producer set changed (window opened or sealed): generation " +
                     Str(base.producers_gen) + " -> " + Str(cp.producers_gen) + ": " + why);
      active_roles_ = 0;  // the new set shows what it runs
      deficit_.fill(0);
      counting = false;
      NewSetBase(cp);
      break;
  }
  if (counting) {
    for (unsigned role = 1; role <= VIGIL_PROD_ROLE_MAX; ++role) {
      const uint64_t ran = cp.alive[role] - prev.alive[role];
      // Only roles the current set has been seen running are expected.
      const bool active = (active_roles_ >> role) & 1;
      if (ran != 0) active_roles_ |= 1u << role;
      if (!active) continue;
      const uint64_t fired = cp.hits[role] - prev.hits[role];
      const std::string who = "producer " + std::string(RoleName(role));
      if (fired == 0 && cp.hits[role] == 0) {
        // Not watched by the module (sched_switch, sys_enter): they run
        // all the time on a live system, so a counter that stands still
        // is the silence.
        if ((role == VIGIL_PROD_SWITCH || role == VIGIL_PROD_SYSCALL) && ran == 0) {
          AddFinding(Finding::Kind::kProducerSilent, at,
                     who + " did not run since checkpoint " + Str(prev.hdr.seq) +
                         ": detached, replaced or switched off");
        }
        continue;
      }
      // Firings in flight while the counters were read (one per CPU at
      // most) are runs at the next checkpoint: the running difference
      // stays within the CPU count. Misses spread over many checkpoints
      // add up; each batch beyond the slack is reported once.
      constexpr int64_t kSlack = 8;
      deficit_[role] += static_cast<int64_t>(fired) - static_cast<int64_t>(ran);
      if (deficit_[role] > kSlack) {
        AddFinding(Finding::Kind::kProducerSilent, at,
                   who + " missed " + std::to_string(deficit_[role]) +
                       " firings of its tracepoint (ran " + Str(ran) + " times, fired " +
                       Str(fired) + " since checkpoint " + Str(prev.hdr.seq) +
                       "): detached, replaced or switched off");
        deficit_[role] = 0;
      } else if (deficit_[role] < -kSlack) {
        AddFinding(Finding::Kind::kProducerDuplicated, at,
                   who + " ran " + std::to_string(-deficit_[role]) +
                       " times more than its tracepoint fired (ran " + Str(ran) +
                       ", fired " + Str(fired) + " since checkpoint " + Str(prev.hdr.seq) +
                       "): attached more than once");
        deficit_[role] = 0;
      }
    }
  }
  if (cp.rejected_total > prev.rejected_total) {
    AddFinding(Finding::Kind::kRefused, at,
               "the module refused " + Str(cp.rejected_total - prev.rejected_total) +
                   " commits or foreign programs since checkpoint " + Str(prev.hdr.seq));
  }
  if (cp.tpm_errors > prev.tpm_errors) {
    AddFinding(Finding::Kind::kTpm, at,
               Str(cp.tpm_errors - prev.tpm_errors) +
                   " failed TPM operations since checkpoint " + Str(prev.hdr.seq));
  }
  last_live_ = cp;
  anchor_.liveness_deficit = deficit_;
  anchor_.liveness_roles = active_roles_;
}

void StreamVerifier::NewSetBase(const vigil_log_checkpoint& cp) {
  set_base_ = cp;
  window_open_checkpoints_ = 0;
  window_open_at_ = 0;
  // What is logged before this checkpoint belongs to it.
  while (!producer_measures_.empty() && producer_measures_.front().log_seq < cp.hdr.seq) {
    producer_measures_.pop_front();
  }
  if (measures_dropped_from_ && *measures_dropped_from_ < cp.hdr.seq) {
    measures_dropped_from_.reset();
  }
}

// How the producer set moved from `base` (the last checkpoint with a sealed
// set) to `cp`. A reseal of the same set: the old set was sealed and the new
// one is the same digest, and the log between the two checkpoints shows only
// windows each sealed at once with that digest. Any other set sealed in
// between, even briefly, could have committed; the generation count says no
// window or seal is missing from what was seen. Pending: a window is open at
// `cp`, or its opening or seal is still being measured (the log ends with a
// window, one generation ahead).
StreamVerifier::SetChange StreamVerifier::JudgeSetChange(const vigil_log_checkpoint& base,
                                                         const vigil_log_checkpoint& cp,
                                                         std::string& why) const {
  const bool open_now = (cp.cp_flags & VIGIL_CP_F_WINDOW_OPEN) != 0;
  if (cp.producers_gen == base.producers_gen && !open_now) return SetChange::kSame;
  if (base.producers_gen == 0 || (base.cp_flags & VIGIL_CP_F_WINDOW_OPEN)) {
    why = "nothing was sealed before, or a window was open at the previous checkpoint";
    return SetChange::kChanged;
  }
  if (measures_dropped_from_ && *measures_dropped_from_ < cp.hdr.seq) {
    why = "too many windows to follow";
    return SetChange::kChanged;
  }
  uint32_t windows = 0, seals = 0;
  for (const ProducerMeasure& m : producer_measures_) {
    if (m.log_seq <= base.hdr.seq || m.log_seq >= cp.hdr.seq) continue;
    if (m.kind == VIGIL_MEASURE_WINDOW) {
      if (windows != seals) {
        why = "a window opened before the previous one was sealed";
        return SetChange::kChanged;
      }
      windows++;
      continue;
    }
    if (windows != seals + 1) {
      why = "a seal without its window in this log";
      return SetChange::kChanged;
    }
    if (std::memcmp(m.digest.data(), base.producers_digest, VIGIL_DIGEST_LEN) != 0) {
      why = "another set was sealed in between (log seq " + Str(m.log_seq) + ")";
      return SetChange::kChanged;
    }
    seals++;
  }
  const uint32_t moved = cp.producers_gen - base.producers_gen;
  if (windows == seals + 1 && moved == 2 * seals + 1) return SetChange::kPending;
  if (open_now) {
    why = "a window is open that the log does not show opening";
    return SetChange::kChanged;
  }
  if (std::memcmp(base.producers_digest, cp.producers_digest, VIGIL_DIGEST_LEN) != 0) {
    why = "another set";
    return SetChange::kChanged;
  }
  if (windows == 0 || windows != seals || moved != 2 * windows) {
    why = "the log shows " + Str(windows) + " windows and " + Str(seals) +
          " seals for a generation change of " + Str(moved);
    return SetChange::kChanged;
  }
  why = Str(windows) + (windows == 1 ? " window" : " windows") + ", each sealed with it";
  return SetChange::kResealed;
}

CheckpointVerdict StreamVerifier::Reject(const PendingCheckpoint& p, std::string why) {
  // It covers no events (the interval stays open for the next checkpoint):
  // an empty range after the last decided seq; what it claimed is in the
  // reason.
  CheckpointVerdict v;
  v.verdict = Verdict::kTampered;
  v.reason = std::move(why) + " (the record claims seqs " + Str(p.cp.first_seq) + ".." +
             Str(p.cp.last_seq) + ")";
  v.log_seq = p.rec.seq();
  v.first_seq = decided_last_ + 1;
  v.last_seq = decided_last_;
  return v;
}

void StreamVerifier::Resync(const crypto::Sha256Digest& head, uint64_t at_seq) {
  crypto::Sha256Digest h = head;
  bool valid = true;
  uint64_t expected = at_seq + 1;
  for (Chained& c : interval_) {
    if (c.seq != expected || !c.kept) valid = false;
    if (valid) {
      h = Step(h, Bytes(c));
      c.head_after = h;
    }
    c.valid = valid;
    expected = c.seq + 1;
  }
  chain_valid_ = valid && expected == chained_seq_ + 1;
  head_ = h;
}

Status StreamVerifier::RunAnchorCheck(const PcrCheck& check, uint64_t upto_log_seq) {
  if (!pcr_checked_upto_ || *pcr_checked_upto_ != upto_log_seq) {
    // By log seq, not position: a BASE read since may have pruned the front.
    std::vector<records::Record> prefix;
    for (const records::Record& r : log_) {
      if (r.seq() > upto_log_seq) break;
      prefix.push_back(r);
    }
    pcr_status_ = check(prefix);
    pcr_checked_upto_ = upto_log_seq;
  }
  return pcr_status_;
}

void StreamVerifier::CloseInterval(uint64_t last) {
  auto end = std::upper_bound(interval_.begin(), interval_.end(), last,
                              [](uint64_t s, const Chained& c) { return s < c.seq; });
  interval_.erase(interval_.begin(), end);
  uint64_t cut = arena_base_ + arena_.size();
  for (const Chained& c : interval_) {
    if (c.kept) {
      cut = c.offset;
      break;
    }
  }
  arena_.erase(arena_.begin(), arena_.begin() + static_cast<ptrdiff_t>(cut - arena_base_));
  arena_base_ = cut;
  std::erase_if(duplicate_copies_, [last](const records::Record& r) { return r.seq() <= last; });
  recovered_.erase(recovered_.begin(), recovered_.upper_bound(last));
  std::erase_if(conflicts_, [last](const Conflict& c) { return c.seq <= last; });
  std::erase_if(missing_, [last](const SeqRange& r) { return r.last <= last; });
  for (SeqRange& r : missing_) r.first = std::max(r.first, last + 1);
  decided_last_ = last;
}

CheckpointVerdict StreamVerifier::Decide(PendingCheckpoint& p) {
  const vigil_log_checkpoint& cp = p.cp;
  const uint64_t first = cp.first_seq;
  const uint64_t last = cp.last_seq;
  CheckpointVerdict v;
  v.log_seq = p.rec.seq();
  v.first_seq = first;
  v.last_seq = last;

  std::vector<std::string> tamper;
  std::vector<std::string> loss;
  std::optional<uint64_t> bad_seq;
  auto note_bad = [&](uint64_t seq) {
    if (!bad_seq || seq < *bad_seq) bad_seq = seq;
  };

  // Links to the last accepted checkpoint. A gap means checkpoints are
  // missing from the log (trimmed before this collector read them, or
  // removed): their events can never be judged.
  const bool gap = first > link_last_seq_ + 1;
  // Started inside this checkpoint's interval: what came before the anchor
  // (its link, the counters at its start) is not known, only checked from
  // the next checkpoint on.
  const bool open_link = std::exchange(link_open_, false);
  if (open_link) {
    // Nothing to compare the link and the counters with.
  } else if (gap) {
    loss.push_back("checkpoints covering seqs " + Str(link_last_seq_ + 1) + ".." +
                   Str(first - 1) + " are missing from the log: those events were not judged");
    if (first - 1 > decided_last_) CloseInterval(first - 1);  // their events belong to no verdict
    interval_head_valid_ = false;
  } else if (std::memcmp(cp.prev_digest, link_digest_.data(), VIGIL_DIGEST_LEN) != 0) {
    tamper.push_back(
        "prev_digest does not link to the previous checkpoint: a checkpoint was forged, "
        "replaced or removed");
  }
  if (open_link) {
    // The counters at the anchor are unknown: deltas from the next one on.
  } else if (cp.drops_total < link_drops_ || cp.busy_total < link_busy_ ||
             cp.log_refused < link_refused_) {
    tamper.push_back("loss counters went down since the previous checkpoint");
  } else if (!gap) {
    v.new_drops = cp.drops_total - link_drops_;
    v.new_busy = cp.busy_total - link_busy_;
    v.new_log_refused = cp.log_refused - link_refused_;
  }

  auto end = std::upper_bound(interval_.begin(), interval_.end(), last,
                              [](uint64_t s, const Chained& c) { return s < c.seq; });
  v.events = static_cast<uint64_t>(end - interval_.begin());
  v.missing = Clip(missing_, first, last);

  for (const records::Record& d : duplicate_copies_) {
    if (d.seq() >= first && d.seq() <= last) {
      note_bad(d.seq());
      tamper.push_back("record seq " + Str(d.seq()) + " arrived twice (replayed)");
      break;
    }
  }

  // The chain: recomputable only over a complete range from a known value.
  bool head_known = false;
  crypto::Sha256Digest head_at_last{};
  if (v.missing.empty() && !gap) {
    if (end == interval_.begin()) {
      head_known = interval_head_valid_;
      head_at_last = interval_head_;
    } else {
      head_known = std::prev(end)->valid;
      head_at_last = std::prev(end)->head_after;
    }
  }
  const Conflict* conflict = nullptr;
  for (const Conflict& c : conflicts_) {
    if (c.seq >= first && c.seq <= last && (!conflict || c.seq < conflict->seq)) conflict = &c;
  }
  const bool chain_matches =
      head_known && std::memcmp(head_at_last.data(), cp.chain_head, VIGIL_DIGEST_LEN) == 0;
  if (conflict) {
    note_bad(conflict->seq);
    if (!head_known) {
      tamper.push_back("two records claimed seq " + Str(conflict->seq) + ": one was forged");
    } else if (chain_matches) {
      v.chain_checked = true;
      tamper.push_back("two records claimed seq " + Str(conflict->seq) +
                       "; the checkpoint confirms the one chained, the other was forged");
    } else {
      // Try each other claimant in place of the chained record.
      bool resolved = false;
      auto at = std::lower_bound(interval_.begin(), end, conflict->seq,
                                 [](const Chained& x, uint64_t s) { return x.seq < s; });
      const bool kept =
          std::all_of(interval_.begin(), end, [](const Chained& x) { return x.kept; });
      for (const records::Record& other : conflict->others) {
        if (!kept || !interval_head_valid_ || at == end) break;
        crypto::Sha256Digest h = interval_head_;
        for (auto it = interval_.begin(); it != end; ++it) {
          h = Step(h, it == at ? other.bytes() : Bytes(*it));
        }
        if (std::memcmp(h.data(), cp.chain_head, VIGIL_DIGEST_LEN) == 0) {
          resolved = true;
          break;
        }
      }
      if (resolved) {
        v.chain_checked = true;
        tamper.push_back("two records claimed seq " + Str(conflict->seq) +
                         "; the one chained first was forged, the checkpoint confirms the other");
      } else {
        tamper.push_back("two records claimed seq " + Str(conflict->seq) +
                         " and the chain head matches neither");
      }
    }
  } else if (head_known) {
    if (chain_matches) {
      v.chain_checked = true;
    } else {
      note_bad(first);
      tamper.push_back("chain head after seq " + Str(last) +
                       " differs from the checkpoint: a record in seqs " + Str(first) + ".." +
                       Str(last) + " was modified, forged or left out");
    }
  }

  const bool signed_ok = p.sig_state == Sig::kOk;
  v.signature_checked = signed_ok;

  // The anchor, once the signature holds. Which one is the trusted
  // source's word where there is one: the checkpoint is the data being
  // verified, and naming another anchor must not pick a weaker check.
  const uint32_t anchor = options_.module_anchor.value_or(cp.anchor);
  if (options_.module_anchor && cp.anchor != *options_.module_anchor) {
    tamper.push_back("the checkpoint names anchor " + Str(cp.anchor) + ", the module uses " +
                     Str(*options_.module_anchor));
  }
  const PcrCheck* anchor_check = anchor == VIGIL_ANCHOR_PCR   ? &options_.pcr_check
                                 : anchor == VIGIL_ANCHOR_IMA ? &options_.ima_check
                                                              : nullptr;
  const char* anchor_name = anchor == VIGIL_ANCHOR_IMA ? "IMA's log and PCR 10" : "PCR path";
  std::string pcr_why;
  bool anchor_unchecked = false;
  bool pcr_mismatch = false;
  if (signed_ok) {
    if (!anchor_check || !*anchor_check) {
      anchor_unchecked = true;
      pcr_why = anchor == VIGIL_ANCHOR_IMA   ? "anchor not checked (anchor=ima, no IMA check)"
                : anchor == VIGIL_ANCHOR_PCR ? "anchor not checked (anchor=pcr, no PCR check)"
                                             : "anchor not checked (unknown anchor " +
                                                   Str(anchor) + ")";
    } else {
      const Status st = RunAnchorCheck(*anchor_check, p.rec.seq());
      if (st.ok()) {
        v.pcr_checked = true;
        anchor_broken_ = false;
        anchor_unchecked_ = false;
      } else if (st.code() == ErrorCode::kMismatch || st.code() == ErrorCode::kMalformed) {
        // The anchor, not the events: a finding once per episode, and the
        // chain goes on over the signed checkpoints.
        pcr_mismatch = true;
        pcr_why = std::string("anchor broken: ") + anchor_name + ": " + st.message();
        if (!std::exchange(anchor_broken_, true)) {
          AddFinding(Finding::Kind::kAnchorBroken, p.rec.seq(),
                     std::string("the replay of the log no longer reaches the TPM (") +
                         anchor_name + ": " + st.message() +
                         "): someone extended or reset the anchor PCR; checkpoints are "
                         "unanchored until it matches again");
        }
      } else {
        // A check that was set up and cannot be made: verdicts fall to
        // "signed". Said once per episode, so a forced downgrade is seen.
        anchor_unchecked = true;
        pcr_why = std::string("anchor not checked: ") + anchor_name + ": " + st.message();
        if (!std::exchange(anchor_unchecked_, true)) {
          AddFinding(Finding::Kind::kAnchorUnchecked, p.rec.seq(),
                     std::string("the anchor cannot be checked (") + anchor_name + ": " +
                         st.message() + "): verdicts are \"signed\" until it can");
        }
      }
    }
  }

  if (!v.missing.empty()) {
    uint64_t n = 0;
    for (const SeqRange& r : v.missing) n += r.last - r.first + 1;
    loss.push_back(Str(n) + " events never arrived (seqs " + RangesStr(v.missing) + ")");
  } else if (!head_known && !gap && tamper.empty()) {
    loss.push_back("no trusted chain value before seq " + Str(first) +
                   " (an earlier gap or failure): the chain cannot be recomputed");
  }
  if (v.new_drops || v.new_busy || v.new_log_refused) {
    loss.push_back("the module attests " + Str(v.new_drops) + " drops, " + Str(v.new_busy) +
                   " busy refusals, " + Str(v.new_log_refused) + " refused log records");
  }

  if (!tamper.empty()) {
    v.verdict = Verdict::kTampered;
    v.reason = Join(tamper);
    v.bad_seq = bad_seq;
  } else if (!loss.empty()) {
    v.verdict = Verdict::kLoss;
    v.reason = Join(loss);
  } else if (!signed_ok) {
    v.verdict = Verdict::kUnsigned;
    v.reason = p.sig_why;
  } else if (pcr_mismatch) {
    v.verdict = Verdict::kUnanchored;
    v.reason = "chain recomputed over " + Str(v.events) + " events, signature verified; " + pcr_why;
  } else if (anchor_unchecked) {
    v.verdict = Verdict::kSigned;
    v.reason = "chain recomputed over " + Str(v.events) + " events, signature verified; " + pcr_why;
  } else {
    v.verdict = Verdict::kVerified;
    v.reason = "chain recomputed over " + Str(v.events) + " events, signature verified, " +
               (anchor == VIGIL_ANCHOR_IMA ? "in IMA's log replayed to PCR 10"
                                           : "on the TPM's PCR path");
  }

  if (open_link) {
    v.reason += " (verification started inside this interval, after seq " + Str(anchor_.last_seq) +
                ": its link and loss counters were not checked)";
  }
  CloseInterval(last);

  // The checkpoint becomes the link for the next one: its signature held, or
  // it is the module's unsigned word (a forged one was rejected before).
  link_digest_ = p.digest;
  link_last_seq_ = last;
  link_drops_ = cp.drops_total;
  link_busy_ = cp.busy_total;
  link_refused_ = cp.log_refused;
  // Which chain value to continue from: ours when it matched (nothing to
  // redo); else the checkpoint's when the TPM signed it, or when there is no
  // TPM at all. A bad event does not make a signed checkpoint untrustworthy.
  const bool degraded = !key_ && p.sig && p.sig->status == VIGIL_SIG_NO_TPM;
  if (v.chain_checked) {
    std::memcpy(interval_head_.data(), cp.chain_head, VIGIL_DIGEST_LEN);
    interval_head_valid_ = true;
    if (conflict) Resync(interval_head_, last);  // the chained claimant may have been forged
  } else if (signed_ok || degraded) {
    std::memcpy(interval_head_.data(), cp.chain_head, VIGIL_DIGEST_LEN);
    interval_head_valid_ = true;
    Resync(interval_head_, last);
  } else {
    interval_head_valid_ = false;
    for (Chained& c : interval_) c.valid = false;
    chain_valid_ = false;
  }
  if (interval_head_valid_) {
    anchor_.last_seq = last;
    anchor_.chain_head = interval_head_;
    anchor_.checkpoint_digest = p.digest;
    anchor_.checkpoint_log_seq = p.rec.seq();
    anchor_.drops_total = cp.drops_total;
    anchor_.busy_total = cp.busy_total;
    anchor_.log_refused = cp.log_refused;
    anchor_.liveness = cp;
  }
  return v;
}

std::vector<CheckpointVerdict> StreamVerifier::TakeVerdicts() {
  return std::exchange(verdicts_, {});
}

std::vector<Finding> StreamVerifier::TakeFindings() { return std::exchange(findings_, {}); }

std::vector<records::Record> StreamVerifier::OpenEvents() const {
  std::vector<records::Record> out;
  for (const Chained& c : interval_) {
    if (!c.kept || c.seq <= anchor_.last_seq) continue;
    auto rec = records::Record::Decode(Bytes(c));
    if (rec.ok()) out.push_back(std::move(rec).value());
  }
  for (const Conflict& c : conflicts_) {
    if (c.seq > anchor_.last_seq) out.insert(out.end(), c.others.begin(), c.others.end());
  }
  for (const records::Record& d : duplicate_copies_) {
    if (d.seq() > anchor_.last_seq) out.push_back(d);
  }
  for (const auto& [seq, claims] : pending_) {
    if (seq > anchor_.last_seq) out.insert(out.end(), claims.begin(), claims.end());
  }
  for (const auto& [seq, rec] : far_ahead_) {
    if (seq > anchor_.last_seq) out.push_back(rec);
  }
  std::stable_sort(out.begin(), out.end(), [](const records::Record& a,
                                              const records::Record& b) {
    return a.seq() < b.seq();
  });
  return out;
}

}  // namespace vigil::verify
