// The streaming verifier against a software module (module_sim.h): honest
// streams verify; each tamper case gets its expected verdict.
#include "vigil/verify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "vigil/sim/module_sim.h"
#include "test_records.h"
#include "vigil/replay.h"

namespace vigil {
namespace {

using verify::Finding;
using verify::StreamVerifier;
using verify::Verdict;

struct Harness {
  sim::ModuleSim sim;
  verify::VerifierOptions options;
  std::unique_ptr<StreamVerifier> verifier;
  size_t log_fed = 0;

  // The anchor check passes by default: these tests are about the chain,
  // the links and the signatures. The anchor's own tests set or clear it
  // (PcrCheckOn below replays the simulated module's PCRs for real).
  explicit Harness(size_t window = 64) {
    options.reorder_window = window;
    options.pcr_check = [](const std::vector<records::Record>&) { return Status::Ok(); };
  }
  void Start() { verifier = std::make_unique<StreamVerifier>(sim.StartAnchor(), options); }
  // Feeds the log records not fed yet.
  void FeedLog() {
    for (; log_fed < sim.log().size(); ++log_fed) verifier->AddLog(sim.log()[log_fed]);
  }
  std::vector<records::Record> Commit(int n) {
    std::vector<records::Record> out;
    for (int i = 0; i < n; ++i) out.push_back(sim.Commit());
    return out;
  }
  void Feed(const std::vector<records::Record>& events) {
    for (const auto& e : events) verifier->AddEvent(e);
  }
  std::vector<verify::CheckpointVerdict> Verdicts() { return verifier->TakeVerdicts(); }
};

records::Record FlipByte(const records::Record& rec, size_t offset) {
  std::vector<uint8_t> bytes(rec.bytes().begin(), rec.bytes().end());
  bytes[offset] ^= 0x01;
  return *records::Record::Decode(bytes);
}

TEST(VerifyTest, HonestStreamVerifiesEveryCheckpoint) {
  Harness h;
  int pcr_calls = 0;
  h.options.pcr_check = [&](const std::vector<records::Record>& log) {
    pcr_calls++;
    EXPECT_FALSE(log.empty());
    return Status::Ok();
  };
  h.Start();
  for (int round = 0; round < 3; ++round) {
    h.Feed(h.Commit(10));
    h.sim.Checkpoint();
    h.FeedLog();
  }
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 3u);
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i].verdict, Verdict::kVerified) << v[i].reason;
    EXPECT_TRUE(v[i].chain_checked);
    EXPECT_TRUE(v[i].signature_checked);
    EXPECT_TRUE(v[i].pcr_checked);
    EXPECT_EQ(v[i].events, 10u);
    EXPECT_EQ(v[i].first_seq, i * 10 + 1);
    EXPECT_EQ(v[i].last_seq, i * 10 + 10);
  }
  EXPECT_EQ(pcr_calls, 3);
  EXPECT_EQ(h.verifier->counters().chained, 30u);
  EXPECT_EQ(h.verifier->anchor().last_seq, 30u);
  EXPECT_TRUE(h.verifier->TakeFindings().empty());
}

TEST(VerifyTest, CheckpointBeforeItsEventsWaitsForThem) {
  Harness h;
  h.Start();
  auto events = h.Commit(5);
  h.sim.Checkpoint();
  h.FeedLog();
  EXPECT_TRUE(h.Verdicts().empty());  // events not here yet
  h.Feed(events);
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, ReorderWithinTheWindowVerifies) {
  Harness h(8);
  h.Start();
  auto events = h.Commit(20);
  // Swap neighbours and move one record 6 places later.
  for (size_t i = 0; i + 1 < events.size(); i += 2) std::swap(events[i], events[i + 1]);
  std::rotate(events.begin() + 2, events.begin() + 3, events.begin() + 9);
  h.Feed(events);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, ModifiedByteIsTampered) {
  Harness h;
  h.Start();
  auto events = h.Commit(10);
  events[4] = FlipByte(events[4], 200);  // inside the filename
  h.Feed(events);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  ASSERT_TRUE(v[0].bad_seq.has_value());
  EXPECT_EQ(*v[0].bad_seq, 1u);  // the chain says "somewhere in 1..10"
  EXPECT_NE(v[0].reason.find("chain head"), std::string::npos) << v[0].reason;
  // The signed checkpoint re-anchors the chain: the next one verifies.
  h.Feed(h.Commit(4));
  h.sim.Checkpoint();
  h.FeedLog();
  v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, DroppedRecordIsLossWithTheMissingRange) {
  Harness h;
  h.Start();
  auto events = h.Commit(10);
  events.erase(events.begin() + 6);  // seq 7 never delivered
  h.Feed(events);
  h.sim.Checkpoint();
  h.FeedLog();
  EXPECT_TRUE(h.Verdicts().empty());  // still waiting for seq 7
  h.verifier->Tick(1);
  h.verifier->Tick(1 + h.options.checkpoint_wait_ns);
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kLoss);
  ASSERT_EQ(v[0].missing.size(), 1u);
  EXPECT_EQ(v[0].missing[0], (verify::SeqRange{7, 7}));
  EXPECT_FALSE(v[0].chain_checked);
  EXPECT_EQ(v[0].events, 9u);
  // Re-anchored on the signed checkpoint: the next interval verifies.
  h.Feed(h.Commit(3));
  h.sim.Checkpoint();
  h.FeedLog();
  v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, DuplicateIsTampered) {
  Harness h;
  h.Start();
  auto events = h.Commit(10);
  events.push_back(events[3]);
  h.Feed(events);
  auto findings = h.verifier->TakeFindings();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, Finding::Kind::kDuplicate);
  EXPECT_EQ(findings[0].seq, 4u);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_EQ(v[0].bad_seq, 4u);
}

TEST(VerifyTest, DuplicateStillPendingIsTampered) {
  Harness h;
  h.Start();
  auto events = h.Commit(10);
  // Seq 1 late: 5 and its copy both wait in the reorder buffer.
  h.Feed({events.begin() + 1, events.end()});
  h.verifier->AddEvent(events[4]);
  h.verifier->AddEvent(events[0]);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_EQ(v[0].bad_seq, 5u);
}

TEST(VerifyTest, ReorderBeyondTheWindowIsLossAndLateRecord) {
  Harness h(4);
  h.Start();
  auto events = h.Commit(12);
  records::Record held = events[2];  // seq 3 arrives after 9 later seqs
  events.erase(events.begin() + 2);
  h.Feed(events);
  h.verifier->AddEvent(held);
  auto findings = h.verifier->TakeFindings();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, Finding::Kind::kLateRecord);
  EXPECT_EQ(findings[0].seq, 3u);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kLoss) << v[0].reason;
  ASSERT_EQ(v[0].missing.size(), 1u);
  EXPECT_EQ(v[0].missing[0], (verify::SeqRange{3, 3}));
}

