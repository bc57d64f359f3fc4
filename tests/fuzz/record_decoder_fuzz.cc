// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: one record from arbitrary bytes (a ring-buffer event or a
// /dev/vigil log record), then everything a reader does with a decoded one.
// Invariants beyond "no crash, leak or UB": a refusal carries an error code;
// an accepted record is exactly hdr.size bytes taken from the input and is
// readable as exactly one record struct; JSON and text renderings never throw.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "vigil.h"
#include "vigil/format.h"
#include "vigil/records.h"

namespace {

using vigil::records::Record;

// 1 if the record reads as a T, 0 otherwise; a copy must equal the bytes.
template <typename T>
int ReadsAs(const Record& rec) {
  const std::optional<T> body = rec.As<T>();
  if (!body) return 0;
  if (std::memcmp(&*body, rec.bytes().data(), sizeof(T)) != 0) std::abort();
  return 1;
}

int ReadableTypes(const Record& rec) {
  return ReadsAs<vigil_ev_exec>(rec) + ReadsAs<vigil_ev_exit>(rec) + ReadsAs<vigil_ev_user>(rec) +
         ReadsAs<vigil_ev_fork>(rec) + ReadsAs<vigil_ev_agent>(rec) +
         ReadsAs<vigil_ev_sample>(rec) + ReadsAs<vigil_log_measure>(rec) +
         ReadsAs<vigil_log_key>(rec) + ReadsAs<vigil_log_checkpoint>(rec) +
         ReadsAs<vigil_log_signature>(rec) + ReadsAs<vigil_log_event>(rec) +
         ReadsAs<vigil_log_base>(rec);
}

// What vigilctl prints for a record, in both renderings; vigild's direct
// serializer must give the one-line rendering byte for byte.
void Render(const Record& rec) {
  const nlohmann::json j = vigil::format::RecordToJson(rec);
  const std::string line = vigil::format::Dump(j);
  const std::string pretty = vigil::format::Dump(j, 2);
  if (line.empty() || pretty.empty()) std::abort();
  std::string direct;
  vigil::format::AppendRecordJson(rec, direct);
  if (direct != line) std::abort();
  (void)vigil::format::RecordToText(rec);
}

void CheckRecord(const Record& rec, std::span<const uint8_t> input) {
  if (rec.bytes().size() != rec.hdr().size || rec.bytes().size() > input.size()) std::abort();
  if (std::memcmp(rec.bytes().data(), input.data(), rec.bytes().size()) != 0) std::abort();
  if (ReadableTypes(rec) != 1) std::abort();
  if (vigil::records::TypeName(rec.type()) == "unknown") std::abort();
  Render(rec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  const vigil::Result<Record> rec = Record::Decode(input);
  if (!rec.ok()) {
    if (rec.status().ok()) std::abort();
    return 0;
  }
  CheckRecord(*rec, input);
  if (rec->type() == VIGIL_LOG_EVENT) {
    const vigil::Result<Record> ev = vigil::records::EventFromLogCopy(*rec);
    if (ev.ok()) {
      if (ev->type() != VIGIL_EV_USER) std::abort();
      CheckRecord(*ev, rec->bytes().subspan(offsetof(vigil_log_event, ev)));
    } else if (ev.status().ok()) {
      std::abort();
    }
  }
  return 0;
}
