// IMA's binary log as the anchor of anchor=ima (vigil::ima). The log is
// built here the way IMA writes it (ima_fs.c: pcr, SHA-1 template digest,
// template name, template data of ima-buf fields d-ng|n-ng|buf), and PCR 10
// is computed here with OpenSSL the way the TPM extends it, independently of
// the code under test. The records come from the simulated module.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "vigil/ima.h"

namespace vigil {
namespace {

using sim::ImaSim;
using sim::kSha1;
using sim::kSha256;
using sim::Bytes;
using sim::Md;

ima::ImaLog NewLog() { return *ima::ImaLog::Create({kSha1, kSha256}); }

// The module's log with three checkpoints, IMA's log around it.
struct Fixture {
  sim::ModuleSim sim;
  ImaSim ima;
  Fixture() {
    ima.BootAggregate();
    ima.File("/usr/bin/true");
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k < 5; ++k) sim.Commit();
      sim.Checkpoint();
    }
    ima.Module(sim);
    ima.File("/usr/sbin/vigild");
  }
};

TEST(ImaTest, HonestLogReplaysToPcr10AndHoldsEveryAnchoredRecord) {
  Fixture f;
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  EXPECT_FALSE(log.partial());
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  EXPECT_EQ(*prefix, log.entries());
  EXPECT_EQ(log.vigil_entries().size(), 4u) << "KEY and three checkpoints";
  const Status st = log.CheckModuleRecords(f.sim.log(), f.sim.instance(), *prefix);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(ImaTest, ByteByByteFeedingGivesTheSameResult) {
  Fixture f;
  ima::ImaLog log = NewLog();
  for (uint8_t b : f.ima.log) ASSERT_TRUE(log.Append(std::span<const uint8_t>(&b, 1)).ok());
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  EXPECT_TRUE(log.CheckModuleRecords(f.sim.log(), f.sim.instance(), *prefix).ok());
}

// Root extends PCR 10 directly (tpm2_pcrextend 10:sha256=...): IMA's log
// no longer reaches the TPM.
TEST(ImaTest, JunkExtendOfPcr10IsAMismatch) {
  Fixture f;
  f.ima.Extend(kSha256, std::vector<uint8_t>(32, 0x42));
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_FALSE(prefix.ok());
  EXPECT_EQ(prefix.status().code(), ErrorCode::kMismatch) << prefix.status().ToString();
}

// The log is read after the PCRs: entries measured in between are beyond
// the matched prefix, and a record among them counts as not yet there.
TEST(ImaTest, LogAheadOfThePcrReadMatchesAPrefix) {
  Fixture f;
  const auto pcr_before = f.ima.pcr10;
  f.sim.Commit();
  f.sim.Checkpoint();
  const size_t before = f.sim.log().size() - 2;  // the new CHECKPOINT + SIGNATURE
  f.ima.Module(f.sim, before);
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  auto prefix = log.MatchPcr10(pcr_before);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  EXPECT_EQ(*prefix, log.entries() - 1);
  const Status st = log.CheckModuleRecords(f.sim.log(), f.sim.instance(), *prefix);
  EXPECT_EQ(st.code(), ErrorCode::kMismatch) << st.ToString();
  // Read again: the TPM has caught up.
  auto now = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(now.ok());
  EXPECT_TRUE(log.CheckModuleRecords(f.sim.log(), f.sim.instance(), *now).ok());
}

// A checkpoint record rewritten in the module's log (or a forged one in its
// place): IMA's copy, under PCR 10, says otherwise.
TEST(ImaTest, ARecordThatDiffersFromIMAsCopyIsAMismatch) {
  Fixture f;
  std::vector<records::Record> edited = f.sim.log();
  for (records::Record& r : edited) {
    if (r.type() != VIGIL_LOG_CHECKPOINT) continue;
    std::vector<uint8_t> bytes(r.bytes().begin(), r.bytes().end());
    bytes[bytes.size() - 1] ^= 1;
    r = *records::Record::Decode(bytes);
    break;
  }
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok());
  const Status st = log.CheckModuleRecords(edited, f.sim.instance(), *prefix);
  EXPECT_EQ(st.code(), ErrorCode::kMismatch);
  EXPECT_NE(st.message().find("holds another record"), std::string::npos) << st.ToString();
}