TEST(VerifyTest, ForgedSignatureIsTampered) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(5));
  h.sim.Checkpoint();
  // Replace the signature's s with other bytes.
  std::vector<records::Record> log = h.sim.log();
  auto sig = *log.back().As<vigil_log_signature>();
  sig.s[5] ^= 0x40;
  for (size_t i = 0; i + 1 < log.size(); ++i) h.verifier->AddLog(log[i]);
  h.verifier->AddLog(*records::Record::FromStruct(sig));
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_NE(v[0].reason.find("signature"), std::string::npos) << v[0].reason;
  EXPECT_FALSE(v[0].signature_checked);
}

TEST(VerifyTest, ReplayedOldCheckpointIsTamperedAndTheNextStillVerifies) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(5));
  auto first = h.sim.Checkpoint();
  h.FeedLog();
  ASSERT_EQ(h.Verdicts().at(0).verdict, Verdict::kVerified);
  // The attacker re-inserts the old signed checkpoint and its signature.
  h.verifier->AddLog(first[0]);
  h.verifier->AddLog(first[1]);
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_NE(v[0].reason.find("replayed"), std::string::npos) << v[0].reason;
  h.Feed(h.Commit(5));
  h.sim.Checkpoint();
  h.FeedLog();
  v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, CheckpointOfAnotherBootIsTampered) {
  Harness h;
  sim::ModuleSim other_boot(0x77);
  h.Start();
  for (const auto& r : h.sim.log()) h.verifier->AddLog(r);
  h.log_fed = h.sim.log().size();
  other_boot.Commit();
  auto cp = other_boot.Checkpoint();
  // Renumber its log seqs to continue this log, as an attacker would.
  auto c = *cp[0].As<vigil_log_checkpoint>();
  c.hdr.seq = h.log_fed + 1;
  h.verifier->AddLog(*records::Record::FromStruct(c));
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_NE(v[0].reason.find("another module instance"), std::string::npos) << v[0].reason;
}

TEST(VerifyTest, TruncatedLogIsTampered) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(5));
  h.sim.Checkpoint();
  // The stream ends inside the signature record.
  std::vector<uint8_t> stream;
  for (const auto& r : h.sim.log()) stream.insert(stream.end(), r.bytes().begin(), r.bytes().end());
  stream.resize(stream.size() - 10);
  auto decoded = records::DecodeStream(stream);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), ErrorCode::kTruncated);
  // What a reader got before the cut, then the decode error.
  for (size_t i = 0; i + 1 < h.sim.log().size(); ++i) h.verifier->AddLog(h.sim.log()[i]);
  EXPECT_TRUE(h.Verdicts().empty());  // waiting for the signature
  h.verifier->LogError(decoded.status().message());
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_NE(v[0].reason.find("log:"), std::string::npos) << v[0].reason;
}

TEST(VerifyTest, MissingSignatureAtTheEndIsUnsigned) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(5));
  h.sim.Checkpoint();
  for (size_t i = 0; i + 1 < h.sim.log().size(); ++i) h.verifier->AddLog(h.sim.log()[i]);
  h.verifier->Finish();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kUnsigned);
  EXPECT_TRUE(v[0].chain_checked);
}

TEST(VerifyTest, ForgedRecordBeforeTheGenuineOneIsFlagged) {
  Harness h;
  h.Start();
  auto events = h.Commit(8);
  // The attacker's record claims seq 4 and arrives first.
  records::Record forged = FlipByte(events[3], 250);
  h.Feed({events.begin(), events.begin() + 3});
  h.verifier->AddEvent(forged);
  h.Feed({events.begin() + 3, events.end()});
  auto findings = h.verifier->TakeFindings();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, Finding::Kind::kConflict);
  EXPECT_EQ(findings[0].seq, 4u);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_EQ(v[0].bad_seq, 4u);
  EXPECT_TRUE(v[0].chain_checked);  // resolved: the genuine record matches
  EXPECT_NE(v[0].reason.find("chained first was forged"), std::string::npos) << v[0].reason;
  h.Feed(h.Commit(2));
  h.sim.Checkpoint();
  h.FeedLog();
  v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, ForgedRecordAfterTheGenuineOneIsFlagged) {
  Harness h;
  h.Start();
  auto events = h.Commit(8);
  h.Feed(events);
  h.verifier->AddEvent(FlipByte(events[5], 100));
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_EQ(v[0].bad_seq, 6u);
  EXPECT_NE(v[0].reason.find("confirms the one chained"), std::string::npos) << v[0].reason;
}

TEST(VerifyTest, AttestedDropsAreLoss) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(5));
  h.sim.AddDrops(3);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kLoss);
  EXPECT_EQ(v[0].new_drops, 3u);
  EXPECT_TRUE(v[0].chain_checked);
  EXPECT_TRUE(v[0].missing.empty());
}

TEST(VerifyTest, DegradedModeIsUnsignedAndKeepsChaining) {
  sim::ModuleSim sim(0x5a, /*tpm=*/false);
  StreamVerifier verifier(sim.StartAnchor(), {});
  size_t fed = 0;
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 4; ++k) verifier.AddEvent(sim.Commit());
    sim.Checkpoint(VIGIL_SIG_NO_TPM);
    for (; fed < sim.log().size(); ++fed) verifier.AddLog(sim.log()[fed]);
  }
  auto v = verifier.TakeVerdicts();
  ASSERT_EQ(v.size(), 2u);
  for (const auto& x : v) {
    EXPECT_EQ(x.verdict, Verdict::kUnsigned) << x.reason;
    EXPECT_TRUE(x.chain_checked);
  }
}

TEST(VerifyTest, NoTpmClaimFromAModuleWithAKeyIsTampered) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(3));
  h.sim.Checkpoint(VIGIL_SIG_NO_TPM);
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered) << v[0].reason;
}

// The attacker's checkpoint: right links and range, forged events, signed
// with the attacker's own key.
records::Record ForgedCheckpoint(sim::ModuleSim& honest, sim::ModuleSim& attacker,
                                 const records::Record& prev_cp, uint64_t first, uint64_t last,
                                 uint64_t log_seq, std::optional<records::Record>* sig_out) {
  vigil_log_checkpoint cp;
  std::memset(&cp, 0, sizeof(cp));
  cp.hdr.type = VIGIL_LOG_CHECKPOINT;
  cp.hdr.version = VIGIL_CHECKPOINT_VERSION;
  cp.hdr.size = sizeof(cp);
  cp.hdr.seq = log_seq;
  cp.first_seq = first;
  cp.last_seq = last;
  cp.anchor = VIGIL_ANCHOR_PCR;
  auto prev = *crypto::Sha256({prev_cp.bytes()});
  std::memcpy(cp.prev_digest, prev.data(), 32);
  std::memcpy(cp.instance_id, honest.instance().data(), VIGIL_ID_LEN);
  records::Record rec = *records::Record::FromStruct(cp);
  auto sig = attacker.Sign(rec);
  sig.hdr.seq = log_seq + 1;
  *sig_out = *records::Record::FromStruct(sig);
  return rec;
}

