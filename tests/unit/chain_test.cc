// Chain recomputation and checkpoint verification, including tampering.
// The expected values come from an independent model of the module's rules
// (one-shot EVP_Digest, not the library's code path) and a Python-computed
// known answer for chain_0.
#include "vigil/chain.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "test_records.h"
#include "vigil/digest.h"
#include "vigil/offline.h"

namespace vigil {
namespace {

using chain::InstanceId;
using crypto::Sha256Digest;

Sha256Digest RefSha256(const std::vector<uint8_t>& data) {
  Sha256Digest out{};
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr), 1);
  return out;
}

// What the module does: assign seq, set COMMITTED, fold the bytes.
class ModuleModel {
 public:
  explicit ModuleModel(const InstanceId& id) : id_(id) {
    std::vector<uint8_t> seed(chain::kChainLabel.begin(), chain::kChainLabel.end());
    seed.insert(seed.end(), id.begin(), id.end());
    head_ = RefSha256(seed);
  }

  template <typename T>
  records::Record Commit(T ev) {
    ev.hdr.seq = ++seq_;
    ev.hdr.flags |= VIGIL_REC_F_COMMITTED;
    std::vector<uint8_t> buf(head_.begin(), head_.end());
    const auto* p = reinterpret_cast<const uint8_t*>(&ev);
    buf.insert(buf.end(), p, p + sizeof(T));
    head_ = RefSha256(buf);
    return testing::ToRecord(ev);
  }

  records::Record Checkpoint(uint64_t log_seq) {
    auto cp = testing::Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, log_seq);
    cp.first_seq = last_cp_seq_ + 1;
    cp.last_seq = seq_;
    cp.reason = VIGIL_CP_EVENTS;
    cp.anchor = VIGIL_ANCHOR_PCR;
    std::memcpy(cp.chain_head, head_.data(), 32);
    std::memcpy(cp.prev_digest, prev_digest_.data(), 32);
    std::memcpy(cp.instance_id, id_.data(), id_.size());
    const auto* p = reinterpret_cast<const uint8_t*>(&cp);
    prev_digest_ = RefSha256(std::vector<uint8_t>(p, p + sizeof(cp)));
    last_cp_seq_ = seq_;
    return testing::ToRecord(cp);
  }

  const Sha256Digest& head() const { return head_; }
  uint64_t seq() const { return seq_; }

 private:
  InstanceId id_;
  Sha256Digest head_;
  Sha256Digest prev_digest_{};
  uint64_t seq_ = 0;
  uint64_t last_cp_seq_ = 0;
};

InstanceId TestId() {
  InstanceId id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(i);
  return id;
}

std::vector<records::Record> MakeEvents(ModuleModel& m, int n) {
  std::vector<records::Record> out;
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      out.push_back(m.Commit(testing::MakeExec(0, 100 + i, "job", "/usr/bin/job")));
    } else {
      out.push_back(m.Commit(testing::MakeExit(0, 100 + i, i, 0)));
    }
  }
  return out;
}

records::Record Tampered(const records::Record& rec, size_t offset, uint8_t xor_mask) {
  std::vector<uint8_t> bytes(rec.bytes().begin(), rec.bytes().end());
  bytes[offset] ^= xor_mask;
  auto r = records::Record::Decode(bytes);
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

TEST(Chain, InitialValueKnownAnswer) {
  auto c0 = chain::InitialChain(TestId());
  ASSERT_TRUE(c0.ok());
  EXPECT_EQ(crypto::ToHex(*c0), "6043e45cc70769cc5ef79a3b3982627fa523c888782103452fbe559fef8346fa");
}

TEST(Chain, RecomputesModuleHeadFromShuffledEvents) {
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 25);
  std::mt19937 rng(42);
  std::shuffle(events.begin(), events.end(), rng);  // ring order != commit order
  auto summary = chain::RecomputeChain(TestId(), events);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->head, m.head());
  EXPECT_EQ(summary->first_seq, 1u);
  EXPECT_EQ(summary->last_seq, 25u);
  EXPECT_EQ(summary->events, 25u);
}

TEST(Chain, EmptyChainIsChainZero) {
  auto summary = chain::RecomputeChain(TestId(), {});
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->head, *chain::InitialChain(TestId()));
  EXPECT_EQ(summary->last_seq, 0u);
}

TEST(Chain, TamperedByteChangesHead) {
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 6);
  events[3] = Tampered(events[3], offsetof(vigil_ev_exit, exit_code), 0x01);
  auto summary = chain::RecomputeChain(TestId(), events);
  ASSERT_TRUE(summary.ok());
  EXPECT_NE(summary->head, m.head());
}

