#include "vigil/verify.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <openssl/evp.h>

#include "vigil/digest.h"

namespace vigil::verify {
std::span<const uint8_t> StreamVerifier::Bytes(const Chained& c) const {
  return {arena_.data() + (c.offset - arena_base_), c.size};
}

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
  return a.bytes().size() == b.bytes().size() &&
         std::memcmp(a.bytes().data(), b.bytes().data(), a.bytes().size()) == 0;
}

}  // namespace

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

namespace {

// Ranges of `missing` that fall in [first, last], clipped.
std::vector<SeqRange> Clip(const std::vector<SeqRange>& missing, uint64_t first, uint64_t last) {
  std::vector<SeqRange> out;
  for (const SeqRange& r : missing) {
    if (r.last < first || r.first > last) continue;
    out.push_back({std::max(r.first, first), std::min(r.last, last)});
  }
  return out;
}

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
  }
  return "unknown";
}

StreamVerifier::StreamVerifier(const Anchor& anchor, VerifierOptions options)
    : anchor_(anchor),
      options_(std::move(options)),
      decided_last_(anchor.last_seq),
      interval_head_(anchor.chain_head),
      chained_seq_(anchor.last_seq),
      head_(anchor.chain_head),
      last_cp_digest_(anchor.checkpoint_digest),
      last_cp_last_seq_(anchor.last_seq),
      last_cp_drops_(anchor.drops_total),
      last_cp_busy_(anchor.busy_total),
      last_cp_refused_(anchor.log_refused) {
  if (options_.reorder_window == 0) options_.reorder_window = 1;
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

void StreamVerifier::AddFinding(Finding::Kind kind, uint64_t seq, std::string reason) {
  findings_.push_back(Finding{kind, seq, std::move(reason)});
}

void StreamVerifier::AddEvent(records::Record event) {
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
    counters_.late++;
    AddFinding(Finding::Kind::kLateRecord, seq,
               "record seq " + Str(seq) +
                   " arrived after its checkpoint was decided (beyond the reorder window, or "
                   "replayed)");
    return;
  }
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
    if (identical && recovered_.erase(seq) != 0) {
      counters_.redelivered++;
      return;
    }
    if (identical) {
      counters_.duplicates++;
      duplicates_.push_back(seq);
      AddFinding(Finding::Kind::kDuplicate, seq, "record seq " + Str(seq) + " arrived twice");
      return;
    }
    counters_.conflicts++;
    auto c = std::find_if(conflicts_.begin(), conflicts_.end(),
                          [seq](const Conflict& x) { return x.seq == seq; });
    if (c == conflicts_.end()) {
      conflicts_.push_back(Conflict{seq, {}});
      c = std::prev(conflicts_.end());
    }
    c->others.push_back(std::move(event));
    AddFinding(Finding::Kind::kConflict, seq,
               "two different records claim seq " + Str(seq) + ": one is forged");
    return;
  }
  if (seq == chained_seq_ + 1 && pending_.empty()) {
    // In order, nothing waiting: the common case skips the reorder map.
    ChainOne(std::move(event));
    TryDecide(false);
    return;
  }
  std::vector<records::Record>& claims = pending_[seq];
  for (const records::Record& r : claims) {
    if (SameBytes(r, event)) {
      if (recovered_.erase(seq) != 0) {
        counters_.redelivered++;
        return;
      }
      counters_.duplicates++;
      duplicates_.push_back(seq);
      AddFinding(Finding::Kind::kDuplicate, seq, "record seq " + Str(seq) + " arrived twice");
      return;
    }
  }
  if (!claims.empty()) {
    counters_.conflicts++;
    AddFinding(Finding::Kind::kConflict, seq,
               "two different records claim seq " + Str(seq) + ": one is forged");
  }
  claims.push_back(std::move(event));
  Advance();
  TryDecide(false);
}

void StreamVerifier::AddRecoveredEvent(records::Record event) {
  if (!event.committed() || event.seq() <= decided_last_) return;
  counters_.recovered++;
  recovered_.insert(event.seq());
  AddEvent(std::move(event));
}

void StreamVerifier::ChainOne(records::Record rec) {
  const std::span<const uint8_t> bytes = rec.bytes();
  Chained c{rec.seq(), chain_valid_, false, static_cast<uint32_t>(bytes.size()), 0, {}};
  if (chain_valid_) {
    head_ = Step(head_, bytes);
    c.head_after = head_;
    counters_.chained++;
  }
  if (interval_.size() < options_.max_interval_records) {
    c.kept = true;
    c.offset = arena_base_ + arena_.size();
    arena_.insert(arena_.end(), bytes.begin(), bytes.end());
  } else {
    interval_overflow_ = true;
  }
  chained_seq_ = c.seq;
  interval_.push_back(std::move(c));
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
      ChainOne(std::move(claims[0]));
      continue;
    }
    if (pending_.size() > options_.reorder_window) {
      DeclareMissingUpTo(it->first - 1);
      continue;
    }
    break;
  }
}