TEST(VerifyTest, ASecondKeyRecordCannotSignForgeries) {
  Harness h;
  sim::ModuleSim attacker(0x11);
  h.Start();
  h.Feed(h.Commit(3));
  auto cp1 = h.sim.Checkpoint();
  h.FeedLog();
  ASSERT_EQ(h.Verdicts().at(0).verdict, Verdict::kVerified);
  // The attacker's KEY, then a checkpoint over made-up events it signed.
  auto key = *attacker.log()[0].As<vigil_log_key>();
  key.hdr.seq = h.sim.NextLogSeq();
  h.verifier->AddLog(*records::Record::FromStruct(key));
  auto findings = h.verifier->TakeFindings();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, Finding::Kind::kKeyMismatch);
  EXPECT_NE(findings[0].reason.find("another key than the trusted one"), std::string::npos);
  std::optional<records::Record> sig;
  auto forged = ForgedCheckpoint(h.sim, attacker, cp1[0], 4, 3, h.sim.NextLogSeq(), &sig);
  h.sim.NextLogSeq();
  h.verifier->AddLog(forged);
  h.verifier->AddLog(*sig);
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_NE(v[0].reason.find("KEY record"), std::string::npos) << v[0].reason;
  // A second forgery after it fails on its signature: the foreign key
  // never signs anything.
  auto forged2 = ForgedCheckpoint(h.sim, attacker, cp1[0], 4, 3, h.sim.NextLogSeq(), &sig);
  h.sim.NextLogSeq();
  h.verifier->AddLog(forged2);
  h.verifier->AddLog(*sig);
  v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_NE(v[0].reason.find("signature"), std::string::npos) << v[0].reason;
}

// Trust rule 6: the key comes from a trusted source, never from the log.
// A whole log made with a software key (its own KEY record first) verified
// against the module's real key is tampered, checkpoint by checkpoint.
TEST(VerifyTest, LogSignedWithItsOwnKeyRecordIsTamperedAgainstTheTrustedKey) {
  sim::ModuleSim honest;
  sim::ModuleSim forger(honest.instance()[0]);  // same instance id, another key
  StreamVerifier verifier(honest.StartAnchor(), {});
  for (int k = 0; k < 3; ++k) verifier.AddEvent(forger.Commit());
  forger.Checkpoint();
  for (const auto& r : forger.log()) verifier.AddLog(r);
  verifier.Finish();
  auto v = verifier.TakeVerdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered) << v[0].reason;
  EXPECT_FALSE(v[0].signature_checked);
  EXPECT_EQ(verifier.counters().key_mismatches, 1u);
}

// With a trusted source saying "no key" (a degraded module's GET_INFO), a
// KEY record in the log is not adopted: its signed checkpoints are
// tampered, not verified.
TEST(VerifyTest, KeyRecordIsNeverAdoptedWhenTheTrustedSourceHasNone) {
  sim::ModuleSim forger;
  verify::Anchor anchor = forger.StartAnchor();
  anchor.key.reset();
  StreamVerifier verifier(anchor, {});
  for (int k = 0; k < 3; ++k) verifier.AddEvent(forger.Commit());
  forger.Checkpoint();
  for (int k = 0; k < 3; ++k) verifier.AddEvent(forger.Commit());
  forger.Checkpoint();
  for (const auto& r : forger.log()) verifier.AddLog(r);
  verifier.Finish();
  auto v = verifier.TakeVerdicts();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered) << v[0].reason;
  EXPECT_NE(v[0].reason.find("trusted source says the module has none"), std::string::npos)
      << v[0].reason;
  EXPECT_NE(v[1].verdict, Verdict::kVerified) << v[1].reason;
  EXPECT_FALSE(v[1].signature_checked);
  EXPECT_FALSE(verifier.has_key());
}

TEST(VerifyTest, MissingCheckpointIsLossAndTheNextVerifies) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(3));
  h.sim.Checkpoint();
  h.FeedLog();
  ASSERT_EQ(h.Verdicts().at(0).verdict, Verdict::kVerified);
  h.Feed(h.Commit(3));
  h.sim.Checkpoint();
  h.log_fed = h.sim.log().size();  // this checkpoint never reaches the verifier (trimmed)
  h.Feed(h.Commit(3));
  h.sim.Checkpoint();
  h.verifier->AddLog(h.sim.log()[h.log_fed]);
  h.verifier->AddLog(h.sim.log()[h.log_fed + 1]);
  h.log_fed += 2;
  auto findings = h.verifier->TakeFindings();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kLoss) << v[0].reason;
  EXPECT_NE(v[0].reason.find("missing from the log"), std::string::npos) << v[0].reason;
  h.Feed(h.Commit(2));
  h.sim.Checkpoint();
  h.FeedLog();
  v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, FloodOfFarFutureSeqsCannotBlindTheVerifier) {
  Harness h(8);
  h.Start();
  auto events = h.Commit(4);
  h.Feed(events);
  for (uint64_t i = 0; i < 100; ++i) {
    auto e = *events[0].As<vigil_ev_exec>();
    e.hdr.seq = 1'000'000'000'000ull + i;
    h.verifier->AddEvent(*records::Record::FromStruct(e));
  }
  EXPECT_GE(h.verifier->counters().far_ahead, 90u);
  h.Feed(h.Commit(4));
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
  EXPECT_LE(h.verifier->OpenEvents().size(), 9u);  // bounded by the window
}

TEST(VerifyTest, ManyClaimsForOneSeqStayBounded) {
  Harness h;
  h.Start();
  auto events = h.Commit(3);
  h.Feed(events);
  for (int i = 0; i < 1000; ++i) {
    auto e = *events[1].As<vigil_ev_exec>();
    e.pid = 5000 + static_cast<uint32_t>(i);
    h.verifier->AddEvent(*records::Record::FromStruct(e));
  }
  EXPECT_LE(h.verifier->OpenEvents().size(), 3u + 3u);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_EQ(v[0].bad_seq, 2u);
}

TEST(VerifyTest, ConflictWithAGapIsStillTampered) {
  Harness h;
  h.Start();
  auto events = h.Commit(8);
  auto forged = FlipByte(events[2], 200);
  events.erase(events.begin() + 6);  // seq 7 lost
  h.Feed(events);
  h.verifier->AddEvent(forged);
  h.sim.Checkpoint();
  h.FeedLog();
  h.verifier->Finish();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered) << v[0].reason;
  EXPECT_EQ(v[0].bad_seq, 3u);
}

