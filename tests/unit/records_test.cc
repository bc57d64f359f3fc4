// Record decoding: valid records round-trip; bad input gives typed errors.
#include "vigil/records.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "test_records.h"
#include "vigil/format.h"

namespace vigil {
namespace {

using testing::Append;
using testing::MakeExec;
using testing::MakeExit;
using testing::MakeMeasure;

std::vector<uint8_t> Bytes(const auto& rec) {
  std::vector<uint8_t> out;
  Append(out, rec);
  return out;
}

TEST(Records, DecodesExecAndReadsFields) {
  const auto ev = MakeExec(7, 4242, "true", "/usr/bin/true");
  auto rec = records::Record::Decode(Bytes(ev));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->type(), VIGIL_EV_EXEC);
  EXPECT_EQ(rec->seq(), 7u);
  EXPECT_TRUE(rec->committed());
  EXPECT_EQ(rec->bytes().size(), sizeof(vigil_ev_exec));
  auto exec = rec->As<vigil_ev_exec>();
  ASSERT_TRUE(exec.has_value());
  EXPECT_EQ(exec->pid, 4242u);
  EXPECT_EQ(records::FieldString(exec->filename), "/usr/bin/true");
  EXPECT_FALSE(rec->As<vigil_ev_exit>().has_value()) << "As<> must check the type";
}

TEST(Records, TruncatedHeaderIsTruncated) {
  auto bytes = Bytes(MakeExec(1, 1, "a", "/a"));
  bytes.resize(sizeof(vigil_rec_hdr) - 1);
  auto rec = records::Record::Decode(bytes);
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), ErrorCode::kTruncated);
}

TEST(Records, TruncatedBodyIsTruncated) {
  auto bytes = Bytes(MakeExit(1, 1, 0, 0));
  bytes.resize(bytes.size() - 8);
  auto rec = records::Record::Decode(bytes);
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), ErrorCode::kTruncated);
}

TEST(Records, EmptyInputIsTruncated) {
  auto rec = records::Record::Decode({});
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), ErrorCode::kTruncated);
}

TEST(Records, OversizedRecordIsMalformed) {
  auto ev = MakeExec(1, 1, "a", "/a");
  ev.hdr.size = sizeof(ev) + 8;
  auto bytes = Bytes(ev);
  bytes.resize(bytes.size() + 8);  // enough bytes: the size itself is wrong
  auto rec = records::Record::Decode(bytes);
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), ErrorCode::kMalformed);
}

TEST(Records, HugeSizeFieldIsRejectedWithoutReadingPastTheBuffer) {
  auto ev = MakeExit(1, 1, 0, 0);
  ev.hdr.size = 0xffffffffu;
  auto rec = records::Record::Decode(Bytes(ev));
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), ErrorCode::kMalformed);
}

TEST(Records, UndersizedRecordIsMalformed) {
  auto ev = MakeExit(1, 1, 0, 0);
  ev.hdr.size = sizeof(vigil_rec_hdr);
  auto rec = records::Record::Decode(Bytes(ev));
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), ErrorCode::kMalformed);
}

TEST(Records, UnknownTypeIsUnsupported) {
  for (uint16_t type : {0, VIGIL_EV_TYPE_MAX + 1, 0x7fff, 0x8000, 0x8007, 0xffff}) {
    auto ev = MakeExec(1, 1, "a", "/a");
    ev.hdr.type = type;
    auto rec = records::Record::Decode(Bytes(ev));
    ASSERT_FALSE(rec.ok()) << type;
    EXPECT_EQ(rec.status().code(), ErrorCode::kUnsupported) << type;
  }
}

TEST(Records, UnknownVersionIsUnsupported) {
  auto ev = MakeExec(1, 1, "a", "/a");
  ev.hdr.version = 2;
  auto rec = records::Record::Decode(Bytes(ev));
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.status().code(), ErrorCode::kUnsupported);
}

TEST(Records, StreamDecodesConcatenatedRecords) {
  std::vector<uint8_t> stream;
  Append(stream, MakeMeasure(1, 16, "a"));
  Append(stream, MakeExec(1, 10, "x", "/x"));
  Append(stream, MakeExit(2, 10, 3, 0));
  auto recs = records::DecodeStream(stream);
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  ASSERT_EQ(recs->size(), 3u);
  EXPECT_EQ((*recs)[0].type(), VIGIL_LOG_MEASURE);
  EXPECT_EQ((*recs)[1].type(), VIGIL_EV_EXEC);
  EXPECT_EQ((*recs)[2].As<vigil_ev_exit>()->exit_code, 3);
}

TEST(Records, StreamWithPartialTailIsTruncatedAndNamesTheOffset) {
  std::vector<uint8_t> stream;
  Append(stream, MakeExec(1, 10, "x", "/x"));
  Append(stream, MakeExit(2, 10, 3, 0));
  stream.resize(stream.size() - 1);
  auto recs = records::DecodeStream(stream);
  ASSERT_FALSE(recs.ok());
  EXPECT_EQ(recs.status().code(), ErrorCode::kTruncated);
  EXPECT_NE(recs.status().message().find("offset 328"), std::string::npos)
      << recs.status().message();
}

