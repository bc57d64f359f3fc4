// IMA's binary log as the anchor of anchor=ima (vigil::ima). The log is
// built here the way IMA writes it (ima_fs.c: pcr, SHA-1 template digest,
// template name, template data of ima-buf fields d-ng|n-ng|buf), and PCR 10
// is computed here with OpenSSL the way the TPM extends it, independently of
// the code under test. The records come from the simulated module.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "module_sim.h"
#include "vigil/ima.h"

namespace vigil {
namespace {

constexpr uint16_t kSha1 = 0x0004;
constexpr uint16_t kSha256 = 0x000B;

std::vector<uint8_t> Md(const char* name, std::span<const uint8_t> data) {
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_get_digestbyname(name), nullptr);
  out.resize(len);
  return out;
}

void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + 4);
}

void PutField(std::vector<uint8_t>& out, std::span<const uint8_t> f) {
  PutU32(out, static_cast<uint32_t>(f.size()));
  out.insert(out.end(), f.begin(), f.end());
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A TPM's PCR 10 in two banks, and IMA's log that goes with it.
struct ImaSim {
  std::vector<uint8_t> log;
  std::map<uint16_t, crypto::Digest> pcr10{{kSha1, crypto::Digest(20, 0)},
                                           {kSha256, crypto::Digest(32, 0)}};

  void Extend(uint16_t alg, std::span<const uint8_t> m) {
    crypto::Digest& v = pcr10[alg];
    std::vector<uint8_t> both(v.begin(), v.end());
    both.insert(both.end(), m.begin(), m.end());
    v = Md(alg == kSha1 ? "SHA1" : "SHA256", both);
  }
  // An entry with the given template and fields; extends PCR 10 like IMA.
  void Entry(const std::string& tname, const std::vector<std::vector<uint8_t>>& fields,
             uint32_t pcr = 10, bool violation = false, bool wrong_digest = false) {
    std::vector<uint8_t> data;
    for (const auto& f : fields) PutField(data, f);
    std::vector<uint8_t> sha1 = violation ? std::vector<uint8_t>(20, 0) : Md("SHA1", data);
    if (wrong_digest) sha1[0] ^= 1;
    PutU32(log, pcr);
    log.insert(log.end(), sha1.begin(), sha1.end());
    PutU32(log, static_cast<uint32_t>(tname.size()));
    log.insert(log.end(), tname.begin(), tname.end());
    PutU32(log, static_cast<uint32_t>(data.size()));
    log.insert(log.end(), data.begin(), data.end());
    if (pcr != 10) return;
    if (violation) {
      Extend(kSha1, std::vector<uint8_t>(20, 0xff));
      Extend(kSha256, std::vector<uint8_t>(32, 0xff));
    } else {
      Extend(kSha1, sha1);
      Extend(kSha256, Md("SHA256", data));
    }
  }
  // The legacy "ima" template (ima_template=ima): d (20 bytes, no length)
  // and n (u32 strlen + name) in the log; hashed as d || name padded with
  // zeros to 256 bytes (ima_calc_field_array_hash_tfm).
  void Legacy(const std::string& path) {
    const std::vector<uint8_t> d = Md("SHA1", Bytes(path));
    std::vector<uint8_t> hashed = d;
    hashed.insert(hashed.end(), path.begin(), path.end());
    hashed.resize(20 + 256, 0);
    const std::vector<uint8_t> sha1 = Md("SHA1", hashed);
    PutU32(log, 10);
    log.insert(log.end(), sha1.begin(), sha1.end());
    PutU32(log, 3);
    log.insert(log.end(), {'i', 'm', 'a'});
    log.insert(log.end(), d.begin(), d.end());
    PutU32(log, static_cast<uint32_t>(path.size()));
    log.insert(log.end(), path.begin(), path.end());
    Extend(kSha1, sha1);
    Extend(kSha256, Md("SHA256", hashed));
  }
  static std::vector<uint8_t> DigestField(std::span<const uint8_t> content) {
    std::vector<uint8_t> f{'s', 'h', 'a', '2', '5', '6', ':', '\0'};
    auto d = Md("SHA256", content);
    f.insert(f.end(), d.begin(), d.end());
    return f;
  }
  static std::vector<uint8_t> NameField(const std::string& name) {
    std::vector<uint8_t> f(name.begin(), name.end());
    f.push_back('\0');
    return f;
  }
  void BootAggregate() {
    const std::vector<uint8_t> agg(32, 0x11);
    Entry("ima-ng", {DigestField(agg), NameField("boot_aggregate")});
  }
  void File(const std::string& path) {
    Entry("ima-ng", {DigestField(Bytes(path)), NameField(path)});
  }
  void Record(const chain::InstanceId& id, const records::Record& r, uint32_t pcr = 10) {
    const std::vector<uint8_t> buf(r.bytes().begin(), r.bytes().end());
    Entry("ima-buf", {DigestField(buf), NameField(ima::EntryName(id, r.type(), r.seq())), buf},
          pcr);
  }
  // Every record the module measures with anchor=ima.
  void Module(const testing::ModuleSim& sim, size_t from = 0, uint32_t pcr = 10) {
    for (size_t i = from; i < sim.log().size(); ++i) {
      const uint16_t t = sim.log()[i].type();
      if (t == VIGIL_LOG_MEASURE || t == VIGIL_LOG_KEY || t == VIGIL_LOG_CHECKPOINT) {
        Record(sim.instance(), sim.log()[i], pcr);
      }
    }
  }
};

ima::ImaLog NewLog() { return *ima::ImaLog::Create({kSha1, kSha256}); }

// The module's log with three checkpoints, IMA's log around it.
struct Fixture {
  testing::ModuleSim sim;
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
  testing::ModuleSim stranger(0x77);
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
  testing::ModuleSim forger(0x5a);  // same instance id (the key is stolen)
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
  testing::ModuleSim sim;
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
