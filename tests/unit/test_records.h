// Builders of synthetic records for the unit tests.
#ifndef VIGIL_TESTS_UNIT_TEST_RECORDS_H_
#define VIGIL_TESTS_UNIT_TEST_RECORDS_H_

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "vigil.h"
#include "vigil/records.h"

namespace vigil::testing {

template <typename T>
T Blank(uint16_t type, uint64_t seq) {
  T rec;
  std::memset(&rec, 0, sizeof(rec));
  rec.hdr.type = type;
  rec.hdr.version = type == VIGIL_LOG_CHECKPOINT ? VIGIL_CHECKPOINT_VERSION : 1;
  rec.hdr.size = sizeof(T);
  rec.hdr.seq = seq;
  rec.hdr.ts_ns = 1000 + seq;
  return rec;
}

inline vigil_ev_exec MakeExec(uint64_t seq, uint32_t pid, const char* comm, const char* path) {
  auto ev = Blank<vigil_ev_exec>(VIGIL_EV_EXEC, seq);
  ev.hdr.flags = VIGIL_REC_F_COMMITTED;
  ev.pid = ev.tid = ev.old_pid = pid;
  ev.ppid = 1;
  std::strncpy(ev.comm, comm, sizeof(ev.comm) - 1);
  std::strncpy(ev.filename, path, sizeof(ev.filename) - 1);
  return ev;
}

inline vigil_ev_exit MakeExit(uint64_t seq, uint32_t pid, int32_t code, uint32_t sig) {
  auto ev = Blank<vigil_ev_exit>(VIGIL_EV_EXIT, seq);
  ev.hdr.flags = VIGIL_REC_F_COMMITTED;
  ev.pid = ev.tid = pid;
  ev.exit_code = code;
  ev.exit_signal = sig;
  ev.lifetime_ns = 12345;
  std::strncpy(ev.comm, "worker", sizeof(ev.comm) - 1);
  return ev;
}

inline vigil_log_measure MakeMeasure(uint64_t log_seq, uint32_t pcr, const char* name) {
  auto m = Blank<vigil_log_measure>(VIGIL_LOG_MEASURE, log_seq);
  m.kind = VIGIL_MEASURE_USER;
  m.pcr = pcr;
  std::strncpy(m.name, name, sizeof(m.name) - 1);
  for (size_t i = 0; i < sizeof(m.digest); ++i) m.digest[i] = static_cast<uint8_t>(i + log_seq);
  return m;
}

template <typename T>
records::Record ToRecord(const T& rec) {
  auto r = records::Record::FromStruct(rec);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

template <typename T>
void Append(std::vector<uint8_t>& stream, const T& rec) {
  const auto* p = reinterpret_cast<const uint8_t*>(&rec);
  stream.insert(stream.end(), p, p + sizeof(T));
}

}  // namespace vigil::testing

#endif  // VIGIL_TESTS_UNIT_TEST_RECORDS_H_
