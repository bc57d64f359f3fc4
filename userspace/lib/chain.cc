#include "vigil/chain.h"

#include <algorithm>
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

}  // namespace vigil::chain