TEST(Records, StreamPrefixKeepsWhatCameBeforeABadRecord) {
  std::vector<uint8_t> stream;
  Append(stream, MakeMeasure(1, 16, "a"));
  Append(stream, MakeExec(1, 10, "x", "/x"));
  const size_t good = stream.size();
  auto bad = MakeExit(2, 10, 3, 0);
  bad.hdr.version = 2;
  Append(stream, bad);
  Append(stream, MakeExit(3, 10, 4, 0));
  auto prefix = records::DecodeStreamPrefix(stream);
  ASSERT_FALSE(prefix.stopped.ok());
  EXPECT_EQ(prefix.stopped.code(), ErrorCode::kUnsupported);
  EXPECT_NE(prefix.stopped.message().find("offset " + std::to_string(good)), std::string::npos)
      << prefix.stopped.message();
  ASSERT_EQ(prefix.records.size(), 2u);
  EXPECT_EQ(prefix.records[1].type(), VIGIL_EV_EXEC);
  auto whole = records::DecodeStreamPrefix(std::span<const uint8_t>(stream.data(), good));
  EXPECT_TRUE(whole.stopped.ok());
  EXPECT_EQ(whole.records.size(), 2u);
}

TEST(Records, UnterminatedStringsStopAtTheFieldEnd) {
  auto ev = MakeExec(1, 1, "a", "/a");
  std::memset(ev.comm, 'A', sizeof(ev.comm));
  std::memset(ev.filename, 'B', sizeof(ev.filename));
  auto rec = records::Record::Decode(Bytes(ev));
  ASSERT_TRUE(rec.ok());
  auto exec = rec->As<vigil_ev_exec>();
  EXPECT_EQ(records::FieldString(exec->comm), std::string(16, 'A'));
  EXPECT_EQ(records::FieldString(exec->filename).size(), 256u);
}

TEST(Format, LogRecordJsonHasNoEventCommitment) {
  auto rec = records::Record::Decode(Bytes(MakeMeasure(2, 16, "collector")));
  ASSERT_TRUE(rec.ok());
  auto j = format::RecordToJson(*rec);
  EXPECT_EQ(j["type"], "measure");
  EXPECT_EQ(j["seq"], 2);
  EXPECT_FALSE(j.contains("committed")) << j.dump();
  EXPECT_FALSE(j.contains("no_module")) << j.dump();
}

TEST(Format, ExitJsonCarriesCodeSignalAndMetrics) {
  auto rec = records::Record::Decode(Bytes(MakeExit(5, 99, 7, 0)));
  ASSERT_TRUE(rec.ok());
  auto j = format::RecordToJson(*rec);
  EXPECT_EQ(j["type"], "exit");
  EXPECT_EQ(j["seq"], 5);
  EXPECT_EQ(j["committed"], true);
  EXPECT_EQ(j["pid"], 99);
  EXPECT_EQ(j["exit_code"], 7);
  EXPECT_EQ(j["signal"], 0);
  EXPECT_EQ(j["metrics"]["lifetime_ns"], 12345);
  EXPECT_EQ(j["comm"], "worker");
}

TEST(Format, AgentForkAndSampleRecords) {
  auto agent = testing::Blank<vigil_ev_agent>(VIGIL_EV_AGENT, 3);
  agent.hdr.agent_id = 7;
  agent.action = VIGIL_AGENT_REGISTER;
  agent.how = VIGIL_AGENT_BY_CGROUP;
  agent.cgroup_id = 99;
  std::strcpy(agent.name, "builder");
  auto a = records::Record::FromStruct(agent);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto aj = format::RecordToJson(*a);
  EXPECT_EQ(aj["type"], "agent");
  EXPECT_EQ(aj["agent_id"], 7);
  EXPECT_EQ(aj["name"], "builder");
  EXPECT_EQ(aj["how"], "cgroup");
  EXPECT_EQ(aj["action"], "register");

  auto fork = testing::Blank<vigil_ev_fork>(VIGIL_EV_FORK, 4);
  fork.pid = fork.tid = 10;
  fork.ppid = 10;
  fork.flags = VIGIL_FORK_F_THREAD;
  auto f = records::Record::FromStruct(fork);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(format::RecordToJson(*f)["thread"], true);

  // Unmeasured counters are null, never 0; measured ones are numbers.
  auto smp = testing::Blank<vigil_ev_sample>(VIGIL_EV_SAMPLE, 5);
  smp.oncpu_ns = 1000;
  auto s0 = records::Record::FromStruct(smp);
  ASSERT_TRUE(s0.ok());
  auto j0 = format::RecordToJson(*s0);
  EXPECT_TRUE(j0["metrics"]["cycles"].is_null());
  EXPECT_TRUE(j0["metrics"]["instructions"].is_null());
  EXPECT_TRUE(j0["metrics"]["syscalls"].is_null());
  EXPECT_EQ(j0["hw_counters"], false);
  EXPECT_EQ(j0["metrics"]["oncpu_ns"], 1000);
  smp.flags = VIGIL_SAMPLE_F_HW | VIGIL_SAMPLE_F_SYSCALLS;
  smp.cycles = 0;  // a measured zero is a number
  smp.syscalls = 12;
  auto s1 = records::Record::FromStruct(smp);
  ASSERT_TRUE(s1.ok());
  auto j1 = format::RecordToJson(*s1);
  EXPECT_EQ(j1["metrics"]["cycles"], 0);
  EXPECT_EQ(j1["metrics"]["syscalls"], 12);
  EXPECT_EQ(j1["hw_counters"], true);
}

