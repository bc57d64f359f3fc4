#include "vigil/replay.h"

#include <algorithm>
#include <map>
#include <string>

namespace vigil::replay {

Result<LogReplay> ReplayLog(const std::vector<records::Record>& log) {
  // The newest BASE supersedes everything before it.
  std::optional<size_t> base_index;
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].type() == VIGIL_LOG_BASE) base_index = i;
  }
  if (!base_index) {
    return Status::Error(ErrorCode::kNotFound, "the log holds no BASE record to replay from");
  }
  const vigil_log_base base = *log[*base_index].As<vigil_log_base>();
  if (base.nr_banks == 0 || base.nr_banks > VIGIL_MAX_BANKS) {
    return Status::Error(ErrorCode::kMalformed,
                         "BASE record lists " + std::to_string(base.nr_banks) + " banks");
  }

  LogReplay out;
  out.base_seq = log[*base_index].seq();
  for (unsigned i = 0; i < base.nr_banks; ++i) {
    BankReplay bank;
    bank.alg = base.bank[i].alg;
    VIGIL_ASSIGN_OR_RETURN(size_t size, crypto::DigestSize(bank.alg));
    if (size > sizeof(base.bank[i].config)) {
      return Status::Error(ErrorCode::kMalformed, "digest too large for the BASE record");
    }
    bank.config_history.emplace_back(base.bank[i].config, base.bank[i].config + size);
    bank.events_history.emplace_back(base.bank[i].events, base.bank[i].events + size);
    out.banks.push_back(std::move(bank));
  }

  // The BASE holds the PCR values at its cut: every record from
  // first_kept_seq on was extended after those values, including records
  // that precede the BASE itself in the log (a TRIM writes its BASE last).
  const uint64_t first_kept = base.first_kept_seq;
  std::optional<uint64_t> prev_seq;
  for (size_t i = 0; i < log.size(); ++i) {
    const records::Record& rec = log[i];
    if (rec.seq() < first_kept) continue;
    // The first record at or after the cut must be the cut itself (log seqs
    // start at 1), wherever it sits in the log: otherwise records are missing.
    if (!prev_seq && rec.seq() != std::max<uint64_t>(first_kept, 1)) {
      return Status::Error(ErrorCode::kNotFound,
                           "the first record at the BASE cut is seq " + std::to_string(rec.seq()) +
                               ", not the BASE's first_kept_seq " + std::to_string(first_kept) +
                               ": records are missing");
    }
    if (prev_seq && rec.seq() != *prev_seq + 1) {
      return Status::Error(ErrorCode::kMalformed, "log seq " + std::to_string(rec.seq()) +
                                                      " follows " + std::to_string(*prev_seq) +
                                                      ": records are missing");
    }
    prev_seq = rec.seq();
    bool to_config = false;
    bool to_events = false;
    uint32_t pcr = VIGIL_PCR_NONE;
    if (auto m = rec.As<vigil_log_measure>()) {
      pcr = m->pcr;
      to_config = m->pcr != VIGIL_PCR_NONE;
    } else if (auto k = rec.As<vigil_log_key>()) {
      pcr = k->pcr;
      to_config = k->pcr != VIGIL_PCR_NONE;
    } else if (auto cp = rec.As<vigil_log_checkpoint>()) {
      to_events = cp->anchor == VIGIL_ANCHOR_PCR;
    }
    if (to_config) {
      if (out.config_pcr && *out.config_pcr != pcr) {
        return Status::Error(ErrorCode::kMalformed, "log seq " + std::to_string(rec.seq()) +
                                                        " extends PCR " + std::to_string(pcr) +
                                                        ", earlier records PCR " +
                                                        std::to_string(*out.config_pcr));
      }
      out.config_pcr = pcr;
      out.config_extends++;
    }
    if (to_config) out.config_seqs.push_back(rec.seq());
    if (to_events) {
      out.events_extends++;
      out.events_seqs.push_back(rec.seq());
    }
    if (!to_config && !to_events) continue;
    for (BankReplay& bank : out.banks) {
      VIGIL_ASSIGN_OR_RETURN(crypto::Digest measurement, crypto::Hash(bank.alg, rec.bytes()));
      std::vector<crypto::Digest>& history = to_config ? bank.config_history : bank.events_history;
      VIGIL_ASSIGN_OR_RETURN(crypto::Digest next,
                             crypto::Extend(bank.alg, history.back(), measurement));
      history.push_back(std::move(next));
    }
  }
  return out;
}

