// SPDX-License-Identifier: GPL-2.0
// The input language of verifier_fuzz: a small program driving one
// vigil::verify::StreamVerifier, and its interpreter, which checks the
// verifier's documented invariants after every step (a violation aborts,
// which libFuzzer records as a crash). fuzz_seed_gen writes honest and
// tampered programs with ProgramWriter and runs them through the same
// interpreter before saving them.
//
// Layout (integers little endian):
//   header  window-1 (mod 64), wait (x10 ms, 0: none), pcr (0: no PCR check,
//           else the first result, (pcr-1) mod 3: OK / kMismatch /
//           kUnavailable), max_interval_records (0: default), anchor kind
//           (1: an Anchor block follows, 2: one with a key; else a start
//           anchor), instance byte (the start anchor's instance id, every
//           byte this value), max_claims_per_seq (0: default),
//           started_after_seq
//   anchor  instance_id[16] last_seq chain_head[32] checkpoint_digest[32]
//           checkpoint_log_seq drops_total busy_total log_refused (u64s),
//           then for kind 2 the key's x[32] y[32]
//   ops     one byte, kind = low nibble mod kOpCount, flags in the high one:
//     event/log/recovered  u16 length, then that many bytes: a record for
//                          AddEvent / AddLog / AddRecoveredEvent (a record
//                          that does not decode is skipped)
//     tick       u8: the clock advances that many 10 ms steps, then Tick
//     log_error  LogError    finish  Finish    take  TakeVerdicts,
//                TakeFindings and OpenEvents, all checked
//     repeat     u8 k: the k-th most recent record again (AddLog if the
//                flag kAsLog is set, else AddEvent)
//     flip       u8 k, u16 offset, u8 mask: that record with one byte xored
//     set_pcr    u8: the PCR check's result from now on, as in the header
// The program ends with the input, at kMaxOps ops, or inside an operand;
// then Finish and a last take run.
#ifndef VIGIL_TESTS_FUZZ_VERIFIER_PROGRAM_H_
#define VIGIL_TESTS_FUZZ_VERIFIER_PROGRAM_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vigil.h"
#include "vigil/chain.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/verify.h"

namespace vigil::fuzz {

enum class VerifierOp : uint8_t {
  kEvent = 0,
  kLog,
  kRecovered,
  kTick,
  kLogError,
  kFinish,
  kTake,
  kRepeat,
  kFlip,
  kSetPcr,
};
inline constexpr uint8_t kOpCount = 10;
inline constexpr uint8_t kAsLog = 0x10;  // flag of repeat and flip
inline constexpr size_t kHeaderSize = 8;
inline constexpr uint8_t kExplicitAnchor = 1;
inline constexpr uint8_t kExplicitAnchorWithKey = 2;
inline constexpr size_t kMaxOps = 2000;      // bounds time and memory per input
inline constexpr size_t kHistorySize = 64;   // records repeat/flip can name
inline constexpr uint64_t kTickNs = 10'000'000;
inline constexpr uint64_t kClockStartNs = 1'000'000'000;

// Results of the PCR check, as the header and set_pcr encode them (+1).
enum class PcrResult : uint8_t { kOk = 0, kMismatch = 1, kUnavailable = 2 };

struct ProgramOptions {
  size_t reorder_window = 64;  // 1..64
  uint8_t wait_ticks = 0;      // checkpoint_wait_ns in 10 ms steps
  std::optional<PcrResult> pcr;
  uint8_t max_interval_records = 0;  // 0: the verifier's default
  uint8_t max_claims_per_seq = 0;    // 0: the verifier's default
  uint8_t started_after_seq = 0;
};

// Builds programs (the seed generator's side).
class ProgramWriter {
 public:
  // A program starting from the start anchor of instance `instance_byte`.
  ProgramWriter(const ProgramOptions& o, uint8_t instance_byte) {
    Header(o, 0, instance_byte);
  }
  // A program resuming from `anchor` (a restart).
  ProgramWriter(const ProgramOptions& o, const verify::Anchor& anchor) {
    Header(o, anchor.key ? kExplicitAnchorWithKey : kExplicitAnchor, 0);
    Put(anchor.instance_id);
    U64(anchor.last_seq);
    Put(anchor.chain_head);
    Put(anchor.checkpoint_digest);
    U64(anchor.checkpoint_log_seq);
    U64(anchor.drops_total);
    U64(anchor.busy_total);
    U64(anchor.log_refused);
    if (anchor.key) {
      bytes_.insert(bytes_.end(), anchor.key->x, anchor.key->x + sizeof(anchor.key->x));
      bytes_.insert(bytes_.end(), anchor.key->y, anchor.key->y + sizeof(anchor.key->y));
    }
  }