bool StreamVerifier::RangeComplete(const PendingCheckpoint& p) const {
  return chained_seq_ >= p.cp.last_seq;
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
    log_.push_back(rec);
  }
  const bool historic =
      !regressed && anchor_.checkpoint_log_seq != 0 && log_seq <= anchor_.checkpoint_log_seq;

  switch (rec.type()) {
    case VIGIL_LOG_KEY: {
      auto k = rec.As<vigil_log_key>();
      if (k && !regressed) {
        crypto::EcPoint point;
        std::memcpy(point.x, k->x, sizeof(point.x));
        std::memcpy(point.y, k->y, sizeof(point.y));
        key_ = point;
      }
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
      PendingCheckpoint p{rec, *cp, digest.ok() ? *digest : crypto::Sha256Digest{},
                          std::nullopt, key_, 0, log_seq + 16, {}, 0, 0, 0};
      std::string& err = p.structural_error;
      if (std::memcmp(cp->instance_id, anchor_.instance_id.data(), VIGIL_ID_LEN) != 0) {
        err = "checkpoint of another module instance (another boot or load): instance " +
              crypto::ToHex(std::span<const uint8_t>(cp->instance_id, VIGIL_ID_LEN)) +
              ", expected " + crypto::ToHex(anchor_.instance_id);
      } else if (regressed) {
        err = "checkpoint at log seq " + Str(log_seq) + " was replayed (log seq goes back)";
      } else if (cp->first_seq != last_cp_last_seq_ + 1) {
        err = "checkpoint starts at seq " + Str(cp->first_seq) + ", expected " +
              Str(last_cp_last_seq_ + 1) + ": replayed, reordered or a checkpoint is missing";
      } else if (std::memcmp(cp->prev_digest, last_cp_digest_.data(), VIGIL_DIGEST_LEN) != 0) {
        err = "prev_digest does not link to the previous checkpoint: replayed, reordered or a "
              "checkpoint is missing";
      } else if (cp->last_seq + 1 < cp->first_seq) {
        err = "checkpoint range " + Str(cp->first_seq) + ".." + Str(cp->last_seq) +
              " runs backwards";
      } else if (cp->drops_total < last_cp_drops_ || cp->busy_total < last_cp_busy_ ||
                 cp->log_refused < last_cp_refused_) {
        err = "loss counters went down since the previous checkpoint";
      }
      if (err.empty()) {
        p.new_drops = cp->drops_total - last_cp_drops_;
        p.new_busy = cp->busy_total - last_cp_busy_;
        p.new_log_refused = cp->log_refused - last_cp_refused_;
        last_cp_digest_ = p.digest;
        last_cp_last_seq_ = cp->last_seq;
        last_cp_drops_ = cp->drops_total;
        last_cp_busy_ = cp->busy_total;
        last_cp_refused_ = cp->log_refused;
      } else {
        // A rejected checkpoint covers nothing: keep it out of the event
        // bookkeeping so the genuine next one still lines up.
        p.cp.first_seq = decided_last_ + 1;
        p.cp.last_seq = decided_last_;
      }
      checkpoints_.push_back(std::move(p));
      break;
    }
    case VIGIL_LOG_SIGNATURE: {
      auto sig = rec.As<vigil_log_signature>();
      if (!sig || historic) break;
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
    default:
      break;
  }
  TryDecide(false);
}

void StreamVerifier::LogError(const std::string& why) {
  if (log_error_.empty()) log_error_ = why;
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
}

