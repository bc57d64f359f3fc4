// format::AppendRecordJson (vigild's per-record line) against the nlohmann
// rendering it replaces, Dump(RecordToJson(rec)): every record type, edge
// values, random bodies and hostile strings give the same bytes, so the
// same parsed JSON.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "test_records.h"
#include "vigil/format.h"

namespace vigil {
namespace {

using nlohmann::json;
using testing::Blank;
using testing::ToRecord;

std::string ViaNlohmann(std::string_view s) { return format::Dump(json(std::string(s))); }

std::string ViaDirect(std::string_view s) {
  std::string out;
  format::AppendJsonString(s, out);
  return out;
}

// Both renderings of one record: the same bytes, and the same JSON parsed
// back (the parse also proves the direct output is valid JSON).
void ExpectSameJson(const records::Record& rec) {
  const std::string want = format::Dump(format::RecordToJson(rec));
  std::string got = "left as it was";  // appended to, never replaced
  format::AppendRecordJson(rec, got);
  ASSERT_EQ(got.substr(0, 14), "left as it was");
  got.erase(0, 14);
  EXPECT_EQ(got, want) << "type " << rec.type();
  json parsed;
  ASSERT_NO_THROW(parsed = json::parse(got)) << got;
  EXPECT_EQ(parsed, json::parse(want));
}

// Strings that have broken naive escapers: every control character, quotes
// and backslashes, DEL, C1 controls, every kind of invalid UTF-8 (stray
// continuation, overlong, surrogate, above U+10FFFF, cut short in the middle
// and at the end), valid 2-, 3- and 4-byte sequences next to them.
std::vector<std::string> HostileStrings() {
  std::vector<std::string> out = {
      "",
      "plain",
      "\"quoted\" \\back\\slash/",
      "\x7f"
      "del",
      "\xc2\x80\xc2\x9f c1",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
      "\x80",
      "\xbf",
      "\xc0\xaf",
      "\xc1\xbf",
      "\xe0\x80\xaf",
      "\xe0\x9f\xbf",
      "\xed\xa0\x80",
      "\xed\xbf\xbf",
      "\xf0\x80\x80\x80",
      "\xf0\x8f\xbf\xbf",
      "\xf4\x90\x80\x80",
      "\xf5\x80",
      "\xff\xfe",
      "\xc3",
      "a\xe2\x82",
      "\xf0\x9f\x98",
      "\xe2\x82"
      "a",
      "\xf0\x9f"
      "ab",
      "\xf0\x9f\x98\x80\x80",
      "\xe2\x28\xa1",
      "\xc3\x28",
      "\xa0\xa1",
      "\xf8\x88\x80\x80\x80",
      "\x1b[31mred\x1b[0m\r\nfake line\n",
      "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
      "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
  };
  std::string all;
  for (int b = 1; b < 256; ++b) all += static_cast<char>(b);
  out.push_back(all);
  return out;
}

// Random strings weighted towards the bytes that matter to UTF-8 and JSON.
std::string RandomString(std::mt19937_64& rng, size_t max_len) {
  static constexpr unsigned char kInteresting[] = {
      0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, '"',  '\\', 0x7f, 0x80, 0x8f,
      0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed,
      0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff, 'a',  '/'};
  std::string s(rng() % (max_len + 1), 'x');
  for (char& c : s) {
    const uint64_t r = rng();
    c = static_cast<char>((r & 1) ? kInteresting[(r >> 1) % sizeof(kInteresting)]
                                  : 1 + (r >> 8) % 255);
  }
  return s;
}

template <size_t N>
void Put(char (&field)[N], const std::string& s) {
  std::memset(field, 0, N);
  std::memcpy(field, s.data(), std::min(s.size(), N - 1));
}

template <typename T>
T RandomBody(std::mt19937_64& rng, uint16_t type) {
  T rec;
  auto* p = reinterpret_cast<unsigned char*>(&rec);
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<unsigned char>(rng());
  const T blank = Blank<T>(type, 0);
  rec.hdr.type = blank.hdr.type;
  rec.hdr.version = blank.hdr.version;
  rec.hdr.size = blank.hdr.size;
  return rec;
}

// Every field at 0 and at its maximum (all bits set: UINT64_MAX, -1 for the
// signed exit code and error), strings empty and full length.
template <typename T>
void ExpectEdges(uint16_t type) {
  for (const int fill : {0x00, 0xff}) {
    T rec;
    std::memset(&rec, fill, sizeof(rec));
    const T blank = Blank<T>(type, 0);
    rec.hdr.type = blank.hdr.type;
    rec.hdr.version = blank.hdr.version;
    rec.hdr.size = blank.hdr.size;
    SCOPED_TRACE(fill);
    ExpectSameJson(ToRecord(rec));
  }
}

TEST(RecordJson, StringsEscapeAsDumpDoes) {
  for (const std::string& s : HostileStrings()) {
    EXPECT_EQ(ViaDirect(s), ViaNlohmann(s))
        << json(s).dump(-1, ' ', true, json::error_handler_t::replace);
  }
  std::mt19937_64 rng(20261207);
  for (int i = 0; i < 200000; ++i) {
    const std::string s = RandomString(rng, 12);
    ASSERT_EQ(ViaDirect(s), ViaNlohmann(s))
        << json(s).dump(-1, ' ', true, json::error_handler_t::replace);
  }
}

TEST(RecordJson, EveryEventTypeAtItsEdges) {
  ExpectEdges<vigil_ev_exec>(VIGIL_EV_EXEC);
  ExpectEdges<vigil_ev_exit>(VIGIL_EV_EXIT);
  ExpectEdges<vigil_ev_user>(VIGIL_EV_USER);
  ExpectEdges<vigil_ev_fork>(VIGIL_EV_FORK);
  ExpectEdges<vigil_ev_agent>(VIGIL_EV_AGENT);
  ExpectEdges<vigil_ev_sample>(VIGIL_EV_SAMPLE);
}

TEST(RecordJson, LogRecordsAsBefore) {
  ExpectEdges<vigil_log_measure>(VIGIL_LOG_MEASURE);
  ExpectEdges<vigil_log_key>(VIGIL_LOG_KEY);
  ExpectEdges<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT);
  ExpectEdges<vigil_log_signature>(VIGIL_LOG_SIGNATURE);
  ExpectEdges<vigil_log_event>(VIGIL_LOG_EVENT);
  ExpectEdges<vigil_log_base>(VIGIL_LOG_BASE);
}

// Random bodies (every flag combination, enum values out of range, random
// bytes in the strings) and hostile strings in every string field.
TEST(RecordJson, RandomRecordsOfEveryType) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> hostile = HostileStrings();
  for (int i = 0; i < 3000; ++i) {
    const std::string& h1 = hostile[i % hostile.size()];
    const std::string r1 = RandomString(rng, 300);
    const std::string& s1 = (i & 1) ? h1 : r1;
    const std::string& s2 = (i & 1) ? r1 : h1;
    auto exec = RandomBody<vigil_ev_exec>(rng, VIGIL_EV_EXEC);
    if (i % 3) {
      Put(exec.comm, s1);
      Put(exec.filename, s2);
    }
    auto exit = RandomBody<vigil_ev_exit>(rng, VIGIL_EV_EXIT);
    if (i % 3) Put(exit.comm, s2);
    auto fork = RandomBody<vigil_ev_fork>(rng, VIGIL_EV_FORK);
    if (i % 3) Put(fork.comm, s1);
    auto agent = RandomBody<vigil_ev_agent>(rng, VIGIL_EV_AGENT);
    if (i % 3) Put(agent.name, s2);
    if (i % 4 == 0) agent.action = VIGIL_AGENT_REGISTER;
    if (i % 4 == 1) agent.action = VIGIL_AGENT_UNTRACK;
    if (i % 5 == 0) agent.how = VIGIL_AGENT_BY_PID;
    if (i % 5 == 1) agent.how = VIGIL_AGENT_BY_CGROUP;
    auto sample = RandomBody<vigil_ev_sample>(rng, VIGIL_EV_SAMPLE);
    sample.flags &= (i % 2) ? ~0u : (VIGIL_SAMPLE_F_HW | VIGIL_SAMPLE_F_SYSCALLS);
    auto user = RandomBody<vigil_ev_user>(rng, VIGIL_EV_USER);
    if (i % 2) user.len %= VIGIL_USER_PAYLOAD_MAX + 1;
    SCOPED_TRACE(i);
    ExpectSameJson(ToRecord(exec));
    ExpectSameJson(ToRecord(exit));
    ExpectSameJson(ToRecord(fork));
    ExpectSameJson(ToRecord(agent));
    ExpectSameJson(ToRecord(sample));
    ExpectSameJson(ToRecord(user));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(RecordJson, UsualRecords) {
  ExpectSameJson(ToRecord(testing::MakeExec(7, 42, "bash", "/usr/bin/bash")));
  ExpectSameJson(ToRecord(testing::MakeExit(8, 42, -3, 9)));
  ExpectSameJson(ToRecord(testing::MakeMeasure(3, 23, "policy")));
}

}  // namespace
}  // namespace vigil