TEST(VerifyTest, OverflowingTheIntervalKeepsAMatchedChain) {
  Harness h;
  h.options.max_interval_records = 4;
  h.Start();
  for (int i = 0; i < 3; ++i) {
    h.Feed(h.Commit(6));
    h.sim.Checkpoint();
    h.FeedLog();
  }
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 3u);
  for (const auto& x : v) EXPECT_EQ(x.verdict, Verdict::kVerified) << x.reason;
}

TEST(VerifyTest, SignatureAfterManyLogRecordsStillCounts) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(3));
  auto cp = h.sim.Checkpoint();
  // Records the module logged between the checkpoint and its signature.
  h.verifier->AddLog(h.sim.log()[h.log_fed]);  // KEY
  h.verifier->AddLog(cp[0]);
  for (int i = 0; i < 40; ++i) {
    auto m = testing::MakeMeasure(cp[0].seq() + 1 + static_cast<uint64_t>(i), 11, "x");
    h.verifier->AddLog(testing::ToRecord(m));
  }
  auto sig = *cp[1].As<vigil_log_signature>();
  sig.hdr.seq = cp[0].seq() + 41;
  h.verifier->AddLog(*records::Record::FromStruct(sig));
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
}

TEST(VerifyTest, RestartKeepsTheEvidenceOfAForgery) {
  Harness h;
  h.Start();
  auto events = h.Commit(5);
  h.Feed(events);
  h.verifier->AddEvent(FlipByte(events[2], 100));  // forged after the genuine one
  h.verifier->AddEvent(events[3]);                 // and a replayed copy
  StreamVerifier restarted(h.verifier->anchor(), h.options);
  for (const auto& r : h.sim.log()) restarted.AddLog(r);
  for (const auto& e : h.verifier->OpenEvents()) restarted.AddRecoveredEvent(e);
  size_t fed = h.sim.log().size();
  h.sim.Checkpoint();
  for (; fed < h.sim.log().size(); ++fed) restarted.AddLog(h.sim.log()[fed]);
  auto v = restarted.TakeVerdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered) << v[0].reason;
  EXPECT_EQ(v[0].bad_seq, 3u);
}

TEST(VerifyTest, EventsFromBeforeAFreshStartAreNotFindings) {
  Harness h;
  auto early = h.Commit(4);
  h.sim.Checkpoint();
  const auto cp = *h.sim.log()[1].As<vigil_log_checkpoint>();
  verify::Anchor anchor = h.sim.StartAnchor();
  anchor.last_seq = cp.last_seq;
  std::memcpy(anchor.chain_head.data(), cp.chain_head, 32);
  anchor.checkpoint_digest = *crypto::Sha256({h.sim.log()[1].bytes()});
  anchor.checkpoint_log_seq = h.sim.log()[1].seq();
  h.options.started_after_seq = cp.last_seq;
  StreamVerifier verifier(anchor, h.options);
  for (const auto& e : early) verifier.AddEvent(e);
  EXPECT_TRUE(verifier.TakeFindings().empty());
  EXPECT_EQ(verifier.counters().before_start, 4u);
}

// Without an anchor check (offline, --no-pcr-check) chain and signature
// are all that holds: "signed", never "verified"; the same under anchor=ima
// when only a PCR check is configured.
TEST(VerifyTest, UncheckedAnchorIsSignedNotVerified) {
  Harness h;
  h.options.pcr_check = nullptr;
  h.Start();
  h.Feed(h.Commit(3));
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kSigned) << v[0].reason;
  EXPECT_EQ(VerdictName(v[0].verdict), "signed");
  EXPECT_TRUE(v[0].chain_checked);
  EXPECT_TRUE(v[0].signature_checked);
  EXPECT_FALSE(v[0].pcr_checked);
  EXPECT_NE(v[0].reason.find("anchor not checked"), std::string::npos) << v[0].reason;
}

// Review finding: the checkpoint chose its own anchor check. On an
// anchor=ima module, forged checkpoints signed with a stolen key and naming
// anchor=pcr got "signed" (no PCR check configured), and "verified" with
// --allow-signed. The trusted source's anchor decides; a checkpoint naming
// another is tampered.
TEST(VerifyTest, ACheckpointCannotChooseItsAnchorCheck) {
  Harness h;
  h.options.pcr_check = nullptr;
  int ima_calls = 0;
  h.options.ima_check = [&](const std::vector<records::Record>&) {
    ++ima_calls;
    return Status::Error(ErrorCode::kMismatch, "not in IMA's log");
  };
  h.options.module_anchor = VIGIL_ANCHOR_IMA;
  h.Start();
  h.Feed(h.Commit(3));
  h.sim.Checkpoint();  // says anchor=pcr
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered) << v[0].reason;
  EXPECT_NE(v[0].reason.find("names anchor 0, the module uses 1"), std::string::npos)
      << v[0].reason;
  EXPECT_EQ(ima_calls, 1) << "the module's anchor is checked, not the checkpoint's";
}

// An anchor check that is set up but cannot be made: "signed", and one
// anchor_unchecked finding per episode, so the downgrade is seen.
TEST(VerifyTest, AnAnchorThatCannotBeCheckedIsAFindingOnce) {
  Harness h;
  bool readable = false;
  h.options.pcr_check = [&](const std::vector<records::Record>&) {
    return readable ? Status::Ok() : Status::Error(ErrorCode::kUnavailable, "TPM gone");
  };
  h.Start();
  for (int i = 0; i < 2; ++i) {
    h.Feed(h.Commit(2));
    h.sim.Checkpoint();
    h.FeedLog();
  }
  readable = true;
  h.Feed(h.Commit(2));
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].verdict, Verdict::kSigned);
  EXPECT_EQ(v[1].verdict, Verdict::kSigned);
  EXPECT_EQ(v[2].verdict, Verdict::kVerified) << v[2].reason;
  int unchecked = 0;
  for (const auto& f : h.verifier->TakeFindings()) {
    if (f.kind == verify::Finding::Kind::kAnchorUnchecked) ++unchecked;
  }
  EXPECT_EQ(unchecked, 1);
}

TEST(VerifyTest, PcrMismatchIsUnanchoredAndUnreadableTpmIsNotVerified) {
  for (ErrorCode code : {ErrorCode::kMismatch, ErrorCode::kUnavailable}) {
    Harness h;
    h.options.pcr_check = [code](const std::vector<records::Record>&) {
      return Status::Error(code, "pcr_events differs");
    };
    h.Start();
    h.Feed(h.Commit(3));
    h.sim.Checkpoint();
    h.FeedLog();
    auto v = h.Verdicts();
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].verdict,
              code == ErrorCode::kMismatch ? Verdict::kUnanchored : Verdict::kSigned)
        << v[0].reason;
    EXPECT_FALSE(v[0].pcr_checked);
  }
}