TEST(Chain, WrongInstanceIdChangesHead) {
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 3);
  InstanceId other = TestId();
  other[0] ^= 1;
  auto summary = chain::RecomputeChain(other, events);
  ASSERT_TRUE(summary.ok());
  EXPECT_NE(summary->head, m.head());
}

TEST(Chain, MissingEventIsAGap) {
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 5);
  events.erase(events.begin() + 2);
  auto summary = chain::RecomputeChain(TestId(), events);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), ErrorCode::kMismatch);
  EXPECT_NE(summary.status().message().find("expected 3"), std::string::npos)
      << summary.status().message();
}

TEST(Chain, MissingFirstEventIsAGap) {
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 3);
  events.erase(events.begin());
  EXPECT_FALSE(chain::RecomputeChain(TestId(), events).ok());
}

TEST(Chain, DuplicateSeqIsRejected) {
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 3);
  events.push_back(events[1]);
  auto summary = chain::RecomputeChain(TestId(), events);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), ErrorCode::kMismatch);
}

TEST(Chain, SwappedSeqNumbersBreakTheChain) {
  // An attacker reorders history by swapping the seq fields of two events.
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 4);
  std::vector<uint8_t> a(events[1].bytes().begin(), events[1].bytes().end());
  std::vector<uint8_t> b(events[2].bytes().begin(), events[2].bytes().end());
  std::swap_ranges(a.begin() + 8, a.begin() + 16, b.begin() + 8);
  events[1] = *records::Record::Decode(a);
  events[2] = *records::Record::Decode(b);
  auto summary = chain::RecomputeChain(TestId(), events);
  ASSERT_TRUE(summary.ok());
  EXPECT_NE(summary->head, m.head());
}

TEST(Chain, UncommittedEventIsRejected) {
  auto ev = testing::MakeExec(1, 1, "a", "/a");
  ev.hdr.flags = VIGIL_REC_F_NO_MODULE;
  auto verifier = chain::ChainVerifier::Start(TestId());
  ASSERT_TRUE(verifier.ok());
  Status st = verifier->Append(testing::ToRecord(ev));
  EXPECT_EQ(st.code(), ErrorCode::kMismatch);
  EXPECT_EQ(verifier->last_seq(), 0u) << "a rejected event must not move the chain";
}

TEST(Chain, LogRecordIsNotAnEvent) {
  auto verifier = chain::ChainVerifier::Start(TestId());
  ASSERT_TRUE(verifier.ok());
  Status st = verifier->Append(testing::ToRecord(testing::MakeMeasure(1, 16, "x")));
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
}

TEST(Chain, ResumeFromKnownHead) {
  ModuleModel m(TestId());
  auto first = MakeEvents(m, 4);
  const Sha256Digest mid = m.head();
  auto rest = MakeEvents(m, 3);
  auto verifier = chain::ChainVerifier::Resume(mid, 4);
  for (const auto& ev : rest) ASSERT_TRUE(verifier.Append(ev).ok());
  EXPECT_EQ(verifier.head(), m.head());
  EXPECT_EQ(verifier.last_seq(), 7u);
}

struct CheckpointedLog {
  std::vector<records::Record> log;
  std::vector<records::Record> events;
  size_t cp1 = 0;
  size_t cp2 = 0;
};

CheckpointedLog MakeCheckpointedLog() {
  ModuleModel m(TestId());
  CheckpointedLog out;
  out.log.push_back(testing::ToRecord(testing::MakeMeasure(1, 16, "module")));
  auto e1 = MakeEvents(m, 5);
  out.cp1 = out.log.size();
  out.log.push_back(m.Checkpoint(2));
  auto e2 = MakeEvents(m, 4);
  out.cp2 = out.log.size();
  out.log.push_back(m.Checkpoint(3));
  out.events = e1;
  out.events.insert(out.events.end(), e2.begin(), e2.end());
  return out;
}

records::Record WithCheckpoint(const records::Record& rec, void (*edit)(vigil_log_checkpoint&)) {
  auto cp = *rec.As<vigil_log_checkpoint>();
  edit(cp);
  return testing::ToRecord(cp);
}

// The checkpoint rules run through the one engine (vigil::verify, reached
// offline through VerifyOffline). ModuleModel's checkpoints carry no
// signature record, so the key source says "no key" and unsigned
// checkpoints are accepted: these tests are about the chain and the links.
Result<verify::OfflineReport> Verify(const std::vector<records::Record>& log,
                                     std::vector<records::Record> events,
                                     const InstanceId& id = TestId(), uint64_t start_seq = 0,
                                     std::optional<Sha256Digest> start_head = std::nullopt) {
  verify::OfflineOptions opt;
  opt.instance_id = id;
  opt.accept_unsigned = true;
  opt.start_seq = start_seq;
  opt.start_head = start_head;
  return verify::VerifyOffline(opt, std::move(events), log);
}

