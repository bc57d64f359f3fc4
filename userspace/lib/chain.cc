#include "vigil/chain.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace vigil::chain {
namespace {

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string SeqStr(uint64_t seq) { return std::to_string(seq); }

}  // namespace

Result<Sha256Digest> InitialChain(const InstanceId& instance_id) {
  return crypto::Sha256({AsBytes(kChainLabel), instance_id});
}

Result<ChainVerifier> ChainVerifier::Start(const InstanceId& instance_id) {
  VIGIL_ASSIGN_OR_RETURN(Sha256Digest head, InitialChain(instance_id));
  return ChainVerifier(head, 0);
}

Status ChainVerifier::Append(const records::Record& event) {
  if (!records::IsEvent(event.type())) {
    return Status::Error(
        ErrorCode::kInvalidArgument,
        "record type " + std::string(records::TypeName(event.type())) + " is not an event");
  }
  if (!event.committed()) {
    return Status::Error(ErrorCode::kMismatch,
                         "event is not committed (seq " + SeqStr(event.seq()) + ")");
  }
  if (event.seq() != last_seq_ + 1) {
    return Status::Error(ErrorCode::kMismatch, "event seq " + SeqStr(event.seq()) +
                                                   " follows seq " + SeqStr(last_seq_) +
                                                   " (expected " + SeqStr(last_seq_ + 1) + ")");
  }
  VIGIL_ASSIGN_OR_RETURN(Sha256Digest next, crypto::Sha256({head_, event.bytes()}));
  head_ = next;
  last_seq_ = event.seq();
  return Status::Ok();
}

