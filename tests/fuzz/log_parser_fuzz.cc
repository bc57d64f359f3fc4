// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: a log stream as read from /dev/vigil or a file, decoded
// and handed to the verifier's checks: PCR replay, checkpoint links and the
// event chain (events found in the stream plus the user events that
// LOG_EVENT records copy). Invariants beyond "no crash, leak or UB": every
// refusal carries an error code, and a successful replay ends where its
// history says.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "vigil.h"
#include "vigil/chain.h"
#include "vigil/offline.h"
#include "vigil/records.h"
#include "vigil/replay.h"

namespace {

using vigil::records::Record;

template <typename T>
void CheckRefusal(const vigil::Result<T>& result) {
  if (!result.ok() && result.status().ok()) std::abort();
}

// An outcome agrees with its verdicts: "verified" never stands next to a
// tampered, loss or unsigned verdict the caller did not accept.
void CheckOffline(const vigil::Result<vigil::verify::OfflineReport> &report) {
  CheckRefusal(report);
  if (!report.ok())
    return;
  if (report->outcome != vigil::verify::Outcome::kVerified)
    return;
  for (const vigil::verify::CheckpointVerdict &v : report->verdicts) {
    if (v.verdict == vigil::verify::Verdict::kTampered ||
        v.verdict == vigil::verify::Verdict::kLoss ||
        v.verdict == vigil::verify::Verdict::kUnanchored ||
        v.verdict == vigil::verify::Verdict::kSigned) {
      std::abort();
    }
  }
}

void CheckReplay(const std::vector<Record>& log) {
  const vigil::Result<vigil::replay::LogReplay> replay = vigil::replay::ReplayLog(log);
  CheckRefusal(replay);
  if (!replay.ok()) return;
  for (const vigil::replay::BankReplay& bank : replay->banks) {
    if (bank.config_history.size() != replay->config_extends + 1 ||
        bank.events_history.size() != replay->events_extends + 1) {
      std::abort();
    }
    using vigil::replay::PcrMatch;
    if (vigil::replay::ComparePcr(bank.config_history, bank.config()).match != PcrMatch::kMatch ||
        vigil::replay::ComparePcr(bank.events_history, bank.events()).match != PcrMatch::kMatch) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vigil::Result<std::vector<Record>> stream =
      vigil::records::DecodeStream(std::span<const uint8_t>(data, size));
  CheckRefusal(stream);
  if (!stream.ok()) return 0;

  // Log records go to the replay and checkpoint checks (their seqs are log
  // seqs); events, and the user events LOG_EVENT records carry, to the chain.
  std::vector<Record> log;
  std::vector<Record> events;
  std::optional<vigil_log_checkpoint> first_checkpoint;
  for (const Record& rec : *stream) {
    if (vigil::records::IsEvent(rec.type())) {
      events.push_back(rec);
      continue;
    }
    log.push_back(rec);
    if (rec.type() == VIGIL_LOG_EVENT) {
      vigil::Result<Record> ev = vigil::records::EventFromLogCopy(rec);
      CheckRefusal(ev);
      if (ev.ok()) events.push_back(std::move(ev).value());
    } else if (!first_checkpoint) {
      first_checkpoint = rec.As<vigil_log_checkpoint>();
    }
  }
  vigil::chain::InstanceId id{};
  if (first_checkpoint) std::memcpy(id.data(), first_checkpoint->instance_id, id.size());

  CheckReplay(log);
  CheckRefusal(vigil::chain::RecomputeChain(id, events));

  // The verification engine offline, from chain_0 (a verifier that saw the
  // whole run) and from the first checkpoint (one that attached later, as
  // vigild after a restart). No key: the degraded statement, so KEY records
  // are findings and every signature path that needs no key runs.
  vigil::verify::OfflineOptions opt;
  if (first_checkpoint)
    opt.instance_id = id;
  opt.accept_unsigned = true;
  CheckOffline(vigil::verify::VerifyOffline(opt, events, log));
  if (first_checkpoint) {
    opt.start_seq = first_checkpoint->last_seq;
    if (opt.start_seq != 0)
      CheckOffline(vigil::verify::VerifyOffline(opt, events, log));
  }
  return 0;
}