  ProgramWriter& Event(const records::Record& r) { return Rec(VerifierOp::kEvent, r); }
  ProgramWriter& Log(const records::Record& r) { return Rec(VerifierOp::kLog, r); }
  ProgramWriter& Recovered(const records::Record& r) { return Rec(VerifierOp::kRecovered, r); }
  ProgramWriter& Events(const std::vector<records::Record>& rs) {
    for (const records::Record& r : rs) Event(r);
    return *this;
  }
  ProgramWriter& Logs(const std::vector<records::Record>& rs) {
    for (const records::Record& r : rs) Log(r);
    return *this;
  }
  ProgramWriter& Tick(uint8_t steps) {
    Op(VerifierOp::kTick);
    bytes_.push_back(steps);
    return *this;
  }
  ProgramWriter& LogError() { return Op(VerifierOp::kLogError); }
  ProgramWriter& Finish() { return Op(VerifierOp::kFinish); }
  ProgramWriter& Take() { return Op(VerifierOp::kTake); }
  ProgramWriter& Repeat(uint8_t k, bool as_log) {
    Op(VerifierOp::kRepeat, as_log ? kAsLog : 0);
    bytes_.push_back(k);
    return *this;
  }
  ProgramWriter& Flip(uint8_t k, uint16_t offset, uint8_t mask, bool as_log) {
    Op(VerifierOp::kFlip, as_log ? kAsLog : 0);
    bytes_.push_back(k);
    U16(offset);
    bytes_.push_back(mask);
    return *this;
  }
  ProgramWriter& SetPcr(PcrResult r) {
    Op(VerifierOp::kSetPcr);
    bytes_.push_back(static_cast<uint8_t>(static_cast<uint8_t>(r) + 1));
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  void Header(const ProgramOptions& o, uint8_t anchor_kind, uint8_t instance_byte) {
    bytes_.push_back(static_cast<uint8_t>((o.reorder_window - 1) % 64));
    bytes_.push_back(o.wait_ticks);
    bytes_.push_back(o.pcr ? static_cast<uint8_t>(static_cast<uint8_t>(*o.pcr) + 1) : 0);
    bytes_.push_back(o.max_interval_records);
    bytes_.push_back(anchor_kind);
    bytes_.push_back(instance_byte);
    bytes_.push_back(o.max_claims_per_seq);
    bytes_.push_back(o.started_after_seq);
  }
  ProgramWriter& Op(VerifierOp op, uint8_t flags = 0) {
    bytes_.push_back(static_cast<uint8_t>(static_cast<uint8_t>(op) | flags));
    return *this;
  }
  ProgramWriter& Rec(VerifierOp op, const records::Record& r) {
    Op(op);
    U16(static_cast<uint16_t>(r.bytes().size()));
    bytes_.insert(bytes_.end(), r.bytes().begin(), r.bytes().end());
    return *this;
  }
  template <size_t N>
  void Put(const std::array<uint8_t, N>& a) {
    bytes_.insert(bytes_.end(), a.begin(), a.end());
  }
  void U16(uint16_t v) {
    bytes_.push_back(static_cast<uint8_t>(v));
    bytes_.push_back(static_cast<uint8_t>(v >> 8));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }

  std::vector<uint8_t> bytes_;
};

// What a run produced (for the seed generator's checks).
struct ProgramResult {
  std::vector<verify::CheckpointVerdict> verdicts;
  std::vector<verify::Finding> findings;
  verify::Anchor anchor;
  std::vector<records::Record> open_events;  // after the program, before Finish
  size_t ops = 0;
};

// Runs one program; aborts with a message on an invariant violation.
class ProgramRunner {
 public:
  ProgramResult Run(std::span<const uint8_t> input) {
    in_ = input;
    ProgramResult result;
    const std::optional<std::pair<verify::Anchor, verify::VerifierOptions>> setup = Setup();
    if (!setup) return result;
    verifier_ = std::make_unique<verify::StreamVerifier>(setup->first, setup->second);
    CheckAnchor();
    while (!in_.empty() && result.ops < kMaxOps) {
      if (!Step(result)) break;
      ++result.ops;
    }
    result.open_events = verifier_->OpenEvents();
    verifier_->Finish();
    Take(result);
    result.anchor = verifier_->anchor();
    return result;
  }