TEST(VerifyTest, UncommittedRecordsAreUnattestedNeverVerified) {
  Harness h;
  h.Start();
  auto ev = h.sim.Commit();
  auto raw = *ev.As<vigil_ev_exec>();
  raw.hdr.flags = 0;
  raw.hdr.seq = 0;
  h.verifier->AddEvent(*records::Record::FromStruct(raw));
  EXPECT_EQ(h.verifier->counters().unattested, 1u);
  EXPECT_EQ(h.verifier->counters().events, 0u);
  h.verifier->Finish();
  EXPECT_TRUE(h.Verdicts().empty());
}

TEST(VerifyTest, StartsFromAnAnchorCheckpointAndSkipsHistory) {
  Harness h;
  auto early = h.Commit(6);
  h.sim.Checkpoint();
  // A collector starting now anchors on the last checkpoint in the log.
  const auto cp = *h.sim.log()[1].As<vigil_log_checkpoint>();
  verify::Anchor anchor = h.sim.StartAnchor();
  anchor.last_seq = cp.last_seq;
  std::memcpy(anchor.chain_head.data(), cp.chain_head, 32);
  anchor.checkpoint_digest = *crypto::Sha256({h.sim.log()[1].bytes()});
  anchor.checkpoint_log_seq = h.sim.log()[1].seq();
  StreamVerifier verifier(anchor, h.options);
  for (const auto& r : h.sim.log()) verifier.AddLog(r);
  verifier.AddEvent(early[2]);  // an old record still in the ring buffer
  auto more = h.Commit(4);
  for (const auto& e : more) verifier.AddEvent(e);
  EXPECT_EQ(verifier.OpenEvents().size(), 4u);
  size_t fed = h.sim.log().size();
  h.sim.Checkpoint();
  for (; fed < h.sim.log().size(); ++fed) verifier.AddLog(h.sim.log()[fed]);
  auto v = verifier.TakeVerdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
  EXPECT_EQ(v[0].first_seq, 7u);
  auto findings = verifier.TakeFindings();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, Finding::Kind::kLateRecord);
  EXPECT_TRUE(verifier.OpenEvents().empty());
}

TEST(VerifyTest, OpenEventsResumeAfterRestart) {
  Harness h;
  h.Start();
  h.Feed(h.Commit(3));
  h.sim.Checkpoint();
  h.FeedLog();
  ASSERT_EQ(h.Verdicts().size(), 1u);
  auto open = h.Commit(5);
  h.Feed(open);
  // A restarted collector: the saved anchor and the saved open events, then
  // the rest of the stream.
  StreamVerifier restarted(h.verifier->anchor(), h.options);
  for (const auto& r : h.sim.log()) restarted.AddLog(r);
  for (const auto& e : h.verifier->OpenEvents()) restarted.AddEvent(e);
  for (const auto& e : h.Commit(2)) restarted.AddEvent(e);
  size_t fed = h.sim.log().size();
  h.sim.Checkpoint();
  for (; fed < h.sim.log().size(); ++fed) restarted.AddLog(h.sim.log()[fed]);
  auto v = restarted.TakeVerdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kVerified) << v[0].reason;
  EXPECT_EQ(v[0].events, 7u);
}

TEST(VerifyTest, RecoveredEventRedeliveredOnceIsNotADuplicate) {
  Harness h;
  h.Start();
  auto events = h.Commit(6);
  // A restarted collector re-feeds what it saved; the ring buffer then
  // delivers the last saved record again, and a forged copy of another.
  for (int i = 0; i < 4; ++i) h.verifier->AddRecoveredEvent(events[i]);
  h.verifier->AddEvent(events[3]);
  h.Feed({events.begin() + 4, events.end()});
  EXPECT_TRUE(h.verifier->TakeFindings().empty());
  EXPECT_EQ(h.verifier->counters().recovered, 4u);
  EXPECT_EQ(h.verifier->counters().redelivered, 1u);
  h.verifier->AddEvent(events[3]);  // a second copy is a duplicate again
  auto findings = h.verifier->TakeFindings();
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, Finding::Kind::kDuplicate);
  h.sim.Checkpoint();
  h.FeedLog();
  auto v = h.Verdicts();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, Verdict::kTampered);
  EXPECT_EQ(v[0].bad_seq, 4u);
}


// Signed silence: the module's producer counters in trusted checkpoints.
std::vector<Finding> FindingsOf(StreamVerifier& v, Finding::Kind kind) {
  std::vector<Finding> out;
  for (Finding& f : v.TakeFindings()) {
    if (f.kind == kind) out.push_back(std::move(f));
  }
  return out;
}

// Counts of each kind in findings taken once (FindingsOf takes them all).
std::map<Finding::Kind, std::vector<std::string>> FindingsByKind(StreamVerifier& v) {
  std::map<Finding::Kind, std::vector<std::string>> out;
  for (Finding& f : v.TakeFindings()) out[f.kind].push_back(std::move(f.reason));
  return out;
}

TEST(VerifyLivenessTest, RunningProducersRaiseNothing) {
  Harness h;
  h.sim.SealProducers();
  h.Start();
  for (int round = 0; round < 3; ++round) {
    h.sim.Alive(VIGIL_PROD_SWITCH, 50);
    h.Feed(h.Commit(2));
    h.sim.Checkpoint();
    h.FeedLog();
  }
  h.verifier->Finish();
  auto verdicts = h.Verdicts();
  ASSERT_EQ(verdicts.size(), 3u);
  EXPECT_TRUE(FindingsOf(*h.verifier, Finding::Kind::kProducerSilent).empty());
}

TEST(VerifyLivenessTest, AStoppedSchedSwitchProducerIsAFinding) {
  Harness h;
  h.sim.SealProducers();
  h.Start();
  h.sim.Alive(VIGIL_PROD_SWITCH, 50);
  h.sim.Checkpoint();  // running
  h.sim.Fire(VIGIL_PROD_SWITCH, 40);
  h.sim.Checkpoint();  // the scheduler ran, the producer did not
  h.FeedLog();
  h.verifier->Finish();
  auto silent = FindingsOf(*h.verifier, Finding::Kind::kProducerSilent);
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_NE(silent[0].reason.find("sched_switch"), std::string::npos) << silent[0].reason;
}

TEST(VerifyLivenessTest, AnExecProducerDetachedAloneIsAFinding) {
  Harness h;
  h.sim.SealProducers();
  h.Start();
  h.sim.Alive(VIGIL_PROD_SWITCH, 50);
  h.sim.Alive(VIGIL_PROD_EXEC, 3);
  h.sim.Checkpoint();
  h.sim.Alive(VIGIL_PROD_SWITCH, 50);
  h.sim.Fire(VIGIL_PROD_EXEC, 30);  // 30 execs, none seen by vigil
  h.sim.Checkpoint();
  h.FeedLog();
  h.verifier->Finish();
  auto silent = FindingsOf(*h.verifier, Finding::Kind::kProducerSilent);
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_NE(silent[0].reason.find("exec"), std::string::npos) << silent[0].reason;
}

