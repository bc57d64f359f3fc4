// CEL-JSON export (vigil::attest::ExportCel, `vigilctl export-cel`) without a
// TPM: the export against logs whose extends are computed independently
// (cel_fixtures.h), hostile logs and IMA logs, and the independent replayer
// tests/interop/cel_replay.py on hostile CEL documents.
#include "vigil/attest/cel.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cel_fixtures.h"

namespace vigil {
namespace {

using nlohmann::json;
using testing::ImaLogBuilder;
using testing::ModuleLogBuilder;

const std::vector<uint16_t> kBanks = {VIGIL_ALG_SHA1, VIGIL_ALG_SHA256, VIGIL_ALG_SHA384};

std::vector<crypto::Digest> Fill(uint8_t b) {
  std::vector<crypto::Digest> out;
  for (uint16_t alg : kBanks) out.emplace_back(testing::MdSize(alg), b);
  return out;
}

std::string TempFile(const std::string& content) {
  char path[] = "/tmp/vigil-cel-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string TempFile(const std::vector<uint8_t>& bytes) {
  return TempFile(std::string(bytes.begin(), bytes.end()));
}

struct ShellResult {
  int code = -1;
  std::string out;
};

ShellResult Shell(const std::string& cmd) {
  ShellResult r;
  FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

ShellResult Replay(const std::string& cel_path, const std::string& args = "") {
  return Shell(std::string(VIGIL_PYTHON3) + " " + CEL_REPLAY_PY + " " + args + " " + cel_path);
}

// The PCR values `extends` give from the BASE values, as the TPM would hold them.
std::map<uint32_t, std::map<uint16_t, crypto::Digest>> Expected(
    const std::vector<testing::PcrExtend>& extends, uint8_t config_start, uint8_t events_start,
    bool with_events = true) {
  std::map<uint32_t, std::map<uint16_t, crypto::Digest>> start;
  for (uint16_t alg : kBanks) {
    start[16][alg] = crypto::Digest(testing::MdSize(alg), config_start);
    if (with_events) start[23][alg] = crypto::Digest(testing::MdSize(alg), events_start);
  }
  return testing::ReplayExtends(extends, start);
}

TEST(CelExport, AnchorPcrRecordsCarryTheirExtendsInEveryBank) {
  ModuleLogBuilder b(kBanks, Fill(0), Fill(0), /*anchor_ima=*/false);
  b.Checkpoint(3);
  b.Measure(VIGIL_MEASURE_USER, "user thing");
  b.Checkpoint(2);
  auto cel = attest::ExportCel(b.records(), {});
  ASSERT_TRUE(cel.ok()) << cel.status().ToString();
  EXPECT_EQ(cel->pcr_config, 16u);
  EXPECT_EQ(cel->pcr_events, 23u);
  EXPECT_FALSE(cel->anchor_ima);
  EXPECT_FALSE(cel->nonzero_start);
  EXPECT_EQ(cel->banks, kBanks);
  EXPECT_EQ(cel->config_extends, 4u);  // identity, parameters, KEY, user MEASURE
  EXPECT_EQ(cel->events_extends, 2u);
  EXPECT_EQ(cel->replayed, Expected(b.extends(), 0, 0));

  // Round trip through JSON: every record's digests are the ones the
  // module extended (computed independently), in order, after two base
  // records that extend nothing.
  const json doc = json::parse(attest::CelToJsonText(*cel));
  ASSERT_EQ(doc.size(), 2 + b.extends().size());
  for (size_t i = 0; i < doc.size(); ++i) EXPECT_EQ(doc[i]["recnum"], i);
  EXPECT_EQ(doc[0]["pcr"], 16);
  EXPECT_EQ(doc[1]["pcr"], 23);
  for (int i : {0, 1}) {
    EXPECT_TRUE(doc[i]["digests"].empty());
    EXPECT_EQ(doc[i]["content"]["record_type"], "base");
    EXPECT_EQ(doc[i]["content"]["pcr_start"].size(), kBanks.size());
  }
  for (size_t i = 0; i < b.extends().size(); ++i) {
    const json& ev = doc[2 + i];
    const testing::PcrExtend& want = b.extends()[i];
    EXPECT_EQ(ev["pcr"], want.pcr);
    EXPECT_EQ(ev["content_type"], "vigil");
    EXPECT_EQ(ev["content"]["format"], "vigil-log-v1");
    ASSERT_EQ(ev["digests"].size(), want.digests.size());
    for (size_t k = 0; k < want.digests.size(); ++k) {
      EXPECT_EQ(ev["digests"][k]["hashAlg"], crypto::AlgName(want.digests[k].first));
      EXPECT_EQ(ev["digests"][k]["digest"], crypto::ToHex(want.digests[k].second));
    }
    // The content is the record itself, byte for byte.
    auto bytes = crypto::FromHex(ev["content"]["record"].get<std::string>());
    ASSERT_TRUE(bytes.ok());
    auto rec = records::Record::Decode(*bytes);
    ASSERT_TRUE(rec.ok());
    EXPECT_EQ(ev["content"]["log_seq"], rec->seq());
    EXPECT_EQ(ev["content"]["record_type"], std::string(records::TypeName(rec->type())));
  }
}

TEST(CelExport, NonZeroStartIsTheBaseRecordsValue) {
  ModuleLogBuilder b(kBanks, Fill(0xab), Fill(0xcd), false);
  b.Checkpoint(1);
  auto cel = attest::ExportCel(b.records(), {});
  ASSERT_TRUE(cel.ok()) << cel.status().ToString();
  EXPECT_TRUE(cel->nonzero_start);
  EXPECT_EQ(cel->replayed, Expected(b.extends(), 0xab, 0xcd));
  const json doc = attest::CelToJson(*cel);
  EXPECT_EQ(doc[1]["content"]["pcr_start"][1]["hashAlg"], "sha256");
  EXPECT_EQ(doc[1]["content"]["pcr_start"][1]["digest"], crypto::ToHex(crypto::Digest(32, 0xcd)));
}

TEST(CelExport, AnchorImaExportsImaLogWholeAndNoEventsPcr) {
  ModuleLogBuilder b(kBanks, Fill(0), Fill(0), /*anchor_ima=*/true);
  b.Checkpoint(4);
  b.Checkpoint(0);
  ImaLogBuilder ima(kBanks);
  ima.Entry("ima-ng", {ImaLogBuilder::DigestField(std::vector<uint8_t>(32, 0x11)),
                       ImaLogBuilder::NameField("boot_aggregate")});
  ima.File("/usr/bin/true");
  for (const auto& r : b.Anchored()) ima.Record(r);
  ima.Entry("ima-ng",
            {ImaLogBuilder::DigestField(std::vector<uint8_t>(1, 0)),
             ImaLogBuilder::NameField("/tmp/racy")},
            10, /*violation=*/true);
  ima.Legacy("/sbin/init");
  attest::CelOptions opts;
  opts.ima_log = std::span<const uint8_t>(ima.log());
  auto cel = attest::ExportCel(b.records(), opts);
  ASSERT_TRUE(cel.ok()) << cel.status().ToString();
  EXPECT_TRUE(cel->anchor_ima);
  EXPECT_EQ(cel->events_extends, 0u);
  EXPECT_EQ(cel->ima_entries, 2 + b.Anchored().size() + 2);
  // PCR 23 is not part of the export; PCR 10 replays as IMA extended it.
  EXPECT_FALSE(cel->replayed.contains(23));
  auto want = Expected(b.extends(), 0, 0, /*with_events=*/false);
  auto want10 = testing::ReplayExtends(ima.extends());
  want[10] = want10[10];
  EXPECT_EQ(cel->replayed, want);

  const json doc = attest::CelToJson(*cel);
  size_t ima_records = 0;
  for (const json& ev : doc) {
    if (ev["content_type"] != "ima_template") {
      EXPECT_NE(ev["content"]["record_type"], "checkpoint") << "anchor=ima checkpoints extend "
                                                               "no vigil PCR";
      continue;
    }
    EXPECT_EQ(ev["pcr"], 10);
    ++ima_records;
  }
  EXPECT_EQ(ima_records, cel->ima_entries);
  EXPECT_EQ(doc.back()["content"]["template_name"], "ima");
}

TEST(CelExport, HostileLogsFailWithTypedErrors) {
  ModuleLogBuilder b(kBanks, Fill(0), Fill(0), false);
  b.Checkpoint(1);
  // No BASE: nothing to start from.
  std::vector<records::Record> no_base(b.records().begin() + 1, b.records().end());
  EXPECT_EQ(attest::ExportCel(no_base, {}).status().code(), ErrorCode::kNotFound);
  // A record missing in the middle.
  std::vector<records::Record> gap = b.records();
  gap.erase(gap.begin() + 2);
  EXPECT_FALSE(attest::ExportCel(gap, {}).ok());
  // pcr_events given against the log's parameters record.
  attest::CelOptions opts;
  opts.pcr_events = 22;
  EXPECT_EQ(attest::ExportCel(b.records(), opts).status().code(), ErrorCode::kMismatch);
  // A parameters record that is not the module's.
  ModuleLogBuilder odd(kBanks, Fill(0), Fill(0), false);
  odd.Measure(VIGIL_MEASURE_PARAMS, "c=16 e=99 a=pcr");
  EXPECT_EQ(attest::ExportCel(odd.records(), {}).status().code(), ErrorCode::kMalformed);
}

TEST(CelExport, HostileImaLogsFailWithTypedErrors) {
  ModuleLogBuilder b(kBanks, Fill(0), Fill(0), true);
  b.Checkpoint(1);
  ImaLogBuilder ima(kBanks);
  ima.File("/usr/bin/a");
  ima.File("/usr/bin/b");
  auto with = [&](const std::vector<uint8_t>& bytes) {
    attest::CelOptions opts;
    opts.ima_log = std::span<const uint8_t>(bytes);
    return attest::ExportCel(b.records(), opts).status().code();
  };
  std::vector<uint8_t> cut = ima.log();
  cut.resize(cut.size() - 5);
  EXPECT_EQ(with(cut), ErrorCode::kTruncated);
  std::vector<uint8_t> garbage(200, 0x41);
  EXPECT_EQ(with(garbage), ErrorCode::kMalformed);
  // The template data does not hash to the logged SHA-1.
  std::vector<uint8_t> flipped = ima.log();
  flipped.back() ^= 1;
  EXPECT_EQ(with(flipped), ErrorCode::kMalformed);
  // An IMA entry into vigil's own PCR: the order of the two logs is unknown.
  ImaLogBuilder clash(kBanks);
  clash.Entry(
      "ima-ng",
      {ImaLogBuilder::DigestField(std::vector<uint8_t>(3, 1)), ImaLogBuilder::NameField("/x")}, 16);
  EXPECT_EQ(with(clash.log()), ErrorCode::kUnsupported);
  // An empty IMA log is a valid (empty) one.
  EXPECT_EQ(with({}), ErrorCode::kOk);
}

// ---- vigilctl export-cel on files -----------------------------------------

TEST(CelCli, ExportsAFileAndRefusesHostileInput) {
  ModuleLogBuilder b(kBanks, Fill(0), Fill(0), false);
  b.Checkpoint(2);
  const std::string log = TempFile(b.bytes());
  const std::string out = TempFile(std::string());
  const std::string ctl = VIGILCTL_PATH;
  ShellResult r = Shell(ctl + " export-cel --file " + log + " --out " + out);
  EXPECT_EQ(r.code, 0);
  std::ifstream in(out);
  const json doc = json::parse(in, nullptr, false);
  ASSERT_TRUE(doc.is_array());
  EXPECT_EQ(doc.size(), 2 + b.extends().size());
  // stdout without --out: the same document.
  r = Shell(ctl + " export-cel --file " + log);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(json::parse(r.out, nullptr, false), doc);

  // Truncated log, garbage, a missing file, a truncated IMA log.
  std::vector<uint8_t> cut = b.bytes();
  cut.resize(cut.size() - 7);
  const std::string cut_path = TempFile(cut);
  EXPECT_EQ(Shell(ctl + " export-cel --file " + cut_path).code, 6);
  const std::string junk = TempFile(std::string(3000, '\x7f'));
  EXPECT_EQ(Shell(ctl + " export-cel --file " + junk).code, 6);
  EXPECT_EQ(Shell(ctl + " export-cel --file /nonexistent/vigil.log").code, 1);
  ImaLogBuilder ima(kBanks);
  ima.File("/usr/bin/a");
  std::vector<uint8_t> ima_cut = ima.log();
  ima_cut.resize(ima_cut.size() - 1);
  const std::string ima_path = TempFile(ima_cut);
  EXPECT_EQ(Shell(ctl + " export-cel --file " + log + " --ima " + ima_path).code, 6);
  EXPECT_EQ(Shell(ctl + " export-cel --file " + log + " --ima " + junk).code, 6);
  EXPECT_EQ(Shell(ctl + " export-cel --file " + log + " --pcr-events 24").code, 2);
  EXPECT_EQ(Shell(ctl + " export-cel --file " + log + " --pcr-events 22").code, 5);
  for (const auto& p : {log, out, cut_path, junk, ima_path}) std::remove(p.c_str());
}

// ---- the independent replayer on hostile CEL documents ---------------------

TEST(CelReplayScript, ReplaysTheExportAndRejectsHostileDocuments) {
  ModuleLogBuilder b(kBanks, Fill(0x01), Fill(0x02), false);
  b.Checkpoint(2);
  auto cel = attest::ExportCel(b.records(), {});
  ASSERT_TRUE(cel.ok());
  const std::string good = TempFile(attest::CelToJsonText(*cel));
  ShellResult r = Replay(good);
  ASSERT_EQ(r.code, 0);
  // Its values are the TPM's as computed independently here.
  for (const auto& [pcr, banks] : Expected(b.extends(), 0x01, 0x02)) {
    for (const auto& [alg, v] : banks) {
      EXPECT_NE(r.out.find("pcr " + std::to_string(pcr) + " " + crypto::AlgName(alg) + " " +
                           crypto::ToHex(v)),
                std::string::npos)
          << r.out;
    }
  }
  const json doc = attest::CelToJson(*cel);
  auto code_of = [&](const json& d) {
    const std::string p = TempFile(d.dump());
    const int code = Replay(p).code;
    std::remove(p.c_str());
    return code;
  };
  EXPECT_EQ(code_of(json::object()), 3);
  EXPECT_EQ(code_of(json::array({json::array()})), 3);
  json no_recnum = doc;
  no_recnum[2].erase("recnum");
  EXPECT_EQ(code_of(no_recnum), 3);
  json bad_pcr = doc;
  bad_pcr[2]["pcr"] = 24;
  EXPECT_EQ(code_of(bad_pcr), 3);
  json bad_hex = doc;
  bad_hex[2]["digests"][0]["digest"] = "zz";
  EXPECT_EQ(code_of(bad_hex), 3);
  json bad_alg = doc;
  bad_alg[2]["digests"][0]["hashAlg"] = "md5";
  EXPECT_EQ(code_of(bad_alg), 3);
  json short_digest = doc;
  short_digest[2]["digests"][0]["digest"] = "00";
  EXPECT_EQ(code_of(short_digest), 3);
  json missing_bank = doc;
  missing_bank[3]["digests"].erase(0);
  EXPECT_EQ(code_of(missing_bank), 3);
  json wrong_record = doc;
  std::string hex = wrong_record[2]["content"]["record"];
  hex[80] = hex[80] == '0' ? '1' : '0';
  wrong_record[2]["content"]["record"] = hex;
  EXPECT_EQ(code_of(wrong_record), 3);
  json late_base = doc;
  std::swap(late_base[0], late_base[2]);
  late_base[0]["recnum"] = 0;
  late_base[2]["recnum"] = 2;
  EXPECT_EQ(code_of(late_base), 3);
  const std::string not_json = TempFile(std::string("[{\"recnum\": 0,"));
  EXPECT_EQ(Replay(not_json).code, 3);
  const std::string deep = TempFile(std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(Replay(deep).code, 3);
  EXPECT_EQ(Replay(good, "--expect 16:md5=00").code, 2);
  EXPECT_EQ(Replay("/nonexistent/cel.json").code, 2);
  for (const auto& p : {good, not_json, deep}) std::remove(p.c_str());
}

}  // namespace
}  // namespace vigil