// A checkpoint left out of the log the verifier gets (its seq then holds
// nothing anchored): IMA still names it.
TEST(ImaTest, ARecordMissingFromTheLogIsAMismatch) {
  Fixture f;
  std::vector<records::Record> cut;
  bool dropped = false;
  for (const records::Record& r : f.sim.log()) {
    if (!dropped && r.type() == VIGIL_LOG_CHECKPOINT && r.seq() > f.sim.log()[2].seq()) {
      dropped = true;
      continue;
    }
    cut.push_back(r);
  }
  ASSERT_TRUE(dropped);
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok());
  const Status st = log.CheckModuleRecords(cut, f.sim.instance(), *prefix);
  EXPECT_EQ(st.code(), ErrorCode::kMismatch) << st.ToString();
}

// IMA measured nothing of this instance (no CRITICAL_DATA rule): the anchor
// cannot be checked, which is not evidence against the records.
TEST(ImaTest, NoEntryOfThisInstanceIsUnavailable) {
  Fixture f;
  ImaSim other;
  other.BootAggregate();
  sim::ModuleSim stranger(0x77);
  stranger.Checkpoint();
  other.Module(stranger);
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(other.log).ok());
  auto prefix = log.MatchPcr10(other.pcr10);
  ASSERT_TRUE(prefix.ok());
  const Status st = log.CheckModuleRecords(f.sim.log(), f.sim.instance(), *prefix);
  EXPECT_EQ(st.code(), ErrorCode::kUnavailable) << st.ToString();
}

// A violation (open-writers, ToMToU) is logged with a zero digest and
// extended as all 0xff in every bank; entries for other PCRs extend nothing.
TEST(ImaTest, ViolationsAndOtherPcrsReplayAsIMADoes) {
  Fixture f;
  f.ima.Entry("ima-ng", {ImaSim::DigestField(Bytes("x")), ImaSim::NameField("/tmp/x")}, 10,
              /*violation=*/true);
  f.ima.Entry("ima-ng", {ImaSim::DigestField(Bytes("y")), ImaSim::NameField("/boot/y")}, 9);
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  EXPECT_EQ(*prefix, log.entries());
}

// PCR 10's bank `alg` as a kernel without that hash at IMA's start extends
// it (Debian 12's 6.1 and SHA-384/512): each SHA-1 extend of the simulated
// log zero-padded to the bank's size, a violation all 0xff.
crypto::Digest PaddedBank(const ImaSim& ima, const char* md, size_t size) {
  crypto::Digest v(size, 0);
  for (const auto& [alg, m] : ima.extends) {
    if (alg != kSha1) continue;
    const bool violation = std::all_of(m.begin(), m.end(), [](uint8_t b) { return b == 0xff; });
    crypto::Digest padded(size, violation ? 0xff : 0);
    if (!violation) std::copy(m.begin(), m.end(), padded.begin());
    std::vector<uint8_t> both(v.begin(), v.end());
    both.insert(both.end(), padded.begin(), padded.end());
    v = Md(md, both);
  }
  return v;
}