 private:
  [[noreturn]] static void Violation(const std::string& what) {
    std::fprintf(stderr, "verifier_fuzz: invariant violated: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
  }

  bool Read(size_t n, std::span<const uint8_t>& out) {
    if (in_.size() < n) return false;
    out = in_.first(n);
    in_ = in_.subspan(n);
    return true;
  }
  std::optional<uint8_t> U8() {
    std::span<const uint8_t> b;
    if (!Read(1, b)) return std::nullopt;
    return b[0];
  }
  std::optional<uint16_t> U16() {
    std::span<const uint8_t> b;
    if (!Read(2, b)) return std::nullopt;
    return static_cast<uint16_t>(b[0] | (b[1] << 8));
  }
  std::optional<uint64_t> U64() {
    std::span<const uint8_t> b;
    if (!Read(8, b)) return std::nullopt;
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | b[static_cast<size_t>(i)];
    return v;
  }
  template <size_t N>
  bool Array(std::array<uint8_t, N>& out) {
    std::span<const uint8_t> b;
    if (!Read(N, b)) return false;
    std::memcpy(out.data(), b.data(), N);
    return true;
  }

  std::optional<std::pair<verify::Anchor, verify::VerifierOptions>> Setup() {
    std::span<const uint8_t> h;
    if (!Read(kHeaderSize, h)) return std::nullopt;
    verify::VerifierOptions options;
    options.reorder_window = 1 + h[0] % 64;
    options.checkpoint_wait_ns = h[1] * kTickNs;
    if (h[3] != 0) options.max_interval_records = h[3];
    if (h[6] != 0) options.max_claims_per_seq = h[6];
    options.started_after_seq = h[7];
    if (h[2] != 0) {
      pcr_ = static_cast<PcrResult>((h[2] - 1) % 3);
      options.pcr_check = [this](const std::vector<records::Record>& log) {
        if (log.empty()) Violation("PCR check without a log record");
        ++pcr_calls_;
        switch (*pcr_) {
          case PcrResult::kOk:
            return Status::Ok();
          case PcrResult::kMismatch:
            return Status::Error(ErrorCode::kMismatch, "fuzz: PCR holds another value");
          case PcrResult::kUnavailable:
            break;
        }
        return Status::Error(ErrorCode::kUnavailable, "fuzz: TPM unavailable");
      };
    }
    verify::Anchor anchor;
    if (h[4] == kExplicitAnchor || h[4] == kExplicitAnchorWithKey) {
      std::optional<uint64_t> last, cp_log, drops, busy, refused;
      if (!Array(anchor.instance_id) || !(last = U64()) || !Array(anchor.chain_head) ||
          !Array(anchor.checkpoint_digest) || !(cp_log = U64()) || !(drops = U64()) ||
          !(busy = U64()) || !(refused = U64())) {
        return std::nullopt;
      }
      anchor.last_seq = *last;
      anchor.checkpoint_log_seq = *cp_log;
      anchor.drops_total = *drops;
      anchor.busy_total = *busy;
      anchor.log_refused = *refused;
      if (h[4] == kExplicitAnchorWithKey) {
        std::array<uint8_t, sizeof(crypto::EcPoint)> key;
        if (!Array(key)) return std::nullopt;
        anchor.key.emplace();
        std::memcpy(&*anchor.key, key.data(), key.size());
      }
    } else {
      anchor.instance_id.fill(h[5]);
      const Result<chain::Sha256Digest> head = chain::InitialChain(anchor.instance_id);
      if (!head.ok()) Violation("InitialChain failed");
      anchor.chain_head = *head;
    }
    anchor_last_seq_ = anchor.last_seq;
    return std::make_pair(anchor, std::move(options));
  }

  std::optional<records::Record> Operand() {
    const std::optional<uint16_t> len = U16();
    std::span<const uint8_t> b;
    if (!len || !Read(*len, b)) {
      in_ = {};  // the input ends inside the operand: so does the program
      return std::nullopt;
    }
    Result<records::Record> rec = records::Record::Decode(b);
    if (!rec.ok()) {
      if (rec.status().ok()) Violation("a refused record without an error code");
      return std::nullopt;
    }
    Remember(*rec);
    return std::move(rec).value();
  }

  void Remember(const records::Record& rec) {
    if (history_.size() == kHistorySize) history_.erase(history_.begin());
    history_.push_back(rec);
  }
  const records::Record* Recent(uint8_t k) const {
    if (history_.empty()) return nullptr;
    return &history_[history_.size() - 1 - k % history_.size()];
  }

  // Every event fed, by seq: OpenEvents may only return these bytes.
  void NoteEvent(const records::Record& ev) {
    if (!ev.committed() || !records::IsEvent(ev.type()) || ev.seq() == 0) return;
    auto& copies = fed_[ev.seq()];
    for (const auto& c : copies) {
      if (std::ranges::equal(c, ev.bytes())) return;
    }
    copies.emplace_back(ev.bytes().begin(), ev.bytes().end());
  }

  void Feed(VerifierOp op, records::Record rec) {
    switch (op) {
      case VerifierOp::kLog:
        if (rec.type() == VIGIL_LOG_EVENT) {
          Result<records::Record> ev = records::EventFromLogCopy(rec);
          if (ev.ok()) NoteEvent(*ev);
        }
        verifier_->AddLog(std::move(rec));
        break;
      case VerifierOp::kRecovered:
        NoteEvent(rec);
        verifier_->AddRecoveredEvent(std::move(rec));
        break;
      default:
        NoteEvent(rec);
        verifier_->AddEvent(std::move(rec));
        break;
    }
    CheckCounters();
  }

  bool Step(ProgramResult& result) {
    const uint8_t byte = *U8();
    const auto op = static_cast<VerifierOp>((byte & 0x0f) % kOpCount);
    const bool as_log = (byte & kAsLog) != 0;
    switch (op) {
      case VerifierOp::kEvent:
      case VerifierOp::kLog:
      case VerifierOp::kRecovered: {
        std::optional<records::Record> rec = Operand();
        if (rec) Feed(op, std::move(*rec));
        return true;
      }
      case VerifierOp::kTick: {
        const std::optional<uint8_t> steps = U8();
        if (!steps) return false;
        now_ns_ += *steps * kTickNs;
        verifier_->Tick(now_ns_);
        CheckCounters();
        return true;
      }
      case VerifierOp::kLogError:
        verifier_->LogError("fuzz: the log stream broke here");
        CheckCounters();
        return true;
      case VerifierOp::kFinish:
        verifier_->Finish();
        CheckCounters();
        return true;
      case VerifierOp::kTake:
        Take(result);
        return true;
      case VerifierOp::kRepeat: {
        const std::optional<uint8_t> k = U8();
        if (!k) return false;
        if (const records::Record* r = Recent(*k)) {
          Feed(as_log ? VerifierOp::kLog : VerifierOp::kEvent, *r);
        }
        return true;
      }
      case VerifierOp::kFlip: {
        const std::optional<uint8_t> k = U8();
        const std::optional<uint16_t> offset = U16();
        const std::optional<uint8_t> mask = U8();
        if (!k || !offset || !mask) return false;
        const records::Record* r = Recent(*k);
        if (!r) return true;
        std::vector<uint8_t> bytes(r->bytes().begin(), r->bytes().end());
        bytes[*offset % bytes.size()] ^= *mask == 0 ? 1 : *mask;
        Result<records::Record> flipped = records::Record::Decode(bytes);
        if (flipped.ok()) Feed(as_log ? VerifierOp::kLog : VerifierOp::kEvent, *flipped);
        return true;
      }
      case VerifierOp::kSetPcr: {
        const std::optional<uint8_t> r = U8();
        if (!r) return false;
        pcr_ = static_cast<PcrResult>((*r + 2) % 3);  // (r - 1) mod 3
        return true;
      }
    }
    return false;
  }

  void CheckCounters() {
    const verify::VerifierCounters& c = verifier_->counters();
    uint64_t sum = 0;
    for (uint64_t n : c.verdicts) sum += n;
    if (sum < taken_) Violation("counters.verdicts went below the verdicts taken");
    if (c.chained > c.events) {
      Violation("more events chained (" + std::to_string(c.chained) + ") than received (" +
                std::to_string(c.events) + ")");
    }
    if (c.redelivered > c.recovered) Violation("more redelivered than recovered events");
    CheckAnchor();
  }

  void CheckAnchor() {
    const uint64_t last = verifier_->anchor().last_seq;
    if (last < anchor_last_seq_) Violation("the anchor moved backwards");
    anchor_last_seq_ = last;
  }

  static void CheckVerdict(const verify::CheckpointVerdict& v, bool pcr_configured) {
    using verify::Verdict;
    if (v.first_seq > v.last_seq && v.first_seq - v.last_seq != 1) {
      Violation("verdict range " + std::to_string(v.first_seq) + ".." +
                std::to_string(v.last_seq) + " runs backwards (" +
                std::string(verify::VerdictName(v.verdict)) + ": " + v.reason + ")");
    }
    if (v.reason.empty()) Violation("a verdict without a reason");
    if (v.verdict == Verdict::kVerified) {
      if (!v.chain_checked || !v.signature_checked) {
        Violation("verified without chain_checked and signature_checked: " + v.reason);
      }
      if (!v.missing.empty() || v.bad_seq || v.new_drops || v.new_busy || v.new_log_refused) {
        Violation("verified with missing events, a bad seq or attested loss: " + v.reason);
      }
    }
    if (v.verdict == Verdict::kVerified && !v.pcr_checked) {
      Violation("verified without the anchor checked: " + v.reason);
    }
    if (v.verdict == Verdict::kSigned &&
        (!v.chain_checked || !v.signature_checked || v.pcr_checked)) {
      Violation("signed needs chain and signature checked, and the anchor not: " + v.reason);
    }
    if (v.pcr_checked && (!v.signature_checked || !pcr_configured)) {
      Violation("pcr_checked without a verified signature and a PCR check");
    }
    // The chain cannot be recomputed across a gap.
    if (!v.missing.empty() && v.chain_checked) Violation("chain_checked over missing events");
    if (v.verdict != Verdict::kTampered && v.bad_seq) {
      Violation("bad_seq outside a tampered verdict");
    }
    uint64_t prev_last = 0;
    for (size_t i = 0; i < v.missing.size(); ++i) {
      const verify::SeqRange& r = v.missing[i];
      if (r.first > r.last || r.first < v.first_seq || r.last > v.last_seq ||
          (i > 0 && r.first <= prev_last)) {
        Violation("missing ranges outside the verdict's range or out of order");
      }
      prev_last = r.last;
    }
    if (v.first_seq <= v.last_seq && v.events > v.last_seq - v.first_seq + 1) {
      Violation("more events than the range holds");
    }
  }

  void CheckOpenEvents(const std::vector<records::Record>& open) const {
    const uint64_t anchor_seq = verifier_->anchor().last_seq;
    uint64_t prev = 0;
    for (const records::Record& r : open) {
      if (!r.committed() || !records::IsEvent(r.type()) || r.seq() <= anchor_seq) {
        Violation("OpenEvents returned a record that is not an open committed event");
      }
      if (r.seq() < prev) Violation("OpenEvents not in seq order");
      prev = r.seq();
      auto it = fed_.find(r.seq());
      bool known = false;
      if (it != fed_.end()) {
        for (const auto& c : it->second) {
          known = known || (c.size() == r.bytes().size() &&
                            std::memcmp(c.data(), r.bytes().data(), c.size()) == 0);
        }
      }
      if (!known) {
        Violation("OpenEvents returned bytes never fed for seq " + std::to_string(r.seq()));
      }
    }
  }

  void Take(ProgramResult& result) {
    std::vector<verify::CheckpointVerdict> verdicts = verifier_->TakeVerdicts();
    taken_ += verdicts.size();
    for (const verify::CheckpointVerdict& v : verdicts) CheckVerdict(v, pcr_.has_value());
    const verify::VerifierCounters& c = verifier_->counters();
    uint64_t sum = 0;
    for (uint64_t n : c.verdicts) sum += n;
    if (sum != taken_) {
      Violation("counters.verdicts sum " + std::to_string(sum) + " != " +
                std::to_string(taken_) + " verdicts taken");
    }
    std::vector<verify::Finding> findings = verifier_->TakeFindings();
    if (verifier_->has_output()) Violation("output left after taking it");
    for (const verify::Finding& f : findings) {
      if (f.reason.empty()) Violation("a finding without a reason");
    }
    CheckOpenEvents(verifier_->OpenEvents());
    CheckCounters();
    if (result.verdicts.size() < 256) {
      result.verdicts.insert(result.verdicts.end(), verdicts.begin(), verdicts.end());
    }
    if (result.findings.size() < 256) {
      result.findings.insert(result.findings.end(), findings.begin(), findings.end());
    }
  }

  std::span<const uint8_t> in_;
  std::unique_ptr<verify::StreamVerifier> verifier_;
  std::optional<PcrResult> pcr_;
  size_t pcr_calls_ = 0;
  uint64_t now_ns_ = kClockStartNs;
  uint64_t taken_ = 0;
  uint64_t anchor_last_seq_ = 0;
  std::vector<records::Record> history_;
  std::map<uint64_t, std::vector<std::vector<uint8_t>>> fed_;
};

}  // namespace vigil::fuzz

#endif  // VIGIL_TESTS_FUZZ_VERIFIER_PROGRAM_H_