TEST(Format, TextNamesTypeAndSeq) {
  auto rec = records::Record::Decode(Bytes(MakeExec(3, 5, "sh", "/bin/sh")));
  ASSERT_TRUE(rec.ok());
  const std::string text = format::RecordToText(*rec);
  EXPECT_EQ(text.rfind("exec", 0), 0u) << text;
  EXPECT_NE(text.find("seq=3"), std::string::npos) << text;
  EXPECT_NE(text.find("filename=/bin/sh"), std::string::npos) << text;
}

TEST(Status, CarriesOrigin) {
  Status st = Status::FromErrno(ENOENT, "open /dev/vigil");
  EXPECT_EQ(st.code(), ErrorCode::kNotFound);
  EXPECT_EQ(st.origin(), ErrorOrigin::kErrno);
  EXPECT_EQ(st.origin_code(), ENOENT);
  EXPECT_NE(st.message().find("No such file"), std::string::npos);
  Status tss = Status::FromTss2(0x000a0008, "connect");  // TSS2_TCTI_RC_IO_ERROR
  EXPECT_EQ(tss.origin(), ErrorOrigin::kTss2);
  EXPECT_NE(tss.message().find("0xa0008"), std::string::npos) << tss.message();
  Result<int> r = Status::Error(ErrorCode::kMismatch, "x");
  EXPECT_FALSE(r.ok());
  Result<int> bad = Status::Ok();  // a mistake: must not look like a value
  EXPECT_FALSE(bad.ok());
}

TEST(Format, NonUtf8CommAndFilenameNeverThrow) {
  // A monitored process picks its own comm and file name: any bytes.
  const auto ev = MakeExec(9, 1, "\xff\xfe\xfd", "/tmp/\xc3\x28\x80");
  auto rec = records::Record::Decode(Bytes(ev));
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  std::string line;
  ASSERT_NO_THROW(line = format::Dump(format::RecordToJson(*rec)));
  EXPECT_NE(line.find("\xef\xbf\xbd"), std::string::npos) << "bytes become U+FFFD";
  EXPECT_NO_THROW(nlohmann::json::parse(line));
  EXPECT_NO_THROW(format::Dump(format::RecordToJson(*rec), 2));
  EXPECT_NO_THROW(format::RecordToText(*rec));
}

// One escaping function for every text output: printable ASCII only, so a
// kernel or file string cannot drive the terminal, and \ is doubled so the
// escapes stay unambiguous.
TEST(Format, EscapeTextKeepsOnlyPrintableAscii) {
  EXPECT_EQ(format::EscapeText("plain /usr/bin/agent-1 @x"), "plain /usr/bin/agent-1 @x");
  EXPECT_EQ(format::EscapeText("\x1b[2J\x1b]0;title\x07"), "\\x1b[2J\\x1b]0;title\\x07");
  EXPECT_EQ(format::EscapeText("a\r\nb\tc\x7f"), "a\\x0d\\x0ab\\x09c\\x7f");
  EXPECT_EQ(format::EscapeText("\xc3\xa9\xff\x9b"), "\\xc3\\xa9\\xff\\x9b");  // C1 CSI too
  EXPECT_EQ(format::EscapeText(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(format::EscapeText("back\\slash"), "back\\\\slash");
  // Distinct inputs stay distinct: a literal "\x1b" is not an escaped ESC.
  EXPECT_NE(format::EscapeText("\\x1b"), format::EscapeText("\x1b"));
}

TEST(Format, RecordTextEscapesKernelStrings) {
  auto exec = testing::MakeExec(3, 9, "\x1b[31mred", "/tmp/\x1b]0;x\x07");
  const std::string text = format::RecordToText(testing::ToRecord(exec));
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_NE(text.find("comm=\\x1b[31mred"), std::string::npos) << text;
  EXPECT_NE(text.find("filename=/tmp/\\x1b]0;x\\x07"), std::string::npos) << text;
}

}  // namespace
}  // namespace vigil