TEST(VerifyLivenessTest, AProducerAttachedTwiceIsAFinding) {
  Harness h;
  h.sim.SealProducers();
  h.Start();
  h.sim.Alive(VIGIL_PROD_FORK, 10);
  h.sim.Checkpoint();
  // A second link on the same program: each of 100 forks runs it twice.
  h.sim.Alive(VIGIL_PROD_FORK, 100);
  h.sim.RunExtra(VIGIL_PROD_FORK, 100);
  h.sim.Checkpoint();
  h.FeedLog();
  h.verifier->Finish();
  auto dup = FindingsOf(*h.verifier, Finding::Kind::kProducerDuplicated);
  ASSERT_EQ(dup.size(), 1u);
  EXPECT_NE(dup[0].reason.find("fork"), std::string::npos) << dup[0].reason;
}

TEST(VerifyLivenessTest, MissesSpreadOverCheckpointsAddUp) {
  Harness h;
  h.sim.SealProducers();
  h.Start();
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  // Switched off for one exec at a time, well inside any per-checkpoint slack.
  for (int i = 0; i < 5; ++i) {
    h.sim.Alive(VIGIL_PROD_EXEC, 20);
    h.sim.Fire(VIGIL_PROD_EXEC, 3);
    h.sim.Checkpoint();
  }
  h.FeedLog();
  h.verifier->Finish();
  auto silent = FindingsOf(*h.verifier, Finding::Kind::kProducerSilent);
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_NE(silent[0].reason.find("missed"), std::string::npos) << silent[0].reason;
}

TEST(VerifyLivenessTest, InFlightFiringsAreNotSilence) {
  Harness h;
  h.sim.SealProducers();
  h.Start();
  h.sim.Alive(VIGIL_PROD_SWITCH, 1000);
  h.sim.Checkpoint();
  h.sim.Alive(VIGIL_PROD_SWITCH, 1000);
  h.sim.Fire(VIGIL_PROD_SWITCH, 2);  // read between the two probes on 2 CPUs
  h.sim.Checkpoint();
  for (int i = 0; i < 20; ++i) {  // and each time again: the runs catch up
    h.sim.RunExtra(VIGIL_PROD_SWITCH, 2);
    h.sim.Alive(VIGIL_PROD_SWITCH, 1000);
    h.sim.Fire(VIGIL_PROD_SWITCH, 2);
    h.sim.Checkpoint();
  }
  h.FeedLog();
  h.verifier->Finish();
  EXPECT_TRUE(FindingsOf(*h.verifier, Finding::Kind::kProducerSilent).empty());
}

TEST(VerifyLivenessTest, ANewProducerSetAndRefusalsAreFindings) {
  Harness h;
  h.sim.SealProducers();
  h.Start();
  h.sim.Alive(VIGIL_PROD_SWITCH, 5);
  h.sim.Checkpoint();
  h.sim.Alive(VIGIL_PROD_SWITCH, 5);
  h.sim.SealProducers(0x44);  // programs replaced by others
  h.sim.Refuse(3);            // a foreign program was refused
  h.sim.Checkpoint();
  h.FeedLog();
  h.verifier->Finish();
  auto findings = h.verifier->TakeFindings();
  int changed = 0, refused = 0;
  for (const Finding& f : findings) {
    changed += f.kind == Finding::Kind::kProducersChanged;
    refused += f.kind == Finding::Kind::kRefused;
  }
  EXPECT_EQ(changed, 1);
  EXPECT_EQ(refused, 1);
}

// The rest of the module's log fed, the stream finished, its findings.
std::map<Finding::Kind, std::vector<std::string>> FinishAndTakeFindings(Harness& h) {
  h.FeedLog();
  h.verifier->Finish();
  return FindingsByKind(*h.verifier);
}

// The collector's set (0x33) sealed, the verifier started, the exec
// producer running up to one checkpoint.
void StartRunning(Harness& h) {
  h.sim.SealProducers(0x33);
  h.Start();
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
}

// A collector restart seals the same set again: a reseal, not a change, and
// the counts go on across it.
TEST(VerifyLivenessTest, TheSameSetSealedAgainIsAResealCountedAcross) {
  Harness h;
  StartRunning(h);
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.SealProducers(0x33);
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  auto f = FinishAndTakeFindings(h);
  EXPECT_EQ(f[Finding::Kind::kProducersResealed].size(), 1u);
  EXPECT_TRUE(f[Finding::Kind::kProducersChanged].empty());
  EXPECT_TRUE(f[Finding::Kind::kProducerSilent].empty());
  EXPECT_EQ(f.size(), 3u) << "a finding of another kind";
}

// The attack a reseal must not hide: root kills the collector, detaches
// the programs (firings nobody sees), acts, and restarts the collector,
// which seals the same set again before the next checkpoint.
TEST(VerifyLivenessTest, ADetachBeforeAResealIsStillSilence) {
  Harness h;
  StartRunning(h);
  h.sim.Fire(VIGIL_PROD_EXEC, 40);  // detached
  h.sim.SealProducers(0x33);        // the restart
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  auto f = FinishAndTakeFindings(h);
  EXPECT_EQ(f[Finding::Kind::kProducersResealed].size(), 1u);
  const auto& silent = f[Finding::Kind::kProducerSilent];
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_NE(silent[0].find("missed 40"), std::string::npos) << silent[0];
}

// Root's own set sealed (its programs may commit), then the collector's
// set again, all between two checkpoints: the checkpoints name the same
// set, the log shows the other one.
TEST(VerifyLivenessTest, AnotherSetSealedInBetweenIsAChange) {
  Harness h;
  StartRunning(h);
  h.sim.SealProducers(0x66);
  h.sim.SealProducers(0x33);
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  auto f = FinishAndTakeFindings(h);
  EXPECT_TRUE(f[Finding::Kind::kProducersResealed].empty());
  const auto& changed = f[Finding::Kind::kProducersChanged];
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_NE(changed[0].find("another set was sealed in between"), std::string::npos)
      << changed[0];
}