TEST(Checkpoints, ValidLogVerifies) {
  auto l = MakeCheckpointedLog();
  auto r = Verify(l.log, l.events);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, verify::Outcome::kVerified) << r->summary;
  ASSERT_EQ(r->verdicts.size(), 2u);
  EXPECT_TRUE(r->verdicts[1].chain_checked);
  EXPECT_EQ(r->covered_seq, 9u);
  // Without accepting unsigned checkpoints the same log is unsigned.
  verify::OfflineOptions strict;
  strict.instance_id = TestId();
  auto u = verify::VerifyOffline(strict, l.events, l.log);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->outcome, verify::Outcome::kUnsigned) << u->summary;
}

TEST(Checkpoints, EmptyCheckpointVerifies) {
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 2);
  std::vector<records::Record> log = {m.Checkpoint(1), m.Checkpoint(2)};  // second: no events
  auto r = Verify(log, events);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, verify::Outcome::kVerified) << r->summary;
  EXPECT_EQ(r->verdicts.size(), 2u);
}

TEST(Checkpoints, TamperedEventFails) {
  auto l = MakeCheckpointedLog();
  l.events[6] = Tampered(l.events[6], 40, 0x80);
  auto r = Verify(l.log, l.events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
  EXPECT_TRUE(r->verdicts[0].chain_checked);  // unsigned (no key), chain intact
  EXPECT_EQ(r->verdicts[1].verdict, verify::Verdict::kTampered);
}

TEST(Checkpoints, DroppedEventIsLoss) {
  auto l = MakeCheckpointedLog();
  l.events.erase(l.events.begin() + 8);  // seq 9, inside the second batch
  auto r = Verify(l.log, l.events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kLoss) << r->summary;
  ASSERT_EQ(r->verdicts.size(), 2u);
  EXPECT_EQ(r->verdicts[1].missing, (std::vector<verify::SeqRange>{{9, 9}}));
}

TEST(Checkpoints, TamperedChainHeadFails) {
  auto l = MakeCheckpointedLog();
  l.log[l.cp2] =
      WithCheckpoint(l.log[l.cp2], [](vigil_log_checkpoint& cp) { cp.chain_head[0] ^= 1; });
  auto r = Verify(l.log, l.events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
}

TEST(Checkpoints, EditedEarlierCheckpointBreaksTheLink) {
  // Rewriting a closed batch's record (even a counter) breaks prev_digest.
  auto l = MakeCheckpointedLog();
  l.log[l.cp1] = WithCheckpoint(l.log[l.cp1], [](vigil_log_checkpoint& cp) {
    cp.drops_total = 0;
    cp.busy_total = 1;
  });
  auto r = Verify(l.log, l.events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
  EXPECT_NE(r->summary.find("prev_digest"), std::string::npos) << r->summary;
}

TEST(Checkpoints, RemovedCheckpointIsTampered) {
  // Its events can never be judged (the next checkpoint says loss), and a
  // record missing from the middle of the log is tampering.
  auto l = MakeCheckpointedLog();
  l.log.erase(l.log.begin() + static_cast<long>(l.cp1));
  auto r = Verify(l.log, l.events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
  EXPECT_NE(r->summary.find("missing from the log stream"), std::string::npos) << r->summary;
  ASSERT_EQ(r->verdicts.size(), 1u);
  EXPECT_EQ(r->verdicts[0].verdict, verify::Verdict::kLoss) << r->verdicts[0].reason;
}

TEST(Checkpoints, WrongInstanceFails) {
  auto l = MakeCheckpointedLog();
  InstanceId other = TestId();
  other[15] ^= 0xff;
  auto r = Verify(l.log, l.events, other);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
  EXPECT_NE(r->summary.find("another module instance"), std::string::npos) << r->summary;
}

TEST(Checkpoints, SeqRangeMustContinue) {
  auto l = MakeCheckpointedLog();
  l.log[l.cp1] = WithCheckpoint(l.log[l.cp1], [](vigil_log_checkpoint& cp) { cp.first_seq = 2; });
  auto r = Verify(l.log, l.events);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
  EXPECT_NE(r->verdicts.at(0).verdict, verify::Verdict::kVerified);
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(EventRange, WindowAfterACheckpointChecksCheckpointsInside) {
  ModuleModel m(TestId());
  auto before = MakeEvents(m, 3);  // committed before the collector attached
  const Sha256Digest start = m.head();
  std::vector<records::Record> log;
  log.push_back(m.Checkpoint(1));  // ends exactly at the start state
  auto window = MakeEvents(m, 4);
  log.push_back(m.Checkpoint(2));  // inside the window
  auto tail = MakeEvents(m, 2);
  window.insert(window.end(), tail.begin(), tail.end());
  std::reverse(window.begin(), window.end());
  auto r = Verify(log, window, TestId(), 3, start);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // The start checkpoint is not judged again; the one inside is; the tail
  // has no checkpoint yet.
  ASSERT_EQ(r->verdicts.size(), 1u);
  EXPECT_EQ(r->verdicts[0].verdict, verify::Verdict::kUnsigned);
  EXPECT_TRUE(r->verdicts[0].chain_checked);
  EXPECT_EQ(r->covered_seq, 7u);
  EXPECT_EQ(r->last_event_seq, 9u);
  EXPECT_EQ(r->outcome, verify::Outcome::kIncomplete) << r->summary;
}

TEST(EventRange, ForgedEventInWindowContradictsCheckpoint) {
  ModuleModel m(TestId());
  MakeEvents(m, 2);
  std::vector<records::Record> log = {m.Checkpoint(1)};
  auto window = MakeEvents(m, 3);
  log.push_back(m.Checkpoint(2));
  window[1] = Tampered(window[1], offsetof(vigil_ev_exit, exit_code), 0x10);
  auto r = Verify(log, window, TestId(), 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
}

TEST(EventRange, WrongStartStateIsTampered) {
  ModuleModel m(TestId());
  MakeEvents(m, 2);
  std::vector<records::Record> log = {m.Checkpoint(1)};
  auto window = MakeEvents(m, 1);
  Sha256Digest wrong = m.head();
  wrong[0] ^= 1;
  auto r = Verify(log, window, TestId(), 2, wrong);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kTampered) << r->summary;
  // A start that names no checkpoint is an error, not a verdict.
  EXPECT_FALSE(Verify(log, window, TestId(), 1).ok());
}

TEST(EventRange, GapInWindowIsLoss) {
  ModuleModel m(TestId());
  auto window = MakeEvents(m, 3);
  std::vector<records::Record> log = {m.Checkpoint(1)};
  window.erase(window.begin() + 1);
  auto r = Verify(log, window);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, verify::Outcome::kLoss) << r->summary;
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(Checkpoints, LossCountersNeverDecrease) {
  // Two correctly linked checkpoints where only drops_total goes 5 -> 4.
  ModuleModel m(TestId());
  auto events = MakeEvents(m, 1);
  auto first = *m.Checkpoint(1).As<vigil_log_checkpoint>();
  first.drops_total = 5;
  std::vector<records::Record> log = {testing::ToRecord(first)};
  auto second = testing::Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, 2);
  second.first_seq = 2;
  second.last_seq = 1;  // an empty batch
  second.drops_total = 4;
  std::memcpy(second.chain_head, m.head().data(), 32);
  std::memcpy(second.instance_id, TestId().data(), 16);
  const Sha256Digest link =
      RefSha256(std::vector<uint8_t>(log[0].bytes().begin(), log[0].bytes().end()));
  std::memcpy(second.prev_digest, link.data(), 32);
  log.push_back(testing::ToRecord(second));
  auto r = Verify(log, events);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->verdicts.size(), 2u);
  EXPECT_EQ(r->verdicts[1].verdict, verify::Verdict::kTampered);
  EXPECT_NE(r->verdicts[1].reason.find("loss counters went down"), std::string::npos)
      << r->verdicts[1].reason;

  second.drops_total = 6;  // a growing counter: one more attested drop
  log[1] = testing::ToRecord(second);
  auto ok = Verify(log, events);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->verdicts.at(1).verdict, verify::Verdict::kLoss);
  EXPECT_EQ(ok->verdicts.at(1).new_drops, 1u);
}

TEST(Records, LogEventCopyYieldsTheChainedUserEvent) {
  auto user = testing::Blank<vigil_ev_user>(VIGIL_EV_USER, 9);
  user.hdr.flags = VIGIL_REC_F_COMMITTED;
  user.kind = 3;
  user.len = 2;
  user.payload[0] = 0xab;
  auto copy = testing::Blank<vigil_log_event>(VIGIL_LOG_EVENT, 40);
  copy.ev = user;
  auto ev = records::EventFromLogCopy(testing::ToRecord(copy));
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  EXPECT_EQ(ev->seq(), 9u);
  EXPECT_TRUE(std::equal(ev->bytes().begin(), ev->bytes().end(),
                         reinterpret_cast<const uint8_t*>(&user)));
  copy.ev.hdr.type = VIGIL_EV_EXEC;  // a copy must hold a user event
  auto bad = records::EventFromLogCopy(testing::ToRecord(copy));
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(records::EventFromLogCopy(testing::ToRecord(user)).ok());
}

}  // namespace
}  // namespace vigil
