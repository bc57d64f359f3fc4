#include "vigil/offline.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "vigil/digest.h"

namespace vigil::verify {
namespace {

std::string Str(uint64_t v) { return std::to_string(v); }

Outcome FromVerdict(Verdict v) {
  switch (v) {
    case Verdict::kVerified:
      return Outcome::kVerified;
    case Verdict::kUnsigned:
      return Outcome::kUnsigned;
    case Verdict::kLoss:
      return Outcome::kLoss;
    case Verdict::kTampered:
      return Outcome::kTampered;
    case Verdict::kUnanchored:
      return Outcome::kUnanchored;
    case Verdict::kSigned:
      return Outcome::kSigned;
  }
  return Outcome::kTampered;
}

// Findings that only a forged, replayed or damaged input produces count as
// tampered (a producer attached twice commits duplicates); a record that came
// too late for its checkpoint, or a producer that stopped seeing events, as
// loss. The rest are reported without changing the outcome: a new producer
// set, refusals, TPM errors and a development anchor are facts to show, not
// evidence against the records.
Outcome FromFinding(Finding::Kind k) {
  switch (k) {
    case Finding::Kind::kProducersChanged:
    case Finding::Kind::kProducersResealed:
    case Finding::Kind::kRefused:
    case Finding::Kind::kTpm:
    case Finding::Kind::kDevAnchor:
      return Outcome::kVerified;
    case Finding::Kind::kLateRecord:
    case Finding::Kind::kUnanchored:
    case Finding::Kind::kProducerSilent:
      return Outcome::kLoss;
    case Finding::Kind::kAnchorBroken:
      return Outcome::kUnanchored;
    case Finding::Kind::kAnchorUnchecked:
      return Outcome::kSigned;
    case Finding::Kind::kProducerDuplicated:
    case Finding::Kind::kDuplicate:
    case Finding::Kind::kConflict:
    case Finding::Kind::kLog:
    case Finding::Kind::kKeyMismatch:
      return Outcome::kTampered;
  }
  return Outcome::kTampered;
}

int Rank(Outcome o) {
  switch (o) {
    case Outcome::kVerified:
      return 0;
    case Outcome::kSigned:
      return 1;
    case Outcome::kIncomplete:
      return 2;
    case Outcome::kUnsigned:
      return 3;
    case Outcome::kLoss:
      return 4;
    case Outcome::kUnanchored:
      return 5;
    case Outcome::kTampered:
      return 6;
  }
  return 6;
}

// The start checkpoint is judged like the verifier judges a signature (it
// is not fed to the verifier: its events are not in the input).
std::pair<Verdict, std::string> JudgeStart(const std::optional<crypto::EcPoint>& key,
                                           const records::Record& cp,
                                           const std::vector<records::Record>& log) {
  std::optional<vigil_log_signature> sig;
  for (const records::Record& r : log) {
    auto s = r.As<vigil_log_signature>();
    if (s && s->checkpoint_seq == cp.seq()) {
      if (sig) return {Verdict::kTampered, "the start checkpoint has two signature records"};
      sig = s;
    }
  }
  if (!sig) return {Verdict::kUnsigned, "the start checkpoint has no signature record"};
  if (sig->status != VIGIL_SIG_OK) {
    if (sig->status == VIGIL_SIG_NO_TPM && key) {
      return {Verdict::kTampered, "the start checkpoint claims no TPM although a key is trusted"};
    }
    return {Verdict::kUnsigned,
            "the start checkpoint is unsigned (status " + Str(sig->status) + ")"};
  }
  if (!key) return {Verdict::kUnsigned, "the start checkpoint is signed, but no key is trusted"};
  Status st = crypto::VerifyCheckpointSignature(*key, cp, *sig);
  if (!st.ok()) return {Verdict::kTampered, "the start checkpoint: " + st.message()};
  return {Verdict::kVerified, "the start checkpoint's signature verifies"};
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kVerified:
      return "verified";
    case Outcome::kSigned:
      return "signed";
    case Outcome::kIncomplete:
      return "incomplete";
    case Outcome::kUnsigned:
      return "unsigned";
    case Outcome::kLoss:
      return "loss";
    case Outcome::kUnanchored:
      return "unanchored";
    case Outcome::kTampered:
      return "tampered";
  }
  return "unknown";
}

Outcome Worse(Outcome a, Outcome b) { return Rank(a) >= Rank(b) ? a : b; }

Result<OfflineReport> VerifyOffline(const OfflineOptions& options,
                                    std::vector<records::Record> events,
                                    const std::vector<records::Record>& log,
                                    const Status& log_error) {
  OfflineReport rep;
  Anchor& a = rep.start;
  a.key = options.key;
  if (options.instance_id) {
    a.instance_id = *options.instance_id;
  } else {
    auto first = std::find_if(log.begin(), log.end(), [](const records::Record& r) {
      return r.type() == VIGIL_LOG_CHECKPOINT;
    });
    if (first == log.end()) {
      rep.outcome = log_error.ok() ? Outcome::kIncomplete : Outcome::kTampered;
      rep.summary =
          "the log holds no checkpoint: nothing is verified" +
          (log_error.ok() ? std::string() : "; the log is damaged: " + log_error.message());
      return rep;
    }
    std::memcpy(a.instance_id.data(), first->As<vigil_log_checkpoint>()->instance_id, VIGIL_ID_LEN);
  }
  VIGIL_ASSIGN_OR_RETURN(a.chain_head, chain::InitialChain(a.instance_id));

  std::string start_problem;
  bool open_start = false;
  const records::Record* start = nullptr;
  if (options.start_seq != 0) {
    for (const records::Record& r : log) {
      auto cp = r.As<vigil_log_checkpoint>();
      if (cp && cp->last_seq == options.start_seq &&
          std::memcmp(cp->instance_id, a.instance_id.data(), VIGIL_ID_LEN) == 0) {
        start = &r;
        break;
      }
    }
    if (start == nullptr && !options.start_head) {
      return Status::Error(ErrorCode::kNotFound,
                           "no checkpoint of this instance in the log ends at seq " +
                               Str(options.start_seq) +
                               ": give the chain value there (--start-head) or start at a "
                               "checkpoint's last_seq");
    }
    open_start = start == nullptr;
    rep.start_inside_interval = open_start;
  }
  if (open_start) {
    // A chain value the caller trusts inside an interval (the module's head
    // read before a collector attached). Checkpoints that end before it are
    // history; the one that covers the next seq is checked without its link.
    a.last_seq = options.start_seq;
    a.chain_head = *options.start_head;
    for (const records::Record& r : log) {
      auto cp = r.As<vigil_log_checkpoint>();
      if (cp && cp->last_seq < options.start_seq) a.checkpoint_log_seq = r.seq();
    }
  } else if (start != nullptr) {
    const vigil_log_checkpoint cp = *start->As<vigil_log_checkpoint>();
    auto [verdict, why] = JudgeStart(a.key, *start, log);
    if (options.start_head &&
        std::memcmp(options.start_head->data(), cp.chain_head, VIGIL_DIGEST_LEN) != 0) {
      verdict = Verdict::kTampered;
      why = "the start checkpoint's chain head differs from the given start head";
    }
    rep.start_verdict = verdict;
    if (verdict != Verdict::kVerified) start_problem = why;
    a.last_seq = cp.last_seq;
    std::memcpy(a.chain_head.data(), cp.chain_head, VIGIL_DIGEST_LEN);
    VIGIL_ASSIGN_OR_RETURN(a.checkpoint_digest, crypto::Sha256({start->bytes()}));
    a.checkpoint_log_seq = start->seq();
    a.drops_total = cp.drops_total;
    a.busy_total = cp.busy_total;
    a.log_refused = cp.log_refused;
  }

  VerifierOptions vopt;
  vopt.started_after_seq = a.last_seq;  // events the start already covers
  vopt.checkpoint_wait_ns = 0;          // no clock offline: decided by the input
  vopt.open_first_link = open_start;
  vopt.pcr_check = options.pcr_check;
  vopt.ima_check = options.ima_check;
  vopt.module_anchor = options.module_anchor;
  StreamVerifier verifier(a, std::move(vopt));

  // Events in seq order, handed over just before the checkpoint that covers
  // them, as the ring buffer would have delivered them: memory stays bounded
  // by one checkpoint interval.
  std::stable_sort(
      events.begin(), events.end(),
      [](const records::Record& x, const records::Record& y) { return x.seq() < y.seq(); });
  auto note_event = [&](const records::Record& ev) {
    if (!ev.committed() || ev.seq() <= a.last_seq) return;
    rep.events++;
    rep.last_event_seq = std::max(rep.last_event_seq, ev.seq());
  };
  size_t next = 0;
  auto feed_up_to = [&](uint64_t last) {
    for (; next < events.size() && events[next].seq() <= last; ++next) {
      note_event(events[next]);
      verifier.AddEvent(std::move(events[next]));
    }
  };
  for (const records::Record& rec : log) {
    if (auto cp = rec.As<vigil_log_checkpoint>()) {
      feed_up_to(cp->last_seq);
    } else if (rec.type() == VIGIL_LOG_EVENT) {
      if (auto ev = records::EventFromLogCopy(rec); ev.ok() && ev->seq() > a.last_seq) {
        rep.log_event_copies++;
        note_event(*ev);
      }
    }
    verifier.AddLog(rec);
  }
  if (!log_error.ok()) verifier.LogError(log_error.message());
  feed_up_to(UINT64_MAX);
  verifier.Finish();

  if (auto tip = verifier.tip()) {
    rep.tip_seq = tip->seq;
    rep.tip_head = tip->head;
  }
  rep.verdicts = verifier.TakeVerdicts();
  rep.findings = verifier.TakeFindings();
  rep.counters = verifier.counters();
  rep.covered_seq = a.last_seq;

  Outcome worst = Outcome::kVerified;
  std::string why;
  auto raise = [&](Outcome o, const std::string& reason) {
    if (o == Outcome::kUnsigned && options.accept_unsigned) return;
    if (o == Outcome::kSigned && options.accept_signed) return;
    if (Rank(o) > Rank(worst)) {
      worst = o;
      why = reason;
    }
  };
  if (!start_problem.empty()) raise(FromVerdict(*rep.start_verdict), start_problem);
  for (const CheckpointVerdict& v : rep.verdicts) {
    rep.covered_seq = std::max(rep.covered_seq, v.last_seq);
    raise(FromVerdict(v.verdict), "checkpoint at log seq " + Str(v.log_seq) + ": " +
                                      std::string(VerdictName(v.verdict)) + ": " + v.reason);
  }
  for (const Finding& f : rep.findings) {
    raise(FromFinding(f.kind), std::string(FindingKindName(f.kind)) + ": " + f.reason);
  }
  if (rep.verdicts.empty()) {
    raise(Outcome::kIncomplete, "no checkpoint after the start: nothing is verified");
  } else if (rep.last_event_seq > rep.covered_seq) {
    raise(Outcome::kIncomplete, "events after seq " + Str(rep.covered_seq) + " (up to " +
                                    Str(rep.last_event_seq) + ") are covered by no checkpoint yet");
  }
  rep.outcome = worst;
  const auto signed_only = std::count_if(rep.verdicts.begin(), rep.verdicts.end(),
                                         [](const auto& v) { return v.verdict == Verdict::kSigned; });
  rep.summary =
      worst != Outcome::kVerified ? why
      : signed_only == 0
          ? Str(rep.verdicts.size()) + " checkpoints verified, covering seqs up to " +
                Str(rep.covered_seq)
          : Str(rep.verdicts.size()) + " checkpoints hold, covering seqs up to " +
                Str(rep.covered_seq) + " (" + Str(static_cast<uint64_t>(signed_only)) +
                " signed: chain and signature verified, the anchor not checked; accepted)";
  return rep;
}

}  // namespace vigil::verify