TEST(ImaTest, ABankTheKernelCouldNotHashReplaysAsPaddedSha1) {
  constexpr uint16_t kSha384 = 0x000C;
  Fixture f;
  f.ima.Entry("ima-ng", {ImaSim::DigestField(Bytes("x")), ImaSim::NameField("/tmp/x")}, 10,
              /*violation=*/true);
  f.ima.File("/usr/bin/false");
  auto pcr10 = f.ima.pcr10;
  pcr10[kSha384] = PaddedBank(f.ima, "SHA384", 48);
  ima::ImaLog log = *ima::ImaLog::Create({kSha1, kSha256, kSha384});
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  auto prefix = log.MatchPcr10(pcr10);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  EXPECT_EQ(*prefix, log.entries());
  EXPECT_TRUE(log.CheckModuleRecords(f.sim.log(), f.sim.instance(), *prefix).ok());

  // A padded SHA-384 does not excuse a SHA-256 bank that does not replay.
  ima::ImaLog other = *ima::ImaLog::Create({kSha1, kSha256, kSha384});
  ASSERT_TRUE(other.Append(f.ima.log).ok());
  pcr10[kSha256] = PaddedBank(f.ima, "SHA256", 32);
  EXPECT_EQ(other.MatchPcr10(pcr10).status().code(), ErrorCode::kMismatch);
}

// SHA-256 is IMA's own hash: a zero-padded SHA-1 in its bank is PCR 10
// extended outside IMA.
TEST(ImaTest, ASha256BankIsNeverPaddedSha1) {
  Fixture f;
  auto pcr10 = f.ima.pcr10;
  pcr10[kSha256] = PaddedBank(f.ima, "SHA256", 32);
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  EXPECT_EQ(log.MatchPcr10(pcr10).status().code(), ErrorCode::kMismatch);
}

TEST(ImaTest, DamagedLogIsMalformedAndAPartialEntryWaits) {
  Fixture f;
  std::vector<uint8_t> bytes = f.ima.log;
  ima::ImaLog partial = NewLog();
  ASSERT_TRUE(partial.Append(std::span<const uint8_t>(bytes).first(bytes.size() - 3)).ok());
  EXPECT_TRUE(partial.partial());
  ASSERT_TRUE(partial.Append(std::span<const uint8_t>(bytes).last(3)).ok());
  EXPECT_FALSE(partial.partial());

  bytes[24] = 0xff;  // the first entry's template name length
  bytes[25] = 0xff;
  ima::ImaLog damaged = NewLog();
  const Status st = damaged.Append(bytes);
  EXPECT_EQ(st.code(), ErrorCode::kMalformed) << st.ToString();

  // A template digest that is not SHA-1 of the data: the data is not what
  // PCR 10 holds.
  ImaSim wrong;
  wrong.Entry("ima-ng", {ImaSim::DigestField(Bytes("x")), ImaSim::NameField("/x")}, 10, false,
              /*wrong_digest=*/true);
  ima::ImaLog bad = NewLog();
  EXPECT_EQ(bad.Append(wrong.log).code(), ErrorCode::kMalformed);
}

// Review finding: one legacy "ima" entry (a policy rule with template=ima)
// made every later check "unsupported", i.e. "signed", even after a junk
// PCR 10 extend. Legacy entries replay like IMA hashes them.
TEST(ImaTest, LegacyTemplateEntriesReplay) {
  Fixture f;
  f.ima.Legacy("/usr/bin/legacy");
  f.ima.File("/usr/bin/after");
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
  EXPECT_EQ(*prefix, log.entries());
  EXPECT_TRUE(log.CheckModuleRecords(f.sim.log(), f.sim.instance(), *prefix).ok());
  f.ima.Extend(kSha256, std::vector<uint8_t>(32, 0x42));
  EXPECT_EQ(log.MatchPcr10(f.ima.pcr10).status().code(), ErrorCode::kMismatch);
}