void StreamVerifier::TryDecide(bool force) {
  while (!checkpoints_.empty()) {
    PendingCheckpoint& p = checkpoints_.front();
    const bool expired = options_.checkpoint_wait_ns != 0 && p.logged_at_ns != 0 &&
                         now_ns_ >= p.logged_at_ns + options_.checkpoint_wait_ns;
    const bool broken = !p.structural_error.empty() || !log_error_.empty();
    const bool sig_settled =
        p.sig.has_value() || (next_log_seq_ && *next_log_seq_ > p.log_seq_when_sig_due);
    if (!broken && !force && !expired && !(sig_settled && RangeComplete(p))) break;
    if (!broken && !force && !expired && !sig_settled) break;
    // Whatever of the range has not arrived by now is missing.
    if (!broken) {
      while (chained_seq_ < p.cp.last_seq) {
        if (!pending_.empty() && pending_.begin()->first == chained_seq_ + 1) {
          Advance();
        } else if (!pending_.empty() && pending_.begin()->first <= p.cp.last_seq) {
          DeclareMissingUpTo(pending_.begin()->first - 1);
        } else {
          DeclareMissingUpTo(p.cp.last_seq);
        }
      }
    }
    CheckpointVerdict v = Decide(p);
    counters_.verdicts[static_cast<size_t>(v.verdict)]++;
    verdicts_.push_back(std::move(v));
    checkpoints_.pop_front();
  }
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

void StreamVerifier::RunPcrCheck() {
  if (pcr_checked_log_size_ == log_.size() && pcr_checked_log_size_ != 0) return;
  pcr_status_ = options_.pcr_check(log_);
  pcr_checked_log_size_ = log_.size();
}

CheckpointVerdict StreamVerifier::Decide(PendingCheckpoint& p) {
  const vigil_log_checkpoint& cp = p.cp;
  CheckpointVerdict v;
  v.log_seq = p.rec.seq();
  v.first_seq = p.rec.As<vigil_log_checkpoint>()->first_seq;
  v.last_seq = p.rec.As<vigil_log_checkpoint>()->last_seq;
  v.new_drops = p.new_drops;
  v.new_busy = p.new_busy;
  v.new_log_refused = p.new_log_refused;

  if (!p.structural_error.empty()) {
    v.verdict = Verdict::kTampered;
    v.reason = p.structural_error;
    return v;  // covers no events: the interval stays open for the next one
  }

  const uint64_t first = cp.first_seq;
  const uint64_t last = cp.last_seq;
  auto end = std::upper_bound(interval_.begin(), interval_.end(), last,
                              [](uint64_t s, const Chained& c) { return s < c.seq; });
  v.events = static_cast<uint64_t>(end - interval_.begin());
  v.missing = Clip(missing_, first, last);

  std::vector<std::string> tamper;
  std::optional<uint64_t> bad_seq;
  auto note_bad = [&](uint64_t seq) {
    if (!bad_seq || seq < *bad_seq) bad_seq = seq;
  };
  for (uint64_t seq : duplicates_) {
    if (seq >= first && seq <= last) {
      note_bad(seq);
      tamper.push_back("record seq " + Str(seq) + " arrived twice (replayed)");
      break;
    }
  }

  // The chain: recomputable only over a complete range from a known value.
  bool head_known = false;
  crypto::Sha256Digest head_at_last{};
  if (v.missing.empty()) {
    if (end == interval_.begin()) {
      head_known = interval_head_valid_;
      head_at_last = interval_head_;
    } else {
      head_known = std::prev(end)->valid;
      head_at_last = std::prev(end)->head_after;
    }
  }
  std::vector<const Conflict*> range_conflicts;
  for (const Conflict& c : conflicts_) {
    if (c.seq >= first && c.seq <= last) range_conflicts.push_back(&c);
  }
  const bool chain_matches =
      head_known && std::memcmp(head_at_last.data(), cp.chain_head, VIGIL_DIGEST_LEN) == 0;
  if (head_known && !range_conflicts.empty()) {
    const Conflict& c = *range_conflicts.front();
    note_bad(c.seq);
    if (chain_matches) {
      v.chain_checked = true;
      tamper.push_back("two records claimed seq " + Str(c.seq) +
                       "; the checkpoint confirms the one chained, the other was forged");
    } else {
      // Try each other claimant in place of the chained record.
      bool resolved = false;
      auto at = std::lower_bound(interval_.begin(), end, c.seq,
                                 [](const Chained& x, uint64_t s) { return x.seq < s; });
      const bool kept = std::all_of(interval_.begin(), end, [](const Chained& x) {
        return x.kept;
      });
      for (const records::Record& other : c.others) {
        if (!kept || !interval_head_valid_ || at == end) break;
        crypto::Sha256Digest h = interval_head_;
        for (auto it = interval_.begin(); it != end; ++it) {
          h = Step(h, it == at ? other.bytes() : Bytes(*it));
        }
        if (std::memcmp(h.data(), cp.chain_head, VIGIL_DIGEST_LEN) == 0) {
          // The entries up to `last` go below; later heads are redone from
          // the checkpoint's head.
          resolved = true;
          break;
        }
      }
      if (resolved) {
        v.chain_checked = true;
        tamper.push_back("two records claimed seq " + Str(c.seq) +
                         "; the one chained first was forged, the checkpoint confirms the other");
      } else {
        tamper.push_back("two records claimed seq " + Str(c.seq) +
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

  // The signature.
  enum class Sig { kOk, kUnsigned, kBad } sig_state = Sig::kUnsigned;
  std::string sig_why;
  if (!p.sig) {
    sig_why = "no signature record was logged for this checkpoint";
  } else if (p.sig->status != VIGIL_SIG_OK) {
    sig_why = "the module could not sign (status " + Str(p.sig->status) + ", error " +
              std::to_string(p.sig->error) + ")";
  } else if (!p.key) {
    sig_why = "signed, but no KEY record precedes it in the log";
  } else {
    Status st = crypto::VerifyCheckpointSignature(*p.key, p.rec, *p.sig);
    if (st.ok()) {
      sig_state = Sig::kOk;
      v.signature_checked = true;
    } else {
      sig_state = Sig::kBad;
      tamper.push_back("signature does not verify against the logged key: " + st.message());
    }
  }

  // The PCR path, once the signature holds.
  std::string pcr_why;
  bool pcr_unavailable = false;
  bool pcr_mismatch = false;
  if (sig_state == Sig::kOk && options_.pcr_check) {
    if (cp.anchor != VIGIL_ANCHOR_PCR) {
      pcr_why = "anchored through IMA: the PCR replay belongs to IMA's log";
    } else {
      RunPcrCheck();
      if (pcr_status_.ok()) {
        v.pcr_checked = true;
      } else if (pcr_status_.code() == ErrorCode::kMismatch ||
                 pcr_status_.code() == ErrorCode::kMalformed) {
        pcr_mismatch = true;
        tamper.push_back("PCR replay: " + pcr_status_.message());
      } else {
        pcr_unavailable = true;
        pcr_why = "the TPM could not be read for the PCR check: " + pcr_status_.message();
      }
    }
  }

  if (!log_error_.empty()) tamper.insert(tamper.begin(), "log: " + log_error_);

  std::vector<std::string> loss;
  if (!v.missing.empty()) {
    uint64_t n = 0;
    for (const SeqRange& r : v.missing) n += r.last - r.first + 1;
    loss.push_back(Str(n) + " events never arrived (seqs " + RangesStr(v.missing) + ")");
  } else if (!head_known && tamper.empty()) {
    loss.push_back("no trusted chain value before seq " + Str(first) +
                   " (an earlier gap or failure): the chain cannot be recomputed");
  }
  if (v.new_drops || v.new_busy || v.new_log_refused) {
    loss.push_back("the module attests " + Str(v.new_drops) + " drops, " + Str(v.new_busy) +
                   " busy refusals, " + Str(v.new_log_refused) + " refused log records");
  }

  auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (const std::string& s : parts) out += (out.empty() ? "" : "; ") + s;
    return out;
  };
  if (!tamper.empty()) {
    v.verdict = Verdict::kTampered;
    v.reason = join(tamper);
    v.bad_seq = bad_seq;
  } else if (!loss.empty()) {
    v.verdict = Verdict::kLoss;
    v.reason = join(loss);
  } else if (sig_state != Sig::kOk || pcr_unavailable) {
    v.verdict = Verdict::kUnsigned;
    v.reason = sig_state != Sig::kOk ? sig_why : pcr_why;
  } else {
    v.verdict = Verdict::kVerified;
    v.reason = "chain recomputed over " + Str(v.events) + " events, signature verified";
    v.reason += v.pcr_checked ? ", on the TPM's PCR path" : pcr_why.empty() ? "" : "; " + pcr_why;
  }

  // Close the interval and drop its bytes.
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
  auto past = [last](uint64_t s) { return s <= last; };
  std::erase_if(duplicates_, past);
  recovered_.erase(recovered_.begin(), recovered_.upper_bound(last));
  std::erase_if(conflicts_, [last](const Conflict& c) { return c.seq <= last; });
  std::erase_if(missing_, [last](const SeqRange& r) { return r.last <= last; });
  for (SeqRange& r : missing_) r.first = std::max(r.first, last + 1);
  decided_last_ = last;

  // Which chain value to continue from: ours when it matched; else the
  // checkpoint's, when the TPM signed it (or there is no TPM at all).
  // A bad event does not make the signed checkpoint untrustworthy; a bad
  // signature or PCR path does.
  const bool trust_cp_head =
      (sig_state == Sig::kOk && !pcr_mismatch) ||
      (sig_state == Sig::kUnsigned && p.sig && p.sig->status == VIGIL_SIG_NO_TPM);
  if (v.chain_checked || trust_cp_head) {
    std::memcpy(interval_head_.data(), cp.chain_head, VIGIL_DIGEST_LEN);
    interval_head_valid_ = true;
    Resync(interval_head_, last);
    anchor_.last_seq = last;
    anchor_.chain_head = interval_head_;
    anchor_.checkpoint_digest = p.digest;
    anchor_.checkpoint_log_seq = p.rec.seq();
    anchor_.drops_total = cp.drops_total;
    anchor_.busy_total = cp.busy_total;
    anchor_.log_refused = cp.log_refused;
  } else {
    interval_head_valid_ = false;
    for (Chained& c : interval_) c.valid = false;
    chain_valid_ = false;
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
  for (const auto& [seq, claims] : pending_) {
    if (seq > anchor_.last_seq) out.insert(out.end(), claims.begin(), claims.end());
  }
  return out;
}

}  // namespace vigil::verify