// A generation jump the log does not explain: a window opened and never
// sealed beside a reseal, or a WINDOW record missing from the log seen.
TEST(VerifyLivenessTest, AResealTheLogDoesNotExplainIsAChange) {
  {
    Harness h;
    StartRunning(h);
    h.sim.OpenWindow();  // a window, then a second one with its seal
    h.sim.SealProducers(0x33);
    h.sim.Alive(VIGIL_PROD_EXEC, 5);
    h.sim.Checkpoint();
    auto f = FinishAndTakeFindings(h);
    EXPECT_TRUE(f[Finding::Kind::kProducersResealed].empty());
    EXPECT_EQ(f[Finding::Kind::kProducersChanged].size(), 1u);
  }
  {
    Harness h;
    StartRunning(h);
    h.sim.SealProducers(0x33);
    h.sim.Alive(VIGIL_PROD_EXEC, 5);
    // The log the verifier gets lacks the WINDOW record (a gap is its own
    // finding; the reseal must not be taken either way).
    std::vector<records::Record> log = h.sim.log();
    auto window = std::find_if(log.rbegin(), log.rend(), [](const records::Record& r) {
      auto m = r.As<vigil_log_measure>();
      return m && m->kind == VIGIL_MEASURE_WINDOW;
    });
    ASSERT_NE(window, log.rend());
    log.erase(std::next(window).base());
    h.sim.Checkpoint();
    log.push_back(h.sim.log()[h.sim.log().size() - 2]);
    log.push_back(h.sim.log()[h.sim.log().size() - 1]);
    for (const records::Record& r : log) h.verifier->AddLog(r);
    h.verifier->Finish();
    auto f = FindingsByKind(*h.verifier);
    EXPECT_TRUE(f[Finding::Kind::kProducersResealed].empty());
    EXPECT_EQ(f[Finding::Kind::kProducersChanged].size(), 1u);
  }
}

// A collector loading its programs can take longer than a checkpoint
// period: the checkpoint that meets the open window is judged at the seal.
TEST(VerifyLivenessTest, AWindowOpenAtACheckpointIsJudgedAtItsSeal) {
  Harness h;
  StartRunning(h);
  h.sim.OpenWindow();
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();  // the window is open here
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();  // and here
  h.sim.SealWindow(0x33);
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  auto f = FinishAndTakeFindings(h);
  EXPECT_EQ(f[Finding::Kind::kProducersResealed].size(), 1u);
  EXPECT_TRUE(f[Finding::Kind::kProducersChanged].empty()) << f[Finding::Kind::kProducersChanged][0];
}

// The same window sealed with another set, kept open, or open when the
// stream ends: changes.
TEST(VerifyLivenessTest, AWindowSealedOtherwiseKeptOpenOrOpenAtTheEndIsAChange) {
  const auto run = [](int checkpoints_open, std::optional<uint8_t> seal) {
    Harness h;
    StartRunning(h);
    h.sim.OpenWindow();
    for (int i = 0; i < checkpoints_open; ++i) {
      h.sim.Alive(VIGIL_PROD_EXEC, 5);
      h.sim.Checkpoint();
    }
    if (seal) {
      h.sim.SealWindow(*seal);
      h.sim.Alive(VIGIL_PROD_EXEC, 5);
      h.sim.Checkpoint();
    }
    return FinishAndTakeFindings(h);
  };
  auto other = run(1, uint8_t{0x66});
  EXPECT_EQ(other[Finding::Kind::kProducersChanged].size(), 1u);
  EXPECT_TRUE(other[Finding::Kind::kProducersResealed].empty());
  auto kept = run(7, std::nullopt);
  ASSERT_EQ(kept[Finding::Kind::kProducersChanged].size(), 1u);
  EXPECT_NE(kept[Finding::Kind::kProducersChanged][0].find("5 checkpoints"), std::string::npos);
  auto at_end = run(2, std::nullopt);
  ASSERT_EQ(at_end[Finding::Kind::kProducersChanged].size(), 1u);
  EXPECT_NE(at_end[Finding::Kind::kProducersChanged][0].find("newest checkpoint"),
            std::string::npos);
}

// The liveness counts go on at every checkpoint a window is open at: a
// sched_switch producer detached for the time of the window and attached
// again for one run before the seal is silent at each of them.
TEST(VerifyLivenessTest, SilenceInsideAWindowIsCountedAtEachCheckpoint) {
  Harness h;
  h.sim.SealProducers(0x33);
  h.Start();
  h.sim.RunExtra(VIGIL_PROD_SWITCH, 50);  // not watched by the module: no hits
  h.sim.Checkpoint();
  h.sim.OpenWindow();
  for (int i = 0; i < 4; ++i) h.sim.Checkpoint();  // detached
  h.sim.RunExtra(VIGIL_PROD_SWITCH, 1);
  h.sim.SealWindow(0x33);
  h.sim.Checkpoint();
  auto f = FinishAndTakeFindings(h);
  EXPECT_EQ(f[Finding::Kind::kProducerSilent].size(), 4u);
  EXPECT_EQ(f[Finding::Kind::kProducersResealed].size(), 1u);
  EXPECT_TRUE(f[Finding::Kind::kProducersChanged].empty());
}

// A checkpoint taken while the seal is being measured (the window closed,
// the set's records not logged yet) waits for the seal like an open window.
TEST(VerifyLivenessTest, ACheckpointDuringTheSealWaitsForIt) {
  Harness h;
  StartRunning(h);
  h.sim.OpenWindow();
  h.sim.CloseWindowUnsealed();
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  h.sim.SealWindow(0x33);
  h.sim.Alive(VIGIL_PROD_EXEC, 5);
  h.sim.Checkpoint();
  auto f = FinishAndTakeFindings(h);
  EXPECT_EQ(f[Finding::Kind::kProducersResealed].size(), 1u);
  EXPECT_TRUE(f[Finding::Kind::kProducersChanged].empty()) << f[Finding::Kind::kProducersChanged][0];
}

// The PCR check as vigild makes it: the verifier's prefix against the
// module's log as it holds it now, on a TPM holding what that log replays to.
verify::PcrCheck PcrCheckOn(const sim::ModuleSim& sim) {
  return [&sim](const std::vector<records::Record>& verified) {
    const crypto::Digest config = sim.Pcr(true);
    const crypto::Digest events = sim.Pcr(false);
    constexpr uint32_t kEventsPcr = 23;
    return replay::CheckPcrPath(verified, sim.log(), sim::ModuleSim::kPcrConfig, kEventsPcr,
                                [&](uint16_t, uint32_t pcr) -> Result<crypto::Digest> {
                                  return pcr == sim::ModuleSim::kPcrConfig ? config : events;
                                });
  };
}

// Feeds `v` the records of the module's log after log seq `*fed`.
void FeedNewLog(const sim::ModuleSim& sim, StreamVerifier& v, uint64_t* fed) {
  for (const records::Record& r : sim.log()) {
    if (r.seq() <= *fed) continue;
    v.AddLog(r);
    *fed = r.seq();
  }
}