namespace {

Status SortAndCheck(std::vector<records::Record>& events) {
  std::sort(events.begin(), events.end(),
            [](const records::Record& a, const records::Record& b) { return a.seq() < b.seq(); });
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].seq() == events[i - 1].seq()) {
      return Status::Error(ErrorCode::kMismatch, "duplicate event seq " + SeqStr(events[i].seq()));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ChainSummary> RecomputeChain(const InstanceId& instance_id,
                                    std::vector<records::Record> events) {
  VIGIL_RETURN_IF_ERROR(SortAndCheck(events));
  VIGIL_ASSIGN_OR_RETURN(ChainVerifier verifier, ChainVerifier::Start(instance_id));
  for (const records::Record& ev : events) {
    VIGIL_RETURN_IF_ERROR(verifier.Append(ev));
  }
  ChainSummary summary;
  summary.first_seq = events.empty() ? 0 : events.front().seq();
  summary.last_seq = verifier.last_seq();
  summary.events = events.size();
  summary.head = verifier.head();
  return summary;
}

Result<CheckpointSummary> VerifyCheckpoints(const InstanceId& instance_id,
                                            const std::vector<records::Record>& log,
                                            std::vector<records::Record> events) {
  VIGIL_RETURN_IF_ERROR(SortAndCheck(events));
  VIGIL_ASSIGN_OR_RETURN(ChainVerifier verifier, ChainVerifier::Start(instance_id));
  size_t next_event = 0;
  CheckpointSummary summary;
  Sha256Digest prev_digest{};  // zeros before the first checkpoint
  uint64_t prev_last_seq = 0;
  std::array<uint64_t, 3> prev_counters{};  // drops, busy, log_refused

  for (const records::Record& rec : log) {
    const std::optional<vigil_log_checkpoint> cp = rec.As<vigil_log_checkpoint>();
    if (!cp) continue;
    const std::string where = "checkpoint log seq " + SeqStr(rec.seq());
    if (std::memcmp(cp->instance_id, instance_id.data(), instance_id.size()) != 0) {
      return Status::Error(ErrorCode::kMismatch, where + ": instance id differs");
    }
    if (std::memcmp(cp->prev_digest, prev_digest.data(), prev_digest.size()) != 0) {
      return Status::Error(ErrorCode::kMismatch,
                           where + ": prev_digest does not match the previous checkpoint");
    }
    if (cp->first_seq != prev_last_seq + 1) {
      return Status::Error(ErrorCode::kMismatch, where + ": first_seq " + SeqStr(cp->first_seq) +
                                                     ", expected " + SeqStr(prev_last_seq + 1));
    }
    if (cp->last_seq + 1 < cp->first_seq) {
      return Status::Error(ErrorCode::kMismatch, where + ": last_seq before first_seq");
    }
    // Loss counters are totals since load: they never go down.
    if (summary.checkpoints > 0 &&
        (cp->drops_total < prev_counters[0] || cp->busy_total < prev_counters[1] ||
         cp->log_refused < prev_counters[2])) {
      return Status::Error(ErrorCode::kMismatch, where + ": a loss counter decreased");
    }
    prev_counters = {cp->drops_total, cp->busy_total, cp->log_refused};
    while (verifier.last_seq() < cp->last_seq) {
      if (next_event >= events.size()) {
        return Status::Error(
            ErrorCode::kNotFound,
            where + ": event seq " + SeqStr(verifier.last_seq() + 1) + " is missing");
      }
      Status st = verifier.Append(events[next_event++]);
      if (!st.ok()) return Status::Error(st.code(), where + ": " + st.message());
    }
    if (std::memcmp(cp->chain_head, verifier.head().data(), verifier.head().size()) != 0) {
      return Status::Error(ErrorCode::kMismatch,
                           where + ": chain_head differs from the chain recomputed up to seq " +
                               SeqStr(cp->last_seq));
    }
    VIGIL_ASSIGN_OR_RETURN(prev_digest, crypto::Sha256({rec.bytes()}));
    prev_last_seq = cp->last_seq;
    summary.checkpoints++;
    summary.last_seq = cp->last_seq;
    summary.last_digest = prev_digest;
  }
  return summary;
}

Result<CheckpointSummary> VerifyCheckpointLinks(const InstanceId& instance_id,
                                                const std::vector<records::Record>& log) {
  CheckpointSummary summary;
  Sha256Digest prev_digest{};
  uint64_t prev_last_seq = 0;
  std::array<uint64_t, 3> prev_counters{};  // drops, busy, log_refused
  for (const records::Record& rec : log) {
    const std::optional<vigil_log_checkpoint> cp = rec.As<vigil_log_checkpoint>();
    if (!cp) continue;
    const std::string where = "checkpoint log seq " + SeqStr(rec.seq());
    if (std::memcmp(cp->instance_id, instance_id.data(), instance_id.size()) != 0) {
      return Status::Error(ErrorCode::kMismatch, where + ": instance id differs");
    }
    const bool first = summary.checkpoints == 0;
    if (!first || cp->first_seq == 1) {
      if (std::memcmp(cp->prev_digest, prev_digest.data(), prev_digest.size()) != 0) {
        return Status::Error(ErrorCode::kMismatch,
                             where + ": prev_digest does not match the previous checkpoint");
      }
    }
    if (!first && cp->first_seq != prev_last_seq + 1) {
      return Status::Error(ErrorCode::kMismatch, where + ": first_seq " + SeqStr(cp->first_seq) +
                                                     ", expected " + SeqStr(prev_last_seq + 1));
    }
    if (cp->last_seq + 1 < cp->first_seq) {
      return Status::Error(ErrorCode::kMismatch, where + ": last_seq before first_seq");
    }
    if (!first && (cp->drops_total < prev_counters[0] || cp->busy_total < prev_counters[1] ||
                   cp->log_refused < prev_counters[2])) {
      return Status::Error(ErrorCode::kMismatch, where + ": a loss counter decreased");
    }
    prev_counters = {cp->drops_total, cp->busy_total, cp->log_refused};
    VIGIL_ASSIGN_OR_RETURN(prev_digest, crypto::Sha256({rec.bytes()}));
    prev_last_seq = cp->last_seq;
    summary.checkpoints++;
    summary.last_seq = cp->last_seq;
    summary.last_digest = prev_digest;
  }
  return summary;
}

Result<RangeSummary> VerifyEventRange(
    const Sha256Digest& start_head, uint64_t start_seq, std::vector<records::Record> events,
    const std::vector<records::Record>& log,
    const std::function<bool(const records::Record&)>& is_anchor) {
  VIGIL_RETURN_IF_ERROR(SortAndCheck(events));
  // The chain values checkpoints claim, by the seq they end at.
  struct Claim {
    uint64_t seq;
    Sha256Digest head;
    bool anchor;
  };
  std::vector<Claim> claims;
  for (const records::Record& rec : log) {
    if (auto cp = rec.As<vigil_log_checkpoint>()) {
      Claim c{cp->last_seq, {}, !is_anchor || is_anchor(rec)};
      std::memcpy(c.head.data(), cp->chain_head, c.head.size());
      claims.push_back(c);
    }
  }
  RangeSummary summary;
  auto check_claims = [&](uint64_t seq, const Sha256Digest& head, bool count) -> Status {
    for (const Claim& c : claims) {
      if (c.seq != seq) continue;
      if (c.head != head) {
        return Status::Error(ErrorCode::kMismatch,
                             "checkpoint ending at seq " + SeqStr(seq) +
                                 " claims a chain value that differs from the recomputed one");
      }
      if (!count) continue;
      summary.checkpoints_checked++;
      if (c.anchor) {
        summary.anchors_checked++;
        summary.anchored_last_seq = std::max(summary.anchored_last_seq, seq);
      }
    }
    return Status::Ok();
  };
  // The starting state is confirmed, not verified: not counted.
  VIGIL_RETURN_IF_ERROR(check_claims(start_seq, start_head, false));
  ChainVerifier verifier = ChainVerifier::Resume(start_head, start_seq);
  for (const records::Record& ev : events) {
    VIGIL_RETURN_IF_ERROR(verifier.Append(ev));
    VIGIL_RETURN_IF_ERROR(check_claims(verifier.last_seq(), verifier.head(), true));
  }
  summary.first_seq = events.empty() ? 0 : events.front().seq();
  summary.last_seq = verifier.last_seq();
  summary.events = events.size();
  summary.head = verifier.head();
  return summary;
}

}  // namespace vigil::chain