// Review finding: a file whose name is a vigil entry name, measured by a
// file rule (a basename through a detached mount), carried a forged
// checkpoint's digest and anchored it. Only ima-buf entries with the buffer
// itself are the module's.
TEST(ImaTest, AFileNamedLikeARecordAnchorsNothing) {
  Fixture f;
  sim::ModuleSim forger(0x5a);  // same instance id (the key is stolen)
  for (int i = 0; i < 3; ++i) forger.Commit();
  forger.Checkpoint();
  std::vector<records::Record> forged;
  for (const records::Record& r : forger.log()) {
    if (r.type() != VIGIL_LOG_CHECKPOINT) continue;
    std::vector<uint8_t> bytes(r.bytes().begin(), r.bytes().end());
    vigil_rec_hdr h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    h.seq = 1000000;
    std::memcpy(bytes.data(), &h, sizeof(h));
    forged.push_back(*records::Record::Decode(bytes));
  }
  ASSERT_EQ(forged.size(), 1u);
  const std::vector<uint8_t> buf(forged[0].bytes().begin(), forged[0].bytes().end());
  const std::string name = ima::EntryName(f.sim.instance(), VIGIL_LOG_CHECKPOINT, 1000000);
  f.ima.Entry("ima-ng", {ImaSim::DigestField(buf), ImaSim::NameField(name)});
  // Also as ima-buf with an empty buffer (a file rule with template=ima-buf).
  f.ima.Entry("ima-buf", {ImaSim::DigestField(buf), ImaSim::NameField(name), {}});
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  EXPECT_EQ(log.vigil_entries().size(), 4u) << "only the module's own";
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok());
  const Status st = log.CheckModuleRecords(forged, f.sim.instance(), *prefix);
  EXPECT_EQ(st.code(), ErrorCode::kMismatch) << st.ToString();
}

// Review finding: records measured into another PCR (a policy rule with
// pcr=11) made the check "unsupported" ("signed"); they are anchored nowhere
// PCR 10 shows, so it is a mismatch.
TEST(ImaTest, RecordsInAnotherPcrAreAMismatch) {
  sim::ModuleSim sim;
  for (int i = 0; i < 3; ++i) sim.Commit();
  sim.Checkpoint();
  ImaSim ima;
  ima.BootAggregate();
  ima.Module(sim, 0, /*pcr=*/11);
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(ima.log).ok());
  auto prefix = log.MatchPcr10(ima.pcr10);
  ASSERT_TRUE(prefix.ok());
  const Status st = log.CheckModuleRecords(sim.log(), sim.instance(), *prefix);
  EXPECT_EQ(st.code(), ErrorCode::kMismatch) << st.ToString();
}

// Review finding: a name with a seq past 2^64 threw out of the parser and
// stopped vigild at every start. It is not the module's name.
TEST(ImaTest, ASeqPastTwoToTheSixtyFourIsNotAName) {
  Fixture f;
  const std::vector<uint8_t> buf(f.sim.log()[0].bytes().begin(), f.sim.log()[0].bytes().end());
  f.ima.Entry("ima-buf", {ImaSim::DigestField(buf),
                          ImaSim::NameField("vigil-5a5a5a5a-measure-99999999999999999999"), buf});
  // A violation entry with a module name carries no record either.
  f.ima.Entry("ima-buf",
              {ImaSim::DigestField(buf), ImaSim::NameField("vigil-5a5a5a5a-measure-7"), buf}, 10,
              /*violation=*/true);
  ima::ImaLog log = NewLog();
  ASSERT_TRUE(log.Append(f.ima.log).ok());
  EXPECT_EQ(log.vigil_entries().size(), 4u);
  auto prefix = log.MatchPcr10(f.ima.pcr10);
  ASSERT_TRUE(prefix.ok()) << prefix.status().ToString();
}

TEST(ImaTest, EntryNamesAreTheModules) {
  chain::InstanceId id{};
  id[0] = 0xde, id[1] = 0xad, id[2] = 0xbe, id[3] = 0xef;
  EXPECT_EQ(ima::EntryName(id, VIGIL_LOG_CHECKPOINT, 42), "vigil-deadbeef-checkpoint-42");
  EXPECT_EQ(ima::EntryName(id, VIGIL_LOG_KEY, 3), "vigil-deadbeef-key-3");
  EXPECT_EQ(ima::EntryName(id, VIGIL_LOG_MEASURE, 1), "vigil-deadbeef-measure-1");
}

}  // namespace
}  // namespace vigil