// A TRIM writes its BASE last, after the records it keeps: the replay
// starts at the BASE's cut, not at the BASE. Before, the verifier dropped
// everything before the BASE and every PCR-checked verdict after the first
// TRIM was "tampered" (the log no longer replayed).
TEST(VerifyTrimTest, VerdictsStayOnThePcrPathAcrossTrims) {
  sim::ModuleSim sim(0x5a, /*tpm=*/true, /*base=*/true);
  verify::VerifierOptions opt;
  opt.pcr_check = PcrCheckOn(sim);
  StreamVerifier v(sim.StartAnchor(), opt);
  uint64_t fed = 0;
  std::vector<uint64_t> cp_log_seqs;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 3; ++i) v.AddEvent(sim.Commit());
    cp_log_seqs.push_back(sim.Checkpoint().front().seq());
    FeedNewLog(sim, v, &fed);
    if (round == 1 || round == 3) {
      // vigild's cut: the last decided (and saved) checkpoint stays.
      sim.Trim(cp_log_seqs.back());
      FeedNewLog(sim, v, &fed);
    }
  }
  const auto verdicts = v.TakeVerdicts();
  ASSERT_EQ(verdicts.size(), 6u);
  for (const auto& verdict : verdicts) {
    EXPECT_EQ(verdict.verdict, Verdict::kVerified) << verdict.reason;
    EXPECT_TRUE(verdict.pcr_checked) << verdict.reason;
  }
  EXPECT_GT(sim.log().front().seq(), 1u);  // the module's log was trimmed
}

// After a restart on a trimmed log the verifier reads the module's log from
// its oldest record (the saved anchor's checkpoint) on: a checkpoint logged
// before the BASE is decided from a prefix without any BASE.
TEST(VerifyTrimTest, ARestartOnATrimmedLogStillChecksThePcrPath) {
  sim::ModuleSim sim(0x5a, /*tpm=*/true, /*base=*/true);
  verify::Anchor anchor;
  {
    StreamVerifier first(sim.StartAnchor(), {});
    uint64_t fed = 0;
    for (int i = 0; i < 2; ++i) first.AddEvent(sim.Commit());
    sim.Checkpoint();
    FeedNewLog(sim, first, &fed);
    ASSERT_EQ(first.TakeVerdicts().size(), 1u);
    anchor = first.anchor();
  }
  // Logged while the collector was down: a checkpoint, then the TRIM's BASE.
  std::vector<records::Record> down;
  for (int i = 0; i < 2; ++i) down.push_back(sim.Commit());
  sim.Checkpoint();
  sim.Trim(anchor.checkpoint_log_seq);
  ASSERT_EQ(sim.log().front().seq(), anchor.checkpoint_log_seq);
  verify::VerifierOptions opt;
  opt.pcr_check = PcrCheckOn(sim);
  StreamVerifier second(anchor, opt);
  for (const auto& e : down) second.AddRecoveredEvent(e);
  uint64_t fed = 0;
  FeedNewLog(sim, second, &fed);
  for (int i = 0; i < 2; ++i) second.AddEvent(sim.Commit());
  sim.Checkpoint();
  FeedNewLog(sim, second, &fed);
  const auto verdicts = second.TakeVerdicts();
  ASSERT_EQ(verdicts.size(), 2u);
  for (const auto& verdict : verdicts) {
    EXPECT_EQ(verdict.verdict, Verdict::kVerified) << verdict.reason;
    EXPECT_TRUE(verdict.pcr_checked) << verdict.reason;
  }
}

// The PCR check still catches a TPM that moved without a log record after
// a trim (the relaxed prefix does not weaken it).
TEST(VerifyTrimTest, AJunkExtendAfterATrimIsStillCaught) {
  sim::ModuleSim sim(0x5a, /*tpm=*/true, /*base=*/true);
  verify::VerifierOptions opt;
  opt.pcr_check = [&](const std::vector<records::Record>& verified) {
    constexpr uint32_t kEventsPcr = 23;
    const crypto::Digest config = sim.Pcr(true);
    return replay::CheckPcrPath(
        verified, sim.log(), sim::ModuleSim::kPcrConfig, kEventsPcr,
        [&](uint16_t, uint32_t pcr) -> Result<crypto::Digest> {
          return pcr == sim::ModuleSim::kPcrConfig ? config : crypto::Digest(32, 0x66);
        });
  };
  StreamVerifier v(sim.StartAnchor(), opt);
  uint64_t fed = 0;
  v.AddEvent(sim.Commit());
  const uint64_t cp = sim.Checkpoint().front().seq();
  sim.Trim(cp);
  FeedNewLog(sim, v, &fed);
  const auto verdicts = v.TakeVerdicts();
  ASSERT_EQ(verdicts.size(), 1u);
  // The anchor is broken, not the events: its own verdict and finding.
  EXPECT_EQ(verdicts[0].verdict, Verdict::kUnanchored) << verdicts[0].reason;
  EXPECT_NE(verdicts[0].reason.find("not on the log's replay path"), std::string::npos)
      << verdicts[0].reason;
  int broken = 0;
  for (const auto& f : v.TakeFindings()) broken += f.kind == Finding::Kind::kAnchorBroken;
  EXPECT_EQ(broken, 1);
}

// One junk extend into the events PCR: an anchor_broken finding once, the
// checkpoints after it unanchored (not tampered: the chain and signatures
// hold), and event tampering after it is still tampered.
TEST(VerifyTrimTest, AJunkExtendIsAnchorBrokenAndChainVerdictsGoOn) {
  sim::ModuleSim sim(0x5a, /*tpm=*/true, /*base=*/true);
  verify::VerifierOptions opt;
  bool junk = false;
  opt.pcr_check = [&](const std::vector<records::Record>& verified) {
    constexpr uint32_t kEventsPcr = 23;
    const crypto::Digest config = sim.Pcr(true);
    const crypto::Digest events = sim.Pcr(false);
    return replay::CheckPcrPath(
        verified, sim.log(), sim::ModuleSim::kPcrConfig, kEventsPcr,
        [&](uint16_t, uint32_t pcr) -> Result<crypto::Digest> {
          if (pcr == sim::ModuleSim::kPcrConfig) return config;
          return junk ? crypto::Digest(32, 0x66) : events;
        });
  };
  StreamVerifier v(sim.StartAnchor(), opt);
  uint64_t fed = 0;
  v.AddEvent(sim.Commit());
  sim.Checkpoint();
  FeedNewLog(sim, v, &fed);
  auto verdicts = v.TakeVerdicts();
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kVerified) << verdicts[0].reason;
  junk = true;  // tpm2_pcrextend 23:sha256=...
  for (int i = 0; i < 3; ++i) {
    v.AddEvent(sim.Commit());
    sim.Checkpoint();
  }
  FeedNewLog(sim, v, &fed);
  verdicts = v.TakeVerdicts();
  ASSERT_EQ(verdicts.size(), 3u);
  for (const auto& vd : verdicts) EXPECT_EQ(vd.verdict, Verdict::kUnanchored) << vd.reason;
  int broken = 0;
  for (const auto& f : v.TakeFindings()) broken += f.kind == Finding::Kind::kAnchorBroken;
  EXPECT_EQ(broken, 1);
  // A forged event after the junk extend is still tampered.
  records::Record ev = sim.Commit();
  v.AddEvent(FlipByte(ev, 40));
  sim.Checkpoint();
  FeedNewLog(sim, v, &fed);
  v.Finish();
  verdicts = v.TakeVerdicts();
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kTampered) << verdicts[0].reason;
}

}  // namespace
}  // namespace vigil