void AppendToReplayView(std::vector<records::Record>& view, records::Record rec) {
  if (auto base = rec.As<vigil_log_base>()) {
    const uint64_t cut = base->first_kept_seq;
    std::erase_if(view, [cut](const records::Record& r) { return r.seq() < cut; });
  }
  view.push_back(std::move(rec));
}

PcrComparison ComparePcr(const std::vector<crypto::Digest>& history, const crypto::Digest& actual) {
  PcrComparison cmp;
  if (history.empty()) return cmp;
  if (history.back() == actual) {
    cmp.match = PcrMatch::kMatch;
    return cmp;
  }
  for (size_t i = history.size() - 1; i-- > 0;) {
    if (history[i] == actual) {
      cmp.match = PcrMatch::kPendingTail;
      cmp.pending = history.size() - 1 - i;
      return cmp;
    }
  }
  return cmp;
}

Status CheckPcrPath(const std::vector<records::Record>& verified,
                    const std::vector<records::Record>& current, uint32_t pcr_config,
                    uint32_t pcr_events, const PcrReader& read_pcr) {
  // The module never rewrites a held record: where the two overlap they
  // must be byte for byte the same.
  std::map<uint64_t, const records::Record*> by_seq;
  for (const records::Record& r : current) by_seq[r.seq()] = &r;
  for (const records::Record& r : verified) {
    auto it = by_seq.find(r.seq());
    if (it == by_seq.end()) {
      if (!current.empty() && r.seq() >= current.front().seq()) {
        return Status::Error(ErrorCode::kMismatch, "log seq " + std::to_string(r.seq()) +
                                                       " is no longer in the module's log");
      }
      continue;  // trimmed since
    }
    if (!std::ranges::equal(it->second->bytes(), r.bytes())) {
      return Status::Error(ErrorCode::kMismatch,
                           "log seq " + std::to_string(r.seq()) +
                               " differs from the record the module holds now");
    }
  }
  auto now = ReplayLog(current);
  if (!now.ok()) {
    return Status::Error(ErrorCode::kMalformed, "replaying the module's log: " +
                                                    now.status().message());
  }
  // How far the TPM must have come: every extend `current` holds at or
  // before the last verified record (by log seq, so `verified` needs no BASE
  // of its own). Extends trimmed since were confirmed by an earlier check.
  const uint64_t verified_end = verified.empty() ? 0 : verified.back().seq();
  auto extends_upto = [verified_end](const std::vector<uint64_t>& seqs) {
    return static_cast<size_t>(std::upper_bound(seqs.begin(), seqs.end(), verified_end) -
                               seqs.begin());
  };
  const size_t config_needed = extends_upto(now->config_seqs);
  const size_t events_needed = extends_upto(now->events_seqs);
  for (const BankReplay& bank : now->banks) {
    struct Which {
      const char* name;
      uint32_t pcr;
      const std::vector<crypto::Digest>& history;
      size_t needed;  // index on `history` the TPM must have reached
    };
    const Which checks[] = {
        {"pcr_config", pcr_config, bank.config_history, config_needed},
        {"pcr_events", pcr_events, bank.events_history, events_needed},
    };
    for (const Which& w : checks) {
      auto actual = read_pcr(bank.alg, w.pcr);
      if (!actual.ok()) return actual.status();
      const PcrComparison cmp = ComparePcr(w.history, *actual);
      const std::string where = std::string(w.name) + " (PCR " + std::to_string(w.pcr) + ", " +
                                crypto::AlgName(bank.alg) + ")";
      if (cmp.match == PcrMatch::kMismatch) {
        return Status::Error(ErrorCode::kMismatch,
                             where + " holds " + crypto::ToHex(*actual) +
                                 ", which is not on the log's replay path");
      }
      const size_t reached = w.history.size() - 1 - cmp.pending;
      if (reached < w.needed) {
        // The module logs first and extends after; a failed extend stays
        // pending until it is retried. Not a contradiction, not a check.
        return Status::Error(ErrorCode::kFailedPrecondition,
                             where + " is " + std::to_string(w.needed - reached) +
                                 " extends behind the verified log");
      }
    }
  }
  return Status::Ok();
}

std::string PcrMatchName(PcrMatch m) {
  switch (m) {
    case PcrMatch::kMatch:
      return "match";
    case PcrMatch::kPendingTail:
      return "pending";
    case PcrMatch::kMismatch:
      return "MISMATCH";
  }
  return "?";
}

}  // namespace vigil::replay
